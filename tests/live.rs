//! Live tests: the built binary inside private network namespaces, against
//! loopback connections with known byte counts, checked against that ground
//! truth and against `ss -tin` and the namespace's own MIB counters. Root is
//! needed; without it each test prints SKIP and its reason.

mod common;

use std::collections::HashMap;
use std::thread::sleep;
use std::time::Duration;

use common::{counter, json_reports, run_ok, tuple_group, wait_output, Netns, Pair};

/// `ss -tin` in the namespace: (local, peer) → (segs_out, segs_in).
fn ss_segments(ns: &Netns) -> HashMap<(String, String), (u64, u64)> {
    let out = run_ok(ns.command("ss").args(["-tinH", "state", "established"]));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut result = HashMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if !line.starts_with(char::is_whitespace) && words.len() >= 4 {
            // Recv-Q Send-Q Local Peer (state omitted by the state filter)
            current = Some((words[2].to_string(), words[3].to_string()));
            continue;
        }
        let field = |name: &str| {
            words
                .iter()
                .find_map(|w| w.strip_prefix(name))
                .and_then(|v| v.parse::<u64>().ok())
        };
        if let (Some(key), Some(out), Some(inn)) =
            (current.take(), field("segs_out:"), field("segs_in:"))
        {
            result.insert(key, (out, inn));
        }
    }
    result
}

