//! redis-sink on a real server: commands are pipelined and sent in batches; a batch is resent
//! whole after a reconnect (at-least-once), and the caller blocks while Redis is down.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::{LiveSink, SinkProbe};
use crate::rate::RateLimit;
use crate::RedisCommand;

/// Commands buffered before a batch is sent.
pub const BATCH_COMMANDS: usize = 512;
/// A non-full batch is sent once it is this old (checked when a command is added).
const BATCH_AGE: Duration = Duration::from_millis(100);
/// Reconnect backoff: doubles from the first delay up to the cap, for as long as Redis is down.
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The whole of a connection attempt: TCP connect, TLS handshake, AUTH and PING.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The Redis URL of a run: `--redis-url`, else `PULSE_REDIS_URL`, else the local default.
pub fn redis_url(flag: Option<&str>) -> String {
    match flag {
        Some(url) => url.to_string(),
        None => std::env::var("PULSE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string()),
    }
}

/// Why a redis-sink stops the run. Messages never show the URL: it may hold a password.
#[derive(Debug, thiserror::Error)]
pub enum RedisSinkError {
    #[error("redis-sink `{node}`: invalid Redis URL ({kind:?})")]
    Url { node: &'static str, kind: redis::ErrorKind },
    #[error(
        "redis-sink `{node}`: stopped while waiting for its rateLimit; the last checkpoint holds everything \
         committed, and a restart with the same --state-dir writes the rest"
    )]
    StoppedWaiting { node: &'static str },
    #[error(
        "redis-sink `{node}`: the TLS connection to Redis failed ({error}); check that the server \
         speaks TLS on that port and that its certificate is valid for the host (rediss:// URL)"
    )]
    Tls { node: &'static str, error: redis::RedisError },
    #[error(
        "redis-sink `{node}`: Redis refused the credentials ({error}); give the user and password in \
         --redis-url or PULSE_REDIS_URL (redis://user:password@host:port)"
    )]
    Credentials { node: &'static str, error: redis::RedisError },
    #[error(
        "redis-sink `{node}`: stopped during a Redis outage after {failures} failed attempts; the last \
         checkpoint holds everything committed, and a restart with the same --state-dir sends the rest"
    )]
    StoppedInOutage { node: &'static str, failures: u32 },
    #[error("redis-sink `{node}`: Redis rejected a command: {error}")]
    Rejected { node: &'static str, error: redis::RedisError },
}

/// One redis-sink's connection and its unsent batch.
pub struct RedisWriter {
    node: &'static str,
    command: RedisCommand,
    trim: Option<u64>,
    ttl_ms: Option<u64>,
    client: redis::Client,
    connection: Option<redis::Connection>,
    batch: redis::Pipeline,
    pending: usize,
    oldest: Instant,
    /// Reused buffer for HSET of every top-level field.
    scratch: Vec<(String, String)>,
    /// Failed attempts to reach Redis so far, and the time batches waited for it.
    pub reconnects: u64,
    pub blocked: Duration,
    /// The URL asks for TLS (`rediss://`).
    tls: bool,
    /// A connection was made at least once.
    connected_once: bool,
    /// What a scrape reads while the driver waits on Redis: (reconnects, outage start).
    live: Arc<Mutex<(u64, Option<Instant>)>>,
    /// `rateLimit`: every write takes a slot as it is queued.
    rate_limit: Option<RateLimit>,
}

/// The name of `command` on the wire.
pub fn command_name(command: RedisCommand) -> &'static str {
    match command {
        RedisCommand::Set => "SET",
        RedisCommand::HSet => "HSET",
        RedisCommand::SAdd => "SADD",
        RedisCommand::ZAdd => "ZADD",
        RedisCommand::LPush => "LPUSH",
        RedisCommand::RPush => "RPUSH",
    }
}

/// HSET without `field`: every top-level field of the event, sorted, strings without quotes;
/// an event that is not an object is one field `event`.
pub fn event_fields(event_json: &str) -> Vec<(String, String)> {
    // Members borrowed as raw JSON: no `Value` tree; only strings are unescaped.
    type Members<'e> = std::collections::BTreeMap<String, &'e serde_json::value::RawValue>;
    let mut fields = Vec::new();
    if let Ok(members) = serde_json::from_str::<Members<'_>>(event_json) {
        for (field, raw) in members {
            let text = match serde_json::from_str::<String>(raw.get()) {
                Ok(text) => text,
                Err(_) => raw.get().to_string(),
            };
            fields.push((field, text));
        }
    }
    if fields.is_empty() {
        fields.push(("event".to_string(), event_json.to_string()));
    }
    fields
}

