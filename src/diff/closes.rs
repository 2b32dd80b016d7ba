//! Close notifications onto tracked sockets. A notice is a socket's last
//! sample, taken by the kernel as it destroyed the socket: a socket polled
//! before counts its delta since that poll, one no poll saw counts its
//! whole life (an open, active or passive by the listener rule, and a
//! close). How it ended is read from its final counters:
//! - counters zeroed and peer port 0: `tcp_disconnect` (SO_LINGER 0, an
//!   abort) cleared them: the last polled values stand and the socket sent
//!   a reset (an EstabReset when it was established);
//! - a connecting socket with nothing acknowledged (`bytes_acked` 0): the
//!   handshake never completed, an AttemptFail;
//! - our FIN acknowledged (`bytes_acked` beyond the bytes sent, less those
//!   sent again, and beyond the SYN a connecting socket's count includes):
//!   an orderly close;
//! - else (no FIN acknowledged): most likely a reset, marked approximate.
//!
//! Pure, like the rest of `diff`.

use super::life::{Life, OpenKind, Told};
use super::{Closed, CountedFrom, Holder, Origin, SocketId, StateCounts, Tracked, Tracker};
use crate::counters::{cumulative, difference, Counter, Counters};
use crate::filter::FilterSet;
use crate::model::{SocketSample, StateHistory, TcpState};

/// How a notified socket ended, as far as its final counters tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Its FIN was acknowledged.
    Orderly,
    /// The handshake never completed, and something answered the SYN (a
    /// reset: the connection was refused): the kernel's AttemptFail.
    Refused,
    /// The handshake never completed, something answered, and the SYN
    /// was sent again: a reset that refused it after a retry (an
    /// AttemptFail), or a SYN-ACK it rejected (acknowledging what it never
    /// sent: it answers with a reset and re-arms its timer at 2 ms, so the
    /// SYN goes again) before its application closed it (none). `~`.
    RefusedOrRejected,
    /// The handshake never completed, no answer came, and the SYN was sent
    /// again as often as the namespace's `tcp_syn_retries` allows: the
    /// kernel gave up, an AttemptFail (`~`: a socket's own TCP_SYNCNT may
    /// differ).
    GaveUp,
    /// The handshake never completed, no answer came, and retries were
    /// left: the application closed it, which the kernel does not count
    /// as a failed attempt (`~`: an ICMP error would have ended it too,
    /// and that counts).
    Abandoned,
    /// Cleared by an abort: it sent a reset.
    Aborted,
    /// Cleared by `tcp_disconnect` before any SYN-ACK came (`snd_wnd`,
    /// which only the peer sets and the clearing leaves, is 0): the failed
    /// `connect()` of a refused or given-up attempt, an AttemptFail (`~`:
    /// an application's SO_LINGER 0 close of a connecting socket counts
    /// none).
    ConnectAborted,
    /// Established, and no FIN of its acknowledged: a reset, most likely.
    LikelyReset,
    /// The kernel's tcp_info is too old to tell (before 4.19).
    Unknown,
    /// A Fast Open child (born in SYN_RECV with the data its SYN carried)
    /// whose handshake's ACK never came, and the AttemptFails the kernel
    /// counted for its end: a reset received in SYN_RECV counts twice
    /// (`tcp_check_req`, then `tcp_done`), in FIN_WAIT1 once; an ICMP
    /// error or the SYN-ACK's last retry once (`tcp_done`); a close by its
    /// application none.
    FastOpenUnacked(u8),
    /// A connecting socket that never sent its SYN (a Fast Open connect
    /// deferred to a first write that never came): `tcp_connect`, where
    /// the kernel counts an ActiveOpen, never ran. No open, no failure.
    NeverSent,
    /// No connection: a listener, or a socket that never connected.
    NotConnected,
}

/// How far a notice's clock may be off: tcp_info tells it in ms from
/// jiffies of 1 to 10 ms (either end of a count may fall anywhere in its
/// jiffy), against the run's own monotonic clock.
pub const NOTICE_CLOCK_SLACK_MS: u64 = 25;

/// tcp_info's `tcpi_options` bit for a SYN that carried data the peer
/// took (TCPI_OPT_SYN_DATA): on an accepted socket, a Fast Open child.
pub(super) const TCPI_OPT_SYN_DATA: u8 = 0x20;

/// How an accepted Fast Open child whose handshake never completed ended,
/// from what it received and sent beyond data: a segment in that is no
/// data is the reset (an ACK would have completed the handshake), and one
/// out is its FIN or reset (its SYN-ACK went out as the request's).
fn fast_open_unacked(info: &crate::model::tcp_info::TcpInfo) -> Option<Ending> {
    let options = info.options()?;
    // A child's first RTT sample is its handshake's ACK (its bytes_acked
    // does not count the SYN-ACK): none, and min_rtt keeps its ~0 start.
    let unacked = info.min_rtt()? == u32::MAX && info.bytes_acked()? == 0;
    if options & TCPI_OPT_SYN_DATA == 0 || !unacked {
        return None;
    }
    let reset_in = info.segs_in()? > info.data_segs_in()?;
    let fin_or_reset_out = info.segs_out()? > info.data_segs_out()?;
    let fails = match (reset_in, fin_or_reset_out) {
        (true, false) => 2,
        (true, true) => 1,
        (false, true) => 0,
        (false, false) => 1,
    };
    Some(Ending::FastOpenUnacked(fails))
}

/// Whether a connect's tcp_info says its SYN may have met its peer's (a
/// simultaneous open, a connect to itself). The kernel answers the peer's
/// SYN by sending its own SYN again with an ACK (`tcp_send_synack`), which
/// `segs_out` counts and the namespace's OutSegs does not (its sequence
/// is not new), and as the handshake's ACK comes it counts a delivery
/// for that segment beyond the SYN's (`tcp_rcv_state_process`,
/// SYN_RECV). Where nothing was sent again (`total_retrans` 0) and all it
/// sent was acknowledged, a plain connect's `delivered` is its SYN, its
/// data segments and its FIN: one more is that SYN sent again, or a Fast
/// Open connect with a cookie and no data for its SYN (the empty data
/// segment it queues counts a delivery too; measured on 6.18), which sent
/// nothing more. Not telling which, it says "maybe". For a connect only:
/// an accepted socket whose FIN was acknowledged looks the same (its
/// `bytes_acked` has no SYN, its `delivered` the SYN-ACK's).
pub(super) fn syn_maybe_sent_again(info: &crate::model::tcp_info::TcpInfo) -> bool {
    let read = || {
        let delivered = u64::from(info.delivered()?);
        let data_segments = u64::from(info.data_segs_out()?);
        let (acked, sent) = (info.bytes_acked()?, info.bytes_sent()?);
        let again = info.total_retrans()?;
        Some((delivered, data_segments, acked, sent, again))
    };
    let Some((delivered, data_segments, acked, sent, 0)) = read() else {
        return false;
    };
    // What was acknowledged beyond the SYN and every byte sent: its FIN, or nothing.
    let fin = match acked.checked_sub(sent.saturating_add(1)) {
        Some(fin @ (0 | 1)) => fin,
        _ => return false,
    };
    delivered == 2 + data_segments + fin
}

/// Polling mode: notes on a connect's life that its SYN may have met its
/// peer's, once `sample` shows it (events tell it in precision mode).
pub(super) fn note_syn_maybe_sent_again(life: &mut Life, sample: &SocketSample) {
    if life.opened_as_connect_in_window()
        && !life.may_have_sent_syn_again()
        && sample.tcp_info.as_ref().is_some_and(syn_maybe_sent_again)
    {
        life.may_have_met_peers_syn();
    }
}

/// Whether the socket ever measured an RTT: `tcp_disconnect` keeps
/// `min_rtt`, and a connect that failed never had an answer to time, so a
/// cleared established socket whose peer's window was 0 when it aborted
/// (a stuck reader) is told from a failed connect by it. Kernels without
/// the field give no evidence either way.
fn info_has_rtt_sample(info: &crate::model::tcp_info::TcpInfo) -> bool {
    info.min_rtt()
        .is_some_and(|rtt| rtt != u32::MAX && rtt != 0)
}

impl Ending {
    /// How the socket of `notice` ended; `passive` when it was accepted by
    /// a listener (its `bytes_acked` then starts after the handshake, a
    /// connecting socket's counts its SYN); `syn_retries`, the namespace's
    /// `net.ipv4.tcp_syn_retries`.
    pub fn of(notice: &SocketSample, passive: bool, syn_retries: u32) -> Ending {
        let Some(info) = &notice.tcp_info else {
            return Ending::Unknown;
        };
        let acked = info.bytes_acked().unwrap_or(0);
        let zeroed = acked == 0
            && info.bytes_received().unwrap_or(0) == 0
            && info.segs_out().unwrap_or(0) == 0
            && info.segs_in().unwrap_or(0) == 0;
        if notice.key.remote_port == 0 {
            // An abort keeps the peer's address and clears its port.
            return if !zeroed || notice.key.remote.is_unspecified() {
                Ending::NotConnected
            } else if !passive && info.snd_wnd() == Some(0) && !info_has_rtt_sample(info) {
                Ending::ConnectAborted
            } else {
                Ending::Aborted
            };
        }
        if passive {
            if let Some(ending) = fast_open_unacked(info) {
                return ending;
            }
        }
        let nothing_moved = acked == 0
            && info.segs_out() == Some(0)
            && info.segs_in() == Some(0)
            && info.bytes_sent().unwrap_or(0) == 0;
        if !passive && nothing_moved {
            return Ending::NeverSent;
        }
        if acked == 0 && !passive {
            // Every segment that reached the socket counts in segs_in (a
            // reset too); a SYN sent again counts in total_retrans.
            return match (info.segs_in(), info.total_retrans()) {
                (Some(0), Some(again)) if again < syn_retries => Ending::Abandoned,
                (Some(0), _) | (None, _) => Ending::GaveUp,
                (Some(_), Some(0)) => Ending::Refused,
                (Some(_), _) => Ending::RefusedOrRejected,
            };
        }
        let syn = u64::from(!passive);
        match (info.bytes_sent(), info.bytes_retrans()) {
            (Some(sent), Some(retrans)) if acked > sent.saturating_sub(retrans) + syn => {
                Ending::Orderly
            }
            (Some(_), Some(_)) => Ending::LikelyReset,
            _ => Ending::Unknown,
        }
    }

    /// Whether the handshake never completed and opened nothing (a Fast
    /// Open child whose handshake never completed was opened: the kernel
    /// counts a PassiveOpen as it is born).
    pub fn never_established(self) -> bool {
        matches!(
            self,
            Ending::Refused
                | Ending::RefusedOrRejected
                | Ending::GaveUp
                | Ending::Abandoned
                | Ending::ConnectAborted
        )
    }

