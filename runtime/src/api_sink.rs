//! api-sink over HTTP: requests run on a pool of `concurrency` worker threads per sink, each
//! with one request in flight on a kept-alive connection (blocking I/O: a thread per request in
//! flight costs a small stack and no CPU while it waits), behind a bounded queue that blocks
//! the pipeline when full; with retries, exponential backoff with jitter, `Retry-After`, a
//! circuit breaker and an optional `rateLimit` shared by every attempt. Completed requests come
//! back to the driver thread, which dead-letters failures and forwards responses. Requests of
//! one key are not ordered among themselves once more than one is in flight.

use crate::metrics::{LiveSink, SinkProbe};
use crate::rate::RateLimit;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Requests queued or in flight before `submit` blocks (backpressure): at least this many, and
/// twice the concurrency.
const QUEUE_MIN: usize = 64;
/// Stack of a worker thread: a request needs little, and a pool may hold hundreds.
const WORKER_STACK: usize = 512 * 1024;
/// First retry delay; doubles per attempt up to the cap, plus up to 50% jitter.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// Response bodies in dead-letter reasons are cut to this many bytes.
const BODY_IN_REASON: usize = 200;

/// The fixed settings of one api-sink.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    pub node: &'static str,
    pub method: &'static str,
    pub timeout: Duration,
    pub retries: u32,
    /// (failure threshold, reset after); `None`: no breaker.
    pub breaker: Option<(u32, Duration)>,
    /// Requests in flight at once (worker threads).
    pub concurrency: usize,
    /// `rateLimit`, shared by the workers; every attempt takes a slot.
    pub rate_limit: Option<Arc<RateLimit>>,
}

impl ApiSettings {
    fn queue_limit(&self) -> usize {
        QUEUE_MIN.max(self.concurrency * 2)
    }
}

/// One rendered request.
pub struct Job {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
    pub idempotency_key: String,
    pub event: String,
    pub event_time: i64,
}

/// A finished request, handed back to the driver thread.
pub struct Done {
    pub event: String,
    pub event_time: i64,
    pub outcome: Result<(u16, String), Failure>,
}

/// A request that was not delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The dead letter's reason.
    pub reason: String,
    /// Set when every later request would fail alike (refused credentials, no TLS): what is
    /// wrong and what to check. The run stops instead of dead-lettering them one by one.
    pub stops_run: Option<String>,
}

impl Failure {
    fn record(reason: String) -> Failure {
        Failure { reason, stops_run: None }
    }
}

enum Breaker {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial request is running; others wait for its result.
    HalfOpen,
}

struct Shared {
    queue: VecDeque<Job>,
    in_flight: usize,
    done: Vec<Done>,
    breaker: Breaker,
    shutdown: bool,
    /// Times the breaker opened (reported in the summary line on stderr).
    breaker_opened: u64,
    /// Attempts retried after a failure.
    retries: u64,
    /// Since when `submit` has been waiting for queue space, if it is.
    waiting_since: Option<Instant>,
    /// Since when the breaker has not been closed, if it has not.
    unavailable_since: Option<Instant>,
    /// When a wait first saw the stop flag.
    stop_seen: Option<Instant>,
}

struct Pool {
    shared: Mutex<Shared>,
    /// Signalled when a job is queued or at shutdown: wakes one idle worker.
    queued: Condvar,
    /// Signalled when a request finishes or the breaker changes: wakes the driver (waiting for
    /// queue space or for completion) and workers waiting on the breaker.
    changed: Condvar,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// SIGTERM or SIGINT came while the sink waited for the API: the run stops, and its last
/// checkpoint holds everything committed.
#[derive(Debug, thiserror::Error)]
#[error(
    "api-sink `{node}`: stopped while waiting for the API{}; the last checkpoint holds everything \
     committed, and a restart with the same --state-dir sends the rest",
    if *breaker_open { " (circuit breaker open)" } else { "" }
)]
pub struct Stopped {
    pub node: &'static str,
    pub breaker_open: bool,
}

