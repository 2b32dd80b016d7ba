//! Plain data shared by every layer: socket identity, TCP states, one socket's
//! sample as the kernel gave it (with its decoded `tcp_info`), a whole
//! snapshot, and the kernel events precision mode decodes. No I/O lives
//! here, and nothing here imports another module of the crate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub mod event;
pub mod tcp_info;
pub mod udp;

use tcp_info::TcpInfo;

/// The 4-tuple of a TCP socket and the network namespace it lives in (its
/// inode; 0 for the namespace tcpipstat runs in). Ports are in host order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketKey {
    pub netns: u64,
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
}

impl SocketKey {
    pub fn new(local: IpAddr, local_port: u16, remote: IpAddr, remote_port: u16) -> Self {
        SocketKey {
            netns: 0,
            local,
            local_port,
            remote,
            remote_port,
        }
    }

    /// The same connection seen from the other end (a loopback peer).
    pub fn reversed(&self) -> SocketKey {
        SocketKey {
            netns: self.netns,
            ..SocketKey::new(self.remote, self.remote_port, self.local, self.local_port)
        }
    }
}

impl std::fmt::Display for SocketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} <-> {}",
            EndpointDisplay(self.local, self.local_port),
            EndpointDisplay(self.remote, self.remote_port)
        )
    }
}

/// `addr:port`, with IPv6 addresses in brackets as `ss` prints them.
pub struct EndpointDisplay(pub IpAddr, pub u16);

impl std::fmt::Display for EndpointDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{}:{}", a, self.1),
            IpAddr::V6(a) => write!(f, "[{}]:{}", a, self.1),
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it
/// stands for; anything else unchanged. Filters and grouping use this so a
/// dual-stack listener's peers match IPv4 filters, as the kernel's own
/// bytecode does.
pub fn unmap(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

pub const UNSPECIFIED_V4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
pub const UNSPECIFIED_V6: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// TCP states as numbered in the kernel's `include/net/tcp_states.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    TimeWait = 6,
    Close = 7,
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
    NewSynRecv = 12,
    BoundInactive = 13,
    Unknown = 0,
}

impl TcpState {
    pub fn from_kernel(value: u8) -> TcpState {
        use TcpState::*;
        match value {
            1 => Established,
            2 => SynSent,
            3 => SynRecv,
            4 => FinWait1,
            5 => FinWait2,
            6 => TimeWait,
            7 => Close,
            8 => CloseWait,
            9 => LastAck,
            10 => Listen,
            11 => Closing,
            12 => NewSynRecv,
            13 => BoundInactive,
            _ => Unknown,
        }
    }

    /// Whether a socket in this state has received its peer's FIN, which
    /// tcp_info's `bytes_received` counts as one byte.
    pub fn peer_fin_received(self) -> bool {
        matches!(
            self,
            TcpState::CloseWait | TcpState::LastAck | TcpState::Closing | TcpState::TimeWait
        )
    }

    /// The name `ss` prints.
    pub fn name(self) -> &'static str {
        use TcpState::*;
        match self {
            Established => "ESTAB",
            SynSent => "SYN-SENT",
            SynRecv => "SYN-RECV",
            FinWait1 => "FIN-WAIT-1",
            FinWait2 => "FIN-WAIT-2",
            TimeWait => "TIME-WAIT",
            Close => "UNCONN",
            CloseWait => "CLOSE-WAIT",
            LastAck => "LAST-ACK",
            Listen => "LISTEN",
            Closing => "CLOSING",
            NewSynRecv => "SYN-RECV",
            BoundInactive => "BOUND-INACTIVE",
            Unknown => "UNKNOWN",
        }
    }

    /// The name in a state history: the kernel's CLOSE rather than ss's
    /// UNCONN, since a history ends there.
    pub fn history_name(self) -> &'static str {
        if self == TcpState::Close {
            "CLOSE"
        } else {
            self.name()
        }
    }

    /// States the kernel's CurrEstab gauge counts.
    pub fn counts_as_established(self) -> bool {
        matches!(self, TcpState::Established | TcpState::CloseWait)
    }

    /// A connection attempt that has not completed its handshake.
    pub fn is_handshake(self) -> bool {
        matches!(
            self,
            TcpState::SynSent | TcpState::SynRecv | TcpState::NewSynRecv
        )
    }

    /// Sockets the kernel reports without tcp_info (mini sockets).
    pub fn is_mini_socket(self) -> bool {
        matches!(self, TcpState::TimeWait | TcpState::NewSynRecv)
    }
}

