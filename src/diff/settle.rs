//! What a namespace's own counters settle about its sockets' opens and
//! fails where the sockets alone leave them open.
//!
//! Some endings leave one socket's AttemptFail or EstabReset uncertain: 0
//! or 1, marked `~` (a Fast Open connect reset in FIN_WAIT1 leaves the
//! notice an ESTABLISHED one would; a connect given up after its own
//! `TCP_SYNCNT` looks abandoned). The namespace counted each one that
//! happened. When every socket of the namespace is accounted for, its count
//! less the sockets' sure ones is what the uncertain sockets add, and when
//! that is 0, or one for each of them, only one answer adds up: each
//! uncertain count is then exact. Anything in between stays `~`.
//!
//! A request socket (a listener's handshake under way) that a reset or a new
//! SYN ends counts an AttemptFail in `tcp_check_req`, which no dump, notice
//! or tracepoint shows, and one TcpExt:EmbryonicRsts. Its listener owns it:
//! where the namespace had one listener over the window, its request
//! sockets' fails are that listener's (the peer stays unknown).
//!
//! A connect that ended with no answer to its SYN failed (an AttemptFail)
//! only if the kernel gave it up or a hard ICMP error ended it; its
//! application's close counts none, and its notice looks the same. The
//! kernel gives a connect up only when its retransmit timer fires after a
//! first retransmit (`retransmits_timed_out`), and counts each give-up in
//! TcpExt:TCPAbortOnTimeout; a hard ICMP error arrives as
//! Icmp:InDestUnreachs or InParmProbs (Icmp6 alike). Where the namespace
//! counted none of those over a window the connect lived in whole, its
//! fail is ruled out: 0, exact.

use std::net::IpAddr;

use crate::model::SocketSample;

/// The sockets' count of one counter in one namespace: the sure part and
/// how many sockets count 0 or 1 without knowing which, of which some
/// lean one way by their own segments (see [`reset_lean`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub sure: u64,
    pub uncertain: u64,
    /// Of the uncertain ones, those whose segments lean to 1.
    pub leaning_one: u64,
    /// Of the uncertain ones, those whose segments lean to 0.
    pub leaning_zero: u64,
}

impl Tally {
    /// Adds one socket's count; `approx` with a value of at most 1 is an
    /// uncertain one. A larger approximate count is no 0-or-1 question:
    /// the namespace cannot settle it, so [`Tally::unsettled`] says so.
    pub fn add(&mut self, value: u64, approx: bool) {
        self.add_leaning(value, approx, Lean::Neither);
    }

    /// [`Tally::add`], with the way the socket's own segments lean.
    pub fn add_leaning(&mut self, value: u64, approx: bool, lean: Lean) {
        match (approx, value) {
            (true, 0 | 1) => {
                self.uncertain = self.uncertain.saturating_add(1);
                match lean {
                    Lean::One => self.leaning_one += 1,
                    Lean::Zero => self.leaning_zero += 1,
                    Lean::Neither => {}
                }
            }
            (true, _) => self.uncertain = u64::MAX,
            (false, _) => self.sure = self.sure.saturating_add(value),
        }
    }

    fn unsettled(&self) -> bool {
        self.uncertain == u64::MAX
    }
}

/// Which way a socket's own segments lean on its uncertain 0-or-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lean {
    One,
    Zero,
    Neither,
}

/// What the namespace's count settles: the count an uncertain socket takes
/// by the way it leans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    pub leaning_one: u64,
    pub neither: u64,
    pub leaning_zero: u64,
}

impl Settlement {
    fn each(count: u64) -> Settlement {
        Settlement {
            leaning_one: count,
            neither: count,
            leaning_zero: count,
        }
    }

    /// The count of an uncertain socket that leans `lean`.
    pub fn value(&self, lean: Lean) -> u64 {
        match lean {
            Lean::One => self.leaning_one,
            Lean::Neither => self.neither,
            Lean::Zero => self.leaning_zero,
        }
    }
}

