//! The pipeline's driver: polls the source on a fixed cadence, feeds the
//! tracker, and emits reports when a window ends (interval, timeout, signal)
//! or a socket closes (--onclose). Timing lives here; the logic it calls is
//! pure.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::aggregate::{self, Group, GroupKey, Grouper, Index};
use crate::cli::Namespaces;
use crate::cli::{Config, Mode};
use crate::diff::Tracker;
use crate::diff::{self, lifetime_row};
use crate::filter::FilterSet;
use crate::model::TcpState;
use crate::report::ReportWriter;
use crate::report::{self, RenderOptions, Report, ReportKind};
use crate::source::netns::{NetnsSource, Selection};
use crate::source::processes::ProcessMap;
use crate::source::procfs::SystemCounters;
use crate::source::{LiveSource, SnapshotSource, SourceOptions};
use crate::trace::collector::{Collector, ProbeMode, ProbeOptions, ProbeSummary};
use crate::trace::perf_ring::monotonic_now_ns;

/// A usage error found while starting (an explicit --precision the kernel
/// or the privileges cannot give): main exits 2 on it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// Everything the loop needs to emit a report.
struct Emitter<'a> {
    config: &'a Config,
    out: &'a mut dyn Write,
    notices: Vec<String>,
    netns_labels: BTreeMap<u64, String>,
    container_labels: BTreeMap<u64, String>,
    /// Socket owners, with --processes or index=process.
    processes: Option<ProcessMap>,
    /// Precision mode's account for the next report.
    precision: Option<report::PrecisionSection>,
}

impl Emitter<'_> {
    fn options(&self) -> RenderOptions {
        RenderOptions {
            format: self.config.format,
            zeros: self.config.zeros,
        }
    }

    /// Names of the namespaces and containers sampled now.
    fn relabel(&mut self, source: &dyn SnapshotSource) {
        self.netns_labels = source.namespace_labels();
        self.container_labels = source.container_labels();
    }

    /// Groups by namespace become groups by container when asked for.
    fn finish_groups<'g>(&self, groups: Vec<Group<'g>>) -> Vec<Group<'g>> {
        if self.config.index == Index::Container {
            aggregate::merge_by_container(groups, &self.container_labels)
        } else {
            groups
        }
    }

    fn emit(&mut self, mut report: Report<'_>) -> std::io::Result<()> {
        report.notices = self.notices.clone();
        report.netns_labels = self.netns_labels.clone();
        report.container_labels = self.container_labels.clone();
        if let Some(processes) = &self.processes {
            report.process_names = report
                .groups
                .iter()
                .filter_map(|g| match g.key {
                    GroupKey::Process(pid) => Some((pid, processes.command_of(pid)?.to_string())),
                    _ => None,
                })
                .collect();
        }
        report.filtered = !self.config.filters.matches_everything();
        report.precision = self.precision.clone();
        report::render(&report, self.options(), self.out)?;
        self.out.flush()
    }

    fn note(&mut self, fresh: Vec<String>) {
        note_into(&mut self.notices, fresh);
        let denied = self.processes.as_ref().map_or(0, ProcessMap::denied);
        if denied > 0
            && !self
                .notices
                .iter()
                .any(|n| n.contains("/fd could not be read"))
        {
            let why = if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
                "permission denied"
            } else {
                "other users' processes; root can read them"
            };
            note_into(
                &mut self.notices,
                vec![format!(
                    "/proc/PID/fd could not be read for {denied} process(es) ({why}): their sockets show process ?"
                )],
            );
        }
    }
}

