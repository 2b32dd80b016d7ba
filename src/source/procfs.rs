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
    /// /proc/net/snmp and /proc/net/netstat. A pair whose lengths differ
    /// keeps the names it has values for; stray lines are skipped.
    pub fn add_header_value_pairs(&mut self, text: &str) {
        let mut lines = text.lines();
        while let Some(header) = lines.next() {
            let Some((section, names)) = header.split_once(':') else {
                continue;
            };
            let Some(values_line) = lines.next() else {
                break;
            };
            let Some((value_section, values)) = values_line.split_once(':') else {
                continue;
            };
            if value_section != section {
                continue;
            }
            for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
                if let Ok(value) = value.parse::<i64>() {
                    self.values.insert(format!("{section}:{name}"), value);
                } else if let Ok(value) = value.parse::<u64>() {
                    self.values
                        .insert(format!("{section}:{name}"), value as i64);
                }
            }
        }
    }

    /// Parses /proc/net/snmp6's `Name value` lines; `Ip6InReceives` becomes
    /// `Ip6:InReceives`.
    pub fn add_snmp6(&mut self, text: &str) {
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some(name), Some(value)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(value) = value.parse::<i64>() else {
                continue;
            };
            let split = name
                .find(|c: char| c.is_ascii_digit())
                .map(|digit| digit + 1)
                .filter(|&end| end < name.len());
            let key = match split {
                Some(end) => format!("{}:{}", &name[..end], &name[end..]),
                None => format!("Ip6:{name}"),
            };
            self.values.insert(key, value);
        }
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

/// Reads the three files under `net_dir` (/proc/net, or a namespace
/// agent's /proc/thread-self/net). Files that cannot be read are listed in
/// the second part, with why.
pub fn read_system_counters(net_dir: &Path) -> (SystemCounters, Vec<String>) {
    let mut counters = SystemCounters::default();
    let mut missing = Vec::new();
    for name in ["snmp", "netstat", "snmp6"] {
        match std::fs::read_to_string(net_dir.join(name)) {
            Ok(text) if name == "snmp6" => counters.add_snmp6(&text),
            Ok(text) => counters.add_header_value_pairs(&text),
            Err(err) => missing.push(format!("{}: {err}", net_dir.join(name).display())),
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
