//! Observability of a running pipeline: `/metrics` (Prometheus text format), `/healthz` and
//! `/readyz`, served by a small HTTP server on its own thread.
//!
//! The driver never touches a lock per record. It counts in plain integers of its `Context` and
//! publishes a [`Snapshot`] at round boundaries, at most every [`PUBLISH_EVERY`]; a scrape
//! encodes the last published snapshot. Counters therefore lag the driver by at most that
//! interval, and every scrape sees one consistent round boundary.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The longest a published snapshot lags the driver while records flow.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// One sink's delivery figures (api-sink and redis-sink; zero for others).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SinkHealth {
    pub node: &'static str,
    pub written: u64,
    pub retries: u64,
    /// 0 closed, 1 open, 2 half-open (api-sinks with a circuit breaker).
    pub breaker_state: i64,
    pub breaker_opened: u64,
    /// How long the sink has been unavailable (zero when it is available).
    pub unavailable: Duration,
}

/// Everything `/metrics` reports, as of one round boundary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Per node (index = node index): records that entered it, records it sent on, records it
    /// dropped by design (filtered, unconnected port), and of those the late ones.
    pub records_in: Vec<u64>,
    pub records_out: Vec<u64>,
    pub dropped: Vec<u64>,
    pub late: Vec<u64>,
    /// Per source node: records dead-lettered as dated too far ahead of the wall clock.
    pub future: Vec<u64>,
    pub records_read: u64,
    pub dead_letters: u64,
    pub sinks: Vec<SinkHealth>,
    /// The pipeline watermark in ms (`i64::MIN`: none yet, `i64::MAX`: input ended).
    pub watermark: i64,
    /// (source node, topic, partition, lag in records) as the Kafka client last reported it.
    pub consumer_lag: Vec<(&'static str, String, i32, i64)>,
    /// (source node, times it paused its partitions while the pipeline was held up).
    pub source_pauses: Vec<(&'static str, u64)>,
    pub checkpoints: u64,
    pub checkpoint_failures: u64,
    pub checkpoint_last: Duration,
    pub checkpoint_max: Duration,
    pub checkpoint_total: Duration,
    pub state_keys: u64,
    pub state_bytes: u64,
    pub timers_pending: u64,
    /// Time the driver spent blocked on sinks (queues full, Redis down).
    pub backpressure: Duration,
}

/// What a network sink says of itself, read at every scrape rather than published by the
/// driver: while the driver waits on a sink (Redis down, the request queue full behind an open
/// breaker) it publishes nothing, and these are the figures that matter then.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LiveSink {
    pub retries: u64,
    /// 0 closed, 1 open, 2 half-open.
    pub breaker_state: i64,
    pub breaker_opened: u64,
    /// Since when the driver has been waiting on this sink, if it is.
    pub waiting_since: Option<Instant>,
    /// Since when the sink has been unavailable (Redis unreachable, breaker not closed).
    pub unavailable_since: Option<Instant>,
}

/// Reads a sink's `LiveSink`.
pub type SinkProbe = Box<dyn Fn() -> LiveSink + Send + Sync>;

/// How long a sink may be unavailable before `/readyz` fails, unless set otherwise.
pub const DEFAULT_UNREADY_AFTER: Duration = Duration::from_secs(30);

