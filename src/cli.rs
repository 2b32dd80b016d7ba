//! Command line: the flags (clap's definitions, enumerated values as
//! `ValueEnum`s), the seed's `key=value` spellings (`index=raddr timeout=60
//! nozeros=0 onclose=1`), and the checks of how options combine, ending in
//! a typed [`Config`] or a [`UsageError`]: one line naming the bad part,
//! which main prints and exits 2 on. Nothing here reads the system except
//! looking up the namespace `--netns` names.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{EnumValueParser, PossibleValue, TypedValueParser};
use clap::{Parser, ValueEnum};

use crate::aggregate::Index;
use crate::config::{Config, Mode, Namespaces, Precision, PrecisionMode};
use crate::filter::{quoted, FilterError, FilterSet};
use crate::report::Format;

/// The flags as clap parses them; [`validate`] turns them into a [`Config`].
/// The manual page is rendered from these definitions too.
#[derive(Debug, Parser)]
#[command(
    name = "tcpipstat",
    version,
    about = "Per-socket TCP/IP statistics: netstat -s on steroids, from sock_diag and /proc (no eBPF)",
    after_help = "FILTER is <laddr>:<lport>-<raddr>:<rport>, '*' for any octet, address, port or side; \
IPv6 in brackets ([::1]:*-[2001:db8::/32]:443); CIDR (10.0.0.0/8:*-*). Several filters are OR-ed.\n\
The seed's spellings work too: index=raddr timeout=60 nozeros=0 onclose=1.\n\
\n\
Examples:\n\
  tcpipstat --interval 1s                        every second, what each connection did\n\
  tcpipstat --once '*:443-*'                     every socket of local port 443, since its creation\n\
  tcpipstat --timeout 60 --index lport --system  a minute per local port, against the namespace's MIB\n\
  tcpipstat --interval 5s --index raddr '*-10.0.0.0/8:*'   per remote address in 10/8\n\
  tcpipstat --onclose '*:8080-*'                 each connection to :8080 as it closes\n\
  sudo tcpipstat --precision --timeout 10s       exact opens, closes and resets from kernel tracepoints\n\
  sudo tcpipstat --all-netns --index container --interval 2s   per container\n\
  tcpipstat --generate man | man -l -            this manual"
)]
pub(crate) struct Args {
    /// Group by the full 4-tuple, one element of it (local or remote address
    /// or port), the socket's network namespace or container, the process
    /// holding it, or its Kubernetes pod and container (pod: names from the
    /// kubelet's /var/log/pods and /var/log/containers)
    #[arg(long, value_enum, default_value_t = Index::Tuple)]
    index: Index,

    /// Sample the network namespace named NAME under /run/netns, the one
    /// behind a namespace file PATH, or the one of process PID
    #[arg(long, value_name = "NAME|PATH|PID", conflicts_with = "all_netns")]
    netns: Option<String>,

    /// Name the process holding each socket (from /proc/PID/fd, as ss -p);
    /// implied by --index process and --index pod
    #[arg(short = 'p', long)]
    processes: bool,

    /// Sample TCP sockets (the default; with --udp, both)
    #[arg(short = 't', long)]
    tcp: bool,

    /// Sample UDP and UDP-Lite sockets: per-socket receive drops, queues
    /// and buffers, and a Udp section in reports (without --tcp, UDP alone)
    #[arg(short = 'u', long)]
    udp: bool,

    /// Sample every network namespace on the host (found in /run/netns and
    /// /proc/*/ns/net at each poll), labelling sockets with theirs
    #[arg(long)]
    all_netns: bool,

    /// Collect for DUR (500ms, 1s, 2m or seconds), print the report, exit
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    timeout: Option<String>,

    /// Print a delta report every DUR, groups sorted by activity
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    interval: Option<String>,

    /// With --interval: stop after N reports
    #[arg(long, value_name = "N")]
    count: Option<u64>,

    /// How often sockets are sampled (default: the interval, at most 1s)
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    poll: Option<String>,

    /// Print zero counters (and groups where nothing happened) too
    #[arg(long, conflicts_with = "nozeros")]
    zeros: bool,

    /// Do not print zero counters (the default)
    #[arg(long)]
    nozeros: bool,

    /// Print each socket's lifetime report when it closes (index=tuple only;
    /// with -u, UDP sockets' too)
    #[arg(long)]
    onclose: bool,

    /// One snapshot now: every socket's counters since its creation, and gauges
    #[arg(long)]
    once: bool,

    /// On a terminal: list every group (text and table reports there list
    /// the 20 busiest and sum the rest into one "others" line)
    #[arg(long, conflicts_with = "top")]
    all: bool,

    /// List the N groups --sort ranks first and sum the rest into one
    /// "others" line (totals stay whole); any format
    #[arg(long, value_name = "N")]
    top: Option<usize>,

    /// Rank groups by this counter, largest first (its name as reports
    /// print it: BytesSent, RetransSegs, ...); by default by activity
    /// (bytes and segments both ways, an open counting as 1,000)
    #[arg(long, value_name = "COUNTER")]
    sort: Option<String>,

    /// List groups of TIME_WAIT sockets only one by one (by default they
    /// are summed into one TIME_WAIT line)
    #[arg(long)]
    time_wait: bool,

    /// Also report the namespace's /proc/net/{snmp,netstat,snmp6} deltas and
    /// what the sockets seen do not account for
    #[arg(long)]
    system: bool,

    /// Output format (text when not given; an --interval run on a terminal
    /// without --format opens the live view instead)
    #[arg(long, value_enum)]
    format: Option<Format>,

