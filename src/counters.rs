//! The counters tcpipstat reports, their MIB names and sections, whether each
//! is exact, and how each is read from one socket's sample. A [`Counters`]
//! value is a fixed array plus presence and approximation bits, so summing
//! and diffing allocate nothing.

use crate::model::{SocketSample, TcpState};

/// The seed's report blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Socket,
    Tcp,
    TcpExt,
}

impl Section {
    pub const ALL: [Section; 3] = [Section::Socket, Section::Tcp, Section::TcpExt];

    pub fn name(self) -> &'static str {
        match self {
            Section::Socket => "Socket",
            Section::Tcp => "Tcp",
            Section::TcpExt => "TcpExt",
        }
    }
}

macro_rules! counters {
    ($( $variant:ident, $section:ident, $approx:expr; )*) => {
        /// One reported counter; its name is the MIB's (and the JSON key).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Counter { $( $variant, )* }

        impl Counter {
            pub const ALL: &'static [Counter] = &[ $( Counter::$variant, )* ];

            pub fn name(self) -> &'static str {
                match self { $( Counter::$variant => stringify!($variant), )* }
            }

            pub fn section(self) -> Section {
                match self { $( Counter::$variant => Section::$section, )* }
            }

            /// Whether this counter is always an approximation of the MIB
            /// counter of the same name (see the design notes for why).
            pub fn always_approx(self) -> bool {
                match self { $( Counter::$variant => $approx, )* }
            }
        }
    };
}

counters! {
    BytesSent, Socket, false;
    BytesAcked, Socket, false;
    BytesReceived, Socket, false;
    BytesRetrans, Socket, false;
    DataSegsOut, Socket, false;
    DataSegsIn, Socket, false;
    MessagesSent, Socket, false;
    MessagesReceived, Socket, false;
    MessageBytesSent, Socket, false;
    MessageBytesReceived, Socket, false;
    Drops, Socket, false;
    ActiveOpens, Tcp, false;
    PassiveOpens, Tcp, false;
    AttemptFails, Tcp, false;
    EstabResets, Tcp, false;
    OutRsts, Tcp, false;
    InRsts, Tcp, false;
    CurrEstab, Tcp, false;
    InSegs, Tcp, true;
    OutSegs, Tcp, false;
    RetransSegs, Tcp, false;
    TCPTimeouts, TcpExt, false;
    TCPSynRetrans, TcpExt, false;
    TCPDSACKRecv, TcpExt, true;
    TCPReorderSeen, TcpExt, false;
    TCPOFOQueue, TcpExt, true;
    TCPDelivered, TcpExt, false;
    TCPDeliveredCE, TcpExt, false;
    ListenDrops, TcpExt, false;
    ListenOverflows, TcpExt, false;
    DelayedACKs, TcpExt, true;
}

pub const COUNTER_COUNT: usize = Counter::ALL.len();

impl Counter {
    /// Counters only kernel events can fill (precision mode).
    pub fn is_event_only(self) -> bool {
        matches!(
            self,
            Counter::OutRsts
                | Counter::InRsts
                | Counter::TCPSynRetrans
                | Counter::MessagesSent
                | Counter::MessagesReceived
                | Counter::MessageBytesSent
                | Counter::MessageBytesReceived
                | Counter::Drops
                | Counter::DelayedACKs
        )
    }

    /// Counters that come from state changes, not from tcp_info.
    pub fn is_state_event(self) -> bool {
        matches!(
            self,
            Counter::ActiveOpens
                | Counter::PassiveOpens
                | Counter::AttemptFails
                | Counter::EstabResets
                | Counter::CurrEstab
        )
    }

    /// The counters a socket's opening and closing add (CurrEstab, a
    /// gauge, aside).
    pub const STATE_EVENTS: [Counter; 4] = [
        Counter::ActiveOpens,
        Counter::PassiveOpens,
        Counter::AttemptFails,
        Counter::EstabResets,
    ];
}

/// Values of every counter with which are present and which approximate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    values: [u64; COUNTER_COUNT],
    present: u32,
    approx: u32,
}

const _: () = assert!(COUNTER_COUNT <= 32);

