//! Network namespaces: finding them (/run/netns as `ip netns` names them,
//! and /proc/PID/ns/net), labelling them (name, container), and sampling each
//! from its own agent thread that entered it with setns(2). A thread's
//! namespace, not the process's, is changed; the agent's sock_diag socket,
//! created inside, stays open across polls, and it reads that namespace's
//! /proc/net files through /proc/thread-self/net. The agent of the
//! process's own namespace enters nothing (so it works unprivileged) and
//! reads /proc/net. `--once` streams: an agent hands its sockets over in
//! small batches as its dump delivers them, so memory stays flat.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::Instant;

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use thiserror::Error;

use super::containers::container_label;
use super::procfs::SystemCounters;
use super::{LiveSource, SnapshotSource, SourceError, SourceOptions};
use crate::filter::quoted;
use crate::model::{CloseLoss, Snapshot, SocketSample, SocketSource};

/// One network namespace and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub inode: u64,
    /// Its name under /run/netns, if it has one.
    pub name: Option<String>,
    /// A file that setns(2) accepts.
    pub path: PathBuf,
    /// A process inside, when one was seen.
    pub pid: Option<u32>,
    /// The container or pod of that process, from its cgroup.
    pub container: Option<String>,
}

impl Namespace {
    /// How reports name it: `name`, else the container, else the inode.
    pub fn label(&self) -> String {
        match (&self.name, &self.container) {
            (Some(name), _) => name.clone(),
            (None, Some(container)) => container.clone(),
            (None, None) => format!("netns:[{}]", self.inode),
        }
    }
}

const NETNS_DIR: &str = "/run/netns";

/// Why `--netns` cannot be sampled. Messages include their cause's text, so
/// none has a `source()`.
#[derive(Debug, Error)]
pub enum NetnsError {
    #[error("--netns {}: no process has that pid", quoted(.spec))]
    NoProcess { spec: String },
    #[error("--netns {}: no network namespace of that name in {dir}", quoted(.spec), dir = NETNS_DIR)]
    NoSuchName { spec: String },
    /// `place` is where it was looked for, said without repeating `spec`.
    #[error("--netns {}: cannot read {place}: {err}", quoted(.spec))]
    Unreadable {
        spec: String,
        place: String,
        err: std::io::Error,
    },
    #[error(
        "--netns {}: not a network namespace (want a name under {dir}, a namespace file such as /proc/PID/ns/net, or a pid)",
        quoted(.spec),
        dir = NETNS_DIR
    )]
    NotNetwork { spec: String },
    /// The namespace resolved but its agent could not start in it.
    #[error("--netns: {0}")]
    Agent(AgentError),
}

/// Why an agent could not start sampling a namespace.
#[derive(Debug, Error)]
pub enum AgentError {
    #[error("cannot open {}: {err}", quoted(&.path.to_string_lossy()))]
    Open { path: PathBuf, err: std::io::Error },
    #[error("cannot enter {}: {err}{}", quoted(&.path.to_string_lossy()), enter_hint(*.err))]
    Enter { path: PathBuf, err: Errno },
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("the namespace thread died")]
    Died,
}

/// What a refused setns(2) most likely means: only EPERM is privilege.
fn enter_hint(err: Errno) -> &'static str {
    match err {
        Errno::EPERM => " (needs CAP_SYS_ADMIN)",
        Errno::EINVAL => " (not a network namespace: a stale /run/netns entry?)",
        _ => "",
    }
}

fn inode_of(path: &Path) -> std::io::Result<u64> {
    Ok(std::fs::metadata(path)?.ino())
}

/// The namespace this process runs in.
pub fn own_inode() -> Option<u64> {
    inode_of(Path::new("/proc/self/ns/net")).ok()
}

/// How reports name this process's own namespace when it has no name: the
/// inode as `ls -l /proc/self/ns/net` gives it, said to be our own.
pub fn own_label(inode: u64) -> String {
    format!("own netns:[{inode}]")
}

