//! A scripted HTTP/1.1 server on `std::net::TcpListener` for api-sink tests: it records every
//! request and answers each path from a script (statuses with extra headers, slow answers,
//! connection resets), then 200.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub enum Action {
    Status(u16, &'static str, &'static str),
    /// Answer 200 after this long.
    Slow(Duration),
    /// Close the connection without an answer.
    Reset,
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

/// The scripted server: each path answers from its queue of actions, then 200.
#[derive(Clone, Default)]
pub struct Server {
    scripts: Arc<Mutex<HashMap<String, VecDeque<Action>>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    pub base: String,
}

impl Server {
    pub fn start(scripts: &[(&str, Vec<Action>)]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = Server {
            scripts: Arc::new(Mutex::new(
                scripts.iter().map(|(path, actions)| (path.to_string(), actions.iter().cloned().collect())).collect(),
            )),
            seen: Arc::default(),
            base: format!("http://127.0.0.1:{port}"),
        };
        let shared = server.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(stream));
            }
        });
        server
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut stream = stream;
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut words = request_line.split_whitespace();
        let method = words.next().unwrap_or("").to_string();
        let path = words.next().unwrap_or("").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
            }
        }
        let length: usize = headers.get("content-length").and_then(|value| value.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        self.seen.lock().expect("lock").push(Seen { method, path: path.clone(), headers, body, at: Instant::now() });
        let action = self.scripts.lock().expect("lock").get_mut(&path).and_then(VecDeque::pop_front);
        let (status, extra, text) = match action {
            Some(Action::Reset) => {
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return;
            }
            Some(Action::Slow(delay)) => {
                std::thread::sleep(delay);
                (200, "", "slow ok")
            }
            Some(Action::Status(status, extra, text)) => (status, extra, text),
            None => (200, "", "{\"ok\":true}"),
        };
        let response =
            format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{text}", text.len());
        let _ = stream.write_all(response.as_bytes());
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    pub fn by_path(&self) -> BTreeMap<String, Vec<Seen>> {
        let mut out: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
        for seen in self.requests() {
            out.entry(seen.path.clone()).or_default().push(seen);
        }
        out
    }
}
