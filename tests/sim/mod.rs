//! A model of socket lives as the kernel would show them to the polling
//! path: each generated life (how it opened, how it closed, bytes each way,
//! its times) becomes the samples sock_diag dumps would list at given
//! instants, the close notice the destroy groups would deliver (late, or
//! lost), and the MIB counts the namespace would make.
//!
//! Kernel facts the model follows (Linux 6.x, `net/ipv4/tcp*.c`):
//! - ActiveOpens counts in `tcp_connect` (the first SYN), PassiveOpens in
//!   `tcp_create_openreq_child` (the third ACK made the child).
//! - AttemptFails counts in `tcp_done` from SYN_SENT (a reset answered, or
//!   the SYN timer gave up); an application's close of a connecting socket
//!   counts none.
//! - EstabResets counts in `tcp_set_state(TCP_CLOSE)` from ESTABLISHED or
//!   CLOSE_WAIT: a received reset, or our SO_LINGER 0 close.
//! - `tcp_disconnect` (SO_LINGER 0 close, a failed blocking `connect()`)
//!   clears the counters and the peer port; `snd_wnd` stays (0 if no
//!   SYN-ACK came).
//! - `bytes_acked` counts an active opener's SYN and our FIN once
//!   acknowledged; `bytes_received` counts the peer's FIN; `bytes_sent`
//!   counts retransmitted bytes too.
//! - A notice is sent when the full socket is freed: an orphan (closed by
//!   its application) at once when it reaches CLOSE, TIME_WAIT or FIN_WAIT2
//!   (it becomes a timewait socket then); a socket its application still
//!   holds when the application closes it. Timewait and request sockets
//!   get none. With notices read, TIME_WAIT is not dumped; a full socket in
//!   CLOSE is unhashed and not dumped either.
//!
//! Time is counted in ticks of half a millisecond: life events fall on even
//! ticks and polls on odd ones, so nothing happens at a poll's instant.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use tcpipstat::counters::Counter;
use tcpipstat::diff::NOTICE_CLOCK_SLACK_MS;
use tcpipstat::model::tcp_info::TcpInfo;
use tcpipstat::model::{Snapshot, SocketKey, SocketSample, SocketSource, TcpState};

pub mod events;

pub type Tick = i64;

/// The namespace's `net.ipv4.tcp_syn_retries` (the kernel default).
pub const SYN_RETRIES: u32 = 6;
/// Namespace inodes: lives are in the first, their twins in the second.
pub const NETNS: [u64; 2] = [4_026_532_001, 4_026_532_002];
/// Polls after the last life event, so that every notice, however late,
/// is read before the window ends.
const DRAIN_POLLS: usize = 3;
const MSS: u64 = 1000;
const PEER_WINDOW: u32 = 65535;

fn ms(value: impl Into<i64>) -> Tick {
    2 * value.into()
}

/// How a life began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// `connect()` answered by a SYN-ACK.
    Connect,
    /// Accepted from a listener that opened `lead_ms` before the SYN came
    /// and closed `tail_ms` after the child was made (so it may live less
    /// than a poll).
    Accept { lead_ms: u16, tail_ms: u16 },
    /// A reset answered the SYN (after `syns_again` SYNs sent again); a
    /// blocking `connect()` then runs `tcp_disconnect`.
    Refused { blocking: bool, syns_again: u8 },
    /// No answer: the kernel gave up after `SYN_RETRIES` SYNs sent again.
    GaveUp { blocking: bool },
    /// No answer yet when the application closed it (`syns_again` <
    /// `SYN_RETRIES`), with SO_LINGER 0 or not.
    Abandoned { syns_again: u8, linger_zero: bool },
}

/// How an established life ended (a failed open decides its own end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// We closed first; the peer's FIN came with the ACK of ours (TIME_WAIT)
    /// or later (the orphan became a FIN_WAIT2 timewait socket first).
    OursFirst { peer_fin_with_ack: bool },
    /// The peer's FIN came first (CLOSE_WAIT, then LAST_ACK).
    PeerFirst,
    /// `shutdown(SHUT_WR)` first, `close()` after the peer's FIN.
    ShutdownFirst,
    /// SO_LINGER 0 close, from ESTABLISHED or from CLOSE_WAIT.
    Abort { after_peer_fin: bool },
    /// The peer's reset; the application closes it later.
    ResetByPeer,
    /// Still open when the run ends.
    StillOpen,
}

/// How a notice reaches the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Read by the poll whose dump was running when the socket was
    /// destroyed (that dump listed it still).
    DuringDump,
    /// Read this many polls after the first poll that follows the destroy.
    Late(u8),
    /// Dropped (a full receive buffer): the source counts it lost.
    Lost,
}

