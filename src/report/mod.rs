//! What a report holds (plain data built by the pipeline) and the gauges of
//! one socket; each output format is one module rendering a [`Report`].

#[cfg(test)]
mod behaviour_tests;
pub mod json;
pub mod table;
#[cfg(test)]
pub(crate) mod test_fixtures;
pub mod text;
pub mod udp;

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::aggregate::{Group, GroupKey, Index, SortBy, SystemSection};
use crate::counters::{Counter, Counters};
use crate::diff::CountedFrom;
use crate::model::tcp_info::TcpInfo;
use crate::model::{CloseLoss, SocketSample, TcpState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Deltas over a window of the run.
    Window,
    /// `--once`: counters since each socket's creation.
    Snapshot,
    /// `--onclose`: one socket's lifetime, at its close.
    Close {
        /// How long before its disappearance it was last polled.
        unseen_ms: u64,
        /// Where its counters come from.
        from: CountedFrom,
    },
    /// `--onclose --udp`: one UDP socket's life, at its close (in
    /// [`Report::udp_close`]).
    UdpClose,
}

#[derive(Debug, Clone)]
pub struct Report<'a> {
    pub kind: ReportKind,
    pub index: Index,
    /// Window bounds, ms since the run started.
    pub start_ms: u64,
    pub end_ms: u64,
    pub polls: u64,
    pub groups: Vec<Group<'a>>,
    pub system: Option<SystemSection>,
    pub notices: Vec<String>,
    /// Whether filters restricted the sockets.
    pub filtered: bool,
    /// Namespace inode → name, when several namespaces are sampled.
    pub netns_labels: BTreeMap<u64, String>,
    /// Namespace inode → container label, where known.
    pub container_labels: BTreeMap<u64, String>,
    /// index=pod: `GroupKey::Pod(n)` is named by `pod_labels[n]`.
    pub pod_labels: Vec<crate::source::pods::PodLabel>,
    /// pid → command, for index=process.
    pub process_names: BTreeMap<u32, String>,
    /// Precision mode's account: sources, events, losses.
    pub precision: Option<PrecisionSection>,
    /// Close notices the kernel could not deliver since the run began;
    /// None when they are not read.
    pub closes_lost: Option<CloseLoss>,
    /// Those lost in this report's window.
    pub closes_lost_window: Option<CloseLoss>,
    /// Close notices read since the run began of lives that ended before
    /// its first poll (their socket's clock says so, or in precision mode
    /// no event saw them end): they count nothing.
    pub notices_before_run: u64,
    /// The wall clock when the run started (ms 0): reports then say when
    /// their window began and ended.
    pub run_started: Option<std::time::SystemTime>,
    /// A filtered window's connections the filters cannot place: aborts
    /// no poll or event saw, whose close notice lost the peer port the
    /// filters test (how many, and what they counted); in no group.
    pub unplaced_by_filters: Option<(u64, Counters)>,
    /// UDP and UDP-Lite sockets (`--udp`), after the TCP part.
    pub udp: Option<crate::udp::UdpSection>,
    /// A UDP socket's close (kind [`ReportKind::UdpClose`]): the whole
    /// report, written instead of groups and sections.
    pub udp_close: Option<udp::UdpCloseReport>,
    /// Whether TCP was asked for: a `--udp` run alone says nothing of
    /// TCP (no "no activity" line, no TCP-side `--system` block).
    pub tcp: bool,
}

/// What precision mode tells in each report: which source filled each
/// counter, how many events came and were lost, and what events counted
/// that no socket row shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrecisionSection {
    /// "tracepoint", "kprobe" or "kprobe+tracepoint".
    pub probes: String,
    /// Counters and the probe that filled them (the rest: sock_diag polls).
    pub sources: Vec<(Vec<Counter>, String)>,
    pub events: u64,
    /// PERF_RECORD_LOST counts since the run began: events the kernel
    /// could not put in a full ring.
    pub events_lost: u64,
    /// Events the kernel counted that never reached a ring, with no lost
    /// record: some kernels' perf drops events raised on idle CPUs. They
    /// may be any namespace's: what this run watches lost at most as many.
    pub events_undelivered: u64,
    /// Counts tied to no socket (a reset answering no socket, a TCP drop).
    pub unplaced: Counters,
    /// Counts of this window still waiting for their socket's tuple.
    pub unidentified: Counters,
    /// Counts of earlier windows still waiting for their socket's tuple.
    pub unidentified_earlier: Counters,
    pub drops_by_reason: BTreeMap<String, u64>,
    /// Sockets asked for as they left ESTABLISHED whose answer was taken in.
    pub last_samples: u64,
    /// Sockets only events saw and nothing placed in a sampled namespace
    /// (another namespace's, most likely), and what they counted.
    pub elsewhere_sockets: u64,
    pub elsewhere: Counters,
    /// Event-only sockets that ended and wait for their close notice to
    /// place them: counted in the window it comes.
    pub awaiting_notice: u64,
    /// Close notices counted on their own because too many waited for
    /// their events.
    pub notices_unheld: u64,
}

