//! Per-key state of the stateful operators and their pure cores: dedupe (G45), capping (G43),
//! segmentation buckets (G42), user-event-trigger windows (G40), has-done-event history (G41) and
//! window assignment and aggregation (G44, G50). Generated code evaluates conditions and moves
//! records; these functions decide, given the key's state. TTL (G46) is applied on load: a key
//! whose last write is `ttl` or more before the record's event time has no state.

use crate::state::{put_bytes, put_varint, put_varint_signed, Codec, CodecError, Reader};
use crate::val::Val;
use std::borrow::Cow;

/// Clears state whose last write is too old for this record (G46).
fn expired(last_write: i64, event_time: i64, ttl_ms: Option<u64>) -> bool {
    match ttl_ms {
        Some(ttl) => event_time >= last_write.saturating_add(ttl as i64),
        None => false,
    }
}

// ---------------------------------------------------------------------------------------------
// dedupe

/// Dedupe state of one key: the greatest event time seen and the last write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DedupeState {
    pub max_time: i64,
    pub last_write: i64,
}

impl Codec for DedupeState {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint_signed(out, self.max_time);
        put_varint_signed(out, self.last_write);
    }
    fn decode(input: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(DedupeState { max_time: input.varint_signed()?, last_write: input.varint_signed()? })
    }
}

/// G45: the event passes unless the greatest time seen for its key is > t − within. Every event
/// counts as seen. Returns whether it passes and the new state.
pub fn dedupe(state: Option<DedupeState>, event_time: i64, within_ms: u64, ttl_ms: Option<u64>) -> (bool, DedupeState) {
    let state = state.filter(|state| !expired(state.last_write, event_time, ttl_ms));
    let passes = match state {
        Some(state) => state.max_time <= event_time.saturating_sub(within_ms as i64),
        None => true,
    };
    let max_time = state.map_or(event_time, |state| state.max_time.max(event_time));
    (passes, DedupeState { max_time, last_write: event_time })
}

// ---------------------------------------------------------------------------------------------
// delay, mode: latest

/// The one pending event of a key in a `mode: latest` delay (G39).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEvent {
    pub fire_at: i64,
    pub text: Box<str>,
    pub event_time: i64,
    pub entry_time: i64,
}

impl Codec for PendingEvent {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint_signed(out, self.fire_at);
        self.text.encode(out);
        put_varint_signed(out, self.event_time);
        put_varint_signed(out, self.entry_time);
    }
    fn decode(input: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(PendingEvent {
            fire_at: input.varint_signed()?,
            text: Box::decode(input)?,
            event_time: input.varint_signed()?,
            entry_time: input.varint_signed()?,
        })
    }
}

/// G53: a pending event due before `time` (the operator time of the key's next event) is taken
/// out to be emitted first, timed at its due time, as if the watermark had passed it.
pub fn take_due(pending: &mut Option<PendingEvent>, time: i64) -> Option<PendingEvent> {
    if pending.as_ref().is_some_and(|due| due.fire_at < time) {
        pending.take()
    } else {
        None
    }
}

/// G39: the newcomer replaces the pending event unless it is older (ties go to the later
/// arrival). Returns false when the newcomer is dropped.
pub fn latest_replaces(pending: Option<&PendingEvent>, event_time: i64) -> bool {
    pending.is_none_or(|pending| event_time >= pending.event_time)
}

// ---------------------------------------------------------------------------------------------
// capping

/// The event times of a key's passed events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CappingState {
    pub passed: Vec<i64>,
    pub last_write: i64,
}

impl Codec for CappingState {
    fn encode(&self, out: &mut Vec<u8>) {
        self.passed.encode(out);
        put_varint_signed(out, self.last_write);
    }
    fn decode(input: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(CappingState { passed: Vec::decode(input)?, last_write: input.varint_signed()? })
    }
}

/// G43: passes if fewer than `max` earlier passed events of the key have time in (t − window, t].
/// Passed events are recorded exactly. Times that no future on-time event can count (at or
/// below `horizon` − window, where `horizon` is the lowest event time not yet late) are pruned.
pub fn capping(
    state: Option<CappingState>,
    event_time: i64,
    max: u64,
    window_ms: u64,
    ttl_ms: Option<u64>,
    horizon: i64,
) -> (bool, Option<CappingState>) {
    let mut state = state.filter(|state| !expired(state.last_write, event_time, ttl_ms)).unwrap_or_default();
    let window = window_ms as i64;
    let lower = event_time.saturating_sub(window);
    let count = state.passed.iter().filter(|&&time| time > lower && time <= event_time).count() as u64;
    let passes = count < max;
    if passes {
        state.passed.push(event_time);
        state.last_write = event_time;
    }
    let keep_above = horizon.saturating_sub(window);
    state.passed.retain(|&time| time > keep_above);
    let state = if state.passed.is_empty() && !passes { None } else { Some(state) };
    (passes, state)
}

/// Passed events of a capping state with time in (t − window, t] (what G43 compares with `max`).
pub fn capping_count(state: Option<&CappingState>, event_time: i64, window_ms: u64) -> u64 {
    let lower = event_time.saturating_sub(window_ms as i64);
    state.map_or(0, |state| state.passed.iter().filter(|&&time| time > lower && time <= event_time).count() as u64)
}

// ---------------------------------------------------------------------------------------------
// segmentation

/// The counters and segments of a segmentation node by the ids that name them in stored state
/// (`name_id` of each name, in the node's order). Stored counts and segments carry these ids, so
/// a pipeline that adds, removes or reorders counters or segments reads the others' state.
#[derive(Debug, PartialEq, Eq)]
pub struct SegmentNames {
    pub counters: &'static [u32],
    pub segments: &'static [u32],
}

/// The id of a counter or segment name in stored state: its 32-bit FNV-1a hash. Code generation
/// refuses a node whose names share an id.
pub const fn name_id(name: &str) -> u32 {
    let bytes = name.as_bytes();
    let mut hash: u32 = 0x811c_9dc5;
    let mut idx = 0;
    while idx < bytes.len() {
        hash ^= bytes[idx] as u32;
        hash = hash.wrapping_mul(0x0100_0193);
        idx += 1;
    }
    hash
}

