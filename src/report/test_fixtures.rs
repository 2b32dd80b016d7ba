//! Reports for the renderers' snapshot tests, with every number spelled out:
//! no clock, no hash-map order, so a snapshot changes only when a renderer
//! (or a fixture) does. Each format's tests render the same fixtures, so the
//! `.snap` files of text, table and JSON can be read side by side.
//!
//! Gauge values are all different from each other, so a gauge printed under
//! another's name shows in the snapshot.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::{render, Format, PrecisionSection, RenderOptions, Report, ReportKind};
use crate::aggregate::{Group, GroupKey, Index, Residual, SystemSection};
use crate::counters::{Counter, Counters};
use crate::diff::CountedFrom;
use crate::model::tcp_info::TcpInfo;
use crate::model::{CongestionName, SkMemInfo, SocketKey, SocketSample, StateHistory, TcpState};

/// Renders a whole report to a string.
pub fn render_to_string(report: &Report<'_>, format: Format, zeros: bool) -> String {
    render_with(
        report,
        RenderOptions {
            format,
            zeros,
            ..Default::default()
        },
    )
}

/// Renders a whole report to a string with these options.
pub fn render_with(report: &Report<'_>, options: RenderOptions) -> String {
    let mut out = Vec::new();
    render(report, options, &mut out).expect("writing to a Vec");
    String::from_utf8(out).expect("reports are UTF-8")
}

/// The options of `--top N` in `format`.
pub fn top(format: Format, n: usize) -> RenderOptions {
    RenderOptions {
        format,
        top: Some(n),
        ..Default::default()
    }
}

/// The options of `--time-wait` in `format`.
pub fn time_wait_listed(format: Format) -> RenderOptions {
    RenderOptions {
        format,
        list_time_wait: true,
        ..Default::default()
    }
}

/// The JSON renderer's one line with a line break and indent after each `{`,
/// `[` and `,` and before each `}` and `]` outside strings, and a space after
/// each `:`, so a snapshot reads like the document. Keys keep the renderer's
/// order (serde_json's pretty printer would sort them) and strings are left
/// byte for byte as written.
pub fn indent_json(line: &str) -> String {
    let mut out = String::with_capacity(line.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut chars = line.trim_end_matches('\n').chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                if let Some(close @ ('}' | ']')) = chars.peek().copied() {
                    out.push(close);
                    chars.next();
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            _ => out.push(c),
        }
    }
    out.push('\n');
    out
}

// ---- building blocks -------------------------------------------------------

fn key(local: &str, local_port: u16, remote: &str, remote_port: u16) -> SocketKey {
    SocketKey::new(
        local.parse().expect("fixture address"),
        local_port,
        remote.parse().expect("fixture address"),
        remote_port,
    )
}

fn in_netns(mut key: SocketKey, netns: u64) -> SocketKey {
    key.netns = netns;
    key
}

/// Counters from `(counter, value, approximate)`; counters the MIB only
/// approximates (InSegs, TCPOFOQueue, ...) are marked `~` whatever the flag.
fn counters(values: &[(Counter, u64, bool)]) -> Counters {
    let mut c = Counters::default();
    for &(counter, value, approx) in values {
        c.set(counter, value, approx);
    }
    c
}

fn group(
    key: GroupKey,
    values: &[(Counter, u64, bool)],
    sockets: usize,
    closed: usize,
) -> Group<'static> {
    Group {
        counters: counters(values),
        sockets,
        closed,
        ..Group::empty(key)
    }
}

fn history(states: &[TcpState]) -> StateHistory {
    let mut h = StateHistory::default();
    for s in states {
        h.push(*s);
    }
    h
}

/// Offsets of `struct tcp_info` (include/uapi/linux/tcp.h) that the gauges
/// read, as `model::tcp_info` decodes them.
mod offset {
    pub const RTO: usize = 8;
    pub const SND_MSS: usize = 16;
    pub const UNACKED: usize = 24;
    pub const LOST: usize = 32;
    pub const RETRANS: usize = 36;
    pub const RTT: usize = 68;
    pub const RTTVAR: usize = 72;
    pub const SND_SSTHRESH: usize = 76;
    pub const SND_CWND: usize = 80;
    pub const PACING_RATE: usize = 104;
    pub const NOTSENT_BYTES: usize = 144;
    pub const MIN_RTT: usize = 148;
    pub const DELIVERY_RATE: usize = 160;
    pub const SND_WND: usize = 228;
    pub const RCV_WND: usize = 232;
}

