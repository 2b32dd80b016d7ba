//! UDP per socket, live in private namespaces: a flooded receiver's
//! RcvDrops against the namespace's Udp RcvbufErrors (as root and as user
//! nobody), and drops placed on the right port with `--index lport`, with
//! a filter keeping the other server out. With --precision: datagrams read
//! and receive-buffer drops per socket from kernel events, and NoPorts by
//! port, against the namespace's MIB.

mod common;

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{precision_skip_reason, skip_reason, wait_output, window_report, Netns, BIN};

/// A receiver on `port` with a tiny receive buffer, which reads nothing.
fn small_receiver(ns: &Netns, port: u16) -> UdpSocket {
    ns.enter(move || {
        let socket = UdpSocket::bind(("127.0.0.1", port)).expect("bind");
        let size: libc::c_int = 2048;
        // SAFETY: setsockopt on a valid fd with a c_int of the size given.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_RCVBUF");
        socket
    })
}

/// Sends `count` datagrams of 200 bytes to `port` from a fresh socket in
/// the namespace; the socket stays open (a closed one would take its
/// drops with it, see the notes) until the returned one is dropped.
fn flood(ns: &Netns, port: u16, count: usize) -> UdpSocket {
    ns.enter(move || {
        let sender = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
        for _ in 0..count {
            let _ = sender.send_to(&[7u8; 200], ("127.0.0.1", port));
        }
        sender
    })
}

/// Reads what `receiver` holds, slowly: a receiver that keeps up a little.
fn read_some(receiver: &UdpSocket, count: usize) -> usize {
    receiver
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 512];
    (0..count)
        .filter(|_| {
            std::thread::sleep(Duration::from_millis(5));
            receiver.recv(&mut buf).is_ok()
        })
        .count()
}

fn spawn_as(ns: &Netns, nobody: bool, args: &[&str]) -> Child {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name]);
    if nobody {
        cmd.args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]);
    }
    cmd.arg(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcpipstat")
}

fn udp_group(report: &serde_json::Value, port: u16) -> Option<&serde_json::Value> {
    report["udp"]["groups"]
        .as_array()?
        .iter()
        .find(|g| g["key"]["lport"] == port)
}

fn mib(report: &serde_json::Value, name: &str, field: &str) -> i64 {
    report["udp"]["system"]["Udp"][name][field]
        .as_i64()
        .unwrap_or_else(|| panic!("no Udp {name} {field} in {report}"))
}

fn receiver_drops_equal_namespace_rcvbuf_errors(nobody: bool, extra: &[&str]) {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let ns = Netns::new("udprcv");
    let receiver = small_receiver(&ns, 5300);
    let mut args = vec!["-u", "--system", "--timeout", "3s", "--format", "json"];
    args.extend_from_slice(extra);
    let child = spawn_as(&ns, nobody, &args);
    // The baseline poll comes first: the flood falls in the window.
    std::thread::sleep(Duration::from_millis(800));
    let sender = flood(&ns, 5300, 3000);
    let read = read_some(&receiver, 20);
    let output = wait_output(child);
    drop(sender);
    let report = window_report(&output.stdout);
    let group = udp_group(&report, 5300).unwrap_or_else(|| panic!("no group in {report}"));
    let drops = group["RcvDrops"].as_i64().unwrap();
    let rcvbuf_errors = mib(&report, "RcvbufErrors", "system");
    assert!(read > 0, "the receiver read nothing");
    assert!(drops > 0, "{report}");
    assert_eq!(drops, rcvbuf_errors, "{report}");
    assert_eq!(mib(&report, "RcvbufErrors", "unattributed"), 0);
    assert_eq!(mib(&report, "InErrors", "unattributed"), 0);
    // Every datagram was either dropped or queued: none vanished.
    assert_eq!(mib(&report, "OutDatagrams", "system"), 3000, "{report}");
}

#[test]
fn flooded_receivers_drops_equal_the_namespaces_rcvbuf_errors() {
    receiver_drops_equal_namespace_rcvbuf_errors(false, &[]);
}

#[test]
fn flooded_receivers_drops_are_exact_unprivileged() {
    receiver_drops_equal_namespace_rcvbuf_errors(true, &[]);
}

