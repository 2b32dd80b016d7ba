//! tcpipstat on a real terminal, driven through tmux (new-session,
//! send-keys, capture-pane): what a person sees while a run collects and
//! after it reports. Without tmux each test prints SKIP.

mod common;

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

/// A UDP receiver on loopback that never reads, sent 1,000-byte
/// datagrams every millisecond until the flag is set: its queue fills and
/// it drops about a thousand a second.
fn udp_flood() -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = std::sync::Arc::clone(&stop);
    std::thread::spawn(move || {
        let _held = receiver;
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stopping.load(Ordering::Relaxed) && Instant::now() < deadline {
            let _ = sender.send_to(&[7u8; 1000], ("127.0.0.1", port));
            sleep(Duration::from_millis(1));
        }
    });
    (port, stop)
}

#[test]
fn the_live_view_shows_a_udp_receiver_dropping_and_sorts_by_its_drops() {
    let Some(tmux) = Tmux::start("liveudp", 80, 24) else {
        return;
    };
    let (port, stop) = udp_flood();
    tmux.keys(&[
        &format!("{BIN} -u --interval 1s --index lport '127.0.0.1:{port}-*'; echo DONE-$?"),
        "Enter",
    ]);
    let row_start = format!("udp {port} ");
    let screen = tmux.wait_for("udp drops", Duration::from_secs(6));
    // The first window may end before the queue is full: wait for drops.
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut screen = screen;
    let drops = loop {
        let drops = screen
            .lines()
            .find(|l| l.starts_with(&row_start))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|d| d.parse::<f64>().ok());
        if drops.is_some_and(|d| d > 0.0) || Instant::now() > deadline {
            break drops;
        }
        sleep(Duration::from_millis(200));
        screen = tmux.screen();
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    // About a thousand datagrams a second, most dropped once it is full.
    assert!(drops.is_some_and(|d| d > 100.0), "{drops:?}: {screen}");
    let header = screen.lines().find(|l| l.starts_with("lport")).unwrap();
    assert!(
        header.contains("drops/s▼") && header.contains("recv-q"),
        "{header}"
    );
    assert!(
        !header.contains("send"),
        "UDP alone shows no TCP column: {header}"
    );
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("DONE-0", Duration::from_secs(3));
    assert!(screen.contains("DONE-0"), "{screen}");
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

/// A python3 process in `ns` holding both ends of a connection on
/// 127.0.0.1:`port` and writing 40 kB every 50 ms to it: an owner the
/// live view must name. Killed on drop.
struct Writer {
    child: std::process::Child,
}

const WRITER: &str = r#"
import socket, sys, threading, time
port = int(sys.argv[1])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen()
client = socket.create_connection(("127.0.0.1", port))
server, _ = srv.accept()
def sink():
    while server.recv(65536):
        pass
threading.Thread(target=sink, daemon=True).start()
print("ready", flush=True)
end = time.time() + 120
while time.time() < end:
    client.sendall(b"x" * 40000)
    time.sleep(0.05)
"#;

impl Writer {
    fn start(ns: &common::Netns, port: u16) -> Option<Writer> {
        use std::io::BufRead;
        let spawned = ns
            .command("python3")
            .args(["-c", WRITER, &port.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(mut child) = spawned else {
            return None;
        };
        let mut line = String::new();
        let stdout = child.stdout.take()?;
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let writer = Writer { child };
        (line.trim() == "ready").then_some(writer)
    }

    /// `command[pid]`, as tcpipstat names a socket's owner.
    fn owner(&self) -> String {
        let pid = self.child.id();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        format!("{}[{pid}]", comm.trim_end())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The table's columns, by header name.
const COLUMNS: [&str; 12] = [
    "tuple", "process", "socks", "send", "recv", "segs/s", "retrans", "opens/s", "resets/s",
    "state", "rtt", "cwnd",
];

/// The table of a live-view screen: its header cells and its rows (the
/// lines under the header down to the first blank one).
fn table(screen: &str) -> (Vec<String>, Vec<String>) {
    let mut lines = screen.lines().skip_while(|l| !l.starts_with("tuple "));
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("a table header:\n{screen}"));
    let cells = header
        .split_whitespace()
        .map(|c| c.trim_end_matches('▼').to_string())
        .collect();
    let rows = lines
        .take_while(|l| !l.trim().is_empty() && !l.contains("windows)"))
        .map(str::to_string)
        .collect();
    (cells, rows)
}

/// Values whose unit or digits were cut: `993.9 k`, `0.`, `33µ`, `1.0`
/// without its unit.
fn cut_values(row: &str) -> Vec<String> {
    let tokens: Vec<&str> = row.split_whitespace().collect();
    let number = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.');
    let mut cut = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1).copied().unwrap_or("");
        if number(token) && token.ends_with('.') {
            cut.push(token.to_string());
        }
        // A rate's value is always followed by its whole unit.
        if token.contains('.') && number(token) && !token.ends_with('%') {
            let rate = ["B/s", "kB/s", "MB/s", "GB/s"].contains(&next);
            // opens/s and resets/s are bare numbers with one decimal.
            let bare = token.split('.').nth(1).is_some_and(|d| d.len() == 1);
            if !rate && !bare {
                cut.push(format!("{token} {next}"));
            }
            if !rate && ["B", "B/", "k", "kB", "kB/", "M", "MB", "MB/"].contains(&next) {
                cut.push(format!("{token} {next}"));
            }
        }
        let digits_then = token.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        if digits_then.len() < token.len() && ["µ", "m"].contains(&digits_then) {
            cut.push(token.to_string());
        }
        if number(token) && ["B", "B/", "k", "kB", "kB/", "M", "MB", "MB/"].contains(&next) {
            cut.push(format!("{token} {next}"));
        }
    }
    cut
}

/// Checks a live-view screen's table: every header a whole column name,
/// no value cut, the tuple column as wide as the longest tuple shown and
/// one gap, and what is left out said (nothing at 200 columns). Returns
/// the header cells and the rows.
fn table_reads_whole(screen: &str, width: u16) -> (Vec<String>, Vec<String>) {
    let (header, rows) = table(screen);
    for cell in &header {
        assert!(
            COLUMNS.contains(&cell.as_str()),
            "header {cell:?} at {width}:\n{screen}"
        );
    }
    for row in &rows {
        assert!(
            cut_values(row).is_empty(),
            "{:?} at {width}:\n{screen}",
            cut_values(row)
        );
    }
    let longest = rows
        .iter()
        .map(|r| {
            r.split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .count()
        })
        .max()
        .unwrap_or_else(|| panic!("rows:\n{screen}"));
    let header_line = screen.lines().find(|l| l.starts_with("tuple ")).unwrap();
    let second = header_line[5..].find(|c: char| c != ' ').unwrap() + 5;
    assert_eq!(
        second,
        longest + 1,
        "the tuple column at {width}:\n{screen}"
    );
    let left_out: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| !header.iter().any(|h| h == c))
        .collect();
    let said = screen.contains(&format!("not shown (too narrow): {}", left_out.join(", ")))
        || screen.contains(&format!(
            "{} columns not shown (too narrow)",
            left_out.len()
        ));
    assert_eq!(
        said,
        !left_out.is_empty(),
        "{left_out:?} at {width}:\n{screen}"
    );
    if width >= 200 {
        assert!(left_out.is_empty(), "{left_out:?} at {width}:\n{screen}");
    }
    (header, rows)
}

/// The live view at `width`×`height` on real traffic in a private
/// namespace: whole headers, whole values, a tuple column as wide as its
/// longest tuple, the owner of a live connection, what is left out said,
/// notes shown as they come, and a `/` prompt that opens empty and that
/// Ctrl-U clears.
fn live_view_reads_whole_at(width: u16, height: u16) {
    if let Some(reason) = common::skip_reason() {
        eprintln!("SKIP live view at {width}x{height}: {reason}");
        return;
    }
    let tag = format!("view{width}");
    let Some(tmux) = Tmux::start(&tag, width, height) else {
        return;
    };
    let ns = common::Netns::new(&tag);
    let port = 5000 + width;
    let Some(writer) = Writer::start(&ns, port) else {
        eprintln!("SKIP live view at {width}x{height}: no python3 to hold a connection");
        return;
    };
    let owner = writer.owner();
    // A small close buffer: a burst of connections overflows it, which is
    // noted while the view runs.
    tmux.keys(&[
        &format!(
            "ip netns exec {} {BIN} --interval 1s --close-buffer 4K; echo DONE-$?",
            ns.name
        ),
        "Enter",
    ]);
    let screen = tmux.wait_for(&owner, Duration::from_secs(8));
    let (header, rows) = table_reads_whole(&screen, width);
    // The process column names the writer on its connection's rows.
    assert_eq!(
        header.get(1).map(String::as_str),
        Some("process"),
        "{screen}"
    );
    let flow: Vec<&String> = rows
        .iter()
        .filter(|r| r.contains(&format!(":{port} ")))
        .collect();
    assert_eq!(flow.len(), 2, "both ends of the flow at {width}:\n{screen}");
    for row in flow {
        assert!(
            row.contains(&format!(" {owner} ")),
            "{owner} at {width}:\n{screen}"
        );
    }
    assert!(
        screen.contains(" kB/s") || screen.contains(" MB/s"),
        "{screen}"
    );
    // A burst of short connections overflows the close buffer: the note
    // shows in the view while it runs.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", port + 1).parse().unwrap();
    let listener = ns.listen(&addr.to_string());
    let count = 3000;
    let server =
        common::traffic::in_namespace(&ns.name, move || common::traffic::serve(listener, count));
    common::traffic::in_namespace(&ns.name, move || {
        common::traffic::clients(addr, count, false)
    })
    .join()
    .unwrap();
    server.join().unwrap();
    let screen = tmux.wait_for("close notices lost since", Duration::from_secs(5));
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("note ") && l.contains("close notices lost")),
        "the note in the view at {width}:\n{screen}"
    );
    // Short connections' rows (owners no poll saw, TIME_WAIT) read whole
    // too, with the process column kept.
    let (header, _) = table_reads_whole(&screen, width);
    assert!(header.iter().any(|h| h == "process"), "{screen}");
    tmux.keys(&["n"]);
    let screen = tmux.wait_for("notes: ", Duration::from_secs(2));
    assert!(screen.contains("in all (Esc or n closes)"), "{screen}");
    tmux.keys(&["n"]);
    // `/` opens an empty prompt; Ctrl-U clears what was typed.
    tmux.keys(&["/"]);
    let screen = tmux.wait_for("filter: _", Duration::from_secs(2));
    assert!(
        screen.contains("filter: _"),
        "an empty prompt at {width}:\n{screen}"
    );
    tmux.keys(&["*:1-*"]);
    let screen = tmux.wait_for("filter: *:1-*_", Duration::from_secs(2));
    assert!(screen.contains("filter: *:1-*_"), "{screen}");
    tmux.keys(&["C-u"]);
    let screen = tmux.wait_for("filter: _", Duration::from_secs(2));
    assert!(
        screen.contains("filter: _"),
        "Ctrl-U cleared it at {width}:\n{screen}"
    );
    // With a filter in force, typing replaces it.
    tmux.keys(&[&format!("*:{port}-*"), "Enter"]);
    tmux.wait_for(&format!("filter: *:{port}-*"), Duration::from_secs(2));
    tmux.keys(&["/", "9"]);
    let screen = tmux.wait_for("filter: 9_", Duration::from_secs(2));
    assert!(
        screen.contains("filter: 9_"),
        "typing replaced the filter:\n{screen}"
    );
    tmux.keys(&["Escape"]);
    sleep(Duration::from_millis(300));
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("DONE-0", Duration::from_secs(3));
    assert!(screen.contains("DONE-0"), "{screen}");
    drop(writer);
}

#[test]
fn the_live_view_at_80x24_shows_whole_columns_the_owner_and_its_notes() {
    live_view_reads_whole_at(80, 24);
}

#[test]
fn the_live_view_at_120x40_shows_whole_columns_the_owner_and_its_notes() {
    live_view_reads_whole_at(120, 40);
}

#[test]
fn the_live_view_at_200x50_shows_every_column_the_owner_and_its_notes() {
    live_view_reads_whole_at(200, 50);
}
