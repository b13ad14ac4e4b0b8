//! redis-sink against a real `redis-server` (Debian's `redis-server` package), started by each
//! test on a free loopback port: the keys, fields, values, types and TTLs a pipeline writes, and
//! a run that survives Redis going down and coming back.

mod build;
mod redis_server;
mod scrape;

use redis_server::{free_port, query, Server};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const PIPELINE: &str = r#"
pipeline redis-sink-test

event {
  event_name: string
  userId: string?
  score: float?
  ts: timestamp
}

source: file-source("in.jsonl") { eventTime: ts }

source -> profile: redis-sink("HSET") { key: "user:{{ userId }}", field: "last_event", value: "{{ event_name }}", ttl: 1h }
source -> whole: redis-sink("HSET") { key: "event:{{ userId }}:{{ ts }}" }
source -> last: redis-sink("SET") { key: "${PULSE_TEST_PREFIX}last:{{ userId }}", value: "{{ event_name }}" }
source -> seen: redis-sink("SADD") { key: "seen", value: "{{ userId }}" }
source -> board: redis-sink("ZADD") { key: "board", value: "{{ userId }}", score: "{{ score }}" }
source -> recent: redis-sink("RPUSH") { key: "recent:{{ userId }}", value: "{{ event_name }}", trim: 2 }
"#;

/// The pipeline's binary, built once for every test of this file.
fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build::build_text("redis_sink.pulse", PIPELINE, None))
}

/// Runs the binary on `INPUT` against the Redis at `url`: its output, and how long it took
/// (the build of the binary excluded).
fn run_on_input(url: &str) -> (std::process::Output, Duration) {
    let binary = binary();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(["--input", "-", "--quiet", "--redis-url", url])
        .env("PULSE_TEST_PREFIX", "")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    child.stdin.take().expect("stdin").write_all(INPUT.as_bytes()).expect("write");
    let output = child.wait_with_output().expect("binary ends");
    (output, started.elapsed())
}

const INPUT: &str = r#"{"event_name":"login","userId":"u1","score":1.5,"ts":1000}
{"event_name":"view","userId":"u1","score":2,"ts":2000}
{"event_name":"buy","userId":"u1","score":3,"ts":3000}
{"event_name":"login","userId":"u2","score":7,"ts":4000}
{"event_name":"login","userId":null,"score":7,"ts":5000}
{"event_name":"odd","userId":"u3","score":null,"ts":6000}
"#;

#[test]
fn writes_keys_fields_values_types_and_ttls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(free_port(), dir.path(), false);
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, INPUT).expect("write input");
    let dead = dir.path().join("dead.jsonl");
    let output = Command::new(binary())
        .arg("--input")
        .arg(&input)
        .arg("--dead-letter")
        .arg(&dead)
        .args(["--redis-url", &server.url()])
        .env("PULSE_TEST_PREFIX", "t:")
        .output()
        .expect("binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let mut redis = server.connection().expect("connected");
    let hash: Vec<(String, String)> = query(&mut redis, &["HGETALL", "user:u1"]);
    assert_eq!(hash, vec![("last_event".to_string(), "buy".to_string())]);
    let ttl: i64 = query(&mut redis, &["TTL", "user:u1"]);
    assert!((3590..=3600).contains(&ttl), "ttl {ttl}");
    assert_eq!(query::<i64>(&mut redis, &["TTL", "t:last:u1"]), -1, "no ttl without `ttl`");
    // HSET without `field`: every top-level field, strings without quotes.
    let mut whole: Vec<(String, String)> = query(&mut redis, &["HGETALL", "event:u1:2000"]);
    whole.sort();
    let expected: Vec<(String, String)> = [("event_name", "view"), ("score", "2"), ("ts", "2000"), ("userId", "u1")]
        .iter()
        .map(|(field, value)| (field.to_string(), value.to_string()))
        .collect();
    assert_eq!(whole, expected);
    assert_eq!(query::<String>(&mut redis, &["GET", "t:last:u1"]), "buy");
    assert_eq!(query::<String>(&mut redis, &["TYPE", "t:last:u2"]), "string");
    let mut members: Vec<String> = query(&mut redis, &["SMEMBERS", "seen"]);
    members.sort();
    assert_eq!(members, vec!["u1", "u2", "u3"]);
    let board: Vec<(String, f64)> = query(&mut redis, &["ZRANGE", "board", "0", "-1", "WITHSCORES"]);
    assert_eq!(board, vec![("u1".to_string(), 3.0), ("u2".to_string(), 7.0)]);
    let recent: Vec<String> = query(&mut redis, &["LRANGE", "recent:u1", "0", "-1"]);
    assert_eq!(recent, vec!["view", "buy"], "RPUSH with trim 2 keeps the newest two");
    assert_eq!(query::<String>(&mut redis, &["TYPE", "recent:u2"]), "list");
    let keys: Vec<String> = query(&mut redis, &["KEYS", "*null*"]);
    assert!(keys.is_empty(), "a null field never renders into a key: {keys:?}");

    let dead = std::fs::read_to_string(&dead).expect("dead letters");
    let reasons: Vec<serde_json::Value> =
        dead.lines().map(|line| serde_json::from_str(line).expect("dead letter is JSON")).collect();
    let reason_of = |index: usize| reasons[index]["reason"].as_str().unwrap_or("").to_string();
    assert_eq!(reasons.len(), 7, "{dead}");
    assert_eq!(reason_of(0), "template: field `userId` is null at node `profile`");
    assert_eq!(reason_of(6), "template: field `score` is null at node `board`");
}