/// What the counts and segment numbers of a `SegmentationState` refer to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Names {
    /// As decoded (or new): the ids of the counters the bucket counts are in, in count order;
    /// `segments` holds segment ids.
    Stored { counters: Vec<u32> },
    /// The pipeline's own (after `conform`): counts in its counter order, `segments` holding
    /// indexes of its segments.
    Pipeline(&'static SegmentNames),
}

impl Default for Names {
    fn default() -> Self {
        Names::Stored { counters: Vec::new() }
    }
}

/// Counts per bucket for each counter, and the previous segment list for `onChange`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentationState {
    /// (bucket index, count per counter), sorted by bucket.
    pub buckets: Vec<(i64, Vec<u64>)>,
    /// The segments active after the previous event: indexes of the node's segments once
    /// `conform`ed.
    pub segments: Vec<u64>,
    pub last_write: i64,
    /// `refresh: onExpiry`: the next bucket boundary at which a counter drops, and the key's last
    /// event, which the record emitted then carries. Encoded only when set.
    pub refresh: Option<(i64, Box<str>)>,
    names: Names,
}

/// Encoded: the counter ids (a count, then 4 bytes each, little-endian), the buckets, the
/// active segments' ids, the last write and, when set, the refresh.
impl Codec for SegmentationState {
    fn encode(&self, out: &mut Vec<u8>) {
        let counters: &[u32] = match &self.names {
            Names::Stored { counters } => counters,
            Names::Pipeline(names) => names.counters,
        };
        put_varint(out, counters.len() as u64);
        for id in counters {
            out.extend_from_slice(&id.to_le_bytes());
        }
        self.buckets.encode(out);
        put_varint(out, self.segments.len() as u64);
        for segment in &self.segments {
            let id = match &self.names {
                Names::Stored { .. } => *segment,
                // Indexes come from the node's own rules, so each has an id.
                Names::Pipeline(names) => names.segments.get(*segment as usize).map_or(*segment, |id| u64::from(*id)),
            };
            put_varint(out, id);
        }
        put_varint_signed(out, self.last_write);
        if let Some((at, event)) = &self.refresh {
            put_varint_signed(out, *at);
            event.encode(out);
        }
    }
    fn decode(input: &mut Reader<'_>) -> Result<Self, CodecError> {
        let n_counters = input.varint()? as usize;
        let mut counters = Vec::with_capacity(n_counters.min(256));
        for _ in 0..n_counters {
            let bytes = input.take(4)?;
            counters.push(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
        }
        let buckets = Vec::decode(input)?;
        let segments = Vec::decode(input)?;
        let last_write = input.varint_signed()?;
        let refresh = if input.is_empty() { None } else { Some((input.varint_signed()?, Box::decode(input)?)) };
        Ok(SegmentationState { buckets, segments, last_write, refresh, names: Names::Stored { counters } })
    }
}

impl SegmentationState {
    /// Loads for an event, applying the TTL, in the node's counters and segments.
    pub fn for_event(
        state: Option<SegmentationState>,
        event_time: i64,
        ttl_ms: Option<u64>,
        names: &'static SegmentNames,
    ) -> SegmentationState {
        let mut state = state.filter(|state| !expired(state.last_write, event_time, ttl_ms)).unwrap_or_default();
        state.conform(names);
        state
    }

    /// Puts decoded state in the node's counters and segments, by id: counts of a counter the
    /// node no longer has are dropped, a new counter starts at 0, and a segment the node no
    /// longer has is no longer active.
    pub fn conform(&mut self, names: &'static SegmentNames) {
        let Names::Stored { counters } = &self.names else { return };
        if counters.as_slice() != names.counters {
            let from: Vec<Option<usize>> =
                names.counters.iter().map(|id| counters.iter().position(|stored| stored == id)).collect();
            for (_, counts) in &mut self.buckets {
                *counts = from.iter().map(|at| at.and_then(|at| counts.get(at).copied()).unwrap_or(0)).collect();
            }
            self.buckets.retain(|(_, counts)| counts.iter().any(|count| *count > 0));
        }
        let mut active: Vec<u64> = self
            .segments
            .iter()
            .filter_map(|id| names.segments.iter().position(|known| u64::from(*known) == *id))
            .map(|idx| idx as u64)
            .collect();
        active.sort_unstable();
        self.segments = active;
        self.names = Names::Pipeline(names);
    }

    /// G42: the event increments the counters whose condition it matches in its bucket, then
    /// each counter sums buckets (b − n, b]. Returns the counter values.
    pub fn update(&mut self, event_time: i64, bucket_ms: u64, matches: &[bool], windows_ms: &[u64]) -> Vec<i64> {
        let bucket = event_time.div_euclid(bucket_ms as i64);
        if matches.iter().any(|matched| *matched) {
            let position = self.buckets.binary_search_by_key(&bucket, |(idx, _)| *idx);
            let counts = match position {
                Ok(found) => &mut self.buckets[found].1,
                Err(insert_at) => {
                    self.buckets.insert(insert_at, (bucket, vec![0; matches.len()]));
                    &mut self.buckets[insert_at].1
                }
            };
            counts.resize(matches.len(), 0);
            for (count, matched) in counts.iter_mut().zip(matches) {
                if *matched {
                    *count += 1;
                }
            }
            self.last_write = event_time;
        }
        self.values_at(bucket, bucket_ms, windows_ms)
    }

    /// Each counter's value in bucket `bucket`: the sum of buckets (b − n, b].
    pub fn values_at(&self, bucket: i64, bucket_ms: u64, windows_ms: &[u64]) -> Vec<i64> {
        windows_ms
            .iter()
            .enumerate()
            .map(|(counter, window)| {
                let n_buckets = (*window / bucket_ms) as i64;
                self.buckets
                    .iter()
                    .filter(|(idx, _)| *idx > bucket - n_buckets && *idx <= bucket)
                    .map(|(_, counts)| counts.get(counter).copied().unwrap_or(0) as i64)
                    .sum()
            })
            .collect()
    }

