//! State size per key, estimated from the IR: what each stateful operator keeps for one key,
//! from its types and windows. `pulsec check --explain-state` prints it; the LSP shows it on
//! hover. Estimates count encoded bytes (varints at their typical width), not RocksDB overhead.

use pulse_ir::{AggregateFn, Operator, Pipeline, WindowSpec};

/// A node's per-key state estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct StateEstimate {
    pub node: String,
    /// Bytes per key at most, when bounded by the configuration.
    pub bytes_per_key: Option<u64>,
    /// How the figure comes about, in words.
    pub explanation: String,
}

/// A typical encoded event (the peer benchmarks' events are about 200 bytes).
const EVENT_BYTES: u64 = 200;
/// A varint-encoded epoch-millisecond time.
const TIME_BYTES: u64 = 6;

pub fn state_estimates(pipeline: &Pipeline) -> Vec<StateEstimate> {
    pipeline.nodes.iter().filter_map(|node| estimate(&node.id, &node.op)).collect()
}

fn estimate(node: &str, operator: &Operator) -> Option<StateEstimate> {
    let (bytes, explanation) = match operator {
        Operator::Delay { latest: true, .. } => {
            (Some(EVENT_BYTES + 3 * TIME_BYTES), "the one pending event of the key (about 200-byte events)".to_string())
        }
        Operator::Delay { .. } => return None,
        Operator::Segmentation { bucket_ms, counters, .. } => {
            let longest = counters.iter().map(|counter| counter.window_ms).max().unwrap_or(0);
            let n_buckets = longest.div_ceil((*bucket_ms).max(1));
            let per_bucket = TIME_BYTES + 1 + counters.len() as u64 * 2;
            (
                Some(n_buckets * per_bucket + 2 * TIME_BYTES),
                format!(
                    "{n_buckets} buckets of {} (longest window {}) x {} counter(s): {per_bucket} bytes per bucket",
                    duration(*bucket_ms),
                    duration(longest),
                    counters.len()
                ),
            )
        }
        Operator::Capping { max, .. } => {
            (Some(max * TIME_BYTES + TIME_BYTES), format!("the times of at most {max} passed events in the window"))
        }
        Operator::Dedupe { .. } => (Some(2 * TIME_BYTES), "the greatest time seen and the last write".to_string()),
        Operator::UserEventTrigger { .. } => {
            (Some(EVENT_BYTES + 4 * TIME_BYTES), "the start event of the open window, if any".to_string())
        }
        Operator::HasDoneEvent { ttl_ms, since_ms, .. } => {
            let bound = match (ttl_ms, since_ms) {
                (Some(ttl), _) => format!("bounded by `ttl` ({})", duration(*ttl)),
                _ => "unbounded without `ttl`: add one to expire old history".to_string(),
            };
            (None, format!("{TIME_BYTES} bytes per matching `events` record; {bound}"))
        }
        Operator::WindowAggregate { window, aggregates, .. } => {
            let open_windows = match window {
                WindowSpec::Tumbling { .. } => 1,
                WindowSpec::Sliding { size_ms, slide_ms } => size_ms.div_ceil((*slide_ms).max(1)),
                WindowSpec::Session { .. } => 1,
            };
            let distinct = aggregates.iter().any(|aggregate| aggregate.function == AggregateFn::CountDistinct);
            let per_window = 3 * TIME_BYTES + aggregates.len() as u64 * 24;
            let text = format!("{open_windows} open window(s) x {} aggregate(s)", aggregates.len());
            if distinct {
                (None, format!("{text}; `countDistinct` grows with the distinct values"))
            } else {
                (Some(open_windows * per_window + 16), text)
            }
        }
        _ => return None,
    };
    Some(StateEstimate { node: node.to_string(), bytes_per_key: bytes, explanation })
}

fn duration(millis: u64) -> String {
    crate::values::format_duration(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_ir::{Counter, EmitMode, Path, Refresh, TimeDomain, Timing};

    #[test]
    fn ninety_days_of_hourly_buckets_of_one_counter() {
        let operator = Operator::Segmentation {
            key_by: Path(vec!["userId".into()]),
            bucket_ms: 3_600_000,
            counters: vec![Counter { name: "logins".into(), condition: None, window_ms: 90 * 86_400_000 }],
            segments: Vec::new(),
            emit: EmitMode::Always,
            refresh: Refresh::Never,
            timing: Timing { domain: TimeDomain::Event, allowed_lateness_ms: 0 },
            ttl_ms: None,
        };
        let estimate = estimate("seg", &operator).expect("segmentation keeps state");
        // 2160 buckets of (time 6 + count list 1 + one count 2) bytes, plus two times.
        assert_eq!(estimate.bytes_per_key, Some(2160 * 9 + 12));
        assert!(estimate.explanation.starts_with("2160 buckets of 1h (longest window 90d)"));
    }
}
