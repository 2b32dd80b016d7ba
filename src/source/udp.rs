//! UDP and UDP-Lite sockets for a poll: the sock_diag dumps (IPPROTO_UDP
//! and IPPROTO_UDPLITE, IPv4 and IPv6, with SK_MEMINFO for buffers and the
//! drop count) through the TCP dump's [`SockDiag`], and the /proc/net/udp
//! fallback, whose `drops` column is the same kernel counter.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::model::udp::{UdpProto, UdpSample};
use crate::model::{SocketKey, SocketSample, TcpState};

use super::sockdiag::{DiagError, DumpRequest, ParseStats, SockDiag, EXT_SKMEMINFO};

/// The states a UDP socket can be in: TCP_ESTABLISHED (connect()ed) and
/// TCP_CLOSE (unconnected); udp_diag filters on `1 << sk_state`.
pub const UDP_STATES: u32 = (1 << TcpState::Established as u32) | (1 << TcpState::Close as u32);

/// A TCP-shaped sample of a datagram socket as a UDP one.
pub fn from_diag(sample: &SocketSample, proto: UdpProto) -> UdpSample {
    let skmem = sample.skmem;
    UdpSample {
        key: sample.key,
        proto,
        cookie: sample.cookie,
        connected: sample.state == TcpState::Established,
        inode: sample.inode,
        uid: sample.uid,
        recv_queue: sample.recv_queue,
        send_queue: sample.send_queue,
        rcvbuf: skmem.map(|m| m.rcvbuf),
        sndbuf: skmem.map(|m| m.sndbuf),
        drops: skmem.and_then(|m| m.drops),
    }
}

/// A UDP close notice as a sample: the tuple and cookie only (connected
/// where it has a peer port). It has no
/// drop count, buffers or inode, and its send queue is the kernel's
/// `sk_wmem_alloc - 1` of a socket whose count already fell to zero
/// (u32::MAX): the socket is gone, so its queues are taken as empty.
pub fn from_notice(sample: &SocketSample) -> UdpSample {
    UdpSample {
        key: sample.key,
        proto: UdpProto::Udp,
        cookie: sample.cookie,
        // A peer port is a connect()ed socket's.
        connected: sample.key.remote_port != 0,
        inode: 0,
        uid: sample.uid,
        recv_queue: 0,
        send_queue: 0,
        rcvbuf: None,
        sndbuf: None,
        drops: None,
    }
}

/// What a UDP dump could not do, said once per cause.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UdpDumpGaps {
    /// (protocol, family) pairs the kernel has no handler for (udp_diag
    /// not loaded, UDP-Lite or IPv6 compiled out), with why.
    pub unavailable: Vec<String>,
}

/// Dumps every UDP and UDP-Lite socket of the diag socket's namespace
/// into `out`, filtered by `bytecode` when given (udp_diag runs the same
/// INET_DIAG_BC program as TCP). A protocol or family the kernel cannot
/// dump is listed in the result, not an error; any other failure is.
pub fn dump(
    diag: &mut SockDiag,
    bytecode: Option<&[u8]>,
    stats: &mut ParseStats,
    out: &mut Vec<UdpSample>,
) -> Result<UdpDumpGaps, DiagError> {
    let mut gaps = UdpDumpGaps::default();
    for proto in UdpProto::BOTH {
        for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
            let request = DumpRequest {
                family,
                states: UDP_STATES,
                extensions: EXT_SKMEMINFO,
                bytecode: bytecode.map(<[u8]>::to_vec),
            };
            let dumped = diag.dump_protocol_into(proto.ipproto(), &request, out, stats, |s| {
                from_diag(s, proto)
            });
            match dumped {
                Ok(()) => {}
                Err(DiagError::Unavailable(err)) => gaps.unavailable.push(format!(
                    "{}{} ({err})",
                    proto.mib(),
                    if family == libc::AF_INET6 as u8 {
                        "6"
                    } else {
                        ""
                    }
                )),
                Err(err) => return Err(err),
            }
        }
    }
    Ok(gaps)
}

/// Reads /proc/net/udp{,6} and udplite{,6} under `net_dir`; files that
/// do not exist (UDP-Lite or IPv6 compiled out) are skipped, and an error
/// is returned only when not even /proc/net/udp can be read.
pub fn read_proc_net_udp(net_dir: &Path, out: &mut Vec<UdpSample>) -> io::Result<()> {
    let files = [
        ("udp", UdpProto::Udp),
        ("udp6", UdpProto::Udp),
        ("udplite", UdpProto::UdpLite),
        ("udplite6", UdpProto::UdpLite),
    ];
    for (name, proto) in files {
        match std::fs::read_to_string(net_dir.join(name)) {
            Ok(text) => parse_proc_net_udp(&text, proto, out),
            Err(err) if name == "udp" => return Err(err),
            Err(_) => {}
        }
    }
    Ok(())
}

