//! Socket inode → owning process, from /proc/PID/fd links (`socket:[N]`), as
//! `ss -p` finds them, but incrementally: a lookup lists every process's fd
//! directory but reads the links of only the fd numbers not seen before, and
//! reads all of a process's links again only when a socket of its user is
//! still unknown (an fd number reused). Sockets
//! whose owner cannot be read (other users' processes when unprivileged, or
//! a process that already closed them) have no owner: reports say `?`.
//!
//! Precision mode also knows the process a socket's system calls ran in
//! (its events carry the pid): [`ProcessNames`] reads those processes'
//! names as their events are read, before a short-lived process exits, and
//! [`ProcessMap::learn_commands`] keeps them for the reports.

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

/// Names of processes that events ran in that a map keeps, at most: past
/// this, a process is shown by its pid alone (and counted).
pub const EVENT_COMMANDS_LIMIT: usize = 1 << 16;

#[derive(Debug, Default)]
pub struct ProcessMap {
    owners: FxHashMap<u64, Owner>,
    commands: FxHashMap<u32, String>,
    /// Names of the processes kernel events ran in (pid → command, as read
    /// when their events were): kept while a report may name them, even
    /// after the process exited.
    event_commands: FxHashMap<u32, String>,
    /// Names not kept: [`EVENT_COMMANDS_LIMIT`] was reached.
    event_commands_unkept: u64,
    processes: FxHashMap<u32, ProcessFds>,
    /// Processes whose fd directory could not be read, and why.
    denied: FxHashMap<u32, Unread>,
    /// Why /proc could not be listed at the last scan, if it could not.
    unlisted: Option<Unread>,
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

    /// The command of a process that held a socket seen, or that a
    /// socket's events ran in.
    pub fn command_of(&self, pid: u32) -> Option<&str> {
        self.commands
            .get(&pid)
            .or_else(|| self.event_commands.get(&pid))
            .map(String::as_str)
    }

    /// Keeps the names of processes events ran in, as read then (a name
    /// read later for the same pid is a newer process's: it replaces the
    /// old one).
    pub fn learn_commands(&mut self, names: impl IntoIterator<Item = (u32, String)>) {
        for (pid, command) in names {
            let known = self.event_commands.contains_key(&pid);
            if !known && self.event_commands.len() >= EVENT_COMMANDS_LIMIT {
                self.event_commands_unkept += 1;
                continue;
            }
            self.event_commands.insert(pid, command);
        }
    }

    /// Forgets the names of processes events ran in that no socket
    /// reported refers to any more.
    pub fn retain_event_commands(&mut self, wanted: &FxHashSet<u32>) {
        self.event_commands.retain(|pid, _| wanted.contains(pid));
    }

    /// Names of processes events ran in that were not kept (the bound was
    /// reached), since the start.
    pub fn event_commands_unkept(&self) -> u64 {
        self.event_commands_unkept
    }

    /// Reads every process's fds now (for a one-shot snapshot).
    pub fn scan_all(&mut self) {
        self.scan(None);
    }

    /// Why /proc could not be listed at the last lookup (then no owner was
    /// looked up), if it could not.
    pub fn unlisted(&self) -> Option<Unread> {
        self.unlisted
    }

    /// Why processes' sockets could not be looked at, each reason with the
    /// number of processes it kept out, most first.
    pub fn unread(&self) -> Vec<(Unread, usize)> {
        let mut counts: Vec<(Unread, usize)> = Vec::new();
        for why in self.denied.values() {
            match counts.iter_mut().find(|(seen, _)| seen == why) {
                Some((_, n)) => *n += 1,
                None => counts.push((*why, 1)),
            }
        }
        counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        counts
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
        let pids = match listed_pids() {
            // Any procfs has /proc/self; something else mounted over /proc
            // (or an empty directory) lists no process, which is no
            // reason to say nothing.
            Ok(_) if !std::path::Path::new("/proc/self").exists() => {
                self.unlisted = Some(Unread::NoProcfs);
                return;
            }
            Ok(pids) => {
                self.unlisted = None;
                pids
            }
            Err(err) => {
                self.unlisted = Some(Unread::of(&err));
                return;
            }
        };
        for (pid, entry) in pids {
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
            self.denied.retain(|pid, _| alive.contains(pid));
        }
    }

