//! The socket filter language and its two evaluators: matching in user space
//! (always applied, so results never depend on the kernel) and compilation to
//! sock_diag INET_DIAG_BC bytecode, so that the kernel skips unrelated sockets.
//!
//! Grammar (the seed's, extended):
//! `LOCAL-REMOTE` where each side is `*` or `ADDR:PORT`; ADDR is `*`, an IPv4
//! address whose octets may be `*` (`9.*.*.*`), IPv4 CIDR (`10.0.0.0/8`), or an
//! IPv6 address or prefix in brackets (`[::1]`, `[2001:db8::/32]`); PORT is `*`
//! or 0–65535. A bare `*` is the whole filter as a wildcard.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use crate::model::{unmap, SocketKey};

/// A bad filter: `filter` is the whole text (cut when long), `reason`
/// quotes the bad part.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("bad filter {filter}: {reason}")]
pub struct FilterError {
    pub filter: String,
    pub reason: String,
}

/// What an address part of a filter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrMatch {
    Any,
    /// IPv4 address under a mask; the mask is a prefix for CIDR and may have
    /// holes for the seed's per-octet wildcards (`*.1.*.*`).
    V4 {
        addr: u32,
        mask: u32,
    },
    V6 {
        addr: u128,
        prefix_len: u8,
    },
}

impl AddrMatch {
    fn matches(&self, addr: IpAddr) -> bool {
        match (*self, unmap(addr)) {
            (AddrMatch::Any, _) => true,
            (AddrMatch::V4 { addr: want, mask }, IpAddr::V4(have)) => {
                u32::from(have) & mask == want
            }
            (
                AddrMatch::V6 {
                    addr: want,
                    prefix_len,
                },
                IpAddr::V6(have),
            ) => u128::from(have) & prefix_mask_128(prefix_len) == want,
            _ => false,
        }
    }

    /// The kernel's hostcond form (family, prefix length, address bytes), or
    /// `None` when the kernel cannot express it (a mask with holes).
    fn kernel_prefix(&self) -> Option<(u8, u8, Vec<u8>)> {
        match *self {
            AddrMatch::Any => Some((libc::AF_UNSPEC as u8, 0, Vec::new())),
            AddrMatch::V4 { addr, mask } => {
                let prefix_len = mask.leading_ones();
                (mask.checked_shl(prefix_len).unwrap_or(0) == 0).then(|| {
                    (
                        libc::AF_INET as u8,
                        prefix_len as u8,
                        addr.to_be_bytes().to_vec(),
                    )
                })
            }
            AddrMatch::V6 { addr, prefix_len } => Some((
                libc::AF_INET6 as u8,
                prefix_len,
                addr.to_be_bytes().to_vec(),
            )),
        }
    }
}

fn prefix_mask_128(prefix_len: u8) -> u128 {
    if prefix_len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix_len.min(128)))
    }
}

fn prefix_mask_32(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    }
}

/// One side (local or remote) of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndpointMatch {
    pub addr: AddrMatch,
    pub port: Option<u16>,
}

impl EndpointMatch {
    pub const ANY: EndpointMatch = EndpointMatch {
        addr: AddrMatch::Any,
        port: None,
    };

    fn matches(&self, addr: IpAddr, port: u16) -> bool {
        self.port.is_none_or(|want| want == port) && self.addr.matches(addr)
    }

    fn is_any(&self) -> bool {
        self.port.is_none() && self.addr == AddrMatch::Any
    }
}

/// One parsed filter, `LOCAL-REMOTE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub text: String,
    pub local: EndpointMatch,
    pub remote: EndpointMatch,
}

/// `text` in single quotes for an error line, cut to its first and last
/// 40 characters when long: an error names the bad part, it does not echo
/// a megabyte back. Control characters, quotes and backslashes are escaped
/// as Rust writes them (`\n`, `\u{1b}`, `\'`), so the quotes always
/// delimit what was given and no escape sequence reaches the terminal.
pub fn quoted(text: &str) -> String {
    const KEEP: usize = 40;
    let count = text.chars().count();
    if count <= 2 * KEEP + 10 {
        return format!("'{}'", escaped(text));
    }
    let head: String = text.chars().take(KEEP).collect();
    let tail: String = text.chars().skip(count - KEEP).collect();
    format!(
        "'{}…{}' ({count} characters)",
        escaped(&head),
        escaped(&tail)
    )
}

