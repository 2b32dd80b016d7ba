//! Several network namespaces at once: `--all-netns` attributes each
//! namespace's bytes exactly, `--netns` selects by name, path and pid, a
//! namespace deleted mid-run is dropped without error; containers label
//! namespaces, processes own sockets, and an unprivileged user is told what it
//! cannot see. Root is needed; without it each test prints SKIP and its reason.

mod common;

use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use common::{counter, json_reports, run_ok, wait_output, Netns, Pair};

/// Two namespaces joined by a veth pair, 10.77.N.1 <-> 10.77.N.2.
fn veth_pair(a: &Netns, b: &Netns, subnet: u8) {
    let (va, vb) = (
        format!("va{subnet}x{}", std::process::id() % 10000),
        format!("vb{subnet}x{}", std::process::id() % 10000),
    );
    run_ok(Command::new("ip").args([
        "link", "add", &va, "netns", &a.name, "type", "veth", "peer", "name", &vb, "netns", &b.name,
    ]));
    run_ok(Command::new("ip").args([
        "-n",
        &a.name,
        "addr",
        "add",
        &format!("10.77.{subnet}.1/24"),
        "dev",
        &va,
    ]));
    run_ok(Command::new("ip").args([
        "-n",
        &b.name,
        "addr",
        "add",
        &format!("10.77.{subnet}.2/24"),
        "dev",
        &vb,
    ]));
    run_ok(Command::new("ip").args(["-n", &a.name, "link", "set", &va, "up"]));
    run_ok(Command::new("ip").args(["-n", &b.name, "link", "set", &vb, "up"]));
}

fn group_of<'a>(report: &'a serde_json::Value, ns: &Netns) -> Option<&'a serde_json::Value> {
    report["groups"]
        .as_array()?
        .iter()
        .find(|g| g["key"]["netns_name"] == ns.name.as_str())
}

#[test]
fn all_netns_attributes_each_namespace_exactly() {
    skip_unless_root!();
    let (a, b, c) = (Netns::new("alla"), Netns::new("allb"), Netns::new("allc"));
    veth_pair(&a, &b, 1);
    let server = b.listen("10.77.1.2:0");
    let local = c.listen("127.0.0.1:0");
    let run = c.spawn_tcpipstat(&[
        "--all-netns",
        "--index",
        "netns",
        "--timeout",
        "2500ms",
        "--poll",
        "250ms",
        "--format",
        "json",
    ]);
    sleep(Duration::from_millis(800));
    let mut across = Pair::open(&a, &server);
    across.exchange(50_000, 1_234);
    let mut inside = Pair::open(&c, &local);
    inside.exchange(3_000, 0);
    let report = &json_reports(&wait_output(run).stdout)[0];
    let (ga, gb, gc) = (
        group_of(report, &a).expect("ns a"),
        group_of(report, &b).expect("ns b"),
        group_of(report, &c).expect("ns c"),
    );
    assert_eq!(counter(ga, "Socket", "BytesSent"), 50_000);
    assert_eq!(counter(ga, "Socket", "BytesReceived"), 1_234);
    assert_eq!(counter(ga, "Tcp", "ActiveOpens"), 1);
    assert_eq!(counter(gb, "Socket", "BytesReceived"), 50_000);
    assert_eq!(counter(gb, "Socket", "BytesSent"), 1_234);
    assert_eq!(counter(gb, "Tcp", "PassiveOpens"), 1);
    // Both ends of the loopback connection live in c.
    assert_eq!(counter(gc, "Socket", "BytesSent"), 3_000);
    assert_eq!(counter(gc, "Socket", "BytesReceived"), 3_000);
    assert_eq!(counter(gc, "Tcp", "CurrEstab"), 2);
}

