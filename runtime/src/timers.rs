//! The pure core of time: per-source watermarks (G26, G31) and the timer queue ordered by
//! (time, registration order) (G27, G28, G35). No I/O here, so the rules are tested directly.

use std::collections::BTreeMap;

use crate::{TimeDomain, Timer};

/// Event-time progress of every source. A source's watermark is −∞ until it observes an event
/// time, then max(event time) − maxOutOfOrderness; at the end of its input it is +∞. The
/// pipeline watermark is the minimum over sources.
#[derive(Clone, Debug)]
pub struct SourceWatermarks {
    max_event_time: Vec<i64>,
    max_out_of_orderness: Vec<i64>,
    finished: Vec<bool>,
}

impl SourceWatermarks {
    pub fn new(max_out_of_orderness: Vec<i64>) -> Self {
        let source_count = max_out_of_orderness.len();
        SourceWatermarks {
            max_event_time: vec![i64::MIN; source_count],
            max_out_of_orderness,
            finished: vec![false; source_count],
        }
    }

    /// Records the largest event time seen in one record step of `source`.
    pub fn observe(&mut self, source: usize, event_time: i64) {
        if let Some(current) = self.max_event_time.get_mut(source) {
            *current = (*current).max(event_time);
        }
    }

    /// The source reached the end of its input: its watermark jumps to +∞ (G31).
    pub fn finish(&mut self, source: usize) {
        if let Some(finished) = self.finished.get_mut(source) {
            *finished = true;
        }
    }

    /// The largest event time `source` observed (`i64::MIN` for none), for checkpoints.
    pub fn max_event_time(&self, source: usize) -> i64 {
        self.max_event_time[source]
    }

    pub fn source_watermark(&self, source: usize) -> i64 {
        if self.finished[source] {
            return i64::MAX;
        }
        match self.max_event_time[source] {
            i64::MIN => i64::MIN,
            seen => seen.saturating_sub(self.max_out_of_orderness[source]),
        }
    }

    /// The minimum over sources; +∞ when there are none.
    pub fn pipeline_watermark(&self) -> i64 {
        (0..self.finished.len()).map(|source| self.source_watermark(source)).min().unwrap_or(i64::MAX)
    }
}

/// The watermark operators see while the timer for `timer_time` fires (G28): the timer's time,
/// clamped between the watermark before the step and the watermark after it.
pub fn watermark_during_timer(watermark_before: i64, watermark_after: i64, timer_time: i64) -> i64 {
    watermark_before.max(watermark_after.min(timer_time))
}

/// Bits of a timer's registration sequence below its shard.
pub const SHARD_SHIFT: u32 = 40;
const COUNTER_MASK: u64 = (1 << SHARD_SHIFT) - 1;

/// The shard a timer belongs to: 0 for the instance's own timers, `partition + 1` for timers
/// registered by a step of a Kafka partition whose state follows it across instances.
pub fn shard_of(sequence: u64) -> u32 {
    (sequence >> SHARD_SHIFT) as u32
}

/// Pending timers of both domains, each ordered by (time, registration sequence). The sequence
/// is shared by both domains so the end-of-input flush can merge them in registration order.
/// A sequence is `shard << 40 | counter` with one counter per shard, so the owner of a Kafka
/// partition numbers the partition's timers on from where the previous owner stopped, and the
/// `pulse-id` of their outputs stays the same whichever instance fires them.
///
/// For durable timers the queue also records what changed since the last checkpoint: timers
/// registered since (counter at or above the shard's boundary) and committed timers that fired
/// since.
#[derive(Debug, Default)]
pub struct TimerQueue {
    /// Per shard (each fires by its own watermark when partitions are tasks).
    event_timers: BTreeMap<u32, BTreeMap<(i64, u64), Timer>>,
    processing_timers: BTreeMap<(i64, u64), Timer>,
    /// Next counter per shard (absent: 0).
    counters: BTreeMap<u32, u64>,
    /// Per shard: counters below it are committed in the last checkpoint.
    boundaries: BTreeMap<u32, u64>,
    /// Committed timers popped since the last checkpoint.
    fired_committed: Vec<u64>,
    /// (domain, time, sequence) of the timers registered since the last checkpoint.
    added: Vec<(TimeDomain, i64, u64)>,
    /// Whether to record changes (only when checkpoints are on).
    tracking: bool,
    /// Registration sequence of the timer popped last (names the origin of its outputs).
    last_popped: u64,
}

