//! Retry with capped exponential backoff and full jitter.

use std::time::{Duration, Instant};

use crate::error::Error;

/// How connecting retries transient failures: exponential backoff with full
/// jitter, capped per delay, by attempts and by an overall deadline.
///
/// The delay before retry `n` (counting from 0) is drawn uniformly from
/// `[0, min(max_delay, initial_delay * multiplier^n)]` ("full jitter"), so
/// that many clients reconnecting at once spread out. Only errors for which
/// [`Error::is_transient`] holds are retried.
///
/// Defaults (see `docs/configuration.md`): 50 ms initial delay, multiplier
/// 2, 2 s max delay; 4 attempts and a 10 s deadline unless the caller bounds
/// the retries itself.
///
/// **Which limit wins.** A checkout connecting with this policy keeps
/// retrying transient failures until its `pool_timeout`, as HikariCP's
/// `connectionTimeout` does: the policy's attempts and deadline bound it
/// further only when they were set explicitly ([`max_attempts`],
/// [`deadline`], `retry_max_attempts`, `retry_deadline`). Elsewhere (whole
/// transaction retry) the defaults apply when nothing was set.
///
/// [`max_attempts`]: Self::max_attempts
/// [`deadline`]: Self::deadline
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct RetryPolicy {
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    initial_delay: Duration,
    multiplier: f64,
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    max_delay: Duration,
    /// `None`: not set (the caller's own bound, else the default, applies).
    max_attempts: Option<u32>,
    /// `None`: not set, as for `max_attempts`.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(50),
            multiplier: 2.0,
            max_delay: Duration::from_secs(2),
            max_attempts: None,
            deadline: None,
        }
    }
}

impl RetryPolicy {
    /// The attempts allowed when none were set and the caller sets no
    /// bound of its own.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
    /// The deadline when none was set and the caller sets no bound of its
    /// own.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

    /// The largest `max_attempts` accepted.
    pub const MAX_ATTEMPTS: u32 = 100;
    /// The largest `multiplier` accepted.
    pub const MAX_MULTIPLIER: f64 = 10.0;

    /// A policy that tries once and never retries.
    #[must_use]
    pub fn never() -> Self {
        Self {
            max_attempts: Some(1),
            ..Self::default()
        }
    }

    /// Sets the delay ceiling of the first retry.
    #[must_use]
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Sets the factor by which the ceiling grows per retry (≥ 1).
    #[must_use]
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Sets the cap on any one delay.
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets the total number of attempts, the first one included (≥ 1).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Sets the overall deadline: no retry starts after it.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The delay ceiling of the first retry.
    #[must_use]
    pub fn get_initial_delay(&self) -> Duration {
        self.initial_delay
    }

    /// The growth factor of the ceiling.
    #[must_use]
    pub fn get_multiplier(&self) -> f64 {
        self.multiplier
    }

    /// The cap on any one delay.
    #[must_use]
    pub fn get_max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The total number of attempts ([`DEFAULT_MAX_ATTEMPTS`] when not
    /// set).
    ///
    /// [`DEFAULT_MAX_ATTEMPTS`]: Self::DEFAULT_MAX_ATTEMPTS
    #[must_use]
    pub fn get_max_attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(Self::DEFAULT_MAX_ATTEMPTS)
    }

    /// The overall deadline ([`DEFAULT_DEADLINE`] when not set).
    ///
    /// [`DEFAULT_DEADLINE`]: Self::DEFAULT_DEADLINE
    #[must_use]
    pub fn get_deadline(&self) -> Duration {
        self.deadline.unwrap_or(Self::DEFAULT_DEADLINE)
    }

    /// The attempts, if set explicitly.
    #[must_use]
    pub fn max_attempts_set(&self) -> Option<u32> {
        self.max_attempts
    }

    /// The deadline, if set explicitly.
    #[must_use]
    pub fn deadline_set(&self) -> Option<Duration> {
        self.deadline
    }

    /// The rules this policy breaks, as `(field, value, rule)`; empty when
    /// valid. [`ConnectionConfig`](crate::ConnectionConfig) validation
    /// reports them.
    #[must_use]
    pub fn violations(&self) -> Vec<(&'static str, String, &'static str)> {
        let mut out = Vec::new();
        let attempts = self.get_max_attempts();
        if attempts == 0 || attempts > Self::MAX_ATTEMPTS {
            out.push((
                "retry.max_attempts",
                attempts.to_string(),
                "must be between 1 and 100",
            ));
        }
        if !(self.multiplier.is_finite() && (1.0..=Self::MAX_MULTIPLIER).contains(&self.multiplier))
        {
            out.push((
                "retry.multiplier",
                self.multiplier.to_string(),
                "must be between 1 and 10",
            ));
        }
        if self.max_delay < self.initial_delay {
            out.push((
                "retry.max_delay",
                format!("{:?}", self.max_delay),
                "must not be less than retry.initial_delay",
            ));
        }
        if self.max_delay > Duration::from_secs(300) {
            out.push((
                "retry.max_delay",
                format!("{:?}", self.max_delay),
                "must be at most 5 minutes",
            ));
        }
        let deadline = self.get_deadline();
        if deadline.is_zero() || deadline > Duration::from_secs(3600) {
            out.push((
                "retry.deadline",
                format!("{deadline:?}"),
                "must be between 1ms and 1 hour",
            ));
        }
        out
    }