/// A tcp_info payload of `len` bytes (the kernel's length decides which
/// fields exist), zero but for the given fields.
fn tcp_info(len: usize, state: TcpState, u32s: &[(usize, u32)], u64s: &[(usize, u64)]) -> TcpInfo {
    let mut raw = vec![0u8; len];
    raw[0] = state as u8;
    for &(at, v) in u32s {
        raw[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }
    for &(at, v) in u64s {
        raw[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    }
    TcpInfo::from_bytes(&raw).expect("non-empty tcp_info")
}

fn congestion(name: &str) -> Option<CongestionName> {
    CongestionName::from_bytes(name.as_bytes())
}

// ---- sockets ----------------------------------------------------------------

/// The sockets the fixtures' groups point at (groups borrow their sample).
pub struct Samples {
    /// IPv4, ESTAB, a 6.x kernel's full tcp_info (every gauge; ssthresh
    /// still infinite, so left out), cubic, skmem.
    pub v4: SocketSample,
    /// IPv6, CLOSE-WAIT, a 4.6-era 160-byte tcp_info (no delivery rate nor
    /// windows), unlimited pacing (left out), bbr, no skmem.
    pub v6: SocketSample,
    /// The socket of the --onclose report, as last polled.
    pub closed: SocketSample,
    /// A listener with tcp_info: accept queue and its limit.
    pub listener: SocketSample,
    /// Sockets of three namespaces as /proc/net/tcp gives them (no tcp_info).
    pub blue: SocketSample,
    pub own_ns: SocketSample,
    pub unnamed_ns: SocketSample,
    /// Precision mode: a socket opened in the window and one gone.
    pub opened: SocketSample,
    pub time_wait: SocketSample,
    /// Client ends waiting out TIME_WAIT (mini sockets: no tcp_info).
    pub time_waits: [SocketSample; 3],
    /// Ends as close notices give them: an orderly close (the peer's FIN
    /// in recv_q, state CLOSE), an abort that left 64 KiB unsent, and a
    /// refused connect that never measured an RTT (its SYN in send_q).
    pub orderly_close: SocketSample,
    pub aborted: SocketSample,
    pub refused: SocketSample,
    /// A live connect still waiting for its SYN-ACK: no RTT yet.
    pub connecting: SocketSample,
}

pub const NETNS_SELF: u64 = 4026531840;
pub const NETNS_BLUE: u64 = 4026532281;
pub const NETNS_UNNAMED: u64 = 4026532500;
pub const NETNS_DOCKER: u64 = 4026532600;
pub const NETNS_POD: u64 = 4026532700;

static SAMPLES: LazyLock<Samples> = LazyLock::new(|| {
    use offset::*;
    let v4 = SocketSample {
        inode: 51234,
        uid: 33,
        recv_queue: 0,
        send_queue: 1448,
        tcp_info: Some(tcp_info(
            248,
            TcpState::Established,
            &[
                (RTO, 204_000),
                (SND_MSS, 1448),
                (UNACKED, 3),
                (LOST, 1),
                (RETRANS, 2),
                (RTT, 1_500),
                (RTTVAR, 250),
                (SND_SSTHRESH, 0x7fff_ffff),
                (SND_CWND, 10),
                (NOTSENT_BYTES, 4096),
                (MIN_RTT, 900),
                (SND_WND, 64_256),
                (RCV_WND, 131_072),
            ],
            &[(PACING_RATE, 2_896_000), (DELIVERY_RATE, 1_158_400)],
        )),
        congestion: congestion("cubic"),
        skmem: Some(SkMemInfo {
            rmem_alloc: 0,
            rcvbuf: 131_072,
            wmem_alloc: 2_304,
            sndbuf: 87_040,
            drops: Some(0),
        }),
        ..SocketSample::bare(
            key("10.0.0.1", 443, "192.0.2.7", 51000),
            7001,
            TcpState::Established,
        )
    };
    let v6 = SocketSample {
        inode: 51240,
        recv_queue: 1,
        send_queue: 0,
        tcp_info: Some(tcp_info(
            160,
            TcpState::CloseWait,
            &[
                (RTO, 228_000),
                (SND_MSS, 1428),
                (UNACKED, 0),
                (LOST, 0),
                (RETRANS, 0),
                (RTT, 24_000),
                (RTTVAR, 3_000),
                (SND_SSTHRESH, 7),
                (SND_CWND, 8),
                (NOTSENT_BYTES, 0),
                (MIN_RTT, 20_000),
            ],
            &[(PACING_RATE, u64::MAX)],
        )),
        congestion: congestion("bbr"),
        ..SocketSample::bare(
            key("2001:db8::1", 22, "2001:db8::2", 40022),
            7002,
            TcpState::CloseWait,
        )
    };
    let closed = SocketSample {
        inode: 61000,
        recv_queue: 0,
        send_queue: 0,
        tcp_info: Some(tcp_info(
            248,
            TcpState::Established,
            &[
                (RTO, 201_000),
                (SND_MSS, 1460),
                (UNACKED, 0),
                (LOST, 0),
                (RETRANS, 0),
                (RTT, 800),
                (RTTVAR, 120),
                (SND_SSTHRESH, 30),
                (SND_CWND, 42),
                (NOTSENT_BYTES, 0),
                (MIN_RTT, 450),
                (SND_WND, 262_144),
                (RCV_WND, 65_483),
            ],
            &[(PACING_RATE, 150_000_000), (DELIVERY_RATE, 98_000_000)],
        )),
        congestion: congestion("cubic"),
        ..SocketSample::bare(
            key("192.0.2.10", 48122, "198.51.100.5", 443),
            7003,
            TcpState::Established,
        )
    };
    let listener = SocketSample {
        inode: 40001,
        recv_queue: 3,
        send_queue: 4096,
        tcp_info: Some(tcp_info(
            248,
            TcpState::Listen,
            &[(RTO, 1_000_000), (RTT, 77), (SND_CWND, 99)],
            &[],
        )),
        congestion: congestion("cubic"),
        skmem: Some(SkMemInfo {
            rmem_alloc: 0,
            rcvbuf: 131_072,
            wmem_alloc: 0,
            sndbuf: 16_384,
            drops: Some(7),
        }),
        ..SocketSample::bare(key("0.0.0.0", 80, "0.0.0.0", 0), 7004, TcpState::Listen)
    };
    let bare = |key, cookie, state, recv_queue, send_queue| SocketSample {
        recv_queue,
        send_queue,
        ..SocketSample::bare(key, cookie, state)
    };
    Samples {
        v4,
        v6,
        closed,
        listener,
        blue: bare(
            in_netns(key("10.1.0.2", 8080, "10.1.0.1", 33000), NETNS_BLUE),
            0,
            TcpState::Established,
            0,
            120,
        ),
        own_ns: bare(
            in_netns(key("127.0.0.1", 5432, "127.0.0.1", 41000), NETNS_SELF),
            0,
            TcpState::Established,
            5,
            0,
        ),
        unnamed_ns: bare(
            in_netns(key("fd00::5", 9000, "fd00::6", 50500), NETNS_UNNAMED),
            0,
            TcpState::FinWait2,
            0,
            0,
        ),
        opened: SocketSample {
            tcp_info: Some(tcp_info(
                248,
                TcpState::Established,
                &[
                    (RTO, 203_000),
                    (SND_MSS, 1448),
                    (RTT, 2_100),
                    (RTTVAR, 700),
                    (SND_SSTHRESH, 0x7fff_ffff),
                    (SND_CWND, 11),
                    (MIN_RTT, 1_900),
                    (SND_WND, 65_535),
                    (RCV_WND, 64_240),
                ],
                &[(PACING_RATE, 14_000_000), (DELIVERY_RATE, 6_000_000)],
            )),
            ..bare(
                key("10.0.0.1", 39500, "203.0.113.9", 80),
                7010,
                TcpState::Established,
                0,
                0,
            )
        },
        time_wait: bare(
            key("10.0.0.1", 39400, "203.0.113.9", 80),
            7011,
            TcpState::TimeWait,
            0,
            0,
        ),
        time_waits: [39600, 39601, 39602].map(|port| {
            bare(
                key("10.0.0.1", port, "203.0.113.9", 80),
                7020 + u64::from(port),
                TcpState::TimeWait,
                0,
                0,
            )
        }),
        orderly_close: SocketSample {
            tcp_info: Some(tcp_info(
                248,
                TcpState::Close,
                &[
                    (RTO, 204_000),
                    (SND_MSS, 1448),
                    (RTT, 310),
                    (RTTVAR, 95),
                    (SND_SSTHRESH, 0x7fff_ffff),
                    (SND_CWND, 10),
                    (MIN_RTT, 120),
                    (SND_WND, 65_535),
                    (RCV_WND, 65_483),
                ],
                &[(PACING_RATE, 93_000_000), (DELIVERY_RATE, 41_000_000)],
            )),
            ..bare(
                key("10.0.0.1", 39700, "203.0.113.9", 80),
                7030,
                TcpState::Close,
                1,
                0,
            )
        },
        aborted: SocketSample {
            tcp_info: Some(tcp_info(
                248,
                TcpState::Close,
                &[
                    (RTO, 201_000),
                    (SND_MSS, 1448),
                    (UNACKED, 45),
                    (RTT, 2_400),
                    (RTTVAR, 600),
                    (SND_SSTHRESH, 18),
                    (SND_CWND, 20),
                    (NOTSENT_BYTES, 65_538),
                    (MIN_RTT, 1_800),
                ],
                &[(DELIVERY_RATE, 9_000_000)],
            )),
            ..bare(
                key("10.0.0.1", 39701, "203.0.113.9", 80),
                7031,
                TcpState::Close,
                0,
                65_538,
            )
        },
        refused: SocketSample {
            tcp_info: Some(tcp_info(
                248,
                TcpState::Close,
                &[
                    (RTO, 1_000_000),
                    (SND_MSS, 536),
                    (UNACKED, 1),
                    (RTT, 0),
                    (RTTVAR, 250_000),
                    (SND_SSTHRESH, 0x7fff_ffff),
                    (SND_CWND, 10),
                    (MIN_RTT, u32::MAX),
                ],
                &[],
            )),
            ..bare(
                key("10.0.0.1", 39702, "203.0.113.9", 81),
                7032,
                TcpState::Close,
                0,
                1,
            )
        },
        connecting: SocketSample {
            tcp_info: Some(tcp_info(
                248,
                TcpState::SynSent,
                &[
                    (RTO, 1_000_000),
                    (SND_MSS, 536),
                    (UNACKED, 1),
                    (RTT, 0),
                    (RTTVAR, 250_000),
                    (SND_SSTHRESH, 0x7fff_ffff),
                    (SND_CWND, 10),
                    (MIN_RTT, u32::MAX),
                ],
                &[],
            )),
            ..bare(
                key("10.0.0.1", 39703, "203.0.113.9", 82),
                7033,
                TcpState::SynSent,
                0,
                1,
            )
        },
    }
});

fn samples() -> &'static Samples {
    &SAMPLES
}

fn notices() -> Vec<String> {
    vec![
        "1 network namespace(s) not sampled: netns:[4026532999] (permission denied)".into(),
        "--record-trace: /tmp/\"odd\"\\dir:\tPermission denied (os error 13)\nretrying".into(),
    ]
}

// ---- reports -----------------------------------------------------------------

/// index=tuple over a 2.5 s window: an IPv4 and an IPv6 socket with gauges
/// and owners; a few counters are zero (hidden unless --zeros) or
/// approximate. Carries notices (JSON prints them; text and table do not).
pub fn window_tuple() -> Report<'static> {
    use Counter::*;
    let s = samples();
    let v4 = Group {
        sample: Some(&s.v4),
        owner: Some("nginx[812]".into()),
        ..group(
            GroupKey::Tuple(s.v4.key),
            &[
                (BytesSent, 14_480, false),
                (BytesAcked, 11_584, false),
                (BytesReceived, 517, false),
                (BytesRetrans, 1_448, false),
                (DataSegsOut, 10, false),
                (DataSegsIn, 1, false),
                (CurrEstab, 1, false),
                (InSegs, 9, false),
                (OutSegs, 12, false),
                (RetransSegs, 1, false),
                (TCPTimeouts, 0, false),
                (TCPDSACKRecv, 0, false),
                (TCPDelivered, 8, false),
            ],
            1,
            0,
        )
    };
    let v6 = Group {
        sample: Some(&s.v6),
        owner: Some("?".into()),
        ..group(
            GroupKey::Tuple(s.v6.key),
            &[
                (BytesSent, 0, false),
                (BytesReceived, 4_096, false),
                (DataSegsIn, 3, false),
                (PassiveOpens, 1, true),
                (CurrEstab, 1, false),
                (InSegs, 5, false),
                (OutSegs, 4, false),
                (TCPReorderSeen, 0, false),
                (TCPOFOQueue, 2, false),
            ],
            1,
            0,
        )
    };
    Report {
        notices: notices(),
        ..Report::new(
            ReportKind::Window,
            Index::Tuple,
            (10_000, 12_500),
            5,
            vec![v4, v6],
        )
    }
}