/// What changed in the queue since the last checkpoint.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TimerChanges<'a> {
    /// Timers registered since and still pending, with their sequence.
    pub added: Vec<(u64, &'a Timer)>,
    /// Sequences of committed timers that fired since.
    pub removed: Vec<u64>,
}

impl TimerQueue {
    pub fn new() -> Self {
        TimerQueue::default()
    }

    /// Registers a timer of the instance's own shard (0).
    pub fn schedule(&mut self, timer: Timer) {
        self.schedule_in(0, timer);
    }

    /// Registers a timer of `shard`.
    pub fn schedule_in(&mut self, shard: u32, timer: Timer) {
        let counter = self.counters.entry(shard).or_insert(0);
        let sequence = (u64::from(shard) << SHARD_SHIFT) | *counter;
        *counter += 1;
        if self.tracking {
            self.added.push((timer.domain, timer.time, sequence));
        }
        self.queue_mut(timer.domain, sequence).insert((timer.time, sequence), timer);
    }

    fn queue_mut(&mut self, domain: TimeDomain, sequence: u64) -> &mut BTreeMap<(i64, u64), Timer> {
        match domain {
            TimeDomain::Event => self.event_timers.entry(shard_of(sequence)).or_default(),
            TimeDomain::Processing => &mut self.processing_timers,
        }
    }

    pub fn len(&self) -> usize {
        self.event_timers.values().map(BTreeMap::len).sum::<usize>() + self.processing_timers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sequence the next timer of shard 0 gets.
    pub fn next_sequence(&self) -> u64 {
        self.shard_counter(0)
    }

    /// The counter the next timer of `shard` gets.
    pub fn shard_counter(&self, shard: u32) -> u64 {
        self.counters.get(&shard).copied().unwrap_or(0)
    }

    /// Continues the numbering of `shard` at `counter` (never going back), as recorded by the
    /// partition's previous owner.
    pub fn set_shard_counter(&mut self, shard: u32, counter: u64) {
        let next = self.counters.entry(shard).or_insert(0);
        *next = (*next).max(counter);
        let boundary = self.boundaries.entry(shard).or_insert(0);
        *boundary = (*boundary).max(counter);
    }

    /// Every pending timer with its registration sequence, by (time, sequence) per domain.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Timer)> {
        self.event_timers
            .values()
            .flatten()
            .chain(&self.processing_timers)
            .map(|(&(_, sequence), timer)| (sequence, timer))
    }

    /// Puts back a committed timer with its original sequence, so the firing order is
    /// unchanged; `next_sequence` is the shard-0 counter at that checkpoint.
    pub fn restore(&mut self, sequence: u64, timer: Timer, next_sequence: u64) {
        let shard = shard_of(sequence);
        let floor = if shard == 0 { next_sequence } else { 0 };
        self.set_shard_counter(shard, floor.max((sequence & COUNTER_MASK) + 1));
        self.queue_mut(timer.domain, sequence).insert((timer.time, sequence), timer);
    }

    /// Takes out every pending timer whose shard `keep` rejects (the partition went to another
    /// instance); they are neither fired nor reported as changes.
    pub fn take_shards(&mut self, keep: impl Fn(u32) -> bool) -> Vec<(u64, Timer)> {
        let mut taken = Vec::new();
        let moving: Vec<u32> = self.event_timers.keys().filter(|shard| !keep(**shard)).copied().collect();
        for shard in moving {
            if let Some(queue) = self.event_timers.remove(&shard) {
                taken.extend(queue.into_iter().map(|((_, sequence), timer)| (sequence, timer)));
            }
        }
        let queue = &mut self.processing_timers;
        let moving: Vec<(i64, u64)> =
            queue.keys().filter(|(_, sequence)| !keep(shard_of(*sequence))).copied().collect();
        for key in moving {
            if let Some(timer) = queue.remove(&key) {
                taken.push((key.1, timer));
            }
        }
        self.added.retain(|(_, _, sequence)| keep(shard_of(*sequence)));
        taken
    }

    /// Drops the pending timers with these sequences without reporting them as fired (a
    /// partition's changelog says another instance fired them).
    pub fn forget(&mut self, sequences: &std::collections::HashSet<u64>) {
        if sequences.is_empty() {
            return;
        }
        for queue in self.event_timers.values_mut() {
            queue.retain(|(_, sequence), _| !sequences.contains(sequence));
        }
        self.processing_timers.retain(|(_, sequence), _| !sequences.contains(sequence));
    }

