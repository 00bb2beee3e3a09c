//! Call permissions between a business number and a user (PERMS in the reference).

use serde::{Deserialize, Serialize};

pub const TEMPORARY_PERMISSION_MS: u64 = 7 * 24 * 3600 * 1000;
pub const DAY_MS: u64 = 24 * 3600 * 1000;
pub const WEEK_MS: u64 = 7 * DAY_MS;
pub const REQUESTS_PER_DAY: usize = 1;
pub const REQUESTS_PER_WEEK: usize = 2;
pub const CONNECTED_CALLS_PER_DAY: usize = 100;
pub const UNANSWERED_BEFORE_REVOKE: u32 = 4;

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
    pub fn request_limit_hit(&self, now_ms: u64) -> Option<(&'static str, usize)> {
        if self.requests_within(now_ms, DAY_MS) >= REQUESTS_PER_DAY {
            Some(("24 hours", REQUESTS_PER_DAY))
        } else if self.requests_within(now_ms, WEEK_MS) >= REQUESTS_PER_WEEK {
            Some(("7 days", REQUESTS_PER_WEEK))
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
    fn one_request_a_day_and_two_a_week() {
        let mut p = Permission::default();
        assert_eq!(p.request_limit_hit(0), None);
        p.requests.push(0);
        assert_eq!(p.request_limit_hit(DAY_MS - 1), Some(("24 hours", 1)));
        assert_eq!(p.request_limit_hit(DAY_MS), None);
        p.requests.push(DAY_MS);
        assert_eq!(p.request_limit_hit(2 * DAY_MS), Some(("7 days", 2)));
        assert_eq!(p.request_limit_hit(WEEK_MS), None);
        p.on_connected_call();
        assert_eq!(p.request_limit_hit(2 * DAY_MS), None);
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