    /// The first bucket boundary after bucket `bucket` at which some counter's value drops: the
    /// start of bucket i + n for a bucket i that counts for a counter of window n buckets.
    pub fn next_expiry(&self, bucket: i64, bucket_ms: u64, windows_ms: &[u64]) -> Option<i64> {
        let mut next: Option<i64> = None;
        for (idx, counts) in &self.buckets {
            for (counter, window) in windows_ms.iter().enumerate() {
                let leaves = idx.saturating_add((*window / bucket_ms) as i64);
                if leaves > bucket && counts.get(counter).is_some_and(|count| *count > 0) {
                    next = Some(next.map_or(leaves, |next| next.min(leaves)));
                }
            }
        }
        next.map(|leaves| leaves.saturating_mul(bucket_ms as i64))
    }

    /// `refresh: onExpiry` at the boundary `at` (the bucket that starts there): the counter
    /// values then and the key's last event, which the emitted record carries. Plans the next
    /// boundary. `None` when the state is not waiting for `at` (a stale timer) or its TTL passed.
    pub fn refresh_step(
        &mut self,
        at: i64,
        bucket_ms: u64,
        windows_ms: &[u64],
        ttl_ms: Option<u64>,
    ) -> Option<(Vec<i64>, Box<str>)> {
        if self.refresh.as_ref().map(|(due, _)| *due) != Some(at) || expired(self.last_write, at, ttl_ms) {
            return None;
        }
        let bucket = at.div_euclid(bucket_ms as i64);
        let values = self.values_at(bucket, bucket_ms, windows_ms);
        let next = self.next_expiry(bucket, bucket_ms, windows_ms);
        let (_, event) = self.refresh.take()?;
        self.refresh = next.map(|next| (next, event.clone()));
        Some((values, event))
    }

    /// The boundary of the refresh due at or before `time`, if any.
    pub fn refresh_due(&self, time: i64) -> Option<i64> {
        self.refresh.as_ref().map(|(at, _)| *at).filter(|at| *at <= time)
    }

    /// `refresh: onExpiry` after an event: remembers the event and returns the boundary to
    /// schedule a timer for, when it differs from the one already scheduled.
    pub fn plan_refresh(&mut self, event: &str, time: i64, bucket_ms: u64, windows_ms: &[u64]) -> Option<i64> {
        let scheduled = self.refresh.as_ref().map(|(at, _)| *at);
        let next = self.next_expiry(time.div_euclid(bucket_ms as i64), bucket_ms, windows_ms);
        self.refresh = next.map(|at| (at, event.into()));
        next.filter(|at| Some(*at) != scheduled)
    }

    /// Drops buckets no on-time event can count: those at or below the bucket of `horizon`
    /// (the lowest event time not yet late) minus the longest window.
    pub fn prune(&mut self, horizon: i64, bucket_ms: u64, longest_window_ms: u64) {
        if horizon == i64::MIN {
            return;
        }
        let oldest_needed = horizon.div_euclid(bucket_ms as i64) - (longest_window_ms / bucket_ms) as i64;
        self.buckets.retain(|(idx, _)| *idx > oldest_needed);
    }

    /// G42 `onChange`: whether the active segments differ from the previous event's (starting
    /// from none). Records the new list either way.
    pub fn segments_changed(&mut self, active: &[u64]) -> bool {
        let changed = self.segments != active;
        self.segments = active.to_vec();
        changed
    }
}

// ---------------------------------------------------------------------------------------------
// user-event-trigger

/// The open window of a key: the start event and its deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriggerState {
    pub start_time: i64,
    pub deadline: i64,
    pub start_event: Box<str>,
    pub start_event_time: i64,
    pub start_entry_time: i64,
}

impl Codec for TriggerState {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint_signed(out, self.start_time);
        put_varint_signed(out, self.deadline);
        self.start_event.encode(out);
        put_varint_signed(out, self.start_event_time);
        put_varint_signed(out, self.start_entry_time);
    }
    fn decode(input: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(TriggerState {
            start_time: input.varint_signed()?,
            deadline: input.varint_signed()?,
            start_event: Box::decode(input)?,
            start_event_time: input.varint_signed()?,
            start_entry_time: input.varint_signed()?,
        })
    }
}

/// What a trigger does with one event (G40).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriggerStep {
    /// G53: the open window whose deadline is before the event: its start event goes to `fired`
    /// (timed at the deadline) before the event is handled.
    pub expired: Option<TriggerState>,
    /// The window closed by a cancel: its start event goes to `cancelled`.
    pub cancelled: Option<TriggerState>,
    /// A window opened by this event: schedule a timer at its deadline.
    pub opened: Option<i64>,
}

/// One event as a trigger sees it.
#[derive(Clone, Copy, Debug)]
pub struct TriggerInput<'a> {
    /// The operator's clock for the event: event time, or arrival in processing time.
    pub time: i64,
    pub is_start: bool,
    pub is_cancel: bool,
    pub event: &'a str,
    pub event_time: i64,
    pub entry_time: i64,
}

/// G40: the event is tried as a cancel (time within [start, start + within] of the open
/// window), then as a start (opens a window if none is open). G53: an open window whose deadline
/// is before the event's time fires first, and the event then meets no open window.
pub fn trigger(state: &mut Option<TriggerState>, input: TriggerInput<'_>, within_ms: u64) -> TriggerStep {
    let TriggerInput { time, is_start, is_cancel, event, event_time, entry_time } = input;
    let mut step = TriggerStep { expired: None, cancelled: None, opened: None };
    if state.as_ref().is_some_and(|open| open.deadline < time) {
        step.expired = state.take();
    }
    if is_cancel {
        if let Some(open) = state {
            if time >= open.start_time && time <= open.deadline {
                step.cancelled = state.take();
            }
        }
    }
    if is_start && state.is_none() {
        let deadline = time.saturating_add(within_ms as i64);
        *state = Some(TriggerState {
            start_time: time,
            deadline,
            start_event: event.into(),
            start_event_time: event_time,
            start_entry_time: entry_time,
        });
        step.opened = Some(deadline);
    }
    step
}

