//! Precision mode's running part: picks the probes for this kernel
//! (tracepoints where they exist, kprobes for what they do not cover, or
//! one kind only when asked), opens them into one perf ring per CPU, and
//! turns what the rings hold into time-ordered [`Timed`] events. As a
//! socket leaves ESTABLISHED it asks sock_diag for that one socket, so its
//! last moments' counters are caught before it goes.
//!
//! Owns its options ([`ProbeOptions`]), its errors ([`PrecisionError`]) and
//! the plain account of what it opened ([`ProbeSummary`]). Owns no
//! attribution and no report: whoever takes the events decides what they
//! count for, and builds any report from the summary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use super::decoder::{CallPairer, Decoder, EventKind};
use super::ftrace_pipe::{self, DelackBrackets, FtracePipe, PipeEvent};
use super::kernel_facts::{self, DelackTimer};
use super::kprobe_defs::{self as kprobes, KprobeDef};
use super::layout::EventFormat;
use super::perf_ring::{PerfError, PerfRings, RingOptions};
use super::tracing_fs::{KprobeSet, MountedHere, Tracefs, TracefsError};
use crate::counters::Counter;
use crate::model::event::{Probe, Timed, TraceEvent};
use crate::model::TcpState;
use crate::source::processes::ProcessNames;
use crate::source::sockdiag::{SockDiag, EXT_CONG, EXT_INFO};

/// What precision mode asks of the kernel, by what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    States,
    SentResets,
    ReceivedResets,
    Retransmits,
    SynAckRetransmits,
    Sends,
    Receives,
    Drops,
    DelayedAcks,
    /// Events that only name a socket's address, so sends and receives on
    /// long-lived sockets are attributed sooner.
    Names,
    /// A socket's destruction with its address and cookie: joins the
    /// events of a socket to its close notice, which names the namespace.
    Destroys,
    /// tcp_probe, off until sends wait for a socket's name, then filtered
    /// to those sockets' addresses (a sender receives only ACKs, which no
    /// other event with an address and a tuple sees).
    Namer,
    /// UDP (--udp): receive-queue failures by port.
    UdpQueueFails,
    /// UDP: the port and sender of a datagram no socket took (the ICMP
    /// port unreachable answering it).
    UdpPorts,
    /// UDP: a socket's address with its tuple (kprobes on the UDP send and
    /// receive calls), so its sends and receives find it.
    UdpNames,
    /// UDP: datagrams and bytes by send and receive call, from kprobes on
    /// the UDP calls and their returns, where the kernel has no
    /// sock_send_length/sock_recv_length (before 6.3) to give them.
    UdpMessages,
}

impl Role {
    const ALL: [Role; 16] = [
        Role::States,
        Role::SentResets,
        Role::ReceivedResets,
        Role::Retransmits,
        Role::SynAckRetransmits,
        Role::Sends,
        Role::Receives,
        Role::Drops,
        Role::DelayedAcks,
        Role::Names,
        Role::Destroys,
        Role::Namer,
        Role::UdpQueueFails,
        Role::UdpPorts,
        Role::UdpNames,
        Role::UdpMessages,
    ];

    /// The counters this role fills.
    pub fn counters(self) -> &'static [Counter] {
        match self {
            Role::States => &[
                Counter::ActiveOpens,
                Counter::PassiveOpens,
                Counter::AttemptFails,
                Counter::EstabResets,
            ],
            Role::SentResets => &[Counter::OutRsts],
            Role::ReceivedResets => &[Counter::InRsts],
            Role::Retransmits => &[Counter::RetransSegs],
            Role::SynAckRetransmits => &[Counter::TCPSynRetrans],
            Role::Sends => &[Counter::MessagesSent, Counter::MessageBytesSent],
            Role::Receives => &[Counter::MessagesReceived, Counter::MessageBytesReceived],
            Role::Drops => &[Counter::Drops],
            Role::DelayedAcks => &[Counter::DelayedACKs],
            Role::Names
            | Role::Destroys
            | Role::Namer
            | Role::UdpQueueFails
            | Role::UdpPorts
            | Role::UdpNames
            | Role::UdpMessages => &[],
        }
    }

    /// The tracepoints that fill this role, any one of which will do.
    fn tracepoints(self) -> &'static [EventKind] {
        match self {
            Role::States => &[EventKind::InetSockSetState],
            Role::SentResets => &[EventKind::TcpSendReset],
            Role::ReceivedResets => &[EventKind::TcpReceiveReset],
            Role::Retransmits => &[EventKind::TcpRetransmitSkb],
            Role::SynAckRetransmits => &[EventKind::TcpRetransmitSynack],
            Role::Sends => &[EventKind::SockSendLength],
            Role::Receives => &[EventKind::SockRecvLength],
            Role::Drops => &[EventKind::KfreeSkb],
            Role::DelayedAcks => &[EventKind::TimerExpireEntry],
            Role::Names => &[EventKind::TcpRcvSpaceAdjust],
            Role::Destroys => &[EventKind::TcpDestroySock],
            Role::Namer => &[EventKind::TcpProbe],
            Role::UdpQueueFails => &[EventKind::UdpFailQueueRcvSkb],
            Role::UdpPorts => &[EventKind::IcmpSend],
            Role::UdpNames => &[
                EventKind::SysEnterSendto,
                EventKind::SysEnterRecvfrom,
                EventKind::SysEnterSendmsg,
                EventKind::SysEnterRecvmsg,
                EventKind::SysEnterSendmmsg,
                EventKind::SysEnterRecvmmsg,
            ],
            // Its tracepoints are the Sends and Receives roles' (which
            // fill UDP's too): this role is only ever kprobes.
            Role::UdpMessages => &[],
        }
    }

    /// Roles that fill no counter, only help attribution: left out without
    /// a word where the kernel lacks them.
    fn is_helper(self) -> bool {
        matches!(self, Role::Names | Role::Destroys | Role::Namer)
    }

    fn is_udp(self) -> bool {
        matches!(
            self,
            Role::UdpQueueFails | Role::UdpPorts | Role::UdpNames | Role::UdpMessages
        )
    }

    /// Whether a kprobe definition serves this role.
    fn kprobe_serves(self, def: &KprobeDef) -> bool {
        kprobe_role(def.kind) == Some(self)
    }
}

/// The role of a kprobe kind.
fn kprobe_role(kind: EventKind) -> Option<Role> {
    Some(match kind {
        EventKind::KprobeSetState => Role::States,
        EventKind::KprobeSendReset | EventKind::KprobeActiveReset => Role::SentResets,
        EventKind::KprobeReceiveReset => Role::ReceivedResets,
        EventKind::KprobeRetransmit => Role::Retransmits,
        EventKind::KprobeSynAck => Role::SynAckRetransmits,
        EventKind::KprobeSendmsgEntry | EventKind::KprobeSendmsgReturn => Role::Sends,
        EventKind::KprobeRecvmsgEntry | EventKind::KprobeRecvmsgReturn => Role::Receives,
        EventKind::KprobeUdpName => Role::UdpNames,
        EventKind::KprobeUdpSendEntry
        | EventKind::KprobeUdpSendReturn
        | EventKind::KprobeUdpRecvEntry
        | EventKind::KprobeUdpRecvReturn => Role::UdpMessages,
        _ => return None,
    })
}

/// Which kind of probe precision mode may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeMode {
    /// Tracepoints where they exist, kprobes for the rest.
    Auto,
    /// Tracepoints only.
    Tracepoint,
    /// Kprobes only: an error when the kernel has none.
    Kprobe,
}

