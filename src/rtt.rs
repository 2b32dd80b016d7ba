//! Smoothed-RTT histograms: each open socket's `tcpi_rtt` once per poll,
//! and the final value a close notice carries, counted in fixed buckets.
//! A socket keeps its window's samples in an [`RttSamples`] (u32 counts,
//! 88 bytes with its handshake); groups, reports and the exporter add them into an
//! [`RttHistogram`] (u64 counts, as a Prometheus histogram's cumulative
//! counts need). Both are fixed arrays: nothing grows with the samples.
//! Handshake times ride along: a connect's SYN to its ESTABLISHED, timed
//! by the kernel's state-change events (`--precision`), one per socket
//! life, kept in [`RttSamples`] and counted in [`RttHistogram`]'s
//! `handshake` histogram with the same buckets.
//! Pure: no I/O.

/// Upper bounds of the finite buckets, µs (Prometheus' `le`: a sample
/// equal to a bound is in that bucket); one more bucket, +Inf, follows.
/// From a loopback or same-rack path (50 µs) to a satellite or a
/// retransmission-inflated one (5 s), roughly 1-2.5-5 per decade.
pub const BOUNDS_US: [u32; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000,
];

/// Buckets, +Inf included.
pub const BUCKETS: usize = BOUNDS_US.len() + 1;

/// The bucket a sample of `us` falls in.
pub fn bucket_of(us: u32) -> usize {
    BOUNDS_US.partition_point(|&bound| bound < us)
}

/// A bucket's upper bound in seconds, `None` for +Inf.
pub fn bound_seconds(bucket: usize) -> Option<f64> {
    BOUNDS_US.get(bucket).map(|&us| f64::from(us) / 1e6)
}

/// One socket's samples of a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RttSamples {
    counts: [u32; BUCKETS],
    sum_us: u64,
    /// Smallest and largest sample (both 0 while there is none).
    min_us: u32,
    max_us: u32,
    /// Its connect's handshake, µs, in the window it completed (0: none).
    handshake_us: u32,
}

impl RttSamples {
    /// Takes one sample; 0 (no measurement yet: a connect under way, a
    /// listener, counters an abort cleared) is none and is left out.
    pub fn record(&mut self, us: u32) {
        if us == 0 {
            return;
        }
        let bucket = &mut self.counts[bucket_of(us)];
        // A socket's window of 2^32 polls: saturating is as good as exact.
        *bucket = bucket.saturating_add(1);
        if self.is_empty() || us < self.min_us {
            self.min_us = us;
        }
        self.max_us = self.max_us.max(us);
        self.sum_us = self.sum_us.saturating_add(u64::from(us));
    }

    /// Takes a sample's smoothed RTT, if it has a tcp_info.
    pub fn record_sample(&mut self, sample: &crate::model::SocketSample) {
        if sample.state == crate::model::TcpState::Listen {
            return;
        }
        if let Some(us) = sample.tcp_info.as_ref().and_then(|i| i.rtt()) {
            self.record(us);
        }
    }

    /// A socket's single sample (a snapshot's).
    pub fn of_sample(sample: &crate::model::SocketSample) -> RttSamples {
        let mut samples = RttSamples::default();
        samples.record_sample(sample);
        samples
    }

    pub fn is_empty(&self) -> bool {
        self.max_us == 0
    }

    /// The connect's handshake completed in this window, taking `us`
    /// (at least 1: 0 is none).
    pub fn set_handshake(&mut self, us: u32) {
        self.handshake_us = us.max(1);
    }

    pub fn handshake_us(&self) -> Option<u32> {
        (self.handshake_us > 0).then_some(self.handshake_us)
    }

    /// Forgets every sample (a new window).
    pub fn clear(&mut self) {
        *self = RttSamples::default();
    }
}

/// Samples of many sockets (a group's, the exporter's totals since it
/// started): their smoothed RTT (what the methods of [`Histogram`] read
/// through it) and their handshakes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RttHistogram {
    smoothed: Histogram,
    pub handshake: Histogram,
}

impl RttHistogram {
    pub fn add_samples(&mut self, samples: &RttSamples) {
        if let Some(us) = samples.handshake_us() {
            self.handshake.record(us);
        }
        if samples.is_empty() {
            return;
        }
        let smoothed = &mut self.smoothed;
        for (total, &n) in smoothed.counts.iter_mut().zip(samples.counts.iter()) {
            *total = total.saturating_add(u64::from(n));
        }
        smoothed.widen(samples.min_us, samples.max_us, samples.sum_us);
    }

