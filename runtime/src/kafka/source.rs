//! The kafka-source reader: group membership and rebalances, positions from the checkpoint,
//! pausing while the driver is busy, `--until-end`, and records of the repartition topic.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use super::admin::topic_partitions;
use super::config::{
    describe, duration_from_env, forward_log, record_stable_ends, transient, Error, KafkaEnv, Offsets, CALL_TIMEOUT,
    OUTAGE_REPORT_EVERY,
};
use super::partitions::{PartitionTable, Slot};
use crate::KafkaStart;

/// `--until-end`: after every partition reached its end offset, the source also waits this long
/// after its partitions were assigned and after the last record before it ends (some brokers
/// report end offsets late).
pub(super) const END_QUIET: Duration = Duration::from_secs(4);

/// `--until-end`: how often a member without partitions asks whether the group is done.
const GROUP_END_CHECK: Duration = Duration::from_secs(1);

/// Records the group's rebalances for the driver, which answers them between two steps: a
/// revocation after a checkpoint (so nothing processed is handed over uncommitted), an
/// assignment after the partitions' state was restored, at the offsets this run has reached
/// (at start: the checkpoint's or the changelog's), else at the start `readSetting` asks for.
/// librdkafka waits for that answer (the application may call `assign` after the callback).
pub(super) struct SourceContext {
    /// Rebalances the driver has not answered yet.
    rebalances: Mutex<Vec<Rebalance>>,
    pending: AtomicBool,
    /// The consumer is closing: answer rebalances at once.
    closing: AtomicBool,
    start: KafkaStart,
    /// Per partition: the last stable offset (the end a `read_committed` consumer can reach)
    /// from the client's statistics, for the consumer-lag metric.
    ends: Mutex<Offsets>,
}

impl ClientContext for SourceContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        forward_log(level, facility, message);
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        record_stable_ends(&self.ends, statistics);
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let assign = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        if self.closing.load(Ordering::Relaxed) {
            let outcome = if assign { consumer.assign(tpl) } else { consumer.unassign() };
            if let Err(error) = outcome {
                tracing::warn!("{}", describe("answering a rebalance while closing", &error));
            }
            return;
        }
        let partitions: Vec<(String, i32)> =
            tpl.elements().iter().map(|element| (element.topic().to_string(), element.partition())).collect();
        let event = if assign { Rebalance::Assign(partitions) } else { Rebalance::Revoke(partitions) };
        self.rebalances.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(event);
        self.pending.store(true, Ordering::Release);
    }
}

/// A rebalance of a source's consumer group, answered by the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rebalance {
    Assign(Vec<(String, i32)>),
    /// Also partitions lost without a revocation (the session expired).
    Revoke(Vec<(String, i32)>),
}