#[test]
fn netns_selects_by_name_path_and_pid() {
    skip_unless_root!();
    let (a, b) = (Netns::new("sela"), Netns::new("selb"));
    let la = a.listen("127.0.0.1:0");
    let mut pa = Pair::open(&a, &la);
    pa.exchange(4_242, 0);
    let lb = b.listen("127.0.0.1:0");
    let _pb = Pair::open(&b, &lb);
    let mut sleeper = a
        .command("sleep")
        .arg("30")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(200));
    let path = format!("/run/netns/{}", a.name);
    let pid = sleeper.id().to_string();
    for spec in [a.name.as_str(), path.as_str(), pid.as_str()] {
        let out =
            run_ok(Command::new(common::BIN).args(["--netns", spec, "--once", "--format", "json"]));
        let report = &json_reports(&out.stdout)[0];
        let groups = report["groups"].as_array().unwrap();
        assert_eq!(
            groups.len(),
            3,
            "{spec}: listener and one connection of ns a only: {groups:?}"
        );
        assert!(
            groups
                .iter()
                .all(|g| g["key"]["netns_name"] == a.name.as_str()),
            "{spec}"
        );
        let client = common::tuple_group(report, &pa.client_tuple()).expect("client of ns a");
        assert_eq!(counter(client, "Socket", "BytesSent"), 4_242, "{spec}");
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

#[test]
fn namespace_deleted_mid_run_is_dropped_without_error() {
    skip_unless_root!();
    let keep = Netns::new("keep");
    let doomed = Netns::new("doomed");
    let l = doomed.listen("127.0.0.1:0");
    let mut p = Pair::open(&doomed, &l);
    p.exchange(100, 100);
    let run = keep.spawn_tcpipstat(&[
        "--all-netns",
        "--index",
        "netns",
        "--interval",
        "400ms",
        "--count",
        "4",
        "--format",
        "json",
    ]);
    sleep(Duration::from_millis(600));
    drop(p);
    drop(l);
    drop(doomed);
    let output = wait_output(run);
    let reports = json_reports(&output.stdout);
    assert_eq!(reports.len(), 4);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Notes may quote an OS error (another test's namespace deleted while
    // this run read /run/netns); an error of the run's own is its line.
    assert!(!stderr.contains("tcpipstat: error"), "{stderr}");
    assert!(output.status.success(), "{stderr}");
}

#[test]
fn unknown_namespace_is_a_usage_error() {
    let out = Command::new(common::BIN)
        .args(["--netns", "tis-no-such-ns", "--once"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("'tis-no-such-ns': no network namespace of that name"));
}

/// The pid of this test process, as reports name owners `command[pid]`.
fn own_owner_suffix() -> String {
    format!("[{}]", std::process::id())
}

#[test]
fn processes_name_socket_owners_and_group_by_process() {
    skip_unless_root!();
    let ns = Netns::new("procs");
    let l = ns.listen("127.0.0.1:0");
    let mut pair = Pair::open(&ns, &l);
    pair.exchange(777, 0);
    let out = run_ok(&mut ns.tcpipstat(&["--once", "-p", "--format", "json"]));
    let report = &json_reports(&out.stdout)[0];
    let client = common::tuple_group(report, &pair.client_tuple()).unwrap();
    assert!(
        client["process"]
            .as_str()
            .unwrap()
            .ends_with(&own_owner_suffix()),
        "{client}"
    );
    let out = run_ok(&mut ns.tcpipstat(&["--once", "--index", "process", "--format", "json"]));
    let report = &json_reports(&out.stdout)[0];
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["key"]["pid"], std::process::id());
    assert_eq!(counter(&groups[0], "Socket", "BytesSent"), 777);
    assert_eq!(groups[0]["sockets"], 3);
}

#[test]
fn unprivileged_user_is_told_what_it_cannot_see() {
    skip_unless_root!();
    let ns = Netns::new("unpriv");
    let l = ns.listen("127.0.0.1:0");
    let mut pair = Pair::open(&ns, &l);
    pair.exchange(555, 0);
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
    // Owners: root's process cannot be read by nobody: '?' and a notice.
    let out = as_nobody(&["--once", "-p", "--format", "json"]);
    assert!(out.status.success());
    let report = &json_reports(&out.stdout)[0];
    let client = common::tuple_group(report, &pair.client_tuple()).unwrap();
    assert_eq!(client["process"], "?");
    assert_eq!(
        counter(client, "Socket", "BytesSent"),
        555,
        "counters still work"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/proc/PID/fd could not be read"),
        "{stderr}"
    );
    // Other namespaces: not enterable, said so; exit 2 with the reason.
    let other = Netns::new("unpriv2");
    let out = as_nobody(&["--netns", &other.name, "--once"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs CAP_SYS_ADMIN"), "{stderr}");
    // --all-netns: what cannot be read is named once, the rest still works.
    let out = as_nobody(&["--all-netns", "--once", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not be read") || stderr.contains("needs CAP_SYS_ADMIN"),
        "{stderr}"
    );
    let report = &json_reports(&out.stdout)[0];
    assert!(
        common::tuple_group(report, &pair.client_tuple()).is_some(),
        "own namespace still sampled"
    );
}

#[test]
fn index_container_labels_a_namespace_by_its_process_cgroup() {
    skip_unless_root!();
    // A docker-style cgroup (cgroupfs driver) made by hand on the pids
    // hierarchy, holding a process that lives in the namespace.
    let id = format!(
        "{:064x}",
        0x3f4e_5a6b_7c8d_u64 + u64::from(std::process::id())
    );
    let hierarchy = std::path::Path::new("/sys/fs/cgroup/pids");
    let cgroup = hierarchy.join("docker").join(&id);
    if std::fs::create_dir_all(&cgroup).is_err() {
        eprintln!(
            "SKIP {}: cannot create a cgroup under {}",
            module_path!(),
            hierarchy.display()
        );
        return;
    }
    let ns = Netns::new("ctr");
    let l = ns.listen("127.0.0.1:0");
    let mut pair = Pair::open(&ns, &l);
    pair.exchange(9_999, 0);
    let mut sleeper = ns.command("sleep").arg("30").spawn().unwrap();
    std::fs::write(cgroup.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    let out = run_ok(Command::new(common::BIN).args([
        "--all-netns",
        "--index",
        "container",
        "--once",
        "--format",
        "json",
    ]));
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let _ = std::fs::remove_dir(&cgroup);
    let _ = std::fs::remove_dir(hierarchy.join("docker"));
    let report = &json_reports(&out.stdout)[0];
    let label = format!("docker:{}", &id[..12]);
    let group = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"]["container"] == label.as_str())
        .unwrap_or_else(|| panic!("no group for {label}: {report}"));
    assert_eq!(counter(group, "Socket", "BytesSent"), 9_999);
    assert_eq!(group["sockets"], 3);
}

#[test]
fn a_process_that_closed_its_connection_and_exited_keeps_its_name_in_the_report() {
    skip_unless_root!();
    let ns = Netns::new("procs-gone");
    let l = ns.listen("127.0.0.1:0");
    let port = l.local_addr().unwrap().port();
    // Many polls (owners are pruned every 30), a connection from a shell
    // that sends 1234 bytes, closes and exits in the middle (the shell's
    // builtins write; `sleep` does not inherit the socket).
    let child = ns.spawn_tcpipstat(&[
        "--index",
        "process",
        "--timeout",
        "4",
        "--poll",
        "40ms",
        "--format",
        "json",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(700));
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; printf '%1234s' '' >&3; sleep 0.5 3>&-; exec 3>&-"
    );
    let shell = ns.command("bash").args(["-c", &script]).spawn().unwrap();
    let (mut conn, _) = l.accept().unwrap();
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut conn, &mut got).unwrap();
    assert_eq!(got.len(), 1234);
    let pid = shell.id();
    let status = { shell }.wait().unwrap();
    assert!(status.success());
    let out = common::wait_output(child);
    let report = json_reports(&out.stdout).pop().expect("a report");
    let groups = report["groups"].as_array().unwrap();
    let shell_group = groups
        .iter()
        .find(|g| g["key"]["pid"] == pid)
        .unwrap_or_else(|| panic!("no group for the shell [{pid}]: {groups:?}"));
    assert_eq!(shell_group["key"]["command"], "bash", "{shell_group}");
    assert_eq!(
        counter(shell_group, "Socket", "BytesSent"),
        1234,
        "{shell_group}"
    );
}

#[test]
fn an_unprivileged_netns_by_name_or_by_pid_is_the_same_usage_error() {
    skip_unless_root!();
    let ns = Netns::new("unpriv-name");
    let as_nobody = |spec: &str| common::run_as_nobody(&["--once", "--netns", spec]);
    for spec in [ns.name.as_str(), "1"] {
        let out = as_nobody(spec);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{spec}: {stderr}");
    }
}

#[test]
fn a_lossy_path_counts_out_segments_and_retransmits_as_the_namespace_does() {
    skip_unless_root!();
    // a — m — b, routed, with a token bucket on m's way to b that drops
    // what it cannot queue: a bulk transfer from a retransmits.
    let (a, m, b) = (
        Netns::new("lossa"),
        Netns::new("lossm"),
        Netns::new("lossb"),
    );
    veth_pair(&a, &m, 21);
    veth_pair(&m, &b, 22);
    let ip = |ns: &Netns, args: &[&str]| {
        run_ok(Command::new("ip").arg("-n").arg(&ns.name).args(args));
    };
    ip(&a, &["route", "add", "default", "via", "10.77.21.2"]);
    ip(&b, &["route", "add", "default", "via", "10.77.22.1"]);
    run_ok(m.command("sysctl").args(["-qw", "net.ipv4.ip_forward=1"]));
    // veth_pair's name for m's end of the m—b link.
    let towards_b = format!("va22x{}", std::process::id() % 10000);
    run_ok(m.command("tc").args([
        "qdisc", "add", "dev", &towards_b, "root", "tbf", "rate", "20mbit", "burst", "16kb",
        "limit", "20kb",
    ]));
    let listener = b.listen("10.77.22.2:9000");
    let receiver = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut conn, &mut sink).unwrap();
        sink.len()
    });
    let child = a.spawn_tcpipstat(&["--timeout", "5", "--system", "--format", "json"]);
    std::thread::sleep(std::time::Duration::from_millis(700));
    a.enter(|| {
        let mut conn = std::net::TcpStream::connect("10.77.22.2:9000").unwrap();
        std::io::Write::write_all(&mut conn, &vec![7u8; 3_000_000]).unwrap();
    });
    assert_eq!(receiver.join().unwrap(), 3_000_000);
    let out = common::wait_output(child);
    let report = json_reports(&out.stdout).pop().expect("a report");
    let residual = |name: &str| report["system"]["unattributed"][name].clone();
    let retrans = residual("RetransSegs");
    assert!(
        retrans["system"].as_i64().unwrap() > 0,
        "no loss: {retrans}"
    );
    assert_eq!(retrans["unattributed"], 0, "{retrans}");
    // The MIB's OutSegs leaves retransmissions out; so must the sockets'.
    // What may remain: an ACK from the TIME_WAIT socket.
    let out_segs = residual("OutSegs");
    let left = out_segs["unattributed"].as_i64().unwrap();
    assert!((0..=2).contains(&left), "{out_segs}");
}

#[test]
fn all_netns_system_sums_every_namespace_and_says_how_many() {
    skip_unless_root!();
    let (a, b) = (Netns::new("sysa"), Netns::new("sysb"));
    veth_pair(&a, &b, 31);
    let listener = b.listen("10.77.31.2:9100");
    let child = common::BIN;
    let mut cmd = std::process::Command::new(child);
    cmd.args([
        "--all-netns",
        "--system",
        "--timeout",
        "2",
        "--format",
        "json",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let run = cmd.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut conn, &mut sink).unwrap();
        sink.len()
    });
    a.enter(|| {
        let mut conn = std::net::TcpStream::connect("10.77.31.2:9100").unwrap();
        std::io::Write::write_all(&mut conn, &[1u8; 5000]).unwrap();
    });
    assert_eq!(server.join().unwrap(), 5000);
    let out = common::wait_output(run);
    let report = json_reports(&out.stdout).pop().expect("a report");
    let system = &report["system"];
    assert!(system["namespaces"].as_u64().unwrap() >= 2, "{system}");
    // The first window has its deltas (the agents were there from the start).
    let opens = system["deltas"]["Tcp:ActiveOpens"].as_i64().unwrap_or(0);
    assert!(opens >= 1, "{system}");
}

/// `count` connections to `ns`'s loopback, each closed by its client
/// first: `count` TIME_WAIT sockets that hold no descriptor.
fn time_wait_sockets(ns: &Netns, count: usize) {
    let listener = ns.listen("127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..count {
            let (mut conn, _) = listener.accept().unwrap();
            let mut rest = Vec::new();
            let _ = std::io::Read::read_to_end(&mut conn, &mut rest);
        }
    });
    ns.enter(move || {
        for _ in 0..count {
            drop(std::net::TcpStream::connect(addr).unwrap());
        }
    });
    server.join().unwrap();
}