    /// The delay ceiling before retry `retry` (0 = the first retry):
    /// `min(max_delay, initial_delay * multiplier^retry)`.
    #[must_use]
    pub fn ceiling(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let factor = self.multiplier.max(1.0).powi(exponent);
        let ceiling = self.initial_delay.as_secs_f64() * factor;
        if !ceiling.is_finite() || ceiling >= self.max_delay.as_secs_f64() {
            self.max_delay
        } else {
            Duration::from_secs_f64(ceiling)
        }
    }

    /// The schedule of sleeps between attempts (`max_attempts - 1` of them),
    /// drawing jitter from `unit`, which returns values in `[0, 1)`. Pure:
    /// inject a fixed sequence to make it deterministic. The deadline is not
    /// applied here (it depends on how long attempts take); see
    /// [`Backoff`].
    pub fn delays<R>(&self, mut unit: R) -> impl Iterator<Item = Duration> + use<R>
    where
        R: FnMut() -> f64,
    {
        let policy = *self;
        (0..policy.get_max_attempts().saturating_sub(1))
            .map(move |retry| policy.jittered(retry, unit()))
    }

    fn jittered(&self, retry: u32, unit: f64) -> Duration {
        self.ceiling(retry).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Starts tracking one operation's attempts against this policy.
    #[must_use]
    pub fn backoff(&self) -> Backoff {
        Backoff {
            policy: *self,
            max_attempts: self.get_max_attempts(),
            deadline: Instant::now() + self.get_deadline(),
            retries: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// As [`backoff`](Self::backoff), for a caller that bounds the retries
    /// itself at `until` (a checkout, by `pool_timeout`): the policy's
    /// attempts and deadline cut it shorter only when set explicitly.
    #[must_use]
    pub fn backoff_until(&self, until: Instant) -> Backoff {
        let deadline = match self.deadline {
            Some(deadline) => until.min(Instant::now() + deadline),
            None => until,
        };
        Backoff {
            policy: *self,
            max_attempts: self.max_attempts.unwrap_or(u32::MAX),
            deadline,
            retries: 0,
            rng: fastrand::Rng::new(),
        }
    }
}

/// The state of one retried operation: how many attempts were made and when
/// it started. Ask it, after each failure, whether and how long to wait.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    max_attempts: u32,
    deadline: Instant,
    retries: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// The number of attempts made so far, counting the one that just failed
    /// (when called after a failure).
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.retries + 1
    }

    /// After a failed attempt: `Some(delay)` to sleep before the next one,
    /// or `None` to give up because the error is not transient, the
    /// attempts are used up, or the deadline would pass during the sleep.
    pub fn next_delay(&mut self, error: &Error) -> Option<Duration> {
        self.next_delay_if(error.is_transient())
    }

    /// As [`next_delay`](Self::next_delay), for a caller that decided
    /// itself whether the failure is retryable.
    pub fn next_delay_if(&mut self, retryable: bool) -> Option<Duration> {
        if !retryable || self.attempt() >= self.max_attempts {
            return None;
        }
        let delay = self.policy.jittered(self.retries, self.rng.f64());
        if Instant::now() + delay >= self.deadline {
            return None;
        }
        self.retries += 1;
        Some(delay)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io;

    use super::*;
    use crate::error::ErrorKind;

    fn transient() -> Error {
        Error::new(ErrorKind::Connect)
            .with_source(io::Error::from(io::ErrorKind::ConnectionRefused))
    }

    #[test]
    fn ceilings_grow_geometrically_and_are_capped() {
        let policy = RetryPolicy::default()
            .initial_delay(Duration::from_millis(100))
            .multiplier(2.0)
            .max_delay(Duration::from_millis(1000));
        let ceilings: Vec<u128> = (0..6).map(|n| policy.ceiling(n).as_millis()).collect();
        // Not `delay ** attempt`: 100 * 2^n, capped at 1000.
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_millis(1000));
    }

    #[test]
    fn delays_are_full_jitter_within_the_ceiling() {
        let policy = RetryPolicy::default()
            .max_attempts(5)
            .initial_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(10));
        let top: Vec<Duration> = policy.delays(|| 0.999_999).collect();
        let zero: Vec<Duration> = policy.delays(|| 0.0).collect();
        let half: Vec<Duration> = policy.delays(|| 0.5).collect();
        assert_eq!(top.len(), 4, "max_attempts - 1 sleeps");
        assert!(zero.iter().all(Duration::is_zero));
        assert_eq!(half, [50, 100, 200, 400].map(Duration::from_millis));
        for (n, delay) in top.iter().enumerate() {
            let ceiling = policy.ceiling(u32::try_from(n).unwrap());
            assert!(*delay <= ceiling && *delay > ceiling.mul_f64(0.99));
        }
    }

