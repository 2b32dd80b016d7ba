//! The netlink sock_diag conversation: INET_DIAG_REQ_V2 requests (with state
//! masks and INET_DIAG_BC bytecode), the dump loop (sequence checks, DONE and
//! ERROR, NLM_F_DUMP_INTR retries, truncation and ENOBUFS recovery) and an
//! allocation-free parser from datagrams to [`SocketSample`]s.
//!
//! netlink-sys provides the socket. Requests and replies are hand-written
//! rather than taken from netlink-packet-sock-diag because that crate has no
//! bytecode filters and rejects a whole message whose tcp_info is shorter
//! than it expects; it also measured ~25x slower per socket than the walk
//! below. The parser is pure and fed from testdata/ in tests. Besides
//! dumps, a [`SockDiag`] looks up one socket by its tuple (precision mode's
//! last-moment samples in `trace`). TCP, UDP and UDP-Lite dumps share the
//! message layout; only sdiag_protocol differs (see `source::udp`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};
use thiserror::Error;

use crate::model::tcp_info::TcpInfo;
use crate::model::{CongestionName, SkMemInfo, SocketKey, SocketSample, TcpState};

const NLMSG_HDR_LEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_DUMP_INTR: u16 = 0x10;

const INET_DIAG_MSG_LEN: usize = 72;
const INET_DIAG_REQ_V2_LEN: usize = 56;
const INET_DIAG_REQ_BYTECODE: u16 = 1;

// Reply attributes (enum in include/uapi/linux/inet_diag.h).
const INET_DIAG_INFO: u16 = 2;
const INET_DIAG_CONG: u16 = 4;
const INET_DIAG_SKMEMINFO: u16 = 7;

/// idiag_ext bits: attribute N is requested by bit N-1.
pub const EXT_INFO: u8 = 1 << (INET_DIAG_INFO - 1);
pub const EXT_CONG: u8 = 1 << (INET_DIAG_CONG - 1);
pub const EXT_SKMEMINFO: u8 = 1 << (INET_DIAG_SKMEMINFO - 1);

/// Every state a TCP socket can be dumped in, 1 (ESTABLISHED) to 12
/// (NEW_SYN_RECV). BOUND_INACTIVE (13) carries no traffic and is left out.
pub const ALL_STATES: u32 = 0x1ffe;
pub const LISTEN_ONLY: u32 = 1 << TcpState::Listen as u32;

const MAX_DUMP_ATTEMPTS: usize = 4;

/// Why a sock_diag conversation failed. Each message includes its cause's
/// text, so none has a `source()`: chains (`{:#}`) would repeat it.
#[derive(Debug, Error)]
pub enum DiagError {
    /// The kernel has no sock_diag handler for TCP (tcp_diag not loaded) or
    /// the sandbox forbids NETLINK_SOCK_DIAG.
    #[error("sock_diag is unavailable: {0}")]
    Unavailable(io::Error),
    #[error("sock_diag request rejected by the kernel: {0}")]
    Rejected(io::Error),
    #[error("sock_diag I/O failed: {0}")]
    Io(io::Error),
}

/// What one dump asks the kernel for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpRequest {
    pub family: u8,
    pub states: u32,
    pub extensions: u8,
    pub bytecode: Option<Vec<u8>>,
}

impl DumpRequest {
    /// The bytes of the netlink message for `protocol`'s sockets (the
    /// kernel's inet_diag handler is chosen by sdiag_protocol), header
    /// included.
    fn encode(&self, seq: u32, protocol: u8) -> Vec<u8> {
        let attr_len = self.bytecode.as_ref().map_or(0, |bc| 4 + align4(bc.len()));
        let total = NLMSG_HDR_LEN + INET_DIAG_REQ_V2_LEN + attr_len;
        let mut msg = Vec::with_capacity(total);
        msg.extend_from_slice(&(total as u32).to_ne_bytes());
        msg.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        // struct inet_diag_req_v2: family, protocol, ext, pad, states, then a
        // zeroed inet_diag_sockid (a dump matches by bytecode, not by id).
        msg.extend_from_slice(&[self.family, protocol, self.extensions, 0]);
        msg.extend_from_slice(&self.states.to_ne_bytes());
        msg.resize(NLMSG_HDR_LEN + INET_DIAG_REQ_V2_LEN, 0);
        if let Some(bytecode) = &self.bytecode {
            msg.extend_from_slice(&((4 + bytecode.len()) as u16).to_ne_bytes());
            msg.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
            msg.extend_from_slice(bytecode);
            msg.resize(total, 0);
        }
        msg
    }
}