/// The labels of the namespace this process runs in (how reports name
/// it, and its container if one is found), for sources that sample it
/// without knowing its inode; None when /proc/self/ns/net cannot be read.
pub fn own_labels() -> Option<(String, Option<String>)> {
    let inode = own_inode()?;
    let name = named_namespaces().remove(&inode);
    // The container of the namespace's first process, as discover() finds
    // it for the others; ours when pid 1 lives elsewhere.
    let first = super::processes::proc_pids()
        .find(|(_, entry)| inode_of(&entry.path().join("ns/net")).ok() == Some(inode))
        .map_or(std::process::id(), |(pid, _)| pid);
    let container = container_of_pid(first);
    let label = match (&name, &container) {
        (Some(name), _) => name.clone(),
        (None, Some(container)) => container.clone(),
        (None, None) => own_label(inode),
    };
    Some((label, container))
}

/// Resolves `--netns NAME|PATH|PID`.
pub fn resolve(spec: &str) -> Result<Namespace, NetnsError> {
    let digits = !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit());
    let (path, pid) = if digits {
        // A pid, however written (leading zeros, beyond any pid).
        let pid = spec
            .trim_start_matches('0')
            .parse::<u64>()
            .unwrap_or(u64::MAX);
        (PathBuf::from(format!("/proc/{pid}/ns/net")), Some(pid))
    } else if spec.contains('/') {
        (PathBuf::from(spec), None)
    } else {
        (Path::new(NETNS_DIR).join(spec), None)
    };
    let inode = inode_of(&path).map_err(|err| match (pid, err.kind()) {
        (Some(_), std::io::ErrorKind::NotFound) => NetnsError::NoProcess {
            spec: spec.to_string(),
        },
        (None, std::io::ErrorKind::NotFound) if !spec.contains('/') => NetnsError::NoSuchName {
            spec: spec.to_string(),
        },
        _ => NetnsError::Unreadable {
            spec: spec.to_string(),
            place: match pid {
                Some(_) => path.display().to_string(),
                None if spec.contains('/') => "it".to_string(),
                None => format!("it in {NETNS_DIR}"),
            },
            err,
        },
    })?;
    if !is_network_namespace(&path) {
        return Err(NetnsError::NotNetwork {
            spec: spec.to_string(),
        });
    }
    let named = named_namespaces();
    let pid = pid.and_then(|p| u32::try_from(p).ok());
    let container = pid.and_then(container_of_pid);
    Ok(Namespace {
        inode,
        name: named.get(&inode).cloned(),
        path,
        pid,
        container,
    })
}

/// Whether `path` is a network namespace file: it lives on nsfs (the device
/// of our own /proc/self/ns/net), and when the kernel names the open file
/// (`type:[inode]`, for /proc/PID/ns/*) the type is `net`. A bind mount
/// (`ip netns add`) shows its path instead; setns(2) checks it then.
fn is_network_namespace(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let (Ok(meta), Ok(own)) = (
        std::fs::metadata(path),
        std::fs::metadata("/proc/self/ns/net"),
    ) else {
        return false;
    };
    if meta.dev() != own.dev() {
        return false;
    }
    let Ok(file) = File::open(path) else {
        return true; // unreadable: setns will say why
    };
    match std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
        Ok(target) => {
            let target = target.to_string_lossy();
            match target.split_once(":[") {
                Some((kind, _)) if !kind.contains('/') => kind == "net",
                _ => true,
            }
        }
        Err(_) => true,
    }
}

/// inode → name of the namespaces under /run/netns.
fn named_namespaces() -> BTreeMap<u64, String> {
    let mut names = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(NETNS_DIR) {
        for entry in entries.flatten() {
            if let (Ok(inode), Some(name)) = (inode_of(&entry.path()), entry.file_name().to_str()) {
                names.entry(inode).or_insert_with(|| name.to_string());
            }
        }
    }
    names
}

fn container_of_pid(pid: u32) -> Option<String> {
    container_label(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)
}

/// Every namespace on the host that can be seen: named ones and those of
/// processes, deduplicated by inode. Also returns the processes whose
/// namespaces could not be read (other users' processes, unprivileged).
pub fn discover() -> (Vec<Namespace>, Vec<u32>) {
    let mut found: BTreeMap<u64, Namespace> = BTreeMap::new();
    for (inode, name) in named_namespaces() {
        found.insert(
            inode,
            Namespace {
                inode,
                path: Path::new(NETNS_DIR).join(&name),
                name: Some(name),
                pid: None,
                container: None,
            },
        );
    }
    let mut unreadable = Vec::new();
    for (pid, entry) in super::processes::proc_pids() {
        let path = entry.path().join("ns/net");
        let inode = match inode_of(&path) {
            Ok(inode) => inode,
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
                unreadable.push(pid);
                continue;
            }
            Err(_) => continue, // exited meanwhile, or a kernel thread
        };
        let ns = found.entry(inode).or_insert_with(|| Namespace {
            inode,
            name: None,
            path,
            pid: Some(pid),
            container: None,
        });
        if ns.pid.is_none() {
            ns.pid = Some(pid);
        }
    }
    for ns in found.values_mut() {
        if ns.container.is_none() {
            ns.container = ns.pid.and_then(container_of_pid);
        }
    }
    (found.into_values().collect(), unreadable)
}

