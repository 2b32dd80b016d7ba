//! Precision mode's running part: picks the probes for this kernel
//! (tracepoints where they exist, kprobes for what they do not cover, or
//! one kind only when asked), opens them into one perf ring per CPU, and
//! turns what the rings hold into time-ordered [`Timed`] events. As a
//! socket leaves ESTABLISHED it asks sock_diag for that one socket, so its
//! last moments' counters are caught before it goes.
//!
//! Owns no attribution: the events go to `diff`, which decides what they
//! count for.

use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use super::decoder::{CallPairer, Decoder, EventKind};
use crate::model::event::{Probe, Timed, TraceEvent};
use super::kprobe_defs::{self as kprobes, KprobeDef};
use super::layout::EventFormat;
use super::perf_ring::{PerfRings, RingOptions};
use super::tracing_fs::{KprobeSet, Tracefs};
use crate::cli::PrecisionMode;
use crate::counters::Counter;
use crate::diff::Tracker;
use crate::model::TcpState;
use crate::report::PrecisionSection;
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
    /// Events that only name a socket's address, so sends and receives on
    /// long-lived sockets are attributed sooner.
    Names,
}

impl Role {
    const ALL: [Role; 9] = [
        Role::States,
        Role::SentResets,
        Role::ReceivedResets,
        Role::Retransmits,
        Role::SynAckRetransmits,
        Role::Sends,
        Role::Receives,
        Role::Drops,
        Role::Names,
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
            Role::Names => &[],
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
            Role::Names => &[EventKind::TcpRcvSpaceAdjust],
        }
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
        _ => return None,
    })
}

#[derive(Debug, Error)]
pub enum PrecisionError {
    /// Nothing could be opened: no privilege, no tracefs, no probes.
    #[error("{0}")]
    Unavailable(String),
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
    exact_states: bool,
    covered: Vec<Counter>,
    sources: Vec<(Vec<Counter>, String)>,
    probes: String,
    undecoded: u64,
    /// --record-trace: the directory, and per event its file name and how
    /// many samples were written.
    recorder: Option<(PathBuf, Vec<(String, u32)>)>,
    /// Kept for their removal when the run ends.
    _kprobes: Option<KprobeSet>,
}

/// The ring's wakeup watermark: a quarter of it, so a burst is read before
/// the ring fills but a trickle does not wake the loop per event.
fn watermark(pages: usize) -> u32 {
    (pages * 4096 / 4).min(u32::MAX as usize) as u32
}

