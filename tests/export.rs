//! `--listen`: the Prometheus exporter in a private namespace, scraped by
//! this test over HTTP, checked with `promtool check metrics`, and scraped
//! by a real Prometheus server (Debian's `prometheus` package) whose query
//! API must return the exact bytes of a connection the test made; its own
//! sockets left out, HTTP methods and q-values, one encoding per poll for
//! concurrent scrapes, and a file descriptor limit it must not spin on.
//! Root is needed (namespaces); without promtool or prometheus those parts
//! print SKIP.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{Netns, Pair};

/// An exporter in `ns` on 127.0.0.1:`port`, killed on drop.
struct Exporter {
    child: Child,
}

impl Exporter {
    /// Polling every 300 ms unless `extra` says --poll.
    fn start(ns: &Netns, port: u16, extra: &[&str]) -> Exporter {
        let listen = format!(":{port}");
        let mut args = vec!["--listen", listen.as_str()];
        if !extra.contains(&"--poll") {
            args.extend_from_slice(&["--poll", "300ms"]);
        }
        args.extend_from_slice(extra);
        Exporter::spawn(ns, port, ns.tcpipstat(&args))
    }

    fn spawn(ns: &Netns, port: u16, mut command: Command) -> Exporter {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let exporter = Exporter { child };
        // Up when /healthz answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(ns, port, "/healthz", "").map(|r| r.0) != Some(200) {
            assert!(Instant::now() < deadline, "the exporter did not come up");
            sleep(Duration::from_millis(100));
        }
        exporter
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP GET from inside `ns`: (status, headers + body as text).
fn get(ns: &Netns, port: u16, path: &str, accept: &str) -> Option<(u16, String)> {
    request(ns, port, "GET", path, accept)
}

/// One HTTP request from inside `ns`: (status, headers + body as text).
fn request(ns: &Netns, port: u16, method: &str, path: &str, accept: &str) -> Option<(u16, String)> {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}Connection: close\r\n\r\n",
        if accept.is_empty() {
            String::new()
        } else {
            format!("Accept: {accept}\r\n")
        }
    );
    ns.enter(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split(' ').nth(1)?.parse().ok()?;
        Some((status, response))
    })
}

