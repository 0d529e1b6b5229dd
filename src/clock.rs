//! Time for every rule that depends on it: a [`Clock`] the application holds, and formatting.
//!
//! The identity provider stores Unix seconds (UTC) and shows RFC 3339; the Layer emulator
//! counts milliseconds and shows Layer's `…T20:45:35.820Z` form. The identity provider's rules
//! that depend on time (session expiry, token lifetimes, login throttling, and later e-mail
//! tokens) ask the application's [`Clock`], never the system directly, so tests can set and
//! advance time instead of sleeping. The system clock is the only one production uses.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch, UTC, from the system clock. For the command line and for code
/// with no application at hand; request paths use the application's [`Clock`].
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The application's clock: the system's, or a manual one that only moves when told to.
/// Cheap to clone; clones of a manual clock share its time.
#[derive(Clone, Debug)]
pub struct Clock(Source);

#[derive(Clone, Debug)]
enum Source {
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn system() -> Self {
        Clock(Source::System)
    }

    /// A clock that reads `unix` until [`Clock::set`] or [`Clock::advance`] moves it.
    pub fn manual(unix: i64) -> Self {
        Clock(Source::Manual(Arc::new(AtomicI64::new(unix))))
    }

    /// Seconds since the Unix epoch, UTC.
    pub fn now(&self) -> i64 {
        match &self.0 {
            Source::System => unix_now(),
            Source::Manual(now) => now.load(Ordering::SeqCst),
        }
    }

    pub fn is_manual(&self) -> bool {
        matches!(self.0, Source::Manual(_))
    }

    /// Moves a manual clock forward (or back, with a negative number).
    ///
    /// # Panics
    /// On the system clock: only tests move time, and a test that thinks it does when it
    /// does not would pass for the wrong reason.
    pub fn advance(&self, secs: i64) {
        match &self.0 {
            Source::System => panic!("the system clock cannot be advanced; use Clock::manual"),
            Source::Manual(now) => {
                now.fetch_add(secs, Ordering::SeqCst);
            }
        }
    }

    /// Sets a manual clock. Panics on the system clock, like [`Clock::advance`].
    pub fn set(&self, unix: i64) {
        match &self.0 {
            Source::System => panic!("the system clock cannot be set; use Clock::manual"),
            Source::Manual(now) => now.store(unix, Ordering::SeqCst),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

/// `2026-11-21T20:45:35Z` for a Unix time; empty for one out of range.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// `2026-11-21T20:45:35.820Z`, the form Layer's timestamps take.
pub fn iso_ms(ms: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// Parses an RFC 3339 timestamp (the SDK's `from_timestamp`, `since`) to milliseconds.
pub fn parse_iso_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_share_its_time() {
        let clock = Clock::manual(1_000);
        let clone = clock.clone();
        assert_eq!(clock.now(), 1_000);
        clock.advance(60);
        assert_eq!(clone.now(), 1_060);
        clone.set(5);
        assert_eq!(clock.now(), 5);
        assert!(clock.is_manual());
    }

    #[test]
    #[should_panic(expected = "cannot be advanced")]
    fn the_system_clock_refuses_to_be_advanced() {
        Clock::system().advance(1);
    }
}
