//! tracefs: finding it (mounting it when root and it is not mounted), which
//! events it has and their format files, and the kprobes this process
//! creates through `kprobe_events` (removed again when the run ends, and
//! left-overs of a killed run removed at the next start).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TracefsError {
    #[error("tracefs is not mounted (and mounting it needs root)")]
    NotMounted,
    #[error("tracefs is mounted at {path} but cannot be read: {source}")]
    Unreadable { path: PathBuf, source: io::Error },
    #[error("cannot mount tracefs at {path}: {source}")]
    Mount { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: io::Error },
}

pub struct Tracefs {
    /// Where it is mounted: for messages, and the unmount of a mount made
    /// here.
    mount_point: PathBuf,
    /// The mount's root, held open for the run: its files are reached
    /// through it (`root`), so that another run that mounted the same
    /// point and unmounts it (lazily) as it ends does not take the mount
    /// from under this one, whose ftrace instance and kprobes could then
    /// not be removed (they would stay in the kernel after it).
    _held: Option<fs::File>,
    /// `/proc/self/fd/N` of the held root, or the mount point when it
    /// cannot be held.
    root: PathBuf,
}

const MOUNT_POINT: &str = "/sys/kernel/tracing";
const CANDIDATES: [&str; 2] = [MOUNT_POINT, "/sys/kernel/debug/tracing"];

impl Tracefs {
    /// A mounted tracefs; if there is none and `mount_if_root`, mounts one
    /// at /sys/kernel/tracing (the bool says it did).
    pub fn locate(mount_if_root: bool) -> Result<(Tracefs, bool), TracefsError> {
        match mounted() {
            Mounted::Readable(root) => return Ok((Tracefs::at(root), false)),
            Mounted::Unreadable(path, source) => {
                return Err(TracefsError::Unreadable { path, source })
            }
            Mounted::Nowhere => {}
        }
        if !mount_if_root {
            return Err(TracefsError::NotMounted);
        }
        nix::mount::mount(
            Some("nodev"),
            MOUNT_POINT,
            Some("tracefs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|errno| TracefsError::Mount {
            path: MOUNT_POINT.into(),
            source: io::Error::from(errno),
        })?;
        Ok((Tracefs::at(MOUNT_POINT.into()), true))
    }

    pub fn at(mount_point: PathBuf) -> Tracefs {
        use std::os::fd::AsRawFd;
        let held = fs::File::open(&mount_point).ok();
        let root = held
            .as_ref()
            .map(|dir| PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())))
            .filter(|root| root.join("events").is_dir())
            .unwrap_or_else(|| mount_point.clone());
        Tracefs {
            mount_point,
            _held: held,
            root,
        }
    }

    /// Where its files are reached, for as long as this value lives.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    fn event_dir(&self, group: &str, name: &str) -> PathBuf {
        self.root.join("events").join(group).join(name)
    }

    pub fn has_event(&self, group: &str, name: &str) -> bool {
        self.event_dir(group, name).join("format").exists()
    }

    pub fn event_format(&self, group: &str, name: &str) -> Result<String, TracefsError> {
        let path = self.event_dir(group, name).join("format");
        fs::read_to_string(&path).map_err(|source| TracefsError::Read { path, source })
    }

    fn kprobe_events(&self) -> PathBuf {
        self.root.join("kprobe_events")
    }

    /// Whether this kernel has kprobes (CONFIG_KPROBE_EVENTS).
    pub fn kprobes_supported(&self) -> bool {
        self.kprobe_events().exists()
    }
}

/// A mounted tracefs: the usual places, then /proc/self/mounts.
/// Where tracefs is, as far as this process can tell.
enum Mounted {
    Readable(PathBuf),
    /// Mounted, but this user cannot read it (mode 0700 for non-root).
    Unreadable(PathBuf, io::Error),
    Nowhere,
}

fn mounted() -> Mounted {
    let is_tracefs = |p: &Path| p.join("events").is_dir();
    if let Some(found) = CANDIDATES.iter().map(Path::new).find(|p| is_tracefs(p)) {
        return Mounted::Readable(found.to_path_buf());
    }
    let points: Vec<PathBuf> = fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (_, point, kind) = (words.next()?, words.next()?, words.next()?);
            (kind == "tracefs").then(|| PathBuf::from(point))
        })
        .collect();
    if let Some(found) = points.iter().find(|p| is_tracefs(p)) {
        return Mounted::Readable(found.clone());
    }
    match points.into_iter().next() {
        Some(point) => {
            let why = fs::read_dir(point.join("events"))
                .err()
                .unwrap_or_else(|| io::Error::from(io::ErrorKind::PermissionDenied));
            Mounted::Unreadable(point, why)
        }
        None => Mounted::Nowhere,
    }
}

