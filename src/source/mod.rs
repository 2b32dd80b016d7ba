//! Polling input: everything a poll reads from the system. A [`LiveSource`]
//! fills a [`Snapshot`] per poll from sock_diag (falling back to
//! /proc/net/tcp{,6} when sock_diag is unavailable, or with `--source proc`)
//! and reads the namespace's MIB counters; a [`netns::NetnsSource`] does the
//! same in one or every network namespace through agent threads; a
//! [`replay::ReplaySource`] hands out recorded snapshots, without a kernel.
//! Nothing downstream knows where a snapshot came from.
//!
//! - `sockdiag`: the netlink sock_diag conversation and its parser.
//! - `procfs`: /proc/net MIB counters and the /proc/net/tcp fallback.
//! - `netns`: finding, labelling and sampling network namespaces.
//! - `processes`: socket inode → owning process, from /proc/PID/fd.
//! - `containers`: container labels from /proc/PID/cgroup text.
//! - `pods`: Kubernetes pod and container names from the kubelet's logs.
//! - `replay`: snapshots from recorded sock_diag datagrams (`--record`).
//!
//! Socket owners ([`processes::ProcessMap`]) and container labels are read
//! here too, but asked for by the session, not carried in a snapshot.
//!
//! Precision mode's kernel input (perf_event_open rings, tracefs) is not
//! here but in `trace`, which borrows [`sockdiag::SockDiag`] for its
//! last-moment lookups. Errors at this module's edges are typed
//! ([`SourceError`], [`netns::NetnsError`], [`sockdiag::DiagError`]).

pub mod closes;
pub mod containers;
pub mod netns;
pub mod pods;
pub mod processes;
pub mod procfs;
pub mod replay;
pub mod sockdiag;
pub mod udp;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use thiserror::Error;

use crate::model::{Snapshot, SocketKey, SocketSample, SocketSource, TcpState};
use closes::{CloseGroups, CloseListener};
use procfs::SystemCounters;
use sockdiag::{
    DiagError, DumpRequest, ParseStats, SockDiag, ALL_STATES, EXT_CONG, EXT_INFO, EXT_SKMEMINFO,
    LISTEN_ONLY,
};

/// Why a poll produced no snapshot. Each message includes its cause's text,
/// so none has a `source()` (a chain printed with `{:#}` would repeat it).
#[derive(Debug, Error)]
pub enum SourceError {
    /// sock_diag failed in a way that falling back to /proc/net/tcp would
    /// not cure (unavailability falls back instead).
    #[error("dumping TCP sockets: {0}")]
    Dump(DiagError),
    /// Neither sock_diag nor the /proc/net/tcp{,6} fallback could be read.
    #[error("cannot read {}/tcp or tcp6 either: {err}", .net_dir.display())]
    ProcNet { net_dir: PathBuf, err: io::Error },
    /// `--netns`: the agent of the one namespace selected is gone.
    #[error("the selected network namespace can no longer be sampled")]
    NamespaceGone,
    /// A [`replay::ReplaySource`] was polled past its last recorded poll.
    #[error("the recording has no more polls")]
    RecordingEnded,
}

/// What the pipeline needs from wherever snapshots come from: one
/// namespace polled directly ([`LiveSource`]), one or several through
/// agents ([`netns::NetnsSource`]), or a recording
/// ([`replay::ReplaySource`]).
pub trait SnapshotSource {
    /// One poll of every socket.
    fn snapshot(&mut self) -> Result<Snapshot, SourceError>;

    /// One pass handing each socket to `sink` (false stops it); sources that
    /// cannot stream take a snapshot first.
    fn stream(&mut self, sink: &mut dyn FnMut(&SocketSample) -> bool) -> Result<(), SourceError> {
        for sample in &self.snapshot()?.sockets {
            if !sink(sample) {
                break;
            }
        }
        Ok(())
    }

    /// The MIB counters of what is sampled (keys may carry a namespace
    /// prefix: fold them after taking deltas), and which files could not
    /// be read.
    fn system_counters(&mut self) -> (SystemCounters, Vec<String>);

    /// Notices raised since the last call.
    fn take_notices(&mut self) -> Vec<String>;

    /// Milliseconds since the source was opened.
    fn elapsed_ms(&self) -> u64;

