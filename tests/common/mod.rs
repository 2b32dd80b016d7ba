//! Test harness for the live tests: private network namespaces (`ip netns`),
//! sockets created inside them from a thread that entered the namespace,
//! the built binary run inside with `ip netns exec`, and a root check that
//! skips with a printed reason.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub mod traffic;
pub mod tun;

pub const BIN: &str = env!("CARGO_BIN_EXE_tcpipstat");

/// Why live tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (network namespaces)".to_string());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("needs iproute2's `ip`".to_string()),
    }
}

/// Why precision-mode live tests cannot run here (no root, no tracefs, or
/// a kernel without sock:inet_sock_set_state), if they cannot. tcpipstat
/// mounts tracefs itself; this mounts it too, to look.
pub fn precision_skip_reason() -> Option<String> {
    if let Some(reason) = skip_reason() {
        return Some(reason);
    }
    let roots = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
    if !roots.iter().any(|r| std::path::Path::new(r).exists()) {
        return Some("no tracefs mount point".to_string());
    }
    let _ = Command::new("mount")
        .args(["-t", "tracefs", "nodev", roots[0]])
        .output();
    let has_event = |root: &&str| {
        std::path::Path::new(root)
            .join("events/sock/inet_sock_set_state")
            .exists()
    };
    if !roots.iter().any(has_event) {
        return Some("kernel has no sock:inet_sock_set_state tracepoint".to_string());
    }
    None
}

/// Prints the reason and returns true when the test must skip.
#[macro_export]
macro_rules! skip_unless_root {
    () => {
        if let Some(reason) = common::skip_reason() {
            eprintln!("SKIP {}: {reason}", module_path!());
            return;
        }
    };
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A named network namespace with loopback up, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!(
            "tis-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        run_ok(Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]));
        Netns { name }
    }

    /// Runs `f` on a thread that entered this namespace: sockets it creates
    /// live in the namespace.
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        traffic::in_namespace(&self.name, f)
            .join()
            .expect("namespace thread panicked")
    }

    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    pub fn tcpipstat(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(BIN);
        cmd.args(args);
        cmd
    }

    pub fn spawn_tcpipstat(&self, args: &[&str]) -> Child {
        self.tcpipstat(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcpipstat")
    }

    pub fn listen(&self, addr: &str) -> TcpListener {
        let addr: SocketAddr = addr.parse().unwrap();
        self.enter(move || TcpListener::bind(addr).expect("bind"))
    }

    pub fn connect(&self, addr: SocketAddr) -> TcpStream {
        self.enter(move || TcpStream::connect(addr).expect("connect"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Two namespaces joined by a veth pair, `10.77.SUBNET.1` and `.2`.
pub fn veth_pair(a: &Netns, b: &Netns, subnet: u8) -> (String, String) {
    let (va, vb) = (
        format!("dl{subnet}a{}", std::process::id() % 10000),
        format!("dl{subnet}b{}", std::process::id() % 10000),
    );
    run_ok(Command::new("ip").args([
        "link", "add", &va, "netns", &a.name, "type", "veth", "peer", "name", &vb, "netns", &b.name,
    ]));
    for (ns, dev, host) in [(a, &va, 1), (b, &vb, 2)] {
        let address = format!("10.77.{subnet}.{host}/24");
        run_ok(Command::new("ip").args(["-n", &ns.name, "addr", "add", &address, "dev", dev]));
        run_ok(Command::new("ip").args(["-n", &ns.name, "link", "set", dev, "up"]));
    }
    (va, vb)
}

/// Runs the binary as user nobody (setpriv), outside any test namespace.
pub fn run_as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(args)
        .output()
        .expect("run setpriv")
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let output = cmd.output().expect("run command");
    assert!(
        output.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A connected pair: the client end and the accepted server end.
pub struct Pair {
    pub client: TcpStream,
    pub server: TcpStream,
}

impl Pair {
    pub fn open(ns: &Netns, listener: &TcpListener) -> Pair {
        let client = ns.connect(listener.local_addr().unwrap());
        let (server, _) = listener.accept().unwrap();
        Pair { client, server }
    }

    /// Sends `to_server` bytes one way and `to_client` the other, reading
    /// them all, so both ends' counters settle on exact values.
    pub fn exchange(&mut self, to_server: usize, to_client: usize) {
        transfer(&mut self.client, &mut self.server, to_server);
        transfer(&mut self.server, &mut self.client, to_client);
    }

    pub fn client_tuple(&self) -> (String, u16, String, u16) {
        tuple(&self.client)
    }

    pub fn server_tuple(&self) -> (String, u16, String, u16) {
        tuple(&self.server)
    }
}

pub fn tuple(s: &TcpStream) -> (String, u16, String, u16) {
    let l = s.local_addr().unwrap();
    let r = s.peer_addr().unwrap();
    (l.ip().to_string(), l.port(), r.ip().to_string(), r.port())
}

fn transfer(from: &mut TcpStream, to: &mut TcpStream, bytes: usize) {
    let data = vec![0x5a; bytes];
    let writer = {
        let mut from = from.try_clone().unwrap();
        std::thread::spawn(move || from.write_all(&data).unwrap())
    };
    let mut got = vec![0u8; bytes];
    to.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    to.read_exact(&mut got).unwrap();
    writer.join().unwrap();
}

/// Parses the JSON lines tcpipstat printed.
pub fn json_reports(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// The group of a tuple report whose key is this tuple.
pub fn tuple_group<'a>(
    report: &'a serde_json::Value,
    tuple: &(String, u16, String, u16),
) -> Option<&'a serde_json::Value> {
    report["groups"].as_array()?.iter().find(|g| {
        let k = &g["key"];
        k["laddr"] == tuple.0.as_str()
            && k["lport"] == tuple.1
            && k["raddr"] == tuple.2.as_str()
            && k["rport"] == tuple.3
    })
}

/// A counter of a group, 0 when absent (zeros are left out by default).
pub fn counter(group: &serde_json::Value, section: &str, name: &str) -> u64 {
    group["counters"][section][name].as_u64().unwrap_or(0)
}

/// Sum of a counter over every group of a report.
pub fn total(report: &serde_json::Value, section: &str, name: &str) -> u64 {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| counter(g, section, name))
        .sum()
}

/// The last report of a run (a window's, for --timeout runs).
pub fn window_report(stdout: &[u8]) -> serde_json::Value {
    json_reports(stdout)
        .into_iter()
        .last()
        .expect("a window report")
}

pub fn wait_output(child: Child) -> Output {
    let output = child.wait_with_output().expect("wait tcpipstat");
    assert!(
        output.status.success(),
        "tcpipstat failed ({:?}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