/// RTT samples of these values, µs.
fn rtt(samples: &[u32]) -> crate::rtt::RttHistogram {
    let mut s = crate::rtt::RttSamples::default();
    for &us in samples {
        s.record(us);
    }
    let mut h = crate::rtt::RttHistogram::default();
    h.add_samples(&s);
    h
}

/// index=lport over 5 s: port 443 with three sockets (one closed), port 22
/// with one, port 8080 with two, both closed; RTT samples for 443 (four,
/// one far off) and 22 (one), none for 8080 (closed before a poll).
pub fn lport_groups() -> Report<'static> {
    use Counter::*;
    let mut groups = vec![
        group(
            GroupKey::Lport(443),
            &[
                (BytesSent, 30_000, false),
                (BytesReceived, 2_400, false),
                (PassiveOpens, 3, false),
                (EstabResets, 1, false),
                (CurrEstab, 2, false),
                (InSegs, 40, false),
                (OutSegs, 35, false),
                (RetransSegs, 2, false),
            ],
            3,
            1,
        ),
        group(
            GroupKey::Lport(22),
            &[
                (BytesSent, 208, false),
                (BytesReceived, 0, false),
                (PassiveOpens, 1, true),
                (CurrEstab, 1, false),
                (InSegs, 3, false),
                (OutSegs, 2, false),
            ],
            1,
            0,
        ),
        group(
            GroupKey::Lport(8080),
            &[
                (BytesSent, 640, false),
                (BytesReceived, 96, false),
                (PassiveOpens, 2, false),
                (EstabResets, 0, false),
                (CurrEstab, 0, false),
                (InSegs, 8, false),
                (OutSegs, 6, false),
                (RetransSegs, 0, false),
            ],
            2,
            2,
        ),
    ];
    groups[0].rtt = rtt(&[900, 1_100, 1_200, 30_000]);
    groups[1].rtt = rtt(&[300]);
    Report::new(ReportKind::Window, Index::Lport, (0, 5_000), 5, groups)
}

