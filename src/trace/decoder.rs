//! Raw perf samples → [`TraceEvent`]s (defined in [`crate::model::event`]),
//! by the field layout each event's own format file gives on the running
//! kernel (see `layout`). Owns [`EventKind`] (every event precision mode
//! can open), [`Decoder`] and [`CallPairer`].
//!
//! Tolerates the layouts of older kernels: tuples as sport/dport +
//! saddr/daddr(+_v6) arrays, or as sockaddr-sized arrays (tcp_send_reset
//! since 6.10); with or without `family`, `sock_cookie`, `reason`, `rx_sk`.
//! A short or garbled record decodes to nothing, never a panic.
//!
//! Kprobe events are tracefs events too: their fields are named by the
//! fetch arguments in `kprobe_defs`, and decoded here by those names. The
//! entry and return halves of tcp_sendmsg/tcp_recvmsg are paired by thread
//! in [`CallPairer`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustc_hash::FxHashMap;

use std::sync::Arc;

use super::kernel_facts::{DelackTimer, KernelText};
use super::layout::{EventFormat, Field, FormatError};
use crate::model::event::{state_of, DropReason, EventTuple, TraceEvent};
use crate::model::TcpState;

const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;
const IPPROTO_TCP: u64 = 6;
const IPPROTO_UDP: u64 = 17;
const IPPROTO_UDPLITE: u64 = 136;
const MSG_PEEK: u64 = 2;

/// Every event precision mode can open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    InetSockSetState,
    TcpSendReset,
    TcpReceiveReset,
    TcpRetransmitSkb,
    TcpRetransmitSynack,
    SockSendLength,
    SockRecvLength,
    KfreeSkb,
    TcpRcvSpaceAdjust,
    TcpDestroySock,
    /// tcp:tcp_probe (skaddr since 6.?): opened on demand, filtered to the
    /// addresses whose sends wait for a name.
    TcpProbe,
    /// timer:timer_expire_entry, filtered to the delayed-ACK callback.
    TimerExpireEntry,
    /// udp:udp_fail_queue_rcv_skb (rc and lport; 6.10+: the datagram's
    /// ports and addresses instead of lport).
    UdpFailQueueRcvSkb,
    /// icmp:icmp_send (6.10+): an ICMP error about a datagram, its UDP
    /// ports filled when the datagram was UDP.
    IcmpSend,
    /// syscalls:sys_enter_sendto, recvfrom, sendmsg, recvmsg, sendmmsg,
    /// recvmmsg: the descriptor a thread's socket call is on, paired with
    /// the sock_send_length/sock_recv_length that follows in that thread.
    SysEnterSendto,
    SysEnterRecvfrom,
    SysEnterSendmsg,
    SysEnterRecvmsg,
    SysEnterSendmmsg,
    SysEnterRecvmmsg,
    /// Kprobes (fields named by `kprobe_defs`).
    KprobeSetState,
    KprobeSendReset,
    KprobeActiveReset,
    KprobeReceiveReset,
    KprobeRetransmit,
    KprobeSynAck,
    KprobeSendmsgEntry,
    KprobeSendmsgReturn,
    KprobeRecvmsgEntry,
    KprobeRecvmsgReturn,
    /// Kprobes on udp_sendmsg/udp_recvmsg and their IPv6 twins: a UDP
    /// socket's address with its tuple.
    KprobeUdpName,
    /// The same calls' entries and returns, paired by thread into UDP
    /// messages where the kernel has no sock_send_length/sock_recv_length.
    KprobeUdpSendEntry,
    KprobeUdpSendReturn,
    KprobeUdpRecvEntry,
    KprobeUdpRecvReturn,
}

impl EventKind {
    pub const ALL: &'static [EventKind] = &[
        EventKind::InetSockSetState,
        EventKind::TcpSendReset,
        EventKind::TcpReceiveReset,
        EventKind::TcpRetransmitSkb,
        EventKind::TcpRetransmitSynack,
        EventKind::SockSendLength,
        EventKind::SockRecvLength,
        EventKind::KfreeSkb,
        EventKind::TcpRcvSpaceAdjust,
        EventKind::TcpDestroySock,
        EventKind::TcpProbe,
        EventKind::TimerExpireEntry,
        EventKind::UdpFailQueueRcvSkb,
        EventKind::IcmpSend,
        EventKind::SysEnterSendto,
        EventKind::SysEnterRecvfrom,
        EventKind::SysEnterSendmsg,
        EventKind::SysEnterRecvmsg,
        EventKind::SysEnterSendmmsg,
        EventKind::SysEnterRecvmmsg,
        EventKind::KprobeSetState,
        EventKind::KprobeSendReset,
        EventKind::KprobeActiveReset,
        EventKind::KprobeReceiveReset,
        EventKind::KprobeRetransmit,
        EventKind::KprobeSynAck,
        EventKind::KprobeSendmsgEntry,
        EventKind::KprobeSendmsgReturn,
        EventKind::KprobeRecvmsgEntry,
        EventKind::KprobeRecvmsgReturn,
        EventKind::KprobeUdpName,
        EventKind::KprobeUdpSendEntry,
        EventKind::KprobeUdpSendReturn,
        EventKind::KprobeUdpRecvEntry,
        EventKind::KprobeUdpRecvReturn,
    ];

    /// The tracepoint's (group, name), for tracepoint kinds.
    pub fn tracepoint(self) -> Option<(&'static str, &'static str)> {
        use EventKind::*;
        Some(match self {
            InetSockSetState => ("sock", "inet_sock_set_state"),
            TcpSendReset => ("tcp", "tcp_send_reset"),
            TcpReceiveReset => ("tcp", "tcp_receive_reset"),
            TcpRetransmitSkb => ("tcp", "tcp_retransmit_skb"),
            TcpRetransmitSynack => ("tcp", "tcp_retransmit_synack"),
            SockSendLength => ("sock", "sock_send_length"),
            SockRecvLength => ("sock", "sock_recv_length"),
            KfreeSkb => ("skb", "kfree_skb"),
            TcpRcvSpaceAdjust => ("tcp", "tcp_rcv_space_adjust"),
            TcpDestroySock => ("tcp", "tcp_destroy_sock"),
            TcpProbe => ("tcp", "tcp_probe"),
            TimerExpireEntry => ("timer", "timer_expire_entry"),
            UdpFailQueueRcvSkb => ("udp", "udp_fail_queue_rcv_skb"),
            IcmpSend => ("icmp", "icmp_send"),
            SysEnterSendto => ("syscalls", "sys_enter_sendto"),
            SysEnterRecvfrom => ("syscalls", "sys_enter_recvfrom"),
            SysEnterSendmsg => ("syscalls", "sys_enter_sendmsg"),
            SysEnterRecvmsg => ("syscalls", "sys_enter_recvmsg"),
            SysEnterSendmmsg => ("syscalls", "sys_enter_sendmmsg"),
            SysEnterRecvmmsg => ("syscalls", "sys_enter_recvmmsg"),
            _ => return None,
        })
    }

    /// A socket system call's entry (its descriptor, for the UDP send or
    /// receive that follows in its thread).
    pub fn is_socket_call_entry(self) -> bool {
        use EventKind::*;
        matches!(
            self,
            SysEnterSendto
                | SysEnterRecvfrom
                | SysEnterSendmsg
                | SysEnterRecvmsg
                | SysEnterSendmmsg
                | SysEnterRecvmmsg
        )
    }

    /// Entry or return half of a call whose bytes need both (paired by
    /// thread in [`CallPairer`]).
    pub fn is_call_half(self) -> bool {
        use EventKind::*;
        matches!(
            self,
            KprobeSendmsgEntry
                | KprobeSendmsgReturn
                | KprobeRecvmsgEntry
                | KprobeRecvmsgReturn
                | KprobeUdpSendEntry
                | KprobeUdpSendReturn
                | KprobeUdpRecvEntry
                | KprobeUdpRecvReturn
        )
    }
}