impl<'a> Report<'a> {
    /// A report of `groups` over `start_ms..end_ms`; notices and labels are
    /// filled in by whoever emits it.
    pub fn new(
        kind: ReportKind,
        index: Index,
        (start_ms, end_ms): (u64, u64),
        polls: u64,
        groups: Vec<Group<'a>>,
    ) -> Report<'a> {
        Report {
            kind,
            index,
            start_ms,
            end_ms,
            polls,
            groups,
            system: None,
            notices: Vec::new(),
            filtered: false,
            netns_labels: BTreeMap::new(),
            container_labels: BTreeMap::new(),
            pod_labels: Vec::new(),
            process_names: BTreeMap::new(),
            precision: None,
            closes_lost: None,
            closes_lost_window: None,
            notices_before_run: 0,
            run_started: None,
            unplaced_by_filters: None,
            udp: None,
            udp_close: None,
            tcp: true,
        }
    }

    /// A window's length in seconds, for per-second rates (none for
    /// snapshots and lifetimes, and for an empty window).
    pub fn window_seconds(&self) -> Option<f64> {
        let ms = self.end_ms.saturating_sub(self.start_ms);
        (self.kind == ReportKind::Window && ms > 0).then(|| ms as f64 / 1000.0)
    }

    /// The window's start and end on the wall clock, RFC 3339 in UTC with
    /// milliseconds, when the run's start is known.
    pub fn clock_times(&self) -> Option<(String, String)> {
        let started = self.run_started?;
        let at = |ms: u64| {
            humantime::format_rfc3339_millis(started + std::time::Duration::from_millis(ms))
                .to_string()
        };
        Some((at(self.start_ms), at(self.end_ms)))
    }

    /// How a namespace is named in this report. Namespace 0 is the one
    /// sampled when its inode was not asked for (a run in its own
    /// namespace, a recording): "own netns" when no label says more.
    pub fn netns_label(&self, inode: u64) -> String {
        match self.netns_labels.get(&inode) {
            Some(label) => label.clone(),
            None if inode == 0 => "own netns".to_string(),
            None => format!("netns:[{inode}]"),
        }
    }

    /// A container's name, or `none (namespace label)` for a namespace
    /// in none.
    fn container_value(&self, inode: u64) -> String {
        self.container_labels
            .get(&inode)
            .cloned()
            .unwrap_or_else(|| format!("none ({})", self.netns_label(inode)))
    }

    /// A group's heading: the seed's forms, with namespaces and containers
    /// named from the report's labels.
    pub fn key_text(&self, key: &GroupKey) -> String {
        match *key {
            GroupKey::Tuple(k) if k.netns != 0 => format!("[{}] {k}", self.netns_label(k.netns)),
            GroupKey::Netns(inode) => {
                let label = self.netns_label(inode);
                // The inode once: labels of unnamed namespaces carry it.
                if inode == 0 || label.contains(&format!("[{inode}]")) {
                    format!("Network namespace: {label}")
                } else {
                    format!("Network namespace: {label} (inode {inode})")
                }
            }
            GroupKey::Container(inode) => format!("Container: {}", self.container_value(inode)),
            GroupKey::Pod(n) => match self.pod_label(n) {
                Some(l) if l.is_named() && l.container.is_empty() => {
                    format!("Pod: {}/{} (sockets no process holds)", l.namespace, l.pod)
                }
                Some(l) if l.is_named() => {
                    format!("Pod: {}/{} container {}", l.namespace, l.pod, l.container)
                }
                Some(l) => format!("Pod: none (container: {})", l.container),
                None => other_text(key),
            },
            GroupKey::Process(pid) if crate::aggregate::is_pid(pid) => {
                format!("Process: {}", self.process_value(pid))
            }
            other => other.to_string(),
        }
    }

    /// The label of pod group `n`, if the report has it.
    pub fn pod_label(&self, n: u32) -> Option<&crate::source::pods::PodLabel> {
        self.pod_labels.get(usize::try_from(n).ok()?)
    }

    fn process_value(&self, pid: u32) -> String {
        match self.process_names.get(&pid) {
            Some(command) => format!("{command}[{pid}]"),
            None => pid.to_string(),
        }
    }

    /// The bare key for a table cell.
    pub fn key_value(&self, key: &GroupKey) -> String {
        match *key {
            GroupKey::Tuple(k) if k.netns != 0 => {
                format!("[{}] {}", self.netns_label(k.netns), key.value())
            }
            GroupKey::Netns(inode) => self.netns_label(inode),
            GroupKey::Container(inode) => self.container_value(inode),
            GroupKey::Pod(n) => match self.pod_label(n) {
                Some(l) if l.is_named() => format!("{}/{}/{}", l.namespace, l.pod, l.container),
                Some(l) => l.container.clone(),
                None => key.value(),
            },
            GroupKey::Process(pid) if crate::aggregate::is_pid(pid) => self.process_value(pid),
            other => other.value(),
        }
    }
}

fn other_text(key: &GroupKey) -> String {
    key.to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenderOptions {
    pub format: Format,
    /// Print zero-valued counters too.
    pub zeros: bool,
    /// An earlier report of the run explained `~` (text, table): it is
    /// said once per run.
    pub legend_said: bool,
    /// Table: the counter columns (bit = `Counter as u32`) the run's first
    /// table fixed; counters outside them are listed under the table.
    pub columns: Option<u32>,
    /// Table: the terminal's width, when printing to one; columns that do
    /// not fit are left out and counted.
    pub width: Option<u16>,
    /// List the N groups `sort` ranks first; the rest are summed into
    /// one "others" line.
    pub top: Option<usize>,
    /// What groups are ranked by (with `activity`, as they come).
    pub sort: SortBy,
    /// List groups of TIME_WAIT sockets only one by one, rather than
    /// folding them into one line.
    pub list_time_wait: bool,
}

impl RenderOptions {
    /// These options for the run's next report, after one that `said`.
    pub fn after(self, said: Said) -> RenderOptions {
        RenderOptions {
            legend_said: self.legend_said || said.legend,
            columns: self.columns.or(said.columns),
            ..self
        }
    }
}

/// What a report showed that the run's later reports build on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Said {
    /// It explained `~`.
    pub legend: bool,
    /// Table: the counter columns it fixed for the run (its first table).
    pub columns: Option<u32>,
}

/// Groups summed into one line of a report: the quieter ones past
/// `--top`, or those of TIME_WAIT sockets only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summed {
    pub groups: usize,
    pub sockets: usize,
    /// TIME_WAIT sockets among them.
    pub time_wait: usize,
    pub counters: Counters,
    /// Their sockets' smoothed RTT samples.
    pub rtt: crate::rtt::RttHistogram,
}

impl Summed {
    fn add(&mut self, group: &Group<'_>) {
        self.groups += 1;
        self.sockets += group.sockets;
        self.time_wait += group.time_wait;
        self.counters.add(&group.counters);
        self.rtt.merge(&group.rtt);
    }

    pub fn is_empty(&self) -> bool {
        self.groups == 0
    }
}

/// What a report's groups add up to, as its end writes them.
#[derive(Debug, Clone, Default)]
pub struct Sums {
    /// Groups written one by one.
    pub listed: usize,
    /// Groups past `--top`, summed.
    pub others: Summed,
    /// Groups of TIME_WAIT sockets only, summed.
    pub time_wait: Summed,
    /// Every group's counters added up, summed ones too.
    pub totals: Counters,
    /// Every group's sockets.
    pub sockets: usize,
    /// Every group's smoothed RTT samples.
    pub rtt: crate::rtt::RttHistogram,
}

