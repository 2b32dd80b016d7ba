//! The exporter's HTTP edge: `GET` (or `HEAD`) `/metrics` (the latest
//! exposition, OpenMetrics when the scraper's Accept prefers it) and
//! `/healthz`, nothing else. Hand-written over std's TcpListener with
//! httparse for the request, rather than tiny_http (the small server crate
//! at hand), which has neither timeouts nor a bound on connections: here a
//! fixed pool of threads serves one connection each at a time, every read
//! and write has a deadline, and at most [`BACKLOG`] connections wait.
//! Waiting ones are served newest first and, when the backlog is full, the
//! oldest is closed (and counted): clients that connect and say nothing
//! hold a worker for [`DEADLINE`] at most and cannot keep a scraper out.
//! Out of file descriptors, accepting pauses (growing pauses, counted)
//! instead of spinning, the oldest waiting connection that has sent
//! nothing is closed, workers take first the connections whose request
//! has come, and requests must come sooner, so that idle clients give
//! their descriptors back to scrapers.
//!
//! Polling never waits on a client: the poller swaps in its new state
//! under a lock held for no encoding, and a poll's exposition is encoded
//! once per format, by the first scrape that wants it; every other scrape
//! of that poll is sent the same bytes. Scrapers whose Accept-Encoding
//! allows gzip (Prometheus asks for it) get that body gzipped, compressed
//! once per poll too; the per-scrape tail is a second gzip member (RFC
//! 1952 streams may hold several, and gzip readers join them).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::encode::{self, Format};
use super::{Exporter, HttpStats};

/// Threads answering requests.
const WORKERS: usize = 8;
/// Connections accepted but not yet answered, at most.
const BACKLOG: usize = 32;
/// A request must arrive whole within this once a worker takes it, and
/// a response be taken within it.
const DEADLINE: Duration = Duration::from_secs(2);
/// A connection that waited this long for a worker is closed unserved.
const QUEUE_WAIT: Duration = Duration::from_secs(6);
/// While file descriptors run short (an accept failed for want of one
/// within [`SHORTAGE_LASTS`]), a request must come within this instead:
/// a scraper sends its request as it connects, an idle client holding a
/// descriptor does not.
const SHORT_DEADLINE: Duration = Duration::from_millis(250);
const SHORTAGE_LASTS: Duration = Duration::from_secs(2);
/// A request head larger than this is refused.
const HEAD_LIMIT: usize = 16 * 1024;
/// Pauses of the accepting thread when accept fails: the first, and the
/// longest they grow to. A connection the kernel holds for us waits in
/// its backlog meanwhile; it is not lost.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// Running out of file descriptors is said on stderr at most this often.
const SAY_FD_SHORTAGE_EVERY: Duration = Duration::from_secs(60);

/// What the server and the poller share.
#[derive(Debug)]
pub struct Shared {
    /// The state, replaced copy-on-write by the poller: an encoding holds
    /// the `Arc` it took, and only then does an update copy the state.
    exporter: Mutex<Arc<Exporter>>,
    /// The latest exposition per format ([`Format::OpenMetrics`] first),
    /// and the state generation it was encoded from. Held while encoding,
    /// so that scrapes arriving meanwhile wait for those same bytes.
    encoded: [Mutex<Option<Encoded>>; 2],
    pub scrapes: AtomicU64,
    /// Connections closed unanswered: the backlog was full, they waited
    /// too long, or file descriptors ran out.
    pub refused: AtomicU64,
    /// Requests that were not GET or HEAD of /metrics or /healthz, or
    /// malformed, or too slow.
    pub rejected: AtomicU64,
    /// Accepts that failed with EMFILE or ENFILE.
    pub accept_backoffs: AtomicU64,
    /// Expositions encoded (at most one per state and format).
    pub encodings: AtomicU64,
    /// When the server started, and (milliseconds after) the last accept
    /// that failed for want of a file descriptor, plus one (0: none).
    started: Instant,
    fds_short_at: AtomicU64,
}

#[derive(Debug)]
struct Encoded {
    generation: u64,
    body: Arc<String>,
    /// The body gzipped, once a scraper asked for it.
    gzip: Option<Arc<Vec<u8>>>,
}

/// gzip's fastest level: on expositions (long runs of repeated names and
/// labels) it already shrinks the text 10 to 20 times, at a fraction of
/// the CPU of the default level.
const GZIP_LEVEL: u32 = 1;