pub fn run(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the SIGINT/SIGTERM handler")?;
    }
    // With --system the residual needs every socket, so the kernel may not
    // filter; the filter is then applied when grouping.
    let kernel_filters = !config.system;
    let source_options = SourceOptions {
        bytecode: if kernel_filters {
            config.filters.with_mirrors().to_bytecode()
        } else {
            None
        },
        listeners_apart: config.mode != Mode::Once,
        net_dir: None,
        force_procfs: config.force_procfs,
    };
    let mut source = open_source(&config.namespaces, source_options)?;
    let source = source.as_mut();
    let mut emitter = Emitter {
        config,
        out,
        notices: Vec::new(),
        netns_labels: BTreeMap::new(),
        container_labels: BTreeMap::new(),
        processes: config.processes.then(ProcessMap::new),
        precision: None,
    };
    emitter.note(source.take_notices());
    if config.record.is_some() {
        source.start_recording();
    }

    if config.mode == Mode::Once {
        return run_once(config, source, &mut emitter);
    }

    let tracker_filter = if kernel_filters {
        config.filters.clone()
    } else {
        FilterSet::default()
    };
    let mut tracker = Tracker::new();
    let mut collector = start_precision(config, &mut emitter)?;
    if let Some(collector) = &collector {
        let summary = collector.summary();
        tracker.enable_events(summary.exact_states, &summary.covered, 0);
    }
    let mut lost_reported = 0u64;
    let started = Instant::now();
    let mut poll_number = 0u64;
    let mut window = WindowState::default();
    let mut take_poll = |tracker: &mut Tracker,
                         source: &mut dyn SnapshotSource,
                         processes: Option<&mut ProcessMap>,
                         collector: Option<&mut Collector>,
                         system_at_poll: &mut Option<(SystemCounters, Vec<String>)>|
     -> anyhow::Result<u64> {
        if config.system {
            // Read at the dump's start, so the namespace's counters and the
            // sockets' (and the events') cover the same span.
            *system_at_poll = Some(source.system_counters());
        }
        let dump_began_ns = monotonic_now_ns();
        let snapshot = source.snapshot()?;
        let at = snapshot.taken_at_ms;
        if collector.is_some() && poll_number % PRUNE_OWNERS_EVERY == 0 {
            // With no other namespace on the host, every socket events
            // tell of is this one's.
            tracker.set_sole_namespace(sole_namespace(&config.namespaces));
        }
        if let Some(collector) = collector {
            // Events before the dump began are what the dump's sockets went
            // through; later ones wait for the next poll.
            collector.drain();
            let events = collector.take_before(dump_began_ns);
            if tracker.polls() > 0 {
                tracker.apply_events(&events, &tracker_filter);
            }
        }
        tracker.observe(&snapshot, &tracker_filter);
        if let Some(processes) = processes {
            // Owners are looked up while the sockets are alive: a
            // short-lived one's process may be gone by the report.
            processes.resolve(
                snapshot
                    .sockets
                    .iter()
                    .filter(|s| !s.state.is_mini_socket() && config.filters.matches(&s.key))
                    .map(|s| (s.inode, s.uid)),
            );
            if poll_number % PRUNE_OWNERS_EVERY == 0 {
                // Forget owners of sockets gone, so the map does not grow
                // with every socket ever seen (and a reused inode is not
                // named after its old owner).
                let alive = snapshot.sockets.iter().map(|s| s.inode).collect();
                processes.retain_sockets(&alive);
            }
        }
        source.recycle(snapshot);
        record(config, source, poll_number)?;
        poll_number += 1;
        Ok(at)
    };

    let mut system_at_poll = None;
    window.start_ms = take_poll(
        &mut tracker,
        source,
        emitter.processes.as_mut(),
        collector.as_mut(),
        &mut system_at_poll,
    )?;
    window.polls = 1;
    if let Some(read) = system_at_poll.take() {
        window.system_start = Some(note_system(read, &mut emitter));
    }
    emitter.note(source.take_notices());
    if config.mode == (Mode::Window { timeout: None }) && std::io::stderr().is_terminal() {
        // The seed said what it was doing; a run that waits for Ctrl-C should.
        eprintln!(
            "tcpipstat: collecting by {} (polling every {}); Ctrl-C prints the report",
            config.index.name(),
            humantime::format_duration(config.poll)
        );
    }

    let timeout_at = match config.mode {
        Mode::Interval { timeout, .. } | Mode::Window { timeout } => timeout.map(|t| started + t),
        Mode::Once => None,
    };
    let mut next_poll = started + config.poll;
    let mut next_report = match config.mode {
        Mode::Interval { every, .. } => Some(started + every),
        _ => None,
    };
    let mut reports = 0u64;

    loop {
        let mut wake = next_poll;
        if let Some(at) = next_report {
            wake = wake.min(at);
        }
        if let Some(at) = timeout_at {
            wake = wake.min(at);
        }
        let interrupted = sleep_until(wake, &stop, collector.as_mut());
        let now = Instant::now();
        let timed_out = timeout_at.is_some_and(|t| now >= t);
        let report_due = next_report.is_some_and(|t| now >= t);
        if interrupted || timed_out || report_due || now >= next_poll {
            match take_poll(
                &mut tracker,
                source,
                emitter.processes.as_mut(),
                collector.as_mut(),
                &mut system_at_poll,
            ) {
                Ok(_) => window.polls += 1,
                // One failed poll loses nothing: the next one diffs against
                // the last good one, and the report still comes.
                Err(err) => emitter.note(vec![format!("a poll failed and was skipped: {err:#}")]),
            }
            emitter.note(source.take_notices());
            while next_poll <= now {
                next_poll += config.poll;
            }
        }
        if let Some(collector) = &collector {
            emitter.precision = Some(precision_section(
                collector.summary(),
                collector.lost(),
                &tracker,
            ));
            let lost = collector.lost();
            if lost > lost_reported {
                emitter.note(vec![format!(
                    "precision: {} kernel events lost (rings full): counts from events are low by as much; raise --ring-pages",
                    lost - lost_reported
                )]);
                lost_reported = lost;
            }
        }
        if config.onclose {
            emitter.relabel(source);
            emit_closes(&mut emitter, &tracker, &config.filters, source.elapsed_ms())?;
            // Sockets' windows run on: a lifetime report needs all its
            // socket's events, not only the last loop's.
            tracker.clear_closed();
        }
        let finishing = interrupted || timed_out;
        if (report_due || finishing) && !config.onclose {
            emit_window(
                &mut emitter,
                &tracker,
                &mut window,
                source,
                system_at_poll.take(),
            )?;
            tracker.reset_window();
            reports += 1;
            if let (Mode::Interval { every, count, .. }, Some(at)) =
                (config.mode, next_report.as_mut())
            {
                while *at <= now {
                    *at += every;
                }
                if count.is_some_and(|c| reports >= c) {
                    return Ok(());
                }
            }
        }
        if finishing {
            return Ok(());
        }
    }
}