/// What the driver and the HTTP thread share.
pub struct Metrics {
    pipeline: &'static str,
    version: &'static str,
    nodes: &'static [&'static str],
    snapshot: Mutex<Snapshot>,
    ready: AtomicBool,
    failed: Mutex<Option<String>>,
    started: Instant,
    /// (sink index, probe) of the network sinks.
    probes: Mutex<Vec<(usize, SinkProbe)>>,
    /// A sink unavailable this long makes `/readyz` fail.
    unready_after: Mutex<Duration>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("Metrics").field("pipeline", &self.pipeline).finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(pipeline: &'static str, version: &'static str, nodes: &'static [&'static str]) -> Arc<Metrics> {
        Arc::new(Metrics {
            pipeline,
            version,
            nodes,
            snapshot: Mutex::new(Snapshot { watermark: i64::MIN, ..Snapshot::default() }),
            ready: AtomicBool::new(false),
            failed: Mutex::new(None),
            started: Instant::now(),
            probes: Mutex::new(Vec::new()),
            unready_after: Mutex::new(DEFAULT_UNREADY_AFTER),
        })
    }

    /// Reads sink `sink`'s own health at every scrape (see `LiveSink`).
    pub fn watch_sink(&self, sink: usize, probe: SinkProbe) {
        self.probes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((sink, probe));
    }

    pub fn set_unready_after(&self, after: Duration) {
        *self.unready_after.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = after;
    }

    /// The published snapshot with every watched sink's live figures folded in: retries and
    /// breaker from the sink, and the time the driver is waiting on one added to backpressure.
    fn current(&self) -> Snapshot {
        let mut snapshot = self.snapshot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        for (sink, probe) in self.probes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter() {
            let live = probe();
            if let Some(health) = snapshot.sinks.get_mut(*sink) {
                health.retries = health.retries.max(live.retries);
                health.breaker_state = live.breaker_state;
                health.breaker_opened = health.breaker_opened.max(live.breaker_opened);
                health.unavailable = live.unavailable_since.map_or(Duration::ZERO, |since| since.elapsed());
            }
            if let Some(since) = live.waiting_since {
                snapshot.backpressure += since.elapsed();
            }
        }
        snapshot
    }

    /// The first sink unavailable for longer than the readiness limit, and for how long.
    fn unavailable_sink(&self, snapshot: &Snapshot) -> Option<(&'static str, Duration)> {
        let limit = *self.unready_after.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        snapshot.sinks.iter().find(|sink| sink.unavailable > limit).map(|sink| (sink.node, sink.unavailable))
    }

    pub fn publish(&self, snapshot: Snapshot) {
        *self.snapshot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = snapshot;
    }

    /// State restored, inputs and outputs open: `/readyz` answers 200 from now on.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// The run failed: `/healthz` answers 503 with the reason until the process exits.
    pub fn set_failed(&self, reason: &str) {
        *self.failed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(reason.to_string());
        self.set_ready(false);
    }

    /// The Prometheus text exposition of the last snapshot.
    pub fn render(self: &Arc<Self>) -> String {
        let mut registry = Registry::with_prefix("pulse");
        registry.register_collector(Box::new(Exporter(Arc::clone(self))));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }
}

