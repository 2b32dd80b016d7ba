//! A private ftrace instance for the delayed-ACK timer, read from its
//! `trace_pipe`. Why not a perf ring like every other event: on this
//! project's 6.18 host, timer expiries raised while a CPU idles reach perf
//! rings only in part (8 of 14 in a test where perf's counting mode and
//! the namespace's DelayedACKs both said 14, no lost or throttle record),
//! while ftrace's own buffer kept all 14. Delayed-ACK timers fire mostly
//! on idle CPUs, so they are read here.
//!
//! The instance (`instances/tcpipstat-PID`) is the run's own: the event
//! filtered in the kernel to `tcp_delack_timer`, pointers printed raw
//! (`options/hash-ptr` 0: kernels without that option print hashed
//! pointers, so this is refused there), timestamps on the `mono` clock
//! (CLOCK_MONOTONIC, as polls are marked), new events dropped rather than
//! old ones overwritten when the buffer is full, and those drops counted.
//! It is removed when dropped.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Bytes read from the pipe per call, at most (the rest waits).
const READ_LIMIT: usize = 1 << 20;
/// A line longer than this is not an event line of ours: skipped.
const LINE_LIMIT: usize = 4096;
/// Per-CPU buffer of the instance.
const BUFFER_KB: u32 = 1024;

pub struct FtracePipe {
    dir: PathBuf,
    event_dir: PathBuf,
    pipe: File,
    partial: Vec<u8>,
    chunk: Vec<u8>,
}

impl FtracePipe {
    /// Opens instance `instances/tcpipstat-PID` with one event enabled
    /// under the first of `filters` the kernel takes (each made only if
    /// the ones before it were refused).
    pub fn open(
        tracefs: &Path,
        group: &str,
        name: &str,
        filters: &mut dyn Iterator<Item = Result<String, String>>,
    ) -> Result<FtracePipe, String> {
        let dir = tracefs
            .join("instances")
            .join(format!("tcpipstat-{}", std::process::id()));
        let say = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
        fs::create_dir(&dir).map_err(|e| say(&dir, e))?;
        // From here on, Drop removes the instance whatever fails.
        let event_dir = dir.join("events").join(group).join(name);
        let pipe_path = dir.join("trace_pipe");
        let mut opened = FtracePipe {
            pipe: File::open("/dev/null").map_err(|e| say(Path::new("/dev/null"), e))?,
            dir: dir.clone(),
            event_dir: event_dir.clone(),
            partial: Vec::new(),
            chunk: vec![0; 64 * 1024],
        };
        let hash_ptr = dir.join("options/hash-ptr");
        if !hash_ptr.exists() {
            return Err("this kernel's trace text hashes pointers (no options/hash-ptr)".into());
        }
        // Recording task names hooks sched_switch for names never
        // printed here; instances of some kernels have no say in it (the
        // option is the top level's only).
        let record_cmd = dir.join("options/record-cmd");
        if record_cmd.exists() {
            fs::write(&record_cmd, "0").map_err(|e| say(&record_cmd, e))?;
        }
        let settings: [(PathBuf, String); 4] = [
            (hash_ptr, "0".into()),
            (dir.join("trace_clock"), "mono".into()),
            (dir.join("options/overwrite"), "0".into()),
            (dir.join("buffer_size_kb"), BUFFER_KB.to_string()),
        ];
        for (path, value) in &settings {
            fs::write(path, value).map_err(|e| say(path, e))?;
        }
        let filter_path = event_dir.join("filter");
        let mut refused = Some("no filter to set".to_string());
        for filter in filters {
            match fs::write(&filter_path, filter?) {
                Ok(()) => {
                    refused = None;
                    break;
                }
                Err(e) => refused = Some(say(&filter_path, e)),
            }
        }
        if let Some(why) = refused {
            return Err(why);
        }
        opened.pipe = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&pipe_path)
            .map_err(|e| say(&pipe_path, e))?;
        let enable = event_dir.join("enable");
        fs::write(&enable, "1").map_err(|e| say(&enable, e))?;
        Ok(opened)
    }

    /// Hands every whole line the pipe holds now to `line` (none waits).
    pub fn read_lines(&mut self, mut line: impl FnMut(&str)) {
        let mut read = 0;
        while read < READ_LIMIT {
            let n = match self.pipe.read(&mut self.chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            read += n;
            self.partial.extend_from_slice(&self.chunk[..n]);
            let mut start = 0;
            while let Some(end) = self.partial[start..].iter().position(|b| *b == b'\n') {
                if let Ok(text) = std::str::from_utf8(&self.partial[start..start + end]) {
                    line(text);
                }
                start += end + 1;
            }
            self.partial.drain(..start);
            if self.partial.len() > LINE_LIMIT {
                self.partial.clear();
            }
        }
    }

    /// Events the instance's buffer had no room for, since it opened.
    pub fn dropped(&self) -> u64 {
        let Ok(cpus) = fs::read_dir(self.dir.join("per_cpu")) else {
            return 0;
        };
        cpus.flatten()
            .filter_map(|cpu| fs::read_to_string(cpu.path().join("stats")).ok())
            .map(|stats| dropped_in_stats(&stats))
            .sum()
    }
}

