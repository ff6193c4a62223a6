//! Cross-CPU wake-ups during a round, from the `RES` (rescheduling
//! interrupt) row of Linux's `/proc/interrupts`: one for each wake-up of a
//! thread or process whose CPU is not the waker's.
//!
//! A statement on a blocking client is a ping-pong between a client thread
//! and its server backend. On two cores, the scheduler places each pair on
//! one CPU or across both; across, every message is a wake-up on the other
//! CPU, which on a virtual machine is an interrupt the host must deliver.
//! Rounds at 4 × 4 land in one placement or the other (fresh threads every
//! round), at throughputs about 2× apart for the same contender: this count
//! says which a round landed in.

/// Cross-CPU wake-ups per operation at or below which a round counts as
/// co-located (each client thread on its backend's CPU). Rounds measured
/// here fall in two clusters: at most about 0.05 (the fastest rounds of
/// every contender) and 0.1–0.3 (about half the throughput at 4 × 4).
pub(crate) const CO_LOCATED: f64 = 0.05;

/// The machine's rescheduling interrupts so far, summed over its CPUs;
/// `None` where `/proc/interrupts` has no such row (not Linux).
fn rescheduling_interrupts() -> Option<u64> {
    rescheduling_row(&std::fs::read_to_string("/proc/interrupts").ok()?)
}

/// The `RES` row of `/proc/interrupts`'s text, summed over its CPU columns
/// (the description after them is not a number).
fn rescheduling_row(text: &str) -> Option<u64> {
    let row = text
        .lines()
        .find(|line| line.trim_start().starts_with("RES:"))?;
    Some(
        row.split_whitespace()
            .skip(1)
            .map_while(|field| field.parse::<u64>().ok())
            .sum(),
    )
}

/// The count at the start of a round.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wakeups(Option<u64>);

impl Wakeups {
    pub(crate) fn start() -> Self {
        Self(rescheduling_interrupts())
    }

    /// Cross-CPU wake-ups per operation since [`start`](Self::start), for
    /// `operations` operations (machine-wide: client and server alike).
    pub(crate) fn per(self, operations: f64) -> Option<f64> {
        let (start, end) = (self.0?, rescheduling_interrupts()?);
        (operations > 0.0).then(|| end.saturating_sub(start) as f64 / operations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERRUPTS: &str = "\
           CPU0       CPU1
  0:         33          0   IO-APIC   2-edge      timer
NMI:          0          0   Non-maskable interrupts
LOC:    4211233    4371120   Local timer interrupts
RES:    1263409    1292207   Rescheduling interrupts
CAL:     455832     468768   Function call interrupts
";

    #[test]
    fn the_rescheduling_row_is_summed_over_cpus() {
        assert_eq!(rescheduling_row(INTERRUPTS), Some(1_263_409 + 1_292_207));
        assert_eq!(rescheduling_row("LOC: 1 2 Local timer interrupts\n"), None);
    }

    #[test]
    fn no_count_no_figure() {
        assert_eq!(Wakeups(None).per(10.0), None);
        assert_eq!(Wakeups(Some(0)).per(0.0), None);
    }
}