/// One generated life, all durations in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct LifeSpec {
    pub open: Open,
    pub close: Close,
    /// When its SYN was sent or came, from the first poll (may be before).
    pub start_ms: i16,
    pub handshake_ms: u16,
    pub established_ms: u16,
    pub closing_ms: u16,
    /// From the moment the application could close it to its `close()`.
    pub app_ms: u16,
    pub sent: u32,
    pub received: u32,
    pub retransmitted: u32,
    pub notice: Delivery,
    /// How its listener's notice is read (accepted lives).
    pub listener_notice: Delivery,
    pub v6: bool,
    /// Also lives, identically, in the second namespace.
    pub twin: bool,
    /// Reuses the tuple of an earlier life (this index modulo its own),
    /// after that one ended.
    pub reuse: Option<u8>,
    /// A dump that listed its full socket was still filling its message
    /// when the kernel destroyed it: the dump shows it in CLOSE, with its
    /// final counters and local port 0 (`inet_put_port` zeroes the
    /// `sk_num` the dump reports).
    pub dump_races_destroy: bool,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub lives: Vec<LifeSpec>,
    /// Gaps between the polls, the first poll at 0 (ms).
    pub poll_gaps_ms: Vec<u16>,
}

/// A state a dump would list, from `from` to `to` (exclusive).
#[derive(Debug, Clone, Copy)]
struct Phase {
    from: Tick,
    to: Tick,
    state: TcpState,
    /// Its application closed it: an orphan (inode 0).
    orphan: bool,
}

/// A generated life laid out in time.
#[derive(Debug, Clone)]
pub struct Life {
    pub spec_index: usize,
    pub netns: u64,
    pub key: SocketKey,
    pub cookie: u64,
    pub passive: bool,
    pub listener: Option<usize>,
    pub spec: LifeSpec,
    /// Its SYN was sent or came.
    start: Tick,
    request: Option<(Tick, Tick)>,
    phases: Vec<Phase>,
    established: Option<Tick>,
    /// Data flows evenly from `established` to here.
    data_end: Tick,
    syns_again: Vec<Tick>,
    our_fin_acked: Option<Tick>,
    /// The peer's FIN reached the full socket after its application let
    /// go of it: it stays unread in the receive queue the notice reports.
    fin_unread: bool,
    peer_fin: Option<Tick>,
    reset_in: Option<Tick>,
    /// `tcp_disconnect` ran here.
    cleared_at: Option<Tick>,
    pub destroyed: Option<Tick>,
    /// The MIB's state counts, when they happened.
    mib: Vec<(Tick, Counter)>,
}

#[derive(Debug, Clone)]
pub struct Listener {
    pub netns: u64,
    pub key: SocketKey,
    pub cookie: u64,
    pub opened: Tick,
    pub closed: Tick,
    pub notice: Delivery,
}

/// Everything the sources show, and what the kernel counted.
#[derive(Debug, Clone)]
pub struct World {
    pub lives: Vec<Life>,
    pub listeners: Vec<Listener>,
    pub polls: Vec<Tick>,
}

fn linear(total: u64, from: Tick, to: Tick, at: Tick) -> u64 {
    if at < from {
        0
    } else if at >= to {
        total
    } else {
        total * (at - from) as u64 / (to - from) as u64
    }
}

fn before(at: Option<Tick>, t: Tick) -> bool {
    at.is_some_and(|at| at <= t)
}