impl ProbeMode {
    pub fn name(self) -> &'static str {
        match self {
            ProbeMode::Auto => "auto",
            ProbeMode::Tracepoint => "tracepoint",
            ProbeMode::Kprobe => "kprobe",
        }
    }
}

/// What [`Collector::start`] is asked to open, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOptions {
    pub mode: ProbeMode,
    /// Ring buffer data pages per CPU.
    pub ring_pages: usize,
    /// Ask sock_diag for each socket as it leaves ESTABLISHED.
    pub last_moments: bool,
    /// Where to write each event's format file and its first raw samples.
    pub record_to: Option<PathBuf>,
    /// UDP sockets too (--udp): their sends, receives, queue failures and
    /// drops.
    pub udp: bool,
}

/// What was opened, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeSummary {
    /// The kinds of probe opened, sorted and joined by '+': "tracepoint",
    /// "kprobe" or "kprobe+tracepoint".
    pub probes: String,
    /// Counters and the probes that fill them (the rest: sock_diag polls).
    pub sources: Vec<(Vec<Counter>, String)>,
    /// Whether state counters come from events (so nothing is inferred).
    pub exact_states: bool,
    /// The counters the opened probes fill.
    pub covered: Vec<Counter>,
    /// Retransmit events say whether the segment was a connect's SYN (the
    /// tracepoint has the socket's state).
    pub syn_retransmits_told: bool,
    /// Destruction events name their socket's cookie: a socket that ended
    /// without one is still held by its application (its notice comes
    /// when it lets go).
    pub destructions_told: bool,
    /// With --udp: each UDP counter from events and its source, and what
    /// this kernel cannot give (with why).
    pub udp_sources: Vec<(String, String)>,
    pub udp_missing: Vec<String>,
}

/// Why precision mode cannot start (or not in the mode asked).
#[derive(Debug, Error)]
pub enum PrecisionError {
    /// No tracefs found, nor mountable though running as root.
    #[error("tracefs: {0}")]
    NoTracefs(TracefsError),
    /// No tracefs found, and not privileged enough to mount or read one.
    #[error("tracefs: {0} (root or CAP_PERFMON with tracefs access needed)")]
    NoTracefsAccess(TracefsError),
    /// Kprobe mode on a kernel (or architecture) without kprobes.
    #[error("this kernel has no kprobes (no kprobe_events in tracefs: CONFIG_KPROBES off?) or this architecture has no kprobe definitions")]
    NoKprobes,
    /// Not one event could be opened; `missing` names the roles this
    /// kernel has no probe for.
    #[error("no probe could be opened{}", missing_list(.missing))]
    NothingOpened { missing: Vec<String> },
    /// Kprobe mode, but the kernel refused every kprobe.
    #[error("no kprobe could be created")]
    NoKprobeCreated,
    /// The perf rings could not be opened or enabled.
    #[error("{0}")]
    Rings(PerfError),
}

fn missing_list(missing: &[String]) -> String {
    if missing.is_empty() {
        String::new()
    } else {
        format!(" (missing: {})", missing.join(", "))
    }
}

/// One opened probe.
struct Opened {
    kind: EventKind,
    probe: Probe,
    decoder: Decoder,
}

pub struct Collector {
    rings: PerfRings,
    /// By the tag given to the ring: its index here.
    opened: Vec<Opened>,
    pairer: CallPairer,
    queue: Vec<Timed>,
    /// For last-moment samples (the namespace tcpipstat runs in only).
    diag: Option<SockDiag>,
    summary: ProbeSummary,
    undecoded: u64,
    /// --record-trace: the directory, and per event its file name and how
    /// many samples were written.
    recorder: Option<(PathBuf, Vec<(String, u32)>)>,
    /// The delayed-ACK timer's expiries, read from an ftrace instance
    /// (removed before the mount goes).
    timer_pipe: Option<TimerPipe>,
    /// Kept for their removal when the run ends.
    _kprobes: Option<KprobeSet>,
    /// Dropped after the kprobes (their removal needs the mount).
    _mounted_here: Option<MountedHere>,
    /// The mount held open while the timer instance and the kprobes are
    /// reached through it (dropped after them).
    _tracefs: Tracefs,
    /// The on-demand tcp_probe's tag, the addresses it is filtered to, and
    /// which addresses events have named.
    namer: Option<u32>,
    naming: Vec<u64>,
    names: Names,
    /// The names of the processes owner-context events ran in, read as
    /// the events are (when asked: [`Collector::want_process_names`]).
    process_names: Option<ProcessNames>,
    /// Processes left unnamed by the bound, in earlier [`ProcessNames`].
    process_names_unkept: u64,
    /// UDP sockets named by the descriptor their calls were on.
    udp_fds: UdpFds,
}

/// Threads' socket calls in progress (thread → descriptor), and the UDP
/// socket addresses named so far (address → process, descriptor, inode).
#[derive(Debug, Default)]
struct UdpFds {
    calls: rustc_hash::FxHashMap<u32, u32>,
    /// Address → the process, descriptor and inode it was named by, and
    /// when (event time, ns).
    named: rustc_hash::FxHashMap<u64, (u32, u32, u64, u64)>,
    /// Names read from /proc/PID/fd that failed (the process or the
    /// descriptor gone).
    unreadable: u64,
}

/// Threads with a socket call open, and socket addresses named, at most
/// (each map is forgotten whole past its bound: a live socket's next call
/// names it again).
const UDP_CALLS_LIMIT: usize = 1 << 16;

impl UdpFds {
    /// The inode of the socket at `sk`, when its address is new, now
    /// another descriptor's, or was last read [`UDP_NAME_RECHECK_NS`] ago
    /// and names another socket now (a closed socket's address and
    /// descriptor number both taken by a new one): read from
    /// /proc/PID/fd/FD. `Some(0)` when that descriptor cannot be read
    /// (closed since): the address is another socket's now, one no name
    /// can be given, and its old name must go.
    fn name(&mut self, sk: u64, pid: u32, fd: u32, now_ns: u64) -> Option<u64> {
        let known = self.named.get(&sk).copied();
        if let Some((p, f, _, read_at)) = known {
            if (p, f) == (pid, fd) && now_ns.saturating_sub(read_at) < UDP_NAME_RECHECK_NS {
                return None;
            }
        }
        let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"));
        let inode = link.ok().and_then(|l| socket_inode(&l.to_string_lossy()));
        if inode.is_none() {
            self.unreadable += 1;
        }
        if self.named.len() >= UDP_CALLS_LIMIT {
            self.named.clear();
        }
        let inode = inode.unwrap_or(0);
        self.named.insert(sk, (pid, fd, inode, now_ns));
        match known {
            // Read again, the same: named already.
            Some((p, f, old, _)) if (p, f, old) == (pid, fd, inode) => None,
            _ => Some(inode),
        }
    }
}

/// How long a socket address's name holds before its descriptor is read
/// again (at most one /proc read per second per busy socket).
const UDP_NAME_RECHECK_NS: u64 = 1_000_000_000;

/// `socket:[12345]` → 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Socket addresses tcp_probe is filtered to at once, at most.
const NAMED_AT_ONCE: usize = 64;
/// Named addresses remembered, at most (forgotten all at once past it:
/// a forgotten one is named again by its next send's tcp_probe).
const NAMES_LIMIT: usize = 1 << 16;
/// How long an address is asked for before it gives way: one whose socket
/// closed before its send was read (the rings of two CPUs are read one
/// after the other) is never named, and would hold its place for good.
const NAME_WAIT_NS: u64 = 1_000_000_000;