    /// Whether `tcp_disconnect` cleared the final counters: what was
    /// sampled before stands.
    pub fn cleared(self) -> bool {
        matches!(self, Ending::Aborted | Ending::ConnectAborted)
    }

    /// The state counters this ending adds for a socket last known in
    /// `last_state` (None: never polled).
    pub(super) fn state_counts(self, last_state: Option<TcpState>) -> Counters {
        let mut counts = Counters::default();
        let established = last_state.is_none_or(TcpState::counts_as_established);
        match self {
            // Its peer's window is set (a SYN-ACK came, or the SYN): the
            // handshake most likely completed after the last poll, and
            // the abort reset an established connection. Not sure: it may
            // have moved on (FIN_WAIT1) or been aborted in SYN_RECV.
            Ending::Aborted if last_state.is_some_and(TcpState::is_handshake) => {
                counts.bump_approx(Counter::EstabResets, 1)
            }
            Ending::Aborted if established => counts.bump(Counter::EstabResets, 1),
            // Polled in SYN_SENT or not: an application's SO_LINGER 0
            // close of the connecting socket leaves the same notice.
            Ending::ConnectAborted => counts.bump_approx(Counter::AttemptFails, 1),
            Ending::Refused => counts.bump(Counter::AttemptFails, 1),
            Ending::RefusedOrRejected => counts.bump_approx(Counter::AttemptFails, 1),
            Ending::FastOpenUnacked(fails) => {
                counts.bump(Counter::AttemptFails, u64::from(fails));
                counts.mark_present(Counter::AttemptFails);
            }
            Ending::GaveUp => counts.bump_approx(Counter::AttemptFails, 1),
            Ending::Abandoned => counts.mark_approx(Counter::AttemptFails),
            // Something it sent was acknowledged: a handshake the last
            // poll saw under way completed since.
            Ending::LikelyReset
                if established || last_state.is_some_and(TcpState::is_handshake) =>
            {
                counts.bump_approx(Counter::EstabResets, 1)
            }
            Ending::Unknown => counts.mark_approx(Counter::EstabResets),
            _ => {}
        }
        counts
    }
}

/// An orderly close received its peer's FIN, which the final
/// `bytes_received` counts as one byte: it is no data.
pub(super) fn drop_fin(counters: &mut Counters) {
    if let Some(received) = counters.get(Counter::BytesReceived).filter(|b| *b > 0) {
        let approx = counters.is_approx(Counter::BytesReceived);
        counters.set(Counter::BytesReceived, received - 1, approx);
    }
}

/// Adds what a late notice tells its ended life did after its last poll
/// (`delta`), in place of what events counted in its window after that
/// poll (retransmits): the notice's final counters cover them, and are
/// the kernel's own where an event was taken for another socket's.
fn add_late_notice_delta(closed: &mut Closed, delta: &Counters) {
    closed
        .window
        .take_out(&std::mem::take(&mut closed.events_tail));
    closed.window.add(delta);
    closed.lifetime.add(delta);
}

/// Whether the final `bytes_received` of an orderly close counts the
/// peer's FIN, as far as anything tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerFin {
    Counted,
    NotCounted,
    /// Nothing tells (polling only): taken as counted, as a passive
    /// closer's is, and the bytes received are marked approximate.
    Unknown,
}

/// Whether the final `bytes_received` of an orderly close counts the
/// peer's FIN. Not when the socket closed first and was destroyed as its
/// own FIN was acknowledged, orphaned in FIN_WAIT1 or FIN_WAIT2: the
/// kernel hands it on to a FIN_WAIT2 timewait socket, which takes the
/// peer's FIN. Its notice then has nothing unread (`recv_queue` 0: an
/// orphan's unread FIN stays queued), no end of stream was read, and it
/// never was in CLOSE_WAIT, LAST_ACK or CLOSING. Where nothing tells
/// (no events, and no poll saw it past the peer's FIN or orphaned while
/// closing), the notice cannot either: its tcp_info is the same both ways.
/// `history`: its states from events (None without events); `last_polled`:
/// its last sample from a poll.
pub(super) fn peer_fin(
    notice: &SocketSample,
    history: Option<StateHistory>,
    end_of_stream_read: bool,
    last_polled: Option<&SocketSample>,
) -> PeerFin {
    FinClues::of(notice, last_polled).verdict(history, end_of_stream_read)
}

/// What a notice and its socket's last poll tell of the peer's FIN, which
/// later events cannot change; with the states events saw and whether the
/// end of stream was read, they give the verdict ([`peer_fin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FinClues {
    /// Something unread at the end (an orphan's unread FIN stays queued).
    unread: bool,
    /// A poll saw it in a state past the peer's FIN.
    polled_past_fin: bool,
    /// A poll saw it orphaned while closing (FIN_WAIT1, FIN_WAIT2).
    orphan_closing: bool,
}

impl FinClues {
    pub(super) fn of(notice: &SocketSample, last_polled: Option<&SocketSample>) -> FinClues {
        use TcpState::*;
        FinClues {
            unread: notice.recv_queue > 0,
            polled_past_fin: last_polled.is_some_and(|s| s.state.peer_fin_received()),
            orphan_closing: last_polled
                .is_some_and(|s| matches!(s.state, FinWait1 | FinWait2) && s.inode == 0),
        }
    }

    /// `history`: its states from events (None without events).
    pub(super) fn verdict(
        self,
        history: Option<StateHistory>,
        end_of_stream_read: bool,
    ) -> PeerFin {
        use TcpState::*;
        if self.unread || end_of_stream_read {
            return PeerFin::Counted;
        }
        let states = history.unwrap_or_default();
        if self.polled_past_fin
            || states
                .iter()
                .any(|s| matches!(s, CloseWait | LastAck | Closing | TimeWait))
        {
            return PeerFin::Counted;
        }
        let closed_first_by_events = states.iter().any(|s| matches!(s, FinWait1 | FinWait2));
        if closed_first_by_events || self.orphan_closing {
            PeerFin::NotCounted
        } else if history.is_some_and(|h| h.last() == Some(Close)) {
            // Events would have shown it closing first.
            PeerFin::Counted
        } else {
            // No events, or not all of them yet: its close's came after the
            // dump that read its notice began (or were lost).
            PeerFin::Unknown
        }
    }
}

/// Corrects an orderly close's bytes received that `applied` took the
/// FIN out of (see [`drop_peer_fin`]) where later events told `last`.
pub(super) fn revise_peer_fin(counters: &mut Counters, applied: PeerFin, last: PeerFin) {
    let Some(received) = counters.get(Counter::BytesReceived) else {
        return;
    };
    let approx = counters.is_approx(Counter::BytesReceived);
    match (applied, last) {
        (PeerFin::Counted, PeerFin::NotCounted) => {
            counters.set(Counter::BytesReceived, received.saturating_add(1), approx)
        }
        (PeerFin::NotCounted, PeerFin::Counted) => drop_fin(counters),
        // Unknown took a byte off where there was one, and said `~`.
        (PeerFin::Unknown, PeerFin::Counted) => {
            counters.replace(Counter::BytesReceived, received, false)
        }
        (PeerFin::Unknown, PeerFin::NotCounted) => counters.replace(
            Counter::BytesReceived,
            received.saturating_add(u64::from(approx)),
            false,
        ),
        _ => {}
    }
}

/// Takes the peer's FIN out of an orderly close's bytes received, as
/// `verdict` says (see [`PeerFin`]).
pub(super) fn drop_peer_fin(counters: &mut Counters, verdict: PeerFin) {
    match verdict {
        PeerFin::NotCounted => {}
        PeerFin::Counted => drop_fin(counters),
        PeerFin::Unknown => {
            if counters.get(Counter::BytesReceived).is_some_and(|b| b > 0) {
                drop_fin(counters);
                counters.mark_approx(Counter::BytesReceived);
            }
        }
    }
}

/// `tcp_disconnect` cleared the counters `notice` would have ended with:
/// what the socket did after its last poll (its reset, at least) is not
/// known, so the counters its tcp_info gives are approximate (present too:
/// a socket no poll saw move has no count of its own to show).
pub(super) fn mark_cleared(counters: &mut Counters, notice: &SocketSample) {
    for (counter, _) in cumulative(notice).counters.iter() {
        counters.mark_approx(counter);
    }
}

impl Tracker {
    /// Takes in the close notices read by the end of this poll's dump: the
    /// sockets they name end now, with their final counters. Returns how
    /// many tracked sockets it closed that this poll's dump did not list.
    pub(super) fn take_close_notices(
        &mut self,
        notices: &[SocketSample],
        filter: &FilterSet,
        elapsed: u64,
    ) -> usize {
        let mut unlisted = 0;
        for notice in notices {
            let id = SocketId::Cookie(notice.cookie);
            if self.polls <= 1 && self.sockets.get_mut(&id).is_none() {
                // Closes before the baseline are before the run's window;
                // one of a socket this first dump listed came after it.
                continue;
            }
            let tracked = self.sockets.remove(&id);
            let passive = match tracked.as_ref().map(|t| t.origin) {
                Some(Origin::Passive) => true,
                // Taken for a connect when first polled, for want of a
                // listener; events may have seen it born of one.
                Some(Origin::Active) => self.events.as_ref().is_some_and(|events| {
                    let history = events.history_of(&id);
                    history.iter().any(|s| s == TcpState::SynRecv)
                        && !history.iter().any(|s| s == TcpState::SynSent)
                }),
                _ => self.is_listener_endpoint(&notice.key),
            };
            let ending = Ending::of(notice, passive, self.syn_retries());
            match tracked {
                Some(request) if request.sample.grew_into(notice) => {
                    // Its child, with its cookie, lived and died between
                    // two polls: the whole connection is the notice's.
                    unlisted += usize::from(request.last_poll != self.polls);
                    self.close_unseen(notice, ending, filter, elapsed);
                }
                Some(tracked) if tracked.sample.is_mini_socket() => {
                    // Its TIME_WAIT (or FIN_WAIT2) successor, which keeps
                    // its cookie, is tracked and stays so.
                    let origin = tracked.origin;
                    self.sockets.insert(id, tracked);
                    match origin {
                        // A poll saw the full socket become it: that life
                        // was counted, the notice completes it.
                        Origin::Successor => self.complete_ended_life(notice, ending),
                        // No poll saw the full socket, only its successor:
                        // the kernel gives a socket its cookie when a dump
                        // first lists it, and another reader's dump (`ss`,
                        // another tcpipstat, precision mode's lookups) did,
                        // so the successor inherited it. The notice is a
                        // whole life no poll saw.
                        Origin::Other => self.close_unseen(notice, ending, filter, elapsed),
                        // Gone before the run's first poll, or not a life.
                        Origin::Baseline | Origin::Active | Origin::Passive => {}
                    }
                }
                Some(tracked) => {
                    unlisted += usize::from(tracked.last_poll != self.polls);
                    self.close_notified(id, tracked, notice, ending, elapsed)
                }
                None if self.vanished_unnoticed.remove(&notice.cookie).is_some() => {
                    self.complete_vanished_life(notice, ending);
                }
                None => self.close_unseen(notice, ending, filter, elapsed),
            }
        }
        unlisted
    }

