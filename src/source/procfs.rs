//! The namespace-wide counters of /proc/net/snmp, /proc/net/netstat and
//! /proc/net/snmp6, parsed by name (kernels add, drop and reorder fields, so
//! nothing is positional); the /proc/net/tcp{,6} fallback used when
//! sock_diag is unavailable or `--source proc` asks for it; and the
//! /proc/net/sockstat{,6} socket count that sizes a dump's buffer.
//!
//! The snmp/netstat parser is ours because the procfs crate reads snmp and
//! snmp6 into fixed structs that fail on a missing field and has no netstat;
//! the tcp table parser is procfs's.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::Path;

use crate::model::{SocketKey, SocketSample, TcpState};

/// Counters keyed `Section:Name` (`Tcp:InSegs`, `TcpExt:TCPTimeouts`,
/// `Ip6:InReceives`), every name the files had, known or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemCounters {
    pub values: BTreeMap<String, i64>,
}

/// A key without its namespace prefix (`4026531840/Tcp:InSegs`).
fn unprefixed(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(_, name)| name)
}

/// Names that are levels, not event counts: their "delta" is the new value.
pub fn is_gauge(key: &str) -> bool {
    unprefixed(key) == "Tcp:CurrEstab"
}

/// Settings the MIB files carry beside counters; they have no delta.
pub fn is_setting(key: &str) -> bool {
    matches!(
        unprefixed(key),
        "Tcp:MaxConn"
            | "Tcp:RtoAlgorithm"
            | "Tcp:RtoMin"
            | "Tcp:RtoMax"
            | "Ip:Forwarding"
            | "Ip:DefaultTTL"
    )
}

impl SystemCounters {
    pub fn get(&self, key: &str) -> Option<i64> {
        self.values.get(key).copied()
    }