/// The fields one kind reads, resolved against a format.
#[derive(Debug, Clone, Default)]
struct Fields {
    sk: Option<Field>,
    other_sk: Option<Field>,
    family: Option<Field>,
    sport: Option<Field>,
    dport: Option<Field>,
    saddr: Option<Field>,
    daddr: Option<Field>,
    saddr_v6: Option<Field>,
    daddr_v6: Option<Field>,
    old_state: Option<Field>,
    new_state: Option<Field>,
    cookie: Option<Field>,
    ret: Option<Field>,
    protocol: Option<Field>,
    reason: Option<Field>,
    /// kfree_skb's freeing function and buffer; icmp_send's type and code;
    /// a send's or receive's MSG_ flags.
    location: Option<Field>,
    skb: Option<Field>,
    icmp_type: Option<Field>,
    icmp_code: Option<Field>,
    msg_flags: Option<Field>,
    /// The common header's trace flags.
    flags: Option<Field>,
    /// tcp_retransmit_skb's outcome (6.12+, where it fires for attempts
    /// that failed too).
    err: Option<Field>,
}

/// Decodes one kind of event by the layout its format gave.
#[derive(Debug, Clone)]
pub struct Decoder {
    kind: EventKind,
    fields: Fields,
    reasons: BTreeMap<u64, String>,
    /// For timer events: which timers are sockets' delayed-ACK timers.
    delack: Option<DelackTimer>,
    /// UDP events wanted (--udp): sends, receives and drops of UDP
    /// sockets decode to UDP events instead of nothing; with the kernel's
    /// text, kfree_skb tells UDP's drops by the function that freed.
    udp: bool,
    udp_text: Option<Arc<KernelText>>,
}

impl Decoder {
    pub fn new(kind: EventKind, format: &EventFormat) -> Result<Decoder, FormatError> {
        use EventKind::*;
        let need = |name: &str, sizes: &[usize]| format.sized(name, sizes).map(Some);
        let maybe = |name: &str, sizes: &[usize]| format.sized(name, sizes).ok();
        let ptr = [8usize, 4];
        let mut f = Fields {
            flags: maybe("common_flags", &[1]),
            ..Fields::default()
        };
        match kind {
            InetSockSetState | TcpReceiveReset | TcpRetransmitSkb | TcpRetransmitSynack
            | TcpRcvSpaceAdjust | TcpDestroySock => {
                f.sk = need("skaddr", &ptr)?;
                f.sport = need("sport", &[2])?;
                f.dport = need("dport", &[2])?;
                f.saddr = need("saddr", &[4])?;
                f.daddr = need("daddr", &[4])?;
                f.saddr_v6 = maybe("saddr_v6", &[16]);
                f.daddr_v6 = maybe("daddr_v6", &[16]);
                f.family = maybe("family", &[2]);
                f.cookie = maybe("sock_cookie", &[8]);
                if kind == InetSockSetState {
                    f.old_state = need("oldstate", &[4])?;
                    f.new_state = need("newstate", &[4])?;
                    f.protocol = maybe("protocol", &[2, 1]);
                }
                if kind == TcpRetransmitSynack {
                    f.other_sk = maybe("req", &ptr);
                }
                if kind == TcpRetransmitSkb {
                    // The socket's state (4.16+): a SYN_SENT one sent its SYN again.
                    f.new_state = maybe("state", &[4]);
                    f.err = maybe("err", &[4]);
                }
            }
            TcpSendReset => {
                f.sk = need("skaddr", &ptr)?;
                // 6.10+: sockaddr-sized; before: ports and address arrays.
                match format.field("saddr").map(|s| s.size) {
                    Some(28) => {
                        f.saddr = need("saddr", &[28])?;
                        f.daddr = need("daddr", &[28])?;
                    }
                    _ => {
                        f.sport = need("sport", &[2])?;
                        f.dport = need("dport", &[2])?;
                        f.saddr = need("saddr", &[4])?;
                        f.daddr = need("daddr", &[4])?;
                        f.saddr_v6 = maybe("saddr_v6", &[16]);
                        f.daddr_v6 = maybe("daddr_v6", &[16]);
                        f.family = maybe("family", &[2]);
                    }
                }
            }
            TimerExpireEntry => {
                f.sk = need("timer", &ptr)?;
                f.other_sk = need("function", &ptr)?;
            }
            TcpProbe => {
                f.sk = need("skaddr", &ptr)?;
                f.saddr = need("saddr", &[28])?;
                f.daddr = need("daddr", &[28])?;
                f.cookie = maybe("sock_cookie", &[8]);
            }
            SockSendLength | SockRecvLength => {
                f.sk = need("sk", &ptr)?;
                f.family = need("family", &[2])?;
                f.protocol = need("protocol", &[2])?;
                f.ret = need("ret", &[4])?;
                f.msg_flags = maybe("flags", &[4]);
            }
            KfreeSkb => {
                // Without a reason a drop cannot be told from a free.
                f.reason = need("reason", &[4])?;
                f.sk = maybe("rx_sk", &ptr);
                f.location = maybe("location", &ptr);
                f.skb = maybe("skbaddr", &ptr);
            }
            UdpFailQueueRcvSkb => {
                f.ret = need("rc", &[4])?;
                // Before 6.10: the socket's port alone; since: the
                // datagram's ports and sockaddr-sized addresses.
                match format.field("lport") {
                    Some(_) => f.sport = need("lport", &[2])?,
                    None => {
                        f.sport = need("dport", &[2])?;
                        f.dport = maybe("sport", &[2]);
                        f.saddr = maybe("daddr", &[28]);
                        f.daddr = maybe("saddr", &[28]);
                    }
                }
            }
            SysEnterSendto | SysEnterRecvfrom | SysEnterSendmsg | SysEnterRecvmsg
            | SysEnterSendmmsg | SysEnterRecvmmsg => {
                // `int fd` in a long's slot.
                f.ret = need("fd", &[8, 4])?;
            }
            IcmpSend => {
                f.skb = need("skbaddr", &ptr)?;
                f.icmp_type = need("type", &[4])?;
                f.icmp_code = need("code", &[4])?;
                f.saddr = need("daddr", &[4])?;
                f.daddr = need("saddr", &[4])?;
                f.sport = need("dport", &[2])?;
                f.dport = need("sport", &[2])?;
            }
            KprobeSendmsgReturn | KprobeRecvmsgReturn | KprobeUdpSendReturn
            | KprobeUdpRecvReturn => {
                f.ret = need("ret", &[8, 4])?;
            }
            KprobeSetState | KprobeSendReset | KprobeActiveReset | KprobeReceiveReset
            | KprobeRetransmit | KprobeSynAck | KprobeSendmsgEntry | KprobeRecvmsgEntry
            | KprobeUdpName | KprobeUdpSendEntry | KprobeUdpRecvEntry => {
                f.sk = need("sk", &[8, 4])?;
                f.family = need("family", &[2])?;
                f.saddr = need("saddr", &[4])?;
                f.daddr = need("daddr", &[4])?;
                f.sport = need("lport", &[2])?;
                f.dport = need("dport", &[2])?;
                if kind == KprobeSetState {
                    f.old_state = need("oldstate", &[1])?;
                    f.new_state = need("newstate", &[4, 8])?;
                }
                if kind == KprobeSynAck {
                    f.other_sk = need("listener", &[8, 4])?;
                }
            }
        }
        Ok(Decoder {
            kind,
            fields: f,
            reasons: format.symbols.get("reason").cloned().unwrap_or_default(),
            delack: None,
            udp: false,
            udp_text: None,
        })
    }