impl Drop for FtracePipe {
    fn drop(&mut self) {
        let _ = fs::write(self.event_dir.join("enable"), "0");
        // The pipe must be closed before the instance can go.
        self.pipe = match File::open("/dev/null") {
            Ok(f) => f,
            Err(_) => return,
        };
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The "dropped events" of one CPU's `stats` file.
fn dropped_in_stats(stats: &str) -> u64 {
    stats
        .lines()
        .find_map(|l| l.strip_prefix("dropped events:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// (CLOCK_MONOTONIC ns, timer address, callback name) of one
/// `timer_expire_entry` line of trace text:
/// `<idle>-0 [001] ..s1. 13952.730853: timer_expire_entry: timer=ffff888… function=tcp_delack_timer now=…`.
pub fn timer_expiry(line: &str) -> Option<(u64, u64, &str)> {
    let (head, fields) = line.split_once(": timer_expire_entry: ")?;
    let stamp = head.rsplit(' ').next()?;
    let (seconds, micros) = stamp.split_once('.')?;
    let time_ns = seconds
        .parse::<u64>()
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(micros.parse::<u64>().ok()?.checked_mul(1000)?)?;
    let field = |name: &str| {
        fields
            .split(' ')
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
    };
    let timer = field("timer")?;
    let timer = u64::from_str_radix(timer.trim_start_matches("0x"), 16).ok()?;
    Some((time_ns, timer, field("function")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_line_gives_time_timer_and_callback() {
        let line = "          <idle>-0       [001] ..s1. 13952.730853: timer_expire_entry: timer=ffff8881eef20940 function=tcp_delack_timer now=4298380412 baseclk=4298380412";
        assert_eq!(
            timer_expiry(line),
            Some((13_952_730_853_000, 0xffff8881eef20940, "tcp_delack_timer"))
        );
        // 5.x without baseclk, a task name with spaces and dashes.
        let line = " kworker/u4:2 x-123 [000] d.s2. 7.000001: timer_expire_entry: timer=0xffff000000001000 function=tcp_delack_timer now=1";
        assert_eq!(
            timer_expiry(line),
            Some((7_000_001_000, 0xffff000000001000, "tcp_delack_timer"))
        );
    }

    #[test]
    fn other_lines_and_garbage_are_none() {
        for line in [
            "",
            "# tracer: nop",
            "CPU:1 [LOST 3 EVENTS]",
            "x-1 [000] .... 1.5: timer_start: timer=ffff function=f",
            "x-1 [000] .... notatime: timer_expire_entry: timer=ffff function=f",
            "x-1 [000] .... 1.5: timer_expire_entry: timer=zz function=f",
            "x-1 [000] .... 99999999999999999999.5: timer_expire_entry: timer=ff function=f",
        ] {
            assert_eq!(timer_expiry(line), None, "{line}");
        }
    }

    #[test]
    fn dropped_events_are_read_from_cpu_stats() {
        let stats = "entries: 0\noverrun: 0\ncommit overrun: 0\nbytes: 0\noldest event ts: 0.0\nnow ts: 1.0\ndropped events: 17\nread events: 3\n";
        assert_eq!(dropped_in_stats(stats), 17);
        assert_eq!(dropped_in_stats("garbage"), 0);
    }

    #[test]
    fn a_refused_filter_gives_way_to_the_next_and_none_taken_is_an_error() {
        let tracefs = Path::new("/sys/kernel/tracing");
        if !tracefs.join("instances").is_dir() || !tracefs.join("options/hash-ptr").exists() {
            eprintln!(
                "skipped: no tracefs with instances and hash-ptr at {}",
                tracefs.display()
            );
            return;
        }
        let filters = |texts: &[&str]| -> Vec<Result<String, String>> {
            texts.iter().map(|t| Ok(t.to_string())).collect()
        };
        let open = |list: Vec<Result<String, String>>| {
            FtracePipe::open(
                tracefs,
                "timer",
                "timer_expire_entry",
                &mut list.into_iter(),
            )
        };
        let pipe = match open(filters(&["no_such_field == 1", "function == 0x1"])) {
            Ok(pipe) => pipe,
            Err(why) if why.contains("Permission denied") || why.contains("Read-only") => {
                eprintln!("skipped: {why}");
                return;
            }
            Err(why) => panic!("{why}"),
        };
        let filter = fs::read_to_string(pipe.event_dir.join("filter")).unwrap();
        assert_eq!(filter.trim(), "function == 0x1");
        let dir = pipe.dir.clone();
        drop(pipe);
        assert!(!dir.exists(), "the instance is removed");
        assert!(open(filters(&["no_such_field == 1"])).is_err());
        let why = open(vec![Err("kallsyms hidden".into())]).err();
        assert_eq!(why.as_deref(), Some("kallsyms hidden"));
        assert!(open(Vec::new()).is_err());
    }
}