#[test]
fn missing_environment_variable_is_a_start_up_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, INPUT).expect("write input");
    let output = Command::new(binary())
        .arg("--input")
        .arg(&input)
        .args(["--redis-url", "redis://127.0.0.1:1"])
        .env_remove("PULSE_TEST_PREFIX")
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`PULSE_TEST_PREFIX` is not set"), "{stderr}");
    // Under --output the variable is not needed (G47): a preview shows it as `***`.
    let out = dir.path().join("out");
    let status = Command::new(binary())
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .arg("--quiet")
        .env_remove("PULSE_TEST_PREFIX")
        .status()
        .expect("binary runs");
    assert!(status.success());
    // Templates render as live: the event without a userId is a dead letter, not in the file.
    let written = std::fs::read_to_string(out.join("profile.jsonl")).expect("sink file");
    assert_eq!(written.lines().count(), 5, "every event that renders reaches the file");
    let previews = std::fs::read_to_string(out.join("last.rendered.jsonl")).expect("preview file");
    assert!(previews.lines().next().is_some_and(|line| line.contains("\"***last:u1\"")), "{previews}");
}

#[test]
fn keeps_retrying_while_redis_is_down_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut server = Server::start(port, dir.path(), true);
    let mut child = Command::new(binary())
        .args(["--input", "-", "--quiet", "--redis-url", &server.url()])
        .env("PULSE_TEST_PREFIX", "")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let line = |index: usize| {
        format!("{{\"event_name\":\"e{index}\",\"userId\":\"u{index}\",\"score\":{index},\"ts\":{index}}}\n")
    };
    for index in 0..200 {
        stdin.write_all(line(index).as_bytes()).expect("write");
    }
    stdin.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(400));
    server.kill();
    let started = Instant::now();
    for index in 200..400 {
        stdin.write_all(line(index).as_bytes()).expect("write");
        stdin.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Redis is back after about a second, on the same port with its append-only file.
    std::thread::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
    let server = Server::start(port, dir.path(), true);
    drop(stdin);
    let output = child.wait_with_output().expect("binary ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("Redis unavailable"), "the outage is reported: {stderr}");
    let mut redis = server.connection().expect("connected");
    for index in 0..400 {
        let key = format!("user:u{index}");
        let value: Option<String> = query(&mut redis, &["HGET", &key, "last_event"]);
        assert_eq!(value.as_deref(), Some(format!("e{index}").as_str()), "{key}");
        let last: Option<String> = query(&mut redis, &["GET", &format!("last:u{index}")]);
        assert!(last.is_some(), "last:u{index}");
    }
    let members: i64 = query(&mut redis, &["SCARD", "seen"]);
    assert_eq!(members, 400);
}

#[test]
fn missing_or_wrong_credentials_stop_the_run_instead_of_retrying_forever() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with(free_port(), dir.path(), false, Some("s3cret"));
    let port = server.port;
    for (url, what) in [
        (format!("redis://127.0.0.1:{port}"), "no password"),
        (format!("redis://:wrong@127.0.0.1:{port}"), "a wrong password"),
    ] {
        let (output, took) = run_on_input(&url);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
        assert!(stderr.contains("Redis refused the credentials"), "{what}: {stderr}");
        assert!(!stderr.contains("wrong@") && !stderr.contains("s3cret"), "the URL is never printed: {stderr}");
        assert!(!stderr.contains("Redis unavailable"), "{what} is not an outage: {stderr}");
        assert!(took < Duration::from_secs(20), "{what}: took {took:?}");
    }
    // With the password the same run writes.
    let (output, _) = run_on_input(&format!("redis://:s3cret@127.0.0.1:{port}"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut redis = server.connection().expect("connected");
    let members: i64 = query(&mut redis, &["SCARD", "seen"]);
    assert_eq!(members, 3);
}

#[test]
fn sigterm_during_an_outage_stops_promptly_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Nothing listens on this port: Redis is down for the whole run.
    let url = format!("redis://127.0.0.1:{}", free_port());
    let mut child = Command::new(binary())
        .args(["--input", "-", "--quiet", "--redis-url", &url, "--state-dir"])
        .arg(dir.path().join("state"))
        .env("PULSE_TEST_PREFIX", "")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(INPUT.as_bytes()).expect("write");
    drop(stdin);
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let stopped = Instant::now();
    let output = child.wait_with_output().expect("binary ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stopped.elapsed() < Duration::from_secs(10), "stopped after {:?}: {stderr}", stopped.elapsed());
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stopped during a Redis outage"), "{stderr}");
}

#[test]
fn metrics_and_readiness_move_while_the_driver_waits_on_redis() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    // Redis is down from the start.
    let mut child = Command::new(binary())
        .args(["--input", "-", "--metrics-addr", "127.0.0.1:0", "--unready-after", "1s"])
        .args(["--redis-url", &format!("redis://127.0.0.1:{port}")])
        .env("PULSE_TEST_PREFIX", "")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut first).expect("the address line");
    let address = first.trim().rsplit_once("http://").map(|(_, address)| address.to_string()).expect("address");
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let mut stdin = child.stdin.take().expect("stdin");
    for index in 0..600 {
        let line = format!("{{\"event_name\":\"e{index}\",\"userId\":\"u{index}\",\"score\":1,\"ts\":{index}}}\n");
        stdin.write_all(line.as_bytes()).expect("write");
    }
    stdin.flush().expect("flush");

    // The driver is stuck in the first full batch; the scrapes move anyway.
    let scrape = || scrape::samples(&scrape::http_get(&address, "/metrics").1);
    let retries = |samples: &std::collections::BTreeMap<String, f64>| {
        samples
            .iter()
            .filter(|(name, _)| name.starts_with("pulse_sink_retries_total"))
            .map(|(_, value)| value)
            .sum::<f64>()
    };
    std::thread::sleep(Duration::from_millis(1500));
    let early = scrape();
    std::thread::sleep(Duration::from_millis(1500));
    let later = scrape();
    assert!(retries(&later) > retries(&early) && retries(&early) > 0.0, "retries move: {early:?} {later:?}");
    let backpressure = |samples: &std::collections::BTreeMap<String, f64>| samples["pulse_backpressure_seconds"];
    assert!(backpressure(&later) > backpressure(&early) + 1.0, "backpressure grows: {early:?} {later:?}");
    assert!(
        later.iter().any(|(name, value)| name.starts_with("pulse_sink_unavailable_seconds") && *value > 2.0),
        "{later:?}"
    );
    let (status, body) = scrape::http_get(&address, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("unavailable for"), "{body}");
    assert_eq!(scrape::http_get(&address, "/healthz").0, 200, "alive: the process is fine, its sink is not");

    // Redis comes back: ready again, and the run ends with everything written.
    let server = Server::start(port, dir.path(), false);
    let deadline = Instant::now() + Duration::from_secs(30);
    while scrape::http_get(&address, "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "never ready again");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stdin);
    assert!(child.wait().expect("binary ends").success());
    let mut redis = server.connection().expect("connected");
    let members: i64 = query(&mut redis, &["SCARD", "seen"]);
    assert_eq!(members, 600);
}

#[test]
fn a_tls_url_to_a_server_without_tls_stops_the_run_instead_of_hanging() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(free_port(), dir.path(), false);
    let (output, took) = run_on_input(&format!("rediss://127.0.0.1:{}", server.port));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the TLS connection to Redis failed"), "{stderr}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

/// `rateLimit` paces the writes: 30 of them at 20 per second take at least 29 slot intervals
/// (1.45 s; without the limit the run takes milliseconds), and every one reaches Redis.
#[test]
fn a_rate_limit_paces_the_writes_and_loses_none() {
    let text = r#"
pipeline redis-sink-rate

event { userId: string, n: int, ts: timestamp }

source: file-source("in.jsonl") { eventTime: ts }

source -> counted: redis-sink("SET") { key: "n:{{ userId }}", value: "{{ n }}", rateLimit: "20/s" }
"#;
    let binary = build::build_text("redis_sink_rate.pulse", text, None);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(free_port(), dir.path(), false);
    let input: String = (0..30).map(|n| format!("{{\"userId\":\"u{n}\",\"n\":{n},\"ts\":{}}}\n", 1000 + n)).collect();
    std::fs::write(dir.path().join("in.jsonl"), input).expect("write input");
    let started = Instant::now();
    let output = Command::new(&binary)
        .arg("--input")
        .arg(dir.path().join("in.jsonl"))
        .args(["--quiet", "--redis-url", &server.url()])
        .output()
        .expect("binary runs");
    let elapsed = started.elapsed();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(elapsed >= Duration::from_millis(1450), "30 writes at 20/s took {elapsed:?}");
    let mut redis = server.connection().expect("connected");
    for n in 0..30 {
        assert_eq!(query::<String>(&mut redis, &["GET", &format!("n:u{n}")]), n.to_string());
    }
}
