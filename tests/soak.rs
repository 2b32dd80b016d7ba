//! A churn soak in polling mode: 2,000 short connections per second for a
//! minute (`TCPIPSTAT_SOAK_SECONDS` to change), each moving 100 bytes each
//! way, in a private namespace. Every connection is counted from the
//! kernel's close notices: no notice lost at the default buffer, opens and
//! bytes exact, and the namespace's own MIB deltas agree. Needs root.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::traffic::in_namespace;
use common::{counter, json_reports, wait_output, Netns};

const RATE: u64 = 2_000;
const CLIENT_THREADS: u64 = 4;
const PAYLOAD: usize = 100;

fn soak_seconds() -> u64 {
    std::env::var("TCPIPSTAT_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

/// One client thread's share of the rate for `seconds`: connect, send
/// PAYLOAD and shut down its side, read PAYLOAD back to the server's
/// close. Returns connections made.
fn paced_clients(to: SocketAddr, per_second: u64, seconds: u64) -> u64 {
    let start = Instant::now();
    let total = per_second * seconds;
    for n in 0..total {
        let due = start + Duration::from_micros(n * 1_000_000 / per_second);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            sleep(wait);
        }
        let mut conn = TcpStream::connect(to).expect("connect");
        conn.write_all(&[1u8; PAYLOAD]).unwrap();
        // Both FINs are exchanged before either socket is destroyed: each
        // notice then carries its peer's FIN, which a socket destroyed in
        // its FIN_WAIT2 does not (docs/attribution.md, known limits).
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        conn.read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), PAYLOAD);
    }
    total
}

#[test]
fn two_thousand_connections_a_second_are_all_counted_from_close_notices() {
    skip_unless_root!();
    let seconds = soak_seconds();
    let ns = Netns::new("soak");
    // Client ends go to TIME_WAIT: room for a minute of them.
    common::run_ok(
        ns.command("sysctl")
            .args(["-qw", "net.ipv4.ip_local_port_range=1024 65000"]),
    );
    let listener = ns.listen("127.0.0.1:7700");
    let addr = listener.local_addr().unwrap();
    // Run until told to stop, once every connection has closed: a window
    // that ended mid-connection would leave that one's last bytes out.
    let child = ns.spawn_tcpipstat(&["--index", "laddr", "--system", "--format", "json"]);
    sleep(Duration::from_millis(1500));
    let served = Arc::new(AtomicU64::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut servers = Vec::new();
    for _ in 0..CLIENT_THREADS {
        let listener = listener.try_clone().unwrap();
        let (served, done) = (served.clone(), done.clone());
        servers.push(std::thread::spawn(move || loop {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            if done.load(Ordering::Relaxed) {
                return;
            }
            let mut got = [0u8; PAYLOAD];
            if conn.read_exact(&mut got).is_err() {
                continue;
            }
            let _ = conn.write_all(&got);
            let mut rest = Vec::new();
            let _ = conn.read_to_end(&mut rest);
            served.fetch_add(1, Ordering::Relaxed);
        }));
    }
    let clients: Vec<_> = (0..CLIENT_THREADS)
        .map(|_| {
            in_namespace(&ns.name, move || {
                paced_clients(addr, RATE / CLIENT_THREADS, seconds)
            })
        })
        .collect();
    let made: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    // Stop the servers: one connection each, with no data.
    done.store(true, Ordering::Relaxed);
    for _ in 0..CLIENT_THREADS {
        in_namespace(&ns.name, move || drop(TcpStream::connect(addr).unwrap()))
            .join()
            .unwrap();
    }
    for s in servers {
        s.join().unwrap();
    }
    // The last notices reach it within a poll.
    sleep(Duration::from_millis(1500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let out = wait_output(child);
    let report = json_reports(&out.stdout).pop().expect("a report");
    let group = &report["groups"][0];
    let stops = CLIENT_THREADS;
    assert_eq!(served.load(Ordering::Relaxed), made);
    assert_eq!(report["closes_lost"], 0, "{}", report["notices"]);
    let opens = counter(group, "Tcp", "ActiveOpens");
    assert_eq!(opens, made + stops, "{}", report["system"]);
    assert_eq!(counter(group, "Tcp", "PassiveOpens"), made + stops);
    assert_eq!(counter(group, "Tcp", "EstabResets"), 0);
    let bytes = 2 * made * PAYLOAD as u64;
    assert_eq!(counter(group, "Socket", "BytesSent"), bytes, "{group}");
    assert_eq!(counter(group, "Socket", "BytesReceived"), bytes, "{group}");
    for name in ["ActiveOpens", "PassiveOpens", "EstabResets", "AttemptFails"] {
        let residual = &report["system"]["unattributed"][name];
        assert_eq!(residual["unattributed"], 0, "{name}: {residual}");
    }
}