/// The count every uncertain socket takes, when the namespace's count
/// leaves only one answer: 0 for each when the sure ones make it up, 1
/// for each when each uncertain one must add one. Where the count lies
/// between, the sockets' leans decide when they make it up on their own:
/// each leaning one is 1 and each leaning zero 0, and those that lean
/// neither way are then all 0 or all 1 by what is left. None otherwise
/// (none uncertain, several answers, or a namespace count the sockets
/// cannot make, which is not theirs to settle).
pub fn settle(namespace_count: i64, tally: Tally) -> Option<Settlement> {
    if tally.uncertain == 0 || tally.unsettled() {
        return None;
    }
    let left = namespace_count.checked_sub(i64::try_from(tally.sure).ok()?)?;
    let left = u64::try_from(left).ok()?;
    if left == 0 {
        return Some(Settlement::each(0));
    }
    if left == tally.uncertain {
        return Some(Settlement::each(1));
    }
    if tally.leaning_one + tally.leaning_zero == 0 {
        return None;
    }
    let neither = tally.uncertain - tally.leaning_one - tally.leaning_zero;
    let left_for_neither = left.checked_sub(tally.leaning_one)?;
    let neither_each = if left_for_neither == 0 {
        0
    } else if left_for_neither == neither {
        1
    } else {
        return None;
    };
    Some(Settlement {
        leaning_one: 1,
        neither: neither_each,
        leaning_zero: 0,
    })
}

/// Which way the segments of a socket whose reset is uncertain lean (an
/// ESTABLISHED socket reset counts an EstabReset, one in FIN_WAIT1 none,
/// and their notices read alike), from its final tcp_info (taken in
/// CLOSE: its notice's):
/// - data left unread in its receive queue (`rcv_nxt` past `copied_seq`,
///   which the close's purge leaves): its close found data unread and
///   sent a reset, from ESTABLISHED or CLOSE_WAIT, where the kernel counts
///   one (`__tcp_close`); a socket that had shut its sending side first
///   is the exception (FIN_WAIT1 or CLOSING). Leans one.
/// - a connect (`active`) that received nothing (no byte, no FIN: its
///   `bytes_received` counts the FIN) and sent nothing again, and sent more
///   segments without data than its SYN, its handshake's ACK and an answer
///   to every segment in beyond the SYN-ACK and one reset could be: one
///   was its FIN, and a socket whose FIN went out is past ESTABLISHED.
///   Leans zero (a reset it sent itself, by `ss -K`, is the exception).
pub fn reset_lean(sample: &SocketSample, active: bool) -> Lean {
    lean_of(sample, active).unwrap_or(Lean::Neither)
}

fn lean_of(sample: &SocketSample, active: bool) -> Option<Lean> {
    let info = sample.tcp_info.as_ref()?;
    if info.state()? != crate::model::TcpState::Close as u8 {
        return None;
    }
    if sample.recv_queue > 0 {
        return Some(Lean::One);
    }
    let quiet = info.bytes_received()? == 0 && info.total_retrans()? == 0;
    if !active || !quiet || info.bytes_acked()? == 0 {
        return None;
    }
    // A SYN that carried data the peer took (TCPI_OPT_SYN_DATA) is a
    // data segment; any other SYN is not.
    let syn_without_data = u32::from(info.options()? & super::closes::TCPI_OPT_SYN_DATA == 0);
    let in_beyond_syn_ack_and_reset = info.segs_in()?.saturating_sub(2);
    let explained = syn_without_data + 1 + in_beyond_syn_ack_and_reset;
    let without_data = info.segs_out()?.saturating_sub(info.data_segs_out()?);
    (without_data > explained).then_some(Lean::Zero)
}

/// How a connect that ended with no answer to its SYN could have failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnansweredConnect {
    /// No retransmit timer fired: no give-up, only a hard ICMP error.
    Unretried,
    /// Its timer fired: given up, or a hard ICMP error, or neither.
    Retried,
}