    /// The wall clock when the source was opened (its ms 0), for a live
    /// source; recorded ones have none.
    fn opened_at(&self) -> Option<std::time::SystemTime> {
        None
    }

    /// Hands back a snapshot whose sockets are no longer needed.
    fn recycle(&mut self, _snapshot: Snapshot) {}

    /// Whether the next poll's sockets will be listed with their memory and
    /// congestion control (a report follows it); polls between reports may
    /// leave them out where the options allow.
    fn want_gauges(&mut self, _wanted: bool) {}

    /// Starts keeping the raw datagrams of each poll (--record).
    fn start_recording(&mut self) {}

    /// The raw datagrams recorded since the last call.
    fn take_recording(&mut self) -> Option<Vec<u8>> {
        None
    }

    /// Namespace inode → how reports name it (several namespaces only).
    fn namespace_labels(&self) -> BTreeMap<u64, String> {
        BTreeMap::new()
    }

    /// Namespace inode → container label, where one was found.
    fn container_labels(&self) -> BTreeMap<u64, String> {
        BTreeMap::new()
    }

    /// Whether what is sampled is the host's only network namespace (then
    /// every socket kernel events tell of lives in it).
    fn only_namespace_on_host(&self) -> bool {
        false
    }

    /// The sampled namespace's `net.ipv4.tcp_syn_retries`, where it can be
    /// read (the run's own namespace).
    fn syn_retries(&self) -> Option<u32> {
        None
    }

    /// Reads close notices waiting in the kernel, so its buffer does not
    /// fill between polls (called as often as the loop wakes).
    fn read_closes(&mut self) {}

    /// Close notices lost since the start; None when none are read.
    fn closes_lost(&self) -> Option<crate::model::CloseLoss> {
        None
    }

    /// UDP close notices lost since the start; None when none are read.
    fn udp_closes_lost(&self) -> Option<crate::model::CloseLoss> {
        None
    }
}

/// What the pipeline asks of a source.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// Kernel-side filter program (INET_DIAG_REQ_BYTECODE).
    pub bytecode: Option<Vec<u8>>,
    /// Also dump listeners apart (needed when the main dump is filtered and
    /// new sockets must be told accepted from connected).
    pub listeners_apart: bool,
    /// Where the namespace's /proc/net files are.
    pub net_dir: Option<PathBuf>,
    /// Skip sock_diag and read /proc/net/tcp{,6}.
    pub force_procfs: bool,
    /// Read the kernel's close notices, with this receive buffer (bytes);
    /// None: do not.
    pub close_buffer: Option<usize>,
    /// Ask only for what the counters need: tcp_info, and a listener's
    /// memory info for its drops; no socket's congestion control name or
    /// memory, which only a report listing sockets shows (a poll costs
    /// ~10% less). Without it, polls between reports are lean all the same.
    pub lean_dump: bool,
    /// Also dump UDP and UDP-Lite sockets into each snapshot (`--udp`).
    pub udp: bool,
    /// Dump no TCP socket (`--udp` without `--tcp`).
    pub skip_tcp: bool,
}

pub struct LiveSource {
    diag: Option<SockDiag>,
    options: SourceOptions,
    net_dir: PathBuf,
    started: Instant,
    notices: Vec<String>,
    stats: ParseStats,
    /// Sockets the last poll returned, to size the next one's buffer.
    last_count: Option<usize>,
    /// The last snapshot's storage, reused so that polls do not fault in
    /// fresh pages each time.
    spare: Vec<SocketSample>,
    /// Whether this poll must ask for every socket's memory and congestion
    /// control (see [`SnapshotSource::want_gauges`]).
    gauges_wanted: bool,
    /// Close notices of this namespace, when they can be had.
    closes: Option<CloseListener>,
    /// UDP close notices of this namespace (`--udp`), when they can be had.
    udp_closes: Option<CloseListener>,
    /// The own namespace's label and container, read when first asked.
    own_labels: std::cell::OnceCell<Option<(String, Option<String>)>>,
    /// UDP dump gaps already said (each once per run).
    udp_gaps_said: Vec<String>,
    /// UDP sockets the last poll found: the next poll's room, so that a
    /// big dump is not copied as its vector grows.
    udp_last_count: usize,
}