/// INET_DIAG_NOCOOKIE: look a socket up by its tuple alone.
const NO_COOKIE: u32 = !0;

/// The message asking for one socket by its exact tuple (not a dump): the
/// kernel answers with that socket, or ENOENT.
fn encode_lookup(key: &SocketKey, extensions: u8, seq: u32) -> Vec<u8> {
    let total = NLMSG_HDR_LEN + INET_DIAG_REQ_V2_LEN;
    let family = match key.local {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    };
    let mut msg = Vec::with_capacity(total);
    msg.extend_from_slice(&(total as u32).to_ne_bytes());
    msg.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&[family, libc::IPPROTO_TCP as u8, extensions, 0]);
    msg.extend_from_slice(&ALL_STATES.to_ne_bytes());
    // struct inet_diag_sockid: ports and addresses in network order.
    msg.extend_from_slice(&key.local_port.to_be_bytes());
    msg.extend_from_slice(&key.remote_port.to_be_bytes());
    for addr in [key.local, key.remote] {
        let mut words = [0u8; 16];
        match addr {
            IpAddr::V4(a) => words[..4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => words.copy_from_slice(&a.octets()),
        }
        msg.extend_from_slice(&words);
    }
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&NO_COOKIE.to_ne_bytes());
    msg.extend_from_slice(&NO_COOKIE.to_ne_bytes());
    msg
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Counts of what a parse met, so damage is reported, not hidden.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Messages too short or with a bad length: skipped.
    pub malformed: usize,
    /// Messages of another request (stale sequence numbers): ignored.
    pub stale: usize,
    /// Dumps redone because the kernel flagged them inconsistent or a
    /// datagram was truncated.
    pub retries: usize,
    /// Dumps still inconsistent after every retry, kept as they were.
    pub inconsistent: usize,
}

/// What a datagram ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramEnd {
    /// More datagrams follow.
    More,
    /// NLMSG_DONE seen.
    Done,
    /// NLMSG_ERROR with a non-zero errno (positive).
    Error(i32),
}

/// Walks the netlink messages of one datagram, appending the sockets found.
/// `seq` of `None` accepts any sequence number (recorded data).
pub fn parse_datagram(
    data: &[u8],
    seq: Option<u32>,
    out: &mut Vec<SocketSample>,
    stats: &mut ParseStats,
    interrupted: &mut bool,
) -> DatagramEnd {
    let mut rest = data;
    while rest.len() >= NLMSG_HDR_LEN {
        let msg_len = u32_at(rest, 0) as usize;
        if msg_len < NLMSG_HDR_LEN || msg_len > rest.len() {
            stats.malformed += 1;
            return DatagramEnd::More;
        }
        let msg_type = u16::from_ne_bytes([rest[4], rest[5]]);
        let flags = u16::from_ne_bytes([rest[6], rest[7]]);
        let msg_seq = u32_at(rest, 8);
        let payload = &rest[NLMSG_HDR_LEN..msg_len];
        rest = &rest[align4(msg_len).min(rest.len())..];
        if seq.is_some_and(|s| s != msg_seq) {
            stats.stale += 1;
            continue;
        }
        if flags & NLM_F_DUMP_INTR != 0 {
            *interrupted = true;
        }
        match msg_type {
            NLMSG_DONE => return DatagramEnd::Done,
            NLMSG_ERROR => {
                let errno = if payload.len() >= 4 {
                    -(u32_at(payload, 0) as i32)
                } else {
                    libc::EIO
                };
                if errno != 0 {
                    return DatagramEnd::Error(errno);
                }
            }
            SOCK_DIAG_BY_FAMILY if !push_inet_diag_msg(payload, out) => stats.malformed += 1,
            _ => {}
        }
    }
    DatagramEnd::More
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_ne_bytes([
        bytes[offset],
        bytes[offset + 1],
        bytes[offset + 2],
        bytes[offset + 3],
    ])
}