    /// Adds another's samples (groups merged, windows summed).
    pub fn merge(&mut self, other: &RttHistogram) {
        self.smoothed.merge(&other.smoothed);
        self.handshake.merge(&other.handshake);
    }
}

impl std::ops::Deref for RttHistogram {
    type Target = Histogram;

    /// The smoothed RTT's histogram: what "a group's RTT" means.
    fn deref(&self) -> &Histogram {
        &self.smoothed
    }
}

/// One timing's samples of many sockets, and what reports estimate from
/// them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: [u64; BUCKETS],
    sum_us: u64,
    min_us: u32,
    max_us: u32,
}

impl Histogram {
    /// Takes one sample (0 is none).
    pub fn record(&mut self, us: u32) {
        if us == 0 {
            return;
        }
        let bucket = &mut self.counts[bucket_of(us)];
        *bucket = bucket.saturating_add(1);
        self.widen(us, us, u64::from(us));
    }

    /// Adds another histogram.
    pub fn merge(&mut self, other: &Histogram) {
        if other.is_empty() {
            return;
        }
        for (total, &n) in self.counts.iter_mut().zip(other.counts.iter()) {
            *total = total.saturating_add(n);
        }
        self.widen(other.min_us, other.max_us, other.sum_us);
    }

    fn widen(&mut self, min_us: u32, max_us: u32, sum_us: u64) {
        if self.max_us == 0 || min_us < self.min_us {
            self.min_us = min_us;
        }
        self.max_us = self.max_us.max(max_us);
        self.sum_us = self.sum_us.saturating_add(sum_us);
    }

    pub fn is_empty(&self) -> bool {
        self.max_us == 0
    }

    /// Samples in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &n| a.saturating_add(n))
    }

    /// Samples per bucket (the last is +Inf), not cumulative.
    pub fn counts(&self) -> &[u64; BUCKETS] {
        &self.counts
    }

    /// The samples' sum, seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_us as f64 / 1e6
    }

    /// Smallest and largest sample, µs.
    pub fn min_max_us(&self) -> Option<(u32, u32)> {
        (!self.is_empty()).then_some((self.min_us, self.max_us))
    }

    /// The `q` quantile (0 < q ≤ 1), µs, estimated from the buckets: the
    /// bucket holding the rank is found, and the value is interpolated
    /// linearly within it, between its bounds narrowed to the smallest and
    /// largest sample seen (so a group whose samples sit in one narrow
    /// range is not spread over its bucket's whole width). An estimate,
    /// never a sample: exact only where a bucket's samples are evenly
    /// spread (or all one value).
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 || !(q > 0.0 && q <= 1.0) {
            return None;
        }
        let rank = q * total as f64;
        let mut below = 0u64;
        for (bucket, &n) in self.counts.iter().enumerate() {
            if n == 0 || ((below + n) as f64) < rank {
                below += n;
                continue;
            }
            let lower = bucket
                .checked_sub(1)
                .map_or(0.0, |b| f64::from(BOUNDS_US[b]));
            let upper = BOUNDS_US
                .get(bucket)
                .map_or(f64::from(self.max_us), |&b| f64::from(b));
            let lo = lower.max(f64::from(self.min_us));
            let hi = upper.min(f64::from(self.max_us)).max(lo);
            let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
            return Some(lo + (hi - lo) * within);
        }
        // Saturated counts only: the largest sample is the honest answer.
        Some(f64::from(self.max_us))
    }

    /// p50, p90 and p99, µs.
    pub fn percentiles_us(&self) -> Option<[f64; 3]> {
        Some([
            self.quantile_us(0.5)?,
            self.quantile_us(0.9)?,
            self.quantile_us(0.99)?,
        ])
    }
}

