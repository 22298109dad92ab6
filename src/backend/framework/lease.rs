//! TTL arithmetic for leases and tokens, as the Go framework's `CalculateTTL` does it.
//!
//! The clock is an input: the caller passes `now` (and the lease's first issue time), so the
//! arithmetic is the same in tests as on a server.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The mount's TTLs, as the system view answers them (the mount's tuning, else the server's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TtlLimits {
    /// The TTL of a lease that asks for none (`SystemView.DefaultLeaseTTL`).
    pub default_lease_ttl: Duration,
    /// The longest a lease may live, counted from its first issue (`SystemView.MaxLeaseTTL`).
    pub max_lease_ttl: Duration,
}

/// What the request and the backend ask of a lease; zero means "not set", as Go's `<= 0` does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TtlRequest {
    /// The increment the user asked for (a renewal's `increment`, or a requested TTL).
    pub increment: Duration,
    /// The backend's TTL (say a role's `ttl`), used when there is no increment.
    pub backend_ttl: Duration,
    /// A period: the lease renews to this TTL every time, without a max TTL of the mount.
    pub period: Duration,
    /// The backend's max TTL (say a role's `max_ttl`); only lowers the mount's.
    pub backend_max_ttl: Duration,
    /// An explicit max TTL (a token's `explicit_max_ttl`); only lowers the mount's, and is the
    /// only bound of a periodic lease.
    pub explicit_max_ttl: Duration,
}

/// Why no TTL can be given; the texts are Go's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TtlError {
    /// The effective max TTL came out zero (the system view answered none).
    NoMaxTtl,
    /// The lease has already lived its max TTL.
    PastMaxTtl,
}

impl fmt::Display for TtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoMaxTtl => "max TTL must be greater than zero",
            Self::PastMaxTtl => "past the max TTL, cannot renew",
        })
    }
}

impl std::error::Error for TtlError {}

/// Go's `framework.CalculateTTL`: the TTL to give a lease issued (or first issued) at `start`
/// (`None`: now) and renewed at `now`, with the warnings to show the user when a value was
/// capped.
///
/// The max TTL is the mount's, lowered by the backend's and the explicit one. A periodic lease
/// gets the period (capped at that max TTL) and is bounded only by `start` + explicit max TTL;
/// any other lease gets the increment, else the backend's TTL, else the mount's default,
/// bounded by `start` + max TTL. Times count in whole seconds, as Go truncates them.
pub fn calculate_ttl(
    limits: &TtlLimits,
    request: &TtlRequest,
    start: Option<SystemTime>,
    now: SystemTime,
) -> Result<(Duration, Vec<String>), TtlError> {
    let now = unix_seconds(now);
    let start = start.map_or(now, unix_seconds);
    let mut warnings = Vec::new();

    let mut max_ttl = limits.max_lease_ttl;
    for lower in [request.backend_max_ttl, request.explicit_max_ttl] {
        if !lower.is_zero() && lower < max_ttl {
            max_ttl = lower;
        }
    }
    if max_ttl.is_zero() {
        return Err(TtlError::NoMaxTtl);
    }

    let (mut ttl, bound) = if !request.period.is_zero() {
        let mut period = request.period;
        if period > max_ttl {
            warnings.push(format!(
                "period of {:?} exceeded the effective max_ttl of {:?}; period value is capped \
                 accordingly",
                human_duration(period),
                human_duration(max_ttl)
            ));
            period = max_ttl;
        }
        let bound = (!request.explicit_max_ttl.is_zero()).then_some(request.explicit_max_ttl);
        (period, bound)
    } else {
        let ttl = [request.increment, request.backend_ttl]
            .into_iter()
            .find(|d| !d.is_zero())
            .unwrap_or(limits.default_lease_ttl);
        (ttl, Some(max_ttl))
    };

    if let Some(bound) = bound {
        // What is left until start + bound, in nanoseconds; negative once past it.
        let left = i128::from(start - now) * 1_000_000_000 + bound.as_nanos() as i128;
        if left <= 0 {
            return Err(TtlError::PastMaxTtl);
        }
        let left = Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX));
        if left < ttl {
            warnings.push(format!(
                "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped \
                 accordingly",
                human_duration(ttl),
                human_duration(left)
            ));
            ttl = left;
        }
    }
    Ok((ttl, warnings))
}

