//! Precision mode on this machine's kernel (tracepoints through perf ring
//! buffers): real connections in private namespaces that open and close
//! inside one poll period, resets with SO_LINGER 0, checked exactly against
//! what the test did and against the namespace's own MIB counters. Root is
//! needed (namespaces, perf tracepoints); without it each test prints SKIP.

mod common;

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use common::{counter, json_reports, total, tuple_group, wait_output, window_report, Netns, Pair};

/// Why precision tests cannot run here, beyond root.
/// Precision runs see the whole host's kernel events: two tests' runs at
/// once would see each other's traffic (a sender waiting for its name in
/// one shows as `unidentified` in the other, and their sockets' events
/// meet in both). Each test holds this for its whole length; the test of
/// two namespaces at once makes its concurrency itself.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Skips with the reason when precision mode cannot run here; else holds
/// [`ONE_AT_A_TIME`] until the test ends.
macro_rules! skip_unless_precision {
    () => {
        if let Some(reason) = common::precision_skip_reason() {
            eprintln!("SKIP {}: {reason}", module_path!());
            return;
        }
        let _one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    };
}

/// Opens and closes `n` connections to `listener` as fast as it can: the
/// client closes first (so its end sits in TIME_WAIT, as most clients'
/// do), the server end reads the EOF and closes.
fn churn(ns: &Netns, listener: &TcpListener, n: usize) {
    let addr = listener.local_addr().unwrap();
    let listener = listener.try_clone().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::Read;
        for _ in 0..n {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            while s.read(&mut buf).unwrap() > 0 {}
        }
    });
    ns.enter(move || {
        use std::io::Write;
        for _ in 0..n {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"ping").unwrap();
        }
    });
    server.join().unwrap();
}

/// The filters that match both ends of connections to `port`.
fn both_ends(port: u16) -> [String; 2] {
    [format!("127.0.0.1:{port}-*"), format!("*-127.0.0.1:{port}")]
}

