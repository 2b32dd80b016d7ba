//! A lookup structure over many filters, so that matching a socket costs
//! about the same with 10,000 filters as with one: each filter is filed
//! under its most selective exact part — local port, remote port, or an
//! address under its mask, whichever the fewest filters share — and a
//! socket looks up only the filters filed
//! under its own ports and masked addresses, then checks them whole.
//! Filters with no such part (a wildcard side and a port range of `*`)
//! are checked one by one, as before.

use rustc_hash::FxHashMap;

use super::{AddrMatch, Filter};
use crate::model::{unmap, SocketKey};

/// Which side of a socket's key an address or port belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    Local,
    Remote,
}

/// Where a filter is filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Port(Side, u16),
    V4(Side, u32, u32),
    V6(Side, u8, u128),
}

#[derive(Debug, Clone, Default)]
pub struct FilterIndex {
    filed: FxHashMap<Bucket, Vec<u32>>,
    /// The distinct (side, mask) and (side, prefix length) pairs filed,
    /// which a lookup must try.
    v4_masks: Vec<(Side, u32)>,
    v6_lengths: Vec<(Side, u8)>,
    ports: [bool; 2],
    unfiled: Vec<u32>,
}

/// Every bucket a filter could be filed under: its exact ports, and its
/// addresses under their masks.
fn buckets_of(filter: &Filter) -> Vec<Bucket> {
    let mut buckets = Vec::with_capacity(4);
    for (s, side) in [(Side::Local, &filter.local), (Side::Remote, &filter.remote)] {
        if let Some(port) = side.port {
            buckets.push(Bucket::Port(s, port));
        }
        match side.addr {
            AddrMatch::V4 { addr, mask } => buckets.push(Bucket::V4(s, mask, addr)),
            AddrMatch::V6 { addr, prefix_len } => buckets.push(Bucket::V6(s, prefix_len, addr)),
            AddrMatch::Any => {}
        }
    }
    buckets
}

impl FilterIndex {
    pub fn new(filters: &[Filter]) -> FilterIndex {
        let mut index = FilterIndex::default();
        let candidates: Vec<Vec<Bucket>> = filters.iter().map(buckets_of).collect();
        // Each filter goes where the fewest others could go: 3,000 filters
        // on port 443 with an address each are filed by address, so a
        // socket on 443 checks one, not all of them.
        let mut sharing: FxHashMap<Bucket, u32> = FxHashMap::default();
        for bucket in candidates.iter().flatten() {
            *sharing.entry(*bucket).or_default() += 1;
        }
        for (i, buckets) in candidates.iter().enumerate() {
            let i = i as u32;
            match buckets.iter().min_by_key(|b| sharing[*b]).copied() {
                Some(bucket) => {
                    match bucket {
                        Bucket::Port(side, _) => index.ports[side as usize] = true,
                        Bucket::V4(side, mask, _) if !index.v4_masks.contains(&(side, mask)) => {
                            index.v4_masks.push((side, mask))
                        }
                        Bucket::V6(side, len, _) if !index.v6_lengths.contains(&(side, len)) => {
                            index.v6_lengths.push((side, len))
                        }
                        _ => {}
                    }
                    index.filed.entry(bucket).or_default().push(i);
                }
                None => index.unfiled.push(i),
            }
        }
        index
    }

    /// Whether one of `filters` (the ones this index was built over)
    /// matches `key`.
    pub fn matches(&self, filters: &[Filter], key: &SocketKey) -> bool {
        let check = |ids: &[u32]| ids.iter().any(|&i| filters[i as usize].matches(key));
        let filed = |bucket: Bucket| self.filed.get(&bucket).is_some_and(|ids| check(ids));
        let endpoint = |side: Side| match side {
            Side::Local => (unmap(key.local), key.local_port),
            Side::Remote => (unmap(key.remote), key.remote_port),
        };
        for side in [Side::Local, Side::Remote] {
            if self.ports[side as usize] && filed(Bucket::Port(side, endpoint(side).1)) {
                return true;
            }
        }
        for &(side, mask) in &self.v4_masks {
            if let std::net::IpAddr::V4(addr) = endpoint(side).0 {
                if filed(Bucket::V4(side, mask, u32::from(addr) & mask)) {
                    return true;
                }
            }
        }
        for &(side, len) in &self.v6_lengths {
            if let std::net::IpAddr::V6(addr) = endpoint(side).0 {
                let masked = u128::from(addr) & super::prefix_mask_128(len);
                if filed(Bucket::V6(side, len, masked)) {
                    return true;
                }
            }
        }
        check(&self.unfiled)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{Filter, FilterSet};
    use crate::model::SocketKey;

    /// Filters written the ways users write them, over a small space of
    /// addresses and ports so that sockets hit them often.
    fn filter_text() -> impl Strategy<Value = String> {
        let addr = prop_oneof![
            Just("*".to_string()),
            (0u8..4).prop_map(|d| format!("10.0.0.{d}")),
            (0u8..4).prop_map(|d| format!("10.0.{d}.0/24")),
            (0u8..4).prop_map(|d| format!("10.*.*.{d}")),
            (0u8..3).prop_map(|d| format!("[fd00::{d}]")),
            Just("[fd00::/64]".to_string()),
        ];
        let port = prop_oneof![
            Just("*".to_string()),
            (79u16..83).prop_map(|p| p.to_string())
        ];
        (addr.clone(), port.clone(), addr, port)
            .prop_map(|(la, lp, ra, rp)| format!("{la}:{lp}-{ra}:{rp}"))
    }

    fn key() -> impl Strategy<Value = SocketKey> {
        let addr = prop_oneof![
            (0u8..4, 0u8..4).prop_map(|(c, d)| format!("10.0.{c}.{d}")),
            (0u8..3).prop_map(|d| format!("fd00::{d}")),
            (0u8..3).prop_map(|d| format!("::ffff:10.0.0.{d}")),
        ];
        (addr.clone(), 79u16..83, addr, 79u16..83).prop_map(|(l, lp, r, rp)| {
            SocketKey::new(l.parse().unwrap(), lp, r.parse().unwrap(), rp)
        })
    }

    proptest! {
        #[test]
        fn the_index_matches_exactly_what_each_filter_matches(
            texts in prop::collection::vec(filter_text(), 9..60),
            keys in prop::collection::vec(key(), 1..40),
        ) {
            let set = FilterSet::parse(&texts).unwrap();
            prop_assert!(set.index.is_some());
            for key in &keys {
                let one_by_one = set.filters.iter().any(|f: &Filter| f.matches(key));
                prop_assert_eq!(set.matches(key), one_by_one, "{:?}", key);
            }
        }
    }
}