fn endpoint(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

#[test]
fn bytes_and_opens_are_exact_and_segments_match_ss() {
    skip_unless_root!();
    let ns = Netns::new("bytes");
    let listener = ns.listen("127.0.0.1:0");
    let listener6 = ns.listen("[::1]:0");
    let child = ns.spawn_tcpipstat(&["--timeout", "2500ms", "--poll", "200ms", "--format", "json"]);
    sleep(Duration::from_millis(600));
    let mut pairs = [
        Pair::open(&ns, &listener),
        Pair::open(&ns, &listener),
        Pair::open(&ns, &listener6),
    ];
    let sizes = [(1000, 0), (123_456, 777), (65_536, 1)];
    for (pair, (up, down)) in pairs.iter_mut().zip(sizes) {
        pair.exchange(up, down);
    }
    let output = wait_output(child);
    let reports = json_reports(&output.stdout);
    assert_eq!(reports.len(), 1, "one report at the timeout");
    let report = &reports[0];
    let segments = ss_segments(&ns);
    for (pair, (up, down)) in pairs.iter().zip(sizes) {
        let client = tuple_group(report, &pair.client_tuple()).expect("client tuple reported");
        let server = tuple_group(report, &pair.server_tuple()).expect("server tuple reported");
        assert_eq!(counter(client, "Socket", "BytesSent"), up as u64);
        assert_eq!(counter(client, "Socket", "BytesReceived"), down as u64);
        assert_eq!(counter(server, "Socket", "BytesSent"), down as u64);
        assert_eq!(counter(server, "Socket", "BytesReceived"), up as u64);
        assert_eq!(counter(client, "Tcp", "ActiveOpens"), 1);
        assert_eq!(counter(server, "Tcp", "PassiveOpens"), 1);
        assert_eq!(counter(client, "Tcp", "PassiveOpens"), 0);
        assert_eq!(counter(client, "Tcp", "CurrEstab"), 1);
        // Created inside the window, so its window counts are its lifetime:
        // the same numbers ss shows.
        let t = pair.client_tuple();
        let (ss_out, ss_in) = segments[&(endpoint(&t.0, t.1), endpoint(&t.2, t.3))];
        assert_eq!(
            counter(client, "Tcp", "OutSegs"),
            ss_out,
            "client OutSegs vs ss"
        );
        assert_eq!(
            counter(client, "Tcp", "InSegs"),
            ss_in,
            "client InSegs vs ss"
        );
    }
}

#[test]
fn once_matches_ss_for_every_socket() {
    skip_unless_root!();
    let ns = Netns::new("once");
    let listener = ns.listen("127.0.0.1:0");
    let mut pairs: Vec<Pair> = (0..4).map(|_| Pair::open(&ns, &listener)).collect();
    for (i, pair) in pairs.iter_mut().enumerate() {
        pair.exchange(10_000 * (i + 1), 100 * i);
    }
    sleep(Duration::from_millis(100));
    let output = run_ok(&mut ns.tcpipstat(&["--once", "--format", "json"]));
    let segments = ss_segments(&ns);
    let report = &json_reports(&output.stdout)[0];
    assert_eq!(report["type"], "snapshot");
    for (i, pair) in pairs.iter().enumerate() {
        let group = tuple_group(report, &pair.client_tuple()).unwrap();
        assert_eq!(
            counter(group, "Socket", "BytesSent"),
            10_000 * (i as u64 + 1)
        );
        assert_eq!(group["gauges"]["state"], "ESTAB");
        let t = pair.client_tuple();
        let (ss_out, ss_in) = segments[&(endpoint(&t.0, t.1), endpoint(&t.2, t.3))];
        assert_eq!(counter(group, "Tcp", "OutSegs"), ss_out);
        assert_eq!(counter(group, "Tcp", "InSegs"), ss_in);
    }
    // The listener shows its accept queue gauges.
    let listen = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gauges"]["state"] == "LISTEN")
        .expect("listener in the snapshot");
    assert!(listen["gauges"]["accept_queue_limit"].as_u64().unwrap() > 0);
}

#[test]
fn lport_and_raddr_indexes_group_sockets() {
    skip_unless_root!();
    let ns = Netns::new("index");
    let web = ns.listen("127.0.0.1:0");
    let other = ns.listen("127.0.0.2:0");
    let web_port = web.local_addr().unwrap().port();
    let lport = ns.spawn_tcpipstat(&[
        "--timeout",
        "2s",
        "--poll",
        "200ms",
        "--index",
        "lport",
        "--format",
        "json",
    ]);
    let raddr_filter = "*-127.0.0.2:*".to_string();
    let raddr = ns.spawn_tcpipstat(&[
        "--timeout",
        "2s",
        "--poll",
        "200ms",
        "index=raddr",
        "--format",
        "json",
        &raddr_filter,
    ]);
    sleep(Duration::from_millis(600));
    let mut to_web: Vec<Pair> = (0..3).map(|_| Pair::open(&ns, &web)).collect();
    let mut to_other: Vec<Pair> = (0..2).map(|_| Pair::open(&ns, &other)).collect();
    for p in to_web.iter_mut() {
        p.exchange(5000, 50);
    }
    for p in to_other.iter_mut() {
        p.exchange(7000, 70);
    }

    let by_lport = &json_reports(&wait_output(lport).stdout)[0];
    let group = by_lport["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"]["lport"] == web_port)
        .expect("group of the web port");
    assert_eq!(counter(group, "Socket", "BytesReceived"), 3 * 5000);
    assert_eq!(counter(group, "Socket", "BytesSent"), 3 * 50);
    assert_eq!(counter(group, "Tcp", "PassiveOpens"), 3);
    assert_eq!(counter(group, "Tcp", "CurrEstab"), 3);

    let by_raddr = &json_reports(&wait_output(raddr).stdout)[0];
    let groups = by_raddr["groups"].as_array().unwrap();
    assert_eq!(
        groups.len(),
        1,
        "only the peer 127.0.0.2 passes the filter: {groups:?}"
    );
    assert_eq!(groups[0]["key"]["raddr"], "127.0.0.2");
    assert_eq!(counter(&groups[0], "Socket", "BytesSent"), 2 * 7000);
    assert_eq!(counter(&groups[0], "Tcp", "ActiveOpens"), 2);
}

