//! Length-tolerant decoding of the kernel's `struct tcp_info`.
//!
//! The struct has grown from 104 bytes (2.6) to 280 (6.18). A field is present
//! only when the payload the kernel sent covers it; beyond that it is absent,
//! never zero. The raw bytes are kept (up to the last field this code knows)
//! and each accessor reads its field on demand, so a dump decodes nothing it
//! does not report. Offsets follow `include/uapi/linux/tcp.h`.

/// Bytes of tcp_info this code knows (through `tcpi_total_rto_time`, 6.7).
/// Longer payloads (6.18's AccECN counters) are truncated to this.
pub const KNOWN_LEN: usize = 248;

/// One socket's tcp_info as the kernel sent it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    raw: [u8; KNOWN_LEN],
    /// Length the kernel sent (may exceed KNOWN_LEN).
    len: u16,
}

impl std::fmt::Debug for TcpInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpInfo")
            .field("len", &self.len)
            .field("state", &self.state())
            .field("bytes_acked", &self.bytes_acked())
            .field("segs_out", &self.segs_out())
            .finish_non_exhaustive()
    }
}

macro_rules! fields {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty = $offset:expr ;)*) => {
        impl TcpInfo {
            $(
                $(#[$doc])*
                #[inline]
                pub fn $name(&self) -> Option<$ty> {
                    const SIZE: usize = std::mem::size_of::<$ty>();
                    if (self.len as usize) < $offset + SIZE {
                        return None;
                    }
                    let mut bytes = [0u8; SIZE];
                    bytes.copy_from_slice(&self.raw[$offset..$offset + SIZE]);
                    Some(<$ty>::from_ne_bytes(bytes))
                }
            )*
        }
    };
}

fields! {
    state: u8 = 0;
    ca_state: u8 = 1;
    retransmits: u8 = 2;
    probes: u8 = 3;
    backoff: u8 = 4;
    options: u8 = 5;
    /// Retransmission timeout, µs.
    rto: u32 = 8;
    ato: u32 = 12;
    snd_mss: u32 = 16;
    rcv_mss: u32 = 20;
    /// For a listener: the accept queue length.
    unacked: u32 = 24;
    /// For a listener: the accept queue limit (backlog).
    sacked: u32 = 28;
    lost: u32 = 32;
    retrans: u32 = 36;
    last_data_sent: u32 = 44;
    last_data_recv: u32 = 52;
    pmtu: u32 = 60;
    rcv_ssthresh: u32 = 64;
    /// Smoothed RTT, µs.
    rtt: u32 = 68;
    rttvar: u32 = 72;
    snd_ssthresh: u32 = 76;
    snd_cwnd: u32 = 80;
    advmss: u32 = 84;
    reordering: u32 = 88;
    rcv_rtt: u32 = 92;
    rcv_space: u32 = 96;
    total_retrans: u32 = 100;
    pacing_rate: u64 = 104;
    max_pacing_rate: u64 = 112;
    bytes_acked: u64 = 120;
    bytes_received: u64 = 128;
    segs_out: u32 = 136;
    segs_in: u32 = 140;
    notsent_bytes: u32 = 144;
    min_rtt: u32 = 148;
    data_segs_in: u32 = 152;
    data_segs_out: u32 = 156;
    delivery_rate: u64 = 160;
    busy_time: u64 = 168;
    rwnd_limited: u64 = 176;
    sndbuf_limited: u64 = 184;
    delivered: u32 = 192;
    delivered_ce: u32 = 196;
    bytes_sent: u64 = 200;
    bytes_retrans: u64 = 208;
    dsack_dups: u32 = 216;
    reord_seen: u32 = 220;
    rcv_ooopack: u32 = 224;
    snd_wnd: u32 = 228;
    rcv_wnd: u32 = 232;
    rehash: u32 = 236;
    total_rto: u16 = 240;
    total_rto_recoveries: u16 = 242;
    total_rto_time: u32 = 244;
}

impl TcpInfo {
    /// Decodes any payload length; `None` only for an empty payload.
    pub fn from_bytes(payload: &[u8]) -> Option<TcpInfo> {
        if payload.is_empty() {
            return None;
        }
        let kept = payload.len().min(KNOWN_LEN);
        let mut raw = [0u8; KNOWN_LEN];
        raw[..kept].copy_from_slice(&payload[..kept]);
        Some(TcpInfo {
            raw,
            len: payload.len().min(u16::MAX as usize) as u16,
        })
    }

    /// Whether `other` is this same tcp_info but for the clocks that tick
    /// on an idle socket (ms since the last data and ACK, bytes 44..60):
    /// nothing a counter or a gauge reads moved.
    pub fn same_but_idle_clocks(&self, other: &TcpInfo) -> bool {
        const CLOCKS: std::ops::Range<usize> = 44..60;
        self.len == other.len
            && self.raw[..CLOCKS.start] == other.raw[..CLOCKS.start]
            && self.raw[CLOCKS.end..] == other.raw[CLOCKS.end..]
    }

    /// Sets `slot` to the tcp_info in `payload`, as [`TcpInfo::from_bytes`]
    /// would, but in place: a dump of 100k sockets copies each one once.
    pub fn read_into(slot: &mut Option<TcpInfo>, payload: &[u8]) {
        if payload.is_empty() {
            *slot = None;
            return;
        }
        let info = slot.get_or_insert(TcpInfo {
            raw: [0; KNOWN_LEN],
            len: 0,
        });
        let kept = payload.len().min(KNOWN_LEN);
        info.raw[..kept].copy_from_slice(&payload[..kept]);
        info.raw[kept..].fill(0);
        info.len = payload.len().min(u16::MAX as usize) as u16;
    }