impl Sums {
    /// Groups in all, listed or summed.
    pub fn groups(&self) -> usize {
        self.listed + self.others.groups + self.time_wait.groups
    }

    /// Lines (or rows) the groups take: one each listed, one per sum.
    pub fn entries(&self) -> usize {
        self.listed + usize::from(!self.others.is_empty()) + usize::from(!self.time_wait.is_empty())
    }

    fn add(&mut self, group: &Group<'_>) {
        self.totals.add(&group.counters);
        self.sockets += group.sockets;
        self.rtt.merge(&group.rtt);
    }
}

/// Writes one report group by group, so a snapshot can be printed while it
/// is read (`--once` keeps no socket longer than its datagram).
pub struct ReportWriter<'w> {
    options: RenderOptions,
    out: &'w mut dyn Write,
    /// JSON is built here and written in large pieces.
    buf: Vec<u8>,
    table_rows: Vec<table::Row>,
    sums: Sums,
    /// A `~` was written.
    approx_shown: bool,
}

const FLUSH_AT: usize = 48 * 1024;

impl<'w> ReportWriter<'w> {
    pub fn begin(
        report: &Report<'_>,
        options: RenderOptions,
        out: &'w mut dyn Write,
    ) -> io::Result<Self> {
        let mut writer = ReportWriter {
            options,
            out,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            table_rows: Vec::new(),
            sums: Sums::default(),
            approx_shown: false,
        };
        match options.format {
            Format::Text => text::begin(report, writer.out)?,
            Format::Json => json::begin(report, &mut writer.buf),
            Format::Table => {}
        }
        Ok(writer)
    }

    /// Writes a group, or folds it into the TIME_WAIT line.
    pub fn group(&mut self, report: &Report<'_>, group: &Group<'_>) -> io::Result<()> {
        if self.folds(group) {
            self.sums.time_wait.add(group);
            self.sums.add(group);
            return Ok(());
        }
        match self.options.format {
            Format::Text => text::group(report, group, self.options, self.out)?,
            Format::Json => {
                json::group(&mut self.buf, report, self.sums.listed, group, self.options);
                if self.buf.len() >= FLUSH_AT {
                    self.out.write_all(&self.buf)?;
                    self.buf.clear();
                }
            }
            Format::Table => self.table_rows.push(table::row(report, group)),
        }
        self.approx_shown |= shows_approx(&group.counters);
        self.sums.listed += 1;
        self.sums.add(group);
        Ok(())
    }

    /// Sums a group past `--top` into the "others" line (or the TIME_WAIT
    /// one, where it belongs).
    pub fn other(&mut self, group: &Group<'_>) {
        if self.folds(group) {
            self.sums.time_wait.add(group);
        } else {
            self.sums.others.add(group);
        }
        self.sums.add(group);
    }

    fn folds(&self, group: &Group<'_>) -> bool {
        group.only_time_wait && !self.options.list_time_wait
    }

    /// The summed lines, the totals and what follows; says what later
    /// reports of the run need to know.
    pub fn end(mut self, report: &Report<'_>) -> io::Result<Said> {
        let sums = &self.sums;
        self.approx_shown |= shows_approx(&sums.others.counters)
            || shows_approx(&sums.time_wait.counters)
            || (sums.entries() > 1 && shows_approx(&sums.totals));
        let legend = self.approx_shown && !self.options.legend_said;
        match self.options.format {
            Format::Text => {
                text::end(report, sums, legend, self.options, self.out)?;
                if let Some(section) = &report.udp {
                    udp::write_text(report, section, self.out)?;
                }
                Ok(Said {
                    legend,
                    columns: None,
                })
            }
            Format::Json => {
                json::end(report, sums, self.options, &mut self.buf);
                if let Some(section) = &report.udp {
                    udp::append_json(report, section, &mut self.buf);
                }
                self.out.write_all(&self.buf)?;
                Ok(Said::default())
            }
            Format::Table => {
                let rows = std::mem::take(&mut self.table_rows);
                let columns = table::end(report, rows, sums, legend, self.options, self.out)?;
                if let Some(section) = &report.udp {
                    udp::write_table(report, section, self.out)?;
                }
                Ok(Said { legend, columns })
            }
        }
    }
}

/// Whether `counters` print a `~` (a non-zero approximate value).
fn shows_approx(counters: &Counters) -> bool {
    counters
        .iter()
        .any(|(counter, value)| value != 0 && counters.is_approx(counter))
}

/// What `~` (text, table) and a group's `approx` list (JSON) mean: said
/// once per run in text and tables, in every JSON report.
pub const APPROX_LEGEND: &str = "~ marks a count inferred rather than seen (an open or reset guessed from a socket's appearance or end; listen drops or overflows shared among listeners; a request socket's reset placed on the one listener with handshakes), or one the socket counts differently from the namespace counter of that name (InSegs: each segment of a GRO packet; DelayedACKs: a timer that sent a compressed SACK, not one that deferred its ACK; through perf, any expiry)";

/// Bytes per second in human units: `0 B/s`, `950 B/s`, `1.2 kB/s`, `3.4 MB/s`.
pub fn human_rate(bytes_per_s: f64) -> String {
    const UNITS: [&str; 5] = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"];
    let mut value = bytes_per_s.max(0.0);
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[0])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A group's smoothed-RTT percentiles as reports print them,
/// `p50/p90/p99` (`5.21ms/5.40ms/5.44ms`), where the report's index keeps
/// them: a tuple's group is one socket, whose gauges say its RTT.
pub fn rtt_text(report: &Report<'_>, rtt: &crate::rtt::Histogram) -> Option<String> {
    if report.index == crate::aggregate::Index::Tuple {
        return None;
    }
    percentiles_text(rtt)
}

fn percentiles_text(histogram: &crate::rtt::Histogram) -> Option<String> {
    let [p50, p90, p99] = histogram.percentiles_us()?;
    let text = crate::rtt::duration_text;
    Some(format!("{}/{}/{}", text(p50), text(p90), text(p99)))
}