/// `text` with what cannot be shown as itself between single quotes
/// escaped; double quotes, which can, are left alone.
fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| c == '"' || (c != '\\' && c != '\'' && c.escape_debug().len() == 1);
    if text.chars().all(plain) {
        return text.into();
    }
    text.escape_debug().to_string().replace("\\\"", "\"").into()
}

/// Where a filter's local side ends: the '-' after its port (or after a
/// lone `*`). A '-' elsewhere (`/-1`, `:-1`) is part of a bad side.
fn side_separator(text: &str) -> Result<usize, String> {
    let dashes: Vec<usize> = text.match_indices('-').map(|(i, _)| i).collect();
    let after_port = |i: &&usize| {
        let left = &text[..**i];
        left == "*"
            || left.rsplit_once(':').is_some_and(|(_, port)| {
                port == "*" || (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
            })
    };
    let candidates: Vec<usize> = dashes.iter().filter(after_port).copied().collect();
    match (candidates.as_slice(), dashes.as_slice()) {
        ([one], _) => Ok(*one),
        (_, [only]) => Ok(*only),
        ([], []) => Err("expected <local addr>:<port>-<remote addr>:<port>".to_string()),
        ([], _) => Err(
            "cannot tell the two sides apart: '-' separates them, and a port is 0-65535 or *"
                .to_string(),
        ),
        _ => Err("more than one '-' between the sides".to_string()),
    }
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let error = |reason: String| FilterError {
            filter: quoted(text),
            reason,
        };
        if text == "*" {
            return Ok(Filter {
                text: text.to_string(),
                local: EndpointMatch::ANY,
                remote: EndpointMatch::ANY,
            });
        }
        let at = side_separator(text).map_err(error)?;
        let (local, remote) = (&text[..at], &text[at + 1..]);
        if remote.contains('-') {
            return Err(error("more than one '-' between the sides".to_string()));
        }
        Ok(Filter {
            text: text.to_string(),
            local: parse_endpoint(local)
                .map_err(|r| error(format!("local side {}: {r}", quoted(local))))?,
            remote: parse_endpoint(remote)
                .map_err(|r| error(format!("remote side {}: {r}", quoted(remote))))?,
        })
    }

    pub fn matches(&self, key: &SocketKey) -> bool {
        self.local.matches(key.local, key.local_port)
            && self.remote.matches(key.remote, key.remote_port)
    }

    fn is_any(&self) -> bool {
        self.local.is_any() && self.remote.is_any()
    }
}

/// What an abort leaves of a key: a peer address with no peer port.
fn is_incomplete(key: &SocketKey) -> bool {
    key.remote_port == 0 && !key.remote.is_unspecified()
}

fn parse_endpoint(text: &str) -> Result<EndpointMatch, String> {
    if text == "*" {
        return Ok(EndpointMatch::ANY);
    }
    let (addr, port) = if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| "missing ']' after IPv6 address".to_string())?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| "expected ':<port>' after ']'".to_string())?;
        (parse_v6(addr)?, port)
    } else {
        let (addr, port) = text
            .rsplit_once(':')
            .ok_or_else(|| "expected <addr>:<port>".to_string())?;
        if addr.contains(':') {
            return Err("IPv6 addresses go in brackets: [addr]:port".to_string());
        }
        (parse_v4(addr)?, port)
    };
    let port = match port {
        "*" => None,
        digits => Some(
            digits
                .parse::<u16>()
                .ok()
                .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("bad port {} (0-65535 or *)", quoted(digits)))?,
        ),
    };
    Ok(EndpointMatch { addr, port })
}

fn parse_v4(text: &str) -> Result<AddrMatch, String> {
    if text == "*" {
        return Ok(AddrMatch::Any);
    }
    if let Some((addr, len)) = text.split_once('/') {
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("bad IPv4 address {}", quoted(addr)))?;
        let len: u8 =
            len.parse().ok().filter(|l| *l <= 32).ok_or_else(|| {
                format!("bad prefix length {} (0-32)", quoted(&format!("/{len}")))
            })?;
        let mask = prefix_mask_32(len);
        return Ok(AddrMatch::V4 {
            addr: u32::from(addr) & mask,
            mask,
        });
    }
    let octets: Vec<&str> = text.split('.').collect();
    if octets.len() != 4 {
        return Err(format!(
            "bad IPv4 address {} (want a.b.c.d, * per octet)",
            quoted(text)
        ));
    }
    let (mut addr, mut mask) = (0u32, 0u32);
    for octet in octets {
        addr <<= 8;
        mask <<= 8;
        if octet != "*" {
            let value: u8 = octet
                .parse()
                .map_err(|_| format!("bad octet {} in {}", quoted(octet), quoted(text)))?;
            addr |= u32::from(value);
            mask |= 0xff;
        }
    }
    if mask == 0 {
        return Ok(AddrMatch::Any);
    }
    Ok(AddrMatch::V4 { addr, mask })
}