/// [`Counters`] that take 16 bytes while every value is zero (an idle
/// socket's window: most of a large host's), their values boxed once one
/// is not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactCounters {
    present: u32,
    approx: u32,
    values: Option<Box<[u64; COUNTER_COUNT]>>,
}

impl CompactCounters {
    pub fn counts(&self) -> Counters {
        Counters {
            values: self
                .values
                .as_deref()
                .copied()
                .unwrap_or([0; COUNTER_COUNT]),
            present: self.present,
            approx: self.approx,
        }
    }

    pub fn add(&mut self, other: &Counters) {
        self.present |= other.present;
        self.approx |= other.approx;
        if other.values.iter().all(|v| *v == 0) {
            return;
        }
        let values = self
            .values
            .get_or_insert_with(|| Box::new([0; COUNTER_COUNT]));
        for (mine, theirs) in values.iter_mut().zip(other.values.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
    }

    pub fn bump_approx(&mut self, counter: Counter, amount: u64) {
        let mut one = Counters::default();
        one.bump_approx(counter, amount);
        self.add(&one);
    }

    pub fn clear(&mut self) {
        *self = CompactCounters::default();
    }

    /// Whether any value is not zero.
    pub fn has_values(&self) -> bool {
        self.values.is_some()
    }

    /// Adds counters with these marks (present, approximate) and only zero
    /// values.
    pub fn add_marks(&mut self, (present, approx): (u32, u32)) {
        self.present |= present;
        self.approx |= approx;
    }
}

impl From<Counters> for CompactCounters {
    fn from(counters: Counters) -> CompactCounters {
        let mut compact = CompactCounters::default();
        compact.add(&counters);
        compact
    }
}

impl Counters {
    fn bit(counter: Counter) -> u32 {
        1 << counter as u32
    }

    /// Which counters are present and which approximate, as bit sets.
    pub fn marks(&self) -> (u32, u32) {
        (self.present, self.approx)
    }

    pub fn get(&self, counter: Counter) -> Option<u64> {
        (self.present & Self::bit(counter) != 0).then_some(self.values[counter as usize])
    }

    /// The value, or 0 when absent.
    pub fn value(&self, counter: Counter) -> u64 {
        self.values[counter as usize]
    }

    pub fn is_present(&self, counter: Counter) -> bool {
        self.present & Self::bit(counter) != 0
    }

    pub fn is_approx(&self, counter: Counter) -> bool {
        self.approx & Self::bit(counter) != 0
    }

    pub fn set(&mut self, counter: Counter, value: u64, approx: bool) {
        self.values[counter as usize] = value;
        self.present |= Self::bit(counter);
        if approx || counter.always_approx() {
            self.approx |= Self::bit(counter);
        }
    }

    /// Sets a counter, its approximation mark to `approx` whatever it was.
    pub fn replace(&mut self, counter: Counter, value: u64, approx: bool) {
        self.approx &= !Self::bit(counter);
        self.set(counter, value, approx);
    }

    /// Adds `amount` to a counter inferred rather than seen (an open
    /// guessed from a socket's appearance), marking it approximate.
    pub fn bump_approx(&mut self, counter: Counter, amount: u64) {
        let old = self.value(counter);
        self.set(counter, old.saturating_add(amount), true);
    }

    /// Adds `amount` to a counter, marking it present.
    pub fn bump(&mut self, counter: Counter, amount: u64) {
        let old = self.value(counter);
        let approx = self.is_approx(counter);
        self.set(counter, old.saturating_add(amount), approx);
    }

    /// Takes a counter out: absent, 0, not approximate.
    pub fn remove(&mut self, counter: Counter) {
        self.values[counter as usize] = 0;
        self.present &= !Self::bit(counter);
        self.approx &= !Self::bit(counter);
    }

    /// Marks a counter present (its value unchanged).
    pub fn mark_present(&mut self, counter: Counter) {
        let value = self.value(counter);
        let approx = self.is_approx(counter);
        self.set(counter, value, approx);
    }

    /// Marks a counter present and approximate (its value unchanged).
    pub fn mark_approx(&mut self, counter: Counter) {
        let value = self.value(counter);
        self.set(counter, value, true);
    }