    /// Decodes UDP's events too (sends, receives and drops of UDP and
    /// UDP-Lite sockets); `text`, where the kernel's symbols can be read,
    /// tells which functions are UDP's, so a kfree_skb there is a UDP drop.
    pub fn with_udp(mut self, text: Option<Arc<KernelText>>) -> Decoder {
        self.udp = true;
        self.udp_text = text;
        self
    }

    /// Tells a timer decoder which timers are delayed-ACK timers (without
    /// it, timer events decode to nothing).
    pub fn with_delack(mut self, delack: DelackTimer) -> Decoder {
        self.delack = Some(delack);
        self
    }

    /// The event in a raw sample (PERF_SAMPLE_RAW's data: the record from
    /// `common_type` on). None for short records, other protocols, and
    /// the halves of calls (see [`CallPairer`]).
    /// Whether its retransmit events tell a connect's SYN sent again (the
    /// tracepoint has the socket's state).
    pub fn tells_syn_retransmits(&self) -> bool {
        self.kind == EventKind::TcpRetransmitSkb && self.fields.new_state.is_some()
    }

    /// Whether its destruction events name the socket's cookie (the
    /// tracepoint has `sock_cookie`): a socket ended without one is still
    /// held by its application.
    pub fn tells_destructions(&self) -> bool {
        self.kind == EventKind::TcpDestroySock && self.fields.cookie.is_some()
    }

    pub fn decode(&self, raw: &[u8]) -> Option<TraceEvent> {
        use EventKind::*;
        match self.kind {
            InetSockSetState => self.set_state(raw),
            TcpReceiveReset | TcpRetransmitSkb | TcpRetransmitSynack | TcpRcvSpaceAdjust
            | TcpDestroySock => self.tcp_socket_event(raw),
            TcpSendReset => self.send_reset(raw),
            TcpProbe => self.probe_identity(raw),
            TimerExpireEntry => self.delayed_ack(raw),
            SockSendLength | SockRecvLength => self.message_length(raw),
            KfreeSkb => self.kfree_skb(raw),
            UdpFailQueueRcvSkb => self.udp_queue_fail(raw),
            SysEnterSendto | SysEnterRecvfrom | SysEnterSendmsg | SysEnterRecvmsg
            | SysEnterSendmmsg | SysEnterRecvmmsg => None,
            IcmpSend => self.icmp_send(raw),
            KprobeUdpName => match self.kprobe_socket(raw)? {
                (sk, Some(tuple)) if sk != 0 => Some(TraceEvent::UdpName { sk, tuple }),
                _ => None,
            },
            KprobeSetState | KprobeSendReset | KprobeActiveReset | KprobeReceiveReset
            | KprobeRetransmit | KprobeSynAck => self.kprobe_event(raw),
            KprobeSendmsgEntry | KprobeSendmsgReturn | KprobeRecvmsgEntry | KprobeRecvmsgReturn
            | KprobeUdpSendEntry | KprobeUdpSendReturn | KprobeUdpRecvEntry
            | KprobeUdpRecvReturn => None,
        }
    }

    /// A delayed-ACK timer that fired, as its socket's delayed ACK (perf
    /// gives no pairing with the ACK it sent).
    fn delayed_ack(&self, raw: &[u8]) -> Option<TraceEvent> {
        let function = uint(raw, self.fields.other_sk.as_ref()?)?;
        let sk = self.delack?.socket_of(self.sk(raw)?, function)?;
        Some(TraceEvent::DelayedAck { sk })
    }

    fn sk(&self, raw: &[u8]) -> Option<u64> {
        uint(raw, self.fields.sk.as_ref()?)
    }

    fn cookie(&self, raw: &[u8]) -> Option<u64> {
        self.fields.cookie.as_ref().and_then(|c| uint(raw, c))
    }

    /// The (old, new) states of a state change.
    fn states(&self, raw: &[u8]) -> Option<(TcpState, TcpState)> {
        let f = &self.fields;
        Some((
            state_of(int(raw, f.old_state.as_ref()?)?),
            state_of(int(raw, f.new_state.as_ref()?)?),
        ))
    }

    /// inet_sock_set_state, for TCP sockets only (when it says the
    /// protocol).
    fn set_state(&self, raw: &[u8]) -> Option<TraceEvent> {
        if let Some(p) = &self.fields.protocol {
            if uint(raw, p)? != IPPROTO_TCP {
                return None;
            }
        }
        let (old, new) = self.states(raw)?;
        Some(TraceEvent::StateChange {
            sk: self.sk(raw)?,
            tuple: self.split_tuple(raw)?,
            old,
            new,
            in_softirq: self.in_softirq(raw),
        })
    }

    /// Whether the record was made in softirq context or with bottom
    /// halves off (the trace flags of its common header): a segment or a
    /// timer the kernel handled, not a system call.
    fn in_softirq(&self, raw: &[u8]) -> Option<bool> {
        // TRACE_FLAG_HARDIRQ, TRACE_FLAG_SOFTIRQ, TRACE_FLAG_BH_OFF (5.18+;
        // before, SOFTIRQ said bottom halves were off too).
        const KERNEL_CONTEXT: u64 = 0x08 | 0x10 | 0x80;
        let flags = uint(raw, self.fields.flags.as_ref()?)?;
        Some(flags & KERNEL_CONTEXT != 0)
    }

    /// The tcp tracepoints that carry a socket and its split tuple.
    fn tcp_socket_event(&self, raw: &[u8]) -> Option<TraceEvent> {
        let sk = self.sk(raw)?;
        let tuple = self.split_tuple(raw)?;
        Some(match self.kind {
            EventKind::TcpReceiveReset => TraceEvent::ReceiveReset {
                sk,
                tuple,
                cookie: self.cookie(raw),
            },
            EventKind::TcpRetransmitSkb
                if self
                    .fields
                    .err
                    .as_ref()
                    .and_then(|f| int(raw, f))
                    .is_some_and(retransmit_never_sent) =>
            {
                return None
            }
            EventKind::TcpRetransmitSkb => TraceEvent::Retransmit {
                sk,
                tuple,
                syn: self.fields.new_state.as_ref().and_then(|f| uint(raw, f))
                    == Some(TcpState::SynSent as u64),
            },
            EventKind::TcpRetransmitSynack => TraceEvent::SynAckRetransmit {
                listener_sk: sk,
                tuple,
            },
            EventKind::TcpRcvSpaceAdjust => TraceEvent::Identity {
                sk,
                tuple,
                cookie: self.cookie(raw),
            },
            EventKind::TcpDestroySock => TraceEvent::Destroyed {
                sk,
                tuple,
                cookie: self.cookie(raw),
            },
            _ => return None,
        })
    }

    /// tcp_send_reset: sockaddr-sized addresses since 6.10, split ones
    /// before; an incomplete tuple (a reset for no socket) is none.
    fn send_reset(&self, raw: &[u8]) -> Option<TraceEvent> {
        let f = &self.fields;
        let tuple = if f.saddr.as_ref()?.size == 28 {
            sockaddr_tuple(
                bytes(raw, f.saddr.as_ref()?)?,
                bytes(raw, f.daddr.as_ref()?)?,
            )
        } else {
            self.split_tuple(raw)
        };
        Some(TraceEvent::SendReset {
            sk: self.sk(raw)?,
            tuple: tuple.filter(EventTuple::is_complete),
        })
    }

    /// tcp_probe: which socket lives at `skaddr` (its sockaddr-sized tuple).
    fn probe_identity(&self, raw: &[u8]) -> Option<TraceEvent> {
        let f = &self.fields;
        let tuple = sockaddr_tuple(
            bytes(raw, f.saddr.as_ref()?)?,
            bytes(raw, f.daddr.as_ref()?)?,
        )?;
        Some(TraceEvent::Identity {
            sk: self.sk(raw)?,
            tuple,
            cookie: self.cookie(raw),
        })
    }

