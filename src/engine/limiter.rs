//! How many requests an endpoint gets at once, adapted to how it answers (AIMD with a
//! latency signal, in the manner of TCP congestion control):
//! - it starts at one request and, in slow start, grows by one with every answer
//!   (doubling each round trip) until the first sign of trouble;
//! - afterwards it grows by one per round trip (+1/limit per answer); it grows only
//!   while the limit is fully in use, so a limit never claims more than was proven;
//! - it halves on signs of overload (a timeout, a refused or reset connection, 408,
//!   429, 503, 504) and shrinks by a fifth when answers get slower: when the smoothed
//!   latency rises above twice the lowest seen (the baseline), plus 20 ms; at a limit
//!   of one the baseline follows the receiver, which is then just slow;
//! - it shrinks at most once per two smoothed round trips (at least 100 ms), so one
//!   burst of timeouts from requests that were all in flight together counts once.
//!
//! So a struggling receiver gets fewer parallel requests, not more, and a dead one
//! holds a single worker while healthy endpoints use the rest.

use std::time::{Duration, Instant};

/// Answers slower than `baseline × LATENCY_TOLERANCE + LATENCY_SLACK` mean "rising".
const LATENCY_TOLERANCE: f64 = 2.0;
const LATENCY_SLACK_MS: f64 = 20.0;
/// Weight of a new latency sample in the smoothed latency.
const SMOOTHING: f64 = 0.2;
const OVERLOAD_FACTOR: f64 = 0.5;
const SLOWDOWN_FACTOR: f64 = 0.8;
const MIN_DECREASE_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct Limiter {
    limit: f64,
    max: f64,
    slow_start: bool,
    baseline_ms: Option<f64>,
    smoothed_ms: Option<f64>,
    last_decrease: Option<Instant>,
    overloaded: bool,
}

impl Limiter {
    /// A limiter that never allows more than `max` requests at once.
    pub fn new(max: usize) -> Limiter {
        Limiter {
            limit: 1.0,
            max: max.max(1) as f64,
            slow_start: true,
            baseline_ms: None,
            smoothed_ms: None,
            last_decrease: None,
            overloaded: false,
        }
    }

    /// Requests allowed at once now.
    pub fn limit(&self) -> usize {
        self.limit.floor().max(1.0) as usize
    }

    /// Whether the last thing the endpoint did was a sign of overload.
    pub fn struggling(&self) -> bool {
        self.overloaded
    }

    /// The smoothed latency of answers, if any came.
    pub fn latency(&self) -> Option<Duration> {
        self.smoothed_ms
            .map(|ms| Duration::from_secs_f64(ms / 1000.0))
    }

    /// A 2xx answer after `latency`, with `in_flight` requests out (this one included).
    pub fn on_answer(&mut self, latency: Duration, in_flight: usize, now: Instant) {
        let sample = latency.as_secs_f64() * 1000.0;
        let smoothed = match self.smoothed_ms {
            None => sample,
            Some(s) => s + (sample - s) * SMOOTHING,
        };
        self.smoothed_ms = Some(smoothed);
        // The lowest smoothed latency is the receiver unloaded by us; at a limit of one
        // request our load cannot be the cause, so a receiver that became slower for
        // good sets a new baseline there.
        let baseline = match self.baseline_ms {
            Some(b) if b <= smoothed && self.limit() > 1 => b,
            _ => smoothed,
        };
        self.baseline_ms = Some(baseline);
        self.overloaded = false;
        if smoothed > baseline * LATENCY_TOLERANCE + LATENCY_SLACK_MS {
            self.decrease(SLOWDOWN_FACTOR, now);
        } else if in_flight >= self.limit() {
            let step = if self.slow_start {
                1.0
            } else {
                1.0 / self.limit
            };
            self.limit = (self.limit + step).min(self.max);
        }
    }

    /// A sign of overload: a timeout, a refused or reset connection, 408/429/503/504.
    pub fn on_overload(&mut self, now: Instant) {
        self.overloaded = true;
        self.decrease(OVERLOAD_FACTOR, now);
    }

    fn decrease(&mut self, factor: f64, now: Instant) {
        let interval = self
            .smoothed_ms
            .map(|ms| Duration::from_secs_f64(ms * 2.0 / 1000.0))
            .unwrap_or_default()
            .max(MIN_DECREASE_INTERVAL);
        if self
            .last_decrease
            .is_some_and(|last| now.duration_since(last) < interval)
        {
            return;
        }
        self.limit = (self.limit * factor).max(1.0);
        self.slow_start = false;
        self.last_decrease = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn slow_start_doubles_until_the_maximum() {
        let mut limiter = Limiter::new(16);
        let now = Instant::now();
        for _ in 0..30 {
            let in_flight = limiter.limit();
            limiter.on_answer(MS, in_flight, now);
        }
        assert_eq!(limiter.limit(), 16);
    }

    #[test]
    fn an_unused_limit_does_not_grow() {
        let mut limiter = Limiter::new(16);
        let now = Instant::now();
        for _ in 0..10 {
            limiter.on_answer(MS, 1, now);
        }
        assert_eq!(
            limiter.limit(),
            2,
            "one request at a time never proves more"
        );
    }

    #[test]
    fn overload_halves_once_per_burst() {
        let mut limiter = Limiter::new(16);
        let mut now = Instant::now();
        for _ in 0..30 {
            let in_flight = limiter.limit();
            limiter.on_answer(MS, in_flight, now);
        }
        // Sixteen timeouts at the same moment: one decrease.
        for _ in 0..16 {
            limiter.on_overload(now);
        }
        assert_eq!(limiter.limit(), 8);
        assert!(limiter.struggling());
        now += Duration::from_millis(150);
        limiter.on_overload(now);
        assert_eq!(limiter.limit(), 4);
        for _ in 0..10 {
            now += Duration::from_secs(1);
            limiter.on_overload(now);
        }
        assert_eq!(limiter.limit(), 1, "never below one");
        // Recovery is additive after a decrease: one per round trip.
        for _ in 0..4 {
            limiter.on_answer(MS, 1, now);
        }
        assert!(!limiter.struggling());
        assert!(limiter.limit() <= 4, "{}", limiter.limit());
    }

    #[test]
    fn rising_latency_shrinks_the_limit_until_it_settles() {
        // A receiver whose latency is 10 ms plus 10 ms for each request it is serving.
        let mut limiter = Limiter::new(64);
        let mut now = Instant::now();
        let mut limits = Vec::new();
        for _ in 0..3000 {
            let in_flight = limiter.limit();
            let latency = Duration::from_millis(10 + 10 * in_flight as u64);
            now += latency / in_flight as u32;
            limiter.on_answer(latency, in_flight, now);
            limits.push(limiter.limit());
        }
        let settled = &limits[2000..];
        let (low, high) = (
            *settled.iter().min().unwrap(),
            *settled.iter().max().unwrap(),
        );
        // 2 × 20 ms + 20 ms tolerated: about four requests at once.
        assert!(low >= 2 && high <= 8, "settled between {low} and {high}");
    }
}