/// The first few of `pids` as `pid (command)`, and how many more.
fn name_processes(pids: &[u32]) -> String {
    const NAMED: usize = 3;
    let mut named: Vec<String> = pids
        .iter()
        .take(NAMED)
        .map(|pid| {
            let command = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim_end().to_string())
                .unwrap_or_else(|_| "?".to_string());
            format!("{pid} ({})", crate::filter::quoted(&command))
        })
        .collect();
    if pids.len() > NAMED {
        named.push(format!("{} more", pids.len() - NAMED));
    }
    named.join(", ")
}

enum Command {
    Snapshot,
    /// One pass over every socket, handed over in batches through the
    /// channel given (bounded: the pass waits while the consumer is
    /// behind), then [`Batch::End`]. A closed channel stops the pass.
    Stream(SyncSender<Batch>),
    System,
    /// Read the close notices waiting in the kernel (no reply).
    ReadCloses,
    /// Whether the next polls list socket memory and congestion control
    /// (no reply).
    WantGauges(bool),
}

enum Reply {
    /// A poll's outcome and the notices the poll raised.
    Snapshot {
        polled: Result<Snapshot, SourceError>,
        notices: Vec<String>,
        /// Close notices lost in this namespace since the start; None when
        /// they are not read.
        closes_lost: Option<CloseLoss>,
        /// UDP's, likewise.
        udp_closes_lost: Option<CloseLoss>,
    },
    System(SystemCounters, Vec<String>),
}

/// Sockets per batch of a streamed pass.
const STREAM_BATCH: usize = 128;
/// Batches on their way at most: with the one being filled and the one
/// being consumed, a streamed pass holds at most four batches (~190 kB),
/// however many sockets the namespace has.
const STREAM_BATCHES_QUEUED: usize = 2;

/// What a streamed pass sends.
enum Batch {
    Sockets(Vec<SocketSample>),
    /// The pass's outcome and the notices it raised.
    End {
        result: Result<(), SourceError>,
        notices: Vec<String>,
    },
}

/// A thread living in one namespace, answering poll requests.
struct Agent {
    namespace: Namespace,
    commands: Sender<Command>,
    replies: Receiver<Reply>,
    thread: Option<JoinHandle<()>>,
}

impl Agent {
    /// Starts the thread; fails (with the reason) when the namespace cannot
    /// be entered. The current namespace is sampled without setns, so it
    /// works unprivileged.
    fn spawn(
        namespace: Namespace,
        options: SourceOptions,
        enter: bool,
    ) -> Result<Agent, AgentError> {
        let (commands, command_rx) = channel::<Command>();
        let (reply_tx, replies) = channel::<Reply>();
        let (ready_tx, ready_rx) = channel::<Result<(), AgentError>>();
        let path = namespace.path.clone();
        let thread = std::thread::Builder::new()
            .name(format!("netns-{}", namespace.inode))
            .spawn(move || {
                if enter {
                    let entered = File::open(&path)
                        .map_err(|err| AgentError::Open {
                            path: path.clone(),
                            err,
                        })
                        .and_then(|file| {
                            setns(&file, CloneFlags::CLONE_NEWNET).map_err(|err| {
                                AgentError::Enter {
                                    path: path.clone(),
                                    err,
                                }
                            })
                        });
                    if let Err(why) = entered {
                        let _ = ready_tx.send(Err(why));
                        return;
                    }
                }
                let net_dir = if enter {
                    PathBuf::from("/proc/thread-self/net")
                } else {
                    PathBuf::from("/proc/net")
                };
                let mut source = LiveSource::open(SourceOptions {
                    net_dir: Some(net_dir),
                    ..options
                });
                let _ = ready_tx.send(Ok(()));
                for command in command_rx {
                    let reply = match command {
                        Command::Snapshot => {
                            let polled = source.snapshot();
                            Reply::Snapshot {
                                polled,
                                notices: source.take_notices(),
                                closes_lost: source.closes_lost(),
                                udp_closes_lost: source.udp_closes_lost(),
                            }
                        }
                        Command::Stream(to) => {
                            stream_batches(&mut source, &to);
                            continue;
                        }
                        Command::WantGauges(wanted) => {
                            source.want_gauges(wanted);
                            continue;
                        }
                        Command::ReadCloses => {
                            source.read_closes();
                            continue;
                        }
                        Command::System => {
                            let (counters, missing) = source.system_counters();
                            Reply::System(counters, missing)
                        }
                    };
                    if reply_tx.send(reply).is_err() {
                        break;
                    }
                }
            })
            .map_err(AgentError::Thread)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Agent {
                namespace,
                commands,
                replies,
                thread: Some(thread),
            }),
            Ok(Err(why)) => {
                let _ = thread.join();
                Err(why)
            }
            Err(_) => Err(AgentError::Died),
        }
    }
}

