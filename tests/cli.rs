//! The binary's contract at its edges, needing no privileges: usage errors
//! are one line with exit 2, help exits 0, a snapshot of the current
//! namespace works for any user, and a closed stdout pipe is not a panic.

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
         (one of tuple, laddr, raddr, lport, rport, netns, container, process)\n"
    );
}

#[test]
fn help_exits_zero() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--index"));
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