/// The current namespace directly; others through namespace agents.
fn open_source(
    namespaces: &Namespaces,
    options: SourceOptions,
) -> anyhow::Result<Box<dyn SnapshotSource>> {
    Ok(match namespaces {
        Namespaces::Current => Box::new(LiveSource::open(options)),
        Namespaces::One(namespace) => Box::new(
            NetnsSource::open(Selection::One(namespace.clone()), options)
                .map_err(anyhow::Error::msg)?,
        ),
        Namespaces::All => {
            Box::new(NetnsSource::open(Selection::All, options).map_err(anyhow::Error::msg)?)
        }
    })
}

/// Whether the namespace sampled is the only one on the host.
fn sole_namespace(namespaces: &Namespaces) -> bool {
    if *namespaces != Namespaces::Current {
        return false;
    }
    let (found, unreadable) = crate::source::netns::discover();
    found.len() <= 1 && unreadable == 0
}

/// Polls between two prunings of the socket-owner map (and checks for
/// other namespaces in precision mode).
const PRUNE_OWNERS_EVERY: u64 = 30;

/// Prints new notices on stderr and keeps them for JSON reports.
fn note_into(notices: &mut Vec<String>, fresh: Vec<String>) {
    for note in fresh {
        if notices.contains(&note) {
            continue;
        }
        eprintln!("tcpipstat: note: {note}");
        notices.push(note);
    }
}