/// The connect of `sample`, if its tcp_info is its final one (taken in
/// CLOSE: its notice's, not a poll's from before a reset came), it sent
/// its SYN and nothing ever reached it (`segs_in` counts a reset too), and
/// its counters were not cleared by an abort (peer port kept).
pub fn unanswered_connect(sample: &SocketSample) -> Option<UnansweredConnect> {
    let info = sample.tcp_info.as_ref()?;
    let unanswered = info.state()? == crate::model::TcpState::Close as u8
        && sample.key.remote_port != 0
        && info.segs_in()? == 0
        && info.bytes_acked()? == 0
        && info.segs_out()? > 0;
    if !unanswered {
        return None;
    }
    // `retransmits` is the timer's count so far, `total_retrans` the
    // retransmits sent (a failed send counts in the first only).
    let retried = info.retransmits()? > 0 || info.total_retrans()? > 0;
    Some(if retried {
        UnansweredConnect::Retried
    } else {
        UnansweredConnect::Unretried
    })
}

/// A namespace's window counts that tell how its connects could fail:
/// None where the namespace's MIB files did not have them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FailCauses {
    /// Hard ICMP errors received (destination unreachable, parameter
    /// problem; IPv4 and IPv6).
    pub icmp_errors: Option<i64>,
    /// TcpExt:TCPAbortOnTimeout: connections the kernel gave up.
    pub gave_up: Option<i64>,
}

impl FailCauses {
    /// Whether a connect of `kind` that lived its whole life in the window
    /// cannot have failed.
    pub fn rule_out(&self, kind: UnansweredConnect) -> bool {
        let no_icmp = self.icmp_errors == Some(0);
        match kind {
            UnansweredConnect::Unretried => no_icmp,
            UnansweredConnect::Retried => no_icmp && self.gave_up == Some(0),
        }
    }
}

/// Per namespace (None where one is sampled), how its connects could fail.
pub type FailCausesByNamespace = rustc_hash::FxHashMap<Option<u64>, FailCauses>;

/// Hard ICMP errors a namespace received: (name, whether every namespace
/// has it; IPv6's file is absent where IPv6 is off).
const ICMP_ERRORS: [(&str, bool); 4] = [
    ("Icmp:InDestUnreachs", true),
    ("Icmp:InParmProbs", true),
    ("Icmp6:InDestUnreachs", false),
    ("Icmp6:InParmProblems", false),
];

/// Each namespace's window counts of what fails a connect (see
/// the module's doc), from `per_namespace`: a MIB name's window delta per
/// namespace (None where one is sampled).
pub fn fail_causes(
    per_namespace: impl Fn(&str) -> Vec<(Option<u64>, i64)>,
) -> FailCausesByNamespace {
    let mut causes = FailCausesByNamespace::default();
    for (netns, gave_up) in per_namespace("TcpExt:TCPAbortOnTimeout") {
        causes.entry(netns).or_default().gave_up = Some(gave_up);
    }
    // Per namespace: the errors' sum, and how many of the names every
    // namespace has it had.
    let mut icmp: rustc_hash::FxHashMap<Option<u64>, (i64, usize)> = Default::default();
    for (name, every) in ICMP_ERRORS {
        for (netns, count) in per_namespace(name) {
            let (sum, required_seen) = icmp.entry(netns).or_default();
            *sum = sum.saturating_add(count);
            *required_seen += usize::from(every);
        }
    }
    let required = ICMP_ERRORS.iter().filter(|(_, every)| *every).count();
    for (netns, (sum, required_seen)) in icmp {
        if required_seen == required {
            causes.entry(netns).or_default().icmp_errors = Some(sum);
        }
    }
    causes
}

/// A listener: (namespace, address, port).
pub type ListenerId = (u64, IpAddr, u16);

