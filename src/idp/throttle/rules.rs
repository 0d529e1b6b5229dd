//! The throttling rules as plain arithmetic over the counters the store reads: what holds an
//! attempt, and for how long. No I/O, so every rule is unit-tested here and integration-tested
//! over HTTP in `tests/api/throttle.rs`.

use serde::{Deserialize, Serialize};

use crate::store::ThrottleState;

/// `[throttle]`: the limits on guessing passwords and on sign-ups (README "Login defense").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleSettings {
    /// Failures of one account from one address before each further attempt waits.
    pub free_failures: u32,
    /// The first wait; each further failure doubles it…
    pub base_delay_secs: u64,
    /// …up to this.
    pub max_delay_secs: u64,
    /// How long a failure counts, for the two rules above and the per-account ceiling.
    pub failure_window_secs: u64,
    /// Failures of one account from all addresses within `failure_window_secs` after which
    /// every address holds, except those that logged in to it within the session lifetime.
    /// Below NIST SP 800-63B's 100.
    pub account_max_failures: u32,
    /// Failures of all accounts from one address within `address_window_secs` (password
    /// spraying) after which that address holds.
    pub address_max_failures: u32,
    pub address_window_secs: u64,
    /// Sign-ups (`POST /users`) one address may make within `signup_window_secs`.
    pub signups_per_address: u32,
    pub signup_window_secs: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay_secs: 1,
            max_delay_secs: 3600,
            failure_window_secs: 24 * 3600,
            account_max_failures: 50,
            address_max_failures: 100,
            address_window_secs: 3600,
            signups_per_address: 20,
            signup_window_secs: 3600,
        }
    }
}

/// NIST SP 800-63B §5.2.2: no more than 100 consecutive failed attempts on one account.
pub const NIST_MAX_FAILURES: u32 = 100;
const MAX_WINDOW_SECS: u64 = 30 * 24 * 3600;

impl ThrottleSettings {
    /// Checks every range; the message names the setting and its variable.
    pub fn validate(&self) -> Result<(), String> {
        let env = |name: &str| format!("LAYER_IDP_THROTTLE__{}", name.to_uppercase());
        let in_range = |name: &str, value: u64, min: u64, max: u64| {
            if value < min || value > max {
                Err(format!(
                    "throttle.{name} is {value}; it must be between {min} and {max} ({})",
                    env(name)
                ))
            } else {
                Ok(())
            }
        };
        in_range("free_failures", self.free_failures.into(), 1, 20)?;
        in_range("base_delay_secs", self.base_delay_secs, 1, 3600)?;
        in_range(
            "max_delay_secs",
            self.max_delay_secs,
            self.base_delay_secs,
            self.failure_window_secs,
        )?;
        in_range(
            "failure_window_secs",
            self.failure_window_secs,
            60,
            MAX_WINDOW_SECS,
        )?;
        in_range(
            "account_max_failures",
            self.account_max_failures.into(),
            self.free_failures.into(),
            u64::from(NIST_MAX_FAILURES) - 1,
        )?;
        in_range(
            "address_max_failures",
            self.address_max_failures.into(),
            1,
            1_000_000,
        )?;
        in_range(
            "address_window_secs",
            self.address_window_secs,
            60,
            MAX_WINDOW_SECS,
        )?;
        in_range(
            "signups_per_address",
            self.signups_per_address.into(),
            1,
            1_000_000,
        )?;
        in_range(
            "signup_window_secs",
            self.signup_window_secs,
            60,
            MAX_WINDOW_SECS,
        )?;
        Ok(())
    }

    /// The wait after `failures` failures of one account from one address (0 while free).
    pub fn delay_after(&self, failures: i64) -> i64 {
        let free = i64::from(self.free_failures);
        if failures < free {
            return 0;
        }
        let doublings = u32::try_from(failures - free).unwrap_or(u32::MAX).min(62);
        let delay = self.base_delay_secs.saturating_mul(1u64 << doublings);
        i64::try_from(delay.min(self.max_delay_secs)).unwrap_or(i64::MAX)
    }
}

/// The rule that held an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Too many failures of this account from this address: wait out the growing delay.
    AccountAndAddress,
    /// The account's ceiling over the rolling window.
    Account,
    /// This address's budget across accounts (password spraying).
    Address,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::AccountAndAddress => "failures of this account from this address",
            Rule::Account => "failure ceiling of the account",
            Rule::Address => "failure budget of the address",
        }
    }
}

