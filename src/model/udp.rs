//! One UDP or UDP-Lite socket as one poll saw it: identity, its queues and
//! buffers, and the kernel's drop count for it (SK_MEMINFO_DROPS, or the
//! `drops` column of /proc/net/udp). Plain data, no I/O.

use super::SocketKey;

/// Which of the two datagram protocols a socket speaks; each has its own
/// MIB section (`Udp`/`Udp6`, `UdpLite`/`UdpLite6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UdpProto {
    Udp,
    UdpLite,
}

impl UdpProto {
    pub const BOTH: [UdpProto; 2] = [UdpProto::Udp, UdpProto::UdpLite];

    /// The kernel's MIB section name for IPv4 (`Udp`, `UdpLite`); IPv6's
    /// is the same with a `6`.
    pub fn mib(self) -> &'static str {
        match self {
            UdpProto::Udp => "Udp",
            UdpProto::UdpLite => "UdpLite",
        }
    }

    /// The IPPROTO_ number sock_diag is asked with.
    pub fn ipproto(self) -> u8 {
        match self {
            UdpProto::Udp => 17,
            UdpProto::UdpLite => 136,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSample {
    pub key: SocketKey,
    pub proto: UdpProto,
    /// The sock_diag cookie; 0 from /proc/net/udp, whose sockets are told
    /// apart by inode instead.
    pub cookie: u64,
    /// connect()ed (the kernel's TCP_ESTABLISHED); otherwise UNCONN.
    pub connected: bool,
    pub inode: u64,
    pub uid: u32,
    /// Bytes queued for reading (sk_rmem_alloc, truesize).
    pub recv_queue: u32,
    /// Bytes queued for sending (sk_wmem_alloc, truesize).
    pub send_queue: u32,
    /// SO_RCVBUF and SO_SNDBUF as the kernel holds them (doubled); None
    /// where the source has no memory info (/proc/net/udp).
    pub rcvbuf: Option<u32>,
    pub sndbuf: Option<u32>,
    /// Datagrams the kernel dropped after finding this socket for them,
    /// since the socket was created (sk_drops: a 32-bit counter).
    pub drops: Option<u32>,
}

impl UdpSample {
    /// The identity a socket keeps across polls and into its close
    /// notice (which has the cookie but no inode): its cookie, else its
    /// inode (/proc/net/udp), with the namespace.
    pub fn identity(&self) -> (u64, u64, u64) {
        if self.cookie != 0 {
            (self.key.netns, self.cookie, 0)
        } else {
            (self.key.netns, 0, self.inode)
        }
    }

    /// The socket memory the kernel charges it (receive and send queues).
    pub fn memory(&self) -> u64 {
        u64::from(self.recv_queue) + u64::from(self.send_queue)
    }

    /// `UNCONN` or `ESTAB`, as ss prints a UDP socket's state.
    pub fn state_name(&self) -> &'static str {
        if self.connected {
            "ESTAB"
        } else {
            "UNCONN"
        }
    }
}