/// What the window shows of its listeners, for their request sockets'
/// resets (see [`request_listener`]).
#[derive(Debug, Default, Clone)]
pub struct ListenerEvidence {
    /// How far each polled listener's `sk_drops` moved over the window
    /// (absent: no poll read it twice, as for one that lived between two
    /// polls: its notice has no drops).
    pub drops_moved: rustc_hash::FxHashMap<ListenerId, u64>,
    /// Listeners with handshakes seen in the window: a child counted
    /// accepted on their endpoint, or a request socket a poll listed.
    pub handshakes: rustc_hash::FxHashSet<ListenerId>,
}

impl ListenerEvidence {
    /// Notes a handshake on `key`'s local endpoint: the listener of
    /// `listeners` that owns it, its own address before the wildcard (the
    /// kernel's lookup prefers the more specific one).
    pub fn saw_handshake(&mut self, listeners: &[ListenerId], key: &crate::model::SocketKey) {
        let local = crate::model::unmap(key.local);
        let wildcard = match local {
            IpAddr::V4(_) => crate::model::UNSPECIFIED_V4,
            IpAddr::V6(_) => crate::model::UNSPECIFIED_V6,
        };
        let owner = [local, wildcard]
            .into_iter()
            .map(|address| (key.netns, address, key.local_port))
            .find(|id| listeners.binary_search(id).is_ok());
        if let Some(owner) = owner {
            self.handshakes.insert(owner);
        }
    }
}

/// The listener whose request sockets a namespace's request resets were,
/// and whether that is sure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestListener {
    pub id: ListenerId,
    /// False where it is only the one listener that had handshakes: the
    /// count is the namespace's, its place a likely one (`~`).
    pub sure: bool,
}