    /// A notice of a life a poll ended already (its successor was seen):
    /// what the socket did after that poll's sample is added to it, if it
    /// is still in this window.
    fn complete_ended_life(&mut self, notice: &SocketSample, ending: Ending) {
        let Some(closed) = self
            .closed
            .iter_mut()
            .rev()
            .find(|c| c.sample.cookie == notice.cookie && !c.sample.is_mini_socket())
        else {
            return;
        };
        let Ok(mut delta) = difference(&cumulative(notice), &cumulative(&closed.sample)) else {
            return;
        };
        // The notice (state CLOSE) counts the peer's FIN, if it came
        // before the successor took over; a last sample that had it
        // counts it no more (`cumulative`): the FIN is in the delta then.
        let history = self.events.is_some().then_some(closed.history);
        if ending == Ending::Orderly {
            let verdict = peer_fin(notice, history, false, Some(&closed.sample));
            drop_peer_fin(&mut delta, verdict);
        }
        add_late_notice_delta(closed, &delta);
        closed.sample.tcp_info = notice.tcp_info;
        closed.counted_from = CountedFrom::CloseNotice { polled: true };
        closed.rtt.record_sample(notice);
    }

    /// A late notice of a socket closed as vanished: what it did after its
    /// last poll is added, and its ending replaces the one guessed. Once
    /// its window was reported, the notice counts nothing (no connection
    /// counts twice).
    fn complete_vanished_life(&mut self, notice: &SocketSample, ending: Ending) {
        let Some(closed) = self
            .closed
            .iter_mut()
            .rev()
            .find(|c| c.sample.cookie == notice.cookie)
        else {
            return;
        };
        if ending.cleared() {
            mark_cleared(&mut closed.window, notice);
            mark_cleared(&mut closed.lifetime, notice);
            closed.counted_from = CountedFrom::LastPoll { cleared: true };
        } else if closed.sample.tcp_info.is_some() {
            if let Ok(mut delta) = difference(&cumulative(notice), &cumulative(&closed.sample)) {
                // The peer's FIN, where it came, is in the delta, whatever
                // the last state.
                let history = self.events.is_some().then_some(closed.history);
                if ending == Ending::Orderly {
                    let read = closed.end_of_stream_read;
                    let verdict = peer_fin(notice, history, read, Some(&closed.sample));
                    drop_peer_fin(&mut delta, verdict);
                }
                add_late_notice_delta(closed, &delta);
                closed.sample.tcp_info = notice.tcp_info;
                closed.counted_from = CountedFrom::CloseNotice { polled: true };
                closed.rtt.record_sample(notice);
            }
        }
        // In place of the ending its vanishing guessed; none where its
        // CLOSE event counted it.
        let told = ending.state_counts(Some(closed.sample.state));
        closed.life.end(&told, Told::Notice);
        if ending == Ending::NeverSent {
            closed.life.retract_open();
        }
        closed.sample.state = TcpState::Close;
    }

    /// A socket polled before: its delta since then, and its ending.
    fn close_notified(
        &mut self,
        id: SocketId,
        mut tracked: Tracked,
        notice: &SocketSample,
        ending: Ending,
        elapsed: u64,
    ) {
        let last_state = tracked.sample.state;
        let last_polled = tracked.sample.clone();
        let notice_taken = !ending.cleared() && tracked.sample.tcp_info.is_some();
        // Events since the last poll (retransmits) count only where no
        // later sample covers them: the notice's final counters do.
        let tail_after = if notice_taken {
            self.polls
        } else {
            tracked.last_poll
        };
        if notice_taken {
            let mut last = notice.clone();
            // The socket stays where it was tracked; its tuple as polled,
            // and its owner's inode (an orphan's notice has none).
            last.key = tracked.sample.key;
            last.inode = tracked.sample.inode;
            last.uid = tracked.sample.uid;
            if self.events.is_none() {
                note_syn_maybe_sent_again(&mut tracked.life, &last);
            }
            // Its state counters are the ending's, not a poll's inference.
            super::update(
                &mut tracked,
                &last,
                self.polls,
                elapsed,
                StateCounts::FromEvents,
            );
        }
        // The notice's final smoothed RTT (none where an abort cleared it).
        tracked.rtt.record_sample(notice);
        let mut closed = Closed {
            lifetime: cumulative(&tracked.sample).counters,
            window: tracked.window.counts(),
            rtt: tracked.rtt,
            life: tracked.life,
            sample: tracked.sample,
            unseen_ms: 0,
            history: StateHistory::default(),
            end_of_stream_read: false,
            holder: Holder::default(),
            counted_from: if notice_taken {
                CountedFrom::CloseNotice { polled: true }
            } else {
                CountedFrom::LastPoll {
                    cleared: ending.cleared(),
                }
            },
            read_as_connect: None,
            events_tail: Counters::default(),
        };
        // Read as a connect's for want of a listener on its endpoint (with
        // events, an open they saw is no guess; one before the first poll
        // they did not see).
        let taken_for_connect = match tracked.origin {
            Origin::Active => self.events.is_none(),
            Origin::Baseline => !self.is_listener_endpoint(&notice.key),
            _ => false,
        };
        closed.sample.state = TcpState::Close;
        let fin = match &self.events {
            Some(events) => events.peer_fin(&id, notice, &last_polled),
            None => peer_fin(notice, None, false, Some(&last_polled)),
        };
        if ending == Ending::Orderly {
            drop_peer_fin(&mut closed.window, fin);
            drop_peer_fin(&mut closed.lifetime, fin);
        }
        if taken_for_connect {
            closed.read_as_connect = Some(super::ReadAsConnect {
                ending,
                if_accepted: Ending::of(notice, true, self.syn_retries()),
                last_state,
                fin,
            });
        }
        if ending.cleared() {
            mark_cleared(&mut closed.window, notice);
            mark_cleared(&mut closed.lifetime, notice);
        }
        // With events, their CLOSE counted the ending; one the kernel never
        // delivered (a timer's on an idle CPU, say) leaves it to the notice.
        let told = ending.state_counts(Some(last_state));
        closed.life.end(&told, Told::Notice);
        if ending == Ending::NeverSent {
            closed.life.retract_open();
        }
        let close_seen = self
            .events
            .as_ref()
            .is_some_and(|events| events.history_of(&id).last() == Some(TcpState::Close));
        if let Some(events) = &mut self.events {
            if !close_seen {
                let noticed = super::events::NoticedEarly {
                    poll: self.polls,
                    fin,
                    fin_counted: ending == Ending::Orderly,
                    clues: FinClues::of(notice, Some(&last_polled)),
                    history: events.history_of(&id),
                    end_of_stream_read: events.end_of_stream_read_by(&id),
                };
                events.noticed_before_events(notice.cookie, noticed);
            }
            events.vanished(id, tail_after, &mut closed);
        }
        self.closed.push(closed);
    }

    /// A connection no poll saw. In precision mode the notice joins the
    /// socket its events describe (now or after the next batch of events);
    /// else its whole life counts here, its open too.
    fn close_unseen(
        &mut self,
        notice: &SocketSample,
        ending: Ending,
        filter: &FilterSet,
        elapsed: u64,
    ) {
        if ending == Ending::NotConnected {
            return;
        }
        let passive = self.is_listener_endpoint(&notice.key);
        let poll = self.polls;
        if let Some(events) = &mut self.events {
            if events.offer_notice(notice, ending, passive, (poll, self.closes_read_ms)) {
                return;
            }
        }
        let read_ms = self.closes_read_ms;
        self.count_notice_alone(notice, ending, passive, read_ms, filter, elapsed);
    }

    /// Precision mode: notices held for a batch of events that no socket
    /// of theirs claimed (their events were lost, say) count on their own.
    pub(super) fn take_unclaimed_notices(&mut self, filter: &FilterSet, elapsed: u64) {
        let Some(events) = &mut self.events else {
            return;
        };
        for (notice, read_ms) in events.retry_held_notices(self.polls) {
            let passive = self.is_listener_endpoint(&notice.key);
            let ending = Ending::of(&notice, passive, self.syn_retries());
            self.count_notice_alone(&notice, ending, passive, read_ms, filter, elapsed);
        }
    }

    /// A connection known from its notice alone: its whole life and open,
    /// if the filters take its tuple in. An abort's tuple lost its peer
    /// port, and no poll or event saw the real one: where the filters test
    /// what it lost, it is counted apart, as a close they cannot place.
    /// One whose clock, counted back from `read_ms` (when it was read),
    /// dates the life before the run's first poll counts nothing.
    fn count_notice_alone(
        &mut self,
        notice: &SocketSample,
        ending: Ending,
        passive: bool,
        read_ms: Option<u64>,
        filter: &FilterSet,
        elapsed: u64,
    ) {
        let placed = filter.matches(&notice.key);
        if !placed && !filter.cannot_tell(&notice.key) {
            return;
        }
        if self.ended_before_first_poll(notice, read_ms) {
            self.notices_before_run += 1;
            return;
        }
        let (window, lifetime, life) = self.notice_alone_counts(notice, ending, passive);
        if !placed {
            self.unplaced_by_filters.sockets += 1;
            let counted = life.with_window_counts(window);
            self.unplaced_by_filters.counters.add(&counted);
            return;
        }
        self.closed.push(Closed {
            lifetime,
            window,
            sample: notice.clone(),
            unseen_ms: elapsed,
            history: StateHistory::default(),
            end_of_stream_read: false,
            // Known from its notice alone: no poll saw it, or its owner.
            holder: Holder::unpolled(None),
            counted_from: if ending.cleared() {
                CountedFrom::ClearedNotice
            } else {
                CountedFrom::CloseNotice { polled: false }
            },
            rtt: crate::rtt::RttSamples::of_sample(notice),
            read_as_connect: None,
            events_tail: Counters::default(),
            life,
        });
    }

