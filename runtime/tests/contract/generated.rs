use pulse_runtime::generated::{
    Context, DeadEvent, Pipeline as _, PipelineSpec, SetupError, SinkKind, SinkSpec,
    SourceKind, SourceSpec, TimeDomain, Timer, TimerKind,
};
use pulse_runtime::generated::view::{Record, ABSENT};
use pulse_runtime::generated::state::ValueState;
use pulse_runtime::generated::{
    decode, func, json, operators, ops, schema, time, Regex, Val,
};
use std::borrow::Cow;
use std::collections::HashMap;
pulse_runtime::generated::view!(
    View0 { "event_name" => f0_event_name, "ts" => f1_ts, "userId" => f2_userId }
);
pulse_runtime::generated::view!(
    View1 { "event_name" => f0_event_name, "segments" => f1_segments, "userId" =>
    f2_userId }
);
pulse_runtime::generated::view!(View2_f0_counters { "visits_7d" => f0_visits_7d });
pulse_runtime::generated::view!(
    View2 { "counters" => f0_counters[n_f0_counters : View2_f0_counters], "userId" =>
    f1_userId }
);
pulse_runtime::generated::view!(View3 {});
struct Pipeline {
    env_0: String,
    env_1: String,
}
impl pulse_runtime::generated::Pipeline for Pipeline {
    const SPEC: PipelineSpec = PipelineSpec {
        name: "cart-abandonment",
        nodes: &[
            "events",
            "intent",
            "abandoned",
            "cap",
            "converted",
            "send_coupon",
            "over_cap",
        ],
        sources: &[
            SourceSpec {
                node: "events",
                kind: SourceKind::File {
                    path: "events.jsonl",
                },
                max_out_of_orderness: 0i64,
                max_future_skew: 86400000i64,
            },
        ],
        sinks: &[
            SinkSpec {
                node: "converted",
                kind: SinkKind::File {
                    path: "converted.jsonl",
                },
            },
            SinkSpec {
                node: "send_coupon",
                kind: SinkKind::Api {
                    method: "POST",
                    timeout_ms: 5000u64,
                    retries: 5u32,
                    breaker: None,
                    concurrency: 64u32,
                    rate_limit: None,
                    responses: false,
                    env: &["WHATSAPP_URL", "WHATSAPP_TOKEN"],
                },
            },
            SinkSpec {
                node: "over_cap",
                kind: SinkKind::File {
                    path: "over_cap.jsonl",
                },
            },
        ],
        checkpoint_interval_ms: None,
        state_backend_memory: false,
        state_layouts: &[
            (
                "intent",
                "segmentation/v2 bucket=3600000 counters=visits_7d segments=high_intent",
            ),
            ("abandoned", "user-event-trigger/v1"),
            ("cap", "capping/v1"),
        ],
        version: "",
        topology: pulse_runtime::generated::Topology {
            node_types: &[
                "file-source",
                "segmentation",
                "user-event-trigger",
                "capping",
                "file-sink",
                "api-sink",
                "file-sink",
            ],
            ports: &[
                &["out"],
                &["out", "late"],
                &["fired", "cancelled", "late"],
                &["out", "capped", "late"],
                &[],
                &["responses"],
                &[],
            ],
            keyed: &[false, true, true, true, false, false, false],
            edges: &[
                pulse_runtime::generated::EdgeSpec {
                    from: 0u32,
                    port: 0u32,
                    to: 1u32,
                    to_port: "in",
                },
                pulse_runtime::generated::EdgeSpec {
                    from: 1u32,
                    port: 0u32,
                    to: 2u32,
                    to_port: "in",
                },
                pulse_runtime::generated::EdgeSpec {
                    from: 2u32,
                    port: 0u32,
                    to: 3u32,
                    to_port: "in",
                },
                pulse_runtime::generated::EdgeSpec {
                    from: 2u32,
                    port: 1u32,
                    to: 4u32,
                    to_port: "in",
                },
                pulse_runtime::generated::EdgeSpec {
                    from: 3u32,
                    port: 0u32,
                    to: 5u32,
                    to_port: "in",
                },
                pulse_runtime::generated::EdgeSpec {
                    from: 3u32,
                    port: 1u32,
                    to: 6u32,
                    to_port: "in",
                },
            ],
        },
    };
    const TRACE_KEYS: &'static [&'static [&'static str]] = &[&["userId"]];
    const EDGES: &'static [(u32, &'static str, u32)] = &[
        (0u32, "out", 1u32),
        (1u32, "out", 2u32),
        (2u32, "fired", 3u32),
        (2u32, "cancelled", 4u32),
        (3u32, "out", 5u32),
        (3u32, "capped", 6u32),
    ];
    fn new() -> Result<Self, SetupError> {
        Ok(Pipeline {
            env_0: std::env::var("WHATSAPP_URL").unwrap_or_default(),
            env_1: std::env::var("WHATSAPP_TOKEN").unwrap_or_default(),
        })
    }
    fn on_record(&mut self, source: usize, line: &str, cx: &mut Context) {
        match source {
            0usize => self.source_0(line, cx),
            _ => unreachable!("the runtime only passes declared sources"),
        }
        self.finish_step(cx);
    }
    fn on_timer(&mut self, timer: Timer, cx: &mut Context) {
        cx.trace_timer(&timer);
        self.fire(timer, cx);
        self.finish_step(cx);
    }
}
impl Pipeline {
    /// Source `events`.
    fn source_0(&mut self, line: &str, cx: &mut Context) {
        let view: View0 = match decode::parse_event(line) {
            Ok(view) => view,
            Err(dead) => {
                cx.dead_letter_at(0usize, &dead.reason, dead.event);
                return;
            }
        };
        if let Err(problem) = schema::check(
            &view.f0_event_name,
            schema::FieldType::String,
            false,
        ) {
            cx.dead_letter_at(
                0usize,
                &format!("schema: field `{}`: {}", "event_name", problem),
                DeadEvent::Json(Cow::Borrowed(line)),
            );
            return;
        }
        if let Err(problem) = schema::check(
            &view.f2_userId,
            schema::FieldType::String,
            true,
        ) {
            cx.dead_letter_at(
                0usize,
                &format!("schema: field `{}`: {}", "userId", problem),
                DeadEvent::Json(Cow::Borrowed(line)),
            );
            return;
        }
        if let Err(problem) = schema::check(
            &view.f1_ts,
            schema::FieldType::Timestamp,
            false,
        ) {
            cx.dead_letter_at(
                0usize,
                &format!("schema: field `{}`: {}", "ts", problem),
                DeadEvent::Json(Cow::Borrowed(line)),
            );
            return;
        }
        let event_time = match time::event_time(&view.f1_ts) {
            Ok(event_time) => event_time,
            Err(problem) => {
                cx.dead_letter_at(
                    0usize,
                    &format!("event-time: field `{}`: {}", "ts", problem),
                    DeadEvent::Json(Cow::Borrowed(line)),
                );
                return;
            }
        };
        if event_time > cx.future_limit() {
            cx.dead_letter_future(0usize, event_time, line);
            return;
        }
        cx.observe_event_time(event_time);
        let record = Record {
            text: line,
            event_time,
            entry_time: event_time,
        };
        cx.node_out_port(0usize, 0usize);
        cx.node_in(1usize);
        self.node_1_intent(cx, record, &view);
    }
    /// `intent` (segmentation)
    fn node_1_intent(&mut self, cx: &mut Context, record: Record<'_>, view: &View0<'_>) {
        if record.event_time < cx.watermark().saturating_sub(0i64) {
            if cx.tracing() {
                cx.trace(
                    1u32,
                    "late",
                    record.event_time,
                    "",
                    &[
                        (
                            "watermark",
                            pulse_runtime::generated::TraceValue::Int(cx.watermark()),
                        ),
                        (
                            "allowed_lateness",
                            pulse_runtime::generated::TraceValue::Int(0i64),
                        ),
                    ],
                );
            }
            cx.dead_letter_at(
                1usize,
                "late at node 'intent': event time is below the watermark",
                DeadEvent::Json(Cow::Borrowed(record.text)),
            );
            return;
        }
        let key_value = &view.f2_userId;
        let Some(key) = operators::key_bytes(key_value) else {
            cx.dead_letter_at(
                1usize,
                &format!(
                    "null-key: field `{}` is null or absent at node `{}`", "userId",
                    "intent"
                ),
                DeadEvent::Json(Cow::Borrowed(record.text)),
            );
            return;
        };
        cx.key_seen(1usize, &key);
        let state: ValueState<operators::SegmentationState> = ValueState::new("intent");
        let previous = match state.get(cx.state(), &key) {
            Ok(previous) => previous,
            Err(error) => {
                cx.dead_letter_at(
                    1usize,
                    &format!("state: {}", error),
                    DeadEvent::Json(Cow::Borrowed(record.text)),
                );
                return;
            }
        };
        static NAMES: operators::SegmentNames = operators::SegmentNames {
            counters: &[operators::name_id("visits_7d")],
            segments: &[operators::name_id("high_intent")],
        };
        let mut current = operators::SegmentationState::for_event(
            previous,
            record.event_time,
            None,
            &NAMES,
        );
        let matches = [ops::eq_str(&view.f0_event_name, "store_visit")];
        let values = current
            .update(record.event_time, 3600000u64, &matches, &[604800000u64]);
        current.prune(cx.watermark().saturating_sub(0i64), 3600000u64, 604800000u64);
        let before = if cx.tracing() { current.segments.clone() } else { Vec::new() };
        let mut active: Vec<u64> = Vec::new();
        if ops::ge(&Val::Int(values[0usize]), &Val::Int(10i64)) {
            active.push(0u64);
        }
        current.segments_changed(&active);
        let emit = true;
        if cx.tracing() {
            cx.trace(
                1u32,
                "segmentation",
                record.event_time,
                if emit { "out" } else { "" },
                &[
                    (
                        "counters",
                        pulse_runtime::generated::TraceValue::Counts(
                            &["visits_7d"],
                            &values,
                        ),
                    ),
                    (
                        "segments",
                        pulse_runtime::generated::TraceValue::Segments(
                            &["high_intent"],
                            &active,
                            &before,
                        ),
                    ),
                ],
            );
        }
        state.put(cx.state(), &key, &current);
        if !emit {
            cx.drop_record(1usize);
            return;
        }
        let (counters_value, segments_value) = operators::segmentation_fields(
            &["visits_7d"],
            &values,
            &["high_intent"],
            &active,
        );
        let text = match pulse_runtime::generated::reshape::reshape(
            record.text,
            &[],
            &[],
            &[(&["counters"][..], counters_value), (&["segments"][..], segments_value)],
        ) {
            Ok(text) => text,
            Err(problem) => {
                cx.dead_letter_at(
                    1usize,
                    &format!("segmentation: node `{}`: {}", "intent", problem),
                    DeadEvent::Json(Cow::Borrowed(record.text)),
                );
                return;
            }
        };
        let record = Record { text: &text, ..record };
        let view: View1 = match decode::parse_event(record.text) {
            Ok(view) => view,
            Err(dead) => {
                cx.dead_letter_at(
                    1usize,
                    &format!(
                        "internal: output of `{}` does not parse: {}", "intent", dead
                        .reason
                    ),
                    dead.event,
                );
                return;
            }
        };
        cx.node_out_port(1usize, 0usize);
        cx.node_in(2usize);
        self.node_2_abandoned(cx, record, &view);
    }
    /// `abandoned` (user-event-trigger)
    fn node_2_abandoned(
        &mut self,
        cx: &mut Context,
        record: Record<'_>,
        view: &View1<'_>,
    ) {
        if record.event_time < cx.watermark().saturating_sub(0i64) {
            if cx.tracing() {
                cx.trace(
                    2u32,
                    "late",
                    record.event_time,
                    "",
                    &[
                        (
                            "watermark",
                            pulse_runtime::generated::TraceValue::Int(cx.watermark()),
                        ),
                        (
                            "allowed_lateness",
                            pulse_runtime::generated::TraceValue::Int(0i64),
                        ),
                    ],
                );
            }
            cx.dead_letter_at(
                2usize,
                "late at node 'abandoned': event time is below the watermark",
                DeadEvent::Json(Cow::Borrowed(record.text)),
            );
            return;
        }
        let key_value = &view.f2_userId;
        let Some(key) = operators::key_bytes(key_value) else {
            cx.dead_letter_at(
                2usize,
                &format!(
                    "null-key: field `{}` is null or absent at node `{}`", "userId",
                    "abandoned"
                ),
                DeadEvent::Json(Cow::Borrowed(record.text)),
            );
            return;
        };
        cx.key_seen(2usize, &key);
        let state: ValueState<operators::TriggerState> = ValueState::new("abandoned");
        let previous = match state.get(cx.state(), &key) {
            Ok(previous) => previous,
            Err(error) => {
                cx.dead_letter_at(
                    2usize,
                    &format!("state: {}", error),
                    DeadEvent::Json(Cow::Borrowed(record.text)),
                );
                return;
            }
        };
        let mut current = previous;
        let input = operators::TriggerInput {
            time: record.event_time,
            is_start: (ops::eq_str(&view.f0_event_name, "add_to_cart")
                && ops::in_array(
                    &Val::Str(Cow::Borrowed("high_intent")),
                    &view.f1_segments,
                )),
            is_cancel: ops::eq_str(&view.f0_event_name, "checkout"),
            event: record.text,
            event_time: record.event_time,
            entry_time: record.entry_time,
        };
        let step = operators::trigger(&mut current, input, 1800000u64);
        let cancels = step.cancelled.is_some();
        match &current {
            Some(open) => state.put(cx.state(), &key, open),
            None => state.clear(cx.state(), &key),
        }
        if step.opened.is_none() {
            cx.drop_record(2usize);
        }
        if let Some(deadline) = step.opened {
            cx.schedule(Timer {
                node: 2u32,
                time: deadline,
                domain: TimeDomain::Event,
                kind: TimerKind::State,
                event_time: record.event_time,
                entry_time: record.entry_time,
                key: Some(String::from_utf8_lossy(&key).into()),
            });
        }
        if let Some(expired) = step.expired {
            if cx.tracing() {
                cx.trace(
                    2u32,
                    "trigger-fired",
                    expired.deadline,
                    "fired",
                    &[
                        (
                            "opened_at",
                            pulse_runtime::generated::TraceValue::Int(expired.start_time),
                        ),
                        (
                            "start",
                            pulse_runtime::generated::TraceValue::Json(
                                &expired.start_event,
                            ),
                        ),
                    ],
                );
            }
            let record = Record {
                text: &expired.start_event,
                event_time: expired.deadline,
                entry_time: expired.start_entry_time,
            };
            let view: View2 = match decode::parse_event(record.text) {
                Ok(view) => view,
                Err(dead) => {
                    cx.dead_letter_at(
                        2usize,
                        &format!(
                            "internal: output of `{}` does not parse: {}", "abandoned",
                            dead.reason
                        ),
                        dead.event,
                    );
                    return;
                }
            };
            cx.node_out_port(2usize, 0usize);
            cx.node_in(3usize);
            self.node_3_cap(cx, record, &view);
        }
        if let Some(closed) = step.cancelled {
            if cx.tracing() {
                cx.trace(
                    2u32,
                    "trigger-cancelled",
                    record.event_time,
                    "cancelled",
                    &[
                        (
                            "is_start",
                            pulse_runtime::generated::TraceValue::Bool(input.is_start),
                        ),
                        (
                            "is_cancel",
                            pulse_runtime::generated::TraceValue::Bool(input.is_cancel),
                        ),
                        (
                            "event_name",
                            pulse_runtime::generated::TraceValue::Val(
                                &view.f0_event_name,
                            ),
                        ),
                        (
                            "segments",
                            pulse_runtime::generated::TraceValue::Val(&view.f1_segments),
                        ),
                        (
                            "opened_at",
                            pulse_runtime::generated::TraceValue::Int(closed.start_time),
                        ),
                        (
                            "start",
                            pulse_runtime::generated::TraceValue::Json(
                                &closed.start_event,
                            ),
                        ),
                    ],
                );
            }
            let record = Record {
                text: &closed.start_event,
                event_time: record.event_time,
                entry_time: closed.start_entry_time,
            };
            let view: View2 = match decode::parse_event(record.text) {
                Ok(view) => view,
                Err(dead) => {
                    cx.dead_letter_at(
                        2usize,
                        &format!(
                            "internal: output of `{}` does not parse: {}", "abandoned",
                            dead.reason
                        ),
                        dead.event,
                    );
                    return;
                }
            };
            cx.node_out_port(2usize, 1usize);
            cx.node_in(4usize);
            self.node_4_converted(cx, record, &view);
        }
        if cx.tracing() {
            if let Some(deadline) = step.opened {
                if cx.tracing() {
                    cx.trace(
                        2u32,
                        "trigger-opened",
                        record.event_time,
                        "",
                        &[
                            (
                                "is_start",
                                pulse_runtime::generated::TraceValue::Bool(input.is_start),
                            ),
                            (
                                "is_cancel",
                                pulse_runtime::generated::TraceValue::Bool(input.is_cancel),
                            ),
                            (
                                "event_name",
                                pulse_runtime::generated::TraceValue::Val(
                                    &view.f0_event_name,
                                ),
                            ),
                            (
                                "segments",
                                pulse_runtime::generated::TraceValue::Val(&view.f1_segments),
                            ),
                            (
                                "until",
                                pulse_runtime::generated::TraceValue::Int(deadline),
                            ),
                        ],
                    );
                }
            } else if !cancels {
                if cx.tracing() {
                    cx.trace(
                        2u32,
                        "trigger-ignored",
                        record.event_time,
                        "",
                        &[
                            (
                                "is_start",
                                pulse_runtime::generated::TraceValue::Bool(input.is_start),
                            ),
                            (
                                "is_cancel",
                                pulse_runtime::generated::TraceValue::Bool(input.is_cancel),
                            ),
                            (
                                "event_name",
                                pulse_runtime::generated::TraceValue::Val(
                                    &view.f0_event_name,
                                ),
                            ),
                            (
                                "segments",
                                pulse_runtime::generated::TraceValue::Val(&view.f1_segments),
                            ),
                            (
                                "open_until",
                                pulse_runtime::generated::TraceValue::OptInt(
                                    current.as_ref().map(|open| open.deadline),
                                ),
                            ),
                        ],
                    );
                }
            }
        }
    }
    /// `cap` (capping)
    fn node_3_cap(&mut self, cx: &mut Context, record: Record<'_>, view: &View2<'_>) {
        if record.event_time < cx.watermark().saturating_sub(0i64) {
            if cx.tracing() {
                cx.trace(
                    3u32,
                    "late",
                    record.event_time,
                    "",
                    &[
                        (
                            "watermark",
                            pulse_runtime::generated::TraceValue::Int(cx.watermark()),
                        ),
                        (
                            "allowed_lateness",
                            pulse_runtime::generated::TraceValue::Int(0i64),
                        ),
                    ],
                );
            }
            cx.dead_letter_at(
                3usize,
                "late at node 'cap': event time is below the watermark",
                DeadEvent::Json(Cow::Borrowed(record.text)),
            );
            return;
        }
        let key_value = &view.f1_userId;
        let Some(key) = operators::key_bytes(key_value) else {
            cx.dead_letter_at(
                3usize,
                &format!(
                    "null-key: field `{}` is null or absent at node `{}`", "userId",
                    "cap"
                ),
                DeadEvent::Json(Cow::Borrowed(record.text)),
            );
            return;
        };
        cx.key_seen(3usize, &key);
        let state: ValueState<operators::CappingState> = ValueState::new("cap");
        let previous = match state.get(cx.state(), &key) {
            Ok(previous) => previous,
            Err(error) => {
                cx.dead_letter_at(
                    3usize,
                    &format!("state: {}", error),
                    DeadEvent::Json(Cow::Borrowed(record.text)),
                );
                return;
            }
        };
        let (passes, next) = operators::capping(
            previous,
            record.event_time,
            5u64,
            604800000u64,
            None,
            cx.watermark().saturating_sub(0i64),
        );
        if cx.tracing() {
            let count = operators::capping_count(
                next.as_ref(),
                record.event_time,
                604800000u64,
            ) as i64 - i64::from(passes);
            if cx.tracing() {
                cx.trace(
                    3u32,
                    "capping",
                    record.event_time,
                    if passes { "out" } else { "capped" },
                    &[
                        ("count", pulse_runtime::generated::TraceValue::Int(count)),
                        ("max", pulse_runtime::generated::TraceValue::Int(5u64 as i64)),
                        (
                            "window",
                            pulse_runtime::generated::TraceValue::Int(
                                604800000u64 as i64,
                            ),
                        ),
                    ],
                );
            }
        }
        match next {
            Some(next) => state.put(cx.state(), &key, &next),
            None => state.clear(cx.state(), &key),
        }
        if passes {
            cx.node_out_port(3usize, 0usize);
            cx.node_in(5usize);
            self.node_5_send_coupon(cx, record, view);
        } else {
            cx.node_out_port(3usize, 1usize);
            cx.node_in(6usize);
            self.node_6_over_cap(cx, record, view);
        }
    }
    /// `converted` (file-sink)
    fn node_4_converted(
        &mut self,
        cx: &mut Context,
        record: Record<'_>,
        view: &View2<'_>,
    ) {
        cx.emit(0usize, record.event_time, record.text);
    }
    /// `send_coupon` (api-sink)
    fn node_5_send_coupon(
        &mut self,
        cx: &mut Context,
        record: Record<'_>,
        view: &View2<'_>,
    ) {
        let live = cx.sink_live(1usize);
        let mut t_url = String::new();
        t_url.push_str(if live { &self.env_0 } else { "${WHATSAPP_URL}" });
        t_url.push_str("/v1/messages");
        let mut t_header_0 = String::new();
        t_header_0.push_str("Bearer ");
        t_header_0.push_str(if live { &self.env_1 } else { "***" });
        let mut t_body = String::new();
        t_body.push_str("{");
        t_body.push_str("\"to\":");
        let value = &view.f1_userId;
        if value.is_null() {
            cx.dead_letter_at(
                5usize,
                "template: field `userId` is null at node `send_coupon`",
                DeadEvent::Json(Cow::Borrowed(record.text)),
            );
            return;
        }
        json::write_val(&mut t_body, value);
        t_body.push_str(",\"template\":");
        let mut t_text_0 = String::new();
        t_text_0.push_str("cart_coupon_10");
        json::write_str(&mut t_body, &t_text_0);
        t_body.push_str(",\"params\":");
        t_body.push_str("{");
        t_body.push_str("\"name\":");
        let mut t_text_1 = String::new();
        t_text_1.push_str("[[firstName]]");
        json::write_str(&mut t_body, &t_text_1);
        t_body.push_str(",\"discount\":");
        let mut t_text_2 = String::new();
        t_text_2.push_str("10%");
        json::write_str(&mut t_body, &t_text_2);
        t_body.push_str(",\"visits\":");
        let value = match &view.n_f0_counters {
            Some(inner_0) => &inner_0.f0_visits_7d,
            None => &ABSENT,
        };
        if value.is_null() {
            cx.dead_letter_at(
                5usize,
                "template: field `counters.visits_7d` is null at node `send_coupon`",
                DeadEvent::Json(Cow::Borrowed(record.text)),
            );
            return;
        }
        json::write_val(&mut t_body, value);
        t_body.push_str("}");
        t_body.push_str("}");
        let t_idempotency = pulse_runtime::generated::text::text_form(&view.f1_userId);
        if !live {
            cx.emit(1usize, record.event_time, record.text);
            cx.preview_api(
                1usize,
                record.event_time,
                &t_url,
                &[("Authorization", t_header_0)],
                Some(t_body.as_str()),
                &t_idempotency,
            );
            return;
        }
        cx.api(
            1usize,
            record.text,
            record.event_time,
            t_url,
            vec![("Authorization", t_header_0)],
            Some(t_body),
            &t_idempotency,
        );
    }
    /// `over_cap` (file-sink)
    fn node_6_over_cap(
        &mut self,
        cx: &mut Context,
        record: Record<'_>,
        view: &View2<'_>,
    ) {
        cx.emit(2usize, record.event_time, record.text);
    }
    fn fire(&mut self, timer: Timer, cx: &mut Context) {
        match timer.node {
            2u32 => {
                let key = timer.key.as_deref().unwrap_or("").as_bytes().to_vec();
                let state: ValueState<operators::TriggerState> = ValueState::new(
                    "abandoned",
                );
                let current = match state.get(cx.state(), &key) {
                    Ok(Some(current)) => current,
                    Ok(None) => return,
                    Err(error) => {
                        cx.dead_letter_timer(
                            2usize,
                            &format!("state: {}", error),
                            &timer,
                        );
                        return;
                    }
                };
                let open = current;
                if open.deadline != timer.time {
                    return;
                }
                state.clear(cx.state(), &key);
                if cx.tracing() {
                    cx.trace(
                        2u32,
                        "trigger-fired",
                        timer.time,
                        "fired",
                        &[
                            (
                                "opened_at",
                                pulse_runtime::generated::TraceValue::Int(open.start_time),
                            ),
                            (
                                "start",
                                pulse_runtime::generated::TraceValue::Json(
                                    &open.start_event,
                                ),
                            ),
                        ],
                    );
                }
                let record = Record {
                    text: &open.start_event,
                    event_time: timer.time,
                    entry_time: open.start_entry_time,
                };
                let view: View2 = match decode::parse_event(record.text) {
                    Ok(view) => view,
                    Err(dead) => {
                        cx.dead_letter_at(
                            2usize,
                            &format!(
                                "internal: output of `{}` does not parse: {}", "abandoned",
                                dead.reason
                            ),
                            dead.event,
                        );
                        return;
                    }
                };
                cx.node_out_port(2usize, 0usize);
                cx.node_in(3usize);
                self.node_3_cap(cx, record, &view);
            }
            _ => unreachable!("timers are only registered by timed operators"),
        }
    }
    fn finish_step(&mut self, cx: &mut Context) {}
}
fn main() -> std::process::ExitCode {
    pulse_runtime::generated::run::<Pipeline>()
}