/// One api-sink's worker pool.
pub struct ApiClient {
    pool: Arc<Pool>,
    workers: Vec<JoinHandle<()>>,
    pub settings: ApiSettings,
}

impl ApiClient {
    pub fn start(settings: ApiSettings) -> ApiClient {
        let pool = Arc::new(Pool {
            shared: Mutex::new(Shared {
                queue: VecDeque::new(),
                in_flight: 0,
                done: Vec::new(),
                breaker: Breaker::Closed { failures: 0 },
                shutdown: false,
                breaker_opened: 0,
                retries: 0,
                waiting_since: None,
                unavailable_since: None,
                stop_seen: None,
            }),
            queued: Condvar::new(),
            changed: Condvar::new(),
        });
        // Every worker keeps its connection alive between requests (ureq keeps one idle
        // connection per host unless told otherwise).
        let agent = ureq::AgentBuilder::new()
            .timeout(settings.timeout)
            .max_idle_connections_per_host(settings.concurrency)
            .max_idle_connections(settings.concurrency * 4)
            .build();
        let workers = (0..settings.concurrency.max(1))
            .map(|worker| {
                let pool = Arc::clone(&pool);
                let agent = agent.clone();
                let settings = settings.clone();
                std::thread::Builder::new()
                    .name(format!("api-{}-{worker}", settings.node))
                    .stack_size(WORKER_STACK)
                    .spawn(move || work(&pool, &agent, &settings, worker as u64))
                    .expect("spawn an api-sink worker")
            })
            .collect();
        ApiClient { pool, workers, settings }
    }

    /// Queues a request; blocks while the queue is full (backpressure, never a drop). Returns
    /// the time it was blocked, or an error when SIGTERM/SIGINT came during the wait.
    pub fn submit(&self, job: Job) -> Result<Duration, Stopped> {
        let mut shared = self.pool.lock();
        let mut blocked = None;
        while shared.queue.len() + shared.in_flight >= self.settings.queue_limit() {
            let since = *blocked.get_or_insert_with(Instant::now);
            shared.waiting_since = Some(since);
            shared = self.wait_changed(shared)?;
        }
        shared.waiting_since = None;
        shared.queue.push_back(job);
        self.pool.queued.notify_one();
        Ok(blocked.map_or(Duration::ZERO, |since| since.elapsed()))
    }

    /// Waits for a request to finish or the breaker to change, looking at the stop flag every
    /// [`STOP_POLL`]: after SIGTERM/SIGINT, requests in flight to a working API may finish for
    /// [`STOP_GRACE`] (so the last checkpoint covers them), but an open breaker or an API that
    /// does not answer does not hold the stop up.
    fn wait_changed<'pool>(
        &'pool self,
        shared: MutexGuard<'pool, Shared>,
    ) -> Result<MutexGuard<'pool, Shared>, Stopped> {
        let (mut shared, _) =
            self.pool.changed.wait_timeout(shared, STOP_POLL).unwrap_or_else(|poisoned| poisoned.into_inner());
        let stopping = crate::stop::requested().then(|| *shared.stop_seen.get_or_insert_with(Instant::now));
        let stuck = !matches!(shared.breaker, Breaker::Closed { .. });
        if stopping.is_some_and(|since| stuck || since.elapsed() >= STOP_GRACE) {
            shared.waiting_since = None;
            return Err(Stopped { node: self.settings.node, breaker_open: stuck });
        }
        Ok(shared)
    }

    /// The requests finished so far.
    pub fn take_done(&self, into: &mut Vec<Done>) {
        into.append(&mut self.pool.lock().done);
    }

    /// Waits until every queued request finished, then returns them all.
    pub fn wait_all(&self, into: &mut Vec<Done>) -> Result<(), Stopped> {
        let mut shared = self.pool.lock();
        while !shared.queue.is_empty() || shared.in_flight > 0 {
            shared = self.wait_changed(shared)?;
        }
        into.append(&mut shared.done);
        Ok(())
    }

    /// Reads this sink's retries, breaker and waits at scrape time (see `LiveSink`).
    pub fn probe(&self) -> SinkProbe {
        let pool = Arc::clone(&self.pool);
        Box::new(move || {
            let shared = pool.lock();
            LiveSink {
                retries: shared.retries,
                breaker_state: breaker_state(&shared.breaker),
                breaker_opened: shared.breaker_opened,
                waiting_since: shared.waiting_since,
                unavailable_since: shared.unavailable_since,
            }
        })
    }

    /// (retries so far, breaker state: 0 closed, 1 open, 2 half-open, times it opened).
    pub fn health(&self) -> (u64, i64, u64) {
        let shared = self.pool.lock();
        (shared.retries, breaker_state(&shared.breaker), shared.breaker_opened)
    }
}

