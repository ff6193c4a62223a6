//! Collecting and printing throughput.

use std::collections::BTreeMap;

use crate::wakeups::CO_LOCATED;

/// Where a contender's rounds at one shape ran: the median of their
/// cross-CPU wake-ups per operation, how many rounds were counted, how many
/// of those were co-located, and those rounds' median throughput.
#[derive(Debug, PartialEq)]
struct Placement {
    wakeups: f64,
    counted: usize,
    co_located: usize,
    co_located_median: Option<f64>,
}

/// Throughputs (operations per second, or another unit) per contender and
/// shape, one per round.
#[derive(Debug)]
pub(crate) struct Report {
    samples: BTreeMap<(String, String), Vec<f64>>,
    /// Cross-CPU wake-ups per operation, per contender and shape, one per
    /// round (in step with `samples`), where the mode counts them (see
    /// `wakeups`).
    wakeups: BTreeMap<(String, String), Vec<Option<f64>>>,
    unit: &'static str,
}

impl Default for Report {
    fn default() -> Self {
        Self::with_unit("ops/s")
    }
}

impl Report {
    /// A report whose figures are `unit` (`"rows/s"`) rather than ops/s.
    pub(crate) fn with_unit(unit: &'static str) -> Self {
        Self {
            samples: BTreeMap::new(),
            wakeups: BTreeMap::new(),
            unit,
        }
    }

    pub(crate) fn record(&mut self, contender: &str, shape: &str, ops_per_sec: f64) {
        self.record_round(contender, shape, ops_per_sec, None);
    }

    /// Records one round, with its cross-CPU wake-ups per operation when
    /// they were counted.
    pub(crate) fn record_round(
        &mut self,
        contender: &str,
        shape: &str,
        ops_per_sec: f64,
        wakeups: Option<f64>,
    ) {
        let unit = self.unit;
        let key = (contender.to_owned(), shape.to_owned());
        match wakeups {
            Some(per_op) => println!(
                "  {shape:<14} {contender:<18} {ops_per_sec:>10.0} {unit} \
                 {per_op:>6.3} cross-CPU wake-ups/op"
            ),
            None => println!("  {shape:<14} {contender:<18} {ops_per_sec:>10.0} {unit}"),
        }
        self.wakeups.entry(key.clone()).or_default().push(wakeups);
        self.samples.entry(key).or_default().push(ops_per_sec);
    }

    /// The median throughput of `contender` at `shape`.
    pub(crate) fn median(&self, contender: &str, shape: &str) -> f64 {
        let mut values = self
            .samples
            .get(&(contender.to_owned(), shape.to_owned()))
            .cloned()
            .unwrap_or_default();
        median(&mut values)
    }

    /// Prints the medians of every contender at `shape`; where wake-ups
    /// were counted, also their median and the median throughput of the
    /// rounds in which client and server shared a CPU (see
    /// [`CO_LOCATED`]), the figure to compare contenders by when their
    /// rounds landed in different placements.
    pub(crate) fn print_medians(&self, shape: &str, contenders: &[&str]) {
        println!("median at {shape}:");
        for contender in contenders {
            let wakeups = self
                .placement(contender, shape)
                .map_or_else(String::new, |p| {
                    format!(
                        " {:>6.3} cross-CPU wake-ups/op; co-located rounds {} of {}: {} {}",
                        p.wakeups,
                        p.co_located,
                        p.counted,
                        p.co_located_median
                            .map_or_else(|| "-".to_owned(), |ops| format!("{ops:.0}")),
                        self.unit
                    )
                });
            println!(
                "  {contender:<18} {:>10.0} {}{wakeups}",
                self.median(contender, shape),
                self.unit
            );
        }
    }

    /// Where `contender`'s rounds at `shape` ran, if their wake-ups were
    /// counted.
    fn placement(&self, contender: &str, shape: &str) -> Option<Placement> {
        let key = (contender.to_owned(), shape.to_owned());
        let (samples, wakeups) = (self.samples.get(&key)?, self.wakeups.get(&key)?);
        let counted: Vec<(f64, f64)> = samples
            .iter()
            .zip(wakeups)
            .filter_map(|(&ops, &w)| Some((ops, w?)))
            .collect();
        if counted.is_empty() {
            return None;
        }
        let mut co_located: Vec<f64> = counted
            .iter()
            .filter(|&&(_, w)| w <= CO_LOCATED)
            .map(|&(ops, _)| ops)
            .collect();
        Some(Placement {
            wakeups: median(&mut counted.iter().map(|&(_, w)| w).collect::<Vec<_>>()),
            counted: counted.len(),
            co_located: co_located.len(),
            co_located_median: (!co_located.is_empty()).then(|| median(&mut co_located)),
        })
    }

    /// The ratio `ours / theirs` of `workload` at each shape, printed as
    /// `ratio A/B = X (workload, shape)`, and the smallest of them. Each
    /// round's two figures were measured back to back, so the ratio is
    /// taken per round and the median of those is reported: drift in the
    /// machine's load cancels out within a round.
    pub(crate) fn ratio(&self, ours: &str, theirs: &str, workload: &str, shapes: &[String]) -> f64 {
        let mut worst = f64::INFINITY;
        for shape in shapes {
            let ratio = self.round_ratio(ours, theirs, shape);
            println!(
                "ratio {ours}/{theirs} = {ratio:.3} ({workload}, {shape}; {})",
                self.spread(ours, theirs, shape)
            );
            worst = worst.min(ratio);
        }
        worst
    }