fn run_churn(precision: &[&str], n: usize) -> (serde_json::Value, String) {
    let ns = Netns::new("churn");
    let listener = ns.listen("127.0.0.1:0");
    let port = listener.local_addr().unwrap().port();
    let filters = both_ends(port);
    // One poll at the start, the next after the churn is over: every
    // connection lives and dies inside one poll period.
    let mut args = vec![
        "--timeout",
        "4s",
        "--poll",
        "3800ms",
        "--format",
        "json",
        "--system",
    ];
    args.extend_from_slice(precision);
    args.extend(filters.iter().map(String::as_str));
    let child = ns.spawn_tcpipstat(&args);
    sleep(Duration::from_millis(1200));
    churn(&ns, &listener, n);
    let out = wait_output(child);
    (
        window_report(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn unattributed(report: &serde_json::Value, name: &str) -> i64 {
    report["system"]["unattributed"][name]["unattributed"]
        .as_i64()
        .unwrap_or_else(|| panic!("no residual for {name}: {}", report["system"]))
}

#[test]
fn connections_inside_one_poll_are_counted_exactly_with_precision() {
    skip_unless_precision!();
    let (report, stderr) = run_churn(&["--precision", "tracepoint"], 200);
    assert_eq!(total(&report, "Tcp", "ActiveOpens"), 200, "{stderr}");
    assert_eq!(total(&report, "Tcp", "PassiveOpens"), 200, "{stderr}");
    assert_eq!(total(&report, "Tcp", "EstabResets"), 0);
    assert_eq!(total(&report, "Tcp", "AttemptFails"), 0);
    assert_eq!(report["precision"]["events_lost"], 0);
    assert_eq!(report["precision"]["probes"], "tracepoint");
    assert_eq!(
        report["precision"]["sources"]["ActiveOpens"],
        "tracepoint sock:inet_sock_set_state"
    );
    // The namespace's own MIB agrees: nothing left unattributed.
    assert_eq!(
        unattributed(&report, "ActiveOpens"),
        0,
        "{}",
        report["system"]
    );
    assert_eq!(unattributed(&report, "PassiveOpens"), 0);
    // Each socket that lived and died unseen by polls has its history.
    let groups = report["groups"].as_array().unwrap();
    let server_end = groups
        .iter()
        .find(|g| g["key"]["lport"] == report_port(&report) && g["states"].is_array())
        .expect("a server end with a state history");
    let states: Vec<&str> = server_end["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(states.first(), Some(&"LISTEN"), "{states:?}");
    assert_eq!(states.last(), Some(&"CLOSE"), "{states:?}");
    assert!(states.contains(&"ESTAB"), "{states:?}");
}

/// The listener's port: the local port most groups share.
fn report_port(report: &serde_json::Value) -> serde_json::Value {
    let mut counts = std::collections::HashMap::new();
    for g in report["groups"].as_array().unwrap() {
        *counts
            .entry(g["key"]["lport"].as_u64().unwrap())
            .or_insert(0) += 1;
    }
    let (port, _) = counts.into_iter().max_by_key(|(_, n)| *n).unwrap();
    serde_json::Value::from(port)
}

#[test]
fn polling_alone_counts_every_connection_from_close_notices() {
    skip_unless_precision!();
    let (report, _) = run_churn(&[], 200);
    // Connections that lived and died between two polls: their close
    // notices count them, without kernel events.
    assert_eq!(total(&report, "Tcp", "PassiveOpens"), 200, "{report}");
    assert_eq!(unattributed(&report, "PassiveOpens"), 0);
    assert_eq!(unattributed(&report, "EstabResets"), 0);
    assert!(report.get("precision").is_none());
}

/// Closes with SO_LINGER 0: the kernel sends a reset instead of a FIN.
fn abort(stream: TcpStream) {
    use nix::sys::socket::{setsockopt, sockopt::Linger};
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    setsockopt(&stream.as_fd(), Linger, &linger).unwrap();
    drop(stream);
}

#[test]
fn resets_are_counted_exactly_on_both_ends() {
    skip_unless_precision!();
    let ns = Netns::new("rst");
    let listener = ns.listen("127.0.0.1:0");
    let port = listener.local_addr().unwrap().port();
    let filters = both_ends(port);
    let mut args = vec![
        "--timeout",
        "4s",
        "--poll",
        "3800ms",
        "--format",
        "json",
        "--precision",
        "--system",
    ];
    args.extend(filters.iter().map(String::as_str));
    let child = ns.spawn_tcpipstat(&args);
    sleep(Duration::from_millis(1200));
    let mut tuples = Vec::new();
    for _ in 0..3 {
        let mut pair = Pair::open(&ns, &listener);
        pair.exchange(1000, 10);
        tuples.push((pair.client_tuple(), pair.server_tuple()));
        let Pair { client, server } = pair;
        abort(client);
        // The server end learns of the reset when it next reads.
        sleep(Duration::from_millis(20));
        drop(server);
    }
    let out = wait_output(child);
    let report = window_report(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (client, server) in &tuples {
        let c = tuple_group(&report, client).unwrap_or_else(|| panic!("{client:?}: {stderr}"));
        let s = tuple_group(&report, server).unwrap_or_else(|| panic!("{server:?}: {stderr}"));
        assert_eq!(counter(c, "Tcp", "OutRsts"), 1, "{c}");
        assert_eq!(counter(c, "Tcp", "InRsts"), 0, "{c}");
        assert_eq!(counter(s, "Tcp", "InRsts"), 1, "{s}");
        assert_eq!(counter(s, "Tcp", "OutRsts"), 0, "{s}");
        assert_eq!(counter(c, "Tcp", "EstabResets"), 1, "{c}");
        assert_eq!(counter(s, "Tcp", "EstabResets"), 1, "{s}");
    }
    assert_eq!(total(&report, "Tcp", "OutRsts"), 3);
    assert_eq!(unattributed(&report, "OutRsts"), 0);
    assert_eq!(unattributed(&report, "EstabResets"), 0);
}

#[test]
fn text_reports_say_which_source_filled_what_and_how_many_events_were_lost() {
    skip_unless_precision!();
    let ns = Netns::new("text");
    let listener = ns.listen("127.0.0.1:0");
    let child = ns.spawn_tcpipstat(&["--timeout", "2500ms", "--poll", "500ms", "--precision"]);
    // Past the start (tracefs, BTF, the rings) and the baseline poll.
    sleep(Duration::from_millis(1000));
    churn(&ns, &listener, 5);
    let out = wait_output(child);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("precision: tracepoint"), "{text}");
    assert!(text.contains("events lost: 0"), "{text}");
    assert!(
        text.contains("ActiveOpens, PassiveOpens, AttemptFails, EstabResets: tracepoint sock:inet_sock_set_state"),
        "{text}"
    );
    assert!(text.contains("states: SYN-SENT>ESTAB>"), "{text}");
}

#[test]
fn onclose_text_says_its_sources_once_not_before_every_close() {
    skip_unless_precision!();
    let ns = Netns::new("onclose-sources");
    let listener = ns.listen("127.0.0.1:0");
    let child = ns.spawn_tcpipstat(&["--onclose", "--precision", "--timeout", "2500ms"]);
    sleep(Duration::from_millis(1000));
    churn(&ns, &listener, 3);
    let out = wait_output(child);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("counters from:").count(), 1, "{text}");
    assert!(text.starts_with("precision: tracepoint"), "{text}");
    assert_eq!(
        text.matches("\nstates: ").count(),
        6,
        "three connections, both ends: {text}"
    );
    assert!(!text.contains("events lost"), "{text}");
}

#[test]
fn unprivileged_auto_falls_back_and_explicit_mode_exits_2() {
    skip_unless_precision!();
    let ns = Netns::new("unpriv");
    let as_nobody = |args: &[&str]| {
        let mut cmd = ns.command("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            common::BIN,
        ]);
        cmd.args(args);
        cmd.output().unwrap()
    };
    let out = as_nobody(&["--timeout", "300ms", "--precision"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("precision mode unavailable ("), "{stderr}");
    assert!(stderr.contains("running as plain polling"), "{stderr}");
    assert_eq!(stderr.matches("precision mode unavailable").count(), 1);
    let out = as_nobody(&["--timeout", "300ms", "--precision", "tracepoint"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--precision tracepoint: "), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn kprobe_mode_without_kprobes_exits_2_naming_what_is_missing() {
    skip_unless_precision!();
    if Path::new("/sys/kernel/tracing/kprobe_events").exists() {
        eprintln!("SKIP: this kernel has kprobes (the kernel matrix covers them)");
        return;
    }
    let ns = Netns::new("nokprobe");
    let out = ns
        .tcpipstat(&["--timeout", "300ms", "--precision", "kprobe"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("kprobe"), "{stderr}");
}

#[test]
fn a_socket_polled_across_the_window_keeps_its_polled_counts_and_gains_its_messages() {
    skip_unless_precision!();
    use std::io::{Read, Write};
    let ns = Netns::new("msgs");
    let listener = ns.listen("127.0.0.1:0");
    let pair = Pair::open(&ns, &listener);
    let (client_tuple, server_tuple) = (pair.client_tuple(), pair.server_tuple());
    let child = ns.spawn_tcpipstat(&[
        "--timeout",
        "3s",
        "--poll",
        "500ms",
        "--format",
        "json",
        "--precision",
    ]);
    sleep(Duration::from_millis(1200));
    let Pair {
        mut client,
        mut server,
    } = pair;
    let mut got = vec![0u8; 1000];
    for _ in 0..3 {
        // One send call each; the server reads each whole before the next.
        client.write_all(&[7u8; 1000]).unwrap();
        server.read_exact(&mut got).unwrap();
    }
    sleep(Duration::from_millis(600));
    // Their close names the sockets' kernel addresses to the events.
    drop(client);
    drop(server);
    let out = wait_output(child);
    let report = window_report(&out.stdout);
    let c = tuple_group(&report, &client_tuple).expect("client");
    let s = tuple_group(&report, &server_tuple).expect("server");
    // Polled counts, as without precision mode.
    assert_eq!(counter(c, "Socket", "BytesSent"), 3000, "{c}");
    assert_eq!(counter(s, "Socket", "BytesReceived"), 3000, "{s}");
    // Events: three send calls; the reads moved the same 3000 bytes.
    assert_eq!(counter(c, "Socket", "MessagesSent"), 3, "{c}");
    assert_eq!(counter(c, "Socket", "MessageBytesSent"), 3000, "{c}");
    assert_eq!(counter(s, "Socket", "MessageBytesReceived"), 3000, "{s}");
    assert_eq!(counter(s, "Socket", "MessagesReceived"), 3, "{s}");
    // Present before the window: no opens; a normal close: no resets.
    assert_eq!(counter(c, "Tcp", "ActiveOpens"), 0, "{c}");
    assert_eq!(counter(c, "Tcp", "EstabResets"), 0, "{c}");
    // Not asserted: an empty `unidentified`. Events carry no namespace, so
    // it holds any host socket's counts still waiting for a name when the
    // report is made (another namespace's connect before its port, a send
    // read before the event that names its socket); on a busy host there
    // are always some. These sockets' own counts above say they were named.
}

/// Sum of a counter over the groups whose key has `port` at `end`
/// ("lport" for server ends, "rport" for client ends).
fn port_total(report: &serde_json::Value, end: &str, port: u16, name: &str) -> u64 {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["key"][end] == port)
        .map(|g| counter(g, "Tcp", name))
        .sum()
}

/// Graceful connections to :7100 and aborted ones to :7101, in namespace
/// `ns`, on threads; joined by the caller.
fn graceful_and_aborted(
    ns: &Netns,
    graceful: usize,
    aborted: usize,
) -> Vec<std::thread::JoinHandle<()>> {
    use common::traffic::{clients, in_namespace, serve};
    let mut threads = Vec::new();
    for (port, count, abort) in [(7100u16, graceful, false), (7101, aborted, true)] {
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let listener = ns.listen(&addr.to_string());
        threads.push(in_namespace(&ns.name, move || serve(listener, count)));
        threads.push(in_namespace(&ns.name, move || clients(addr, count, abort)));
    }
    threads
}

#[test]
fn precision_counts_only_its_own_namespace_when_another_makes_the_same_traffic() {
    skip_unless_precision!();
    let p = Netns::new("place-p");
    let q = Netns::new("place-q");
    let child = p.spawn_tcpipstat(&[
        "--timeout",
        "5s",
        "--poll",
        "4800ms",
        "--format",
        "json",
        "--precision",
        "--system",
        "*:7100-*",
        "*-*:7100",
        "*:7101-*",
        "*-*:7101",
    ]);
    sleep(Duration::from_millis(1200));
    let mut threads = graceful_and_aborted(&p, 200, 50);
    threads.extend(graceful_and_aborted(&q, 120, 30));
    for t in threads {
        t.join().unwrap();
    }
    let out = wait_output(child);
    let report = window_report(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("{stderr}\n{}", report["precision"]);
    // (which end, port, counter, P's own count)
    for (end, port, name, want) in [
        ("lport", 7100, "PassiveOpens", 200),
        ("rport", 7100, "ActiveOpens", 200),
        ("lport", 7100, "EstabResets", 0),
        ("rport", 7100, "EstabResets", 0),
        ("lport", 7101, "PassiveOpens", 50),
        ("rport", 7101, "ActiveOpens", 50),
        ("rport", 7101, "OutRsts", 50),
        ("lport", 7101, "InRsts", 50),
    ] {
        let got = port_total(&report, end, port, name);
        assert_eq!(got, want, "{end} {port} {name}: {context}");
    }
    assert_eq!(total(&report, "Tcp", "OutRsts"), 50, "{context}");
    assert_eq!(total(&report, "Tcp", "InRsts"), 50, "{context}");
    for name in ["ActiveOpens", "PassiveOpens", "EstabResets", "OutRsts"] {
        assert_eq!(
            unattributed(&report, name),
            0,
            "{name}: {}",
            report["system"]
        );
    }
}

#[test]
fn a_sender_polled_before_the_run_counts_its_sends_in_the_window_they_happen() {
    skip_unless_precision!();
    use std::io::{Read, Write};
    let ns = Netns::new("sender");
    let listener = ns.listen("127.0.0.1:0");
    let pair = Pair::open(&ns, &listener);
    let client_tuple = pair.client_tuple();
    let Pair {
        mut client,
        mut server,
    } = pair;
    let reader = std::thread::spawn(move || {
        let mut sink = vec![0u8; 65536];
        let mut total = 0;
        while let Ok(n) = server.read(&mut sink) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    let child = ns.spawn_tcpipstat(&[
        "--interval",
        "1s",
        "--count",
        "4",
        "--format",
        "json",
        "--precision",
    ]);
    sleep(Duration::from_millis(1200));
    // A steady stream: 10 sends of 10,000 bytes a second, for 3.5 s.
    for _ in 0..35 {
        client.write_all(&[7u8; 10_000]).unwrap();
        sleep(Duration::from_millis(100));
    }
    let out = wait_output(child);
    drop(client);
    assert_eq!(reader.join().unwrap(), 350_000);
    let reports = json_reports(&out.stdout);
    // The windows while it sent, before it closed: each shows its sends.
    let middle: Vec<u64> = reports[1..3]
        .iter()
        .map(|r| {
            tuple_group(r, &client_tuple).map_or(0, |g| counter(g, "Socket", "MessageBytesSent"))
        })
        .collect();
    for (window, bytes) in middle.iter().enumerate() {
        assert!(
            (50_000..=150_000).contains(bytes),
            "window {}: {bytes} bytes sent by calls; {:?}",
            window + 1,
            reports
                .iter()
                .map(|r| (
                    r["precision"]["unidentified"].clone(),
                    r["precision"]["events_undelivered"].clone()
                ))
                .collect::<Vec<_>>()
        );
    }
}

/// Ten sends of 10,000 bytes over a second, each read whole by `server`.
fn send_for_a_second(client: &mut TcpStream, server: &mut TcpStream) {
    use std::io::{Read, Write};
    let mut got = vec![0u8; 10_000];
    for _ in 0..10 {
        client.write_all(&[7u8; 10_000]).unwrap();
        server.read_exact(&mut got).unwrap();
        sleep(Duration::from_millis(100));
    }
}

#[test]
fn senders_on_pre_existing_connections_are_named_one_after_another() {
    skip_unless_precision!();
    let ns = Netns::new("senders");
    let listener = ns.listen("127.0.0.1:0");
    let (mut first, mut second) = (Pair::open(&ns, &listener), Pair::open(&ns, &listener));
    let child = spawn_precise(&ns, &["--timeout", "4s", "--poll", "500ms"]);
    // The first sender is named (and its name no longer asked for) before
    // the second sends: the second needs tcp_probe's filter changed.
    send_for_a_second(&mut first.client, &mut first.server);
    sleep(Duration::from_millis(300));
    send_for_a_second(&mut second.client, &mut second.server);
    let out = wait_output(child);
    let report = window_report(&out.stdout);
    for (which, pair) in [("first", &first), ("second", &second)] {
        let c = tuple_group(&report, &pair.client_tuple())
            .unwrap_or_else(|| panic!("{which}: {report}"));
        assert_eq!(
            counter(c, "Socket", "MessageBytesSent"),
            100_000,
            "{which}: {c}\n{}",
            report["precision"]
        );
        assert_eq!(counter(c, "Socket", "MessagesSent"), 10, "{which}: {c}");
    }
}

#[test]
fn tracefs_mounted_by_a_run_is_unmounted_at_its_end() {
    skip_unless_precision!();
    // A private mount namespace without tracefs: the run mounts it, and
    // must leave none behind.
    let script = format!(
        "umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null; \
         grep -c ' tracefs ' /proc/self/mounts; {} --precision --timeout 300ms >/dev/null; \
         echo rc=$?; grep -c ' tracefs ' /proc/self/mounts",
        common::BIN
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, ["0", "rc=0", "0"], "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unmounted at exit"), "{stderr}");
}

#[test]
fn a_run_whose_tracefs_mount_another_run_undoes_still_removes_its_ftrace_instance() {
    skip_unless_precision!();
    // A private mount namespace without tracefs: the first run mounts it,
    // the second finds it mounted; the first ends (and unmounts) while the
    // second still runs. The second's instance must not outlive it.
    let script = format!(
        "umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null; \
         {bin} --precision --timeout 1500ms >/dev/null 2>&1 & sleep 0.7; \
         {bin} --precision --timeout 3s >/dev/null 2>&1 & second=$!; sleep 0.6; \
         ls /sys/kernel/tracing/instances | grep -qx tcpipstat-$second && echo present || echo absent; \
         wait; mount -t tracefs nodev /sys/kernel/tracing; \
         ls /sys/kernel/tracing/instances | grep -qx tcpipstat-$second && echo left || echo removed; \
         umount /sys/kernel/tracing",
        bin = common::BIN
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    if lines.first() == Some(&"absent") {
        eprintln!("SKIP: this kernel's runs keep no ftrace instance");
        return;
    }
    assert_eq!(lines, ["present", "removed"], "{stdout}");
}

#[test]
fn unreadable_tracefs_is_named_for_what_it_is() {
    skip_unless_precision!();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata("/sys/kernel/tracing")
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    if mode & 0o005 != 0 {
        eprintln!("SKIP: tracefs is readable by others here (mode {mode:o})");
        return;
    }
    let out = common::run_as_nobody(&["--precision", "tracepoint", "--timeout", "300ms"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("mounted at /sys/kernel/tracing but cannot be read"),
        "{stderr}"
    );
}

#[test]
fn request_sockets_a_poll_sees_leave_their_childrens_counts_whole() {
    skip_unless_precision!();
    use common::traffic::{deferred_connections, UP};
    let ns = Netns::new("request");
    let port = 7105;
    let child = spawn_precise(&ns, &["--timeout", "4s", "--poll", "200ms"]);
    let count = 5;
    let held = deferred_connections(&ns, port, count, Duration::from_millis(1000));
    assert_eq!(held, count, "the premise: request sockets held");
    let out = wait_output(child);
    let report = window_report(&out.stdout);
    let context = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        report["precision"]
    );
    let n = count as u64;
    assert_eq!(
        port_total(&report, "lport", port, "PassiveOpens"),
        n,
        "{context}"
    );
    assert_eq!(port_total(&report, "rport", port, "ActiveOpens"), n);
    assert_eq!(port_total(&report, "lport", port, "AttemptFails"), 0);
    let received: u64 = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["key"]["lport"] == port)
        .map(|g| counter(g, "Socket", "BytesReceived"))
        .sum();
    assert_eq!(received, n * UP as u64, "{report}");
    assert_eq!(unattributed(&report, "PassiveOpens"), 0);
}

#[test]
fn connects_that_never_complete_fail_exactly_as_the_kernel_counts_them() {
    skip_unless_precision!();
    let ns = Netns::new("fails");
    common::traffic::unanswered_route(&ns);
    let child = spawn_precise(&ns, &["--timeout", "7s"]);
    common::traffic::failed_connects(&ns);
    let out = wait_output(child);
    let report = window_report(&out.stdout);
    // Refused and given up; the abandoned one is no failed attempt.
    assert_eq!(total(&report, "Tcp", "AttemptFails"), 2, "{report}");
    assert_eq!(unattributed(&report, "AttemptFails"), 0, "{report}");
    assert_eq!(unattributed(&report, "ActiveOpens"), 0, "{report}");
    assert_eq!(total(&report, "Tcp", "EstabResets"), 0, "{report}");
}

/// A JSON run in `ns` with tracepoints and the namespace's own counters,
/// `window` (its --timeout, --poll) as given, once its probes are open.
fn spawn_precise(ns: &Netns, window: &[&str]) -> std::process::Child {
    let mut args = window.to_vec();
    args.extend(["--format", "json", "--precision", "tracepoint", "--system"]);
    let child = ns.spawn_tcpipstat(&args);
    sleep(Duration::from_millis(1200));
    child
}

#[test]
fn with_proc_hidden_root_is_not_told_that_mounting_tracefs_needs_root() {
    skip_unless_precision!();
    if std::process::Command::new("unshare")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: needs unshare(1) for a private mount namespace");
        return;
    }
    // A mount namespace of its own with no tracefs where tcpipstat looks
    // and a /proc that shows nothing (no /proc/self): root can still mount
    // tracefs, and must be told nothing else.
    let script = "umount -l /sys/kernel/debug 2>/dev/null; \
                  umount -l /sys/kernel/tracing 2>/dev/null; \
                  mount -t tmpfs none /proc && exec \"$0\" --precision tracepoint --timeout 300ms --format json";
    let out = std::process::Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            common::BIN,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("needs root"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report = window_report(&out.stdout);
    assert!(report["precision"].is_object(), "{report}");
}