#[derive(Debug)]
struct Exporter(Arc<Metrics>);

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A metric with one labelled series per item.
fn family<T>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    items: impl IntoIterator<Item = (Vec<(&'static str, String)>, T)>,
) -> Result<(), std::fmt::Error>
where
    T: Into<f64> + Copy,
{
    let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in items {
        let encoder = family.encode_family(&labels)?;
        match metric_type {
            MetricType::Counter => ConstCounter::new(value.into()).encode(encoder)?,
            _ => ConstGauge::new(value.into()).encode(encoder)?,
        }
    }
    Ok(())
}

fn per_node<'a>(
    nodes: &'a [&'static str],
    values: &'a [u64],
) -> impl Iterator<Item = (Vec<(&'static str, String)>, f64)> + 'a {
    nodes.iter().zip(values).map(|(node, value)| (vec![("node", node.to_string())], *value as f64))
}

impl Collector for Exporter {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metrics = &self.0;
        let snapshot = metrics.current();
        let nodes = metrics.nodes;
        let e = &mut encoder;
        family(
            e,
            "build_info",
            "The pipeline this binary runs (value 1).",
            MetricType::Gauge,
            [(vec![("pipeline", metrics.pipeline.to_string()), ("version", metrics.version.to_string())], 1.0)],
        )?;
        gauge(e, "uptime_seconds", "Seconds since the binary started.", metrics.started.elapsed().as_secs_f64())?;
        counter(e, "records_read", "Source records read (blank lines excluded).", snapshot.records_read)?;
        family(
            e,
            "node_records_in",
            "Records that entered each node.",
            MetricType::Counter,
            per_node(nodes, &snapshot.records_in),
        )?;
        family(
            e,
            "node_records_out",
            "Records each node sent on.",
            MetricType::Counter,
            per_node(nodes, &snapshot.records_out),
        )?;
        family(
            e,
            "node_records_dropped",
            "Records dropped by design at each node (filtered, late, unconnected port).",
            MetricType::Counter,
            per_node(nodes, &snapshot.dropped),
        )?;
        family(
            e,
            "node_late_records_dropped",
            "Late records dropped at each node (no `late` port connected).",
            MetricType::Counter,
            per_node(nodes, &snapshot.late),
        )?;
        family(
            e,
            "node_future_records",
            "Records dead-lettered at each source as dated further ahead of the wall clock than maxFutureSkew.",
            MetricType::Counter,
            per_node(nodes, &snapshot.future),
        )?;
        counter(e, "dead_letters", "Records written to the dead-letter output.", snapshot.dead_letters)?;
        family(
            e,
            "sink_records_written",
            "Records written by each sink.",
            MetricType::Counter,
            snapshot.sinks.iter().map(|sink| (vec![("node", sink.node.to_string())], sink.written as f64)),
        )?;
        family(
            e,
            "sink_retries",
            "Retried requests (api-sink) and reconnects (redis-sink) of each sink.",
            MetricType::Counter,
            snapshot.sinks.iter().map(|sink| (vec![("node", sink.node.to_string())], sink.retries as f64)),
        )?;
        family(
            e,
            "sink_circuit_breaker_state",
            "Circuit breaker of each api-sink: 0 closed, 1 open, 2 half-open.",
            MetricType::Gauge,
            snapshot.sinks.iter().map(|sink| (vec![("node", sink.node.to_string())], sink.breaker_state as f64)),
        )?;
        family(
            e,
            "sink_unavailable_seconds",
            "Seconds each network sink has been unavailable (Redis unreachable, breaker not closed); 0 when available.",
            MetricType::Gauge,
            snapshot.sinks.iter().map(|sink| (vec![("node", sink.node.to_string())], sink.unavailable.as_secs_f64())),
        )?;
        family(
            e,
            "sink_circuit_breaker_opened",
            "Times each api-sink's circuit breaker opened.",
            MetricType::Counter,
            snapshot.sinks.iter().map(|sink| (vec![("node", sink.node.to_string())], sink.breaker_opened as f64)),
        )?;
        gauge(
            e,
            "backpressure_seconds",
            "Seconds the driver spent blocked on sinks (full queues, Redis down).",
            snapshot.backpressure.as_secs_f64(),
        )?;
        if snapshot.watermark != i64::MIN && snapshot.watermark != i64::MAX {
            gauge(
                e,
                "watermark_ms",
                "The pipeline's event-time watermark (ms since the epoch).",
                snapshot.watermark as f64,
            )?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as i64);
            gauge(
                e,
                "watermark_lag_seconds",
                "Wall clock minus the watermark.",
                (now - snapshot.watermark) as f64 / 1000.0,
            )?;
        }
        family(
            e,
            "kafka_consumer_lag",
            "Records between each assigned partition's end and the next record read (with a repartition topic: also the source partitions the instance copies).",
            MetricType::Gauge,
            snapshot.consumer_lag.iter().map(|(node, topic, partition, lag)| {
                (
                    vec![("node", node.to_string()), ("topic", topic.clone()), ("partition", partition.to_string())],
                    *lag as f64,
                )
            }),
        )?;
        family(
            e,
            "kafka_source_pauses",
            "Times a kafka-source paused its partitions because the pipeline was held up (a blocked sink).",
            MetricType::Counter,
            snapshot.source_pauses.iter().map(|(node, pauses)| (vec![("node", node.to_string())], *pauses as f64)),
        )?;
        counter(e, "checkpoints", "Checkpoints completed.", snapshot.checkpoints)?;
        counter(e, "checkpoint_failures", "Checkpoints that failed.", snapshot.checkpoint_failures)?;
        gauge(
            e,
            "checkpoint_last_duration_seconds",
            "Duration of the last checkpoint.",
            snapshot.checkpoint_last.as_secs_f64(),
        )?;
        gauge(
            e,
            "checkpoint_max_duration_seconds",
            "Longest checkpoint so far.",
            snapshot.checkpoint_max.as_secs_f64(),
        )?;
        gauge(
            e,
            "checkpoint_duration_seconds_total",
            "Time spent in checkpoints.",
            snapshot.checkpoint_total.as_secs_f64(),
        )?;
        gauge(e, "state_keys", "Keyed state entries (RocksDB: its estimate).", snapshot.state_keys as f64)?;
        gauge(e, "state_bytes", "Bytes of keyed state (RocksDB: live data estimate).", snapshot.state_bytes as f64)?;
        gauge(e, "timers_pending", "Timers registered and not yet fired.", snapshot.timers_pending as f64)?;
        Ok(())
    }
}