/// One message as one sample, for tests.
#[cfg(test)]
fn parse_inet_diag_msg(payload: &[u8]) -> Option<SocketSample> {
    let mut one = Vec::with_capacity(1);
    push_inet_diag_msg(payload, &mut one);
    one.pop()
}

/// One `struct inet_diag_msg` and its attributes, appended to `out` and
/// filled where it lies (a dump of 100k sockets copies each once). False,
/// with nothing appended, only when the fixed header is incomplete or of an
/// unknown family; a damaged attribute stops the walk, keeping what was
/// read before it.
fn push_inet_diag_msg(payload: &[u8], out: &mut Vec<SocketSample>) -> bool {
    if payload.len() < INET_DIAG_MSG_LEN {
        return false;
    }
    let family = payload[0] as i32;
    let state = TcpState::from_kernel(payload[1]);
    let local_port = u16::from_be_bytes([payload[4], payload[5]]);
    let remote_port = u16::from_be_bytes([payload[6], payload[7]]);
    let address = |offset: usize| -> Option<IpAddr> {
        let raw = &payload[offset..offset + 16];
        match family {
            libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))),
            libc::AF_INET6 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(raw);
                Some(IpAddr::V6(Ipv6Addr::from(octets)))
            }
            _ => None,
        }
    };
    let (Some(local), Some(remote)) = (address(8), address(24)) else {
        return false;
    };
    let key = SocketKey::new(local, local_port, remote, remote_port);
    let cookie = u64::from(u32_at(payload, 44)) | (u64::from(u32_at(payload, 48)) << 32);
    out.push(SocketSample::bare(key, cookie, state));
    let Some(sample) = out.last_mut() else {
        return false;
    };
    sample.recv_queue = u32_at(payload, 56);
    sample.send_queue = u32_at(payload, 60);
    sample.uid = u32_at(payload, 64);
    sample.inode = u64::from(u32_at(payload, 68));

    let mut attrs = &payload[INET_DIAG_MSG_LEN..];
    while attrs.len() >= 4 {
        let attr_len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let attr_type = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if attr_len < 4 || attr_len > attrs.len() {
            break;
        }
        let value = &attrs[4..attr_len];
        match attr_type {
            INET_DIAG_INFO => TcpInfo::read_into(&mut sample.tcp_info, value),
            INET_DIAG_CONG => sample.congestion = CongestionName::from_bytes(value),
            INET_DIAG_SKMEMINFO => sample.skmem = parse_skmeminfo(value),
            _ => {}
        }
        attrs = &attrs[align4(attr_len).min(attrs.len())..];
    }
    if sample.state == TcpState::SynRecv && sample.tcp_info.is_none() {
        // The kernel reports a request socket (TCP_NEW_SYN_RECV) as
        // SYN_RECV, with no tcp_info; every dump asks for tcp_info, which
        // a full SYN_RECV socket (Fast Open) has. Its child, another socket
        // with another cookie, opens the connection.
        sample.state = TcpState::NewSynRecv;
    }
    true
}

fn parse_skmeminfo(value: &[u8]) -> Option<SkMemInfo> {
    let word = |i: usize| (value.len() >= 4 * (i + 1)).then(|| u32_at(value, 4 * i));
    Some(SkMemInfo {
        rmem_alloc: word(0)?,
        rcvbuf: word(1)?,
        wmem_alloc: word(2)?,
        sndbuf: word(3)?,
        drops: word(8),
    })
}

/// A NETLINK_SOCK_DIAG socket kept open across polls, with its receive buffer.
pub struct SockDiag {
    socket: Socket,
    buffer: Vec<u8>,
    seq: u32,
    /// When set, every datagram received is appended here (--record).
    pub recording: Option<Vec<u8>>,
}

const INITIAL_BUFFER: usize = 64 * 1024;
const SOCKET_RCVBUF: usize = 1 << 20;

impl SockDiag {
    pub fn open() -> Result<SockDiag, DiagError> {
        SockDiag::with_buffer(INITIAL_BUFFER)
    }