/// Close notices the kernel could not deliver (or the reader could not
/// keep), over some span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloseLoss {
    /// Notices lost: each one, where `exact`; else only the overflows
    /// below, a lower bound.
    pub notices: u64,
    /// Times the kernel said the receive buffer was full (ENOBUFS): once
    /// per overflow, which loses every notice until the buffer is read
    /// empty, any number of them.
    pub overflows: u64,
    /// Whether `notices` counts every lost notice (the kernel's drop count
    /// of the socket, SO_MEMINFO, 4.12+).
    pub exact: bool,
}

impl CloseLoss {
    /// Nothing lost yet, counted exactly or not.
    pub fn none(exact: bool) -> CloseLoss {
        CloseLoss {
            exact,
            ..CloseLoss::default()
        }
    }

    /// Adds another listener's (another namespace's) losses.
    pub fn add(&mut self, other: &CloseLoss) {
        self.notices += other.notices;
        self.overflows += other.overflows;
        self.exact &= other.exact;
    }

    /// What was lost after `earlier` (counts only grow).
    pub fn since(&self, earlier: &CloseLoss) -> CloseLoss {
        CloseLoss {
            notices: self.notices.saturating_sub(earlier.notices),
            overflows: self.overflows.saturating_sub(earlier.overflows),
            exact: self.exact,
        }
    }
}

/// A few fields of the kernel's `sk_meminfo` array (INET_DIAG_SKMEMINFO).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SkMemInfo {
    pub rmem_alloc: u32,
    pub rcvbuf: u32,
    pub wmem_alloc: u32,
    pub sndbuf: u32,
    /// SK_MEMINFO_DROPS: present only from 4.x kernels whose array has it.
    pub drops: Option<u32>,
}

/// The congestion control name, kept inline so a dump allocates nothing per
/// socket. Kernel names are at most 15 bytes (TCP_CA_NAME_MAX - 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CongestionName {
    bytes: [u8; 16],
    len: u8,
}