/// A group's handshake times (connects' SYN to ESTABLISHED, from kernel
/// events) as reports print them: one value (`20.50ms`, a tuple's), or
/// p50/p90/p99 of several.
pub fn handshake_text(handshake: &crate::rtt::Histogram) -> Option<String> {
    match handshake.min_max_us()? {
        (only, _) if handshake.count() == 1 => Some(crate::rtt::duration_text(f64::from(only))),
        _ => percentiles_text(handshake),
    }
}

/// What the "others" line (or row: `what`) sums, and how to list more.
pub fn others_text(others: &Summed, what: &str) -> String {
    format!(
        "{} quieter group{} ({} socket{}) summed into this {what}: --top N or --all lists more",
        others.groups,
        plural(others.groups),
        others.sockets,
        plural(others.sockets)
    )
}

/// What the TIME_WAIT line (or row: `what`) sums, and how to list them.
pub fn time_wait_text(time_wait: &Summed, index: Index, what: &str) -> String {
    let sockets = format!(
        "{} socket{}",
        time_wait.time_wait,
        plural(time_wait.time_wait)
    );
    let groups = if index == Index::Tuple {
        String::new()
    } else {
        format!(
            " ({} {} group{} of nothing else)",
            time_wait.groups,
            index.name(),
            plural(time_wait.groups)
        )
    };
    format!("{sockets}{groups} summed into this {what}: --time-wait lists them")
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// "1 poll", "4 polls".
pub fn polls_text(polls: u64) -> String {
    format!("{polls} poll{}", if polls == 1 { "" } else { "s" })
}

/// Writes a whole report: groups of TIME_WAIT sockets only folded into
/// one line (unless listed), the rest ranked by `options.sort`, the first
/// `options.top` listed and the others summed into one line.
pub fn render(
    report: &Report<'_>,
    options: RenderOptions,
    out: &mut dyn Write,
) -> io::Result<Said> {
    if let Some(close) = &report.udp_close {
        match options.format {
            Format::Text => udp::write_close_text(report, close, options.zeros, out)?,
            Format::Table => udp::write_close_table(report, close, out)?,
            Format::Json => udp::write_close_json(report, close, out)?,
        }
        return Ok(Said::default());
    }
    let mut writer = ReportWriter::begin(report, options, out)?;
    if options.top.is_none() && options.sort == SortBy::Activity {
        // Groups come busiest first.
        for group in &report.groups {
            writer.group(report, group)?;
        }
        return writer.end(report);
    }
    let groups = &report.groups;
    let (folded, mut ranked): (Vec<usize>, Vec<usize>) =
        (0..groups.len()).partition(|&i| groups[i].only_time_wait && !options.list_time_wait);
    crate::aggregate::ranked(groups, &mut ranked, options.sort);
    let listed = options.top.unwrap_or(usize::MAX).min(ranked.len());
    for &i in &ranked[..listed] {
        writer.group(report, &groups[i])?;
    }
    for &i in &folded {
        writer.group(report, &groups[i])?;
    }
    for &i in &ranked[listed..] {
        writer.other(&groups[i]);
    }
    writer.end(report)
}

/// One gauge value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gauge<'a> {
    Int(u64),
    Text(&'a str),
}

/// The kernel's "no slow-start threshold yet" (TCP_INFINITE_SSTHRESH).
const INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

/// The kernel's "no RTT sample yet" min_rtt (its ~0U start).
const NO_MIN_RTT: u32 = u32::MAX;

/// The smoothed RTT, its variation and the minimum, in µs, when the socket
/// has measured one: before its first sample the kernel reports 0, a
/// variation of its initial timeout, and a min_rtt of u32::MAX.
pub fn sampled_rtt(info: &TcpInfo) -> Option<(u32, Option<u32>, Option<u32>)> {
    let rtt = info.rtt()?;
    let sampled = match info.min_rtt() {
        Some(min) => min != NO_MIN_RTT,
        // Kernels before 4.6 give no min_rtt: 0 is no sample there.
        None => rtt != 0,
    };
    sampled.then(|| (rtt, info.rttvar(), info.min_rtt()))
}

/// Calls `visit` with each gauge (current value) the sample has. Times are
/// in µs and rates in bytes/s, as the kernel gives them. Of a `closed`
/// socket, only what outlives it: see [`visit_final_gauges`].
pub fn visit_gauges<'a>(
    sample: &'a SocketSample,
    closed: bool,
    mut visit: impl FnMut(&'static str, Gauge<'a>),
) {
    if closed {
        return visit_final_gauges(sample, visit);
    }
    visit("state", Gauge::Text(sample.state.name()));
    if sample.state == TcpState::Listen {
        visit("accept_queue", Gauge::Int(sample.recv_queue.into()));
        // /proc/net/tcp does not give the limit; sock_diag (with tcp_info) does.
        if sample.tcp_info.is_some() {
            visit("accept_queue_limit", Gauge::Int(sample.send_queue.into()));
        }
    } else {
        visit("recv_q", Gauge::Int(sample.recv_queue.into()));
        visit("send_q", Gauge::Int(sample.send_queue.into()));
    }
    if let Some(cong) = &sample.congestion {
        visit("congestion", Gauge::Text(cong.as_str()));
    }
    if let Some(info) = &sample.tcp_info {
        if sample.state != TcpState::Listen {
            visit_rtt(info, &mut visit);
            let u32s: [(&'static str, Option<u32>); 10] = [
                ("rto_us", info.rto()),
                ("mss", info.snd_mss()),
                ("cwnd", info.snd_cwnd()),
                (
                    "ssthresh",
                    info.snd_ssthresh().filter(|v| *v < INFINITE_SSTHRESH),
                ),
                ("snd_wnd", info.snd_wnd()),
                ("rcv_wnd", info.rcv_wnd()),
                ("unacked", info.unacked()),
                ("lost", info.lost()),
                ("retrans_out", info.retrans()),
                ("notsent_bytes", info.notsent_bytes()),
            ];
            for (name, value) in u32s {
                if let Some(v) = value {
                    visit(name, Gauge::Int(v.into()));
                }
            }
            if let Some(v) = info.delivery_rate() {
                visit("delivery_rate", Gauge::Int(v));
            }
            if let Some(v) = info.pacing_rate().filter(|v| *v != u64::MAX) {
                visit("pacing_rate", Gauge::Int(v));
            }
        }
    }
    if let Some(mem) = &sample.skmem {
        visit("rmem_alloc", Gauge::Int(mem.rmem_alloc.into()));
        visit("wmem_alloc", Gauge::Int(mem.wmem_alloc.into()));
    }
}

/// rtt_us, rttvar_us and min_rtt_us, when an RTT was measured.
fn visit_rtt<'a>(info: &TcpInfo, visit: &mut impl FnMut(&'static str, Gauge<'a>)) {
    let Some((rtt, rttvar, min_rtt)) = sampled_rtt(info) else {
        return;
    };
    visit("rtt_us", Gauge::Int(rtt.into()));
    for (name, value) in [("rttvar_us", rttvar), ("min_rtt_us", min_rtt)] {
        if let Some(v) = value {
            visit(name, Gauge::Int(v.into()));
        }
    }
}