#[test]
fn proc_net_udp_fallback_drops_equal_the_namespaces_rcvbuf_errors() {
    receiver_drops_equal_namespace_rcvbuf_errors(false, &["--source", "proc"]);
}

#[test]
fn index_lport_puts_every_drop_on_the_dropping_server_and_a_filter_keeps_it_out() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let ns = Netns::new("udpidx");
    let quiet = ns.enter(|| UdpSocket::bind("127.0.0.1:6001").expect("bind"));
    let dropping = small_receiver(&ns, 6002);
    let args = [
        "-u",
        "--system",
        "--zeros",
        "--index",
        "lport",
        "--timeout",
        "3s",
        "--format",
        "json",
    ];
    let all = spawn_as(&ns, false, &args);
    let mut filtered_args = args.to_vec();
    filtered_args.push("*:6001-*");
    let filtered = spawn_as(&ns, false, &filtered_args);
    std::thread::sleep(Duration::from_millis(800));
    // The quiet server gets a few it reads at once.
    let sender = flood(&ns, 6001, 5);
    let mut buf = [0u8; 512];
    for _ in 0..5 {
        quiet.recv(&mut buf).unwrap();
    }
    let sender2 = flood(&ns, 6002, 2000);
    let report = window_report(&wait_output(all).stdout);
    let only = window_report(&wait_output(filtered).stdout);
    drop((sender, sender2, dropping));
    let rcvbuf_errors = mib(&report, "RcvbufErrors", "system");
    let on =
        |r: &serde_json::Value, port| udp_group(r, port).map(|g| g["RcvDrops"].as_i64().unwrap());
    assert!(rcvbuf_errors > 0, "{report}");
    assert_eq!(on(&report, 6002), Some(rcvbuf_errors), "{report}");
    assert_eq!(on(&report, 6001), Some(0), "{report}");
    assert_eq!(on(&only, 6001), Some(0), "{only}");
    assert_eq!(on(&only, 6002), None, "{only}");
    // The MIB is not filtered, and neither are the sockets set against it.
    assert_eq!(mib(&only, "RcvbufErrors", "unattributed"), 0, "{only}");
}

#[test]
fn udp_alone_says_nothing_of_tcp_in_text_and_table() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let ns = Netns::new("udpnotcp");
    let _server = ns.enter(|| UdpSocket::bind("127.0.0.1:6100").expect("bind"));
    for format in ["text", "table"] {
        let args = [
            "-u",
            "--system",
            "--zeros",
            "--timeout",
            "1s",
            "--format",
            format,
        ];
        let output = wait_output(spawn_as(&ns, false, &args));
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{text}");
        assert!(text.contains("127.0.0.1:6100"), "{text}");
        assert!(text.contains("RcvbufErrors"), "{text}");
        assert!(!text.to_lowercase().contains("tcp"), "{format}: {text}");
    }
    // Both asked for: the empty TCP side is said.
    let args = ["-tu", "--timeout", "1s"];
    let text = String::from_utf8(wait_output(spawn_as(&ns, false, &args)).stdout).unwrap();
    assert!(text.contains("No TCP socket activity."), "{text}");
}

/// An echo server on `port` that answers every datagram until `stop`.
fn echo_server(ns: &Netns, port: u16) -> std::thread::JoinHandle<()> {
    let server = ns.enter(move || UdpSocket::bind(("127.0.0.1", port)).expect("bind server"));
    server
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let mut idle = 0;
        while idle < 25 {
            match server.recv_from(&mut buf) {
                Ok((n, from)) => {
                    idle = 0;
                    let _ = server.send_to(&buf[..n], from);
                }
                Err(_) => idle += 1,
            }
        }
    })
}

/// `count` DNS-style clients at `per_second`: each a fresh socket that
/// connects, sends, waits for the answer and closes. Returns how many
/// got their answer.
fn short_lived_clients(ns: &Netns, port: u16, count: u32, per_second: u32) -> u32 {
    ns.enter(move || {
        let start = std::time::Instant::now();
        let mut answered = 0;
        for i in 0..count {
            let due = start + Duration::from_secs_f64(f64::from(i) / f64::from(per_second));
            if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
            let client = UdpSocket::bind("127.0.0.1:0").expect("bind client");
            client.connect(("127.0.0.1", port)).expect("connect");
            client
                .set_read_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            client.send(b"query").expect("send");
            let mut buf = [0u8; 64];
            answered += u32::from(client.recv(&mut buf).is_ok());
        }
        answered
    })
}