fn closed_group() -> Group<'static> {
    use Counter::*;
    let s = samples();
    Group {
        sample: Some(&s.closed),
        owner: Some("curl[4242]".into()),
        ..group(
            GroupKey::Tuple(s.closed.key),
            &[
                (BytesSent, 1_048_576, false),
                (BytesAcked, 1_048_576, false),
                (BytesReceived, 2_048, false),
                (BytesRetrans, 2_920, false),
                (DataSegsOut, 725, false),
                (DataSegsIn, 2, false),
                (ActiveOpens, 1, false),
                (CurrEstab, 0, false),
                (InSegs, 380, false),
                (OutSegs, 760, false),
                (RetransSegs, 2, false),
                (TCPTimeouts, 1, false),
                (TCPDelivered, 723, false),
            ],
            1,
            1,
        )
    }
}

/// --onclose: one socket's lifetime, last polled 250 ms before it was seen
/// gone.
pub fn close() -> Report<'static> {
    Report::new(
        ReportKind::Close {
            unseen_ms: 250,
            from: CountedFrom::LastPoll { cleared: false },
        },
        Index::Tuple,
        (7_750, 8_000),
        16,
        vec![closed_group()],
    )
}

/// --onclose with precision: the close report tells only events lost, and
/// the socket's states and event-only counters come with it.
pub fn close_with_precision() -> Report<'static> {
    use Counter::*;
    let mut group = closed_group();
    group.history = history(&[
        TcpState::SynSent,
        TcpState::Established,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::Close,
    ]);
    group.counters.set(OutRsts, 0, false);
    group.counters.set(InRsts, 0, false);
    group.counters.set(MessagesSent, 64, false);
    group.counters.set(MessageBytesSent, 1_048_576, false);
    group.counters.set(MessagesReceived, 3, false);
    group.counters.set(MessageBytesReceived, 2_048, false);
    Report {
        precision: Some(precision_section()),
        ..Report::new(
            ReportKind::Close {
                unseen_ms: 40,
                from: CountedFrom::CloseNotice { polled: true },
            },
            Index::Tuple,
            (7_960, 8_000),
            16,
            vec![group],
        )
    }
}

