//! kafka-tools: the Kafka side of bench/kafka.sh.
//!
//! ```text
//! kafka-tools create-topics NAME:PARTITIONS...
//! kafka-tools produce TOPIC FILE [--count N] [--rate R --duration S] [--stamp]
//! kafka-tools passthrough IN OUT [--count N | --duration S | --stop-file F] [--interval MS] [--alo] [--w1]
//! kafka-tools consume TOPIC [--count N] [--quiet S] [--timeout S] [--out FILE] [--windows A:B,... [--out-window I]]
//! kafka-tools latency TOPIC [--from-us T] [--idle S] [--not-before-us T] [--timeout S] [--csv FILE]
//! kafka-tools sample --out FILE [--pidfile FILE] [--watch PID]... -- CMD ARGS...
//! ```
//!
//! Brokers come from `PULSE_KAFKA_BROKERS` (the variable the pipeline binaries read);
//! `KT_PROP_<NAME>=value` sets a librdkafka property on every client (`_` stands for `.`).
//! Every command prints one JSON object on stdout. Times are wall-clock microseconds since the
//! epoch (`*_us`) or Kafka CreateTime milliseconds (`*_ms`), comparable across processes because
//! everything runs on one machine.
//!
//! Latency: `produce --stamp` inserts `"sent_us":<wall clock at send()>` as the first field of
//! every event; the pipeline passes it through; `latency` subtracts it from the wall clock at
//! which its `poll` returned the record.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message, Offset, Timestamp, TopicPartitionList};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else { usage() };
    let rest = &args[1..];
    let result = match command.as_str() {
        "create-topics" => create_topics(&Args::parse(rest, &[])),
        "produce" => produce(&Args::parse(rest, &["--stamp"])),
        "passthrough" => passthrough(&Args::parse(rest, &["--alo", "--w1"])),
        "consume" => consume(&Args::parse(rest, &[])),
        "latency" => latency(&Args::parse(rest, &[])),
        "sample" => sample(rest),
        _ => usage(),
    };
    if let Err(error) = result {
        eprintln!("kafka-tools {command}: {error}");
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("{}", include_str!("main.rs").lines().skip(3).take(6).map(|l| &l[4..]).collect::<Vec<_>>().join("\n"));
    std::process::exit(2)
}

type Result<T> = std::result::Result<T, String>;

/// Positional arguments and `--name value` options (`--flag` alone for the listed booleans).
struct Args {
    positional: Vec<String>,
    options: HashMap<String, String>,
}

impl Args {
    fn parse(args: &[String], booleans: &[&str]) -> Args {
        let (mut positional, mut options) = (Vec::new(), HashMap::new());
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if booleans.contains(&arg.as_str()) {
                options.insert(arg.clone(), String::new());
            } else if arg.starts_with("--") {
                let value = iter.next().unwrap_or_else(|| usage()).clone();
                options.insert(arg.clone(), value);
            } else {
                positional.push(arg.clone());
            }
        }
        Args { positional, options }
    }
    fn pos(&self, index: usize) -> &str {
        self.positional.get(index).map(String::as_str).unwrap_or_else(|| usage())
    }
    fn get<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.options.get(name).map(|value| value.parse().unwrap_or_else(|_| usage()))
    }
    fn flag(&self, name: &str) -> bool {
        self.options.contains_key(name)
    }
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_micros() as i64
}

fn config() -> Result<ClientConfig> {
    let brokers = std::env::var("PULSE_KAFKA_BROKERS").map_err(|_| "set PULSE_KAFKA_BROKERS".to_string())?;
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (name, value) in std::env::vars() {
        if let Some(rest) = name.strip_prefix("KT_PROP_") {
            config.set(rest.to_ascii_lowercase().replace('_', "."), value);
        }
    }
    Ok(config)
}

fn describe(what: &str) -> impl Fn(KafkaError) -> String + '_ {
    move |error| format!("{what}: {error}")
}