    /// sock_send_length/sock_recv_length, for TCP over IPv4 or IPv6 only;
    /// they name no tuple.
    fn message_length(&self, raw: &[u8]) -> Option<TraceEvent> {
        let f = &self.fields;
        let family = uint(raw, f.family.as_ref()?)?;
        if !(family == AF_INET || family == AF_INET6) {
            return None;
        }
        let protocol = uint(raw, f.protocol.as_ref()?)?;
        let (sk, bytes) = (self.sk(raw)?, int(raw, f.ret.as_ref()?)?);
        if self.udp && (protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE) {
            let flags = f.msg_flags.as_ref().and_then(|m| uint(raw, m)).unwrap_or(0);
            return Some(TraceEvent::UdpMessage {
                sk,
                sent: self.kind == EventKind::SockSendLength,
                bytes,
                peek: flags & MSG_PEEK != 0,
            });
        }
        if protocol != IPPROTO_TCP {
            return None;
        }
        Some(if self.kind == EventKind::SockSendLength {
            TraceEvent::Sent {
                sk,
                tuple: None,
                bytes,
            }
        } else {
            TraceEvent::Received {
                sk,
                tuple: None,
                bytes,
            }
        })
    }

    /// kfree_skb with a drop reason; a free that is no drop is none.
    fn kfree_skb(&self, raw: &[u8]) -> Option<TraceEvent> {
        let code = uint(raw, self.fields.reason.as_ref()?)?;
        let name = self.reasons.get(&code).cloned();
        // Not dropped (0) or consumed (1): no drop at all.
        if code <= 1 || matches!(name.as_deref(), Some("NOT_DROPPED_YET" | "CONSUMED")) {
            return None;
        }
        let reason = DropReason {
            code: code as u32,
            name,
        };
        let sk = self.sk(raw).unwrap_or(0);
        if self.udp {
            let location = self.fields.location.as_ref().and_then(|l| uint(raw, l));
            let by_udp = location
                .zip(self.udp_text.as_ref())
                .is_some_and(|(at, text)| text.is_udp(at));
            if by_udp || reason.name.as_deref() == Some("UDP_CSUM") {
                let skb = self.fields.skb.as_ref().and_then(|b| uint(raw, b));
                return Some(TraceEvent::UdpDrop {
                    reason,
                    sk,
                    skb: skb.unwrap_or(0),
                });
            }
        }
        Some(TraceEvent::Drop { reason, sk })
    }

    /// A socket call entry's descriptor (None for a bad one).
    pub fn call_fd(&self, raw: &[u8]) -> Option<u32> {
        if !self.kind.is_socket_call_entry() {
            return None;
        }
        u32::try_from(uint(raw, self.fields.ret.as_ref()?)? & 0xffff_ffff).ok()
    }

    /// udp_fail_queue_rcv_skb: the socket's port (and, 6.10+, the
    /// datagram's addresses).
    fn udp_queue_fail(&self, raw: &[u8]) -> Option<TraceEvent> {
        let f = &self.fields;
        let rc = int(raw, f.ret.as_ref()?)?;
        let local_port = uint(raw, f.sport.as_ref()?)? as u16;
        let addresses = match (&f.saddr, &f.daddr) {
            (Some(local), Some(remote)) => sockaddr_tuple(bytes(raw, local)?, bytes(raw, remote)?),
            _ => None,
        };
        Some(TraceEvent::UdpQueueFail {
            rc,
            local_port,
            local: addresses.map(|t| t.local),
            remote: addresses.map(|t| (t.remote, t.remote_port)),
        })
    }

    /// icmp_send about a UDP datagram (its ports filled); others are none.
    fn icmp_send(&self, raw: &[u8]) -> Option<TraceEvent> {
        let f = &self.fields;
        let port = uint(raw, f.sport.as_ref()?)? as u16;
        let sender_port = uint(raw, f.dport.as_ref()?)? as u16;
        if port == 0 && sender_port == 0 {
            return None;
        }
        let (kind, code) = (
            int(raw, f.icmp_type.as_ref()?)?,
            int(raw, f.icmp_code.as_ref()?)?,
        );
        Some(TraceEvent::IcmpUnreachable {
            skb: uint(raw, f.skb.as_ref()?)?,
            port_unreachable: kind == 3 && code == 3,
            local: v4_at(raw, f.saddr.as_ref()?)?,
            port,
            sender: v4_at(raw, f.daddr.as_ref()?)?,
            sender_port,
        })
    }

    /// The kprobes that stand for one tracepoint each (not the call
    /// halves): a socket and, read from sock_common, its tuple.
    fn kprobe_event(&self, raw: &[u8]) -> Option<TraceEvent> {
        use EventKind::*;
        let (sk, tuple) = self.kprobe_socket(raw)?;
        Some(match self.kind {
            KprobeSetState => {
                let (old, new) = self.states(raw)?;
                TraceEvent::StateChange {
                    sk,
                    tuple: tuple?,
                    old,
                    new,
                    in_softirq: self.in_softirq(raw),
                }
            }
            KprobeSendReset | KprobeActiveReset => TraceEvent::SendReset { sk, tuple },
            KprobeReceiveReset => TraceEvent::ReceiveReset {
                sk,
                tuple: tuple?,
                cookie: None,
            },
            KprobeRetransmit => TraceEvent::Retransmit {
                sk,
                tuple: tuple?,
                syn: false,
            },
            KprobeSynAck => TraceEvent::SynAckRetransmit {
                listener_sk: uint(raw, self.fields.other_sk.as_ref()?)?,
                tuple: tuple?,
            },
            _ => return None,
        })
    }

    /// sport/dport (host order) with saddr/daddr: IPv4 arrays, or the v6
    /// ones for an AF_INET6 socket (which hold mapped addresses for IPv4
    /// peers). Without `family` (4.15), the v6 arrays decide.
    fn split_tuple(&self, raw: &[u8]) -> Option<EventTuple> {
        let f = &self.fields;
        let v6 = match (&f.family, &f.saddr_v6, &f.daddr_v6) {
            (Some(family), Some(_), Some(_)) => uint(raw, family)? == AF_INET6,
            (None, Some(s6), Some(_)) => {
                let a = Ipv6Addr::from(<[u8; 16]>::try_from(bytes(raw, s6)?).ok()?);
                !a.is_unspecified() && a.to_ipv4_mapped().is_none()
            }
            _ => false,
        };
        let (local, remote) = if v6 {
            (
                v6_at(raw, f.saddr_v6.as_ref()?)?,
                v6_at(raw, f.daddr_v6.as_ref()?)?,
            )
        } else {
            (
                v4_at(raw, f.saddr.as_ref()?)?,
                v4_at(raw, f.daddr.as_ref()?)?,
            )
        };
        Some(EventTuple {
            local,
            local_port: uint(raw, f.sport.as_ref()?)? as u16,
            remote,
            remote_port: uint(raw, f.dport.as_ref()?)? as u16,
        })
    }

    /// A kprobe's socket and tuple from struct sock_common: addresses and
    /// the remote port as memory holds them (network order), the local
    /// port in host order. A NULL socket (a reset for no socket) has no
    /// tuple; an IPv6 socket's addresses are not read (see `kprobe_defs`).
    fn kprobe_socket(&self, raw: &[u8]) -> Option<(u64, Option<EventTuple>)> {
        let f = &self.fields;
        let sk = uint(raw, f.sk.as_ref()?)?;
        if sk == 0 {
            return Some((0, None));
        }
        let family = uint(raw, f.family.as_ref()?)?;
        let local_port = uint(raw, f.sport.as_ref()?)? as u16;
        let dport = bytes(raw, f.dport.as_ref()?)?;
        let remote_port = u16::from_be_bytes([dport[0], dport[1]]);
        let (local, remote) = match family {
            AF_INET => (
                v4_at(raw, f.saddr.as_ref()?)?,
                v4_at(raw, f.daddr.as_ref()?)?,
            ),
            AF_INET6 => (
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ),
            _ => return None,
        };
        Some((
            sk,
            Some(EventTuple {
                local,
                local_port,
                remote,
                remote_port,
            }),
        ))
    }
}