#[test]
fn filters_that_match_nothing_report_nothing() {
    skip_unless_root!();
    let ns = Netns::new("nomatch");
    let listener = ns.listen("127.0.0.1:0");
    let mut pair = Pair::open(&ns, &listener);
    pair.exchange(100, 100);
    let out = run_ok(&mut ns.tcpipstat(&["--once", "--format", "json", "*.*.*.*:1-*.*.*.*:*"]));
    let report = &json_reports(&out.stdout)[0];
    assert_eq!(report["groups"].as_array().unwrap().len(), 0);
    let out = run_ok(&mut ns.tcpipstat(&["--once", "*.*.*.*:1-*.*.*.*:*"]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("No sockets were accepted by the filters.")
    );
    // And one that matches exactly the listener's port (both address forms).
    let port = listener.local_addr().unwrap().port();
    let f = format!("127.0.0.0/8:{port}-*");
    let out = run_ok(&mut ns.tcpipstat(&["--once", "--format", "json", &f]));
    let report = &json_reports(&out.stdout)[0];
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "listener and accepted socket: {groups:?}");
    assert!(groups.iter().all(|g| g["key"]["lport"] == port));
}

#[test]
fn onclose_reports_socket_once_with_lifetime_bytes() {
    skip_unless_root!();
    let ns = Netns::new("onclose");
    let listener = ns.listen("127.0.0.1:0");
    let child = ns.spawn_tcpipstat(&[
        "--onclose",
        "--timeout",
        "2500ms",
        "--poll",
        "100ms",
        "--format",
        "json",
    ]);
    sleep(Duration::from_millis(400));
    let mut closing = Pair::open(&ns, &listener);
    let mut staying = Pair::open(&ns, &listener);
    closing.exchange(4321, 1234);
    staying.exchange(10, 10);
    let client_tuple = closing.client_tuple();
    sleep(Duration::from_millis(500));
    drop(closing);
    let output = wait_output(child);
    let reports = json_reports(&output.stdout);
    let closes: Vec<_> = reports
        .iter()
        .filter(|r| tuple_group(r, &client_tuple).is_some())
        .collect();
    assert_eq!(closes.len(), 1, "reported exactly once: {reports:?}");
    assert_eq!(closes[0]["type"], "close");
    let group = tuple_group(closes[0], &client_tuple).unwrap();
    assert_eq!(counter(group, "Socket", "BytesSent"), 4321);
    assert_eq!(counter(group, "Socket", "BytesReceived"), 1234);
    // The open socket was not reported.
    assert!(reports
        .iter()
        .all(|r| tuple_group(r, &staying.client_tuple()).is_none()));
}

#[test]
fn system_residual_is_zero_for_out_segments_when_nothing_closes() {
    skip_unless_root!();
    let ns = Netns::new("system");
    let listener = ns.listen("127.0.0.1:0");
    let mut pairs: Vec<Pair> = (0..3).map(|_| Pair::open(&ns, &listener)).collect();
    let child = ns.spawn_tcpipstat(&[
        "--system",
        "--timeout",
        "2s",
        "--poll",
        "200ms",
        "--format",
        "json",
    ]);
    sleep(Duration::from_millis(600));
    for (i, p) in pairs.iter_mut().enumerate() {
        p.exchange(30_000 * (i + 1), 2000);
    }
    let report = &json_reports(&wait_output(child).stdout)[0];
    let out_segs = &report["system"]["unattributed"]["OutSegs"];
    assert!(out_segs["system"].as_i64().unwrap() > 0, "{report}");
    assert_eq!(out_segs["unattributed"], 0, "{out_segs}");
    assert_eq!(
        report["system"]["unattributed"]["RetransSegs"]["unattributed"],
        0
    );
    let sent: u64 = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| counter(g, "Socket", "BytesSent"))
        .sum();
    assert_eq!(sent, 3 * 2000 + 30_000 + 60_000 + 90_000);
}

#[test]
fn interval_mode_prints_count_reports() {
    skip_unless_root!();
    let ns = Netns::new("interval");
    let out =
        run_ok(&mut ns.tcpipstat(&["--interval", "300ms", "--count", "3", "--format", "json"]));
    let reports = json_reports(&out.stdout);
    assert_eq!(reports.len(), 3);
    assert!(reports.iter().all(|r| r["type"] == "window"));
}

#[test]
fn sigint_ends_the_run_with_a_report() {
    skip_unless_root!();
    let ns = Netns::new("sigint");
    let child = ns.spawn_tcpipstat(&["--format", "json"]);
    sleep(Duration::from_millis(700));
    // `ip netns exec` runs tcpipstat as its child: signal the whole group.
    let tcpipstat_pid =
        std::fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|p| p.parse::<i32>().ok())
            })
            .unwrap_or(child.id() as i32);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(tcpipstat_pid),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let output = wait_output(child);
    assert_eq!(json_reports(&output.stdout).len(), 1);
}