/// The agent's side of a streamed pass: sockets copied into batches as
/// the dump delivers them, so that no more than a few batches exist at a
/// time. A consumer that hangs up (it wants no more) ends the pass.
fn stream_batches(source: &mut LiveSource, to: &SyncSender<Batch>) {
    let mut batch = Vec::with_capacity(STREAM_BATCH);
    let mut open = true;
    let result = source.stream(&mut |sample| {
        batch.push(sample.clone());
        if batch.len() == STREAM_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(STREAM_BATCH));
            open = to.send(Batch::Sockets(full)).is_ok();
        }
        open
    });
    if open && !batch.is_empty() {
        open = to.send(Batch::Sockets(batch)).is_ok();
    }
    if open {
        let notices = source.take_notices();
        let _ = to.send(Batch::End { result, notices });
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Closing the command channel ends the thread, which releases the
        // namespace (a deleted one then goes away).
        let (dead, _) = channel();
        self.commands = dead;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Which namespaces a [`NetnsSource`] samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    One(Namespace),
    /// Every namespace found at each poll.
    All,
}

/// Samples one or every network namespace through agents, merging their
/// snapshots with each socket labelled by its namespace.
pub struct NetnsSource {
    selection: Selection,
    options: SourceOptions,
    agents: BTreeMap<u64, Agent>,
    own: Option<u64>,
    started: Instant,
    notices: Vec<String>,
    /// Namespaces that could not be entered: said once each.
    refused: BTreeSet<u64>,
    said_unreadable: bool,
    /// Close notices lost per sampled namespace (as its last poll said),
    /// and by namespaces gone since.
    closes_lost: BTreeMap<u64, CloseLoss>,
    closes_lost_gone: CloseLoss,
    /// The same for UDP close notices.
    udp_closes_lost: BTreeMap<u64, CloseLoss>,
    udp_closes_lost_gone: CloseLoss,
}

/// The effective user is root (asked of the kernel: /proc may be hidden).
fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

impl NetnsSource {
    pub fn open(selection: Selection, options: SourceOptions) -> Result<NetnsSource, NetnsError> {
        let mut source = NetnsSource {
            selection: selection.clone(),
            options,
            agents: BTreeMap::new(),
            own: own_inode(),
            started: Instant::now(),
            notices: Vec::new(),
            refused: BTreeSet::new(),
            said_unreadable: false,
            closes_lost: BTreeMap::new(),
            closes_lost_gone: CloseLoss::none(true),
            udp_closes_lost: BTreeMap::new(),
            udp_closes_lost_gone: CloseLoss::none(true),
        };
        if selection == Selection::All {
            // Agents from the start, so that the first poll's namespace
            // counters (--system, read before the dump) are there.
            source.refresh();
        }
        if let Selection::One(namespace) = selection {
            let enter = Some(namespace.inode) != source.own;
            let agent = Agent::spawn(namespace.clone(), source.options.clone(), enter)
                .map_err(NetnsError::Agent)?;
            source.agents.insert(namespace.inode, agent);
        }
        Ok(source)
    }