/// Which socket addresses events named (with a tuple), and which send or
/// receive with no event having named them: those tcp_probe is asked for.
#[derive(Debug, Default)]
struct Names {
    named: rustc_hash::FxHashSet<u64>,
    /// Address → when it was first asked for (monotonic ns).
    waiting: rustc_hash::FxHashMap<u64, u64>,
}

impl Names {
    fn observe(&mut self, event: &TraceEvent, time_ns: u64) {
        let named = match event {
            TraceEvent::Sent {
                sk, tuple: None, ..
            }
            | TraceEvent::Received {
                sk, tuple: None, ..
            } => {
                if !self.named.contains(sk) && self.waiting.len() < NAMED_AT_ONCE {
                    self.waiting.entry(*sk).or_insert(time_ns);
                }
                return;
            }
            TraceEvent::StateChange { sk, new, .. } if *new == TcpState::Close => {
                // The address may be the next socket's.
                self.named.remove(sk);
                self.waiting.remove(sk);
                return;
            }
            TraceEvent::Destroyed { sk, .. } => {
                self.named.remove(sk);
                self.waiting.remove(sk);
                return;
            }
            TraceEvent::StateChange { sk, tuple, .. } if tuple.is_complete() => *sk,
            TraceEvent::Identity { sk, .. }
            | TraceEvent::ReceiveReset { sk, .. }
            | TraceEvent::Retransmit { sk, .. } => *sk,
            _ => return,
        };
        if self.named.len() >= NAMES_LIMIT {
            self.named.clear();
        }
        self.named.insert(named);
        self.waiting.remove(&named);
    }

    /// Forgets the addresses asked for longer than [`NAME_WAIT_NS`]; a live
    /// socket's next send or receive asks again.
    fn expire(&mut self, now_ns: u64) {
        self.waiting
            .retain(|_, since| now_ns.saturating_sub(*since) < NAME_WAIT_NS);
    }
}

/// The ring's wakeup watermark: a quarter of it, so a burst is read before
/// the ring fills but a trickle does not wake the loop per event.
fn watermark(pages: usize) -> u32 {
    (pages * 4096 / 4).min(u32::MAX as usize) as u32
}

impl Collector {
    /// Opens the probes `options.mode` asks for; the notices say what was
    /// mounted, left out or substituted. Errors only when nothing can be
    /// opened (or an explicit mode cannot be had at all).
    pub fn start(options: &ProbeOptions) -> Result<(Collector, Vec<String>), PrecisionError> {
        let mode = options.mode;
        let mut notices = Vec::new();
        let (tracefs, mounted_here) = locate_tracefs(&mut notices)?;
        notices.extend(ftrace_pipe::remove_stale_instances(tracefs.root()).notices());
        let kprobe_defs = usable_kprobes(mode, &tracefs)?;
        let mut choice = choose_probes(mode, &tracefs, &kprobe_defs, options.udp);
        let delack_offset = delack_offset_for(&mut choice, &mut notices);
        let timer_pipe = delack_offset
            .and_then(|offset| open_timer_pipe(&tracefs, offset, &mut choice, &mut notices));
        // Through perf, the decoder tells delayed-ACK timers by address.
        let delack = match (delack_offset, &timer_pipe) {
            (Some(offset), None) => delack_address_for(offset, &mut choice, &mut notices),
            _ => None,
        };
        let (kprobe_set, kprobe_events) = create_kprobes(&tracefs, choice.kprobes, &mut notices);

        let mut opening = Opening::new(&tracefs, options.record_to.as_deref());
        opening.delack = delack;
        let mut udp_text_missing = None;
        if options.udp {
            opening.udp = Some(match kernel_facts::kernel_text() {
                Ok(text) => Some(std::sync::Arc::new(text)),
                Err(why) => {
                    udp_text_missing = Some(why);
                    None
                }
            });
        }
        let mut sources = opening.open_tracepoints(&choice.tracepoints, &mut notices);
        if let Some(timers) = &timer_pipe {
            sources.push((Role::DelayedAcks, timers.source()));
        }
        if let Some(set) = &kprobe_set {
            opening.open_kprobes(set.group(), &kprobe_events, &mut sources, &mut notices);
        }
        if timer_pipe.is_none() {
            check_opened(mode, &opening.opened, &choice.missing)?;
        }
        if !choice.missing.is_empty() {
            notices.push(format!(
                "precision: this kernel cannot give {} in {} mode: those counters stay as polls give them",
                choice.missing.join(", "),
                mode.name()
            ));
        }

        let namer = opening
            .opened
            .iter()
            .position(|o| o.kind == EventKind::TcpProbe)
            .map(|tag| tag as u32);
        let mut rings = open_rings(&opening.ring_events, options.ring_pages, namer)?;
        filter_timers(&mut rings, &opening, &mut notices);
        prefilter(&rings, &opening, options.udp);
        let mut summary = summarize(&sources, &opening.opened);
        if options.udp {
            summarize_udp(&mut summary, &opening.opened, udp_text_missing.as_deref());
            if !summary.udp_missing.is_empty() {
                notices.push(format!(
                    "precision: UDP: this kernel cannot give {}",
                    summary.udp_missing.join("; ")
                ));
            }
        }
        let diag = last_moment_diag(options.last_moments && summary.exact_states, &mut notices);
        let Opening {
            opened, recorded, ..
        } = opening;
        Ok((
            Collector {
                rings,
                opened,
                pairer: CallPairer::default(),
                queue: Vec::new(),
                diag,
                summary,
                undecoded: 0,
                recorder: options.record_to.clone().map(|dir| (dir, recorded)),
                _kprobes: kprobe_set,
                _mounted_here: mounted_here,
                _tracefs: tracefs,
                namer,
                naming: Vec::new(),
                names: Names::default(),
                process_names: None,
                process_names_unkept: 0,
                udp_fds: UdpFds::default(),
                timer_pipe,
            },
            notices,
        ))
    }

    /// What was opened: the kinds of probe, which counters they fill and
    /// by what.
    pub fn summary(&self) -> &ProbeSummary {
        &self.summary
    }

    /// Points the on-demand tcp_probe at the addresses whose sends wait
    /// for a name, or turns it off when there are none. A kernel that
    /// refuses the filter loses the helper, nothing else.
    fn ask_names(&mut self) {
        let Some(tag) = self.namer else {
            return;
        };
        self.names.expire(super::perf_ring::monotonic_now_ns());
        let mut wanted: Vec<u64> = self
            .names
            .waiting
            .keys()
            .copied()
            .filter(|a| *a != 0)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        wanted.truncate(NAMED_AT_ONCE);
        if wanted == self.naming {
            return;
        }
        let filter = (!wanted.is_empty()).then(|| {
            wanted
                .iter()
                .map(|a| format!("skaddr == 0x{a:x}"))
                .collect::<Vec<_>>()
                .join(" || ")
        });
        // The kernel takes a perf event's filter once: each new set of
        // addresses gets new events.
        let set = match &filter {
            Some(filter) => self.rings.refilter_tag(tag, filter),
            None => self.rings.filter_tag(tag, None),
        };
        if set.is_err() {
            let _ = self.rings.filter_tag(tag, None);
            self.namer = None;
        }
        self.naming = wanted;
    }

    /// Events the kernel could not put in a full ring (or the timer
    /// instance's full buffer), since the start.
    pub fn lost(&self) -> u64 {
        let timers = self
            .timer_pipe
            .as_ref()
            .map_or(0, |timers| timers.pipe.dropped());
        self.rings.lost() + timers
    }

