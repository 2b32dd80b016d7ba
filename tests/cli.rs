//! The binary's contract at its edges, needing no privileges: usage errors
//! are one line with exit 2, help exits 0, a snapshot of the current
//! namespace works for any user, and a closed stdout pipe is not a panic.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_tcpipstat");

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    for args in [
        vec!["--index", "bogus"],
        vec!["--format", "yaml"],
        vec!["--precision", "bogus"],
        vec!["index=bogus"],
        vec!["index=lport", "onclose=1"],
        vec!["--interval", "fast"],
        vec!["10.0.0.0/40:*-*"],
        vec!["--no-such-flag"],
        vec!["--listen", "9977"],
        vec!["--listen", ":9977", "--once"],
        vec!["--listen", ":9977", "--max-series", "0"],
        vec!["--listen", ":9977", "--series-expiry", "soon"],
        vec!["--max-series", "5"],
        vec!["--once", "--top", "0"],
        vec!["--once", "--top", "few"],
        vec!["--once", "--sort", "NoSuchCounter"],
        vec!["--onclose", "--top", "3"],
        vec!["--onclose", "--sort", "BytesSent"],
        vec!["--once", "--all", "--top", "3"],
        vec!["--listen", ":9977", "--sort", "BytesSent"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("tcpipstat: error: "),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    let out = Command::new(BIN)
        .args(["index=lport", "onclose=1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("onclose must be used with index=tuple"));
    let out = Command::new(BIN)
        .args(["--max-series", "5"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--listen"),
        "the missing option is named"
    );
}

#[test]
fn bad_enum_value_error_names_it_and_the_choices() {
    let out = Command::new(BIN)
        .args(["--index", "bogus"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tcpipstat: error: invalid value 'bogus' for '--index <INDEX>' \
         (one of tuple, laddr, raddr, lport, rport, netns, container, process, pod)\n"
    );
}

#[test]
fn help_exits_zero() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--index"));
    assert!(
        help.contains("Examples:") && help.contains("tcpipstat --interval 1s"),
        "{help}"
    );
}

/// The manual rendered by man(1) as a terminal would show it, or None
/// (with the reason printed) where there is no man.
fn rendered_manual() -> Option<String> {
    let page = Command::new(BIN)
        .args(["--generate", "man"])
        .output()
        .unwrap();
    assert!(page.status.success());
    if Command::new("man").arg("--version").output().is_err() {
        eprintln!("SKIP rendering: no man(1) here; the roff was generated");
        return None;
    }
    let mut man = Command::new("man")
        .args(["-l", "-"])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut man.stdin.take().unwrap(), &page.stdout).unwrap();
    let rendered = man.wait_with_output().unwrap();
    assert!(rendered.status.success());
    let warnings = String::from_utf8_lossy(&rendered.stderr);
    assert!(warnings.trim().is_empty(), "man warns: {warnings}");
    Some(String::from_utf8_lossy(&rendered.stdout).into_owned())
}

/// The lines of section `name` of a rendered manual.
fn manual_section<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| *l != name)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

#[test]
fn the_generated_manual_renders_every_section_with_man() {
    let Some(text) = rendered_manual() else {
        return;
    };
    let headings: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(' ') && !l.starts_with("tcpipstat"))
        .collect();
    assert_eq!(headings, tcpipstat::manual::SECTIONS, "{text}");
    for section in tcpipstat::manual::SECTIONS {
        let body = manual_section(&text, section);
        assert!(
            body.iter().any(|l| !l.trim().is_empty()),
            "{section} is empty"
        );
    }
    // Examples are one per entry, not run together in one paragraph.
    let examples = manual_section(&text, "EXAMPLES");
    let commands = examples
        .iter()
        .filter(|l| l.trim_start().starts_with("tcpipstat ") || l.trim_start().starts_with("sudo "))
        .count();
    assert!(commands >= 10, "{examples:#?}");
    let legend = manual_section(&text, "COUNTERS").join(" ");
    assert!(
        legend.contains("~  marks") || legend.contains("~ marks"),
        "{legend}"
    );
}

#[test]
fn the_manual_exit_status_section_gives_each_code() {
    let Some(text) = rendered_manual() else {
        return;
    };
    let section = manual_section(&text, "EXIT STATUS");
    for code in ["0", "1", "2"] {
        assert!(
            section
                .iter()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))),
            "{code}: {section:#?}"
        );
    }
    let two = section.join(" ");
    assert!(two.contains("--netns"), "{two}");
}