/// `bytes` as one gzip member.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use flate2::write::GzEncoder;
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(bytes.len() / 8 + 64),
        flate2::Compression::new(GZIP_LEVEL),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// A poisoned lock still guards consistent data here: every update is
/// whole before its guard drops, and nothing in them panics.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub fn new(exporter: Exporter) -> Shared {
        Shared {
            exporter: Mutex::new(Arc::new(exporter)),
            encoded: [Mutex::new(None), Mutex::new(None)],
            scrapes: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            accept_backoffs: AtomicU64::new(0),
            encodings: AtomicU64::new(0),
            started: Instant::now(),
            fds_short_at: AtomicU64::new(0),
        }
    }

    fn note_fds_short(&self) {
        let now = self.started.elapsed().as_millis() as u64 + 1;
        self.fds_short_at.store(now, Ordering::Relaxed);
    }

    /// Whether an accept failed for want of a descriptor lately.
    fn fds_short(&self) -> bool {
        let at = self.fds_short_at.load(Ordering::Relaxed);
        let now = self.started.elapsed().as_millis() as u64 + 1;
        let shortage_lasts = SHORTAGE_LASTS.as_millis() as u64;
        at > 0 && now.saturating_sub(at) < shortage_lasts
    }

    /// How long a request may take to come: short while descriptors are.
    fn request_deadline(&self) -> Duration {
        if self.fds_short() {
            SHORT_DEADLINE
        } else {
            DEADLINE
        }
    }

    /// Changes the state (the poller's window): never waits for an
    /// encoding, which goes on from the state it took.
    pub fn update(&self, change: impl FnOnce(&mut Exporter)) {
        let mut state = lock(&self.exporter);
        change(Arc::make_mut(&mut state));
    }

    /// The latest state.
    pub fn state(&self) -> Arc<Exporter> {
        Arc::clone(&lock(&self.exporter))
    }

    /// The latest state's exposition in `format` but the tail: encoded
    /// at most once per state, whatever the number of scrapes.
    pub fn body(&self, format: Format) -> Arc<String> {
        let mut encoded = lock(self.slot(format));
        self.fresh(&mut encoded, format)
    }

    /// [`Shared::body`] gzipped, compressed at most once per state.
    pub fn body_gzip(&self, format: Format) -> Arc<Vec<u8>> {
        let mut encoded = lock(self.slot(format));
        let body = self.fresh(&mut encoded, format);
        let Some(done) = encoded.as_mut() else {
            // fresh() always leaves an encoding in the slot.
            return Arc::new(gzip(body.as_bytes()));
        };
        Arc::clone(
            done.gzip
                .get_or_insert_with(|| Arc::new(gzip(body.as_bytes()))),
        )
    }

    fn slot(&self, format: Format) -> &Mutex<Option<Encoded>> {
        match format {
            Format::OpenMetrics => &self.encoded[0],
            Format::Prometheus => &self.encoded[1],
        }
    }

    /// The body of the latest state in `encoded`, encoded now if it holds
    /// an older one.
    fn fresh(&self, encoded: &mut Option<Encoded>, format: Format) -> Arc<String> {
        let state = self.state();
        if let Some(done) = encoded
            .as_ref()
            .filter(|e| e.generation == state.generation())
        {
            return Arc::clone(&done.body);
        }
        // The old body's length, with room to grow, saves the copies of a
        // large buffer growing by doubling.
        let capacity = encoded
            .as_ref()
            .map_or(0, |e| e.body.len() + e.body.len() / 8);
        let body = Arc::new(encode::body(&state, format, capacity));
        self.encodings.fetch_add(1, Ordering::Relaxed);
        *encoded = Some(Encoded {
            generation: state.generation(),
            body: Arc::clone(&body),
            gzip: None,
        });
        body
    }

    /// The HTTP edge's counts; `scrape` counts one more scrape first.
    fn http_stats(&self, scrape: bool) -> HttpStats {
        let scrapes = if scrape {
            self.scrapes.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.scrapes.load(Ordering::Relaxed)
        };
        HttpStats {
            scrapes,
            dropped: self.refused.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            accept_backoffs: self.accept_backoffs.load(Ordering::Relaxed),
            encodings: self.encodings.load(Ordering::Relaxed),
        }
    }
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

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {}", reason(.err))]
    Listen {
        addr: SocketAddr,
        err: std::io::Error,
    },
    #[error("cannot start the exporter's threads: {}", reason(.0))]
    Threads(std::io::Error),
}

