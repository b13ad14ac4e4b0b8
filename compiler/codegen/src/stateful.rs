//! Code for the keyed, stateful operators: dedupe, capping, segmentation, user-event-trigger,
//! has-done-event and window-aggregate. The decisions live in `pulse_stdlib::operators`; this
//! module wires conditions, keys, state, timers and outputs around them.

use crate::expr;
use crate::segments::{access, ViewTree};
use crate::Generator;
use proc_macro2::TokenStream;
use pulse_ir::{AggregateFn, NodeIdx, Operator, Path, Refresh, TimeDomain, Timing, WindowSpec};
use quote::{format_ident, quote};

fn ttl_tokens(ttl_ms: Option<u64>) -> TokenStream {
    match ttl_ms {
        Some(ttl) => quote! { Some(#ttl) },
        None => quote! { None },
    }
}

/// The record's time for a timed operator: event time, or the arrival clock (G35).
fn time_of(timing: &Timing) -> TokenStream {
    match timing.domain {
        TimeDomain::Event => quote! { record.event_time },
        TimeDomain::Processing => quote! { cx.arrival() },
    }
}

fn domain_tokens(timing: &Timing) -> TokenStream {
    match timing.domain {
        TimeDomain::Event => quote! { TimeDomain::Event },
        TimeDomain::Processing => quote! { TimeDomain::Processing },
    }
}

/// The lowest time not yet late, below which state can be pruned.
fn horizon(timing: &Timing) -> TokenStream {
    let allowed = timing.allowed_lateness_ms as i64;
    match timing.domain {
        TimeDomain::Event => quote! { cx.watermark().saturating_sub(#allowed) },
        TimeDomain::Processing => quote! { cx.arrival() },
    }
}

impl Generator<'_> {
    /// `let key: Vec<u8>`, or a `null-key` dead letter (G36).
    pub(crate) fn key_check(&self, idx: NodeIdx, key_by: &Path, tree: &ViewTree) -> TokenStream {
        let access = access(quote! { view }, tree, &key_by.0);
        let dotted = key_by.dotted();
        let node_id = &self.pipeline.nodes[idx].id;
        quote! {
            let key_value = #access;
            let Some(key) = operators::key_bytes(key_value) else {
                cx.dead_letter_at(
                    #idx,
                    &format!("null-key: field `{}` is null or absent at node `{}`", #dotted, #node_id),
                    DeadEvent::Json(Cow::Borrowed(record.text)),
                );
                return;
            };
            cx.key_seen(#idx, &key);
        }
    }

    /// Loads a key's state; a value that does not decode stops the record with a dead letter
    /// naming the node, and the state is left untouched.
    fn load_state(&self, idx: NodeIdx, state_type: TokenStream) -> TokenStream {
        let node_id = &self.pipeline.nodes[idx].id;
        quote! {
            let state: ValueState<#state_type> = ValueState::new(#node_id);
            let previous = match state.get(cx.state(), &key) {
                Ok(previous) => previous,
                Err(error) => {
                    cx.dead_letter_at(#idx, &format!("state: {}", error), DeadEvent::Json(Cow::Borrowed(record.text)));
                    return;
                }
            };
        }
    }

    pub(crate) fn stateful_body(&mut self, idx: NodeIdx, tree: &ViewTree) -> Option<TokenStream> {
        let pipeline = self.pipeline;
        let node = &pipeline.nodes[idx];
        let body = match &node.op {
            Operator::Dedupe { key_by, within_ms, ttl_ms } => {
                let key = self.key_check(idx, key_by, tree);
                let load = self.load_state(idx, quote! { operators::DedupeState });
                let ttl = ttl_tokens(*ttl_ms);
                let forward = self.forward(idx, "out", quote! { record }, quote! { view });
                let trace = self.trace(
                    idx,
                    "dedupe",
                    quote! { record.event_time },
                    quote! { if passes { "out" } else { "" } },
                    &[
                        quote! { ("duplicate", pulse_runtime::generated::TraceValue::Bool(!passes)) },
                        quote! { ("last_seen", pulse_runtime::generated::TraceValue::OptInt(last_seen)) },
                    ],
                );
                quote! {
                    #key
                    #load
                    let last_seen = if cx.tracing() { previous.map(|seen| seen.max_time) } else { None };
                    let (passes, next) = operators::dedupe(previous, record.event_time, #within_ms, #ttl);
                    state.put(cx.state(), &key, &next);
                    #trace
                    if passes {
                        #forward
                    } else {
                        cx.drop_record(#idx);
                    }
                }
            }
            Operator::Capping { key_by, max, window_ms, timing, ttl_ms } => {
                let late = self.late_check(idx, timing);
                let key = self.key_check(idx, key_by, tree);
                let load = self.load_state(idx, quote! { operators::CappingState });
                let (ttl, time, horizon) = (ttl_tokens(*ttl_ms), time_of(timing), horizon(timing));
                let out = self.forward(idx, "out", quote! { record }, quote! { view });
                let capped = self.forward(idx, "capped", quote! { record }, quote! { view });
                let trace = self.trace(
                    idx,
                    "capping",
                    time.clone(),
                    quote! { if passes { "out" } else { "capped" } },
                    &[
                        quote! { ("count", pulse_runtime::generated::TraceValue::Int(count)) },
                        quote! { ("max", pulse_runtime::generated::TraceValue::Int(#max as i64)) },
                        quote! { ("window", pulse_runtime::generated::TraceValue::Int(#window_ms as i64)) },
                    ],
                );
                quote! {
                    #late
                    #key
                    #load
                    let (passes, next) = operators::capping(previous, #time, #max, #window_ms, #ttl, #horizon);
                    if cx.tracing() {
                        // Earlier passed events in the window: the state after, less this one.
                        let count = operators::capping_count(next.as_ref(), #time, #window_ms) as i64 - i64::from(passes);
                        #trace
                    }
                    match next {
                        Some(next) => state.put(cx.state(), &key, &next),
                        None => state.clear(cx.state(), &key),
                    }
                    if passes {
                        #out
                    } else {
                        #capped
                    }
                }
            }
            Operator::Segmentation { key_by, bucket_ms, counters, segments, refresh, timing, ttl_ms, .. } => {
                let late = self.late_check(idx, timing);
                let key = self.key_check(idx, key_by, tree);
                let load = self.load_state(idx, quote! { operators::SegmentationState });
                let (ttl, time, horizon) = (ttl_tokens(*ttl_ms), time_of(timing), horizon(timing));
                let matches: Vec<TokenStream> = counters
                    .iter()
                    .map(|counter| match &counter.condition {
                        Some(condition) => expr::condition(condition, tree, &mut self.regexes),
                        None => quote! { true },
                    })
                    .collect();
                let windows: Vec<u64> = counters.iter().map(|counter| counter.window_ms).collect();
                let longest = windows.iter().copied().max().unwrap_or(0);
                let names = segment_names(counters, segments);
                let decide = self.segment_decision(idx);
                let emit_record = self.segment_record(idx);
                let trace_segments = self.trace_segments(idx, "segmentation", time.clone());
                let trace_refresh = self.trace_segments(idx, "segmentation-refresh", quote! { at });
                let (refresh_due, refresh_plan) = match refresh {
                    Refresh::Never => (quote! {}, quote! {}),
                    Refresh::OnExpiry => {
                        let schedule = self.refresh_timer(idx, timing);
                        (
                            quote! {
                                // The key's boundaries passed before this event emit first (G53).
                                while let Some(at) = current.refresh_due(#time) {
                                    let Some((values, event)) = current.refresh_step(at, #bucket_ms, &[#(#windows),*], #ttl) else { break };
                                    let before = if cx.tracing() { current.segments.clone() } else { Vec::new() };
                                    #decide
                                    #trace_refresh
                                    if emit {
                                        cx.create(#idx);
                                        let record = Record { text: &event, event_time: at, entry_time: at };
                                        #emit_record
                                    }
                                }
                            },
                            quote! {
                                if let Some(at) = current.plan_refresh(record.text, #time, #bucket_ms, &[#(#windows),*]) {
                                    #schedule
                                }
                            },
                        )
                    }
                };
                quote! {
                    #late
                    #key
                    #load
                    #names
                    let mut current = operators::SegmentationState::for_event(previous, #time, #ttl, &NAMES);
                    #refresh_due
                    let matches = [#(#matches),*];
                    let values = current.update(#time, #bucket_ms, &matches, &[#(#windows),*]);
                    current.prune(#horizon, #bucket_ms, #longest);
                    let before = if cx.tracing() { current.segments.clone() } else { Vec::new() };
                    #decide
                    #trace_segments
                    #refresh_plan
                    state.put(cx.state(), &key, &current);
                    if !emit {
                        cx.drop_record(#idx);
                        return;
                    }
                    #emit_record
                }
            }
            Operator::UserEventTrigger { key_by, start, cancel, within_ms, timing, .. } => {
                let late = self.late_check(idx, timing);
                let key = self.key_check(idx, key_by, tree);
                let load = self.load_state(idx, quote! { operators::TriggerState });
                let time = time_of(timing);
                let domain = domain_tokens(timing);
                let fields = self.trace_fields_of(&[start, cancel], tree);
                let is_start = expr::condition(start, tree, &mut self.regexes);
                let is_cancel = expr::condition(cancel, tree, &mut self.regexes);
                let cancelled = self.forward_new_text(idx, "cancelled");
                let fired = self.forward_new_text(idx, "fired");
                let fired_time = match timing.domain {
                    TimeDomain::Event => quote! { expired.deadline },
                    TimeDomain::Processing => quote! { expired.start_event_time },
                };
                let trace_fired = self.trace(
                    idx,
                    "trigger-fired",
                    fired_time.clone(),
                    quote! { "fired" },
                    &[
                        quote! { ("opened_at", pulse_runtime::generated::TraceValue::Int(expired.start_time)) },
                        quote! { ("start", pulse_runtime::generated::TraceValue::Json(&expired.start_event)) },
                    ],
                );
                let mut step_fields = vec![
                    quote! { ("is_start", pulse_runtime::generated::TraceValue::Bool(input.is_start)) },
                    quote! { ("is_cancel", pulse_runtime::generated::TraceValue::Bool(input.is_cancel)) },
                ];
                step_fields.extend(fields);
                let mut cancel_fields = step_fields.clone();
                cancel_fields.extend([
                    quote! { ("opened_at", pulse_runtime::generated::TraceValue::Int(closed.start_time)) },
                    quote! { ("start", pulse_runtime::generated::TraceValue::Json(&closed.start_event)) },
                ]);
                let trace_cancelled =
                    self.trace(idx, "trigger-cancelled", time.clone(), quote! { "cancelled" }, &cancel_fields);
                let mut open_fields = step_fields.clone();
                open_fields.push(quote! { ("until", pulse_runtime::generated::TraceValue::Int(deadline)) });
                let trace_opened = self.trace(idx, "trigger-opened", time.clone(), quote! { "" }, &open_fields);
                let mut ignored_fields = step_fields;
                ignored_fields.push(quote! { ("open_until", pulse_runtime::generated::TraceValue::OptInt(current.as_ref().map(|open| open.deadline))) });
                let trace_ignored = self.trace(idx, "trigger-ignored", time.clone(), quote! { "" }, &ignored_fields);
                let node_u32 = idx as u32;
                quote! {
                    #late
                    #key
                    #load
                    let mut current = previous;
                    let input = operators::TriggerInput {
                        time: #time,
                        is_start: #is_start,
                        is_cancel: #is_cancel,
                        event: record.text,
                        event_time: record.event_time,
                        entry_time: record.entry_time,
                    };
                    let step = operators::trigger(&mut current, input, #within_ms);
                    let cancels = step.cancelled.is_some();
                    match &current {
                        Some(open) => state.put(cx.state(), &key, open),
                        None => state.clear(cx.state(), &key),
                    }
                    if step.opened.is_none() {
                        // Neither a window's start nor kept: the record goes no further.
                        cx.drop_record(#idx);
                    }
                    if let Some(deadline) = step.opened {
                        cx.schedule(Timer {
                            node: #node_u32,
                            time: deadline,
                            domain: #domain,
                            kind: TimerKind::State,
                            event_time: record.event_time,
                            entry_time: record.entry_time,
                            key: Some(String::from_utf8_lossy(&key).into()),
                        });
                    }
                    if let Some(expired) = step.expired {
                        // G53: the key's window that ended before this event fires first: no
                        // output of this event precedes it.
                        #trace_fired
                        let record = Record { text: &expired.start_event, event_time: #fired_time, entry_time: expired.start_entry_time };
                        #fired
                    }
                    if let Some(closed) = step.cancelled {
                        #trace_cancelled
                        // G33: `cancelled` carries the cancel event's time.
                        let record = Record { text: &closed.start_event, event_time: record.event_time, entry_time: closed.start_entry_time };
                        #cancelled
                    }
                    if cx.tracing() {
                        if let Some(deadline) = step.opened {
                            #trace_opened
                        } else if !cancels {
                            #trace_ignored
                        }
                    }
                }
            }
            Operator::WindowAggregate { key_by, window, aggregates, timing, .. } => {
                let late = self.late_check(idx, timing);
                let key = self.key_check(idx, key_by, tree);
                let load = self.load_state(idx, quote! { operators::WindowsState });
                let time = time_of(timing);
                let domain = domain_tokens(timing);
                let kinds = aggregate_kinds(aggregates);
                let values: Vec<TokenStream> = aggregates
                    .iter()
                    .map(|aggregate| match &aggregate.field {
                        Some(path) => access(quote! { view }, tree, &path.0),
                        None => quote! { &ABSENT },
                    })
                    .collect();
                let names: Vec<&str> = aggregates.iter().map(|aggregate| aggregate.name.as_str()).collect();
                let n_values = aggregates.len();
                let node_u32 = idx as u32;
                let corrected = self.forward_new_text(idx, "out");
                let assign = match window {
                    WindowSpec::Tumbling { size_ms } => {
                        quote! { let assigned = operators::windows_containing(time, #size_ms, #size_ms); }
                    }
                    WindowSpec::Sliding { size_ms, slide_ms } => {
                        quote! { let assigned = operators::windows_containing(time, #size_ms, #slide_ms); }
                    }
                    WindowSpec::Session { .. } => quote! {},
                };
                let add_values = quote! {
                    for (accumulator, (kind, value)) in current.windows[at].accumulators.iter_mut().zip(KINDS.iter().zip(values.iter())) {
                        accumulator.add(*kind, value, record.event_time);
                    }
                };
                let schedule = quote! {
                    cx.schedule(Timer {
                        node: #node_u32, time: end - 1, domain: #domain, kind: TimerKind::WindowEnd,
                        event_time: end - 1, entry_time: end - 1, key: Some(String::from_utf8_lossy(&key).into()),
                    });
                };
                let per_window = match window {
                    WindowSpec::Session { gap_ms } => quote! {
                        // G44: the merged session fires (again) when complete.
                        let (at, _merged_away) = current.session(time, #gap_ms, KINDS);
                        current.windows[at].fired = false;
                        #add_values
                        let end = current.windows[at].end;
                        #schedule
                    },
                    _ => quote! {
                        #assign
                        for (start, end) in assigned {
                            let existed = current.windows.iter().any(|window| window.start == start && window.end == end);
                            let at = current.window(start, end, KINDS);
                            #add_values
                            if !existed {
                                #schedule
                            } else if current.windows[at].fired {
                                // A late event within allowedLateness: emit the corrected result now.
                                let text = current.result(at, NAMES);
                                cx.create(#idx);
                                let record = Record { text: &text, event_time: end - 1, entry_time: end - 1 };
                                #corrected
                            }
                        }
                    },
                };
                quote! {
                    const KINDS: &[operators::AggregateKind] = &[#(#kinds),*];
                    const NAMES: &[&str] = &[#(#names),*];
                    #late
                    #key
                    #load
                    let time = #time;
                    let values: [&Val<'_>; #n_values] = [#(#values),*];
                    let mut current = previous.unwrap_or_else(|| operators::WindowsState {
                        key_json: operators::key_json(key_value),
                        windows: Vec::new(),
                    });
                    #per_window
                    state.put(cx.state(), &key, &current);
                    cx.absorb(#idx);
                }
            }
            _ => return None,
        };
        Some(body)
    }

    /// Segmentation: the active segments for `values` and whether to emit (`let emit`).
    fn segment_decision(&mut self, idx: NodeIdx) -> TokenStream {
        let pipeline = self.pipeline;
        let Operator::Segmentation { counters, segments, emit, .. } = &pipeline.nodes[idx].op else { return quote! {} };
        let counter_names: Vec<String> = counters.iter().map(|counter| counter.name.clone()).collect();
        let rules: Vec<TokenStream> = segments
            .iter()
            .enumerate()
            .map(|(segment_idx, segment)| {
                let rule = expr::rule(&segment.rule, &counter_names, &mut self.regexes);
                let segment_idx = segment_idx as u64;
                quote! { if #rule { active.push(#segment_idx); } }
            })
            .collect();
        let decide = match emit {
            pulse_ir::EmitMode::Always => quote! {
                current.segments_changed(&active);
                let emit = true;
            },
            pulse_ir::EmitMode::OnChange => quote! { let emit = current.segments_changed(&active); },
        };
        quote! {
            let mut active: Vec<u64> = Vec::new();
            #(#rules)*
            #decide
        }
    }

    /// Segmentation: `record` with `counters` and `segments` set from `values` and `active`,
    /// forwarded on `out`.
    fn segment_record(&self, idx: NodeIdx) -> TokenStream {
        let node = &self.pipeline.nodes[idx];
        let Operator::Segmentation { counters, segments, .. } = &node.op else { return quote! {} };
        let counter_names: Vec<&str> = counters.iter().map(|counter| counter.name.as_str()).collect();
        let segment_names: Vec<&str> = segments.iter().map(|segment| segment.name.as_str()).collect();
        let forward = self.forward_new_text(idx, "out");
        let node_id = &node.id;
        quote! {
            let (counters_value, segments_value) =
                operators::segmentation_fields(&[#(#counter_names),*], &values, &[#(#segment_names),*], &active);
            let text = match pulse_runtime::generated::reshape::reshape(
                record.text,
                &[],
                &[],
                &[(&["counters"][..], counters_value), (&["segments"][..], segments_value)],
            ) {
                Ok(text) => text,
                Err(problem) => {
                    cx.dead_letter_at(#idx, &format!("segmentation: node `{}`: {}", #node_id, problem), DeadEvent::Json(Cow::Borrowed(record.text)));
                    return;
                }
            };
            let record = Record { text: &text, ..record };
            #forward
        }
    }

    /// Segmentation `refresh: onExpiry`: the timer of the boundary `at` of `key`. It fires when the
    /// clock passes `at - 1`, so an event at `at` already sees the lower counts (G27).
    fn refresh_timer(&self, idx: NodeIdx, timing: &Timing) -> TokenStream {
        let node_u32 = idx as u32;
        let domain = domain_tokens(timing);
        quote! {
            cx.schedule(Timer {
                node: #node_u32,
                time: at - 1,
                domain: #domain,
                kind: TimerKind::State,
                event_time: at,
                entry_time: at,
                key: Some(String::from_utf8_lossy(&key).into()),
            });
        }
    }

    /// `on_timer` arms of the stateful operators.
    pub(crate) fn stateful_timer_arm(&mut self, idx: NodeIdx) -> Option<TokenStream> {
        let pipeline = self.pipeline;
        let node = &pipeline.nodes[idx];
        let node_u32 = idx as u32;
        let node_id = &node.id;
        let load = load_timer_state(idx);
        match &node.op {
            Operator::Segmentation {
                bucket_ms,
                counters,
                segments,
                refresh: Refresh::OnExpiry,
                timing,
                ttl_ms,
                ..
            } => {
                let windows: Vec<u64> = counters.iter().map(|counter| counter.window_ms).collect();
                let names = segment_names(counters, segments);
                let ttl = ttl_tokens(*ttl_ms);
                // The node's body registered the rules' regexes already.
                let decide = self.segment_decision(idx);
                let emit_record = self.segment_record(idx);
                let schedule = self.refresh_timer(idx, timing);
                let trace_refresh = self.trace_segments(idx, "segmentation-refresh", quote! { at });
                Some(quote! {
                    #node_u32 => {
                        let key = timer.key.as_deref().unwrap_or("").as_bytes().to_vec();
                        let state: ValueState<operators::SegmentationState> = ValueState::new(#node_id);
                        #load
                        let mut current = current;
                        #names
                        current.conform(&NAMES);
                        let at = timer.time + 1;
                        // A boundary replanned by a later event, or a key past its TTL: nothing.
                        let Some((values, event)) = current.refresh_step(at, #bucket_ms, &[#(#windows),*], #ttl) else { return };
                        let before = if cx.tracing() { current.segments.clone() } else { Vec::new() };
                        #decide
                        #trace_refresh
                        if let Some(at) = current.refresh_due(i64::MAX) {
                            #schedule
                        }
                        state.put(cx.state(), &key, &current);
                        if emit {
                            cx.create(#idx);
                            let record = Record { text: &event, event_time: at, entry_time: at };
                            #emit_record
                        }
                    }
                })
            }
            Operator::UserEventTrigger { timing, .. } => {
                let fired = self.forward_new_text(idx, "fired");
                let event_time = match timing.domain {
                    TimeDomain::Event => quote! { timer.time },
                    TimeDomain::Processing => quote! { open.start_event_time },
                };
                let trace_fired = self.trace(
                    idx,
                    "trigger-fired",
                    event_time.clone(),
                    quote! { "fired" },
                    &[
                        quote! { ("opened_at", pulse_runtime::generated::TraceValue::Int(open.start_time)) },
                        quote! { ("start", pulse_runtime::generated::TraceValue::Json(&open.start_event)) },
                    ],
                );
                Some(quote! {
                    #node_u32 => {
                        let key = timer.key.as_deref().unwrap_or("").as_bytes().to_vec();
                        let state: ValueState<operators::TriggerState> = ValueState::new(#node_id);
                        #load
                        let open = current;
                        // A window closed by a cancel, or reopened with another deadline, is not this timer's.
                        if open.deadline != timer.time {
                            return;
                        }
                        state.clear(cx.state(), &key);
                        #trace_fired
                        let record = Record { text: &open.start_event, event_time: #event_time, entry_time: open.start_entry_time };
                        #fired
                    }
                })
            }
            Operator::WindowAggregate { aggregates, timing, .. } => {
                let names: Vec<&str> = aggregates.iter().map(|aggregate| aggregate.name.as_str()).collect();
                let allowed = timing.allowed_lateness_ms as i64;
                let domain = domain_tokens(timing);
                let out = self.forward_new_text(idx, "out");
                let trace_window = self.trace(
                    idx,
                    "window-fired",
                    quote! { end - 1 },
                    quote! { "out" },
                    &[quote! { ("result", pulse_runtime::generated::TraceValue::Json(&text)) }],
                );
                Some(quote! {
                    #node_u32 => {
                        const NAMES: &[&str] = &[#(#names),*];
                        let key = timer.key.as_deref().unwrap_or("").as_bytes().to_vec();
                        let state: ValueState<operators::WindowsState> = ValueState::new(#node_id);
                        #load
                        let mut current = current;
                        if timer.kind == TimerKind::WindowCleanup {
                            // G44: state is discarded once W > end - 1 + allowedLateness.
                            current.windows.retain(|window| window.end - 1 + #allowed != timer.time);
                        } else {
                            let end = timer.time + 1;
                            let Some(at) = current.windows.iter().position(|window| window.end == end && !window.fired) else { return };
                            let text = current.result(at, NAMES);
                            if #allowed == 0 {
                                current.windows.remove(at);
                            } else {
                                current.windows[at].fired = true;
                                cx.schedule(Timer {
                                    node: #node_u32, time: end - 1 + #allowed, domain: #domain, kind: TimerKind::WindowCleanup,
                                    event_time: end - 1, entry_time: end - 1, key: timer.key.clone(),
                                });
                            }
                            if current.windows.is_empty() {
                                state.clear(cx.state(), &key);
                            } else {
                                state.put(cx.state(), &key, &current);
                            }
                            cx.create(#idx);
                            #trace_window
                            let record = Record { text: &text, event_time: end - 1, entry_time: end - 1 };
                            #out
                            return;
                        }
                        if current.windows.is_empty() {
                            state.clear(cx.state(), &key);
                        } else {
                            state.put(cx.state(), &key, &current);
                        }
                    }
                })
            }
            _ => None,
        }
    }

    /// has-done-event: `events` records update the key's history at once; `flow` records wait in
    /// a buffer until the end of the step, so a step's `events` are always seen first (G41).
    pub(crate) fn has_done_methods(&mut self, idx: NodeIdx) -> TokenStream {
        let pipeline = self.pipeline;
        let node = &pipeline.nodes[idx];
        let Operator::HasDoneEvent { key_by, event, since_ms, ttl_ms } = &node.op else { return quote! {} };
        let seg = self.segments.seg_in[idx];
        let tree = self.segments.views[seg].clone();
        let view_ty = format_ident!("View{}", seg);
        let node_id = &node.id;
        let key = self.key_check(idx, key_by, &tree);
        let matches = expr::condition(event, &tree, &mut self.regexes);
        let ttl = ttl_tokens(*ttl_ms);
        let from = match since_ms {
            Some(since) => {
                let since = *since as i64;
                quote! { record.event_time.saturating_sub(#since) }
            }
            None => quote! { record.entry_time },
        };
        let yes = self.forward_new_text(idx, "yes");
        let no = self.forward_new_text(idx, "no");
        let answer_fields = [
            quote! { ("from", pulse_runtime::generated::TraceValue::Int(from)) },
            quote! { ("found", pulse_runtime::generated::TraceValue::OptInt(found)) },
        ];
        let trace_yes = self.trace(idx, "has-done", quote! { record.event_time }, quote! { "yes" }, &answer_fields);
        let trace_no = self.trace(idx, "has-done", quote! { record.event_time }, quote! { "no" }, &answer_fields);
        let trace_recorded = self.trace(idx, "has-done-recorded", quote! { record.event_time }, quote! { "" }, &[]);
        let parse = quote! {
            let view: #view_ty = match decode::parse_event(record.text) {
                Ok(view) => view,
                Err(dead) => {
                    cx.dead_letter_at(#idx, &format!("internal: input of `{}` does not parse: {}", #node_id, dead.reason), dead.event);
                    return;
                }
            };
            let view = &view;
        };
        let load = self.load_state(idx, quote! { operators::HistoryState });
        let (enter_events, enter_flow, process_flow, pending) = (
            format_ident!("enter_{}_events", idx),
            format_ident!("enter_{}_flow", idx),
            format_ident!("process_{}_flow", idx),
            format_ident!("pending_{}", idx),
        );
        quote! {
            fn #enter_events(&mut self, cx: &mut Context, record: Record<'_>) {
                #parse
                #key
                if !(#matches) {
                    cx.drop_record(#idx);
                    return;
                }
                #load
                let mut history = operators::HistoryState::for_event(previous, record.event_time, #ttl);
                history.record(record.event_time);
                state.put(cx.state(), &key, &history);
                cx.absorb(#idx);
                #trace_recorded
            }

            fn #enter_flow(&mut self, cx: &mut Context, record: Record<'_>) {
                self.#pending.push((record.text.into(), record.event_time, record.entry_time));
            }

            fn #process_flow(&mut self, cx: &mut Context, record: Record<'_>) {
                #parse
                #key
                #load
                let history = operators::HistoryState::for_event(previous, record.event_time, #ttl);
                let from = #from;
                // The first matching event in the window decides (traced).
                let found = history.first_between(from, record.event_time);
                if found.is_some() {
                    #trace_yes
                    #yes
                } else {
                    #trace_no
                    #no
                }
            }
        }
    }
}

fn aggregate_kinds(aggregates: &[pulse_ir::Aggregate]) -> Vec<TokenStream> {
    aggregates
        .iter()
        .map(|aggregate| match (aggregate.function, aggregate.field.is_some()) {
            (AggregateFn::Count, false) => quote! { operators::AggregateKind::Count },
            (AggregateFn::Count, true) => quote! { operators::AggregateKind::CountField },
            (AggregateFn::Sum, _) => quote! { operators::AggregateKind::Sum },
            (AggregateFn::Min, _) => quote! { operators::AggregateKind::Min },
            (AggregateFn::Max, _) => quote! { operators::AggregateKind::Max },
            (AggregateFn::Avg, _) => quote! { operators::AggregateKind::Avg },
            (AggregateFn::CountDistinct, _) => quote! { operators::AggregateKind::CountDistinct },
            (AggregateFn::First, _) => quote! { operators::AggregateKind::First },
            (AggregateFn::Last, _) => quote! { operators::AggregateKind::Last },
        })
        .collect()
}

/// At timer time: `current`, the key's state, or nothing to do when it is gone. A value that
/// does not decode is a dead letter naming the timer, as the same error on a record is.
/// A segmentation node's counter and segment names by their ids in stored state, as the static
/// `NAMES` its state is conformed to.
fn segment_names(counters: &[pulse_ir::Counter], segments: &[pulse_ir::Segment]) -> TokenStream {
    let counters = counters.iter().map(|counter| counter.name.as_str());
    let segments = segments.iter().map(|segment| segment.name.as_str());
    quote! {
        static NAMES: operators::SegmentNames = operators::SegmentNames {
            counters: &[#(operators::name_id(#counters)),*],
            segments: &[#(operators::name_id(#segments)),*],
        };
    }
}

fn load_timer_state(idx: NodeIdx) -> TokenStream {
    quote! {
        let current = match state.get(cx.state(), &key) {
            Ok(Some(current)) => current,
            Ok(None) => return,
            Err(error) => {
                cx.dead_letter_timer(#idx, &format!("state: {}", error), &timer);
                return;
            }
        };
    }
}
