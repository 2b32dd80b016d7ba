//! What a report holds (plain data built by the pipeline) and the gauges of
//! one socket; each output format is one module rendering a [`Report`].

pub mod json;
pub mod table;
pub mod text;

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::aggregate::{Group, GroupKey, Index, SystemSection};
use crate::counters::{Counter, Counters};
use crate::model::{SocketSample, TcpState};

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
    },
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
    /// pid → command, for index=process.
    pub process_names: BTreeMap<u32, String>,
    /// Precision mode's account: sources, events, losses.
    pub precision: Option<PrecisionSection>,
}

/// What precision mode tells in each report: which source filled each
/// counter, how many events came and were lost, and what events counted
/// that no socket row shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrecisionSection {
    /// "tracepoint", "kprobe" or "tracepoint+kprobe".
    pub probes: String,
    /// Counters and the probe that filled them (the rest: sock_diag polls).
    pub sources: Vec<(Vec<Counter>, String)>,
    pub events: u64,
    /// PERF_RECORD_LOST counts since the run began: events the kernel
    /// could not put in a full ring.
    pub events_lost: u64,
    /// Counts tied to no socket (a reset answering no socket, a TCP drop).
    pub unplaced: Counters,
    /// Counts still waiting for their socket's tuple.
    pub unidentified: Counters,
    pub drops_by_reason: BTreeMap<String, u64>,
    /// Sockets asked for as they left ESTABLISHED whose answer was taken in.
    pub last_samples: u64,
    /// Sockets only events saw and nothing placed in a sampled namespace
    /// (another namespace's, most likely), and what they counted.
    pub elsewhere_sockets: u64,
    pub elsewhere: Counters,
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
            process_names: BTreeMap::new(),
            precision: None,
        }
    }

    /// How a namespace is named in this report.
    pub fn netns_label(&self, inode: u64) -> String {
        self.netns_labels
            .get(&inode)
            .cloned()
            .unwrap_or_else(|| format!("netns:[{inode}]"))
    }

    /// A group's heading: the seed's forms, with namespaces and containers
    /// named from the report's labels.
    pub fn key_text(&self, key: &GroupKey) -> String {
        match *key {
            GroupKey::Tuple(k) if k.netns != 0 => format!("[{}] {k}", self.netns_label(k.netns)),
            GroupKey::Netns(inode) => {
                format!(
                    "Network namespace: {} (inode {inode})",
                    self.netns_label(inode)
                )
            }
            GroupKey::Container(inode) => format!(
                "Container: {}",
                self.container_labels
                    .get(&inode)
                    .cloned()
                    .unwrap_or_else(|| format!("none (netns:[{inode}])"))
            ),
            GroupKey::Process(pid) if pid != 0 => format!("Process: {}", self.process_value(pid)),
            other => other.to_string(),
        }
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
            GroupKey::Container(inode) => self
                .container_labels
                .get(&inode)
                .cloned()
                .unwrap_or_else(|| format!("none (netns:[{inode}])")),
            GroupKey::Process(pid) if pid != 0 => self.process_value(pid),
            other => other.value(),
        }
    }
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
}

/// Writes one report group by group, so a snapshot can be printed while it
/// is read (`--once` keeps no socket longer than its datagram).
pub struct ReportWriter<'w> {
    options: RenderOptions,
    out: &'w mut dyn Write,
    /// JSON is built here and written in large pieces.
    buf: Vec<u8>,
    table_rows: Vec<table::Row>,
    groups: usize,
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
            groups: 0,
        };
        match options.format {
            Format::Text => text::begin(report, writer.out)?,
            Format::Json => json::begin(report, &mut writer.buf),
            Format::Table => {}
        }
        Ok(writer)
    }

    pub fn group(&mut self, report: &Report<'_>, group: &Group<'_>) -> io::Result<()> {
        match self.options.format {
            Format::Text => text::group(report, group, self.options, self.out)?,
            Format::Json => {
                json::group(&mut self.buf, report, self.groups, group, self.options);
                if self.buf.len() >= FLUSH_AT {
                    self.out.write_all(&self.buf)?;
                    self.buf.clear();
                }
            }
            Format::Table => self.table_rows.push(table::row(report, group)),
        }
        self.groups += 1;
        Ok(())
    }

    pub fn end(mut self, report: &Report<'_>) -> io::Result<()> {
        match self.options.format {
            Format::Text => text::end(report, self.groups, self.options, self.out),
            Format::Json => {
                json::end(report, self.options, &mut self.buf);
                self.out.write_all(&self.buf)
            }
            Format::Table => table::end(report, &self.table_rows, self.options, self.out),
        }
    }
}

/// Writes a whole report.
pub fn render(report: &Report<'_>, options: RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let mut writer = ReportWriter::begin(report, options, out)?;
    for group in &report.groups {
        writer.group(report, group)?;
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

/// Calls `visit` with each gauge (current value) the sample has. Times are
/// in µs and rates in bytes/s, as the kernel gives them.
pub fn visit_gauges<'a>(sample: &'a SocketSample, mut visit: impl FnMut(&'static str, Gauge<'a>)) {
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
            let u32s: [(&'static str, Option<u32>); 13] = [
                ("rtt_us", info.rtt()),
                ("rttvar_us", info.rttvar()),
                ("min_rtt_us", info.min_rtt()),
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

/// Writes to stdout; a closed pipe (`| head`) ends the program quietly.
pub fn is_broken_pipe(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::BrokenPipe
}