/// `--once`: sockets are printed as the dump delivers them (index=tuple) or
/// summed into groups on the fly, so no snapshot is ever held whole.
fn run_once(
    config: &Config,
    source: &mut dyn SnapshotSource,
    emitter: &mut Emitter,
) -> anyhow::Result<()> {
    let at = source.elapsed_ms();
    let mut report = Report {
        filtered: !config.filters.matches_everything(),
        ..Report::new(ReportKind::Snapshot, config.index, (at, at), 1, Vec::new())
    };
    let filters = &config.filters;
    if config.namespaces != Namespaces::Current {
        // Namespaces are found and named while polling: poll whole, then
        // label and print.
        let snapshot = source.snapshot()?;
        emitter.note(source.take_notices());
        emitter.relabel(source);
        if let Some(processes) = emitter.processes.as_mut() {
            processes.scan_all();
        }
        report.groups = emitter.finish_groups(aggregate::group_rows_owned(
            diff::lifetime_rows(&snapshot, filters),
            config.index,
            emitter.processes.as_ref(),
        ));
        return Ok(emitter.emit(report)?);
    }
    if let Some(processes) = emitter.processes.as_mut() {
        processes.scan_all();
        emitter.note(Vec::new());
    }
    if config.index != Index::Tuple {
        let mut grouper = Grouper::new(config.index, 64).with_owners(emitter.processes.as_ref());
        source.stream(&mut |sample| {
            if filters.matches(&sample.key) {
                grouper.add_counts(&lifetime_row(sample));
            }
            true
        })?;
        record(config, source, 0)?;
        let groups = grouper.finish();
        emitter.note(source.take_notices());
        emitter.relabel(source);
        report.groups = emitter.finish_groups(groups);
        return Ok(emitter.emit(report)?);
    }
    emitter.relabel(source);
    report.netns_labels = emitter.netns_labels.clone();
    report.container_labels = emitter.container_labels.clone();
    let options = emitter.options();
    let processes = emitter.processes.as_ref();
    let mut writer = ReportWriter::begin(&report, options, &mut *emitter.out)?;
    let mut failure = None;
    source.stream(&mut |sample| {
        if !filters.matches(&sample.key) {
            return true;
        }
        let mut group = aggregate::single_socket_group(lifetime_row(sample));
        group.owner = processes.map(|p| aggregate::owner_label(p, sample.inode));
        match writer.group(&report, &group) {
            Ok(()) => true,
            Err(err) => {
                failure = Some(err);
                false
            }
        }
    })?;
    if let Some(err) = failure {
        return Err(err.into());
    }
    record(config, source, 0)?;
    note_into(&mut emitter.notices, source.take_notices());
    report.notices = emitter.notices.clone();
    writer.end(&report)?;
    Ok(emitter.out.flush()?)
}

#[derive(Default)]
struct WindowState {
    start_ms: u64,
    polls: u64,
    system_start: Option<SystemCounters>,
}

/// The namespace counters read at a poll, saying once what could not be read.
fn note_system(
    (counters, missing): (SystemCounters, Vec<String>),
    emitter: &mut Emitter,
) -> SystemCounters {
    if !missing.is_empty() && !emitter.notices.iter().any(|n| n.starts_with("--system")) {
        emitter.note(vec![format!(
            "--system: cannot read {}; those counters are left out",
            missing.join(", ")
        )]);
    }
    counters
}

fn emit_window(
    emitter: &mut Emitter,
    tracker: &Tracker,
    window: &mut WindowState,
    source: &mut dyn SnapshotSource,
    system_at_poll: Option<(SystemCounters, Vec<String>)>,
) -> anyhow::Result<()> {
    let config = emitter.config;
    let end_ms = source.elapsed_ms();
    let filters = &config.filters;
    emitter.relabel(source);
    let mut groups: Vec<Group<'_>> = emitter.finish_groups(aggregate::group_rows_owned(
        tracker.rows().filter(|r| filters.matches(&r.sample.key)),
        config.index,
        emitter.processes.as_ref(),
    ));
    if !config.zeros {
        aggregate::drop_idle(&mut groups);
    }
    let system = match (window.system_start.take(), system_at_poll) {
        (Some(start), Some(read)) => {
            let now = note_system(read, emitter);
            let section = aggregate::system_section(
                now.delta_since(&start).fold_namespaces(),
                &aggregate::total(tracker.rows()),
            );
            window.system_start = Some(now);
            Some(section)
        }
        (start, _) => {
            window.system_start = start;
            None
        }
    };
    emitter.emit(Report {
        system,
        ..Report::new(
            ReportKind::Window,
            config.index,
            (window.start_ms, end_ms),
            window.polls,
            groups,
        )
    })?;
    window.start_ms = end_ms;
    window.polls = 0;
    Ok(())
}