impl Life {
    fn lay_out(spec_index: usize, spec: LifeSpec, start: Tick, key: SocketKey) -> Life {
        let passive = matches!(spec.open, Open::Accept { .. });
        let mut life = Life {
            spec_index,
            netns: key.netns,
            key,
            cookie: 0,
            passive,
            listener: None,
            spec,
            start,
            request: None,
            phases: Vec::new(),
            established: None,
            data_end: start,
            syns_again: Vec::new(),
            our_fin_acked: None,
            fin_unread: false,
            peer_fin: None,
            reset_in: None,
            cleared_at: None,
            destroyed: None,
            mib: Vec::new(),
        };
        let handshake_end = start + ms(spec.handshake_ms);
        let app = ms(spec.app_ms);
        let phase = |life: &mut Life, from: Tick, to: Tick, state, orphan| {
            life.phases.push(Phase {
                from,
                to,
                state,
                orphan,
            })
        };
        let spread_syns = |count: u8| -> Vec<Tick> {
            // SYNs sent again at even ticks strictly inside the handshake.
            (1..=i64::from(count))
                .map(|i| start + 2 * ((handshake_end - start) / 2 * i / (i64::from(count) + 1)))
                .collect()
        };
        match spec.open {
            Open::Connect | Open::Accept { .. } => {
                if passive {
                    life.request = Some((start, handshake_end));
                    life.mib.push((handshake_end, Counter::PassiveOpens));
                } else {
                    life.mib.push((start, Counter::ActiveOpens));
                    phase(&mut life, start, handshake_end, TcpState::SynSent, false);
                }
                life.established = Some(handshake_end);
                let closing_from = handshake_end + ms(spec.established_ms);
                life.data_end = closing_from;
                let closing = ms(spec.closing_ms);
                let est = TcpState::Established;
                match spec.close {
                    Close::OursFirst { peer_fin_with_ack } => {
                        phase(&mut life, handshake_end, closing_from, est, false);
                        let acked = closing_from + closing;
                        phase(&mut life, closing_from, acked, TcpState::FinWait1, true);
                        life.our_fin_acked = Some(acked);
                        if peer_fin_with_ack {
                            life.peer_fin = Some(acked);
                            life.fin_unread = true;
                        }
                        life.destroyed = Some(acked);
                    }
                    Close::PeerFirst => {
                        phase(&mut life, handshake_end, closing_from, est, false);
                        life.peer_fin = Some(closing_from);
                        let app_close = closing_from + app;
                        phase(
                            &mut life,
                            closing_from,
                            app_close,
                            TcpState::CloseWait,
                            false,
                        );
                        let acked = app_close + closing;
                        phase(&mut life, app_close, acked, TcpState::LastAck, true);
                        life.our_fin_acked = Some(acked);
                        life.destroyed = Some(acked);
                    }
                    Close::ShutdownFirst => {
                        phase(&mut life, handshake_end, closing_from, est, false);
                        let acked = closing_from + closing;
                        phase(&mut life, closing_from, acked, TcpState::FinWait1, false);
                        life.our_fin_acked = Some(acked);
                        let peer_fin = acked + app;
                        phase(&mut life, acked, peer_fin, TcpState::FinWait2, false);
                        life.peer_fin = Some(peer_fin);
                        // TIME_WAIT: undumped, the full socket held until close().
                        life.destroyed = Some(peer_fin + app);
                    }
                    Close::Abort { after_peer_fin } => {
                        phase(&mut life, handshake_end, closing_from, est, false);
                        let mut abort = closing_from;
                        if after_peer_fin {
                            life.peer_fin = Some(closing_from);
                            abort = closing_from + app;
                            phase(&mut life, closing_from, abort, TcpState::CloseWait, false);
                        }
                        life.mib.push((abort, Counter::EstabResets));
                        // Its close sends the reset (the one reset any
                        // life sends: a refused SYN's is no socket's).
                        life.mib.push((abort, Counter::OutRsts));
                        life.cleared_at = Some(abort);
                        life.destroyed = Some(abort);
                    }
                    Close::ResetByPeer => {
                        phase(&mut life, handshake_end, closing_from, est, false);
                        life.mib.push((closing_from, Counter::EstabResets));
                        life.reset_in = Some(closing_from);
                        life.destroyed = Some(closing_from + app);
                    }
                    Close::StillOpen => {
                        phase(&mut life, handshake_end, Tick::MAX, est, false);
                    }
                }
            }
            Open::Refused {
                blocking,
                syns_again,
            } => {
                life.mib.push((start, Counter::ActiveOpens));
                life.syns_again = spread_syns(syns_again);
                phase(&mut life, start, handshake_end, TcpState::SynSent, false);
                life.reset_in = Some(handshake_end);
                life.mib.push((handshake_end, Counter::AttemptFails));
                if blocking {
                    life.cleared_at = Some(handshake_end);
                }
                life.destroyed = Some(handshake_end + app);
            }
            Open::GaveUp { blocking } => {
                life.mib.push((start, Counter::ActiveOpens));
                life.syns_again = spread_syns(SYN_RETRIES as u8);
                phase(&mut life, start, handshake_end, TcpState::SynSent, false);
                life.mib.push((handshake_end, Counter::AttemptFails));
                if blocking {
                    life.cleared_at = Some(handshake_end);
                }
                life.destroyed = Some(handshake_end + app);
            }
            Open::Abandoned {
                syns_again,
                linger_zero,
            } => {
                life.mib.push((start, Counter::ActiveOpens));
                life.syns_again = spread_syns(syns_again);
                phase(&mut life, start, handshake_end, TcpState::SynSent, false);
                if linger_zero {
                    life.cleared_at = Some(handshake_end);
                }
                life.destroyed = Some(handshake_end);
            }
        }
        life.phases.retain(|p| p.from < p.to);
        life
    }

    fn data(&self, total: u64, at: Tick) -> u64 {
        match self.established {
            Some(from) => linear(total, from, self.data_end, at),
            None => 0,
        }
    }

    /// Bytes it put on the wire by `at` (retransmitted ones too), as the
    /// kernel keeps them, whatever clearing a notice shows.
    pub fn bytes_sent(&self, at: Tick) -> u64 {
        let total = u64::from(self.spec.sent) + u64::from(self.spec.retransmitted);
        self.data(total, at)
    }