    /// Parses the `Section: names` / `Section: values` line pairs of
    /// /proc/net/snmp and /proc/net/netstat, keeping what is valid and
    /// returning what was not (see [`MibProblems`]). A pair whose lengths
    /// differ keeps the names it has values for; a line of names with no
    /// values after it, values with no names before them, and lines longer
    /// than [`MIB_LINE_LIMIT`] are skipped.
    pub fn add_header_value_pairs(&mut self, text: &str) -> MibProblems {
        let mut problems = MibProblems::default();
        let mut added = 0usize;
        // The names line waiting for its values: (line number, section, names).
        let mut names_line: Option<(usize, &str, &str)> = None;
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            if line.len() > MIB_LINE_LIMIT {
                problems.push(format!(
                    "line {number} is longer than {} KiB: skipped",
                    MIB_LINE_LIMIT / 1024
                ));
                // Whatever it was, the pair it belonged to is broken.
                if let Some((at, section, _)) = names_line.take() {
                    problems.push(format!("line {at} ({section}): names without values"));
                }
                continue;
            }
            let Some((section, rest)) = line.split_once(':') else {
                if !line.trim().is_empty() {
                    problems.stray_lines += 1;
                }
                continue;
            };
            match names_line {
                Some((_, names_section, names)) if names_section == section => {
                    names_line = None;
                    added += self.add_pair(section, names, rest, number, &mut problems, added);
                }
                _ if is_values_line(rest) => {
                    problems.push(format!("line {number} ({section}): values without names"));
                }
                _ => {
                    if let Some((at, section, _)) = names_line {
                        problems.push(format!("line {at} ({section}): names without values"));
                    }
                    names_line = Some((number, section, rest));
                }
            }
        }
        if let Some((at, section, _)) = names_line {
            problems.push(format!("line {at} ({section}): names without values"));
        }
        problems
    }

    /// One `Section:` pair: the counters it has a name and a number for
    /// (at most [`MIB_COUNTER_LIMIT`] from one file, `added` so far);
    /// returns how many were added.
    fn add_pair(
        &mut self,
        section: &str,
        names: &str,
        values: &str,
        number: usize,
        problems: &mut MibProblems,
        added: usize,
    ) -> usize {
        let (name_count, value_count) = (
            names.split_whitespace().count(),
            values.split_whitespace().count(),
        );
        if name_count != value_count {
            problems.push(format!(
                "line {number} ({section}): {name_count} names but {value_count} values: the first {} kept",
                name_count.min(value_count)
            ));
        }
        let mut now = 0;
        for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
            let Some(value) = parse_counter(value) else {
                problems.bad_values += 1;
                continue;
            };
            if added + now >= MIB_COUNTER_LIMIT {
                problems.over_limit = true;
                break;
            }
            self.values.insert(format!("{section}:{name}"), value);
            now += 1;
        }
        now
    }

    /// Parses /proc/net/snmp6's `Name value` lines; `Ip6InReceives` becomes
    /// `Ip6:InReceives`. Other lines are skipped and counted.
    pub fn add_snmp6(&mut self, text: &str) -> MibProblems {
        let mut problems = MibProblems::default();
        let mut added = 0usize;
        for (index, line) in text.lines().enumerate() {
            if line.len() > MIB_LINE_LIMIT {
                problems.push(format!(
                    "line {} is longer than {} KiB: skipped",
                    index + 1,
                    MIB_LINE_LIMIT / 1024
                ));
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(name), Some(value)) = (words.next(), words.next()) else {
                if !line.trim().is_empty() {
                    problems.stray_lines += 1;
                }
                continue;
            };
            let Some(value) = parse_counter(value) else {
                problems.bad_values += 1;
                continue;
            };
            if added >= MIB_COUNTER_LIMIT {
                problems.over_limit = true;
                break;
            }
            let split = name
                .find(|c: char| c.is_ascii_digit())
                .map(|digit| digit + 1)
                .filter(|&end| end < name.len());
            let key = match split {
                Some(end) => format!("{}:{}", &name[..end], &name[end..]),
                None => format!("Ip6:{name}"),
            };
            self.values.insert(key, value);
            added += 1;
        }
        problems
    }

    /// Adds one namespace's counters under its own prefix, so that deltas
    /// are taken per namespace: one that appears or vanishes inside a
    /// window then adds or takes away nothing.
    pub fn add_namespace(&mut self, inode: u64, other: &SystemCounters) {
        for (key, value) in &other.values {
            self.values.insert(format!("{inode}/{key}"), *value);
        }
    }

    /// One counter's value in each namespace: `None` for a value read
    /// without a prefix (the only namespace sampled).
    pub fn per_namespace(&self, name: &str) -> Vec<(Option<u64>, i64)> {
        self.values
            .iter()
            .filter_map(|(key, value)| match key.split_once('/') {
                Some((ns, rest)) if rest == name => Some((Some(ns.parse().ok()?), *value)),
                None if key == name => Some((None, *value)),
                _ => None,
            })
            .collect()
    }

    /// How many namespaces' counters these are (1 without prefixes).
    pub fn namespace_count(&self) -> usize {
        let prefixes: std::collections::BTreeSet<&str> = self
            .values
            .keys()
            .filter_map(|k| k.split_once('/').map(|(ns, _)| ns))
            .collect();
        prefixes.len().max(1)
    }

    /// Sums per-namespace keys (after [`SystemCounters::delta_since`]).
    pub fn fold_namespaces(self) -> SystemCounters {
        let mut folded = SystemCounters::default();
        for (key, value) in self.values {
            let slot = folded
                .values
                .entry(unprefixed(&key).to_string())
                .or_insert(0);
            *slot = slot.wrapping_add(value);
        }
        folded
    }

    /// `self - earlier` per name both have; gauges take the newer value.
    pub fn delta_since(&self, earlier: &SystemCounters) -> SystemCounters {
        let values = self
            .values
            .iter()
            .filter(|(key, _)| !is_setting(key))
            .filter_map(|(key, &now)| {
                let before = earlier.values.get(key)?;
                let delta = if is_gauge(key) {
                    now
                } else {
                    // The kernel's counters are unsigned and may wrap at 64
                    // (or on 32-bit hosts, 32) bits.
                    (now as u64).wrapping_sub(*before as u64) as i64
                };
                Some((key.clone(), delta))
            })
            .collect();
        SystemCounters { values }
    }
}

