//! The loop: opens the session's source and event feed, then only keeps
//! time (polls, report deadlines, --timeout, --count) and watches for the
//! signals that end a run ([`STOP_SIGNALS`]). What a poll does and what a
//! report holds is the session's business.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::config::{Config, Mode, Namespaces, PrecisionMode};
use crate::filter::ServedEndpoint;
use crate::report;
use crate::session::feed::{EventFeed, LiveFeed};
use crate::session::{next_boundary, Session};
use crate::source::netns::{NetnsSource, Selection};
use crate::source::{LiveSource, SnapshotSource, SourceOptions};
use crate::trace::collector::{Collector, ProbeMode, ProbeOptions};

/// A usage error found while starting (an explicit --precision the kernel
/// or the privileges cannot give): main exits 2 on it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

pub fn run(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let ignored = ignored_signals();
    for &(signal, name) in STOP_SIGNALS {
        if signal != libc::SIGINT && signal != libc::SIGTERM && ignored & signal_bit(signal) != 0 {
            continue;
        }
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .with_context(|| format!("installing the {name} handler"))?;
    }
    let source = open_source(config)?;
    let (feed, notices) = open_feed(config, source.closes_lost().is_some())?;
    let mut session = Session::new(config, source, feed);
    session.note(notices);
    // The live view shows notes itself: on stderr they would be hidden
    // under it until it quits.
    let live = config.live_view && std::io::stdout().is_terminal();
    if !live {
        print_notices(&mut session);
    }
    if config.mode == Mode::Once {
        session.limit_once(listed_on_a_terminal(config));
        session.fit_width(terminal_width());
        let written = session.write_once(out);
        print_notices(&mut session);
        return written.and_then(|()| Ok(out.flush()?));
    }
    let polled = session.poll();
    if live && polled.is_ok() {
        return crate::live::run(&mut session, config, &stop);
    }
    print_notices(&mut session);
    polled?;
    if let Some((addr, limits)) = config.listen {
        return serve_metrics(&mut session, config, addr, limits, &stop);
    }
    let mut status = StatusLine::wanted(config).then(|| StatusLine::new(Instant::now()));
    if status.is_none() {
        say_collecting(config);
    }
    if config.onclose && config.format == report::Format::Text {
        // Close reports follow one another: what fills which counter is
        // said once, here.
        if let (true, Some(precision)) = (config.tcp, session.precision_section()) {
            report::text::write_precision_sources(&precision, out)?;
        }
        if let Some((sources, missing)) = session.udp_precision_sources() {
            report::udp::write_close_sources(&sources, &missing, out)?;
        }
    }
    let mut schedule = Schedule::new(config, Instant::now());
    // What earlier reports said (the `~` legend, table columns) carries on.
    let mut options = session_options(config);
    loop {
        let interrupted = wait_until(&mut session, schedule.next_wake(), &stop);
        let now = Instant::now();
        let due = schedule.due(now);
        if interrupted || due.any() {
            // A recording keeps every poll whole: it may be replayed into
            // reports of any kind.
            let report_follows = config.record.is_some()
                || config.onclose
                || interrupted
                || due.report
                || due.timed_out;
            session.poll_before_report(report_follows)?;
            schedule.polled(now);
        }
        print_notices_over(&mut session, status.as_mut());
        let finishing = interrupted || due.timed_out;
        if let Some(status) = status.as_mut() {
            // Erased before a report, rewritten while collecting.
            if due.report || finishing {
                status.clear();
            } else {
                status.show(&session, &schedule, now);
            }
        }
        if config.onclose {
            for closed in session.close_reports(finishing) {
                options = options.after(emit(&closed, &options, out)?);
            }
            session.forget_closes();
        } else if due.report || finishing {
            let report = session.window_report();
            let fitted = report::RenderOptions {
                width: terminal_width(),
                ..options
            };
            options = options.after(emit(&report, &fitted, out)?);
            session.end_window();
            if schedule.reported(now) {
                return Ok(());
            }
        }
        if finishing {
            return Ok(());
        }
    }
}

