//! DelayedACKs in precision mode, in a test binary of its own (test
//! binaries run one after the other): run beside the precision tests, it
//! made a sender test fail to name its socket about once in eight runs.
//! The cause is not pinned down; the likeliest is this host's perf
//! dropping tcp_probe events raised on idle CPUs (see docs/precision.md), which the
//! sender test's failure message now shows as `events_undelivered`.
//!
//! The sockets' DelayedACKs must equal the namespace's: the kernel counts
//! a timer expiry only when it sends the ACK, and most expiries of a busy
//! receiver (or of a request-response peer) find theirs already sent.
//! What may differ: an ACK the kernel defers to the socket's owner
//! (TcpExt:DelayedACKLocked), sent after the timer ends, is not seen; a
//! compressed SACK the timer sends (on a lossy path) is counted, by the
//! kernel not (seen once in 8 lossy runs).

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

use common::{
    counter, run_ok, total, tuple_group, veth_pair, wait_output, window_report, Netns, Pair,
};

/// Mounts tracefs where neither mount point has it (the run would too, and
/// unmount it at its end, before the test looks at the instance).
fn mount_tracefs() {
    if !Path::new("/sys/kernel/tracing/events/timer").exists()
        && !Path::new("/sys/kernel/debug/tracing").exists()
    {
        let _ = Command::new("mount")
            .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
            .output();
    }
}

/// (the sockets' DelayedACKs, the namespace's, the namespace's deferred
/// ones) of a report.
fn delayed_acks(report: &serde_json::Value) -> (i64, i64, i64) {
    let delta = |key: &str| report["system"]["deltas"][key].as_i64().unwrap_or(0);
    (
        total(report, "TcpExt", "DelayedACKs") as i64,
        delta("TcpExt:DelayedACKs"),
        delta("TcpExt:DelayedACKLocked"),
    )
}

/// The sockets count what the namespace counts, but for ACKs the kernel
/// deferred to the socket's owner (sent after the timer, unseen) and, up
/// to `compressed`, compressed SACKs the timer sent.
///
/// A socket whose naming event was lost (a busy host: the report counts
/// the loss) has its delayed ACKs counted among other namespaces'
/// (`elsewhere`): then those may make up the difference.
fn assert_delayed_acks_match(report: &serde_json::Value, compressed: i64) {
    let (ours, namespace, deferred) = delayed_acks(report);
    let precision = &report["precision"];
    let lost = precision["events_lost"].as_i64().unwrap_or(0)
        + precision["events_undelivered"].as_i64().unwrap_or(0);
    let unnamed = match lost {
        0 => 0,
        _ => precision["elsewhere"]["DelayedACKs"].as_i64().unwrap_or(0),
    };
    assert!(
        ours <= namespace + compressed && namespace - ours <= deferred + unnamed,
        "sockets {ours} against the namespace's {namespace} ({deferred} deferred, {unnamed} of unnamed sockets): {}",
        report["system"]
    );
    let source = report["precision"]["sources"]["DelayedACKs"]
        .as_str()
        .unwrap();
    assert!(source.contains("net_dev_queue"), "{source}");
}

#[test]
fn delayed_acks_of_a_receiver_that_reads_late_match_the_namespace_counter() {
    if let Some(reason) = common::skip_reason() {
        eprintln!("SKIP delayed ACKs: {reason}");
        return;
    }
    mount_tracefs();
    let ns = Netns::new("delack");
    let listener = ns.listen("127.0.0.1:0");
    let tool = ns.spawn_tcpipstat(&[
        "--precision",
        "--system",
        "--timeout",
        "6s",
        "--format",
        "json",
    ]);
    sleep(Duration::from_millis(1500));
    let mut pair = Pair::open(&ns, &listener);
    // 30 small segments 100 ms apart, none answered nor read until the end:
    // each is ACKed by the receiver's delayed-ACK timer (quick ACKs aside).
    for _ in 0..30 {
        std::io::Write::write_all(&mut pair.client, &[0x5a; 10]).unwrap();
        sleep(Duration::from_millis(100));
    }
    let mut got = [0u8; 300];
    std::io::Read::read_exact(&mut pair.server, &mut got).unwrap();
    let instance = format!("/sys/kernel/tracing/instances/tcpipstat-{}", tool.id());
    let out = wait_output(tool);
    let report = window_report(&out.stdout);
    let (_, namespace, _) = delayed_acks(&report);
    assert!(
        namespace >= 10,
        "the timer acknowledged most segments: {report}"
    );
    assert_delayed_acks_match(&report, 0);
    let server = tuple_group(&report, &pair.server_tuple()).expect("the receiver");
    assert!(counter(server, "TcpExt", "DelayedACKs") > 0);
    // The run's ftrace instance is gone with it.
    assert!(!Path::new(&instance).exists(), "{instance} was left behind");
}