/// Pairs the entry and return halves of the send and receive calls'
/// kprobes (tcp_sendmsg/tcp_recvmsg; udp_sendmsg/udp_recvmsg and their
/// IPv6 twins) by thread: the entry knows the socket, the return how many
/// bytes moved. A UDP entry also names its socket (its tuple), at once.
/// udpv6_sendmsg calls udp_sendmsg for a v4-mapped peer: the inner entry
/// takes the thread's place and the outer return finds none, so the
/// datagram counts once.
#[derive(Debug, Default)]
pub struct CallPairer {
    /// (thread, sending, udp) → the open call's socket.
    open_calls: FxHashMap<(u32, bool, bool), (u64, Option<EventTuple>)>,
}

/// Threads with a call open, at most; a return lost in a full ring must not
/// let the map grow.
const OPEN_CALLS_LIMIT: usize = 1 << 16;

impl CallPairer {
    /// Takes one half; a return completes its thread's open call.
    pub fn feed(&mut self, decoder: &Decoder, tid: u32, raw: &[u8]) -> Option<TraceEvent> {
        use EventKind::*;
        let sending = matches!(
            decoder.kind,
            KprobeSendmsgEntry | KprobeSendmsgReturn | KprobeUdpSendEntry | KprobeUdpSendReturn
        );
        let udp = matches!(
            decoder.kind,
            KprobeUdpSendEntry | KprobeUdpSendReturn | KprobeUdpRecvEntry | KprobeUdpRecvReturn
        );
        match decoder.kind {
            KprobeSendmsgEntry | KprobeRecvmsgEntry | KprobeUdpSendEntry | KprobeUdpRecvEntry => {
                let socket = decoder.kprobe_socket(raw)?;
                if self.open_calls.len() >= OPEN_CALLS_LIMIT {
                    self.open_calls.clear();
                }
                self.open_calls.insert((tid, sending, udp), socket);
                match socket {
                    (sk, Some(tuple)) if udp && sk != 0 => Some(TraceEvent::UdpName { sk, tuple }),
                    _ => None,
                }
            }
            KprobeSendmsgReturn | KprobeRecvmsgReturn | KprobeUdpSendReturn
            | KprobeUdpRecvReturn => {
                let (sk, tuple) = self.open_calls.remove(&(tid, sending, udp))?;
                let bytes = int(raw, decoder.fields.ret.as_ref()?)?;
                Some(match (udp, sending) {
                    // The kprobe does not read the call's flags: a peek
                    // counts as a read here (said in docs/precision.md).
                    (true, sent) => TraceEvent::UdpMessage {
                        sk,
                        sent,
                        bytes,
                        peek: false,
                    },
                    (false, true) => TraceEvent::Sent { sk, tuple, bytes },
                    (false, false) => TraceEvent::Received { sk, tuple, bytes },
                })
            }
            _ => decoder.decode(raw),
        }
    }
}

fn bytes<'r>(raw: &'r [u8], field: &Field) -> Option<&'r [u8]> {
    raw.get(field.offset..field.offset.checked_add(field.size)?)
}

/// An unsigned field in the machine's byte order.
/// Whether a tcp_retransmit_skb attempt that failed with `err` gave up
/// before the kernel counted it (`__tcp_retransmit_skb` returns these
/// before it counts RetransSegs, TCPSynRetrans and `total_retrans`: the
/// segment is still in the host's queue, beyond the peer's window, could not
/// be trimmed or split, or has no route). A failure after the count (the
/// qdisc dropped it: -ENOBUFS) was counted, and is one.
fn retransmit_never_sent(err: i64) -> bool {
    const EAGAIN: i64 = 11;
    const ENOMEM: i64 = 12;
    const EBUSY: i64 = 16;
    const EINVAL: i64 = 22;
    const EHOSTUNREACH: i64 = 113;
    matches!(-err, EAGAIN | ENOMEM | EBUSY | EINVAL | EHOSTUNREACH)
}

fn uint(raw: &[u8], field: &Field) -> Option<u64> {
    let b = bytes(raw, field)?;
    Some(match b.len() {
        1 => u64::from(b[0]),
        2 => u64::from(u16::from_ne_bytes([b[0], b[1]])),
        4 => u64::from(u32::from_ne_bytes(b.try_into().ok()?)),
        8 => u64::from_ne_bytes(b.try_into().ok()?),
        _ => return None,
    })
}

/// A field as a signed value when the format says it is signed.
fn int(raw: &[u8], field: &Field) -> Option<i64> {
    let value = uint(raw, field)?;
    if !field.signed {
        return Some(value as i64);
    }
    Some(match field.size {
        1 => value as u8 as i8 as i64,
        2 => value as u16 as i16 as i64,
        4 => value as u32 as i32 as i64,
        _ => value as i64,
    })
}

fn v4_at(raw: &[u8], field: &Field) -> Option<IpAddr> {
    let b: [u8; 4] = bytes(raw, field)?.get(..4)?.try_into().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(b)))
}

fn v6_at(raw: &[u8], field: &Field) -> Option<IpAddr> {
    let b: [u8; 16] = bytes(raw, field)?.get(..16)?.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(b)))
}