/// Where a dump's sockets go.
enum Sink<'a> {
    Collect(&'a mut Vec<SocketSample>),
    Stream(&'a mut dyn FnMut(&SocketSample) -> bool),
}

const FALLBACK_NOTICE: &str =
    "sock_diag is unavailable ({reason}); reading /proc/net/tcp and /proc/net/tcp6 instead: \
sockets, states, queues and state-derived counters (opens, fails, resets, CurrEstab) still work; \
bytes, segments, retransmits, TcpExt counters and gauges are unavailable";

impl LiveSource {
    pub fn open(options: SourceOptions) -> LiveSource {
        let net_dir = options
            .net_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/proc/net"));
        let mut source = LiveSource {
            diag: None,
            options,
            net_dir,
            started: Instant::now(),
            notices: Vec::new(),
            stats: ParseStats::default(),
            last_count: None,
            spare: Vec::new(),
            gauges_wanted: true,
            closes: None,
            udp_closes: None,
            own_labels: std::cell::OnceCell::new(),
            udp_gaps_said: Vec::new(),
            udp_last_count: 0,
        };
        if source.options.force_procfs {
            source.notices.push(
                FALLBACK_NOTICE.replace("sock_diag is unavailable ({reason})", "--source proc"),
            );
            return source;
        }
        match SockDiag::open() {
            Ok(diag) => source.diag = Some(diag),
            Err(err) => source.fall_back(&err),
        }
        if let (Some(bytes), Some(_)) = (source.options.close_buffer, &source.diag) {
            if !source.options.skip_tcp {
                source.closes = source.open_closes(bytes, CloseGroups::Tcp);
            }
            if source.options.udp {
                source.udp_closes = source.open_closes(bytes, CloseGroups::Udp);
            }
        }
        source
    }

    fn open_closes(&mut self, buffer_bytes: usize, which: CloseGroups) -> Option<CloseListener> {
        match CloseListener::open(buffer_bytes, which) {
            Ok(listener) => Some(listener),
            Err(err) => {
                self.notices.push(match which {
                    CloseGroups::Tcp => format!(
                        "close notices unavailable ({err}): a connection that opens and closes between two polls is seen only through its TIME_WAIT"
                    ),
                    CloseGroups::Udp => format!(
                        "UDP close notices unavailable ({err}): a UDP socket that opens and closes between two polls is not seen"
                    ),
                });
                None
            }
        }
    }

    fn fall_back(&mut self, err: &DiagError) {
        self.diag = None;
        let reason = match err {
            DiagError::Unavailable(io) => io.to_string(),
            other => other.to_string(),
        };
        self.notices
            .push(FALLBACK_NOTICE.replace("{reason}", &reason));
    }

    fn poll(&mut self) -> Result<Snapshot, SourceError> {
        let mut snapshot = self.poll_tcp()?;
        if self.options.udp {
            let (sockets, dumped) = self.poll_udp();
            snapshot.udp = sockets;
            // Read after the dump: a notice of a socket it saw comes after
            // its sample, and one read earlier is of a socket no later
            // dump can see (it is unhashed before it is destroyed).
            if let Some(closes) = &mut self.udp_closes {
                let closed = closes.take();
                // /proc's sockets have no cookie to match a notice with.
                if dumped {
                    snapshot.udp_closed = closed.iter().map(udp::from_notice).collect();
                    snapshot.udp_closes_watched = true;
                }
            }
        }
        Ok(snapshot)
    }

    /// This poll's UDP and UDP-Lite sockets: sock_diag, else (or where it
    /// cannot dump UDP) /proc/net/udp{,6}, udplite{,6}; and whether
    /// sock_diag dumped them.
    fn poll_udp(&mut self) -> (Vec<crate::model::udp::UdpSample>, bool) {
        let (sockets, dumped) = self.poll_udp_sockets();
        self.udp_last_count = sockets.len();
        (sockets, dumped)
    }

    fn poll_udp_sockets(&mut self) -> (Vec<crate::model::udp::UdpSample>, bool) {
        let mut out = Vec::with_capacity(self.udp_last_count + self.udp_last_count / 8);
        if let Some(diag) = self.diag.as_mut() {
            let bytecode = self.options.bytecode.as_deref();
            let before = self.stats;
            match udp::dump(diag, bytecode, &mut self.stats, &mut out) {
                // IPv4 UDP dumped: whatever else is missing is said once.
                Ok(gaps) if !gaps.unavailable.iter().any(|g| g.starts_with("Udp ")) => {
                    self.note_damage(&before);
                    for gap in gaps.unavailable {
                        let what = gap.split(' ').next().unwrap_or_default().to_string();
                        if !self.udp_gaps_said.contains(&what) {
                            self.notices.push(format!(
                                "sock_diag cannot dump {gap}: those sockets are not reported"
                            ));
                            self.udp_gaps_said.push(what);
                        }
                    }
                    return (out, true);
                }
                Ok(gaps) => self.say_udp_fallback(&gaps.unavailable.join(", ")),
                Err(err) => self.say_udp_fallback(&err.to_string()),
            }
            out.clear();
        }
        if let Err(err) = udp::read_proc_net_udp(&self.net_dir, &mut out) {
            self.notices.push(format!(
                "cannot read {}/udp: {err}; no UDP socket is reported",
                self.net_dir.display()
            ));
        }
        (out, false)
    }

    fn say_udp_fallback(&mut self, why: &str) {
        if !self.udp_gaps_said.iter().any(|s| s == "fallback") {
            self.udp_gaps_said.push("fallback".to_string());
            self.notices.push(format!(
                "sock_diag cannot dump UDP sockets ({why}); reading /proc/net/udp instead: drops and queues still work, buffer sizes are unavailable"
            ));
        }
    }

    fn poll_tcp(&mut self) -> Result<Snapshot, SourceError> {
        let taken_at_ms = self.started.elapsed().as_millis() as u64;
        if self.diag.is_some() {
            let before = self.stats;
            match self.dump_all() {
                Ok(snapshot) => {
                    self.note_damage(&before);
                    let (closed, closes_watched) = match &mut self.closes {
                        Some(closes) => (closes.take(), true),
                        None => (Vec::new(), false),
                    };
                    let closes_read_ms = closes_watched.then(|| self.elapsed_ms());
                    return Ok(Snapshot {
                        taken_at_ms,
                        closed,
                        closes_read_ms,
                        closes_watched,
                        ..snapshot
                    });
                }
                Err(err @ DiagError::Unavailable(_)) => self.fall_back(&err),
                Err(err) => return Err(SourceError::Dump(err)),
            }
        }
        let sockets = if self.options.skip_tcp {
            Vec::new()
        } else {
            procfs::read_proc_net_tcp(&self.net_dir).map_err(|err| SourceError::ProcNet {
                net_dir: self.net_dir.clone(),
                err,
            })?
        };
        Ok(Snapshot::new(
            taken_at_ms,
            SocketSource::ProcNetTcp,
            sockets,
        ))
    }

    /// Says once per poll what the kernel's answer lacked, if anything.
    fn note_damage(&mut self, before: &ParseStats) {
        let malformed = self.stats.malformed - before.malformed;
        if malformed > 0 {
            self.notices.push(format!(
                "{malformed} malformed sock_diag message(s) skipped in this poll; the rest is reported"
            ));
        }
        let inconsistent = self.stats.inconsistent - before.inconsistent;
        if inconsistent > 0 {
            self.notices.push(format!(
                "{inconsistent} socket dump(s) stayed inconsistent (NLM_F_DUMP_INTR) after retries: a socket may be missing or doubled in this poll"
            ));
        }
    }

    fn dump_all(&mut self) -> Result<Snapshot, DiagError> {
        // Sized up front: growing a Vec of ~350-byte samples copies them all.
        let expected = match self.last_count {
            Some(n) => n + n / 8,
            None if self.options.bytecode.is_none() => {
                procfs::tcp_sockets_in_use(&self.net_dir).unwrap_or(0)
            }
            None => 0,
        };
        let mut sockets = std::mem::take(&mut self.spare);
        sockets.clear();
        sockets.reserve(expected + 16);
        let listeners = self.dump_families(&mut Sink::Collect(&mut sockets))?;
        self.last_count = Some(sockets.len());
        let mut snapshot = Snapshot::new(0, SocketSource::SockDiag, sockets);
        snapshot.listeners = listeners;
        Ok(snapshot)
    }

    /// One pass over every socket, handing each to `sink` and keeping none
    /// (`--once`: flat memory). `sink` returns false to stop.
    fn stream_sockets(
        &mut self,
        sink: &mut dyn FnMut(&SocketSample) -> bool,
    ) -> Result<(), SourceError> {
        if self.diag.is_some() {
            let before = self.stats;
            match self.dump_families(&mut Sink::Stream(sink)) {
                Ok(_) => {
                    self.note_damage(&before);
                    return Ok(());
                }
                Err(err @ DiagError::Unavailable(_)) => self.fall_back(&err),
                Err(err) => return Err(SourceError::Dump(err)),
            }
        }
        for sample in &self.poll()?.sockets {
            if !sink(sample) {
                break;
            }
        }
        Ok(())
    }

    /// Dumps IPv4 then IPv6 into `sink`; returns the listeners dumped apart.
    fn dump_families(&mut self, sink: &mut Sink<'_>) -> Result<Vec<SocketKey>, DiagError> {
        let mut listeners = Vec::new();
        if self.options.skip_tcp {
            return Ok(listeners);
        }
        // With close notices, a TIME_WAIT socket tells nothing a notice has
        // not told: it is not asked for.
        let states = if self.closes.is_some() {
            ALL_STATES & !(1 << TcpState::TimeWait as u32)
        } else {
            ALL_STATES
        };
        // A lean dump asks for listeners apart: the kernel walks only its
        // listening table for them, and only its established one for the rest.
        let parts = if self.options.lean_dump || !self.gauges_wanted {
            vec![
                (states & LISTEN_ONLY, EXT_INFO | EXT_SKMEMINFO),
                (states & !LISTEN_ONLY, EXT_INFO),
            ]
        } else {
            vec![(states, EXT_INFO | EXT_CONG | EXT_SKMEMINFO)]
        };
        for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
            for &(states, extensions) in &parts {
                if !self.dump_part(family, states, extensions, sink)? {
                    return Ok(listeners);
                }
            }
            if self.options.listeners_apart && self.options.bytecode.is_some() {
                let request = DumpRequest {
                    family,
                    states: LISTEN_ONLY,
                    extensions: 0,
                    bytecode: None,
                };
                let mut found = Vec::new();
                let diag = self.diag.as_mut().expect("checked by caller");
                diag.dump(&request, &mut found, &mut self.stats)?;
                listeners.extend(found.into_iter().map(|s| s.key));
            }
        }
        Ok(listeners)
    }

    /// One dump request of one family into `sink`; false when no more is
    /// wanted (the consumer is done, or the family cannot be dumped).
    fn dump_part(
        &mut self,
        family: u8,
        states: u32,
        extensions: u8,
        sink: &mut Sink<'_>,
    ) -> Result<bool, DiagError> {
        let mut request = DumpRequest {
            family,
            states,
            extensions,
            bytecode: self.options.bytecode.clone(),
        };
        loop {
            let diag = self.diag.as_mut().expect("checked by caller");
            let result = match sink {
                Sink::Collect(out) => diag.dump(&request, out, &mut self.stats).map(|()| true),
                Sink::Stream(f) => diag.dump_streaming(&request, &mut self.stats, &mut **f),
            };
            match result {
                Ok(true) => return Ok(true),
                // The consumer is done (its output closed): no more.
                Ok(false) => return Ok(false),
                // Rejected at once, before any socket: retry unfiltered;
                // the user-space filter still applies, only speed is lost.
                Err(DiagError::Rejected(err)) if request.bytecode.is_some() => {
                    self.notices.push(format!(
                        "the kernel rejected the filter bytecode ({err}); filtering in user space"
                    ));
                    self.options.bytecode = None;
                    request.bytecode = None;
                }
                Err(DiagError::Unavailable(err)) if family == libc::AF_INET6 as u8 => {
                    self.notices.push(format!(
                        "IPv6 sockets cannot be dumped ({err}); reporting IPv4 sockets only"
                    ));
                    return Ok(false);
                }
                Err(err) => return Err(err),
            }
        }
    }
}