#[test]
fn proc_fallback_still_counts_opens_and_says_what_is_missing() {
    skip_unless_root!();
    let ns = Netns::new("procfs");
    let listener = ns.listen("127.0.0.1:0");
    let child = ns.spawn_tcpipstat(&[
        "--source",
        "proc",
        "--timeout",
        "2s",
        "--poll",
        "200ms",
        "--format",
        "json",
    ]);
    sleep(Duration::from_millis(600));
    let mut pair = Pair::open(&ns, &listener);
    pair.exchange(1000, 1000);
    let output = wait_output(child);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bytes, segments, retransmits"), "{stderr}");
    let report = &json_reports(&output.stdout)[0];
    let client = tuple_group(report, &pair.client_tuple()).expect("client tuple");
    let server = tuple_group(report, &pair.server_tuple()).expect("server tuple");
    assert_eq!(counter(client, "Tcp", "ActiveOpens"), 1);
    assert_eq!(counter(server, "Tcp", "PassiveOpens"), 1);
    assert!(
        client["counters"].get("Socket").is_none(),
        "no byte counters from /proc: {client}"
    );
    assert!(report["notices"][0]
        .as_str()
        .unwrap()
        .contains("/proc/net/tcp"));
}

#[test]
fn unprivileged_user_sees_every_socket_with_counters() {
    skip_unless_root!();
    let ns = Netns::new("nobody");
    let listener = ns.listen("127.0.0.1:0");
    let mut pair = Pair::open(&ns, &listener);
    pair.exchange(2222, 0);
    let out = run_ok(ns.command("setpriv").args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        common::BIN,
        "--once",
        "--format",
        "json",
    ]));
    let report = &json_reports(&out.stdout)[0];
    let client =
        tuple_group(report, &pair.client_tuple()).expect("root's socket visible to nobody");
    assert_eq!(counter(client, "Socket", "BytesSent"), 2222);
    assert!(String::from_utf8_lossy(&out.stderr).is_empty());
}

#[test]
fn listen_drops_of_a_full_accept_queue_match_the_namespace_counter() {
    skip_unless_root!();
    let ns = Netns::new("drops");
    // A backlog of 1 that nobody accepts from: further SYNs are dropped.
    let (listener, pending) = full_listener(&ns, 6);
    let port = listener.local_addr().unwrap().port();
    sleep(Duration::from_millis(300));
    let out = run_ok(&mut ns.tcpipstat(&["--once", "--format", "json", &format!("*:{port}-*")]));
    let report = &json_reports(&out.stdout)[0];
    let listen = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gauges"]["state"] == "LISTEN")
        .expect("listener");
    let ours = counter(listen, "TcpExt", "ListenDrops");
    assert!(ours > 0, "the full queue dropped SYNs: {listen}");
    assert_eq!(ours as i64, namespace_mib(&ns, "TcpExt:ListenDrops"));
    drop(pending);
}

/// A listener with a backlog of 1 that never accepts, and `clients`
/// non-blocking connects to it (kept open: they retry their SYNs).
fn full_listener(ns: &Netns, clients: usize) -> (std::net::TcpListener, Vec<std::os::fd::OwnedFd>) {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let listener = ns.enter(|| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = std::os::fd::AsFd::as_fd(&l);
        nix::sys::socket::listen(&fd, nix::sys::socket::Backlog::new(1).unwrap()).unwrap();
        l
    });
    let port = listener.local_addr().unwrap().port();
    let pending = ns.enter(move || {
        (0..clients)
            .map(|_| {
                let fd = socket(
                    AddressFamily::Inet,
                    SockType::Stream,
                    SockFlag::SOCK_NONBLOCK,
                    None,
                )
                .unwrap();
                let _ = connect(
                    std::os::fd::AsRawFd::as_raw_fd(&fd),
                    &SockaddrIn::new(127, 0, 0, 1, port),
                );
                fd
            })
            .collect::<Vec<_>>()
    });
    (listener, pending)
}

