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
//! It is removed when dropped; one a killed run left behind (still
//! tracing) is removed by the next precision run ([`remove_stale_instances`]).
//!
//! An expiry is not a delayed ACK. The kernel counts DelayedACKs only where
//! `tcp_delack_timer_handler` finds `ICSK_ACK_TIMER` still pending and
//! sends (`tcp_send_ack`, then `LINUX_MIB_DELAYEDACKS`). An ACK that left
//! before (with data, or as a quick or immediate ACK) clears the pending
//! bit without stopping the timer, which then fires for nothing; no event
//! says so. What shows the difference is the ACK itself: the handler runs
//! inside the expiry, on its CPU, so a packet queued to a device
//! (net:net_dev_queue) on that CPU between the timer's
//! `timer_expire_entry` and its `timer_expire_exit` is the ACK the timer
//! sent. [`DelackBrackets`] pairs them; the instance also records those
//! two events (the exit of every timer, which no filter can narrow to
//! ours; packets only those queued in softirq context and no longer than
//! a pure ACK can be).

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
/// The instance of run PID is `instances/tcpipstat-PID`.
const INSTANCE_PREFIX: &str = "tcpipstat-";

pub struct FtracePipe {
    dir: PathBuf,
    event_dir: PathBuf,
    /// Events enabled after the first, disabled again on drop.
    more_events: Vec<PathBuf>,
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
            .join(format!("{INSTANCE_PREFIX}{}", std::process::id()));
        let say = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
        fs::create_dir(&dir).map_err(|e| say(&dir, e))?;
        // From here on, Drop removes the instance whatever fails.
        let event_dir = dir.join("events").join(group).join(name);
        let pipe_path = dir.join("trace_pipe");
        let mut opened = FtracePipe {
            pipe: File::open("/dev/null").map_err(|e| say(Path::new("/dev/null"), e))?,
            dir: dir.clone(),
            event_dir: event_dir.clone(),
            more_events: Vec::new(),
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

    /// Records one more event in the instance, under `filter` when given.
    pub fn enable(&mut self, group: &str, name: &str, filter: Option<&str>) -> Result<(), String> {
        let event_dir = self.dir.join("events").join(group).join(name);
        let say = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
        if let Some(filter) = filter {
            let path = event_dir.join("filter");
            fs::write(&path, filter).map_err(|e| say(&path, e))?;
        }
        let enable = event_dir.join("enable");
        fs::write(&enable, "1").map_err(|e| say(&enable, e))?;
        self.more_events.push(event_dir);
        Ok(())
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
        for event_dir in &self.more_events {
            let _ = fs::write(event_dir.join("enable"), "0");
        }
        // The pipe must be closed before the instance can go.
        self.pipe = match File::open("/dev/null") {
            Ok(f) => f,
            Err(_) => return,
        };
        let _ = fs::remove_dir(&self.dir);
    }
}

/// What became of the run that made an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Maker {
    /// Its pid is no process, or a zombie (whose files are closed).
    Gone,
    /// Its pid is a process that started after the instance was made:
    /// another process, the pid reused.
    Reused,
    /// Its pid is a process that may be the maker (one in another pid
    /// namespace, too, where the number means another process here).
    Running,
}

/// Clock skew allowed between a process's start (whole seconds since
/// boot's wall time) and an instance's creation time.
const START_SLACK: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether the run that made an instance at `created` (its directory's
/// time) is gone. The process's name is not trusted (a copy of the binary
/// may have any name); its start time tells a reused pid.
fn maker_of(pid: i32, created: std::time::SystemTime) -> Maker {
    let stat = match ::procfs::process::Process::new(pid).and_then(|p| p.stat()) {
        Ok(stat) => stat,
        Err(::procfs::ProcError::NotFound(_)) => return Maker::Gone,
        // Unreadable: perhaps a process; left alone.
        Err(_) => return Maker::Running,
    };
    if stat.state == 'Z' || stat.state == 'X' {
        return Maker::Gone;
    }
    let Ok(boot) = ::procfs::boot_time_secs() else {
        return Maker::Running;
    };
    let ticks = ::procfs::ticks_per_second().max(1);
    let started = std::time::UNIX_EPOCH
        + std::time::Duration::from_secs(boot)
        + std::time::Duration::from_millis(stat.starttime.saturating_mul(1000) / ticks);
    if started > created + START_SLACK {
        Maker::Reused
    } else {
        Maker::Running
    }
}

/// What [`remove_stale_instances`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StaleInstances {
    /// The instances removed (their directory names).
    pub removed: Vec<String>,
    /// Those that could not be, with why.
    pub failed: Vec<String>,
}