#[test]
fn delayed_acks_of_a_bulk_receiver_on_a_lossy_path_equal_the_namespace_counter() {
    if let Some(reason) = common::skip_reason() {
        eprintln!("SKIP delayed ACKs on a lossy path: {reason}");
        return;
    }
    mount_tracefs();
    // a — m — b, routed, with a token bucket on m's way to b that drops
    // what it cannot queue. b's receiver ACKs every other segment at
    // once, so its delayed-ACK timer, re-armed by each segment, mostly
    // fires after its ACK left: counting expiries gave 16–18 where the
    // namespace counted 1–3.
    let (a, m, b) = (
        Netns::new("dlossa"),
        Netns::new("dlossm"),
        Netns::new("dlossb"),
    );
    veth_pair(&a, &m, 61);
    let (towards_b, _) = veth_pair(&m, &b, 62);
    run_ok(
        a.command("ip")
            .args(["route", "add", "default", "via", "10.77.61.2"]),
    );
    run_ok(
        b.command("ip")
            .args(["route", "add", "default", "via", "10.77.62.1"]),
    );
    run_ok(m.command("sysctl").args(["-qw", "net.ipv4.ip_forward=1"]));
    run_ok(m.command("tc").args([
        "qdisc", "add", "dev", &towards_b, "root", "tbf", "rate", "20mbit", "burst", "16kb",
        "limit", "20kb",
    ]));
    let listener = b.listen("10.77.62.2:9000");
    let tool = b.spawn_tcpipstat(&[
        "--precision",
        "--system",
        "--timeout",
        "7s",
        "--format",
        "json",
    ]);
    sleep(Duration::from_millis(1500));
    let receiver = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut sink = Vec::new();
        conn.read_to_end(&mut sink).unwrap();
        sink.len()
    });
    const BYTES: usize = 8_000_000;
    a.enter(|| {
        let mut conn = std::net::TcpStream::connect("10.77.62.2:9000").unwrap();
        conn.write_all(&vec![7u8; BYTES]).unwrap();
    });
    assert_eq!(receiver.join().unwrap(), BYTES);
    let report = window_report(&wait_output(tool).stdout);
    // The loss, as the receiver sees it: segments out of order.
    let out_of_order = report["system"]["deltas"]["TcpExt:TCPOFOQueue"]
        .as_i64()
        .unwrap_or(0);
    assert!(out_of_order > 0, "no loss: {}", report["system"]);
    // Out-of-order data is when the kernel compresses SACKs.
    assert_delayed_acks_match(&report, 2);
}

#[test]
fn a_request_response_exchange_counts_no_delayed_ack_the_namespace_did_not() {
    if let Some(reason) = common::skip_reason() {
        eprintln!("SKIP delayed ACKs of a request-response exchange: {reason}");
        return;
    }
    mount_tracefs();
    // Each request is answered at once, its ACK riding on the answer; the
    // server's timer, set when the request came, fires later with nothing
    // to send. Counting expiries gave 10 where the namespace counted 0.
    let ns = Netns::new("delackrr");
    let listener = ns.listen("127.0.0.1:0");
    let tool = ns.spawn_tcpipstat(&[
        "--precision",
        "--system",
        "--timeout",
        "5s",
        "--format",
        "json",
    ]);
    sleep(Duration::from_millis(1500));
    let mut pair = Pair::open(&ns, &listener);
    for _ in 0..20 {
        pair.exchange(100, 100);
        sleep(Duration::from_millis(100));
    }
    let report = window_report(&wait_output(tool).stdout);
    let server = tuple_group(&report, &pair.server_tuple()).expect("the server");
    assert!(counter(server, "Tcp", "InSegs") >= 20, "{server}");
    assert_delayed_acks_match(&report, 0);
}
