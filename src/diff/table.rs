//! The tracker's socket table: tracked sockets in a dense Vec, with a small
//! id → slot map beside it. A poll walks the dump in the kernel's (stable)
//! order, so the slots it touches are mostly sequential, and the map's
//! entries stay cache-sized. A lookup tries the slot after the previous one
//! first: at 100k sockets the map's probe was a cache miss per socket (8% of
//! a poll's CPU in `perf record`), and in a stable dump that guess is right
//! for nearly every socket.

use rustc_hash::FxHashMap;

use super::{SocketId, Tracked};

#[derive(Debug, Default)]
pub(super) struct SocketTable {
    slots: FxHashMap<SocketId, u32>,
    entries: Vec<(SocketId, Tracked)>,
    /// The slot after the one last looked up: where the next lookup of a
    /// poll walking the dump in the same order will be.
    next: usize,
}

impl SocketTable {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn get_mut(&mut self, id: &SocketId) -> Option<&mut Tracked> {
        let slot = match self.entries.get(self.next) {
            Some((guess, _)) if guess == id => self.next,
            _ => *self.slots.get(id)? as usize,
        };
        self.next = slot + 1;
        Some(&mut self.entries[slot].1)
    }

    pub(super) fn insert(&mut self, id: SocketId, tracked: Tracked) {
        match self.slots.get(&id) {
            Some(&slot) => self.entries[slot as usize].1 = tracked,
            None => {
                if self.entries.len() == self.entries.capacity() {
                    // Grown by an eighth, not doubled: at 100k sockets a
                    // doubling would hold tens of MiB for nothing.
                    self.entries.reserve_exact(self.entries.len() / 8 + 64);
                }
                self.slots.insert(id, self.entries.len() as u32);
                self.entries.push((id, tracked));
            }
        }
    }

    pub(super) fn remove(&mut self, id: &SocketId) -> Option<Tracked> {
        let slot = self.slots.remove(id)? as usize;
        let (_, tracked) = self.entries.swap_remove(slot);
        if let Some((moved, _)) = self.entries.get(slot) {
            self.slots.insert(*moved, slot as u32);
        }
        Some(tracked)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&SocketId, &Tracked)> {
        self.entries.iter().map(|(id, t)| (id, t))
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Tracked> {
        self.entries.iter().map(|(_, t)| t)
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut Tracked> {
        self.entries.iter_mut().map(|(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;
    use crate::diff::Origin;
    use crate::model::{SocketKey, SocketSample, TcpState};

    fn tracked(port: u16) -> Tracked {
        let key = SocketKey::new(
            "10.0.0.1".parse().unwrap(),
            port,
            "10.0.0.2".parse().unwrap(),
            80,
        );
        let sample = SocketSample::bare(key, u64::from(port), TcpState::Established);
        Tracked::new(sample, Origin::Other, Counters::default(), 0)
    }

    fn port_of(table: &mut SocketTable, cookie: u64) -> Option<u16> {
        table
            .get_mut(&SocketId::Cookie(cookie))
            .map(|t| t.sample.key.local_port)
    }

    #[test]
    fn lookups_in_any_order_find_their_socket_after_removals() {
        let mut table = SocketTable::default();
        for port in 1..=6 {
            table.insert(SocketId::Cookie(u64::from(port)), tracked(port));
        }
        // In insertion order (the guess is right), backwards, and skipping.
        for cookie in [1, 2, 3, 4, 5, 6, 6, 5, 4, 1, 3, 2] {
            assert_eq!(port_of(&mut table, cookie), Some(cookie as u16));
        }
        // A removal moves the last socket into the hole; a guess at the
        // moved slot must not answer for another id.
        assert!(table.remove(&SocketId::Cookie(2)).is_some());
        assert_eq!(port_of(&mut table, 1), Some(1));
        assert_eq!(port_of(&mut table, 6), Some(6));
        assert_eq!(port_of(&mut table, 2), None);
        assert_eq!(port_of(&mut table, 3), Some(3));
        table.insert(SocketId::Cookie(9), tracked(9));
        for cookie in [9, 1, 3, 4, 5, 6] {
            assert_eq!(port_of(&mut table, cookie), Some(cookie as u16));
        }
        assert_eq!(port_of(&mut table, 7), None);
        assert_eq!(table.len(), 6);
    }
}