/// Drives one future to completion on this thread (the admin API is async; nothing else is).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Thread(std::thread::Thread);
    impl Wake for Thread {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Thread(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park_timeout(Duration::from_millis(20)),
        }
    }
}

fn create_topics(args: &Args) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = config()?.create().map_err(describe("admin client"))?;
    let specs: Vec<(String, i32)> = args
        .positional
        .iter()
        .map(|spec| {
            let (name, partitions) = spec.split_once(':').unwrap_or((spec, "1"));
            (name.to_string(), partitions.parse().unwrap_or_else(|_| usage()))
        })
        .collect();
    let topics: Vec<NewTopic> =
        specs.iter().map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1))).collect();
    let options = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
    for result in block_on(admin.create_topics(&topics, &options)).map_err(describe("create_topics"))? {
        result.map_err(|(topic, error)| format!("creating `{topic}`: {error}"))?;
    }
    println!("{{\"created\":{}}}", specs.len());
    Ok(())
}

/// Counts delivery reports.
#[derive(Clone, Default)]
struct Deliveries {
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Sends one record, waiting while librdkafka's queue is full (as the Pulse sink does).
fn send(producer: &BaseProducer<Deliveries>, mut record: BaseRecord<'_, [u8], [u8]>) -> Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => break,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                producer.poll(Duration::from_millis(10));
            }
            Err((error, _)) => return Err(format!("producing: {error}")),
        }
    }
    producer.poll(Duration::ZERO);
    Ok(())
}

/// The value of `"userId":"..."` in a JSON line (the generator's layout), if any.
fn user_id(line: &[u8]) -> Option<&[u8]> {
    let at = find(line, b"\"userId\":\"")? + 10;
    let end = line[at..].iter().position(|byte| *byte == b'"')?;
    Some(&line[at..at + end])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn produce(args: &Args) -> Result<()> {
    let topic = args.pos(0);
    let text = std::fs::read(args.pos(1)).map_err(|error| format!("reading {}: {error}", args.pos(1)))?;
    let lines: Vec<&[u8]> = text.split(|byte| *byte == b'\n').filter(|line| !line.is_empty()).collect();
    let rate: Option<f64> = args.get("--rate");
    let duration: Option<f64> = args.get("--duration");
    let count: usize = match (args.get("--count"), rate, duration) {
        (Some(count), _, _) => count,
        (None, Some(rate), Some(duration)) => (rate * duration) as usize,
        _ => lines.len(),
    };
    let stamp = args.flag("--stamp");
    let mut config = config()?;
    config.set("enable.idempotence", "true");
    // Paced: librdkafka's default linger (5 ms), like most producers; preloading: bigger batches.
    if config.get("linger.ms").is_none() && rate.is_none() {
        config.set("linger.ms", "20");
    }
    let context = Deliveries::default();
    let producer: BaseProducer<Deliveries> =
        config.create_with_context(context.clone()).map_err(describe("creating the producer"))?;
    let started = Instant::now();
    let started_us = now_us();
    let mut max_behind = Duration::ZERO;
    let mut payload: Vec<u8> = Vec::with_capacity(512);
    for index in 0..count {
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(index as f64 / rate);
            let elapsed = started.elapsed();
            if due > elapsed + Duration::from_micros(500) {
                std::thread::sleep(due - elapsed);
            } else if elapsed > due {
                max_behind = max_behind.max(elapsed - due);
            }
        }
        let line = lines[index % lines.len()];
        let key: &[u8] = user_id(line).unwrap_or(b"none");
        let value: &[u8] = if stamp {
            payload.clear();
            write!(payload, "{{\"sent_us\":{},", now_us()).expect("write to a Vec");
            payload.extend_from_slice(&line[1..]);
            &payload
        } else {
            line
        };
        send(&producer, BaseRecord::to(topic).key(key).payload(value))?;
    }
    let sent_seconds = started.elapsed().as_secs_f64();
    producer.flush(Duration::from_secs(120)).map_err(describe("flush"))?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"sent\":{count},\"start_us\":{started_us},\"send_seconds\":{sent_seconds:.3},\"seconds\":{seconds:.3},\"rate\":{:.0},\"target_rate\":{},\"max_behind_ms\":{:.1},\"delivered\":{},\"failed\":{}}}",
        count as f64 / sent_seconds,
        rate.map_or("null".to_string(), |rate| format!("{rate}")),
        max_behind.as_secs_f64() * 1e3,
        context.ok.load(Ordering::Relaxed),
        context.failed.load(Ordering::Relaxed)
    );
    if context.failed.load(Ordering::Relaxed) > 0 {
        return Err("some records were not delivered".to_string());
    }
    Ok(())
}