    /// Whether the socket of a notice no poll listed had established
    /// before the run's first poll: that poll (of its namespace) would have
    /// listed it alive, so it had ended by then (reset or closed and held
    /// unhashed by its application, or destroyed with its notice still to
    /// read), and nothing of it is in the run. Told by the socket's own
    /// clock: `tcpi_last_data_sent` counts from `lsndtime`, which the
    /// kernel sets as the socket establishes (`tcp_finish_connect`,
    /// `tcp_create_openreq_child`, a simultaneous open's SYN_RECV) and
    /// moves with each data segment sent, so the socket established no
    /// later than the notice was built less that clock, and the notice was
    /// built before it was read. Only for a life that established:
    /// `tcpi_delivered` counts its SYN's or SYN-ACK's delivery, and
    /// `tcp_disconnect` clears it (an abort's notice tells nothing), while
    /// a connect that never completed has no clock of its own (a fresh
    /// socket's `lsndtime` is 0, a reused one's its earlier life's).
    fn ended_before_first_poll(&self, notice: &SocketSample, read_ms: Option<u64>) -> bool {
        let (Some(first), Some(read_ms)) = (&self.first_poll, read_ms) else {
            return false;
        };
        let Some(info) = notice.tcp_info.as_ref() else {
            return false;
        };
        let (Some(delivered), Some(since_sent_ms)) = (info.delivered(), info.last_data_sent())
        else {
            return false;
        };
        delivered > 0
            && first.netns.contains(&notice.key.netns)
            && read_ms.saturating_add(NOTICE_CLOCK_SLACK_MS)
                < first.taken_at_ms.saturating_add(u64::from(since_sent_ms))
    }

    /// The window's and the lifetime's counts of a connection known from
    /// its notice alone, and its life's facts.
    fn notice_alone_counts(
        &self,
        notice: &SocketSample,
        ending: Ending,
        passive: bool,
    ) -> (Counters, Counters, Life) {
        let mut window = cumulative(notice).counters;
        let mut life = Life::default();
        {
            let open = if passive {
                OpenKind::Passive
            } else {
                OpenKind::Active
            };
            let opened = !ending.never_established() || open == OpenKind::Active;
            if opened && ending != Ending::NeverSent {
                life.open(open, false);
                // No row of it has events' states to tell it (precision
                // mode's way): its notice does.
                note_syn_maybe_sent_again(&mut life, notice);
            }
            if open == OpenKind::Passive {
                super::add_syn_ack(&mut window);
            }
            let told = ending.state_counts(None);
            life.end(&told, Told::Notice);
        }
        let mut lifetime = cumulative(notice).counters;
        if ending == Ending::Orderly {
            // Events that would tell were lost, or none are read.
            let fin = match self.events {
                Some(_) => PeerFin::Counted,
                None => peer_fin(notice, None, false, None),
            };
            drop_peer_fin(&mut window, fin);
            drop_peer_fin(&mut lifetime, fin);
        }
        if ending.cleared() {
            mark_cleared(&mut window, notice);
            mark_cleared(&mut lifetime, notice);
        }
        if ending == Ending::ConnectAborted {
            // Its connect sent its SYN, the one segment of it the namespace
            // counts in OutSegs (a SYN sent again is no OutSeg), unless it
            // was a Fast Open connect deferred to a write that never came.
            window.replace(Counter::OutSegs, 1, true);
            lifetime.replace(Counter::OutSegs, 1, true);
        }
        (window, lifetime, life)
    }

    /// Listeners first known this poll from their notice (`new`: they
    /// lived between two polls) were there before: a socket on one's
    /// endpoint taken for an active opener while nothing showed the
    /// listener (its notice came after its child's; notices of two sockets
    /// are not ordered) was accepted. One known from its notice alone is
    /// counted again as accepted, one still tracked becomes so, and one
    /// polled that closed already too, its ending read again as an
    /// accepted socket's. Polling only: events tell a child's open from
    /// its birth.
    pub(super) fn revisit_children_of(&mut self, new: &super::Listeners) {
        let noticed: Vec<usize> = (0..self.closed.len())
            .filter(|&i| {
                let closed = &self.closed[i];
                matches!(
                    closed.counted_from,
                    CountedFrom::CloseNotice { polled: false } | CountedFrom::ClearedNotice
                ) && closed.life.opened_as_connect_in_window()
                    && super::is_listener_endpoint(new, &closed.sample.key)
            })
            .collect();
        for i in noticed {
            let notice = self.closed[i].sample.clone();
            let ending = Ending::of(&notice, true, self.syn_retries());
            let (window, lifetime, life) = self.notice_alone_counts(&notice, ending, true);
            let closed = &mut self.closed[i];
            closed.window = window;
            closed.lifetime = lifetime;
            closed.life = life;
        }
        for tracked in self.sockets.values_mut() {
            if tracked.origin != Origin::Active
                || !tracked.life.opened_as_connect_in_window()
                || !super::is_listener_endpoint(new, &tracked.sample.key)
            {
                continue;
            }
            let mut window = tracked.window.counts();
            open_as_accepted(&mut tracked.life, &mut window);
            tracked.window = window.into();
            tracked.origin = Origin::Passive;
            tracked.forget_diff();
        }
        self.reread_closed_children_of(new, true);
    }

    /// Polled sockets on the endpoint of a listener first known now (see
    /// [`Tracker::revisit_children_of`]) that closed already: their ending,
    /// read as a connect's, is read again as an accepted socket's, and
    /// with `flip_opens` (polling: no event told their open) the open
    /// their first sighting counted becomes a PassiveOpen.
    pub(super) fn reread_closed_children_of(&mut self, new: &super::Listeners, flip_opens: bool) {
        for closed in &mut self.closed {
            let polled = matches!(
                closed.counted_from,
                CountedFrom::LastPoll { .. } | CountedFrom::CloseNotice { polled: true }
            );
            if !polled || !super::is_listener_endpoint(new, &closed.sample.key) {
                continue;
            }
            // One from before the window opened nothing in it.
            if flip_opens && closed.life.opened_as_connect_in_window() {
                open_as_accepted(&mut closed.life, &mut closed.window);
            }
            if let Some(read) = closed.read_as_connect.take() {
                read.reread_as_accepted(closed);
            }
        }
    }
}

/// A window's connect's open counted as an accepted socket's: a
/// PassiveOpen, and its listener's SYN-ACK.
fn open_as_accepted(life: &mut Life, window: &mut Counters) {
    life.reread_open(OpenKind::Passive);
    super::add_syn_ack(window);
}

impl super::ReadAsConnect {
    /// The fail or reset the ending read as a connect's counted in
    /// `closed`'s window, replaced by the accepted socket's, and the
    /// peer's FIN taken out of its bytes where only the accepted reading
    /// is an orderly close. Endings that cleared the counters one way and
    /// not the other are left as they are.
    fn reread_as_accepted(self, closed: &mut Closed) {
        if self.ending.cleared() != self.if_accepted.cleared() || self.ending == self.if_accepted {
            return;
        }
        if self.if_accepted == Ending::Orderly && self.ending != Ending::Orderly {
            drop_peer_fin(&mut closed.window, self.fin);
            drop_peer_fin(&mut closed.lifetime, self.fin);
        }
        if closed.life.ending_told() != Some(Told::Notice) {
            // Its CLOSE event counted the ending.
            return;
        }
        let accepted = self.if_accepted.state_counts(Some(self.last_state));
        closed.life.reread_ending(&accepted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tcp_info::TcpInfo;
    use crate::model::{Snapshot, SocketKey, SocketSource};

    const SYN_RETRIES: u32 = 6;

    /// A notice with these final counters (4.19+ tcp_info).
    fn notice(remote: &str, rport: u16, acked: u64, sent: u64, received: u64) -> SocketSample {
        notice_with(remote, rport, acked, sent, received, 65535)
    }

    /// [`notice`] with the peer's window `snd_wnd` (0: no SYN-ACK came),
    /// and no RTT measured.
    fn notice_with(
        remote: &str,
        rport: u16,
        acked: u64,
        sent: u64,
        received: u64,
        snd_wnd: u32,
    ) -> SocketSample {
        notice_timed(remote, rport, [acked, sent, received], snd_wnd, u32::MAX)
    }

    /// [`notice_with`] whose socket measured `min_rtt` (µs; u32::MAX: none).
    fn notice_timed(
        remote: &str,
        rport: u16,
        [acked, sent, received]: [u64; 3],
        snd_wnd: u32,
        min_rtt: u32,
    ) -> SocketSample {
        let segs = u32::from(acked + received > 0);
        let info = TcpInfo::built(TcpState::Close, |raw| {
            raw.u32(228, snd_wnd)
                .u32(148, min_rtt)
                .u64(120, acked)
                .u64(128, received)
                .u32(136, segs)
                .u32(140, segs)
                .u64(200, sent);
        });
        let key = SocketKey::new(
            "127.0.0.1".parse().unwrap(),
            80,
            remote.parse().unwrap(),
            rport,
        );
        let mut sample = SocketSample::bare(key, 9, TcpState::Close);
        sample.tcp_info = Some(info);
        sample
    }

    /// A poll of a listener on 127.0.0.1:80 and `sockets`, with these
    /// close notices.
    fn poll(ms: u64, mut sockets: Vec<SocketSample>, closed: Vec<SocketSample>) -> Snapshot {
        let key = SocketKey::new(
            "127.0.0.1".parse().unwrap(),
            80,
            "0.0.0.0".parse().unwrap(),
            0,
        );
        sockets.insert(0, SocketSample::bare(key, 1, TcpState::Listen));
        let mut snapshot = Snapshot::new(ms, SocketSource::SockDiag, sockets);
        snapshot.closes_watched = true;
        snapshot.closed = closed;
        snapshot.closes_read_ms = Some(ms);
        snapshot
    }

    fn totals(t: &Tracker) -> Counters {
        let mut total = Counters::default();
        for row in t.rows() {
            total.add(&row.counters);
        }
        total
    }

    /// A request socket (as a dump lists it: no tcp_info) for the server
    /// end of `notice`'s connection, with `cookie`.
    fn request_of(notice: &SocketSample, cookie: u64) -> SocketSample {
        SocketSample::bare(notice.key, cookie, TcpState::NewSynRecv)
    }

    /// Server: 500 data + FIN acknowledged, 700 and the FIN received.
    fn served() -> SocketSample {
        notice("10.0.0.2", 5000, 501, 500, 701)
    }

    fn assert_one_served_connection(total: &Counters) {
        assert_eq!(total.value(Counter::PassiveOpens), 1, "{total:?}");
        assert_eq!(total.value(Counter::ActiveOpens), 0);
        assert_eq!(total.value(Counter::EstabResets), 0);
        assert_eq!(total.value(Counter::AttemptFails), 0);
        assert_eq!(total.value(Counter::BytesSent), 500);
        assert_eq!(total.value(Counter::BytesReceived), 700);
    }

    /// `sample` with smoothed RTT `us`.
    fn with_rtt(mut sample: SocketSample, us: u32) -> SocketSample {
        sample.tcp_info.as_mut().unwrap().set_rtt(us);
        sample
    }

    fn rtt_of_rows(t: &Tracker) -> Vec<(bool, crate::rtt::RttHistogram)> {
        t.rows()
            .filter(|r| r.sample.state != TcpState::Listen)
            .map(|r| {
                let mut h = crate::rtt::RttHistogram::default();
                h.add_samples(&r.rtt);
                (r.closed, h)
            })
            .collect()
    }

    /// Each poll samples an open socket's smoothed RTT once (a socket a
    /// dump lists twice too), a close notice adds its final value, a
    /// cleared one (an abort) none, and a new window starts empty.
    #[test]
    fn rtt_is_sampled_once_a_poll_and_from_the_close_notice() {
        let filter = FilterSet::default();
        let mut open = served();
        open.state = TcpState::Established;
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        let first = with_rtt(open.clone(), 5_000);
        t.observe(&poll(1000, vec![first.clone(), first], vec![]), &filter);
        t.observe(
            &poll(2000, vec![with_rtt(open.clone(), 6_000)], vec![]),
            &filter,
        );
        let rows = rtt_of_rows(&t);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1.count(), 2);
        assert_eq!(rows[0].1.min_max_us(), Some((5_000, 6_000)));
        t.reset_window();
        assert!(rtt_of_rows(&t)[0].1.is_empty());
        t.observe(
            &poll(3000, vec![with_rtt(open.clone(), 7_000)], vec![]),
            &filter,
        );
        let fin = with_rtt(served(), 8_000);
        t.observe(&poll(4000, vec![], vec![fin]), &filter);
        let rows = rtt_of_rows(&t);
        assert_eq!(rows.len(), 1);
        assert!(rows[0].0, "closed");
        assert_eq!(rows[0].1.count(), 2);
        assert_eq!(rows[0].1.min_max_us(), Some((7_000, 8_000)));
        // A connection known from its notice alone: its final value.
        let mut other = with_rtt(notice("10.0.0.3", 5001, 501, 500, 701), 9_000);
        other.cookie = 10;
        t.reset_window();
        t.observe(&poll(5000, vec![], vec![other]), &filter);
        let rows = rtt_of_rows(&t);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1.min_max_us(), Some((9_000, 9_000)));
    }