    /// When each data segment is sent again (one a MSS of retransmitted
    /// bytes, as they go out): on even ticks, as every life event, its
    /// `total_retrans` and its retransmit event counting it at once.
    pub fn retransmit_ticks(&self) -> impl Iterator<Item = Tick> + '_ {
        let total = u64::from(self.spec.retransmitted);
        let span = self.established.map(|from| (from, self.data_end));
        (0..total.div_ceil(MSS)).filter_map(move |k| {
            let (from, to) = span?;
            let length = (to - from) as u64;
            // The first offset where `data` shows more than k segments' bytes.
            let offset = if length == 0 {
                0
            } else {
                ((k * MSS + 1) * length).div_ceil(total) as Tick
            };
            let at = from + offset;
            Some(at + at.rem_euclid(2))
        })
    }

    /// When each segment is sent again, SYNs and data: what RetransSegs
    /// counts.
    pub fn sent_again_ticks(&self) -> impl Iterator<Item = Tick> + '_ {
        self.syns_again
            .iter()
            .copied()
            .chain(self.retransmit_ticks())
    }

    /// Data bytes it received by `at` (no FIN).
    pub fn bytes_received(&self, at: Tick) -> u64 {
        self.data(u64::from(self.spec.received), at)
    }

    /// Its tcp_info at `at` (which its counters had then), in `state`.
    fn tcp_info(&self, at: Tick, state: TcpState) -> TcpInfo {
        let established = before(self.established, at);
        let sent = self.bytes_sent(at);
        let retrans = self.data(u64::from(self.spec.retransmitted), at);
        let payload = self.data(u64::from(self.spec.sent), at);
        let received = self.bytes_received(at);
        let syns_again = self.syns_again.iter().filter(|t| **t <= at).count() as u64;
        let our_fin = u64::from(before(self.our_fin_acked, at));
        let peer_fin = u64::from(before(self.peer_fin, at));
        let reset_in = u64::from(before(self.reset_in, at));
        let active_syn = u64::from(!self.passive);
        let acked = u64::from(established) * active_syn + payload + our_fin;
        let data_again = self.retransmit_ticks().filter(|t| *t <= at).count() as u64;
        let total_retrans = syns_again + data_again;
        // Segments sent again count in segs_out as in total_retrans, so
        // that the MIB's OutSegs (their difference) never goes back.
        let segs_out = active_syn * (1 + u64::from(established))
            + total_retrans
            + payload.div_ceil(MSS)
            + received.div_ceil(2 * MSS)
            + our_fin
            + peer_fin;
        let handshake_in = if self.passive {
            2
        } else {
            u64::from(established)
        };
        let segs_in = handshake_in
            + received.div_ceil(MSS)
            + payload.div_ceil(2 * MSS)
            + peer_fin
            + our_fin
            + reset_in;
        let snd_wnd = if established { PEER_WINDOW } else { 0 };
        // Its SYN (or SYN-ACK) delivered, then each data segment and FIN.
        let delivered = match established {
            true => 1 + payload.div_ceil(MSS) + our_fin,
            false => 0,
        };
        info(&InfoFields {
            state,
            bytes_acked: acked,
            bytes_received: received + peer_fin,
            bytes_sent: sent,
            bytes_retrans: retrans,
            segs_out: segs_out as u32,
            segs_in: segs_in as u32,
            total_retrans: total_retrans as u32,
            snd_wnd,
            delivered: delivered as u32,
            last_data_sent_ms: self.since_data_sent_ms(at),
        })
    }

    /// tcp_info's `last_data_sent` at `at`: ms since `lsndtime`, which
    /// the kernel sets as the socket establishes and as each data segment
    /// leaves. Never established: a fresh socket's 0, that is the time
    /// since boot (long before anything here).
    fn since_data_sent_ms(&self, at: Tick) -> u32 {
        let Some(established) = self.established.filter(|e| *e <= at) else {
            return (at / 2 + 3_600_000) as u32;
        };
        let sends = self.spec.sent > 0 || self.spec.retransmitted > 0;
        let last_sent = match sends {
            true => at.min(self.data_end).max(established),
            false => established,
        };
        ((at - last_sent) / 2) as u32
    }

    /// What a dump at `at` lists of this life (its request socket, or its
    /// full socket), if anything.
    pub(crate) fn sample_at(&self, at: Tick) -> Option<SocketSample> {
        if let Some((from, to)) = self.request {
            if from <= at && at < to {
                return Some(SocketSample::bare(
                    self.key,
                    self.cookie,
                    TcpState::NewSynRecv,
                ));
            }
        }
        let phase = self.phases.iter().find(|p| p.from <= at && at < p.to)?;
        let mut sample = SocketSample::bare(self.key, self.cookie, phase.state);
        sample.inode = if phase.orphan { 0 } else { self.cookie + 7 };
        sample.tcp_info = Some(self.tcp_info(at, phase.state));
        Some(sample)
    }

    /// The notice the kernel sends when it frees this socket.
    fn notice(&self) -> Option<(Tick, SocketSample)> {
        let destroyed = self.destroyed?;
        let mut sample = SocketSample::bare(self.key, self.cookie, TcpState::Close);
        sample.recv_queue = u32::from(self.fin_unread && self.cleared_at.is_none());
        sample.tcp_info = Some(match self.cleared_at {
            Some(cleared) => {
                sample.key.remote_port = 0;
                let snd_wnd = if before(self.established, cleared) {
                    PEER_WINDOW
                } else {
                    0
                };
                info(&InfoFields {
                    state: TcpState::Close,
                    snd_wnd,
                    ..InfoFields::default()
                })
            }
            None => self.tcp_info(destroyed, TcpState::Close),
        });
        Some((destroyed, sample))
    }

    /// What the namespace's MIB counted for this life in the window
    /// `(first, last]`.
    pub fn truth(&self, first: Tick, last: Tick) -> Truth {
        let mut truth = Truth::default();
        for (at, counter) in &self.mib {
            if first < *at && *at <= last {
                truth.add(*counter, 1);
            }
        }
        let sent = self.bytes_sent(last) - self.bytes_sent(first);
        let received = self.bytes_received(last) - self.bytes_received(first);
        truth.add(Counter::BytesSent, sent);
        truth.add(Counter::BytesReceived, received);
        let sent_again = self
            .sent_again_ticks()
            .filter(|at| first < *at && *at <= last);
        truth.add(Counter::RetransSegs, sent_again.count() as u64);
        truth
    }

    /// Whether its notice, as the poll that reads it gives it, shows by
    /// its clock that it established before the first poll (then, unlisted
    /// by that poll, it had ended: see the tracker's reading of notices,
    /// `NOTICE_CLOCK_SLACK_MS`), in a namespace that poll listed.
    pub fn notice_dates_it_before(&self, world: &World) -> bool {
        let Some((destroyed, notice)) = self.notice() else {
            return false;
        };
        let Some(poll) = world.life_notice_poll(self, destroyed) else {
            return false;
        };
        let snapshots = world.snapshots();
        let first = &snapshots[0];
        let read_ms = snapshots[poll].closes_read_ms.unwrap_or(u64::MAX);
        let info = notice.tcp_info.expect("notices carry tcp_info");
        let (delivered, since_sent) = (info.delivered().unwrap(), info.last_data_sent().unwrap());
        let listed = first.sockets.iter().any(|s| s.key.netns == self.netns);
        delivered > 0
            && listed
            && read_ms.saturating_add(NOTICE_CLOCK_SLACK_MS)
                < first.taken_at_ms + u64::from(since_sent)
    }

    /// Whether it began before `at` and a dump at `at` would not list it
    /// (it had ended, or sat in CLOSE or TIME_WAIT, unhashed, held by its
    /// application).
    pub fn began_unlisted_before(&self, at: Tick) -> bool {
        let began = self.mib.iter().any(|(t, _)| *t < at) || self.request.is_some_and(|r| r.0 < at);
        began && self.sample_at(at).is_none()
    }

    /// The last instant anything happens to it (its data's end if it
    /// stays open).
    fn last_event(&self) -> Tick {
        let phases = self.phases.iter().map(|p| p.to).filter(|t| *t != Tick::MAX);
        phases
            .chain(self.destroyed)
            .chain(self.request.map(|r| r.1))
            .chain([self.data_end])
            .max()
            .unwrap_or(self.data_end)
    }
}