fn parse_v6(text: &str) -> Result<AddrMatch, String> {
    if text == "*" {
        return Ok(AddrMatch::Any);
    }
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (
            addr,
            len.parse::<u8>()
                .ok()
                .filter(|l| *l <= 128)
                .ok_or_else(|| {
                    format!("bad prefix length {} (0-128)", quoted(&format!("/{len}")))
                })?,
        ),
        None => (text, 128),
    };
    let addr: Ipv6Addr = addr
        .parse()
        .map_err(|_| format!("bad IPv6 address {}", quoted(addr)))?;
    if let Some(v4) = addr.to_ipv4_mapped() {
        // A mapped address stands for its IPv4 one, as sockets are unmapped.
        let v4_len = len.saturating_sub(96);
        let mask = prefix_mask_32(v4_len);
        return Ok(AddrMatch::V4 {
            addr: u32::from(v4) & mask,
            mask,
        });
    }
    let prefix_len = len;
    Ok(AddrMatch::V6 {
        addr: u128::from(addr) & prefix_mask_128(prefix_len),
        prefix_len,
    })
}

mod index;
mod served;

pub use served::ServedEndpoint;

/// Filters at most matched one by one; past this, through an index.
const LINEAR_FILTERS: usize = 8;

/// Several filters, OR-ed; an empty set matches everything.
#[derive(Debug, Clone, Default)]
pub struct FilterSet {
    pub filters: Vec<Filter>,
    /// Built by [`FilterSet::new`] for many filters.
    pub(crate) index: Option<std::sync::Arc<index::FilterIndex>>,
}

impl PartialEq for FilterSet {
    fn eq(&self, other: &FilterSet) -> bool {
        self.filters == other.filters
    }
}

impl Eq for FilterSet {}

// inet_diag bytecode opcodes (include/uapi/linux/inet_diag.h).
const BC_JMP: u8 = 1;
const BC_S_GE: u8 = 2;
const BC_S_LE: u8 = 3;
const BC_D_GE: u8 = 4;
const BC_D_LE: u8 = 5;
const BC_S_COND: u8 = 7;
const BC_D_COND: u8 = 8;