/// An I/O error as the end of an error line: lower case, without std's
/// `(os error N)`, and what to do where there is something to do.
fn reason(err: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::AddrInUse => "address already in use".to_string(),
        ErrorKind::AddrNotAvailable => "no such address on this host".to_string(),
        ErrorKind::PermissionDenied => {
            "permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE)".to_string()
        }
        _ => {
            let text = err.to_string();
            let text = text.split(" (os error").next().unwrap_or_default();
            let mut chars = text.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_lowercase().chain(chars).collect()
            })
        }
    }
}

/// Accepted connections waiting for a worker, newest last.
#[derive(Default)]
struct Waiting {
    queue: Mutex<VecDeque<(TcpStream, Instant)>>,
    ready: Condvar,
}

/// Binds `addr` and serves on threads of their own until the process ends.
pub fn serve(addr: SocketAddr, shared: Arc<Shared>) -> Result<SocketAddr, ServeError> {
    let listen_error = |err| ServeError::Listen { addr, err };
    let listener = TcpListener::bind(addr).map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    let waiting = Arc::new(Waiting::default());
    for n in 0..WORKERS {
        let waiting = Arc::clone(&waiting);
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("http-{n}"))
            .spawn(move || work(&waiting, &shared))
            .map_err(ServeError::Threads)?;
    }
    std::thread::Builder::new()
        .name("http-accept".into())
        .spawn(move || accept_loop(&listener, &waiting, &shared))
        .map_err(ServeError::Threads)?;
    Ok(bound)
}

/// A worker: the newest waiting connection, answered, and the next.
fn work(waiting: &Waiting, shared: &Shared) {
    while let Some((stream, accepted)) = next_connection(waiting, shared) {
        if accepted.elapsed() >= QUEUE_WAIT {
            // Waited too long unserved: closed.
            shared.refused.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        answer(stream, Instant::now(), shared);
    }
}

/// Accepts connections into the waiting queue. A failed accept never
/// spins: out of file descriptors, the oldest waiting connection that has
/// sent nothing is closed to make room, or with none such the thread
/// pauses, longer each time until an accept succeeds.
fn accept_loop(listener: &TcpListener, waiting: &Waiting, shared: &Shared) {
    let mut pause = FIRST_PAUSE;
    let mut shortage = FdShortage::default();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                pause = FIRST_PAUSE;
                let mut queue = lock(&waiting.queue);
                if queue.len() >= BACKLOG && queue.pop_front().is_some() {
                    shared.refused.fetch_add(1, Ordering::Relaxed);
                }
                queue.push_back((stream, Instant::now()));
                waiting.ready.notify_one();
            }
            Err(err) if is_out_of_fds(&err) => {
                shared.accept_backoffs.fetch_add(1, Ordering::Relaxed);
                shared.note_fds_short();
                shortage.say(&err);
                let closed = evict_idle(&mut lock(&waiting.queue));
                if closed {
                    shared.refused.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(FIRST_PAUSE);
                } else {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
            }
            // A client that gave up before its connection was taken.
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionAborted => {}
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
        }
    }
}

