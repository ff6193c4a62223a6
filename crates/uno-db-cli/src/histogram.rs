//! A latency histogram of fixed size: log-linear buckets (64 per power of
//! two) over nanoseconds, about 1.6% precision, so that an hour-long run
//! keeps no samples.

use std::time::Duration;

/// Exact buckets below this many nanoseconds.
const LINEAR: u64 = 128;
/// Sub-buckets per power of two above [`LINEAR`].
const SUB_BITS: u32 = 6;
/// Bucket count: the linear ones, then 64 for each power of two 2^7..2^63.
const BUCKETS: usize = 128 + (64 - 7) * 64;

/// Counts of latencies.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }
}

impl Histogram {
    /// Counts one latency.
    pub(crate) fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        if let Some(count) = self.counts.get_mut(index(nanos)) {
            *count += 1;
            self.total += 1;
        }
    }

    /// Adds `other`'s counts to these.
    pub(crate) fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
    }

    /// How many latencies were counted.
    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// The latency below which `quantile` (0..=1) of them fall (the lower
    /// bound of its bucket); `None` when empty.
    pub(crate) fn quantile(&self, quantile: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        // The rank of the sample, 1-based: ceil(q * n), at least 1.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let rank = ((quantile.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_nanos(lower_bound(i)));
            }
        }
        None
    }
}

/// The bucket of `nanos`.
fn index(nanos: u64) -> usize {
    if nanos < LINEAR {
        return usize::try_from(nanos).unwrap_or(0);
    }
    let exponent = 63 - nanos.leading_zeros(); // >= 7
    let sub = (nanos >> (exponent - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    let i = LINEAR + u64::from(exponent - 7) * 64 + sub;
    usize::try_from(i).unwrap_or(BUCKETS - 1)
}

/// The smallest value of bucket `i`.
fn lower_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let exponent = (i - LINEAR) / 64 + 7;
    let sub = (i - LINEAR) % 64;
    (64 + sub) << (exponent - u64::from(SUB_BITS))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_two_percent() {
        let mut histogram = Histogram::default();
        for micros in 1..=1000 {
            histogram.record(Duration::from_micros(micros));
        }
        assert_eq!(histogram.count(), 1000);
        let p50 = histogram.quantile(0.5).unwrap().as_secs_f64() * 1e6;
        let p99 = histogram.quantile(0.99).unwrap().as_secs_f64() * 1e6;
        assert!((p50 - 500.0).abs() < 10.0, "{p50}");
        assert!((p99 - 990.0).abs() < 20.0, "{p99}");
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn every_value_lands_in_a_bucket_whose_bound_is_below_it() {
        for nanos in [0, 1, 127, 128, 129, 1000, 123_456_789, u64::MAX] {
            let i = index(nanos);
            assert!(i < BUCKETS);
            assert!(lower_bound(i) <= nanos, "{nanos}");
        }
    }
}