/// `count` clients open together that send, wait `held` and only then
/// read their answer and close: polls see them alive before their notice.
fn held_clients(ns: &Netns, port: u16, count: usize, held: Duration) -> usize {
    ns.enter(move || {
        let clients: Vec<UdpSocket> = (0..count)
            .map(|_| {
                let client = UdpSocket::bind("127.0.0.1:0").expect("bind client");
                client.connect(("127.0.0.1", port)).expect("connect");
                client.send(b"query").expect("send");
                client
            })
            .collect();
        std::thread::sleep(held);
        let mut buf = [0u8; 64];
        clients.iter().filter(|c| c.recv(&mut buf).is_ok()).count()
    })
}

#[test]
fn short_lived_udp_clients_are_each_counted_once_or_their_loss_is() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let ns = Netns::new("udpshort");
    let server = echo_server(&ns, 5353);
    let args = |poll: &'static str| {
        vec![
            "-u",
            "--index",
            "rport",
            "--timeout",
            "3s",
            "--poll",
            poll,
            "--format",
            "json",
        ]
    };
    // Slow polls see almost none of them alive; fast ones see some, whose
    // notices must then not count them again.
    let runs = [
        spawn_as(&ns, false, &args("1s")),
        spawn_as(&ns, false, &args("5ms")),
        spawn_as(&ns, true, &args("1s")),
    ];
    std::thread::sleep(Duration::from_millis(800));
    let answered = short_lived_clients(&ns, 5353, 2000, 2000);
    assert_eq!(answered, 2000, "the echo server missed some");
    assert_eq!(held_clients(&ns, 5353, 20, Duration::from_millis(100)), 20);
    let expected = 2020;
    for (i, run) in runs.into_iter().enumerate() {
        let report = window_report(&wait_output(run).stdout);
        let udp = &report["udp"];
        let lost = udp["close_notices_lost"]["window"]
            .as_u64()
            .unwrap_or_else(|| panic!("close notices not read: {report}"));
        let group = udp["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["key"]["rport"] == 5353)
            .unwrap_or_else(|| panic!("no group for rport 5353: {report}"));
        let sockets = group["sockets"].as_u64().unwrap();
        assert_eq!(group["closed"].as_u64(), Some(sockets), "{report}");
        let notice_only = group["notice_only"].as_u64().unwrap();
        if lost == 0 {
            assert_eq!(sockets, expected, "{report}");
        } else {
            // A lost notice loses a socket no poll saw, at most.
            assert!(
                sockets <= expected && sockets + lost >= expected,
                "{report}"
            );
        }
        // Polls every 5 ms saw the held clients alive; their notices
        // ended them without counting them again.
        if i == 1 {
            assert!(notice_only <= expected - 20, "{report}");
        }
        assert_eq!(udp["unlisted"].as_u64(), Some(0), "{report}");
    }
    server.join().unwrap();
}

#[test]
fn udp_close_notices_lost_to_a_small_buffer_are_counted() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let ns = Netns::new("udplost");
    let server = echo_server(&ns, 5354);
    let args = [
        "-u",
        "--index",
        "rport",
        "--timeout",
        "3s",
        "--close-buffer",
        "4K",
        "--format",
        "json",
    ];
    let run = spawn_as(&ns, false, &args);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(short_lived_clients(&ns, 5354, 2000, 2000), 2000);
    let report = window_report(&wait_output(run).stdout);
    let udp = &report["udp"];
    let lost = &udp["close_notices_lost"];
    assert_eq!(lost["exact"], true, "{report}");
    let lost = lost["window"].as_u64().unwrap();
    let sockets = udp["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"]["rport"] == 5354)
        .map_or(0, |g| g["sockets"].as_u64().unwrap());
    assert!(lost > 0, "a 4 KiB buffer lost nothing: {report}");
    // Each client is counted, or its notice is counted lost.
    assert!(sockets <= 2000 && sockets + lost >= 2000, "{report}");
    server.join().unwrap();
}