    /// With a receive buffer of `bytes` to start with (it grows when a
    /// datagram does not fit; tests start small to make it grow).
    pub fn with_buffer(bytes: usize) -> Result<SockDiag, DiagError> {
        let socket = Socket::new(NETLINK_SOCK_DIAG).map_err(classify_open_error)?;
        // A bigger kernel-side buffer lets the kernel pack full datagrams; a
        // failure only costs speed.
        let _ = socket.set_rx_buf_sz(SOCKET_RCVBUF);
        Ok(SockDiag {
            socket,
            buffer: Vec::with_capacity(bytes),
            seq: 0,
            recording: None,
        })
    }

    /// Runs one dump of TCP sockets to completion, appending them to `out`.
    pub fn dump(
        &mut self,
        request: &DumpRequest,
        out: &mut Vec<SocketSample>,
        stats: &mut ParseStats,
    ) -> Result<(), DiagError> {
        self.dump_protocol(libc::IPPROTO_TCP as u8, request, out, stats)
    }

    /// Runs one dump of `protocol`'s sockets (IPPROTO_TCP, IPPROTO_UDP,
    /// IPPROTO_UDPLITE) to completion, appending them to `out`: the same
    /// message and attributes for each, so one parser serves all three.
    pub fn dump_protocol(
        &mut self,
        protocol: u8,
        request: &DumpRequest,
        out: &mut Vec<SocketSample>,
        stats: &mut ParseStats,
    ) -> Result<(), DiagError> {
        self.dump_retrying(out, stats, |diag, out, stats| {
            diag.dump_once(request, protocol, out, stats, None)
        })
    }

    /// [`SockDiag::dump_protocol`], each socket appended to `out` as
    /// `convert` makes it: only one datagram's sockets are held as full
    /// samples at a time. A UDP dump of 100,000 sockets would otherwise
    /// hold 100,000 TCP-sized samples (tens of MB, fresh pages every poll)
    /// only to copy the few fields a datagram socket has out of them.
    pub fn dump_protocol_into<T>(
        &mut self,
        protocol: u8,
        request: &DumpRequest,
        out: &mut Vec<T>,
        stats: &mut ParseStats,
        convert: impl Fn(&SocketSample) -> T,
    ) -> Result<(), DiagError> {
        let mut scratch = Vec::with_capacity(256);
        self.dump_retrying(out, stats, |diag, out, stats| {
            let mut sink = |sample: &SocketSample| {
                out.push(convert(sample));
                true
            };
            diag.dump_once(request, protocol, &mut scratch, stats, Some(&mut sink))
        })
    }

    /// Runs `once` until its dump is consistent (at most
    /// [`MAX_DUMP_ATTEMPTS`] times), dropping what an inconsistent one put
    /// in `out` and in the recording before the next.
    fn dump_retrying<T>(
        &mut self,
        out: &mut Vec<T>,
        stats: &mut ParseStats,
        mut once: impl FnMut(
            &mut SockDiag,
            &mut Vec<T>,
            &mut ParseStats,
        ) -> Result<DumpOutcome, DiagError>,
    ) -> Result<(), DiagError> {
        for attempt in 1..=MAX_DUMP_ATTEMPTS {
            let start = out.len();
            let recorded = self.recording.as_ref().map(Vec::len);
            match once(self, out, stats)? {
                DumpOutcome::Complete | DumpOutcome::Stopped => return Ok(()),
                DumpOutcome::Redo if attempt < MAX_DUMP_ATTEMPTS => {
                    out.truncate(start);
                    if let (Some(recording), Some(len)) = (self.recording.as_mut(), recorded) {
                        recording.truncate(len);
                    }
                    stats.retries += 1;
                }
                DumpOutcome::Redo => stats.inconsistent += 1,
            }
        }
        Ok(())
    }