/// An attempt that must not be evaluated yet, and when it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub rule: Rule,
    /// Seconds until the rule lets the attempt through (at least 1).
    pub retry_after: i64,
}

/// Whether an attempt at `now` is held, given the counters. Of several holding rules, the one
/// that holds longest is reported.
pub fn evaluate(settings: &ThrottleSettings, state: &ThrottleState, now: i64) -> Option<Hold> {
    let mut holds = Vec::with_capacity(3);
    if let Some(last) = state.pair_last_failure {
        let until = last.saturating_add(settings.delay_after(state.pair_failures));
        if until > now {
            holds.push(Hold {
                rule: Rule::AccountAndAddress,
                retry_after: until - now,
            });
        }
    }
    // An address that logged in to this account recently is the real user's: the shared
    // ceilings must not let strangers lock it out. Its own failures still hold it (above).
    if !state.recent_success {
        let window = i64::try_from(settings.failure_window_secs).unwrap_or(i64::MAX);
        if state.account_failures >= i64::from(settings.account_max_failures) {
            let oldest = state.account_oldest_failure.unwrap_or(now);
            holds.push(Hold {
                rule: Rule::Account,
                retry_after: oldest.saturating_add(window) - now,
            });
        }
        let window = i64::try_from(settings.address_window_secs).unwrap_or(i64::MAX);
        if state.client_failures >= i64::from(settings.address_max_failures) {
            let oldest = state.client_oldest_failure.unwrap_or(now);
            holds.push(Hold {
                rule: Rule::Address,
                retry_after: oldest.saturating_add(window) - now,
            });
        }
    }
    holds
        .into_iter()
        .map(|hold| Hold {
            retry_after: hold.retry_after.max(1),
            ..hold
        })
        .max_by_key(|hold| hold.retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    #[test]
    fn the_delay_doubles_after_the_free_failures_up_to_the_cap() {
        let s = ThrottleSettings::default();
        let delays: Vec<i64> = (0..20).map(|n| s.delay_after(n)).collect();
        assert_eq!(&delays[..8], [0, 0, 0, 0, 0, 1, 2, 4]);
        assert_eq!(delays[16], 2048);
        assert_eq!(delays[17], 3600);
        assert_eq!(s.delay_after(i64::MAX), 3600);
    }

    #[test]
    fn a_pair_is_held_until_its_delay_has_passed_since_the_last_failure() {
        let s = ThrottleSettings::default();
        let state = ThrottleState {
            pair_failures: 7,
            pair_last_failure: Some(NOW - 1),
            ..ThrottleState::default()
        };
        let hold = evaluate(&s, &state, NOW).unwrap();
        assert_eq!((hold.rule, hold.retry_after), (Rule::AccountAndAddress, 3));
        assert_eq!(evaluate(&s, &state, NOW + 3), None);
    }

    #[test]
    fn the_ceilings_hold_strangers_but_not_an_address_with_a_recent_success() {
        let s = ThrottleSettings::default();
        let mut state = ThrottleState {
            account_failures: 50,
            account_oldest_failure: Some(NOW - 100),
            client_failures: 100,
            client_oldest_failure: Some(NOW - 3000),
            ..ThrottleState::default()
        };
        let hold = evaluate(&s, &state, NOW).unwrap();
        assert_eq!((hold.rule, hold.retry_after), (Rule::Account, 86_300));
        state.account_failures = 49;
        let hold = evaluate(&s, &state, NOW).unwrap();
        assert_eq!((hold.rule, hold.retry_after), (Rule::Address, 600));
        state.account_failures = 50;
        state.recent_success = true;
        assert_eq!(evaluate(&s, &state, NOW), None);
    }

    #[test]
    fn settings_outside_their_ranges_name_the_variable() {
        let s = ThrottleSettings {
            account_max_failures: 100,
            ..ThrottleSettings::default()
        };
        let err = s.validate().unwrap_err();
        assert!(
            err.contains("LAYER_IDP_THROTTLE__ACCOUNT_MAX_FAILURES"),
            "{err}"
        );
        assert!(ThrottleSettings::default().validate().is_ok());
    }
}