/// The most of a MIB file read (today's are under 8 KiB): a bigger one
/// is read up to here, so that memory and time stay bounded.
pub const MIB_FILE_LIMIT: usize = 1 << 20;
/// The longest MIB line parsed (today's longest, TcpExt's names, is ~2.2 kB).
pub const MIB_LINE_LIMIT: usize = 64 * 1024;
/// The most counters taken from one MIB file (today's hold under 200).
pub const MIB_COUNTER_LIMIT: usize = 4096;
/// Problems named one by one per file; the rest are counted.
const MIB_PROBLEMS_NAMED: usize = 3;

/// What could not be read of one MIB file, said in a notice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MibProblems {
    /// The first few problems, in the order met.
    pub named: Vec<String>,
    /// Problems past those named.
    pub more: usize,
    /// Lines that are neither names nor values (no `Section:`, or not
    /// `name value` in snmp6).
    pub stray_lines: usize,
    /// Values that are not numbers (their counter is left out).
    pub bad_values: usize,
    /// Counters left out past [`MIB_COUNTER_LIMIT`].
    pub over_limit: bool,
}

impl MibProblems {
    fn push(&mut self, problem: String) {
        if self.named.len() < MIB_PROBLEMS_NAMED {
            self.named.push(problem);
        } else {
            self.more += 1;
        }
    }

    fn absorb(&mut self, other: MibProblems) {
        for problem in other.named {
            self.push(problem);
        }
        self.more += other.more;
        self.stray_lines += other.stray_lines;
        self.bad_values += other.bad_values;
        self.over_limit |= other.over_limit;
    }

    pub fn is_empty(&self) -> bool {
        self.named.is_empty() && self.stray_lines == 0 && self.bad_values == 0 && !self.over_limit
    }

    /// `line 3 is longer than 64 KiB: skipped, 2 values are not numbers`.
    pub fn describe(&self) -> String {
        let mut parts = self.named.clone();
        if self.more > 0 {
            parts.push(format!("{} more problems", self.more));
        }
        if self.stray_lines > 0 {
            parts.push(format!("{} lines are not counters", self.stray_lines));
        }
        if self.bad_values > 0 {
            parts.push(format!("{} values are not numbers", self.bad_values));
        }
        if self.over_limit {
            parts.push(format!(
                "more than {MIB_COUNTER_LIMIT} counters: the rest left out"
            ));
        }
        parts.join(", ")
    }
}

/// A counter's text: signed (Tcp:MaxConn is -1), or unsigned beyond i64
/// (kept as its bits, as deltas wrap).
fn parse_counter(word: &str) -> Option<i64> {
    word.parse::<i64>()
        .ok()
        .or_else(|| word.parse::<u64>().ok().map(|v| v as i64))
}

/// Whether the words after `Section:` are all numbers (a values line), so
/// that one with no names line before it is told from a names line.
fn is_values_line(rest: &str) -> bool {
    let mut words = rest.split_whitespace().peekable();
    words.peek().is_some() && words.all(|w| parse_counter(w).is_some())
}

/// A MIB file's text, at most [`MIB_FILE_LIMIT`] bytes of it, with what was
/// left out: the rest of a bigger file, and a last line with no newline
/// (procfs ends every line with one: a cut line's last value would be a
/// wrong number).
pub fn read_mib_text(path: &Path) -> std::io::Result<(String, MibProblems)> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MIB_FILE_LIMIT as u64 + 1)
        .read_to_end(&mut bytes)?;
    let mut problems = MibProblems::default();
    if bytes.is_empty() {
        problems.push("empty".to_string());
        return Ok((String::new(), problems));
    }
    let cut = bytes.len() > MIB_FILE_LIMIT;
    bytes.truncate(MIB_FILE_LIMIT);
    if cut {
        problems.push(format!(
            "larger than {} MiB: read up to there",
            MIB_FILE_LIMIT >> 20
        ));
    }
    if bytes.last() != Some(&b'\n') {
        let whole = bytes
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |at| at + 1);
        let line = bytes[..whole].iter().filter(|b| **b == b'\n').count() + 1;
        let tail = bytes.len() - whole;
        if tail > MIB_LINE_LIMIT {
            problems.push(format!(
                "line {line} is longer than {} KiB: skipped",
                MIB_LINE_LIMIT / 1024
            ));
        } else if !cut {
            problems.push(format!("line {line} is cut short (no newline): skipped"));
        }
        bytes.truncate(whole);
    }
    Ok((String::from_utf8_lossy(&bytes).into_owned(), problems))
}

