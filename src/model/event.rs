//! Decoded kernel events: the plain data precision mode hands to
//! attribution. Nothing here knows about perf, tracefs or byte layouts:
//! `trace::decoder` produces these and `diff`'s event attribution consumes
//! them.

use std::net::IpAddr;

use crate::model::{SocketKey, SocketSample, TcpState};

/// A socket's 4-tuple as an event carries it (ports in host order). Events
/// carry no network namespace: that is decided when they are attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventTuple {
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
}

impl EventTuple {
    /// The key of this tuple in namespace `netns`.
    pub fn key(&self, netns: u64) -> SocketKey {
        SocketKey {
            netns,
            local: self.local,
            local_port: self.local_port,
            remote: self.remote,
            remote_port: self.remote_port,
        }
    }

    pub fn of_key(key: &SocketKey) -> EventTuple {
        EventTuple {
            local: key.local,
            local_port: key.local_port,
            remote: key.remote,
            remote_port: key.remote_port,
        }
    }

    /// Whether the tuple names one connection: a socket in SYN_SENT may
    /// have no local port yet when its state changes, and a child socket
    /// born from a listener (LISTEN→SYN_RECV) still has the listener's
    /// wildcard peer address. (Both addresses `::` is a kprobe's IPv6
    /// tuple, whose ports are real.)
    pub fn is_complete(&self) -> bool {
        let both_unknown = self.local.is_unspecified() && self.remote.is_unspecified();
        self.local_port != 0
            && self.remote_port != 0
            && (both_unknown || !self.remote.is_unspecified())
    }
}

/// Where an event came from, for the report's per-counter source line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Probe {
    Tracepoint,
    Kprobe,
}

/// One kernel event that precision mode understands. `sk` is the kernel
/// address of the socket (0 when the event has none); it identifies a
/// socket only while that socket lives, and is never printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEvent {
    /// sock:inet_sock_set_state, or a kprobe on tcp_set_state.
    /// `in_softirq`: whether the change ran in softirq context (or with
    /// bottom halves off), as the kernel's own doing (a segment, a timer)
    /// rather than a system call's; None where the record does not say.
    StateChange {
        sk: u64,
        tuple: EventTuple,
        old: TcpState,
        new: TcpState,
        in_softirq: Option<bool>,
    },
    /// tcp:tcp_send_reset, or kprobes on the reset senders. `tuple` is None
    /// when the reset answered a segment for no socket and the event does
    /// not say which (old layouts).
    SendReset { sk: u64, tuple: Option<EventTuple> },
    /// tcp:tcp_receive_reset, or a kprobe on tcp_reset. `cookie` is the
    /// sock_diag cookie where the kernel's event carries it.
    ReceiveReset {
        sk: u64,
        tuple: EventTuple,
        cookie: Option<u64>,
    },
    /// tcp:tcp_retransmit_skb, or a kprobe on tcp_retransmit_skb. `syn`:
    /// the socket was in SYN_SENT, so the segment sent again was its SYN
    /// (the kernel counts it in TCPSynRetrans too); false where the event
    /// has no state.
    Retransmit {
        sk: u64,
        tuple: EventTuple,
        syn: bool,
    },
    /// tcp:tcp_retransmit_synack: `tuple` is the request's (local = the
    /// listener's address and port).
    SynAckRetransmit { listener_sk: u64, tuple: EventTuple },
    /// One send call on a TCP socket that moved `bytes` (sock_send_length,
    /// or a kretprobe on tcp_sendmsg). Negative: an error code.
    Sent {
        sk: u64,
        tuple: Option<EventTuple>,
        bytes: i64,
    },
    /// One receive call on a TCP socket (sock_recv_length, or a kretprobe
    /// on tcp_recvmsg). 0 is end of stream; negative, an error code.
    Received {
        sk: u64,
        tuple: Option<EventTuple>,
        bytes: i64,
    },
    /// skb:kfree_skb with a drop reason (its name from the event's own
    /// print format). `sk` is the receiving socket (rx_sk) where the
    /// kernel says, else 0.
    Drop { reason: DropReason, sk: u64 },
    /// An event that only tells which socket lives at `sk`
    /// (tcp:tcp_rcv_space_adjust).
    Identity {
        sk: u64,
        tuple: EventTuple,
        cookie: Option<u64>,
    },
    /// tcp:tcp_destroy_sock: the socket at `sk` is being destroyed; its
    /// close notice (with `cookie`) follows. An aborted socket's `tuple`
    /// has lost its peer port.
    Destroyed {
        sk: u64,
        tuple: EventTuple,
        cookie: Option<u64>,
    },
    /// A socket's delayed ACK: its timer's expiry, where the ftrace
    /// instance pairs it, one that sent a packet before it ended (see
    /// `trace::ftrace_pipe`); through perf every expiry, also one that
    /// finds its ACK already sent (the kernel then counts nothing).
    DelayedAck { sk: u64 },
    /// The socket's own sample, asked of sock_diag for that one socket as
    /// it left ESTABLISHED: its counters up to its last moments.
    LastSample { sk: u64, sample: Box<SocketSample> },
    /// One send (`sent`) or receive call on a UDP or UDP-Lite socket
    /// (sock_send_length / sock_recv_length): `bytes` moved, or a negative
    /// error code; `peek`: MSG_PEEK, which takes no datagram off the queue.
    UdpMessage {
        sk: u64,
        sent: bool,
        bytes: i64,
        peek: bool,
    },
    /// A UDP socket's address named with its tuple (a kprobe on
    /// udp_sendmsg/udp_recvmsg and their IPv6 twins: an IPv6 socket's
    /// addresses are `::`, its ports real).
    UdpName { sk: u64, tuple: EventTuple },
    /// A UDP socket's address with its inode: the process that sent or
    /// received on it named its descriptor in the system call's entry
    /// (syscalls:sys_enter_sendto... paired by thread), and
    /// /proc/PID/fd/FD its inode.
    UdpInode { sk: u64, inode: u64 },
    /// udp:udp_fail_queue_rcv_skb: a datagram the socket's receive queue
    /// refused (`rc` -ENOMEM: receive buffer full, RcvbufErrors; else
    /// protocol memory, MemErrors). `local_port` is the socket's port;
    /// newer kernels also give the datagram's addresses (`local`, and the
    /// sender in `remote`).
    UdpQueueFail {
        rc: i64,
        local_port: u16,
        local: Option<IpAddr>,
        remote: Option<(IpAddr, u16)>,
    },
    /// skb:kfree_skb of a UDP datagram (a UDP function freed it, or its
    /// reason is UDP's own): `sk` the receiving socket where the kernel
    /// says (rx_sk), `skb` the buffer's address (pairs it with the ICMP
    /// error answering it).
    UdpDrop {
        reason: DropReason,
        sk: u64,
        skb: u64,
    },
    /// icmp:icmp_send answering a UDP datagram (the kernel fills the ports
    /// for UDP only): `port` the destination port, `sender` the datagram's
    /// source. Type 3 code 3 is "port unreachable": a NoPorts.
    IcmpUnreachable {
        skb: u64,
        port_unreachable: bool,
        local: IpAddr,
        port: u16,
        sender: IpAddr,
        sender_port: u16,
    },
}