    /// Events the kernel counted that never reached a ring, with no lost
    /// record either (see [`PerfRings::check_delivery`]).
    pub fn undelivered(&self) -> u64 {
        self.rings.undelivered()
    }

    /// How long the loop may wait between two reads of the rings: short
    /// when sockets leaving ESTABLISHED are asked for (a closing socket
    /// lingers in FIN_WAIT/CLOSE_WAIT for about a round trip), else long,
    /// the watermark waking it for bursts.
    pub fn wake_interval(&self) -> Duration {
        if self.diag.is_some() {
            Duration::from_millis(2)
        } else {
            Duration::from_millis(50)
        }
    }

    /// Waits up to `timeout` for a ring to pass its watermark, then reads
    /// whatever the rings hold.
    pub fn pump(&mut self, timeout: Duration) {
        match self.rings.wait(timeout) {
            Ok(_) => self.read_rings(false),
            // An interrupted wait (a signal) is retried by the caller's loop.
            Err(_) => std::thread::sleep(timeout.min(Duration::from_millis(10))),
        }
    }

    /// Reads every ring to its end, decoding what it holds, and checks that
    /// every event the kernel counted arrived: a poll's read.
    pub fn drain(&mut self) {
        self.read_rings(true);
    }

    /// Reads every ring to its end; with `check_delivery`, also compares
    /// what the kernel counted with what arrived. That takes a read per
    /// event and CPU, each an interrupt of that CPU (2% of a run's CPU at
    /// 3,000 conn/s when done every 8th wake-up), so it is done per poll.
    fn read_rings(&mut self, check_delivery: bool) {
        let Collector {
            rings,
            opened,
            pairer,
            queue,
            diag,
            undecoded,
            recorder,
            process_names,
            udp_fds,
            ..
        } = self;
        let before = queue.len();
        let counted = check_delivery.then(|| rings.counted());
        rings.drain(&mut |sample| {
            let Some(opened) = opened.get(sample.tag as usize) else {
                *undecoded += 1;
                return;
            };
            if let Some((dir, files)) = recorder.as_mut() {
                record_sample(dir, &mut files[sample.tag as usize], sample.raw);
            }
            if opened.kind.is_socket_call_entry() {
                if let Some(fd) = opened.decoder.call_fd(sample.raw) {
                    if udp_fds.calls.len() >= UDP_CALLS_LIMIT {
                        udp_fds.calls.clear();
                    }
                    udp_fds.calls.insert(sample.tid, fd);
                }
                return;
            }
            let event = if opened.kind.is_call_half() {
                pairer.feed(&opened.decoder, sample.tid, sample.raw)
            } else {
                opened.decoder.decode(sample.raw)
            };
            // A UDP send or receive: its thread's call named the
            // descriptor, which names the socket at its address.
            if let Some(TraceEvent::UdpMessage { sk, .. }) = &event {
                let fd = udp_fds.calls.remove(&sample.tid);
                if let (Some(fd), true) = (fd, sample.pid != 0) {
                    if let Some(inode) = udp_fds.name(*sk, sample.pid, fd, sample.time_ns) {
                        queue.push(Timed {
                            time_ns: sample.time_ns,
                            probe: opened.probe,
                            event: TraceEvent::UdpInode { sk: *sk, inode },
                            pid: None,
                        });
                    }
                }
            }
            match event {
                Some(event) => {
                    // The process a segment or timer interrupted is not the
                    // socket's: only system calls' events name their owner.
                    let pid =
                        (event.runs_in_owner_context() && sample.pid != 0).then_some(sample.pid);
                    if let (Some(pid), Some(names)) = (pid, process_names.as_mut()) {
                        names.note(pid);
                    }
                    queue.push(Timed {
                        time_ns: sample.time_ns,
                        probe: opened.probe,
                        event,
                        pid,
                    });
                }
                None if !opened.kind.is_call_half() => *undecoded += 1,
                None => {}
            }
        });
        if let Some(counted) = counted {
            rings.check_delivery(counted);
        }
        if let Some(timers) = self.timer_pipe.as_mut() {
            timers.read(queue);
        }
        if let Some(diag) = diag {
            ask_last_moments(diag, queue, before);
        }
        if self.namer.is_some() {
            // The rings of different CPUs are read one after the other: in
            // their order a socket's close can come before its last send,
            // which would then wait for a name that never comes. (Stable:
            // what follows its state change at the same time stays after it.)
            self.queue[before..].sort_by_key(|t| t.time_ns);
            for timed in &self.queue[before..] {
                self.names.observe(&timed.event, timed.time_ns);
            }
            self.ask_names();
        }
    }

    /// Reads the names of the processes owner-context events run in from
    /// now on (`true`), or stops.
    pub fn want_process_names(&mut self, wanted: bool) {
        match (wanted, self.process_names.take()) {
            (true, names) => self.process_names = Some(names.unwrap_or_default()),
            (false, Some(names)) => self.process_names_unkept += names.unkept(),
            (false, None) => {}
        }
    }

    /// The names read since the last call: pid → command, as read when
    /// the process's events were.
    pub fn take_process_names(&mut self) -> Vec<(u32, String)> {
        self.process_names
            .as_mut()
            .map(ProcessNames::take)
            .unwrap_or_default()
    }

    /// Processes whose events were read but whose name was not (the bound
    /// on names read between two hand-overs), since the start.
    pub fn process_names_unkept(&self) -> u64 {
        self.process_names_unkept + self.process_names.as_ref().map_or(0, ProcessNames::unkept)
    }

    /// The events that happened before `time_ns`, oldest first; later ones
    /// stay for the next call.
    pub fn take_before(&mut self, time_ns: u64) -> Vec<Timed> {
        // Each ring is in time order; the rings of different CPUs are not.
        self.queue.sort_by_key(|t| t.time_ns);
        let split = self.queue.partition_point(|t| t.time_ns < time_ns);
        let later = self.queue.split_off(split);
        std::mem::replace(&mut self.queue, later)
    }
}

/// A mounted tracefs, mounting one when root and there is none (and
/// then the mount to undo at the end).
fn locate_tracefs(
    notices: &mut Vec<String>,
) -> Result<(Tracefs, Option<MountedHere>), PrecisionError> {
    let root = is_root();
    let (tracefs, mounted) = Tracefs::locate(root).map_err(|e| {
        if root {
            PrecisionError::NoTracefs(e)
        } else {
            PrecisionError::NoTracefsAccess(e)
        }
    })?;
    let mount = mounted.then(|| {
        notices.push(format!(
            "precision: mounted tracefs at {} (unmounted at exit)",
            tracefs.mount_point().display()
        ));
        MountedHere::new(tracefs.mount_point())
    });
    Ok((tracefs, mount))
}

/// The kprobe definitions `mode` may use on this kernel: none in
/// tracepoint mode or without kprobe_events, an error if kprobe mode then
/// has none.
fn usable_kprobes(mode: ProbeMode, tracefs: &Tracefs) -> Result<Vec<KprobeDef>, PrecisionError> {
    let defs = if mode != ProbeMode::Tracepoint && tracefs.kprobes_supported() {
        kprobes::definitions()
    } else {
        Vec::new()
    };
    if mode == ProbeMode::Kprobe && defs.is_empty() {
        return Err(PrecisionError::NoKprobes);
    }
    Ok(defs)
}

/// The probes chosen for each role, before any is opened.
struct Choice {
    tracepoints: Vec<(Role, EventKind)>,
    kprobes: Vec<(Role, KprobeDef)>,
    /// The roles (but the helpers) that nothing on this kernel fills.
    missing: Vec<String>,
}