/// Why UDP's precision tests cannot run: no root or tracefs, or a kernel
/// without the events they check (the run says the same in its header).
fn udp_precision_skip_reason() -> Option<String> {
    if let Some(why) = precision_skip_reason() {
        return Some(why);
    }
    let events = [
        "sock/sock_recv_length",
        "udp/udp_fail_queue_rcv_skb",
        "icmp/icmp_send",
        "syscalls/sys_enter_recvfrom",
    ];
    events
        .iter()
        .find(|e| {
            !std::path::Path::new("/sys/kernel/tracing/events")
                .join(e)
                .exists()
        })
        .map(|e| format!("kernel has no {e} tracepoint"))
}

fn precision_of(report: &serde_json::Value) -> &serde_json::Value {
    let precision = &report["udp"]["precision"];
    assert!(precision.is_object(), "no UDP precision part: {report}");
    precision
}

#[test]
fn precision_counts_what_a_slow_receiver_read_and_its_rcvbuf_errors() {
    if let Some(why) = udp_precision_skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let ns = Netns::new("udpprec");
    let receiver = small_receiver(&ns, 5310);
    let args = [
        "-u",
        "--precision",
        "--system",
        "--index",
        "lport",
        "--timeout",
        "3s",
        "--format",
        "json",
    ];
    let child = spawn_as(&ns, false, &args);
    std::thread::sleep(Duration::from_millis(1200));
    let sender = flood(&ns, 5310, 3000);
    let read = read_some(&receiver, 40);
    let output = wait_output(child);
    drop(sender);
    let report = window_report(&output.stdout);
    let precision = precision_of(&report);
    let group = udp_group(&report, 5310).unwrap_or_else(|| panic!("no group in {report}"));
    let events = &group["events"];
    assert!(read > 0, "the receiver read nothing");
    // Exact, but for the events the report says were lost (another
    // namespace's load fills the shared rings): low by at most as many.
    let lost = precision["events_lost"].as_i64().unwrap();
    let within = |name: &str, counted: Option<i64>, truth: i64| {
        assert_within_lost(name, counted, truth, lost, &report);
    };
    within("InDatagrams", events["InDatagrams"].as_i64(), read as i64);
    within("InBytes", events["InBytes"].as_i64(), 200 * read as i64);
    let rcvbuf_errors = mib(&report, "RcvbufErrors", "system");
    assert!(rcvbuf_errors > 0, "{report}");
    within(
        "RcvbufErrors",
        events["RcvbufErrors"].as_i64(),
        rcvbuf_errors,
    );
    // What events missed is the namespace's and no socket's.
    for name in ["RcvbufErrors", "InDatagrams", "OutDatagrams"] {
        let system = mib(&report, name, "system");
        let unattributed = system - mib(&report, name, "unattributed");
        within(name, Some(unattributed), system);
    }
    // The sender's group has its 3000 sends of 200 bytes.
    let sent: i64 = report["udp"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["events"]["OutDatagrams"].as_i64())
        .sum();
    within("OutDatagrams", Some(sent), 3000);
}

/// A count from events is `truth`, or low by at most the `lost` events
/// the report says; never high.
fn assert_within_lost(
    name: &str,
    counted: Option<i64>,
    truth: i64,
    lost: i64,
    report: &serde_json::Value,
) {
    let counted = counted.unwrap_or(-1);
    assert!(
        counted <= truth && counted >= truth - lost,
        "{name} {counted} for {truth}, {lost} events lost: {report}"
    );
}

