//! `--index pod` on a kubelet-like node built for the test: two "pods"
//! (processes moved into cgroups named as the kubelet's systemd and
//! cgroupfs drivers name them, under a test-owned parent) exchange known
//! bytes in a private network namespace, while tcpipstat runs in a private
//! mount namespace whose /var/log is a tmpfs holding the kubelet's
//! /var/log/pods and /var/log/containers entries. Needs root, unshare(1),
//! python3 and a writable cgroup v2 hierarchy; without them it prints SKIP.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use common::{counter, wait_output, window_report, Netns, BIN};

/// Bytes the client pod sends, and the server pod answers.
const UP: u64 = 7_000;
const DOWN: u64 = 3_000;

/// Where cgroup v2 is mounted (the unified hierarchy of a hybrid setup).
fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(fields[1]))
    })
}

fn skip_reason() -> Option<String> {
    if let Some(reason) = common::skip_reason() {
        return Some(reason);
    }
    for tool in ["unshare", "python3"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Some(format!("needs {tool}"));
        }
    }
    let Some(root) = cgroup2_root() else {
        return Some("no cgroup v2 hierarchy mounted".to_string());
    };
    let probe = root.join(format!("tis-probe-{}", std::process::id()));
    if std::fs::create_dir(&probe).is_err() {
        return Some(format!("{} is not writable", root.display()));
    }
    let _ = std::fs::remove_dir(&probe);
    None
}

/// A cgroup tree under a test-owned parent, removed (leaves first) on drop.
struct Cgroups {
    parent: PathBuf,
}

impl Cgroups {
    fn new(root: &Path) -> Cgroups {
        let parent = root.join(format!("tis-k8s-{}", std::process::id()));
        std::fs::create_dir_all(&parent).expect("test cgroup parent");
        Cgroups { parent }
    }

    /// Creates `relative` (the kubelet's path) and returns it.
    fn make(&self, relative: &str) -> PathBuf {
        let path = self.parent.join(relative);
        std::fs::create_dir_all(&path).expect("cgroup");
        path
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        // Deepest first: cgroups are removed with rmdir, empty ones only.
        let mut dirs = Vec::new();
        let mut stack = vec![self.parent.clone()];
        while let Some(dir) = stack.pop() {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(e.path());
                    }
                }
            }
            dirs.push(dir);
        }
        for dir in dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// A process that joins `cgroup`, then runs python `script` inside `ns`.
