//! Graph API versions and every rule that depends on one, in one table.
//!
//! The version comes from the request path (`/v24.0/…`); unversioned paths act as the
//! configured default ([`DEFAULT_GRAPH_VERSION`] unless the config says otherwise), as
//! Graph uses the app's default version for them. A shape that differs by version is
//! decided by [`GraphVersion::has`] and nowhere else.

use serde::{Deserialize, Serialize};

/// A Graph API version, `vMAJOR.MINOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GraphVersion {
    pub major: u16,
    pub minor: u16,
}

/// What unversioned paths act as: the version of the current docs' examples (cloud-api §0).
pub const DEFAULT_GRAPH_VERSION: GraphVersion = GraphVersion::new(25, 0);

impl GraphVersion {
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    /// `v21.0`, `v17`, `21.0` → the version; anything else → `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix('v').unwrap_or(s);
        let (major, minor) = rest.split_once('.').unwrap_or((rest, "0"));
        let num = |p: &str| {
            (!p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u16>().ok())
                .flatten()
        };
        Some(Self::new(num(major)?, num(minor)?))
    }

    /// Whether a version-dependent rule applies to requests made on this version.
    pub fn has(self, rule: Rule) -> bool {
        let row = RULES
            .iter()
            .find(|r| r.rule == rule)
            .expect("every rule has a row");
        let after_from = row.from.is_none_or(|f| self >= f);
        let before_until = row.until.is_none_or(|u| self < u);
        after_from && before_until
    }
}

impl std::fmt::Display for GraphVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}.{}", self.major, self.minor)
    }
}

impl Serialize for GraphVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GraphVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        GraphVersion::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "not a Graph API version: {s:?} (expected vMAJOR.MINOR, e.g. v24.0)"
            ))
        })
    }
}

impl Default for GraphVersion {
    fn default() -> Self {
        DEFAULT_GRAPH_VERSION
    }
}

/// A behaviour that exists only on some Graph versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `conversation` on `sent`/`delivered` statuses (cloud-api §3.1: omitted entirely
    /// from v24.0 on).
    StatusConversation,
    /// The Calling API: `/calls`, `/call_permissions` (cloud-api §0: v17.0+).
    CallingApi,
}

pub struct RuleRow {
    pub rule: Rule,
    /// First version with the behaviour (`None`: since always).
    pub from: Option<GraphVersion>,
    /// First version without it (`None`: still there).
    pub until: Option<GraphVersion>,
    pub source: &'static str,
}

/// Every version-dependent rule of the emulator.
pub const RULES: &[RuleRow] = &[
    RuleRow {
        rule: Rule::StatusConversation,
        from: None,
        until: Some(GraphVersion::new(24, 0)),
        source: "cloud-api §3.1: conversation omitted entirely for v24.0+",
    },
    RuleRow {
        rule: Rule::CallingApi,
        from: Some(GraphVersion::new(17, 0)),
        until: None,
        source: "cloud-api §0: Calling needs Graph API v17.0+",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> GraphVersion {
        GraphVersion::parse(s).unwrap()
    }

    #[test]
    fn versions_parse_and_order_numerically() {
        assert_eq!(v("v21.0"), GraphVersion::new(21, 0));
        assert_eq!(v("v9"), GraphVersion::new(9, 0));
        assert_eq!(v("24.1"), GraphVersion::new(24, 1));
        assert!(v("v100.12") > v("v24.0"));
        assert!(v("v9.0") < v("v17.0"));
        for bad in ["v", "vX.0", "v21.", "v1234.0", "", "v-1"] {
            assert!(GraphVersion::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(v("v23.0").to_string(), "v23.0");
    }

    /// The table, version by version.
    #[test]
    fn each_rule_applies_on_its_versions() {
        let rows = [
            ("v16.0", true, false),
            ("v17.0", true, true),
            ("v21.0", true, true),
            ("v23.0", true, true),
            ("v23.9", true, true),
            ("v24.0", false, true),
            ("v25.0", false, true),
        ];
        for (ver, conversation, calling) in rows {
            assert_eq!(
                v(ver).has(Rule::StatusConversation),
                conversation,
                "{ver} conversation"
            );
            assert_eq!(v(ver).has(Rule::CallingApi), calling, "{ver} calling");
        }
        assert!(!DEFAULT_GRAPH_VERSION.has(Rule::StatusConversation));
    }

    #[test]
    fn versions_round_trip_through_serde() {
        let s = serde_json::to_string(&v("v24.0")).unwrap();
        assert_eq!(s, "\"v24.0\"");
        let back: GraphVersion = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v("v24.0"));
        assert!(serde_json::from_str::<GraphVersion>("\"latest\"").is_err());
    }
}
