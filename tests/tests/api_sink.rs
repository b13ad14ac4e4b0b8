//! api-sink against a real HTTP server: a hand-written server on `std::net::TcpListener` that
//! records every request and answers each path from a script (500s, 429 with `Retry-After`, a
//! response slower than the timeout, a connection reset, a 400). Asserts retries, backoff bounds,
//! the circuit breaker, idempotency keys, dead letters, responses, and no loss across a restart.

mod build;
mod http_server;

use http_server::{Action, Server};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const PIPELINE: &str = r#"
pipeline api-sink-test

event {
  userId: string
  n: int
  ts: timestamp
}

source: file-source("in.jsonl") { eventTime: ts }
replies: stdout-sink

source -> notify: api-sink("${API_BASE}/notify/{{ userId }}") {
  method: "POST"
  headers: { Authorization: "Bearer ${API_TOKEN}" }
  body: { user: "{{ userId }}", n: "{{ n }}", note: "hi \"{{ userId }}\"", tags: [1, 2.5, null, true] }
  timeout: 500ms
  retries: 3
  circuitBreaker: { failureThreshold: 3, resetAfter: 1s }
}
notify.responses -> replies
"#;

const TOKEN: &str = "s3cr3t-token";

fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build::build_text("api_sink.pulse", PIPELINE, None))
}

fn event(user: &str, n: i64) -> String {
    format!("{{\"userId\":\"{user}\",\"n\":{n},\"ts\":{}}}\n", 1000 + n)
}

fn run(server: &Server, input: &str, dir: &Path, extra: &[&str]) -> (std::process::Output, Duration) {
    let path = dir.join("in.jsonl");
    std::fs::write(&path, input).expect("write input");
    let started = Instant::now();
    let output = Command::new(binary())
        .arg("--input")
        .arg(&path)
        .arg("--dead-letter")
        .arg(dir.join("dead.jsonl"))
        .args(extra)
        .env("API_BASE", &server.base)
        .env("API_TOKEN", TOKEN)
        .output()
        .expect("binary runs");
    (output, started.elapsed())
}