/// W1's input fields, borrowed (as `rust-floor w1-serde-typed` decodes them).
#[derive(serde::Deserialize)]
#[allow(non_snake_case, dead_code)]
struct Event<'a> {
    #[serde(borrow)]
    event_name: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    userId: Option<std::borrow::Cow<'a, str>>,
    ts: i64,
    #[serde(default)]
    props: serde::de::IgnoredAny,
}

#[derive(serde::Serialize)]
#[allow(non_snake_case)]
struct W1Out<'a> {
    userId: &'a str,
    ts: i64,
}

/// The baseline: every record of IN produced unchanged (key, value, plus a 32-hex-digit id header
/// of the same size as Pulse's `pulse-id`) to OUT, with Pulse's client settings: a
/// `read_committed` group consumer, an idempotent producer with `acks=all`, and (unless `--alo`)
/// one transaction per interval that also carries the consumer offsets
/// (`send_offsets_to_transaction`); with `--alo`, a flush and a group commit per interval.
/// `--w1`: instead of copying, W1 written by hand (decode a borrowed typed struct, keep
/// `login_success` with a userId, produce `{"userId","ts"}` keyed by userId).
/// `--stop-file FILE`: stops (after a last commit) once FILE exists.
fn passthrough(args: &Args) -> Result<()> {
    let (input, output) = (args.pos(0), args.pos(1));
    let count: Option<u64> = args.get("--count");
    let duration: Option<f64> = args.get("--duration");
    let interval = Duration::from_millis(args.get("--interval").unwrap_or(1000));
    let exactly_once = !args.flag("--alo");
    let w1 = args.flag("--w1");
    let stop_file: Option<String> = args.get("--stop-file");
    let mut stop_checked = Instant::now();
    let mut projected: Vec<u8> = Vec::with_capacity(128);
    let group: String = args.get("--group").unwrap_or_else(|| format!("passthrough-{}", std::process::id()));
    let mut consumer_config = config()?;
    consumer_config
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest");
    if consumer_config.get("session.timeout.ms").is_none() {
        consumer_config.set("session.timeout.ms", "10000");
    }
    let consumer: BaseConsumer = consumer_config.create().map_err(describe("creating the consumer"))?;
    consumer.subscribe(&[input]).map_err(describe("subscribing"))?;
    let mut producer_config = config()?;
    producer_config.set("enable.idempotence", "true").set("acks", "all");
    if exactly_once {
        let id: String = args.get("--id").unwrap_or_else(|| format!("passthrough-{}", std::process::id()));
        producer_config
            .set("transactional.id", id)
            .set("transaction.timeout.ms", (interval.as_millis() as u64 + 60_000).to_string());
    }
    let context = Deliveries::default();
    let producer: BaseProducer<Deliveries> =
        producer_config.create_with_context(context.clone()).map_err(describe("creating the producer"))?;
    if exactly_once {
        producer.init_transactions(CALL_TIMEOUT).map_err(describe("init_transactions"))?;
        producer.begin_transaction().map_err(describe("begin_transaction"))?;
    }
    let started = Instant::now();
    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    let (mut consumed, mut commits) = (0u64, 0u64);
    let mut last_commit = Instant::now();
    let (mut commit_time, mut commit_max) = (Duration::ZERO, Duration::ZERO);
    let commit = |positions: &BTreeMap<i32, i64>| -> Result<()> {
        producer.flush(CALL_TIMEOUT).map_err(describe("flush"))?;
        if positions.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for (partition, next) in positions {
            list.add_partition_offset(input, *partition, Offset::Offset(*next)).map_err(describe("offset list"))?;
        }
        if exactly_once {
            let metadata = consumer.group_metadata().ok_or("no group metadata")?;
            producer
                .send_offsets_to_transaction(&list, &metadata, CALL_TIMEOUT)
                .map_err(describe("send_offsets_to_transaction"))?;
            producer.commit_transaction(CALL_TIMEOUT).map_err(describe("commit_transaction"))?;
            producer.begin_transaction().map_err(describe("begin_transaction"))
        } else {
            consumer.commit(&list, CommitMode::Sync).map_err(describe("commit"))
        }
    };
    loop {
        if count.is_some_and(|count| consumed >= count)
            || duration.is_some_and(|duration| started.elapsed().as_secs_f64() >= duration)
        {
            break;
        }
        if let Some(path) = &stop_file {
            if stop_checked.elapsed() >= Duration::from_millis(50) {
                stop_checked = Instant::now();
                if std::path::Path::new(path).exists() {
                    break;
                }
            }
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.map_err(describe("consuming"))?;
            positions.insert(message.partition(), message.offset() + 1);
            consumed += 1;
            let id = format!("{:016x}{:016x}", message.partition() as u64, message.offset() as u64);
            let headers = OwnedHeaders::new().insert(Header { key: "pulse-id", value: Some(&id) });
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(output).headers(headers);
            let payload = message.payload().unwrap_or_default();
            if w1 {
                let event: Event<'_> =
                    serde_json::from_slice(payload).map_err(|error| format!("offset {}: {error}", message.offset()))?;
                let (true, Some(user)) = (event.event_name == "login_success", event.userId.as_deref()) else {
                    continue;
                };
                projected.clear();
                serde_json::to_writer(&mut projected, &W1Out { userId: user, ts: event.ts }).expect("to a Vec");
                record = record.key(user.as_bytes()).payload(&projected[..]);
                send(&producer, record)?;
            } else {
                if let Some(key) = message.key() {
                    record = record.key(key);
                }
                send(&producer, record.payload(payload))?;
            }
        }
        if last_commit.elapsed() >= interval {
            let began = Instant::now();
            commit(&positions)?;
            commit_time += began.elapsed();
            commit_max = commit_max.max(began.elapsed());
            commits += 1;
            last_commit = Instant::now();
        }
    }
    commit(&positions)?;
    commits += 1;
    println!(
        "{{\"consumed\":{consumed},\"commits\":{commits},\"exactly_once\":{exactly_once},\"seconds\":{:.3},\"commit_avg_ms\":{:.2},\"commit_max_ms\":{:.2},\"failed\":{}}}",
        started.elapsed().as_secs_f64(),
        commit_time.as_secs_f64() * 1e3 / (commits.max(2) - 1) as f64,
        commit_max.as_secs_f64() * 1e3,
        context.failed.load(Ordering::Relaxed)
    );
    Ok(())
}