/// Per role, the first tracepoint this kernel has (unless kprobe mode),
/// else every kprobe that serves it.
fn choose_probes(
    mode: ProbeMode,
    tracefs: &Tracefs,
    kprobe_defs: &[KprobeDef],
    udp: bool,
) -> Choice {
    let use_tracepoints = mode != ProbeMode::Kprobe;
    let mut choice = Choice {
        tracepoints: Vec::new(),
        kprobes: Vec::new(),
        missing: Vec::new(),
    };
    for role in Role::ALL {
        if role.is_udp() && !udp {
            continue;
        }
        let tracepoint = use_tracepoints
            .then(|| {
                role.tracepoints().iter().copied().find(|kind| {
                    let (group, name) = kind.tracepoint().expect("a tracepoint kind");
                    tracefs.has_event(group, name)
                })
            })
            .flatten();
        if let Some(kind) = tracepoint {
            choice.tracepoints.push((role, kind));
            if role == Role::UdpNames {
                // Every socket call's entry, not one of them.
                for &other in &role.tracepoints()[1..] {
                    let (group, name) = other.tracepoint().expect("a tracepoint kind");
                    if other != kind && tracefs.has_event(group, name) {
                        choice.tracepoints.push((role, other));
                    }
                }
            }
            continue;
        }
        let defs: Vec<KprobeDef> = kprobe_defs
            .iter()
            .filter(|d| role.kprobe_serves(d))
            .cloned()
            .collect();
        if !defs.is_empty() {
            choice.kprobes.extend(defs.into_iter().map(|d| (role, d)));
        } else if !role.is_helper() && !role.is_udp() {
            choice.missing.push(format!("{role:?}"));
        }
    }
    // UDP's datagrams by kprobe only in the directions no tracepoint gives.
    let traced = |kind| choice.tracepoints.iter().any(|(_, k)| *k == kind);
    let (sends_traced, receives_traced) = (
        traced(EventKind::SockSendLength),
        traced(EventKind::SockRecvLength),
    );
    choice.kprobes.retain(|(_, def)| match def.kind {
        EventKind::KprobeUdpSendEntry | EventKind::KprobeUdpSendReturn => !sends_traced,
        EventKind::KprobeUdpRecvEntry | EventKind::KprobeUdpRecvReturn => !receives_traced,
        _ => true,
    });
    // Names only help the send/receive tracepoints, which lack tuples.
    let sends_by_tracepoint = choice
        .tracepoints
        .iter()
        .any(|(r, _)| matches!(r, Role::Sends | Role::Receives));
    if !sends_by_tracepoint {
        choice
            .tracepoints
            .retain(|(r, _)| !matches!(r, Role::Names | Role::Namer));
    }
    choice
}

/// Creates the `wanted` kprobes in this process's own group; those the
/// kernel refuses are left out with a notice. The set (None when nothing
/// was wanted) removes its probes when dropped.
fn create_kprobes(
    tracefs: &Tracefs,
    wanted: Vec<(Role, KprobeDef)>,
    notices: &mut Vec<String>,
) -> (Option<KprobeSet>, Vec<(Role, KprobeDef)>) {
    if wanted.is_empty() {
        return (None, Vec::new());
    }
    let group = format!("tcpipstat_{}", std::process::id());
    let lines: Vec<(String, String, bool)> = wanted
        .iter()
        .map(|(_, d)| (d.event_name.to_string(), d.definition(), d.is_return))
        .collect();
    let (set, failures) = KprobeSet::create(tracefs, &group, &lines);
    for (name, why) in &failures {
        notices.push(format!(
            "precision: kprobe {name} refused by the kernel: {why}"
        ));
    }
    let created = set.created();
    let events = wanted
        .into_iter()
        .filter(|(_, def)| created.iter().any(|c| c == def.event_name))
        .collect();
    (Some(set), events)
}

/// Where the delayed-ACK timer sits in a socket, when the DelayedAcks role
/// was chosen; the role is left out, saying why, when it cannot be known.
fn delack_offset_for(choice: &mut Choice, notices: &mut Vec<String>) -> Option<u64> {
    if !choice
        .tracepoints
        .iter()
        .any(|(r, _)| *r == Role::DelayedAcks)
    {
        return None;
    }
    kernel_facts::delack_offset()
        .map_err(|why| leave_out_delayed_acks(choice, notices, &why))
        .ok()
}

/// The delayed-ACK timer with its callback's address (/proc/kallsyms), for
/// the perf transport; the role is left out, saying why, without one.
fn delack_address_for(
    offset: u64,
    choice: &mut Choice,
    notices: &mut Vec<String>,
) -> Option<DelackTimer> {
    match kernel_facts::delack_function() {
        Ok(function) => Some(DelackTimer { function, offset }),
        Err(why) => {
            leave_out_delayed_acks(choice, notices, &why);
            None
        }
    }
}

fn leave_out_delayed_acks(choice: &mut Choice, notices: &mut Vec<String>, why: &str) {
    choice.tracepoints.retain(|(r, _)| *r != Role::DelayedAcks);
    notices.push(format!("precision: DelayedACKs left out: {why}"));
}

/// How DelayedACKs are counted, `{via}` the transport, where each expiry
/// counts.
const DELACK_SOURCE: &str = "{via} timer:timer_expire_entry of tcp_delack_timer (~: a timer that finds its ACK already sent counts too)";

/// How DelayedACKs are counted where expiries are paired with the ACKs
/// they send.
const DELACK_PAIRED_SOURCE: &str = "ftrace instance timer:timer_expire_entry of tcp_delack_timer that queued a packet (net:net_dev_queue) on its CPU before its timer:timer_expire_exit (~: an ACK deferred to the socket's owner is not seen, a compressed SACK the timer sent is counted)";

/// Filters for the packets an expiry may send, the first the kernel takes:
/// those queued in softirq context (`common_flags` bit 0x10, where timers
/// run) and no longer than a pure ACK can be (Ethernet and VLAN tags,
/// IPv6, 60 bytes of TCP header: 118; 256 leaves room for encapsulations).
/// A kernel that filters on neither gets every packet, at more cost.
const QUEUED_FILTERS: [Option<&str>; 3] = [
    Some("common_flags & 16 && len <= 256"),
    Some("len <= 256"),
    None,
];

/// The instance that reads delayed-ACK timers, the timer's offset in a
/// socket, and, where the instance also records timer ends and queued
/// packets, the pairing that tells an expiry that acknowledged from one
/// that found nothing to do.
struct TimerPipe {
    pipe: FtracePipe,
    offset: u64,
    brackets: Option<DelackBrackets>,
}

impl TimerPipe {
    /// Adds what pairing needs to the instance; without it each expiry
    /// counts, said in a notice.
    fn new(mut pipe: FtracePipe, offset: u64, notices: &mut Vec<String>) -> TimerPipe {
        let paired = pipe
            .enable("timer", "timer_expire_exit", None)
            .and_then(|()| {
                let mut refused = String::new();
                for filter in QUEUED_FILTERS {
                    match pipe.enable("net", "net_dev_queue", filter) {
                        Ok(()) => return Ok(()),
                        Err(why) => refused = why,
                    }
                }
                Err(refused)
            });
        if let Err(why) = &paired {
            notices.push(format!(
                "precision: DelayedACKs count every delayed-ACK timer expiry (~), also one that finds its ACK already sent: {why}"
            ));
        }
        TimerPipe {
            pipe,
            offset,
            brackets: paired.ok().map(|()| DelackBrackets::default()),
        }
    }