/// The counters the simulator checks: the MIB's state counts, bytes,
/// segments sent again (SYNs and data) and the resets sockets send
/// (OutRsts: events only, so precision mode only).
pub const CHECKED: [Counter; 8] = [
    Counter::ActiveOpens,
    Counter::PassiveOpens,
    Counter::AttemptFails,
    Counter::EstabResets,
    Counter::BytesSent,
    Counter::BytesReceived,
    Counter::RetransSegs,
    Counter::OutRsts,
];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Truth {
    pub values: [u64; CHECKED.len()],
}

impl Truth {
    pub fn add(&mut self, counter: Counter, amount: u64) {
        if let Some(i) = CHECKED.iter().position(|c| *c == counter) {
            self.values[i] += amount;
        }
    }

    pub fn get(&self, counter: Counter) -> u64 {
        CHECKED
            .iter()
            .position(|c| *c == counter)
            .map_or(0, |i| self.values[i])
    }
}

#[derive(Debug, Clone, Copy)]
struct InfoFields {
    state: TcpState,
    bytes_acked: u64,
    bytes_received: u64,
    bytes_sent: u64,
    bytes_retrans: u64,
    segs_out: u32,
    segs_in: u32,
    total_retrans: u32,
    snd_wnd: u32,
    delivered: u32,
    last_data_sent_ms: u32,
}

impl Default for InfoFields {
    fn default() -> InfoFields {
        InfoFields {
            state: TcpState::Close,
            bytes_acked: 0,
            bytes_received: 0,
            bytes_sent: 0,
            bytes_retrans: 0,
            segs_out: 0,
            segs_in: 0,
            total_retrans: 0,
            snd_wnd: 0,
            delivered: 0,
            last_data_sent_ms: 0,
        }
    }
}