/// `topic [0, 2]` for log lines (partitions of several topics: `a [0], b [1]`).
pub fn describe_partitions(partitions: &[(String, i32)]) -> String {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    if by_topic.is_empty() {
        return "nothing".to_string();
    }
    by_topic
        .into_iter()
        .map(|(topic, mut list)| {
            list.sort_unstable();
            let list: Vec<String> = list.iter().map(i32::to_string).collect();
            format!("{topic} [{}]", list.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one poll of a source gave.
pub enum Polled {
    /// A record; its payload was appended to the line buffer. `upstream`: the source record a
    /// repartitioned record copies.
    Record { topic: Arc<str>, partition: i32, offset: i64, upstream: Option<(String, i32, i64)> },
    /// Nothing within the poll timeout.
    Idle,
    /// `--until-end`: every partition reached the end it had when the run started.
    End,
}

/// With no poll for this long (a sink blocking the pipeline: Redis down, a full HTTP queue, a
/// slow commit or restore), the source pauses its partitions and a thread of its own keeps
/// polling: nothing more is fetched, and the group does not evict the member for exceeding
/// `max.poll.interval.ms`. The next poll of the driver resumes them.
pub(super) const PAUSE_AFTER: Duration = Duration::from_secs(2);

/// How often the keep-alive thread looks at the driver's last poll.
pub(super) const KEEP_ALIVE_TICK: Duration = Duration::from_millis(200);

/// At most this many records are kept from the keep-alive thread's polls (only records fetched
/// before the pause can arrive; the bound holds whatever librdkafka does).
pub(super) const STASH_LIMIT: usize = 10_000;

/// What the driver's polls and the keep-alive thread share; either polls the consumer only
/// while holding it, so records keep their order.
pub(super) struct Gate {
    /// How many times the driver polled (the keep-alive thread notices when it stops).
    polls: u64,
    /// Since when the partitions are paused, and how many.
    paused: Option<(Instant, usize)>,
    /// What the keep-alive thread's polls received, handed to the driver first.
    stash: VecDeque<Result<OwnedMessage, KafkaError>>,
    /// Times the source paused.
    pauses: u64,
}

pub(super) fn lock_gate(gate: &Mutex<Gate>) -> MutexGuard<'_, Gate> {
    gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The keep-alive thread (see `PAUSE_AFTER`).
pub(super) fn keep_alive(
    consumer: &BaseConsumer<SourceContext>,
    gate: &Mutex<Gate>,
    stop: &AtomicBool,
    pause_after: Duration,
) {
    // The driver's poll count at the last tick, and since when it has not changed.
    let (mut polls, mut since) = (u64::MAX, Instant::now());
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(KEEP_ALIVE_TICK);
        let mut gate = lock_gate(gate);
        if gate.polls != polls {
            (polls, since) = (gate.polls, Instant::now());
        }
        if since.elapsed() < pause_after {
            continue;
        }
        // Everything assigned, including partitions assigned while paused.
        if let Ok(assignment) = consumer.assignment() {
            let count = assignment.count();
            if count > 0 && gate.paused.is_none_or(|(_, paused)| paused != count) {
                if let Err(error) = consumer.pause(&assignment) {
                    tracing::warn!("{}", describe("pausing partitions", &error));
                }
                if gate.paused.is_none() {
                    gate.pauses += 1;
                    tracing::info!(
                        "kafka: no poll for {} ms (a sink or a checkpoint is holding the pipeline): paused {count} partitions",
                        since.elapsed().as_millis()
                    );
                }
                let since = gate.paused.map_or_else(Instant::now, |(since, _)| since);
                gate.paused = Some((since, count));
            }
        }
        // Serves the group protocol and `max.poll.interval.ms`; keeps whatever arrives.
        while gate.stash.len() < STASH_LIMIT {
            match consumer.poll(Duration::ZERO) {
                None => break,
                Some(polled) => gate.stash.push_back(polled.map(|message| message.detach())),
            }
        }
    }
}

/// One kafka-source's consumer.
pub struct KafkaReader {
    consumer: Arc<BaseConsumer<SourceContext>>,
    gate: Arc<Mutex<Gate>>,
    /// Stops and joins the keep-alive thread.
    keep_alive: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    /// The stage that fills the repartition topic this reader reads, when it reads one.
    repartitioner: Option<super::repartition::Repartitioner>,
    /// `--until-end`: the high watermark of every partition at start.
    end: Option<Offsets>,
    /// Partitions whose records below the offset were committed by a transaction the local
    /// checkpoint does not include: replayed with transactional output muted.
    replay_until: Offsets,
    /// Per partition: the next offset, the largest event time seen (the source's watermark is
    /// the minimum over its assigned partitions, so one partition running ahead does not make
    /// another's records late), when it last gave a record, its end (`--until-end`).
    table: PartitionTable,
    /// Partitions currently assigned, and when the group assigned them (`None`: not yet).
    assigned: Vec<(String, i32)>,
    assigned_at: Option<Instant>,
    /// The slots of the assigned partitions and of those the checkpoint has positions for
    /// (`known`): the partitions that hold the watermark back.
    watched: Vec<Slot>,
    /// Records read, and (`--until-end`) the count at the last look with the time of the first
    /// look that saw it unchanged: no record came since then.
    records: u64,
    quiet_since: (u64, Option<Instant>),
    /// `--until-end`: since when the member waits for partitions, and when it last asked for
    /// the group's committed offsets (see `group_finished`).
    waiting_since: Option<Instant>,
    group_checked: Option<Instant>,
    /// Records without a payload (tombstones); they reach the driver as empty lines.
    pub tombstones: u64,
    /// When a broker outage was last reported.
    last_outage_report: Option<std::time::Instant>,
    /// Partitions the checkpoint has positions for.
    known: Vec<(String, i32)>,
    /// `--until-end`: where partitions held without a known position started (see
    /// `record_start_offsets`).
    start_offsets: Offsets,
    opened: std::time::Instant,
    /// A partition without records for this long stops holding the watermark back.
    idle_timeout: Duration,
    /// The consumer group.
    group: String,
    /// The most partitions of any subscribed topic.
    partition_count: i32,
    topics: Vec<String>,
}

impl Drop for KafkaReader {
    fn drop(&mut self) {
        // Closing the consumer revokes its partitions through the callback: answer at once.
        self.consumer.context().closing.store(true, Ordering::Relaxed);
        if let Some((stop, thread)) = self.keep_alive.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
    }
}

/// A partition without records this long stops holding the watermark back
/// (`PULSE_KAFKA_IDLE_TIMEOUT` changes it).
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct SourceSettings<'a> {
    pub pipeline: &'a str,
    pub node: &'a str,
    pub topics: &'a [&'a str],
    pub brokers: Option<&'a str>,
    pub group_id: Option<&'a str>,
    pub start: KafkaStart,
    pub until_end: bool,
    /// Ask the client for statistics every second (the consumer-lag metric needs them).
    pub statistics: bool,
}

/// The consumer group of a source: `PULSE_KAFKA_GROUP_ID`, else its `groupId`, else
/// `pulse-<pipeline>-<node>`.
pub fn group_name(env: &KafkaEnv, settings: &SourceSettings<'_>) -> String {
    source_group(env, settings.pipeline, settings.node, settings.group_id)
}

/// `group_name` of source `node` of `pipeline` declaring `group_id`.
pub fn source_group(env: &KafkaEnv, pipeline: &str, node: &str, group_id: Option<&str>) -> String {
    env.group_id.clone().or(group_id.map(str::to_string)).unwrap_or_else(|| format!("pulse-{pipeline}-{node}"))
}

impl KafkaReader {
    pub fn open(env: &KafkaEnv, settings: &SourceSettings<'_>, resume: Offsets) -> Result<KafkaReader, Error> {
        let group = group_name(env, settings);
        let mut config = env.consumer_config(settings.brokers)?;
        config
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "false");
        if settings.statistics {
            config.set("statistics.interval.ms", "1000");
        }
        let context = SourceContext {
            rebalances: Mutex::default(),
            pending: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            start: settings.start,
            ends: Mutex::default(),
        };
        let consumer: BaseConsumer<SourceContext> =
            config.create_with_context(context).map_err(|error| describe("creating the consumer", &error))?;
        consumer.subscribe(settings.topics).map_err(|error| describe("subscribing", &error))?;

        let mut end = None;
        let mut replay_until = Offsets::new();
        let partitions = topic_partitions(&consumer, settings.topics)?;
        if settings.until_end {
            let mut highs = Offsets::new();
            for (topic, partition) in &partitions {
                let (_, high) = consumer
                    .fetch_watermarks(topic, *partition, CALL_TIMEOUT)
                    .map_err(|error| describe(&format!("reading the end of `{topic}` [{partition}]"), &error))?;
                highs.insert((topic.clone(), *partition), high);
            }
            end = Some(highs);
        }
        if !resume.is_empty() {
            let mut list = TopicPartitionList::new();
            for (topic, partition) in resume.keys() {
                list.add_partition(topic, *partition);
            }
            let committed = consumer
                .committed_offsets(list, CALL_TIMEOUT)
                .map_err(|error| describe("reading the group's committed offsets", &error))?;
            for element in committed.elements() {
                let key = (element.topic().to_string(), element.partition());
                if let (Offset::Offset(committed), Some(local)) = (element.offset(), resume.get(&key)) {
                    if committed > *local {
                        replay_until.insert(key, committed);
                    }
                }
            }
        }
        let partition_count = partitions.iter().map(|(_, partition)| partition + 1).max().unwrap_or(0);
        let mut table = PartitionTable::default();
        for ((topic, partition), next) in &resume {
            if let Some(figures) = table.entry(topic, *partition) {
                figures.next = Some(*next);
            }
        }
        for ((topic, partition), high) in end.iter().flatten() {
            if let Some(figures) = table.entry(topic, *partition) {
                figures.end = Some(*high);
            }
        }
        let known: Vec<(String, i32)> = resume.into_keys().collect();
        let watched = known.iter().filter_map(|(topic, partition)| table.slot(topic, *partition)).collect();
        let consumer = Arc::new(consumer);
        let gate = Arc::new(Mutex::new(Gate { polls: 0, paused: None, stash: VecDeque::new(), pauses: 0 }));
        let stop = Arc::new(AtomicBool::new(false));
        let pause_after = duration_from_env("PULSE_KAFKA_PAUSE_AFTER", PAUSE_AFTER)?;
        let thread = {
            let (consumer, gate, stop) = (Arc::clone(&consumer), Arc::clone(&gate), Arc::clone(&stop));
            std::thread::Builder::new()
                .name(format!("kafka-{}", settings.node))
                .spawn(move || keep_alive(&consumer, &gate, &stop, pause_after))
                .map_err(|error| format!("kafka: starting the keep-alive thread: {error}"))?
        };
        Ok(KafkaReader {
            repartitioner: None,
            gate,
            keep_alive: Some((stop, thread)),
            group,
            partition_count,
            topics: settings.topics.iter().map(|topic| topic.to_string()).collect(),
            consumer,
            end,
            replay_until,
            table,
            assigned: Vec::new(),
            assigned_at: None,
            watched,
            records: 0,
            quiet_since: (0, None),
            waiting_since: None,
            group_checked: None,
            known,
            start_offsets: Offsets::new(),
            opened: std::time::Instant::now(),
            idle_timeout: duration_from_env("PULSE_KAFKA_IDLE_TIMEOUT", IDLE_TIMEOUT)?,
            tombstones: 0,
            last_outage_report: None,
        })
    }

    /// Waits up to `timeout` for the next record and appends its payload to `line`.
    pub fn poll(&mut self, line: &mut Vec<u8>, timeout: Duration) -> Result<Polled, Error> {
        if self.reached_end() {
            return Ok(Polled::End);
        }
        if let Some(failure) = self.repartitioner.as_ref().and_then(|stage| stage.failure()) {
            return Err(Error::Failed(failure));
        }
        let gate = Arc::clone(&self.gate);
        let mut gate = lock_gate(&gate);
        gate.polls += 1;
        if let Some((since, count)) = gate.paused.take() {
            if let Ok(assignment) = self.consumer.assignment() {
                if let Err(error) = self.consumer.resume(&assignment) {
                    tracing::warn!("{}", describe("resuming partitions", &error));
                }
            }
            tracing::info!("kafka: resumed {count} partitions after {} ms paused", since.elapsed().as_millis());
        }
        match gate.stash.pop_front() {
            Some(polled) => {
                drop(gate);
                self.take(Some(polled), line)
            }
            None => {
                // The record borrows the consumer: a handle of its own leaves `self` free.
                let consumer = Arc::clone(&self.consumer);
                let polled = consumer.poll(timeout);
                drop(gate);
                self.take(polled, line)
            }
        }
    }

    /// Reads the repartition topic `stage` fills; the stage stops with the reader.
    pub fn attach_repartitioner(&mut self, stage: super::repartition::Repartitioner) {
        self.repartitioner = Some(stage);
    }

    /// A checkpoint committed `list` (positions of this reader): a repartition stage may delete
    /// the records below them.
    pub fn committed(&self, list: &TopicPartitionList) {
        if let Some(stage) = &self.repartitioner {
            for element in list.elements() {
                if let Offset::Offset(next) = element.offset() {
                    stage.committed(element.partition(), next);
                }
            }
        }
    }

    /// The group's committed offsets of `partitions` of `topic`; a partition without one is
    /// absent.
    pub fn group_offsets(&self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, i64>, Error> {
        super::changelog::committed_offsets(
            &self.consumer,
            topic,
            partitions,
            &format!("reading the group's committed offsets of `{topic}`"),
        )
    }

    /// Times the source paused its partitions while the pipeline was held up.
    pub fn pauses(&self) -> u64 {
        lock_gate(&self.gate).pauses
    }

    fn take<M: Message>(&mut self, polled: Option<Result<M, KafkaError>>, line: &mut Vec<u8>) -> Result<Polled, Error> {
        match polled {
            None => Ok(if self.reached_end() { Polled::End } else { Polled::Idle }),
            // Broker connections come and go; librdkafka reconnects by itself, and the run waits
            // for it (as it waits for Redis) instead of failing.
            Some(Err(KafkaError::MessageConsumption(code))) if transient(code) => {
                if self.last_outage_report.is_none_or(|at| at.elapsed() >= OUTAGE_REPORT_EVERY) {
                    self.last_outage_report = Some(std::time::Instant::now());
                    tracing::warn!("kafka: consuming: {code}; waiting for the brokers");
                }
                Ok(Polled::Idle)
            }
            Some(Err(error)) => Err(describe("consuming", &error)),
            Some(Ok(message)) => {
                let (partition, offset) = (message.partition(), message.offset());
                match message.payload() {
                    Some(payload) => line.extend_from_slice(payload),
                    None => self.tombstones += 1,
                }
                let topic = match self.table.slot(message.topic(), partition) {
                    Some(slot) => {
                        self.table.at_mut(slot).next = Some(offset + 1);
                        Arc::clone(self.table.topic(slot))
                    }
                    None => Arc::from(message.topic()),
                };
                self.records += 1;
                let upstream = match self.repartitioner {
                    Some(_) => message
                        .headers()
                        .and_then(|headers| {
                            headers.iter().find(|header| header.key == super::repartition::ORIGIN_HEADER)
                        })
                        .and_then(|header| std::str::from_utf8(header.value?).ok())
                        .and_then(super::repartition::parse_origin),
                    None => None,
                };
                Ok(Polled::Record { topic, partition, offset, upstream })
            }
        }
    }

    /// `--until-end`: whether this member is done. Each member of the group ends once every
    /// partition it holds is read to the end seen at start, no rebalance is waiting for an
    /// answer, and END_QUIET passed since its assignment and its last record. A partition it
    /// never held is another member's to read; one handed over by a member that ended starts at
    /// that member's committed position, its end.
    fn reached_end(&mut self) -> bool {
        if self.end.is_none() {
            return false;
        }
        // Waiting for partitions (at the start, or after a revocation): the member is done
        // once the group as a whole is.
        let Some(assigned_at) = self.assigned_at else { return self.group_finished() };
        if self.rebalance_pending() {
            return false;
        }
        // Not within END_QUIET of the assignment or of the last record: the quiet counts from
        // the first look that saw no new record, a little after the last one (so a look
        // between two records reads no clock).
        if self.quiet_since.0 != self.records {
            self.quiet_since = (self.records, None);
            return false;
        }
        let quiet_from = *self.quiet_since.1.get_or_insert_with(Instant::now);
        if assigned_at.max(quiet_from).elapsed() < END_QUIET {
            return false;
        }
        let Some(end) = &self.end else { return false };
        self.assigned.iter().all(|partition| {
            let next = self
                .table
                .get(&partition.0, partition.1)
                .and_then(|figures| figures.next)
                .or_else(|| self.start_offsets.get(partition).copied());
            end.get(partition).is_none_or(|high| *high <= 0 || next.is_some_and(|next| next >= *high))
        })
    }

    /// `--until-end`, for a member the group assigns nothing to: whether the group's committed
    /// offsets of every partition reached the end it had at start, so there is nothing left
    /// for any member to read. Asked at most every `GROUP_END_CHECK`, once the member has
    /// waited `END_QUIET` (a member that joined a group whose work is done ends; so does one
    /// a broker leaves waiting for an assignment that never comes once the others ended).
    fn group_finished(&mut self) -> bool {
        let Some(end) = &self.end else { return false };
        let waiting_since = *self.waiting_since.get_or_insert_with(Instant::now);
        if waiting_since.elapsed() < END_QUIET
            || self.group_checked.is_some_and(|checked| checked.elapsed() < GROUP_END_CHECK)
        {
            return false;
        }
        self.group_checked = Some(Instant::now());
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in end.keys() {
            by_topic.entry(topic).or_default().push(*partition);
        }
        let finished = by_topic.into_iter().all(|(topic, partitions)| {
            let what = format!("reading the group's committed offsets of `{topic}`");
            match super::changelog::committed_offsets(&self.consumer, topic, &partitions, &what) {
                Ok(committed) => partitions.iter().all(|partition| {
                    let high = end.get(&(topic.to_string(), *partition)).copied().unwrap_or(0);
                    high <= 0 || committed.get(partition).is_some_and(|next| *next >= high)
                }),
                Err(error) => {
                    tracing::debug!("kafka: --until-end: {error}");
                    false
                }
            }
        });
        if finished {
            tracing::info!(
                "kafka: --until-end: no partitions assigned, and the group's committed offsets reached the ends: nothing left to read"
            );
        }
        finished
    }

    /// Records the event time of a record of `partition`; returns the source's event-time
    /// frontier: the minimum over assigned partitions of their largest event time, skipping
    /// partitions already read to their end (`--until-end`). `None` while an assigned partition
    /// has shown no record yet.
    pub fn observe(&mut self, topic: &str, partition: i32, event_time: i64) -> Option<i64> {
        let now = Instant::now();
        let Some(current) = self.table.slot(topic, partition) else { return Some(event_time) };
        let figures = self.table.at_mut(current);
        figures.last_seen = Some(now);
        figures.max_event_time = Some(figures.max_event_time.map_or(event_time, |max| max.max(event_time)));
        let mut frontier: Option<i64> = None;
        // Partitions this run owns, and those it owned at its checkpoint: a partition the group
        // has not handed back yet (its old owner's session has not expired) still holds the
        // watermark, or its records would arrive late once it comes back. (A partition in both
        // lists is visited twice; the minimum does not mind.)
        for slot in &self.watched {
            let figures = self.table.at(*slot);
            let at_end = figures.end.is_some_and(|high| figures.next.unwrap_or(0) >= high);
            // Idle: no record within the idle timeout (since the start for one never seen).
            let quiet_since = figures.last_seen.unwrap_or(self.opened);
            if at_end || (*slot != current && now.duration_since(quiet_since) >= self.idle_timeout) {
                continue;
            }
            let seen = figures.max_event_time?;
            frontier = Some(frontier.map_or(seen, |known| known.min(seen)));
        }
        frontier.or(Some(event_time))
    }

    /// Whether a record at this position was already committed downstream by a transaction the
    /// local checkpoint missed.
    pub fn is_replay(&self, topic: &str, partition: i32, offset: i64) -> bool {
        // Empty but after a crash between a transaction's commit and the local checkpoint.
        !self.replay_until.is_empty()
            && self.replay_until.get(&(topic.to_string(), partition)).is_some_and(|until| offset < *until)
    }

    /// The next offset per partition (the rebalance answer assigns at these).
    pub fn positions(&self) -> Offsets {
        self.table.positions()
    }

    /// Sets a partition's next offset (restored from the changelog).
    pub fn set_position(&mut self, topic: &str, partition: i32, next: i64) {
        if let Some(figures) = self.table.entry(topic, partition) {
            figures.next = Some(next);
        }
    }

    /// The slots of the partitions that hold the watermark back (see `observe`).
    fn watch_assigned(&mut self) {
        self.watched = self
            .assigned
            .iter()
            .chain(&self.known)
            .filter_map(|(topic, partition)| self.table.slot(topic, *partition))
            .collect();
    }

    /// (topic, partition, records not read yet) of every assigned partition whose end the
    /// client's statistics reported, and of the source partitions a repartition stage copies
    /// (named by their own topic).
    pub fn lag(&self) -> Vec<(String, i32, i64)> {
        let mut lag = self.repartitioner.as_ref().map(|stage| stage.lag()).unwrap_or_default();
        let ends = self.consumer.context().ends.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        lag.extend(self.assigned.iter().filter_map(|key| {
            let end = *ends.get(key)?;
            let next = self.table.get(&key.0, key.1)?.next?;
            Some((key.0.clone(), key.1, (end - next).max(0)))
        }));
        lag
    }

    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        self.consumer.group_metadata()
    }

    /// The positions of the assigned partitions (of partition number `only`, when given) as a
    /// list for `send_offsets_to_transaction` / `commit`. Partitions another member owns now
    /// are left out, so a stale position never overwrites its progress.
    pub fn offset_list(&self, only: Option<i32>) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        for (topic, partition) in &self.assigned {
            if only.is_some_and(|only| only != *partition) {
                continue;
            }
            if let Some(next) = self.table.get(topic, *partition).and_then(|figures| figures.next) {
                let _ = list.add_partition_offset(topic, *partition, Offset::Offset(next));
            }
        }
        list
    }

    /// Whether the group has a rebalance waiting for the driver's answer.
    pub fn rebalance_pending(&self) -> bool {
        self.consumer.context().pending.load(Ordering::Acquire)
    }

    pub fn take_rebalances(&self) -> Vec<Rebalance> {
        let context = self.consumer.context();
        context.pending.store(false, Ordering::Release);
        std::mem::take(&mut *context.rebalances.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Starts consuming `partitions`, each at its position (see `positions`) or where
    /// `readSetting` says.
    pub fn assign_now(&mut self, partitions: &[(String, i32)]) -> Result<(), Error> {
        let start = self.consumer.context().start;
        let mut list = TopicPartitionList::new();
        for (topic, partition) in partitions {
            let offset = match self.table.get(topic, *partition).and_then(|figures| figures.next) {
                Some(next) => Offset::Offset(next),
                None => match start {
                    KafkaStart::GroupOffsets => Offset::Stored,
                    KafkaStart::Earliest => Offset::Beginning,
                    KafkaStart::Latest => Offset::End,
                },
            };
            let _ = list.add_partition_offset(topic, *partition, offset);
        }
        self.consumer.assign(&list).map_err(|error| describe("assigning partitions", &error))?;
        if self.end.is_some() {
            self.record_start_offsets(partitions)?;
        }
        self.assigned = partitions.to_vec();
        self.assigned_at = Some(Instant::now());
        self.waiting_since = None;
        self.watch_assigned();
        Ok(())
    }

    /// `--until-end`: where each newly held partition without a known position starts, so a
    /// partition another member already read to its end counts as ended before any record.
    fn record_start_offsets(&mut self, partitions: &[(String, i32)]) -> Result<(), Error> {
        let context = self.consumer.context();
        let unknown: Vec<&(String, i32)> = partitions
            .iter()
            .filter(|(topic, partition)| self.table.get(topic, *partition).is_none_or(|figures| figures.next.is_none()))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        match context.start {
            KafkaStart::GroupOffsets => {
                let mut list = TopicPartitionList::new();
                for (topic, partition) in &unknown {
                    list.add_partition(topic, *partition);
                }
                let committed = self
                    .consumer
                    .committed_offsets(list, CALL_TIMEOUT)
                    .map_err(|error| describe("reading the group's committed offsets", &error))?;
                for element in committed.elements() {
                    if let Offset::Offset(next) = element.offset() {
                        self.start_offsets.insert((element.topic().to_string(), element.partition()), next);
                    }
                }
            }
            // Read from the end: nothing of what was there at start is this run's.
            KafkaStart::Latest => {
                for partition in unknown {
                    let high = self.end.as_ref().and_then(|end| end.get(partition)).copied().unwrap_or(0);
                    self.start_offsets.insert(partition.clone(), high);
                }
            }
            // From the beginning: a record read sets the position.
            KafkaStart::Earliest => {}
        }
        Ok(())
    }

    /// Stops consuming every partition (the group revoked them).
    pub fn revoke_now(&mut self) -> Result<(), Error> {
        self.assigned.clear();
        self.assigned_at = None;
        self.watch_assigned();
        // Records the keep-alive thread took in before the revocation now belong to the next
        // owner, which reads them from the positions the checkpoint before this committed.
        let mut gate = lock_gate(&self.gate);
        let before = gate.stash.len();
        gate.stash.retain(|polled| polled.is_err());
        if gate.stash.len() < before {
            tracing::debug!("kafka: dropped {} records read ahead of the revocation", before - gate.stash.len());
        }
        drop(gate);
        self.consumer.unassign().map_err(|error| describe("revoking partitions", &error))
    }

    /// Partitions currently assigned.
    pub fn assigned(&self) -> Vec<(String, i32)> {
        self.assigned.clone()
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The most partitions of any subscribed topic.
    pub fn partition_count(&self) -> i32 {
        self.partition_count
    }

    /// The largest event time a partition's previous owner saw (from the changelog).
    pub fn restore_partition_max(&mut self, topic: &str, partition: i32, event_time: i64) {
        if let Some(figures) = self.table.entry(topic, partition) {
            figures.max_event_time = Some(figures.max_event_time.map_or(event_time, |max| max.max(event_time)));
        }
    }

    /// A partition was just handed to this instance: it is not idle before the idle timeout.
    pub fn touch(&mut self, topic: &str, partition: i32) {
        if let Some(figures) = self.table.entry(topic, partition) {
            figures.last_seen = Some(Instant::now());
        }
    }

    /// The largest event time seen on partition number `partition` of any subscribed topic.
    pub fn partition_frontier(&self, partition: i32) -> i64 {
        self.topics.iter().map(|topic| self.partition_max(topic, partition)).max().unwrap_or(i64::MIN)
    }

    /// Whether no subscribed topic's partition `partition` gave a record within the idle timeout.
    pub fn partition_idle(&self, partition: i32) -> bool {
        self.topics.iter().all(|topic| {
            let since = self.table.get(topic, partition).and_then(|figures| figures.last_seen).unwrap_or(self.opened);
            since.elapsed() >= self.idle_timeout
        })
    }

    /// The largest event time seen on a partition (`i64::MIN`: none).
    pub fn partition_max(&self, topic: &str, partition: i32) -> i64 {
        self.table.get(topic, partition).and_then(|figures| figures.max_event_time).unwrap_or(i64::MIN)
    }

    /// Positions come from the changelog: no stretch is replayed muted.
    pub fn clear_replay(&mut self) {
        self.replay_until.clear();
    }

    /// At-least-once runs: commits the positions to the group (telemetry and a fallback start).
    pub fn commit_positions(&self) -> Result<(), Error> {
        let list = self.offset_list(None);
        if list.count() == 0 {
            return Ok(());
        }
        self.consumer
            .commit(&list, rdkafka::consumer::CommitMode::Sync)
            .map_err(|error| describe("committing offsets", &error))
    }
}
