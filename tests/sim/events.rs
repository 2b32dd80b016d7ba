//! The precision path's view of the simulated lives: the kernel events
//! each life and listener raises (state changes, resets, retransmits,
//! sends, destruction), each socket at a kernel address that the next
//! socket may reuse once it is freed, delivered in batches before each
//! poll's dump: ties between sockets in any order, some lost and counted
//! as perf's PERF_RECORD_LOST counts them.
//!
//! Kernel facts the events follow (Linux 6.x, besides those in `super`):
//! - `tcp_v4_connect` sets SYN_SENT before it picks the local port: that
//!   change's tuple has port 0 unless the socket was bound first.
//! - A child is born LISTEN→SYN_RECV (`inet_csk_clone_lock`) with its
//!   listener's wildcard peer address, then goes SYN_RECV→ESTABLISHED.
//! - `tcp_done` (a reset received, a timer that gave up, the end of a
//!   close, `tcp_time_wait`) sets CLOSE in softirq; `tcp_close` and
//!   `tcp_disconnect` set it from the system call. A SO_LINGER 0 close sets
//!   CLOSE, then sends its reset (not from SYN_SENT), then destroys the
//!   socket with the peer port cleared.
//! - `tcp_receive_reset` comes before the `tcp_done` it causes, with the
//!   socket's cookie; `tcp_destroy_sock` when the socket is freed, with
//!   its cookie and the tuple its close notice has.
//! - An application that shut down its side first closes after a read
//!   returned the end of stream (0).
//! - A blocking `connect()` that failed runs `tcp_disconnect` on a socket
//!   already in CLOSE: no event.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use tcpipstat::model::event::{EventTuple, Probe, Timed, TraceEvent};
use tcpipstat::model::TcpState;

use super::{ms, Close as Ending, Life, Open, Tick, World};

/// How the kernel's events are raised and reach the tracker.
#[derive(Debug, Clone)]
pub struct EventPlan {
    /// The records say whether a change ran in softirq (a tracepoint on
    /// a kernel that has the field); else None.
    pub softirq_told: bool,
    /// Connecting sockets bound to their port first (bit `i % 32` for life
    /// `i`): their first change already has the whole tuple.
    pub bound: u32,
    /// Whether rings overflow at all in this case.
    pub lossy: bool,
    /// Per event (modulo its length): lost when below [`LOSS_BELOW`] in a
    /// lossy case, and the order among events of the same instant.
    pub fates: Vec<u8>,
}

/// Fates below this lose their event (about 5%) in a lossy case.
const LOSS_BELOW: u8 = 13;
/// Kernel addresses of sockets: a slab's objects, reused last freed first.
const SLAB: u64 = 0xffff_8880_1000_0000;
const OBJECT_SIZE: u64 = 0x900;
/// Nanoseconds of monotonic time before the tick 0.
const CLOCK_BASE_NS: u64 = 1_000_000_000_000;

pub fn plan() -> impl Strategy<Value = EventPlan> {
    (
        proptest::bool::weighted(0.8),
        prop_oneof![Just(0u32), any::<u32>()],
        proptest::bool::weighted(0.3),
        proptest::collection::vec(any::<u8>(), 1..64),
    )
        .prop_map(|(softirq_told, bound, lossy, fates)| EventPlan {
            softirq_told,
            bound,
            lossy,
            fates,
        })
}

/// Who raised an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raiser {
    Life(usize),
    Listener(usize),
}

/// One event as the kernel raised it.
#[derive(Debug, Clone)]
struct Raised {
    at: Tick,
    raiser: Raiser,
    event: TraceEvent,
}

/// What the rings gave: one batch per poll (the events before its dump
/// began), and the events lost in the window.
#[derive(Debug, Default)]
pub struct Delivered {
    pub batches: Vec<Vec<Timed>>,
    /// Who raised each event lost inside the window.
    pub lost: Vec<Raiser>,
    /// Kernel addresses: per life, per listener.
    pub life_sk: Vec<u64>,
    pub listener_sk: Vec<u64>,
}

fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// A state change event.
fn change(sk: u64, tuple: EventTuple, old: TcpState, new: TcpState, softirq: bool) -> TraceEvent {
    TraceEvent::StateChange {
        sk,
        tuple,
        old,
        new,
        in_softirq: Some(softirq),
    }
}

impl Life {
    /// The instant the kernel allocates its full socket.
    fn allocated(&self) -> Tick {
        match self.established {
            Some(at) if self.passive => at,
            _ => self.start,
        }
    }

