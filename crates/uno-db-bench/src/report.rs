//! Collecting and printing throughput.

use std::collections::BTreeMap;

/// Throughputs (operations per second, or another unit) per contender and
/// shape, one per round.
#[derive(Debug)]
pub(crate) struct Report {
    samples: BTreeMap<(String, String), Vec<f64>>,
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
            unit,
        }
    }

    pub(crate) fn record(&mut self, contender: &str, shape: &str, ops_per_sec: f64) {
        let unit = self.unit;
        println!("  {shape:<14} {contender:<18} {ops_per_sec:>10.0} {unit}");
        self.samples
            .entry((contender.to_owned(), shape.to_owned()))
            .or_default()
            .push(ops_per_sec);
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

    /// Prints the medians of every contender at `shape`.
    pub(crate) fn print_medians(&self, shape: &str, contenders: &[&str]) {
        println!("median at {shape}:");
        for contender in contenders {
            println!(
                "  {contender:<18} {:>10.0} {}",
                self.median(contender, shape),
                self.unit
            );
        }
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
                "ratio {ours}/{theirs} = {ratio:.3} ({workload}, {shape}; median of {} rounds)",
                self.rounds(ours, theirs, shape)
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

    fn rounds(&self, ours: &str, theirs: &str, shape: &str) -> usize {
        self.round_ratios(ours, theirs, shape).len()
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