/// What stays meaningful of a socket that closed: the path as it last
/// measured it (congestion control, RTT, segment size, window and
/// delivery rate), when it measured an RTT at all. Its state (CLOSE),
/// queues, windows, timer and in-flight counts are leftovers of its end
/// (the FIN in recv_q, an abort's unsent data in send_q), and a
/// connection that never completed its handshake measured nothing.
fn visit_final_gauges<'a>(
    sample: &'a SocketSample,
    mut visit: impl FnMut(&'static str, Gauge<'a>),
) {
    let Some(info) = &sample.tcp_info else {
        return;
    };
    if sample.state == TcpState::Listen || sampled_rtt(info).is_none() {
        return;
    }
    if let Some(cong) = &sample.congestion {
        visit("congestion", Gauge::Text(cong.as_str()));
    }
    visit_rtt(info, &mut visit);
    let u32s: [(&'static str, Option<u32>); 3] = [
        ("mss", info.snd_mss()),
        ("cwnd", info.snd_cwnd()),
        (
            "ssthresh",
            info.snd_ssthresh().filter(|v| *v < INFINITE_SSTHRESH),
        ),
    ];
    for (name, value) in u32s {
        if let Some(v) = value {
            visit(name, Gauge::Int(v.into()));
        }
    }
    if let Some(v) = info.delivery_rate() {
        visit("delivery_rate", Gauge::Int(v));
    }
}

/// Writes to stdout; a closed pipe (`| head`) ends the program quietly.
pub fn is_broken_pipe(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::BrokenPipe
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::model::tcp_info::TcpInfo;
    use crate::model::{CongestionName, SkMemInfo, SocketKey};

    const BLUE: u64 = 4026532281;
    const PLAIN: u64 = 4026532500;
    const DOCKER: u64 = 4026532600;

    fn v4() -> SocketKey {
        SocketKey::new(
            "10.0.0.1".parse().unwrap(),
            443,
            "192.0.2.7".parse().unwrap(),
            51000,
        )
    }

    fn v6() -> SocketKey {
        SocketKey::new(
            "2001:db8::1".parse().unwrap(),
            22,
            "2001:db8::2".parse().unwrap(),
            40022,
        )
    }

    fn in_netns(netns: u64) -> SocketKey {
        SocketKey { netns, ..v4() }
    }

    fn bare_report() -> Report<'static> {
        Report::new(ReportKind::Window, Index::Tuple, (0, 1000), 1, Vec::new())
    }

    /// A report that knows one namespace name, one container and one
    /// process command.
    fn labelled_report() -> Report<'static> {
        Report {
            netns_labels: BTreeMap::from([(BLUE, "blue".to_string())]),
            container_labels: BTreeMap::from([(DOCKER, "docker:3f4e5a6b7c8d".to_string())]),
            process_names: BTreeMap::from([(812, "nginx".to_string()), (0, "ghost".to_string())]),
            ..bare_report()
        }
    }

    // ---- Report::new ----------------------------------------------------

    #[test]
    fn new_report_has_no_extras_until_the_emitter_fills_them() {
        let report = Report::new(
            ReportKind::Close {
                unseen_ms: 7,
                from: CountedFrom::CloseNotice { polled: true },
            },
            Index::Lport,
            (100, 250),
            3,
            Vec::new(),
        );
        assert_eq!(
            report.kind,
            ReportKind::Close {
                unseen_ms: 7,
                from: CountedFrom::CloseNotice { polled: true }
            }
        );
        assert_eq!(report.index, Index::Lport);
        assert_eq!(
            (report.start_ms, report.end_ms, report.polls),
            (100, 250, 3)
        );
        assert!(report.groups.is_empty());
        assert!(report.system.is_none());
        assert!(report.notices.is_empty());
        assert!(!report.filtered);
        assert!(report.netns_labels.is_empty());
        assert!(report.container_labels.is_empty());
        assert!(report.process_names.is_empty());
        assert!(report.precision.is_none());
    }

    // ---- netns_label ----------------------------------------------------

    #[test]
    fn netns_label_uses_the_reports_name_for_a_known_namespace() {
        assert_eq!(labelled_report().netns_label(BLUE), "blue");
    }

    #[test]
    fn netns_label_falls_back_to_the_inode_form_ip_netns_prints() {
        assert_eq!(labelled_report().netns_label(PLAIN), "netns:[4026532500]");
        assert_eq!(bare_report().netns_label(BLUE), "netns:[4026532281]");
    }

    // ---- key_text: the text renderer's group heading ---------------------

    #[test]
    fn key_text_tuple_in_the_current_namespace_is_the_bare_tuple() {
        let report = labelled_report();
        assert_eq!(
            report.key_text(&GroupKey::Tuple(v4())),
            "10.0.0.1:443 <-> 192.0.2.7:51000"
        );
        assert_eq!(
            report.key_text(&GroupKey::Tuple(v6())),
            "[2001:db8::1]:22 <-> [2001:db8::2]:40022"
        );
    }

    #[test]
    fn key_text_tuple_of_another_namespace_is_prefixed_with_its_label() {
        let key = GroupKey::Tuple(in_netns(BLUE));
        assert_eq!(
            labelled_report().key_text(&key),
            "[blue] 10.0.0.1:443 <-> 192.0.2.7:51000"
        );
        assert_eq!(
            bare_report().key_text(&key),
            "[netns:[4026532281]] 10.0.0.1:443 <-> 192.0.2.7:51000"
        );
    }

    #[test]
    fn key_text_addresses_and_ports_say_which_end() {
        let report = labelled_report();
        let cases = [
            (
                GroupKey::Laddr("10.0.0.1".parse().unwrap()),
                "Local address: 10.0.0.1",
            ),
            (
                GroupKey::Raddr("2001:db8::2".parse().unwrap()),
                "Remote address: 2001:db8::2",
            ),
            (GroupKey::Lport(443), "Local port: 443"),
            (GroupKey::Rport(51000), "Remote port: 51000"),
        ];
        for (key, text) in cases {
            assert_eq!(report.key_text(&key), text);
        }
    }

    #[test]
    fn key_text_netns_names_the_namespace_and_its_inode_once() {
        assert_eq!(
            labelled_report().key_text(&GroupKey::Netns(BLUE)),
            "Network namespace: blue (inode 4026532281)"
        );
        assert_eq!(
            labelled_report().key_text(&GroupKey::Netns(PLAIN)),
            "Network namespace: netns:[4026532500]"
        );
    }

    #[test]
    fn the_own_namespace_is_named_by_its_real_inode_never_as_netns_0() {
        // A run in its own namespace keys its sockets by namespace 0; the
        // source labels 0 with the real inode.
        let mut report = bare_report();
        report
            .netns_labels
            .insert(0, "own netns:[4026531833]".into());
        assert_eq!(
            report.key_value(&GroupKey::Netns(0)),
            "own netns:[4026531833]"
        );
        assert_eq!(
            report.key_text(&GroupKey::Netns(0)),
            "Network namespace: own netns:[4026531833]"
        );
        // Labels do not nest: one pair of parentheses.
        assert_eq!(
            report.key_value(&GroupKey::Container(0)),
            "none (own netns:[4026531833])"
        );
        // Without a label (a recording): still no inode 0.
        let bare = bare_report();
        for text in [
            bare.key_value(&GroupKey::Netns(0)),
            bare.key_text(&GroupKey::Netns(0)),
            bare.key_value(&GroupKey::Container(0)),
        ] {
            assert!(text.contains("own netns"), "{text}");
            assert!(!text.contains("[0]") && !text.contains("inode 0"), "{text}");
        }
    }

    #[test]
    fn key_text_container_uses_its_label_or_says_none_with_the_namespace() {
        assert_eq!(
            labelled_report().key_text(&GroupKey::Container(DOCKER)),
            "Container: docker:3f4e5a6b7c8d"
        );
        // A namespace name is no container label, but names the namespace.
        assert_eq!(
            labelled_report().key_text(&GroupKey::Container(BLUE)),
            "Container: none (blue)"
        );
    }

    #[test]
    fn key_text_process_shows_command_and_pid_when_the_command_is_known() {
        let report = labelled_report();
        assert_eq!(
            report.key_text(&GroupKey::Process(812)),
            "Process: nginx[812]"
        );
        assert_eq!(report.key_text(&GroupKey::Process(4242)), "Process: 4242");
    }

    #[test]
    fn key_text_process_zero_is_the_unknown_owner_whatever_the_names() {
        // pid 0 stands for "owner not readable"; a name for it is ignored.
        assert_eq!(
            labelled_report().key_text(&GroupKey::Process(0)),
            "Process: ? (owner not readable or gone)"
        );
    }

    #[test]
    fn key_text_of_sockets_closed_before_any_poll_says_so_not_time_wait() {
        let report = labelled_report();
        let unseen = report.key_text(&GroupKey::Process(crate::aggregate::UNSEEN_OWNER));
        assert_eq!(unseen, "Process: - (closed before any poll saw its owner)");
        let held_by_none = report.key_text(&GroupKey::Process(crate::aggregate::NO_OWNER));
        assert!(held_by_none.contains("TIME_WAIT"), "{held_by_none}");
    }

    // ---- key_value: the table's key cell ----------------------------------

    #[test]
    fn key_value_is_the_bare_value_with_labels_applied() {
        let report = labelled_report();
        let cases = [
            (GroupKey::Tuple(v4()), "10.0.0.1:443 192.0.2.7:51000"),
            (
                GroupKey::Tuple(v6()),
                "[2001:db8::1]:22 [2001:db8::2]:40022",
            ),
            (
                GroupKey::Tuple(in_netns(BLUE)),
                "[blue] 10.0.0.1:443 192.0.2.7:51000",
            ),
            (
                GroupKey::Tuple(in_netns(PLAIN)),
                "[netns:[4026532500]] 10.0.0.1:443 192.0.2.7:51000",
            ),
            (GroupKey::Laddr("10.0.0.1".parse().unwrap()), "10.0.0.1"),
            (
                GroupKey::Raddr("2001:db8::2".parse().unwrap()),
                "2001:db8::2",
            ),
            (GroupKey::Lport(443), "443"),
            (GroupKey::Rport(51000), "51000"),
            (GroupKey::Netns(BLUE), "blue"),
            (GroupKey::Netns(PLAIN), "netns:[4026532500]"),
            (GroupKey::Container(DOCKER), "docker:3f4e5a6b7c8d"),
            (GroupKey::Container(PLAIN), "none (netns:[4026532500])"),
            // A namespace `ip netns` names is named in its container key.
            (GroupKey::Container(BLUE), "none (blue)"),
            (GroupKey::Process(812), "nginx[812]"),
            (GroupKey::Process(4242), "4242"),
            (GroupKey::Process(0), "?"),
            (GroupKey::Process(crate::aggregate::NO_OWNER), "-"),
            (
                GroupKey::Process(crate::aggregate::UNSEEN_OWNER),
                "- (closed before any poll saw its owner)",
            ),
        ];
        for (key, value) in cases {
            assert_eq!(report.key_value(&key), value, "{key:?}");
        }
    }

    // ---- wall clock ------------------------------------------------------

    #[test]
    fn reports_say_their_window_on_the_wall_clock_in_every_format() {
        let mut report = bare_report();
        report.start_ms = 1_000;
        report.end_ms = 2_500;
        report.polls = 1;
        // 2026-11-29T06:00:00Z, the run's ms 0.
        report.run_started =
            Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_932_000));
        let (start, end) = report.clock_times().unwrap();
        assert_eq!(start, "2026-11-29T06:00:01.000Z");
        assert_eq!(end, "2026-11-29T06:00:02.500Z");
        let render_as = |report: &Report<'_>, format| {
            let mut out = Vec::new();
            let options = RenderOptions {
                format,
                zeros: false,
                ..Default::default()
            };
            super::render(report, options, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let render = |format| render_as(&report, format);
        assert!(render(Format::Text).contains(
            "=== 2026-11-29T06:00:01.000Z to 2026-11-29T06:00:02.500Z: 1.50 s window (1 poll)"
        ));
        assert!(render(Format::Table)
            .contains("2026-11-29T06:00:01.000Z to 2026-11-29T06:00:02.500Z (1 poll)"));
        let json: serde_json::Value = serde_json::from_str(&render(Format::Json)).unwrap();
        assert_eq!(json["start_time"], "2026-11-29T06:00:01.000Z");
        assert_eq!(json["end_time"], "2026-11-29T06:00:02.500Z");
        // Without a known start (recorded data), no clock is claimed.
        report.run_started = None;
        assert!(!render_as(&report, Format::Json).contains("start_time"));
    }

    // ---- Format and RenderOptions --------------------------------------

    #[test]
    fn format_parses_the_three_cli_names_exactly() {
        use clap::ValueEnum;
        let parse = |text: &str| Format::from_str(text, false).ok();
        assert_eq!(parse("text"), Some(Format::Text));
        assert_eq!(parse("table"), Some(Format::Table));
        assert_eq!(parse("json"), Some(Format::Json));
        for other in ["JSON", "Text", "csv", "", " json"] {
            assert_eq!(parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn default_rendering_is_text_without_zeros() {
        assert_eq!(
            RenderOptions::default(),
            RenderOptions {
                format: Format::Text,
                zeros: false,
                ..Default::default()
            }
        );
    }

    // ---- visit_gauges ----------------------------------------------------

    /// tcp_info offsets (include/uapi/linux/tcp.h) of the gauges set here.
    const RTT: usize = 68;
    const SND_SSTHRESH: usize = 76;
    const SND_CWND: usize = 80;
    const PACING_RATE: usize = 104;
    const DELIVERY_RATE: usize = 160;

    fn info(len: usize, u32s: &[(usize, u32)], u64s: &[(usize, u64)]) -> TcpInfo {
        let mut raw = vec![0u8; len];
        for &(at, v) in u32s {
            raw[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        }
        for &(at, v) in u64s {
            raw[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        }
        TcpInfo::from_bytes(&raw).unwrap()
    }

    fn gauges(sample: &SocketSample) -> Vec<(&'static str, String)> {
        let mut seen = Vec::new();
        visit_gauges(sample, false, |name, value| {
            seen.push((
                name,
                match value {
                    Gauge::Int(v) => v.to_string(),
                    Gauge::Text(t) => t.to_string(),
                },
            ))
        });
        seen
    }

    fn names(sample: &SocketSample) -> Vec<&'static str> {
        gauges(sample).into_iter().map(|(name, _)| name).collect()
    }

    fn gauge(sample: &SocketSample, name: &str) -> Option<String> {
        gauges(sample)
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    fn sample(state: TcpState) -> SocketSample {
        SocketSample {
            recv_queue: 3,
            send_queue: 4096,
            ..SocketSample::bare(v4(), 1, state)
        }
    }

    #[test]
    fn a_bare_sample_has_only_state_and_queues() {
        let s = sample(TcpState::Established);
        assert_eq!(
            gauges(&s),
            [
                ("state", "ESTAB".to_string()),
                ("recv_q", "3".to_string()),
                ("send_q", "4096".to_string()),
            ]
        );
    }

    #[test]
    fn a_listeners_queues_are_its_accept_queue_and_limit() {
        let with_info = SocketSample {
            tcp_info: Some(info(248, &[(RTT, 77), (SND_CWND, 10)], &[])),
            ..sample(TcpState::Listen)
        };
        // tcp_info's connection gauges mean nothing for a listener.
        assert_eq!(
            names(&with_info),
            ["state", "accept_queue", "accept_queue_limit"]
        );
        assert_eq!(gauge(&with_info, "accept_queue").as_deref(), Some("3"));
        assert_eq!(
            gauge(&with_info, "accept_queue_limit").as_deref(),
            Some("4096")
        );
    }

    #[test]
    fn a_listener_from_proc_net_tcp_has_no_accept_queue_limit() {
        // /proc/net/tcp's tx_queue is no backlog.
        assert_eq!(names(&sample(TcpState::Listen)), ["state", "accept_queue"]);
    }

    #[test]
    fn gauges_come_in_a_fixed_order_congestion_before_tcp_info_before_memory() {
        let s = SocketSample {
            tcp_info: Some(info(
                248,
                &[(RTT, 1500), (SND_SSTHRESH, 20), (SND_CWND, 10)],
                &[(PACING_RATE, 2_000_000), (DELIVERY_RATE, 1_000_000)],
            )),
            congestion: CongestionName::from_bytes(b"cubic"),
            skmem: Some(SkMemInfo {
                rmem_alloc: 11,
                rcvbuf: 0,
                wmem_alloc: 22,
                sndbuf: 0,
                drops: None,
            }),
            ..sample(TcpState::Established)
        };
        assert_eq!(
            names(&s),
            [
                "state",
                "recv_q",
                "send_q",
                "congestion",
                "rtt_us",
                "rttvar_us",
                "min_rtt_us",
                "rto_us",
                "mss",
                "cwnd",
                "ssthresh",
                "snd_wnd",
                "rcv_wnd",
                "unacked",
                "lost",
                "retrans_out",
                "notsent_bytes",
                "delivery_rate",
                "pacing_rate",
                "rmem_alloc",
                "wmem_alloc",
            ]
        );
        assert_eq!(gauge(&s, "congestion").as_deref(), Some("cubic"));
        assert_eq!(gauge(&s, "rtt_us").as_deref(), Some("1500"));
        assert_eq!(gauge(&s, "cwnd").as_deref(), Some("10"));
        assert_eq!(gauge(&s, "ssthresh").as_deref(), Some("20"));
        assert_eq!(gauge(&s, "pacing_rate").as_deref(), Some("2000000"));
        assert_eq!(gauge(&s, "delivery_rate").as_deref(), Some("1000000"));
        assert_eq!(gauge(&s, "rmem_alloc").as_deref(), Some("11"));
        assert_eq!(gauge(&s, "wmem_alloc").as_deref(), Some("22"));
    }

    #[test]
    fn infinite_ssthresh_and_unlimited_pacing_are_left_out() {
        let s = SocketSample {
            tcp_info: Some(info(
                248,
                &[(SND_SSTHRESH, 0x7fff_ffff)],
                &[(PACING_RATE, u64::MAX)],
            )),
            ..sample(TcpState::Established)
        };
        assert_eq!(gauge(&s, "ssthresh"), None);
        assert_eq!(gauge(&s, "pacing_rate"), None);
        // One below is a real threshold.
        let s = SocketSample {
            tcp_info: Some(info(248, &[(SND_SSTHRESH, 0x7fff_fffe)], &[])),
            ..sample(TcpState::Established)
        };
        assert_eq!(gauge(&s, "ssthresh").as_deref(), Some("2147483646"));
    }

    #[test]
    fn an_old_kernels_short_tcp_info_gives_only_the_gauges_it_covers() {
        // 104 bytes (2.6): no pacing, delivery rate, min_rtt nor windows.
        let s = SocketSample {
            tcp_info: Some(info(104, &[(RTT, 900)], &[])),
            ..sample(TcpState::Established)
        };
        let names = names(&s);
        for present in ["rtt_us", "cwnd", "ssthresh", "unacked"] {
            assert!(names.contains(&present), "{present}");
        }
        for absent in [
            "min_rtt_us",
            "notsent_bytes",
            "snd_wnd",
            "rcv_wnd",
            "delivery_rate",
            "pacing_rate",
        ] {
            assert!(!names.contains(&absent), "{absent}");
        }
    }

    // ---- ReportWriter: what is written when ------------------------------

    /// A writer whose bytes can be read while a ReportWriter holds it.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn len(&self) -> usize {
            self.0.borrow().len()
        }
        fn text(&self) -> String {
            String::from_utf8(self.0.borrow().clone()).unwrap()
        }
    }

    fn port_group(port: u16) -> Group<'static> {
        let mut counters = Counters::default();
        counters.set(Counter::BytesSent, u64::from(port) * 10, false);
        counters.set(Counter::OutSegs, u64::from(port), false);
        Group {
            counters,
            sockets: 1,
            ..Group::empty(GroupKey::Lport(port))
        }
    }

    fn lport_report(groups: usize) -> Report<'static> {
        Report::new(
            ReportKind::Snapshot,
            Index::Lport,
            (0, 0),
            1,
            (1..=groups as u16).map(port_group).collect(),
        )
    }

    fn options(format: Format) -> RenderOptions {
        RenderOptions {
            format,
            zeros: false,
            ..Default::default()
        }
    }

    #[test]
    fn text_streams_the_heading_and_each_group_as_it_comes() {
        let report = lport_report(2);
        let sink = Shared::default();
        let mut out = sink.clone();
        let mut writer = ReportWriter::begin(&report, options(Format::Text), &mut out).unwrap();
        assert!(sink.text().contains("=== snapshot"));
        writer.group(&report, &report.groups[0]).unwrap();
        assert!(sink.text().contains("Local port: 1\n"));
        writer.group(&report, &report.groups[1]).unwrap();
        assert!(sink.text().contains("Local port: 2\n"));
        writer.end(&report).unwrap();
        assert!(!sink.text().contains("No TCP socket activity"));
    }

    #[test]
    fn table_writes_nothing_until_the_end_since_columns_depend_on_every_row() {
        let report = lport_report(2);
        let sink = Shared::default();
        let mut out = sink.clone();
        let mut writer = ReportWriter::begin(&report, options(Format::Table), &mut out).unwrap();
        for group in &report.groups {
            writer.group(&report, group).unwrap();
        }
        assert_eq!(sink.len(), 0);
        writer.end(&report).unwrap();
        assert!(sink.text().contains("BytesSent"));
    }

    #[test]
    fn json_is_buffered_and_flushed_in_large_pieces_that_join_into_one_document() {
        // Enough groups to pass the flush threshold a few times.
        let report = lport_report(2000);
        let sink = Shared::default();
        let mut out = sink.clone();
        let mut writer = ReportWriter::begin(&report, options(Format::Json), &mut out).unwrap();
        assert_eq!(sink.len(), 0, "nothing written before the first group");
        let mut flushes = Vec::new();
        for group in &report.groups {
            writer.group(&report, group).unwrap();
            if flushes.last() != Some(&sink.len()) && sink.len() > 0 {
                flushes.push(sink.len());
            }
        }
        assert!(flushes.len() >= 2, "flushed along the way: {flushes:?}");
        assert!(flushes[0] >= FLUSH_AT, "no small writes: {flushes:?}");
        writer.end(&report).unwrap();
        let text = sink.text();
        assert_eq!(text.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let groups = v["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 2000);
        for (i, group) in groups.iter().enumerate() {
            assert_eq!(group["key"]["lport"], i + 1);
        }
    }

    #[test]
    fn render_equals_writing_group_by_group() {
        let report = lport_report(3);
        for format in [Format::Text, Format::Table, Format::Json] {
            let mut whole = Vec::new();
            render(&report, options(format), &mut whole).unwrap();
            let mut streamed = Vec::new();
            let mut writer = ReportWriter::begin(&report, options(format), &mut streamed).unwrap();
            for group in &report.groups {
                writer.group(&report, group).unwrap();
            }
            writer.end(&report).unwrap();
            assert_eq!(whole, streamed, "{format:?}");
        }
    }

    #[test]
    fn only_a_broken_pipe_counts_as_the_reader_gone() {
        assert!(is_broken_pipe(&io::Error::from(io::ErrorKind::BrokenPipe)));
        assert!(!is_broken_pipe(&io::Error::from(
            io::ErrorKind::PermissionDenied
        )));
        assert!(!is_broken_pipe(&io::Error::other("disk full")));
    }
}
