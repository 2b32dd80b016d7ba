//! Socket inode → owning process, from /proc/PID/fd links (`socket:[N]`), as
//! `ss -p` finds them, but incrementally: a lookup lists every process's fd
//! directory but reads the links of only the fd numbers not seen before, and
//! reads all of a process's links again only when a socket of its user is
//! still unknown (an fd number reused). Sockets
//! whose owner cannot be read (other users' processes when unprivileged, or
//! a process that already closed them) have no owner: reports say `?`.

use std::collections::hash_map::Entry;
use std::os::unix::fs::MetadataExt;

use rustc_hash::{FxHashMap, FxHashSet};

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub command: String,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.command, self.pid)
    }
}

#[derive(Debug, Default)]
struct ProcessFds {
    uid: u32,
    /// fd number → socket inode (0: not a socket), as last read.
    fds: FxHashMap<u32, u64>,
}

#[derive(Debug, Default)]
pub struct ProcessMap {
    owners: FxHashMap<u64, Owner>,
    commands: FxHashMap<u32, String>,
    processes: FxHashMap<u32, ProcessFds>,
    /// Processes whose fd directory could not be read.
    denied: FxHashSet<u32>,
    /// fd links read so far (the tests check that known sockets cost none).
    pub links_read: u64,
}

impl ProcessMap {
    pub fn new() -> ProcessMap {
        ProcessMap::default()
    }

    /// The process holding socket `inode`, once a lookup has found it.
    pub fn owner(&self, inode: u64) -> Option<&Owner> {
        self.owners.get(&inode)
    }

    /// The command of a process that held a socket seen.
    pub fn command_of(&self, pid: u32) -> Option<&str> {
        self.commands.get(&pid).map(String::as_str)
    }

    /// Reads every process's fds now (for a one-shot snapshot).
    pub fn scan_all(&mut self) {
        self.scan(None);
    }

    /// Processes whose sockets could not be looked at.
    pub fn denied(&self) -> usize {
        self.denied.len()
    }

    /// Looks up the owners of `sockets` (inode, uid) not known yet.
    pub fn resolve(&mut self, sockets: impl Iterator<Item = (u64, u32)>) {
        let unknown: Vec<(u64, u32)> = sockets
            .filter(|(inode, _)| *inode != 0 && !self.owners.contains_key(inode))
            .collect();
        if unknown.is_empty() {
            return;
        }
        self.scan(None);
        let still: FxHashSet<u32> = unknown
            .iter()
            .filter(|(inode, _)| !self.owners.contains_key(inode))
            .map(|(_, uid)| *uid)
            .collect();
        if !still.is_empty() {
            // fd numbers may have been reused: read those users' fds afresh.
            self.scan(Some(&still));
        }
    }

    /// Reads /proc/PID/fd of every process: only new fd numbers, or every
    /// fd of the processes of `reread_uids`.
    fn scan(&mut self, reread_uids: Option<&FxHashSet<u32>>) {
        let mut alive = FxHashSet::default();
        for (pid, entry) in proc_pids() {
            alive.insert(pid);
            let uid = match entry.metadata() {
                Ok(m) => m.uid(),
                Err(_) => continue,
            };
            let reread = reread_uids.is_some_and(|uids| uids.contains(&uid));
            if reread_uids.is_some() && !reread {
                continue;
            }
            self.scan_process(pid, uid, reread);
        }
        if reread_uids.is_none() {
            self.processes.retain(|pid, _| alive.contains(pid));
            // An exited process keeps its name while a socket it owned is
            // still to be reported.
            let owning: FxHashSet<u32> = self.owners.values().map(|o| o.pid).collect();
            self.commands
                .retain(|pid, _| alive.contains(pid) || owning.contains(pid));
            self.denied.retain(|pid| alive.contains(pid));
        }
    }

    fn scan_process(&mut self, pid: u32, uid: u32, reread: bool) {
        let dir = format!("/proc/{pid}/fd");
        let fds = match std::fs::read_dir(&dir) {
            Ok(fds) => fds,
            Err(_) => {
                self.denied.insert(pid);
                return;
            }
        };
        self.denied.remove(&pid);
        let process = match self.processes.entry(pid) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(ProcessFds {
                uid,
                fds: FxHashMap::default(),
            }),
        };
        if process.uid != uid {
            // The pid was reused by another process.
            process.fds.clear();
            process.uid = uid;
        }
        let mut command = None;
        for fd in fds.flatten() {
            let Some(number) = fd.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if !reread && process.fds.contains_key(&number) {
                continue;
            }
            self.links_read += 1;
            let inode = std::fs::read_link(fd.path())
                .ok()
                .and_then(|target| socket_inode(target.to_str()?))
                .unwrap_or(0);
            process.fds.insert(number, inode);
            if inode != 0 {
                let command = command.get_or_insert_with(|| {
                    let name = process_name(pid);
                    self.commands.insert(pid, name.clone());
                    name
                });
                self.owners.insert(
                    inode,
                    Owner {
                        pid,
                        command: command.clone(),
                    },
                );
            }
        }
    }

    /// Forgets sockets that are gone, so the map does not grow forever.
    pub fn retain_sockets(&mut self, alive: &FxHashSet<u64>) {
        self.owners.retain(|inode, _| alive.contains(inode));
        let owning: FxHashSet<u32> = self.owners.values().map(|o| o.pid).collect();
        let processes = &self.processes;
        self.commands
            .retain(|pid, _| processes.contains_key(pid) || owning.contains(pid));
    }
}

/// Every process directory under /proc, with its pid.
pub(crate) fn proc_pids() -> impl Iterator<Item = (u32, std::fs::DirEntry)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((pid, entry))
        })
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| "?".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn socket_links_parse() {
        assert_eq!(socket_inode("socket:[4026]"), Some(4026));
        assert_eq!(socket_inode("pipe:[4026]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    fn inode_of_fd(fd: i32) -> u64 {
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        socket_inode(link.to_str().unwrap()).unwrap()
    }

    #[test]
    fn own_socket_is_found_and_known_ones_cost_nothing() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = inode_of_fd(listener.as_raw_fd());
        let uid = std::fs::metadata("/proc/self").unwrap().uid();
        let mut map = ProcessMap::new();
        map.resolve([(inode, uid)].into_iter());
        let owner = map.owner(inode).expect("own socket resolved");
        assert_eq!(owner.pid, std::process::id());
        let read = map.links_read;
        map.resolve([(inode, uid)].into_iter());
        assert_eq!(map.links_read, read, "a known socket reads no link");
        // A new socket: only new fd numbers are read, not every fd again.
        let second = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode2 = inode_of_fd(second.as_raw_fd());
        map.resolve([(inode, uid), (inode2, uid)].into_iter());
        assert!(map.owner(inode2).is_some());
    }
}