/// Reads the three files under `net_dir` (/proc/net, or a namespace
/// agent's /proc/thread-self/net), keeping what is valid. What could not
/// be read (a file, or part of one) is listed in the second part, each
/// `path: why`.
pub fn read_system_counters(net_dir: &Path) -> (SystemCounters, Vec<String>) {
    let mut counters = SystemCounters::default();
    let mut missing = Vec::new();
    for name in ["snmp", "netstat", "snmp6"] {
        let path = net_dir.join(name);
        let (text, mut problems) = match read_mib_text(&path) {
            Ok(read) => read,
            Err(err) => {
                missing.push(format!("{}: {err}", path.display()));
                continue;
            }
        };
        let before = counters.values.len();
        let found = if name == "snmp6" {
            counters.add_snmp6(&text)
        } else {
            counters.add_header_value_pairs(&text)
        };
        problems.absorb(found);
        if counters.values.len() == before && problems.is_empty() {
            problems.push("no counters in it".to_string());
        }
        if !problems.is_empty() {
            missing.push(format!("{}: {}", path.display(), problems.describe()));
        }
    }
    (counters, missing)
}

/// A sysctl holding one unsigned number; None when unreadable or not one.
pub fn sysctl_u32(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// TCP sockets of the namespace (`inuse` + `tw` of /proc/net/sockstat and
/// sockstat6), a cheap estimate of a dump's size.
pub fn tcp_sockets_in_use(net_dir: &Path) -> Option<usize> {
    let mut total = 0;
    for name in ["sockstat", "sockstat6"] {
        let text = std::fs::read_to_string(net_dir.join(name)).ok()?;
        total += parse_sockstat_tcp(&text);
    }
    Some(total)
}

fn parse_sockstat_tcp(text: &str) -> usize {
    let Some(line) = text
        .lines()
        .find(|l| l.starts_with("TCP: ") || l.starts_with("TCP6: "))
    else {
        return 0;
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "inuse" || w[0] == "tw")
        .filter_map(|w| w[1].parse::<usize>().ok())
        .sum()
}

/// Sockets from /proc/net/tcp and /proc/net/tcp6: identity, state, queues,
/// owner and inode only (no counters, no cookie).
pub fn read_proc_net_tcp(net_dir: &Path) -> std::io::Result<Vec<SocketSample>> {
    let mut sockets = Vec::new();
    let mut any_read = false;
    let mut last_error = None;
    for name in ["tcp", "tcp6"] {
        match std::fs::File::open(net_dir.join(name)) {
            Ok(file) => {
                any_read = true;
                parse_proc_net_tcp(BufReader::new(file), &mut sockets);
            }
            Err(err) => last_error = Some(err),
        }
    }
    match (any_read, last_error) {
        (false, Some(err)) => Err(err),
        _ => Ok(sockets),
    }
}

/// Parses one /proc/net/tcp{,6} table; rows procfs cannot parse are skipped.
pub fn parse_proc_net_tcp<R: std::io::BufRead>(reader: R, out: &mut Vec<SocketSample>) {
    use procfs::FromBufReadSI;
    let entries =
        match procfs::net::TcpNetEntries::from_buf_read(reader, procfs::current_system_info()) {
            Ok(entries) => entries.0,
            Err(_) => return,
        };
    for entry in entries {
        let key = socket_key(entry.local_address, entry.remote_address);
        let mut state = TcpState::from_kernel(entry.state.to_u8());
        if state == TcpState::SynRecv && entry.inode == 0 {
            // /proc shows a request socket (NEW_SYN_RECV) as SYN_RECV with
            // no inode; a full SYN_RECV socket (Fast Open) has one.
            state = TcpState::NewSynRecv;
        }
        let mut sample = SocketSample::bare(key, 0, state);
        sample.recv_queue = entry.rx_queue;
        sample.send_queue = entry.tx_queue;
        sample.uid = entry.uid;
        sample.inode = entry.inode;
        out.push(sample);
    }
}

fn socket_key(local: SocketAddr, remote: SocketAddr) -> SocketKey {
    SocketKey::new(local.ip(), local.port(), remote.ip(), remote.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snmp_pairs_by_name_keep_unknown_fields() {
        let text = "Ip: Forwarding InReceives\nIp: 1 100\nTcp: RtoAlgorithm MaxConn InSegs NewThing\nTcp: 1 -1 42 7\n";
        let mut c = SystemCounters::default();
        c.add_header_value_pairs(text);
        assert_eq!(c.get("Tcp:InSegs"), Some(42));
        assert_eq!(c.get("Tcp:MaxConn"), Some(-1));
        assert_eq!(c.get("Tcp:NewThing"), Some(7));
        assert_eq!(c.get("Ip:InReceives"), Some(100));
    }

    #[test]
    fn mismatched_pairs_do_not_panic() {
        let mut c = SystemCounters::default();
        c.add_header_value_pairs("Tcp: A B C\nTcp: 1 2\nUdp: X\nGarbage\n\nTcpExt: Y\n");
        assert_eq!(c.get("Tcp:B"), Some(2));
        assert_eq!(c.get("Tcp:C"), None);
    }

    /// A file under a fresh temporary directory, removed with it.
    struct TempMib(std::path::PathBuf);

    impl TempMib {
        fn new(tag: &str) -> TempMib {
            let dir = std::env::temp_dir().join(format!(
                "tis-mib-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempMib(dir)
        }

        fn write(&self, name: &str, bytes: &[u8]) {
            std::fs::write(self.0.join(name), bytes).unwrap();
        }
    }

    impl Drop for TempMib {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const SNMP: &str = "Tcp: ActiveOpens InSegs\nTcp: 3 42\n";
    const NETSTAT: &str = "TcpExt: TCPTimeouts\nTcpExt: 5\n";
    const SNMP6: &str = "Ip6InReceives 5\n";

    /// The notice text of what `read_system_counters` could not read.
    fn read_with(snmp: &[u8]) -> (SystemCounters, String) {
        let dir = TempMib::new("read");
        dir.write("snmp", snmp);
        dir.write("netstat", NETSTAT.as_bytes());
        dir.write("snmp6", SNMP6.as_bytes());
        let (counters, missing) = read_system_counters(&dir.0);
        (counters, missing.join("; "))
    }

    #[test]
    fn huge_mib_line_is_skipped_and_named() {
        let mut snmp = b"Ip: Forwarding\nIp: 1\nTcp: ".to_vec();
        while snmp.len() < 3 * MIB_FILE_LIMIT {
            snmp.extend_from_slice(b"Name ");
        }
        snmp.extend_from_slice(b"\nTcp: 1\n");
        let started = std::time::Instant::now();
        let (counters, said) = read_with(&snmp);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // What is valid is kept: the line before, and the other files.
        assert_eq!(counters.get("Ip:Forwarding"), Some(1));
        assert_eq!(counters.get("TcpExt:TCPTimeouts"), Some(5));
        assert_eq!(counters.get("Ip6:InReceives"), Some(5));
        assert!(counters.values.len() <= 3, "{:?}", counters.values.len());
        assert!(
            said.contains("/snmp: larger than 1 MiB: read up to there"),
            "{said}"
        );
        assert!(
            said.contains("line 3 is longer than 64 KiB: skipped"),
            "{said}"
        );
        assert!(!said.contains("netstat"), "{said}");
    }

    #[test]
    fn overlong_mib_line_inside_the_limit_is_skipped_and_named() {
        let long = format!("Tcp: {}\n", "x ".repeat(MIB_LINE_LIMIT));
        let (counters, said) = read_with(format!("{long}Tcp: 7\n{SNMP}").as_bytes());
        assert_eq!(counters.get("Tcp:InSegs"), Some(42));
        assert!(
            said.contains("line 1 is longer than 64 KiB: skipped"),
            "{said}"
        );
        assert!(
            said.contains("line 2 (Tcp): values without names"),
            "{said}"
        );
    }

    #[test]
    fn empty_mib_file_is_named() {
        let (counters, said) = read_with(b"");
        assert_eq!(counters.get("TcpExt:TCPTimeouts"), Some(5));
        assert!(said.ends_with("/snmp: empty"), "{said}");
    }

    #[test]
    fn truncated_mib_file_keeps_whole_lines_and_names_the_cut() {
        // Cut inside the values line: "42" could be the start of "4217".
        let (counters, said) =
            read_with(b"Ip: Forwarding\nIp: 1\nTcp: ActiveOpens InSegs\nTcp: 3 42");
        assert_eq!(counters.get("Ip:Forwarding"), Some(1));
        assert_eq!(counters.get("Tcp:InSegs"), None);
        assert!(
            said.contains("line 4 is cut short (no newline): skipped"),
            "{said}"
        );
        assert!(
            said.contains("line 3 (Tcp): names without values"),
            "{said}"
        );
        // Cut after the names: the names are named.
        let (_, said) = read_with(b"Tcp: ActiveOpens InSegs\n");
        assert!(
            said.contains("/snmp: line 1 (Tcp): names without values"),
            "{said}"
        );
        // Values cut short by a line: the counters with values are kept.
        let (counters, said) = read_with(b"Tcp: ActiveOpens InSegs\nTcp: 3\n");
        assert_eq!(counters.get("Tcp:ActiveOpens"), Some(3));
        assert!(
            said.contains("line 2 (Tcp): 2 names but 1 values: the first 1 kept"),
            "{said}"
        );
    }

    #[test]
    fn mib_file_without_counters_is_named() {
        let (_, said) = read_with(b"nothing here\n\n");
        assert!(said.contains("/snmp: 1 lines are not counters"), "{said}");
        let dir = TempMib::new("none");
        dir.write("snmp", SNMP.as_bytes());
        dir.write("netstat", b"\n");
        dir.write("snmp6", SNMP6.as_bytes());
        let (_, missing) = read_system_counters(&dir.0);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(
            missing[0].ends_with("/netstat: no counters in it"),
            "{missing:?}"
        );
    }

    #[test]
    fn sound_mib_files_raise_no_problem() {
        let (counters, said) = read_with(SNMP.as_bytes());
        assert_eq!(said, "");
        assert_eq!(counters.get("Tcp:ActiveOpens"), Some(3));
        let (_, missing) = read_system_counters(Path::new("/proc/net"));
        assert!(missing.is_empty(), "{missing:?}");
    }

    #[test]
    fn mib_counters_are_bounded_per_file() {
        let names: Vec<String> = (0..MIB_COUNTER_LIMIT + 10)
            .map(|i| format!("N{i}"))
            .collect();
        let values = vec!["1"; names.len()];
        let text = format!("Tcp: {}\nTcp: {}\n", names.join(" "), values.join(" "));
        let mut c = SystemCounters::default();
        let problems = c.add_header_value_pairs(&text);
        assert_eq!(c.values.len(), MIB_COUNTER_LIMIT);
        assert!(
            problems.describe().contains("more than 4096 counters"),
            "{problems:?}"
        );
        let text: String = names.iter().map(|n| format!("Ip6{n} 1\n")).collect();
        let mut c = SystemCounters::default();
        assert!(c.add_snmp6(&text).over_limit);
        assert_eq!(c.values.len(), MIB_COUNTER_LIMIT);
    }

    #[test]
    fn mib_values_that_are_not_numbers_are_counted() {
        let mut c = SystemCounters::default();
        let problems = c.add_header_value_pairs("Tcp: A B C\nTcp: 1 x 3\n");
        assert_eq!(
            (c.get("Tcp:A"), c.get("Tcp:B"), c.get("Tcp:C")),
            (Some(1), None, Some(3))
        );
        assert_eq!(problems.describe(), "1 values are not numbers");
        let problems = c.add_snmp6("Ip6InReceives many\nIp6OutRequests 4\n");
        assert_eq!(c.get("Ip6:OutRequests"), Some(4));
        assert_eq!(problems.bad_values, 1);
    }

    #[test]
    fn many_mib_problems_are_counted_past_the_first_few() {
        let mut c = SystemCounters::default();
        let text = "A: 1\nB: 2\nC: 3\nD: 4\nE: 5\n";
        let problems = c.add_header_value_pairs(text);
        assert_eq!(problems.named.len(), MIB_PROBLEMS_NAMED);
        assert_eq!(problems.more, 2);
        assert!(
            problems.describe().ends_with(", 2 more problems"),
            "{problems:?}"
        );
    }

    #[test]
    fn snmp6_names_split_into_sections() {
        let mut c = SystemCounters::default();
        c.add_snmp6("Ip6InReceives 5\nIcmp6InMsgs 2\nUdpLite6InErrors 0\nbroken\n");
        assert_eq!(c.get("Ip6:InReceives"), Some(5));
        assert_eq!(c.get("Icmp6:InMsgs"), Some(2));
        assert_eq!(c.get("UdpLite6:InErrors"), Some(0));
    }

    #[test]
    fn sockstat_counts_tcp_in_use_and_time_wait() {
        let v4 = "sockets: used 10\nTCP: inuse 7 orphan 0 tw 5 alloc 20003 mem 150\nUDP: inuse 0 mem 0\n";
        assert_eq!(parse_sockstat_tcp(v4), 12);
        assert_eq!(parse_sockstat_tcp("TCP6: inuse 3\nUDP6: inuse 1\n"), 3);
        assert_eq!(parse_sockstat_tcp("garbage"), 0);
    }

    #[test]
    fn proc_request_socket_is_a_mini_socket() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1389 0100007F:9C41 03 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 0 10 -1\n   1: 0100007F:1389 0100007F:9C42 01 00000000:00000000 00:00000000 00000000     0        0 1866169 1 00000000773220c7 20 4 30 10 -1\n";
        let mut out = Vec::new();
        parse_proc_net_tcp(std::io::Cursor::new(text), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].state, TcpState::NewSynRecv);
        assert_eq!(out[1].state, TcpState::Established);
        assert_eq!(out[1].inode, 1866169);
    }

    #[test]
    fn namespaces_that_come_or_go_add_nothing_to_deltas() {
        let ns = |v: i64| {
            let mut c = SystemCounters::default();
            c.values.insert("Tcp:ActiveOpens".into(), v);
            c.values.insert("Tcp:CurrEstab".into(), 1);
            c
        };
        let mut before = SystemCounters::default();
        before.add_namespace(1, &ns(100));
        before.add_namespace(2, &ns(50)); // vanishes
        let mut after = SystemCounters::default();
        after.add_namespace(1, &ns(103));
        after.add_namespace(3, &ns(70)); // appears
        let d = after.delta_since(&before).fold_namespaces();
        assert_eq!(d.get("Tcp:ActiveOpens"), Some(3));
        assert_eq!(d.get("Tcp:CurrEstab"), Some(1));
    }

    #[test]
    fn delta_wraps_and_gauges_take_new_value() {
        let mut a = SystemCounters::default();
        let mut b = SystemCounters::default();
        a.values.insert("Tcp:InSegs".into(), 10);
        b.values.insert("Tcp:InSegs".into(), 25);
        a.values.insert("Tcp:CurrEstab".into(), 4);
        b.values.insert("Tcp:CurrEstab".into(), 2);
        a.values.insert("Tcp:RtoMax".into(), 120_000);
        b.values.insert("Tcp:RtoMax".into(), 120_000);
        let d = b.delta_since(&a);
        assert_eq!(d.get("Tcp:RtoMax"), None);
        assert_eq!(d.get("Tcp:InSegs"), Some(15));
        assert_eq!(d.get("Tcp:CurrEstab"), Some(2));
    }
}