/// Whole seconds since the Unix epoch, rounded down (Go's `Truncate(time.Second)`).
fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let whole = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            if before.subsec_nanos() > 0 {
                -whole - 1
            } else {
                -whole
            }
        }
    }
}

/// Go's `humanDuration`: `Duration.String()` without the zero minutes and seconds
/// (`1h`, `1h5s`, `2m`, `1m30s`).
fn human_duration(d: Duration) -> String {
    let mut text = go_duration_string(d);
    if text.ends_with("m0s") {
        text.truncate(text.len() - 2);
    }
    if let Some(at) = text.find("h0m").filter(|at| *at > 0) {
        text.replace_range(at + 1..at + 3, "");
    }
    text
}

/// Go's `time.Duration.String()` for a non-negative duration: `72h3m0.5s`, `1.5ms`, `0s`.
fn go_duration_string(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000_000_000 {
        return match nanos {
            n if n < 1_000 => format!("{n}ns"),
            n if n < 1_000_000 => format!("{}µs", decimal(n, 3)),
            n => format!("{}ms", decimal(n, 6)),
        };
    }
    let seconds = decimal(nanos, 9);
    let whole = nanos / 1_000_000_000;
    // `decimal` printed the whole seconds; keep only those under a minute.
    let fraction = seconds.split_once('.').map(|(_, f)| f);
    let mut text = match fraction {
        Some(fraction) => format!("{}.{fraction}s", whole % 60),
        None => format!("{}s", whole % 60),
    };
    let minutes = whole / 60;
    if minutes > 0 {
        text = format!("{}m{text}", minutes % 60);
        let hours = minutes / 60;
        if hours > 0 {
            text = format!("{hours}h{text}");
        }
    }
    text
}