impl CongestionName {
    pub fn from_bytes(raw: &[u8]) -> Option<CongestionName> {
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        let name = &raw[..end.min(16)];
        if name.is_empty() || std::str::from_utf8(name).is_err() {
            return None;
        }
        let mut bytes = [0u8; 16];
        bytes[..name.len()].copy_from_slice(name);
        Some(CongestionName {
            bytes,
            len: name.len() as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

/// One socket as one poll saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSample {
    pub key: SocketKey,
    /// The sock_diag cookie; 0 when the source has none (/proc/net/tcp).
    pub cookie: u64,
    pub state: TcpState,
    pub inode: u64,
    pub uid: u32,
    /// Receive queue; for a listener, the accept queue length.
    pub recv_queue: u32,
    /// Send queue; for a listener, the accept queue limit.
    pub send_queue: u32,
    pub tcp_info: Option<TcpInfo>,
    pub congestion: Option<CongestionName>,
    pub skmem: Option<SkMemInfo>,
}

impl SocketSample {
    /// Whether this is a mini socket (TIME_WAIT, a request): one that
    /// carries no counters of its own. sock_diag gives tcp_info for every
    /// full socket, so a FIN_WAIT2 sample of it without one is a timewait
    /// socket in its FIN_WAIT2 substate (an orphan waiting out
    /// tcp_fin_timeout), whose full socket is gone.
    pub fn is_mini_socket(&self) -> bool {
        self.state.is_mini_socket()
            || (self.state == TcpState::FinWait2 && self.cookie != 0 && self.tcp_info.is_none())
    }

    /// Whether this dumped sample is of a socket the kernel destroyed while
    /// the dump held it: a dump takes a hash bucket's sockets under its
    /// lock and fills their messages after, and one whose last segment
    /// came in between (`tcp_done`, then `tcp_v4_destroy_sock`'s
    /// `inet_put_port`) is listed in CLOSE with local port 0: the dump
    /// reports `sk_num`, which releasing the port zeroes. Its tuple is not
    /// the connection's; its close notice (which reports `inet_sport`)
    /// follows with the real one.
    pub fn lost_local_port(&self) -> bool {
        self.state == TcpState::Close && self.key.local_port == 0 && self.cookie != 0
    }

    /// Whether `newer`, a sample or close notice with this socket's cookie,
    /// is the full socket this request socket became: the kernel gives the
    /// child the cookie its request had, if a dump asked for one.
    pub fn grew_into(&self, newer: &SocketSample) -> bool {
        self.state == TcpState::NewSynRecv && !newer.is_mini_socket()
    }

    /// Whether `newer`, a later sample of this socket, tells nothing new:
    /// the same state, queues, owner and counters, only tcp_info's idle
    /// clocks moved. An orphan's sample (inode 0) keeps its owner's inode,
    /// and a lean poll's (no memory or congestion control) the last known.
    pub fn unchanged_in(&self, newer: &SocketSample) -> bool {
        let tcp_info_same = match (&self.tcp_info, &newer.tcp_info) {
            (Some(old), Some(new)) => old.same_but_idle_clocks(new),
            (None, None) => true,
            _ => false,
        };
        tcp_info_same
            && self.key == newer.key
            && self.cookie == newer.cookie
            && self.state == newer.state
            && (self.inode == newer.inode || newer.inode == 0)
            && self.uid == newer.uid
            && self.recv_queue == newer.recv_queue
            && self.send_queue == newer.send_queue
            && (self.congestion == newer.congestion || newer.congestion.is_none())
            && (self.skmem == newer.skmem || newer.skmem.is_none())
    }

    /// A sample with identity and state only, as /proc/net/tcp or a mini
    /// socket gives it.
    pub fn bare(key: SocketKey, cookie: u64, state: TcpState) -> SocketSample {
        SocketSample {
            key,
            cookie,
            state,
            inode: 0,
            uid: 0,
            recv_queue: 0,
            send_queue: 0,
            tcp_info: None,
            congestion: None,
            skmem: None,
        }
    }
}

/// Where a snapshot's sockets came from; decides what can be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketSource {
    SockDiag,
    ProcNetTcp,
}

/// Everything one poll read.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Milliseconds on a monotonic clock (replayed snapshots carry their own).
    pub taken_at_ms: u64,
    pub source: SocketSource,
    pub sockets: Vec<SocketSample>,
    /// Listening sockets, when the main dump was filtered and they had to be
    /// asked for apart (they decide PassiveOpens).
    pub listeners: Vec<SocketKey>,
    /// Namespaces whose sockets this poll could not read: their sockets are
    /// not gone, only unseen this time.
    pub unsampled_netns: Vec<u64>,
    /// Sockets the kernel destroyed, from its close notices read by the end
    /// of this poll's dump (state CLOSE, final counters).
    pub closed: Vec<SocketSample>,
    /// When `closed` was read (ms, `taken_at_ms`'s clock): no earlier than
    /// the kernel built those notices, whose tcp_info clocks (ms since the
    /// last data sent) count back from that build. None where unknown
    /// (recorded snapshots).
    pub closes_read_ms: Option<u64>,
    /// Whether close notices are read (then every connection's end has
    /// one, and TIME_WAIT sockets are not dumped).
    pub closes_watched: bool,
    /// UDP and UDP-Lite sockets, when asked for (`--udp`).
    pub udp: Vec<udp::UdpSample>,
    /// UDP sockets the kernel destroyed, from close notices read by the
    /// end of this poll's UDP dump (no drop count, no inode).
    pub udp_closed: Vec<udp::UdpSample>,
    /// Whether UDP close notices are read.
    pub udp_closes_watched: bool,
}

impl Snapshot {
    pub fn new(taken_at_ms: u64, source: SocketSource, sockets: Vec<SocketSample>) -> Snapshot {
        Snapshot {
            taken_at_ms,
            source,
            sockets,
            listeners: Vec::new(),
            unsampled_netns: Vec::new(),
            closed: Vec::new(),
            closes_read_ms: None,
            closes_watched: false,
            udp: Vec::new(),
            udp_closed: Vec::new(),
            udp_closes_watched: false,
        }
    }
}

/// The states a socket went through, as kernel events told (precision
/// mode): inline, so tracking it allocates nothing. Holds the first
/// [`StateHistory::CAPACITY`] states; later ones replace the last slot, so
/// the final state is always kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateHistory {
    states: [u8; StateHistory::CAPACITY],
    len: u8,
    /// Whether states between the kept ones were left out.
    elided: bool,
}

impl StateHistory {
    pub const CAPACITY: usize = 8;

    pub fn push(&mut self, state: TcpState) {
        if self.last() == Some(state) {
            return;
        }
        let len = self.len as usize;
        if len < Self::CAPACITY {
            self.states[len] = state as u8;
            self.len += 1;
        } else {
            self.states[Self::CAPACITY - 1] = state as u8;
            self.elided = true;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn last(&self) -> Option<TcpState> {
        self.iter().last()
    }

    pub fn iter(&self) -> impl Iterator<Item = TcpState> + '_ {
        self.states[..self.len as usize]
            .iter()
            .map(|s| TcpState::from_kernel(*s))
    }

    /// `SYN-SENT>ESTAB>FIN-WAIT-1>CLOSE` (`..` marks left-out states).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let last = self.len as usize;
        for (i, state) in self.iter().enumerate() {
            if i > 0 {
                out.push_str(if self.elided && i + 1 == last {
                    ">..>"
                } else {
                    ">"
                });
            }
            // ss's name for Close is UNCONN; a history ends in CLOSE.
            out.push_str(if state == TcpState::Close {
                "CLOSE"
            } else {
                state.name()
            });
        }
        out
    }
}