    fn source(&self) -> String {
        match self.brackets {
            Some(_) => DELACK_PAIRED_SOURCE.to_string(),
            None => DELACK_SOURCE.replace("{via}", "ftrace instance"),
        }
    }

    /// Queues the delayed ACKs of what the instance holds now.
    fn read(&mut self, queue: &mut Vec<Timed>) {
        let TimerPipe {
            pipe,
            offset,
            brackets,
        } = self;
        let offset = *offset;
        let mut push = |time_ns: u64, timer: u64| {
            if timer <= offset {
                return;
            }
            queue.push(Timed {
                time_ns,
                probe: Probe::Tracepoint,
                event: TraceEvent::DelayedAck { sk: timer - offset },
                pid: None,
            });
        };
        pipe.read_lines(|text| {
            let Some(line) = ftrace_pipe::parse_line(text) else {
                return;
            };
            match brackets {
                Some(brackets) => {
                    if let Some(expiry) = brackets.feed(&line, DELACK_FUNCTION) {
                        if expiry.acked {
                            push(expiry.time_ns, expiry.timer);
                        }
                    }
                }
                None => {
                    if let PipeEvent::Expiry { timer, function } = line.event {
                        if function == DELACK_FUNCTION {
                            push(line.time_ns, timer);
                        }
                    }
                }
            }
        });
    }
}

/// The delayed-ACK timer's callback.
const DELACK_FUNCTION: &str = "tcp_delack_timer";

/// The delayed-ACK timer's expiries through an ftrace instance of the
/// run's own, the perf event then not opened (see `ftrace_pipe` for why);
/// where the instance cannot be had, perf it is, said once.
fn open_timer_pipe(
    tracefs: &Tracefs,
    offset: u64,
    choice: &mut Choice,
    notices: &mut Vec<String>,
) -> Option<TimerPipe> {
    // Kernels whose filters take a function pointer's name spare the read
    // of /proc/kallsyms (a one-time ~50 ms of CPU); others take its address.
    let mut filters = [
        Box::new(|| Ok("function.function == tcp_delack_timer".to_string()))
            as Box<dyn FnOnce() -> Result<String, String>>,
        Box::new(|| kernel_facts::delack_function().map(|a| format!("function == 0x{a:x}"))),
    ]
    .into_iter()
    .map(|make| make());
    match FtracePipe::open(tracefs.root(), "timer", "timer_expire_entry", &mut filters) {
        Ok(pipe) => {
            choice.tracepoints.retain(|(r, _)| *r != Role::DelayedAcks);
            Some(TimerPipe::new(pipe, offset, notices))
        }
        Err(why) => {
            notices.push(format!(
                "precision: DelayedACKs through perf, which can miss timer expiries on idle CPUs (no ftrace instance: {why})"
            ));
            None
        }
    }
}

/// Lets the kernel pass only delayed-ACK timers' expiries (every timer of
/// the host fires this event). Without the filter the decoder still keeps
/// only those, at more cost: said once.
fn filter_timers(rings: &mut PerfRings, opening: &Opening, notices: &mut Vec<String>) {
    let (Some(delack), Some(tag)) = (
        opening.delack,
        opening
            .opened
            .iter()
            .position(|o| o.kind == EventKind::TimerExpireEntry),
    ) else {
        return;
    };
    let filter = format!("function == 0x{:x}", delack.function);
    if let Err(e) = rings.filter_tag(tag as u32, Some(&filter)) {
        notices.push(format!(
            "precision: the kernel refused the timer filter ({e}): every timer expiry is read and sorted here"
        ));
    }
}

/// What the kernel may drop before it copies a sample: the events that
/// fire for every socket of the host (a send or receive on a Unix or
/// netlink socket, tcpipstat's own reads of close notices among them) or
/// for every freed packet, filtered to what the decoder keeps anyway.
fn prefilter_of(kind: EventKind, udp: bool) -> Option<&'static str> {
    match kind {
        EventKind::SockSendLength | EventKind::SockRecvLength if udp => {
            Some("protocol == 6 || protocol == 17 || protocol == 136")
        }
        EventKind::SockSendLength | EventKind::SockRecvLength | EventKind::InetSockSetState => {
            Some("protocol == 6")
        }
        // Only ICMP errors about UDP datagrams carry ports.
        EventKind::IcmpSend => Some("dport != 0"),
        // 0 and 1 are "not dropped" and "consumed": no drop.
        EventKind::KfreeSkb => Some("reason > 1"),
        _ => None,
    }
}

/// Sets each event's [`prefilter_of`]; a kernel that refuses one (an older
/// layout) keeps sending everything, which the decoder sorts out.
fn prefilter(rings: &PerfRings, opening: &Opening, udp: bool) {
    for (tag, opened) in opening.opened.iter().enumerate() {
        if let Some(filter) = prefilter_of(opened.kind, udp) {
            let _ = rings.filter_tag(tag as u32, Some(filter));
        }
    }
}

/// The events opened so far, with what the rings and the recorder need of
/// each: every event gets a decoder built from its own format file.
struct Opening<'a> {
    tracefs: &'a Tracefs,
    /// Which timers are delayed-ACK timers (for the timer event).
    delack: Option<DelackTimer>,
    /// With --udp: decoders decode UDP's events, with the kernel's text
    /// where it could be read.
    udp: Option<Option<std::sync::Arc<kernel_facts::KernelText>>>,
    record_to: Option<&'a Path>,
    opened: Vec<Opened>,
    /// Per event: its recording's file name, and samples written (none yet).
    recorded: Vec<(String, u32)>,
    /// Per event: (tracepoint id, tag, "group:name") for the rings.
    ring_events: Vec<(u64, u32, String)>,
}