impl LiveSource {
    /// The own namespace's labels, when that is what is sampled (sockets
    /// carry namespace 0 then: the inode is not asked of the kernel).
    fn own_labels(&self) -> Option<&(String, Option<String>)> {
        if self.options.net_dir.is_some() {
            return None;
        }
        self.own_labels.get_or_init(netns::own_labels).as_ref()
    }
}

impl SnapshotSource for LiveSource {
    fn namespace_labels(&self) -> BTreeMap<u64, String> {
        self.own_labels()
            .map(|(label, _)| BTreeMap::from([(0, label.clone())]))
            .unwrap_or_default()
    }

    fn container_labels(&self) -> BTreeMap<u64, String> {
        self.own_labels()
            .and_then(|(_, container)| Some(BTreeMap::from([(0, container.clone()?)])))
            .unwrap_or_default()
    }

    fn read_closes(&mut self) {
        for closes in [&mut self.closes, &mut self.udp_closes]
            .into_iter()
            .flatten()
        {
            closes.drain();
        }
    }

    fn closes_lost(&self) -> Option<crate::model::CloseLoss> {
        self.closes.as_ref().map(CloseListener::loss)
    }

    fn udp_closes_lost(&self) -> Option<crate::model::CloseLoss> {
        self.udp_closes.as_ref().map(CloseListener::loss)
    }

