//! Human durations as written in the custom resources and the configuration:
//! a number and a unit, optionally combined: `30d`, `2w`, `36h`, `90m`, `45s`,
//! `1d12h` (the CRD pattern [`crate::api::DURATION_PATTERN`]).
//!
//! Units: `w` = 7 days, `d` = 24 hours exactly (no calendar or daylight-saving
//! arithmetic), `h`, `m` (minutes), `s`. Anything the CRD pattern accepts
//! parses, including repeated units (`1d1d` is two days). Durations are at
//! most [`MAX_DAYS`] days long, so adding one to any date Kubernetes can hold
//! stays within the calendar: an absurd value is an error, never a panic.

use std::fmt;
use std::str::FromStr;

use k8s_openapi::jiff::SignedDuration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration accepted, in days (about 100 years).
pub const MAX_DAYS: i64 = 36_525;

const MAX_SECONDS: i64 = MAX_DAYS * DAY;
const SECOND: i64 = 1;
const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;

/// What the valid forms are, appended to every error.
const EXPECTED: &str =
    "expected a number and a unit (w, d, h, m or s), optionally combined, e.g. 30d, 2w, 36h, 1d12h";

/// A string that is not a human duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was given.
    #[error("empty duration: {EXPECTED}")]
    Empty,
    /// The text does not follow the pattern.
    #[error("invalid duration {text:?}: {problem}; {EXPECTED}")]
    Malformed {
        /// The text given.
        text: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The duration is longer than [`MAX_DAYS`] days (or does not even fit
    /// in a 64-bit number of seconds).
    #[error("duration {text:?} is too long: at most {MAX_DAYS}d (100 years)")]
    TooLong {
        /// The text given.
        text: String,
    },
    /// A duration built in code is negative or has a fraction of a second,
    /// which the human form cannot express.
    #[error(
        "duration {0:?} cannot be written as a human duration: it must be whole seconds, at least 0s"
    )]
    NotRepresentable(SignedDuration),
}

/// Parses a human duration (`30d`, `2w`, `36h`, `90m`, `45s`, `1d12h`).
///
/// Days are exactly 24 hours and weeks exactly 7 days. The result is never
/// negative and at most [`MAX_DAYS`] days.
pub fn parse(text: &str) -> Result<SignedDuration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let malformed = |problem: String| DurationError::Malformed {
        text: text.to_string(),
        problem,
    };
    let too_long = || DurationError::TooLong {
        text: text.to_string(),
    };

    let mut total: i64 = 0;
    // The number being read, if any digits were seen since the last unit.
    let mut number: Option<i64> = None;
    for c in text.chars() {
        if let Some(digit) = c.to_digit(10) {
            let so_far = number.unwrap_or(0);
            number = Some(
                so_far
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(i64::from(digit)))
                    .ok_or_else(too_long)?,
            );
            continue;
        }
        let unit = match c {
            'w' => WEEK,
            'd' => DAY,
            'h' => HOUR,
            'm' => MINUTE,
            's' => SECOND,
            other => {
                let hint = match other {
                    'W' | 'D' | 'H' | 'M' | 'S' => " (units are lower case)",
                    'y' | 'Y' => " (there is no year unit: use days, e.g. 365d)",
                    ' ' | '\t' => " (write the parts together, e.g. 1d12h)",
                    '-' | '+' => " (durations have no sign)",
                    '.' | ',' => " (use whole numbers of a smaller unit, e.g. 90m)",
                    _ => "",
                };
                return Err(malformed(format!("unexpected character {other:?}{hint}")));
            }
        };
        let Some(count) = number.take() else {
            return Err(malformed(format!(
                "a number must come before the unit {c:?}"
            )));
        };
        total = count
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(too_long)?;
        if total > MAX_SECONDS {
            return Err(too_long());
        }
    }
    if let Some(count) = number {
        return Err(malformed(format!("the number {count} has no unit")));
    }
    Ok(SignedDuration::from_secs(total))
}

/// Writes a duration in the canonical human form: days, hours, minutes and
/// seconds, largest first, zero parts left out (`1d12h`, `30d`, `90m` becomes
/// `1h30m`); zero is `0s`. Weeks are written as days (`2w` becomes `14d`).
fn write_canonical(f: &mut fmt::Formatter<'_>, seconds: i64) -> fmt::Result {
    if seconds == 0 {
        return f.write_str("0s");
    }
    let mut rest = seconds;
    for (unit, suffix) in [(DAY, 'd'), (HOUR, 'h'), (MINUTE, 'm'), (SECOND, 's')] {
        let count = rest / unit;
        rest %= unit;
        if count != 0 {
            write!(f, "{count}{suffix}")?;
        }
    }
    Ok(())
}

/// A duration that is read from and written as the human form. It is always
/// whole seconds, at least zero and at most [`MAX_DAYS`] days.
///
/// Deserializes from a string such as `30d` or `1d12h`; serializes to the
/// canonical form (days, hours, minutes, seconds: `2w` is written `14d`,
/// `36h` is written `1d12h`), which parses back to the same duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(SignedDuration);

