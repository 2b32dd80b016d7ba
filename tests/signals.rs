//! How a run ends on a signal: those whose default would kill it (HUP when
//! its terminal closes, USR1, ALRM...) end it as SIGTERM does, with its
//! final report and precision mode's ftrace instance removed; one ignored
//! at start (`nohup`) stays ignored; and a precision run that SIGKILL left
//! no chance to clean up has its instance removed by the next precision run.
//! The first tests need no privilege; the precision ones print SKIP and
//! their reason without root or tracefs.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_tcpipstat");

/// Precision runs see each other's kernel events and tracefs: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcpipstat")
}

/// A signal mask line of /proc/PID/status (`SigCgt`, `SigIgn`), if the
/// process is there.
fn signal_mask(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    u64::from_str_radix(mask.trim(), 16).ok()
}

/// Waits until process `pid` catches `signal` or ignores it (its handlers
/// are installed), so that sending it tests the run, not its start.
fn wait_until_settled(pid: u32, signal: Signal) {
    let bit = 1u64 << (signal as i32 - 1);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let caught = signal_mask(pid, "SigCgt").unwrap_or(0);
        let ignored = signal_mask(pid, "SigIgn").unwrap_or(0);
        if (caught | ignored) & bit != 0 {
            // Past the handlers, the run opens its source: let it poll.
            sleep(Duration::from_millis(300));
            return;
        }
        sleep(Duration::from_millis(10));
    }
    panic!("process {pid} never caught nor ignored {signal}");
}

fn send(child: &Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).expect("kill");
}

/// The run's outcome, which must be a success with one window report.
fn final_report(child: Child, what: &str) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what}: {:?}, stderr: {stderr}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{what}: no final report in {stdout:?}; stderr: {stderr}"));
    assert_eq!(report["type"], "window", "{what}: {report}");
    report
}

#[test]
fn sighup_ends_the_run_with_its_final_report() {
    let child = spawn(&["--format", "json"]);
    wait_until_settled(child.id(), Signal::SIGHUP);
    send(&child, Signal::SIGHUP);
    final_report(child, "SIGHUP");
}

#[test]
fn terminating_signals_end_the_run_with_its_final_report() {
    for signal in [
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
        Signal::SIGVTALRM,
        Signal::SIGPROF,
        Signal::SIGXCPU,
        Signal::SIGPWR,
    ] {
        let child = spawn(&["--format", "json"]);
        wait_until_settled(child.id(), signal);
        send(&child, signal);
        final_report(child, signal.as_str());
    }
}

#[test]
fn sighup_ignored_at_start_stays_ignored() {
    if Command::new("nohup").arg("true").output().is_err() {
        eprintln!("SKIP sighup_ignored_at_start_stays_ignored: no nohup command");
        return;
    }
    // nohup ignores SIGHUP, then executes the run in its place.
    let mut child = Command::new("nohup")
        .args([BIN, "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_settled(child.id(), Signal::SIGTERM);
    send(&child, Signal::SIGHUP);
    sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "a run under nohup ended on SIGHUP"
    );
    send(&child, Signal::SIGTERM);
    final_report(child, "SIGTERM after an ignored SIGHUP");
}

/// Where precision run `pid` keeps its ftrace instance.
fn instance_of(pid: u32) -> PathBuf {
    PathBuf::from(format!("/sys/kernel/tracing/instances/tcpipstat-{pid}"))
}

/// Starts a precision run and waits for its ftrace instance; None (the
/// run stopped) when this kernel's precision mode makes none.
fn precision_run_with_instance() -> Option<Child> {
    let mut child = spawn(&["--precision", "--format", "json"]);
    let instance = instance_of(child.id());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if instance.is_dir() {
            // Past the instance, the run's first poll.
            sleep(Duration::from_millis(300));
            return Some(child);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    eprintln!(
        "SKIP: this kernel's precision mode made no ftrace instance: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    None
}

macro_rules! skip_unless_precision {
    () => {
        if let Some(reason) = common::precision_skip_reason() {
            eprintln!("SKIP {}: {reason}", module_path!());
            return;
        }
        let _one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    };
}

#[test]
fn a_precision_run_sent_sighup_prints_its_report_and_leaves_no_instance() {
    skip_unless_precision!();
    let Some(child) = precision_run_with_instance() else {
        return;
    };
    let instance = instance_of(child.id());
    send(&child, Signal::SIGHUP);
    let report = final_report(child, "SIGHUP in precision mode");
    assert!(report["precision"].is_object(), "{report}");
    assert!(!instance.exists(), "{} left behind", instance.display());
}

#[test]
fn a_precision_run_killed_with_sigkill_leaves_an_instance_the_next_run_removes() {
    skip_unless_precision!();
    let Some(mut killed) = precision_run_with_instance() else {
        return;
    };
    let stale = instance_of(killed.id());
    killed.kill().unwrap();
    killed.wait().unwrap();
    // What the kernel keeps of a run that could not clean up: its
    // instance, still tracing.
    assert!(stale.is_dir(), "{} went with its run", stale.display());
    let on = std::fs::read_to_string(stale.join("tracing_on")).unwrap_or_default();
    assert_eq!(on.trim(), "1");
    let next = Command::new(BIN)
        .args(["--precision", "--timeout", "1", "--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert!(next.status.success(), "{stderr}");
    assert!(!stale.exists(), "{} still there: {stderr}", stale.display());
    let name = stale.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        stderr.contains("removed the ftrace instance(s) of runs that were killed")
            && stderr.contains(&name),
        "{stderr}"
    );
}

#[test]
fn a_live_precision_run_keeps_its_instance_when_another_starts() {
    skip_unless_precision!();
    let Some(live) = precision_run_with_instance() else {
        return;
    };
    let instance = instance_of(live.id());
    let other = Command::new(BIN)
        .args(["--precision", "--timeout", "1", "--format", "json"])
        .output()
        .unwrap();
    assert!(other.status.success());
    assert!(instance.is_dir(), "a live run's instance was removed");
    send(&live, Signal::SIGTERM);
    final_report(live, "SIGTERM in precision mode");
    assert!(!instance.exists());
}
