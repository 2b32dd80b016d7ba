//! ListenOverflows and ListenDrops per listener. The kernel counts an
//! accept-queue overflow only in its namespace's MIB, in a branch no
//! tracepoint sees before 6.15 (the SYN is consumed, not dropped with a
//! reason), but every overflow and every listen drop also counts on the
//! listener it happened on (`tcp_listendrop` bumps its `sk_drops`, which
//! sock_diag reports; an overflow at the third ACK bumps it twice, so
//! `sk_drops` alone overcounts ListenDrops). So a namespace's count
//! belongs to the listeners whose `sk_drops` moved in the same window:
//! exactly when that is one listener, or when the count equals their
//! drops; shared in proportion to the drops otherwise, marked approximate.

use rustc_hash::FxHashMap;

use crate::model::SocketKey;

/// One listener's drops over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerDrops {
    pub key: SocketKey,
    pub drops: u64,
}

/// The count given to one listener, and whether that is a share rather
/// than a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerShare {
    pub count: u64,
    pub approx: bool,
}

/// Shares each namespace's count (`None`: the one namespace sampled)
/// among its listeners by their `sk_drops` moves. `every_listener_seen` is false when the dump was
/// filtered, so that a listener the run does not see may have dropped too.
/// Listeners of a namespace whose count is unknown get nothing.
pub fn share_among_listeners(
    listeners: &[ListenerDrops],
    counts: &[(Option<u64>, i64)],
    every_listener_seen: bool,
) -> FxHashMap<SocketKey, ListenerShare> {
    let mut shares = FxHashMap::default();
    for &(netns, count) in counts {
        let in_namespace: Vec<&ListenerDrops> = listeners
            .iter()
            .filter(|l| netns.is_none_or(|ns| l.key.netns == ns))
            .collect();
        let count = u64::try_from(count).unwrap_or(0);
        for (listener, share) in
            in_namespace
                .iter()
                .zip(split(&in_namespace, count, every_listener_seen))
        {
            shares.insert(listener.key, share);
        }
    }
    shares
}

/// `count` split over `listeners` (same order).
fn split(
    listeners: &[&ListenerDrops],
    count: u64,
    every_listener_seen: bool,
) -> Vec<ListenerShare> {
    let exact = |count| ListenerShare {
        count,
        approx: false,
    };
    let dropped = listeners.iter().filter(|l| l.drops > 0).count();
    let total: u64 = listeners.iter().map(|l| l.drops).sum();
    if count == 0 {
        return listeners.iter().map(|_| exact(0)).collect();
    }
    if every_listener_seen && dropped == 1 && count <= total {
        return listeners
            .iter()
            .map(|l| exact(if l.drops > 0 { count } else { 0 }))
            .collect();
    }
    if every_listener_seen && count == total {
        return listeners.iter().map(|l| exact(l.drops)).collect();
    }
    // In proportion to the drops, the remainders to the largest fractions,
    // so that the shares add up to the namespace's count (or to the drops,
    // when a listener no longer seen had some of them).
    let given = count.min(total);
    let mut shares: Vec<(u64, u128)> = listeners
        .iter()
        .map(|l| {
            let exact_share = u128::from(given) * u128::from(l.drops);
            let total = u128::from(total.max(1));
            ((exact_share / total) as u64, exact_share % total)
        })
        .collect();
    let mut left = given - shares.iter().map(|(s, _)| s).sum::<u64>();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|a, b| shares[*b].1.cmp(&shares[*a].1));
    for i in order {
        if left == 0 {
            break;
        }
        shares[i].0 += 1;
        left -= 1;
    }
    shares
        .into_iter()
        .map(|(count, _)| ListenerShare {
            count,
            approx: true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(netns: u64, port: u16, drops: u64) -> ListenerDrops {
        let mut key = SocketKey::new(
            "0.0.0.0".parse().unwrap(),
            port,
            "0.0.0.0".parse().unwrap(),
            0,
        );
        key.netns = netns;
        ListenerDrops { key, drops }
    }

    fn share(shares: &FxHashMap<SocketKey, ListenerShare>, l: &ListenerDrops) -> (u64, bool) {
        let s = shares[&l.key];
        (s.count, s.approx)
    }

    #[test]
    fn the_only_listener_that_dropped_has_every_overflow_exactly() {
        // Third-ACK overflows count two drops each (tcp_listendrop and the
        // segment's own drop): more drops than overflows.
        let busy = listener(1, 80, 9);
        let idle = listener(1, 443, 0);
        let shares = share_among_listeners(&[busy, idle], &[(Some(1), 5)], true);
        assert_eq!(share(&shares, &busy), (5, false));
        assert_eq!(share(&shares, &idle), (0, false));
    }

    #[test]
    fn when_every_drop_was_an_overflow_each_listener_keeps_its_own() {
        let a = listener(1, 80, 3);
        let b = listener(1, 81, 4);
        let shares = share_among_listeners(&[a, b], &[(Some(1), 7)], true);
        assert_eq!(share(&shares, &a), (3, false));
        assert_eq!(share(&shares, &b), (4, false));
    }

    #[test]
    fn otherwise_overflows_are_shared_by_drops_and_marked() {
        let a = listener(1, 80, 1);
        let b = listener(1, 81, 2);
        let shares = share_among_listeners(&[a, b], &[(Some(1), 2)], true);
        assert_eq!(share(&shares, &a).0 + share(&shares, &b).0, 2);
        assert!(share(&shares, &a).1 && share(&shares, &b).1);
        assert_eq!(share(&shares, &b).0, 1);
    }

    #[test]
    fn a_filtered_dump_makes_even_a_sole_dropper_approximate() {
        let a = listener(1, 80, 4);
        let shares = share_among_listeners(&[a], &[(Some(1), 4)], false);
        assert_eq!(share(&shares, &a), (4, true));
    }

    #[test]
    fn namespaces_are_shared_apart_and_none_means_the_only_one() {
        let a = listener(1, 80, 2);
        let b = listener(2, 80, 5);
        let shares = share_among_listeners(&[a, b], &[(Some(1), 2), (Some(2), 0)], true);
        assert_eq!(share(&shares, &a), (2, false));
        assert_eq!(share(&shares, &b), (0, false));
        let shares = share_among_listeners(&[a], &[(None, 1)], true);
        assert_eq!(share(&shares, &a), (1, false));
        // No namespace count, no share; a negative count (a wrap) is none.
        assert!(share_among_listeners(&[a], &[], true).is_empty());
        let shares = share_among_listeners(&[a], &[(None, -3)], true);
        assert_eq!(share(&shares, &a), (0, false));
    }

    #[test]
    fn more_overflows_than_drops_seen_gives_the_drops_and_marks_them() {
        // A listener that closed in the window took some with it.
        let a = listener(1, 80, 2);
        let shares = share_among_listeners(&[a], &[(Some(1), 5)], true);
        assert_eq!(share(&shares, &a), (2, true));
    }
}
