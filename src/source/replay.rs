//! Snapshots from recorded sock_diag datagrams (`--record`, testdata/): the
//! same parser as a live poll, fed from bytes instead of a socket, so tests
//! can drive the whole pipeline with what a real kernel once said; and
//! [`ReplaySource`], a snapshot source over such (or built) snapshots.

use std::path::Path;

use crate::model::{Snapshot, SocketSource};
use crate::source::procfs::SystemCounters;
use crate::source::sockdiag::{parse_datagram, DatagramEnd, ParseStats};
use crate::source::{SnapshotSource, SourceError};

/// Parses every netlink message in `recording` (datagrams back to back, as
/// `--record` writes them, any sequence numbers).
pub fn snapshot_from_recording(recording: &[u8], taken_at_ms: u64) -> (Snapshot, ParseStats) {
    let mut sockets = Vec::new();
    let mut stats = ParseStats::default();
    let mut interrupted = false;
    // DONE ends one family's dump; the next family's messages follow.
    let mut rest = recording;
    while !rest.is_empty() {
        let before = rest.len();
        let end = parse_datagram(rest, None, &mut sockets, &mut stats, &mut interrupted);
        rest = match end {
            DatagramEnd::Done | DatagramEnd::Error(_) => skip_first_terminator(rest),
            DatagramEnd::More => &[],
        };
        if rest.len() == before {
            break;
        }
    }
    (
        Snapshot::new(taken_at_ms, SocketSource::SockDiag, sockets),
        stats,
    )
}

/// The bytes after the first DONE or ERROR message.
fn skip_first_terminator(data: &[u8]) -> &[u8] {
    let mut offset = 0;
    while offset + 16 <= data.len() {
        let len = u32::from_ne_bytes(data[offset..offset + 4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes([data[offset + 4], data[offset + 5]]);
        if len < 16 {
            return &[];
        }
        offset = (offset + len + 3) & !3;
        if kind == 2 || kind == 3 {
            return data.get(offset..).unwrap_or(&[]);
        }
    }
    &[]
}

/// Reads `poll-NNNN.nl` files of a recording directory in order.
pub fn read_recording_dir(dir: &Path, poll_ms: u64) -> std::io::Result<Vec<Snapshot>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("poll-") && n.ends_with(".nl"))
        })
        .collect();
    files.sort();
    files
        .iter()
        .enumerate()
        .map(|(i, path)| Ok(snapshot_from_recording(&std::fs::read(path)?, i as u64 * poll_ms).0))
        .collect()
}

/// Recorded snapshots handed out in order, with the namespace counters of
/// each poll where given: a session runs on it exactly as on a live
/// namespace, without a kernel.
#[derive(Debug, Default)]
pub struct ReplaySource {
    snapshots: std::collections::VecDeque<Snapshot>,
    system: std::collections::VecDeque<SystemCounters>,
    elapsed_ms: u64,
    notices: Vec<String>,
    /// Close notices lost by the end of each poll, in poll order (None:
    /// notices are not read).
    closes_lost: std::collections::VecDeque<crate::model::CloseLoss>,
    closes_lost_now: Option<crate::model::CloseLoss>,
}

impl ReplaySource {
    pub fn new(snapshots: Vec<Snapshot>) -> ReplaySource {
        ReplaySource {
            snapshots: snapshots.into(),
            ..ReplaySource::default()
        }
    }

    /// The `poll-NNNN.nl` files of a recording directory, `poll_ms` apart.
    pub fn from_dir(dir: &Path, poll_ms: u64) -> std::io::Result<ReplaySource> {
        Ok(ReplaySource::new(read_recording_dir(dir, poll_ms)?))
    }

    /// The namespace counters read at each poll's start (--system), in
    /// poll order.
    pub fn with_system_counters(mut self, per_poll: Vec<SystemCounters>) -> ReplaySource {
        self.system = per_poll.into();
        self
    }

    /// The close notices lost since the start as of each poll, in poll
    /// order.
    pub fn with_closes_lost(mut self, per_poll: Vec<crate::model::CloseLoss>) -> ReplaySource {
        self.closes_lost = per_poll.into();
        self
    }
}

impl SnapshotSource for ReplaySource {
    fn snapshot(&mut self) -> Result<Snapshot, SourceError> {
        let snapshot = self
            .snapshots
            .pop_front()
            .ok_or(SourceError::RecordingEnded)?;
        self.elapsed_ms = snapshot.taken_at_ms;
        if let Some(lost) = self.closes_lost.pop_front() {
            self.closes_lost_now = Some(lost);
        }
        Ok(snapshot)
    }

    fn closes_lost(&self) -> Option<crate::model::CloseLoss> {
        self.closes_lost_now
    }

    fn system_counters(&mut self) -> (SystemCounters, Vec<String>) {
        match self.system.pop_front() {
            Some(counters) => (counters, Vec::new()),
            None => (SystemCounters::default(), vec!["the recording".to_string()]),
        }
    }

    fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    fn elapsed_ms(&self) -> u64 {
        self.elapsed_ms
    }

    fn only_namespace_on_host(&self) -> bool {
        true
    }
}