impl RedisWriter {
    /// Checks the URL; the connection is made by the first batch. The URL is never printed, as
    /// it may hold a password.
    pub fn open(
        node: &'static str,
        url: &str,
        command: RedisCommand,
        trim: Option<u64>,
        ttl_ms: Option<u64>,
    ) -> Result<RedisWriter, RedisSinkError> {
        let client = redis::Client::open(url).map_err(|error| RedisSinkError::Url { node, kind: error.kind() })?;
        Ok(RedisWriter {
            node,
            command,
            trim,
            ttl_ms,
            client,
            connection: None,
            batch: redis::pipe(),
            pending: 0,
            oldest: Instant::now(),
            scratch: Vec::new(),
            reconnects: 0,
            blocked: Duration::ZERO,
            live: Arc::default(),
            tls: url.starts_with("rediss://"),
            connected_once: false,
            rate_limit: None,
        })
    }

    /// Paces the writes: at most the limit's rate, as they are queued (a batch reaches Redis
    /// at most `BATCH_AGE` later).
    pub fn limit_rate(&mut self, limit: RateLimit) {
        self.rate_limit = Some(limit);
    }

    /// Reads this sink's reconnects and outage at scrape time (see `LiveSink`).
    pub fn probe(&self) -> SinkProbe {
        let live = Arc::clone(&self.live);
        Box::new(move || {
            let (reconnects, down_since) = *live.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            LiveSink {
                retries: reconnects,
                waiting_since: down_since,
                unavailable_since: down_since,
                ..LiveSink::default()
            }
        })
    }

    fn set_live(&self, down_since: Option<Instant>) {
        *self.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = (self.reconnects, down_since);
    }