// ---------------------------------------------------------------------------------------------
// has-done-event

/// The times of a key's matching `events` records, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryState {
    pub times: Vec<i64>,
    pub last_write: i64,
}

impl Codec for HistoryState {
    fn encode(&self, out: &mut Vec<u8>) {
        self.times.encode(out);
        put_varint_signed(out, self.last_write);
    }
    fn decode(input: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(HistoryState { times: Vec::decode(input)?, last_write: input.varint_signed()? })
    }
}

impl HistoryState {
    pub fn for_event(state: Option<HistoryState>, event_time: i64, ttl_ms: Option<u64>) -> HistoryState {
        state.filter(|state| !expired(state.last_write, event_time, ttl_ms)).unwrap_or_default()
    }

    /// Records a matching `events` record at its event time (a write, G46).
    pub fn record(&mut self, event_time: i64) {
        let at = self.times.partition_point(|&time| time <= event_time);
        self.times.insert(at, event_time);
        self.last_write = event_time;
    }

    /// The first matching event in [from, now]: the one that makes `any_between` true.
    pub fn first_between(&self, from: i64, now: i64) -> Option<i64> {
        let first = self.times.partition_point(|&time| time < from);
        self.times.get(first).copied().filter(|&time| time <= now)
    }

    /// G41: did a matching event happen in [from, now]?
    pub fn any_between(&self, from: i64, now: i64) -> bool {
        let first = self.times.partition_point(|&time| time < from);
        self.times.get(first).is_some_and(|&time| time <= now)
    }
}

// ---------------------------------------------------------------------------------------------
// window-aggregate

/// The windows [s, s + size) containing `t`, s a multiple of `slide` (G44): oldest first.
pub fn windows_containing(event_time: i64, size_ms: u64, slide_ms: u64) -> Vec<(i64, i64)> {
    let (size, slide) = (size_ms as i64, slide_ms as i64);
    let last_start = event_time.div_euclid(slide) * slide;
    let mut windows = Vec::new();
    let mut start = last_start;
    while start > event_time - size {
        windows.push((start, start + size));
        start -= slide;
    }
    windows.reverse();
    windows
}

/// Running state of one aggregate (G50).
#[derive(Clone, Debug, PartialEq)]
pub enum Accumulator {
    Count(u64),
    Sum {
        int_sum: i128,
        float_sum: f64,
        all_int: bool,
        n: u64,
    },
    Min(Option<Num>),
    Max(Option<Num>),
    Avg {
        float_sum: f64,
        n: u64,
    },
    /// Distinct values in their canonical key form (G12), sorted.
    Distinct(Vec<String>),
    /// The chosen value's JSON text and its event time.
    First(Option<(i64, String)>),
    Last(Option<(i64, String)>),
}

/// A number as it appeared: aggregates keep ints as ints.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(value) => value as f64,
            Num::Float(value) => value,
        }
    }
}

/// Which aggregate function, with whether a `count` has a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateKind {
    Count,
    CountField,
    Sum,
    Min,
    Max,
    Avg,
    CountDistinct,
    First,
    Last,
}

impl Accumulator {
    pub fn new(kind: AggregateKind) -> Accumulator {
        match kind {
            AggregateKind::Count | AggregateKind::CountField => Accumulator::Count(0),
            AggregateKind::Sum => Accumulator::Sum { int_sum: 0, float_sum: 0.0, all_int: true, n: 0 },
            AggregateKind::Min => Accumulator::Min(None),
            AggregateKind::Max => Accumulator::Max(None),
            AggregateKind::Avg => Accumulator::Avg { float_sum: 0.0, n: 0 },
            AggregateKind::CountDistinct => Accumulator::Distinct(Vec::new()),
            AggregateKind::First => Accumulator::First(None),
            AggregateKind::Last => Accumulator::Last(None),
        }
    }

    /// Adds one event's value (`Absent` for a plain `count`).
    pub fn add(&mut self, kind: AggregateKind, value: &Val<'_>, event_time: i64) {
        let number = match value {
            Val::Int(number) => Some(Num::Int(*number)),
            Val::Float(number) => Some(Num::Float(*number)),
            _ => None,
        };
        match self {
            Accumulator::Count(count) => {
                if kind == AggregateKind::Count || !value.is_null() {
                    *count += 1;
                }
            }
            Accumulator::Sum { int_sum, float_sum, all_int, n } => {
                if let Some(number) = number {
                    if let Num::Int(value) = number {
                        *int_sum += i128::from(value);
                    } else {
                        *all_int = false;
                    }
                    *float_sum += number.as_f64();
                    *n += 1;
                }
            }
            Accumulator::Min(current) => {
                if let Some(number) = number {
                    if current.is_none_or(|current| number.as_f64() < current.as_f64()) {
                        *current = Some(number);
                    }
                }
            }
            Accumulator::Max(current) => {
                if let Some(number) = number {
                    if current.is_none_or(|current| number.as_f64() > current.as_f64()) {
                        *current = Some(number);
                    }
                }
            }
            Accumulator::Avg { float_sum, n } => {
                if let Some(number) = number {
                    *float_sum += number.as_f64();
                    *n += 1;
                }
            }
            Accumulator::Distinct(seen) => {
                if let Some(form) = crate::text::key_form(value) {
                    if let Err(at) = seen.binary_search(&form) {
                        seen.insert(at, form);
                    }
                }
            }
            Accumulator::First(current) => {
                if !value.is_null() && current.as_ref().is_none_or(|(time, _)| event_time < *time) {
                    *current = Some((event_time, json_text(value)));
                }
            }
            Accumulator::Last(current) => {
                if !value.is_null() && current.as_ref().is_none_or(|(time, _)| event_time >= *time) {
                    *current = Some((event_time, json_text(value)));
                }
            }
        }
    }