fn dead_letters(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("dead.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("dead letter is JSON"))
        .collect()
}

#[test]
fn retries_backoff_dead_letters_idempotency_and_responses() {
    let server = Server::start(&[
        ("/notify/u-500", vec![Action::Status(500, "", "oops"), Action::Status(503, "", "busy")]),
        ("/notify/u-429", vec![Action::Status(429, "Retry-After: 1\r\n", "slow down")]),
        ("/notify/u-slow", vec![Action::Slow(Duration::from_millis(1500))]),
        ("/notify/u-reset", vec![Action::Reset]),
        ("/notify/u-400", vec![Action::Status(400, "", "bad user: unknown id")]),
        ("/notify/u%20down", vec![Action::Status(500, "", "down"); 4]),
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let input: String = ["u-ok", "u-500", "u-429", "u-slow", "u-reset", "u-400", "u down"]
        .iter()
        .enumerate()
        .map(|(n, user)| event(user, n as i64))
        .collect();
    let (output, elapsed) = run(&server, &input, dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains(TOKEN), "secrets are never printed: {stderr}");
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");

    let by_path = server.by_path();
    let count = |path: &str| by_path.get(path).map_or(0, Vec::len);
    assert_eq!(count("/notify/u-ok"), 1);
    assert_eq!(count("/notify/u-500"), 3, "two 5xx, then 200");
    assert_eq!(count("/notify/u-429"), 2);
    assert!(count("/notify/u-slow") >= 2, "a timeout is retried");
    assert_eq!(count("/notify/u-reset"), 2, "a reset connection is retried");
    assert_eq!(count("/notify/u-400"), 1, "a 400 is not retried");
    assert_eq!(count("/notify/u%20down"), 4, "1 attempt + 3 retries; the field is URL-encoded");

    // Backoff: 100 ms then 200 ms (plus up to 50% jitter); Retry-After: 1 is honoured.
    let gaps = |path: &str| -> Vec<Duration> {
        by_path[path].windows(2).map(|pair| pair[1].at.duration_since(pair[0].at)).collect()
    };
    let gaps_500 = gaps("/notify/u-500");
    // Lower bounds are the backoff; upper bounds only catch a wrong unit (a loaded machine
    // can delay a retry by seconds).
    assert!(gaps_500[0] >= Duration::from_millis(100) && gaps_500[0] < Duration::from_secs(10), "{gaps_500:?}");
    assert!(gaps_500[1] >= Duration::from_millis(200) && gaps_500[1] < Duration::from_secs(10), "{gaps_500:?}");
    let gaps_429 = gaps("/notify/u-429");
    assert!(gaps_429[0] >= Duration::from_millis(990) && gaps_429[0] < Duration::from_secs(10), "{gaps_429:?}");

    // One Idempotency-Key per event, equal across its retries, distinct between events.
    let mut keys = BTreeSet::new();
    for (path, requests) in &by_path {
        let key = requests[0].headers.get("idempotency-key").expect("Idempotency-Key header").clone();
        assert_eq!(key.len(), 32, "{key}");
        assert!(requests.iter().all(|seen| seen.headers.get("idempotency-key") == Some(&key)), "{path}");
        assert!(requests
            .iter()
            .all(|seen| seen.headers.get("authorization").map(String::as_str) == Some("Bearer s3cr3t-token")));
        keys.insert(key);
    }
    assert_eq!(keys.len(), by_path.len());

    // The JSON body: one `{{ field }}` inserts the JSON value, other strings are escaped text.
    let body: serde_json::Value = serde_json::from_str(&by_path["/notify/u-ok"][0].body).expect("JSON body");
    assert_eq!(body, serde_json::json!({"user": "u-ok", "n": 0, "note": "hi \"u-ok\"", "tags": [1, 2.5, null, true]}));
    assert_eq!(by_path["/notify/u-ok"][0].headers.get("content-type").map(String::as_str), Some("application/json"));

    // 4xx and exhausted retries are dead letters; the rest answer on `responses`.
    let dead = dead_letters(dir.path());
    let reasons: BTreeSet<String> =
        dead.iter().map(|letter| letter["reason"].as_str().unwrap_or("").to_string()).collect();
    assert!(reasons.contains("http: 400 from notify: bad user: unknown id"), "{reasons:?}");
    assert!(reasons.contains("http: 500 from notify after 4 attempts"), "{reasons:?}");
    assert_eq!(dead.len(), 2, "{dead:?}");
    // Written means delivered: the summary counts the 5 answered requests, not the 2 dead letters.
    assert!(stderr.contains("7 records read, 10 written (replies: 5, notify: 5), 2 dead letters"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let responses: Vec<serde_json::Value> =
        stdout.lines().map(|line| serde_json::from_str(line).expect("response is JSON")).collect();
    assert_eq!(responses.len(), 5, "{stdout}");
    let ok = responses.iter().find(|response| response["request"]["userId"] == "u-ok").expect("u-ok answered");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["body"], "{\"ok\":true}");
}

#[test]
fn circuit_breaker_opens_and_the_pipeline_waits() {
    let server = Server::start(&[(
        "/notify/flaky",
        vec![Action::Status(500, "", "a"), Action::Status(500, "", "b"), Action::Status(500, "", "c")],
    )]);
    let dir = tempfile::tempdir().expect("temp dir");
    let (output, elapsed) = run(&server, &event("flaky", 1), dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("api-sink `notify`: circuit breaker open after 3 consecutive failures"), "{stderr}");
    let requests = server.requests();
    assert_eq!(requests.len(), 4, "three failures, then the half-open trial succeeds");
    // The trial waits for resetAfter (1 s) after the third failure.
    let wait = requests[3].at.duration_since(requests[2].at);
    assert!(wait >= Duration::from_millis(990) && wait < Duration::from_secs(4), "{wait:?}");
    assert!(dead_letters(dir.path()).is_empty());
    assert!(elapsed >= Duration::from_secs(1));
}

#[test]
fn nothing_is_lost_across_a_restart_from_a_checkpoint() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let state = state.to_string_lossy().into_owned();
    let input: String = (0..10).map(|n| event(&format!("r{n}"), n)).collect();
    let flags = ["--state-dir", state.as_str(), "--checkpoint-every", "1", "--quiet"];
    let (first, _) = run(&server, &input, dir.path(), &[&flags[..], &["--stop-after", "5"]].concat());
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    // The checkpoint at the stop waited for every request in flight.
    let after_stop: BTreeSet<String> = server.requests().into_iter().map(|seen| seen.path).collect();
    let first_five: BTreeSet<String> = (0..5).map(|n| format!("/notify/r{n}")).collect();
    assert!(first_five.is_subset(&after_stop), "{after_stop:?}");
    let (second, _) = run(&server, &input, dir.path(), &flags);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let all: BTreeSet<String> = server.requests().into_iter().map(|seen| seen.path).collect();
    let expected: BTreeSet<String> = (0..10).map(|n| format!("/notify/r{n}")).collect();
    assert_eq!(all, expected);
}

#[test]
fn refused_credentials_stop_the_run_with_a_clear_message() {
    let server = Server::start(&[("/notify/u-2", vec![Action::Status(401, "", "invalid token")])]);
    let dir = tempfile::tempdir().expect("temp dir");
    let input: String = (1..=6).map(|n| event(&format!("u-{n}"), n)).collect();
    let (output, _) = run(&server, &input, dir.path(), &["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("api-sink `notify`: the API refused the credentials (401 from notify)"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "secrets are never printed: {stderr}");
    let dead = dead_letters(dir.path());
    assert!(
        dead.iter().any(|letter| letter["reason"] == "http-auth: 401 from notify: invalid token"
            && letter["event"]["userId"] == "u-2"),
        "the refused request is kept: {dead:?}"
    );
}

#[test]
fn sigterm_while_the_breaker_is_open_stops_promptly_with_a_clear_message() {
    let server = Server::start(&[("/notify/down", vec![Action::Status(500, "", "down"); 200])]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("in.jsonl");
    std::fs::write(&path, (0..20).map(|n| event("down", n)).collect::<String>()).expect("write input");
    let child = Command::new(binary())
        .arg("--input")
        .arg(&path)
        .arg("--dead-letter")
        .arg(dir.path().join("dead.jsonl"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("API_BASE", &server.base)
        .env("API_TOKEN", TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary runs");
    std::thread::sleep(Duration::from_millis(2500));
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let stopped = Instant::now();
    let output = child.wait_with_output().expect("binary ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stopped.elapsed() < Duration::from_secs(5), "stopped after {:?}: {stderr}", stopped.elapsed());
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("api-sink `notify`: stopped while waiting for the API (circuit breaker open)"), "{stderr}");
}

#[test]
fn an_https_url_to_a_server_without_tls_stops_the_run_with_a_clear_message() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("in.jsonl");
    std::fs::write(&path, event("u-1", 1)).expect("write input");
    let binary = binary();
    let started = Instant::now();
    let output = Command::new(binary)
        .arg("--input")
        .arg(&path)
        .arg("--dead-letter")
        .arg(dir.path().join("dead.jsonl"))
        .arg("--quiet")
        .env("API_BASE", server.base.replace("http://", "https://"))
        .env("API_TOKEN", TOKEN)
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("api-sink `notify`: the TLS connection to the API failed"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20), "not retried: {:?}", started.elapsed());
    let dead = dead_letters(dir.path());
    assert!(dead.iter().any(|letter| letter["reason"].as_str().unwrap_or("").starts_with("http-tls: ")), "{dead:?}");
}

/// `PIPELINE` with the api-sink's `timeout`, `retries` and breaker replaced by `options`.
fn binary_with(name: &str, options: &str) -> PathBuf {
    let text = PIPELINE.replace("pipeline api-sink-test", &format!("pipeline {name}")).replace(
        "  timeout: 500ms\n  retries: 3\n  circuitBreaker: { failureThreshold: 3, resetAfter: 1s }\n",
        &format!("  timeout: 5s\n{options}\n"),
    );
    assert!(text.contains(options), "the options were put in");
    build::build_text(&format!("{name}.pulse"), &text, None)
}

/// Runs `binary` on `input` against `server`; it must succeed.
fn run_to_the_end(binary: &Path, server: &Server, input: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("in.jsonl"), input).expect("write input");
    let output = Command::new(binary)
        .arg("--input")
        .arg(dir.path().join("in.jsonl"))
        .arg("--quiet")
        .env("API_BASE", &server.base)
        .env("API_TOKEN", TOKEN)
        .output()
        .expect("binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// The most requests that arrived within any `window` (each arrival is one request sent).
fn most_within(mut arrivals: Vec<Instant>, window: Duration) -> usize {
    arrivals.sort();
    (0..arrivals.len())
        .map(|i| arrivals[i..].iter().take_while(|at| **at - arrivals[i] < window).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn concurrency_keeps_that_many_requests_in_flight_and_no_more() {
    let binary = binary_with("api-sink-concurrency", "  concurrency: 12");
    let users: Vec<String> = (0..48).map(|n| format!("c{n}")).collect();
    let slow: Vec<(String, Vec<Action>)> =
        users.iter().map(|user| (format!("/notify/{user}"), vec![Action::Slow(Duration::from_millis(400))])).collect();
    let scripts: Vec<(&str, Vec<Action>)> =
        slow.iter().map(|(path, actions)| (path.as_str(), actions.clone())).collect();
    let server = Server::start(&scripts);
    let input: String = users.iter().enumerate().map(|(n, user)| event(user, n as i64)).collect();
    run_to_the_end(&binary, &server, &input);
    let arrivals: Vec<Instant> = server.requests().iter().map(|seen| seen.at).collect();
    assert_eq!(arrivals.len(), 48, "every request once");
    // Every answer takes 400 ms, so a worker sends at most one request in any 300 ms: more than
    // the old fixed pool of 4 shows the setting works, more than 12 would break it.
    let most = most_within(arrivals, Duration::from_millis(300));
    assert!(most > 4 && most <= 12, "{most} requests within 300 ms");
}

#[test]
fn a_rate_limit_spaces_requests_retries_included() {
    let binary = binary_with("api-sink-rate", "  retries: 3\n  rateLimit: \"20/s\"");
    let server =
        Server::start(&[("/notify/r3", vec![Action::Status(503, "", "busy"), Action::Status(503, "", "busy")])]);
    let input: String = (0..40).map(|n| event(&format!("r{n}"), n)).collect();
    run_to_the_end(&binary, &server, &input);
    let mut arrivals: Vec<Instant> = server.requests().iter().map(|seen| seen.at).collect();
    assert_eq!(arrivals.len(), 42, "40 requests and 2 retries");
    arrivals.sort();
    // 20 per second: any 21 consecutive attempts span at least a second (slots are 50 ms
    // apart; 5 % allows for when each arrived).
    for (first, last) in arrivals.iter().zip(&arrivals[20..]) {
        assert!(*last - *first >= Duration::from_millis(950), "21 attempts within {:?}", *last - *first);
    }
}