fn is_out_of_fds(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Says on stderr that file descriptors ran out, at most once a minute.
#[derive(Default)]
struct FdShortage {
    said: Option<Instant>,
    since: u64,
}

impl FdShortage {
    fn say(&mut self, err: &std::io::Error) {
        self.since += 1;
        if self
            .said
            .is_some_and(|at| at.elapsed() < SAY_FD_SHORTAGE_EVERY)
        {
            return;
        }
        let which = if err.raw_os_error() == Some(libc::ENFILE) {
            "the system's (ENFILE)"
        } else {
            "the process's (EMFILE, see ulimit -n)"
        };
        let _ = writeln!(
            std::io::stderr(),
            "tcpipstat: note: the exporter ran out of file descriptors, {which}: {} connections wait in the kernel while it pauses and closes the oldest waiting ones that sent nothing (tcpipstat_http_accept_backoffs_total)",
            self.since
        );
        self.said = Some(Instant::now());
        self.since = 0;
    }
}

/// Out of descriptors: closes the oldest waiting connection whose request
/// has not begun to come (an idle client's; a scraper sends its request
/// as it connects). One whose request waits is never closed for it: the
/// workers free a descriptor soon. Whether one was closed.
fn evict_idle(queue: &mut VecDeque<(TcpStream, Instant)>) -> bool {
    match queue
        .iter()
        .position(|(stream, _)| !request_waiting(stream))
    {
        Some(idle) => queue.remove(idle).is_some(),
        None => false,
    }
}

/// The newest waiting connection whose request has begun to come, else
/// the newest (the oldest are likely idle). Looking costs a few syscalls
/// a connection, so only while descriptors are short: then idle clients
/// accepted after a scraper would keep every worker waiting out their
/// short deadline while the scraper's request sat queued.
fn next_connection(waiting: &Waiting, shared: &Shared) -> Option<(TcpStream, Instant)> {
    let mut queue = waiting.queue.lock().ok()?;
    loop {
        if shared.fds_short() {
            let ready = queue
                .iter()
                .rposition(|(stream, _)| request_waiting(stream));
            if let Some(next) = ready.and_then(|i| queue.remove(i)) {
                return Some(next);
            }
        }
        if let Some(next) = queue.pop_back() {
            return Some(next);
        }
        queue = waiting.ready.wait(queue).ok()?;
    }
}

/// Whether bytes of a request wait on a connection (peeked, not taken).
/// A connection its client closed has none.
fn request_waiting(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let waiting = matches!(stream.peek(&mut [0u8; 1]), Ok(1..));
    // Back to blocking, or the worker's timed reads would fail at once.
    if stream.set_nonblocking(false).is_err() {
        return false;
    }
    waiting
}

/// What a request asked for.
struct Request {
    method: String,
    path: String,
    format: Format,
    /// Accept-Encoding allows gzip.
    gzip: bool,
}

/// The request head; None when it did not come whole in time or does not
/// parse.
fn read_request(stream: &mut TcpStream, started: Instant, deadline: Duration) -> Option<Request> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let left = deadline.checked_sub(started.elapsed())?;
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
                let values = |name: &str| -> String {
                    let values: Vec<String> = request
                        .headers
                        .iter()
                        .filter(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).into_owned())
                        .collect();
                    values.join(",")
                };
                return Some(Request {
                    method: request.method?.to_string(),
                    path: request.path?.to_string(),
                    format: preferred_format(&values("accept")),
                    gzip: accepts_gzip(&values("accept-encoding")),
                });
            }
            Ok(httparse::Status::Partial) if head.len() < HEAD_LIMIT => continue,
            _ => return None,
        }
    }
}

/// Whether an Accept-Encoding header allows gzip: `gzip` (or `x-gzip`)
/// with a weight above 0, or else `*` with one.
pub fn accepts_gzip(accept_encoding: &str) -> bool {
    let mut gzip: Option<f32> = None;
    let mut any: Option<f32> = None;
    for coding in accept_encoding.split(',') {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| {
                let (name, value) = p.split_once('=')?;
                name.trim().eq_ignore_ascii_case("q").then_some(value)
            })
            .map_or(1.0, |v| v.trim().parse::<f32>().unwrap_or(0.0));
        let slot = match name.as_str() {
            "gzip" | "x-gzip" => &mut gzip,
            "*" => &mut any,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |had| had.max(q)));
    }
    gzip.or(any).is_some_and(|q| q > 0.0 && q.is_finite())
}

/// The format an Accept header prefers, by its q-values: OpenMetrics when
/// it is named with a weight above 0 and at least that of the text format
/// (`text/plain`, else `text/*`, else `*/*`: the most specific range
/// decides); the text format otherwise, so a wildcard gets the text.
pub fn preferred_format(accept: &str) -> Format {
    let mut openmetrics: Option<f32> = None;
    // text/plain, text/*, */*
    let mut text: [Option<f32>; 3] = [None; 3];
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim();
        // The weight is the last parameter (RFC 9110's "weight").
        let q = parts
            .rev()
            .find_map(|p| {
                let (name, value) = p.split_once('=')?;
                name.trim().eq_ignore_ascii_case("q").then_some(value)
            })
            .map_or(1.0, |v| v.trim().parse::<f32>().unwrap_or(0.0));
        let q = if q.is_finite() {
            q.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let slot = match media.to_ascii_lowercase().as_str() {
            "application/openmetrics-text" => &mut openmetrics,
            "text/plain" => &mut text[0],
            "text/*" => &mut text[1],
            "*/*" => &mut text[2],
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |had| had.max(q)));
    }
    let text = text.into_iter().flatten().next().unwrap_or(0.0);
    match openmetrics {
        Some(q) if q > 0.0 && q >= text => Format::OpenMetrics,
        _ => Format::Prometheus,
    }
}

