//! tcpipstat on a real terminal, driven through tmux (new-session,
//! send-keys, capture-pane): what a person sees while a run collects and
//! after it reports. Without tmux each test prints SKIP.

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tcpipstat");

/// A detached tmux session of its own, killed on drop.
struct Tmux {
    name: String,
}

impl Tmux {
    fn start(tag: &str, width: u16, height: u16) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("SKIP {tag}: no tmux");
            return None;
        }
        let name = format!("tis-{tag}-{}", std::process::id());
        let ok = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name, "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .args(["sh"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIP {tag}: tmux cannot start a session here");
            return None;
        }
        Some(Tmux { name })
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits up to `limit` for the screen to contain `text`.
    fn wait_for(&self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if screen.contains(text) || Instant::now() > deadline {
                return screen;
            }
            sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

#[test]
fn a_timed_run_shows_its_status_while_collecting_and_erases_it_for_the_report() {
    let Some(tmux) = Tmux::start("status", 160, 40) else {
        return;
    };
    // Port 9 (discard): nothing matches, so the report is short.
    tmux.keys(&[
        &format!("{BIN} --timeout 3s '*:9-*'; echo DONE-$?"),
        "Enter",
    ]);
    let collecting = tmux.wait_for("left,", Duration::from_secs(3));
    assert!(
        collecting.contains("elapsed,") && collecting.contains("(Ctrl-C reports now)"),
        "{collecting}"
    );
    // The command line shows `DONE-$?`; only the exit prints `DONE-0`.
    let done = tmux.wait_for("DONE-0", Duration::from_secs(6));
    assert!(done.contains("DONE-0"), "{done}");
    assert!(done.contains(" s window ("), "{done}");
    assert!(!done.contains("elapsed,"), "the status was erased: {done}");
}

/// A steady flow on loopback to a port of its own (10 kB every 50 ms),
/// until the returned flag is set.
fn flow() -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut sink = [0u8; 65536];
        while conn.read(&mut sink).is_ok_and(|n| n > 0) {}
    });
    let stopping = std::sync::Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stopping.load(Ordering::Relaxed) && Instant::now() < deadline {
            if conn.write_all(&[7u8; 10_000]).is_err() {
                break;
            }
            sleep(Duration::from_millis(50));
        }
    });
    (port, stop)
}

#[test]
fn the_live_view_shows_a_flow_with_its_rate_and_answers_its_keys() {
    let Some(tmux) = Tmux::start("live", 150, 32) else {
        return;
    };
    let (port, stop) = flow();
    let filters = format!("'127.0.0.1:{port}-*' '*-127.0.0.1:{port}'");
    tmux.keys(&[
        &format!("{BIN} --interval 1s {filters}; echo DONE-$?"),
        "Enter",
    ]);
    let port_text = format!(":{port} ");
    let screen = tmux.wait_for("kB/s", Duration::from_secs(6));
    assert!(screen.contains(&port_text), "the flow's port: {screen}");
    assert!(
        screen.contains("send▼") && screen.contains("index tuple"),
        "{screen}"
    );
    // About 200 kB/s each way: 10 kB every 50 ms.
    assert!(
        screen.contains("total: send 1") || screen.contains("total: send 2"),
        "{screen}"
    );
    // s: sorted by the next column.
    tmux.keys(&["s"]);
    let screen = tmux.wait_for("recv▼", Duration::from_secs(3));
    assert!(screen.contains("recv▼"), "{screen}");
    // i: grouped by local port from the next window on.
    tmux.keys(&["i"]);
    let screen = tmux.wait_for("(lport from the next window)", Duration::from_secs(3));
    assert!(screen.contains("(lport from the next window)"), "{screen}");
    let screen = tmux.wait_for("index lport\n", Duration::from_secs(3));
    assert!(screen.contains("index lport\n"), "{screen}");
    assert!(
        screen.contains(&format!("\n{port} ")),
        "the port as a group: {screen}"
    );
    // /: a filter of the view, here the server's side only.
    tmux.keys(&["/"]);
    tmux.keys(&[&format!("*:{port}-*"), "Enter"]);
    let screen = tmux.wait_for("(1 group)", Duration::from_secs(4));
    assert!(screen.contains(&format!("filter: *:{port}-*")), "{screen}");
    assert!(screen.contains("(1 group)"), "{screen}");
    // q: exit 0, the screen given back.
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("DONE-0", Duration::from_secs(3));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(screen.contains("DONE-0"), "{screen}");
    assert!(
        !screen.contains("q quit"),
        "the alternate screen is left: {screen}"
    );
}

#[test]
fn piped_interval_output_has_no_escape_codes_and_stays_text() {
    let out = Command::new(BIN)
        .args(["--interval", "300ms", "--count", "2", "*:9-*"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!out.stdout.contains(&0x1b));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("s window (").count(), 2, "{text}");
}

#[test]
fn a_snapshot_on_a_terminal_lists_the_busiest_groups_and_sums_the_others() {
    let Some(tmux) = Tmux::start("once", 160, 60) else {
        return;
    };
    // 25 listeners of this test's own on loopback, all quiet.
    let listeners: Vec<std::net::TcpListener> = (0..25)
        .map(|_| std::net::TcpListener::bind("127.0.0.2:0").unwrap())
        .collect();
    let filter = "'127.0.0.2:*-*'";
    tmux.keys(&[
        &format!("{BIN} --once --format table --index lport {filter}; echo DONE-$?"),
        "Enter",
    ]);
    let screen = tmux.wait_for("DONE-0", Duration::from_secs(5));
    assert!(
        screen.contains(
            "5 quieter groups (5 sockets) summed into this row: --top N or --all lists more"
        ),
        "{screen}"
    );
    // The total counts every group, summed ones too.
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("│ total ") && l.contains("│ 25 ")),
        "{screen}"
    );
    tmux.keys(&["clear", "Enter"]);
    tmux.keys(&[
        &format!("{BIN} --once --format table --index lport --all {filter}; echo SECOND-$?"),
        "Enter",
    ]);
    let screen = tmux.wait_for("SECOND-0", Duration::from_secs(5));
    assert!(screen.contains("│ total │ 25 "), "{screen}");
    assert!(!screen.contains("quieter groups"), "{screen}");
    drop(listeners);
}