/// Signals that end a run as SIGTERM does: the final report, then what the
/// run set up in the kernel (precision mode's ftrace instance, kprobes and
/// tracefs mount) undone. Left to their default, all but INT and TERM would
/// end the process at once and leave that behind, tracing on: HUP (the
/// terminal closed), USR1/USR2, the timers' ALRM/VTALRM/PROF, XCPU and
/// XFSZ (limits reached; a write past the file limit then fails instead),
/// PWR. One ignored when the run starts (`nohup`) stays ignored, but INT
/// and TERM, which always stop it. QUIT keeps its core dump.
pub const STOP_SIGNALS: &[(libc::c_int, &str)] = &[
    (libc::SIGINT, "SIGINT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGPWR, "SIGPWR"),
];

/// A signal's bit in /proc's signal masks.
fn signal_bit(signal: libc::c_int) -> u64 {
    1u64.checked_shl(signal as u32 - 1).unwrap_or(0)
}

/// The signals this process was started with ignored (`SigIgn` of
/// /proc/self/status); none when it cannot be read.
fn ignored_signals() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(parse_sig_ignored)
        .unwrap_or(0)
}

fn parse_sig_ignored(status: &str) -> Option<u64> {
    let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
    u64::from_str_radix(mask.trim(), 16).ok()
}

fn session_options(config: &Config) -> report::RenderOptions {
    report::RenderOptions {
        format: config.format,
        zeros: config.zeros,
        top: config.top.or(listed_on_a_terminal(config)),
        sort: config.sort,
        list_time_wait: config.list_time_wait,
        ..Default::default()
    }
}

/// Groups a text or table report lists on a terminal, where neither --top
/// nor --all says (the rest are summed into one line).
fn listed_on_a_terminal(config: &Config) -> Option<usize> {
    let for_people = config.format != report::Format::Json && std::io::stdout().is_terminal();
    (for_people && !config.all_groups).then_some(LISTED_ON_A_TERMINAL)
}

/// --listen: polls on the run's cadence, each poll a window added to the
/// exporter's totals; scrapes are answered on the server's threads from
/// the latest state and never trigger a dump.
fn serve_metrics(
    session: &mut Session,
    config: &Config,
    addr: std::net::SocketAddr,
    limits: crate::export::Limits,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    use crate::export::{http, Exporter, SelfStats};
    let shared = Arc::new(http::Shared::new(Exporter::new(limits)));
    // Cannot bind what was asked: exit 2, as for any start the run was
    // asked for and cannot make.
    let bound =
        http::serve(addr, Arc::clone(&shared)).map_err(|err| StartError(err.to_string()))?;
    if !config.export_self {
        session.leave_out(ServedEndpoint {
            addr: bound,
            // Unreadable: 0, as keys of the run's own namespace sampled
            // alone say.
            netns: crate::source::netns::own_inode().unwrap_or(0),
        });
    }
    let _ = writeln!(
        std::io::stderr(),
        "tcpipstat: serving metrics on http://{bound}/metrics (polling every {})",
        humantime::format_duration(config.poll)
    );
    let started = Instant::now();
    let ends_at = match config.mode {
        Mode::Window { timeout } => timeout.map(|t| started + t),
        _ => None,
    };
    let mut next_poll = started + config.poll;
    let mut polls = 1u64;
    loop {
        let deadline = ends_at.map_or(next_poll, |end| end.min(next_poll));
        if wait_until(session, deadline, stop) {
            return Ok(());
        }
        let now = Instant::now();
        if ends_at.is_some_and(|end| now >= end) {
            return Ok(());
        }
        let began = Instant::now();
        session.poll()?;
        let poll_seconds = began.elapsed().as_secs_f64();
        polls += 1;
        next_poll = next_boundary(next_poll, config.poll, now);
        print_notices(session);
        let states = session.sockets_by_state();
        let tracked = session.tracker().tracked() as u64;
        let report = session.window_report();
        let precision = report.precision.as_ref();
        let stats = SelfStats {
            polls,
            poll_seconds,
            sockets_tracked: tracked,
            events_lost: precision.map_or(0, |p| p.events_lost),
            events_undelivered: precision.map_or(0, |p| p.events_undelivered),
            close_notices_lost: report.closes_lost.map_or(0, |lost| lost.notices),
        };
        shared.update(|exporter| {
            exporter.add_window(&report, report.end_ms);
            exporter.set_states(states);
            exporter.set_stats(stats);
        });
        drop(report);
        session.end_window();
    }
}