    /// Writes the aggregate's result as JSON.
    pub fn write_result(&self, out: &mut String) {
        match self {
            Accumulator::Count(count) => out.push_str(&count.to_string()),
            Accumulator::Sum { n: 0, .. } | Accumulator::Avg { n: 0, .. } => out.push_str("null"),
            Accumulator::Sum { int_sum, float_sum, all_int, .. } => match i64::try_from(*int_sum) {
                Ok(sum) if *all_int => out.push_str(&sum.to_string()),
                _ => crate::json::write_val(out, &Val::Float(*float_sum)),
            },
            Accumulator::Avg { float_sum, n } => crate::json::write_val(out, &Val::Float(float_sum / *n as f64)),
            Accumulator::Min(None) | Accumulator::Max(None) => out.push_str("null"),
            Accumulator::Min(Some(number)) | Accumulator::Max(Some(number)) => match number {
                Num::Int(value) => out.push_str(&value.to_string()),
                Num::Float(value) => crate::json::write_val(out, &Val::Float(*value)),
            },
            Accumulator::Distinct(seen) => out.push_str(&seen.len().to_string()),
            Accumulator::First(None) | Accumulator::Last(None) => out.push_str("null"),
            Accumulator::First(Some((_, text))) | Accumulator::Last(Some((_, text))) => out.push_str(text),
        }
    }
}

fn json_text(value: &Val<'_>) -> String {
    let mut text = String::new();
    crate::json::write_val(&mut text, value);
    text
}

fn put_num(out: &mut Vec<u8>, number: &Option<Num>) {
    match number {
        None => out.push(0),
        Some(Num::Int(value)) => {
            out.push(1);
            put_varint_signed(out, *value);
        }
        Some(Num::Float(value)) => {
            out.push(2);
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

fn get_num(input: &mut Reader<'_>) -> Result<Option<Num>, CodecError> {
    Ok(match input.u8()? {
        0 => None,
        1 => Some(Num::Int(input.varint_signed()?)),
        _ => Some(Num::Float(input.f64()?)),
    })
}

fn put_timed(out: &mut Vec<u8>, value: &Option<(i64, String)>) {
    match value {
        None => out.push(0),
        Some((time, text)) => {
            out.push(1);
            put_varint_signed(out, *time);
            put_bytes(out, text.as_bytes());
        }
    }
}

fn get_timed(input: &mut Reader<'_>) -> Result<Option<(i64, String)>, CodecError> {
    Ok(match input.u8()? {
        0 => None,
        _ => Some((input.varint_signed()?, input.str()?.to_string())),
    })
}

impl Codec for Accumulator {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Accumulator::Count(count) => {
                out.push(0);
                put_varint(out, *count);
            }
            Accumulator::Sum { int_sum, float_sum, all_int, n } => {
                out.push(1);
                out.extend_from_slice(&int_sum.to_le_bytes());
                out.extend_from_slice(&float_sum.to_le_bytes());
                out.push(u8::from(*all_int));
                put_varint(out, *n);
            }
            Accumulator::Min(number) => {
                out.push(2);
                put_num(out, number);
            }
            Accumulator::Max(number) => {
                out.push(3);
                put_num(out, number);
            }
            Accumulator::Avg { float_sum, n } => {
                out.push(4);
                out.extend_from_slice(&float_sum.to_le_bytes());
                put_varint(out, *n);
            }
            Accumulator::Distinct(seen) => {
                out.push(5);
                seen.encode(out);
            }
            Accumulator::First(value) => {
                out.push(6);
                put_timed(out, value);
            }
            Accumulator::Last(value) => {
                out.push(7);
                put_timed(out, value);
            }
        }
    }
    fn decode(input: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(match input.u8()? {
            0 => Accumulator::Count(input.varint()?),
            1 => {
                let int_sum = i128::from_le_bytes(input.take(16)?.try_into().expect("took 16 bytes"));
                let float_sum = input.f64()?;
                let all_int = input.u8()? != 0;
                Accumulator::Sum { int_sum, float_sum, all_int, n: input.varint()? }
            }
            2 => Accumulator::Min(get_num(input)?),
            3 => Accumulator::Max(get_num(input)?),
            4 => Accumulator::Avg { float_sum: input.f64()?, n: input.varint()? },
            5 => Accumulator::Distinct(Vec::decode(input)?),
            6 => Accumulator::First(get_timed(input)?),
            7 => Accumulator::Last(get_timed(input)?),
            tag => return Err(CodecError(format!("unknown accumulator tag {tag}"))),
        })
    }
}

/// One window of a key: its bounds, accumulators, and whether its result was emitted.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowState {
    pub start: i64,
    pub end: i64,
    pub accumulators: Vec<Accumulator>,
    pub fired: bool,
}

impl Codec for WindowState {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint_signed(out, self.start);
        put_varint_signed(out, self.end);
        self.accumulators.encode(out);
        out.push(u8::from(self.fired));
    }
    fn decode(input: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(WindowState {
            start: input.varint_signed()?,
            end: input.varint_signed()?,
            accumulators: Vec::decode(input)?,
            fired: input.u8()? != 0,
        })
    }
}

/// Every open window of a key, sorted by start, with the key's value as it appeared (G12).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowsState {
    pub key_json: String,
    pub windows: Vec<WindowState>,
}

impl Codec for WindowsState {
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, self.key_json.as_bytes());
        self.windows.encode(out);
    }
    fn decode(input: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(WindowsState { key_json: input.str()?.to_string(), windows: Vec::decode(input)? })
    }
}

impl WindowsState {
    /// The window [start, end), created empty if missing; returns its index.
    pub fn window(&mut self, start: i64, end: i64, kinds: &[AggregateKind]) -> usize {
        match self.windows.binary_search_by_key(&(start, end), |window| (window.start, window.end)) {
            Ok(found) => found,
            Err(at) => {
                let accumulators = kinds.iter().map(|kind| Accumulator::new(*kind)).collect();
                self.windows.insert(at, WindowState { start, end, accumulators, fired: false });
                at
            }
        }
    }

