//! kafka-source → kafka-sink against a real Kafka-protocol broker (tansu, installed by
//! scripts/install-deps.sh, started here on a loopback port with memory storage).
//!
//! Output is read `read_uncommitted` and deduplicated by `pulse-id`: tansu shows aborted
//! records to `read_committed` too, and hides some committed ones from it for good
//! (`tansu_hides_a_transaction_that_ended_before_an_overlapping_one`).
//!
//! - A run over a 4-partition topic produces exactly the records the
//!   file-based run of the same pipeline writes, each with a distinct `pulse-id` header; the
//!   records it rejects go to a dead-letter topic with headers naming the reason and the source
//!   record.
//! - A streaming run stopped by SIGTERM, then restarted with more input, continues from its
//!   checkpoint: keyed state carries over and nothing of the first half is produced again.
//! - Streaming runs in one consumer group, SIGKILLed at seeded random moments while input
//!   arrives, then a last run: deduplicated by `pulse-id` the committed output is exactly the file
//!   run's, every repeated id is the same record byte for byte, and nothing arrives late.
//! - Two streaming instances in one group share the partitions; after one is SIGKILLed the other
//!   restores its state from the changelog topic and the deduplicated output is the file run's.
//! - A SIGTERMed binary whose broker is gone exits within `PULSE_STOP_TIMEOUT`.
//! - A topic not keyed by the state's key goes through a repartition topic: two instances
//!   share its partitions, every user's records land on one partition, and the output is the
//!   file run's over the records in the order the pipeline got them.
//! - Transactional errors injected through librdkafka's mock cluster: retriable ones are retried
//!   and the run completes; a fenced producer ends the run with a clear error, and a restart
//!   completes it with nothing lost or doubled.
//! - While Redis is down for longer than `max.poll.interval.ms`, the source pauses its
//!   partitions and stays in the group (no eviction, no rebalance); once Redis is back it resumes
//!   and every event reaches Redis.
//! - `bootstrap --from kafka:TOPIC` stores every partition's position and gives the same live
//!   output as a bootstrap from the same events in a file.
//! - Instances started from such a savepoint hand each partition's part of it (state, pending
//!   timers, positions) to the changelog, so an instance started without it continues the
//!   partitions exactly: its output is the file run's, each record once.

mod build;
mod redis_server;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const PIPELINE: &str = r#"
pipeline kafka-e2e

runtime {
  readSetting: "earliest"
}

event {
  event_name: string
  userId: string?
  n: int
  ts: timestamp
}

events: kafka-source("e2e-in") {
  brokers: "127.0.0.1:9"
  groupId: "kafka-e2e"
  keyBy: userId
  eventTime: ts
}

events
  -> clicks: filter(event_name == "click" && userId != null)
  -> cap: capping(3, 1h) by userId
  -> tagged: map {
    set: { doubled: n * 2 }
  }
  -> out: kafka-sink("e2e-out") {
    key: "{{ userId }}"
  }
"#;

fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build::build_text("kafka.pulse", PIPELINE, None))
}

fn tansu_path() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tansu-path");
    let output = Command::new("bash").arg(&script).output().expect("scripts/tansu-path runs");
    assert!(
        output.status.success(),
        "tansu is not installed ({}); run scripts/install-deps.sh",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// A tansu broker on a free loopback port, killed on drop (or another broker at `address`).
/// One test with a broker at a time. Each runs a broker, one to three instances and reference
/// runs; on two cores, two such tests at once starve each other's group sessions and
/// transactions, and tansu's races (see docs/semantics.md) become a test's result.
static ONE_BROKER: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Broker {
    child: Option<Child>,
    address: String,
    /// Released after the broker is killed (fields drop after `Drop::drop`).
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl Broker {
    fn start() -> Broker {
        let one_at_a_time = ONE_BROKER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port();
        let url = format!("tcp://127.0.0.1:{port}");
        // PULSE_TEST_BROKER_LOG=FILE keeps the broker's log (RUST_LOG sets its detail).
        let (out, err) = match std::env::var_os("PULSE_TEST_BROKER_LOG") {
            Some(path) => {
                let file = std::fs::File::create(path).expect("broker log file");
                (Stdio::from(file.try_clone().expect("log file handle")), Stdio::from(file))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = Command::new(tansu_path())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("tansu starts");
        let broker = Broker { child: Some(child), address: format!("127.0.0.1:{port}"), _one_at_a_time: one_at_a_time };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&broker.address).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {}", broker.address);
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.address);
        config
    }

    fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = self.config().create().expect("admin client");
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let admin_options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = futures_block_on(admin.create_topics(&[topic], &admin_options));
        for result in results.expect("create_topics") {
            result.unwrap_or_else(|(topic, error)| panic!("creating `{topic}`: {error}"));
        }
    }

    /// Produces `events` keyed by their `userId`.
    fn produce(&self, topic: &str, events: &[String]) {
        self.produce_keyed(topic, events, |_, event| {
            let value: Option<serde_json::Value> = serde_json::from_str(event).ok();
            value.as_ref().and_then(|value| value["userId"].as_str()).unwrap_or("none").to_string()
        });
    }

    /// Produces `events` keyed by `key(index, event)`.
    fn produce_keyed(&self, topic: &str, events: &[String], key: impl Fn(usize, &str) -> String) {
        let producer: BaseProducer = self.config().set("enable.idempotence", "true").create().expect("producer");
        for (index, event) in events.iter().enumerate() {
            let key = key(index, event);
            let mut record = BaseRecord::to(topic).key(&key).payload(event.as_str());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, returned)) => {
                        record = returned;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
    }

    /// Every record of `topic` (see `read_records`): (pulse-id, key, value).
    fn read_all(&self, topic: &str) -> Vec<(String, String, String)> {
        self.read_records(topic)
            .into_iter()
            .map(|record| {
                let id = record.headers.get("pulse-id").cloned().expect("every record has a pulse-id header");
                (id, record.key, record.value)
            })
            .collect()
    }

    /// The value of the record at `offset` of `partition`.
    fn read_one(&self, topic: &str, partition: i32, offset: i64) -> String {
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", format!("reader-one-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut assignment = rdkafka::TopicPartitionList::new();
        assignment.add_partition_offset(topic, partition, rdkafka::Offset::Offset(offset)).expect("offset");
        consumer.assign(&assignment).expect("assign");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "no record at {topic}/{partition}/{offset}");
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                let message = message.expect("consume");
                assert_eq!(message.offset(), offset, "the first record read is the one asked for");
                return String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned();
            }
        }
    }

    /// Each partition's end as the broker lists it to `read_committed` (the last stable offset)
    /// and to `read_uncommitted` (tansu: its last batch's base offset plus one).
    fn ends_report(&self, topic: &str) -> String {
        let mut ends: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for isolation in ["read_committed", "read_uncommitted"] {
            let consumer: BaseConsumer = self
                .config()
                .set("group.id", format!("ends-{}", std::process::id()))
                .set("isolation.level", isolation)
                .create()
                .expect("consumer");
            let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else {
                return format!("`{topic}`: no metadata\n");
            };
            for partition in metadata.topics()[0].partitions() {
                let end = consumer
                    .fetch_watermarks(topic, partition.id(), Duration::from_secs(10))
                    .map_or_else(|error| error.to_string(), |(low, high)| format!("{low}..{high}"));
                ends.entry(partition.id()).or_default().push(format!("{isolation} {end}"));
            }
        }
        // The first offset a read from offset 0 gets, which a read from the beginning (the
        // earliest offset listed) may not.
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", format!("ends-{}", std::process::id()))
            .set("isolation.level", "read_uncommitted")
            .create()
            .expect("consumer");
        let mut assignment = rdkafka::TopicPartitionList::new();
        for partition in ends.keys() {
            assignment.add_partition_offset(topic, *partition, rdkafka::Offset::Offset(0)).expect("offset");
        }
        consumer.assign(&assignment).expect("assign");
        let mut first: BTreeMap<i32, i64> = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && first.len() < ends.len() {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
                first.entry(message.partition()).or_insert(message.offset());
            }
        }
        ends.iter()
            .map(|(partition, ends)| {
                format!(
                    "`{topic}` [{partition}] ends: {}; read from 0: first {:?}\n",
                    ends.join(", "),
                    first.get(partition)
                )
            })
            .collect()
    }

    /// Every record of `topic`, read `read_uncommitted`: on tansu that differs from
    /// `read_committed` only by the committed records it hides for good (see
    /// `tansu_hides_a_transaction_that_ended_before_an_overlapping_one`); aborted ones it shows
    /// to both, so the tests deduplicate by `pulse-id` either way.
    fn read_records(&self, topic: &str) -> Vec<Record> {
        self.read_records_as(topic, "read_uncommitted")
    }

    /// Every record of `topic` visible at `isolation` (`read_committed`, `read_uncommitted`).
    fn read_records_as(&self, topic: &str, isolation: &str) -> Vec<Record> {
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", format!("reader-{}", std::process::id()))
            .set("isolation.level", isolation)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
        let mut assignment = rdkafka::TopicPartitionList::new();
        let mut ends = BTreeMap::new();
        for partition in metadata.topics()[0].partitions() {
            let (_, high) = consumer.fetch_watermarks(topic, partition.id(), Duration::from_secs(10)).expect("ends");
            ends.insert(partition.id(), high);
            assignment.add_partition_offset(topic, partition.id(), rdkafka::Offset::Beginning).expect("offset");
        }
        consumer.assign(&assignment).expect("assign");
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        // Some brokers report end offsets late, and transaction markers take offsets without
        // being delivered: read until the ends are passed and nothing came for a few seconds.
        let mut last = Instant::now();
        loop {
            assert!(Instant::now() < deadline, "reading `{topic}` timed out at {next:?} of {ends:?}");
            let Some(message) = consumer.poll(Duration::from_millis(200)) else {
                let passed =
                    ends.iter().all(|(partition, high)| next.get(partition).copied().unwrap_or(0) >= *high - 1);
                // Several producers' commit markers can end a partition: after a longer quiet
                // spell, the offsets left are taken for markers.
                let quiet = last.elapsed();
                if quiet > Duration::from_secs(4) && (passed || quiet > Duration::from_secs(10)) {
                    break;
                }
                continue;
            };
            last = Instant::now();
            let message = message.expect("consume");
            next.insert(message.partition(), message.offset() + 1);
            let headers = message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|header| {
                            let value = String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned();
                            (header.key.to_string(), value)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let key = message.key().map(|key| String::from_utf8_lossy(key).into_owned()).unwrap_or_default();
            let value = String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned();
            out.push(Record { partition: message.partition(), offset: message.offset(), headers, key, value });
        }
        out
    }
}

/// One record as a consumer sees it.
struct Record {
    partition: i32,
    offset: i64,
    headers: BTreeMap<String, String>,
    key: String,
    value: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Drives one future to completion on this thread (the admin API is async; the tests are not).
fn futures_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Thread(std::thread::Thread);
    impl Wake for Thread {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Thread(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park_timeout(Duration::from_millis(50)),
        }
    }
}

fn events(count: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            let user = format!("u{}", n % 13);
            let name = if n % 4 == 3 { "view" } else { "click" };
            format!(
                r#"{{"event_name":"{name}","userId":"{user}","n":{n},"ts":{}}}"#,
                1_700_000_000_000i64 + n as i64 * 60_000
            )
        })
        .collect()
}

