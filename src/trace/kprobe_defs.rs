//! The kprobes precision mode uses where a tracepoint is missing (or when
//! `--precision kprobe` asks for them), written for tracefs `kprobe_events`.
//!
//! Why tracefs kprobe_events and not the perf `kprobe` PMU: the PMU creates
//! a probe with no fetch arguments, so without BTF it could only report the
//! `struct sock *` pointer, never the socket's tuple. A kprobe_events probe
//! reads memory at fixed offsets from an argument register, and shows up as
//! an ordinary tracepoint (with an id and a format file) that the same perf
//! rings and decoder read.
//!
//! Why fixed offsets are safe without BTF or debuginfo: every function
//! probed here takes a `struct sock *` (or a `struct request_sock *`, which
//! also begins with `struct sock_common`) as its first argument (or second,
//! for tcp_rtx_synack's request), and struct sock_common has begun with the
//! same fields since 2.6: skc_daddr (+0, network order), skc_rcv_saddr (+4),
//! skc_hash (+8), skc_dport (+12, network order), skc_num (+14, host order),
//! skc_family (+16), skc_state (+18). A kprobe fetch reads through
//! copy_from_kernel_nofault, so a bad or NULL pointer (tcp_v4_send_reset for
//! a segment that matched no socket) reads as zeros instead of faulting.
//! The kernel matrix (scripts/kernel-matrix.sh) checks the tuples against
//! real connections on Debian 5.10, 6.1 and 6.12.
//!
//! What cannot be had this way: IPv6 addresses (skc_v6_daddr and
//! skc_v6_rcv_saddr sit after fields whose size depends on the kernel's
//! configuration). For an AF_INET6 socket the decoder fills the addresses
//! with `::` and keeps the real ports; attribution matches such tuples by
//! ports. The argument registers are x86-64's (%di, %si, %dx); other
//! architectures get no kprobes.

use super::decoder::EventKind;

/// One kprobe: `p:GROUP/EVENT FUNCTION FETCHARGS` (or `r:` for a return).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KprobeDef {
    pub kind: EventKind,
    pub event_name: &'static str,
    pub function: &'static str,
    pub is_return: bool,
    pub fetchargs: String,
}

impl KprobeDef {
    /// The definition after `p:GROUP/EVENT ` in kprobe_events.
    pub fn definition(&self) -> String {
        if self.fetchargs.is_empty() {
            self.function.to_string()
        } else {
            format!("{} {}", self.function, self.fetchargs)
        }
    }
}

/// The tuple fetch arguments for a `struct sock_common *` in `reg`.
#[cfg(target_arch = "x86_64")]
fn socket_args(reg: &str) -> String {
    format!(
        "sk={reg}:x64 family=+16({reg}):u16 saddr=+4({reg}):u32 daddr=+0({reg}):u32 lport=+14({reg}):u16 dport=+12({reg}):u16"
    )
}

