//! A real `redis-server` (Debian's `redis-server` package) for redis-sink tests: started on a free
//! loopback port without snapshots, killed on drop.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// A `redis-server` child, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    /// `requirepass`, if the server wants one.
    password: Option<String>,
}

impl Server {
    /// Starts `redis-server` on `port` with its files in `dir` and waits until it answers PING.
    /// `persistent` turns on the append-only file with an fsync per write.
    pub fn start(port: u16, dir: &Path, persistent: bool) -> Server {
        Server::start_with(port, dir, persistent, None)
    }

    /// `start`, with `requirepass` when `password` is given.
    pub fn start_with(port: u16, dir: &Path, persistent: bool, password: Option<&str>) -> Server {
        let mut command = Command::new("redis-server");
        if let Some(password) = password {
            command.args(["--requirepass", password]);
        }
        command.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""]);
        command.arg("--dir").arg(dir);
        if persistent {
            // Every acknowledged write survives a kill, so the restart test sees them all.
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian package `redis-server`; .ci/run installs it)");
        let server = Server { child, port, password: password.map(str::to_string) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.connection().is_none() {
            assert!(Instant::now() < deadline, "redis-server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn connection(&self) -> Option<redis::Connection> {
        let url = match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => self.url(),
        };
        let client = redis::Client::open(url).ok()?;
        let mut connection = client.get_connection_with_timeout(Duration::from_secs(1)).ok()?;
        redis::cmd("PING").query::<String>(&mut connection).ok()?;
        Some(connection)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs one command (`args[0]` and its arguments), panicking with the command on an error.
pub fn query<T: redis::FromRedisValue>(connection: &mut redis::Connection, args: &[&str]) -> T {
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query(connection).unwrap_or_else(|error| panic!("{args:?}: {error}"))
}