/// Asserts two sorted multisets are equal, printing only the counts and a few differences.
fn assert_same(actual: &[String], expected: &[String], what: &str) {
    if actual == expected {
        return;
    }
    let missing: Vec<&String> = expected.iter().filter(|line| !actual.contains(line)).take(5).collect();
    let extra: Vec<&String> = actual.iter().filter(|line| !expected.contains(line)).take(5).collect();
    panic!(
        "{what}: {} records, expected {}\nmissing (first 5): {missing:#?}\nunexpected (first 5): {extra:#?}",
        actual.len(),
        expected.len()
    );
}

/// The reference: the same binary over the same events as a file.
fn reference(events: &[String], dir: &Path) -> Vec<String> {
    reference_of(binary(), events, dir)
}

/// The reference: `binary` over the events as a file.
fn reference_of(binary: &Path, events: &[String], dir: &Path) -> Vec<String> {
    let input = dir.join("in.jsonl");
    std::fs::write(&input, events.join("\n") + "\n").expect("write input");
    let output = Command::new(binary)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(dir.join("reference"))
        .arg("--quiet")
        .output()
        .expect("binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut lines: Vec<String> = std::fs::read_to_string(dir.join("reference/out.jsonl"))
        .expect("reference output")
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert!(lines.len() > 50, "the reference output is too small to prove anything: {}", lines.len());
    lines
}

fn run_command(broker: &Broker, state_dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("--state-dir")
        .arg(state_dir)
        .args(extra)
        .env("PULSE_KAFKA_BROKERS", &broker.address)
        .env("PULSE_KAFKA_PROP_SESSION_TIMEOUT_MS", "3000");
    command
}

#[test]
fn exactly_once_topic_to_topic_equals_the_file_run() {
    let broker = Broker::start();
    broker.create_topic("e2e-in", 4);
    broker.create_topic("e2e-out", 4);
    broker.create_topic("e2e-dead", 1);
    let mut input = events(400);
    // Records the source rejects (G9, G10) go to the dead-letter topic.
    let rejected = [
        "not json at all",
        "[1, 2, 3]",
        r#"{"event_name":"click","userId":"u1","n":"seven","ts":1700000000000}"#,
        r#"{"event_name":"click","userId":"u2","n":7}"#,
    ];
    input.splice(100..100, rejected.iter().map(|line| line.to_string()));
    broker.produce("e2e-in", &input);
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = reference(&input, dir.path());

    let output = run_command(&broker, &dir.path().join("state"), &["--until-end", "--checkpoint-every", "100"])
        .env_remove("PULSE_QUIET")
        .env("PULSE_DEAD_LETTER", "kafka:e2e-dead")
        .output()
        .expect("binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // The dead letters equal the file run's (event and reason category, G51), and their headers
    // name the reason and the exact source record.
    let category = |reason: &str| reason.split(':').next().unwrap_or_default().trim().to_string();
    let letter = |text: &str| -> (String, serde_json::Value) {
        let value: serde_json::Value = serde_json::from_str(text).expect("a dead letter is JSON");
        (category(value["reason"].as_str().expect("reason")), value["event"].clone())
    };
    let reference_dead = std::fs::read_to_string(dir.path().join("reference/_dead_letter.jsonl")).expect("file run");
    let mut expected_dead: Vec<_> = reference_dead.lines().map(letter).collect();
    let records = broker.read_records("e2e-dead");
    let mut actual_dead: Vec<_> = records.iter().map(|record| letter(&record.value)).collect();
    expected_dead.sort_by_key(|(category, event)| format!("{category} {event}"));
    actual_dead.sort_by_key(|(category, event)| format!("{category} {event}"));
    assert_eq!(expected_dead.len(), rejected.len(), "the file run rejects every bad record: {reference_dead}");
    assert_eq!(actual_dead, expected_dead, "dead letters in Kafka and in the file run");
    for record in &records {
        let value: serde_json::Value = serde_json::from_str(&record.value).expect("JSON");
        let header = |name: &str| record.headers.get(name).cloned().unwrap_or_else(|| panic!("no `{name}` header"));
        assert_eq!(header("pulse-reason"), value["reason"].as_str().expect("reason"));
        assert_eq!(header("pulse-source-topic"), "e2e-in");
        let partition: i32 = header("pulse-source-partition").parse().expect("partition number");
        let offset: i64 = header("pulse-source-offset").parse().expect("offset number");
        assert_eq!(header("pulse-origin"), format!("e2e-in/{partition}/{offset}"));
        let source = broker.read_one("e2e-in", partition, offset);
        // G9: an unparseable record is carried as its raw text, any other as its value.
        let event = match category(&header("pulse-reason")).as_str() {
            "invalid-json" => serde_json::Value::String(source),
            _ => serde_json::from_str(&source).expect("the rejected record parses"),
        };
        assert_eq!(value["event"], event, "the coordinates name the rejected record");
    }

    let records = broker.read_all("e2e-out");
    let mut ids: Vec<&String> = records.iter().map(|(id, _, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), records.len(), "pulse-id headers repeat in an uninterrupted run");
    for (_, key, value) in &records {
        let parsed: serde_json::Value = serde_json::from_str(value).expect("JSON value");
        assert_eq!(parsed["userId"].as_str(), Some(key.as_str()), "the key template renders userId");
    }
    let mut values: Vec<String> = records.into_iter().map(|(_, _, value)| value).collect();
    values.sort();
    let summary = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_same(&values, &expected, &format!("topic-to-topic run ({summary})"));
}

#[test]
fn sigterm_stops_with_a_checkpoint_and_a_restart_continues_from_it() {
    let broker = Broker::start();
    broker.create_topic("e2e-in", 4);
    broker.create_topic("e2e-out", 4);
    let input = events(400);
    let (first, second) = input.split_at(200);
    let first_dir = tempfile::tempdir().expect("temp dir");
    let expected_first = reference(first, first_dir.path());
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = reference(&input, dir.path());
    let state = dir.path().join("state");

    // A streaming run (no --until-end) over the first half, stopped by SIGTERM once its output
    // is committed.
    broker.produce("e2e-in", first);
    let mut child = run_command(&broker, &state, &["--checkpoint-interval", "300ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let deadline = Instant::now() + Duration::from_secs(90);
    while broker.read_all("e2e-out").len() < expected_first.len() {
        assert!(Instant::now() < deadline, "the streaming run did not commit the first half");
        assert!(child.try_wait().expect("wait").is_none(), "the streaming run exited on its own");
    }
    let terminated = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(terminated.success());
    let output = child.wait_with_output().expect("output");
    let first_summary = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "SIGTERM ends the run cleanly: {first_summary}");

    // The second half, read by a restart from the checkpoint: nothing of the first half again,
    // and the capping state carries over.
    broker.produce("e2e-in", second);
    let output = run_command(&broker, &state, &["--until-end"]).output().expect("binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let records = broker.read_all("e2e-out");
    let mut ids: Vec<&String> = records.iter().map(|(id, _, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), records.len(), "the restart produced records of the first half again");
    let mut values: Vec<String> = records.into_iter().map(|(_, _, value)| value).collect();
    values.sort();
    let summary = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_same(&values, &expected, &format!("stopped by SIGTERM ({first_summary}), then resumed ({summary})"));

    // The state directory belongs to this group's changelog: another group is refused.
    let output = run_command(&broker, &state, &["--until-end"])
        .env("PULSE_KAFKA_GROUP_ID", "kafka-e2e-other")
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("holds the state of changelog `kafka-e2e-changelog`")
            && stderr.contains("`kafka-e2e-other-changelog`"),
        "{stderr}"
    );
}

/// Version 2 of `v1_text` for the upgrade tests: a new group, a changed filter and a new node.
fn version_2(v1_text: &str) -> String {
    let v2_text = v1_text
        .replace(r#"groupId: "kafka-e2e""#, r#"groupId: "kafka-e2e-v2""#)
        .replace(
            r#"filter(event_name == "click" && userId != null)"#,
            r#"filter(event_name == "click" && userId != null && n % 5 != 0)"#,
        )
        .replace("  -> out: kafka-sink", "  -> stamped: map {\n    set: { version: 2 }\n  }\n  -> out: kafka-sink");
    assert!(v2_text.contains("kafka-e2e-v2") && v2_text.contains("n % 5") && v2_text.contains("stamped"));
    v2_text
}

/// What an upgrade outputs, from file runs: version 1 over `first`, then version 2 over `rest`
/// from the state version 1 built (a bootstrap writes the same state without output). Returns
/// version 1's part and the whole, sorted.
fn upgrade_reference(
    v1: &Path,
    v2: &Path,
    first: &[String],
    rest: &[String],
    dir: &Path,
) -> (Vec<String>, Vec<String>) {
    let path = |name: &str| dir.join(name);
    std::fs::create_dir_all(path("ref1")).expect("reference directory");
    let mut before = reference_of(v1, first, &path("ref1"));
    before.sort();
    std::fs::write(path("first.jsonl"), first.join("\n") + "\n").expect("write");
    std::fs::write(path("rest.jsonl"), rest.join("\n") + "\n").expect("write");
    let status = Command::new(v1)
        .args(["bootstrap", "--from", "first.jsonl", "--to", "ref.sp", "-q"])
        .current_dir(dir)
        .status()
        .expect("bootstrap runs");
    assert!(status.success());
    let status = Command::new(v2)
        .args(["--input", "rest.jsonl", "--output", "ref2", "--from-savepoint", "ref.sp", "-q"])
        .current_dir(dir)
        .status()
        .expect("v2 runs");
    assert!(status.success());
    let second = std::fs::read_to_string(path("ref2/out.jsonl")).expect("v2 reference");
    assert!(second.lines().all(|line| line.contains(r#""version":2"#)) && second.lines().count() > 20);
    let mut all = before.clone();
    all.extend(second.lines().map(str::to_string));
    all.sort();
    (before, all)
}

/// Waits up to 120 s for `expected`'s count of distinct outputs in `e2e-out`, failing with
/// what is missing and why if an instance exits or the time is up.
fn wait_for_upgrade_output(broker: &Broker, expected: &[String], instances: &mut [(KillOnDrop, PathBuf)]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while deduplicated(&broker.read_all("e2e-out")).len() < expected.len() {
        for (child, _) in instances.iter_mut() {
            assert!(child.0.try_wait().expect("wait").is_none(), "an instance exited:\n{}", instance_logs(instances));
        }
        if Instant::now() > deadline {
            let report = missing_output_report(broker, expected, &BTreeMap::new());
            let ends = broker.ends_report("e2e-out");
            panic!("no output of {} records:\n{report}{ends}{}", expected.len(), instance_logs(instances));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `savepoint create --group` with `binary` in `dir`, to `to`: the savepoint, after checking
/// that it files every entry under a partition and that `pulsec diff` passes `v2_file` against it.
fn group_savepoint(
    binary: &Path,
    broker: &Broker,
    dir: &Path,
    to: &str,
    v2_file: &Path,
) -> pulse_runtime::checkpoint::Snapshot {
    let output = Command::new(binary)
        .args(["savepoint", "create", "--group", "--to", to])
        .current_dir(dir)
        .env("PULSE_KAFKA_BROKERS", &broker.address)
        .output()
        .expect("savepoint create runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let savepoint = pulse_runtime::checkpoint::Snapshot::decode(&std::fs::read(dir.join(to)).expect("read"))
        .expect("a valid savepoint");
    assert!(!savepoint.entries.is_empty() && savepoint.shards.len() == savepoint.entries.len(), "state by partition");
    let diff = pulsec::main_with_args(vec![
        "pulsec".into(),
        "diff".into(),
        "--against".into(),
        dir.join(to).into(),
        v2_file.into(),
    ]);
    assert_eq!(diff, std::process::ExitCode::SUCCESS, "pulsec diff passes version 2 against the savepoint");
    savepoint
}

/// An upgrade of a scaled-out pipeline: three instances of version 1 stop with SIGTERM, one
/// savepoint of the whole group is read from its changelog (`savepoint create --group`),
/// `pulsec diff` passes it for version 2 (a changed filter and a new node, in a new group),
/// and three instances of version 2 start from it. Across the upgrade every record is output
/// once by id, and the output is version 1's file run over the first part followed by version
/// 2's over the rest from version 1's state.
#[test]
fn a_group_savepoint_upgrades_three_instances_to_the_next_version() {
    let v2_text = version_2(PIPELINE);
    let v2 = build::build_text("kafka-v2.pulse", &v2_text, None);
    let broker = Broker::start();
    broker.create_topic("e2e-in", 4);
    broker.create_topic("e2e-out", 4);
    let input = events(600);
    let (first, rest) = input.split_at(300);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("v2.pulse"), &v2_text).expect("write v2");

    let (first_expected, expected) = upgrade_reference(binary(), &v2, first, rest, dir.path());

    let start = |binary: &Path, name: &str, extra: &[&str]| -> (KillOnDrop, PathBuf) {
        let log = path(&format!("{name}.log"));
        (start_instance(binary, &broker, dir.path(), name, &log, extra), log)
    };
    // Before any instance checkpointed, the group's changelog gives no positions: refused.
    broker.create_topic("kafka-e2e-changelog", 4);
    let early = Command::new(binary())
        .args(["savepoint", "create", "--group", "--to", "early.sp"])
        .current_dir(dir.path())
        .env("PULSE_KAFKA_BROKERS", &broker.address)
        .output()
        .expect("savepoint create runs");
    let stderr = String::from_utf8_lossy(&early.stderr);
    assert_eq!(early.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no committed checkpoint") && stderr.contains("[0, 1, 2, 3]"), "{stderr}");
    assert!(!path("early.sp").exists());

    broker.produce("e2e-in", first);
    let mut v1: Vec<(KillOnDrop, PathBuf)> = ["a", "b", "c"].iter().map(|name| start(binary(), name, &[])).collect();
    wait_for_upgrade_output(&broker, &first_expected, &mut v1);
    for (child, log) in &mut v1 {
        stop_cleanly(&mut child.0, log);
    }

    let savepoint = group_savepoint(binary(), &broker, dir.path(), "group.sp", &path("v2.pulse"));
    let positions: Vec<(i32, i64)> = savepoint
        .progress
        .kafka
        .iter()
        .filter(|(_, topic, ..)| topic == "e2e-in")
        .map(|(_, _, partition, next)| (*partition, *next))
        .collect();
    assert_eq!(
        positions.iter().map(|(partition, _)| *partition).collect::<BTreeSet<_>>(),
        BTreeSet::from([0, 1, 2, 3])
    );
    assert_eq!(positions.iter().map(|(_, next)| next).sum::<i64>(), first.len() as i64, "every instance's part");
    broker.produce("e2e-in", rest);
    let mut v2s: Vec<(KillOnDrop, PathBuf)> =
        ["a", "b", "c"].iter().map(|name| start(&v2, &format!("{name}2"), &["--from-savepoint", "group.sp"])).collect();
    wait_for_upgrade_output(&broker, &expected, &mut v2s);
    std::thread::sleep(Duration::from_secs(2));
    let mut output = deduplicated(&broker.read_all("e2e-out"));
    output.sort();
    assert_same(&output, &expected, &format!("across the upgrade\n{}", instance_logs(&v2s)));

    // The new group's changelog descends from the group savepoint: an instance joining it from
    // another savepoint is refused instead of continuing from the changelog in its place. (It
    // joins while the group runs: tansu 0.6 often never assigns a group all of whose members left.)
    let mut other = start(&v2, "other", &["--from-savepoint", "ref.sp"]);
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = other.0 .0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "not refused:\n{}", complete_lines(&other.1));
        std::thread::sleep(Duration::from_millis(200));
    };
    let log = complete_lines(&other.1);
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains("from another savepoint than this run's") && log.contains("use a new consumer group"),
        "{log}"
    );
}

/// The body of `GET path` from `address`.
fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap_or_else(|error| panic!("connect {address}: {error}"));
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response.split_once("\r\n\r\n").map_or(String::new(), |(_, body)| body.to_string())
}

/// xorshift64: the kill schedule is random but the same on every run.
fn pseudo_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_replays_exact_records() {
    sigkill_scenario(None);
}

/// The same with every checkpoint's Kafka commit held in flight for a second
/// (`PULSE_KAFKA_COMMIT_PAUSE`), while the next checkpoint's records are processed and
/// produced: nearly every SIGKILL lands with a commit in flight and the next transactions open.
#[test]
fn sigkill_while_a_commit_is_in_flight_loses_nothing_and_replays_exact_records() {
    sigkill_scenario(Some("1s"));
}

fn sigkill_scenario(commit_pause: Option<&str>) {
    let run_command = |broker: &Broker, state: &Path, extra: &[&str]| {
        let mut command = run_command(broker, state, extra);
        if let Some(pause) = commit_pause {
            command.env("PULSE_KAFKA_COMMIT_PAUSE", pause);
        }
        command
    };
    let broker = Broker::start();
    broker.create_topic("e2e-in", 4);
    broker.create_topic("e2e-out", 4);
    let input = events(600);
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = reference(&input, dir.path());
    let state = dir.path().join("state");
    let (first, rest) = input.split_at(200);
    broker.produce("e2e-in", first);

    // Streaming runs in the same consumer group, SIGKILLed at seeded random moments while more
    // input arrives; each restart resumes from its local checkpoint.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for (round, chunk) in rest.chunks(100).enumerate() {
        let log = dir.path().join(format!("round-{round}.log"));
        let mut child = run_command(&broker, &state, &["--checkpoint-interval", "200ms"])
            .env_remove("PULSE_QUIET")
            .env_remove("PULSE_LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("binary runs");
        // Killed once it holds partitions and works, not while it is still joining the group.
        wait_for("an assignment", 60, &mut [(&mut child, log.as_path())], || complete_lines(&log).contains("assigned"));
        std::thread::sleep(Duration::from_millis(300 + pseudo_random(&mut seed) % 1_500));
        broker.produce("e2e-in", chunk);
        std::thread::sleep(Duration::from_millis(pseudo_random(&mut seed) % 1_500));
        assert!(child.try_wait().expect("wait").is_none(), "round {round}: the streaming run exited on its own");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }
    // A last streaming run, stopped once the output stops growing (or after 90 s).
    let dead = state.with_file_name("dead.jsonl");
    let mut child = run_command(&broker, &state, &["--checkpoint-interval", "200ms", "--quiet"])
        .arg("--dead-letter")
        .arg(&dead)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut distinct = 0;
    while distinct < expected.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        assert!(child.try_wait().expect("wait").is_none(), "the last run exited on its own");
        distinct = deduplicated(&broker.read_all("e2e-out")).len();
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    let output = child.wait_with_output().expect("output");
    assert!(output.status.success(), "last run: {}", String::from_utf8_lossy(&output.stderr));
    let dead = std::fs::read_to_string(&dead).unwrap_or_default();
    assert!(dead.is_empty(), "dead letters: {}", dead.lines().take(3).collect::<Vec<_>>().join("\n"));

    // Deduplicated by `pulse-id`, the committed records are exactly the file run's.
    let records = broker.read_all("e2e-out");
    let mut values = deduplicated(&records);
    values.sort();
    assert_same(&values, &expected, &format!("after 4 SIGKILLs ({} records read, with repeats)", records.len()));
}

/// The broker keeps records of aborted transactions visible (tansu does not filter them), so a
/// reader deduplicates by `pulse-id`: every repeat must be the same record, byte for byte.
fn deduplicated(records: &[(String, String, String)]) -> Vec<String> {
    let mut by_id: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for (id, key, value) in records {
        if let Some(seen) = by_id.insert(id, (key, value)) {
            assert_eq!(seen, (key.as_str(), value.as_str()), "pulse-id {id} names two different records");
        }
    }
    by_id.into_values().map(|(_, value)| value.to_string()).collect()
}

/// A child process killed on drop, so a failing test leaves no instance running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The log up to its last complete line (an instance may be writing the next one).
fn complete_lines(log: &Path) -> String {
    let bytes = std::fs::read(log).unwrap_or_default();
    let end = bytes.iter().rposition(|byte| *byte == b'\n').map_or(0, |last| last + 1);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The partition numbers a log line lists after `marker` (e.g. ` assigned e2e-in [`).
fn partition_list(line: &str, marker: &str) -> Option<Vec<i32>> {
    let (_, rest) = line.split_once(marker)?;
    let (list, _) = rest.split_once(']')?;
    Some(
        list.split(',')
            .map(str::trim)
            .filter(|partition| !partition.is_empty())
            .map(|partition| partition.parse().unwrap_or_else(|_| panic!("a partition number in `{line}`")))
            .collect(),
    )
}

/// The partitions of `e2e-in` an instance holds according to its assignment and revocation lines.
fn held_partitions(log: &Path) -> BTreeSet<i32> {
    held_partitions_of(log, "e2e-in")
}

/// The partitions of `topic` an instance holds according to its assignment and revocation lines.
fn held_partitions_of(log: &Path, topic: &str) -> BTreeSet<i32> {
    let mut held = BTreeSet::new();
    for line in complete_lines(log).lines() {
        if let Some(assigned) = partition_list(line, &format!(" assigned {topic} [")) {
            held.extend(assigned);
        } else if let Some(revoked) = partition_list(line, &format!(" revoked {topic} [")) {
            for partition in revoked {
                held.remove(&partition);
            }
        }
    }
    held
}

/// The last lines of every instance's log, for failure messages.
fn log_tails(instances: &[(&mut Child, &Path)]) -> String {
    instances
        .iter()
        .map(|(_, log)| {
            let text = complete_lines(log);
            let lines: Vec<&str> = text.lines().collect();
            format!("--- {} ---\n{}", log.display(), lines[lines.len().saturating_sub(20)..].join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Polls `done` every 200 ms; fails with the instances' log tails when one of them exits or
/// `seconds` pass first.
fn wait_for(what: &str, seconds: u64, instances: &mut [(&mut Child, &Path)], done: impl FnMut() -> bool) {
    wait_for_explained(what, seconds, instances, done, String::new);
}

/// `wait_for`, with `explain()` in the message when the time is up.
fn wait_for_explained(
    what: &str,
    seconds: u64,
    instances: &mut [(&mut Child, &Path)],
    mut done: impl FnMut() -> bool,
    explain: impl Fn() -> String,
) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        let exited = instances
            .iter_mut()
            .find_map(|(child, log)| child.try_wait().expect("wait").map(|status| (status, log.display().to_string())));
        if let Some((status, log)) = exited {
            panic!("waiting for {what}: the instance logging to {log} exited ({status})\n{}", log_tails(instances));
        }
        if Instant::now() >= deadline {
            panic!("{what} did not happen within {seconds} s\n{}\n{}", explain(), log_tails(instances));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How many state entries an assignment line says were restored from the changelog.
fn restored_entries(line: &str) -> Option<u64> {
    let (_, rest) = line.split_once("restored ")?;
    let (count, _) = rest.split_once(" state entries")?;
    count.trim().parse().ok()
}

/// `--until-end` with several instances in one group: each ends once the partitions it holds
/// are read to the ends seen at start and no rebalance is waiting (a partition handed over by an
/// instance that ended is already at its end), so every instance exits and the deduplicated
/// committed output is the file run's. Before, an instance waited for every partition of the
/// topic, including those another member read, and never ended.
#[test]
fn until_end_ends_both_instances_of_a_group_of_two() {
    until_end_scenario(2);
}

/// As `until_end_ends_both_instances_of_a_group_of_two`, with three instances. When the group's
/// leader ends while tansu 0.6 is rebalancing after another member ended, tansu keeps the
/// departed leader and the last member is never assigned again: it ends once the group's
/// committed offsets reached the ends (docs/semantics.md, "Stopping").
#[test]
fn until_end_ends_all_three_instances_of_a_group() {
    until_end_scenario(3);
}

/// `--until-end` for a member the group assigns nothing to: it ends once the group's committed
/// offsets reached the ends seen at start. Two streaming instances read everything; the second
/// to join stops, then at once the first, the group's leader, which tansu 0.6 then keeps as the
/// leader of the group it left (docs/semantics.md, "tansu 0.6 and a group whose members all
/// leave"): a third instance that joins with `--until-end` is usually never assigned a
/// partition. It ends all the same, and the output is the file run's.
#[test]
fn an_until_end_instance_the_group_never_assigns_ends_once_the_group_is_done() {
    let broker = Broker::start();
    broker.create_topic("e2e-in", 4);
    broker.create_topic("e2e-out", 4);
    let input = events(200);
    broker.produce("e2e-in", &input);
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = reference(&input, dir.path());
    let spawn = |name: &str, extra: &[&str]| spawn_logged(&broker, dir.path(), name, extra);
    // The first member to join a group leads it.
    let (mut a, a_log) = spawn("a", &[]);
    wait_for("a's assignment", 60, &mut [(&mut a.0, a_log.as_path())], || {
        !held_partitions_of(&a_log, "e2e-in").is_empty()
    });
    let (mut b, b_log) = spawn("b", &[]);
    wait_for(
        "a and b sharing the partitions, and the whole output",
        90,
        &mut [(&mut a.0, a_log.as_path()), (&mut b.0, b_log.as_path())],
        || {
            !held_partitions_of(&a_log, "e2e-in").is_empty()
                && !held_partitions_of(&b_log, "e2e-in").is_empty()
                && deduplicated(&broker.read_all("e2e-out")).len() >= expected.len()
        },
    );
    stop_cleanly(&mut b.0, &b_log);
    stop_cleanly(&mut a.0, &a_log);
    let mut c = [spawn("c", &["--until-end"])];
    wait_until_all_ended(&mut c, 60);
    let c_log = &c[0].1;
    let c_text = complete_lines(c_log);
    let never_assigned = held_partitions_of(c_log, "e2e-in").is_empty() && !c_text.contains(" assigned e2e-in");
    eprintln!("c was {}assigned partitions", if never_assigned { "never " } else { "" });
    if never_assigned {
        assert!(c_text.contains("nothing left to read"), "c says why it ended:\n{c_text}");
    }
    let mut values = deduplicated(&broker.read_all("e2e-out"));
    values.sort();
    assert_same(&values, &expected, "two instances, then one with --until-end");
}

/// Instance `name` of the test pipeline, checkpointing every 200 ms, with its state in
/// `state-NAME` and its log in `NAME.log` under `dir`.
fn spawn_logged(broker: &Broker, dir: &Path, name: &str, extra: &[&str]) -> (KillOnDrop, PathBuf) {
    let log = dir.join(format!("{name}.log"));
    let child = run_command(broker, &dir.join(format!("state-{name}")), extra)
        .args(["--checkpoint-interval", "200ms"])
        .env("PULSE_INSTANCE_ID", name)
        .env_remove("PULSE_QUIET")
        .env_remove("PULSE_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("binary runs");
    (KillOnDrop(child), log)
}

/// Asserts that every instance exits successfully within `seconds`.
fn wait_until_all_ended(children: &mut [(KillOnDrop, PathBuf)], seconds: u64) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    for index in 0..children.len() {
        loop {
            if let Some(status) = children[index].0 .0.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "instance {index} of {} failed ({status})\n{}",
                    children.len(),
                    instance_logs(children)
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "instance {index} of {} did not end within {seconds} s\n{}",
                children.len(),
                instance_logs(children)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Every instance's log, for failure messages.
fn instance_logs(children: &[(KillOnDrop, PathBuf)]) -> String {
    let tails: Vec<String> =
        children.iter().map(|(_, log)| format!("--- {} ---\n{}", log.display(), complete_lines(log))).collect();
    tails.join("\n")
}

fn until_end_scenario(instances: usize) {
    let broker = Broker::start();
    broker.create_topic("e2e-in", 4);
    broker.create_topic("e2e-out", 4);
    let input = events(400);
    broker.produce("e2e-in", &input);
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = reference(&input, dir.path());
    let mut children: Vec<(KillOnDrop, PathBuf)> =
        (0..instances).map(|n| spawn_logged(&broker, dir.path(), &format!("i{n}"), &["--until-end"])).collect();
    wait_until_all_ended(&mut children, 150);
    let mut values = deduplicated(&broker.read_all("e2e-out"));
    values.sort();
    assert_same(&values, &expected, &format!("{instances} instances with --until-end"));
}

/// An instance joins a running one (scale-up): the group moves partitions to it, and it restores
/// their state, built by the first instance, from the changelog topic. Once it is SIGKILLed
/// (scale-down by a crash) the survivor is assigned every partition again, restores the dead
/// instance's state from the changelog and carries on, so the deduplicated committed output is
/// exactly the file run's and every repeated record is byte for byte the same.
#[test]
fn two_instances_share_the_partitions_and_the_survivor_takes_over_their_state() {
    let broker = Broker::start();
    broker.create_topic("e2e-in", 4);
    broker.create_topic("e2e-out", 4);
    let input = events(600);
    let (first, rest) = input.split_at(200);
    let (second, third) = rest.split_at(200);
    let first_dir = tempfile::tempdir().expect("temp dir");
    let expected_first = reference(first, first_dir.path());
    let second_dir = tempfile::tempdir().expect("temp dir");
    let expected_second = reference(&input[..400], second_dir.path());
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = reference(&input, dir.path());

    let start = |name: &str, log: &Path| {
        let log_file = std::fs::File::create(log).expect("log file");
        let state = dir.path().join(format!("state-{name}"));
        // b, SIGKILLed below, holds each commit in flight for half a second: it dies with a
        // checkpoint's transactions committing and the next ones open.
        let pause = if name == "b" { "500ms" } else { "0" };
        let child = run_command(&broker, &state, &["--checkpoint-interval", "200ms"])
            .env("PULSE_KAFKA_COMMIT_PAUSE", pause)
            .env("PULSE_INSTANCE_ID", name)
            .env_remove("PULSE_QUIET")
            .env_remove("PULSE_LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("binary runs");
        KillOnDrop(child)
    };
    let a_log = dir.path().join("a.log");
    let b_log = dir.path().join("b.log");

    let mut a = start("a", a_log.as_path());
    wait_for("instance a's first assignment", 60, &mut [(&mut a.0, a_log.as_path())], || {
        !held_partitions(&a_log).is_empty()
    });
    broker.produce("e2e-in", first);
    wait_for("a's output of the first part", 60, &mut [(&mut a.0, a_log.as_path())], || {
        deduplicated(&broker.read_all("e2e-out")).len() >= expected_first.len()
    });
    let mut b = start("b", b_log.as_path());
    let mut shares = (BTreeSet::new(), BTreeSet::new());
    wait_for(
        "the group sharing the partitions between a and b",
        60,
        &mut [(&mut a.0, a_log.as_path()), (&mut b.0, b_log.as_path())],
        || {
            shares = (held_partitions(&a_log), held_partitions(&b_log));
            !shares.0.is_empty() && !shares.1.is_empty() && shares.0.len() < 4
        },
    );
    let (held_a, held_b) = shares;
    let logs = || format!("a:\n{}\nb:\n{}", complete_lines(&a_log), complete_lines(&b_log));
    assert!(!held_b.is_empty(), "b holds no partition: {}", logs());
    assert!(held_a.is_disjoint(&held_b), "a holds {held_a:?}, b holds {held_b:?}: {}", logs());
    let all: BTreeSet<i32> = held_a.union(&held_b).copied().collect();
    assert_eq!(all, (0..4).collect::<BTreeSet<i32>>(), "a holds {held_a:?}, b holds {held_b:?}: {}", logs());
    let joined = complete_lines(&b_log);
    assert!(
        joined
            .lines()
            .filter(|line| line.contains(" assigned e2e-in ["))
            .any(|line| restored_entries(line).is_some_and(|count| count > 0)),
        "b took over {held_b:?} from a but restored none of a's state for them: {}",
        logs()
    );

    broker.produce("e2e-in", second);
    wait_for(
        "the output of the first two parts",
        60,
        &mut [(&mut a.0, a_log.as_path()), (&mut b.0, b_log.as_path())],
        || deduplicated(&broker.read_all("e2e-out")).len() >= expected_second.len(),
    );

    let a_before_kill = std::fs::read(&a_log).expect("a's log").len();
    b.0.kill().expect("SIGKILL");
    b.0.wait().expect("reaped");
    broker.produce("e2e-in", third);
    wait_for("the survivor's output of every part", 120, &mut [(&mut a.0, a_log.as_path())], || {
        deduplicated(&broker.read_all("e2e-out")).len() >= expected.len()
    });
    stop_cleanly(&mut a.0, &a_log);

    let a_text = std::fs::read(&a_log).expect("a's log");
    let after_kill = String::from_utf8_lossy(&a_text[a_before_kill..]).into_owned();
    let takeovers: Vec<&str> = after_kill
        .lines()
        .filter(|line| partition_list(line, " assigned e2e-in [") == Some(vec![0, 1, 2, 3]))
        .collect();
    assert!(
        !takeovers.is_empty(),
        "after b's SIGKILL a was never assigned every partition (it held {held_a:?}): {}",
        logs()
    );
    for line in &takeovers {
        assert!(line.contains("restored ") && line.contains(" state entries"), "no restore reported: {line}");
    }
    assert!(
        takeovers.iter().any(|line| restored_entries(line).is_some_and(|count| count > 0)),
        "taking over b's partitions {held_b:?} restored no state: {takeovers:#?}"
    );

    let records = broker.read_all("e2e-out");
    let mut values = deduplicated(&records);
    values.sort();
    assert_same(
        &values,
        &expected,
        &format!(
            "a holding {held_a:?}, b holding {held_b:?} until its SIGKILL ({} records read, with repeats)",
            records.len()
        ),
    );
}

#[test]
fn a_stop_with_the_broker_gone_ends_within_the_stop_timeout() {
    let mut broker = Broker::start();
    broker.create_topic("e2e-in", 4);
    broker.create_topic("e2e-out", 4);
    broker.produce("e2e-in", &events(100));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = run_command(&broker, &dir.path().join("state"), &["--checkpoint-interval", "200ms"])
        .env("PULSE_STOP_TIMEOUT", "2s")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while broker.read_all("e2e-out").is_empty() {
        assert!(Instant::now() < deadline, "no output was committed");
    }
    if let Some(child) = &mut broker.child {
        let _ = child.kill();
        let _ = child.wait();
    }
    std::thread::sleep(Duration::from_millis(500));
    let terminated = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(terminated.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a SIGTERMed binary whose broker is gone did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert!(
        status.success() || stderr.contains("did not stop within 2 s"),
        "exit {status} without the stop-timeout message: {stderr}"
    );
}

#[test]
fn bootstrap_from_a_topic_matches_bootstrap_from_the_same_events_in_a_file() {
    let broker = Broker::start();
    broker.create_topic("history", 4);
    let input = events(300);
    broker.produce("history", &input);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("history.jsonl"), input.join("\n") + "\n").expect("write");
    let bootstrap = |from: &str, to: &str| {
        let output = Command::new(binary())
            .args(["bootstrap", "--from", from, "--to", to, "-q"])
            .current_dir(dir.path())
            .env("PULSE_KAFKA_BROKERS", &broker.address)
            .env("PULSE_KAFKA_PROP_SESSION_TIMEOUT_MS", "3000")
            .output()
            .expect("bootstrap runs");
        assert!(output.status.success(), "bootstrap --from {from}: {}", String::from_utf8_lossy(&output.stderr));
        let bytes = std::fs::read(dir.path().join(to)).expect("savepoint");
        pulse_runtime::checkpoint::Snapshot::decode(&bytes).expect("a valid savepoint")
    };
    let from_topic = bootstrap("kafka:history", "topic.sp");
    bootstrap("history.jsonl", "file.sp");
    assert_eq!(from_topic.progress.records_read, 300);
    let next: i64 = from_topic.progress.kafka.iter().map(|(_, _, _, next)| next).sum();
    assert_eq!(next, 300, "the savepoint holds every partition's position after the history");
    assert!(!from_topic.entries.is_empty(), "the capping state is in the savepoint");
    // Keyed by userId, every user's events keep their order in the topic, so both savepoints
    // make the same live run emit the same records (the capping state carries over).
    let live = events(400).split_off(300);
    std::fs::write(dir.path().join("live.jsonl"), live.join("\n") + "\n").expect("write");
    let run_live = |savepoint: &str| {
        let out = format!("out-{savepoint}");
        let output = Command::new(binary())
            .args(["--input", "live.jsonl", "--output", &out, "--from-savepoint", savepoint, "-q"])
            .current_dir(dir.path())
            .output()
            .expect("live run");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        std::fs::read_to_string(dir.path().join(out).join("out.jsonl")).expect("live output")
    };
    let (live_topic, live_file) = (run_live("topic.sp"), run_live("file.sp"));
    assert!(live_topic.lines().count() > 10, "{live_topic}");
    assert_eq!(live_topic, live_file);
}

const SEED_PIPELINE: &str = r#"
pipeline kafka-seed

runtime {
  readSetting: "earliest"
}

event {
  event_name: string
  userId: string?
  n: int
  ts: timestamp
}

events: kafka-source("seed-in") {
  brokers: "127.0.0.1:9"
  groupId: "kafka-seed"
  keyBy: userId
  eventTime: ts
}

events
  -> clicks: filter(event_name == "click" && userId != null)
  -> cap: capping(3, 1h) by userId
  -> later: delay(2h) by userId
  -> out: kafka-sink("seed-out") {
    key: "{{ userId }}"
  }
"#;

/// A savepoint bootstrapped from the topic follows its partitions: two instances start from
/// it and each partition's first owner writes its part (capping state, pending delays) to the
/// changelog; then a third instance with no savepoint takes every partition over and, from the
/// changelog alone, continues exactly where the history ended: its output is the file run's
/// (bootstrap over the history as a file, then the live events), each record once. The first
/// two stop one after the other (docs/semantics.md, "tansu 0.6 and a group whose members all
/// leave").
#[test]
fn a_bootstrapped_savepoint_reaches_the_changelog_and_an_instance_without_it_continues() {
    let binary = build::build_text("kafka-seed.pulse", SEED_PIPELINE, None);
    let broker = Broker::start();
    broker.create_topic("seed-in", 4);
    broker.create_topic("seed-out", 4);
    let mut input = events(400);
    let live = input.split_off(300);
    let history = input;
    // Late events of every user (views, filtered out) move every partition's watermark past
    // the last delay, so nothing is left pending at the end.
    let ticks: Vec<String> = (0..13)
        .map(|user| {
            let ts = 1_700_000_000_000i64 + 400 * 60_000 + 3 * 3_600_000 + user;
            format!(r#"{{"event_name":"view","userId":"u{user}","n":{},"ts":{ts}}}"#, 1000 + user)
        })
        .collect();
    let live: Vec<String> = live.into_iter().chain(ticks).collect();
    broker.produce("seed-in", &history);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("history.jsonl"), history.join("\n") + "\n").expect("write");
    std::fs::write(dir.path().join("live.jsonl"), live.join("\n") + "\n").expect("write");
    let run = |args: &[&str]| {
        let output = Command::new(&binary)
            .args(args)
            .current_dir(dir.path())
            .env("PULSE_KAFKA_BROKERS", &broker.address)
            .env("PULSE_KAFKA_PROP_SESSION_TIMEOUT_MS", "3000")
            .output()
            .expect("binary runs");
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    run(&["bootstrap", "--from", "kafka:seed-in", "--to", "topic.sp", "-q"]);
    let savepoint =
        pulse_runtime::checkpoint::Snapshot::decode(&std::fs::read(dir.path().join("topic.sp")).expect("read"))
            .expect("a valid savepoint");
    assert!(!savepoint.entries.is_empty() && !savepoint.timers.is_empty(), "state and timers in the savepoint");
    assert_eq!(savepoint.shards.len(), savepoint.entries.len(), "every entry is filed under its partition");
    assert!(
        savepoint.timers.iter().all(|(sequence, _)| pulse_runtime::timers::shard_of(*sequence) != 0),
        "every timer is filed under its partition"
    );
    run(&["bootstrap", "--from", "history.jsonl", "--to", "file.sp", "-q"]);
    run(&["--input", "live.jsonl", "--output", "reference", "--from-savepoint", "file.sp", "-q"]);
    let mut expected: Vec<String> = std::fs::read_to_string(dir.path().join("reference/out.jsonl"))
        .expect("reference output")
        .lines()
        .map(str::to_string)
        .collect();
    expected.sort();
    assert!(expected.len() > 30, "too small a reference to prove anything: {}", expected.len());
    let delayed_history = expected.iter().filter(|line| line.contains(r#""n":2"#)).count();
    assert!(delayed_history > 0, "some history events are still delayed when the live run starts");

    let start = |name: &str, savepoint: Option<&str>| {
        let log = dir.path().join(format!("{name}.log"));
        let mut command = Command::new(&binary);
        command
            .arg("--state-dir")
            .arg(dir.path().join(format!("state-{name}")))
            .args(["--checkpoint-interval", "200ms"])
            .env("PULSE_KAFKA_BROKERS", &broker.address)
            .env("PULSE_KAFKA_PROP_SESSION_TIMEOUT_MS", "3000")
            .env("PULSE_INSTANCE_ID", name)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        if let Some(savepoint) = savepoint {
            command.arg("--from-savepoint").arg(dir.path().join(savepoint));
        }
        (KillOnDrop(command.spawn().expect("binary runs")), log)
    };
    let seeded = |log: &Path| -> BTreeSet<i32> {
        complete_lines(log)
            .lines()
            .filter(|line| line.contains("of the savepoint go to the changelog"))
            .filter_map(|line| partition_list(line, " assigned seed-in ["))
            .flatten()
            .collect()
    };
    let (mut a, a_log) = start("a", Some("topic.sp"));
    let (mut b, b_log) = start("b", Some("topic.sp"));
    wait_for(
        "a and b sharing the partitions, each seeded from the savepoint by its first owner",
        90,
        &mut [(&mut a.0, a_log.as_path()), (&mut b.0, b_log.as_path())],
        || {
            let (held_a, held_b) = (held_partitions_of(&a_log, "seed-in"), held_partitions_of(&b_log, "seed-in"));
            let seeded: BTreeSet<i32> = seeded(&a_log).union(&seeded(&b_log)).copied().collect();
            !held_a.is_empty() && !held_b.is_empty() && seeded.len() == 4
        },
    );
    stop_cleanly(&mut a.0, &a_log);
    wait_for("b holding every partition once a left", 60, &mut [(&mut b.0, b_log.as_path())], || {
        held_partitions_of(&b_log, "seed-in").len() == 4
    });
    stop_cleanly(&mut b.0, &b_log);
    assert!(broker.read_all("seed-out").is_empty(), "nothing is produced before live events arrive");

    broker.produce("seed-in", &live);
    let (mut c, c_log) = start("c", None);
    wait_for("c's output of the live events", 120, &mut [(&mut c.0, c_log.as_path())], || {
        deduplicated(&broker.read_all("seed-out")).len() >= expected.len()
    });
    std::thread::sleep(Duration::from_secs(1));
    stop_cleanly(&mut c.0, &c_log);
    let c_text = complete_lines(&c_log);
    assert!(
        c_text.lines().any(|line| restored_entries(line).is_some_and(|count| count > 0)),
        "c restored the savepoint's state from the changelog:\n{c_text}"
    );
    let records = broker.read_all("seed-out");
    let ids: BTreeSet<&str> = records.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids.len(), records.len(), "no record is produced twice");
    let mut values = deduplicated(&records);
    values.sort();
    assert_same(&values, &expected, "live output after a bootstrapped savepoint, continued by c");
}

const PAUSE_PIPELINE: &str = r#"
pipeline kafka-pause

runtime {
  readSetting: "earliest"
}

event {
  userId: string
  n: int
  ts: timestamp
}

events: kafka-source("pause-in") {
  brokers: "127.0.0.1:9"
  groupId: "kafka-pause"
  eventTime: ts
}

events
  -> seen: redis-sink("SADD") {
    key: "seen:{{ userId }}"
    value: "{{ n }}"
  }
"#;

/// A sink that blocks the pipeline (Redis down) longer than `max.poll.interval.ms` would get a
/// member that stops polling evicted from its group; the source pauses its partitions and keeps
/// polling instead, resumes when Redis is back, and loses nothing.
#[test]
fn a_blocked_sink_pauses_the_partitions_and_the_member_stays_in_the_group() {
    let binary = build::build_text("kafka-pause.pulse", PAUSE_PIPELINE, None);
    let broker = Broker::start();
    broker.create_topic("pause-in", 2);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = redis_server::free_port();
    // Persistent: the sets written before the outage survive the kill.
    let mut redis = redis_server::Server::start(port, dir.path(), true);
    let batch = |from: usize, to: usize| -> Vec<String> {
        (from..to)
            .map(|n| format!(r#"{{"userId":"u{}","n":{n},"ts":{}}}"#, n % 7, 1_700_000_000_000i64 + n as i64 * 1000))
            .collect()
    };
    let total_in_redis = |redis: &redis_server::Server| -> usize {
        let Some(mut connection) = redis.connection() else { return 0 };
        (0..7).map(|user| redis_server::query::<usize>(&mut connection, &["SCARD", &format!("seen:u{user}")])).sum()
    };

    let log = dir.path().join("run.log");
    let child = Command::new(&binary)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--checkpoint-interval", "500ms", "--redis-url", &redis.url()])
        .env("PULSE_KAFKA_BROKERS", &broker.address)
        .env("PULSE_KAFKA_PROP_SESSION_TIMEOUT_MS", "3000")
        .env("PULSE_KAFKA_PROP_MAX_POLL_INTERVAL_MS", "4000")
        .env_remove("PULSE_QUIET")
        .env_remove("PULSE_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("binary runs");
    let mut child = KillOnDrop(child);
    broker.produce("pause-in", &batch(0, 100));
    wait_for("the first events in Redis", 60, &mut [(&mut child.0, log.as_path())], || total_in_redis(&redis) >= 100);

    // Redis goes away for three times `max.poll.interval.ms` while input keeps arriving.
    redis.kill();
    broker.produce("pause-in", &batch(100, 300));
    std::thread::sleep(Duration::from_secs(12));
    let mut redis = redis_server::Server::start(port, dir.path(), true);
    broker.produce("pause-in", &batch(300, 400));
    wait_for("every event in Redis", 90, &mut [(&mut child.0, log.as_path())], || total_in_redis(&redis) >= 400);
    assert_eq!(total_in_redis(&redis), 400, "after the outage: every event once per set member");

    let text = complete_lines(&log);
    assert!(text.contains("kafka: no poll for"), "the source paused its partitions:\n{text}");
    assert!(text.contains("kafka: resumed"), "the source resumed its partitions:\n{text}");
    assert!(!text.to_lowercase().contains("maximum poll interval"), "the member was evicted for not polling:\n{text}");
    let assignments = text.lines().filter(|line| line.contains(" assigned pause-in [")).count();
    assert_eq!(assignments, 1, "no rebalance during the outage:\n{text}");
    redis.kill();
}

/// The e2e pipeline without `keyBy` on the source: its records go through a repartition topic.
/// (A name of its own: binaries are built per pipeline name.)
fn repartition_pipeline() -> String {
    PIPELINE
        .replace("pipeline kafka-e2e\n", "pipeline kafka-e2e-rekeyed\n")
        .replace("  keyBy: userId\n", "  maxOutOfOrderness: 30d\n")
}

/// The records of a repartition topic per partition, in order, without the copies an aborted
/// transaction left (the pipeline's own duplicate filter: an origin offset not above the last
/// one seen from that origin partition in that partition); (origin, key, value).
fn repartitioned(broker: &Broker, topic: &str) -> BTreeMap<i32, Vec<(String, String, String)>> {
    let mut by_partition: BTreeMap<i32, Vec<(String, String, String)>> = BTreeMap::new();
    let mut last: BTreeMap<(i32, String), i64> = BTreeMap::new();
    for record in broker.read_records(topic) {
        let origin = record.headers.get("pulse-origin").cloned().expect("a repartitioned record names its origin");
        let (source, offset) = origin.rsplit_once('/').expect("topic/partition/offset");
        let offset: i64 = offset.parse().expect("an offset");
        let seen = last.entry((record.partition, source.to_string())).or_insert(-1);
        if offset <= *seen {
            continue;
        }
        *seen = offset;
        by_partition.entry(record.partition).or_default().push((origin, record.key, record.value));
    }
    by_partition
}

/// The re-keyed pipeline's binary, a broker with `e2e-in` and `e2e-out` (4 partitions each),
/// and a directory for the instances.
fn rekeyed_setup() -> (PathBuf, Broker, tempfile::TempDir) {
    let binary = build::build_text("kafka-repartition.pulse", &repartition_pipeline(), None);
    let broker = Broker::start();
    broker.create_topic("e2e-in", 4);
    broker.create_topic("e2e-out", 4);
    let mut dir = tempfile::tempdir().expect("temp dir");
    // PULSE_TEST_KEEP_DIR=1 keeps the instances' logs and state for a look after a failure.
    if std::env::var_os("PULSE_TEST_KEEP_DIR").is_some() {
        eprintln!("keeping {}", dir.path().display());
        dir.disable_cleanup(true);
    }
    (binary, broker, dir)
}

/// Instance `name` of a pipeline in `dir` (state in `state-NAME`, log to `log`), checkpointing
/// every 200 ms; a repartition topic is kept whole (no purge) so a test can read it.
fn start_instance(binary: &Path, broker: &Broker, dir: &Path, name: &str, log: &Path, extra: &[&str]) -> KillOnDrop {
    let child = Command::new(binary)
        .arg("--state-dir")
        .arg(dir.join(format!("state-{name}")))
        .args(["--checkpoint-interval", "200ms"])
        .args(extra)
        .current_dir(dir)
        .env("PULSE_KAFKA_BROKERS", &broker.address)
        .env("PULSE_KAFKA_PROP_SESSION_TIMEOUT_MS", "3000")
        .env("PULSE_KAFKA_REPARTITION_PURGE_EVERY", "1h")
        .env("PULSE_INSTANCE_ID", name)
        .env_remove("PULSE_QUIET")
        .env_remove("PULSE_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("binary runs");
    KillOnDrop(child)
}

/// A topic keyed by something else than the state's key: the records are re-keyed through
/// `<group>-repartition`, two instances share its partitions (state following them), and the
/// committed output deduplicated by `pulse-id` is what the file run gives for the records in the
/// order the pipeline read them (each user's records on one partition, in that partition's
/// order; across partitions no order is promised, as in Kafka Streams).
#[test]
fn a_topic_keyed_otherwise_goes_through_a_repartition_topic_shared_by_two_instances() {
    repartition_scenario(false);
}

/// The same with b SIGKILLed halfway: a takes over its source partitions and its repartition
/// partitions. Dying mid-checkpoint can leave a changelog batch and its marker on the broker in
/// an aborted transaction (tansu shows such records to `read_committed`); the restore skips it
/// because the group's committed changelog offset does not reach it.
#[test]
#[ignore = "now and then a partition's first batch is missing from e2e-out (docs/semantics.md, tansu 0.6 and the first batch of a partition); cargo test -p pulse-tests --test kafka survives_the_sigkill -- --ignored"]
fn a_repartitioned_source_survives_the_sigkill_of_one_instance() {
    repartition_scenario(true);
}

fn repartition_scenario(kill_b: bool) {
    let (binary, broker, dir) = rekeyed_setup();
    // The repartition topic is read whole below: no purge. a serves its metrics.
    let metrics = format!("127.0.0.1:{}", redis_server::free_port());
    let start = |name: &str, log: &Path| {
        let extra: &[&str] = if name == "a" { &["--metrics-addr", &metrics] } else { &[] };
        start_instance(&binary, &broker, dir.path(), name, log, extra)
    };
    let (a_log, b_log) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let mut a = start("a", &a_log);
    let mut b = start("b", &b_log);
    let topic = "kafka-e2e-repartition";
    wait_for(
        "the group sharing the repartition topic between a and b",
        90,
        &mut [(&mut a.0, a_log.as_path()), (&mut b.0, b_log.as_path())],
        || {
            let (held_a, held_b) = (held_partitions_of(&a_log, topic), held_partitions_of(&b_log, topic));
            !held_a.is_empty() && !held_b.is_empty() && held_a.len() + held_b.len() == 4
        },
    );
    // Every user's records spread over all four source partitions.
    let input = events(600);
    let (first, second) = input.split_at(300);
    broker.produce_keyed("e2e-in", first, |index, _| format!("k{}", index % 4));
    let mut copies = BTreeMap::new();
    wait_for(
        "the first half copied to the repartition topic",
        90,
        &mut [(&mut a.0, a_log.as_path()), (&mut b.0, b_log.as_path())],
        || {
            copies = repartitioned(&broker, topic);
            copies.values().map(Vec::len).sum::<usize>() >= first.len()
        },
    );
    if kill_b {
        // SIGKILL b while it works: a takes over its source partitions (copying from the last
        // committed offsets, so copies repeat) and its repartition partitions (state, duplicate
        // filter and position from the changelog).
        b.0.kill().expect("SIGKILL");
        b.0.wait().expect("reaped");
    }
    broker.produce_keyed("e2e-in", second, |index, _| format!("k{}", (index + first.len()) % 4));
    let mut alive = if kill_b {
        vec![(&mut a.0, a_log.as_path())]
    } else {
        vec![(&mut a.0, a_log.as_path()), (&mut b.0, b_log.as_path())]
    };
    wait_for("every record copied to the repartition topic", 120, &mut alive, || {
        copies = repartitioned(&broker, topic);
        copies.values().map(Vec::len).sum::<usize>() >= input.len()
    });
    if kill_b {
        wait_for("a holding every repartition partition", 60, &mut alive, || {
            held_partitions_of(&a_log, topic).len() == 4
        });
    }
    let mut origins: Vec<&String> = copies.values().flatten().map(|(origin, _, _)| origin).collect();
    origins.sort();
    origins.dedup();
    assert_eq!(origins.len(), input.len(), "every source record is copied once (after the duplicate filter)");
    let mut partition_of_user: BTreeMap<String, i32> = BTreeMap::new();
    for (partition, records) in &copies {
        for (origin, key, value) in records {
            let user: serde_json::Value = serde_json::from_str(value).expect("JSON");
            let user = user["userId"].as_str().expect("userId").to_string();
            assert_eq!(key, &format!("\"{user}\""), "{origin} is keyed by its userId's key text");
            let first = *partition_of_user.entry(user.clone()).or_insert(*partition);
            assert_eq!(first, *partition, "user {user} is on partitions {first} and {partition}");
        }
    }
    assert!(partition_of_user.len() == 13, "every user reached the repartition topic: {partition_of_user:?}");

    let in_order: Vec<String> = copies.values().flatten().map(|(_, _, value)| value.clone()).collect();
    let expected = reference_of(&binary, &in_order, dir.path());
    let deadline = Instant::now() + Duration::from_secs(90);
    while deduplicated(&broker.read_all("e2e-out")).len() < expected.len() {
        if Instant::now() > deadline {
            let ends = broker.ends_report("e2e-out");
            panic!("{}{ends}\n{}", missing_output_report(&broker, &expected, &copies), log_tails(&alive));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut output = deduplicated(&broker.read_all("e2e-out"));
    output.sort();
    assert_same(&output, &expected, "output through the repartition topic");
    // a's lag metric covers both hops: the source partitions it copies, all copied by now, and
    // the repartition partitions it processes.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = http_get(&metrics, "/metrics");
        let lag: Vec<&str> = body.lines().filter(|line| line.starts_with("pulse_kafka_consumer_lag{")).collect();
        let source: Vec<&&str> = lag.iter().filter(|line| line.contains("topic=\"e2e-in\"")).collect();
        let hop = lag.iter().any(|line| line.contains(&format!("topic=\"{topic}\"")));
        if !source.is_empty() && hop {
            let value = |line: &str| line.rsplit_once(' ').and_then(|(_, value)| value.parse::<f64>().ok());
            assert!(source.iter().all(|line| value(line) == Some(0.0)), "every source record is copied:\n{body}");
            break;
        }
        assert!(Instant::now() < deadline, "no lag of both hops in a's metrics:\n{body}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // What the takeover restored (shown with --nocapture).
    for line in complete_lines(&a_log).lines().filter(|line| line.contains(" restored ")) {
        println!("a: {line}");
    }
    for log in [&a_log, &b_log] {
        let text = complete_lines(log);
        assert!(
            text.contains("is re-keyed by `userId` through `kafka-e2e-repartition`"),
            "the instance says it repartitions:\n{text}"
        );
    }
}

/// The broker, not Pulse: tansu 0.6 answers an `EndTxn` with success but finishes the
/// transaction only once every transaction that wrote before its end on a shared partition has
/// ended too, and a transaction ending later finishes those that ended before it only if it
/// shares a partition with them. Here T1 and T3 interleave on partition 0 and T3 and T0 on
/// partition 1; ended T1, T3, T0, every commit succeeds, yet T1 stays unfinished: partition 0's
/// last stable offset stays at 0 and `read_committed` never sees its records. Ended T0, T1, T3,
/// all of them are visible. With several producers per output partition (one per task and
/// generation, and one set per instance), Pulse's transactions end in such orders now and then:
/// this is why the tests read output `read_uncommitted` (tansu shows aborted records to
/// `read_committed` as well, so only these hidden ones differ) and deduplicate by `pulse-id`.
/// If this test fails, tansu changed and the tests could read `read_committed` again.
#[test]
fn tansu_hides_a_transaction_that_ended_before_an_overlapping_one() {
    let broker = Broker::start();
    let run = |topic: &str, end_order: [usize; 3]| -> (Vec<String>, Vec<String>, i64) {
        broker.create_topic(topic, 2);
        let producers: Vec<BaseProducer> = ["T0", "T1", "T3"]
            .iter()
            .map(|id| {
                let producer: BaseProducer = broker
                    .config()
                    .set("transactional.id", format!("{topic}-{id}"))
                    .create()
                    .expect("transactional producer");
                producer.init_transactions(Duration::from_secs(30)).expect("init");
                producer.begin_transaction().expect("begin");
                producer
            })
            .collect();
        let (t0, t1, t3) = (0, 1, 2);
        for (producer, partition, value) in
            [(t1, 0, "T1-a"), (t3, 0, "T3-a"), (t1, 0, "T1-b"), (t3, 1, "T3-b"), (t0, 1, "T0-a"), (t3, 1, "T3-c")]
        {
            producers[producer]
                .send(BaseRecord::<(), str>::to(topic).partition(partition).payload(value))
                .expect("queued");
            producers[producer].flush(Duration::from_secs(30)).expect("flush");
        }
        for index in end_order {
            producers[index].commit_transaction(Duration::from_secs(30)).expect("the broker accepts the commit");
        }
        let values = |isolation: &str| -> Vec<String> {
            let mut values: Vec<String> =
                broker.read_records_as(topic, isolation).into_iter().map(|record| record.value).collect();
            values.sort();
            values
        };
        let stable: BaseConsumer = broker
            .config()
            .set("group.id", "stable-end")
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        let (_, end) = stable.fetch_watermarks(topic, 0, Duration::from_secs(10)).expect("end");
        (values("read_committed"), values("read_uncommitted"), end)
    };
    let all = ["T0-a", "T1-a", "T1-b", "T3-a", "T3-b", "T3-c"];
    // T1, T3, T0: partition 0 stays behind T1, which never finishes.
    let (committed, uncommitted, stable_end) = run("overlap-a", [1, 2, 0]);
    assert_eq!(uncommitted, all);
    assert_eq!(committed, ["T0-a", "T3-b", "T3-c"], "partition 0 is hidden");
    assert_eq!(stable_end, 0, "partition 0's last stable offset stays at T1's first record");
    // T0, T1, T3: T3 ends last and finishes the other two.
    let (committed, uncommitted, _) = run("overlap-b", [0, 1, 2]);
    assert_eq!(uncommitted, all);
    assert_eq!(committed, all);
}

/// What a group savepoint of a re-keyed source reads from the repartition topic: per source
/// partition, the first origin offset among the copies at or after each repartition
/// partition's position, including copies of an open transaction.
#[test]
fn pending_copies_are_found_from_the_markers_positions() {
    use pulse_runtime::kafka::{repartition, KafkaEnv};
    let broker = Broker::start();
    broker.create_topic("pending-rp", 2);
    let send = |producer: &BaseProducer, partition: i32, origin: &str| {
        let headers = rdkafka::message::OwnedHeaders::new()
            .insert(rdkafka::message::Header { key: "pulse-origin", value: Some(origin) });
        producer
            .send(BaseRecord::to("pending-rp").partition(partition).key("k").payload("{}").headers(headers))
            .expect("queued");
    };
    // Partition 0: origins in/0 at 10, 11, 12 then in/1 at 5; partition 1: in/0 at 8, in/1 at 9.
    let producer: BaseProducer = broker.config().create().expect("producer");
    for origin in ["in/0/10", "in/0/11", "in/0/12", "in/1/5"] {
        send(&producer, 0, origin);
    }
    for origin in ["in/0/8", "in/1/9"] {
        send(&producer, 1, origin);
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    // An open transaction's copy counts as waiting too.
    let open: BaseProducer =
        broker.config().set("transactional.id", "pending-open").create().expect("transactional producer");
    open.init_transactions(Duration::from_secs(30)).expect("init");
    open.begin_transaction().expect("begin");
    send(&open, 1, "in/2/3");
    open.flush(Duration::from_secs(30)).expect("flush");

    let env = KafkaEnv::default();
    let read = |starts: &[(i32, i64)]| {
        repartition::pending_origins(&env, Some(&broker.address), "pending-rp", starts).expect("read")
    };
    let key = |partition: i32| ("in".to_string(), partition);
    // Both partitions from their start.
    assert_eq!(read(&[(0, 0), (1, 0)]), BTreeMap::from([(key(0), 8), (key(1), 5), (key(2), 3)]));
    // Partition 0 processed up to in/0/11, partition 1 up to everything but the open copy.
    assert_eq!(read(&[(0, 2), (1, 2)]), BTreeMap::from([(key(0), 12), (key(1), 5), (key(2), 3)]));
    // Nothing waits at the ends.
    assert_eq!(read(&[(0, 4), (1, 3)]), BTreeMap::new());
    open.abort_transaction(Duration::from_secs(30)).expect("abort");
}

/// The upgrade of a re-keyed pipeline run by two instances: they stop with SIGTERM, one group
/// savepoint holds every repartition partition's state with positions on the source topic,
/// `pulsec diff` passes version 2 (a new group, a changed filter, a new node) against it, and
/// two instances of version 2 start from it: the new group's stage copies from the savepoint's
/// positions, and the output across the upgrade is version 1's file run over the first part
/// followed by version 2's over the rest, each record once by id.
#[test]
#[ignore = "now and then a partition's first batch is missing from e2e-out (docs/semantics.md, tansu 0.6 and the first batch of a partition); cargo test -p pulse-tests --test kafka upgrades_a_repartitioned -- --ignored"]
fn a_group_savepoint_upgrades_a_repartitioned_pipeline() {
    let (binary, broker, dir) = rekeyed_setup();
    let path = |name: &str| dir.path().join(name);
    let v2_text = version_2(&repartition_pipeline());
    let v2 = build::build_text("kafka-repartition-v2.pulse", &v2_text, None);
    std::fs::write(path("v2.pulse"), &v2_text).expect("write v2");
    let input = events(600);
    let (first, rest) = input.split_at(300);
    // One source partition: the instances read every user's events in input order, as the
    // file runs of the reference do.
    let one_partition = |_: usize, _: &str| "k0".to_string();

    let (first_expected, expected) = upgrade_reference(&binary, &v2, first, rest, dir.path());

    let start = |binary: &Path, name: &str, extra: &[&str]| -> (KillOnDrop, PathBuf) {
        let log = path(&format!("{name}.log"));
        (start_instance(binary, &broker, dir.path(), name, &log, extra), log)
    };
    broker.produce_keyed("e2e-in", first, one_partition);
    let mut v1: Vec<(KillOnDrop, PathBuf)> = ["a", "b"].iter().map(|name| start(&binary, name, &[])).collect();
    wait_for_upgrade_output(&broker, &first_expected, &mut v1);
    // Version 2 runs in a new group: the departed leader tansu keeps in the old one (docs/
    // semantics.md, "tansu 0.6 and a group whose members all leave") does not matter.
    for (child, log) in &mut v1 {
        stop_cleanly(&mut child.0, log);
    }

    let savepoint = group_savepoint(&binary, &broker, dir.path(), "group.sp", &path("v2.pulse"));
    assert!(
        savepoint.entries.iter().any(|(node, ..)| node == pulse_runtime::keys::SEEN_NODE),
        "the duplicate filter travels with the state"
    );
    let positions: Vec<(&str, i32, i64)> = savepoint
        .progress
        .kafka
        .iter()
        .map(|(_, topic, partition, next)| (topic.as_str(), *partition, *next))
        .collect();
    // Every record went to the partition of key `k0`; the stage never read the others.
    let [(topic, source_partition, next)] = positions[..] else { panic!("one source position: {positions:?}") };
    assert_eq!((topic, next), ("e2e-in", first.len() as i64), "positions on the source topic, not the hop");
    broker.produce_keyed("e2e-in", rest, one_partition);
    let mut v2s: Vec<(KillOnDrop, PathBuf)> =
        ["a2", "b2"].iter().map(|name| start(&v2, name, &["--from-savepoint", "group.sp"])).collect();
    wait_for_upgrade_output(&broker, &expected, &mut v2s);
    std::thread::sleep(Duration::from_secs(2));
    let mut output = deduplicated(&broker.read_all("e2e-out"));
    output.sort();
    assert_same(&output, &expected, &format!("across the upgrade\n{}", instance_logs(&v2s)));
    let logs = instance_logs(&v2s);
    let seeded = format!("repartition: copying `e2e-in` [{source_partition}] from 300, the savepoint's position");
    assert!(logs.contains(&seeded), "{logs}");
}

/// The file run's output over `before` then `events`, less its output over `before` alone: what
/// a run started from a savepoint of `before` emits for `events`.
fn reference_after(binary: &Path, before: &[String], events: &[String], dir: &Path) -> Vec<String> {
    let (all_dir, base_dir) = (dir.join("reference-all"), dir.join("reference-base"));
    for sub in [&all_dir, &base_dir] {
        std::fs::create_dir_all(sub).expect("reference directory");
    }
    let mut all = reference_of(binary, &[before, events].concat(), &all_dir);
    for line in reference_of(binary, before, &base_dir) {
        let at = all.iter().position(|kept| *kept == line).expect("the history's output is part of the whole run's");
        all.remove(at);
    }
    all
}

/// A repartitioned pipeline started by two instances from a savepoint that `bootstrap` wrote
/// over the source topic: the repartition stage starts copying at the savepoint's positions, so
/// the history is neither copied nor counted again. The output is the file run's over history
/// and live events less the history's own, each record once.
#[test]
#[ignore = "now and then a partition's first batch is missing from e2e-out (docs/semantics.md, tansu 0.6 and the first batch of a partition); cargo test -p pulse-tests --test kafka starts_after_its_bootstrap -- --ignored"]
fn a_repartitioned_pipeline_starts_after_its_bootstrap() {
    repartition_bootstrap_scenario(false);
}

/// The same, then both instances stop one after the other (docs/semantics.md, "tansu 0.6 and a
/// group whose members all leave") and start again in the same group with the same arguments
/// (the savepoint is ignored: their checkpoints descend from it) and go on.
#[test]
#[ignore = "now and then a partition's first batch is missing from e2e-out (docs/semantics.md, tansu 0.6 and the first batch of a partition); cargo test -p pulse-tests --test kafka restarts_as_a_group -- --ignored"]
fn a_repartitioned_pipeline_restarts_as_a_group() {
    repartition_bootstrap_scenario(true);
}

fn repartition_bootstrap_scenario(restart: bool) {
    let (binary, broker, dir) = rekeyed_setup();
    let input = events(900);
    let (history, rest) = input.split_at(300);
    let (live, later) = rest.split_at(300);
    // One source partition, so the bootstrap and the stage both read every user's events in
    // time order, as the file run does.
    let one_partition = |_: usize, _: &str| "k0".to_string();
    broker.produce_keyed("e2e-in", history, one_partition);
    let output = Command::new(&binary)
        .args(["bootstrap", "--from", "kafka:e2e-in", "--to", "boot.sp", "-q"])
        .current_dir(dir.path())
        .env("PULSE_KAFKA_BROKERS", &broker.address)
        .env("PULSE_KAFKA_PROP_SESSION_TIMEOUT_MS", "3000")
        .output()
        .expect("bootstrap runs");
    assert!(output.status.success(), "bootstrap: {}", String::from_utf8_lossy(&output.stderr));
    broker.produce_keyed("e2e-in", live, one_partition);

    let start = |name: &str, log: &Path| {
        start_instance(&binary, &broker, dir.path(), name, log, &["--from-savepoint", "boot.sp"])
    };
    let wait_for_output = |expected: &[String], instances: &mut [(&mut Child, &Path)]| {
        wait_for_explained(
            "the expected output",
            120,
            instances,
            || deduplicated(&broker.read_all("e2e-out")).len() >= expected.len(),
            || missing_output_report(&broker, expected, &BTreeMap::new()) + &broker.ends_report("e2e-out"),
        );
        std::thread::sleep(Duration::from_secs(2));
        let mut output = deduplicated(&broker.read_all("e2e-out"));
        output.sort();
        output
    };

    let (a_log, b_log) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let (mut a, mut b) = (start("a", &a_log), start("b", &b_log));
    let expected = reference_after(&binary, history, live, &dir.path().join("first"));
    let output = wait_for_output(&expected, &mut [(&mut a.0, a_log.as_path()), (&mut b.0, b_log.as_path())]);
    if output != expected {
        eprintln!("{}{}", output_offsets_report(&broker, &expected), broker.ends_report("e2e-out"));
    }
    assert_same(&output, &expected, "output after the bootstrap");
    let topic = "kafka-e2e-repartition";
    let copies = repartitioned(&broker, topic);
    let origins: Vec<&String> = copies.values().flatten().map(|(origin, _, _)| origin).collect();
    assert_eq!(origins.len(), live.len(), "only the live records are copied: {origins:?}");
    // The one partition holds the history at offsets 0 to 299.
    let offset = |origin: &str| origin.rsplit_once('/').and_then(|(_, offset)| offset.parse::<i64>().ok());
    assert!(origins.iter().all(|origin| offset(origin).is_some_and(|offset| offset >= 300)), "{origins:?}");
    let seeded =
        [&a_log, &b_log].iter().any(|log| complete_lines(log).contains("] from 300, the savepoint's position"));
    assert!(
        seeded,
        "an instance says where it starts copying:\n{}",
        log_tails(&[(&mut a.0, a_log.as_path()), (&mut b.0, b_log.as_path())])
    );

    if !restart {
        return;
    }
    // Both stop, the next events arrive, both start again with the same arguments.
    stop_cleanly(&mut a.0, &a_log);
    wait_for("b holding every partition of both groups once a left", 60, &mut [(&mut b.0, b_log.as_path())], || {
        held_partitions_of(&b_log, "e2e-in").len() == 4 && held_partitions_of(&b_log, topic).len() == 4
    });
    stop_cleanly(&mut b.0, &b_log);
    broker.produce_keyed("e2e-in", later, one_partition);
    let (a2_log, b2_log) = (dir.path().join("a2.log"), dir.path().join("b2.log"));
    let (mut a2, mut b2) = (start("a", &a2_log), start("b", &b2_log));
    let expected = reference_after(&binary, history, rest, &dir.path().join("second"));
    let output = wait_for_output(&expected, &mut [(&mut a2.0, a2_log.as_path()), (&mut b2.0, b2_log.as_path())]);
    assert_same(&output, &expected, "output after both instances restarted");
    for log in [&a2_log, &b2_log] {
        let text = complete_lines(log);
        assert!(text.contains("continuing from the checkpoint"), "the restart ignores the savepoint:\n{text}");
    }
}

/// Where `e2e-out`'s records are, per partition: the offsets read uncommitted, the gaps
/// between them, the broker's end offsets, and the offsets of expected records' neighbours.
fn output_offsets_report(broker: &Broker, expected: &[String]) -> String {
    let records = broker.read_records_as("e2e-out", "read_uncommitted");
    let mut report = String::new();
    let mut by_partition: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for record in records {
        by_partition.entry(record.partition).or_default().push((record.offset, record.value));
    }
    for (partition, records) in &by_partition {
        let gaps: Vec<(i64, i64)> =
            records.windows(2).filter(|pair| pair[1].0 > pair[0].0 + 2).map(|pair| (pair[0].0, pair[1].0)).collect();
        let missing = expected.iter().filter(|value| !records.iter().any(|(_, seen)| seen == *value)).count();
        report += &format!(
            "e2e-out [{partition}]: {} records, offsets {:?}..{:?}, gaps over 2: {gaps:?}, expected values not here: {missing}\n",
            records.len(),
            records.first().map(|(offset, _)| offset),
            records.last().map(|(offset, _)| offset),
        );
    }
    report
}

/// Why outputs are missing: committed and uncommitted counts of `e2e-out`, and per missing
/// output whether an uncommitted record carries it and which copy it comes from.
fn missing_output_report(
    broker: &Broker,
    expected: &[String],
    copies: &BTreeMap<i32, Vec<(String, String, String)>>,
) -> String {
    let values = |isolation: &str| -> BTreeMap<String, (i32, i64, String)> {
        broker
            .read_records_as("e2e-out", isolation)
            .into_iter()
            .map(|record| {
                let id = record.headers.get("pulse-id").cloned().unwrap_or_default();
                (record.value, (record.partition, record.offset, id))
            })
            .collect()
    };
    let (committed, uncommitted) = (values("read_committed"), values("read_uncommitted"));
    let mut report = format!(
        "e2e-out: {} distinct committed, {} distinct uncommitted, {} expected\n",
        committed.len(),
        uncommitted.len(),
        expected.len()
    );
    for value in expected.iter().filter(|value| !committed.contains_key(*value)).take(12) {
        let n = serde_json::from_str::<serde_json::Value>(value).ok().and_then(|event| event["n"].as_i64());
        let copy = copies.iter().find_map(|(partition, records)| {
            records.iter().find_map(|(origin, _, copied)| {
                let copied_n = serde_json::from_str::<serde_json::Value>(copied).ok()?["n"].as_i64();
                (copied_n == n).then(|| format!("repartition partition {partition}, origin {origin}"))
            })
        });
        report += &format!("missing {value}: uncommitted at {:?}; {copy:?}\n", uncommitted.get(value));
    }
    report
}

/// SIGTERMs an instance and asserts it exits successfully within 60 s.
fn stop_cleanly(child: &mut Child, log: &Path) {
    let terminated = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(terminated.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 60 s of SIGTERM:\n{}", complete_lines(log));
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "SIGTERM ends the instance cleanly ({status}):\n{}", complete_lines(log));
}

/// Faults a real broker cannot be asked for, injected through librdkafka's mock cluster (which
/// listens on loopback like any broker): a coordinator busy for several `EndTxn` requests is
/// retried and the run completes with the file run's output; a `PRODUCER_FENCED` answer to a
/// commit (another instance took the transactional id over) ends the run with an error naming
/// it, exit code 1, and a restart completes the input, deduplicated by `pulse-id`, exactly.
#[test]
fn injected_transaction_errors_are_retried_or_end_the_run_and_a_restart_completes_it() {
    let cluster = MockCluster::new(1).expect("a mock cluster");
    // The mock broker has no CreateTopics: every topic exists beforehand.
    for topic in ["e2e-in", "e2e-out", "kafka-e2e-changelog"] {
        cluster.create_topic(topic, 4, 1).expect("topic");
    }
    let one_at_a_time = ONE_BROKER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let broker = Broker { child: None, address: cluster.bootstrap_servers(), _one_at_a_time: one_at_a_time };
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let input = events(400);
    let (first, second) = input.split_at(200);
    broker.produce("e2e-in", first);
    let busy = RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    cluster.request_errors(RDKafkaApiKey::EndTxn, &[busy, busy, busy]);
    let run = |what: &str| {
        let output = run_command(&broker, &state, &["--until-end", "--checkpoint-every", "50"])
            .env_remove("PULSE_QUIET")
            .output()
            .expect("binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        eprintln!("{what}:\n{stderr}");
        (output.status.code(), stderr)
    };
    let (code, stderr) = run("retried");
    assert_eq!(code, Some(0), "busy coordinators are retried: {stderr}");
    let first_dir = dir.path().join("first");
    std::fs::create_dir_all(&first_dir).expect("dir");
    let mut output = deduplicated(&broker.read_all("e2e-out"));
    output.sort();
    assert_same(&output, &reference(first, &first_dir), "output after retried commits");

    broker.produce("e2e-in", second);
    cluster.request_errors(RDKafkaApiKey::EndTxn, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED]);
    let (code, stderr) = run("fenced");
    assert_eq!(code, Some(1), "a fenced producer ends the run: {stderr}");
    assert!(stderr.to_lowercase().contains("fenced"), "the error names the fencing: {stderr}");
    let (code, stderr) = run("restarted");
    assert_eq!(code, Some(0), "the restart completes: {stderr}");
    let mut output = deduplicated(&broker.read_all("e2e-out"));
    output.sort();
    assert_same(&output, &reference(&input, dir.path()), "output after a fenced commit and a restart");
}