/// A `read_committed` consumer assigned every partition of `topic` from the beginning (no group
/// join).
fn reader(topic: &str) -> Result<(BaseConsumer, BTreeMap<i32, i64>)> {
    let mut config = config()?;
    config
        .set("group.id", format!("kafka-tools-{}-{}", std::process::id(), now_us()))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = config.create().map_err(describe("creating the consumer"))?;
    let metadata = consumer.fetch_metadata(Some(topic), CALL_TIMEOUT).map_err(describe("metadata"))?;
    let mut list = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for partition in metadata.topics().first().ok_or("no such topic")?.partitions() {
        let (_, high) = consumer.fetch_watermarks(topic, partition.id(), CALL_TIMEOUT).map_err(describe("ends"))?;
        ends.insert(partition.id(), high);
        list.add_partition_offset(topic, partition.id(), Offset::Beginning).map_err(describe("offset list"))?;
    }
    if ends.is_empty() {
        return Err(format!("topic `{topic}` has no partitions"));
    }
    consumer.assign(&list).map_err(describe("assign"))?;
    Ok((consumer, ends))
}

fn create_ms(message: &BorrowedMessage<'_>) -> i64 {
    match message.timestamp() {
        Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) => ms,
        Timestamp::NotAvailable => -1,
    }
}