    /// Also write each poll's raw sock_diag datagrams to DIR, one file a
    /// poll (DIR/poll-NNNN.nl), for replaying into tests and bug reports;
    /// the current namespace only
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,

    /// Where sockets come from: sock_diag, or /proc/net/tcp and tcp6 (the
    /// fallback taken when sock_diag is unavailable; forced here, for
    /// comparisons: no byte, segment, TcpExt or gauge values)
    #[arg(long, value_enum, default_value_t = Source::Sockdiag)]
    source: Source,

    /// Precision mode: also read kernel tracepoints (and kprobes where the
    /// kernel has them) through perf ring buffers, never eBPF, for what polls
    /// cannot see: exact opens and closes, sockets that live and die between
    /// polls, resets, messages, drops. Bare --precision is auto
    #[arg(
        long,
        value_name = "MODE",
        num_args = 0..=1,
        default_missing_value = "auto",
        value_parser = PrecisionArgParser
    )]
    precision: Option<PrecisionArg>,

    /// Precision mode: ring buffer size per CPU, in 4 KiB pages (a power of two)
    #[arg(long, value_name = "N", default_value = "256")]
    ring_pages: String,

    /// Precision mode: write each opened event's format file and its first
    /// raw samples to DIR (for testdata and bug reports)
    #[arg(long, value_name = "DIR")]
    record_trace: Option<PathBuf>,

    /// Receive buffer for the kernel's close notices, in bytes (suffix K,
    /// M: KiB, MiB; up to 1G); 0 reads none (closes are then seen only
    /// through TIME_WAIT sockets, as on kernels before 4.9)
    #[arg(long, value_name = "SIZE", default_value = "8M")]
    close_buffer: String,

    /// Closed sockets a window lists one by one (the rest are counted in
    /// their groups and totals, not listed): for tests of that bound
    #[arg(long, value_name = "N", hide = true, default_value_t = crate::diff::CLOSED_LIMIT)]
    closed_limit: usize,

    /// Precision mode: do not ask sock_diag for a socket as it leaves
    /// ESTABLISHED (for measuring what that recovers; never asked when
    /// close notices are read)
    #[arg(long)]
    no_last_moments: bool,

    /// Serve Prometheus metrics on ADDR:PORT (:PORT is loopback's): GET
    /// /metrics gives each group's totals since the start; runs until
    /// SIGTERM/Ctrl-C (or --timeout), polling every --poll
    #[arg(long, value_name = "ADDR:PORT", conflicts_with_all = ["once", "interval", "onclose", "count", "top", "sort"])]
    listen: Option<String>,

    /// With --listen: group series kept one by one; new groups past it are
    /// summed into one `other` series
    #[arg(long, value_name = "N", default_value = "5000", requires = "listen")]
    max_series: usize,

    /// With --listen: a group series no poll touched for DUR is forgotten
    #[arg(long, value_name = "DUR", default_value = "15m", requires = "listen")]
    series_expiry: String,

    /// With --listen: also count the exporter's own sockets (its listener,
    /// the scrapes' connections and a local scraper's side of them), which
    /// are left out by default so that scraping adds no series
    #[arg(long, requires = "listen")]
    export_self: bool,

    /// Print the manual page (roff) or a shell's completion script, exit
    #[arg(long, value_enum, value_name = "WHAT")]
    generate: Option<Generate>,

    /// Socket filters, OR-ed
    #[arg(value_name = "FILTER")]
    filters: Vec<String>,
}

/// What `--generate` prints (ripgrep's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Generate {
    Man,
    CompleteBash,
    CompleteZsh,
    CompleteFish,
}

/// The manual page or completion script `what` names.
fn generated(what: Generate) -> String {
    use clap::CommandFactory;
    let mut command = Args::command();
    let mut out = Vec::new();
    let shell = match what {
        Generate::Man => return crate::manual::render(command),
        Generate::CompleteBash => clap_complete::Shell::Bash,
        Generate::CompleteZsh => clap_complete::Shell::Zsh,
        Generate::CompleteFish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, "tcpipstat", &mut out);
    let mut script = String::from_utf8_lossy(&out).into_owned();
    if what == Generate::CompleteBash {
        script.push_str(BASH_NETNS);
    }
    script
}