/// A 6.18-sized tcp_info (280 bytes) with these fields at their offsets
/// (`include/uapi/linux/tcp.h`), the rest zero.
fn info(fields: &InfoFields) -> TcpInfo {
    let mut raw = [0u8; 280];
    raw[0] = fields.state as u8;
    raw[44..48].copy_from_slice(&fields.last_data_sent_ms.to_ne_bytes());
    raw[192..196].copy_from_slice(&fields.delivered.to_ne_bytes());
    raw[100..104].copy_from_slice(&fields.total_retrans.to_ne_bytes());
    raw[120..128].copy_from_slice(&fields.bytes_acked.to_ne_bytes());
    raw[128..136].copy_from_slice(&fields.bytes_received.to_ne_bytes());
    raw[136..140].copy_from_slice(&fields.segs_out.to_ne_bytes());
    raw[140..144].copy_from_slice(&fields.segs_in.to_ne_bytes());
    raw[200..208].copy_from_slice(&fields.bytes_sent.to_ne_bytes());
    raw[208..216].copy_from_slice(&fields.bytes_retrans.to_ne_bytes());
    raw[228..232].copy_from_slice(&fields.snd_wnd.to_ne_bytes());
    TcpInfo::from_bytes(&raw).expect("non-empty")
}

fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// The tuple life `index` gets when it reuses none.
fn fresh_key(index: usize, spec: &LifeSpec) -> SocketKey {
    let i = index as u16;
    let (local, remote) = if spec.v6 {
        (
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 1, i)),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(
                10,
                0,
                1 + (i / 250) as u8,
                1 + (i % 250) as u8,
            )),
        )
    };
    let mut key = if matches!(spec.open, Open::Accept { .. }) {
        SocketKey::new(local, 8000 + i, remote, 50000 + i)
    } else {
        SocketKey::new(local, 32768 + i, remote, 80)
    };
    key.netns = NETNS[0];
    key
}

impl World {
    pub fn build(scenario: &Scenario) -> World {
        let mut lives: Vec<Life> = Vec::new();
        let mut keys: Vec<SocketKey> = Vec::new();
        for (index, spec) in scenario.lives.iter().enumerate() {
            let mut start = ms(spec.start_ms);
            let mut key = fresh_key(index, spec);
            if let (Some(reuse), true) = (spec.reuse, index > 0) {
                // The tuple of an earlier life, from its latest holder (a
                // reuse, maybe) once that is gone, if it opened the same way.
                let wanted = keys[usize::from(reuse) % index];
                let holder = lives.iter().rev().find(|l| l.key == wanted);
                let passive = matches!(spec.open, Open::Accept { .. });
                if let Some(holder) = holder.filter(|h| h.passive == passive) {
                    if let Some(gone) = holder.destroyed {
                        key = wanted;
                        start = start.max(gone + 2);
                    }
                }
            }
            keys.push(key);
            let mut life = Life::lay_out(index, *spec, start, key);
            life.cookie = 1000 + 2 * index as u64;
            if spec.twin {
                let mut twin = life.clone();
                twin.netns = NETNS[1];
                twin.key.netns = NETNS[1];
                twin.cookie += 1;
                lives.push(life);
                lives.push(twin);
            } else {
                lives.push(life);
            }
        }
        let listeners = Self::listeners(&mut lives);
        let mut polls = vec![1];
        for gap in &scenario.poll_gaps_ms {
            polls.push(polls.last().unwrap() + ms(*gap));
        }
        let last_event = lives
            .iter()
            .map(Life::last_event)
            .chain(listeners.iter().map(|l| l.closed))
            .max()
            .unwrap_or(0);
        for drain in 0..DRAIN_POLLS {
            let previous = *polls.last().unwrap();
            let gap = scenario.poll_gaps_ms[drain % scenario.poll_gaps_ms.len()];
            let next = if previous > last_event {
                previous + ms(gap)
            } else {
                last_event + 1
            };
            polls.push(next);
        }
        World {
            lives,
            listeners,
            polls,
        }
    }

    /// One listener per (namespace, port) of accepted lives, open from the
    /// earliest lead before a SYN to the latest tail after a child.
    fn listeners(lives: &mut [Life]) -> Vec<Listener> {
        let mut listeners: Vec<Listener> = Vec::new();
        for life in lives.iter_mut() {
            let Open::Accept { lead_ms, tail_ms } = life.spec.open else {
                continue;
            };
            let syn = life.request.expect("accepted").0;
            let child = life.established.expect("accepted");
            let (opened, closed) = (syn - ms(lead_ms), child + ms(tail_ms));
            let found = listeners
                .iter()
                .position(|l| l.netns == life.netns && l.key.local_port == life.key.local_port);
            let at = match found {
                Some(at) => {
                    let listener = &mut listeners[at];
                    listener.opened = listener.opened.min(opened);
                    listener.closed = listener.closed.max(closed);
                    listener.notice = life.spec.listener_notice;
                    at
                }
                None => {
                    let wildcard = unspecified(life.spec.v6);
                    let mut key = SocketKey::new(wildcard, life.key.local_port, wildcard, 0);
                    key.netns = life.netns;
                    listeners.push(Listener {
                        netns: life.netns,
                        key,
                        cookie: 900_000 + listeners.len() as u64,
                        opened,
                        closed,
                        notice: life.spec.listener_notice,
                    });
                    listeners.len() - 1
                }
            };
            life.listener = Some(at);
        }
        listeners
    }