/// Runs `cmd` with its output read slowly, sampling the process's peak
/// resident memory (VmHWM) each time it has filled the pipe: the process
/// is blocked in its output then, past whatever it held to print.
/// Returns (peak KiB, output).
fn peak_rss_while_printing(cmd: &mut Command) -> (u64, Vec<u8>) {
    use std::io::Read;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let hwm = || {
        let text = std::fs::read_to_string(&status).unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut stdout = child.stdout.take().unwrap();
    let (mut output, mut chunk, mut peak) = (Vec::new(), vec![0u8; 64 * 1024], 0);
    loop {
        sleep(Duration::from_millis(5));
        peak = peak.max(hwm());
        match stdout.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => output.extend_from_slice(&chunk[..n]),
        }
    }
    assert!(child.wait().unwrap().success());
    (peak, output)
}

#[test]
fn netns_once_streams_in_the_memory_of_the_direct_path() {
    skip_unless_root!();
    const SOCKETS: usize = 8_000;
    let ns = Netns::new("flat");
    // Each connect its own port, not a TIME_WAIT one's again.
    run_ok(
        ns.command("sysctl")
            .args(["-qw", "net.ipv4.tcp_tw_reuse=0"]),
    );
    time_wait_sockets(&ns, SOCKETS);
    let args = ["--once", "--format", "json", "--time-wait"];
    let (direct, direct_out) = peak_rss_while_printing(&mut ns.tcpipstat(&args));
    let (through, through_out) = peak_rss_while_printing(
        Command::new(common::BIN)
            .args(["--netns", &ns.name])
            .args(args),
    );
    let groups = |out: &[u8]| json_reports(out)[0]["groups"].as_array().unwrap().len();
    let sockets = groups(&direct_out);
    assert!(sockets >= SOCKETS * 9 / 10, "{sockets}");
    // The same sockets (give or take a few that finished closing between).
    assert!(groups(&through_out).abs_diff(sockets) < SOCKETS / 100);
    // Holding the sockets would take at least a sample each (and holding
    // them for a report takes several times that).
    let held_kib = (sockets * std::mem::size_of::<tcpipstat::model::SocketSample>() / 1024) as u64;
    assert!(
        through < direct + held_kib,
        "--netns peaked at {through} KiB, the direct path at {direct} KiB ({sockets} sockets held would be {held_kib} KiB more)"
    );
    eprintln!("peak RSS over {sockets} sockets: --netns {through} KiB, direct {direct} KiB");
}