fn emit_closes(
    emitter: &mut Emitter,
    tracker: &Tracker,
    filters: &FilterSet,
    now_ms: u64,
) -> anyhow::Result<()> {
    for closed in tracker.closed() {
        // Connections only: a mini socket expiring or a listener closing
        // is no connection's end.
        let state = closed.sample.state;
        if state == TcpState::Listen || (closed.sample.tcp_info.is_none() && state.is_mini_socket())
        {
            continue;
        }
        if !filters.matches(&closed.sample.key) {
            continue;
        }
        let mut counters = closed.lifetime;
        counters.add(&state_events_of(&closed.window));
        let group = Group {
            key: Index::Tuple.key_of(&closed.sample.key),
            counters,
            sockets: 1,
            closed: 1,
            sample: Some(&closed.sample),
            owner: None,
            history: closed.history,
        };
        let kind = ReportKind::Close {
            unseen_ms: closed.unseen_ms,
        };
        // Between its last sighting and the poll that missed it.
        let window = (now_ms.saturating_sub(closed.unseen_ms), now_ms);
        emitter.emit(Report::new(
            kind,
            Index::Tuple,
            window,
            tracker.polls(),
            vec![group],
        ))?;
    }
    Ok(())
}

/// What a closed socket's lifetime report takes from its window beside its
/// tcp_info totals: the state events (opens, fails, resets), exact or not as
/// counted, and the counters only kernel events fill (precision mode).
fn state_events_of(window: &crate::counters::Counters) -> crate::counters::Counters {
    let mut events = crate::counters::Counters::default();
    for (counter, value) in window.iter() {
        let from_events = counter.is_state_event() || counter.is_event_only();
        if from_events && counter != crate::counters::Counter::CurrEstab {
            events.set(counter, value, window.is_approx(counter));
        }
    }
    events
}

fn record(config: &Config, source: &mut dyn SnapshotSource, poll: u64) -> anyhow::Result<()> {
    let Some(dir) = &config.record else {
        return Ok(());
    };
    if let Some(bytes) = source.take_recording() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("poll-{poll:04}.nl"));
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Sleeps until `deadline` in short steps; true when a stop signal came.
/// In precision mode the steps wait on the event rings instead, which are
/// read whenever they pass their watermark.
fn sleep_until(
    deadline: Instant,
    stop: &AtomicBool,
    mut collector: Option<&mut Collector>,
) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        match collector.as_deref_mut() {
            Some(collector) => {
                let step = (deadline - now).min(collector.wake_interval());
                collector.pump(step)
            }
            None => std::thread::sleep((deadline - now).min(Duration::from_millis(50))),
        }
    }
}

/// Opens precision mode as asked. Auto falls back to plain polling with a
/// one-line notice; an explicit mode that cannot be had is a usage error.
fn start_precision(config: &Config, emitter: &mut Emitter) -> anyhow::Result<Option<Collector>> {
    use crate::cli::PrecisionMode;
    let wanted = config.precision.mode;
    let mode = match wanted {
        PrecisionMode::Off => return Ok(None),
        PrecisionMode::Auto => ProbeMode::Auto,
        PrecisionMode::Tracepoint => ProbeMode::Tracepoint,
        PrecisionMode::Kprobe => ProbeMode::Kprobe,
    };
    let last_moments = config.precision.last_moments && config.namespaces == Namespaces::Current;
    match Collector::start(&ProbeOptions {
        mode,
        ring_pages: config.precision.ring_pages,
        last_moments,
        record_to: config.precision.record_trace.clone(),
    }) {
        Ok((collector, notices)) => {
            emitter.note(notices);
            if config.namespaces != Namespaces::Current {
                emitter.note(vec![
                    "precision: kernel events carry no network namespace: a socket known only from events is shown in none (netns 0)"
                        .to_string(),
                ]);
            }
            Ok(Some(collector))
        }
        Err(why) if wanted == PrecisionMode::Auto => {
            emitter.note(vec![format!(
                "precision mode unavailable ({why}): running as plain polling"
            )]);
            Ok(None)
        }
        Err(err) => Err(StartError(format!("--precision {}: {err}", wanted.name())).into()),
    }
}

/// The report's precision section: what the collector opened, with the
/// tracker's account of the events.
fn precision_section(
    summary: &ProbeSummary,
    lost: u64,
    tracker: &Tracker,
) -> report::PrecisionSection {
    let stats = tracker.event_stats().cloned().unwrap_or_default();
    report::PrecisionSection {
        probes: summary.probes.clone(),
        sources: summary.sources.clone(),
        events: stats.events,
        events_lost: lost,
        unplaced: stats.unplaced,
        unidentified: tracker.unidentified(),
        drops_by_reason: stats.drops_by_reason,
        last_samples: stats.last_samples,
        elsewhere_sockets: stats.elsewhere_sockets,
        elsewhere: stats.elsewhere,
    }
}