fn record_id(message: &BorrowedMessage<'_>) -> Option<Vec<u8>> {
    let headers = message.headers()?;
    headers.iter().find(|header| header.key == "pulse-id").and_then(|header| header.value).map(<[u8]>::to_vec)
}

/// Reads `topic` from the beginning until `--count` records came (or, without it, every
/// partition passed the end it had at start) and nothing more came for `--quiet` seconds.
fn consume(args: &Args) -> Result<()> {
    let topic = args.pos(0);
    let count: Option<u64> = args.get("--count");
    let quiet = Duration::from_secs_f64(args.get("--quiet").unwrap_or(2.0));
    let timeout = Duration::from_secs_f64(args.get("--timeout").unwrap_or(300.0));
    // (since, until) CreateTime windows in ms: per window, the records and their first and last
    // CreateTime (one topic holds the outputs of several runs).
    let windows: Vec<(i64, i64)> = args
        .options
        .get("--windows")
        .map(|spec| {
            spec.split(',')
                .map(|window| {
                    let (since, until) = window.split_once(':').unwrap_or_else(|| usage());
                    (since.parse().unwrap_or_else(|_| usage()), until.parse().unwrap_or_else(|_| usage()))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut in_window: Vec<(u64, i64, i64)> = vec![(0, i64::MAX, i64::MIN); windows.len()];
    // Only the records of this window go to --out (one run's output).
    let out_window: Option<(i64, i64)> = args.get::<usize>("--out-window").map(|index| windows[index]);
    let mut out = match args.options.get("--out") {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|error| format!("creating {path}: {error}"))?,
        )),
        None => None,
    };
    let started = Instant::now();
    let start_us = now_us();
    let (consumer, ends) = reader(topic)?;
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut ids: HashSet<Vec<u8>> = HashSet::new();
    let (mut records, mut duplicates, mut with_id) = (0u64, 0u64, 0u64);
    let (mut first_ms, mut last_ms) = (i64::MAX, i64::MIN);
    let (mut first_recv, mut last_recv) = (0i64, 0i64);
    let mut last = Instant::now();
    let mut timed_out = false;
    loop {
        if started.elapsed() > timeout {
            timed_out = true;
            break;
        }
        let done = match count {
            Some(count) => records >= count,
            // Transaction markers take offsets without being delivered: `high - 1` is the end.
            None => ends.iter().all(|(partition, high)| next.get(partition).copied().unwrap_or(0) >= high - 1),
        };
        if done && last.elapsed() >= quiet {
            break;
        }
        let wait = if done && quiet.is_zero() { Duration::ZERO } else { Duration::from_millis(100) };
        let Some(message) = consumer.poll(wait) else { continue };
        let message = message.map_err(describe("consuming"))?;
        let recv = now_us();
        last = Instant::now();
        if records == 0 {
            first_recv = recv;
        }
        last_recv = recv;
        records += 1;
        next.insert(message.partition(), message.offset() + 1);
        let created = create_ms(&message);
        first_ms = first_ms.min(created);
        last_ms = last_ms.max(created);
        for ((since, until), stats) in windows.iter().zip(&mut in_window) {
            if created >= *since && created <= *until {
                stats.0 += 1;
                stats.1 = stats.1.min(created);
                stats.2 = stats.2.max(created);
            }
        }
        let mut repeated = false;
        if let Some(id) = record_id(&message) {
            with_id += 1;
            if !ids.insert(id) {
                duplicates += 1;
                repeated = true;
            }
        }
        // With --out-window, every record of that run goes to --out (a repeat within one run is
        // an error the check shows); without, each pulse-id once (reruns over the same input
        // repeat the same ids).
        match out_window {
            Some((since, until)) if created < since || created > until => continue,
            None if repeated => continue,
            _ => {}
        }
        if let Some(out) = &mut out {
            out.write_all(message.payload().unwrap_or_default()).map_err(|error| error.to_string())?;
            out.write_all(b"\n").map_err(|error| error.to_string())?;
        }
    }
    if let Some(out) = &mut out {
        out.flush().map_err(|error| error.to_string())?;
    }
    println!(
        "{{\"records\":{records},\"with_id\":{with_id},\"duplicate_ids\":{duplicates},\"start_us\":{start_us},\"first_recv_us\":{first_recv},\"last_recv_us\":{last_recv},\"first_create_ms\":{},\"last_create_ms\":{},\"timed_out\":{timed_out},\"ends_at_start\":\"{ends:?}\",\"next_offsets\":\"{next:?}\",\"windows\":[{}]}}",
        if records > 0 { first_ms } else { 0 },
        if records > 0 { last_ms } else { 0 },
        in_window
            .iter()
            .map(|(count, first, last)| format!(
                "{{\"records\":{count},\"first_create_ms\":{},\"last_create_ms\":{}}}",
                if *count > 0 { *first } else { 0 },
                if *count > 0 { *last } else { 0 }
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    Ok(())
}

/// The value of the leading `"sent_us":` field.
fn sent_us(payload: &[u8]) -> Option<i64> {
    let at = find(payload, b"\"sent_us\":")? + 10;
    let digits = payload[at..].iter().take_while(|byte| byte.is_ascii_digit()).count();
    std::str::from_utf8(&payload[at..at + digits]).ok()?.parse().ok()
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[index] as f64 / 1e3
}

/// End-to-end latency: reads `topic` from the beginning (`read_committed`) and, for each
/// record, takes the wall clock when `poll` returned it minus the `sent_us` it carries. Stops
/// `--idle` seconds after the last record (once one came, and not before the wall clock passed
/// `--not-before-us`) or at `--timeout`. Records sent before
/// `--from-us` (warm-up: group join, first fetches, readiness probes) and repeated `pulse-id`s are
/// left out of the percentiles.
fn latency(args: &Args) -> Result<()> {
    let topic = args.pos(0);
    let from_us: i64 = args.get("--from-us").unwrap_or(0);
    let not_before_us: i64 = args.get("--not-before-us").unwrap_or(0);
    let idle = Duration::from_secs_f64(args.get("--idle").unwrap_or(5.0));
    let timeout = Duration::from_secs_f64(args.get("--timeout").unwrap_or(300.0));
    let started = Instant::now();
    let (consumer, _) = reader(topic)?;
    // (receive µs, sent µs, CreateTime ms, duplicate)
    let mut rows: Vec<(i64, i64, i64, bool)> = Vec::with_capacity(1 << 20);
    let mut ids: HashSet<Vec<u8>> = HashSet::new();
    let mut unstamped = 0u64;
    let mut last = Instant::now();
    while started.elapsed() < timeout && (rows.is_empty() || last.elapsed() < idle || now_us() < not_before_us) {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else { continue };
        let message = message.map_err(describe("consuming"))?;
        let recv = now_us();
        last = Instant::now();
        let Some(sent) = message.payload().and_then(sent_us) else {
            unstamped += 1;
            continue;
        };
        let duplicate = record_id(&message).is_some_and(|id| !ids.insert(id));
        rows.push((recv, sent, create_ms(&message), duplicate));
    }
    if let Some(path) = args.options.get("--csv") {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(|error| error.to_string())?);
        writeln!(out, "recv_us,sent_us,create_ms,duplicate").map_err(|error| error.to_string())?;
        for (recv, sent, created, duplicate) in &rows {
            writeln!(out, "{recv},{sent},{created},{}", u8::from(*duplicate)).map_err(|error| error.to_string())?;
        }
        out.flush().map_err(|error| error.to_string())?;
    }
    let measured: Vec<&(i64, i64, i64, bool)> =
        rows.iter().filter(|(_, sent, _, duplicate)| !duplicate && *sent >= from_us).collect();
    let first_sent = measured.iter().map(|row| row.1).min().unwrap_or(0);
    let last_sent = measured.iter().map(|row| row.1).max().unwrap_or(0);
    let mut latencies: Vec<i64> = measured.iter().map(|(recv, sent, _, _)| recv - sent).collect();
    latencies.sort_unstable();
    let duplicates = rows.iter().filter(|row| row.3).count();
    let span = (last_sent - first_sent) as f64 / 1e6;
    println!(
        "{{\"records\":{},\"measured\":{},\"duplicates\":{duplicates},\"unstamped\":{unstamped},\"measured_rate\":{:.0},\"p50_ms\":{:.2},\"p90_ms\":{:.2},\"p99_ms\":{:.2},\"p999_ms\":{:.2},\"max_ms\":{:.2},\"timed_out\":{}}}",
        rows.len(),
        latencies.len(),
        latencies.len() as f64 / span.max(1e-9),
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 99.9),
        latencies.last().map_or(f64::NAN, |max| *max as f64 / 1e3),
        started.elapsed() >= timeout
    );
    Ok(())
}

/// (state, utime + stime in seconds, RSS in MB) of a process from /proc/PID/stat (USER_HZ is
/// 100 and pages are 4 KiB on x86-64 Linux).
fn proc_cpu(pid: u32) -> Option<(char, f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    let state = fields.first()?.chars().next()?;
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let rss: f64 = fields.get(21)?.parse().ok()?;
    Some((state, (utime + stime) / 100.0, rss * 4096.0 / 1048576.0))
}

/// Runs CMD and samples its CPU seconds and RSS (and the CPU seconds of every `--watch` PID, e.g.
/// the broker) every 20 ms into `--out`: `start_us T`, then `T_us cpu_cmd rss_mb_cmd cpu_watch...`
/// lines, then `exit_us T code C`. Exits with CMD's code.
fn sample(args: &[String]) -> Result<()> {
    let split = args.iter().position(|arg| arg == "--").unwrap_or_else(|| usage());
    let options = Args::parse(&args[..split], &[]);
    let command = &args[split + 1..];
    if command.is_empty() {
        usage();
    }
    let out_path: String = options.get("--out").unwrap_or_else(|| usage());
    let watch: Vec<u32> = args[..split]
        .windows(2)
        .filter(|pair| pair[0] == "--watch")
        .map(|pair| pair[1].parse().unwrap_or_else(|_| usage()))
        .collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&out_path).map_err(|error| error.to_string())?);
    let start = now_us();
    let mut child = std::process::Command::new(&command[0])
        .args(&command[1..])
        .spawn()
        .map_err(|error| format!("starting {}: {error}", command[0]))?;
    let pid = child.id();
    writeln!(out, "start_us {start}").map_err(|error| error.to_string())?;
    out.flush().map_err(|error| error.to_string())?;
    if let Some(pidfile) = options.options.get("--pidfile") {
        std::fs::write(pidfile, format!("{pid}\n")).map_err(|error| error.to_string())?;
    }
    let mut line = String::new();
    loop {
        let now = now_us();
        let own = proc_cpu(pid);
        line.clear();
        let (cpu, rss) = own.map_or((0.0, 0.0), |(_, cpu, rss)| (cpu, rss));
        line.push_str(&format!("{now} {cpu:.2} {rss:.1}"));
        for watched in &watch {
            line.push_str(&format!(" {:.2}", proc_cpu(*watched).map_or(-1.0, |(_, cpu, _)| cpu)));
        }
        writeln!(out, "{line}").map_err(|error| error.to_string())?;
        // A zombie keeps its CPU times until it is reaped: the last sample above has them.
        if own.is_none_or(|(state, _, _)| state == 'Z' || state == 'X') {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().map_err(|error| error.to_string())?;
    let code = status.code().unwrap_or(128 + 9);
    writeln!(out, "exit_us {} code {code}", now_us()).map_err(|error| error.to_string())?;
    out.flush().map_err(|error| error.to_string())?;
    std::process::exit(code)
}