/// 0 closed, 1 open, 2 half-open.
fn breaker_state(breaker: &Breaker) -> i64 {
    match breaker {
        Breaker::Closed { .. } => 0,
        Breaker::Open { .. } => 1,
        Breaker::HalfOpen => 2,
    }
}

impl Drop for ApiClient {
    fn drop(&mut self) {
        self.pool.lock().shutdown = true;
        self.pool.queued.notify_all();
        self.pool.changed.notify_all();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn work(pool: &Pool, agent: &ureq::Agent, settings: &ApiSettings, seed: u64) {
    let mut random = Jitter(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    loop {
        let job = {
            let mut shared = pool.lock();
            loop {
                // At shutdown queued requests are abandoned: no checkpoint covers them, so a
                // restart sends them again.
                if shared.shutdown {
                    return;
                }
                if let Some(job) = shared.queue.pop_front() {
                    shared.in_flight += 1;
                    break job;
                }
                shared = pool.queued.wait(shared).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        };
        let outcome = deliver(pool, agent, settings, &job, &mut random);
        let mut shared = pool.lock();
        shared.in_flight -= 1;
        shared.done.push(Done { event: job.event, event_time: job.event_time, outcome });
        pool.changed.notify_all();
    }
}

/// What one attempt gave.
enum Attempt {
    Success(u16, String),
    /// A 4xx other than 429: not retried.
    Rejected(u16, String),
    /// 5xx, 429, timeout, connection error: retried; `Some` is a `Retry-After` delay.
    Retry(String, Option<Duration>),
    /// The TLS handshake failed (a server without TLS on the port, a certificate that does not
    /// verify): not retried, and the run stops.
    TlsFailed(String),
}

/// How often a wait on the API looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);
/// How long requests in flight may finish after a stop was asked for.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Sends one request with retries; the breaker is consulted before every attempt.
fn deliver(
    pool: &Pool,
    agent: &ureq::Agent,
    settings: &ApiSettings,
    job: &Job,
    random: &mut Jitter,
) -> Result<(u16, String), Failure> {
    let mut attempt = 0u32;
    loop {
        let shut_down =
            || Err(Failure::record(format!("http: {} shut down before the request was sent", settings.node)));
        if !acquire(pool, settings) {
            return shut_down();
        }
        if let Some(limit) = &settings.rate_limit {
            if limit.wait(|| pool.lock().shutdown).is_none() {
                return shut_down();
            }
        }
        let result = attempt_once(agent, settings, job);
        report(pool, settings, !matches!(result, Attempt::Retry(..)));
        match result {
            Attempt::Success(status, body) => return Ok((status, body)),
            Attempt::Rejected(status, body) => {
                let mut cut = body.len().min(BODY_IN_REASON);
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                if matches!(status, 401 | 403) {
                    return Err(Failure {
                        reason: format!("http-auth: {status} from {}: {}", settings.node, &body[..cut]),
                        stops_run: Some(format!(
                            "the API refused the credentials ({status} from {}); check the headers' environment \
                             variables",
                            settings.node
                        )),
                    });
                }
                return Err(Failure::record(format!("http: {status} from {}: {}", settings.node, &body[..cut])));
            }
            Attempt::TlsFailed(problem) => {
                return Err(Failure {
                    reason: format!("http-tls: {} could not make a TLS connection: {problem}", settings.node),
                    stops_run: Some(format!(
                        "the TLS connection to the API failed ({problem}); check that the URL's server speaks TLS \
                         and that its certificate is valid for the host"
                    )),
                });
            }
            Attempt::Retry(problem, retry_after) => {
                if attempt >= settings.retries {
                    return Err(Failure::record(format!(
                        "http: {problem} from {} after {} attempts",
                        settings.node,
                        attempt + 1
                    )));
                }
                pool.lock().retries += 1;
                let backoff = BACKOFF_FIRST.saturating_mul(1 << attempt.min(16)).min(BACKOFF_CAP);
                let jitter = backoff.mul_f64(random.next_fraction() * 0.5);
                if !pause(pool, retry_after.unwrap_or(backoff + jitter)) {
                    return Err(Failure::record(format!("http: {} shut down between retries", settings.node)));
                }
                attempt += 1;
            }
        }
    }
}

fn attempt_once(agent: &ureq::Agent, settings: &ApiSettings, job: &Job) -> Attempt {
    let mut request = agent.request(settings.method, &job.url).set("Idempotency-Key", &job.idempotency_key);
    for (name, value) in &job.headers {
        request = request.set(name, value);
    }
    let response = match &job.body {
        Some(body) => {
            if !job.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
                request = request.set("Content-Type", "application/json");
            }
            request.send_string(body)
        }
        None => request.call(),
    };
    match response {
        Ok(response) => {
            let status = response.status();
            Attempt::Success(status, response.into_string().unwrap_or_default())
        }
        Err(ureq::Error::Status(status, response)) => {
            let retry_after = response
                .header("Retry-After")
                .and_then(|value| value.trim().parse::<u64>().ok())
                // A server asking for more than a minute gets a minute; the retry budget still applies.
                .map(|seconds| Duration::from_secs(seconds.min(60)));
            let body = response.into_string().unwrap_or_default();
            if status == 429 || status >= 500 {
                Attempt::Retry(format!("{status}"), retry_after)
            } else {
                Attempt::Rejected(status, body)
            }
        }
        // Transport errors: connection refused or reset, DNS, timeouts. The URL may hold a
        // secret, so only the kind is reported.
        Err(ureq::Error::Transport(transport))
            if transport.message().is_some_and(|message| message.starts_with("tls ")) =>
        {
            // The cause (rustls's message) names no secret.
            let cause =
                std::error::Error::source(&transport).map_or_else(|| transport.kind().to_string(), ToString::to_string);
            Attempt::TlsFailed(cause)
        }
        Err(ureq::Error::Transport(transport)) => Attempt::Retry(format!("{}", transport.kind()), None),
    }
}

/// Waits until the breaker lets a request through (closed, or the half-open trial).
fn acquire(pool: &Pool, settings: &ApiSettings) -> bool {
    if settings.breaker.is_none() {
        return !pool.lock().shutdown;
    }
    let mut shared = pool.lock();
    loop {
        if shared.shutdown {
            return false;
        }
        match shared.breaker {
            Breaker::Closed { .. } => return true,
            Breaker::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    shared.breaker = Breaker::HalfOpen;
                    return true;
                }
                shared = pool.changed.wait_timeout(shared, until - now).map_or_else(|e| e.into_inner().0, |r| r.0);
            }
            Breaker::HalfOpen => {
                shared = pool.changed.wait(shared).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        }
    }
}

/// Sleeps for `duration` unless the pool shuts down first; false at shutdown.
fn pause(pool: &Pool, duration: Duration) -> bool {
    let deadline = Instant::now() + duration;
    let mut shared = pool.lock();
    while !shared.shutdown {
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        shared = pool.changed.wait_timeout(shared, deadline - now).map_or_else(|e| e.into_inner().0, |r| r.0);
    }
    false
}

/// Records an attempt's result; opens the breaker after `failureThreshold` consecutive failures
/// or a failed half-open trial.
fn report(pool: &Pool, settings: &ApiSettings, success: bool) {
    let Some((threshold, reset_after)) = settings.breaker else { return };
    let mut shared = pool.lock();
    let open = match (&shared.breaker, success) {
        (_, true) => {
            shared.breaker = Breaker::Closed { failures: 0 };
            shared.unavailable_since = None;
            false
        }
        (Breaker::Closed { failures }, false) => {
            let failures = failures + 1;
            shared.breaker = Breaker::Closed { failures };
            failures >= threshold.max(1)
        }
        (Breaker::HalfOpen, false) => true,
        (Breaker::Open { .. }, false) => false,
    };
    if open {
        shared.breaker = Breaker::Open { until: Instant::now() + reset_after };
        shared.unavailable_since.get_or_insert_with(Instant::now);
        shared.breaker_opened += 1;
        tracing::warn!(
            node = settings.node,
            "api-sink `{}`: circuit breaker open after {threshold} consecutive failures; retrying in {} ms",
            settings.node,
            reset_after.as_millis()
        );
    }
    pool.changed.notify_all();
}

/// xorshift64: jitter for backoff delays, no dependency.
struct Jitter(u64);

impl Jitter {
    fn next_fraction(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// FNV-1a 128 over the parts, each followed by a 0xff separator, as 32 hex digits: the
/// `Idempotency-Key` of a request (pipeline name, node id, key text, event time).
pub fn idempotency_key(parts: &[&[u8]]) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut hash = OFFSET;
    for part in parts {
        for byte in part.iter().chain(std::iter::once(&0xff)) {
            hash ^= u128::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:032x}")
}

/// The first dot segment (`.` or `..`, also percent-encoded, which URL parsers normalize the
/// same way) in the path of `url`, if any. A field value rendered into a URL path must not
/// climb out of it: `/u/{{ userId }}/x` with `userId` = `..` would request `/x`.
pub fn dot_segment(url: &str) -> Option<&str> {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    let path_start = url[after_scheme..].find('/').map_or(url.len(), |at| after_scheme + at);
    let path_end = url[path_start..].find(['?', '#']).map_or(url.len(), |at| path_start + at);
    url[path_start..path_end].split('/').find(|segment| {
        matches!(segment.to_ascii_lowercase().as_str(), "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e.")
    })
}

/// Appends `text` percent-encoded for a URL (RFC 3986 unreserved characters kept).
pub fn push_url_encoded(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte & 15)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_stable_and_distinct() {
        let a = idempotency_key(&[b"p", b"n", b"u1", b"1000"]);
        assert_eq!(a, idempotency_key(&[b"p", b"n", b"u1", b"1000"]));
        assert_eq!(a.len(), 32);
        assert_ne!(a, idempotency_key(&[b"p", b"n", b"u1", b"1001"]));
        assert_ne!(idempotency_key(&[b"ab", b"c"]), idempotency_key(&[b"a", b"bc"]));
    }

    #[test]
    fn dot_segments_are_found_in_the_path_only() {
        assert_eq!(dot_segment("http://h/u/../x"), Some(".."));
        assert_eq!(dot_segment("http://h/u/%2E%2e/x"), Some("%2E%2e"));
        assert_eq!(dot_segment("http://h/u/./x"), Some("."));
        assert_eq!(dot_segment("http://h/u/..x/x.y"), None);
        assert_eq!(dot_segment("http://h/u?next=../x#.."), None);
        assert_eq!(dot_segment("${URL}/u/.."), Some(".."));
    }

    #[test]
    fn url_encoding_keeps_unreserved_characters() {
        let mut out = String::new();
        push_url_encoded(&mut out, "a b/c?d=é~");
        assert_eq!(out, "a%20b%2Fc%3Fd%3D%C3%A9~");
    }
}