    /// A server that closed first: polled orphaned (no inode) in
    /// FIN_WAIT1 with 300 bytes received, destroyed as its FIN was
    /// acknowledged. Its notice's `bytes_received` has no FIN, unless the
    /// FIN came first and waits unread (`recv_queue` 1).
    #[test]
    fn an_orphan_destroyed_as_its_fin_was_acknowledged_counts_every_byte_it_received() {
        let filter = FilterSet::default();
        let mut closing = notice("10.0.0.2", 5000, 201, 200, 300);
        closing.state = TcpState::FinWait1;
        closing.inode = 0;
        for (fin_waiting, final_received) in [(0, 300), (1, 301)] {
            let mut last = notice("10.0.0.2", 5000, 201, 200, final_received);
            last.recv_queue = fin_waiting;
            let mut t = Tracker::new();
            t.observe(&poll(0, vec![], vec![]), &filter);
            t.observe(&poll(1000, vec![closing.clone()], vec![]), &filter);
            t.observe(&poll(2000, vec![], vec![last]), &filter);
            let total = totals(&t);
            assert_eq!(total.value(Counter::BytesReceived), 300, "{total:?}");
        }
        // Held by its application (it may read the end of stream, which
        // a poll cannot see): the FIN is taken as counted.
        let mut held = closing.clone();
        held.inode = 4242;
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        t.observe(&poll(1000, vec![held], vec![]), &filter);
        t.observe(
            &poll(2000, vec![], vec![notice("10.0.0.2", 5000, 201, 200, 301)]),
            &filter,
        );
        assert_eq!(totals(&t).value(Counter::BytesReceived), 300);
    }

    /// Polling alone, a socket last seen established (or never seen) whose
    /// orderly notice has nothing unread: whether it closed first (its
    /// bytes received lack the peer's FIN) or second (they count it) is in
    /// neither its last sample nor its notice. The FIN is taken out, and
    /// the bytes received are marked approximate; a poll that saw it past
    /// the peer's FIN leaves them exact.
    #[test]
    fn an_orderly_close_no_source_places_keeps_its_bytes_received_marked_approximate() {
        let filter = FilterSet::default();
        let established = notice("10.0.0.2", 5000, 201, 200, 250);
        let mut past_fin = established.clone();
        past_fin.state = TcpState::CloseWait;
        for (polled, exact) in [
            (Some(established), false),
            (None, false),
            (Some(past_fin), true),
        ] {
            let mut t = Tracker::new();
            t.observe(&poll(0, vec![], vec![]), &filter);
            t.observe(
                &poll(1000, polled.clone().into_iter().collect(), vec![]),
                &filter,
            );
            let last = notice("10.0.0.2", 5000, 201, 200, 301);
            t.observe(&poll(2000, vec![], vec![last]), &filter);
            let total = totals(&t);
            assert_eq!(total.value(Counter::BytesReceived), 300, "{polled:?}");
            assert_eq!(
                total.is_approx(Counter::BytesReceived),
                !exact,
                "{polled:?}: {total:?}"
            );
        }
    }

    /// The same orphan, polled with 250 bytes received, then seen by the
    /// next poll as its FIN_WAIT2 timewait successor before its notice
    /// came: the notice completes the life with every byte received.
    #[test]
    fn an_orphan_whose_successor_a_poll_saw_counts_every_byte_it_received() {
        let filter = FilterSet::default();
        let mut closing = notice("10.0.0.2", 5000, 201, 200, 250);
        closing.state = TcpState::FinWait1;
        closing.inode = 0;
        let mut successor = closing.clone();
        successor.state = TcpState::FinWait2;
        successor.tcp_info = None;
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        t.observe(&poll(1000, vec![closing.clone()], vec![]), &filter);
        t.observe(&poll(2000, vec![successor.clone()], vec![]), &filter);
        let last = notice("10.0.0.2", 5000, 201, 200, 300);
        t.observe(&poll(2500, vec![successor], vec![last]), &filter);
        let total = totals(&t);
        assert_eq!(total.value(Counter::BytesReceived), 300, "{total:?}");
    }

    /// A poll that lists a request socket, whose child (with its cookie)
    /// lives and dies before the next: one connection, from the notice.
    #[test]
    fn a_request_socket_whose_child_closed_unseen_is_one_connection() {
        let filter = FilterSet::default();
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        t.observe(&poll(1000, vec![request_of(&served(), 9)], vec![]), &filter);
        assert_eq!(totals(&t).value(Counter::PassiveOpens), 0);
        t.observe(&poll(2000, vec![], vec![served()]), &filter);
        t.observe(&poll(3000, vec![], vec![]), &filter);
        assert_one_served_connection(&totals(&t));
    }