    /// --all-netns: start agents for new namespaces, drop vanished ones.
    fn refresh(&mut self) {
        let (found, unreadable) = discover();
        if !unreadable.is_empty() && !self.said_unreadable {
            self.said_unreadable = true;
            let why = if running_as_root() {
                "permission denied"
            } else {
                "other users' processes; root can read them"
            };
            self.notices.push(format!(
                "the network namespaces of {} process(es) could not be read ({why}): {}; namespaces only they are in are not sampled",
                unreadable.len(),
                name_processes(&unreadable)
            ));
        }
        let live: BTreeSet<u64> = found.iter().map(|n| n.inode).collect();
        self.agents.retain(|inode, _| live.contains(inode));
        // A refusal is forgotten with its namespace: inode numbers are
        // reused, and the next namespace with this one deserves a try.
        self.refused.retain(|inode| live.contains(inode));
        let mut refused_now = Vec::new();
        for namespace in found {
            if self.agents.contains_key(&namespace.inode) || self.refused.contains(&namespace.inode)
            {
                continue;
            }
            let enter = Some(namespace.inode) != self.own;
            match Agent::spawn(namespace.clone(), self.options.clone(), enter) {
                Ok(agent) => {
                    self.agents.insert(namespace.inode, agent);
                }
                Err(why) => {
                    refused_now.push(format!("{} ({why})", namespace.label()));
                    self.refused.insert(namespace.inode);
                }
            }
        }
        if !refused_now.is_empty() {
            // One line for all: unprivileged, that is every other namespace.
            let more = refused_now.len().saturating_sub(3);
            let mut line = format!(
                "{} network namespace(s) not sampled: {}",
                refused_now.len(),
                refused_now[..refused_now.len().min(3)].join("; ")
            );
            if more > 0 {
                line.push_str(&format!("; and {more} more"));
            }
            self.notices.push(line);
        }
    }
}

impl NetnsSource {
    /// Keeps the close notices lost by namespaces no longer sampled.
    fn forget_gone_agents(&mut self) {
        let agents = &self.agents;
        for (kept, gone) in [
            (&mut self.closes_lost, &mut self.closes_lost_gone),
            (&mut self.udp_closes_lost, &mut self.udp_closes_lost_gone),
        ] {
            kept.retain(|inode, lost| {
                let keep = agents.contains_key(inode);
                if !keep {
                    gone.add(lost);
                }
                keep
            });
        }
    }
}

impl SnapshotSource for NetnsSource {
    fn read_closes(&mut self) {
        for agent in self.agents.values() {
            let _ = agent.commands.send(Command::ReadCloses);
        }
    }

    fn want_gauges(&mut self, wanted: bool) {
        for agent in self.agents.values() {
            let _ = agent.commands.send(Command::WantGauges(wanted));
        }
    }

    fn closes_lost(&self) -> Option<CloseLoss> {
        let watched = self.options.close_buffer.is_some() && !self.options.skip_tcp;
        watched.then(|| {
            let mut sum = self.closes_lost_gone;
            self.closes_lost.values().for_each(|lost| sum.add(lost));
            sum
        })
    }

    fn udp_closes_lost(&self) -> Option<CloseLoss> {
        let watched = self.options.close_buffer.is_some() && self.options.udp;
        watched.then(|| {
            let mut sum = self.udp_closes_lost_gone;
            self.udp_closes_lost.values().for_each(|lost| sum.add(lost));
            sum
        })
    }

