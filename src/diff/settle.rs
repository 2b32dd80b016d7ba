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

use std::net::IpAddr;

/// The sockets' count of one counter in one namespace: the sure part and
/// how many sockets count 0 or 1 without knowing which.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub sure: u64,
    pub uncertain: u64,
}

impl Tally {
    /// Adds one socket's count; `approx` with a value of at most 1 is an
    /// uncertain one. A larger approximate count is no 0-or-1 question:
    /// the namespace cannot settle it, so [`Tally::unsettled`] says so.
    pub fn add(&mut self, value: u64, approx: bool) {
        match (approx, value) {
            (true, 0 | 1) => self.uncertain = self.uncertain.saturating_add(1),
            (true, _) => self.uncertain = u64::MAX,
            (false, _) => self.sure = self.sure.saturating_add(value),
        }
    }

    fn unsettled(&self) -> bool {
        self.uncertain == u64::MAX
    }
}

/// The count every uncertain socket takes, when the namespace's count
/// leaves only one answer: `Some(0)` when the sure ones make it up,
/// `Some(1)` when each uncertain one must add one. None otherwise (none
/// uncertain, several answers, or a namespace count the sockets cannot
/// make, which is not theirs to settle).
pub fn settle(namespace_count: i64, tally: Tally) -> Option<u64> {
    if tally.uncertain == 0 || tally.unsettled() {
        return None;
    }
    let left = namespace_count.checked_sub(i64::try_from(tally.sure).ok()?)?;
    if left == 0 {
        Some(0)
    } else if u64::try_from(left).ok() == Some(tally.uncertain) {
        Some(1)
    } else {
        None
    }
}

/// A listener: (namespace, address, port).
pub type ListenerId = (u64, IpAddr, u16);

/// The listener of namespace `netns` (None: the one namespace sampled)
/// whose request sockets the namespace's request resets were: the only
/// listener of the window, or else the only one whose `sk_drops` moved
/// (`tcp_v4_rcv` adds the segment a request socket dies of to its
/// listener's drops), where every listener's drops are known. None when
/// nothing tells.
pub fn request_listener(
    listeners: &[ListenerId],
    netns: Option<u64>,
    drops_moved: &rustc_hash::FxHashMap<ListenerId, u64>,
) -> Option<ListenerId> {
    let in_namespace: Vec<ListenerId> = listeners
        .iter()
        .copied()
        .filter(|(ns, _, _)| netns.is_none_or(|n| *ns == n))
        .collect();
    if let [only] = in_namespace[..] {
        return Some(only);
    }
    let mut moved = Vec::new();
    for listener in &in_namespace {
        match drops_moved.get(listener) {
            Some(0) => {}
            Some(_) => moved.push(*listener),
            None => return None,
        }
    }
    match moved[..] {
        [only] => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                uncertain: 5
            }
        );
        assert_eq!(settle(1, t), Some(0));
    }

    #[test]
    fn a_namespace_count_one_above_the_sure_per_uncertain_socket_makes_each_one() {
        let t = tally(&[(1, false), (0, true), (1, true)]);
        assert_eq!(settle(3, t), Some(1));
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

    #[test]
    fn request_sockets_are_the_only_listeners_or_the_one_whose_drops_moved() {
        let any4: IpAddr = "0.0.0.0".parse().unwrap();
        let none = rustc_hash::FxHashMap::default();
        let one = [(7, any4, 80)];
        assert_eq!(request_listener(&one, Some(7), &none), Some((7, any4, 80)));
        assert_eq!(request_listener(&one, None, &none), Some((7, any4, 80)));
        assert_eq!(request_listener(&one, Some(8), &none), None);
        let two = [(7, any4, 80), (7, any4, 443), (8, any4, 22)];
        assert_eq!(request_listener(&two, Some(8), &none), Some((8, any4, 22)));
        // Two in namespace 7: which one's is told by the drops alone.
        assert_eq!(request_listener(&two, Some(7), &none), None);
        let mut drops = rustc_hash::FxHashMap::default();
        drops.insert((7, any4, 80), 0);
        assert_eq!(
            request_listener(&two, Some(7), &drops),
            None,
            "443's unknown"
        );
        drops.insert((7, any4, 443), 3);
        assert_eq!(
            request_listener(&two, Some(7), &drops),
            Some((7, any4, 443))
        );
        drops.insert((7, any4, 80), 1);
        assert_eq!(request_listener(&two, Some(7), &drops), None, "both moved");
    }
}