/// --system over 2 s, index=laddr: namespace-wide deltas (some zero, a
/// gauge, IPv6) and the residual per shared counter, one negative.
pub fn system() -> Report<'static> {
    use Counter::*;
    let groups = vec![
        group(
            GroupKey::Laddr("10.0.0.1".parse().expect("address")),
            &[
                (BytesSent, 90_000, false),
                (ActiveOpens, 1, false),
                (PassiveOpens, 2, false),
                (EstabResets, 2, false),
                (CurrEstab, 3, false),
                (InSegs, 90, false),
                (OutSegs, 100, false),
                (RetransSegs, 3, false),
            ],
            4,
            1,
        ),
        group(
            GroupKey::Laddr("2001:db8::1".parse().expect("address")),
            &[
                (BytesSent, 1_200, false),
                (PassiveOpens, 1, true),
                (CurrEstab, 1, false),
                (InSegs, 5, false),
                (OutSegs, 4, false),
            ],
            1,
            0,
        ),
    ];
    let mut section = SystemSection {
        namespaces: 1,
        ..SystemSection::default()
    };
    for (name, value) in [
        ("Ip6:InReceives", 6),
        ("Ip6:OutRequests", 5),
        ("Ip:InReceives", 131),
        ("Ip:OutRequests", 128),
        ("Tcp:ActiveOpens", 1),
        ("Tcp:AttemptFails", 0),
        ("Tcp:CurrEstab", 4),
        ("Tcp:EstabResets", 1),
        ("Tcp:InSegs", 120),
        ("Tcp:OutRsts", 2),
        ("Tcp:OutSegs", 110),
        ("Tcp:PassiveOpens", 4),
        ("Tcp:RetransSegs", 3),
        ("TcpExt:ListenDrops", 0),
        ("TcpExt:TCPSynRetrans", 0),
    ] {
        section.deltas.values.insert(name.to_string(), value);
    }
    // In aggregate::SHARED_WITH_MIB's order; sockets = both groups' sums.
    for (counter, system, sockets) in [
        (InSegs, 120, 95),
        (OutSegs, 110, 104),
        (RetransSegs, 3, 3),
        (ActiveOpens, 1, 1),
        (PassiveOpens, 4, 3),
        (EstabResets, 1, 2),
    ] {
        section.residuals.push(Residual {
            counter,
            system,
            sockets,
            named: Vec::new(),
        });
    }
    // Precision mode saw both resets go out for no socket.
    section.residuals.push(Residual {
        counter: OutRsts,
        system: 2,
        sockets: 0,
        named: Vec::new(),
    });
    section.name_part(OutRsts, crate::aggregate::RESETS_FOR_NO_SOCKET, 2);
    Report {
        system: Some(section),
        ..Report::new(ReportKind::Window, Index::Laddr, (4_000, 6_000), 2, groups)
    }
}