/// The metrics endpoint's address cannot be listened on.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on `{address}`: {error}")]
pub struct ServeError {
    pub address: String,
    pub error: std::io::Error,
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `address` until the process exits.
pub fn serve(address: &str, metrics: Arc<Metrics>) -> Result<SocketAddr, ServeError> {
    crate::http::serve(address, Arc::new(Probes(metrics)))
        .map_err(|error| ServeError { address: address.to_string(), error })
}

/// `/metrics`, `/healthz` and `/readyz` of one run.
struct Probes(Arc<Metrics>);

impl crate::http::Handler for Probes {
    fn get(&self, path: &str) -> crate::http::Response {
        respond(&self.0, path)
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn respond(metrics: &Arc<Metrics>, path: &str) -> (u16, &'static str, String) {
    match path {
        "/metrics" => (200, PROMETHEUS, metrics.render()),
        "/healthz" => match &*metrics.failed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) {
            Some(reason) => (503, TEXT, format!("failed: {reason}\n")),
            None => (200, TEXT, "ok\n".to_string()),
        },
        "/readyz" => {
            if !metrics.ready.load(Ordering::Acquire) {
                return (503, TEXT, "not ready\n".to_string());
            }
            match metrics.unavailable_sink(&metrics.current()) {
                Some((node, unavailable)) => {
                    (503, TEXT, format!("not ready: sink `{node}` unavailable for {} s\n", unavailable.as_secs()))
                }
                None => (200, TEXT, "ready\n".to_string()),
            }
        }
        _ => (404, TEXT, "not found; try /metrics, /healthz or /readyz\n".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_labels() {
        let metrics = Metrics::new("p", "1.0", &["in", "keep"]);
        metrics.publish(Snapshot {
            records_in: vec![5, 3],
            records_out: vec![5, 2],
            dropped: vec![0, 1],
            late: vec![0, 0],
            future: vec![3, 0],
            records_read: 5,
            sinks: vec![SinkHealth { node: "keep", written: 2, ..SinkHealth::default() }],
            watermark: 1_000,
            consumer_lag: vec![("in", "events".to_string(), 3, 42)],
            source_pauses: vec![("in", 2)],
            checkpoints: 2,
            ..Snapshot::default()
        });
        let text = metrics.render();
        assert!(text.contains("pulse_records_read_total 5"), "{text}");
        assert!(text.contains("pulse_node_records_in_total{node=\"keep\"} 3"), "{text}");
        assert!(text.contains("pulse_node_records_dropped_total{node=\"keep\"} 1"), "{text}");
        assert!(text.contains("pulse_sink_records_written_total{node=\"keep\"} 2"), "{text}");
        assert!(text.contains("pulse_kafka_consumer_lag{node=\"in\",topic=\"events\",partition=\"3\"} 42"), "{text}");
        assert!(text.contains("pulse_kafka_source_pauses_total{node=\"in\"} 2"), "{text}");
        assert!(text.contains("pulse_watermark_ms 1000"), "{text}");
        assert!(text.contains("pulse_node_future_records_total{node=\"in\"} 3"), "{text}");
        assert!(text.contains("pulse_checkpoints_total 2"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn health_and_readiness_follow_the_run() {
        let metrics = Metrics::new("p", "1.0", &[]);
        assert_eq!(respond(&metrics, "/readyz").0, 503);
        assert_eq!(respond(&metrics, "/healthz").0, 200);
        metrics.set_ready(true);
        assert_eq!(respond(&metrics, "/readyz").0, 200);
        metrics.set_failed("disk full");
        let (status, _, body) = respond(&metrics, "/healthz");
        assert_eq!((status, body.as_str()), (503, "failed: disk full\n"));
        assert_eq!(respond(&metrics, "/readyz").0, 503);
        assert_eq!(respond(&metrics, "/nope").0, 404);
    }
}
