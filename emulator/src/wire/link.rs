//! The call deep link a user opens: `wa.me/call/<number>[?biz_payload=…]`.

use super::url::percent_decode;
use crate::domain::error::{ApiError, ApiResult};

/// `wa.me/call/<number>[?biz_payload=…]`, with or without a scheme: the business
/// number's digits and the decoded payload.
pub fn parse_call_link(url: &str) -> ApiResult<(String, Option<String>)> {
    let bad = |why: &str| {
        ApiError::refused(
            "invalid_link",
            format!("{why}; expected wa.me/call/<number>[?biz_payload=…], got {url:?}."),
        )
    };
    let rest = url.trim();
    let rest = rest
        .strip_prefix("https://")
        .or_else(|| rest.strip_prefix("http://"))
        .unwrap_or(rest);
    let rest = rest.strip_prefix("www.").unwrap_or(rest);
    let rest = rest
        .strip_prefix("wa.me/")
        .ok_or_else(|| bad("not a wa.me link"))?;
    let rest = rest
        .strip_prefix("call/")
        .ok_or_else(|| bad("not a call link (wa.me/call/…)"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let number: String = path
        .trim_end_matches('/')
        .chars()
        .filter(|c| *c != '+')
        .collect();
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad("the number must be digits in international format"));
    }
    let mut payload = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "biz_payload" {
            let decoded = percent_decode(v)
                .map_err(|_| bad("biz_payload is not valid percent-encoded UTF-8"))?;
            super::json::check_chars("biz_payload", &decoded, super::messages::MAX_PAYLOAD)
                .map_err(|e| ApiError::refused("invalid_link", e.details))?;
            payload = Some(decoded);
        }
    }
    Ok((number, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_links_parse_with_and_without_scheme() {
        assert_eq!(
            parse_call_link("wa.me/call/15550783881").unwrap(),
            ("15550783881".into(), None)
        );
        assert_eq!(
            parse_call_link("https://wa.me/call/15550783881?biz_payload=Q").unwrap(),
            ("15550783881".into(), Some("Q".into()))
        );
        assert_eq!(
            parse_call_link("http://wa.me/call/+15550783881/?x=1&biz_payload=a%20b%C3%A9")
                .unwrap()
                .1,
            Some("a bé".into())
        );
        assert!(parse_call_link("https://wa.me/15550783881").is_err());
        assert!(parse_call_link("https://example.com/call/1").is_err());
        assert!(parse_call_link("wa.me/call/abc").is_err());
        assert!(parse_call_link(&format!("wa.me/call/1?biz_payload={}", "x".repeat(513))).is_err());
        assert!(parse_call_link("wa.me/call/1?biz_payload=%ZZ").is_err());
    }
}