    fn snapshot(&mut self) -> Result<Snapshot, SourceError> {
        if self.selection == Selection::All {
            self.refresh();
        }
        // Ask every agent first, then collect: namespaces dump in parallel.
        let asked: Vec<u64> = self
            .agents
            .iter()
            .filter(|(_, agent)| agent.commands.send(Command::Snapshot).is_ok())
            .map(|(inode, _)| *inode)
            .collect();
        let mut merged = Snapshot::new(self.elapsed_ms(), SocketSource::SockDiag, Vec::new());
        let mut failed = Vec::new();
        for inode in asked {
            let agent = &self.agents[&inode];
            match agent.replies.recv() {
                Ok(Reply::Snapshot {
                    polled: Ok(mut snapshot),
                    notices: notes,
                    closes_lost,
                    udp_closes_lost,
                }) => {
                    if let Some(lost) = closes_lost {
                        self.closes_lost.insert(inode, lost);
                    }
                    if let Some(lost) = udp_closes_lost {
                        self.udp_closes_lost.insert(inode, lost);
                    }
                    let label = agent.namespace.label();
                    self.notices
                        .extend(notes.into_iter().map(|n| format!("{label}: {n}")));
                    for sample in &mut snapshot.sockets {
                        sample.key.netns = inode;
                    }
                    for key in &mut snapshot.listeners {
                        key.netns = inode;
                    }
                    for sample in &mut snapshot.closed {
                        sample.key.netns = inode;
                    }
                    for sample in snapshot.udp.iter_mut().chain(&mut snapshot.udp_closed) {
                        sample.key.netns = inode;
                    }
                    merged.udp.append(&mut snapshot.udp);
                    merged.udp_closed.append(&mut snapshot.udp_closed);
                    merged.udp_closes_watched |= snapshot.udp_closes_watched;
                    merged.closes_watched |= snapshot.closes_watched;
                    merged.closed.append(&mut snapshot.closed);
                    if snapshot.source == SocketSource::ProcNetTcp {
                        merged.source = SocketSource::ProcNetTcp;
                    }
                    merged.sockets.append(&mut snapshot.sockets);
                    merged.listeners.append(&mut snapshot.listeners);
                }
                Ok(Reply::Snapshot {
                    polled: Err(why), ..
                }) => {
                    // Kept: its sockets are unseen this poll, not closed.
                    self.notices
                        .push(format!("{}: {why}", agent.namespace.label()));
                    merged.unsampled_netns.push(inode);
                }
                Ok(Reply::System(..)) | Err(_) => failed.push(inode),
            }
        }
        // Each agent read its notices after its dump, before replying.
        merged.closes_read_ms = merged.closes_watched.then(|| self.elapsed_ms());
        for inode in failed {
            self.agents.remove(&inode);
        }
        self.forget_gone_agents();
        if matches!(self.selection, Selection::One(_)) && self.agents.is_empty() {
            return Err(SourceError::NamespaceGone);
        }
        Ok(merged)
    }

    /// `--once`: each namespace in turn hands its sockets over in batches
    /// as its dump delivers them (see [`Command::Stream`]), so memory stays
    /// flat as in the run's own namespace. The namespaces are those found
    /// when the source opened. A failed pass of the one namespace selected
    /// is the run's error, as it is without `--netns`; with several, it is
    /// said and the others are streamed.
    fn stream(&mut self, sink: &mut dyn FnMut(&SocketSample) -> bool) -> Result<(), SourceError> {
        let inodes: Vec<u64> = self.agents.keys().copied().collect();
        let mut failed = Vec::new();
        for inode in inodes {
            let agent = &self.agents[&inode];
            let label = agent.namespace.label();
            let (to, batches) = sync_channel(STREAM_BATCHES_QUEUED);
            if agent.commands.send(Command::Stream(to)).is_err() {
                failed.push(inode);
                continue;
            }
            let mut ended = false;
            for batch in batches.iter() {
                match batch {
                    Batch::Sockets(samples) => {
                        for mut sample in samples {
                            sample.key.netns = inode;
                            if !sink(&sample) {
                                // Hanging up (dropping `batches`) stops the
                                // agent's pass.
                                return Ok(());
                            }
                        }
                    }
                    Batch::End { result, notices } => {
                        ended = true;
                        self.notices
                            .extend(notices.into_iter().map(|n| format!("{label}: {n}")));
                        match result {
                            Ok(()) => {}
                            Err(why) if matches!(self.selection, Selection::One(_)) => {
                                return Err(why)
                            }
                            Err(why) => self.notices.push(format!("{label}: {why}")),
                        }
                    }
                }
            }
            if !ended {
                failed.push(inode);
            }
        }
        for inode in failed {
            self.agents.remove(&inode);
        }
        if matches!(self.selection, Selection::One(_)) && self.agents.is_empty() {
            return Err(SourceError::NamespaceGone);
        }
        Ok(())
    }

    fn system_counters(&mut self) -> (SystemCounters, Vec<String>) {
        let mut total = SystemCounters::default();
        let mut missing = Vec::new();
        let asked: Vec<u64> = self
            .agents
            .iter()
            .filter(|(_, agent)| agent.commands.send(Command::System).is_ok())
            .map(|(inode, _)| *inode)
            .collect();
        for inode in asked {
            if let Ok(Reply::System(counters, gaps)) = self.agents[&inode].replies.recv() {
                total.add_namespace(inode, &counters);
                missing.extend(gaps);
            }
        }
        (total, missing)
    }

    fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    fn opened_at(&self) -> Option<std::time::SystemTime> {
        std::time::SystemTime::now().checked_sub(self.started.elapsed())
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn namespace_labels(&self) -> BTreeMap<u64, String> {
        self.agents
            .iter()
            .map(|(inode, agent)| {
                let label = match &agent.namespace.name {
                    None if Some(*inode) == self.own => own_label(*inode),
                    _ => agent.namespace.label(),
                };
                (*inode, label)
            })
            .collect()
    }

    fn container_labels(&self) -> BTreeMap<u64, String> {
        self.agents
            .iter()
            .filter_map(|(inode, agent)| Some((*inode, agent.namespace.container.clone()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_namespace_is_labelled_by_its_inode_unless_named() {
        let own = own_inode().unwrap();
        let (label, container) = own_labels().unwrap();
        match named_namespaces().get(&own).or(container.as_ref()) {
            Some(name) => assert_eq!(&label, name),
            None => assert_eq!(label, format!("own netns:[{own}]")),
        }
        assert_ne!(own, 0);
    }

    #[test]
    fn own_namespace_is_discovered() {
        let own = own_inode().unwrap();
        let (found, _) = discover();
        assert!(found.iter().any(|n| n.inode == own));
    }

    #[test]
    fn resolve_names_the_bad_part() {
        assert!(matches!(
            resolve("no-such-namespace-xyz"),
            Err(NetnsError::NoSuchName { .. })
        ));
        assert_eq!(
            resolve("no-such-namespace-xyz").unwrap_err().to_string(),
            "--netns 'no-such-namespace-xyz': no network namespace of that name in /run/netns"
        );
        let err = resolve("999999999").unwrap_err().to_string();
        assert_eq!(err, "--netns '999999999': no process has that pid");
        let err = resolve("4294967296").unwrap_err().to_string();
        assert!(err.contains("'4294967296': no process"), "{err}");
        // Leading zeros name the same process.
        let own = std::process::id();
        assert_eq!(
            resolve(&format!("000{own}")).unwrap().inode,
            resolve(&own.to_string()).unwrap().inode
        );
        let own = resolve(&std::process::id().to_string()).unwrap();
        assert_eq!(Some(own.inode), own_inode());
        for not_a_netns in ["/", "/etc/hostname", "/proc/self/ns/pid"] {
            let err = resolve(not_a_netns).unwrap_err();
            assert!(matches!(err, NetnsError::NotNetwork { .. }), "{err:?}");
            let err = err.to_string();
            assert!(
                err.contains("not a network namespace"),
                "{not_a_netns}: {err}"
            );
        }
    }

    #[test]
    fn a_long_or_odd_netns_spec_is_echoed_once_cut_and_escaped() {
        let long = "n".repeat(300);
        for spec in [long.clone(), format!("/nonexistent/{long}")] {
            let err = resolve(&spec).unwrap_err().to_string();
            assert_eq!(err.matches("nnnnnnnnnn…nnnnnnnnnn").count(), 1, "{err}");
            assert!(err.len() < 300, "{err}");
        }
        let err = resolve("blue\u{1b}[2J\n").unwrap_err().to_string();
        assert!(err.contains("'blue\\u{1b}[2J\\n'"), "{err}");
    }

    #[test]
    fn a_refused_agent_says_what_it_needs() {
        let err = NetnsError::Agent(AgentError::Enter {
            path: PathBuf::from("/run/netns/blue"),
            err: Errno::EPERM,
        });
        let text = err.to_string();
        assert!(
            text.starts_with("--netns: cannot enter '/run/netns/blue': "),
            "{text}"
        );
        assert!(text.ends_with(" (needs CAP_SYS_ADMIN)"), "{text}");
        assert!(std::error::Error::source(&err).is_none());
    }

    #[test]
    fn a_namespace_refused_for_another_reason_is_not_said_to_need_privilege() {
        let err = AgentError::Enter {
            path: PathBuf::from("/run/netns/stale"),
            err: Errno::EINVAL,
        };
        let text = err.to_string();
        assert!(!text.contains("CAP_SYS_ADMIN"), "{text}");
        assert!(text.contains("not a network namespace"), "{text}");
    }
}