    /// Runs one dump handing each socket to `sink` as its datagram arrives,
    /// keeping none: memory stays flat however many sockets there are. A
    /// dump cannot be redone once handed out, so an inconsistent one
    /// (NLM_F_DUMP_INTR) is counted, not retried. `sink` returns false to
    /// stop early; the result says whether the dump ran to its end.
    pub fn dump_streaming(
        &mut self,
        request: &DumpRequest,
        stats: &mut ParseStats,
        sink: &mut dyn FnMut(&SocketSample) -> bool,
    ) -> Result<bool, DiagError> {
        let mut scratch = Vec::with_capacity(256);
        let tcp = libc::IPPROTO_TCP as u8;
        match self.dump_once(request, tcp, &mut scratch, stats, Some(sink))? {
            DumpOutcome::Complete => Ok(true),
            DumpOutcome::Stopped => Ok(false),
            DumpOutcome::Redo => {
                stats.inconsistent += 1;
                Ok(true)
            }
        }
    }

    fn dump_once(
        &mut self,
        request: &DumpRequest,
        protocol: u8,
        out: &mut Vec<SocketSample>,
        stats: &mut ParseStats,
        mut sink: Option<&mut dyn FnMut(&SocketSample) -> bool>,
    ) -> Result<DumpOutcome, DiagError> {
        self.seq = self.seq.wrapping_add(1);
        let message = request.encode(self.seq, protocol);
        self.socket
            .send_to(&message, &SocketAddr::new(0, 0), 0)
            .map_err(classify_open_error)?;
        let mut interrupted = false;
        loop {
            self.buffer.clear();
            let received = match self.socket.recv(&mut self.buffer, libc::MSG_TRUNC) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // The socket overflowed and the dump lost data: a bigger
                    // buffer, then the dump again from a fresh socket.
                    self.reopen()?;
                    return Ok(DumpOutcome::Redo);
                }
                Err(e) => return Err(DiagError::Io(e)),
            };
            if received > self.buffer.capacity() {
                // The datagram did not fit, and what was cut may have held
                // NLMSG_DONE: drop this dump with its socket, grow, redo.
                let wanted = received.next_power_of_two();
                self.reopen()?;
                self.buffer = Vec::with_capacity(wanted.max(self.buffer.capacity()));
                return Ok(DumpOutcome::Redo);
            }
            if let Some(recording) = self.recording.as_mut() {
                recording.extend_from_slice(&self.buffer);
            }
            let end = parse_datagram(&self.buffer, Some(self.seq), out, stats, &mut interrupted);
            if let Some(sink) = sink.as_mut() {
                for sample in out.iter() {
                    if !sink(sample) {
                        // Abandoned: the kernel would refuse the next dump
                        // on this socket (EBUSY) until this one is drained,
                        // so the socket goes with it.
                        self.reopen()?;
                        return Ok(DumpOutcome::Stopped);
                    }
                }
                out.clear();
            }
            match end {
                DatagramEnd::More => {}
                DatagramEnd::Done => break,
                DatagramEnd::Error(libc::EBUSY) => {
                    // A dump left unfinished on this socket: start afresh.
                    self.reopen()?;
                    return Ok(DumpOutcome::Redo);
                }
                DatagramEnd::Error(errno) => {
                    let err = io::Error::from_raw_os_error(errno);
                    return Err(match errno {
                        libc::ENOENT | libc::EOPNOTSUPP | libc::EPERM | libc::EACCES => {
                            DiagError::Unavailable(err)
                        }
                        _ => DiagError::Rejected(err),
                    });
                }
            }
        }
        Ok(if interrupted {
            DumpOutcome::Redo
        } else {
            DumpOutcome::Complete
        })
    }

    /// Asks for the one socket with this exact tuple in this socket's
    /// namespace: None when there is none (ENOENT).
    pub fn lookup(
        &mut self,
        key: &SocketKey,
        extensions: u8,
    ) -> Result<Option<SocketSample>, DiagError> {
        self.seq = self.seq.wrapping_add(1);
        let message = encode_lookup(key, extensions, self.seq);
        self.socket
            .send_to(&message, &SocketAddr::new(0, 0), 0)
            .map_err(classify_open_error)?;
        // The kernel answers within the send: one message or an error.
        let mut out = Vec::with_capacity(1);
        let mut stats = ParseStats::default();
        let mut interrupted = false;
        loop {
            self.buffer.clear();
            match self.socket.recv(&mut self.buffer, 0) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(DiagError::Io(e)),
            }
            let end = parse_datagram(
                &self.buffer,
                Some(self.seq),
                &mut out,
                &mut stats,
                &mut interrupted,
            );
            if let Some(sample) = out.pop() {
                return Ok(Some(sample));
            }
            match end {
                DatagramEnd::Error(libc::ENOENT) | DatagramEnd::Done => return Ok(None),
                DatagramEnd::Error(errno) => {
                    return Err(DiagError::Rejected(io::Error::from_raw_os_error(errno)))
                }
                // Only stale answers in this datagram: read on.
                DatagramEnd::More if stats.stale > 0 => stats.stale = 0,
                DatagramEnd::More => return Ok(None),
            }
        }
    }

    fn reopen(&mut self) -> Result<(), DiagError> {
        let fresh = Socket::new(NETLINK_SOCK_DIAG).map_err(classify_open_error)?;
        let _ = fresh.set_rx_buf_sz(SOCKET_RCVBUF * 4);
        self.socket = fresh;
        self.buffer.reserve(self.buffer.capacity() * 2);
        Ok(())
    }
}