/// Completes `--netns` with the names under /run/netns (or, once a `/` is
/// typed, a namespace file), where clap's script would offer any file:
/// wraps its `_tcpipstat` and registers the wrapper in its place.
const BASH_NETNS: &str = r#"
# --netns: the names under /run/netns, or a path once it has a '/'.
_tcpipstat_netns() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    if [[ ${prev} == --netns ]]; then
        if [[ ${cur} == */* ]]; then
            COMPREPLY=($(compgen -f -- "${cur}"))
        else
            compopt +o default +o bashdefault 2>/dev/null
            local names
            names=$(command ls -A /run/netns 2>/dev/null)
            COMPREPLY=($(compgen -W "${names}" -- "${cur}"))
        fi
        return 0
    fi
    _tcpipstat "$@"
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _tcpipstat_netns -o nosort -o bashdefault -o default tcpipstat
else
    complete -F _tcpipstat_netns -o bashdefault -o default tcpipstat
fi
"#;

/// Where sockets come from (`--source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Source {
    Sockdiag,
    Proc,
}

/// What `--precision` was given. Its value is optional, so clap takes a
/// filter right after the bare flag (`--precision '*:80-*'`) for its value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PrecisionArg {
    Mode(PrecisionMode),
    /// The bare flag (auto), then this filter.
    BareThenFilter(String),
}

impl PrecisionArg {
    fn mode(&self) -> PrecisionMode {
        match self {
            PrecisionArg::Mode(mode) => *mode,
            PrecisionArg::BareThenFilter(_) => PrecisionMode::Auto,
        }
    }
}

/// A [`PrecisionMode`] as clap parses any ValueEnum (same errors, same
/// help), or else a valid filter, taken as [`PrecisionArg::BareThenFilter`].
#[derive(Debug, Clone, Copy)]
struct PrecisionArgParser;

impl TypedValueParser for PrecisionArgParser {
    type Value = PrecisionArg;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<PrecisionArg, clap::Error> {
        match EnumValueParser::<PrecisionMode>::new().parse_ref(cmd, arg, value) {
            Ok(mode) => Ok(PrecisionArg::Mode(mode)),
            Err(err) => match value.to_str() {
                Some(text) if FilterSet::parse(&[text]).is_ok() => {
                    Ok(PrecisionArg::BareThenFilter(text.to_string()))
                }
                _ => Err(err),
            },
        }
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        let modes = PrecisionMode::value_variants().iter();
        Some(Box::new(modes.filter_map(ValueEnum::to_possible_value)))
    }
}

/// 32 MiB per CPU: the kernel locks each ring in memory (against the
/// user's RLIMIT_MEMLOCK and perf_event_mlock_kb), and 256 pages lost no
/// event at 3,000 connections/s.
const MAX_RING_PAGES: usize = 1 << 13;
const RING_MIB_MAX: usize = MAX_RING_PAGES * 4 / 1024;

/// What parsing ended with, besides a config.
#[derive(Debug)]
pub enum CliOutcome {
    Run(Box<Config>),
    /// --help or --version: print and exit 0.
    Display(String),
    /// A usage error: one line, exit 2.
    Usage(UsageError),
}

/// A bad command line. Its Display is one line naming the bad part, printed
/// after `tcpipstat: error: `.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// What clap refused: the first line of its message.
    #[error("{0}")]
    Clap(String),
    /// A bad --listen address or exporter limit.
    #[error("{0}")]
    Listen(String),
    #[error("argument {0} is not valid UTF-8")]
    NotUtf8(String),
    #[error("unknown option {}", quoted(.0))]
    UnknownSeedOption(String),
    /// `name=value` of a seed flag (nozeros, onclose) whose value is not 0
    /// or 1.
    #[error("bad value {} for {name}= (want 0 or 1)", quoted(.value))]
    SeedFlagValue { name: String, value: String },
    #[error("bad duration {} for {option} (use e.g. 500ms, 1s, 2m or a number of seconds)", quoted(.text))]
    BadDuration { option: String, text: String },
    #[error("{option} {} must be longer than zero", quoted(.text))]
    ZeroDuration { option: String, text: String },
    #[error("{option} {} is longer than {} days", quoted(.text), MAX_DURATION.as_secs() / 86_400)]
    DurationTooLong { option: String, text: String },
    #[error("bad --ring-pages {} (a power of two from 1 to {MAX_RING_PAGES}: each CPU's ring is locked in memory, {RING_MIB_MAX} MiB at most)", quoted(.0))]
    RingPages(String),
    #[error("bad --close-buffer {} (bytes, or with K or M, from 0 to 1G)", quoted(.0))]
    CloseBuffer(String),
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// `--netns` names no namespace that can be opened.
    #[error("{0}")]
    Namespace(String),
    #[error("--index {} needs --netns or --all-netns", .0.name())]
    IndexNeedsNamespaces(Index),
    #[error("--index pod groups TCP sockets only; drop --udp or pick another --index")]
    PodIndexUdp,
    #[error("--record records the current namespace only")]
    RecordOtherNamespace,
    #[error("onclose must be used with index=tuple")]
    OncloseNeedsTuple,
    #[error("--onclose reports at each close: it takes no --interval")]
    OncloseWithInterval,
    #[error("--count must be at least 1")]
    ZeroCount,
    #[error("--top must be at least 1")]
    ZeroTop,
    #[error("unknown counter '{0}' for --sort (a counter as reports name it, e.g. BytesSent or RetransSegs, or activity)")]
    BadSort(String),
    #[error("{0} ranks groups: --onclose reports one socket at a time")]
    RanksWithOnclose(&'static str),
    #[error("--count needs --interval")]
    CountNeedsInterval,
    #[error("--once takes no --timeout, --interval, --poll or --onclose")]
    OnceWithWindowOptions,
    /// `--system` or `--precision` with `--once`.
    #[error("{0} needs a window: use --timeout or --interval, not --once")]
    NeedsWindow(&'static str),
    #[error(
        "--poll ({}) must not be longer than --interval ({})",
        humantime::format_duration(*poll),
        humantime::format_duration(*interval)
    )]
    PollLongerThanInterval { poll: Duration, interval: Duration },
}

const DEFAULT_POLL: Duration = Duration::from_secs(1);
/// Longer runs are better split; this also keeps deadlines representable.
const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

pub fn parse<I, T>(argv: I) -> CliOutcome
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString>,
{
    let mut texts = Vec::new();
    for arg in argv {
        match arg.into().into_string() {
            Ok(text) => texts.push(text),
            Err(raw) => {
                let shown = quoted(&raw.to_string_lossy());
                return CliOutcome::Usage(UsageError::NotUtf8(shown));
            }
        }
    }
    let argv = match translate_seed_spellings(texts) {
        Ok(argv) => argv,
        Err(error) => return CliOutcome::Usage(error),
    };
    let args = match Args::try_parse_from(argv) {
        Ok(args) => args,
        Err(err) if is_help_or_version(&err) => {
            return CliOutcome::Display(err.render().to_string())
        }
        Err(err) => return CliOutcome::Usage(UsageError::from_clap(&err)),
    };
    if let Some(what) = args.generate {
        return CliOutcome::Display(generated(what));
    }
    match validate(args) {
        Ok(config) => CliOutcome::Run(Box::new(config)),
        Err(error) => CliOutcome::Usage(error),
    }
}

/// A usage error as the one line printed: control characters from the
/// command line (a newline in an argument) are shown escaped.
pub fn error_line(err: &UsageError) -> String {
    let text = err.to_string();
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_debug().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        text
    }
}

/// Clap reports `--help` and `--version` as errors; they are not.
fn is_help_or_version(err: &clap::Error) -> bool {
    use clap::error::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    )
}

impl UsageError {
    /// Clap's first line, plus the values it would have taken: clap lists
    /// those on later lines, and a usage error is one line.
    fn from_clap(err: &clap::Error) -> UsageError {
        use clap::error::{ContextKind, ContextValue};
        let line = echoed_line(err).unwrap_or_else(|| first_line(&err.render().to_string()));
        UsageError::Clap(
            match (
                err.get(ContextKind::ValidValue),
                err.get(ContextKind::InvalidArg),
            ) {
                (Some(ContextValue::Strings(values)), _) if !values.is_empty() => {
                    format!("{line} (one of {})", values.join(", "))
                }
                // "the following required arguments were not provided:"
                // names them on the lines after.
                (_, Some(ContextValue::Strings(missing)))
                    if err.kind() == clap::error::ErrorKind::MissingRequiredArgument =>
                {
                    format!("{} {}", line.trim_end_matches(':'), missing.join(", "))
                }
                // "cannot be used with:" too, when several conflict.
                _ if err.kind() == clap::error::ErrorKind::ArgumentConflict
                    && line.ends_with(':') =>
                {
                    match err.get(ContextKind::PriorArg) {
                        Some(ContextValue::Strings(others)) => {
                            let others: Vec<String> =
                                others.iter().map(|o| format!("'{o}'")).collect();
                            format!("{} {}", line.trim_end_matches(':'), others.join(", "))
                        }
                        _ => line,
                    }
                }
                _ => line,
            },
        )
    }
}

/// Clap's line for the errors that echo what was typed, with it
/// [`quoted`]: clap would echo it whole, cut at its first newline, with
/// escape sequences stripped rather than shown.
fn echoed_line(err: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let text = |kind| match err.get(kind) {
        Some(ContextValue::String(text)) => Some(text.as_str()),
        _ => None,
    };
    let arg = text(ContextKind::InvalidArg)?;
    match err.kind() {
        ErrorKind::UnknownArgument => Some(format!("unexpected argument {} found", quoted(arg))),
        ErrorKind::TooManyValues => {
            let value = text(ContextKind::InvalidValue)?;
            Some(format!(
                "unexpected value {} for '{arg}' found; no more were expected",
                quoted(value)
            ))
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            // An empty value is clap's "a value is required", which echoes
            // nothing.
            let value = text(ContextKind::InvalidValue).filter(|v| !v.is_empty())?;
            let why = std::error::Error::source(err)
                .map(|why| format!(": {why}"))
                .unwrap_or_default();
            Some(format!("invalid value {} for '{arg}'{why}", quoted(value)))
        }
        _ => None,
    }
}

/// The first non-blank line of clap's message, without its `error: `.
fn first_line(rendered: &str) -> String {
    rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("bad arguments")
        .trim_start_matches("error: ")
        .to_string()
}

/// `index=raddr` → `--index raddr`, and so on for the seed's options.
fn translate_seed_spellings<I: IntoIterator<Item = String>>(
    argv: I,
) -> Result<Vec<String>, UsageError> {
    let mut out = Vec::new();
    for (position, arg) in argv.into_iter().enumerate() {
        let seed = (position > 0 && !arg.starts_with('-'))
            .then(|| arg.split_once('='))
            .flatten();
        let Some((name, value)) = seed else {
            out.push(arg);
            continue;
        };
        match name {
            "index" | "timeout" => {
                out.push(format!("--{name}"));
                out.push(value.to_string());
            }
            "nozeros" => {
                let nozeros = seed_flag(name, value)?;
                out.push(if nozeros { "--nozeros" } else { "--zeros" }.to_string());
            }
            "onclose" => {
                if seed_flag(name, value)? {
                    out.push("--onclose".to_string());
                }
            }
            _ => return Err(UsageError::UnknownSeedOption(arg)),
        }
    }
    Ok(out)
}

/// The value of seed flag `name` (`nozeros=0`): 0 or 1.
fn seed_flag(name: &str, value: &str) -> Result<bool, UsageError> {
    match value {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(UsageError::SeedFlagValue {
            name: name.to_string(),
            value: value.to_string(),
        }),
    }
}

/// DUR: `500ms`, `1s`, `2m`, or a bare (possibly fractional) number of seconds.
pub fn parse_duration(text: &str, option: &str) -> Result<Duration, UsageError> {
    let parsed = match text.parse::<f64>() {
        Ok(secs) => Duration::try_from_secs_f64(secs).map_err(|_| ()),
        Err(_) => humantime::parse_duration(text).map_err(|_| ()),
    };
    let (option, text) = (option.to_string(), text.to_string());
    match parsed {
        Ok(d) if d > MAX_DURATION => Err(UsageError::DurationTooLong { option, text }),
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(UsageError::ZeroDuration { option, text }),
        Err(()) => Err(UsageError::BadDuration { option, text }),
    }
}

/// Checks what clap cannot (how options combine, durations, filters) and
/// builds the config. The first refusal wins, in this order.
fn validate(args: Args) -> Result<Config, UsageError> {
    let namespaces = namespaces(&args)?;
    let precision = precision(&args)?;
    let filters = filters(&args)?;
    let durations = Durations::parse(&args)?;
    if args.onclose && args.index != Index::Tuple {
        return Err(UsageError::OncloseNeedsTuple);
    }
    if args.udp && args.index == Index::Pod {
        return Err(UsageError::PodIndexUdp);
    }
    let mode = mode(&args, &durations, precision.mode)?;
    let poll = poll_period(durations.poll, mode)?;
    let (top, sort) = ranking(&args)?;
    Ok(Config {
        namespaces,
        index: args.index,
        mode,
        poll,
        zeros: args.zeros && !args.nozeros,
        onclose: args.onclose,
        system: args.system,
        format: args.format.unwrap_or(Format::Text),
        all_groups: args.all,
        top,
        sort,
        list_time_wait: args.time_wait,
        listen: listen(&args)?,
        export_self: args.export_self,
        live_view: args.format.is_none()
            && !args.onclose
            && matches!(mode, Mode::Interval { .. })
            && args.record.is_none(),
        filters,
        record: args.record,
        processes: args.processes || matches!(args.index, Index::Process | Index::Pod),
        force_procfs: args.source == Source::Proc,
        close_buffer: close_buffer(&args.close_buffer)?,
        closed_limit: args.closed_limit.clamp(1, crate::diff::CLOSED_LIMIT),
        precision,
        tcp: args.tcp || !args.udp,
        udp: args.udp,
    })
}

/// `--top N` and `--sort COUNTER`, which rank the groups of a report.
fn ranking(args: &Args) -> Result<(Option<usize>, crate::aggregate::SortBy), UsageError> {
    if args.top == Some(0) {
        return Err(UsageError::ZeroTop);
    }
    if args.onclose {
        if args.top.is_some() {
            return Err(UsageError::RanksWithOnclose("--top"));
        }
        if args.sort.is_some() {
            return Err(UsageError::RanksWithOnclose("--sort"));
        }
    }
    let sort = match &args.sort {
        None => crate::aggregate::SortBy::Activity,
        Some(name) => crate::aggregate::SortBy::parse(name)
            .ok_or_else(|| UsageError::BadSort(quoted_short(name)))?,
    };
    Ok((args.top, sort))
}

/// A value as an error echoes it: control characters escaped, and cut
/// after 40 characters (a pasted blob is not repeated whole).
fn quoted_short(text: &str) -> String {
    let shown: String = text.chars().take(40).collect();
    let escaped: String = shown.chars().flat_map(char::escape_debug).collect();
    if text.chars().count() > 40 {
        format!("{escaped}...")
    } else {
        escaped
    }
}

/// `--netns`, `--all-netns` or the current one, and the options that need
/// one or the other.
fn namespaces(args: &Args) -> Result<Namespaces, UsageError> {
    let namespaces = match (&args.netns, args.all_netns) {
        (Some(spec), _) => Namespaces::One(
            crate::source::netns::resolve(spec)
                .map_err(|e| UsageError::Namespace(e.to_string()))?,
        ),
        (None, true) => Namespaces::All,
        (None, false) => Namespaces::Current,
    };
    let by_namespace = matches!(args.index, Index::Netns | Index::Container);
    if by_namespace && namespaces == Namespaces::Current {
        return Err(UsageError::IndexNeedsNamespaces(args.index));
    }
    if args.record.is_some() && namespaces != Namespaces::Current {
        return Err(UsageError::RecordOtherNamespace);
    }
    Ok(namespaces)
}

/// `--precision` (absent: off) and the options that tune it.
fn precision(args: &Args) -> Result<Precision, UsageError> {
    Ok(Precision {
        mode: args
            .precision
            .as_ref()
            .map_or(PrecisionMode::Off, PrecisionArg::mode),
        ring_pages: ring_pages(&args.ring_pages)?,
        last_moments: !args.no_last_moments,
        record_trace: args.record_trace.clone(),
    })
}

/// `--ring-pages N`: a power of two, at most [`MAX_RING_PAGES`].
fn ring_pages(text: &str) -> Result<usize, UsageError> {
    match text.parse::<usize>() {
        Ok(n) if n.is_power_of_two() && n <= MAX_RING_PAGES => Ok(n),
        _ => Err(UsageError::RingPages(text.to_string())),
    }
}

/// The largest close-notice buffer asked for: a kernel charge this run
/// makes whether or not it is used.
const MAX_CLOSE_BUFFER: usize = 1 << 30;

/// `--close-buffer SIZE`: bytes, `K`/`M`/`G` meaning KiB/MiB/GiB.
fn close_buffer(text: &str) -> Result<usize, UsageError> {
    let bad = || UsageError::CloseBuffer(text.to_string());
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let scale: usize = match unit {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        _ => return Err(bad()),
    };
    let n: usize = digits.parse().map_err(|_| bad())?;
    n.checked_mul(scale)
        .filter(|&b| b <= MAX_CLOSE_BUFFER)
        .ok_or_else(bad)
}

/// The FILTER arguments, after the one clap took for `--precision`'s value.
fn filters(args: &Args) -> Result<FilterSet, UsageError> {
    let after_precision = match &args.precision {
        Some(PrecisionArg::BareThenFilter(filter)) => Some(filter),
        _ => None,
    };
    let texts: Vec<&String> = after_precision.into_iter().chain(&args.filters).collect();
    Ok(FilterSet::parse(&texts)?)
}

/// The DUR options, parsed.
struct Durations {
    timeout: Option<Duration>,
    interval: Option<Duration>,
    poll: Option<Duration>,
}

impl Durations {
    fn parse(args: &Args) -> Result<Durations, UsageError> {
        let parse = |text: &Option<String>, option| {
            text.as_deref()
                .map(|t| parse_duration(t, option))
                .transpose()
        };
        Ok(Durations {
            timeout: parse(&args.timeout, "--timeout")?,
            interval: parse(&args.interval, "--interval")?,
            poll: parse(&args.poll, "--poll")?,
        })
    }
}

/// --listen's address and the exporter's limits.
fn listen(
    args: &Args,
) -> Result<Option<(std::net::SocketAddr, crate::export::Limits)>, UsageError> {
    let Some(spec) = &args.listen else {
        return Ok(None);
    };
    let addr = crate::export::http::listen_address(spec).map_err(UsageError::Listen)?;
    if args.max_series == 0 {
        return Err(UsageError::Listen("--max-series must be at least 1".into()));
    }
    let idle_expiry = parse_duration(&args.series_expiry, "--series-expiry")?;
    Ok(Some((
        addr,
        crate::export::Limits {
            max_series: args.max_series,
            idle_expiry,
        },
    )))
}

/// `--once`, `--interval` or one window, and what each refuses.
fn mode(args: &Args, durations: &Durations, precision: PrecisionMode) -> Result<Mode, UsageError> {
    if args.count == Some(0) {
        return Err(UsageError::ZeroCount);
    }
    if args.count.is_some() && durations.interval.is_none() {
        return Err(UsageError::CountNeedsInterval);
    }
    if args.once {
        check_once(args, durations, precision)?;
        return Ok(Mode::Once);
    }
    match durations.interval {
        Some(_) if args.onclose => Err(UsageError::OncloseWithInterval),
        Some(every) => Ok(Mode::Interval {
            every,
            count: args.count,
            timeout: durations.timeout,
        }),
        None => Ok(Mode::Window {
            timeout: durations.timeout,
        }),
    }
}

/// `--once` is a snapshot: nothing that needs a window goes with it.
fn check_once(
    args: &Args,
    durations: &Durations,
    precision: PrecisionMode,
) -> Result<(), UsageError> {
    let Durations {
        timeout,
        interval,
        poll,
    } = durations;
    if timeout.is_some() || interval.is_some() || poll.is_some() || args.onclose {
        return Err(UsageError::OnceWithWindowOptions);
    }
    if args.system {
        return Err(UsageError::NeedsWindow("--system"));
    }
    if precision != PrecisionMode::Off {
        return Err(UsageError::NeedsWindow("--precision"));
    }
    Ok(())
}

/// `--poll`, at most the interval; by default the interval or the timeout,
/// at most [`DEFAULT_POLL`].
fn poll_period(poll: Option<Duration>, mode: Mode) -> Result<Duration, UsageError> {
    match (poll, mode) {
        (Some(poll), Mode::Interval { every, .. }) if poll > every => {
            Err(UsageError::PollLongerThanInterval {
                poll,
                interval: every,
            })
        }
        (Some(poll), _) => Ok(poll),
        (None, Mode::Interval { every, .. }) => Ok(every.min(DEFAULT_POLL)),
        (None, Mode::Window { timeout: Some(t) }) => Ok(t.min(DEFAULT_POLL)),
        (None, _) => Ok(DEFAULT_POLL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> CliOutcome {
        parse(std::iter::once("tcpipstat".to_string()).chain(args.iter().map(|s| s.to_string())))
    }

    fn config(args: &[&str]) -> Config {
        match run(args) {
            CliOutcome::Run(c) => *c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn usage_error(args: &[&str]) -> UsageError {
        match run(args) {
            CliOutcome::Usage(error) => error,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn usage(args: &[&str]) -> String {
        usage_error(args).to_string()
    }

    #[test]
    fn protocols_default_to_tcp_alone_and_udp_alone_drops_tcp() {
        let tcp = |c: &Config| (c.tcp, c.udp);
        assert_eq!(tcp(&config(&["--once"])), (true, false));
        assert_eq!(tcp(&config(&["--once", "-u"])), (false, true));
        assert_eq!(tcp(&config(&["--once", "--udp", "--tcp"])), (true, true));
        assert_eq!(tcp(&config(&["--once", "-t"])), (true, false));
        assert_eq!(tcp(&config(&["--once", "-tu"])), (true, true));
    }

    fn names<E: ValueEnum>() -> Vec<(E, String)> {
        let name = |v: &E| v.to_possible_value().unwrap().get_name().to_string();
        E::value_variants()
            .iter()
            .map(|v| (v.clone(), name(v)))
            .collect()
    }

    #[test]
    fn seed_spellings_translate() {
        let c = config(&[
            "index=raddr",
            "timeout=60",
            "nozeros=0",
            "*.*.*.*:80-*.*.*.*:*",
        ]);
        assert_eq!(c.index, Index::Raddr);
        assert_eq!(
            c.mode,
            Mode::Window {
                timeout: Some(Duration::from_secs(60))
            }
        );
        assert!(c.zeros);
        assert_eq!(c.filters.filters.len(), 1);
        assert!(config(&["onclose=1"]).onclose);
        assert!(!config(&["onclose=0"]).onclose);
    }

    #[test]
    fn seed_spellings_mix_with_flags_and_filters_in_any_order() {
        let c = config(&["--format", "json", "index=raddr", "*:80-*", "timeout=1"]);
        assert_eq!(c.index, Index::Raddr);
        assert_eq!(c.format, Format::Json);
        assert_eq!(
            c.mode,
            Mode::Window {
                timeout: Some(Duration::from_secs(1))
            }
        );
        assert_eq!(c.filters.filters[0].text, "*:80-*");
        assert!(!config(&["nozeros=1"]).zeros);
        assert!(config(&["--interval", "1", "nozeros=0"]).zeros);
    }

    #[test]
    fn seed_values_are_checked_like_their_flags() {
        assert!(usage(&["index=bogus"]).contains("invalid value 'bogus' for '--index"));
        assert!(usage(&["timeout=soon"]).contains("bad duration 'soon' for --timeout"));
        assert_eq!(
            usage_error(&["onclose=yes"]),
            UsageError::SeedFlagValue {
                name: "onclose".to_string(),
                value: "yes".to_string()
            }
        );
    }

    #[test]
    fn index_pod_with_udp_is_refused_and_looks_up_owners() {
        assert!(usage(&["--once", "--udp", "--index", "pod"])
            .contains("--index pod groups TCP sockets only"));
        assert!(config(&["--once", "--index", "pod"]).processes);
    }

    #[test]
    fn seed_onclose_with_other_index_is_refused() {
        assert!(
            usage(&["index=lport", "onclose=1"]).contains("onclose must be used with index=tuple")
        );
    }

    #[test]
    fn precision_is_off_unless_given_and_auto_when_bare() {
        assert_eq!(config(&[]).precision.mode, PrecisionMode::Off);
        assert_eq!(config(&["--precision"]).precision.mode, PrecisionMode::Auto);
        assert_eq!(
            config(&["--precision", "kprobe"]).precision.mode,
            PrecisionMode::Kprobe
        );
        let c = config(&["--precision", "10.0.0.1:*-*"]);
        assert_eq!(c.precision.mode, PrecisionMode::Auto);
        assert_eq!(c.filters.filters.len(), 1);
        assert_eq!(config(&["--ring-pages", "512"]).precision.ring_pages, 512);
    }

    #[test]
    fn precision_bare_then_filter_is_auto_plus_that_filter() {
        for args in [
            &["--precision", "*:80-*", "10.0.0.1:*-*"][..],
            &["--precision=*:80-*", "10.0.0.1:*-*"],
            &["10.0.0.1:*-*", "--precision", "*:80-*"],
        ] {
            let c = config(args);
            assert_eq!(c.precision.mode, PrecisionMode::Auto, "{args:?}");
            let mut texts: Vec<&str> = c.filters.filters.iter().map(|f| &*f.text).collect();
            texts.sort_unstable();
            assert_eq!(texts, ["*:80-*", "10.0.0.1:*-*"], "{args:?}");
        }
        let c = config(&["--precision", "--timeout", "1"]);
        assert_eq!(c.precision.mode, PrecisionMode::Auto);
        assert!(c.filters.filters.is_empty());
    }

    #[test]
    fn precision_value_neither_mode_nor_filter_is_refused_as_a_mode() {
        let message = usage(&["--precision", "10.0.0.0/40:*-*"]);
        assert!(
            message.contains("invalid value '10.0.0.0/40:*-*' for '--precision"),
            "{message}"
        );
        assert!(
            message.ends_with("(one of off, auto, tracepoint, kprobe)"),
            "{message}"
        );
    }

    #[test]
    fn every_value_enum_name_is_accepted() {
        for (index, name) in names::<Index>() {
            assert_eq!(config(&["--all-netns", "--index", &name]).index, index);
        }
        for (format, name) in names::<Format>() {
            assert_eq!(config(&["--format", &name]).format, format);
        }
        for (mode, name) in names::<PrecisionMode>() {
            assert_eq!(config(&["--precision", &name]).precision.mode, mode);
            assert_eq!(mode.name(), name);
        }
        assert!(config(&["--source", "proc"]).force_procfs);
        assert!(!config(&["--source", "sockdiag"]).force_procfs);
    }

    #[test]
    fn bad_value_enum_value_is_one_line_naming_it_and_the_choices() {
        for (args, line) in [
            (
                ["--index", "port"],
                "invalid value 'port' for '--index <INDEX>' \
                 (one of tuple, laddr, raddr, lport, rport, netns, container, process, pod)",
            ),
            (
                ["--format", "yaml"],
                "invalid value 'yaml' for '--format <FORMAT>' (one of text, table, json)",
            ),
            (
                ["--source", "nl"],
                "invalid value 'nl' for '--source <SOURCE>' (one of sockdiag, proc)",
            ),
            (
                ["--precision", "fast"],
                "invalid value 'fast' for '--precision [<MODE>]' \
                 (one of off, auto, tracepoint, kprobe)",
            ),
        ] {
            assert_eq!(usage_error(&args), UsageError::Clap(line.to_string()));
        }
    }

    #[test]
    fn help_lists_each_value_enum_choices() {
        let CliOutcome::Display(help) = run(&["-h"]) else {
            panic!("-h is not help")
        };
        for values in [
            "[possible values: tuple, laddr, raddr, lport, rport, netns, container, process, pod]",
            "[possible values: text, table, json]",
            "[possible values: off, auto, tracepoint, kprobe]",
        ] {
            assert!(help.contains(values), "{values}: {help}");
        }
    }

    #[test]
    fn durations_take_units_or_seconds_and_refuse_zero_huge_or_garbage() {
        assert_eq!(parse_duration("500ms", "x"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m", "x"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3", "x"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0.25", "x"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon", "--timeout")
            .unwrap_err()
            .to_string()
            .contains("'soon'"));
        assert!(parse_duration("0", "--poll")
            .unwrap_err()
            .to_string()
            .contains("longer than zero"));
        for huge in ["1e30", "1e300", "1e19", "500000000000y", "-1", "NaN", "inf"] {
            let err = parse_duration(huge, "--timeout").unwrap_err().to_string();
            assert!(err.contains(huge), "{huge}: {err}");
        }
    }

    #[test]
    fn poll_defaults_to_interval_capped_at_one_second() {
        assert_eq!(
            config(&["--interval", "200ms"]).poll,
            Duration::from_millis(200)
        );
        assert_eq!(config(&["--interval", "5s"]).poll, Duration::from_secs(1));
        assert_eq!(config(&[]).poll, Duration::from_secs(1));
    }

    #[test]
    fn refusals_are_typed() {
        assert_eq!(
            usage_error(&["--count", "3"]),
            UsageError::CountNeedsInterval
        );
        assert_eq!(
            usage_error(&["--index", "netns"]),
            UsageError::IndexNeedsNamespaces(Index::Netns)
        );
        assert_eq!(
            usage_error(&["--once", "--system"]),
            UsageError::NeedsWindow("--system")
        );
        assert_eq!(
            usage_error(&["--interval", "1s", "--poll", "2s"]),
            UsageError::PollLongerThanInterval {
                poll: Duration::from_secs(2),
                interval: Duration::from_secs(1)
            }
        );
        assert!(matches!(usage_error(&["*:x-*"]), UsageError::Filter(_)));
        assert!(matches!(usage_error(&["--bogus"]), UsageError::Clap(_)));
    }

    #[test]
    fn bad_input_is_one_line_naming_it() {
        for (args, needle) in [
            (vec!["--index", "port"], "invalid value 'port' for '--index"),
            (vec!["--format", "xml"], "invalid value 'xml' for '--format"),
            (vec!["--timeout", "1x"], "'1x'"),
            (vec!["1.2.3.4:99999-*"], "99999"),
            (vec!["--count", "3"], "--count needs --interval"),
            (vec!["frobnicate=1"], "unknown option 'frobnicate=1'"),
            (vec!["nozeros=2"], "bad value '2'"),
            (vec!["--bogus"], "--bogus"),
            (vec!["--once", "--timeout", "1s"], "--once"),
            (vec!["--interval", "1s", "--poll", "2s"], "--poll"),
            (
                vec!["--precision", "fast"],
                "invalid value 'fast' for '--precision",
            ),
            (vec!["--ring-pages", "3"], "bad --ring-pages '3'"),
            (vec!["--once", "--precision"], "--precision needs a window"),
        ] {
            let message = usage(&args);
            assert!(message.contains(needle), "{args:?}: {message}");
            assert!(!message.contains('\n'), "{args:?}: {message}");
        }
    }

    #[test]
    fn top_and_sort_rank_groups_and_refuse_what_cannot_be_ranked() {
        use crate::aggregate::SortBy;
        let c = config(&["--once", "--top", "5", "--sort", "retranssegs"]);
        assert_eq!(c.top, Some(5));
        assert_eq!(
            c.sort,
            SortBy::Counter(crate::counters::Counter::RetransSegs)
        );
        let c = config(&[]);
        assert_eq!(
            (c.top, c.sort, c.list_time_wait),
            (None, SortBy::Activity, false)
        );
        assert!(config(&["--time-wait"]).list_time_wait);
        assert_eq!(usage_error(&["--top", "0"]), UsageError::ZeroTop);
        assert_eq!(
            usage(&["--sort", "Bogus"]),
            "unknown counter 'Bogus' for --sort (a counter as reports name it, e.g. BytesSent or RetransSegs, or activity)"
        );
        assert_eq!(
            usage_error(&["--onclose", "--top", "3"]),
            UsageError::RanksWithOnclose("--top")
        );
        assert_eq!(
            usage_error(&["--onclose", "--sort", "BytesSent"]),
            UsageError::RanksWithOnclose("--sort")
        );
        assert!(usage(&["--all", "--top", "3"]).contains("--top"));
        assert!(usage(&["--listen", ":9977", "--top", "3"]).contains("--top"));
        assert!(usage(&["--top", "many"]).contains("'many'"));
        // A long or odd name is not echoed whole.
        let long = format!("{}\n", "x".repeat(500));
        let message = usage(&["--sort", &long]);
        assert!(message.len() < 200 && !message.contains('\n'), "{message}");
    }

    #[test]
    fn close_buffer_sizes_parse_with_units_and_a_bound() {
        assert_eq!(
            close_buffer("8M").unwrap(),
            crate::source::closes::DEFAULT_CLOSE_BUFFER
        );
        assert_eq!(close_buffer("0").unwrap(), 0);
        assert_eq!(close_buffer("64K").unwrap(), 65536);
        assert_eq!(close_buffer("1G").unwrap(), 1 << 30);
        for bad in ["2G", "-1", "8MB", "", "M", "99999999999999999999"] {
            let err = close_buffer(bad).unwrap_err().to_string();
            assert!(err.contains("--close-buffer"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_negative_duration_is_a_duration_error_and_contradictions_are_refused() {
        for option in ["--interval", "--poll", "--timeout"] {
            let err = usage(&[option, "-1s"]);
            assert!(err.contains("bad duration '-1s'"), "{option}: {err}");
        }
        let err = usage(&["--zeros", "--nozeros"]);
        assert!(err.contains("--nozeros"), "{err}");
    }
}
