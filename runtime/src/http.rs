//! The HTTP/1.1 server behind `/metrics`, `/healthz` and `/readyz`: one request per connection,
//! parsed by `httparse`, with every resource bounded, because the port is often reachable by
//! more than Prometheus and a probe must answer while the pipeline is busy or stuck:
//!
//! - the request head (request line and headers) is read into a buffer of at most
//!   [`MAX_HEAD_BYTES`]; a longer one is answered `431` and the connection closed, so a client
//!   cannot grow the process's memory;
//! - a request with a body is answered `413` without reading it;
//! - at most [`MAX_CONNECTIONS`] connections are served at once, each on its own thread; more are
//!   answered `503` and closed at once;
//! - reads and writes time out after [`IO_TIMEOUT`], so a slow client (slowloris) holds its
//!   thread for at most that long.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The largest request head accepted, in bytes.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Read and write timeout of a connection.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Headers parsed per request.
const MAX_HEADERS: usize = 64;

/// A response: status, content type, body.
pub type Response = (u16, &'static str, String);

/// What the server answers: GET and HEAD of a path (the query string removed).
pub trait Handler: Send + Sync + 'static {
    fn get(&self, path: &str) -> Response;
}

/// Binds `address` and serves `handler` on a thread of its own; returns the bound address.
pub fn serve(address: &str, handler: Arc<dyn Handler>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(address)?;
    let bound = listener.local_addr()?;
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new().name("pulse-http".to_string()).spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                active.fetch_sub(1, Ordering::AcqRel);
                let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
                let _ = write_response(&mut stream, false, (503, TEXT, "busy\n".to_string()));
                continue;
            }
            let (handler, active) = (Arc::clone(&handler), Arc::clone(&active));
            let spawned = std::thread::Builder::new().name("pulse-http-conn".to_string()).spawn({
                let active = Arc::clone(&active);
                move || {
                    let _ = serve_connection(stream, &*handler);
                    active.fetch_sub(1, Ordering::AcqRel);
                }
            });
            if spawned.is_err() {
                active.fetch_sub(1, Ordering::AcqRel);
            }
        }
    })?;
    Ok(bound)
}

const TEXT: &str = "text/plain; charset=utf-8";

/// Reads one request head, answers it and closes the connection.
fn serve_connection(mut stream: TcpStream, handler: &dyn Handler) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = vec![0u8; MAX_HEAD_BYTES];
    let mut filled = 0;
    loop {
        if filled == head.len() {
            return write_response(&mut stream, false, (431, TEXT, "request head too large\n".to_string()));
        }
        let read = stream.read(&mut head[filled..])?;
        if read == 0 {
            return Ok(());
        }
        filled += read;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head[..filled]) {
            Ok(httparse::Status::Partial) => continue,
            Ok(httparse::Status::Complete(_)) => {
                let head_only = matches!(request.method, Some("HEAD"));
                let response = answer(&request, handler);
                return write_response(&mut stream, head_only, response);
            }
            Err(httparse::Error::TooManyHeaders) => {
                return write_response(&mut stream, false, (431, TEXT, "too many headers\n".to_string()));
            }
            Err(error) => return write_response(&mut stream, false, (400, TEXT, format!("bad request: {error}\n"))),
        }
    }
}

fn answer(request: &httparse::Request<'_, '_>, handler: &dyn Handler) -> Response {
    let has_body = request.headers.iter().any(|header| {
        (header.name.eq_ignore_ascii_case("content-length") && header.value != b"0")
            || header.name.eq_ignore_ascii_case("transfer-encoding")
    });
    if has_body {
        return (413, TEXT, "no request body is accepted\n".to_string());
    }
    match request.method {
        Some("GET" | "HEAD") => {
            let path = request.path.unwrap_or("/");
            handler.get(path.split('?').next().unwrap_or(path))
        }
        _ => (405, TEXT, "only GET\n".to_string()),
    }
}

fn write_response(stream: &mut TcpStream, head_only: bool, (status, content_type, body): Response) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    struct Hello;

    impl Handler for Hello {
        fn get(&self, path: &str) -> Response {
            (200, TEXT, format!("hello {path}\n"))
        }
    }

    fn exchange(address: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        // A server that answers before the whole request is sent may reset the rest.
        let _ = stream.write_all(request);
        let mut answer = String::new();
        let _ = io::BufReader::new(stream).read_line(&mut answer);
        answer
    }

    #[test]
    fn requests_are_answered_and_every_resource_is_bounded() {
        let address = serve("127.0.0.1:0", Arc::new(Hello)).expect("serve");
        let mut stream = TcpStream::connect(address).expect("connect");
        stream.write_all(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").expect("write");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\nhello /metrics\n"), "{text}");

        assert!(exchange(address, b"POST / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(exchange(address, b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").starts_with("HTTP/1.1 413"));
        assert!(exchange(address, b"NOT HTTP\r\n\r\n").starts_with("HTTP/1.1 400"));
        // A 1 MB header: answered 431 after at most MAX_HEAD_BYTES were buffered.
        let mut huge = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 1 << 20));
        assert!(exchange(address, &huge).starts_with("HTTP/1.1 431"));

        // Idle connections up to the limit; the next one is turned away, and once they close
        // the server answers again.
        let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS).map(|_| TcpStream::connect(address).expect("idle")).collect();
        std::thread::sleep(Duration::from_millis(200));
        assert!(exchange(address, b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 503"));
        drop(idle);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let answer = exchange(address, b"GET /healthz HTTP/1.1\r\n\r\n");
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the server never recovered: {answer}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