/// The tracefs mount this run made, undone (lazily) when dropped: a run
/// leaves the system as it found it.
pub struct MountedHere(PathBuf);

impl MountedHere {
    pub fn new(point: &Path) -> MountedHere {
        MountedHere(point.to_path_buf())
    }
}

impl Drop for MountedHere {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Kprobes this process created in its own group, removed on drop.
pub struct KprobeSet {
    file: PathBuf,
    group: String,
    created: Vec<String>,
}

impl KprobeSet {
    /// Writes `p:GROUP/NAME DEF` (or `r:` when the bool says a return probe)
    /// for each definition. Those the kernel refuses (a function it does not
    /// have, fetch arguments it does not take) come back with the reason;
    /// the others stay. Groups left by runs that died are removed first.
    pub fn create(
        tracefs: &Tracefs,
        group: &str,
        defs: &[(String, String, bool)],
    ) -> (KprobeSet, Vec<(String, String)>) {
        let file = tracefs.kprobe_events();
        remove_stale_groups(&file, group);
        let mut set = KprobeSet {
            file,
            group: group.to_string(),
            created: Vec::new(),
        };
        let mut failures = Vec::new();
        for (name, definition, is_return) in defs {
            let kind = if *is_return { 'r' } else { 'p' };
            let line = format!("{kind}:{group}/{name} {definition}\n");
            match append(&set.file, &line) {
                Ok(()) => set.created.push(name.clone()),
                Err(e) => failures.push((name.clone(), e.to_string())),
            }
        }
        (set, failures)
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn created(&self) -> &[String] {
        &self.created
    }
}

impl Drop for KprobeSet {
    fn drop(&mut self) {
        for name in &self.created {
            let _ = append(&self.file, &format!("-:{}/{name}\n", self.group));
        }
    }
}

fn append(file: &Path, line: &str) -> io::Result<()> {
    OpenOptions::new()
        .append(true)
        .open(file)?
        .write_all(line.as_bytes())
}

/// Removes the probes of `tcpipstat_PID` groups whose process is gone.
fn remove_stale_groups(file: &Path, own_group: &str) {
    let Ok(text) = fs::read_to_string(file) else {
        return;
    };
    for line in text.lines() {
        // "p:tcpipstat_123/set_state tcp_set_state ..."
        let Some(event) = line.split_whitespace().next().and_then(|w| w.get(2..)) else {
            continue;
        };
        let Some((group, _)) = event.split_once('/') else {
            continue;
        };
        let Some(pid) = group.strip_prefix("tcpipstat_") else {
            continue;
        };
        if group != own_group && !Path::new("/proc").join(pid).exists() {
            let _ = append(file, &format!("-:{event}\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_formats_are_read_from_the_tree() {
        let dir = std::env::temp_dir().join(format!("tis-tracefs-{}", std::process::id()));
        let event = dir.join("events/sock/inet_sock_set_state");
        fs::create_dir_all(&event).unwrap();
        fs::write(
            event.join("format"),
            "name: inet_sock_set_state\nID: 1234\n",
        )
        .unwrap();
        let t = Tracefs::at(dir.clone());
        assert!(t.has_event("sock", "inet_sock_set_state"));
        assert!(!t.has_event("tcp", "nope"));
        assert!(t
            .event_format("tcp", "nope")
            .unwrap_err()
            .to_string()
            .contains("nope"));
        assert!(!t.kprobes_supported());
        fs::write(
            dir.join("kprobe_events"),
            "p:tcpipstat_999999999/x tcp_reset\n",
        )
        .unwrap();
        assert!(t.kprobes_supported());
        let defs = [("a".to_string(), "tcp_reset sk=%di:x64".to_string(), false)];
        let (set, failures) = KprobeSet::create(&t, "tcpipstat_1", &defs);
        assert!(failures.is_empty());
        assert_eq!(set.created(), ["a"]);
        let written = fs::read_to_string(dir.join("kprobe_events")).unwrap();
        // The dead run's probe is removed, the new one added.
        assert!(written.contains("-:tcpipstat_999999999/x\n"), "{written}");
        assert!(
            written.contains("p:tcpipstat_1/a tcp_reset sk=%di:x64\n"),
            "{written}"
        );
        drop(set);
        let written = fs::read_to_string(dir.join("kprobe_events")).unwrap();
        assert!(written.ends_with("-:tcpipstat_1/a\n"), "{written}");
        fs::remove_dir_all(dir).unwrap();
    }
}