    /// Starts recording changes for incremental checkpoints; everything pending now counts as
    /// committed.
    pub fn track_changes(&mut self) {
        self.tracking = true;
        self.boundaries = self.counters.clone();
    }

    /// Everything pending counts as new: the next checkpoint writes every timer (after a
    /// savepoint was loaded into an empty state directory).
    pub fn mark_all_new(&mut self) {
        self.tracking = true;
        self.boundaries.clear();
        self.added = self.iter().map(|(sequence, timer)| (timer.domain, timer.time, sequence)).collect();
    }

    /// Reports every pending timer of `shard` as registered since the last checkpoint (a
    /// savepoint's timers handed to the partition's changelog); returns how many there are.
    pub fn mark_shard_new(&mut self, shard: u32) -> usize {
        self.added.retain(|(_, _, sequence)| shard_of(*sequence) != shard);
        let new: Vec<(TimeDomain, i64, u64)> = self
            .iter()
            .filter(|(sequence, _)| shard_of(*sequence) == shard)
            .map(|(sequence, timer)| (timer.domain, timer.time, sequence))
            .collect();
        let count = new.len();
        self.added.extend(new);
        count
    }

    /// The changes since the last checkpoint.
    pub fn changes(&self) -> TimerChanges<'_> {
        let added = self
            .added
            .iter()
            .filter_map(|&(domain, time, sequence)| {
                let queue = match domain {
                    TimeDomain::Event => self.event_timers.get(&shard_of(sequence))?,
                    TimeDomain::Processing => &self.processing_timers,
                };
                queue.get(&(time, sequence)).map(|timer| (sequence, timer))
            })
            .collect();
        TimerChanges { added, removed: self.fired_committed.clone() }
    }

    /// The changes are in a committed checkpoint.
    pub fn mark_committed(&mut self) {
        self.added.clear();
        self.fired_committed.clear();
        self.boundaries = self.counters.clone();
    }

    /// The registration sequence of the timer popped last.
    pub fn last_popped(&self) -> u64 {
        self.last_popped
    }

    fn popped(&mut self, sequence: u64) {
        self.last_popped = sequence;
        let boundary = self.boundaries.get(&shard_of(sequence)).copied().unwrap_or(0);
        if self.tracking && (sequence & COUNTER_MASK) < boundary {
            self.fired_committed.push(sequence);
        }
    }

    /// The next event-time timer that is due: the watermark is strictly above its time (G27).
    pub fn pop_due_event(&mut self, watermark: i64) -> Option<Timer> {
        let shard = self
            .event_timers
            .iter()
            .filter_map(|(shard, queue)| queue.first_key_value().map(|(key, _)| (*key, *shard)))
            .min()?
            .1;
        self.pop_due_event_in(shard, watermark)
    }

    /// The next due event-time timer of `shard`, by that shard's watermark.
    pub fn pop_due_event_in(&mut self, shard: u32, watermark: i64) -> Option<Timer> {
        let queue = self.event_timers.get_mut(&shard)?;
        let (&(time, _), _) = queue.first_key_value()?;
        if watermark > time {
            let ((_, sequence), timer) = queue.pop_first()?;
            if queue.is_empty() {
                self.event_timers.remove(&shard);
            }
            self.popped(sequence);
            Some(timer)
        } else {
            None
        }
    }

    /// Shards with pending event-time timers.
    pub fn event_shards(&self) -> Vec<u32> {
        self.event_timers.keys().copied().collect()
    }

    /// The next processing-time timer due before the line arriving at `arrival`: a timer for T
    /// fires before the first line arriving after T (G35).
    pub fn pop_due_processing(&mut self, arrival: i64) -> Option<Timer> {
        let (&(time, _), _) = self.processing_timers.first_key_value()?;
        if arrival > time {
            let ((_, sequence), timer) = self.processing_timers.pop_first()?;
            self.popped(sequence);
            Some(timer)
        } else {
            None
        }
    }

    /// The next timer of either domain by (time, registration order), for the end-of-input
    /// flush where every timer fires.
    pub fn pop_next(&mut self) -> Option<Timer> {
        let next_event = self
            .event_timers
            .iter()
            .filter_map(|(shard, queue)| queue.first_key_value().map(|(key, _)| (*key, *shard)))
            .min();
        let next_processing = self.processing_timers.first_key_value().map(|(key, _)| *key);
        let take_event = match (next_event, next_processing) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((event_key, _)), Some(processing_key)) => event_key < processing_key,
        };
        if take_event {
            let shard = next_event?.1;
            let queue = self.event_timers.get_mut(&shard)?;
            let ((_, sequence), timer) = queue.pop_first()?;
            if queue.is_empty() {
                self.event_timers.remove(&shard);
            }
            self.popped(sequence);
            return Some(timer);
        }
        let ((_, sequence), timer) = self.processing_timers.pop_first()?;
        self.popped(sequence);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TimerKind;

    fn timer(node: u32, time: i64, domain: TimeDomain) -> Timer {
        Timer { node, time, domain, kind: TimerKind::Carry("{}".into()), event_time: time, entry_time: time, key: None }
    }

    #[test]
    fn g26_g31_source_watermarks() {
        let mut watermarks = SourceWatermarks::new(vec![0, 10]);
        assert_eq!(watermarks.pipeline_watermark(), i64::MIN);
        watermarks.observe(0, 100);
        assert_eq!(watermarks.source_watermark(0), 100);
        assert_eq!(watermarks.pipeline_watermark(), i64::MIN, "the second source has seen nothing");
        watermarks.observe(1, 50);
        assert_eq!(watermarks.pipeline_watermark(), 40);
        watermarks.observe(1, 20);
        assert_eq!(watermarks.source_watermark(1), 40, "an older event never moves it back");
        watermarks.finish(1);
        assert_eq!(watermarks.pipeline_watermark(), 100);
        watermarks.finish(0);
        assert_eq!(watermarks.pipeline_watermark(), i64::MAX);
        assert_eq!(SourceWatermarks::new(Vec::new()).pipeline_watermark(), i64::MAX);
    }

    #[test]
    fn g28_watermark_seen_by_a_firing_timer() {
        // One event moved the watermark from 10 to 1000; a timer at 50 sees 50.
        assert_eq!(watermark_during_timer(10, 1000, 50), 50);
        // A timer below the old watermark (registered in the past) sees the old watermark.
        assert_eq!(watermark_during_timer(10, 1000, 5), 10);
        // End of input: the new watermark is +∞, the timer sees its own time.
        assert_eq!(watermark_during_timer(10, i64::MAX, 70), 70);
    }

    #[test]
    fn g27_event_timers_fire_strictly_after_the_watermark_passes() {
        let mut queue = TimerQueue::new();
        queue.schedule(timer(1, 100, TimeDomain::Event));
        assert!(queue.pop_due_event(99).is_none());
        assert!(queue.pop_due_event(100).is_none(), "W = T is not yet due");
        assert_eq!(queue.pop_due_event(101).map(|fired| fired.time), Some(100));
        assert!(queue.is_empty());
    }

    #[test]
    fn g28_timers_fire_in_time_then_registration_order() {
        let mut queue = TimerQueue::new();
        queue.schedule(timer(1, 30, TimeDomain::Event));
        queue.schedule(timer(2, 10, TimeDomain::Event));
        queue.schedule(timer(3, 10, TimeDomain::Event));
        queue.schedule(timer(4, 20, TimeDomain::Event));
        let mut fired = Vec::new();
        while let Some(next) = queue.pop_due_event(i64::MAX) {
            fired.push(next.node);
        }
        assert_eq!(fired, vec![2, 3, 4, 1]);
    }

    #[test]
    fn g35_processing_timers_fire_before_the_first_later_line() {
        let mut queue = TimerQueue::new();
        queue.schedule(timer(1, 5, TimeDomain::Processing));
        assert!(queue.pop_due_processing(5).is_none(), "a line arriving at T is processed first");
        assert_eq!(queue.pop_due_processing(6).map(|fired| fired.node), Some(1));
    }

    #[test]
    fn end_of_input_merges_domains_by_time_and_registration() {
        let mut queue = TimerQueue::new();
        queue.schedule(timer(1, 20, TimeDomain::Processing));
        queue.schedule(timer(2, 20, TimeDomain::Event));
        queue.schedule(timer(3, 10, TimeDomain::Event));
        queue.schedule(timer(4, 15, TimeDomain::Processing));
        let mut fired = Vec::new();
        while let Some(next) = queue.pop_next() {
            fired.push(next.node);
        }
        assert_eq!(fired, vec![3, 4, 1, 2]);
    }

    #[test]
    fn restored_timers_keep_their_order_and_changes_are_tracked() {
        let mut queue = TimerQueue::new();
        queue.schedule(timer(1, 10, TimeDomain::Event));
        queue.schedule(timer(2, 10, TimeDomain::Event));
        queue.schedule(timer(3, 5, TimeDomain::Processing));
        let saved: Vec<(u64, Timer)> = queue.iter().map(|(sequence, timer)| (sequence, timer.clone())).collect();
        let next = queue.next_sequence();
        let mut restored = TimerQueue::new();
        for (sequence, timer) in saved.into_iter().rev() {
            restored.restore(sequence, timer, next);
        }
        restored.track_changes();
        assert_eq!(restored.next_sequence(), 3);
        assert_eq!(restored.changes(), TimerChanges::default());
        assert_eq!(restored.pop_due_event(11).map(|fired| fired.node), Some(1));
        restored.schedule(timer(4, 10, TimeDomain::Event));
        restored.schedule(timer(5, 50, TimeDomain::Event));
        assert_eq!(restored.pop_due_event(11).map(|fired| fired.node), Some(2));
        assert_eq!(restored.pop_due_event(11).map(|fired| fired.node), Some(4), "fired before any checkpoint");
        let changes = restored.changes();
        assert_eq!(changes.removed, vec![0, 1]);
        assert_eq!(changes.added.iter().map(|(sequence, _)| *sequence).collect::<Vec<_>>(), vec![4]);
        restored.mark_committed();
        assert_eq!(restored.changes(), TimerChanges::default());
        assert_eq!(restored.pop_next().map(|fired| fired.node), Some(3));
        assert_eq!(restored.changes().removed, vec![2]);
    }

    #[test]
    fn shards_number_their_timers_fire_by_their_own_watermark_and_move_out_and_back() {
        let mut queue = TimerQueue::new();
        queue.track_changes();
        queue.schedule_in(1, timer(1, 10, TimeDomain::Event));
        queue.schedule_in(2, timer(2, 5, TimeDomain::Event));
        queue.schedule_in(1, timer(3, 20, TimeDomain::Event));
        queue.schedule(timer(4, 1, TimeDomain::Event));
        let sequences: Vec<u64> = queue.iter().map(|(sequence, _)| sequence).collect();
        assert!(sequences.contains(&(1 << SHARD_SHIFT)) && sequences.contains(&((1 << SHARD_SHIFT) + 1)));
        assert!(sequences.contains(&(2 << SHARD_SHIFT)) && sequences.contains(&0));
        assert_eq!((queue.shard_counter(1), queue.shard_counter(2), queue.next_sequence()), (2, 1, 1));
        // Shard 1's watermark does not fire shard 2's earlier timer.
        assert_eq!(queue.pop_due_event_in(1, 15).map(|fired| fired.node), Some(1));
        assert!(queue.pop_due_event_in(1, 15).is_none());
        assert_eq!(queue.pop_due_event_in(2, 6).map(|fired| fired.node), Some(2));
        // The partition of shard 1 moves away: its timer leaves the queue unfired.
        let taken = queue.take_shards(|shard| shard != 1);
        assert_eq!(taken.iter().map(|(_, timer)| timer.node).collect::<Vec<_>>(), vec![3]);
        assert_eq!(queue.len(), 1);
        assert!(queue.changes().added.iter().all(|(sequence, _)| shard_of(*sequence) != 1));
        // It comes back with a changelog saying the previous owner registered two more and fired
        // the taken one: numbering continues after theirs.
        let (sequence, back) = taken.into_iter().next().expect("taken");
        queue.restore(sequence, back, 0);
        queue.set_shard_counter(1, 4);
        queue.forget(&std::iter::once(sequence).collect());
        queue.schedule_in(1, timer(5, 30, TimeDomain::Event));
        assert!(queue.iter().any(|(sequence, timer)| timer.node == 5 && sequence == (1 << SHARD_SHIFT) + 4));
        assert_eq!(queue.pop_due_event_in(1, i64::MAX).map(|fired| fired.node), Some(5));
        assert_eq!(queue.pop_next().map(|fired| fired.node), Some(4));
        assert!(queue.is_empty());
    }
}