enum DumpOutcome {
    Complete,
    Redo,
    /// The consumer stopped it.
    Stopped,
}

fn classify_open_error(err: io::Error) -> DiagError {
    match err.raw_os_error() {
        Some(
            libc::EPROTONOSUPPORT
            | libc::EAFNOSUPPORT
            | libc::EPERM
            | libc::EACCES
            | libc::ENOENT
            | libc::ECONNREFUSED,
        ) => DiagError::Unavailable(err),
        _ => DiagError::Io(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds one SOCK_DIAG_BY_FAMILY message for tests.
    pub(crate) fn message(seq: u32, flags: u16, payload: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDR_LEN + payload.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        m.resize(align4(m.len()), 0);
        m
    }

    fn diag_msg(state: u8, lport: u16, rport: u16, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut p = vec![0u8; INET_DIAG_MSG_LEN];
        p[0] = libc::AF_INET as u8;
        p[1] = state;
        p[4..6].copy_from_slice(&lport.to_be_bytes());
        p[6..8].copy_from_slice(&rport.to_be_bytes());
        p[8..12].copy_from_slice(&[127, 0, 0, 1]);
        p[24..28].copy_from_slice(&[10, 0, 0, 2]);
        p[44..48].copy_from_slice(&7u32.to_ne_bytes());
        p[48..52].copy_from_slice(&1u32.to_ne_bytes());
        p[68..72].copy_from_slice(&4242u32.to_ne_bytes());
        for (kind, value) in attrs {
            p.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
            p.extend_from_slice(&kind.to_ne_bytes());
            p.extend_from_slice(value);
            p.resize(align4(p.len()), 0);
        }
        p
    }

    fn done(seq: u32) -> Vec<u8> {
        let mut m = message(seq, 0, &0i32.to_ne_bytes());
        m[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        m
    }

    #[test]
    fn parses_header_cookie_and_attributes() {
        let info = vec![1u8; 104];
        let data = message(
            5,
            0,
            &diag_msg(
                1,
                80,
                5555,
                &[(2, info), (4, b"cubic\0".to_vec()), (99, vec![1, 2, 3])],
            ),
        );
        let (mut out, mut stats, mut intr) = (Vec::new(), ParseStats::default(), false);
        assert_eq!(
            parse_datagram(&data, Some(5), &mut out, &mut stats, &mut intr),
            DatagramEnd::More
        );
        let s = &out[0];
        assert_eq!(s.key.to_string(), "127.0.0.1:80 <-> 10.0.0.2:5555");
        assert_eq!(s.cookie, (1u64 << 32) | 7);
        assert_eq!(s.inode, 4242);
        assert_eq!(s.state, TcpState::Established);
        assert_eq!(s.tcp_info.unwrap().len(), 104);
        assert_eq!(s.congestion.unwrap().as_str(), "cubic");
    }

    #[test]
    fn a_syn_recv_without_tcp_info_is_a_request_socket() {
        let request = parse_inet_diag_msg(&diag_msg(3, 80, 5555, &[])).unwrap();
        assert_eq!(request.state, TcpState::NewSynRecv);
        assert!(request.is_mini_socket());
        // A Fast Open child is a full socket in SYN_RECV, with tcp_info.
        let child = parse_inet_diag_msg(&diag_msg(3, 80, 5555, &[(2, vec![3u8; 104])])).unwrap();
        assert_eq!(child.state, TcpState::SynRecv);
        assert!(!child.is_mini_socket());
    }

    #[test]
    fn truncated_attribute_keeps_what_came_before() {
        let mut payload = diag_msg(1, 1, 2, &[(4, b"reno\0".to_vec())]);
        // An attribute claiming more bytes than there are.
        payload.extend_from_slice(&200u16.to_ne_bytes());
        payload.extend_from_slice(&2u16.to_ne_bytes());
        payload.extend_from_slice(&[0u8; 8]);
        let sample = parse_inet_diag_msg(&payload).unwrap();
        assert_eq!(sample.congestion.unwrap().as_str(), "reno");
        assert!(sample.tcp_info.is_none());
    }

    #[test]
    fn short_header_is_malformed_not_a_panic() {
        let mut data = message(1, 0, &[0u8; 40]);
        data.extend(done(1));
        let (mut out, mut stats, mut intr) = (Vec::new(), ParseStats::default(), false);
        assert_eq!(
            parse_datagram(&data, Some(1), &mut out, &mut stats, &mut intr),
            DatagramEnd::Done
        );
        assert!(out.is_empty());
        assert_eq!(stats.malformed, 1);
    }

    #[test]
    fn stale_sequence_ignored_and_dump_intr_noticed() {
        let mut data = message(9, 0, &diag_msg(1, 1, 2, &[]));
        data.extend(message(10, NLM_F_DUMP_INTR, &diag_msg(1, 3, 4, &[])));
        let (mut out, mut stats, mut intr) = (Vec::new(), ParseStats::default(), false);
        parse_datagram(&data, Some(10), &mut out, &mut stats, &mut intr);
        assert_eq!(out.len(), 1);
        assert_eq!(stats.stale, 1);
        assert!(intr);
    }

    #[test]
    fn error_message_carries_errno() {
        let mut m = message(3, 0, &(-libc::ENOENT).to_ne_bytes());
        m[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        let (mut out, mut stats, mut intr) = (Vec::new(), ParseStats::default(), false);
        assert_eq!(
            parse_datagram(&m, Some(3), &mut out, &mut stats, &mut intr),
            DatagramEnd::Error(libc::ENOENT)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u32;
        for len in 0..600 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 24) as u8
                })
                .collect();
            let (mut out, mut stats, mut intr) = (Vec::new(), ParseStats::default(), false);
            parse_datagram(&bytes, None, &mut out, &mut stats, &mut intr);
            let _ = parse_inet_diag_msg(&bytes);
        }
    }

    #[test]
    fn request_layout() {
        let req = DumpRequest {
            family: libc::AF_INET6 as u8,
            states: ALL_STATES,
            extensions: EXT_INFO | EXT_CONG,
            bytecode: Some(vec![1, 4, 8, 0, 0, 0, 0, 0]),
        };
        let bytes = req.encode(77, libc::IPPROTO_TCP as u8);
        assert_eq!(bytes.len(), 16 + 56 + 12);
        assert_eq!(u32_at(&bytes, 0) as usize, bytes.len());
        assert_eq!(u32_at(&bytes, 8), 77);
        assert_eq!(bytes[16], libc::AF_INET6 as u8);
        assert_eq!(bytes[17], libc::IPPROTO_TCP as u8);
        assert_eq!(u32_at(&bytes, 20), ALL_STATES);
        assert_eq!(u16::from_ne_bytes([bytes[72], bytes[73]]), 12);
    }

    #[test]
    fn udp_request_names_its_protocol() {
        let req = DumpRequest {
            family: libc::AF_INET as u8,
            states: ALL_STATES,
            extensions: EXT_SKMEMINFO,
            bytecode: None,
        };
        for protocol in [libc::IPPROTO_UDP, libc::IPPROTO_UDPLITE] {
            let bytes = req.encode(1, protocol as u8);
            assert_eq!(bytes[17], protocol as u8);
            assert_eq!(bytes[18], EXT_SKMEMINFO);
        }
    }
}