/// A response header's value.
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The value of the sample line `name{labels}` in an exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn the_exporter_serves_exact_totals_that_promtool_accepts() {
    skip_unless_root!();
    let ns = Netns::new("export");
    let listener = ns.listen("127.0.0.1:0");
    let port = listener.local_addr().unwrap().port();
    let _exporter = Exporter::start(&ns, 9977, &["--index", "lport"]);
    let mut pair = Pair::open(&ns, &listener);
    pair.exchange(123_456, 789);
    drop(pair);
    sleep(Duration::from_millis(1200));
    let (status, response) = get(&ns, 9977, "/metrics", "").unwrap();
    assert_eq!(status, 200);
    assert!(
        response.contains("Content-Type: text/plain; version=0.0.4"),
        "{response}"
    );
    let text = body(&response);
    let series = format!("tcpipstat_bytes_received_total{{lport=\"{port}\"}}");
    assert_eq!(sample(text, &series), Some(123_456.0), "{text}");
    let sent = format!("tcpipstat_bytes_sent_total{{lport=\"{port}\"}}");
    assert_eq!(sample(text, &sent), Some(789.0), "{text}");
    // The server socket's smoothed RTT: polled, or at least its close
    // notice's final value; every sample in +Inf.
    let count = format!("tcpipstat_rtt_seconds_count{{lport=\"{port}\"}}");
    let samples = sample(text, &count).unwrap_or(0.0);
    assert!(samples >= 1.0, "{text}");
    let inf = format!("tcpipstat_rtt_seconds_bucket{{lport=\"{port}\",le=\"+Inf\"}}");
    assert_eq!(sample(text, &inf), Some(samples), "{text}");
    assert!(!text.contains("# EOF"));
    // Counters never go down: the connection is gone, its totals stay.
    sleep(Duration::from_millis(700));
    let (_, again) = get(&ns, 9977, "/metrics", "").unwrap();
    assert_eq!(sample(body(&again), &series), Some(123_456.0));
    assert!(sample(body(&again), "tcpipstat_scrapes_total").unwrap() >= 2.0);
    // OpenMetrics when asked for.
    let (_, open) = get(
        &ns,
        9977,
        "/metrics",
        "application/openmetrics-text; version=1.0.0",
    )
    .unwrap();
    assert!(
        open.contains("Content-Type: application/openmetrics-text"),
        "{open}"
    );
    assert!(body(&open).trim_end().ends_with("# EOF"));
    // Only GET /metrics and /healthz.
    assert_eq!(get(&ns, 9977, "/", "").unwrap().0, 404);
    if Command::new("promtool").arg("--version").output().is_err() {
        eprintln!("SKIP promtool check: no promtool (Debian's prometheus package)");
        return;
    }
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[test]
fn idle_clients_cannot_stall_polling_or_other_scrapes() {
    skip_unless_root!();
    let ns = Netns::new("export-slow");
    let _exporter = Exporter::start(&ns, 9978, &[]);
    // 100 connections that never send a request: past the workers and the
    // backlog, the rest are closed; each held one ends at its deadline.
    let idle = ns.enter(|| {
        (0..100)
            .filter_map(|_| TcpStream::connect(("127.0.0.1", 9978)).ok())
            .collect::<Vec<_>>()
    });
    let polls = |text: &str| sample(text, "tcpipstat_polls_total").unwrap_or(0.0);
    let (_, first) = get(&ns, 9978, "/metrics", "").expect("a scrape while idle clients wait");
    sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let (status, second) = get(&ns, 9978, "/metrics", "").expect("a later scrape");
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(
        polls(body(&second)) > polls(body(&first)),
        "polling went on"
    );
    drop(idle);
}

#[test]
fn a_real_prometheus_server_scrapes_the_exact_bytes_and_sees_it_up() {
    skip_unless_root!();
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: no prometheus server (Debian's prometheus package)");
        return;
    }
    let ns = Netns::new("export-prom");
    let listener = ns.listen("127.0.0.1:0");
    let port = listener.local_addr().unwrap().port();
    let _exporter = Exporter::start(&ns, 9979, &["--index", "lport"]);
    let dir = std::env::temp_dir().join(format!("tcpipstat-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: tcpipstat\n    static_configs:\n      - targets: ['127.0.0.1:9979']\n",
    )
    .unwrap();
    let mut server = ns
        .command("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:9090")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut pair = Pair::open(&ns, &listener);
    pair.exchange(54_321, 10);
    drop(pair);
    let query = |q: &str| {
        let path = format!(
            "/api/v1/query?query={}",
            q.replace('{', "%7B")
                .replace('}', "%7D")
                .replace('"', "%22")
                .replace('=', "%3D")
        );
        get(&ns, 9090, &path, "").map(|(_, r)| body(&r).to_string())
    };
    let series = format!("tcpipstat_bytes_received_total{{lport=\"{port}\"}}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    let mut ok = false;
    while Instant::now() < deadline {
        let bytes = query(&series).unwrap_or_default();
        let up = query("up{job=\"tcpipstat\"}").unwrap_or_default();
        if bytes.contains("\"54321\"") && up.contains("\"1\"") {
            ok = true;
            break;
        }
        last = format!("{bytes}\n{up}");
        sleep(Duration::from_millis(500));
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "Prometheus never had the exact bytes and up=1: {last}");
}

/// Sample lines (not comments) of an exposition that name `port` as a
/// local or remote port.
fn lines_with_port(text: &str, port: u16) -> Vec<&str> {
    let lport = format!("lport=\"{port}\"");
    let rport = format!("rport=\"{port}\"");
    text.lines()
        .filter(|l| !l.starts_with('#') && (l.contains(&lport) || l.contains(&rport)))
        .collect()
}

#[test]
fn scrapes_add_no_series_of_their_own_unless_export_self() {
    skip_unless_root!();
    for (export_self, port) in [(false, 9981u16), (true, 9982)] {
        let ns = Netns::new("export-self");
        let extra: &[&str] = if export_self { &["--export-self"] } else { &[] };
        let _exporter = Exporter::start(&ns, port, extra);
        // Other traffic still makes series.
        let listener = ns.listen("127.0.0.1:0");
        let other = listener.local_addr().unwrap().port();
        let mut pair = Pair::open(&ns, &listener);
        pair.exchange(1000, 10);
        for _ in 0..10 {
            assert_eq!(get(&ns, port, "/metrics", "").unwrap().0, 200);
        }
        sleep(Duration::from_millis(1000));
        let (_, response) = get(&ns, port, "/metrics", "").unwrap();
        let text = body(&response);
        assert!(!lines_with_port(text, other).is_empty(), "{text}");
        let own = lines_with_port(text, port);
        let listening = sample(text, "tcpipstat_sockets_by_state{state=\"LISTEN\"}");
        if export_self {
            // Each scrape's connection: the server's side and the client's.
            assert!(
                own.iter().any(|l| l.contains(&format!("lport=\"{port}\""))),
                "{text}"
            );
            assert!(
                own.iter().any(|l| l.contains(&format!("rport=\"{port}\""))),
                "{text}"
            );
            assert_eq!(listening, Some(2.0), "ours and the test's: {text}");
        } else {
            assert_eq!(own, Vec::<&str>::new(), "{text}");
            assert_eq!(listening, Some(1.0), "the test's alone: {text}");
        }
        drop(pair);
    }
}

#[test]
fn head_is_answered_like_get_without_a_body_and_405_names_the_allowed_methods() {
    skip_unless_root!();
    let ns = Netns::new("export-head");
    let _exporter = Exporter::start(&ns, 9983, &[]);
    let (status, head) = request(&ns, 9983, "HEAD", "/metrics", "").unwrap();
    assert_eq!(status, 200, "{head}");
    let length: usize = header(&head, "Content-Length").unwrap().parse().unwrap();
    assert!(length > 0, "{head}");
    assert_eq!(body(&head), "", "no body after HEAD");
    assert_eq!(
        header(&head, "Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(request(&ns, 9983, "HEAD", "/healthz", "").unwrap().0, 200);
    for method in ["POST", "DELETE", "PUT"] {
        let (status, response) = request(&ns, 9983, method, "/metrics", "").unwrap();
        assert_eq!(status, 405, "{method}: {response}");
        assert_eq!(header(&response, "Allow"), Some("GET, HEAD"), "{response}");
    }
    // A HEAD is no scrape; the GETs count.
    let (_, response) = get(&ns, 9983, "/metrics", "").unwrap();
    assert_eq!(
        sample(body(&response), "tcpipstat_scrapes_total"),
        Some(1.0)
    );
    assert_eq!(
        sample(body(&response), "tcpipstat_http_requests_rejected_total"),
        Some(3.0)
    );
}

#[test]
fn openmetrics_is_served_by_q_values_and_never_to_q0() {
    skip_unless_root!();
    let ns = Netns::new("export-accept");
    let _exporter = Exporter::start(&ns, 9984, &[]);
    let format = |accept: &str| {
        let (_, response) = get(&ns, 9984, "/metrics", accept).unwrap();
        let kind = header(&response, "Content-Type").unwrap_or_default();
        let open = kind.starts_with("application/openmetrics-text");
        assert_eq!(
            open,
            body(&response).trim_end().ends_with("# EOF"),
            "{response}"
        );
        open
    };
    assert!(!format("application/openmetrics-text;q=0"));
    assert!(!format(
        "application/openmetrics-text; version=1.0.0; q=0, */*"
    ));
    assert!(!format(
        "application/openmetrics-text;q=0.2,text/plain;version=0.0.4;q=0.8"
    ));
    assert!(format(
        "application/openmetrics-text;version=1.0.0;q=0.6,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    ));
    assert!(format("application/openmetrics-text; version=1.0.0"));
    assert!(!format(""));
}

#[test]
fn concurrent_scrapes_of_one_poll_are_sent_one_encoding() {
    skip_unless_root!();
    let ns = Netns::new("export-once");
    // No poll after the first while the test runs: one state to encode.
    let _exporter = Exporter::start(&ns, 9985, &["--poll", "10m"]);
    let start = std::sync::Barrier::new(8);
    let responses: Vec<String> = std::thread::scope(|scope| {
        let scrapes: Vec<_> = (0..8)
            .map(|_| {
                let (ns, start) = (&ns, &start);
                scope.spawn(move || {
                    start.wait();
                    get(ns, 9985, "/metrics", "").unwrap()
                })
            })
            .collect();
        scrapes
            .into_iter()
            .map(|s| {
                let (status, response) = s.join().unwrap();
                assert_eq!(status, 200);
                body(&response).to_string()
            })
            .collect()
    });
    // The same bytes but the scrape's own count.
    let without_count = |text: &str| {
        text.lines()
            .filter(|l| !l.starts_with("tcpipstat_scrapes_total"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let first = without_count(&responses[0]);
    assert!(responses.iter().all(|r| without_count(r) == first));
    let mut counts: Vec<f64> = responses
        .iter()
        .filter_map(|r| sample(r, "tcpipstat_scrapes_total"))
        .collect();
    counts.sort_by(f64::total_cmp);
    assert_eq!(counts, (1..=8).map(f64::from).collect::<Vec<_>>());
    let encoded = |text: &str| sample(text, "tcpipstat_expositions_encoded_total");
    assert_eq!(encoded(&responses[0]), Some(1.0), "{}", responses[0]);
    let (_, later) = get(&ns, 9985, "/metrics", "").unwrap();
    assert_eq!(encoded(body(&later)), Some(1.0));
    // The other format is encoded once more, on its first scrape.
    let (_, open) = get(&ns, 9985, "/metrics", "application/openmetrics-text").unwrap();
    assert_eq!(encoded(body(&open)), Some(2.0));
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn out_of_file_descriptors_the_exporter_backs_off_instead_of_spinning() {
    skip_unless_root!();
    let ns = Netns::new("export-fds");
    let mut command = ns.command("sh");
    command.args([
        "-c",
        "ulimit -n 16 && exec \"$0\" --listen :9986 --poll 300ms",
        common::BIN,
    ]);
    let exporter = Exporter::spawn(&ns, 9986, command);
    let pid = exporter.child.id();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "tcpipstat");
    // 100 connections that say nothing: far more than 16 descriptors.
    let idle = ns.enter(|| {
        (0..100)
            .filter_map(|_| TcpStream::connect(("127.0.0.1", 9986)).ok())
            .collect::<Vec<_>>()
    });
    sleep(Duration::from_millis(500));
    let hz: f64 = String::from_utf8(
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let (ticks, started) = (cpu_ticks(pid), Instant::now());
    sleep(Duration::from_secs(3));
    let busy = (cpu_ticks(pid) - ticks) as f64 / hz / started.elapsed().as_secs_f64();
    assert!(busy < 0.25, "{:.0}% of a core", busy * 100.0);
    // A scraper still gets in while the idle connections stay open: within
    // three tries (a scraper tries again; short of descriptors the
    // exporter gives a connection 250 ms to send its request, which a
    // client on a busy machine can miss).
    let started = Instant::now();
    let mut tries = 0;
    let (status, response) = (0..3)
        .find_map(|_| {
            tries += 1;
            get(&ns, 9986, "/metrics", "")
        })
        .expect("a scrape in three tries");
    eprintln!("scraped at try {tries}");
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(8));
    let backoffs = sample(body(&response), "tcpipstat_http_accept_backoffs_total");
    assert!(backoffs.unwrap_or(0.0) > 0.0, "{response}");
    drop(idle);
}

/// One GET of /metrics from inside `ns` with these extra header lines:
/// (head, body bytes).
fn get_raw(ns: &Netns, port: u16, headers: &str) -> (String, Vec<u8>) {
    let request =
        format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n");
    ns.enter(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let at = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head");
        let head = String::from_utf8_lossy(&response[..at]).into_owned();
        (head, response[at + 4..].to_vec())
    })
}

#[test]
fn a_gzip_scrape_decodes_to_the_plain_scrapes_bytes() {
    skip_unless_root!();
    let ns = Netns::new("export-gzip");
    let listener = ns.listen("127.0.0.1:0");
    // One poll for both scrapes: the same state, the same body.
    let _exporter = Exporter::start(&ns, 9987, &["--poll", "20s", "--index", "lport"]);
    let mut pair = Pair::open(&ns, &listener);
    pair.exchange(4_321, 1_234);
    let (plain_head, plain) = get_raw(&ns, 9987, "");
    let (gzip_head, gzipped) = get_raw(&ns, 9987, "Accept-Encoding: gzip, deflate\r\n");
    assert!(
        !plain_head.to_ascii_lowercase().contains("content-encoding"),
        "{plain_head}"
    );
    assert!(gzip_head.contains("Content-Encoding: gzip"), "{gzip_head}");
    let length: usize = header(&gzip_head, "Content-Length")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(length, gzipped.len());
    let mut decoded = String::new();
    flate2::read::MultiGzDecoder::new(gzipped.as_slice())
        .read_to_string(&mut decoded)
        .expect("a gzip stream");
    let plain = String::from_utf8(plain).unwrap();
    // Each scrape counts itself; every other line is the same, and the
    // poll's exposition was encoded once for both.
    let but_scrapes = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with("tcpipstat_scrapes_total"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(but_scrapes(&decoded), but_scrapes(&plain));
    assert_eq!(sample(&plain, "tcpipstat_scrapes_total"), Some(1.0));
    assert_eq!(sample(&decoded, "tcpipstat_scrapes_total"), Some(2.0));
    assert_eq!(
        sample(&decoded, "tcpipstat_expositions_encoded_total"),
        Some(1.0)
    );
    assert!(gzipped.len() < plain.len());
    // Who refuses gzip gets the text.
    let (refused, body) = get_raw(&ns, 9987, "Accept-Encoding: gzip;q=0\r\n");
    assert!(!refused.contains("Content-Encoding"), "{refused}");
    assert!(String::from_utf8(body).is_ok());
    promtool_accepts(&decoded);
}

/// `promtool check metrics` accepts `text` (SKIP without promtool).
fn promtool_accepts(text: &str) {
    if Command::new("promtool").arg("--version").output().is_err() {
        eprintln!("SKIP promtool check: no promtool (Debian's prometheus package)");
        return;
    }
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[test]
fn the_exporter_serves_udp_drops_equal_to_the_udp_mib_and_short_lived_sockets() {
    skip_unless_root!();
    use std::net::UdpSocket;
    let ns = Netns::new("exportudp");
    let _exporter = Exporter::start(&ns, 9978, &["-u", "--system", "--index", "lport"]);
    // A receiver with a tiny buffer that reads nothing, flooded.
    let (receiver, sender) = ns.enter(|| {
        let receiver = UdpSocket::bind("127.0.0.1:6200").unwrap();
        let size: libc::c_int = 2048;
        // SAFETY: setsockopt on a valid fd with a c_int of the size given.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&receiver),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        let sender = UdpSocket::bind("127.0.0.1:6201").unwrap();
        for _ in 0..2000 {
            let _ = sender.send_to(&[1u8; 200], "127.0.0.1:6200");
        }
        // 50 short-lived sockets bound to one port, one after the other.
        for _ in 0..50 {
            let s = UdpSocket::bind("127.0.0.1:6202").unwrap();
            s.send_to(b"x", "127.0.0.1:6201").unwrap();
        }
        (receiver, sender)
    });
    sleep(Duration::from_millis(1500));
    let (status, response) = get(&ns, 9978, "/metrics", "").unwrap();
    assert_eq!(status, 200);
    let text = body(&response);
    let drops = sample(text, "tcpipstat_udp_rcv_drops_total{lport=\"6200\"}");
    let mib = sample(
        text,
        "tcpipstat_udp_namespace_total{proto=\"Udp\",counter=\"RcvbufErrors\"}",
    );
    assert!(drops.is_some_and(|d| d > 0.0), "{text}");
    assert_eq!(drops, mib, "{text}");
    assert_eq!(
        sample(text, "tcpipstat_udp_sockets_closed_total{lport=\"6202\"}"),
        Some(50.0),
        "{text}"
    );
    assert_eq!(
        sample(text, "tcpipstat_udp_close_notices_lost_total"),
        Some(0.0)
    );
    assert_eq!(
        sample(text, "tcpipstat_udp_sockets{lport=\"6200\"}"),
        Some(1.0)
    );
    drop((receiver, sender));
    promtool_accepts(text);
    let (_, open) = get(
        &ns,
        9978,
        "/metrics",
        "application/openmetrics-text; version=1.0.0",
    )
    .unwrap();
    assert!(body(&open).contains("# TYPE tcpipstat_udp_rcv_drops counter"));
}
