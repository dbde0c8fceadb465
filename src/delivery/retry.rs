//! The retry policy (docs/behaviour.md §4): which failures are retried, when, and the one-line
//! `status_details` that says so.
//!
//! - Success is a 2xx response; anything else is a failure.
//! - Not retried: 4xx other than 408 and 429 (410 Gone included), a blocked target, a
//!   payload that cannot be rendered. Everything else is retried until `max_attempts`.
//! - Waits between attempts follow [`SCHEDULE`] (about a day over 8 attempts, like
//!   Svix's), each ±20 % jitter; `Retry-After` on 429/503 may lengthen a wait, capped
//!   at [`RETRY_AFTER_CAP`], never shorten it.

use std::time::Duration;

use super::http::{Failure, FailureKind, Response};
use super::Pressure;

/// Seconds to wait after attempt 1, 2, …; the last entry repeats.
pub const SCHEDULE: [u64; 7] = [10, 60, 300, 1800, 7200, 21600, 50400];

pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(6 * 3600);

/// What an exchange's result means for its callback.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Success,
    /// A later attempt may succeed; no sooner than this, if the receiver said so
    /// (`Retry-After` on 429 and 503).
    Retry(Option<Duration>),
    /// No later attempt can succeed: a 4xx other than 408 and 429, a blocked target.
    Final,
}

/// An exchange's result classified: what happened in words (a status line or the
/// failure), what becomes of the callback, and what it says about the receiver's load.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    pub what: String,
    pub next: Next,
    pub pressure: Pressure,
}

/// The one place that decides what a response or failure means.
pub fn classify(result: &Result<Response, Failure>, elapsed: Duration) -> Classified {
    match result {
        Ok(response) => classify_response(response, elapsed),
        Err(Failure { kind, message }) => Classified {
            what: message.clone(),
            next: if *kind == FailureKind::Blocked {
                Next::Final
            } else {
                Next::Retry(None)
            },
            // Timeouts and connections refused, reset or closed suggest an overloaded
            // or down receiver (its endpoint then gets fewer parallel requests); DNS,
            // TLS or protocol errors a misconfigured one.
            pressure: if matches!(
                kind,
                FailureKind::Timeout
                    | FailureKind::Connect
                    | FailureKind::ConnectionRefused
                    | FailureKind::ConnectionReset
                    | FailureKind::ConnectionClosed
            ) {
                Pressure::Overloaded
            } else {
                Pressure::Neutral
            },
        },
    }
}

fn classify_response(response: &Response, elapsed: Duration) -> Classified {
    let line = format!("{} {}", response.status, response.reason)
        .trim_end()
        .to_owned();
    let status = response.status;
    let (what, next) = match status {
        200..=299 => (line, Next::Success),
        // Not followed: the hook's URL is what the operator must fix.
        300..=399 => (
            format!(
                "{line}, redirect to {} not followed",
                response.header("location").unwrap_or("nowhere")
            ),
            Next::Retry(None),
        ),
        408 => (line, Next::Retry(None)),
        429 | 503 => {
            let asked = response
                .header("retry-after")
                .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
            (line, Next::Retry(asked))
        }
        400..=499 => (line, Next::Final),
        _ => (line, Next::Retry(None)),
    };
    let pressure = match status {
        200..=299 => Pressure::Answered(elapsed),
        408 | 429 | 503 | 504 => Pressure::Overloaded,
        _ => Pressure::Neutral,
    };
    Classified {
        what,
        next,
        pressure,
    }
}

/// A random factor for [`backoff`]: waits spread by ±20 % so that callbacks that failed
/// together (a receiver's outage) do not all come back at once. A batch draws one, so
/// its callbacks come due together.
pub fn jitter() -> f64 {
    0.8 + fastrand::f64() * 0.4
}

/// The wait after attempt number `attempt` (1-based): the schedule's step (times
/// `jitter`, see [`jitter`]), or longer
/// when the receiver asked for it with `Retry-After` (never shorter: a receiver
/// answering `Retry-After: 0` must not use up every attempt at once).
pub fn backoff(attempt: i32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let index = usize::try_from(attempt.max(1) - 1)
        .unwrap_or(0)
        .min(SCHEDULE.len() - 1);
    let step = Duration::from_secs_f64(SCHEDULE[index] as f64 * jitter);
    match retry_after {
        Some(asked) => step.max(asked.min(RETRY_AFTER_CAP)),
        None => step,
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // More seconds than a u64 holds is still a (very long) number of seconds: the cap.
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::MAX);
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (date.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// "40s", "5m", "2h": short enough for a status line.
pub fn short_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64().round() as u64;
    if seconds < 120 {
        format!("{seconds}s")
    } else if seconds < 2 * 3600 {
        format!("{}m", (seconds + 30) / 60)
    } else {
        format!("{}h", (seconds + 1800) / 3600)
    }
}

/// What happens to a callback after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterFailure {
    RetryIn(Duration),
    GiveUp,
}

