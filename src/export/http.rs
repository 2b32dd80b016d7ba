//! The exporter's HTTP edge: `GET /metrics` (the latest exposition,
//! OpenMetrics when the scraper's Accept asks for it) and `GET /healthz`,
//! nothing else. Hand-written over std's TcpListener with httparse for the
//! request, rather than tiny_http (the small server crate at hand), which
//! has neither timeouts nor a bound on connections: here a fixed pool of
//! threads serves one connection each at a time, every read and write has
//! a deadline, and at most [`BACKLOG`] connections wait. Waiting ones are
//! served newest first and, when the backlog is full, the oldest is closed
//! (and counted): clients that connect and say nothing hold a worker for
//! [`DEADLINE`] at most and cannot keep a scraper out. Polling never waits
//! on a client: a scrape only reads the state under a lock the poller
//! holds for one window's update.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::Exporter;

/// Threads answering requests.
const WORKERS: usize = 8;
/// Connections accepted but not yet answered, at most.
const BACKLOG: usize = 32;
/// A request must arrive whole within this once a worker takes it, and
/// a response be taken within it.
const DEADLINE: Duration = Duration::from_secs(2);
/// A connection that waited this long for a worker is closed unserved.
const QUEUE_WAIT: Duration = Duration::from_secs(6);
/// A request head larger than this is refused.
const HEAD_LIMIT: usize = 16 * 1024;

/// What the server and the poller share.
#[derive(Debug, Default)]
pub struct Shared {
    pub exporter: Mutex<Exporter>,
    pub scrapes: AtomicU64,
    /// Connections closed unanswered: the backlog was full.
    pub refused: AtomicU64,
    /// Requests that were not GET /metrics or /healthz, or malformed, or
    /// too slow.
    pub rejected: AtomicU64,
}

/// Where `--listen` asked for: `:PORT` is loopback's port.
pub fn listen_address(spec: &str) -> Result<SocketAddr, String> {
    let full = if spec.starts_with(':') {
        format!("127.0.0.1{spec}")
    } else {
        spec.to_string()
    };
    full.parse().map_err(|_| {
        format!(
            "--listen {} is not ADDR:PORT or :PORT (e.g. 127.0.0.1:9977, [::1]:9977, :9977)",
            crate::filter::quoted(spec)
        )
    })
}

/// Accepted connections waiting for a worker, newest last.
#[derive(Default)]
struct Waiting {
    queue: Mutex<VecDeque<(TcpStream, Instant)>>,
    ready: Condvar,
}

/// Binds `addr` and serves on threads of their own until the process ends.
pub fn serve(addr: SocketAddr, shared: Arc<Shared>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let waiting = Arc::new(Waiting::default());
    for _ in 0..WORKERS {
        let waiting = Arc::clone(&waiting);
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || loop {
            let Some((stream, accepted)) = next_connection(&waiting) else {
                return;
            };
            if accepted.elapsed() >= QUEUE_WAIT {
                // Waited too long unserved: closed.
                shared.refused.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            answer(stream, Instant::now(), &shared);
        });
    }
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let Ok(mut queue) = waiting.queue.lock() else {
                return;
            };
            if queue.len() >= BACKLOG && queue.pop_front().is_some() {
                shared.refused.fetch_add(1, Ordering::Relaxed);
            }
            queue.push_back((stream, Instant::now()));
            waiting.ready.notify_one();
        }
    });
    Ok(bound)
}

/// The newest waiting connection (the oldest are likely idle).
fn next_connection(waiting: &Waiting) -> Option<(TcpStream, Instant)> {
    let mut queue = waiting.queue.lock().ok()?;
    loop {
        if let Some(next) = queue.pop_back() {
            return Some(next);
        }
        queue = waiting.ready.wait(queue).ok()?;
    }
}

/// The request head: method, path and whether OpenMetrics is accepted;
/// None when it did not come whole in time or does not parse.
fn read_request(stream: &mut TcpStream, started: Instant) -> Option<(String, String, bool)> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let left = DEADLINE.checked_sub(started.elapsed())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {
                let openmetrics = request.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("accept")
                        && String::from_utf8_lossy(h.value).contains("application/openmetrics-text")
                });
                return Some((
                    request.method?.to_string(),
                    request.path?.to_string(),
                    openmetrics,
                ));
            }
            Ok(httparse::Status::Partial) if head.len() < HEAD_LIMIT => continue,
            _ => return None,
        }
    }
}

fn answer(mut stream: TcpStream, taken: Instant, shared: &Shared) {
    let _ = stream.set_write_timeout(Some(DEADLINE));
    let Some((method, path, openmetrics)) = read_request(&mut stream, taken) else {
        shared.rejected.fetch_add(1, Ordering::Relaxed);
        let _ = respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            b"bad request\n",
        );
        return;
    };
    let path = path.split('?').next().unwrap_or_default();
    let (status, kind, body): (&str, &str, Vec<u8>) = match (method.as_str(), path) {
        ("GET", "/metrics") => {
            let stats = super::HttpStats {
                scrapes: shared.scrapes.fetch_add(1, Ordering::Relaxed) + 1,
                dropped: shared.refused.load(Ordering::Relaxed),
                rejected: shared.rejected.load(Ordering::Relaxed),
            };
            let text = match shared.exporter.lock() {
                Ok(exporter) => exporter.encode(openmetrics, &stats),
                Err(_) => String::new(),
            };
            let kind = if openmetrics {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            } else {
                "text/plain; version=0.0.4; charset=utf-8"
            };
            ("200 OK", kind, text.into_bytes())
        }
        ("GET", "/healthz") => ("200 OK", "text/plain", b"ok\n".to_vec()),
        ("GET", _) => {
            shared.rejected.fetch_add(1, Ordering::Relaxed);
            (
                "404 Not Found",
                "text/plain",
                b"only /metrics and /healthz\n".to_vec(),
            )
        }
        _ => {
            shared.rejected.fetch_add(1, Ordering::Relaxed);
            (
                "405 Method Not Allowed",
                "text/plain",
                b"only GET\n".to_vec(),
            )
        }
    };
    let _ = respond(&mut stream, status, kind, &body);
}

fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &[u8]) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_default_to_loopback_and_bad_ones_are_named() {
        assert_eq!(
            listen_address(":9977").unwrap(),
            "127.0.0.1:9977".parse().unwrap()
        );
        assert_eq!(
            listen_address("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        assert!(listen_address("9977").unwrap_err().contains("'9977'"));
        assert!(listen_address("localhost:x").is_err());
    }
}