/// A drop reason: the kernel's number and, where the event's print format
/// names it, its name (`TCP_CSUM`, `NO_SOCKET`...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DropReason {
    pub code: u32,
    pub name: Option<String>,
}

impl DropReason {
    /// Whether the reason is TCP's own (its name says so).
    pub fn is_tcp(&self) -> bool {
        self.name.as_deref().is_some_and(|n| n.starts_with("TCP"))
    }

    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("reason {}", self.code),
        }
    }
}

impl TraceEvent {
    /// Whether the event is about UDP (the UDP tracker's, not TCP's).
    pub fn is_udp(&self) -> bool {
        matches!(
            self,
            TraceEvent::UdpMessage { .. }
                | TraceEvent::UdpName { .. }
                | TraceEvent::UdpInode { .. }
                | TraceEvent::UdpQueueFail { .. }
                | TraceEvent::UdpDrop { .. }
                | TraceEvent::IcmpUnreachable { .. }
        )
    }
}

/// An event with the time it happened (CLOCK_MONOTONIC, ns) and the probe
/// that saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timed {
    pub time_ns: u64,
    pub probe: Probe,
    pub event: TraceEvent,
    /// The process the event ran in, for events that run in their
    /// socket's owner's context (see [`TraceEvent::runs_in_owner_context`]);
    /// None for the others, whose current process is whichever one a
    /// segment or timer interrupted.
    pub pid: Option<u32>,
}

impl TraceEvent {
    /// Whether the event runs in the context of the process holding its
    /// socket: a send or receive call, or a state change a system call
    /// made (a connect's SYN_SENT, a close's FIN_WAIT1), not one made in
    /// softirq for a segment or a timer (or one whose record cannot tell).
    pub fn runs_in_owner_context(&self) -> bool {
        match self {
            TraceEvent::Sent { .. }
            | TraceEvent::Received { .. }
            | TraceEvent::UdpMessage { .. }
            | TraceEvent::UdpName { .. } => true,
            TraceEvent::StateChange { in_softirq, .. } => *in_softirq == Some(false),
            _ => false,
        }
    }

    /// The kernel address of the socket the event is about (0: none).
    pub fn socket_address(&self) -> u64 {
        match self {
            TraceEvent::StateChange { sk, .. }
            | TraceEvent::SendReset { sk, .. }
            | TraceEvent::ReceiveReset { sk, .. }
            | TraceEvent::Retransmit { sk, .. }
            | TraceEvent::Sent { sk, .. }
            | TraceEvent::Received { sk, .. }
            | TraceEvent::Drop { sk, .. }
            | TraceEvent::Identity { sk, .. }
            | TraceEvent::Destroyed { sk, .. }
            | TraceEvent::DelayedAck { sk }
            | TraceEvent::LastSample { sk, .. }
            | TraceEvent::UdpMessage { sk, .. }
            | TraceEvent::UdpName { sk, .. }
            | TraceEvent::UdpInode { sk, .. }
            | TraceEvent::UdpDrop { sk, .. } => *sk,
            TraceEvent::UdpQueueFail { .. } | TraceEvent::IcmpUnreachable { .. } => 0,
            TraceEvent::SynAckRetransmit { listener_sk, .. } => *listener_sk,
        }
    }
}

/// Converts an in-kernel state number, as events carry it.
pub fn state_of(value: i64) -> TcpState {
    u8::try_from(value).map_or(TcpState::Unknown, TcpState::from_kernel)
}