fn spawn_in(cgroup: &Path, ns: &Netns, script: &str) -> Child {
    let procs = cgroup.join("cgroup.procs");
    Command::new("sh")
        .args([
            "-c",
            "echo $$ > \"$1\" && exec ip netns exec \"$2\" python3 -c \"$3\"",
            "sh",
        ])
        .arg(&procs)
        .args([&ns.name, script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn pod process")
}

/// Serves one connection: reads UP bytes, answers DOWN, holds it open.
const SERVER: &str = "
import socket, sys, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept(); n = 0
while n < int(sys.argv[1]):
    d = c.recv(65536)
    if not d: break
    n += len(d)
c.sendall(b'y' * int(sys.argv[2])); time.sleep(int(sys.argv[3]))
";

/// Connects to a port, sends UP bytes, reads DOWN, holds it open.
const CLIENT: &str = "
import socket, sys, time
c = socket.create_connection(('127.0.0.1', int(sys.argv[4])))
c.sendall(b'x' * int(sys.argv[1])); n = 0
while n < int(sys.argv[2]):
    d = c.recv(65536)
    if not d: break
    n += len(d)
time.sleep(int(sys.argv[3]))
";

/// `script` with `sys.argv[1..]` set to `args`.
fn with_args(script: &str, args: &[u64]) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    format!(
        "import sys\nsys.argv = ['pod', {}]\n{script}",
        args.join(", ")
    )
}

/// A pod's UID and a container ID, distinct per test run.
fn ids(n: u32) -> (String, String) {
    let seed = std::process::id();
    let uid = format!(
        "{seed:08x}-{n:04x}-4000-8000-{:012x}",
        u64::from(seed) * 7 + u64::from(n)
    );
    let id = format!("{seed:08x}{n:08x}").repeat(4);
    (uid, id)
}

#[test]
fn index_pod_names_each_pods_bytes_from_the_kubelets_layout() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP {}: {reason}", module_path!());
        return;
    }
    let root = cgroup2_root().expect("checked");
    let cgroups = Cgroups::new(&root);
    let (web_uid, web_id) = ids(1);
    let (loader_uid, loader_id) = ids(2);
    // systemd driver and containerd for one pod, cgroupfs driver for the other.
    let web_cgroup = cgroups.make(&format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{web_id}.scope",
        web_uid.replace('-', "_")
    ));
    let loader_cgroup = cgroups.make(&format!("kubepods/besteffort/pod{loader_uid}/{loader_id}"));

    // The kubelet's layout; pod web-0 has a sidecar too, so that only the
    // link names its container.
    let layout = format!(
        "set -e; mount -t tmpfs tmpfs /var/log; \
         mkdir -p /var/log/containers /var/log/pods/shop_web-0_{web_uid}/nginx /var/log/pods/shop_web-0_{web_uid}/sidecar \
                  /var/log/pods/batch_loader-7f9c_{loader_uid}/fetch; \
         touch /var/log/pods/shop_web-0_{web_uid}/nginx/0.log /var/log/pods/batch_loader-7f9c_{loader_uid}/fetch/0.log; \
         ln -s /var/log/pods/shop_web-0_{web_uid}/nginx/0.log /var/log/containers/web-0_shop_nginx-{web_id}.log; \
         ln -s /var/log/pods/batch_loader-7f9c_{loader_uid}/fetch/0.log /var/log/containers/loader-7f9c_batch_fetch-{loader_id}.log; \
         exec \"$@\""
    );
    let ns = Netns::new("pods");
    let run = Command::new("unshare")
        .args([
            "--mount", "sh", "-c", &layout, "sh", "ip", "netns", "exec", &ns.name, BIN,
        ])
        .args([
            "--timeout",
            "5s",
            "--poll",
            "1s",
            "--format",
            "json",
            "--index",
            "pod",
            "127.0.0.1:*-127.0.0.1:*",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcpipstat");
    sleep(Duration::from_millis(800));

    let hold = 8;
    let mut server = spawn_in(&web_cgroup, &ns, &with_args(SERVER, &[UP, DOWN, hold]));
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("server port");
    let port: u64 = line.trim().parse().expect("server port");
    let mut client = spawn_in(
        &loader_cgroup,
        &ns,
        &with_args(CLIENT, &[UP, DOWN, hold, port]),
    );

    let out = wait_output(run);
    let _ = (server.kill(), client.kill(), server.wait(), client.wait());
    let report = window_report(&out.stdout);
    let groups = report["groups"].as_array().expect("groups");
    let group = |namespace: &str, pod: &str, container: &str| {
        groups
            .iter()
            .find(|g| {
                g["key"]["namespace"] == namespace
                    && g["key"]["pod"] == pod
                    && g["key"]["container"] == container
            })
            .unwrap_or_else(|| panic!("no group {namespace}/{pod}/{container} in {report}"))
    };
    let web = group("shop", "web-0", "nginx");
    assert_eq!(counter(web, "Socket", "BytesReceived"), UP, "{web}");
    assert_eq!(counter(web, "Socket", "BytesSent"), DOWN, "{web}");
    let loader = group("batch", "loader-7f9c", "fetch");
    assert_eq!(counter(loader, "Socket", "BytesSent"), UP, "{loader}");
    assert_eq!(counter(loader, "Socket", "BytesReceived"), DOWN, "{loader}");
}