impl Collector {
    /// Opens the probes `mode` asks for; the notices say what was mounted,
    /// left out or substituted. Errors only when nothing can be opened (or
    /// an explicit mode cannot be had at all).
    pub fn start(
        mode: PrecisionMode,
        ring_pages: usize,
        last_moments: bool,
        record_to: Option<&Path>,
    ) -> Result<(Collector, Vec<String>), PrecisionError> {
        let mut notices = Vec::new();
        let root = is_root();
        let (tracefs, mounted) = Tracefs::locate(root).map_err(|e| {
            PrecisionError::Unavailable(if root {
                format!("tracefs: {e}")
            } else {
                format!("tracefs: {e} (root or CAP_PERFMON with tracefs access needed)")
            })
        })?;
        if mounted {
            notices.push(format!(
                "precision: mounted tracefs at {}",
                tracefs.root().display()
            ));
        }
        let use_tracepoints = mode != PrecisionMode::Kprobe;
        let use_kprobes = mode != PrecisionMode::Tracepoint;
        let kprobe_defs = if use_kprobes && tracefs.kprobes_supported() {
            kprobes::definitions()
        } else {
            Vec::new()
        };
        if mode == PrecisionMode::Kprobe && kprobe_defs.is_empty() {
            return Err(PrecisionError::Unavailable(
                "this kernel has no kprobes (no kprobe_events in tracefs: CONFIG_KPROBES off?) or this architecture has no kprobe definitions".to_string(),
            ));
        }

        let mut wanted_tracepoints: Vec<(Role, EventKind)> = Vec::new();
        let mut wanted_kprobes: Vec<(Role, KprobeDef)> = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        for role in Role::ALL {
            let tracepoint = use_tracepoints
                .then(|| {
                    role.tracepoints().iter().copied().find(|kind| {
                        let (group, name) = kind.tracepoint().expect("a tracepoint kind");
                        tracefs.has_event(group, name)
                    })
                })
                .flatten();
            if let Some(kind) = tracepoint {
                wanted_tracepoints.push((role, kind));
                continue;
            }
            let defs: Vec<KprobeDef> = kprobe_defs
                .iter()
                .filter(|d| role.kprobe_serves(d))
                .cloned()
                .collect();
            if !defs.is_empty() {
                wanted_kprobes.extend(defs.into_iter().map(|d| (role, d)));
            } else if role != Role::Names {
                missing.push(format!("{role:?}"));
            }
        }
        // Names only help the send/receive tracepoints, which lack tuples.
        let sends_by_tracepoint = wanted_tracepoints
            .iter()
            .any(|(r, _)| matches!(r, Role::Sends | Role::Receives));
        if !sends_by_tracepoint {
            wanted_tracepoints.retain(|(r, _)| *r != Role::Names);
        }

        let mut kprobe_set = None;
        let mut kprobe_events: Vec<(Role, KprobeDef)> = Vec::new();
        if !wanted_kprobes.is_empty() {
            let group = format!("tcpipstat_{}", std::process::id());
            let lines: Vec<(String, String, bool)> = wanted_kprobes
                .iter()
                .map(|(_, d)| (d.event_name.to_string(), d.definition(), d.is_return))
                .collect();
            let (set, failures) = KprobeSet::create(&tracefs, &group, &lines);
            for (name, why) in &failures {
                notices.push(format!(
                    "precision: kprobe {name} refused by the kernel: {why}"
                ));
            }
            let created: Vec<String> = set.created().to_vec();
            for (role, def) in wanted_kprobes {
                if created.iter().any(|c| c == def.event_name) {
                    kprobe_events.push((role, def));
                }
            }
            kprobe_set = Some(set);
        }

        // Every opened event gets a decoder built from its own format file.
        let mut opened = Vec::new();
        let mut recorded = Vec::new();
        let mut ring_events = Vec::new();
        let mut sources: Vec<(Role, String)> = Vec::new();
        let mut open = |group: &str,
                        name: &str,
                        kind: EventKind,
                        probe: Probe,
                        notices: &mut Vec<String>|
         -> bool {
            let format = match tracefs
                .event_format(group, name)
                .map_err(|e| e.to_string())
                .and_then(|text| EventFormat::parse(&text).map_err(|e| e.to_string()))
            {
                Ok(format) => format,
                Err(why) => {
                    notices.push(format!("precision: {group}:{name} left out: {why}"));
                    return false;
                }
            };
            let decoder = match Decoder::new(kind, &format) {
                Ok(decoder) => decoder,
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
            if let Some(dir) = record_to {
                let written = std::fs::create_dir_all(dir).and_then(|()| {
                    std::fs::write(
                        dir.join(format!("{file_name}.format")),
                        text_of(&tracefs, group, name),
                    )
                });
                if let Err(e) = written {
                    notices.push(format!("--record-trace: {}: {e}", dir.display()));
                }
            }
            ring_events.push((format.id, opened.len() as u32, format!("{group}:{name}")));
            recorded.push((file_name, 0u32));
            opened.push(Opened {
                kind,
                probe,
                decoder,
            });
            true
        };
        for (role, kind) in &wanted_tracepoints {
            let (group, name) = kind.tracepoint().expect("a tracepoint kind");
            if open(group, name, *kind, Probe::Tracepoint, &mut notices) {
                sources.push((*role, format!("tracepoint {group}:{name}")));
            }
        }
        let kprobe_group = kprobe_set.as_ref().map(|s| s.group().to_string());
        for (role, def) in &kprobe_events {
            let group = kprobe_group.as_deref().expect("kprobes created");
            if open(group, def.event_name, def.kind, Probe::Kprobe, &mut notices) {
                let label = format!("kprobe {}", def.function);
                match sources
                    .iter_mut()
                    .find(|(r, s)| r == role && s.starts_with("kprobe"))
                {
                    Some((_, existing)) if !existing.contains(def.function) => {
                        existing.push('+');
                        existing.push_str(def.function);
                    }
                    Some(_) => {}
                    None => sources.push((*role, label)),
                }
            }
        }
        if opened.is_empty() {
            return Err(PrecisionError::Unavailable(format!(
                "no probe could be opened{}",
                if missing.is_empty() {
                    String::new()
                } else {
                    format!(" (missing: {})", missing.join(", "))
                }
            )));
        }
        if mode == PrecisionMode::Kprobe && !opened.iter().any(|o| o.probe == Probe::Kprobe) {
            return Err(PrecisionError::Unavailable(
                "no kprobe could be created".to_string(),
            ));
        }
        if !missing.is_empty() {
            notices.push(format!(
                "precision: this kernel cannot give {} in {} mode: those counters stay as polls give them",
                missing.join(", "),
                mode.name()
            ));
        }

        let rings = PerfRings::open(
            &ring_events,
            RingOptions {
                pages_per_cpu: ring_pages,
                watermark_bytes: watermark(ring_pages),
            },
        )
        .map_err(|e| PrecisionError::Unavailable(e.to_string()))?;
        rings
            .enable()
            .map_err(|e| PrecisionError::Unavailable(e.to_string()))?;

        let states_opened = sources.iter().any(|(r, _)| *r == Role::States);
        let mut covered = Vec::new();
        let mut labelled = Vec::new();
        for (role, label) in &sources {
            covered.extend_from_slice(role.counters());
            if !role.counters().is_empty() {
                labelled.push((role.counters().to_vec(), label.clone()));
            }
        }
        let kinds: std::collections::BTreeSet<&str> = opened
            .iter()
            .map(|o| match o.probe {
                Probe::Tracepoint => "tracepoint",
                Probe::Kprobe => "kprobe",
            })
            .collect();
        let diag = if last_moments && states_opened {
            match SockDiag::open() {
                Ok(diag) => Some(diag),
                Err(e) => {
                    notices.push(format!(
                        "precision: no last-moment samples (sock_diag: {e})"
                    ));
                    None
                }
            }
        } else {
            None
        };
        // Retransmits from events count only after a socket's last poll.
        for (counters, label) in &mut labelled {
            if counters.contains(&Counter::RetransSegs) {
                *label = format!("sock_diag polls; {label} after a socket's last poll");
            }
        }
        Ok((
            Collector {
                rings,
                opened,
                pairer: CallPairer::default(),
                queue: Vec::new(),
                diag,
                exact_states: states_opened,
                covered,
                sources: labelled,
                probes: kinds.into_iter().collect::<Vec<_>>().join("+"),
                undecoded: 0,
                recorder: record_to.map(|dir| (dir.to_path_buf(), recorded)),
                _kprobes: kprobe_set,
            },
            notices,
        ))
    }

    /// Whether state counters come from events (so nothing is inferred).
    pub fn exact_states(&self) -> bool {
        self.exact_states
    }

    /// The counters the opened probes fill.
    pub fn covered(&self) -> Vec<Counter> {
        self.covered.clone()
    }

    /// Events the kernel could not put in a full ring, since the start.
    pub fn lost(&self) -> u64 {
        self.rings.lost()
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
            Ok(_) => self.drain(),
            // An interrupted wait (a signal) is retried by the caller's loop.
            Err(_) => std::thread::sleep(timeout.min(Duration::from_millis(10))),
        }
    }

