//! The HTTP endpoint of `bench/http.sh`: answers every request with `200 {"ok":true}`, at once or
//! after `LATENCY_MS` (the second argument; a notification API answers in about 100 ms), keeps
//! connections alive, one thread per connection, std only (built with plain `rustc -O`).
//! `GET /count` answers with the number of other requests answered so far.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn serve(stream: TcpStream, answered: &AtomicU64, latency: Duration) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let count = line.starts_with("GET /count ");
        let mut length = 0usize;
        let mut close = false;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("connection") && value.trim().eq_ignore_ascii_case("close") {
                    close = true;
                }
            }
        }
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
        if count {
            let text = answered.load(Ordering::Relaxed).to_string();
            write!(writer, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}", text.len())?;
        } else {
            if !latency.is_zero() {
                std::thread::sleep(latency);
            }
            writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")?;
            answered.fetch_add(1, Ordering::Relaxed);
        }
        if close {
            return Ok(());
        }
    }
}

fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|port| port.parse().ok()).unwrap_or(18080);
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind 127.0.0.1");
    let latency = Duration::from_millis(std::env::args().nth(2).and_then(|ms| ms.parse().ok()).unwrap_or(0));
    let answered = Arc::new(AtomicU64::new(0));
    for stream in listener.incoming().flatten() {
        let answered = Arc::clone(&answered);
        std::thread::spawn(move || {
            let _ = serve(stream, &answered, latency);
        });
    }
}