impl HumanDuration {
    /// Wraps a duration, if the human form can express it (whole seconds,
    /// not negative, at most [`MAX_DAYS`] days).
    pub fn new(duration: SignedDuration) -> Result<Self, DurationError> {
        if duration.is_negative() || duration.subsec_nanos() != 0 {
            return Err(DurationError::NotRepresentable(duration));
        }
        if duration.as_secs() > MAX_SECONDS {
            return Err(DurationError::TooLong {
                text: format!("{}s", duration.as_secs()),
            });
        }
        Ok(Self(duration))
    }

    /// A whole number of days, for defaults written in code. The caller
    /// guarantees `days <= MAX_DAYS`; larger values are clamped to it.
    pub(crate) const fn trusted_days(days: i64) -> Self {
        let days = if days > MAX_DAYS { MAX_DAYS } else { days };
        Self(SignedDuration::from_secs(days * DAY))
    }

    /// The duration.
    pub fn get(self) -> SignedDuration {
        self.0
    }
}

impl From<HumanDuration> for SignedDuration {
    fn from(duration: HumanDuration) -> Self {
        duration.0
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse(text).map(Self)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_canonical(f, self.0.as_secs())
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> i64 {
        parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .as_secs()
    }

    fn error(text: &str) -> String {
        parse(text)
            .expect_err(&format!("{text:?} should not parse"))
            .to_string()
    }

    #[test]
    fn every_unit_parses() {
        assert_eq!(secs("45s"), 45);
        assert_eq!(secs("90m"), 90 * 60);
        assert_eq!(secs("36h"), 36 * 3600);
        assert_eq!(secs("30d"), 30 * 86_400);
        assert_eq!(secs("2w"), 14 * 86_400);
    }

    #[test]
    fn days_are_exactly_24_hours() {
        assert_eq!(parse("1d").unwrap(), SignedDuration::from_hours(24));
        assert_eq!(parse("7d").unwrap(), parse("1w").unwrap());
    }

    #[test]
    fn parts_combine_and_add_up() {
        assert_eq!(secs("1d12h"), 36 * 3600);
        assert_eq!(secs("1w2d3h4m5s"), 9 * 86_400 + 3 * 3600 + 4 * 60 + 5);
        // The CRD pattern accepts repeated and unordered units, so must we.
        assert_eq!(secs("1d1d"), 2 * 86_400);
        assert_eq!(secs("30m1h"), 90 * 60);
    }

    #[test]
    fn zero_and_leading_zeros_parse() {
        assert_eq!(secs("0s"), 0);
        assert_eq!(secs("0d"), 0);
        assert_eq!(secs("007d"), 7 * 86_400);
    }

    #[test]
    fn malformed_text_says_what_was_given_and_what_is_valid() {
        for (text, problem) in [
            ("30", "the number 30 has no unit"),
            ("d", "a number must come before the unit 'd'"),
            ("1dh", "a number must come before the unit 'h'"),
            ("30days", "unexpected character 'a'"),
            ("30D", "units are lower case"),
            ("1y", "there is no year unit"),
            ("1d 12h", "write the parts together"),
            ("-5m", "durations have no sign"),
            ("1.5h", "use whole numbers"),
            (" 5m", "unexpected character ' '"),
            ("5m ", "unexpected character ' '"),
            ("5µs", "unexpected character 'µ'"),
        ] {
            let message = error(text);
            assert!(
                message.contains(&format!("{text:?}")),
                "names the input: {message}"
            );
            assert!(message.contains(problem), "{text}: {message}");
            assert!(
                message.contains("e.g. 30d, 2w"),
                "shows valid forms: {message}"
            );
        }
        assert!(error("").contains("empty duration"));
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        for text in [
            "99999999999999999999s",
            "9223372036854775807w",
            "9223372036854775807s9223372036854775807s",
            "36526d",
            "36525d1s",
        ] {
            assert!(error(text).contains("too long"), "{text}");
        }
        assert_eq!(secs("36525d"), MAX_DAYS * 86_400);
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        for (text, canonical) in [
            ("30d", "30d"),
            ("2w", "14d"),
            ("36h", "1d12h"),
            ("90m", "1h30m"),
            ("45s", "45s"),
            ("0d", "0s"),
            ("1d1d", "2d"),
            ("1w2d3h4m5s", "9d3h4m5s"),
        ] {
            let duration: HumanDuration = text.parse().unwrap();
            assert_eq!(duration.to_string(), canonical, "{text}");
            assert_eq!(canonical.parse::<HumanDuration>().unwrap(), duration);
        }
    }

    #[test]
    fn serde_reads_the_human_form_and_writes_the_canonical_one() {
        let duration: HumanDuration = serde_json::from_str("\"36h\"").unwrap();
        assert_eq!(duration.get(), SignedDuration::from_hours(36));
        assert_eq!(serde_json::to_string(&duration).unwrap(), "\"1d12h\"");

        let error = serde_json::from_str::<HumanDuration>("\"monthly\"").unwrap_err();
        assert!(error.to_string().contains("\"monthly\""), "{error}");
        assert!(serde_json::from_str::<HumanDuration>("30").is_err());
    }

    #[test]
    fn only_whole_non_negative_bounded_durations_are_human() {
        assert!(HumanDuration::new(SignedDuration::from_secs(90)).is_ok());
        assert!(HumanDuration::new(SignedDuration::from_secs(-1)).is_err());
        assert!(HumanDuration::new(SignedDuration::from_millis(1500)).is_err());
        assert!(HumanDuration::new(SignedDuration::MAX).is_err());
    }
}