/// Groups a report lists on a terminal without --all or --top.
const LISTED_ON_A_TERMINAL: usize = 20;

/// The width of the terminal stdout is, if it is one.
fn terminal_width() -> Option<u16> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    ratatui::crossterm::terminal::size().ok().map(|(w, _)| w)
}

fn emit(
    report: &report::Report<'_>,
    options: &report::RenderOptions,
    out: &mut dyn Write,
) -> anyhow::Result<report::Said> {
    let said = report::render(report, *options, out)?;
    out.flush()?;
    Ok(said)
}

/// Prints the session's new notices on stderr (nothing if stderr is gone).
fn print_notices(session: &mut Session) {
    print_notices_over(session, None);
}

/// Notices on stderr, the status line erased first when one is shown.
fn print_notices_over(session: &mut Session, status: Option<&mut StatusLine>) {
    let notes = session.take_fresh_notices();
    if notes.is_empty() {
        return;
    }
    if let Some(status) = status {
        status.clear();
    }
    let mut stderr = std::io::stderr().lock();
    for note in notes {
        let _ = writeln!(stderr, "tcpipstat: note: {note}");
    }
}

/// A one-line status on a terminal's stderr while a window collects
/// (elapsed and left, polls, sockets), rewritten in place and erased
/// before a report is printed.
struct StatusLine {
    started: Instant,
    shown: bool,
    last: Option<Instant>,
}

impl StatusLine {
    /// On a terminal, for runs that wait for a timeout, a count of
    /// reports or Ctrl-C before they print.
    fn wanted(config: &Config) -> bool {
        let waits = matches!(config.mode, Mode::Window { .. } | Mode::Interval { .. });
        waits && !config.onclose && std::io::stderr().is_terminal()
    }

    fn new(started: Instant) -> StatusLine {
        StatusLine {
            started,
            shown: false,
            last: None,
        }
    }

    /// Rewrites the line, at most every 200 ms.
    fn show(&mut self, session: &Session, schedule: &Schedule, now: Instant) {
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(200))
        {
            return;
        }
        self.last = Some(now);
        let line = status_text(
            now.duration_since(self.started),
            schedule
                .timeout_at
                .map(|t| t.saturating_duration_since(now)),
            schedule.reports_left,
            session.tracker().polls(),
            session.tracker().tracked(),
        );
        let mut err = std::io::stderr().lock();
        // \r and erase-line: the line is rewritten in place.
        if write!(err, "\r\x1b[K{line}")
            .and_then(|()| err.flush())
            .is_ok()
        {
            self.shown = true;
        }
    }

    fn clear(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K").and_then(|()| err.flush());
            self.shown = false;
            self.last = None;
        }
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.clear();
    }
}

/// `tcpipstat: 12s elapsed, 48s left, 13 polls, 1204 sockets (Ctrl-C reports now)`.
fn status_text(
    elapsed: Duration,
    left: Option<Duration>,
    reports_left: Option<u64>,
    polls: u64,
    sockets: usize,
) -> String {
    let seconds = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
    let mut parts = vec![format!("{} elapsed", seconds(elapsed))];
    if let Some(left) = left {
        parts.push(format!(
            "{} left",
            seconds(left + Duration::from_millis(999))
        ));
    }
    if let Some(n) = reports_left {
        parts.push(format!("{n} report{} to go", if n == 1 { "" } else { "s" }));
    }
    parts.push(crate::report::polls_text(polls));
    parts.push(format!("{sockets} sockets"));
    format!("tcpipstat: {} (Ctrl-C reports now)", parts.join(", "))
}

/// The seed said what it was doing; a run that waits for Ctrl-C should.
fn say_collecting(config: &Config) {
    if config.mode == (Mode::Window { timeout: None }) && std::io::stderr().is_terminal() {
        let _ = writeln!(
            std::io::stderr(),
            "tcpipstat: collecting by {} (polling every {}); Ctrl-C prints the report",
            config.index.name(),
            humantime::format_duration(config.poll)
        );
    }
}