    /// The poll that reads a notice of a destroy at `destroyed`, if any;
    /// `listed_at` tells whether a dump at an instant listed the socket
    /// (a notice read during a dump is of a socket that dump listed).
    fn delivering_poll(
        &self,
        destroyed: Tick,
        delivery: Delivery,
        listed_at: impl Fn(Tick) -> bool,
    ) -> Option<usize> {
        let next = self.polls.iter().position(|p| *p > destroyed)?;
        match delivery {
            Delivery::DuringDump if next > 0 && listed_at(self.polls[next - 1]) => Some(next - 1),
            Delivery::DuringDump => Some(next),
            Delivery::Late(polls) => Some((next + usize::from(polls)).min(self.polls.len() - 1)),
            Delivery::Lost => None,
        }
    }

    pub(crate) fn life_notice_poll(&self, life: &Life, destroyed: Tick) -> Option<usize> {
        let listed = |at| life.sample_at(at).is_some();
        self.delivering_poll(destroyed, life.spec.notice, listed)
    }

    fn listener_notice_poll(&self, listener: &Listener) -> Option<usize> {
        let listed = |at| listener.opened <= at && at < listener.closed;
        self.delivering_poll(listener.closed, listener.notice, listed)
    }

    /// Whether this life's notice, or its listener's, was lost.
    pub fn notice_lost(&self, life: &Life) -> bool {
        let own = life.destroyed.is_some() && life.spec.notice == Delivery::Lost;
        let listener = life
            .listener
            .is_some_and(|l| self.listeners[l].notice == Delivery::Lost);
        own || listener
    }

    /// What the polls see: each poll's dump of both namespaces and the
    /// notices read with it.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        let mut notices: Vec<Vec<(Tick, SocketSample)>> = vec![Vec::new(); self.polls.len()];
        for life in &self.lives {
            if let Some((destroyed, notice)) = life.notice() {
                if let Some(poll) = self.life_notice_poll(life, destroyed) {
                    notices[poll].push((destroyed, notice));
                }
            }
        }
        for listener in &self.listeners {
            if let Some(poll) = self.listener_notice_poll(listener) {
                let mut notice = SocketSample::bare(listener.key, listener.cookie, TcpState::Close);
                notice.tcp_info = Some(info(&InfoFields::default()));
                notices[poll].push((listener.closed, notice));
            }
        }
        self.polls
            .iter()
            .zip(notices)
            .map(|(at, mut closed)| {
                let listening = self
                    .listeners
                    .iter()
                    .filter(|l| l.opened <= *at && *at < l.closed)
                    .map(|l| {
                        let mut sample = SocketSample::bare(l.key, l.cookie, TcpState::Listen);
                        sample.tcp_info = Some(info(&InfoFields {
                            state: TcpState::Listen,
                            ..InfoFields::default()
                        }));
                        sample
                    });
                let sockets = listening
                    .chain(self.lives.iter().filter_map(|l| self.dumped(l, *at)))
                    .collect();
                let mut snapshot = Snapshot::new((*at / 2) as u64, SocketSource::SockDiag, sockets);
                closed.sort_by_key(|(destroyed, _)| *destroyed);
                // Read after the dump, and after the destroys it read
                // (one during a dump that raced it came as that dump ran
                // on): an odd tick is half a ms late.
                let read = closed
                    .last()
                    .map_or(*at, |(destroyed, _)| (*destroyed).max(*at));
                snapshot.closes_read_ms = Some((read as u64).div_ceil(2));
                snapshot.closed = closed.into_iter().map(|(_, n)| n).collect();
                snapshot.closes_watched = true;
                snapshot
            })
            .collect()
    }

    /// What the dump of the poll at `at` lists of `life`: what
    /// [`Life::sample_at`] shows, unless the life races its destroy with
    /// that dump (destroyed after it began, before the next poll): then
    /// its notice's sample with local port 0. Not the first poll's: the
    /// window begins with it, and a race there leaves which side of that
    /// instant the socket's last moves fell on undecided (the race takes
    /// microseconds, not a poll's gap).
    fn dumped(&self, life: &Life, at: Tick) -> Option<SocketSample> {
        let sample = life.sample_at(at)?;
        let next = self.polls.iter().find(|p| **p > at);
        let racing = life.spec.dump_races_destroy
            && at > self.polls[0]
            && sample.state != TcpState::NewSynRecv
            && life
                .destroyed
                .is_some_and(|d| d > at && next.is_some_and(|next| d <= *next));
        if !racing {
            return Some(sample);
        }
        let (_, mut destroyed) = life.notice()?;
        destroyed.key.local_port = 0;
        Some(destroyed)
    }

    /// Whether some poll's dump listed this life and its twin (the life
    /// of the same spec in the other namespace).
    pub fn polls_list_both_twins(&self, life: &Life) -> bool {
        let twins: Vec<&Life> = self
            .lives
            .iter()
            .filter(|l| l.spec_index == life.spec_index)
            .collect();
        twins.len() == 2
            && twins
                .iter()
                .all(|t| self.polls.iter().any(|p| t.sample_at(*p).is_some()))
    }

    /// Notices the source counts lost in `netns`.
    pub fn notices_lost(&self, netns: u64) -> usize {
        let lives = self.lives.iter().filter(|l| {
            l.netns == netns && l.destroyed.is_some() && l.spec.notice == Delivery::Lost
        });
        let listeners = self
            .listeners
            .iter()
            .filter(|l| l.netns == netns && l.notice == Delivery::Lost);
        lives.count() + listeners.count()
    }

    /// The window the tracker reports: after the first poll, up to the last.
    pub fn window(&self) -> (Tick, Tick) {
        (self.polls[0], *self.polls.last().unwrap())
    }
}