    fn only_namespace_on_host(&self) -> bool {
        let (found, unreadable) = netns::discover();
        found.len() <= 1 && unreadable.is_empty()
    }

    fn syn_retries(&self) -> Option<u32> {
        // /proc/sys/net is the reader's namespace: the sampled one unless
        // another's /proc/PID/net is read.
        if self.options.net_dir.is_some() {
            return None;
        }
        procfs::sysctl_u32(Path::new("/proc/sys/net/ipv4/tcp_syn_retries"))
    }

    fn snapshot(&mut self) -> Result<Snapshot, SourceError> {
        self.poll()
    }

    fn stream(&mut self, sink: &mut dyn FnMut(&SocketSample) -> bool) -> Result<(), SourceError> {
        self.stream_sockets(sink)
    }

    fn system_counters(&mut self) -> (SystemCounters, Vec<String>) {
        procfs::read_system_counters(&self.net_dir)
    }

    fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    fn opened_at(&self) -> Option<std::time::SystemTime> {
        std::time::SystemTime::now().checked_sub(self.started.elapsed())
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn recycle(&mut self, snapshot: Snapshot) {
        self.spare = snapshot.sockets;
    }

    fn want_gauges(&mut self, wanted: bool) {
        self.gauges_wanted = wanted;
    }

    fn start_recording(&mut self) {
        if let Some(diag) = self.diag.as_mut() {
            diag.recording = Some(Vec::new());
        }
    }

    fn take_recording(&mut self) -> Option<Vec<u8>> {
        let diag = self.diag.as_mut()?;
        let taken = diag.recording.take();
        if taken.is_some() {
            diag.recording = Some(Vec::new());
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_their_cause_once() {
        let err = SourceError::Dump(DiagError::Io(io::Error::from_raw_os_error(libc::EBADF)));
        let text = err.to_string();
        assert!(
            text.starts_with("dumping TCP sockets: sock_diag I/O failed: "),
            "{text}"
        );
        assert!(std::error::Error::source(&err).is_none());
        assert_eq!(
            SourceError::NamespaceGone.to_string(),
            "the selected network namespace can no longer be sampled"
        );
    }

    #[test]
    fn a_source_of_the_own_namespace_labels_namespace_0_with_the_real_inode() {
        let own = LiveSource::open(SourceOptions {
            force_procfs: true,
            ..SourceOptions::default()
        });
        let labels = own.namespace_labels();
        let label = labels.get(&0).expect("namespace 0 labelled");
        assert!(!label.contains("[0]"), "{label}");
        // Another namespace's files: its labels are its NetnsSource's.
        let other = LiveSource::open(SourceOptions {
            net_dir: Some(PathBuf::from("/proc/1/net")),
            force_procfs: true,
            ..SourceOptions::default()
        });
        assert!(other.namespace_labels().is_empty());
    }

    #[test]
    fn unreadable_proc_net_names_the_directory() {
        let mut source = LiveSource::open(SourceOptions {
            net_dir: Some(PathBuf::from("/nonexistent-tcpipstat")),
            force_procfs: true,
            ..SourceOptions::default()
        });
        let err = source.snapshot().unwrap_err();
        assert!(matches!(err, SourceError::ProcNet { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent-tcpipstat/tcp or tcp6 either: "),
            "{err}"
        );
    }
}
