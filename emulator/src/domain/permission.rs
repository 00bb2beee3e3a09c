//! Call permissions between a business number and a user (PERMS in the reference).

use serde::{Deserialize, Serialize};

pub const TEMPORARY_PERMISSION_MS: u64 = 7 * 24 * 3600 * 1000;
pub const DAY_MS: u64 = 24 * 3600 * 1000;
pub const WEEK_MS: u64 = 7 * DAY_MS;
pub const CONNECTED_CALLS_PER_DAY: usize = 100;
/// How long a permission request can be answered: 7 days after delivery, and 7 days
/// after the user's last answer to it (cloud-api §6.5).
pub const REQUEST_LIFETIME_MS: u64 = WEEK_MS;

/// The permission limits of a number's profile (cloud-api §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermissionLimits {
    pub requests_per_day: usize,
    pub requests_per_week: usize,
    /// Consecutive unanswered or declined business calls that revoke the permission.
    pub unanswered_before_revoke: u32,
}

impl PermissionLimits {
    pub const PRODUCTION: Self = Self {
        requests_per_day: 1,
        requests_per_week: 2,
        unanswered_before_revoke: 4,
    };
    /// Sandbox and public test numbers: 25 a day, 100 a week, revoked after 10.
    pub const TEST: Self = Self {
        requests_per_day: 25,
        requests_per_week: 100,
        unanswered_before_revoke: 10,
    };
}

/// Why a permission request can no longer be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestExpiry {
    /// 7 days passed since delivery without an answer.
    Unanswered,
    /// 7 days passed since the user answered it.
    Answered,
    /// The user answered a newer request.
    Superseded,
}

/// How long a delivered permission request stays answerable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLifetime {
    pub expires_at_ms: u64,
    /// What `expires_at_ms` counts from (or that a newer request ended it).
    pub basis: RequestExpiry,
}

impl RequestLifetime {
    pub fn delivered(at_ms: u64) -> Self {
        Self {
            expires_at_ms: at_ms.saturating_add(REQUEST_LIFETIME_MS),
            basis: RequestExpiry::Unanswered,
        }
    }

    pub fn answered(at_ms: u64) -> Self {
        Self {
            expires_at_ms: at_ms.saturating_add(REQUEST_LIFETIME_MS),
            basis: RequestExpiry::Answered,
        }
    }

    pub fn superseded(at_ms: u64) -> Self {
        Self {
            expires_at_ms: at_ms,
            basis: RequestExpiry::Superseded,
        }
    }

    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at_ms
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    None,
    Temporary { expires_at_ms: u64 },
    Permanent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub grant: Grant,
    /// Permission request sends (Unix ms) since the last connected call.
    pub requests: Vec<u64>,
    /// Connected business-initiated calls (Unix ms), for the 100 / 24 h limit.
    pub connected_calls: Vec<u64>,
    pub consecutive_unanswered: u32,
}

impl Default for Permission {
    fn default() -> Self {
        Self {
            grant: Grant::None,
            requests: Vec::new(),
            connected_calls: Vec::new(),
            consecutive_unanswered: 0,
        }
    }
}

impl Permission {
    pub fn is_granted(&self, now_ms: u64) -> bool {
        match self.grant {
            Grant::None => false,
            Grant::Temporary { expires_at_ms } => now_ms < expires_at_ms,
            Grant::Permanent => true,
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.grant == Grant::Permanent
    }

    pub fn requests_within(&self, now_ms: u64, window_ms: u64) -> usize {
        self.requests
            .iter()
            .filter(|t| now_ms.saturating_sub(**t) < window_ms)
            .count()
    }

    pub fn connected_within_day(&self, now_ms: u64) -> usize {
        self.connected_calls
            .iter()
            .filter(|t| now_ms.saturating_sub(**t) < DAY_MS)
            .count()
    }

    /// Which request limit a new request would break, if any: (period, max).
    pub fn request_limit_hit(
        &self,
        now_ms: u64,
        limits: PermissionLimits,
    ) -> Option<(&'static str, usize)> {
        if self.requests_within(now_ms, DAY_MS) >= limits.requests_per_day {
            Some(("24 hours", limits.requests_per_day))
        } else if self.requests_within(now_ms, WEEK_MS) >= limits.requests_per_week {
            Some(("7 days", limits.requests_per_week))
        } else {
            None
        }
    }

    /// When the oldest request in a full window leaves it (`limit_expiration_time`).
    pub fn window_frees_at(stamps: &[u64], now_ms: u64, window_ms: u64) -> Option<u64> {
        stamps
            .iter()
            .filter(|t| now_ms.saturating_sub(**t) < window_ms)
            .min()
            .map(|t| t.saturating_add(window_ms))
    }

    /// A connected call (either direction) resets the request limits.
    pub fn on_connected_call(&mut self) {
        self.requests.clear();
        self.consecutive_unanswered = 0;
    }

    pub fn prune(&mut self, now_ms: u64) {
        self.requests
            .retain(|t| now_ms.saturating_sub(*t) < WEEK_MS);
        self.connected_calls
            .retain(|t| now_ms.saturating_sub(*t) < DAY_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_numbers_allow_25_a_day_and_100_a_week() {
        let test = PermissionLimits::TEST;
        let mut p = Permission::default();
        p.requests.extend(std::iter::repeat_n(0, 24));
        assert_eq!(p.request_limit_hit(1, test), None);
        p.requests.push(0);
        assert_eq!(p.request_limit_hit(1, test), Some(("24 hours", 25)));
        assert_eq!(
            p.request_limit_hit(1, PermissionLimits::PRODUCTION),
            Some(("24 hours", 1))
        );
        for day in 1..4 {
            p.requests.extend(std::iter::repeat_n(day * DAY_MS, 25));
        }
        assert_eq!(p.request_limit_hit(4 * DAY_MS, test), Some(("7 days", 100)));
    }

    #[test]
    fn a_request_lives_seven_days_from_delivery_then_from_each_answer() {
        let d = RequestLifetime::delivered(1_000);
        assert!(!d.expired(1_000 + WEEK_MS - 1));
        assert!(d.expired(1_000 + WEEK_MS));
        let a = RequestLifetime::answered(5 * DAY_MS);
        assert!(!a.expired(12 * DAY_MS - 1));
        assert!(a.expired(12 * DAY_MS));
        assert!(RequestLifetime::superseded(3).expired(3));
    }

    #[test]
    fn one_request_a_day_and_two_a_week() {
        let prod = PermissionLimits::PRODUCTION;
        let mut p = Permission::default();
        assert_eq!(p.request_limit_hit(0, prod), None);
        p.requests.push(0);
        assert_eq!(p.request_limit_hit(DAY_MS - 1, prod), Some(("24 hours", 1)));
        assert_eq!(p.request_limit_hit(DAY_MS, prod), None);
        p.requests.push(DAY_MS);
        assert_eq!(p.request_limit_hit(2 * DAY_MS, prod), Some(("7 days", 2)));
        assert_eq!(p.request_limit_hit(WEEK_MS, prod), None);
        p.on_connected_call();
        assert_eq!(p.request_limit_hit(2 * DAY_MS, prod), None);
    }

    #[test]
    fn temporary_grants_expire() {
        let p = Permission {
            grant: Grant::Temporary { expires_at_ms: 10 },
            ..Default::default()
        };
        assert!(p.is_granted(9));
        assert!(!p.is_granted(10));
    }
}
