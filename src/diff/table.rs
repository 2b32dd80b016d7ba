//! The tracker's socket table: tracked sockets in a dense Vec, with a small
//! id → slot map beside it. A poll walks the dump in the kernel's (stable)
//! order, so the slots it touches are mostly sequential, and the map's
//! entries stay cache-sized.

use rustc_hash::FxHashMap;

use super::{SocketId, Tracked};

#[derive(Debug, Default)]
pub(super) struct SocketTable {
    slots: FxHashMap<SocketId, u32>,
    entries: Vec<(SocketId, Tracked)>,
}

impl SocketTable {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn get_mut(&mut self, id: &SocketId) -> Option<&mut Tracked> {
        let slot = *self.slots.get(id)? as usize;
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