    /// G44 sessions: the event's session [t, t + gap) merges every session it overlaps or
    /// touches. Returns the merged window's index and the (start, end) of windows merged away
    /// (their timers are stale). Accumulators merge by replaying is impossible, so merged
    /// sessions combine their accumulators.
    pub fn session(&mut self, event_time: i64, gap_ms: u64, kinds: &[AggregateKind]) -> (usize, Vec<(i64, i64)>) {
        let (mut start, mut end) = (event_time, event_time.saturating_add(gap_ms as i64));
        let mut merged: Vec<WindowState> = Vec::new();
        let mut idx = 0;
        while idx < self.windows.len() {
            let window = &self.windows[idx];
            if window.start <= end && window.end >= start {
                start = start.min(window.start);
                end = end.max(window.end);
                merged.push(self.windows.remove(idx));
            } else {
                idx += 1;
            }
        }
        let stale: Vec<(i64, i64)> = merged.iter().map(|window| (window.start, window.end)).collect();
        let mut accumulators: Vec<Accumulator> = kinds.iter().map(|kind| Accumulator::new(*kind)).collect();
        let mut fired = false;
        for window in merged {
            fired |= window.fired;
            for (into, from) in accumulators.iter_mut().zip(window.accumulators) {
                combine(into, from);
            }
        }
        let at = self.windows.partition_point(|window| (window.start, window.end) < (start, end));
        self.windows.insert(at, WindowState { start, end, accumulators, fired });
        (at, stale)
    }

    /// The result record of window `idx`: `{"key", "window_start", "window_end", <aggregates>}`.
    pub fn result(&self, idx: usize, names: &[&str]) -> String {
        let window = &self.windows[idx];
        let mut out = String::from("{\"key\":");
        out.push_str(&self.key_json);
        out.push_str(&format!(",\"window_start\":{},\"window_end\":{}", window.start, window.end));
        for (name, accumulator) in names.iter().zip(&window.accumulators) {
            out.push(',');
            crate::json::write_str(&mut out, name);
            out.push(':');
            accumulator.write_result(&mut out);
        }
        out.push('}');
        out
    }
}

/// Merges one session's accumulator into another's.
fn combine(into: &mut Accumulator, from: Accumulator) {
    match (into, from) {
        (Accumulator::Count(a), Accumulator::Count(b)) => *a += b,
        (
            Accumulator::Sum { int_sum, float_sum, all_int, n },
            Accumulator::Sum { int_sum: other_int, float_sum: other_float, all_int: other_all, n: other_n },
        ) => {
            *int_sum += other_int;
            *float_sum += other_float;
            *all_int &= other_all;
            *n += other_n;
        }
        (Accumulator::Min(a), Accumulator::Min(Some(b))) if a.is_none_or(|a| b.as_f64() < a.as_f64()) => {
            *a = Some(b);
        }
        (Accumulator::Max(a), Accumulator::Max(Some(b))) if a.is_none_or(|a| b.as_f64() > a.as_f64()) => {
            *a = Some(b);
        }
        (Accumulator::Avg { float_sum, n }, Accumulator::Avg { float_sum: other_sum, n: other_n }) => {
            *float_sum += other_sum;
            *n += other_n;
        }
        (Accumulator::Distinct(a), Accumulator::Distinct(b)) => {
            for value in b {
                if let Err(at) = a.binary_search(&value) {
                    a.insert(at, value);
                }
            }
        }
        (Accumulator::First(a), Accumulator::First(Some(b))) if a.as_ref().is_none_or(|a| b.0 < a.0) => {
            *a = Some(b);
        }
        (Accumulator::Last(a), Accumulator::Last(Some(b))) if a.as_ref().is_none_or(|a| b.0 >= a.0) => {
            *a = Some(b);
        }
        _ => {}
    }
}

/// The key's value as JSON text, for window records (G12: "as it appeared").
pub fn key_json(value: &Val<'_>) -> String {
    json_text(value)
}

/// Key bytes for the store: the canonical key form (G12), so `1` and `1.0` are one key.
pub fn key_bytes(value: &Val<'_>) -> Option<Vec<u8>> {
    crate::text::key_form(value).map(String::into_bytes)
}

/// A `Val` for a counter value inside segment rules.
pub fn counter_val(value: i64) -> Val<'static> {
    Val::Int(value)
}