/// `value / 10^places` in decimal, trailing zeros of the fraction (and a bare point) dropped.
fn decimal(value: u128, places: u32) -> String {
    let scale = 10u128.pow(places);
    let fraction = format!("{:0width$}", value % scale, width = places as usize);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{}", value / scale)
    } else {
        format!("{}.{fraction}", value / scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    const NOW: u64 = 1_700_000_000;

    fn limits() -> TtlLimits {
        TtlLimits {
            default_lease_ttl: HOUR,
            max_lease_ttl: 24 * HOUR,
        }
    }

    fn ttl(request: TtlRequest, start: Option<u64>) -> Result<(Duration, Vec<String>), TtlError> {
        calculate_ttl(&limits(), &request, start.map(at), at(NOW))
    }

    #[test]
    fn the_mount_default_when_nothing_is_asked() {
        assert_eq!(ttl(TtlRequest::default(), None), Ok((HOUR, vec![])));
    }

    #[test]
    fn the_increment_wins_over_the_backend_ttl() {
        let request = TtlRequest {
            increment: 2 * HOUR,
            backend_ttl: 3 * HOUR,
            ..TtlRequest::default()
        };
        assert_eq!(ttl(request, None), Ok((2 * HOUR, vec![])));
    }

    #[test]
    fn the_backend_ttl_without_an_increment() {
        let request = TtlRequest {
            backend_ttl: 3 * HOUR,
            ..TtlRequest::default()
        };
        assert_eq!(ttl(request, None), Ok((3 * HOUR, vec![])));
    }

    #[test]
    fn capped_at_what_is_left_of_the_max_ttl_since_the_first_issue() {
        let request = TtlRequest {
            increment: 5 * HOUR,
            ..TtlRequest::default()
        };
        // Issued 22 hours ago under a 24 h max: two hours are left.
        let started = NOW - 22 * 3600;
        assert_eq!(
            ttl(request, Some(started)),
            Ok((
                2 * HOUR,
                vec![
                    "TTL of \"5h\" exceeded the effective max_ttl of \"2h\"; TTL value is capped \
                     accordingly"
                        .to_owned()
                ]
            ))
        );
    }

    #[test]
    fn the_backend_and_explicit_max_ttls_only_lower_the_mount_max() {
        let request = TtlRequest {
            increment: 48 * HOUR,
            backend_max_ttl: 90 * 60 * Duration::from_secs(1),
            ..TtlRequest::default()
        };
        let (given, warnings) = ttl(request, None).unwrap_or_default();
        assert_eq!(given, Duration::from_secs(5400));
        assert_eq!(
            warnings,
            [
                "TTL of \"48h\" exceeded the effective max_ttl of \"1h30m\"; TTL value is capped \
              accordingly"
            ]
        );

        let request = TtlRequest {
            increment: 48 * HOUR,
            backend_max_ttl: 100 * HOUR,
            explicit_max_ttl: 30 * Duration::from_secs(1),
            ..TtlRequest::default()
        };
        let (given, _) = ttl(request, None).unwrap_or_default();
        assert_eq!(given, Duration::from_secs(30));
    }

    #[test]
    fn past_the_max_ttl_cannot_renew() {
        let started = NOW - 24 * 3600;
        assert_eq!(
            ttl(TtlRequest::default(), Some(started)),
            Err(TtlError::PastMaxTtl)
        );
        assert_eq!(
            TtlError::PastMaxTtl.to_string(),
            "past the max TTL, cannot renew"
        );
    }

    #[test]
    fn no_max_ttl_is_an_error() {
        let none = TtlLimits::default();
        assert_eq!(
            calculate_ttl(&none, &TtlRequest::default(), None, at(NOW)),
            Err(TtlError::NoMaxTtl)
        );
        assert_eq!(
            TtlError::NoMaxTtl.to_string(),
            "max TTL must be greater than zero"
        );
    }

    #[test]
    fn a_period_is_capped_at_the_max_ttl_but_not_bounded_by_the_first_issue() {
        let request = TtlRequest {
            period: 30 * HOUR,
            increment: HOUR,
            ..TtlRequest::default()
        };
        // A year after the first issue, a periodic lease still renews.
        let started = NOW - 365 * 24 * 3600;
        assert_eq!(
            ttl(request, Some(started)),
            Ok((
                24 * HOUR,
                vec![
                    "period of \"30h\" exceeded the effective max_ttl of \"24h\"; period value is \
                     capped accordingly"
                        .to_owned()
                ]
            ))
        );
    }

    #[test]
    fn a_period_is_bounded_by_the_explicit_max_ttl() {
        let request = TtlRequest {
            period: 2 * HOUR,
            explicit_max_ttl: 10 * HOUR,
            ..TtlRequest::default()
        };
        let started = NOW - 9 * 3600;
        assert_eq!(
            ttl(request, Some(started)),
            Ok((
                HOUR,
                vec![
                    "TTL of \"2h\" exceeded the effective max_ttl of \"1h\"; TTL value is capped \
                     accordingly"
                        .to_owned()
                ]
            ))
        );
        assert_eq!(
            ttl(request, Some(NOW - 10 * 3600)),
            Err(TtlError::PastMaxTtl)
        );
    }

    #[test]
    fn times_are_truncated_to_seconds() {
        let request = TtlRequest {
            increment: 24 * HOUR,
            ..TtlRequest::default()
        };
        // Started 0.9 s "before" now by the clock, but in the same second: the full max is left.
        let start = at(NOW) + Duration::from_millis(100);
        let now = at(NOW) + Duration::from_millis(999);
        assert_eq!(
            calculate_ttl(&limits(), &request, Some(start), now),
            Ok((24 * HOUR, vec![]))
        );
    }

    #[test]
    fn human_durations_drop_zero_units() {
        let secs = Duration::from_secs;
        assert_eq!(human_duration(secs(3600)), "1h");
        assert_eq!(human_duration(secs(3605)), "1h5s");
        assert_eq!(human_duration(secs(3660)), "1h1m");
        assert_eq!(human_duration(secs(120)), "2m");
        assert_eq!(human_duration(secs(90)), "1m30s");
        assert_eq!(human_duration(secs(0)), "0s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(human_duration(Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(human_duration(Duration::from_nanos(15)), "15ns");
        assert_eq!(go_duration_string(secs(3600)), "1h0m0s");
        assert_eq!(go_duration_string(secs(768 * 3600)), "768h0m0s");
    }
}