/// `us` as a report prints a duration: `850us`, `5.12ms`, `1.40s`.
pub fn duration_text(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(samples: &[u32]) -> RttHistogram {
        let mut s = RttSamples::default();
        for &us in samples {
            s.record(us);
        }
        let mut h = RttHistogram::default();
        h.add_samples(&s);
        h
    }

    #[test]
    fn a_sockets_samples_take_the_88_bytes_the_docs_say() {
        assert_eq!(std::mem::size_of::<RttSamples>(), 88);
    }

    #[test]
    fn handshakes_are_counted_apart_from_the_smoothed_rtt() {
        let mut s = RttSamples::default();
        s.record(1_000);
        s.set_handshake(20_000);
        let mut h = RttHistogram::default();
        h.add_samples(&s);
        let mut only_handshake = RttSamples::default();
        only_handshake.set_handshake(0);
        h.add_samples(&only_handshake);
        assert_eq!(h.count(), 1);
        assert_eq!(h.quantile_us(0.5), Some(1_000.0));
        // A handshake of 0 µs (same clock tick) is 1 µs, not none.
        assert_eq!(h.handshake.count(), 2);
        assert_eq!(h.handshake.min_max_us(), Some((1, 20_000)));
        let mut merged = RttHistogram::default();
        merged.merge(&h);
        merged.merge(&h);
        assert_eq!(merged.handshake.count(), 4);
        assert_eq!(merged.count(), 2);
        s.clear();
        assert_eq!(s.handshake_us(), None);
    }

    #[test]
    fn a_sample_on_a_bound_is_in_that_bucket_and_past_the_last_in_inf() {
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(50), 0);
        assert_eq!(bucket_of(51), 1);
        assert_eq!(bucket_of(5_000_000), BUCKETS - 2);
        assert_eq!(bucket_of(5_000_001), BUCKETS - 1);
        assert_eq!(bucket_of(u32::MAX), BUCKETS - 1);
    }

    #[test]
    fn zero_is_no_sample() {
        let h = histogram(&[0, 0]);
        assert!(h.is_empty());
        assert_eq!(h.count(), 0);
        assert_eq!(h.quantile_us(0.5), None);
    }

    #[test]
    fn samples_of_one_value_give_that_value_at_every_quantile() {
        let h = histogram(&[5_200; 7]);
        for q in [0.01, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(h.quantile_us(q), Some(5_200.0));
        }
        assert_eq!(h.sum_seconds(), 7.0 * 0.0052);
    }

    #[test]
    fn quantiles_interpolate_within_the_bucket_narrowed_to_the_samples() {
        // Two clusters: 1.1..1.3 ms (bucket 1-2.5 ms) and 20..22 ms (10-25).
        let h = histogram(&[1_100, 1_200, 1_300, 20_000, 21_000, 22_000]);
        let p = h.percentiles_us().unwrap();
        // Rank 3 of 6: the last sample of the first bucket, whose range
        // (1,000..2,500) is narrowed below to the minimum, 1,100.
        assert_eq!(p[0], 2_500.0);
        // Rank 5.4: 2.4 of the 3 in the 10..25 ms bucket, narrowed above
        // to the maximum (22 ms): 10 + 0.8 × 12 ms.
        assert!((p[1] - 19_600.0).abs() < 1e-6, "{p:?}");
        assert!(p[2] <= 22_000.0 && p[2] > p[1]);
        assert_eq!(h.min_max_us(), Some((1_100, 22_000)));
    }

    #[test]
    fn merging_adds_counts_and_widens_the_range() {
        let mut a = histogram(&[300, 400]);
        let b = histogram(&[40_000]);
        a.merge(&b);
        a.merge(&RttHistogram::default());
        assert_eq!(a.count(), 3);
        assert_eq!(a.min_max_us(), Some((300, 40_000)));
        assert_eq!(a.counts()[bucket_of(300)], 2);
        assert_eq!(a.counts()[bucket_of(40_000)], 1);
        let mut empty = RttHistogram::default();
        empty.merge(&b);
        assert_eq!(empty, b);
    }

    #[test]
    fn a_sample_past_the_last_bound_is_estimated_up_to_the_largest() {
        let h = histogram(&[6_000_000, 8_000_000]);
        let p50 = h.quantile_us(0.5).unwrap();
        assert!((6_000_000.0..=8_000_000.0).contains(&p50));
        assert_eq!(h.quantile_us(1.0), Some(8_000_000.0));
    }

    #[test]
    fn durations_read_in_their_unit() {
        assert_eq!(duration_text(850.0), "850us");
        assert_eq!(duration_text(5_123.0), "5.12ms");
        assert_eq!(duration_text(1_400_000.0), "1.40s");
    }
}