/// `{"counters": {...}, "segments": [...]}` values for a segmentation output (G42).
pub fn segmentation_fields(
    names: &[&str],
    values: &[i64],
    segment_names: &[&str],
    active: &[u64],
) -> (Val<'static>, Val<'static>) {
    let mut counters = String::from("{");
    for (idx, (name, value)) in names.iter().zip(values).enumerate() {
        if idx > 0 {
            counters.push(',');
        }
        crate::json::write_str(&mut counters, name);
        counters.push(':');
        counters.push_str(&value.to_string());
    }
    counters.push('}');
    let mut segments = String::from("[");
    for (idx, segment) in active.iter().enumerate() {
        if idx > 0 {
            segments.push(',');
        }
        crate::json::write_str(&mut segments, segment_names[*segment as usize]);
    }
    segments.push(']');
    (Val::Obj(Cow::Owned(counters)), Val::Arr(Cow::Owned(segments)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{decode, encode};

    #[test]
    fn dedupe_follows_g45() {
        let (pass, state) = dedupe(None, 1000, 300, None);
        assert!(pass);
        // 200 ms later: within 300 -> dropped, but it still counts as seen.
        let (pass, state) = dedupe(Some(state), 1200, 300, None);
        assert!(!pass);
        // Exactly `within` after the greatest seen (1200) passes.
        let (pass, state) = dedupe(Some(state), 1500, 300, None);
        assert!(pass);
        // An out-of-order event older than the greatest seen is a duplicate.
        let (pass, _) = dedupe(Some(state), 900, 300, None);
        assert!(!pass);
        // TTL clears the key: last write 1500 + ttl 100 <= 1600.
        let (pass, _) = dedupe(Some(state), 1600, 300, Some(100));
        assert!(pass);
    }

    #[test]
    fn capping_counts_passed_events_in_the_half_open_window() {
        let mut state = None;
        let mut passes = Vec::new();
        for time in [0, 10, 20, 30, 100] {
            let (pass, next) = capping(state, time, 2, 30, None, i64::MIN);
            passes.push(pass);
            state = next;
        }
        // 0 and 10 pass; 20 is capped ((-10, 20] holds 0 and 10); at 30 the window (0, 30]
        // holds only 10 (0 is outside, 20 was capped, not passed), so 30 passes.
        assert_eq!(passes, [true, true, false, true, true]);
    }

    #[test]
    fn segmentation_counts_buckets_b_minus_n_to_b() {
        let mut state = SegmentationState::default();
        let hour = 3_600_000u64;
        let windows = [2 * hour];
        assert_eq!(state.update(0, hour, &[true], &windows), [1]);
        assert_eq!(state.update(3_600_000, hour, &[true], &windows), [2]);
        // Bucket 2 counts buckets 1 and 2 only.
        assert_eq!(state.update(7_200_000, hour, &[true], &windows), [2]);
        // A non-matching event reads without counting.
        assert_eq!(state.update(7_200_001, hour, &[false], &windows), [2]);
        // An out-of-order event in bucket 0 does not see later buckets.
        assert_eq!(state.update(10, hour, &[false], &windows), [1]);
        assert!(state.segments_changed(&[0]));
        assert!(!state.segments_changed(&[0]));
        assert_eq!(decode::<SegmentationState>(&encode(&state)), Ok(state));
    }

    fn input(time: i64, is_start: bool, is_cancel: bool, event: &str) -> TriggerInput<'_> {
        TriggerInput { time, is_start, is_cancel, event, event_time: time, entry_time: time }
    }

    #[test]
    fn trigger_tries_cancel_then_start() {
        let mut state = None;
        let step = trigger(&mut state, input(100, true, false, "{\"s\":1}"), 50);
        assert_eq!(step.opened, Some(150));
        // A repeated start is ignored.
        let step = trigger(&mut state, input(120, true, false, "{\"s\":2}"), 50);
        assert_eq!(step.opened, None);
        // A cancel at exactly start + within still cancels.
        let step = trigger(&mut state, input(150, false, true, "{\"c\":1}"), 50);
        assert_eq!(step.cancelled.map(|open| open.start_event), Some("{\"s\":1}".into()));
        assert!(state.is_none());
        // An event matching both restarts: cancels nothing (no window), then starts.
        let step = trigger(&mut state, input(200, true, true, "{\"b\":1}"), 50);
        assert_eq!(step.opened, Some(250));
        let step = trigger(&mut state, input(210, true, true, "{\"b\":2}"), 50);
        assert!(step.cancelled.is_some());
        assert_eq!(step.opened, Some(260));
    }

    #[test]
    fn an_expired_window_fires_before_the_next_event_of_its_key() {
        let mut state = None;
        trigger(&mut state, input(0, true, false, "{\"s\":1}"), 50);
        // G27: at the deadline itself the window is still open, so a cancel closes it.
        let mut at_deadline = state.clone();
        let step = trigger(&mut at_deadline, input(50, false, true, "{\"c\":1}"), 50);
        assert_eq!((step.expired, step.cancelled.is_some()), (None, true));
        // G53: past the deadline the window fires first; a start then opens a new one.
        let step = trigger(&mut state, input(51, true, false, "{\"s\":2}"), 50);
        assert_eq!(step.expired.map(|open| (open.deadline, open.start_event)), Some((50, "{\"s\":1}".into())));
        assert_eq!(step.opened, Some(101));
        // A late cancel meets no window: nothing is cancelled.
        let step = trigger(&mut state, input(200, false, true, "{\"c\":2}"), 50);
        assert!(step.expired.is_some() && step.cancelled.is_none() && state.is_none());
    }

    #[test]
    fn a_due_pending_event_is_taken_before_the_next_event() {
        let pending = |fire_at| PendingEvent { fire_at, text: "{}".into(), event_time: 0, entry_time: 0 };
        let mut state = Some(pending(100));
        assert_eq!(take_due(&mut state, 100), None, "due at the event's own time: still pending");
        assert_eq!(take_due(&mut state, 101), Some(pending(100)));
        assert_eq!(state, None);
    }

    #[test]
    fn counters_decay_at_the_bucket_boundaries_where_buckets_leave_their_windows() {
        let hour = 3_600_000u64;
        let windows = [2 * hour, 3 * hour];
        let mut state = SegmentationState::default();
        assert_eq!(state.update(10, hour, &[true, true], &windows), [1, 1]);
        // Bucket 0 leaves the 2h counter at 2h and the 3h counter at 3h.
        assert_eq!(state.plan_refresh("{\"e\":1}", 10, hour, &windows), Some(2 * hour as i64));
        // A second event in bucket 1 plans the same first boundary: no second timer.
        assert_eq!(state.update(hour as i64 + 5, hour, &[true, false], &windows), [2, 1]);
        assert_eq!(state.plan_refresh("{\"e\":2}", hour as i64 + 5, hour, &windows), None);
        assert_eq!(state.refresh_due(2 * hour as i64 - 1), None);
        assert_eq!(state.refresh_due(2 * hour as i64), Some(2 * hour as i64));
        // A stale boundary does nothing.
        assert_eq!(state.refresh_step(hour as i64, hour, &windows, None), None);
        let (values, event) = state.refresh_step(2 * hour as i64, hour, &windows, None).expect("due");
        assert_eq!((values, &*event), (vec![1, 1], "{\"e\":2}"));
        let (values, _) = state.refresh_step(3 * hour as i64, hour, &windows, None).expect("due");
        assert_eq!(values, [0, 0]);
        assert_eq!(state.refresh.as_ref().map(|(at, _)| *at), None, "bucket 1 left both windows at 3h");
        assert_eq!(decode::<SegmentationState>(&encode(&state)), Ok(state.clone()));
        // The TTL ends refreshes: the key's state is gone, not emitted.
        let mut short = SegmentationState::default();
        short.update(0, hour, &[true, true], &windows);
        short.plan_refresh("{}", 0, hour, &windows);
        assert_eq!(short.refresh_step(2 * hour as i64, hour, &windows, Some(hour)), None);
        // A state with a planned refresh round-trips.
        assert_eq!(decode::<SegmentationState>(&encode(&short)), Ok(short));
    }

    #[test]
    fn stored_counts_and_segments_follow_their_names_across_edits() {
        static OLD: SegmentNames =
            SegmentNames { counters: &[name_id("a"), name_id("b")], segments: &[name_id("x"), name_id("y")] };
        static NEW: SegmentNames =
            SegmentNames { counters: &[name_id("c"), name_id("b")], segments: &[name_id("y"), name_id("z")] };
        let hour = 3_600_000u64;
        let windows = [2 * hour, 2 * hour];
        let mut state = SegmentationState::for_event(None, 0, None, &OLD);
        state.update(0, hour, &[true, true], &windows);
        state.update(hour as i64, hour, &[true, false], &windows);
        state.segments_changed(&[0, 1]);
        let bytes = encode(&state);
        let load = |names| SegmentationState::for_event(Some(decode(&bytes).expect("decodes")), 0, None, names);
        // The same names read the state as written.
        let same = load(&OLD);
        assert_eq!((&same.buckets, &same.segments), (&state.buckets, &state.segments));
        // `b` keeps its count, `c` starts at 0, `a`'s counts are gone (bucket 1 counted only `a`);
        // `y` is still active (now the first segment), `x` is gone.
        let edited = load(&NEW);
        assert_eq!(edited.buckets, [(0, vec![0, 1])]);
        assert_eq!(edited.segments, [0]);
        assert_eq!(edited.clone().update(hour as i64, hour, &[true, true], &windows), [1, 2]);
        // Written back, it reads the same under the new names.
        let again = SegmentationState::for_event(Some(decode(&encode(&edited)).expect("decodes")), 0, None, &NEW);
        assert_eq!(again, edited);
        assert_ne!(name_id("a"), name_id("b"));
    }

    #[test]
    fn name_ids_are_32_bit_fnv_1a() {
        // The published FNV-1a test vectors; code generation computes the same function.
        assert_eq!((name_id(""), name_id("a"), name_id("foobar")), (0x811c_9dc5, 0xe40c_292c, 0xbf9c_f968));
        // A known clash, which code generation refuses (E0904).
        assert_eq!(name_id("costarring"), name_id("liquid"));
    }

    #[test]
    fn history_answers_inclusive_ranges() {
        let mut history = HistoryState::default();
        history.record(100);
        history.record(50);
        assert!(history.any_between(100, 100));
        assert!(history.any_between(0, 60));
        assert!(!history.any_between(51, 99));
    }

    #[test]
    fn windows_are_epoch_aligned_even_when_slide_does_not_divide_size() {
        assert_eq!(windows_containing(7, 10, 10), [(0, 10)]);
        assert_eq!(windows_containing(12, 10, 5), [(5, 15), (10, 20)]);
        assert_eq!(windows_containing(-1, 10, 10), [(-10, 0)]);
        assert_eq!(windows_containing(9, 10, 4), [(0, 10), (4, 14), (8, 18)]);
    }

    #[test]
    fn aggregates_follow_g50() {
        let kinds = [
            AggregateKind::Count,
            AggregateKind::CountField,
            AggregateKind::Sum,
            AggregateKind::Avg,
            AggregateKind::Min,
            AggregateKind::CountDistinct,
            AggregateKind::First,
            AggregateKind::Last,
        ];
        let mut state = WindowsState { key_json: "\"u1\"".into(), windows: Vec::new() };
        let idx = state.window(0, 10, &kinds);
        for (time, value) in [(5, Val::Int(2)), (3, Val::Null), (4, Val::Int(3)), (4, Val::Str("x".into()))] {
            for (accumulator, kind) in state.windows[idx].accumulators.iter_mut().zip(kinds) {
                accumulator.add(kind, &value, time);
            }
        }
        let names = ["n", "nf", "sum", "avg", "min", "distinct", "first", "last"];
        assert_eq!(
            state.result(idx, &names),
            r#"{"key":"u1","window_start":0,"window_end":10,"n":4,"nf":3,"sum":5,"avg":2.5,"min":2,"distinct":3,"first":3,"last":2}"#
        );
        assert_eq!(decode::<WindowsState>(&encode(&state)), Ok(state));
    }

    #[test]
    fn sessions_merge_when_they_touch() {
        let kinds = [AggregateKind::Count];
        let mut state = WindowsState::default();
        let (idx, _) = state.session(0, 10, &kinds);
        state.windows[idx].accumulators[0].add(AggregateKind::Count, &Val::Absent, 0);
        let (idx, _) = state.session(20, 10, &kinds);
        state.windows[idx].accumulators[0].add(AggregateKind::Count, &Val::Absent, 20);
        assert_eq!(state.windows.len(), 2);
        // 10 touches [0, 10) and [20, 30) touches [10, 20): one session [0, 30).
        let (idx, stale) = state.session(10, 10, &kinds);
        state.windows[idx].accumulators[0].add(AggregateKind::Count, &Val::Absent, 10);
        assert_eq!(stale, [(0, 10), (20, 30)]);
        assert_eq!(state.windows.len(), 1);
        assert_eq!((state.windows[0].start, state.windows[0].end), (0, 30));
        assert_eq!(state.windows[0].accumulators[0], Accumulator::Count(3));
    }
}