impl StaleInstances {
    /// What to tell the user, if anything.
    pub fn notices(&self) -> Vec<String> {
        let mut notices = Vec::new();
        if !self.removed.is_empty() {
            notices.push(format!(
                "precision: removed the ftrace instance(s) of runs that were killed: {}",
                self.removed.join(", ")
            ));
        }
        if !self.failed.is_empty() {
            notices.push(format!(
                "precision: cannot remove the ftrace instance(s) of runs that were killed: {}",
                self.failed.join("; ")
            ));
        }
        notices
    }
}

/// Removes the `tcpipstat-PID` instances under `tracefs` whose run is gone
/// (killed with SIGKILL, it could not remove its own, which then goes on
/// tracing into its buffer). A live run's instance is never removed: its
/// pid is a process that started before the instance was made (in another
/// pid namespace, too, where the kernel refuses with EBUSY while the run
/// holds the instance's trace_pipe open, which a run does throughout).
pub fn remove_stale_instances(tracefs: &Path) -> StaleInstances {
    let mut done = StaleInstances::default();
    let Ok(entries) = fs::read_dir(tracefs.join("instances")) else {
        return done;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(INSTANCE_PREFIX)
            .and_then(|pid| pid.parse::<i32>().ok())
            .filter(|pid| *pid > 0)
        else {
            continue;
        };
        let Ok(created) = entry.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        if maker_of(pid, created) == Maker::Running {
            continue;
        }
        match fs::remove_dir(entry.path()) {
            Ok(()) => done.removed.push(name),
            // In use after all: someone's.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => done.failed.push(format!("{name}: {e}")),
        }
    }
    done.removed.sort();
    done
}

/// The "dropped events" of one CPU's `stats` file.
fn dropped_in_stats(stats: &str) -> u64 {
    stats
        .lines()
        .find_map(|l| l.strip_prefix("dropped events:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// What one line of the instance's trace text says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeEvent<'a> {
    /// `timer_expire_entry`: the timer's callback is about to run.
    Expiry { timer: u64, function: &'a str },
    /// `timer_expire_exit`: it returned.
    ExpiryEnd { timer: u64 },
    /// `net_dev_queue`: a packet was handed to a device.
    Queued,
    /// `CPU:N [LOST M EVENTS]`: the CPU's buffer was full; what it lost
    /// is unknown.
    Lost,
}

/// One event of the trace text with its CPU and CLOCK_MONOTONIC time (0
/// for a loss line, which carries none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeLine<'a> {
    pub time_ns: u64,
    pub cpu: u32,
    pub event: PipeEvent<'a>,
}

/// Parses a line of trace text:
/// `<idle>-0 [001] ..s1. 13952.730853: timer_expire_entry: timer=ffff888… function=tcp_delack_timer now=…`.
/// The task name may hold spaces and dashes, so the head is read from its
/// end (time, flags, `[cpu]`).
pub fn parse_line(line: &str) -> Option<PipeLine<'_>> {
    if let Some(rest) = line.trim_start().strip_prefix("CPU:") {
        let (cpu, tail) = rest.split_once(' ')?;
        return tail.contains("LOST").then_some(PipeLine {
            time_ns: 0,
            cpu: cpu.parse().ok()?,
            event: PipeEvent::Lost,
        });
    }
    // Found by its name: a task name may hold ": " too.
    let (name, head, fields) = [
        ("timer_expire_entry", ": timer_expire_entry: "),
        ("timer_expire_exit", ": timer_expire_exit: "),
        ("net_dev_queue", ": net_dev_queue: "),
    ]
    .into_iter()
    .find_map(|(name, marker)| {
        let (head, fields) = line.split_once(marker)?;
        Some((name, head, fields))
    })?;
    let mut head_words = head.rsplit(' ').filter(|w| !w.is_empty());
    let stamp = head_words.next()?;
    let _flags = head_words.next()?;
    let cpu = head_words
        .next()?
        .strip_prefix('[')?
        .strip_suffix(']')?
        .parse()
        .ok()?;
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
    let timer = || u64::from_str_radix(field("timer")?.trim_start_matches("0x"), 16).ok();
    let event = match name {
        "timer_expire_entry" => PipeEvent::Expiry {
            timer: timer()?,
            function: field("function")?,
        },
        "timer_expire_exit" => PipeEvent::ExpiryEnd { timer: timer()? },
        "net_dev_queue" => PipeEvent::Queued,
        _ => return None,
    };
    Some(PipeLine {
        time_ns,
        cpu,
        event,
    })
}

/// One delayed-ACK timer expiry, and whether the kernel counted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelackExpiry {
    pub time_ns: u64,
    pub timer: u64,
    /// An ACK left while the timer ran: the kernel's DelayedACKs.
    pub acked: bool,
}