    pub fn add(&mut self, other: &Counters) {
        for (mine, theirs) in self.values.iter_mut().zip(other.values.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        self.present |= other.present;
        self.approx |= other.approx;
    }

    /// Takes `other`'s values out of these (at most down to 0), marks
    /// unchanged: what a later, fuller count covers already.
    pub fn take_out(&mut self, other: &Counters) {
        for (mine, theirs) in self.values.iter_mut().zip(other.values.iter()) {
            *mine = mine.saturating_sub(*theirs);
        }
    }

    /// Present counters in report order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL
            .iter()
            .filter(|c| self.is_present(**c))
            .map(|c| (*c, self.value(*c)))
    }

    pub fn is_all_zero(&self) -> bool {
        self.iter().all(|(_, v)| v == 0)
    }

    /// How much happened, for sorting groups by activity.
    pub fn activity(&self) -> u64 {
        [
            Counter::BytesSent,
            Counter::BytesReceived,
            Counter::InSegs,
            Counter::OutSegs,
        ]
        .iter()
        .map(|c| self.value(*c))
        .fold(0u64, u64::saturating_add)
        .saturating_add(
            (self.value(Counter::ActiveOpens))
                .saturating_add(self.value(Counter::PassiveOpens))
                .saturating_mul(1000),
        )
    }

    pub fn clear(&mut self) {
        *self = Counters::default();
    }
}

/// How wide a kernel counter is, for wrap-aware differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    W16,
    W32,
    W64,
}

/// A socket's cumulative counters as the kernel keeps them (since the
/// socket's creation), before any diffing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cumulative {
    pub counters: Counters,
}

/// The width of each cumulative counter that tcp_info carries.
pub fn width(counter: Counter) -> Width {
    match counter {
        Counter::BytesSent
        | Counter::BytesAcked
        | Counter::BytesReceived
        | Counter::BytesRetrans => Width::W64,
        Counter::TCPTimeouts => Width::W16,
        _ => Width::W32,
    }
}

/// Reads a socket's cumulative counters from its sample: what tcp_info and
/// skmeminfo give, for the fields the kernel's struct length covers.
pub fn cumulative(sample: &SocketSample) -> Cumulative {
    let mut c = Counters::default();
    if let Some(info) = &sample.tcp_info {
        let mut put = |counter: Counter, value: Option<u64>, approx: bool| {
            if let Some(v) = value {
                c.set(counter, v, approx);
            }
        };
        match info.bytes_sent() {
            Some(sent) => put(Counter::BytesSent, Some(sent), false),
            // Before 4.19 only acknowledged bytes are known.
            None => put(Counter::BytesSent, info.bytes_acked(), true),
        }
        put(Counter::BytesAcked, info.bytes_acked(), false);
        // The peer's FIN takes a sequence number that bytes_received counts.
        let fin = u64::from(sample.state.peer_fin_received());
        put(
            Counter::BytesReceived,
            info.bytes_received().map(|b| b.saturating_sub(fin)),
            false,
        );
        put(Counter::BytesRetrans, info.bytes_retrans(), false);
        put(
            Counter::DataSegsOut,
            info.data_segs_out().map(u64::from),
            false,
        );
        put(
            Counter::DataSegsIn,
            info.data_segs_in().map(u64::from),
            false,
        );
        let segs_in = info.segs_in().map(u64::from);
        // The MIB's OutSegs leaves retransmitted segments out; a socket's
        // segs_out counts them (and total_retrans counts them apart).
        let segs_out = match (info.segs_out(), info.total_retrans()) {
            (Some(out), Some(again)) => Some(u64::from(out.wrapping_sub(again))),
            (out, _) => out.map(u64::from),
        };
        put(Counter::InSegs, segs_in, true);
        put(Counter::OutSegs, segs_out, false);
        put(
            Counter::RetransSegs,
            info.total_retrans().map(u64::from),
            false,
        );
        put(Counter::TCPTimeouts, info.total_rto().map(u64::from), false);
        put(
            Counter::TCPDSACKRecv,
            info.dsack_dups().map(u64::from),
            true,
        );
        put(
            Counter::TCPReorderSeen,
            info.reord_seen().map(u64::from),
            false,
        );
        put(
            Counter::TCPOFOQueue,
            info.rcv_ooopack().map(u64::from),
            true,
        );
        put(
            Counter::TCPDelivered,
            info.delivered().map(u64::from),
            false,
        );
        put(
            Counter::TCPDeliveredCE,
            info.delivered_ce().map(u64::from),
            false,
        );
    }
    if sample.state == TcpState::Listen {
        if let Some(drops) = sample.skmem.and_then(|m| m.drops) {
            // sk_drops: an overflow at the third ACK counts twice there,
            // once in the MIB (windows take the namespace's count instead).
            c.set(Counter::ListenDrops, u64::from(drops), true);
        }
    }
    Cumulative { counters: c }
}