/// The listener of namespace `netns` (None: the one namespace sampled)
/// whose request sockets the namespace's request resets were: the only
/// listener of the window, or else the only one whose `sk_drops` moved
/// (`tcp_v4_rcv` adds the segment a request socket dies of to its
/// listener's drops), where every listener's drops are known; or, where
/// every known one's stayed, the only one whose drops are not known (a
/// listener that lived between two polls: its notice has no drops). Where
/// drops leave several, the only one of them that had handshakes in the
/// window is likely (a request socket is a handshake under way; a listener
/// nobody connected to, such as one holding a port, had none), not sure.
/// `listeners` is sorted. None when nothing tells.
pub fn request_listener(
    listeners: &[ListenerId],
    netns: Option<u64>,
    evidence: &ListenerEvidence,
) -> Option<RequestListener> {
    let in_namespace: Vec<ListenerId> = listeners
        .iter()
        .copied()
        .filter(|(ns, _, _)| netns.is_none_or(|n| *ns == n))
        .collect();
    let sure = |id| Some(RequestListener { id, sure: true });
    if let [only] = in_namespace[..] {
        return sure(only);
    }
    let (mut moved, mut unknown) = (Vec::new(), Vec::new());
    for listener in &in_namespace {
        match evidence.drops_moved.get(listener) {
            Some(0) => {}
            Some(_) => moved.push(*listener),
            None => unknown.push(*listener),
        }
    }
    match (&moved[..], &unknown[..]) {
        ([only], []) | ([], [only]) => return sure(*only),
        _ => {}
    }
    let mut handshaken = moved
        .iter()
        .chain(&unknown)
        .filter(|id| evidence.handshakes.contains(id));
    match (handshaken.next(), handshaken.next()) {
        (Some(only), None) => Some(RequestListener {
            id: *only,
            sure: false,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tcp_info::{RawFields, TcpInfo};

    fn tally(counts: &[(u64, bool)]) -> Tally {
        let mut t = Tally::default();
        for &(value, approx) in counts {
            t.add(value, approx);
        }
        t
    }

    #[test]
    fn a_namespace_the_sure_counts_make_up_leaves_every_uncertain_one_at_zero() {
        // One sure reset and five sockets whose notice could be one: the
        // namespace counted one.
        let t = tally(&[
            (1, false),
            (1, true),
            (1, true),
            (0, true),
            (1, true),
            (1, true),
        ]);
        assert_eq!(
            t,
            Tally {
                sure: 1,
                uncertain: 5,
                ..Tally::default()
            }
        );
        assert_eq!(settle(1, t), Some(Settlement::each(0)));
    }

    #[test]
    fn a_namespace_count_one_above_the_sure_per_uncertain_socket_makes_each_one() {
        let t = tally(&[(1, false), (0, true), (1, true)]);
        assert_eq!(settle(3, t), Some(Settlement::each(1)));
    }

    #[test]
    fn a_count_between_leaves_them_uncertain() {
        let t = tally(&[(0, true), (1, true), (1, true)]);
        assert_eq!(settle(1, t), None);
        assert_eq!(settle(2, t), None);
    }

    #[test]
    fn a_count_the_sockets_cannot_make_settles_nothing() {
        let t = tally(&[(2, false), (1, true)]);
        // Below the sure ones: something counted is not what the sockets did.
        assert_eq!(settle(1, t), None);
        // Above every uncertain one being a fail: a socket unseen.
        assert_eq!(settle(4, t), None);
    }

    #[test]
    fn nothing_uncertain_is_nothing_to_settle() {
        assert_eq!(settle(0, tally(&[(0, false)])), None);
    }

    #[test]
    fn a_larger_approximate_count_is_no_zero_or_one_question() {
        let t = tally(&[(3, true), (1, true)]);
        assert_eq!(settle(0, t), None);
        assert_eq!(settle(4, t), None);
    }

    /// A connect's notice: `segs_out` sent, `segs_in` received, the timer
    /// fired `timer` times and `retransmitted` segments went out again.
    fn connect_notice(
        rport: u16,
        segs_out: u32,
        segs_in: u32,
        timer: u8,
        retransmitted: u32,
    ) -> SocketSample {
        final_notice(rport, |raw| {
            raw.u8(2, timer)
                .u32(100, retransmitted)
                .u32(136, segs_out)
                .u32(140, segs_in);
        })
    }

    /// A notice (tcp_info in CLOSE) whose other fields `fill` writes.
    fn final_notice(rport: u16, fill: impl FnOnce(&mut RawFields)) -> SocketSample {
        use crate::model::{SocketKey, TcpState};
        let key = SocketKey::new(
            "10.0.0.1".parse().unwrap(),
            40000,
            "10.0.0.2".parse().unwrap(),
            rport,
        );
        let mut sample = SocketSample::bare(key, 1, TcpState::Close);
        sample.tcp_info = Some(TcpInfo::built(TcpState::Close, fill));
        sample
    }

    /// A connect that completed and ended with a reset in (segs_in: its
    /// SYN-ACK and the reset), having received no byte, its SYN carrying
    /// `syn_data` bytes, and `without_data` segments out beside them.
    fn reset_connect(syn_data: u64, without_data: u32) -> SocketSample {
        reset_connect_and(syn_data, without_data, |_| {})
    }

    /// [`reset_connect`], with `more` written after.
    fn reset_connect_and(
        syn_data: u64,
        without_data: u32,
        more: impl FnOnce(&mut RawFields),
    ) -> SocketSample {
        final_notice(80, |raw| {
            if syn_data > 0 {
                raw.u8(5, super::super::closes::TCPI_OPT_SYN_DATA);
            }
            raw.u64(120, syn_data + 1)
                .u32(136, without_data + u32::from(syn_data > 0))
                .u32(140, 2)
                .u32(156, u32::from(syn_data > 0))
                .u64(200, syn_data);
            more(raw);
        })
    }

    #[test]
    fn data_left_unread_at_close_leans_to_a_reset_either_side() {
        let mut unread = reset_connect(1000, 1);
        unread.recv_queue = 500;
        assert_eq!(reset_lean(&unread, true), Lean::One);
        assert_eq!(reset_lean(&unread, false), Lean::One);
        // A poll's sample, not a final one, tells nothing.
        let mut polled = reset_connect_and(1000, 1, |raw| {
            raw.u8(0, crate::model::TcpState::Established as u8);
        });
        polled.recv_queue = 500;
        assert_eq!(reset_lean(&polled, true), Lean::Neither);
    }

    #[test]
    fn a_connect_that_received_nothing_and_sent_a_fin_leans_to_no_reset() {
        // SYN-data, its handshake's ACK, its FIN.
        assert_eq!(reset_lean(&reset_connect(1000, 2), true), Lean::Zero);
        // A SYN without data, the ACK, the FIN.
        assert_eq!(reset_lean(&reset_connect(0, 3), true), Lean::Zero);
        // Only the SYN and the ACK: reset while established, or not.
        assert_eq!(reset_lean(&reset_connect(0, 2), true), Lean::Neither);
        assert_eq!(reset_lean(&reset_connect(1000, 1), true), Lean::Neither);
        // An accepted socket's segments are not a connect's.
        assert_eq!(reset_lean(&reset_connect(1000, 2), false), Lean::Neither);
    }

    #[test]
    fn a_segment_out_an_answer_can_explain_is_no_fin() {
        // A SYN-ACK sent again, which the connect answered with an ACK.
        let answered = reset_connect_and(1000, 2, |raw| {
            raw.u32(140, 3);
        });
        assert_eq!(reset_lean(&answered, true), Lean::Neither);
        // Received data or a FIN, or sent something again: no lean.
        let received = reset_connect_and(1000, 2, |raw| {
            raw.u64(128, 1);
        });
        assert_eq!(reset_lean(&received, true), Lean::Neither);
        let again = reset_connect_and(1000, 2, |raw| {
            raw.u32(100, 1);
        });
        assert_eq!(reset_lean(&again, true), Lean::Neither);
    }

    fn leaning_tally(counts: &[(u64, bool, Lean)]) -> Tally {
        let mut t = Tally::default();
        for &(value, approx, lean) in counts {
            t.add_leaning(value, approx, lean);
        }
        t
    }

    #[test]
    fn leaning_sockets_that_make_up_a_count_between_settle_it() {
        // One close with data unread, five that sent their FIN: the
        // namespace counted one (packetdrill's valid-cookie-format).
        let mut counts = vec![(1, true, Lean::One)];
        counts.extend([(1, true, Lean::Zero); 5]);
        let t = leaning_tally(&counts);
        let settled = settle(1, t).unwrap();
        assert_eq!(
            (settled.value(Lean::One), settled.value(Lean::Zero)),
            (1, 0)
        );
        // One that leans neither way beside one that sent its FIN
        // (nonblocking-connect-bypass-errno): it is the reset.
        let t = leaning_tally(&[(1, true, Lean::Neither), (1, true, Lean::Zero)]);
        let settled = settle(1, t).unwrap();
        assert_eq!(
            (settled.value(Lean::Neither), settled.value(Lean::Zero)),
            (1, 0)
        );
    }

    #[test]
    fn leans_the_count_contradicts_or_leaves_open_settle_nothing() {
        // Two leaning one where the namespace counted one: a lean is wrong.
        let t = leaning_tally(&[
            (1, true, Lean::One),
            (1, true, Lean::One),
            (1, true, Lean::Zero),
        ]);
        assert_eq!(settle(1, t), None);
        // Two leaning neither way, one of them the reset: which, unknown.
        let t = leaning_tally(&[
            (1, true, Lean::Neither),
            (1, true, Lean::Neither),
            (1, true, Lean::Zero),
        ]);
        assert_eq!(settle(1, t), None);
    }

    #[test]
    fn a_connect_whose_timer_never_fired_could_fail_only_by_an_icmp_error() {
        let unretried = connect_notice(80, 1, 0, 0, 0);
        assert_eq!(
            unanswered_connect(&unretried),
            Some(UnansweredConnect::Unretried)
        );
        let quiet = FailCauses {
            icmp_errors: Some(0),
            gave_up: Some(3),
        };
        assert!(
            quiet.rule_out(UnansweredConnect::Unretried),
            "timeouts need a retry"
        );
        let icmp = FailCauses {
            icmp_errors: Some(1),
            gave_up: Some(0),
        };
        assert!(!icmp.rule_out(UnansweredConnect::Unretried));
        // MIB files unread: nothing ruled out.
        assert!(!FailCauses::default().rule_out(UnansweredConnect::Unretried));
    }

    #[test]
    fn a_retried_connect_is_ruled_out_only_where_nothing_gave_up_and_no_icmp_came() {
        // The timer fired and the retransmit failed to go out: still retried.
        for retried in [
            connect_notice(80, 1, 0, 1, 0),
            connect_notice(80, 3, 0, 2, 2),
        ] {
            assert_eq!(
                unanswered_connect(&retried),
                Some(UnansweredConnect::Retried)
            );
        }
        let none = FailCauses {
            icmp_errors: Some(0),
            gave_up: Some(0),
        };
        assert!(none.rule_out(UnansweredConnect::Retried));
        let gave_up = FailCauses {
            icmp_errors: Some(0),
            gave_up: Some(1),
        };
        assert!(!gave_up.rule_out(UnansweredConnect::Retried));
        let unknown = FailCauses {
            icmp_errors: Some(0),
            gave_up: None,
        };
        assert!(!unknown.rule_out(UnansweredConnect::Retried));
    }

    #[test]
    fn a_namespace_without_its_icmp_counts_has_no_icmp_evidence() {
        let deltas = |name: &str| -> Vec<(Option<u64>, i64)> {
            match name {
                "TcpExt:TCPAbortOnTimeout" => vec![(Some(1), 0), (Some(2), 2)],
                "Icmp:InDestUnreachs" => vec![(Some(1), 0), (Some(2), 0), (Some(3), 0)],
                "Icmp:InParmProbs" => vec![(Some(1), 0), (Some(2), 0)],
                // Namespace 1 has no IPv6 file: its IPv4 counts are enough.
                "Icmp6:InDestUnreachs" => vec![(Some(2), 4)],
                _ => vec![],
            }
        };
        let causes = fail_causes(deltas);
        let of = |ns| causes.get(&Some(ns)).copied().unwrap_or_default();
        assert_eq!(
            of(1),
            FailCauses {
                icmp_errors: Some(0),
                gave_up: Some(0)
            }
        );
        assert_eq!(
            of(2),
            FailCauses {
                icmp_errors: Some(4),
                gave_up: Some(2)
            }
        );
        // Namespace 3 lacks Icmp:InParmProbs: no ICMP evidence at all.
        assert_eq!(
            of(3),
            FailCauses {
                icmp_errors: None,
                gave_up: None
            }
        );
    }

    #[test]
    fn an_answered_cleared_or_unsent_connect_is_no_unanswered_one() {
        // A reset (or a SYN-ACK) reached it.
        assert_eq!(unanswered_connect(&connect_notice(80, 1, 1, 0, 0)), None);
        // An abort cleared its peer port and counters.
        assert_eq!(unanswered_connect(&connect_notice(0, 1, 0, 0, 0)), None);
        // Its SYN never went out.
        assert_eq!(unanswered_connect(&connect_notice(80, 0, 0, 0, 0)), None);
        // A poll's tcp_info (SYN_SENT) under a row closed since: what came
        // after that poll (a reset, say) is not in it.
        let mut polled = connect_notice(80, 1, 0, 0, 0);
        polled.tcp_info = Some(TcpInfo::built(crate::model::TcpState::SynSent, |raw| {
            raw.u32(136, 1);
        }));
        assert_eq!(unanswered_connect(&polled), None);
        // No tcp_info: nothing to tell by.
        let mut bare = connect_notice(80, 1, 0, 0, 0);
        bare.tcp_info = None;
        assert_eq!(unanswered_connect(&bare), None);
    }

    #[test]
    fn request_sockets_are_the_only_listeners_or_the_one_whose_drops_moved() {
        let any4: IpAddr = "0.0.0.0".parse().unwrap();
        let sure = |id| Some(RequestListener { id, sure: true });
        let mut evidence = ListenerEvidence::default();
        let one = [(7, any4, 80)];
        assert_eq!(
            request_listener(&one, Some(7), &evidence),
            sure((7, any4, 80))
        );
        assert_eq!(request_listener(&one, None, &evidence), sure((7, any4, 80)));
        assert_eq!(request_listener(&one, Some(8), &evidence), None);
        let two = [(7, any4, 80), (7, any4, 443), (8, any4, 22)];
        assert_eq!(
            request_listener(&two, Some(8), &evidence),
            sure((8, any4, 22))
        );
        // Two in namespace 7: which one's is told by the drops alone.
        assert_eq!(request_listener(&two, Some(7), &evidence), None);
        evidence.drops_moved.insert((7, any4, 80), 0);
        // 80's stayed, 443's unknown (it lived between two polls): 443.
        assert_eq!(
            request_listener(&two, Some(7), &evidence),
            sure((7, any4, 443))
        );
        // Two unknown: nothing tells.
        let three = [(7, any4, 80), (7, any4, 443), (7, any4, 8080)];
        assert_eq!(request_listener(&three, Some(7), &evidence), None);
        evidence.drops_moved.insert((7, any4, 443), 3);
        assert_eq!(
            request_listener(&two, Some(7), &evidence),
            sure((7, any4, 443))
        );
        evidence.drops_moved.insert((7, any4, 80), 1);
        assert_eq!(
            request_listener(&two, Some(7), &evidence),
            None,
            "both moved"
        );
        // One moved, another unknown: either may be the one.
        evidence.drops_moved.remove(&(7, any4, 443));
        assert_eq!(request_listener(&two, Some(7), &evidence), None);
    }

    #[test]
    fn request_resets_the_drops_leave_open_are_likely_the_one_listener_with_handshakes() {
        // packetdrill's shape: the script's listener lived between two
        // polls, accepted children; listeners holding ports (its peers'
        // ephemeral ports) beside it had no handshake. No drops known.
        let any4: IpAddr = "0.0.0.0".parse().unwrap();
        let local: IpAddr = "192.168.0.2".parse().unwrap();
        let mut listeners = vec![
            (7, local, 8080),
            (7, any4, 38273),
            (7, any4, 43907),
            (7, any4, 50741),
        ];
        listeners.sort_unstable();
        let mut evidence = ListenerEvidence::default();
        assert_eq!(request_listener(&listeners, None, &evidence), None);
        let child = crate::model::SocketKey {
            netns: 7,
            ..crate::model::SocketKey::new(local, 8080, "10.248.0.2".parse().unwrap(), 38273)
        };
        evidence.saw_handshake(&listeners, &child);
        assert_eq!(
            request_listener(&listeners, None, &evidence),
            Some(RequestListener {
                id: (7, local, 8080),
                sure: false
            })
        );
        // A child of a wildcard listener is that listener's.
        let wild = crate::model::SocketKey {
            netns: 7,
            ..crate::model::SocketKey::new(local, 43907, "10.0.0.9".parse().unwrap(), 5)
        };
        evidence.saw_handshake(&listeners, &wild);
        assert!(evidence.handshakes.contains(&(7, any4, 43907)));
        // Two with handshakes: nothing tells.
        assert_eq!(request_listener(&listeners, None, &evidence), None);
        // One whose drops stayed had no request reset: the other is left.
        evidence.drops_moved.insert((7, any4, 43907), 0);
        assert_eq!(
            request_listener(&listeners, None, &evidence).map(|r| r.id),
            Some((7, local, 8080))
        );
    }
}