// Strategies. Each `prop_oneof!` lists its simplest choice first, which is
// where shrinking goes.

fn delivery() -> impl Strategy<Value = Delivery> {
    prop_oneof![
        6 => Just(Delivery::Late(0)),
        2 => (1u8..=2).prop_map(Delivery::Late),
        1 => Just(Delivery::DuringDump),
        1 => Just(Delivery::Lost),
    ]
}

/// Milliseconds: mostly well inside a poll, often across several.
fn duration() -> impl Strategy<Value = u16> {
    prop_oneof![0u16..30, 0u16..3000]
}

fn bytes() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), 1u32..5000, 1u32..2_000_000]
}

fn open() -> impl Strategy<Value = Open> {
    let syns_again = 0..SYN_RETRIES as u8;
    prop_oneof![
        4 => Just(Open::Connect),
        4 => (duration(), duration()).prop_map(|(lead_ms, tail_ms)| Open::Accept { lead_ms, tail_ms }),
        1 => (any::<bool>(), syns_again.clone())
            .prop_map(|(blocking, syns_again)| Open::Refused { blocking, syns_again }),
        1 => any::<bool>().prop_map(|blocking| Open::GaveUp { blocking }),
        1 => (syns_again, any::<bool>())
            .prop_map(|(syns_again, linger_zero)| Open::Abandoned { syns_again, linger_zero }),
    ]
}

fn close() -> impl Strategy<Value = Close> {
    prop_oneof![
        any::<bool>().prop_map(|peer_fin_with_ack| Close::OursFirst { peer_fin_with_ack }),
        Just(Close::PeerFirst),
        Just(Close::ShutdownFirst),
        any::<bool>().prop_map(|after_peer_fin| Close::Abort { after_peer_fin }),
        Just(Close::ResetByPeer),
        Just(Close::StillOpen),
    ]
}

pub fn life() -> impl Strategy<Value = LifeSpec> {
    let kind = (open(), close(), delivery(), delivery());
    let times = (
        -1500i16..6000,
        duration(),
        duration(),
        duration(),
        duration(),
    );
    let data = (bytes(), bytes(), prop_oneof![Just(0u32), 1u32..20_000]);
    let place = (
        proptest::bool::weighted(0.2),
        proptest::bool::weighted(0.15),
        proptest::option::weighted(0.2, any::<u8>()),
        proptest::bool::weighted(0.1),
    );
    (kind, times, data, place).prop_map(
        |(
            (open, close, notice, listener_notice),
            (start_ms, handshake_ms, established_ms, closing_ms, app_ms),
            (sent, received, retransmitted),
            (v6, twin, reuse, dump_races_destroy),
        )| LifeSpec {
            open,
            close,
            start_ms,
            handshake_ms,
            established_ms,
            closing_ms,
            app_ms,
            sent,
            received,
            retransmitted: retransmitted.min(sent),
            notice,
            listener_notice,
            v6,
            twin,
            reuse,
            dump_races_destroy,
        },
    )
}

pub fn scenario(max_lives: usize) -> impl Strategy<Value = Scenario> {
    (
        proptest::collection::vec(life(), 1..=max_lives),
        proptest::collection::vec(prop_oneof![1u16..100, 1u16..2000], 1..8),
    )
        .prop_map(|(lives, poll_gaps_ms)| Scenario {
            lives,
            poll_gaps_ms,
        })
}