/// What precision mode tells: probes per counter, events in and lost,
/// counts tied to no socket, counts waiting for a socket's tuple, TCP drops
/// by reason, sockets of unsampled namespaces.
pub fn precision_section() -> PrecisionSection {
    use Counter::*;
    PrecisionSection {
        probes: "kprobe+tracepoint".into(),
        sources: vec![
            (
                vec![ActiveOpens, PassiveOpens, AttemptFails, EstabResets],
                "tracepoint sock:inet_sock_set_state".into(),
            ),
            (vec![OutRsts], "tracepoint tcp:tcp_send_reset".into()),
            (vec![InRsts], "tracepoint tcp:tcp_receive_reset".into()),
            (
                vec![RetransSegs],
                "tracepoint tcp:tcp_retransmit_skb".into(),
            ),
            (
                vec![MessagesSent, MessageBytesSent],
                "kprobe tcp_sendmsg".into(),
            ),
            (
                vec![MessagesReceived, MessageBytesReceived],
                "kprobe tcp_recvmsg+tcp_read_skb".into(),
            ),
            (vec![Drops], "tracepoint skb:kfree_skb".into()),
        ],
        events: 1_234,
        events_lost: 5,
        events_undelivered: 2,
        unplaced: counters(&[(OutRsts, 3, false), (InRsts, 0, false), (Drops, 2, false)]),
        unidentified: counters(&[
            (MessagesReceived, 1, false),
            (MessageBytesReceived, 512, false),
        ]),
        unidentified_earlier: counters(&[(MessagesSent, 2, false), (MessageBytesSent, 80, false)]),
        drops_by_reason: BTreeMap::from([
            ("NO_SOCKET".to_string(), 2),
            ("TCP_CSUM".to_string(), 1),
            ("reason 77".to_string(), 4),
        ]),
        last_samples: 2,
        elsewhere_sockets: 4,
        elsewhere: counters(&[(MessagesSent, 6, false), (MessageBytesSent, 9_000, false)]),
        awaiting_notice: 2,
        notices_unheld: 0,
    }
}

/// A precision-mode window, index=tuple: a socket opened in the window (its
/// states, exact opens, event-only counters) and one gone to TIME-WAIT.
pub fn precision_window() -> Report<'static> {
    use Counter::*;
    let s = samples();
    let opened = Group {
        sample: Some(&s.opened),
        history: history(&[TcpState::SynSent, TcpState::Established]),
        ..group(
            GroupKey::Tuple(s.opened.key),
            &[
                (BytesSent, 3_000, false),
                (BytesReceived, 52_000, false),
                (MessagesSent, 3, false),
                (MessagesReceived, 40, false),
                (MessageBytesSent, 3_000, false),
                (MessageBytesReceived, 52_000, false),
                (Drops, 0, false),
                (ActiveOpens, 1, false),
                (OutRsts, 0, false),
                (InRsts, 0, false),
                (CurrEstab, 1, false),
                (InSegs, 38, false),
                (OutSegs, 20, false),
                (RetransSegs, 0, false),
            ],
            1,
            0,
        )
    };
    let gone = Group {
        sample: Some(&s.time_wait),
        history: history(&[
            TcpState::Established,
            TcpState::FinWait1,
            TcpState::FinWait2,
            TcpState::TimeWait,
        ]),
        ..group(
            GroupKey::Tuple(s.time_wait.key),
            &[
                (MessagesSent, 1, false),
                (MessageBytesSent, 75, false),
                (InRsts, 1, false),
                (Drops, 1, false),
                (CurrEstab, 0, false),
            ],
            1,
            1,
        )
    };
    Report {
        precision: Some(precision_section()),
        ..Report::new(
            ReportKind::Window,
            Index::Tuple,
            (20_000, 22_000),
            2,
            vec![opened, gone],
        )
    }
}