    /// The events this life raises at kernel address `sk`, in order.
    fn raise(&self, sk: u64, bound: bool, out: &mut Vec<(Tick, TraceEvent)>) {
        use TcpState::*;
        let full = EventTuple::of_key(&self.key);
        let cleared = EventTuple {
            remote_port: 0,
            ..full
        };
        let destroyed_tuple = if self.cleared_at.is_some() {
            cleared
        } else {
            full
        };
        let cookie = Some(self.cookie);
        let spec = &self.spec;
        let start = self.start;
        let mut push = |at: Tick, event: TraceEvent| out.push((at, event));
        // The opening.
        if self.passive {
            let born = self.established.expect("accepted");
            let newborn = EventTuple {
                remote: unspecified(full.remote.is_ipv6()),
                ..full
            };
            push(born, change(sk, newborn, Listen, SynRecv, true));
            push(born, change(sk, full, SynRecv, Established, true));
        } else {
            let first = if bound {
                full
            } else {
                EventTuple {
                    local_port: 0,
                    ..full
                }
            };
            push(start, change(sk, first, Close, SynSent, false));
            for at in &self.syns_again {
                push(
                    *at,
                    TraceEvent::Retransmit {
                        sk,
                        tuple: full,
                        syn: true,
                    },
                );
            }
            if let Some(at) = self.established {
                push(at, change(sk, full, SynSent, Established, true));
            }
        }
        // Data: a send call mid-way, a receive that names its cookie
        // (tcp_rcv_space_adjust), and each segment sent again.
        if let Some(established) = self.established {
            let mid = established + (self.data_end - established) / 4 * 2;
            if spec.sent > 0 {
                let bytes = i64::from(spec.sent);
                let tuple = None;
                push(mid, TraceEvent::Sent { sk, tuple, bytes });
            }
            if spec.received > 0 {
                let tuple = full;
                push(mid, TraceEvent::Identity { sk, tuple, cookie });
            }
        }
        for at in self.retransmit_ticks() {
            let retransmit = TraceEvent::Retransmit {
                sk,
                tuple: full,
                syn: false,
            };
            push(at, retransmit);
        }
        let destroy = TraceEvent::Destroyed {
            sk,
            tuple: destroyed_tuple,
            cookie,
        };
        let handshake_end = start + ms(spec.handshake_ms);
        let app = ms(spec.app_ms);
        match spec.open {
            Open::Refused { .. } => {
                let reset = TraceEvent::ReceiveReset {
                    sk,
                    tuple: full,
                    cookie,
                };
                push(handshake_end, reset);
                push(handshake_end, change(sk, full, SynSent, Close, true));
            }
            Open::GaveUp { .. } => {
                push(handshake_end, change(sk, full, SynSent, Close, true));
            }
            Open::Abandoned { .. } => {
                push(handshake_end, change(sk, full, SynSent, Close, false));
            }
            Open::Connect | Open::Accept { .. } => {
                let Some(established) = self.established else {
                    return;
                };
                let closing_from = established + ms(spec.established_ms);
                let closing = ms(spec.closing_ms);
                match spec.close {
                    Ending::OursFirst { .. } => {
                        let acked = closing_from + closing;
                        push(closing_from, change(sk, full, Established, FinWait1, false));
                        push(acked, change(sk, full, FinWait1, FinWait2, true));
                        // tcp_time_wait: tcp_done from FIN_WAIT2.
                        push(acked, change(sk, full, FinWait2, Close, true));
                    }
                    Ending::PeerFirst => {
                        let app_close = closing_from + app;
                        push(closing_from, change(sk, full, Established, CloseWait, true));
                        push(app_close, change(sk, full, CloseWait, LastAck, false));
                        push(app_close + closing, change(sk, full, LastAck, Close, true));
                    }
                    Ending::ShutdownFirst => {
                        let acked = closing_from + closing;
                        push(closing_from, change(sk, full, Established, FinWait1, false));
                        push(acked, change(sk, full, FinWait1, FinWait2, true));
                        push(acked + app, change(sk, full, FinWait2, Close, true));
                        // It closes once a read found the end of stream.
                        let eof = TraceEvent::Received {
                            sk,
                            tuple: None,
                            bytes: 0,
                        };
                        push(acked + app, eof);
                    }
                    Ending::Abort { after_peer_fin } => {
                        let mut from = Established;
                        let mut abort = closing_from;
                        if after_peer_fin {
                            push(closing_from, change(sk, full, Established, CloseWait, true));
                            from = CloseWait;
                            abort = closing_from + app;
                        }
                        push(abort, change(sk, full, from, Close, false));
                        let tuple = Some(full);
                        push(abort, TraceEvent::SendReset { sk, tuple });
                    }
                    Ending::ResetByPeer => {
                        let reset = TraceEvent::ReceiveReset {
                            sk,
                            tuple: full,
                            cookie,
                        };
                        push(closing_from, reset);
                        push(closing_from, change(sk, full, Established, Close, true));
                    }
                    Ending::StillOpen => {}
                }
            }
        }
        if let Some(at) = self.destroyed {
            push(at, destroy);
        }
    }
}