/// Waits until `deadline` in short steps (reading kernel events as they
/// come); true when a stop signal came.
fn wait_until(session: &mut Session, deadline: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        session.wait(deadline - now);
    }
}

/// What is due at a moment of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Due {
    poll: bool,
    report: bool,
    timed_out: bool,
}

impl Due {
    fn any(self) -> bool {
        self.poll || self.report || self.timed_out
    }
}

/// When polls and reports are due: pure timing, from the run's start.
#[derive(Debug)]
struct Schedule {
    poll_every: Duration,
    next_poll: Instant,
    /// Report period and the next report (--interval).
    report_every: Option<Duration>,
    next_report: Option<Instant>,
    timeout_at: Option<Instant>,
    /// Reports left before the run ends (--count).
    reports_left: Option<u64>,
}

impl Schedule {
    fn new(config: &Config, started: Instant) -> Schedule {
        let (report_every, count, timeout) = match config.mode {
            Mode::Interval {
                every,
                count,
                timeout,
            } => (Some(every), count, timeout),
            Mode::Window { timeout } => (None, None, timeout),
            Mode::Once => (None, None, None),
        };
        Schedule {
            poll_every: config.poll,
            next_poll: started + config.poll,
            report_every,
            next_report: report_every.map(|every| started + every),
            timeout_at: timeout.map(|t| started + t),
            reports_left: count,
        }
    }

    fn next_wake(&self) -> Instant {
        [self.next_report, self.timeout_at]
            .into_iter()
            .flatten()
            .fold(self.next_poll, Instant::min)
    }

    fn due(&self, now: Instant) -> Due {
        Due {
            poll: now >= self.next_poll,
            report: self.next_report.is_some_and(|t| now >= t),
            timed_out: self.timeout_at.is_some_and(|t| now >= t),
        }
    }

    /// A poll was taken at `now`: the next one is the first period boundary
    /// after it (missed ones are skipped, not caught up).
    fn polled(&mut self, now: Instant) {
        self.next_poll = next_boundary(self.next_poll, self.poll_every, now);
    }

    /// A report was written at `now`; true when it was the last (--count).
    fn reported(&mut self, now: Instant) -> bool {
        if let (Some(every), Some(at)) = (self.report_every, self.next_report) {
            self.next_report = Some(next_boundary(at, every, now));
        }
        if let Some(left) = &mut self.reports_left {
            *left = left.saturating_sub(1);
            return *left == 0;
        }
        false
    }
}

/// The current namespace directly; others through namespace agents.
fn open_source(config: &Config) -> anyhow::Result<Box<dyn SnapshotSource>> {
    // With --system the residual needs every socket, so the kernel may not
    // filter; the filter is then applied when grouping.
    let options = SourceOptions {
        bytecode: if config.system {
            None
        } else {
            config.filters.with_mirrors().to_bytecode()
        },
        listeners_apart: config.mode != Mode::Once,
        lean_dump: !config.shows_socket_gauges(config.live_view && std::io::stdout().is_terminal()),
        net_dir: None,
        force_procfs: config.force_procfs,
        // A one-shot snapshot has no window for closes to fall in.
        close_buffer: (config.mode != Mode::Once && config.close_buffer > 0)
            .then_some(config.close_buffer),
        udp: config.udp,
        skip_tcp: !config.tcp,
    };
    Ok(match &config.namespaces {
        Namespaces::Current => Box::new(LiveSource::open(options)),
        // A namespace the user named that cannot be entered is what this
        // run was asked for and cannot give: exit 2, as for a PID whose
        // namespace cannot be read.
        Namespaces::One(namespace) => Box::new(
            NetnsSource::open(Selection::One(namespace.clone()), options)
                .map_err(|err| StartError(err.to_string()))?,
        ),
        Namespaces::All => Box::new(NetnsSource::open(Selection::All, options)?),
    })
}

/// Notices to print and keep for reports.
type Notices = Vec<String>;