fn namespace_mib(ns: &Netns, name: &str) -> i64 {
    let netstat =
        String::from_utf8(run_ok(ns.command("cat").arg("/proc/net/netstat")).stdout).unwrap();
    let mut mib = tcpipstat::source::procfs::SystemCounters::default();
    mib.add_header_value_pairs(&netstat);
    mib.get(name).expect("the namespace counter")
}

#[test]
fn listen_overflows_of_two_full_listeners_match_the_namespace_counter() {
    skip_unless_root!();
    let ns = Netns::new("overflows");
    let before = namespace_mib(&ns, "TcpExt:ListenOverflows");
    let tool = ns.spawn_tcpipstat(&["--timeout", "5s", "--format", "json"]);
    // Past the tool's baseline poll, even on a loaded machine.
    sleep(Duration::from_millis(1500));
    let (busy, busy_clients) = full_listener(&ns, 20);
    let (quiet, quiet_clients) = full_listener(&ns, 5);
    sleep(Duration::from_millis(1500));
    // Closed SYN_SENT sockets retry no more: the namespace's count is final
    // before the tool's last poll.
    drop((busy_clients, quiet_clients));
    let out = wait_output(tool);
    let overflows = namespace_mib(&ns, "TcpExt:ListenOverflows") - before;
    let report = &json_reports(&out.stdout)[0];
    let of = |listener: &std::net::TcpListener| {
        let port = listener.local_addr().unwrap().port();
        let group = tuple_group(report, &("127.0.0.1".into(), port, "0.0.0.0".into(), 0))
            .unwrap_or_else(|| panic!("listener :{port} in {report}"));
        (
            counter(group, "TcpExt", "ListenOverflows"),
            counter(group, "TcpExt", "ListenDrops"),
            group["approx"]
                .as_array()
                .unwrap()
                .contains(&"ListenOverflows".into()),
        )
    };
    let (busy_overflows, busy_drops, busy_approx) = of(&busy);
    let (quiet_overflows, _, quiet_approx) = of(&quiet);
    assert!(overflows > 0, "the full queues overflowed: {report}");
    assert!(busy_overflows > 0 && quiet_overflows > 0, "{report}");
    assert_eq!(
        busy_overflows as i64 + quiet_overflows as i64,
        overflows,
        "{report}"
    );
    assert!(busy_overflows <= busy_drops);
    // Every drop of a SYN on a full queue is an overflow: exact, not shared.
    assert!(!busy_approx && !quiet_approx, "{report}");
}

#[test]
fn a_too_small_receive_buffer_grows_and_the_dump_is_redone_complete() {
    skip_unless_root!();
    use tcpipstat::source::sockdiag::{DumpRequest, ParseStats, SockDiag, ALL_STATES, EXT_INFO};
    let ns = Netns::new("truncate");
    let listener = ns.listen("127.0.0.1:0");
    let _pairs: Vec<Pair> = (0..20).map(|_| Pair::open(&ns, &listener)).collect();
    let (count, stats) = ns.enter(|| {
        let mut diag = SockDiag::with_buffer(512).unwrap();
        let request = DumpRequest {
            family: libc::AF_INET as u8,
            states: ALL_STATES,
            extensions: EXT_INFO,
            bytecode: None,
        };
        let (mut out, mut stats) = (Vec::new(), ParseStats::default());
        diag.dump(&request, &mut out, &mut stats).unwrap();
        (out.len(), stats)
    });
    assert_eq!(count, 41, "listener + 20 pairs");
    assert!(stats.retries >= 1, "{stats:?}");
    assert_eq!(stats.inconsistent, 0);
}

#[test]
fn output_closed_mid_snapshot_ends_quietly() {
    skip_unless_root!();
    use std::io::{BufRead, BufReader};
    let ns = Netns::new("pipe");
    let listener = ns.listen("127.0.0.1:0");
    let _pairs: Vec<Pair> = (0..300).map(|_| Pair::open(&ns, &listener)).collect();
    for format in ["text", "json"] {
        // Like `tcpipstat --once | head -3`.
        let mut child = ns.spawn_tcpipstat(&["--once", "--format", format, "--zeros"]);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let _ = lines.next();
        drop(lines);
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{format}: {:?} {stderr}",
            output.status
        );
        assert!(stderr.is_empty(), "{format}: {stderr}");
    }
}