#[test]
fn precision_names_no_ports_by_port_and_sender_and_leaves_no_residual() {
    if let Some(why) = udp_precision_skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let ns = Netns::new("udpnoport");
    let args = [
        "-u",
        "--precision",
        "--system",
        "--timeout",
        "3s",
        "--format",
        "json",
    ];
    let child = spawn_as(&ns, false, &args);
    std::thread::sleep(Duration::from_millis(1200));
    // Loopback is exempt from ICMP rate limits: every datagram to a
    // closed port is answered, so its port is told.
    let (sender_port, sent) = ns.enter(|| {
        let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
        for _ in 0..37 {
            sender.send_to(b"anyone?", ("127.0.0.1", 5399)).unwrap();
        }
        (sender.local_addr().unwrap().port(), 37u64)
    });
    let report = window_report(&wait_output(child).stdout);
    let precision = precision_of(&report);
    let no_ports = mib(&report, "NoPorts", "system");
    assert_eq!(no_ports, sent as i64, "{report}");
    assert_eq!(mib(&report, "NoPorts", "unattributed"), 0, "{report}");
    let named = precision["no_ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["lport"] == 5399)
        .unwrap_or_else(|| panic!("port 5399 not named: {report}"));
    assert_eq!(named["datagrams"].as_u64(), Some(sent), "{report}");
    assert_eq!(named["sender"], "127.0.0.1", "{report}");
    assert_eq!(named["sender_port"].as_u64(), Some(u64::from(sender_port)));
    assert_eq!(precision["no_ports_unknown"].as_u64(), Some(0), "{report}");
}

#[test]
fn precision_unavailable_says_why_and_still_shows_polling() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    // User nobody cannot open tracepoints (tracefs and perf need root or
    // CAP_PERFMON): the run says so and polls.
    let ns = Netns::new("udpnoprec");
    let receiver = small_receiver(&ns, 5320);
    let args = [
        "-u",
        "--precision",
        "--system",
        "--timeout",
        "3s",
        "--format",
        "json",
    ];
    let child = spawn_as(&ns, true, &args);
    std::thread::sleep(Duration::from_millis(800));
    let sender = flood(&ns, 5320, 2000);
    let output = wait_output(child);
    drop((sender, receiver));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = window_report(&output.stdout);
    if report["udp"]["precision"].is_object() {
        eprintln!("SKIP: user nobody could open tracepoints here (perf_event_paranoid?)");
        return;
    }
    assert!(
        stderr.contains("precision mode unavailable (")
            && stderr.contains("running as plain polling"),
        "{stderr}"
    );
    let group = udp_group(&report, 5320).unwrap_or_else(|| panic!("no group in {report}"));
    let drops = group["RcvDrops"].as_i64().unwrap();
    assert!(drops > 0, "{report}");
    assert_eq!(drops, mib(&report, "RcvbufErrors", "system"), "{report}");
    assert!(group["events"].is_null(), "{report}");
}

/// `count` DNS-style clients one after another (socket, connect, send,
/// the answer read, close); their local ports.
fn short_lived_client_ports(ns: &Netns, port: u16, count: usize) -> Vec<u16> {
    ns.enter(move || {
        (0..count)
            .map(|_| {
                let client = UdpSocket::bind("127.0.0.1:0").expect("bind client");
                client.connect(("127.0.0.1", port)).expect("connect");
                client
                    .set_read_timeout(Some(Duration::from_secs(1)))
                    .unwrap();
                client.send(b"query").expect("send");
                let mut buf = [0u8; 64];
                client.recv(&mut buf).expect("the echo server's answer");
                client.local_addr().unwrap().port()
            })
            .collect()
    })
}

fn udp_closes(stdout: &[u8]) -> Vec<serde_json::Value> {
    common::json_reports(stdout)
        .into_iter()
        .filter(|r| r["type"] == "udp_close")
        .collect()
}

