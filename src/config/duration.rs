//! Durations in definitions: one grammar (humantime's, as the service reads them too) for
//! wactl's own settings and for the service settings passed through `config:`.

use std::time::Duration;

/// The service settings (`address-service --help`) that are durations, and whether zero
/// makes sense for each: a zero request timeout would fail every request.
pub const SERVICE_DURATIONS: &[(&str, Zero)] = &[
    ("REQUEST_TIMEOUT", Zero::Refused),
    ("SHUTDOWN_GRACE", Zero::Allowed),
    ("SHUTDOWN_DELAY", Zero::Allowed),
];

/// Whether a duration may be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    Allowed,
    Refused,
}

/// What is wrong with a duration; [`DurationError::hint`] says how to write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{text}` is not a duration")]
    Unparsable { text: String },
    #[error("`{text}` must be longer than zero")]
    Zero { text: String },
}

impl DurationError {
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Unparsable { .. } => "write a number with a unit, such as 500ms, 30s, 5m or 1h",
            Self::Zero { .. } => "give a duration longer than zero, such as 10s",
        }
    }
}

/// Parses `text` in humantime's grammar: `500ms`, `30s`, `1m 30s`; a bare number has no
/// unit and is refused, so `10` cannot silently mean ten seconds in one place and ten
/// milliseconds in another.
pub fn parse(text: &str, zero: Zero) -> Result<Duration, DurationError> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() && zero == Zero::Refused => Err(DurationError::Zero {
            text: text.to_owned(),
        }),
        Ok(d) => Ok(d),
        Err(_) => Err(DurationError::Unparsable {
            text: text.to_owned(),
        }),
    }
}

/// Checks `value` when `key` is a service setting that is a duration; `None` for others.
pub fn check_service_setting(key: &str, value: &str) -> Option<DurationError> {
    let (_, zero) = SERVICE_DURATIONS.iter().find(|(name, _)| *name == key)?;
    parse(value, *zero).err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humantime_grammar_with_units_only() {
        let cases = [
            ("10s", Some(Duration::from_secs(10))),
            ("500ms", Some(Duration::from_millis(500))),
            ("1m 30s", Some(Duration::from_secs(90))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("2h", Some(Duration::from_secs(7200))),
            ("10", None),
            ("ten", None),
            ("10 parsecs", None),
            ("-5s", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text, Zero::Allowed).ok(), expected, "{text}");
        }
        assert_eq!(cases.len(), 10);
        assert_eq!(parse("0s", Zero::Allowed), Ok(Duration::ZERO));
        assert_eq!(
            parse("0s", Zero::Refused),
            Err(DurationError::Zero { text: "0s".into() })
        );
    }

    #[test]
    fn only_the_services_duration_settings_are_checked() {
        assert_eq!(check_service_setting("REQUEST_TIMEOUT", "10s"), None);
        assert_eq!(
            check_service_setting("REQUEST_TIMEOUT", "10")
                .map(|e| e.to_string())
                .as_deref(),
            Some("`10` is not a duration")
        );
        assert!(check_service_setting("REQUEST_TIMEOUT", "0s").is_some());
        assert_eq!(check_service_setting("SHUTDOWN_DELAY", "0s"), None);
        assert!(check_service_setting("SHUTDOWN_GRACE", "soon").is_some());
        assert_eq!(check_service_setting("LOG_FORMAT", "10"), None);
    }
}