    /// Adds the write of one event; `args` are the command's arguments after the key (see
    /// `Context::redis`). Sends the batch when it is full or old.
    pub fn push(&mut self, event_json: &str, key: &str, args: &[&str]) -> Result<(), RedisSinkError> {
        if self.rate_limit.is_some() {
            // Send what is queued before waiting for a slot, so a slow rate does not hold
            // earlier writes back.
            if self.pending > 0 && self.oldest.elapsed() >= BATCH_AGE {
                self.flush()?;
            }
        }
        if let Some(limit) = &self.rate_limit {
            match limit.wait(crate::stop::requested) {
                Some(waited) => self.blocked += waited,
                None => return Err(RedisSinkError::StoppedWaiting { node: self.node }),
            }
        }
        if self.pending == 0 {
            self.oldest = Instant::now();
        }
        let cmd = self.batch.cmd(command_name(self.command)).arg(key);
        if self.command == RedisCommand::HSet && args.is_empty() {
            self.scratch = event_fields(event_json);
            for (field, value) in &self.scratch {
                cmd.arg(field).arg(value);
            }
        } else {
            cmd.arg(args);
        }
        cmd.ignore();
        match (self.command, self.trim) {
            (RedisCommand::LPush, Some(trim)) => {
                self.batch.cmd("LTRIM").arg(key).arg(0).arg(trim as i64 - 1).ignore();
            }
            (RedisCommand::RPush, Some(trim)) => {
                self.batch.cmd("LTRIM").arg(key).arg(-(trim as i64)).arg(-1).ignore();
            }
            _ => {}
        }
        if let Some(ttl_ms) = self.ttl_ms {
            self.batch.cmd("PEXPIRE").arg(key).arg(ttl_ms).ignore();
        }
        self.pending += 1;
        if self.pending >= BATCH_COMMANDS || self.oldest.elapsed() >= BATCH_AGE {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends the batch and waits until Redis acknowledged every command. While Redis cannot be
    /// reached it reconnects with exponential backoff and resends the whole batch, blocking the
    /// pipeline; a command Redis rejects (e.g. `WRONGTYPE`) is an error that stops the run.
    pub fn flush(&mut self) -> Result<(), RedisSinkError> {
        if self.pending == 0 {
            return Ok(());
        }
        let mut delay = BACKOFF_FIRST;
        let mut failures = 0u32;
        let started = Instant::now();
        // Outage messages: the first five attempts, then one every twenty.
        let mut next_report = 0u32;
        loop {
            let outcome = match &mut self.connection {
                Some(connection) => self.batch.query::<()>(connection),
                None => match self.connect() {
                    Ok(mut connection) => {
                        self.connected_once = true;
                        let outcome = self.batch.query::<()>(&mut connection);
                        self.connection = Some(connection);
                        outcome
                    }
                    Err(error) => Err(error),
                },
            };
            match outcome {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(node = self.node, "redis-sink `{}`: Redis is back; batch resent", self.node);
                        self.blocked += started.elapsed();
                        self.set_live(None);
                    }
                    self.batch.clear();
                    self.pending = 0;
                    return Ok(());
                }
                // Before the first connection ever made, anything but a refused connection
                // (Redis down) means TLS itself does not work with this server.
                Err(error)
                    if self.tls
                        && !self.connected_once
                        && !error.is_connection_refusal()
                        && (error.is_io_error() || tls_failed(&error)) =>
                {
                    self.connection = None;
                    return Err(RedisSinkError::Tls { node: self.node, error });
                }
                Err(error) if credentials_refused(&error) => {
                    self.connection = None;
                    return Err(RedisSinkError::Credentials { node: self.node, error });
                }
                Err(error) if retryable(&error) => {
                    self.connection = None;
                    self.set_live(Some(started));
                    if crate::stop::requested() {
                        self.blocked += started.elapsed();
                        return Err(RedisSinkError::StoppedInOutage { node: self.node, failures });
                    }
                    failures += 1;
                    self.reconnects += 1;
                    self.set_live(Some(started));
                    if failures <= 5 || failures >= next_report {
                        next_report = failures + 20;
                        tracing::warn!(
                            node = self.node,
                            "redis-sink `{}`: Redis unavailable ({error}); retry {failures} in {} ms",
                            self.node,
                            delay.as_millis()
                        );
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(BACKOFF_CAP);
                }
                Err(error) => {
                    self.connection = None;
                    return Err(RedisSinkError::Rejected { node: self.node, error });
                }
            }
        }
    }
}

impl RedisWriter {
    /// A new connection, checked with PING: a server that wants credentials answers `NOAUTH`
    /// here, instead of closing the connection in the middle of a batch (which looks like an
    /// outage). The client bounds the TCP connect but not a TLS handshake, which a server that
    /// does not speak TLS never answers: the attempt runs on a thread of its own and is given
    /// up after `HANDSHAKE_TIMEOUT` (the thread ends when the socket does).
    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let client = self.client.clone();
        let (sender, receiver) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new().name(format!("redis-connect-{}", self.node)).spawn(move || {
            let attempt = || -> redis::RedisResult<redis::Connection> {
                let mut connection = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
                let _ = connection.set_read_timeout(Some(IO_TIMEOUT));
                let _ = connection.set_write_timeout(Some(IO_TIMEOUT));
                redis::cmd("PING").query::<()>(&mut connection)?;
                Ok(connection)
            };
            let _ = sender.send(attempt());
        });
        if let Err(error) = spawned {
            return Err(redis::RedisError::from(error));
        }
        receiver.recv_timeout(HANDSHAKE_TIMEOUT).unwrap_or_else(|_| {
            Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "no answer to the connection",
                format!("nothing within {} s", HANDSHAKE_TIMEOUT.as_secs()),
            )))
        })
    }
}

/// A TLS connection that cannot be made: a handshake with a server that does not answer it, a
/// certificate that does not verify, a server that does not speak TLS. Permanent: waiting does
/// not change the server's configuration.
fn tls_failed(error: &redis::RedisError) -> bool {
    let text = error.to_string().to_ascii_lowercase();
    ["no answer to the connection", "certificate", "corrupt message", "handshake", "tls", "ssl"]
        .iter()
        .any(|part| text.contains(part))
}

/// Missing or wrong credentials: permanent, never an outage to wait out.
fn credentials_refused(error: &redis::RedisError) -> bool {
    error.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
}

fn retryable(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || matches!(error.kind(), redis::ErrorKind::TryAgain | redis::ErrorKind::BusyLoadingError)
}