#[test]
fn help_shows_record_source_and_every_index() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    // Words as a reader sees them, whatever the wrapping.
    let words = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for shown in [
        "--record <DIR>",
        "--source <SOURCE>",
        "[possible values: sockdiag, proc]",
        "--record-trace <DIR>",
        "the process holding it",
        "or its Kubernetes pod and container",
    ] {
        assert!(words.contains(shown), "{shown}: {help}");
    }
}

#[test]
fn the_bash_completion_completes_index_values() {
    let script = Command::new(BIN)
        .args(["--generate", "complete-bash"])
        .output()
        .unwrap();
    assert!(script.status.success());
    let path = std::env::temp_dir().join(format!("tcpipstat-completion-{}", std::process::id()));
    std::fs::write(&path, &script.stdout).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(tcpipstat --index ''); COMP_CWORD=2; \
             COMP_LINE='tcpipstat --index '; COMP_POINT=${{#COMP_LINE}}; \
             _tcpipstat tcpipstat '' --index; echo \"${{COMPREPLY[@]}}\"",
            path.display()
        ))
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let words = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        words.trim(),
        "tuple laddr raddr lport rport netns container process pod",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shell in ["complete-zsh", "complete-fish"] {
        let out = Command::new(BIN)
            .args(["--generate", shell])
            .output()
            .unwrap();
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
}

#[test]
fn once_works_in_the_current_namespace_as_json() {
    let out = Command::new(BIN)
        .args(["--once", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["type"], "snapshot");
    assert!(report["groups"].is_array());
}

#[test]
fn a_bad_sort_counter_is_one_line_naming_it_and_exit_2() {
    let out = Command::new(BIN)
        .args(["--once", "--sort", "BytesSnt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tcpipstat: error: unknown counter 'BytesSnt' for --sort \
         (a counter as reports name it, e.g. BytesSent or RetransSegs, or activity)\n"
    );
}

/// Three connections of this test's own to a listener on `addr`, their
/// clients sending `sizes` bytes; returns the listener's port and the
/// sockets (kept open by the caller).
fn connections(addr: &str, sizes: &[usize]) -> (u16, Vec<TcpStream>) {
    use std::io::{Read, Write};
    let listener = TcpListener::bind(addr).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut kept = Vec::new();
    for &size in sizes {
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(&vec![1u8; size]).unwrap();
        server.read_exact(&mut vec![0u8; size]).unwrap();
        kept.extend([client, server]);
    }
    kept.push(TcpStream::connect(listener.local_addr().unwrap()).unwrap());
    kept.extend(listener.accept().map(|(s, _)| s));
    (port, kept)
}

fn once(args: &[&str]) -> String {
    let out = Command::new(BIN).arg("--once").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn top_and_sort_list_the_first_and_sum_the_rest_in_every_format() {
    let (port, _sockets) = connections("127.0.0.4:0", &[1000, 3000, 2000]);
    // The four server ends (one received nothing; the listener is closed).
    let filter = format!("127.0.0.4:{port}-*");
    let ranked = ["--top", "1", "--sort", "BytesReceived", &filter];
    let json = |extra: &[&str]| -> serde_json::Value {
        let args: Vec<&str> = ["--format", "json"].iter().chain(extra).copied().collect();
        serde_json::from_str(&once(&args)).unwrap()
    };
    let top = json(&ranked);
    let all = json(&[&filter]);
    let groups = top["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{top}");
    assert_eq!(groups[0]["counters"]["Socket"]["BytesReceived"], 3000);
    assert_eq!(top["others"]["groups"], 3, "{top}");
    assert_eq!(top["others"]["counters"]["Socket"]["BytesReceived"], 3000);
    assert_eq!(top["totals"], all["totals"]);
    assert_eq!(all["groups"].as_array().unwrap().len(), 4);
    let text = once(&ranked);
    assert!(
        text.contains("\nOthers: 3 quieter groups (3 sockets)"),
        "{text}"
    );
    let table: Vec<&str> = ["--format", "table"]
        .iter()
        .chain(&ranked)
        .copied()
        .collect();
    let table = once(&table);
    let row = |key: &str| -> Vec<String> {
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("│ {key} ")))
            .unwrap_or_else(|| panic!("no row {key}: {table}"));
        line.split('│').map(|c| c.trim().to_string()).collect()
    };
    // Cells: "", key, sockets, BytesReceived, ...
    assert_eq!(row("others: 3 groups")[2..4], ["3", "3000"], "{table}");
    assert_eq!(row("total")[2..4], ["4", "6000"], "{table}");
}

#[test]
fn time_wait_sockets_are_one_line_unless_asked_for() {
    use std::io::Read;
    let listener = TcpListener::bind("127.0.0.5:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for _ in 0..3 {
        // The client closes first: its end waits out TIME_WAIT.
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        drop(client);
        server.read_to_end(&mut Vec::new()).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    // The client ends (from 127.0.0.1, loopback's source address).
    let clients = format!("*-127.0.0.5:{port}");
    let folded = once(&[&clients]);
    assert!(!folded.contains("TIME-WAIT"), "{folded}");
    assert!(
        folded.contains("\nTIME_WAIT: 3 sockets summed into this line: --time-wait lists them\n"),
        "{folded}"
    );
    let listed = once(&["--time-wait", &clients]);
    assert_eq!(listed.matches("state=TIME-WAIT").count(), 3, "{listed}");
    assert!(!listed.contains("TIME_WAIT: "), "{listed}");
    let json: serde_json::Value =
        serde_json::from_str(&once(&["--format", "json", &clients])).unwrap();
    assert_eq!(json["time_wait"]["time_wait_sockets"], 3, "{json}");
    assert_eq!(json["groups"].as_array().unwrap().len(), 0, "{json}");
}

/// Runs tcpipstat with `args` while a connection of this test's own on
/// 127.0.0.6 moves bytes: to the server only for `one_way`, then both
/// ways; returns its stdout. `FILTER` in `args` becomes a filter for the
/// server's end.
fn during_traffic(args: &[&str], one_way: std::time::Duration) -> String {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = TcpListener::bind("127.0.0.6:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let mut buf = [0u8; 1000];
            while !stop.load(Ordering::Relaxed) {
                client.write_all(&buf).unwrap();
                server.read_exact(&mut buf).unwrap();
                if started.elapsed() > one_way {
                    server.write_all(&buf).unwrap();
                    client.read_exact(&mut buf).unwrap();
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    let filter = format!("127.0.0.6:{port}-*");
    let args: Vec<&str> = args
        .iter()
        .map(|a| if *a == "FILTER" { filter.as_str() } else { a })
        .collect();
    let out = Command::new(BIN).args(&args).output().unwrap();
    stop.store(true, Ordering::Relaxed);
    traffic.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_approximate_legend_is_said_once_in_a_run_of_several_reports() {
    for format in ["text", "table"] {
        let args = [
            "--interval",
            "300ms",
            "--count",
            "3",
            "--format",
            format,
            "FILTER",
        ];
        let out = during_traffic(&args, std::time::Duration::ZERO);
        // InSegs is always approximate: every report shows a ~.
        assert!(out.matches('~').count() >= 3, "{format}: {out}");
        assert_eq!(
            out.matches("(~ marks a count inferred").count(),
            1,
            "{format}: {out}"
        );
    }
}

#[test]
fn table_columns_stay_those_of_the_first_table_and_later_counters_are_listed_under() {
    // The server's end receives only in the first window, then sends too:
    // BytesSent first counts in a later window.
    let args = [
        "--interval",
        "600ms",
        "--count",
        "3",
        "--format",
        "table",
        "FILTER",
    ];
    let out = during_traffic(&args, std::time::Duration::from_millis(900));
    // Each table's header cells (their padding follows the values).
    let headers: Vec<Vec<&str>> = out
        .lines()
        .zip(out.lines().skip(1))
        .filter(|(above, _)| above.starts_with('┌'))
        .map(|(_, header)| header.split('│').map(str::trim).collect())
        .collect();
    assert_eq!(headers.len(), 3, "{out}");
    assert!(headers.iter().all(|h| *h == headers[0]), "{out}");
    assert!(!headers[0].contains(&"BytesSent"), "{out}");
    assert!(
        out.contains("(counters outside the columns the run's first table fixed:)"),
        "{out}"
    );
    assert!(out.contains(": BytesSent = "), "{out}");
}

#[test]
fn seed_spellings_run() {
    let out = Command::new(BIN)
        .args([
            "index=raddr",
            "timeout=0.2",
            "nozeros=0",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["type"], "window");
    assert_eq!(report["index"], "raddr");
}

#[test]
fn closed_stdout_is_not_a_panic() {
    let mut child = Command::new(BIN)
        .args(["--once", "--zeros"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?} {stderr}", out.status);
}

#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let arg = std::ffi::OsStr::from_bytes(b"\xff\xfe:*-*");
    let out = Command::new(BIN).arg(arg).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not valid UTF-8"), "{stderr}");
}

/// Runs the binary with stdout or stderr on /dev/full (no space left).
fn onto_full_device(args: &[&str], stderr_full: bool) -> std::process::Output {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    if stderr_full {
        cmd.stderr(full()).stdout(Stdio::null());
    } else {
        cmd.stdout(full()).stderr(Stdio::piped());
    }
    cmd.output().unwrap()
}

#[test]
fn output_that_cannot_be_written_ends_with_one_line_and_exit_1_never_a_panic() {
    for args in [vec!["--help"], vec!["--version"], vec!["--once"]] {
        let out = onto_full_device(&args, false);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.contains("writing the output"), "{args:?}: {stderr}");
    }
    // An error message that cannot be written: still exit 2, no panic.
    let out = onto_full_device(&["--index", "bogus"], true);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_into_a_closed_pipe_exits_0() {
    let mut child = Command::new(BIN)
        .arg("--help")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn a_ring_too_large_to_lock_is_refused_with_the_reason() {
    let out = Command::new(BIN)
        .args(["--ring-pages", "262144", "--precision"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("locked in memory"), "{stderr}");
}

#[test]
fn a_period_shorter_than_a_poll_runs_back_to_back_without_spinning() {
    let started = std::time::Instant::now();
    let out = Command::new(BIN)
        .args(["--poll", "1ns", "--timeout", "1", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    let started = std::time::Instant::now();
    let out = Command::new(BIN)
        .args(["--interval", "1ns", "--count", "5", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5);
}

/// Runs a completion of `line` (the word being completed last, empty
/// after a trailing space) through the function `complete -p tcpipstat`
/// names, in `dir`, and returns the words offered.
fn bash_complete(script: &std::path::Path, dir: &std::path::Path, line: &str) -> Vec<String> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {script}; f=$(complete -p tcpipstat | sed -E 's/.* -F ([^ ]+) .*/\\1/'); \
             read -ra COMP_WORDS <<< \"$1\"; [[ $1 == *' ' ]] && COMP_WORDS+=(''); \
             COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); COMP_LINE=\"$1\"; COMP_POINT=${{#1}}; \
             $f tcpipstat \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\" 2>/dev/null; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script = script.display()
        ))
        .arg("bash")
        .arg(line)
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn the_bash_completion_offers_namespace_names_for_netns_not_files() {
    let script = Command::new(BIN)
        .args(["--generate", "complete-bash"])
        .output()
        .unwrap();
    let dir =
        std::env::temp_dir().join(format!("tcpipstat-netns-completion-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tcpipstat.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    // A file in the directory completion runs in: not a namespace.
    std::fs::write(dir.join("zz-not-a-namespace"), "").unwrap();
    let offered = bash_complete(&path, &dir, "tcpipstat --netns zz");
    assert!(offered.is_empty(), "files offered: {offered:?}");
    // A path once a '/' is typed.
    let offered = bash_complete(&path, &dir, "tcpipstat --netns /proc/self/ns/ne");
    assert_eq!(offered, ["/proc/self/ns/net"]);
    // Other options still complete as clap's script does.
    let offered = bash_complete(&path, &dir, "tcpipstat --format ");
    assert_eq!(offered, ["text", "table", "json"]);
    // Names under /run/netns: one made for the test where root can.
    let name = format!("tcpipstat-completion-{}", std::process::id());
    let made = nix::unistd::geteuid().is_root()
        && Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
    if made {
        let offered = bash_complete(&path, &dir, "tcpipstat --netns tcpipstat-completion-");
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        assert!(offered.contains(&name), "{offered:?}");
        assert!(
            offered
                .iter()
                .all(|o| o.starts_with("tcpipstat-completion-")),
            "{offered:?}"
        );
    } else {
        eprintln!("SKIP the name part: needs root and ip(8) to make a namespace");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Stderr of a run that must fail with `code`, checked to be one line.
fn one_line_error(args: &[&str], code: i32) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("tcpipstat: error: "), "{stderr}");
    stderr
}

#[test]
fn long_values_are_echoed_once_and_cut() {
    let long = "a".repeat(130_000);
    let cases: Vec<Vec<String>> = [
        vec!["--netns", &long],
        vec!["--index", &long],
        vec!["--format", &long],
        vec!["--timeout", &long],
        vec!["--interval", &long],
        vec!["--poll", &long],
        vec!["--count", &long],
        vec!["--precision", &long],
        vec!["--ring-pages", &long],
        vec!["--close-buffer", &long],
        vec!["--listen", &long],
        vec!["--listen", ":9977", "--max-series", &long],
        vec!["--listen", ":9977", "--series-expiry", &long],
        vec!["--source", &long],
        vec!["--generate", &long],
    ]
    .iter()
    .map(|args| args.iter().map(|a| a.to_string()).collect())
    .chain([
        vec![format!("nozeros={long}")],
        vec![format!("onclose={long}")],
        vec![format!("index={long}")],
        vec![format!("timeout={long}")],
        vec![format!("{long}=1")],
        vec![format!("--{long}")],
        vec![format!("--zeros={long}")],
    ])
    .collect();
    for args in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = one_line_error(&args, 2);
        let shown = |s: &str| s.chars().take(60).collect::<String>();
        assert!(
            stderr.len() < 600,
            "{}: {} bytes",
            shown(args[0]),
            stderr.len()
        );
        assert_eq!(stderr.matches('…').count(), 1, "{stderr}");
        assert!(stderr.contains("characters)"), "{stderr}");
    }
}

#[test]
fn control_characters_in_values_are_escaped_not_echoed_raw() {
    for args in [
        vec!["--index", "a\u{1b}[31mred\nx"],
        vec!["--format", "it's\u{7}"],
        vec!["--timeout", "1\r2"],
        vec!["--netns", "blue\u{1b}[2J"],
        vec!["--count", "\u{1b}]0;title\u{7}"],
        vec!["--bogus\u{1b}[1m"],
        vec!["--once=x\u{1b}[1m"],
        vec!["nozeros=\u{1b}[5m"],
    ] {
        let stderr = one_line_error(&args, 2);
        assert!(
            !stderr.trim_end().contains(|c: char| c.is_control()),
            "{args:?}: {stderr:?}"
        );
        assert!(
            stderr.contains("\\u{1b}") || stderr.contains("\\u{7}") || stderr.contains("\\r"),
            "{args:?}: {stderr}"
        );
    }
    let stderr = one_line_error(&["--index", "a\u{1b}[31mred\nx"], 2);
    assert!(
        stderr.contains("invalid value 'a\\u{1b}[31mred\\nx' for '--index <INDEX>'"),
        "{stderr}"
    );
    // A quote inside the value cannot end the quoting early.
    let stderr = one_line_error(&["--format", "it's"], 2);
    assert!(stderr.contains("'it\\'s'"), "{stderr}");
}

#[test]
fn a_seed_flag_value_is_echoed_once() {
    let stderr = one_line_error(&["nozeros=yes"], 2);
    assert_eq!(stderr.matches("yes").count(), 1, "{stderr}");
    assert!(stderr.contains("nozeros="), "{stderr}");
}

#[test]
fn a_record_directory_that_cannot_be_made_is_exit_1_naming_record() {
    let stderr = one_line_error(
        &["--record", "/dev/null/tcpipstat-record", "--timeout", "0.2"],
        1,
    );
    assert!(
        stderr.contains("--record '/dev/null/tcpipstat-record'"),
        "{stderr}"
    );
    assert!(!stderr.contains("writing the output"), "{stderr}");
}

/// A namespace made for a test, deleted on drop.
struct NamedNetns(String);

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn exit_status_is_what_the_manual_says() {
    // 0: done.
    let out = Command::new(BIN)
        .args(["--timeout", "0.1", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // 1: a failure while running.
    one_line_error(&["--record", "/dev/null/x", "--timeout", "0.1"], 1);
    // 2: bad usage.
    one_line_error(&["--index", "bogus"], 2);
    one_line_error(&["--netns", "tcpipstat-no-such-namespace", "--once"], 2);
    // 2: --netns without the privilege to enter it.
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "SKIP the unprivileged --netns part: needs root to make a namespace and drop to nobody"
        );
        return;
    }
    let name = format!("tcpipstat-exit-{}", std::process::id());
    if !Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("SKIP the unprivileged --netns part: ip netns add failed");
        return;
    }
    let _netns = NamedNetns(name.clone());
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(["--netns", &name, "--once"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("CAP_SYS_ADMIN"), "{stderr}");
}

#[test]
fn out_of_file_descriptors_is_said_as_such_not_as_permission_denied() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: as root, an unreadable /proc/PID/fd is not a permission matter");
        return;
    }
    // Where the limit bites depends on the fds the run holds: try a range,
    // from one that cannot even list /proc to ones that read some fds.
    let mut said = Vec::new();
    for limit in 5..=14 {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {limit} && exec \"$0\" -p --timeout 1.2 --format json"
            ))
            .arg(BIN)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !stderr.contains("permission denied"),
            "ulimit -n {limit}: {stderr}"
        );
        said.push(stderr);
    }
    assert!(
        said.iter().any(|s| s.contains("too many open files")),
        "{said:#?}"
    );
}

#[test]
fn with_proc_hidden_owners_are_said_to_be_unreadable_and_why() {
    if !nix::unistd::geteuid().is_root()
        || Command::new("unshare").arg("--version").output().is_err()
    {
        eprintln!("SKIP: needs root and unshare(1) for a mount namespace with /proc hidden");
        return;
    }
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs none /proc && exec \"$0\" -p --timeout 0.5 --format json")
        .arg(BIN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("/proc could not be listed (it is no procfs"),
        "{stderr}"
    );
    assert!(!stderr.contains("needs root"), "{stderr}");
}

#[test]
fn a_taken_listen_port_is_one_line_naming_it_and_exits_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = Command::new(BIN)
        .args(["--listen", &addr.to_string(), "--timeout", "5"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        format!("tcpipstat: error: cannot listen on {addr}: address already in use\n")
    );
}

#[test]
fn a_conflict_with_several_options_names_them_all_on_its_line() {
    let out = Command::new(BIN)
        .args(["--listen", ":9977", "--once", "--count", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.trim_end().ends_with(':'), "{stderr}");
    assert!(stderr.contains("'--once'"), "{stderr}");
    assert!(stderr.contains("'--count <N>'"), "{stderr}");
}

#[test]
fn export_self_needs_listen() {
    let out = Command::new(BIN).args(["--export-self"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
}
