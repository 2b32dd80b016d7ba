//! Parsers against real data of four kernels (Debian 5.10, 6.1, 6.12 under
//! qemu, and this machine's 6.18; see testdata/kernels/*/manifest.txt), and
//! tcp_info payloads of every length from 104 to 280 bytes.

use std::fs;
use std::io::BufReader;
use std::net::IpAddr;
use std::path::PathBuf;

use tcpipstat::counters::{cumulative, Counter};
use tcpipstat::model::tcp_info::TcpInfo;
use tcpipstat::model::{SocketKey, SocketSample, TcpState};
use tcpipstat::source::procfs::{parse_proc_net_tcp, SystemCounters};
use tcpipstat::source::replay::snapshot_from_recording;

/// (kernel, tcp_info length it sends)
const KERNELS: [(&str, usize); 4] = [("5.10", 232), ("6.1", 232), ("6.12", 248), ("6.18", 280)];

fn dir(kernel: &str) -> PathBuf {
    PathBuf::from("testdata/kernels").join(kernel)
}

fn key(local: &str, lport: u16, remote: &str, rport: u16) -> SocketKey {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    SocketKey::new(ip(local), lport, ip(remote), rport)
}

/// The scenario's clients and what each sent.
fn clients() -> [(SocketKey, u64); 3] {
    [
        (key("127.0.0.1", 40001, "127.0.0.1", 5001), 1000),
        (key("127.0.0.1", 40002, "127.0.0.1", 5001), 20000),
        (key("::1", 40003, "::1", 5002), 300),
    ]
}

#[test]
fn sock_diag_dumps_of_every_kernel_give_exact_bytes() {
    for (kernel, info_len) in KERNELS {
        let bytes = fs::read(dir(kernel).join("sockdiag-once.nl")).unwrap();
        let (snapshot, stats) = snapshot_from_recording(&bytes, 0);
        assert_eq!(stats.malformed, 0, "{kernel}");
        assert_eq!(
            snapshot.sockets.len(),
            8,
            "{kernel}: 2 listeners + 3 connections"
        );
        for (client, sent) in clients() {
            let sample = snapshot
                .sockets
                .iter()
                .find(|s| s.key == client)
                .unwrap_or_else(|| panic!("{kernel}: no {client}"));
            assert_eq!(sample.state, TcpState::Established);
            assert_eq!(sample.tcp_info.unwrap().len(), info_len, "{kernel}");
            assert_ne!(sample.cookie, 0, "{kernel}");
            let c = cumulative(sample).counters;
            assert_eq!(c.get(Counter::BytesSent), Some(sent), "{kernel} {client}");
            assert!(
                !c.is_approx(Counter::BytesSent),
                "{kernel}: bytes_sent exists since 4.19"
            );
            assert_eq!(c.get(Counter::BytesReceived), Some(0), "{kernel}");
            // 6.7 added total_rto: absent before, not zero.
            assert_eq!(
                c.is_present(Counter::TCPTimeouts),
                info_len >= 248,
                "{kernel}"
            );
            let server = snapshot
                .sockets
                .iter()
                .find(|s| s.key == client.reversed())
                .unwrap();
            assert_eq!(
                cumulative(server).counters.get(Counter::BytesReceived),
                Some(sent)
            );
        }
        let listeners = snapshot
            .sockets
            .iter()
            .filter(|s| s.state == TcpState::Listen)
            .count();
        assert_eq!(listeners, 2, "{kernel}");
    }
}

#[test]
fn proc_net_tcp_of_every_kernel_lists_the_same_sockets() {
    for (kernel, _) in KERNELS {
        let mut sockets: Vec<SocketSample> = Vec::new();
        for name in ["tcp", "tcp6"] {
            let file = fs::File::open(dir(kernel).join(name)).unwrap();
            parse_proc_net_tcp(BufReader::new(file), &mut sockets);
        }
        for (client, _) in clients() {
            let s = sockets.iter().find(|s| s.key == client);
            assert_eq!(
                s.map(|s| s.state),
                Some(TcpState::Established),
                "{kernel} {client}"
            );
        }
        assert_eq!(sockets.len(), 8, "{kernel}");
        assert!(sockets
            .iter()
            .all(|s| s.inode != 0 || s.state == TcpState::TimeWait));
    }
}

#[test]
fn mib_files_of_every_kernel_parse_by_name() {
    let mut per_kernel = Vec::new();
    for (kernel, _) in KERNELS {
        let mut c = SystemCounters::default();
        c.add_header_value_pairs(&fs::read_to_string(dir(kernel).join("snmp")).unwrap());
        c.add_header_value_pairs(&fs::read_to_string(dir(kernel).join("netstat")).unwrap());
        c.add_snmp6(&fs::read_to_string(dir(kernel).join("snmp6")).unwrap());
        for name in [
            "Tcp:InSegs",
            "Tcp:OutSegs",
            "Tcp:ActiveOpens",
            "TcpExt:TW",
            "Ip6:InReceives",
        ] {
            assert!(c.get(name).is_some(), "{kernel}: {name}");
        }
        assert!(
            c.get("Tcp:ActiveOpens").unwrap() >= 3,
            "{kernel}: three connects"
        );
        assert_eq!(c.get("Tcp:CurrEstab"), Some(6), "{kernel}");
        per_kernel.push(c);
    }
    // Newer kernels add fields; the old ones simply lack them.
    assert!(per_kernel[0].get("TcpExt:TCPAOGood").is_none());
    assert!(per_kernel[3].get("TcpExt:TCPAOGood").is_some());
    assert!(per_kernel[3].values.len() > per_kernel[0].values.len());
}

#[test]
fn tcp_info_of_every_length_decodes_what_it_covers() {
    for len in [104usize, 160, 192, 232, 248, 280] {
        let raw = fs::read(format!("testdata/tcp_info/len-{len}.bin")).unwrap();
        assert_eq!(raw.len(), len);
        let info = TcpInfo::from_bytes(&raw).unwrap();
        assert_eq!(info.state(), Some(TcpState::Established as u8), "{len}");
        assert!(info.snd_cwnd().unwrap() > 0, "{len}");
        assert_eq!(info.bytes_acked(), (len >= 136).then_some(20001), "{len}");
        assert_eq!(info.bytes_sent(), (len >= 208).then_some(20000), "{len}");
        assert_eq!(info.data_segs_out().is_some(), len >= 160, "{len}");
        assert_eq!(info.delivered().is_some(), len >= 200, "{len}");
        assert_eq!(info.snd_wnd().is_some(), len >= 232, "{len}");
        assert_eq!(info.total_rto().is_some(), len >= 248, "{len}");

        let mut sample = SocketSample::bare(clients()[1].0, 1, TcpState::Established);
        sample.tcp_info = Some(info);
        let c = cumulative(&sample).counters;
        match len {
            104 => assert_eq!(c.get(Counter::BytesSent), None, "nothing to fill it from"),
            160 | 192 => {
                // Before 4.19: acknowledged bytes stand in, marked approximate.
                assert_eq!(c.get(Counter::BytesSent), Some(20001));
                assert!(c.is_approx(Counter::BytesSent));
            }
            _ => assert!(!c.is_approx(Counter::BytesSent)),
        }
        assert_eq!(c.is_present(Counter::OutSegs), len >= 144, "{len}");
        assert!(c.is_present(Counter::RetransSegs), "{len}");
    }
}
