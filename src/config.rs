//! One run's configuration, every option checked: what is sampled, how
//! it is grouped, when it reports and in which format. The engine
//! (`session`, `live`, `run`) reads it; `cli` is one way to build it and
//! nothing here knows the command line.

use std::path::PathBuf;
use std::time::Duration;

use crate::aggregate::Index;
use crate::filter::FilterSet;
use crate::report::Format;

/// How long the run lasts and when it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Once,
    /// Report every `every`; stop after `count` reports or at `timeout`.
    Interval {
        every: Duration,
        count: Option<u64>,
        timeout: Option<Duration>,
    },
    /// One report at the end: after `timeout`, or at SIGINT/SIGTERM.
    Window {
        timeout: Option<Duration>,
    },
}

/// Which network namespaces are sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    /// The one tcpipstat runs in.
    Current,
    One(crate::source::netns::Namespace),
    All,
}

/// What a run does, every option checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub namespaces: Namespaces,
    pub index: Index,
    pub mode: Mode,
    pub poll: Duration,
    pub zeros: bool,
    pub onclose: bool,
    pub system: bool,
    pub format: Format,
    /// An --interval run with no --format: the live view when stdout is a
    /// terminal (decided at run time), text reports otherwise.
    pub live_view: bool,
    /// --all: reports list every group even on a terminal.
    pub all_groups: bool,
    /// --top: groups listed; the rest are summed into one line.
    pub top: Option<usize>,
    /// --sort: what groups are ranked by.
    pub sort: crate::aggregate::SortBy,
    /// --time-wait: groups of TIME_WAIT sockets only are listed one by one.
    pub list_time_wait: bool,
    /// --listen: the exporter's address and limits.
    pub listen: Option<(std::net::SocketAddr, crate::export::Limits)>,
    /// --export-self: the exporter's own sockets are reported too.
    pub export_self: bool,
    pub filters: FilterSet,
    pub record: Option<PathBuf>,
    /// Look up socket owners (--processes, --index process).
    pub processes: bool,
    /// Read /proc/net/tcp{,6} instead of sock_diag.
    pub force_procfs: bool,
    /// Receive buffer for close notices in bytes; 0: none read.
    pub close_buffer: usize,
    /// Closed sockets a window lists one by one; past it they are folded
    /// into their groups (hidden --closed-limit, for tests).
    pub closed_limit: usize,
    pub precision: Precision,
    /// Which protocols are sampled: TCP unless only --udp was given;
    /// UDP and UDP-Lite with --udp.
    pub tcp: bool,
    pub udp: bool,
}

impl Config {
    /// Whether a report may list a socket's congestion control and memory
    /// (text and JSON reports by tuple, and recordings, which may be
    /// replayed into one). Otherwise the dump need not ask for them.
    pub fn shows_socket_gauges(&self, live_view_on_terminal: bool) -> bool {
        self.record.is_some()
            || (self.index == Index::Tuple
                && self.format != Format::Table
                && self.listen.is_none()
                && !live_view_on_terminal)
    }
}

/// Which kernel probes precision mode uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionMode {
    /// Polls only: no kernel events.
    Off,
    /// Tracepoints where they exist, kprobes for the rest; falls back to
    /// plain polling (saying why) when neither can be had.
    Auto,
    /// Tracepoints only: an error when they cannot be opened.
    Tracepoint,
    /// Kprobes only: an error when the kernel has none.
    Kprobe,
}

impl PrecisionMode {
    pub fn name(self) -> &'static str {
        match self {
            PrecisionMode::Off => "off",
            PrecisionMode::Auto => "auto",
            PrecisionMode::Tracepoint => "tracepoint",
            PrecisionMode::Kprobe => "kprobe",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precision {
    pub mode: PrecisionMode,
    /// Ring buffer pages per CPU.
    pub ring_pages: usize,
    /// Query sock_diag for each socket leaving ESTABLISHED.
    pub last_moments: bool,
    /// Where to write event formats and raw samples (--record-trace).
    pub record_trace: Option<PathBuf>,
}

impl Default for Precision {
    fn default() -> Self {
        Precision {
            mode: PrecisionMode::Off,
            ring_pages: DEFAULT_RING_PAGES,
            last_moments: true,
            record_trace: None,
        }
    }
}

const DEFAULT_RING_PAGES: usize = 256;