/// Every kprobe definition for this architecture.
#[cfg(target_arch = "x86_64")]
pub fn definitions() -> Vec<KprobeDef> {
    use EventKind::*;
    let sock = socket_args("%di");
    let def = |kind, event_name, function, is_return, fetchargs: String| KprobeDef {
        kind,
        event_name,
        function,
        is_return,
        fetchargs,
    };
    vec![
        // tcp_set_state(struct sock *sk, int state): the old state is still
        // in skc_state at entry.
        def(
            KprobeSetState,
            "set_state",
            "tcp_set_state",
            false,
            format!("{sock} oldstate=+18(%di):u8 newstate=%si:s32"),
        ),
        // tcp_v4_send_reset(const struct sock *sk, struct sk_buff *skb): sk
        // may be NULL (a segment for no socket).
        def(
            KprobeSendReset,
            "send_reset4",
            "tcp_v4_send_reset",
            false,
            sock.clone(),
        ),
        def(
            KprobeSendReset,
            "send_reset6",
            "tcp_v6_send_reset",
            false,
            sock.clone(),
        ),
        // tcp_send_active_reset(struct sock *sk, gfp_t priority[, reason]).
        def(
            KprobeActiveReset,
            "active_reset",
            "tcp_send_active_reset",
            false,
            sock.clone(),
        ),
        // tcp_reset(struct sock *sk[, struct sk_buff *skb]).
        def(
            KprobeReceiveReset,
            "receive_reset",
            "tcp_reset",
            false,
            sock.clone(),
        ),
        // tcp_retransmit_skb(struct sock *sk, struct sk_buff *skb, int segs).
        def(
            KprobeRetransmit,
            "retransmit",
            "tcp_retransmit_skb",
            false,
            sock.clone(),
        ),
        // tcp_rtx_synack(const struct sock *sk, struct request_sock *req):
        // the tuple is the request's.
        def(
            KprobeSynAck,
            "rtx_synack",
            "tcp_rtx_synack",
            false,
            format!("{} listener=%di:x64", socket_args("%si")),
        ),
        // tcp_sendmsg(struct sock *sk, struct msghdr *msg, size_t size).
        def(
            KprobeSendmsgEntry,
            "sendmsg",
            "tcp_sendmsg",
            false,
            sock.clone(),
        ),
        def(
            KprobeSendmsgReturn,
            "sendmsg_ret",
            "tcp_sendmsg",
            true,
            "ret=$retval:s32".into(),
        ),
        // tcp_recvmsg(struct sock *sk, struct msghdr *msg, ...).
        def(
            KprobeRecvmsgEntry,
            "recvmsg",
            "tcp_recvmsg",
            false,
            sock.clone(),
        ),
        def(
            KprobeRecvmsgReturn,
            "recvmsg_ret",
            "tcp_recvmsg",
            true,
            "ret=$retval:s32".into(),
        ),
        // UDP (--udp): udp_sendmsg(struct sock *sk, struct msghdr *msg,
        // size_t len) and udp_recvmsg(struct sock *sk, ...), their IPv6
        // twins alike (UDP-Lite uses the same functions). Entries only:
        // they name the socket at sk; its bytes come from the
        // sock_send_length/sock_recv_length tracepoints.
        def(
            KprobeUdpName,
            "udp_send4",
            "udp_sendmsg",
            false,
            sock.clone(),
        ),
        def(
            KprobeUdpName,
            "udp_send6",
            "udpv6_sendmsg",
            false,
            sock.clone(),
        ),
        def(
            KprobeUdpName,
            "udp_recv4",
            "udp_recvmsg",
            false,
            sock.clone(),
        ),
        def(
            KprobeUdpName,
            "udp_recv6",
            "udpv6_recvmsg",
            false,
            sock.clone(),
        ),
        // The same calls with their returns, where the kernel has no
        // sock_send_length/sock_recv_length: paired by thread into
        // datagrams (the return's value is the bytes, or an error).
        def(
            KprobeUdpSendEntry,
            "udp_msg_send4",
            "udp_sendmsg",
            false,
            sock.clone(),
        ),
        def(
            KprobeUdpSendEntry,
            "udp_msg_send6",
            "udpv6_sendmsg",
            false,
            sock.clone(),
        ),
        def(
            KprobeUdpRecvEntry,
            "udp_msg_recv4",
            "udp_recvmsg",
            false,
            sock.clone(),
        ),
        def(
            KprobeUdpRecvEntry,
            "udp_msg_recv6",
            "udpv6_recvmsg",
            false,
            sock,
        ),
        def(
            KprobeUdpSendReturn,
            "udp_msg_send4_ret",
            "udp_sendmsg",
            true,
            "ret=$retval:s32".into(),
        ),
        def(
            KprobeUdpSendReturn,
            "udp_msg_send6_ret",
            "udpv6_sendmsg",
            true,
            "ret=$retval:s32".into(),
        ),
        def(
            KprobeUdpRecvReturn,
            "udp_msg_recv4_ret",
            "udp_recvmsg",
            true,
            "ret=$retval:s32".into(),
        ),
        def(
            KprobeUdpRecvReturn,
            "udp_msg_recv6_ret",
            "udpv6_recvmsg",
            true,
            "ret=$retval:s32".into(),
        ),
    ]
}

/// Other architectures: their argument registers are not written here.
#[cfg(not(target_arch = "x86_64"))]
pub fn definitions() -> Vec<KprobeDef> {
    Vec::new()
}