impl<'a> Opening<'a> {
    fn new(tracefs: &'a Tracefs, record_to: Option<&'a Path>) -> Opening<'a> {
        Opening {
            tracefs,
            delack: None,
            udp: None,
            record_to,
            opened: Vec::new(),
            recorded: Vec::new(),
            ring_events: Vec::new(),
        }
    }

    /// Opens the chosen tracepoints; says by which tracepoint each role is
    /// filled.
    fn open_tracepoints(
        &mut self,
        tracepoints: &[(Role, EventKind)],
        notices: &mut Vec<String>,
    ) -> Vec<(Role, String)> {
        let mut sources = Vec::new();
        for (role, kind) in tracepoints {
            let (group, name) = kind.tracepoint().expect("a tracepoint kind");
            // A helper this kernel's event cannot serve (tcp_probe without
            // skaddr, say) is left out quietly.
            let mut quiet = Vec::new();
            let said = if role.is_helper() {
                &mut quiet
            } else {
                &mut *notices
            };
            if self.open(group, name, *kind, Probe::Tracepoint, said) {
                let label = match kind {
                    EventKind::TimerExpireEntry => DELACK_SOURCE.replace("{via}", "tracepoint"),
                    _ => format!("tracepoint {group}:{name}"),
                };
                sources.push((*role, label));
            }
        }
        sources
    }

    /// Opens the created kprobes of `group`; a role's kprobe functions are
    /// named in one source, joined by '+'.
    fn open_kprobes(
        &mut self,
        group: &str,
        kprobes: &[(Role, KprobeDef)],
        sources: &mut Vec<(Role, String)>,
        notices: &mut Vec<String>,
    ) {
        for (role, def) in kprobes {
            if !self.open(group, def.event_name, def.kind, Probe::Kprobe, notices) {
                continue;
            }
            match sources
                .iter_mut()
                .find(|(r, s)| r == role && s.starts_with("kprobe"))
            {
                Some((_, existing)) if !existing.contains(def.function) => {
                    existing.push('+');
                    existing.push_str(def.function);
                }
                Some(_) => {}
                None => sources.push((*role, format!("kprobe {}", def.function))),
            }
        }
    }

    /// Readies one event for the rings (and records its format when asked);
    /// false, with a notice, when its format will not decode.
    fn open(
        &mut self,
        group: &str,
        name: &str,
        kind: EventKind,
        probe: Probe,
        notices: &mut Vec<String>,
    ) -> bool {
        let (text, id, decoder) = match self.decoder_for(group, name, kind) {
            Ok(found) => found,
            Err(why) => {
                notices.push(format!("precision: {group}:{name} left out: {why}"));
                return false;
            }
        };
        let file_name = format!(
            "{}__{name}",
            if probe == Probe::Kprobe {
                "kprobes"
            } else {
                group
            }
        );
        if let Some(dir) = self.record_to {
            let written = std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(dir.join(format!("{file_name}.format")), text));
            if let Err(e) = written {
                let dir = crate::filter::quoted(&dir.to_string_lossy());
                notices.push(format!("--record-trace {dir}: {e}"));
            }
        }
        let tag = self.opened.len() as u32;
        self.ring_events.push((id, tag, format!("{group}:{name}")));
        self.recorded.push((file_name, 0));
        self.opened.push(Opened {
            kind,
            probe,
            decoder,
        });
        true
    }

    /// An event's format file, its id and a decoder built from it.
    fn decoder_for(
        &self,
        group: &str,
        name: &str,
        kind: EventKind,
    ) -> Result<(String, u64, Decoder), String> {
        let text = self
            .tracefs
            .event_format(group, name)
            .map_err(|e| e.to_string())?;
        let format = EventFormat::parse(&text).map_err(|e| e.to_string())?;
        let mut decoder = Decoder::new(kind, &format).map_err(|e| e.to_string())?;
        if kind == EventKind::TimerExpireEntry {
            let delack = self.delack.ok_or("the delayed-ACK timer is unknown")?;
            decoder = decoder.with_delack(delack);
        }
        if let Some(text) = &self.udp {
            decoder = decoder.with_udp(text.clone());
        }
        Ok((text, format.id, decoder))
    }
}

/// An error unless something was opened, and, in kprobe mode, a kprobe.
fn check_opened(
    mode: ProbeMode,
    opened: &[Opened],
    missing: &[String],
) -> Result<(), PrecisionError> {
    if opened.is_empty() {
        return Err(PrecisionError::NothingOpened {
            missing: missing.to_vec(),
        });
    }
    if mode == ProbeMode::Kprobe && !opened.iter().any(|o| o.probe == Probe::Kprobe) {
        return Err(PrecisionError::NoKprobeCreated);
    }
    Ok(())
}

/// One ring per CPU for every opened event, enabled.
fn open_rings(
    events: &[(u64, u32, String)],
    pages: usize,
    deferred: Option<u32>,
) -> Result<PerfRings, PrecisionError> {
    let mut rings = PerfRings::open(
        events,
        RingOptions {
            pages_per_cpu: pages,
            watermark_bytes: watermark(pages),
        },
    )
    .map_err(PrecisionError::Rings)?;
    if let Some(tag) = deferred {
        rings.defer(tag);
    }
    rings.enable().map_err(PrecisionError::Rings)?;
    Ok(rings)
}

/// The summary of what was opened, from each role's source.
fn summarize(sources: &[(Role, String)], opened: &[Opened]) -> ProbeSummary {
    let syn_retransmits_told = opened.iter().any(|o| o.decoder.tells_syn_retransmits());
    let mut covered = Vec::new();
    let mut labelled = Vec::new();
    for (role, label) in sources {
        covered.extend_from_slice(role.counters());
        if role.counters().is_empty() {
            continue;
        }
        // Retransmits from events count only after a socket's last poll.
        let label = if role.counters().contains(&Counter::RetransSegs) {
            format!("sock_diag polls; {label} after a socket's last poll")
        } else if *role == Role::SynAckRetransmits && syn_retransmits_told {
            format!("{label}; tracepoint tcp:tcp_retransmit_skb of SYN_SENT sockets")
        } else {
            label.clone()
        };
        labelled.push((role.counters().to_vec(), label));
    }
    let kinds: std::collections::BTreeSet<&str> = opened
        .iter()
        .map(|o| match o.probe {
            Probe::Tracepoint => "tracepoint",
            Probe::Kprobe => "kprobe",
        })
        .collect();
    ProbeSummary {
        probes: kinds.into_iter().collect::<Vec<_>>().join("+"),
        sources: labelled,
        exact_states: sources.iter().any(|(r, _)| *r == Role::States),
        covered,
        syn_retransmits_told,
        destructions_told: opened.iter().any(|o| o.decoder.tells_destructions()),
        udp_sources: Vec::new(),
        udp_missing: Vec::new(),
    }
}

/// What UDP gets from the events opened, and what it cannot have here.
fn summarize_udp(summary: &mut ProbeSummary, opened: &[Opened], text_missing: Option<&str>) {
    let has = |kind: EventKind| opened.iter().any(|o| o.kind == kind);
    let mut sources = Vec::new();
    let mut missing = Vec::new();
    let by_calls = opened.iter().any(|o| o.kind.is_socket_call_entry());
    let named = by_calls || has(EventKind::KprobeUdpName);
    let namer = if by_calls {
        "the socket named by its descriptor (syscalls:sys_enter_sendto/recvfrom/sendmsg/recvmsg/sendmmsg/recvmmsg in the same thread, /proc/PID/fd)"
    } else {
        "the socket named by kprobes on udp_sendmsg/udp_recvmsg (+ v6)"
    };
    for (kind, by_kprobe, counters, name, call) in [
        (
            EventKind::SockRecvLength,
            EventKind::KprobeUdpRecvReturn,
            "InDatagrams, InBytes",
            "sock:sock_recv_length",
            "udp_recvmsg/udpv6_recvmsg",
        ),
        (
            EventKind::SockSendLength,
            EventKind::KprobeUdpSendReturn,
            "OutDatagrams, OutBytes",
            "sock:sock_send_length",
            "udp_sendmsg/udpv6_sendmsg",
        ),
    ] {
        let entry_kind = match by_kprobe {
            EventKind::KprobeUdpRecvReturn => EventKind::KprobeUdpRecvEntry,
            _ => EventKind::KprobeUdpSendEntry,
        };
        if !has(kind) && has(by_kprobe) && has(entry_kind) {
            sources.push((
                counters.to_string(),
                format!("kprobes on {call} and their returns (paired by thread; the entry names the socket by its tuple; a MSG_PEEK read counts as a read)"),
            ));
            continue;
        }
        match (has(kind), named) {
            (true, true) => sources.push((
                counters.to_string(),
                format!("tracepoint {name}, {namer}"),
            )),
            (true, false) => missing.push(format!(
                "per-socket {counters} (nothing names a UDP socket's address: no syscalls tracepoints, no kprobes)"
            )),
            (false, _) => missing.push(format!("per-socket {counters} (no tracepoint {name})")),
        }
    }
    if has(EventKind::UdpFailQueueRcvSkb) {
        sources.push((
            "RcvbufErrors, MemErrors".to_string(),
            "tracepoint udp:udp_fail_queue_rcv_skb, by the socket's port".to_string(),
        ));
    } else {
        missing.push("per-socket RcvbufErrors, MemErrors (no udp:udp_fail_queue_rcv_skb)".into());
    }
    let reasons = opened.iter().any(|o| o.kind == EventKind::KfreeSkb);
    match (reasons, text_missing) {
        (true, None) => sources.push((
            "NoPorts, InCsumErrors, drops by reason".to_string(),
            "tracepoint skb:kfree_skb freed in a UDP function (/proc/kallsyms)".to_string(),
        )),
        (true, Some(why)) => missing.push(format!(
            "NoPorts and UDP drops by reason but UDP_CSUM (which function freed a datagram is unknown: {why})"
        )),
        (false, _) => missing.push("NoPorts and UDP drops by reason (no skb:kfree_skb with a reason: before 5.17)".into()),
    }
    if has(EventKind::IcmpSend) {
        sources.push((
            "NoPorts by port and sender".to_string(),
            "tracepoint icmp:icmp_send of the port unreachable answering it (IPv4; one the kernel rate-limits is counted with no port)".to_string(),
        ));
    } else {
        missing.push("NoPorts by port (no icmp:icmp_send: before 6.10)".into());
    }
    summary.udp_sources = sources;
    summary.udp_missing = missing;
}