#[test]
fn onclose_reports_each_short_lived_udp_client_once() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let ns = Netns::new("udpclose");
    let server = echo_server(&ns, 5355);
    let run = spawn_as(
        &ns,
        false,
        &["-u", "--onclose", "--timeout", "3s", "--format", "json"],
    );
    // A filter that keeps the clients only (their peer is the server).
    let filtered = spawn_as(
        &ns,
        false,
        &[
            "-u",
            "--onclose",
            "--timeout",
            "3s",
            "--format",
            "json",
            "*-127.0.0.1:5355",
        ],
    );
    std::thread::sleep(Duration::from_millis(800));
    let ports = short_lived_client_ports(&ns, 5355, 200);
    // A socket of no client, which the filter leaves out.
    drop(ns.enter(|| UdpSocket::bind("127.0.0.1:5399").expect("bind other")));
    let mut expected: Vec<u64> = ports.iter().map(|&p| u64::from(p)).collect();
    expected.sort_unstable();
    for (run, filtered) in [(run, false), (filtered, true)] {
        let closes = udp_closes(&wait_output(run).stdout);
        let clients: Vec<&serde_json::Value> = closes
            .iter()
            .filter(|r| r["key"]["rport"] == 5355)
            .collect();
        let lost = closes.first().map_or(0, |r| {
            r["close_notices_lost"]["since_start"].as_u64().unwrap()
        });
        assert_eq!(lost, 0, "close notices lost: the count below cannot hold");
        assert_eq!(clients.len(), ports.len(), "{closes:?}");
        let mut reported: Vec<u64> = clients
            .iter()
            .map(|r| r["key"]["lport"].as_u64().unwrap())
            .collect();
        reported.sort_unstable();
        assert_eq!(reported, expected);
        for r in &clients {
            assert_eq!(r["key"]["raddr"], "127.0.0.1", "{r}");
            assert_eq!(r["state"], "ESTAB", "{r}");
            assert_eq!(r["unreported_since_start"], 0, "{r}");
            // Seen by polls or only from its notice: drops 0 or unknown.
            assert!(r["RcvDrops"].is_null() || r["RcvDrops"] == 0, "{r}");
        }
        let others = closes.iter().filter(|r| r["key"]["lport"] == 5399).count();
        assert_eq!(others, usize::from(!filtered), "{closes:?}");
    }
    server.join().unwrap();
}

/// Reports as a run writes them, one JSON line each.
struct LiveReports {
    lines: std::sync::mpsc::Receiver<String>,
}

impl LiveReports {
    fn of(child: &mut Child) -> LiveReports {
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        LiveReports { lines }
    }

    /// The next UDP close report of local port `port`, if one comes
    /// before `wait` passes without any line.
    fn close_within(&self, port: u16, wait: Duration) -> Option<serde_json::Value> {
        loop {
            let line = self.lines.recv_timeout(wait).ok()?;
            let report: serde_json::Value = serde_json::from_str(&line).expect("JSON");
            if report["type"] == "udp_close" && report["key"]["lport"] == port {
                return Some(report);
            }
        }
    }

    fn close_of(&self, port: u16) -> serde_json::Value {
        self.close_within(port, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("no close report for port {port}"))
    }
}

/// The namespace's Udp counter `name` (/proc/net/snmp, read inside it).
fn udp_mib(ns: &Netns, name: &str) -> i64 {
    let output = ns.command("cat").arg("/proc/net/snmp").output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let mut rows = text.lines().filter(|l| l.starts_with("Udp: "));
    let names: Vec<&str> = rows.next().unwrap().split_whitespace().collect();
    let values: Vec<&str> = rows.next().unwrap().split_whitespace().collect();
    let at = names.iter().position(|n| *n == name).unwrap();
    values[at].parse().unwrap()
}

/// Waits until the run has polled since now: a socket opened now and
/// reported as seen by a poll was dumped after everything before it.
fn wait_for_a_poll(ns: &Netns, reports: &LiveReports) {
    for attempt in 0..50u64 {
        let marker = ns.enter(|| UdpSocket::bind("127.0.0.1:0").expect("bind marker"));
        let port = marker.local_addr().unwrap().port();
        std::thread::sleep(Duration::from_millis(100 * (attempt.min(10) + 1)));
        drop(marker);
        // None: it closed before the run's baseline poll, which reports
        // nothing of what came before it.
        let report = reports.close_within(port, Duration::from_secs(3));
        if report.is_some_and(|r| r["known_from"] != "close notice") {
            return;
        }
    }
    panic!("no poll saw a socket in 50 tries");
}