    /// The median over rounds of `ours / theirs` at `shape` (see
    /// [`ratio`](Self::ratio)).
    pub(crate) fn round_ratio(&self, ours: &str, theirs: &str, shape: &str) -> f64 {
        median(&mut self.round_ratios(ours, theirs, shape))
    }

    /// The 95 % confidence interval of the median over rounds of `ours /
    /// theirs` at `shape`, with the number of rounds; `None` under six
    /// rounds, too few for one. Assumes nothing about how the ratios are
    /// spread (order statistics: see [`median_interval`]): a cell whose
    /// interval spans 1.00 is a tie this run cannot break, one wholly
    /// below it is a loss.
    pub(crate) fn round_ratio_interval(
        &self,
        ours: &str,
        theirs: &str,
        shape: &str,
    ) -> (usize, Option<(f64, f64)>) {
        let mut ratios = self.round_ratios(ours, theirs, shape);
        (ratios.len(), median_interval(&mut ratios))
    }

    /// How far to trust [`round_ratio`](Self::round_ratio) at `shape`:
    /// `median of N rounds, 95 % interval LO–HI`.
    pub(crate) fn spread(&self, ours: &str, theirs: &str, shape: &str) -> String {
        match self.round_ratio_interval(ours, theirs, shape) {
            (rounds, Some((low, high))) => {
                format!("median of {rounds} rounds, 95 % interval {low:.3}–{high:.3}")
            }
            (rounds, None) => format!("median of {rounds} rounds, too few for an interval"),
        }
    }

    fn round_ratios(&self, ours: &str, theirs: &str, shape: &str) -> Vec<f64> {
        let key = |contender: &str| (contender.to_owned(), shape.to_owned());
        let empty = Vec::new();
        let ours_rounds = self.samples.get(&key(ours)).unwrap_or(&empty);
        let theirs_rounds = self.samples.get(&key(theirs)).unwrap_or(&empty);
        ours_rounds
            .iter()
            .zip(theirs_rounds)
            .filter(|(_, theirs)| **theirs > 0.0)
            .map(|(ours, theirs)| ours / theirs)
            .collect()
    }
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// The distribution-free 95 % confidence interval of the median of
/// `values`: the `k`-th smallest and the `k`-th largest, where `k` is the
/// largest rank for which fewer than `k` of `n` fair coin flips come up
/// heads with probability at most 2.5 %. `None` under six values.
fn median_interval(values: &mut [f64]) -> Option<(f64, f64)> {
    let n = values.len();
    let k = interval_rank(n)?;
    values.sort_by(f64::total_cmp);
    Some((values[k - 1], values[n - k]))
}

/// The rank `k` of [`median_interval`] for `n` values (at least 1), or
/// `None` when even the extremes cover the median with less than 95 %.
fn interval_rank(n: usize) -> Option<usize> {
    // P(Binomial(n, 1/2) = i), term by term from 2^-n; past about a
    // thousand rounds 2^-n is below the smallest f64 and the sum would
    // stay zero, so the normal approximation takes over there.
    if n > 1000 {
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let k = ((n as f64) / 2.0 - 0.98 * (n as f64).sqrt()).floor() as usize;
        return Some(k.max(1));
    }
    let n_i32 = i32::try_from(n).ok()?;
    let mut term = 0.5_f64.powi(n_i32);
    let mut below = 0.0;
    let mut k = 0;
    for i in 0..n {
        // `below` is P(fewer than i + 1 heads) once `term` (P(i heads)) is in.
        below += term;
        if below > 0.025 {
            break;
        }
        k = i + 1;
        #[allow(clippy::cast_precision_loss)]
        {
            term *= (n - i) as f64 / (i + 1) as f64;
        }
    }
    (k >= 1).then_some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_takes_the_co_located_rounds_apart() {
        let mut report = Report::default();
        for (ops, wakeups) in [
            (100.0, Some(0.01)),
            (50.0, Some(0.2)),
            (120.0, Some(0.05)),
            (80.0, None),
            (60.0, Some(0.25)),
        ] {
            report.record_round("c", "4x4", ops, wakeups);
        }
        report.record("uncounted", "4x4", 10.0);
        assert_eq!(
            report.placement("c", "4x4"),
            Some(Placement {
                wakeups: 0.125,
                counted: 4,
                co_located: 2,
                co_located_median: Some(110.0),
            })
        );
        assert_eq!(report.placement("uncounted", "4x4"), None);
        assert_eq!(report.placement("c", "16x16"), None);
        // Every round spread: counted, none co-located.
        report.record_round("spread", "4x4", 60.0, Some(0.2));
        assert_eq!(
            report
                .placement("spread", "4x4")
                .map(|p| p.co_located_median),
            Some(None)
        );
    }

    #[test]
    fn the_median_interval_takes_the_ranks_of_the_binomial_table() {
        // The usual table: n = 6 → ranks 1 and 6, n = 9 → 2 and 8,
        // n = 15 → 4 and 12, n = 25 → 8 and 18; none for n = 5.
        assert_eq!(interval_rank(5), None);
        assert_eq!(interval_rank(6), Some(1));
        assert_eq!(interval_rank(9), Some(2));
        assert_eq!(interval_rank(15), Some(4));
        assert_eq!(interval_rank(25), Some(8));
        let mut values: Vec<f64> = (1..=9).rev().map(f64::from).collect();
        assert_eq!(median_interval(&mut values), Some((2.0, 8.0)));
        assert_eq!(median_interval(&mut [1.0, 2.0, 3.0]), None);
    }
}
