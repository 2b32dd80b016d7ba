//! `--listen`: the Prometheus exporter in a private namespace, scraped by
//! this test over HTTP, checked with `promtool check metrics`, and scraped
//! by a real Prometheus server (Debian's `prometheus` package) whose query
//! API must return the exact bytes of a connection the test made. Root is
//! needed (namespaces); without promtool or prometheus those parts print
//! SKIP.

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
    fn start(ns: &Netns, port: u16, extra: &[&str]) -> Exporter {
        let listen = format!(":{port}");
        let mut args = vec!["--listen", listen.as_str(), "--poll", "300ms"];
        args.extend_from_slice(extra);
        let child = ns
            .tcpipstat(&args)
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
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}Connection: close\r\n\r\n",
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