    #[test]
    fn delays_are_deterministic_for_an_injected_rng() {
        let policy = RetryPolicy::default().max_attempts(10);
        let mut a = fastrand::Rng::with_seed(7);
        let mut b = fastrand::Rng::with_seed(7);
        let first: Vec<Duration> = policy.delays(|| a.f64()).collect();
        let second: Vec<Duration> = policy.delays(|| b.f64()).collect();
        assert_eq!(first, second);
        assert!(first.windows(2).any(|w| w[0] != w[1]), "jitter varies");
    }

    #[test]
    fn never_retries_permanent_errors() {
        let mut backoff = RetryPolicy::default().backoff();
        let auth = Error::new(ErrorKind::Auth);
        assert_eq!(backoff.next_delay(&auth), None);
        let config = Error::new(ErrorKind::Config);
        assert_eq!(backoff.next_delay(&config), None);
    }

    #[test]
    fn stops_after_max_attempts() {
        let policy = RetryPolicy::default()
            .max_attempts(3)
            .initial_delay(Duration::from_millis(1))
            .max_delay(Duration::from_millis(1));
        let mut backoff = policy.backoff();
        assert!(backoff.next_delay(&transient()).is_some());
        assert!(backoff.next_delay(&transient()).is_some());
        assert_eq!(backoff.attempt(), 3);
        assert_eq!(backoff.next_delay(&transient()), None, "3 attempts made");
        assert_eq!(
            RetryPolicy::never().backoff().next_delay(&transient()),
            None
        );
    }

    #[test]
    fn a_caller_bound_replaces_the_default_limits_but_not_explicit_ones() {
        let until = Instant::now() + Duration::from_secs(60);
        let mut backoff = RetryPolicy::default()
            .max_delay(Duration::from_millis(1))
            .initial_delay(Duration::from_millis(1))
            .backoff_until(until);
        for _ in 0..50 {
            assert!(
                backoff.next_delay(&transient()).is_some(),
                "default limits do not apply"
            );
        }
        let mut backoff = RetryPolicy::default().max_attempts(3).backoff_until(until);
        assert!(backoff.next_delay(&transient()).is_some());
        assert!(backoff.next_delay(&transient()).is_some());
        assert_eq!(
            backoff.next_delay(&transient()),
            None,
            "explicit attempts apply"
        );
        let mut backoff = RetryPolicy::default().backoff_until(Instant::now());
        assert_eq!(
            backoff.next_delay(&transient()),
            None,
            "the caller's bound applies"
        );
    }

    #[test]
    fn stops_at_the_deadline() {
        let policy = RetryPolicy::default()
            .max_attempts(100)
            .initial_delay(Duration::from_millis(20))
            .max_delay(Duration::from_millis(20))
            .multiplier(1.0)
            .deadline(Duration::from_millis(30));
        let mut backoff = policy.backoff();
        std::thread::sleep(Duration::from_millis(31));
        assert_eq!(backoff.next_delay(&transient()), None, "deadline passed");
    }

    #[test]
    fn validation_flags_bad_policies() {
        assert!(RetryPolicy::default().violations().is_empty());
        let fields = |p: RetryPolicy| p.violations().into_iter().map(|v| v.0).collect::<Vec<_>>();
        assert_eq!(
            fields(RetryPolicy::default().max_attempts(0)),
            ["retry.max_attempts"]
        );
        assert_eq!(
            fields(RetryPolicy::default().max_attempts(101)),
            ["retry.max_attempts"]
        );
        assert_eq!(
            fields(RetryPolicy::default().multiplier(0.5)),
            ["retry.multiplier"]
        );
        assert_eq!(
            fields(RetryPolicy::default().multiplier(f64::NAN)),
            ["retry.multiplier"]
        );
        assert_eq!(
            fields(RetryPolicy::default().multiplier(f64::INFINITY)),
            ["retry.multiplier"]
        );
        assert_eq!(
            fields(RetryPolicy::default().initial_delay(Duration::from_secs(3))),
            ["retry.max_delay"]
        );
        assert_eq!(
            fields(RetryPolicy::default().max_delay(Duration::from_secs(301))),
            ["retry.max_delay"]
        );
        assert_eq!(
            fields(RetryPolicy::default().deadline(Duration::ZERO)),
            ["retry.deadline"]
        );
    }
}