/// Parses one /proc/net/udp-style table; rows that do not parse are
/// skipped. Columns: sl, local, remote, st, tx:rx, tr:tm, retrnsmt, uid,
/// timeout, inode, ref, pointer, drops.
pub fn parse_proc_net_udp(text: &str, proto: UdpProto, out: &mut Vec<UdpSample>) {
    for line in text.lines().skip(1) {
        if let Some(sample) = parse_row(line, proto) {
            out.push(sample);
        }
    }
}

fn parse_row(line: &str, proto: UdpProto) -> Option<UdpSample> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 13 {
        return None;
    }
    let (local, local_port) = endpoint(fields[1])?;
    let (remote, remote_port) = endpoint(fields[2])?;
    let state = u8::from_str_radix(fields[3], 16).ok()?;
    let (tx, rx) = fields[4].split_once(':')?;
    Some(UdpSample {
        key: SocketKey::new(local, local_port, remote, remote_port),
        proto,
        cookie: 0,
        connected: state == TcpState::Established as u8,
        inode: fields[9].parse().ok()?,
        uid: fields[7].parse().ok()?,
        recv_queue: u32::from_str_radix(rx, 16).ok()?,
        send_queue: u32::from_str_radix(tx, 16).ok()?,
        rcvbuf: None,
        sndbuf: None,
        drops: fields[12].parse().ok(),
    })
}

/// `0100007F:0035` (an IPv4 address as the kernel's u32, printed in host
/// order) or four such words for IPv6.
fn endpoint(text: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(8 * i..8 * i + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut octets = [0u8; 16];
            for i in 0..4 {
                octets[4 * i..4 * i + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SkMemInfo;

    fn hex_v4(a: Ipv4Addr) -> String {
        format!("{:08X}", u32::from_ne_bytes(a.octets()))
    }

    #[test]
    fn proc_net_udp_row_gives_tuple_queues_and_drops() {
        let text = format!(
            "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
             \x20 12: {}:0035 00000000:0000 07 00000010:00000200 00:00000000 00000000   101        0 4242 2 0000000000000000 17\n\
             \x20 13: garbage\n",
            hex_v4(Ipv4Addr::new(127, 0, 0, 53))
        );
        let mut out = Vec::new();
        parse_proc_net_udp(&text, UdpProto::Udp, &mut out);
        assert_eq!(out.len(), 1);
        let s = out[0];
        assert_eq!(s.key.to_string(), "127.0.0.53:53 <-> 0.0.0.0:0");
        assert_eq!((s.send_queue, s.recv_queue), (0x10, 0x200));
        assert_eq!((s.uid, s.inode, s.drops), (101, 4242, Some(17)));
        assert!(!s.connected);
    }

    #[test]
    fn proc_net_udp6_address_reads_word_by_word() {
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let o = v6.octets();
        let words: String = (0..4)
            .map(|i| {
                let w = [o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]];
                format!("{:08X}", u32::from_ne_bytes(w))
            })
            .collect();
        let (ip, port) = endpoint(&format!("{words}:1F90")).unwrap();
        assert_eq!((ip, port), (IpAddr::V6(v6), 8080));
        assert!(endpoint("XYZ:1").is_none());
        assert!(endpoint("0100007F").is_none());
    }

    #[test]
    fn diag_sample_becomes_udp_with_memory_and_drops() {
        let key = SocketKey::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            53,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            0,
        );
        let mut s = SocketSample::bare(key, 9, TcpState::Close);
        s.skmem = Some(SkMemInfo {
            rmem_alloc: 1,
            rcvbuf: 4608,
            wmem_alloc: 2,
            sndbuf: 9216,
            drops: Some(5),
        });
        let u = from_diag(&s, UdpProto::UdpLite);
        assert_eq!(
            (u.rcvbuf, u.sndbuf, u.drops),
            (Some(4608), Some(9216), Some(5))
        );
        assert_eq!(u.proto, UdpProto::UdpLite);
        assert_eq!(u.state_name(), "UNCONN");
        let bare = from_diag(
            &SocketSample::bare(key, 9, TcpState::Established),
            UdpProto::Udp,
        );
        assert_eq!(bare.drops, None);
        assert!(bare.connected);
    }
}