/// Opens precision mode as asked. Auto falls back to plain polling with a
/// notice; an explicit mode that cannot be had is a usage error. With
/// close notices read, sockets are not asked for as they leave
/// ESTABLISHED: their notices carry the same counters, later and exactly,
/// and in their own namespace (a lookup by tuple may find another
/// namespace's twin).
fn open_feed(
    config: &Config,
    closes_watched: bool,
) -> anyhow::Result<(Option<Box<dyn EventFeed>>, Notices)> {
    let wanted = config.precision.mode;
    let mode = match wanted {
        PrecisionMode::Off => return Ok((None, Vec::new())),
        PrecisionMode::Auto => ProbeMode::Auto,
        PrecisionMode::Tracepoint => ProbeMode::Tracepoint,
        PrecisionMode::Kprobe => ProbeMode::Kprobe,
    };
    let last_moments = config.precision.last_moments
        && config.namespaces == Namespaces::Current
        && !closes_watched;
    match Collector::start(&ProbeOptions {
        mode,
        ring_pages: config.precision.ring_pages,
        last_moments,
        record_to: config.precision.record_trace.clone(),
        udp: config.udp,
    }) {
        Ok((collector, mut notices)) => {
            if config.namespaces != Namespaces::Current {
                notices.push(
                    "precision: kernel events carry no network namespace: a socket known only from events is shown in none (netns 0)"
                        .to_string(),
                );
            }
            Ok((Some(Box::new(LiveFeed::new(collector))), notices))
        }
        Err(why) if wanted == PrecisionMode::Auto => Ok((
            None,
            vec![format!(
                "precision mode unavailable ({why}): running as plain polling"
            )],
        )),
        Err(err) => Err(StartError(format!("--precision {}: {err}", wanted.name())).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_ignored_at_start_are_read_from_the_status_mask() {
        // nohup: SIGHUP (1) ignored; a shell's background job: SIGINT (2)
        // and SIGQUIT (3) too.
        let status = "Name:\ttcpipstat\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000007\nSigCgt:\t0000000000000000\n";
        let ignored = parse_sig_ignored(status).unwrap();
        assert_ne!(ignored & signal_bit(libc::SIGHUP), 0);
        assert_ne!(ignored & signal_bit(libc::SIGINT), 0);
        assert_eq!(ignored & signal_bit(libc::SIGUSR1), 0);
        assert_eq!(parse_sig_ignored("Name:\tx\n"), None);
        assert_eq!(parse_sig_ignored("SigIgn:\tnot hex\n"), None);
        // Every stop signal has its own bit.
        let bits: Vec<u64> = STOP_SIGNALS.iter().map(|(s, _)| signal_bit(*s)).collect();
        assert!(bits.iter().all(|b| b.count_ones() == 1));
        let all = bits.iter().fold(0, |a, b| a | b);
        assert_eq!(all.count_ones() as usize, STOP_SIGNALS.len());
    }

    #[test]
    fn the_status_line_says_elapsed_left_polls_and_sockets() {
        let line = status_text(
            Duration::from_millis(12_400),
            Some(Duration::from_millis(47_600)),
            None,
            13,
            1204,
        );
        assert_eq!(
            line,
            "tcpipstat: 12s elapsed, 48s left, 13 polls, 1204 sockets (Ctrl-C reports now)"
        );
        let line = status_text(Duration::from_secs(3), None, Some(1), 1, 0);
        assert_eq!(
            line,
            "tcpipstat: 3s elapsed, 1 report to go, 1 poll, 0 sockets (Ctrl-C reports now)"
        );
    }

    #[test]
    fn a_late_poll_skips_missed_periods_instead_of_catching_up() {
        let start = Instant::now();
        let period = Duration::from_millis(100);
        let next = next_boundary(start, period, start + Duration::from_millis(350));
        assert_eq!(next, start + Duration::from_millis(400));
        assert_eq!(next_boundary(start + period, period, start), start + period);
    }

    #[test]
    fn a_tiny_period_never_loops_per_step() {
        let start = Instant::now();
        let now = start + Duration::from_secs(3600);
        let next = next_boundary(start, Duration::from_nanos(1), now);
        assert!(next > now);
    }
}