/// A delayed-ACK expiry under way on a CPU.
#[derive(Debug, Clone, Copy)]
struct OpenExpiry {
    time_ns: u64,
    timer: u64,
    acked: bool,
}

/// Pairs each delayed-ACK timer's expiry with the packets its CPU queued
/// before the expiry ended (see the module comment). Per CPU, events come
/// in the order they happened (trace text merges the CPUs' buffers by
/// time), and a CPU runs one timer callback at a time.
#[derive(Debug, Default)]
pub struct DelackBrackets {
    open: std::collections::HashMap<u32, OpenExpiry>,
    /// Expiries whose end was not seen (a buffer lost it): decided on
    /// what was seen before the loss.
    pub unended: u64,
}

/// More CPUs than any machine has: a line claiming another is garbage.
const CPU_LIMIT: u32 = 1 << 16;

impl DelackBrackets {
    /// Feeds one line; an expiry of `function`'s timer comes out when it
    /// ends (or when the CPU's next expiry or a loss shows its end was
    /// missed).
    pub fn feed(&mut self, line: &PipeLine, function: &str) -> Option<DelackExpiry> {
        if line.cpu >= CPU_LIMIT {
            return None;
        }
        match line.event {
            PipeEvent::Expiry { timer, function: f } => {
                let previous = self.close_unended(line.cpu);
                if f == function {
                    self.open.insert(
                        line.cpu,
                        OpenExpiry {
                            time_ns: line.time_ns,
                            timer,
                            acked: false,
                        },
                    );
                }
                previous
            }
            PipeEvent::ExpiryEnd { timer } => match self.open.get(&line.cpu) {
                Some(open) if open.timer == timer => {
                    self.open.remove(&line.cpu).map(|open| DelackExpiry {
                        time_ns: open.time_ns,
                        timer: open.timer,
                        acked: open.acked,
                    })
                }
                // Another timer's end (the exits of every timer are read).
                _ => None,
            },
            PipeEvent::Queued => {
                if let Some(open) = self.open.get_mut(&line.cpu) {
                    open.acked = true;
                }
                None
            }
            PipeEvent::Lost => self.close_unended(line.cpu),
        }
    }