impl FilterSet {
    /// The set of `filters`, indexed when there are many.
    pub fn new(filters: Vec<Filter>) -> FilterSet {
        let index = (filters.len() > LINEAR_FILTERS)
            .then(|| std::sync::Arc::new(index::FilterIndex::new(&filters)));
        FilterSet { filters, index }
    }

    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<FilterSet, FilterError> {
        let filters = texts
            .iter()
            .map(|t| Filter::parse(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FilterSet::new(filters))
    }

    /// These filters plus each one with its sides swapped. The kernel is
    /// asked for this wider set so that a loopback peer's sockets (whose
    /// TIME_WAIT tells an orderly close from a reset) reach the tracker;
    /// the user-space match still decides what is reported.
    pub fn with_mirrors(&self) -> FilterSet {
        let mut filters = self.filters.clone();
        let mut sides: std::collections::HashSet<(EndpointMatch, EndpointMatch)> =
            filters.iter().map(|f| (f.local, f.remote)).collect();
        for f in &self.filters {
            if sides.insert((f.remote, f.local)) {
                filters.push(Filter {
                    text: format!("mirror of {}", f.text),
                    local: f.remote,
                    remote: f.local,
                });
            }
        }
        FilterSet::new(filters)
    }

    /// True when no filter restricts anything.
    pub fn matches_everything(&self) -> bool {
        self.filters.is_empty() || self.filters.iter().any(Filter::is_any)
    }

    /// Whether a socket's key passes. A key with a peer address but no
    /// peer port is what an abort leaves of one (`tcp_disconnect` clears
    /// the port, and the local address of a socket not bound to one): it
    /// passes only a filter that tests none of the parts it lost, since
    /// nothing tells what they were (see [`FilterSet::cannot_tell`]).
    pub fn matches(&self, key: &SocketKey) -> bool {
        if is_incomplete(key) {
            return self.judge_incomplete(key) == Some(true);
        }
        match &self.index {
            Some(index) => index.matches(&self.filters, key),
            None => self.filters.is_empty() || self.filters.iter().any(|f| f.matches(key)),
        }
    }

    /// Whether an incomplete key (an abort's) could pass only on the parts
    /// it lost: whether it matches cannot be told from it. Its counts
    /// belong in no group; a report says how many such sockets there were.
    pub fn cannot_tell(&self, key: &SocketKey) -> bool {
        is_incomplete(key) && self.judge_incomplete(key).is_none()
    }

    /// Some(true): a filter passes it whatever it lost; Some(false): none
    /// passes it on what it kept; None: only on what it lost.
    fn judge_incomplete(&self, key: &SocketKey) -> Option<bool> {
        if self.filters.is_empty() {
            return Some(true);
        }
        let mut maybe = false;
        for f in &self.filters {
            let kept_match = (key.local.is_unspecified() || f.local.addr.matches(key.local))
                && f.local.port.is_none_or(|p| p == key.local_port)
                && f.remote.addr.matches(key.remote);
            if !kept_match {
                continue;
            }
            let tests_lost = f.remote.port.is_some()
                || (key.local.is_unspecified() && f.local.addr != AddrMatch::Any);
            if !tests_lost {
                return Some(true);
            }
            maybe = true;
        }
        (!maybe).then_some(false)
    }

    /// INET_DIAG_REQ_BYTECODE program accepting a superset of what
    /// [`FilterSet::matches`] accepts (a superset when a mask has holes),
    /// or `None` when the kernel would have to return everything anyway.
    pub fn to_bytecode(&self) -> Option<Vec<u8>> {
        if self.matches_everything() {
            return None;
        }
        // Each filter becomes a list of conditions; a filter whose conditions
        // all drop out (inexpressible) accepts everything.
        let mut blocks: Vec<Vec<Vec<u8>>> = Vec::new();
        for filter in &self.filters {
            let mut conds = Vec::new();
            for (code, side) in [(BC_S_COND, &filter.local), (BC_D_COND, &filter.remote)] {
                if side.is_any() {
                    continue;
                }
                let (family, prefix_len, addr) =
                    side.addr
                        .kernel_prefix()
                        .unwrap_or((libc::AF_UNSPEC as u8, 0, Vec::new()));
                let port = side.port.map_or(-1i32, i32::from);
                if family == libc::AF_UNSPEC as u8 && port == -1 {
                    continue;
                }
                let mut cond = vec![code, 0, 0, 0, family, prefix_len, 0, 0];
                cond.extend_from_slice(&port.to_ne_bytes());
                cond.extend_from_slice(&addr);
                conds.push(cond);
            }
            if conds.is_empty() {
                return None;
            }
            blocks.push(conds);
        }
        // Too many filters for the kernel's 16-bit offsets: a coarser first
        // cut by port ranges, or user space alone.
        emit(&blocks).or_else(|| emit(&self.port_range_blocks()?))
    }

    /// A superset of these filters as port ranges (local ports of filters
    /// that name one, remote ports of the others), merged across their
    /// smallest gaps until the program fits. None when a filter names no
    /// port.
    fn port_range_blocks(&self) -> Option<Vec<Vec<Vec<u8>>>> {
        let (mut local, mut remote) = (Vec::new(), Vec::new());
        for f in &self.filters {
            match (f.local.port, f.remote.port) {
                (Some(p), _) => local.push(p),
                (None, Some(p)) => remote.push(p),
                (None, None) => return None,
            }
        }
        // The kernel runs the program over every socket, op by op: a long
        // one costs more than the sockets it cuts (3,000 ranges over 40,000
        // sockets: 0.5 s of system time a poll). A few ranges cut well
        // where ports cluster, and cost little where they do not.
        const MAX_RANGES: usize = 64;
        // Each side's share of the ranges, by how many ports it has.
        let total = local.len().min(MAX_RANGES) + remote.len().min(MAX_RANGES);
        let share = |n: usize| (MAX_RANGES * n.min(MAX_RANGES) / total.max(1)).max(1);
        let (local_max, remote_max) = (share(local.len()), share(remote.len()));
        let mut blocks = Vec::new();
        for (ports, max, (ge, le)) in [
            (local, local_max, (BC_S_GE, BC_S_LE)),
            (remote, remote_max, (BC_D_GE, BC_D_LE)),
        ] {
            for (low, high) in port_ranges(ports, max) {
                let op = |code: u8, port: u16| {
                    let mut cond = vec![code, 8, 0, 0, 0, 0];
                    cond.extend_from_slice(&port.to_ne_bytes());
                    cond
                };
                blocks.push(vec![op(ge, low), op(le, high)]);
            }
        }
        Some(blocks)
    }
}

/// `ports` as at most `max` ranges covering them all: runs of neighbours
/// first, then the ranges across the smallest gaps merged.
fn port_ranges(mut ports: Vec<u16>, max: usize) -> Vec<(u16, u16)> {
    ports.sort_unstable();
    ports.dedup();
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for p in ports {
        match ranges.last_mut() {
            Some((_, high)) if u32::from(*high) + 1 == u32::from(p) => *high = p,
            _ => ranges.push((p, p)),
        }
    }
    if ranges.len() <= max {
        return ranges;
    }
    // Keep the widest gaps as boundaries; merge across the others.
    let mut gaps: Vec<(u16, usize)> = ranges
        .windows(2)
        .enumerate()
        .map(|(i, w)| (w[1].0 - w[0].1, i))
        .collect();
    gaps.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut cuts: Vec<usize> = gaps
        .iter()
        .take(max.saturating_sub(1))
        .map(|g| g.1)
        .collect();
    cuts.sort_unstable();
    let mut merged = Vec::with_capacity(max);
    let mut start = 0;
    for cut in cuts.into_iter().chain(std::iter::once(ranges.len() - 1)) {
        merged.push((ranges[start].0, ranges[cut].1));
        start = cut + 1;
    }
    merged
}

/// The program of OR-ed blocks of AND-ed conditions; None when it would
/// not fit the kernel's 16-bit offsets.
fn emit(blocks: &[Vec<Vec<u8>>]) -> Option<Vec<u8>> {
    const JMP_LEN: usize = 4;
    let block_lens: Vec<usize> = blocks
        .iter()
        .enumerate()
        .map(|(i, conds)| {
            let jmp = if i + 1 < blocks.len() { JMP_LEN } else { 0 };
            conds.iter().map(Vec::len).sum::<usize>() + jmp
        })
        .collect();
    let total: usize = block_lens.iter().sum();
    if total + 8 > usize::from(u16::MAX) {
        return None;
    }
    let mut program = Vec::with_capacity(total);
    for (i, conds) in blocks.iter().enumerate() {
        let block_end = program.len() + block_lens[i];
        let last = i + 1 == blocks.len();
        for cond in conds {
            let here = program.len();
            // On a miss: the next filter's first op, or past the end
            // (reject) for the last filter.
            let no = if last {
                total + 4 - here
            } else {
                block_end - here
            };
            let mut op = cond.clone();
            op[1] = cond.len() as u8;
            op[2..4].copy_from_slice(&(no as u16).to_ne_bytes());
            program.extend_from_slice(&op);
        }
        if !last {
            // All conditions held: jump to the end, which accepts.
            let here = program.len();
            let to_end = (total - here) as u16;
            program.extend_from_slice(&[BC_JMP, JMP_LEN as u8]);
            program.extend_from_slice(&to_end.to_ne_bytes());
        }
    }
    debug_assert_eq!(program.len(), total);
    Some(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(l: &str, lp: u16, r: &str, rp: u16) -> SocketKey {
        SocketKey::new(l.parse().unwrap(), lp, r.parse().unwrap(), rp)
    }

    #[test]
    fn seed_filters_parse_and_match() {
        let web = Filter::parse("*.*.*.*:80-*.*.*.*:*").unwrap();
        assert!(web.matches(&key("10.1.2.3", 80, "9.9.9.9", 5555)));
        assert!(!web.matches(&key("10.1.2.3", 81, "9.9.9.9", 5555)));
        let nine = Filter::parse("*.*.*.*:*-9.*.*.*:*").unwrap();
        assert!(nine.matches(&key("10.1.2.3", 1, "9.200.0.1", 2)));
        assert!(!nine.matches(&key("10.1.2.3", 1, "19.200.0.1", 2)));
    }

    #[test]
    fn ipv6_cidr_and_bare_star() {
        let f = Filter::parse("[::1]:*-[2001:db8::/32]:443").unwrap();
        assert!(f.matches(&key("::1", 3, "2001:db8:1::5", 443)));
        assert!(!f.matches(&key("::1", 3, "2001:db9::5", 443)));
        assert!(!f.matches(&key("127.0.0.1", 3, "10.0.0.1", 443)));
        let cidr = Filter::parse("10.0.0.0/8:*-*").unwrap();
        assert!(cidr.matches(&key("10.9.9.9", 1, "::1", 2)));
        assert!(!cidr.matches(&key("11.0.0.1", 1, "::1", 2)));
        assert!(Filter::parse("*")
            .unwrap()
            .matches(&key("::1", 1, "::1", 2)));
    }

    #[test]
    fn ipv4_filter_matches_mapped_ipv6_socket() {
        let f = Filter::parse("127.0.0.1:*-*").unwrap();
        assert!(f.matches(&key("::ffff:127.0.0.1", 1, "::ffff:127.0.0.1", 2)));
    }

    #[test]
    fn a_long_bad_filter_is_quoted_cut_not_echoed_whole() {
        let long = format!("1.2.3.4:{}-*", "9".repeat(120_000));
        let err = Filter::parse(&long).unwrap_err().to_string();
        assert!(err.len() < 1_000, "{} bytes", err.len());
        assert!(err.contains("120010 characters"), "{err}");
    }

    #[test]
    fn quoted_escapes_controls_quotes_and_backslashes_and_cuts_long_text_by_characters() {
        assert_eq!(quoted("lport"), "'lport'");
        assert_eq!(quoted("say \"hi\""), "'say \"hi\"'");
        assert_eq!(quoted("a\u{1b}[31mred\nx"), "'a\\u{1b}[31mred\\nx'");
        assert_eq!(quoted("it's"), "'it\\'s'");
        assert_eq!(quoted("a\\b"), "'a\\\\b'");
        let long = format!("{}\n{}", "é".repeat(100), "z".repeat(100));
        let shown = quoted(&long);
        assert!(
            shown.starts_with(&format!("'{}…", "é".repeat(40))),
            "{shown}"
        );
        assert!(
            shown.ends_with(&format!("…{}' (201 characters)", "z".repeat(40))),
            "{shown}"
        );
        assert!(!shown.contains('\n'), "{shown}");
    }

    #[test]
    fn bad_filters_name_the_bad_part() {
        for (text, needle) in [
            ("1.2.3.4:80", "expected"),
            ("1.2.3.4:99999-*", "bad port '99999'"),
            ("1.2.3:80-*", "bad IPv4 address '1.2.3'"),
            ("1.2.3.400:80-*", "bad octet '400'"),
            ("10.0.0.0/33:*-*", "/33"),
            ("[::1:*-*", "missing ']'"),
            ("[fe80::zz]:1-*", "bad IPv6 address"),
            ("::1:80-*", "brackets"),
            ("*-*-*", "more than one"),
            ("[::/-1]:*-*", "bad prefix length '/-1'"),
            ("10.0.0.0/-1:*-*", "bad prefix length '/-1'"),
            ("127.0.0.1:-1-*", "a port is 0-65535 or *"),
            ("*:+80-*", "bad port '+80'"),
        ] {
            let err = Filter::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(err.contains(text), "{text}: {err}");
        }
    }

    #[test]
    fn wildcards_compile_to_no_bytecode() {
        let set = FilterSet::parse(&["*.*.*.*:*-*.*.*.*:*"]).unwrap();
        assert!(set.to_bytecode().is_none());
        assert!(FilterSet::default().to_bytecode().is_none());
    }

    /// A user-space model of the kernel's inet_diag_bc_run, to check that the
    /// compiled program and the matcher agree.
    fn run_bytecode(program: &[u8], key: &SocketKey) -> bool {
        let mut pos = 0usize;
        let mut len = program.len() as isize;
        while len > 0 {
            let op = &program[pos..];
            let (code, yes, no) = (
                op[0],
                op[1] as usize,
                u16::from_ne_bytes([op[2], op[3]]) as usize,
            );
            let ok = match code {
                BC_JMP => false,
                BC_S_COND | BC_D_COND => {
                    let family = op[4];
                    let prefix = op[5];
                    let port = i32::from_ne_bytes([op[8], op[9], op[10], op[11]]);
                    let (addr, p) = if code == BC_S_COND {
                        (key.local, key.local_port)
                    } else {
                        (key.remote, key.remote_port)
                    };
                    let port_ok = port == -1 || port == i32::from(p);
                    let addr_ok = match (family as i32, unmap(addr)) {
                        (libc::AF_UNSPEC, _) => true,
                        (libc::AF_INET, IpAddr::V4(a)) => {
                            let want = u32::from_be_bytes([op[12], op[13], op[14], op[15]]);
                            u32::from(a) & prefix_mask_32(prefix) == want & prefix_mask_32(prefix)
                        }
                        (libc::AF_INET6, IpAddr::V6(a)) => {
                            let mut b = [0u8; 16];
                            b.copy_from_slice(&op[12..28]);
                            let want = u128::from_be_bytes(b);
                            u128::from(a) & prefix_mask_128(prefix)
                                == want & prefix_mask_128(prefix)
                        }
                        _ => false,
                    };
                    port_ok && addr_ok
                }
                BC_S_GE | BC_S_LE | BC_D_GE | BC_D_LE => {
                    let port = u16::from_ne_bytes([op[6], op[7]]);
                    let have = if code == BC_S_GE || code == BC_S_LE {
                        key.local_port
                    } else {
                        key.remote_port
                    };
                    if code == BC_S_GE || code == BC_D_GE {
                        have >= port
                    } else {
                        have <= port
                    }
                }
                other => panic!("unexpected opcode {other}"),
            };
            let step = if ok { yes } else { no };
            pos += step;
            len -= step as isize;
        }
        len == 0
    }

    #[test]
    fn bytecode_agrees_with_matcher() {
        let sets = [
            vec!["*.*.*.*:80-*.*.*.*:*"],
            vec!["*:*-9.*.*.*:*", "127.0.0.1:22-*"],
            vec!["[::1]:*-[2001:db8::/32]:443", "10.0.0.0/8:*-*:5", "*-*:7"],
        ];
        let keys = [
            key("10.1.2.3", 80, "9.9.9.9", 5555),
            key("10.1.2.3", 22, "9.1.1.1", 5),
            key("127.0.0.1", 22, "8.8.8.8", 7),
            key("::1", 9, "2001:db8::1", 443),
            key("::1", 9, "2001:db8::1", 444),
            key("::ffff:10.2.3.4", 9, "::ffff:1.1.1.1", 5),
            key("192.168.0.1", 1, "1.1.1.1", 1),
        ];
        for texts in &sets {
            let set = FilterSet::parse(texts).unwrap();
            let program = set.to_bytecode().unwrap();
            assert_eq!(program.len() % 4, 0);
            for k in &keys {
                assert_eq!(run_bytecode(&program, k), set.matches(k), "{texts:?} {k}");
            }
        }
    }

    #[test]
    fn too_many_filters_for_the_kernel_give_no_bytecode() {
        let texts: Vec<String> = (0..2500)
            .map(|i| format!("[2001:db8::{i:x}]:*-*"))
            .collect();
        let set = FilterSet::parse(&texts).unwrap();
        // Addresses only: no port ranges to fall back to.
        assert!(set.to_bytecode().is_none());
        let few = FilterSet::parse(&texts[..10]).unwrap();
        assert!(few.to_bytecode().is_some());
    }

    #[test]
    fn too_many_port_filters_still_get_a_first_cut_by_port_ranges() {
        // 10,000 filters, most on a local port, some on a remote one.
        let texts: Vec<String> = (0..10_000u32)
            .map(|i| match i % 5 {
                4 => format!("*-10.0.0.1:{}", 20_000 + i),
                _ => format!("10.{}.0.0/16:{}-*", i % 200, 1 + (i * 7) % 60_000),
            })
            .collect();
        let set = FilterSet::parse(&texts).unwrap();
        let program = set.to_bytecode().expect("a coarser program");
        assert!(program.len() < usize::from(u16::MAX));
        // A superset: everything the filters take passes the kernel; most of
        // what they do not is cut there.
        let (mut passed, mut rejected) = (0, 0);
        for lport in (1..65_535u16).step_by(7) {
            for rport in [80u16, 20_004, 50_000] {
                let k = key("10.3.0.1", lport, "10.0.0.1", rport);
                let kernel = run_bytecode(&program, &k);
                assert!(kernel || !set.matches(&k), "{k}");
                if kernel {
                    passed += 1;
                } else {
                    rejected += 1;
                }
            }
        }
        assert!(
            rejected > 0 && passed > 0,
            "{passed} passed, {rejected} rejected"
        );
    }

    #[test]
    fn port_ranges_cover_every_port_within_the_bound() {
        let ports: Vec<u16> = vec![5, 1, 2, 3, 100, 101, 400, 9000, 9002];
        assert_eq!(
            port_ranges(ports.clone(), 10),
            [
                (1, 3),
                (5, 5),
                (100, 101),
                (400, 400),
                (9000, 9000),
                (9002, 9002)
            ]
        );
        let merged = port_ranges(ports.clone(), 3);
        assert_eq!(merged.len(), 3);
        for p in ports {
            assert!(
                merged.iter().any(|(lo, hi)| (*lo..=*hi).contains(&p)),
                "{p}: {merged:?}"
            );
        }
        // The widest gaps stay: 101→400 and 400→9000.
        assert_eq!(merged, [(1, 101), (400, 400), (9000, 9002)]);
    }

    #[test]
    fn mirrors_swap_sides_and_keep_the_originals() {
        let set = FilterSet::parse(&["*-127.0.0.1:7070"])
            .unwrap()
            .with_mirrors();
        assert_eq!(set.filters.len(), 2);
        let client = key("127.0.0.1", 40000, "127.0.0.1", 7070);
        assert!(set.matches(&client) && set.matches(&client.reversed()));
        let program = set.to_bytecode().unwrap();
        assert!(run_bytecode(&program, &client.reversed()));
    }

    #[test]
    fn octet_holes_fall_back_to_ports_in_the_kernel() {
        let set = FilterSet::parse(&["*.1.*.*:80-*"]).unwrap();
        let program = set.to_bytecode().unwrap();
        // Only the port survives: the kernel returns a superset.
        assert!(run_bytecode(&program, &key("9.9.9.9", 80, "1.1.1.1", 1)));
        assert!(!set.matches(&key("9.9.9.9", 80, "1.1.1.1", 1)));
        assert!(set.matches(&key("9.1.9.9", 80, "1.1.1.1", 1)));
    }

    #[test]
    fn an_aborted_key_matches_on_what_the_abort_left() {
        let set = FilterSet::parse(&["*-127.0.0.1:*", "10.0.0.1:80-*"]).unwrap();
        let cleared = SocketKey::new(
            "0.0.0.0".parse().unwrap(),
            44121,
            "127.0.0.1".parse().unwrap(),
            0,
        );
        assert!(set.matches(&cleared));
        assert!(!set.cannot_tell(&cleared));
        let elsewhere = SocketKey::new(
            "0.0.0.0".parse().unwrap(),
            44121,
            "10.9.9.9".parse().unwrap(),
            0,
        );
        assert!(!set.matches(&elsewhere));
        assert!(!set.cannot_tell(&elsewhere));
    }

    /// An abort's notice has lost its peer port: a filter on that port
    /// cannot tell whether it was one of its connections, so it does not
    /// take it in (it is counted apart as unknown), nor rejects it for sure.
    #[test]
    fn a_filter_on_remote_port_keeps_out_aborts_whose_port_is_lost() {
        let set = FilterSet::parse(&["*-*:30001"]).unwrap();
        let cleared = key("127.0.0.1", 45000, "127.0.0.1", 0);
        assert!(!set.matches(&cleared));
        assert!(set.cannot_tell(&cleared));
        // What it kept can still rule it out, and a complete key is judged
        // as ever.
        let local = FilterSet::parse(&["*:80-*:30001"]).unwrap();
        assert!(!local.cannot_tell(&cleared));
        assert!(set.matches(&key("127.0.0.1", 45000, "127.0.0.1", 30001)));
        assert!(!set.cannot_tell(&key("127.0.0.1", 45000, "127.0.0.1", 30002)));
        // One filter that tests nothing it lost takes it in.
        let wide = FilterSet::parse(&["*-*:30001", "*-127.0.0.1:*"]).unwrap();
        assert!(wide.matches(&cleared));
        // An unbound socket lost its local address too.
        let unbound = key("0.0.0.0", 45000, "127.0.0.1", 0);
        let on_address = FilterSet::parse(&["127.0.0.1:*-*"]).unwrap();
        assert!(!on_address.matches(&unbound));
        assert!(on_address.cannot_tell(&unbound));
    }
}