/// A response: status line, content type, any further headers, and the
/// body in parts (sent as they are: a shared exposition is not copied).
struct Response<'a> {
    status: &'static str,
    kind: &'static str,
    headers: &'static str,
    body: Vec<&'a [u8]>,
}

impl<'a> Response<'a> {
    fn plain(status: &'static str, text: &'a str) -> Response<'a> {
        Response {
            status,
            kind: "text/plain; charset=utf-8",
            headers: "",
            body: vec![text.as_bytes()],
        }
    }
}

fn answer(mut stream: TcpStream, taken: Instant, shared: &Shared) {
    let _ = stream.set_write_timeout(Some(DEADLINE));
    let Some(request) = read_request(&mut stream, taken, shared.request_deadline()) else {
        shared.rejected.fetch_add(1, Ordering::Relaxed);
        let _ = respond(
            &mut stream,
            &Response::plain("400 Bad Request", "bad request\n"),
            true,
        );
        return;
    };
    let head_only = request.method == "HEAD";
    if request.method != "GET" && !head_only {
        shared.rejected.fetch_add(1, Ordering::Relaxed);
        let response = Response {
            headers: "Allow: GET, HEAD\r\n",
            ..Response::plain("405 Method Not Allowed", "only GET and HEAD\n")
        };
        let _ = respond(&mut stream, &response, true);
        return;
    }
    let path = request.path.split('?').next().unwrap_or_default();
    match path {
        "/metrics" if request.gzip => {
            let body = shared.body_gzip(request.format);
            let tail =
                gzip(encode::tail(&shared.http_stats(!head_only), request.format).as_bytes());
            let response = Response {
                status: "200 OK",
                kind: request.format.content_type(),
                headers: "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n",
                body: vec![body.as_slice(), tail.as_slice()],
            };
            let _ = respond(&mut stream, &response, !head_only);
        }
        "/metrics" => {
            let body = shared.body(request.format);
            let tail = encode::tail(&shared.http_stats(!head_only), request.format);
            let response = Response {
                status: "200 OK",
                kind: request.format.content_type(),
                headers: "Vary: Accept-Encoding\r\n",
                body: vec![body.as_bytes(), tail.as_bytes()],
            };
            let _ = respond(&mut stream, &response, !head_only);
        }
        "/healthz" => {
            let _ = respond(&mut stream, &Response::plain("200 OK", "ok\n"), !head_only);
        }
        _ => {
            shared.rejected.fetch_add(1, Ordering::Relaxed);
            let response = Response::plain("404 Not Found", "only /metrics and /healthz\n");
            let _ = respond(&mut stream, &response, !head_only);
        }
    }
}