fn netns_labels() -> BTreeMap<u64, String> {
    BTreeMap::from([
        (NETNS_SELF, format!("own netns:[{NETNS_SELF}]")),
        (NETNS_BLUE, "blue".to_string()),
    ])
}

fn container_labels() -> BTreeMap<u64, String> {
    BTreeMap::from([
        (NETNS_DOCKER, "docker:3f4e5a6b7c8d".to_string()),
        (
            NETNS_POD,
            "pod:5d2c1a7e-0b3f-4c6d-9e8f-112233445566/containerd:9a8b7c6d5e4f".to_string(),
        ),
    ])
}

/// --namespaces, index=tuple: sockets of a named namespace, of our own, and
/// of one without a label, from /proc/net/tcp (gauges without tcp_info).
pub fn namespaces_tuple() -> Report<'static> {
    use Counter::*;
    let s = samples();
    let socket = |sample: &'static SocketSample, values: &[(Counter, u64, bool)]| Group {
        sample: Some(sample),
        ..group(GroupKey::Tuple(sample.key), values, 1, 0)
    };
    Report {
        netns_labels: netns_labels(),
        container_labels: container_labels(),
        ..Report::new(
            ReportKind::Window,
            Index::Tuple,
            (0, 1_000),
            1,
            vec![
                socket(&s.blue, &[(CurrEstab, 1, false), (OutSegs, 6, false)]),
                socket(&s.own_ns, &[(CurrEstab, 1, false), (InSegs, 4, false)]),
                socket(
                    &s.unnamed_ns,
                    &[(CurrEstab, 0, false), (EstabResets, 1, true)],
                ),
            ],
        )
    }
}

/// index=netns: a named namespace, our own, and one without a label.
pub fn by_netns() -> Report<'static> {
    use Counter::*;
    Report {
        netns_labels: netns_labels(),
        ..Report::new(
            ReportKind::Window,
            Index::Netns,
            (0, 1_000),
            1,
            vec![
                group(
                    GroupKey::Netns(NETNS_BLUE),
                    &[
                        (CurrEstab, 4, false),
                        (InSegs, 400, false),
                        (OutSegs, 380, false),
                    ],
                    5,
                    1,
                ),
                group(
                    GroupKey::Netns(NETNS_SELF),
                    &[
                        (CurrEstab, 2, false),
                        (InSegs, 30, false),
                        (OutSegs, 31, false),
                    ],
                    2,
                    0,
                ),
                group(
                    GroupKey::Netns(NETNS_UNNAMED),
                    &[(CurrEstab, 0, false), (ActiveOpens, 1, true)],
                    1,
                    1,
                ),
            ],
        )
    }
}

/// index=container: a Docker container, a Kubernetes pod's, and a namespace
/// no container holds.
pub fn by_container() -> Report<'static> {
    use Counter::*;
    Report {
        netns_labels: netns_labels(),
        container_labels: container_labels(),
        ..Report::new(
            ReportKind::Window,
            Index::Container,
            (0, 1_000),
            1,
            vec![
                group(
                    GroupKey::Container(NETNS_DOCKER),
                    &[(CurrEstab, 3, false), (BytesSent, 7_000, false)],
                    3,
                    0,
                ),
                group(
                    GroupKey::Container(NETNS_POD),
                    &[(CurrEstab, 1, false), (BytesSent, 500, false)],
                    1,
                    0,
                ),
                group(
                    GroupKey::Container(NETNS_UNNAMED),
                    &[(CurrEstab, 0, false), (BytesSent, 10, false)],
                    1,
                    1,
                ),
            ],
        )
    }
}

/// index=pod: a named pod's container, a named pod's sockets no process
/// holds, and a container no pod names.
pub fn by_pod() -> Report<'static> {
    use crate::source::pods::PodLabel;
    use Counter::*;
    let named = |container: &str| PodLabel {
        namespace: "shop".into(),
        pod: "web-0".into(),
        container: container.into(),
    };
    Report {
        pod_labels: vec![
            named("nginx"),
            named(""),
            PodLabel::unnamed("docker:3f4e5a6b7c8d"),
        ],
        ..Report::new(
            ReportKind::Window,
            Index::Pod,
            (0, 1_000),
            1,
            vec![
                group(
                    GroupKey::Pod(0),
                    &[(CurrEstab, 2, false), (BytesSent, 7_000, false)],
                    2,
                    0,
                ),
                group(
                    GroupKey::Pod(1),
                    &[(CurrEstab, 0, false), (BytesSent, 40, false)],
                    1,
                    1,
                ),
                group(
                    GroupKey::Pod(2),
                    &[(CurrEstab, 1, false), (BytesSent, 500, false)],
                    1,
                    0,
                ),
            ],
        )
    }
}