/// A tuple from two sockaddr_in/sockaddr_in6 images (family in host order,
/// port in network order), as tcp_send_reset stores them since 6.10.
fn sockaddr_tuple(local: &[u8], remote: &[u8]) -> Option<EventTuple> {
    let endpoint = |sa: &[u8]| -> Option<(IpAddr, u16)> {
        let family = u16::from_ne_bytes([*sa.first()?, *sa.get(1)?]);
        let port = u16::from_be_bytes([*sa.get(2)?, *sa.get(3)?]);
        let addr = match u64::from(family) {
            AF_INET => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(sa.get(4..8)?).ok()?)),
            AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(sa.get(8..24)?).ok()?)),
            _ => return None,
        };
        Some((addr, port))
    };
    let (local, local_port) = endpoint(local)?;
    let (remote, remote_port) = endpoint(remote)?;
    Some(EventTuple {
        local,
        local_port,
        remote,
        remote_port,
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::trace::kprobe_defs;

    fn testdata() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/trace")
    }

    /// The kind of a recorded event file stem (`sock__inet_sock_set_state`,
    /// `kprobes__set_state`).
    fn kind_of(stem: &str) -> Option<EventKind> {
        let (group, name) = stem.split_once("__")?;
        if group == "kprobes" {
            return kprobe_defs::definitions()
                .into_iter()
                .find(|d| d.event_name == name)
                .map(|d| d.kind);
        }
        EventKind::ALL
            .iter()
            .copied()
            .find(|k| k.tracepoint() == Some((group, name)))
    }

    /// Every recorded (kernel, mode) directory.
    fn recorded_dirs() -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        for kernel in std::fs::read_dir(testdata()).expect("testdata/trace") {
            for mode in std::fs::read_dir(kernel.unwrap().path()).unwrap() {
                dirs.push(mode.unwrap().path());
            }
        }
        dirs.sort();
        dirs
    }

    fn decoders(dir: &Path) -> Vec<(String, Decoder)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "format") {
                continue;
            }
            let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
            let kind = kind_of(&stem).unwrap_or_else(|| panic!("unknown event {stem}"));
            let text = std::fs::read_to_string(&path).unwrap();
            let format = EventFormat::parse(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            let decoder = Decoder::new(kind, &format).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            out.push((stem, decoder));
        }
        out
    }

    fn samples(dir: &Path, stem: &str) -> Vec<Vec<u8>> {
        (1..=4)
            .map(|i| dir.join(format!("{stem}-{i}.bin")))
            .filter(|p| p.exists())
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    fn is_loopback(a: IpAddr) -> bool {
        crate::model::unmap(a).is_loopback() || a.is_unspecified()
    }

    /// The ports the recorders used (scripts/record-trace-testdata.sh),
    /// besides ephemeral ones and the closed port 9.
    fn plausible_port(p: u16) -> bool {
        p == 9
            || (21001..=22003).contains(&p)
            || (31001..=32002).contains(&p)
            || p >= 32768
            || (41001..=41003).contains(&p)
            || p == 51001
    }

    #[test]
    fn every_recorded_format_builds_a_decoder_on_every_kernel() {
        let dirs = recorded_dirs();
        assert!(dirs.len() >= 7, "{dirs:?}");
        for dir in dirs {
            let decoders = decoders(&dir);
            assert!(decoders.len() >= 5, "{dir:?}: {}", decoders.len());
        }
    }

    #[test]
    fn recorded_samples_decode_to_loopback_tuples_and_sane_states() {
        let mut decoded = 0;
        for dir in recorded_dirs() {
            let mut pairer = CallPairer::default();
            let decoders = decoders(&dir);
            for (stem, decoder) in &decoders {
                for raw in samples(&dir, stem) {
                    // Any truncation decodes to nothing or something, never a panic.
                    for cut in 0..raw.len() {
                        let _ = decoder.decode(&raw[..cut]);
                    }
                    let event = if decoder.kind.is_call_half() {
                        // Entries and returns were recorded in call order.
                        pairer.feed(decoder, 1, &raw);
                        continue;
                    } else {
                        decoder.decode(&raw)
                    };
                    let Some(event) = event else {
                        // A free that is no drop, or another protocol.
                        assert!(
                            matches!(
                                decoder.kind,
                                EventKind::KfreeSkb
                                    | EventKind::SockSendLength
                                    | EventKind::SockRecvLength
                            ),
                            "{dir:?} {stem}: nothing decoded"
                        );
                        continue;
                    };
                    decoded += 1;
                    let tuple = match &event {
                        TraceEvent::StateChange {
                            tuple, old, new, ..
                        } => {
                            assert!(
                                *old != TcpState::Unknown && *new != TcpState::Unknown,
                                "{dir:?} {stem}: {event:?}"
                            );
                            assert_ne!(old, new, "{dir:?} {stem}");
                            Some(*tuple)
                        }
                        TraceEvent::ReceiveReset { tuple, .. }
                        | TraceEvent::Retransmit { tuple, .. }
                        | TraceEvent::Identity { tuple, .. }
                        | TraceEvent::Destroyed { tuple, .. }
                        | TraceEvent::SynAckRetransmit { tuple, .. } => Some(*tuple),
                        TraceEvent::SendReset { tuple, .. } => *tuple,
                        _ => None,
                    };
                    if let Some(t) = tuple {
                        assert!(
                            is_loopback(t.local) && is_loopback(t.remote),
                            "{dir:?} {stem}: {t:?}"
                        );
                        assert!(
                            plausible_port(t.local_port) || plausible_port(t.remote_port),
                            "{dir:?} {stem}: {t:?}"
                        );
                    }
                }
            }
        }
        assert!(decoded >= 60, "{decoded}");
    }

    use crate::model::TcpState;

    #[test]
    fn kprobe_calls_pair_into_messages_with_the_bytes_the_recorder_sent() {
        for kernel in ["5.10", "6.1", "6.12"] {
            let dir = testdata().join(kernel).join("kprobe");
            let decoders = decoders(&dir);
            let find = |name: &str| &decoders.iter().find(|(s, _)| s == name).unwrap().1;
            let mut pairer = CallPairer::default();
            let mut sent = Vec::new();
            let entries = samples(&dir, "kprobes__sendmsg");
            let returns = samples(&dir, "kprobes__sendmsg_ret");
            assert!(!entries.is_empty(), "{kernel}");
            for (entry, ret) in entries.iter().zip(&returns) {
                assert_eq!(pairer.feed(find("kprobes__sendmsg"), 7, entry), None);
                match pairer.feed(find("kprobes__sendmsg_ret"), 7, ret) {
                    Some(TraceEvent::Sent {
                        tuple: Some(t),
                        bytes,
                        sk,
                    }) => {
                        assert_ne!(sk, 0);
                        sent.push((t.local_port, t.remote_port, bytes));
                    }
                    other => panic!("{kernel}: {other:?}"),
                }
            }
            // connhelper's first client sent 3000 bytes from 22001 to 32001
            // (IPv4, so its tuple is read whole from sock_common).
            assert!(sent.contains(&(22001, 32001, 3000)), "{kernel}: {sent:?}");
            // A return with no entry on its thread is no message.
            assert_eq!(
                pairer.feed(find("kprobes__sendmsg_ret"), 99, &returns[0]),
                None
            );
        }
    }

    #[test]
    fn udp_call_kprobes_pair_into_datagrams_and_name_their_socket() {
        // The UDP probes' fields are the TCP ones' (the same fetchargs):
        // the recorded formats and samples decode as UDP calls.
        for kernel in ["5.10", "6.1", "6.12"] {
            let dir = testdata().join(kernel).join("kprobe");
            let load = |stem: &str, kind| {
                let text = std::fs::read_to_string(dir.join(format!("{stem}.format"))).unwrap();
                Decoder::new(kind, &EventFormat::parse(&text).unwrap()).unwrap()
            };
            let entry = load("kprobes__sendmsg", EventKind::KprobeUdpSendEntry);
            let ret = load("kprobes__sendmsg_ret", EventKind::KprobeUdpSendReturn);
            let recv_ret = load("kprobes__sendmsg_ret", EventKind::KprobeUdpRecvReturn);
            let entries = samples(&dir, "kprobes__sendmsg");
            let returns = samples(&dir, "kprobes__sendmsg_ret");
            let mut pairer = CallPairer::default();
            let named = pairer.feed(&entry, 7, &entries[0]);
            let Some(TraceEvent::UdpName { sk, tuple }) = named else {
                panic!("{kernel}: {named:?}");
            };
            assert!(sk != 0 && tuple.local_port != 0, "{kernel}");
            // Another thread's return, or a receive's, completes nothing.
            assert_eq!(pairer.feed(&ret, 8, &returns[0]), None);
            assert_eq!(pairer.feed(&recv_ret, 7, &returns[0]), None);
            match pairer.feed(&ret, 7, &returns[0]) {
                Some(TraceEvent::UdpMessage {
                    sk: got,
                    sent: true,
                    bytes,
                    peek: false,
                }) => assert!(got == sk && bytes > 0, "{kernel}: {bytes}"),
                other => panic!("{kernel}: {other:?}"),
            }
            // Paired once: the same return again is no second datagram.
            assert_eq!(pairer.feed(&ret, 7, &returns[0]), None);
            // A TCP entry on the thread is not a UDP call's.
            let tcp_entry = load("kprobes__sendmsg", EventKind::KprobeSendmsgEntry);
            assert_eq!(pairer.feed(&tcp_entry, 7, &entries[0]), None);
            assert_eq!(pairer.feed(&ret, 7, &returns[0]), None);
        }
    }

    fn format(text_fields: &str) -> EventFormat {
        EventFormat::parse(&format!(
            "name: x\nID: 7\nformat:\n{text_fields}\nprint fmt: \"\"\n"
        ))
        .unwrap()
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn a_call_that_failed_returns_a_negative_count_not_four_gigabytes() {
        // The calls return int: eax, whose upper half of rax is not its
        // sign. The definitions fetch it as s32.
        let defs = kprobe_defs::definitions();
        let returns: Vec<_> = defs.iter().filter(|d| d.is_return).collect();
        assert!(!returns.is_empty());
        for def in returns {
            assert!(
                def.definition().contains("$retval:s32"),
                "{}",
                def.definition()
            );
        }
        // A recvmsg that found nothing (EAGAIN) after its entry, as the
        // kernel records it with that fetch type.
        let ret = format("\tfield:s32 ret;\toffset:16;\tsize:4;\tsigned:1;");
        let mut raw = vec![0u8; 20];
        raw[16..20].copy_from_slice(&(-11i32).to_ne_bytes());
        for (kind, entry_kind) in [
            (
                EventKind::KprobeRecvmsgReturn,
                EventKind::KprobeRecvmsgEntry,
            ),
            (
                EventKind::KprobeUdpRecvReturn,
                EventKind::KprobeUdpRecvEntry,
            ),
        ] {
            let decoder = Decoder::new(kind, &ret).unwrap();
            let mut pairer = CallPairer::default();
            let udp = entry_kind == EventKind::KprobeUdpRecvEntry;
            pairer
                .open_calls
                .insert((5, false, udp), (0xffff_8880_0000_2000, None));
            let bytes = match pairer.feed(&decoder, 5, &raw) {
                Some(TraceEvent::Received { bytes, .. }) => bytes,
                Some(TraceEvent::UdpMessage { bytes, .. }) => bytes,
                other => panic!("{kind:?}: {other:?}"),
            };
            assert_eq!(bytes, -11, "{kind:?}");
        }
    }

    #[test]
    fn a_4_15_send_reset_without_family_decodes_by_its_v6_arrays() {
        // tcp_send_reset as 4.15 had it: no family field.
        let f = format(
            "\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n\
             \tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;\n\
             \tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;\n\
             \tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;\n\
             \tfield:__u8 saddr[4];\toffset:28;\tsize:4;\tsigned:0;\n\
             \tfield:__u8 daddr[4];\toffset:32;\tsize:4;\tsigned:0;\n\
             \tfield:__u8 saddr_v6[16];\toffset:36;\tsize:16;\tsigned:0;\n\
             \tfield:__u8 daddr_v6[16];\toffset:52;\tsize:16;\tsigned:0;",
        );
        let d = Decoder::new(EventKind::TcpSendReset, &f).unwrap();
        let mut raw = vec![0u8; 68];
        raw[16..24].copy_from_slice(&0xffff_8880_0000_1000u64.to_ne_bytes());
        raw[24..26].copy_from_slice(&443u16.to_ne_bytes());
        raw[26..28].copy_from_slice(&50000u16.to_ne_bytes());
        raw[28..32].copy_from_slice(&[10, 0, 0, 1]);
        raw[32..36].copy_from_slice(&[10, 0, 0, 2]);
        // IPv4 socket: the v6 arrays hold mapped addresses.
        raw[36..52].copy_from_slice(&Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped().octets());
        raw[52..68].copy_from_slice(&Ipv4Addr::new(10, 0, 0, 2).to_ipv6_mapped().octets());
        match d.decode(&raw) {
            Some(TraceEvent::SendReset { sk, tuple: Some(t) }) => {
                assert_eq!(sk, 0xffff_8880_0000_1000);
                assert_eq!(t.local, IpAddr::from([10, 0, 0, 1]));
                assert_eq!((t.local_port, t.remote_port), (443, 50000));
            }
            other => panic!("{other:?}"),
        }
        // An IPv6 socket: the v6 arrays are the addresses.
        raw[36..52].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        raw[52..68].copy_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        match d.decode(&raw) {
            Some(TraceEvent::SendReset { tuple: Some(t), .. }) => {
                assert_eq!(t.remote, "2001:db8::2".parse::<IpAddr>().unwrap())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_retransmit_of_a_syn_sent_socket_is_its_syn_on_every_recorded_kernel() {
        let mut checked = 0;
        for dir in recorded_dirs() {
            let path = dir.join("tcp__tcp_retransmit_skb.format");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let format = EventFormat::parse(&text).unwrap();
            let decoder = Decoder::new(EventKind::TcpRetransmitSkb, &format).unwrap();
            assert!(decoder.tells_syn_retransmits(), "{path:?}");
            let put = |raw: &mut Vec<u8>, name: &str, value: &[u8]| {
                let f = format
                    .field(name)
                    .unwrap_or_else(|| panic!("{path:?}: {name}"));
                raw[f.offset..f.offset + value.len()].copy_from_slice(value);
            };
            let mut raw = vec![0u8; 128];
            put(&mut raw, "skaddr", &0x1234u64.to_ne_bytes());
            put(&mut raw, "sport", &40000u16.to_ne_bytes());
            put(&mut raw, "dport", &80u16.to_ne_bytes());
            if format.field("family").is_some() {
                put(&mut raw, "family", &2u16.to_ne_bytes());
            }
            put(&mut raw, "saddr", &[127, 0, 0, 1]);
            put(&mut raw, "daddr", &[127, 0, 0, 1]);
            for (state, syn) in [(TcpState::SynSent, true), (TcpState::Established, false)] {
                put(&mut raw, "state", &(state as u32).to_ne_bytes());
                match decoder.decode(&raw) {
                    Some(TraceEvent::Retransmit {
                        sk,
                        tuple,
                        syn: told,
                    }) => {
                        assert_eq!(
                            (sk, tuple.local_port, told),
                            (0x1234, 40000, syn),
                            "{path:?}"
                        )
                    }
                    other => panic!("{path:?}: {other:?}"),
                }
            }
            if format.field("err").is_some() {
                // 6.12+ fires for attempts that failed too: one refused
                // before the kernel counted it (beyond the peer's window)
                // is no retransmit; one a qdisc dropped after was counted.
                put(&mut raw, "state", &(TcpState::SynSent as u32).to_ne_bytes());
                put(&mut raw, "err", &(-11i32).to_ne_bytes());
                assert_eq!(decoder.decode(&raw), None, "{path:?}");
                put(&mut raw, "err", &(-105i32).to_ne_bytes());
                assert!(
                    matches!(
                        decoder.decode(&raw),
                        Some(TraceEvent::Retransmit { syn: true, .. })
                    ),
                    "{path:?}"
                );
            }
            checked += 1;
        }
        assert!(checked >= 4, "retransmit formats checked: {checked}");
    }

    #[test]
    fn recorded_state_changes_say_whether_a_system_call_made_them() {
        let mut told = 0;
        for dir in recorded_dirs() {
            for (stem, decoder) in decoders(&dir) {
                for raw in samples(&dir, &stem) {
                    if let Some(TraceEvent::StateChange { in_softirq, .. }) = decoder.decode(&raw) {
                        assert!(in_softirq.is_some(), "{dir:?} {stem}");
                        told += 1;
                    }
                }
            }
        }
        assert!(told >= 4, "state changes decoded: {told}");
        // The flags byte of the common header: a softirq's or a system call's.
        let text = std::fs::read_to_string(
            testdata().join("6.18/tracepoint/sock__inet_sock_set_state.format"),
        )
        .unwrap();
        let format = EventFormat::parse(&text).unwrap();
        let decoder = Decoder::new(EventKind::InetSockSetState, &format).unwrap();
        let dir = testdata().join("6.18/tracepoint");
        let mut raw = samples(&dir, "sock__inet_sock_set_state").remove(0);
        for (flags, kernel) in [(0x10u8, true), (0x80, true), (0x01, false), (0, false)] {
            raw[2] = flags;
            match decoder.decode(&raw) {
                Some(TraceEvent::StateChange { in_softirq, .. }) => {
                    assert_eq!(in_softirq, Some(kernel), "flags {flags:#x}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn kfree_skb_without_a_reason_is_refused_naming_the_field() {
        // Before 5.17 a drop cannot be told from a free.
        let f = format(
            "\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n\
             \tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;\n\
             \tfield:unsigned short protocol;\toffset:24;\tsize:2;\tsigned:0;",
        );
        let err = Decoder::new(EventKind::KfreeSkb, &f).unwrap_err();
        assert!(err.to_string().contains("'reason'"), "{err}");
    }

    #[test]
    fn sockaddr_tuples_and_other_protocols() {
        let mut local = [0u8; 28];
        local[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
        local[2..4].copy_from_slice(&80u16.to_be_bytes());
        local[4..8].copy_from_slice(&[127, 0, 0, 1]);
        let mut remote = local;
        remote[2..4].copy_from_slice(&40000u16.to_be_bytes());
        let t = sockaddr_tuple(&local, &remote).unwrap();
        assert_eq!((t.local_port, t.remote_port), (80, 40000));
        // An unknown family is no tuple.
        local[0] = 99;
        assert_eq!(sockaddr_tuple(&local, &remote), None);
    }

    /// Formats of UDP's events from a 6.18 host (testdata/trace-udp).
    fn udp_decoder(name: &str, kind: EventKind) -> Decoder {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/trace-udp/6.18")
            .join(format!("{name}.format"));
        let format = EventFormat::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        Decoder::new(kind, &format).unwrap()
    }

    fn put(raw: &mut [u8], at: usize, bytes: &[u8]) {
        raw[at..at + bytes.len()].copy_from_slice(bytes);
    }

    #[test]
    fn udp_sends_decode_only_with_udp_wanted_and_peeks_are_told() {
        let decoder = udp_decoder("sock_sock_send_length", EventKind::SockSendLength);
        let mut raw = vec![0u8; 28];
        put(&mut raw, 8, &0xffff_8880_1234_0000u64.to_ne_bytes());
        put(&mut raw, 16, &2u16.to_ne_bytes());
        put(&mut raw, 18, &17u16.to_ne_bytes());
        put(&mut raw, 20, &200i32.to_ne_bytes());
        assert_eq!(decoder.decode(&raw), None, "TCP's decoder keeps TCP only");
        let udp = decoder.with_udp(None);
        assert_eq!(
            udp.decode(&raw),
            Some(TraceEvent::UdpMessage {
                sk: 0xffff_8880_1234_0000,
                sent: true,
                bytes: 200,
                peek: false
            })
        );
        put(&mut raw, 24, &2i32.to_ne_bytes());
        assert!(matches!(
            udp.decode(&raw),
            Some(TraceEvent::UdpMessage { peek: true, .. })
        ));
        for cut in 0..raw.len() {
            let _ = udp.decode(&raw[..cut]);
        }
    }

    #[test]
    fn queue_failures_give_the_sockets_port_and_the_senders_address() {
        let decoder = udp_decoder("udp_udp_fail_queue_rcv_skb", EventKind::UdpFailQueueRcvSkb);
        let mut raw = vec![0u8; 74];
        put(&mut raw, 8, &(-12i32).to_ne_bytes());
        put(&mut raw, 12, &40000u16.to_ne_bytes());
        put(&mut raw, 14, &5300u16.to_ne_bytes());
        put(&mut raw, 16, &2u16.to_ne_bytes());
        let sockaddr = |port: u16, last: u8| {
            let mut sa = [0u8; 28];
            sa[..2].copy_from_slice(&2u16.to_ne_bytes());
            sa[2..4].copy_from_slice(&port.to_be_bytes());
            sa[4..8].copy_from_slice(&[127, 0, 0, last]);
            sa
        };
        put(&mut raw, 18, &sockaddr(40000, 2));
        put(&mut raw, 46, &sockaddr(5300, 1));
        assert_eq!(
            decoder.decode(&raw),
            Some(TraceEvent::UdpQueueFail {
                rc: -12,
                local_port: 5300,
                local: Some("127.0.0.1".parse().unwrap()),
                remote: Some(("127.0.0.2".parse().unwrap(), 40000)),
            })
        );
        // Before 6.10: the socket's port alone.
        let old = EventFormat::parse(
            "name: udp_fail_queue_rcv_skb\nID: 1\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:int rc;\toffset:8;\tsize:4;\tsigned:1;\n\tfield:__u16 lport;\toffset:12;\tsize:2;\tsigned:0;\n\nprint fmt: \"rc:%d port:%hu\", REC->rc, REC->lport\n",
        )
        .unwrap();
        let old = Decoder::new(EventKind::UdpFailQueueRcvSkb, &old).unwrap();
        let mut raw = vec![0u8; 16];
        put(&mut raw, 8, &(-105i32).to_ne_bytes());
        put(&mut raw, 12, &53u16.to_ne_bytes());
        assert_eq!(
            old.decode(&raw),
            Some(TraceEvent::UdpQueueFail {
                rc: -105,
                local_port: 53,
                local: None,
                remote: None
            })
        );
    }

    #[test]
    fn kfree_skb_in_a_udp_function_is_a_udp_drop_and_icmp_names_the_port() {
        let text = crate::trace::kernel_facts::KernelText::parse(
            "ffffffff81000000 T tcp_v4_rcv\nffffffff81000100 T __udp4_lib_rcv\nffffffff81000200 T sk_skb_reason_drop\n",
        )
        .unwrap();
        let decoder =
            udp_decoder("skb_kfree_skb", EventKind::KfreeSkb).with_udp(Some(Arc::new(text)));
        let mut raw = vec![0u8; 40];
        put(&mut raw, 8, &0x5000u64.to_ne_bytes());
        put(&mut raw, 16, &0xffff_ffff_8100_0150u64.to_ne_bytes());
        put(&mut raw, 32, &0x0800u16.to_ne_bytes());
        put(&mut raw, 36, &3u32.to_ne_bytes());
        let Some(TraceEvent::UdpDrop { reason, sk, skb }) = decoder.decode(&raw) else {
            panic!("{:?}", decoder.decode(&raw));
        };
        assert_eq!(
            (reason.label(), sk, skb),
            ("NO_SOCKET".to_string(), 0, 0x5000)
        );
        // Freed by TCP: TCP's drop, as before.
        put(&mut raw, 16, &0xffff_ffff_8100_0050u64.to_ne_bytes());
        assert!(matches!(
            decoder.decode(&raw),
            Some(TraceEvent::Drop { .. })
        ));
        // UDP_CSUM is UDP's wherever it is freed.
        put(&mut raw, 36, &11u32.to_ne_bytes());
        assert!(matches!(
            decoder.decode(&raw),
            Some(TraceEvent::UdpDrop { .. })
        ));

        let icmp = udp_decoder("icmp_icmp_send", EventKind::IcmpSend);
        let mut raw = vec![0u8; 38];
        put(&mut raw, 8, &0x5000u64.to_ne_bytes());
        put(&mut raw, 16, &3i32.to_ne_bytes());
        put(&mut raw, 20, &3i32.to_ne_bytes());
        put(&mut raw, 24, &[10, 0, 0, 2]);
        put(&mut raw, 28, &[10, 0, 0, 1]);
        put(&mut raw, 32, &4000u16.to_ne_bytes());
        put(&mut raw, 34, &5999u16.to_ne_bytes());
        assert_eq!(
            icmp.decode(&raw),
            Some(TraceEvent::IcmpUnreachable {
                skb: 0x5000,
                port_unreachable: true,
                local: "10.0.0.1".parse().unwrap(),
                port: 5999,
                sender: "10.0.0.2".parse().unwrap(),
                sender_port: 4000,
            })
        );
        // Not about a UDP datagram: no ports, no event.
        put(&mut raw, 32, &[0, 0, 0, 0]);
        assert_eq!(icmp.decode(&raw), None);

        let call = udp_decoder("syscalls_sys_enter_sendto", EventKind::SysEnterSendto);
        let mut raw = vec![0u8; 64];
        put(&mut raw, 16, &7u64.to_ne_bytes());
        assert_eq!((call.call_fd(&raw), call.decode(&raw)), (Some(7), None));
    }
}