/// Decides retry or give-up for attempt `attempt` of `max_attempts`, and writes the
/// status line: `503 Service Unavailable (attempt 2/5, next in 40s)`.
pub fn after_failure(
    what: &str,
    retryable: bool,
    attempt: i32,
    max_attempts: i32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> (AfterFailure, String) {
    if !retryable {
        return (
            AfterFailure::GiveUp,
            format!("{what} (attempt {attempt}/{max_attempts}, not retried)"),
        );
    }
    if attempt >= max_attempts {
        return (
            AfterFailure::GiveUp,
            format!("{what} (attempt {attempt}/{max_attempts}, giving up)"),
        );
    }
    let wait = backoff(attempt, retry_after, jitter);
    (
        AfterFailure::RetryIn(wait),
        format!(
            "{what} (attempt {attempt}/{max_attempts}, next in {})",
            short_duration(wait)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)]) -> Classified {
        let response = Response {
            status,
            reason: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: String::new(),
        };
        classify(&Ok(response), Duration::from_millis(7))
    }

    fn failure(kind: FailureKind) -> Classified {
        let failure = Failure {
            kind,
            message: "it failed".into(),
        };
        classify(&Err(failure), Duration::from_millis(7))
    }

    #[test]
    fn client_errors_are_final_except_408_and_429() {
        assert_eq!(answer(200, &[]).next, Next::Success);
        assert_eq!(answer(404, &[]).next, Next::Final);
        assert_eq!(answer(410, &[]).next, Next::Final);
        assert_eq!(answer(408, &[]).next, Next::Retry(None));
        assert_eq!(answer(429, &[]).next, Next::Retry(None));
        assert_eq!(answer(500, &[]).next, Next::Retry(None));
        assert_eq!(
            answer(503, &[("retry-after", "120")]).next,
            Next::Retry(Some(Duration::from_secs(120)))
        );
        let redirect = answer(302, &[("location", "https://x/")]);
        assert_eq!(redirect.next, Next::Retry(None));
        assert_eq!(redirect.what, "302, redirect to https://x/ not followed");
        assert_eq!(failure(FailureKind::Blocked).next, Next::Final);
        assert_eq!(failure(FailureKind::Dns).next, Next::Retry(None));
    }

    #[test]
    fn timeouts_refusals_and_overload_statuses_are_pressure() {
        assert_eq!(
            answer(204, &[]).pressure,
            Pressure::Answered(Duration::from_millis(7))
        );
        for status in [408, 429, 503, 504] {
            assert_eq!(answer(status, &[]).pressure, Pressure::Overloaded);
        }
        for status in [400, 404, 500, 302] {
            assert_eq!(answer(status, &[]).pressure, Pressure::Neutral);
        }
        for kind in [FailureKind::Timeout, FailureKind::ConnectionRefused] {
            assert_eq!(failure(kind).pressure, Pressure::Overloaded);
        }
        for kind in [FailureKind::Tls, FailureKind::Dns, FailureKind::Blocked] {
            assert_eq!(failure(kind).pressure, Pressure::Neutral);
        }
    }

    #[test]
    fn backoff_follows_the_schedule_with_jitter() {
        for (attempt, base) in [(1, 10.0), (2, 60.0), (7, 50400.0), (12, 50400.0)] {
            let wait = backoff(attempt, None, jitter()).as_secs_f64();
            assert!(
                wait >= base * 0.8 && wait <= base * 1.2,
                "attempt {attempt}: {wait}"
            );
        }
        let total: u64 = SCHEDULE.iter().sum();
        assert!(
            (80_000..=90_000).contains(&total),
            "the schedule spans about a day: {total}"
        );
    }

    #[test]
    fn retry_after_lengthens_a_wait_but_never_shortens_it() {
        for asked in [0, 3] {
            let wait = backoff(1, Some(Duration::from_secs(asked)), jitter()).as_secs_f64();
            assert!((8.0..=12.0).contains(&wait), "Retry-After {asked}: {wait}");
        }
        assert_eq!(
            backoff(1, Some(Duration::from_secs(600)), jitter()),
            Duration::from_secs(600)
        );
        assert_eq!(
            backoff(1, Some(Duration::from_secs(10 * 86400)), jitter()),
            RETRY_AFTER_CAP
        );
        assert_eq!(parse_retry_after("soon", chrono::Utc::now()), None);
        let huge = parse_retry_after("99999999999999999999999", chrono::Utc::now());
        assert_eq!(backoff(1, huge, jitter()), RETRY_AFTER_CAP);
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn status_lines_say_what_happens_next() {
        let (after, line) = after_failure(
            "503 Service Unavailable",
            true,
            2,
            5,
            Some(Duration::from_secs(400)),
            jitter(),
        );
        assert_eq!(after, AfterFailure::RetryIn(Duration::from_secs(400)));
        assert_eq!(line, "503 Service Unavailable (attempt 2/5, next in 7m)");
        let (after, line) = after_failure("500 Internal Server Error", true, 5, 5, None, 1.0);
        assert_eq!(after, AfterFailure::GiveUp);
        assert_eq!(line, "500 Internal Server Error (attempt 5/5, giving up)");
        assert_eq!(
            after_failure("404 Not Found", false, 1, 8, None, 1.0).1,
            "404 Not Found (attempt 1/8, not retried)"
        );
    }
}