#[test]
fn filtered_run_still_sees_the_loopback_peer_close_in_order() {
    skip_unless_root!();
    let ns = Netns::new("mirror");
    let listener = ns.listen("127.0.0.1:0");
    let port = listener.local_addr().unwrap().port();
    // Only the client side passes the filter; the server closes first, so
    // its TIME_WAIT (on the reversed tuple) marks the client's close as
    // orderly, not a reset.
    let filter = format!("*-127.0.0.1:{port}");
    let child = ns.spawn_tcpipstat(&[
        "--timeout",
        "2500ms",
        "--poll",
        "200ms",
        "--format",
        "json",
        &filter,
    ]);
    sleep(Duration::from_millis(500));
    let mut pair = Pair::open(&ns, &listener);
    pair.exchange(10, 10);
    let client_tuple = pair.client_tuple();
    let Pair { client, server } = pair;
    drop(server);
    sleep(Duration::from_millis(600));
    drop(client);
    let report = &json_reports(&wait_output(child).stdout)[0];
    let client = tuple_group(report, &client_tuple).expect("client reported");
    assert_eq!(counter(client, "Tcp", "EstabResets"), 0, "{client}");
    assert_eq!(counter(client, "Tcp", "ActiveOpens"), 1);
    assert!(
        report["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["key"]["rport"] == port),
        "only the filter's sockets are reported"
    );
}

#[test]
fn every_json_report_of_an_interval_run_carries_its_wall_clock_window() {
    skip_unless_root!();
    let ns = Netns::new("clock");
    let before = std::time::SystemTime::now();
    let out = run_ok(&mut ns.tcpipstat(&["--interval", "1s", "--count", "2", "--format", "json"]));
    let after = std::time::SystemTime::now();
    let reports = json_reports(&out.stdout);
    assert_eq!(reports.len(), 2, "{reports:?}");
    let mut previous_end = before - Duration::from_secs(1);
    for report in &reports {
        let at = |field: &str| {
            humantime::parse_rfc3339(
                report[field]
                    .as_str()
                    .unwrap_or_else(|| panic!("{field} in {report}")),
            )
            .unwrap()
        };
        let (start, end) = (at("start_time"), at("end_time"));
        assert!(start >= previous_end - Duration::from_millis(5), "{report}");
        assert!(
            end > start && end <= after + Duration::from_millis(5),
            "{report}"
        );
        let seconds = end.duration_since(start).unwrap().as_secs_f64();
        assert!((0.9..1.5).contains(&seconds), "a 1 s window: {seconds} s");
        previous_end = end;
    }
    // Piped output carries no terminal escape codes.
    assert!(!out.stdout.contains(&0x1b));
}

/// Polls between reports ask the kernel for no socket memory or congestion
/// control; the poll before each report does, so every report by tuple
/// shows them, and the counts are the same as with every poll full.
#[test]
fn reports_by_tuple_show_memory_and_congestion_after_lean_polls() {
    skip_unless_root!();
    let ns = Netns::new("lean");
    let listener = ns.listen("127.0.0.1:0");
    let mut pair = Pair::open(&ns, &listener);
    let client_tuple = pair.client_tuple();
    let child = ns.spawn_tcpipstat(&[
        "--interval",
        "1s",
        "--count",
        "2",
        "--poll",
        "200ms",
        "--format",
        "json",
    ]);
    // Traffic in both windows, between polls.
    let mut sent = 0;
    for _ in 0..12 {
        sleep(Duration::from_millis(150));
        pair.exchange(1000, 0);
        sent += 1000;
    }
    let out = wait_output(child);
    let reports = json_reports(&out.stdout);
    assert_eq!(reports.len(), 2, "{reports:?}");
    let mut counted = 0;
    for report in &reports {
        let group = tuple_group(report, &client_tuple)
            .unwrap_or_else(|| panic!("no group for {client_tuple:?} in {report}"));
        let gauges = &group["gauges"];
        assert!(
            gauges["congestion"].as_str().is_some_and(|c| !c.is_empty()),
            "{gauges}"
        );
        assert!(gauges["rmem_alloc"].is_u64(), "{gauges}");
        assert!(gauges["wmem_alloc"].is_u64(), "{gauges}");
        assert!(gauges["rtt_us"].is_u64(), "{gauges}");
        counted += counter(group, "Socket", "BytesSent");
    }
    // Sends after the last poll of the second window fall outside it.
    assert!(
        counted <= sent && counted + 2000 >= sent,
        "{counted} of {sent}"
    );
}

/// A refused connect, an abort that threw away unsent data and an orderly
/// close: their reports show no raw leftover of a dead socket (state,
/// queues, unsent bytes, a min_rtt of u32::MAX), and --onclose says where
/// each socket's counters come from.
#[test]
fn closed_sockets_show_no_raw_gauges_and_onclose_says_where_counters_come_from() {
    skip_unless_root!();
    let ns = Netns::new("ends");
    for onclose in [false, true] {
        let listener = ns.listen("127.0.0.1:0");
        let refusing = ns.listen("127.0.0.1:0").local_addr().unwrap();
        let mut args = vec!["--timeout", "2500ms", "--poll", "200ms", "--format", "json"];
        if onclose {
            args.push("--onclose");
        }
        let child = ns.spawn_tcpipstat(&args);
        sleep(Duration::from_millis(500));
        // Refused: nothing listens there any more.
        assert!(ns.enter(move || std::net::TcpStream::connect(refusing).is_err()));
        // Aborted with its send buffer full, its peer reading nothing.
        let full = Pair::open(&ns, &listener);
        full.client.set_nonblocking(true).unwrap();
        let chunk = vec![7u8; 65536];
        while std::io::Write::write(&mut &full.client, &chunk).is_ok() {}
        let mut orderly = Pair::open(&ns, &listener);
        orderly.exchange(3000, 2000);
        let orderly_client = orderly.client_tuple();
        sleep(Duration::from_millis(500));
        let linger = nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        nix::sys::socket::setsockopt(&full.client, nix::sys::socket::sockopt::Linger, &linger)
            .unwrap();
        drop(full);
        drop(orderly);
        let out = wait_output(child);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("4294967295"), "{text}");
        let reports = json_reports(&out.stdout);
        let groups: Vec<&serde_json::Value> = reports
            .iter()
            .flat_map(|r| r["groups"].as_array().unwrap())
            .collect();
        let closed: Vec<&&serde_json::Value> = groups
            .iter()
            .filter(|g| g["gauges_closed"] == true)
            .collect();
        assert!(
            closed.len() >= 4,
            "both ends of two, and the refused: {text}"
        );
        for group in &closed {
            for raw in ["state", "recv_q", "send_q", "notsent_bytes", "unacked"] {
                assert!(group["gauges"].get(raw).is_none(), "{raw}: {group}");
            }
        }
        // (The abort, its notice cleared, may count a failed attempt too.)
        let refused = closed
            .iter()
            .find(|g| {
                counter(g, "Tcp", "AttemptFails") > 0 && counter(g, "Socket", "BytesSent") == 0
            })
            .unwrap_or_else(|| panic!("no failed connect in {text}"));
        assert_eq!(refused["gauges"], serde_json::json!({}), "{refused}");
        if onclose {
            let close_of = |tuple| {
                reports
                    .iter()
                    .find(|r| tuple_group(r, tuple).is_some())
                    .unwrap_or_else(|| panic!("no close of {tuple:?}: {text}"))
            };
            assert_eq!(close_of(&orderly_client)["counters_from"], "close notice");
            for report in &reports {
                let from = report["counters_from"].as_str().unwrap_or_default();
                assert!(
                    [
                        "close notice",
                        "close notice (never polled)",
                        "close notice, cleared by an abort (never polled)",
                        "last poll (close notice cleared by an abort)",
                    ]
                    .contains(&from),
                    "{from}: {report}"
                );
            }
        }
    }
}