#[test]
fn onclose_gives_a_flooded_receivers_drops_equal_to_the_namespaces_rcvbuf_errors() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let precision = match udp_precision_skip_reason() {
        None => true,
        Some(why) => {
            eprintln!("SKIP (the --precision part): {why}");
            false
        }
    };
    let ns = Netns::new("udpclosedrop");
    let receiver = small_receiver(&ns, 5356);
    let before = udp_mib(&ns, "RcvbufErrors");
    let mut runs = vec![spawn_as(
        &ns,
        false,
        &["-u", "--onclose", "--format", "json"],
    )];
    if precision {
        runs.push(spawn_as(
            &ns,
            false,
            &["-u", "--onclose", "--precision", "--format", "json"],
        ));
    }
    let streams: Vec<LiveReports> = runs.iter_mut().map(LiveReports::of).collect();
    if precision {
        // Its tracepoints are set up once its first poll is done.
        wait_for_a_poll(&ns, &streams[1]);
    }
    let sender = flood(&ns, 5356, 3000);
    let read = read_some(&receiver, 5) as u64;
    // The receiver is closed only once each run has polled its last drop.
    for reports in &streams {
        wait_for_a_poll(&ns, reports);
    }
    let rcvbuf_errors = udp_mib(&ns, "RcvbufErrors") - before;
    drop(receiver);
    let closes: Vec<serde_json::Value> = streams.iter().map(|r| r.close_of(5356)).collect();
    for mut child in runs {
        // SAFETY: kill on the child's own pid; SIGTERM ends a run cleanly.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = child.wait();
    }
    drop(sender);
    assert!(read > 0, "the receiver read nothing");
    assert!(rcvbuf_errors > 0, "no drop");
    for report in &closes {
        assert_eq!(report["RcvDrops"].as_i64(), Some(rcvbuf_errors), "{report}");
        // From the last poll, so marked as such (a notice carries no count).
        assert_eq!(report["RcvDrops_from"], "last poll", "{report}");
        assert_eq!(report["RcvDrops_exact"], false, "{report}");
        assert_eq!(report["known_from"], "polls and close notice", "{report}");
        // Open before the run: no upper bound on its life.
        assert!(report["lifetime_ms"]["at_most"].is_null(), "{report}");
        assert!(report["gauges"]["rcvbuf"].as_u64().unwrap() > 0, "{report}");
    }
    assert!(closes[0]["events"].is_null(), "{}", closes[0]);
    if precision {
        let events = &closes[1]["events"];
        // Exact, but for the events its report says were lost (a busy
        // machine fills the rings): low by at most as many, never high.
        let lost = events_lost_said_in(&closes[1]);
        let within = |name: &str, truth: i64| {
            assert_within_lost(name, events[name].as_i64(), truth, lost, &closes[1]);
        };
        within("InDatagrams", read as i64);
        within("InBytes", read as i64 * 200);
        within("RcvbufErrors", rcvbuf_errors);
    }
}

/// The kernel events a report's notices say were lost ("precision: N
/// kernel events lost ..."), 0 where none says so.
fn events_lost_said_in(report: &serde_json::Value) -> i64 {
    report["notices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| {
            let said = n.as_str()?.strip_prefix("precision: ")?;
            said.split_once(" kernel events lost")?
                .0
                .trim()
                .parse::<i64>()
                .ok()
        })
        .sum()
}

#[test]
fn onclose_counts_the_udp_close_notices_a_small_buffer_lost() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let ns = Netns::new("udpcloselost");
    let server = echo_server(&ns, 5357);
    let run = spawn_as(
        &ns,
        false,
        &[
            "-u",
            "--onclose",
            "--timeout",
            "3s",
            "--close-buffer",
            "4K",
            "--format",
            "json",
        ],
    );
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(short_lived_clients(&ns, 5357, 2000, 2000), 2000);
    let output = wait_output(run);
    let closes = udp_closes(&output.stdout);
    let reported = closes.iter().filter(|r| r["key"]["rport"] == 5357).count() as u64;
    let lost = closes
        .iter()
        .map(|r| {
            assert_eq!(r["close_notices_lost"]["exact"], true, "{r}");
            r["close_notices_lost"]["since_start"].as_u64().unwrap()
        })
        .max()
        .unwrap_or(0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        lost > 0,
        "a 4 KiB buffer lost nothing ({reported} reported)"
    );
    assert!(stderr.contains("UDP close notices lost"), "{stderr}");
    // Each client is reported, or its notice is counted lost.
    assert!(
        reported <= 2000 && reported + lost >= 2000,
        "{reported} reported, {lost} lost"
    );
    server.join().unwrap();
}
