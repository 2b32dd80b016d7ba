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