impl World {
    /// Kernel addresses for every life and listener: a freed socket's
    /// address goes to the next socket allocated after it (last freed,
    /// first reused), as a slab does.
    fn addresses(&self) -> (Vec<u64>, Vec<u64>) {
        // (allocated, freed, raiser)
        let mut objects: Vec<(Tick, Option<Tick>, Raiser)> = self
            .lives
            .iter()
            .enumerate()
            .map(|(i, l)| (l.allocated(), l.destroyed, Raiser::Life(i)))
            .collect();
        for (i, l) in self.listeners.iter().enumerate() {
            objects.push((l.opened, Some(l.closed), Raiser::Listener(i)));
        }
        objects.sort_by_key(|(at, _, _)| *at);
        let mut life_sk = vec![0; self.lives.len()];
        let mut listener_sk = vec![0; self.listeners.len()];
        let mut in_use: Vec<(u64, Option<Tick>)> = Vec::new();
        let mut next = SLAB;
        for (at, freed, raiser) in objects {
            // The most recently freed address free by now.
            let reusable = in_use
                .iter()
                .enumerate()
                .filter(|(_, (_, f))| f.is_some_and(|f| f < at))
                .max_by_key(|(_, (_, f))| *f)
                .map(|(i, _)| i);
            let sk = match reusable {
                Some(i) => in_use.swap_remove(i).0,
                None => {
                    next += OBJECT_SIZE;
                    next
                }
            };
            in_use.push((sk, freed));
            match raiser {
                Raiser::Life(i) => life_sk[i] = sk,
                Raiser::Listener(i) => listener_sk[i] = sk,
            }
        }
        (life_sk, listener_sk)
    }

    /// Every event raised, with who raised it, in time order and, at one
    /// instant, each socket's in its own order, sockets in the order the
    /// plan's fates give (rings of different CPUs).
    fn raised(&self, plan: &EventPlan, life_sk: &[u64], listener_sk: &[u64]) -> Vec<Raised> {
        let mut raised = Vec::new();
        let mut own = Vec::new();
        for (i, life) in self.lives.iter().enumerate() {
            let bound = plan.bound & (1 << (life.spec_index % 32)) != 0;
            own.clear();
            life.raise(life_sk[i], bound, &mut own);
            raised.extend(own.drain(..).map(|(at, event)| Raised {
                at,
                raiser: Raiser::Life(i),
                event,
            }));
        }
        for (i, l) in self.listeners.iter().enumerate() {
            let sk = listener_sk[i];
            let tuple = EventTuple::of_key(&l.key);
            let events = [
                (
                    l.opened,
                    change(sk, tuple, TcpState::Close, TcpState::Listen, false),
                ),
                (
                    l.closed,
                    change(sk, tuple, TcpState::Listen, TcpState::Close, false),
                ),
                (
                    l.closed,
                    TraceEvent::Destroyed {
                        sk,
                        tuple,
                        cookie: Some(l.cookie),
                    },
                ),
            ];
            raised.extend(events.into_iter().map(|(at, event)| Raised {
                at,
                raiser: Raiser::Listener(i),
                event,
            }));
        }
        let fate = |n: usize| plan.fates[n % plan.fates.len()];
        let rank = |r: &Raised| {
            let n = match r.raiser {
                Raiser::Life(i) => 2 * i,
                Raiser::Listener(i) => 2 * i + 1,
            };
            fate(
                n.wrapping_mul(31)
                    .wrapping_add(r.at.unsigned_abs() as usize),
            )
        };
        // Stable: each socket's events of one instant stay in their order.
        raised.sort_by_key(|r| (r.at, rank(r), r.raiser_order()));
        if !plan.softirq_told {
            for r in &mut raised {
                if let TraceEvent::StateChange { in_softirq, .. } = &mut r.event {
                    *in_softirq = None;
                }
            }
        }
        raised
    }

    /// The batches the tracker takes before each poll, and what was lost.
    pub fn deliver(&self, plan: &EventPlan) -> Delivered {
        let (life_sk, listener_sk) = self.addresses();
        let raised = self.raised(plan, &life_sk, &listener_sk);
        let mut delivered = Delivered {
            batches: vec![Vec::new(); self.polls.len()],
            lost: Vec::new(),
            life_sk,
            listener_sk,
        };
        for (n, r) in raised.into_iter().enumerate() {
            // The first poll's batch is dropped: no window before it.
            let Some(poll) = self.polls.iter().position(|p| *p > r.at) else {
                continue;
            };
            if poll == 0 {
                continue;
            }
            let fate = plan.fates[(n * 7 + 3) % plan.fates.len()] ^ (n as u8);
            if plan.lossy && fate < LOSS_BELOW {
                delivered.lost.push(r.raiser);
                continue;
            }
            delivered.batches[poll].push(Timed {
                time_ns: CLOCK_BASE_NS.saturating_add_signed(r.at * 500_000),
                probe: Probe::Tracepoint,
                event: r.event,
                pid: None,
            });
        }
        delivered
    }
}

impl Raised {
    /// Keeps one raiser's events together at one instant.
    fn raiser_order(&self) -> (u8, usize) {
        match self.raiser {
            Raiser::Life(i) => (0, i),
            Raiser::Listener(i) => (1, i),
        }
    }
}