    /// Reads every ring to its end, decoding what it holds.
    pub fn drain(&mut self) {
        let Collector {
            rings,
            opened,
            pairer,
            queue,
            diag,
            undecoded,
            recorder,
            ..
        } = self;
        let before = queue.len();
        rings.drain(&mut |sample| {
            let Some(opened) = opened.get(sample.tag as usize) else {
                *undecoded += 1;
                return;
            };
            if let Some((dir, files)) = recorder.as_mut() {
                record_sample(dir, &mut files[sample.tag as usize], sample.raw);
            }
            let event = if opened.kind.is_call_half() {
                pairer.feed(&opened.decoder, sample.tid, sample.raw)
            } else {
                opened.decoder.decode(sample.raw)
            };
            match event {
                Some(event) => queue.push(Timed {
                    time_ns: sample.time_ns,
                    probe: opened.probe,
                    event,
                }),
                None if !opened.kind.is_call_half() => *undecoded += 1,
                None => {}
            }
        });
        if let Some(diag) = diag {
            ask_last_moments(diag, queue, before);
        }
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

    /// The report's precision section, with the tracker's account.
    pub fn section(&self, tracker: &Tracker) -> PrecisionSection {
        let stats = tracker.event_stats().cloned().unwrap_or_default();
        PrecisionSection {
            probes: self.probes.clone(),
            sources: self.sources.clone(),
            events: stats.events,
            events_lost: self.lost(),
            unplaced: stats.unplaced,
            unidentified: tracker.unidentified(),
            drops_by_reason: stats.drops_by_reason,
            last_samples: stats.last_samples,
            elsewhere_sockets: stats.elsewhere_sockets,
            elsewhere: stats.elsewhere,
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

fn text_of(tracefs: &Tracefs, group: &str, name: &str) -> String {
    tracefs.event_format(group, name).unwrap_or_default()
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