/// A sock_diag socket for last-moment lookups, when `wanted` (a notice
/// instead when it cannot be opened).
fn last_moment_diag(wanted: bool, notices: &mut Vec<String>) -> Option<SockDiag> {
    if !wanted {
        return None;
    }
    match SockDiag::open() {
        Ok(diag) => Some(diag),
        Err(e) => {
            notices.push(format!(
                "precision: no last-moment samples (sock_diag: {e})"
            ));
            None
        }
    }
}

/// For each socket in `queue[from..]` leaving ESTABLISHED, asks sock_diag
/// for it now: in FIN_WAIT or CLOSE_WAIT its tcp_info is still there. The
/// answer goes in right after the state change, at the same time.
fn ask_last_moments(diag: &mut SockDiag, queue: &mut Vec<Timed>, from: usize) {
    let leaving: Vec<(usize, u64, crate::model::SocketKey, u64)> = queue[from..]
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match &t.event {
            TraceEvent::StateChange {
                sk,
                tuple,
                old: TcpState::Established,
                new: TcpState::FinWait1 | TcpState::CloseWait,
                ..
            } if tuple.is_complete() && !tuple.local.is_unspecified() => {
                Some((from + i, *sk, tuple.key(0), t.time_ns))
            }
            _ => None,
        })
        .collect();
    if leaving.is_empty() {
        return;
    }
    let mut answers = Vec::with_capacity(leaving.len());
    for (at, sk, key, time_ns) in leaving {
        if let Ok(Some(sample)) = diag.lookup(&key, EXT_INFO | EXT_CONG) {
            // The kernel's lookup falls back to a listener: only the
            // socket itself will do.
            if sample.key != key || sample.state == TcpState::Listen {
                continue;
            }
            let event = TraceEvent::LastSample {
                sk,
                sample: Box::new(sample),
            };
            answers.push((
                at,
                Timed {
                    time_ns,
                    probe: queue[at].probe,
                    event,
                    pid: None,
                },
            ));
        }
    }
    // Each answer right after its state change.
    let tail = queue.split_off(from);
    let mut answers = answers.into_iter().peekable();
    for (i, timed) in tail.into_iter().enumerate() {
        queue.push(timed);
        while answers.peek().is_some_and(|(at, _)| *at == from + i) {
            queue.push(answers.next().expect("peeked").1);
        }
    }
}

/// Samples kept per event by --record-trace.
const RECORDED_SAMPLES: u32 = 4;

fn record_sample(dir: &Path, (name, written): &mut (String, u32), raw: &[u8]) {
    if *written < RECORDED_SAMPLES {
        *written += 1;
        let _ = std::fs::write(dir.join(format!("{name}-{written}.bin")), raw);
    }
}

/// The effective user is root (asked of the kernel: /proc may be hidden).
fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_named_again_from_an_unreadable_descriptor_loses_its_old_name() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket) as u32;
        let pid = std::process::id();
        let mut fds = UdpFds::default();
        let inode = fds.name(0xa0, pid, fd, 0).unwrap();
        assert_ne!(inode, 0);
        assert_eq!(fds.name(0xa0, pid, fd, 10), None, "named already");
        // Read again a second later, the same socket: nothing new.
        assert_eq!(fds.name(0xa0, pid, fd, UDP_NAME_RECHECK_NS), None);
        // The address is now a socket whose descriptor is gone.
        assert_eq!(
            fds.name(0xa0, pid, 1 << 30, 2 * UDP_NAME_RECHECK_NS),
            Some(0)
        );
        assert_eq!(fds.unreadable, 1);
        assert_eq!(fds.name(0xa0, pid, 1 << 30, 2 * UDP_NAME_RECHECK_NS), None);
    }

    #[test]
    fn a_descriptor_closed_and_reused_is_read_again_a_second_later() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket) as u32;
        let pid = std::process::id();
        let mut fds = UdpFds::default();
        let inode = fds.name(0xb0, pid, fd, 0).unwrap();
        drop(socket);
        // Same address, same descriptor number: within a second, trusted.
        assert_eq!(fds.name(0xb0, pid, fd, 500_000_000), None);
        // A second on, read again: gone (0), or another socket's now.
        let again = fds.name(0xb0, pid, fd, UDP_NAME_RECHECK_NS + 1);
        assert!(again.is_some_and(|i| i != inode), "{again:?}");
    }
    use crate::model::event::EventTuple;

    fn tuple() -> EventTuple {
        EventTuple {
            local: "127.0.0.1".parse().unwrap(),
            local_port: 40000,
            remote: "127.0.0.1".parse().unwrap(),
            remote_port: 80,
        }
    }

    #[test]
    fn a_descriptors_link_names_a_socket_inode_only() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[12345]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
    }

    #[test]
    fn only_senders_no_event_named_are_asked_for() {
        let mut names = Names::default();
        let sent = |sk| TraceEvent::Sent {
            sk,
            tuple: None,
            bytes: 10,
        };
        names.observe(&sent(1), 0);
        names.observe(
            &TraceEvent::Identity {
                sk: 2,
                tuple: tuple(),
                cookie: None,
            },
            0,
        );
        names.observe(&sent(2), 0);
        assert_eq!(names.waiting.keys().copied().collect::<Vec<_>>(), vec![1]);
        // Named by tcp_probe: no longer asked for.
        names.observe(
            &TraceEvent::Identity {
                sk: 1,
                tuple: tuple(),
                cookie: None,
            },
            0,
        );
        assert!(names.waiting.is_empty());
        // Closed: the address is forgotten, and may be the next socket's.
        names.observe(
            &TraceEvent::StateChange {
                sk: 1,
                tuple: tuple(),
                old: TcpState::Established,
                new: TcpState::Close,
                in_softirq: None,
            },
            0,
        );
        names.observe(&sent(1), 0);
        assert!(names.waiting.contains_key(&1));
        for sk in 100..300 {
            names.observe(&sent(sk), 0);
        }
        assert_eq!(names.waiting.len(), NAMED_AT_ONCE);
        // Addresses never named (their socket closed before the send was
        // read) give way after a while, and new ones are asked for.
        names.expire(NAME_WAIT_NS - 1);
        assert_eq!(names.waiting.len(), NAMED_AT_ONCE);
        names.expire(NAME_WAIT_NS);
        assert!(names.waiting.is_empty());
        names.observe(&sent(7), NAME_WAIT_NS);
        assert!(names.waiting.contains_key(&7));
    }
}
