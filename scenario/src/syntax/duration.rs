//! Durations as test plans write them: `30s`, `5m`, `2h`, `7d`, `1h30m`, `500ms`.

/// Milliseconds per unit, largest first; the order a compound duration must follow.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Why a duration did not parse; the text is the diagnostic's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(pub String);

/// Parses `1h30m`-style text into milliseconds.
pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    let mut rest = text;
    let mut total: u64 = 0;
    let mut last_rank: Option<usize> = None;
    if rest.is_empty() {
        return Err(DurationError("empty duration".into()));
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(DurationError(format!(
                "`{text}` is not a duration: expected a number before `{rest}`"
            )));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError(format!("`{text}` is too large")))?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(DurationError(format!("`{text}` has no unit")));
        }
        let Some(rank) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(DurationError(format!(
                "`{unit}` is not a unit of time in `{text}`"
            )));
        };
        if last_rank.is_some_and(|r| r >= rank) {
            return Err(DurationError(format!(
                "units in `{text}` must go from largest to smallest, each once"
            )));
        }
        last_rank = Some(rank);
        total = number
            .checked_mul(UNITS[rank].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| DurationError(format!("`{text}` is too large")))?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// The canonical text of a duration: largest units first, zero parts left out.
pub fn format_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in UNITS {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// A short human rendering for reports: `1.25s`, `340ms`.
pub fn format_elapsed(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_units_test_plans_use() {
        assert_eq!(parse_duration("30s"), Ok(30_000));
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000));
        assert_eq!(parse_duration("7d"), Ok(604_800_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("0s"), Ok(0));
    }

    #[test]
    fn rejects_missing_units_unknown_units_and_disorder() {
        assert!(parse_duration("30").unwrap_err().0.contains("no unit"));
        assert!(parse_duration("3y").unwrap_err().0.contains("not a unit"));
        assert!(parse_duration("30m1h").unwrap_err().0.contains("largest"));
        assert!(parse_duration("1h1h").unwrap_err().0.contains("largest"));
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn formats_compound_durations() {
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(1_500), "1s500ms");
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(ms in 0u64..10_000_000_000_000) {
            prop_assert_eq!(parse_duration(&format_duration(ms)), Ok(ms));
        }

        #[test]
        fn parse_never_panics(text in "[0-9a-z]{0,12}") {
            let _ = parse_duration(&text);
        }
    }
}