/// index=process: a process with its command read, one whose command is
/// gone, the sockets whose owner could not be read, those that closed
/// before any poll saw them, and those no process holds.
pub fn by_process() -> Report<'static> {
    use Counter::*;
    Report {
        process_names: BTreeMap::from([(812, "nginx".to_string())]),
        ..Report::new(
            ReportKind::Window,
            Index::Process,
            (0, 1_000),
            1,
            vec![
                group(
                    GroupKey::Process(812),
                    &[(CurrEstab, 12, false), (BytesSent, 120_000, false)],
                    12,
                    0,
                ),
                group(
                    GroupKey::Process(4242),
                    &[(CurrEstab, 1, false), (BytesSent, 640, false)],
                    1,
                    0,
                ),
                group(
                    GroupKey::Process(0),
                    &[(CurrEstab, 0, false), (BytesSent, 64, false)],
                    2,
                    2,
                ),
                group(
                    GroupKey::Process(crate::aggregate::UNSEEN_OWNER),
                    &[(CurrEstab, 0, false), (BytesSent, 50, false)],
                    5,
                    5,
                ),
                group(
                    GroupKey::Process(crate::aggregate::NO_OWNER),
                    &[(CurrEstab, 0, false), (BytesSent, 8, false)],
                    1,
                    0,
                ),
            ],
        )
    }
}

/// --once: a listener (accept queue gauges, ListenDrops) and a connection,
/// counters since creation.
pub fn snapshot_listener() -> Report<'static> {
    use Counter::*;
    let s = samples();
    let listener = Group {
        sample: Some(&s.listener),
        ..group(
            GroupKey::Tuple(s.listener.key),
            &[(CurrEstab, 0, false), (ListenDrops, 7, false)],
            1,
            0,
        )
    };
    let connection = Group {
        sample: Some(&s.v4),
        ..group(
            GroupKey::Tuple(s.v4.key),
            &[
                (BytesSent, 1_000_000, false),
                (BytesAcked, 999_000, false),
                (BytesReceived, 4_200, false),
                (CurrEstab, 1, false),
                (InSegs, 350, false),
                (OutSegs, 700, false),
                (TCPDelivered, 690, false),
            ],
            1,
            0,
        )
    };
    Report::new(
        ReportKind::Snapshot,
        Index::Tuple,
        (3_000, 3_000),
        1,
        vec![listener, connection],
    )
}

/// --once by tuple: a listener, a connection, and three sockets in
/// TIME_WAIT, each a group of nothing else (folded into one line unless
/// listed).
pub fn snapshot_time_wait() -> Report<'static> {
    use Counter::*;
    let s = samples();
    let mut report = snapshot_listener();
    for tw in &s.time_waits {
        report.groups.push(Group {
            sample: Some(tw),
            time_wait: 1,
            only_time_wait: true,
            ..group(GroupKey::Tuple(tw.key), &[(CurrEstab, 0, false)], 1, 0)
        });
    }
    report
}

/// A window by tuple with the ends of sockets, as their close notices
/// leave them: an orderly close, an abort with data unsent, a refused
/// connect; and a live connect that has measured no RTT yet.
pub fn window_closed_sockets() -> Report<'static> {
    use Counter::*;
    let s = samples();
    let closed = |sample: &'static SocketSample, values: &[(Counter, u64, bool)]| Group {
        sample: Some(sample),
        sample_closed: true,
        ..group(GroupKey::Tuple(sample.key), values, 1, 1)
    };
    let groups = vec![
        closed(
            &s.orderly_close,
            &[
                (BytesSent, 300, false),
                (BytesReceived, 4_000, false),
                (ActiveOpens, 1, false),
                (CurrEstab, 0, false),
            ],
        ),
        closed(
            &s.aborted,
            &[
                (BytesSent, 131_072, false),
                (ActiveOpens, 1, false),
                (EstabResets, 1, false),
                (CurrEstab, 0, false),
            ],
        ),
        closed(
            &s.refused,
            &[
                (ActiveOpens, 1, false),
                (AttemptFails, 1, false),
                (CurrEstab, 0, false),
            ],
        ),
        Group {
            sample: Some(&s.connecting),
            ..group(
                GroupKey::Tuple(s.connecting.key),
                &[(ActiveOpens, 1, false), (CurrEstab, 0, false)],
                1,
                0,
            )
        },
    ];
    Report::new(ReportKind::Window, Index::Tuple, (0, 2_000), 3, groups)
}

/// --once with filters that accepted no socket.
pub fn snapshot_filtered_empty() -> Report<'static> {
    Report {
        filtered: true,
        ..Report::new(
            ReportKind::Snapshot,
            Index::Tuple,
            (3_000, 3_000),
            1,
            Vec::new(),
        )
    }
}

/// A window in which no socket did anything.
pub fn window_empty() -> Report<'static> {
    Report::new(ReportKind::Window, Index::Tuple, (0, 1_000), 2, Vec::new())
}