    fn scan_process(&mut self, pid: u32, uid: u32, reread: bool) {
        let dir = format!("/proc/{pid}/fd");
        let fds = match std::fs::read_dir(&dir) {
            Ok(fds) => fds,
            // Exited since /proc was listed: nothing to look at.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            Err(err) => {
                self.denied.insert(pid, Unread::of(&err));
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

/// Distinct processes [`ProcessNames`] reads between two hand-overs, at
/// most: past this, a process goes unnamed (and counted).
pub const PROCESS_NAMES_LIMIT: usize = 1 << 14;

/// Names of the processes kernel events ran in, read from /proc/PID/comm
/// once per pid between two hand-overs ([`ProcessNames::take`]): as soon as
/// their events are read, so that a process that exits right after its
/// connections is still named. A pid read again after a hand-over is read
/// afresh (it may be another process by then).
#[derive(Debug, Default)]
pub struct ProcessNames {
    /// pid → name, None where it could not be read (gone already).
    read: FxHashMap<u32, Option<String>>,
    /// Pids not read: the bound was reached.
    unkept: u64,
}

impl ProcessNames {
    /// Reads `pid`'s name unless read since the last hand-over.
    pub fn note(&mut self, pid: u32) {
        self.note_with(pid, read_comm);
    }

    /// [`ProcessNames::note`] with the name read by `read` (tests).
    pub fn note_with(&mut self, pid: u32, read: impl FnOnce(u32) -> Option<String>) {
        if self.read.contains_key(&pid) {
            return;
        }
        if self.read.len() >= PROCESS_NAMES_LIMIT {
            self.unkept += 1;
            return;
        }
        self.read.insert(pid, read(pid));
    }

    /// The names read since the last call.
    pub fn take(&mut self) -> Vec<(u32, String)> {
        self.read
            .drain()
            .filter_map(|(pid, name)| Some((pid, name?)))
            .collect()
    }

    /// Processes left unnamed because the bound was reached, since the
    /// start.
    pub fn unkept(&self) -> u64 {
        self.unkept
    }
}

/// Every process directory under /proc, with its pid.
pub(crate) fn proc_pids() -> impl Iterator<Item = (u32, std::fs::DirEntry)> {
    listed_pids().into_iter().flatten()
}

/// [`proc_pids`], or why /proc could not be listed.
fn listed_pids() -> std::io::Result<impl Iterator<Item = (u32, std::fs::DirEntry)>> {
    Ok(std::fs::read_dir("/proc")?.flatten().filter_map(|entry| {
        let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
        Some((pid, entry))
    }))
}

/// Why a process's sockets (or every process's) could not be looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// EACCES or EPERM: another user's process, unprivileged.
    Permission,
    /// EMFILE or ENFILE: this process, or the system, is out of file
    /// descriptors; nothing to do with privileges.
    TooManyOpenFiles,
    /// /proc is no procfs (not mounted, or hidden under another mount).
    NoProcfs,
    /// Anything else, by errno (0: none given).
    Other(i32),
}

impl Unread {
    fn of(err: &std::io::Error) -> Unread {
        match err.raw_os_error() {
            Some(libc::EACCES | libc::EPERM) => Unread::Permission,
            Some(libc::EMFILE | libc::ENFILE) => Unread::TooManyOpenFiles,
            errno => Unread::Other(errno.unwrap_or(0)),
        }
    }
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn process_name(pid: u32) -> String {
    read_comm(pid).unwrap_or_else(|| "?".to_string())
}

fn read_comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
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
    fn an_event_process_is_named_once_per_hand_over_and_kept_after_it_exits() {
        let mut names = ProcessNames::default();
        let mut reads = 0;
        for _ in 0..3 {
            names.note_with(4242, |_| {
                reads += 1;
                Some("curl".to_string())
            });
        }
        names.note_with(4243, |_| None);
        assert_eq!(reads, 1, "read once per pid");
        let taken = names.take();
        assert_eq!(taken, vec![(4242, "curl".to_string())]);
        let mut map = ProcessMap::new();
        map.learn_commands(taken);
        // The process is gone; the map keeps the name read in time.
        assert_eq!(map.command_of(4242), Some("curl"));
        map.retain_event_commands(&FxHashSet::default());
        assert_eq!(map.command_of(4242), None);
        // Our own name, read from /proc.
        names.note(std::process::id());
        assert_eq!(names.take().len(), 1);
    }

    #[test]
    fn event_process_names_past_the_bound_are_counted_not_kept() {
        let mut map = ProcessMap::new();
        map.learn_commands((0..EVENT_COMMANDS_LIMIT as u32 + 3).map(|p| (p, "x".to_string())));
        assert_eq!(map.event_commands_unkept(), 3);
        // A known pid's newer name still replaces its old one.
        map.learn_commands([(7, "y".to_string())]);
        assert_eq!(map.command_of(7), Some("y"));
        let mut names = ProcessNames::default();
        for pid in 0..PROCESS_NAMES_LIMIT as u32 + 2 {
            names.note_with(pid, |_| Some("z".to_string()));
        }
        assert_eq!(names.unkept(), 2);
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