    /// A socket the first dump listed and destroyed before that poll's
    /// notices were read: its close is inside the window.
    #[test]
    fn a_notice_read_with_the_first_poll_of_a_socket_it_listed_counts_its_close() {
        let filter = FilterSet::default();
        let mut alive = notice("10.0.0.2", 5000, 301, 300, 200);
        alive.state = TcpState::Established;
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![alive], vec![served()]), &filter);
        t.observe(&poll(1000, vec![], vec![]), &filter);
        t.observe(&poll(2000, vec![], vec![]), &filter);
        let total = totals(&t);
        assert_eq!(total.value(Counter::BytesSent), 200, "{total:?}");
        assert_eq!(total.value(Counter::BytesReceived), 500, "{total:?}");
        assert_eq!(total.value(Counter::EstabResets), 0, "{total:?}");
        assert!(!total.is_approx(Counter::EstabResets));
        // Another's notice in the first poll is of a close before the run.
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![served()]), &filter);
        t.observe(&poll(1000, vec![], vec![]), &filter);
        assert_eq!(totals(&t).value(Counter::PassiveOpens), 0);
    }

    /// The same child seen by a poll before its notice.
    #[test]
    fn a_request_socket_whose_child_a_poll_sees_is_one_connection() {
        let filter = FilterSet::default();
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        t.observe(&poll(1000, vec![request_of(&served(), 9)], vec![]), &filter);
        let mut child = notice("10.0.0.2", 5000, 101, 100, 100);
        child.state = TcpState::Established;
        t.observe(&poll(2000, vec![child], vec![]), &filter);
        assert_eq!(totals(&t).value(Counter::PassiveOpens), 1);
        t.observe(&poll(3000, vec![], vec![served()]), &filter);
        assert_one_served_connection(&totals(&t));
    }

    /// A request socket whose cookie its child did not get (the dump gave
    /// it one after the child was made): the request vanishes, opening
    /// nothing, and the child's notice counts the connection.
    #[test]
    fn a_request_socket_of_another_cookie_opens_nothing() {
        let filter = FilterSet::default();
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        t.observe(
            &poll(1000, vec![request_of(&served(), 8)], vec![served()]),
            &filter,
        );
        t.observe(&poll(2000, vec![], vec![]), &filter);
        t.observe(&poll(3000, vec![], vec![]), &filter);
        assert_one_served_connection(&totals(&t));
    }

    /// A server socket a poll saw, gone for two polls with no notice (so
    /// closed as vanished, a reset guessed), then its notice late: one
    /// connection, its bytes whole, and the close it really was.
    #[test]
    fn a_notice_later_than_its_grace_completes_the_vanished_life() {
        let filter = FilterSet::default();
        let mut alive = notice("10.0.0.2", 5000, 301, 300, 201);
        alive.state = TcpState::Established;
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        t.observe(&poll(1000, vec![alive], vec![]), &filter);
        t.observe(&poll(2000, vec![], vec![]), &filter);
        t.observe(&poll(3000, vec![], vec![]), &filter);
        let guessed: u64 = t
            .rows()
            .map(|r| r.counters.value(Counter::EstabResets))
            .sum();
        assert_eq!(guessed, 1, "closed as vanished, a reset guessed");
        t.observe(&poll(4000, vec![], vec![served()]), &filter);
        let total = totals(&t);
        assert_one_served_connection(&total);
        assert!(!total.is_approx(Counter::EstabResets));
        // A second copy of the notice is another connection's business no
        // more: the life is complete.
        assert_eq!(t.rows().filter(|r| r.closed).count(), 1);
    }

    /// A client's notice (local 127.0.0.1:40000 to 10.0.0.2:80): SYN, 500
    /// data and FIN acknowledged, cookie 9.
    fn client_closed() -> SocketSample {
        let mut closed = notice("10.0.0.2", 80, 502, 500, 0);
        closed.key.local_port = 40000;
        closed
    }

    /// The FIN_WAIT2 mini socket the client's full socket became: the
    /// same tuple and cookie, no tcp_info.
    fn orphan_successor() -> SocketSample {
        SocketSample::bare(client_closed().key, 9, TcpState::FinWait2)
    }

    fn assert_one_client_connection(total: &Counters) {
        assert_eq!(total.value(Counter::ActiveOpens), 1, "{total:?}");
        assert_eq!(total.value(Counter::PassiveOpens), 0);
        assert_eq!(total.value(Counter::EstabResets), 0);
        assert_eq!(total.value(Counter::BytesSent), 500);
    }

    /// Another sock_diag reader (`ss -tn`) listed the client while it
    /// lived, which gave it its cookie; its FIN_WAIT2 successor inherited
    /// it. Our polls saw only the successor, with the notice in the same
    /// poll or the next: the notice is the whole connection.
    #[test]
    fn a_notice_whose_successor_another_reader_gave_its_cookie_counts_the_connection() {
        for notice_poll in [1000, 2000] {
            let filter = FilterSet::default();
            let mut t = Tracker::new();
            t.observe(&poll(0, vec![], vec![]), &filter);
            let at = |ms| {
                (ms == notice_poll)
                    .then(client_closed)
                    .into_iter()
                    .collect()
            };
            t.observe(&poll(1000, vec![orphan_successor()], at(1000)), &filter);
            t.observe(&poll(2000, vec![orphan_successor()], at(2000)), &filter);
            t.observe(&poll(3000, vec![orphan_successor()], vec![]), &filter);
            assert_one_client_connection(&totals(&t));
        }
    }

    /// The same successor when our own poll saw the full socket: the
    /// notice completes the life the polls counted, once.
    #[test]
    fn a_notice_after_a_polled_socket_became_its_successor_counts_it_once() {
        let filter = FilterSet::default();
        let mut alive = client_closed();
        alive.state = TcpState::Established;
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        t.observe(&poll(1000, vec![alive], vec![]), &filter);
        t.observe(&poll(2000, vec![orphan_successor()], vec![]), &filter);
        t.observe(
            &poll(3000, vec![orphan_successor()], vec![client_closed()]),
            &filter,
        );
        assert_one_client_connection(&totals(&t));
    }

    /// A successor present at the first poll: its full socket closed before
    /// the run, and a notice of it arriving late is no connection of the
    /// window's.
    #[test]
    fn a_late_notice_of_a_successor_from_before_the_run_counts_nothing() {
        let filter = FilterSet::default();
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![orphan_successor()], vec![]), &filter);
        t.observe(
            &poll(1000, vec![orphan_successor()], vec![client_closed()]),
            &filter,
        );
        assert_eq!(totals(&t).value(Counter::ActiveOpens), 0);
        assert_eq!(totals(&t).value(Counter::BytesSent), 0);
    }

    /// A connection from 10.0.0.2:5000 to port 80 (the listener's, in
    /// namespace 0) that sent 100 bytes and was reset,
    /// whose notice's clock says its last data went out `since_sent_ms`
    /// before the notice, and whose SYN was delivered (`delivered` 2) or
    /// not (0: a connect that never completed keeps no clock of its own).
    fn reset_notice(since_sent_ms: u32, delivered: u32, netns: u64) -> SocketSample {
        let mut notice = notice("10.0.0.2", 5000, 101, 100, 0);
        notice.key.netns = netns;
        notice.tcp_info = Some(TcpInfo::built(TcpState::Close, |raw| {
            raw.u32(44, since_sent_ms)
                .u32(148, 40)
                .u32(192, delivered)
                .u32(228, 65535)
                .u64(120, 101)
                .u32(136, 2)
                .u32(140, 3)
                .u64(200, 100);
        }));
        notice
    }

    /// A connect's tcp_info: `acked` bytes acknowledged (its SYN, 500
    /// bytes sent in one data segment, its FIN maybe), `delivered`
    /// deliveries, `again` segments sent again.
    fn connect_info(acked: u64, delivered: u32, again: u32) -> TcpInfo {
        TcpInfo::built(TcpState::Close, |raw| {
            raw.u32(100, again)
                .u64(120, acked)
                .u32(156, 1)
                .u32(192, delivered)
                .u64(200, 500);
        })
    }

    #[test]
    fn a_connects_syn_maybe_sent_again_shows_as_one_delivery_more() {
        // A simultaneous open: its SYN, the SYN again, its data (and FIN).
        assert!(syn_maybe_sent_again(&connect_info(501, 3, 0)));
        assert!(syn_maybe_sent_again(&connect_info(502, 4, 0)));
        // (Or a Fast Open connect with a cookie and an empty SYN.) A
        // plain connect delivers its SYN, its data and its FIN.
        assert!(!syn_maybe_sent_again(&connect_info(501, 2, 0)));
        assert!(!syn_maybe_sent_again(&connect_info(502, 3, 0)));
        // Anything sent again, or left unacknowledged: no telling.
        assert!(!syn_maybe_sent_again(&connect_info(501, 3, 1)));
        assert!(!syn_maybe_sent_again(&connect_info(301, 3, 0)));
        assert!(!syn_maybe_sent_again(&TcpInfo::built(
            TcpState::Close,
            |_| {}
        )));
    }

    /// A connection reset before the run's first poll and held in CLOSE
    /// by its application (no dump lists it), closed during the run: its
    /// notice's clock goes back before the first poll, so it had ended
    /// then and nothing of it is the run's. One that established after
    /// that poll counts whole, as do a connect that never completed, one
    /// whose clock is within the slack of that poll, and one of a
    /// namespace that poll did not list.
    #[test]
    fn a_notice_whose_clock_goes_back_before_the_first_poll_counts_nothing() {
        let filter = FilterSet::default();
        let counted = |notice: SocketSample| {
            let mut t = Tracker::new();
            t.observe(&poll(10_000, vec![], vec![]), &filter);
            t.observe(&poll(11_000, vec![], vec![notice]), &filter);
            let before_run = t.notices_before_run();
            (totals(&t), before_run)
        };
        let (total, before_run) = counted(reset_notice(3_000, 2, 0));
        assert!(total.is_all_zero(), "{total:?}");
        assert_eq!(before_run, 1);
        for (since_sent_ms, delivered, netns) in
            [(500, 2, 0), (3_000, 0, 0), (1_010, 2, 0), (3_000, 2, 7)]
        {
            let (total, before_run) = counted(reset_notice(since_sent_ms, delivered, netns));
            let case = format!("{since_sent_ms} ms, delivered {delivered}, netns {netns}");
            let opens = total.value(Counter::PassiveOpens) + total.value(Counter::ActiveOpens);
            assert_eq!(opens, 1, "{case}");
            assert_eq!(total.value(Counter::BytesSent), 100, "{case}");
            assert_eq!(before_run, 0, "{case}");
        }
    }

    /// An abort no poll saw, under a filter on the peer port its notice
    /// lost: in no row, counted apart as one the filters cannot place.
    #[test]
    fn an_unseen_abort_under_a_remote_port_filter_is_counted_apart() {
        let filter = FilterSet::parse(&["*-*:5000"]).unwrap();
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        let aborted = notice("10.0.0.2", 0, 0, 0, 0);
        t.observe(&poll(1000, vec![], vec![aborted]), &filter);
        assert_eq!(t.rows().count(), 0);
        let apart = t.unplaced_by_filters();
        assert_eq!(apart.sockets, 1);
        assert_eq!(apart.counters.value(Counter::EstabResets), 1);
        // A filter that tests nothing the abort lost takes it in.
        let mut t = Tracker::new();
        let wide = FilterSet::parse(&["*-10.0.0.2:*"]).unwrap();
        t.observe(&poll(0, vec![], vec![]), &wide);
        t.observe(
            &poll(1000, vec![], vec![notice("10.0.0.2", 0, 0, 0, 0)]),
            &wide,
        );
        assert_eq!(totals(&t).value(Counter::EstabResets), 1);
        assert_eq!(t.unplaced_by_filters().sockets, 0);
    }

    /// A socket polled in CLOSE_WAIT (the peer's FIN in, not counted as
    /// data), vanished, then its notice late: the FIN the notice counts is
    /// still no data byte.
    #[test]
    fn a_late_notice_after_close_wait_counts_the_peer_fin_as_no_data() {
        let filter = FilterSet::default();
        let mut closing = notice("10.0.0.2", 5000, 300, 300, 201);
        closing.state = TcpState::CloseWait;
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        t.observe(&poll(1000, vec![closing], vec![]), &filter);
        t.observe(&poll(2000, vec![], vec![]), &filter);
        t.observe(&poll(3000, vec![], vec![]), &filter);
        t.observe(
            &poll(4000, vec![], vec![notice("10.0.0.2", 5000, 301, 300, 201)]),
            &filter,
        );
        let total = totals(&t);
        assert_eq!(total.value(Counter::BytesReceived), 200, "{total:?}");
        assert_eq!(total.value(Counter::BytesSent), 300, "{total:?}");
    }

    #[test]
    fn an_acknowledged_fin_is_an_orderly_close_on_either_side() {
        // Client: SYN + 700 data + FIN acknowledged.
        assert_eq!(
            Ending::of(&notice("10.0.0.2", 5000, 702, 700, 501), false, SYN_RETRIES),
            Ending::Orderly
        );
        // Server: 500 data + FIN acknowledged (its SYN-ACK is not counted).
        assert_eq!(
            Ending::of(&notice("10.0.0.2", 5000, 501, 500, 701), true, SYN_RETRIES),
            Ending::Orderly
        );
    }

    /// A connect polled in SYN_SENT, established and reset by its peer
    /// before the next poll: its SYN acknowledged, its FIN never sent.
    #[test]
    fn a_reset_after_a_handshake_the_last_poll_saw_under_way_is_an_estab_reset() {
        let filter = FilterSet::default();
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        let mut connecting = notice_with("10.0.0.2", 5000, 0, 0, 0, 0);
        connecting.key.local_port = 40000;
        connecting.state = TcpState::SynSent;
        t.observe(&poll(1000, vec![connecting], vec![]), &filter);
        let mut reset = notice("10.0.0.2", 5000, 1, 0, 0);
        reset.key.local_port = 40000;
        t.observe(&poll(2000, vec![], vec![reset]), &filter);
        let total = totals(&t);
        assert_eq!(total.value(Counter::AttemptFails), 0, "{total:?}");
        assert_eq!(total.value(Counter::EstabResets), 1, "{total:?}");
        assert!(total.is_approx(Counter::EstabResets));
    }

    #[test]
    fn an_unacknowledged_fin_is_a_likely_reset() {
        assert_eq!(
            Ending::of(&notice("10.0.0.2", 5000, 500, 500, 1000), true, SYN_RETRIES),
            Ending::LikelyReset
        );
        assert_eq!(
            Ending::of(&notice("10.0.0.2", 5000, 701, 700, 0), false, SYN_RETRIES),
            Ending::LikelyReset
        );
        let counts = Ending::LikelyReset.state_counts(Some(TcpState::Established));
        assert_eq!(counts.value(Counter::EstabResets), 1);
        assert!(counts.is_approx(Counter::EstabResets));
    }

    #[test]
    fn cleared_counters_with_the_peer_port_gone_are_an_abort() {
        let aborted = notice("10.0.0.2", 0, 0, 0, 0);
        assert_eq!(Ending::of(&aborted, false, SYN_RETRIES), Ending::Aborted);
        let counts = Ending::Aborted.state_counts(Some(TcpState::Established));
        assert_eq!(counts.value(Counter::EstabResets), 1);
        assert!(!counts.is_approx(Counter::EstabResets));
    }

    /// A connect polled in SYN_SENT that its application closed with
    /// SO_LINGER 0 (no failed attempt for the kernel) leaves the notice a
    /// failed blocking connect leaves (one): the failure is a guess.
    #[test]
    fn a_cleared_notice_of_a_polled_connect_is_an_approximate_failure() {
        let filter = FilterSet::default();
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        let mut connecting = notice_with("10.0.0.2", 5000, 0, 0, 0, 0);
        connecting.key.local_port = 40000;
        connecting.state = TcpState::SynSent;
        t.observe(&poll(1000, vec![connecting], vec![]), &filter);
        let mut cleared = notice_with("10.0.0.2", 0, 0, 0, 0, 0);
        cleared.key.local_port = 40000;
        t.observe(&poll(2000, vec![], vec![cleared]), &filter);
        let total = totals(&t);
        assert_eq!(total.value(Counter::AttemptFails), 1, "{total:?}");
        assert!(total.is_approx(Counter::AttemptFails), "{total:?}");
    }

    /// A connect polled in SYN_SENT, then established and aborted before
    /// the next poll: its cleared notice keeps the peer's window, which
    /// only a SYN-ACK sets. The abort reset an established connection (the
    /// kernel's EstabResets), not a failed attempt.
    #[test]
    fn an_abort_after_a_syn_ack_the_last_poll_missed_is_an_estab_reset() {
        let filter = FilterSet::default();
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        let mut connecting = notice_with("10.0.0.2", 5000, 0, 0, 0, 0);
        connecting.key.local_port = 40000;
        connecting.state = TcpState::SynSent;
        t.observe(&poll(1000, vec![connecting], vec![]), &filter);
        let mut aborted = notice("10.0.0.2", 0, 0, 0, 0);
        aborted.key.local_port = 40000;
        t.observe(&poll(2000, vec![], vec![aborted]), &filter);
        let total = totals(&t);
        assert_eq!(total.value(Counter::ActiveOpens), 1, "{total:?}");
        assert_eq!(total.value(Counter::AttemptFails), 0, "{total:?}");
        assert_eq!(total.value(Counter::EstabResets), 1, "{total:?}");
    }

    /// A refused connect's failed `connect()` runs `tcp_disconnect` too:
    /// cleared, but no SYN-ACK ever set its peer window.
    #[test]
    fn cleared_counters_without_a_peer_window_are_a_failed_connect() {
        let failed = notice_with("10.0.0.2", 0, 0, 0, 0, 0);
        assert_eq!(
            Ending::of(&failed, false, SYN_RETRIES),
            Ending::ConnectAborted
        );
        let unseen = Ending::ConnectAborted.state_counts(None);
        assert_eq!(unseen.value(Counter::AttemptFails), 1);
        assert!(unseen.is_approx(Counter::AttemptFails));
        assert_eq!(unseen.value(Counter::EstabResets), 0);
        let polled = Ending::ConnectAborted.state_counts(Some(TcpState::SynSent));
        assert_eq!(polled.value(Counter::AttemptFails), 1);
        // An accepted socket's peer window came with the SYN: an abort.
        assert_eq!(Ending::of(&failed, true, SYN_RETRIES), Ending::Aborted);
    }

    /// A failed connect known from its cleared notice alone sent its SYN,
    /// the one segment of it the namespace counts in OutSegs.
    #[test]
    fn a_failed_connect_no_poll_saw_sent_its_syn() {
        let filter = FilterSet::default();
        let mut t = Tracker::default();
        t.observe(&poll(0, vec![], vec![]), &filter);
        let mut failed = notice_with("10.0.0.2", 0, 0, 0, 0, 0);
        failed.key.local_port = 40000;
        failed.cookie = 11;
        t.observe(&poll(1000, vec![], vec![failed]), &filter);
        let total = totals(&t);
        assert_eq!(total.value(Counter::ActiveOpens), 1, "{total:?}");
        assert_eq!(total.value(Counter::OutSegs), 1, "{total:?}");
        // A deferred Fast Open connect closed with SO_LINGER 0 sent none.
        assert!(total.is_approx(Counter::OutSegs), "{total:?}");
    }

    /// An established connection aborted while its peer advertised a zero
    /// window (a reader that stopped reading) is cleared with `snd_wnd` 0
    /// too, but it measured RTTs, which `tcp_disconnect` keeps: an abort.
    #[test]
    fn an_abort_against_a_zero_window_is_no_failed_connect() {
        let stuck = notice_timed("10.0.0.2", 0, [0, 0, 0], 0, 20);
        assert_eq!(Ending::of(&stuck, false, SYN_RETRIES), Ending::Aborted);
    }

    /// A listener that lived less than a poll: the poll that first sees its
    /// accepted child also brings the listener's notice.
    #[test]
    fn a_child_whose_listener_closed_before_any_poll_is_a_passive_open() {
        let filter = FilterSet::default();
        let mut t = Tracker::new();
        let mut baseline = Snapshot::new(0, SocketSource::SockDiag, vec![]);
        baseline.closes_watched = true;
        t.observe(&baseline, &filter);
        let mut child = notice("10.0.0.2", 5000, 101, 100, 100);
        child.state = TcpState::Established;
        child.cookie = 11;
        let listener_gone = notice("0.0.0.0", 0, 0, 0, 0);
        let mut next = Snapshot::new(1000, SocketSource::SockDiag, vec![child]);
        next.closes_watched = true;
        next.closed = vec![listener_gone];
        t.observe(&next, &filter);
        let total = totals(&t);
        assert_eq!(total.value(Counter::PassiveOpens), 1, "{total:?}");
        assert_eq!(total.value(Counter::ActiveOpens), 0, "{total:?}");
    }

    /// A server socket its last ACK destroyed while a dump held it (the
    /// dump gathers a hash bucket's sockets under its lock and fills their
    /// messages after): listed in CLOSE with local port 0, its port
    /// released (`inet_put_port` zeroes `sk_num`, which the dump reports),
    /// and its notice, with the real port (`inet_sport`), read with that
    /// poll or the next. One passive open, its SYN-ACK counted: a local
    /// port 0 is no listener's, and counting it as polled made it an
    /// active open (CI's soak: ActiveOpens one over, PassiveOpens and
    /// OutSegs one short).
    #[test]
    fn a_child_listed_as_its_port_was_released_is_a_passive_open() {
        let filter = FilterSet::default();
        let mut torn_down = served();
        torn_down.key.local_port = 0;
        for notice_late in [false, true] {
            let mut t = Tracker::new();
            t.observe(&poll(0, vec![], vec![]), &filter);
            let now = if notice_late { vec![] } else { vec![served()] };
            t.observe(&poll(1000, vec![torn_down.clone()], now), &filter);
            let later = if notice_late { vec![served()] } else { vec![] };
            t.observe(&poll(2000, vec![], later), &filter);
            t.observe(&poll(3000, vec![], vec![]), &filter);
            let total = totals(&t);
            assert_one_served_connection(&total);
            // Its own segment and its listener's SYN-ACK.
            assert_eq!(
                total.value(Counter::OutSegs),
                2,
                "late {notice_late}: {total:?}"
            );
        }
        // Polled alive before, as accepted: the same connection, once.
        let mut alive = notice("10.0.0.2", 5000, 301, 300, 200);
        alive.state = TcpState::Established;
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        t.observe(&poll(1000, vec![alive], vec![]), &filter);
        t.observe(&poll(2000, vec![torn_down], vec![served()]), &filter);
        t.observe(&poll(3000, vec![], vec![]), &filter);
        assert_one_served_connection(&totals(&t));
        assert!(t.closed().iter().all(|c| c.sample.key.local_port == 80));
    }

    /// A poll with no listener (none on port 8080 was ever dumped) and
    /// these sockets and close notices.
    fn poll_without_listener(
        ms: u64,
        sockets: Vec<SocketSample>,
        closed: Vec<SocketSample>,
    ) -> Snapshot {
        let mut snapshot = Snapshot::new(ms, SocketSource::SockDiag, sockets);
        snapshot.closes_watched = true;
        snapshot.closed = closed;
        snapshot
    }

    /// The notice of a listener on 127.0.0.1:8080 that lived between two
    /// polls.
    fn listener_8080_notice() -> SocketSample {
        let key = SocketKey::new(
            "127.0.0.1".parse().unwrap(),
            8080,
            "0.0.0.0".parse().unwrap(),
            0,
        );
        let mut notice = SocketSample::bare(key, 2, TcpState::Close);
        notice.tcp_info = TcpInfo::from_bytes(&[TcpState::Close as u8; 1]);
        notice
    }

    /// `sample` on the local port 8080.
    fn on_8080(mut sample: SocketSample) -> SocketSample {
        sample.key.local_port = 8080;
        sample
    }

    /// Polls a second apart with no listener on 8080 dumped, each with
    /// these (sockets, notices); the window's totals.
    fn totals_of_polls_without_listener(
        polls: Vec<(Vec<SocketSample>, Vec<SocketSample>)>,
    ) -> Counters {
        let filter = FilterSet::default();
        let mut t = Tracker::new();
        t.observe(&poll_without_listener(0, vec![], vec![]), &filter);
        for (i, (sockets, notices)) in polls.into_iter().enumerate() {
            let ms = 1000 * (i as u64 + 1);
            t.observe(&poll_without_listener(ms, sockets, notices), &filter);
        }
        totals(&t)
    }

    #[test]
    fn a_child_seen_before_its_listener_is_accepted_once_the_listener_notice_comes() {
        let listener = listener_8080_notice;
        let child = || on_8080(served());
        let mut alive = on_8080(notice("10.0.0.2", 5000, 301, 300, 200));
        alive.state = TcpState::Established;
        let cases = [
            // The child's notice first: nothing showed a listener on 8080.
            (
                "noticed",
                vec![(vec![], vec![child()]), (vec![], vec![listener()])],
            ),
            // Dumped, still there when the listener's notice comes.
            (
                "dumped",
                vec![
                    (vec![alive.clone()], vec![]),
                    (vec![alive.clone()], vec![listener()]),
                    (vec![], vec![child()]),
                ],
            ),
            // Dumped, and closed before the listener's notice came: its
            // orderly end was read as a connect's (a likely reset, the
            // peer's FIN a data byte) until then.
            (
                "dumped and closed",
                vec![
                    (vec![alive.clone()], vec![]),
                    (vec![], vec![child()]),
                    (vec![], vec![listener()]),
                ],
            ),
        ];
        for (case, polls) in cases {
            let total = totals_of_polls_without_listener(polls);
            assert_one_served_connection(&total);
            assert!(!total.is_approx(Counter::EstabResets), "{case}: {total:?}");
            // Its own segment and its listener's SYN-ACK.
            assert_eq!(total.value(Counter::OutSegs), 2, "{case}: {total:?}");
        }
    }

    #[test]
    fn a_connect_refused_after_its_last_poll_keeps_no_final_tcp_info_to_settle_by() {
        // Polled in SYN_SENT, then refused (an AttemptFail), its counters
        // cleared by the failed connect(), its notice later than the
        // grace: its row keeps the poll's tcp_info, which cannot tell the
        // namespace's settling that no answer came.
        let filter = FilterSet::default();
        let mut raw = vec![0u8; 232];
        raw[0] = TcpState::SynSent as u8;
        raw[136..140].copy_from_slice(&1u32.to_ne_bytes());
        let mut connecting = notice("10.0.0.2", 5000, 0, 0, 0);
        connecting.key.local_port = 40000;
        connecting.state = TcpState::SynSent;
        connecting.tcp_info = TcpInfo::from_bytes(&raw);
        let mut refused = notice_with("10.0.0.2", 0, 0, 0, 0, 0);
        refused.key.local_port = 40000;
        let mut t = Tracker::new();
        t.observe(&poll_without_listener(0, vec![], vec![]), &filter);
        t.observe(
            &poll_without_listener(1000, vec![connecting], vec![]),
            &filter,
        );
        for ms in [2000, 3000] {
            t.observe(&poll_without_listener(ms, vec![], vec![]), &filter);
        }
        t.observe(&poll_without_listener(4000, vec![], vec![refused]), &filter);
        let rows: Vec<_> = t.rows().collect();
        let [row] = &rows[..] else {
            panic!("one row: {rows:?}");
        };
        assert_eq!(row.sample.state, TcpState::Close);
        assert!(
            row.counters.is_approx(Counter::AttemptFails),
            "{:?}",
            row.counters
        );
        assert_eq!(super::super::unanswered_connect(row.sample), None);
    }

    #[test]
    fn a_listener_notice_revisits_no_socket_on_another_port() {
        // A connect from port 8081: the listener on 8080 is not its.
        let filter = FilterSet::default();
        let mut t = Tracker::new();
        t.observe(&poll_without_listener(0, vec![], vec![]), &filter);
        let mut connect = on_8080(served());
        connect.key.local_port = 8081;
        t.observe(&poll_without_listener(1000, vec![], vec![connect]), &filter);
        t.observe(
            &poll_without_listener(2000, vec![], vec![listener_8080_notice()]),
            &filter,
        );
        let total = totals(&t);
        assert_eq!(total.value(Counter::ActiveOpens), 1, "{total:?}");
        assert_eq!(total.value(Counter::PassiveOpens), 0, "{total:?}");
    }

    /// An abort's notice comes with its counters cleared: the bytes the
    /// last poll saw stand, but what went after (the reset, data since
    /// that poll) is unknown, and the report says so.
    #[test]
    fn an_abort_leaves_the_counters_it_cleared_approximate() {
        let filter = FilterSet::default();
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        let mut alive = notice("10.0.0.2", 5000, 101, 100, 0);
        alive.state = TcpState::Established;
        t.observe(&poll(1000, vec![alive], vec![]), &filter);
        let aborted = notice("10.0.0.2", 0, 0, 0, 0);
        t.observe(&poll(2000, vec![], vec![aborted.clone()]), &filter);
        let total = totals(&t);
        assert_eq!(total.value(Counter::BytesSent), 100);
        assert!(total.is_approx(Counter::BytesSent), "{total:?}");
        assert!(!total.is_approx(Counter::EstabResets));
        // Never polled: its whole life is unknown but for its reset.
        let mut unseen = aborted;
        unseen.cookie = 12;
        t.reset_window();
        t.observe(&poll(3000, vec![], vec![unseen]), &filter);
        let total = totals(&t);
        assert_eq!(total.value(Counter::EstabResets), 1);
        assert!(total.is_approx(Counter::BytesSent), "{total:?}");
        assert!(total.is_approx(Counter::BytesReceived), "{total:?}");
    }

    /// The final counters of a Fast Open child whose handshake's ACK never
    /// came, as notices showed them (packetdrill's fastopen/server
    /// scripts on 6.18), and the AttemptFails the namespace counted.
    #[test]
    fn a_fast_open_childs_unacked_end_fails_as_the_kernel_counts() {
        // (segs_in, data_segs_in, segs_out, data_segs_out) -> fails
        for (counts, fails, case) in [
            (
                (2, 1, 0, 0),
                2,
                "reset before accept: tcp_check_req and tcp_done",
            ),
            (
                (2, 1, 2, 1),
                1,
                "reset in FIN_WAIT1, after its data and FIN",
            ),
            ((1, 1, 1, 0), 0, "closed with unread data: reset sent"),
            ((1, 1, 0, 0), 1, "an ICMP error: tcp_done"),
        ] {
            let (segs_in, data_in, segs_out, data_out) = counts;
            let mut raw = vec![0u8; 232];
            raw[0] = TcpState::Close as u8;
            raw[5] = TCPI_OPT_SYN_DATA | 0x2;
            raw[148..152].copy_from_slice(&u32::MAX.to_ne_bytes());
            raw[128..136].copy_from_slice(&10u64.to_ne_bytes());
            raw[136..140].copy_from_slice(&(segs_out as u32).to_ne_bytes());
            raw[140..144].copy_from_slice(&(segs_in as u32).to_ne_bytes());
            raw[152..156].copy_from_slice(&(data_in as u32).to_ne_bytes());
            raw[156..160].copy_from_slice(&(data_out as u32).to_ne_bytes());
            let mut child = notice("10.0.0.2", 5000, 0, 0, 0);
            // Once the handshake's ACK came, an RTT was sampled: whatever
            // else, no unacked child.
            raw[148..152].copy_from_slice(&100_000u32.to_ne_bytes());
            child.tcp_info = TcpInfo::from_bytes(&raw);
            let acked = Ending::of(&child, true, SYN_RETRIES);
            assert!(!matches!(acked, Ending::FastOpenUnacked(_)), "{case}");
            raw[148..152].copy_from_slice(&u32::MAX.to_ne_bytes());
            child.tcp_info = TcpInfo::from_bytes(&raw);
            let ending = Ending::of(&child, true, SYN_RETRIES);
            assert_eq!(ending, Ending::FastOpenUnacked(fails), "{case}");
            let counts = ending.state_counts(None);
            assert_eq!(
                counts.get(Counter::AttemptFails),
                Some(u64::from(fails)),
                "{case}"
            );
            assert_eq!(counts.value(Counter::EstabResets), 0, "{case}");
            // Born a full socket: an open, whichever way it ended.
            let filter = FilterSet::default();
            let mut t = Tracker::new();
            t.observe(&poll(0, vec![], vec![]), &filter);
            t.observe(&poll(1000, vec![], vec![child]), &filter);
            let total = totals(&t);
            assert_eq!(total.value(Counter::PassiveOpens), 1, "{case}: {total:?}");
            assert_eq!(
                total.value(Counter::AttemptFails),
                u64::from(fails),
                "{case}"
            );
        }
    }

    /// TCP_FASTOPEN_CONNECT defers the SYN to the first write: a socket
    /// closed before one sent nothing and opened nothing.
    #[test]
    fn a_connect_that_never_sent_its_syn_opens_nothing() {
        let mut deferred = notice("10.0.0.2", 5000, 0, 0, 0);
        let mut raw = vec![0u8; 232];
        raw[0] = TcpState::Close as u8;
        deferred.tcp_info = TcpInfo::from_bytes(&raw);
        assert_eq!(Ending::of(&deferred, false, SYN_RETRIES), Ending::NeverSent);
        let filter = FilterSet::default();
        let mut t = Tracker::new();
        t.observe(&poll(0, vec![], vec![]), &filter);
        // Polled in SYN_SENT with nothing sent, then closed.
        let mut connecting = deferred.clone();
        connecting.state = TcpState::SynSent;
        t.observe(&poll(1000, vec![connecting], vec![]), &filter);
        t.observe(&poll(2000, vec![], vec![deferred.clone()]), &filter);
        let mut unseen = deferred;
        unseen.cookie = 10;
        t.observe(&poll(3000, vec![], vec![unseen]), &filter);
        let total = totals(&t);
        assert_eq!(total.value(Counter::ActiveOpens), 0, "{total:?}");
        assert_eq!(total.value(Counter::AttemptFails), 0, "{total:?}");
    }

    #[test]
    fn a_listener_or_unconnected_socket_is_no_connection() {
        assert_eq!(
            Ending::of(&notice("0.0.0.0", 0, 0, 0, 0), true, SYN_RETRIES),
            Ending::NotConnected
        );
    }

    #[test]
    fn a_connect_that_never_completed_failed_as_the_kernel_counts_it() {
        // (segments that reached it, SYNs sent again) → its ending, and
        // the AttemptFails it adds (value, approximate).
        for (segs_in, again, ending, fails) in [
            // A reset answered: refused, tcp_done counts it.
            (1u32, 0u32, Ending::Refused, (1, false)),
            // Answered after a retry: refused then, or a SYN-ACK it
            // rejected (and retried at 2 ms) before its close.
            (1, 1, Ending::RefusedOrRejected, (1, true)),
            // No answer, every retry spent: the kernel gave up.
            (0, SYN_RETRIES, Ending::GaveUp, (1, true)),
            // No answer, retries left: the application closed it.
            (0, 2, Ending::Abandoned, (0, true)),
        ] {
            let mut failed = notice("10.0.0.2", 5000, 0, 0, 0);
            let mut raw = vec![0u8; 232];
            raw[0] = TcpState::Close as u8;
            raw[100..104].copy_from_slice(&again.to_ne_bytes());
            // Its SYN, and each time it was sent again.
            raw[136..140].copy_from_slice(&(1 + again).to_ne_bytes());
            raw[140..144].copy_from_slice(&segs_in.to_ne_bytes());
            failed.tcp_info = TcpInfo::from_bytes(&raw);
            assert_eq!(Ending::of(&failed, false, SYN_RETRIES), ending);
            let counts = ending.state_counts(None);
            let got = (
                counts.value(Counter::AttemptFails),
                counts.is_approx(Counter::AttemptFails),
            );
            assert_eq!(got, fails, "{ending:?}");
        }
    }

    #[test]
    fn the_peer_fin_is_no_data_byte() {
        let mut counters = Counters::default();
        counters.set(Counter::BytesReceived, 1001, false);
        drop_fin(&mut counters);
        assert_eq!(counters.get(Counter::BytesReceived), Some(1000));
    }
}