/// Writes `response`; its body only with `with_body` (HEAD has the same
/// head, Content-Length included, and no body).
fn respond(
    stream: &mut TcpStream,
    response: &Response<'_>,
    with_body: bool,
) -> std::io::Result<()> {
    let length: usize = response.body.iter().map(|part| part.len()).sum();
    write!(
        stream,
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {length}\r\n{}Connection: close\r\n\r\n",
        response.status, response.kind, response.headers
    )?;
    if with_body {
        for part in &response.body {
            stream.write_all(part)?;
        }
    }
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

    #[test]
    fn accept_q_values_decide_the_format_and_q0_refuses_openmetrics() {
        let cases = [
            ("", Format::Prometheus),
            ("*/*", Format::Prometheus),
            ("application/openmetrics-text", Format::OpenMetrics),
            (
                "application/openmetrics-text; version=1.0.0",
                Format::OpenMetrics,
            ),
            ("application/openmetrics-text;q=0", Format::Prometheus),
            ("application/openmetrics-text; q=0.0, */*", Format::Prometheus),
            (
                "application/openmetrics-text;q=0.5, text/plain;q=0.9",
                Format::Prometheus,
            ),
            (
                "text/plain;q=0.2, application/openmetrics-text;q=0.5",
                Format::OpenMetrics,
            ),
            // Prometheus' own Accept.
            (
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                Format::OpenMetrics,
            ),
            // The most specific range decides: text/plain's 0.1, not */*'s 1.
            (
                "*/*, text/plain;q=0.1, application/openmetrics-text;q=0.3",
                Format::OpenMetrics,
            ),
            ("application/openmetrics-text;q=bogus", Format::Prometheus),
            ("application/openmetrics-text;q=NaN", Format::Prometheus),
        ];
        for (accept, want) in cases {
            assert_eq!(preferred_format(accept), want, "{accept}");
        }
    }

    #[test]
    fn a_state_is_encoded_once_per_format_whatever_the_number_of_scrapes() {
        let shared = Shared::new(Exporter::default());
        let first = shared.body(Format::Prometheus);
        let again = shared.body(Format::Prometheus);
        assert!(Arc::ptr_eq(&first, &again), "the same bytes, not a copy");
        let open = shared.body(Format::OpenMetrics);
        assert!(!Arc::ptr_eq(&first, &open));
        assert_eq!(shared.encodings.load(Ordering::Relaxed), 2);
        // A new poll's state is encoded anew, once.
        shared.update(|e| e.set_stats(crate::export::SelfStats::default()));
        let next = shared.body(Format::Prometheus);
        assert!(!Arc::ptr_eq(&first, &next));
        assert!(Arc::ptr_eq(&next, &shared.body(Format::Prometheus)));
        assert_eq!(shared.encodings.load(Ordering::Relaxed), 3);
    }

    /// An exporter after one window of `n` connections from clients of
    /// 10.1/16 to two local ports, each with its own byte and segment counts.
    fn busy_exporter(n: u32) -> Exporter {
        use crate::aggregate::{Group, GroupKey, Index};
        use crate::counters::{Counter, Counters};
        use crate::model::SocketKey;
        use crate::report::{Report, ReportKind};
        let groups = (0..n)
            .map(|i| {
                let remote = std::net::Ipv4Addr::from(0x0a01_0000 + i);
                let key = SocketKey::new(
                    "10.0.0.1".parse().unwrap(),
                    if i % 3 == 0 { 443 } else { 8080 },
                    remote.into(),
                    32768 + (i * 7919 % 28000) as u16,
                );
                let mut counters = Counters::default();
                let bytes = u64::from(i) * 104_729 % 9_999_991 + 1;
                counters.set(Counter::BytesReceived, bytes, false);
                counters.set(Counter::BytesSent, bytes * 3 + 17, false);
                counters.set(Counter::DataSegsIn, bytes / 1448 + 1, false);
                counters.set(Counter::DataSegsOut, bytes * 3 / 1448 + 1, false);
                counters.set(Counter::CurrEstab, 1, false);
                if i % 11 == 0 {
                    counters.set(Counter::RetransSegs, u64::from(i % 17) + 1, false);
                }
                Group {
                    counters,
                    sockets: 1,
                    ..Group::empty(GroupKey::Tuple(key))
                }
            })
            .collect();
        let report = Report::new(ReportKind::Window, Index::Tuple, (0, 1000), 1, groups);
        let mut exporter = Exporter::new(crate::export::Limits::default());
        exporter.add_window(&report, 1000);
        exporter
    }

    fn gunzip(bytes: &[u8]) -> String {
        // MultiGzDecoder: a scrape is the body's member and the tail's.
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn a_gzip_body_decodes_to_the_plain_bytes_and_is_compressed_once_per_poll() {
        let shared = Shared::new(busy_exporter(3000));
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let plain = shared.body(format);
            let gzipped = shared.body_gzip(format);
            assert_eq!(gunzip(&gzipped), *plain);
            eprintln!(
                "{format:?}: {} bytes plain, {} gzipped",
                plain.len(),
                gzipped.len()
            );
            assert!(
                Arc::ptr_eq(&gzipped, &shared.body_gzip(format)),
                "compressed once"
            );
            assert!(
                gzipped.len() * 5 <= plain.len(),
                "{format:?}: gzip {} bytes against {} plain",
                gzipped.len(),
                plain.len()
            );
        }
        assert_eq!(shared.encodings.load(Ordering::Relaxed), 2);
        // A new poll: compressed anew, from the new body.
        shared.update(|e| e.set_stats(crate::export::SelfStats::default()));
        let next = shared.body_gzip(Format::Prometheus);
        assert_eq!(gunzip(&next), *shared.body(Format::Prometheus));
        assert_eq!(shared.encodings.load(Ordering::Relaxed), 3);
        // Two members read as one text.
        let mut joined = gzip(b"a 1\n");
        joined.extend_from_slice(&gzip(b"b 2\n"));
        assert_eq!(gunzip(&joined), "a 1\nb 2\n");
    }

    #[test]
    fn accept_encoding_allows_gzip_by_name_or_wildcard_unless_q0() {
        for (header, want) in [
            ("", false),
            ("gzip", true),
            ("gzip, deflate, br", true),
            ("deflate", false),
            ("GZIP;q=0.5", true),
            ("x-gzip", true),
            ("gzip;q=0", false),
            ("*", true),
            ("*;q=0", false),
            ("gzip;q=0, *", false),
            ("identity, *;q=0.1", true),
            ("gzip;q=nonsense", false),
        ] {
            assert_eq!(accepts_gzip(header), want, "{header:?}");
        }
    }

    #[test]
    fn an_update_while_an_encoding_holds_the_state_leaves_that_state_whole() {
        let shared = Shared::new(Exporter::default());
        let held = shared.state();
        shared.update(|e| e.set_stats(crate::export::SelfStats::default()));
        assert_eq!(held.generation(), 0);
        assert_eq!(shared.state().generation(), 1);
    }

    #[test]
    fn bind_failures_say_why_in_lower_case_without_the_os_error_number() {
        let taken = ServeError::Listen {
            addr: "127.0.0.1:30999".parse().unwrap(),
            err: std::io::Error::from_raw_os_error(libc::EADDRINUSE),
        };
        assert_eq!(
            taken.to_string(),
            "cannot listen on 127.0.0.1:30999: address already in use"
        );
        let other = reason(&std::io::Error::from_raw_os_error(libc::EMFILE));
        assert!(other.starts_with("too many open files"), "{other}");
        assert!(!other.contains("os error"), "{other}");
    }

    /// Three loopback connections, oldest first: an idle client, a
    /// scraper whose request came, another idle client. Short of
    /// descriptors, the scraper is taken first though not the newest, and
    /// eviction closes the oldest idle one and never the scraper.
    #[test]
    fn short_of_descriptors_the_scraper_is_served_first_and_an_idle_client_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        let mut queue = VecDeque::new();
        for says in [false, true, false] {
            let mut client = TcpStream::connect(addr).unwrap();
            if says {
                client.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
            }
            clients.push(client);
            let (accepted, _) = listener.accept().unwrap();
            queue.push_back((accepted, Instant::now()));
        }
        let scraper_port = clients[1].local_addr().unwrap().port();
        let peer_port = |stream: &TcpStream| stream.peer_addr().unwrap().port();
        // The request may take a moment to cross loopback.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !request_waiting(&queue[1].0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!request_waiting(&queue[0].0));
        assert!(request_waiting(&queue[1].0));
        // Peeking leaves the stream blocking: a timed read waits it out.
        let mut idle = &queue[0].0;
        idle.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let started = Instant::now();
        assert!(idle.read(&mut [0u8; 1]).is_err());
        assert!(started.elapsed() >= Duration::from_millis(40));

        let shared = Shared::new(Exporter::default());
        shared.note_fds_short();
        let waiting = Waiting {
            queue: Mutex::new(queue),
            ready: Condvar::new(),
        };
        let (mut taken, _) = next_connection(&waiting, &shared).unwrap();
        assert_eq!(peer_port(&taken), scraper_port);
        let mut head = [0u8; 3];
        taken.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"GET");

        let mut queue = waiting.queue.into_inner().unwrap();
        let idle_ports: Vec<u16> = queue.iter().map(|(s, _)| peer_port(s)).collect();
        assert!(evict_idle(&mut queue));
        assert_eq!(queue.len(), 1);
        assert_eq!(peer_port(&queue[0].0), idle_ports[1]);
        // Only connections that sent a request left: none is closed.
        let mut only_scraper = VecDeque::from([(taken, Instant::now())]);
        clients[1].write_all(b"x").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(!evict_idle(&mut only_scraper));
        assert_eq!(only_scraper.len(), 1);
    }
}