/// Why a difference could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WentBackwards;

/// `now - before` per counter both have, modulo each counter's width. A
/// narrow counter that moved back by less than half its range went
/// backwards (a kernel oddity, or a reused socket) rather than wrapping.
pub fn difference(now: &Cumulative, before: &Cumulative) -> Result<Counters, WentBackwards> {
    let mut delta = Counters::default();
    for (counter, new) in now.counters.iter() {
        let Some(old) = before.counters.get(counter) else {
            continue;
        };
        let d = match width(counter) {
            Width::W64 => new.checked_sub(old).ok_or(WentBackwards)?,
            Width::W32 => modular(new, old, 32)?,
            Width::W16 => modular(new, old, 16)?,
        };
        delta.set(counter, d, now.counters.is_approx(counter));
    }
    Ok(delta)
}

fn modular(new: u64, old: u64, bits: u32) -> Result<u64, WentBackwards> {
    let range = 1u64 << bits;
    let d = new.wrapping_sub(old) & (range - 1);
    if new < old && d >= range / 2 {
        return Err(WentBackwards);
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_listed_section_by_section_in_section_order() {
        let order: Vec<usize> = Counter::ALL
            .iter()
            .map(|c| Section::ALL.iter().position(|s| *s == c.section()).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    }

    fn cum(pairs: &[(Counter, u64)]) -> Cumulative {
        let mut c = Counters::default();
        for (k, v) in pairs {
            c.set(*k, *v, false);
        }
        Cumulative { counters: c }
    }

    #[test]
    fn thirty_two_bit_counters_wrap() {
        let before = cum(&[(Counter::OutSegs, u32::MAX as u64 - 4)]);
        let now = cum(&[(Counter::OutSegs, 5)]);
        assert_eq!(
            difference(&now, &before).unwrap().get(Counter::OutSegs),
            Some(10)
        );
    }

    #[test]
    fn sixteen_bit_rto_count_wraps() {
        let before = cum(&[(Counter::TCPTimeouts, 65_535)]);
        let now = cum(&[(Counter::TCPTimeouts, 1)]);
        assert_eq!(
            difference(&now, &before).unwrap().get(Counter::TCPTimeouts),
            Some(2)
        );
    }

    #[test]
    fn backwards_counter_is_not_a_wrap() {
        let before = cum(&[(Counter::OutSegs, 1000)]);
        let now = cum(&[(Counter::OutSegs, 10)]);
        assert_eq!(difference(&now, &before), Err(WentBackwards));
        let before = cum(&[(Counter::BytesSent, 1000)]);
        let now = cum(&[(Counter::BytesSent, 999)]);
        assert_eq!(difference(&now, &before), Err(WentBackwards));
    }

    #[test]
    fn counter_absent_on_either_side_is_absent_in_delta() {
        let before = cum(&[(Counter::OutSegs, 1)]);
        let now = cum(&[(Counter::OutSegs, 3), (Counter::BytesSent, 9)]);
        let d = difference(&now, &before).unwrap();
        assert_eq!(d.get(Counter::BytesSent), None);
        assert_eq!(d.get(Counter::OutSegs), Some(2));
    }

    #[test]
    fn always_approximate_counters_are_marked() {
        let mut c = Counters::default();
        c.set(Counter::InSegs, 1, false);
        c.set(Counter::OutSegs, 1, false);
        assert!(c.is_approx(Counter::InSegs));
        assert!(!c.is_approx(Counter::OutSegs));
    }
}