    fn close_unended(&mut self, cpu: u32) -> Option<DelackExpiry> {
        let open = self.open.remove(&cpu)?;
        self.unended += 1;
        Some(DelackExpiry {
            time_ns: open.time_ns,
            timer: open.timer,
            acked: open.acked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_instances_of_gone_or_reused_pids_are_removed_and_live_ones_kept() {
        let root = std::env::temp_dir().join(format!("tis-instances-{}", std::process::id()));
        let instances = root.join("instances");
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&instances).unwrap();
        let make = |name: &str| {
            let dir = instances.join(name);
            fs::create_dir(&dir).unwrap();
            dir
        };
        // No such process (beyond any pid_max).
        make("tcpipstat-999999999");
        // This process, started before the instance: a live run's.
        let own = std::process::id();
        make(&format!("tcpipstat-{own}"));
        // Process 1, made before it started: the pid was reused since.
        let reused = make("tcpipstat-1");
        let long_ago = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::open(&reused)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        // Not ours.
        make("other-instance");
        make("tcpipstat-x");
        let done = remove_stale_instances(&root);
        assert_eq!(done.removed, ["tcpipstat-1", "tcpipstat-999999999"]);
        assert!(done.failed.is_empty(), "{done:?}");
        let mut left: Vec<String> = fs::read_dir(&instances)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "other-instance",
                format!("tcpipstat-{own}").as_str(),
                "tcpipstat-x"
            ]
        );
        let notices = done.notices();
        assert_eq!(
            notices,
            ["precision: removed the ftrace instance(s) of runs that were killed: tcpipstat-1, tcpipstat-999999999"]
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn no_instances_directory_removes_nothing() {
        let done = remove_stale_instances(Path::new("/nonexistent-tcpipstat-tracefs"));
        assert_eq!(done, StaleInstances::default());
        assert!(done.notices().is_empty());
    }

    #[test]
    fn a_trace_line_gives_time_cpu_timer_and_callback() {
        let line = "          <idle>-0       [001] ..s1. 13952.730853: timer_expire_entry: timer=ffff8881eef20940 function=tcp_delack_timer now=4298380412 baseclk=4298380412";
        assert_eq!(
            parse_line(line),
            Some(PipeLine {
                time_ns: 13_952_730_853_000,
                cpu: 1,
                event: PipeEvent::Expiry {
                    timer: 0xffff8881eef20940,
                    function: "tcp_delack_timer"
                }
            })
        );
        // 5.x without baseclk, a task name with spaces and dashes.
        let line = " kworker/u4:2 x-123 [000] d.s2. 7.000001: timer_expire_entry: timer=0xffff000000001000 function=tcp_delack_timer now=1";
        assert_eq!(
            parse_line(line),
            Some(PipeLine {
                time_ns: 7_000_001_000,
                cpu: 0,
                event: PipeEvent::Expiry {
                    timer: 0xffff000000001000,
                    function: "tcp_delack_timer"
                }
            })
        );
    }

    #[test]
    fn exits_packets_and_losses_are_read_with_their_cpu() {
        let exit =
            "opt cgu.09-24277 [003] .Ns.. 2527.280056: timer_expire_exit: timer=ffff88810332ea38";
        assert_eq!(
            parse_line(exit).map(|l| (l.cpu, l.event)),
            Some((
                3,
                PipeEvent::ExpiryEnd {
                    timer: 0xffff88810332ea38
                }
            ))
        );
        let queued = "python3-8150 [001] .Ns.. 2527.844050: net_dev_queue: dev=dls0 skbaddr=ffff8881025f7d00 len=66";
        assert_eq!(
            parse_line(queued).map(|l| (l.cpu, l.event)),
            Some((1, PipeEvent::Queued))
        );
        assert_eq!(
            parse_line("CPU:2 [LOST 31 EVENTS]").map(|l| (l.cpu, l.event)),
            Some((2, PipeEvent::Lost))
        );
    }

    #[test]
    fn other_lines_and_garbage_are_none() {
        for line in [
            "",
            "# tracer: nop",
            "x-1 [000] .... 1.5: timer_start: timer=ffff function=f",
            "x-1 .... 1.5: timer_expire_entry: timer=ff function=f",
            "x-1 [0x] .... 1.5: net_dev_queue: dev=lo",
            "CPU:x [LOST 3 EVENTS]",
            "x-1 [000] .... notatime: timer_expire_entry: timer=ffff function=f",
            "x-1 [000] .... 1.5: timer_expire_entry: timer=zz function=f",
            "x-1 [000] .... 99999999999999999999.5: timer_expire_entry: timer=ff function=f",
        ] {
            assert_eq!(parse_line(line), None, "{line}");
        }
    }

    const DELACK: &str = "tcp_delack_timer";

    fn at(time_ns: u64, cpu: u32, event: PipeEvent<'static>) -> PipeLine<'static> {
        PipeLine {
            time_ns,
            cpu,
            event,
        }
    }

    fn expiry(timer: u64) -> PipeEvent<'static> {
        PipeEvent::Expiry {
            timer,
            function: DELACK,
        }
    }

    fn run(lines: &[PipeLine]) -> (Vec<DelackExpiry>, DelackBrackets) {
        let mut brackets = DelackBrackets::default();
        let out = lines
            .iter()
            .filter_map(|l| brackets.feed(l, DELACK))
            .collect();
        (out, brackets)
    }

    #[test]
    fn an_expiry_that_queues_a_packet_before_it_ends_is_a_delayed_ack() {
        let (out, _) = run(&[
            at(10, 0, expiry(0xa0)),
            at(11, 0, PipeEvent::Queued),
            at(12, 0, PipeEvent::ExpiryEnd { timer: 0xa0 }),
        ]);
        assert_eq!(
            out,
            vec![DelackExpiry {
                time_ns: 10,
                timer: 0xa0,
                acked: true
            }]
        );
    }

    #[test]
    fn an_expiry_that_finds_its_ack_already_sent_queues_nothing_and_is_no_delayed_ack() {
        let (out, _) = run(&[
            at(10, 0, expiry(0xa0)),
            at(12, 0, PipeEvent::ExpiryEnd { timer: 0xa0 }),
            // After the end: another softirq's packet, not the timer's.
            at(13, 0, PipeEvent::Queued),
        ]);
        assert_eq!(out.len(), 1);
        assert!(!out[0].acked);
    }

    #[test]
    fn a_packet_of_another_cpu_during_an_expiry_is_not_its_ack() {
        let (out, _) = run(&[
            at(10, 0, expiry(0xa0)),
            at(11, 1, PipeEvent::Queued),
            // Other timers' ends on either CPU close nothing.
            at(11, 1, PipeEvent::ExpiryEnd { timer: 0xb0 }),
            at(11, 0, PipeEvent::ExpiryEnd { timer: 0xb0 }),
            at(12, 0, PipeEvent::ExpiryEnd { timer: 0xa0 }),
        ]);
        assert_eq!(out.len(), 1);
        assert!(!out[0].acked);
    }

    #[test]
    fn expiries_on_two_cpus_at_once_are_told_apart() {
        let (out, _) = run(&[
            at(10, 0, expiry(0xa0)),
            at(10, 1, expiry(0xb0)),
            at(11, 1, PipeEvent::Queued),
            at(12, 0, PipeEvent::ExpiryEnd { timer: 0xa0 }),
            at(12, 1, PipeEvent::ExpiryEnd { timer: 0xb0 }),
        ]);
        let acked: Vec<(u64, bool)> = out.iter().map(|e| (e.timer, e.acked)).collect();
        assert_eq!(acked, vec![(0xa0, false), (0xb0, true)]);
    }

    #[test]
    fn other_timers_expiries_open_nothing() {
        let (out, _) = run(&[
            at(
                10,
                0,
                PipeEvent::Expiry {
                    timer: 0xc0,
                    function: "tcp_write_timer",
                },
            ),
            at(11, 0, PipeEvent::Queued),
            at(12, 0, PipeEvent::ExpiryEnd { timer: 0xc0 }),
        ]);
        assert!(out.is_empty());
    }

    #[test]
    fn an_expiry_whose_end_was_lost_is_decided_on_what_came_before_and_counted_unended() {
        let (out, brackets) = run(&[
            at(10, 0, expiry(0xa0)),
            at(11, 0, PipeEvent::Queued),
            // The end was lost: the CPU's next delayed-ACK expiry closes it.
            at(20, 0, expiry(0xa8)),
            at(21, 0, PipeEvent::Lost),
        ]);
        let acked: Vec<(u64, bool)> = out.iter().map(|e| (e.timer, e.acked)).collect();
        assert_eq!(acked, vec![(0xa0, true), (0xa8, false)]);
        assert_eq!(brackets.unended, 2);
    }

    #[test]
    fn a_line_naming_an_impossible_cpu_changes_nothing() {
        let (out, brackets) = run(&[
            at(10, 0, expiry(0xa0)),
            at(11, u32::MAX, PipeEvent::Queued),
            at(12, u32::MAX, expiry(0xa8)),
            at(13, 0, PipeEvent::ExpiryEnd { timer: 0xa0 }),
        ]);
        assert_eq!(out.len(), 1);
        assert!(!out[0].acked);
        assert!(brackets.open.is_empty());
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
