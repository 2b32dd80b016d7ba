//! DelayedACKs in precision mode, in a test binary of its own (test
//! binaries run one after the other): run beside the precision tests, it
//! made a sender test fail to name its socket about once in eight runs.
//! The cause is not pinned down; the likeliest is this host's perf
//! dropping tcp_probe events raised on idle CPUs (see README), which the
//! sender test's failure message now shows as `events_undelivered`.

mod common;

use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use common::{counter, total, tuple_group, wait_output, window_report, Netns, Pair};

#[test]
fn delayed_acks_of_a_receiver_that_reads_late_match_the_namespace_counter() {
    if let Some(reason) = common::skip_reason() {
        eprintln!("SKIP delayed ACKs: {reason}");
        return;
    }
    if !Path::new("/sys/kernel/tracing/events/timer").exists()
        && !Path::new("/sys/kernel/debug/tracing").exists()
    {
        let _ = std::process::Command::new("mount")
            .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
            .output();
    }
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
    let ours = total(&report, "TcpExt", "DelayedACKs");
    let namespace = report["system"]["deltas"]["TcpExt:DelayedACKs"]
        .as_i64()
        .expect("the namespace's DelayedACKs");
    assert!(
        namespace >= 10,
        "the timer acknowledged most segments: {report}"
    );
    let off = (ours as i64 - namespace).abs();
    assert!(
        off * 10 <= namespace,
        "sockets {ours} against the namespace's {namespace}: {report}"
    );
    let server = tuple_group(&report, &pair.server_tuple()).expect("the receiver");
    assert!(counter(server, "TcpExt", "DelayedACKs") > 0);
    let source = report["precision"]["sources"]["DelayedACKs"]
        .as_str()
        .unwrap();
    assert!(source.contains("tcp_delack_timer"), "{source}");
    // The run's ftrace instance is gone with it.
    assert!(!Path::new(&instance).exists(), "{instance} was left behind");
}