    /// The payload length the kernel sent.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A tcp_info of 6.x's 232 bytes in `state`, whose other fields
    /// `fill` writes at their offsets, for tests that build samples.
    #[cfg(test)]
    pub(crate) fn built(
        state: crate::model::TcpState,
        fill: impl FnOnce(&mut RawFields),
    ) -> TcpInfo {
        let mut fields = RawFields(vec![0u8; 232]);
        fields.0[0] = state as u8;
        fill(&mut fields);
        TcpInfo::from_bytes(&fields.0).expect("a non-empty payload")
    }

    /// Sets the smoothed RTT (µs), for tests that build samples.
    #[cfg(test)]
    pub(crate) fn set_rtt(&mut self, us: u32) {
        self.raw[68..72].copy_from_slice(&us.to_ne_bytes());
        self.len = self.len.max(72);
    }
}

/// Raw tcp_info bytes a test writes field by field (see [`TcpInfo::built`]).
#[cfg(test)]
pub(crate) struct RawFields(Vec<u8>);

#[cfg(test)]
impl RawFields {
    pub(crate) fn u8(&mut self, offset: usize, value: u8) -> &mut RawFields {
        self.0[offset] = value;
        self
    }

    pub(crate) fn u32(&mut self, offset: usize, value: u32) -> &mut RawFields {
        self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
        self
    }

    pub(crate) fn u64(&mut self, offset: usize, value: u64) -> &mut RawFields {
        self.0[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(len: usize) -> Vec<u8> {
        // Each u32 slot holds its own offset, so a misplaced read shows.
        let mut bytes = vec![0u8; len];
        for offset in (8..len.saturating_sub(3)).step_by(4) {
            bytes[offset..offset + 4].copy_from_slice(&(offset as u32).to_ne_bytes());
        }
        bytes[0] = 1;
        bytes
    }

    #[test]
    fn short_tcp_info_leaves_new_fields_absent() {
        let info = TcpInfo::from_bytes(&blob(104)).unwrap();
        assert_eq!(info.state(), Some(1));
        assert_eq!(info.total_retrans(), Some(100));
        assert_eq!(info.pacing_rate(), None);
        assert_eq!(info.bytes_acked(), None);
        assert_eq!(info.segs_out(), None);
    }

    #[test]
    fn each_kernel_length_covers_exactly_its_fields() {
        let cases: [(usize, bool, bool, bool, bool, bool); 6] = [
            // len, segs_out, data_segs_out, delivered, bytes_sent, snd_wnd
            (104, false, false, false, false, false),
            (160, true, true, false, false, false),
            (192, true, true, false, false, false),
            (232, true, true, true, true, true),
            (248, true, true, true, true, true),
            (280, true, true, true, true, true),
        ];
        for (len, segs, data, delivered, sent, wnd) in cases {
            let info = TcpInfo::from_bytes(&blob(len)).unwrap();
            assert_eq!(info.segs_out().is_some(), segs, "len {len}");
            assert_eq!(info.data_segs_out().is_some(), data, "len {len}");
            assert_eq!(info.delivered().is_some(), delivered, "len {len}");
            assert_eq!(info.bytes_sent().is_some(), sent, "len {len}");
            assert_eq!(info.snd_wnd().is_some(), wnd, "len {len}");
            assert_eq!(info.total_rto().is_some(), len >= 248, "len {len}");
            assert_eq!(info.len(), len);
        }
    }

    #[test]
    fn fields_read_from_their_offsets() {
        let info = TcpInfo::from_bytes(&blob(280)).unwrap();
        assert_eq!(info.segs_out(), Some(136));
        assert_eq!(info.data_segs_out(), Some(156));
        assert_eq!(info.snd_wnd(), Some(228));
        assert_eq!(info.total_rto_time(), Some(244));
    }

    #[test]
    fn odd_lengths_never_panic() {
        for len in 0..300 {
            let bytes = vec![0xAAu8; len];
            if let Some(info) = TcpInfo::from_bytes(&bytes) {
                let _ = (info.bytes_retrans(), info.total_rto(), info.rcv_wnd());
            }
        }
    }

    #[test]
    fn read_into_gives_what_from_bytes_gives_over_any_earlier_value() {
        for len in [0usize, 1, 10, 104, 232, 248, 280] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            for earlier in [None, TcpInfo::from_bytes(&[0xff; 280])] {
                let mut slot = earlier;
                TcpInfo::read_into(&mut slot, &bytes);
                assert_eq!(slot, TcpInfo::from_bytes(&bytes), "len {len}");
            }
        }
    }

    #[test]
    fn only_the_idle_clocks_may_differ_for_the_same_but_idle_clocks() {
        let base: Vec<u8> = (0..232).map(|i| i as u8).collect();
        let info = TcpInfo::from_bytes(&base).unwrap();
        for at in 0..232 {
            let mut other = base.clone();
            other[at] ^= 1;
            let same = info.same_but_idle_clocks(&TcpInfo::from_bytes(&other).unwrap());
            assert_eq!(same, (44..60).contains(&at), "byte {at}");
        }
        let shorter = TcpInfo::from_bytes(&base[..200]).unwrap();
        assert!(!info.same_but_idle_clocks(&shorter));
    }
}
