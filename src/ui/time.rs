//! Times as a person reads them: local time to the second and an age ("5 min ago").
//! Recorded times stay RFC 3339 (UTC) in revisions and in `--output json`.

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// `2026-11-30 19:07:07` in `zone` (the system's time zone for the command line), or the
/// text unchanged when it is not RFC 3339 (a damaged record is shown, not hidden).
pub fn local_in(rfc3339: &str, zone: &TimeZone) -> String {
    match rfc3339.parse::<Timestamp>() {
        Ok(at) => Zoned::new(at, zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => rfc3339.to_owned(),
    }
}

/// [`local_in`] the system's time zone (`TZ`, else `/etc/localtime`, else UTC).
pub fn local(rfc3339: &str) -> String {
    local_in(rfc3339, &TimeZone::system())
}

/// How long before `now` the RFC 3339 time `then` was: `just now`, `42 s ago`, `5 min ago`,
/// `3 h ago`, `2 days ago`; `-` when `then` is not a time.
pub fn age_at(then: &str, now: Timestamp) -> String {
    let Ok(then) = then.parse::<Timestamp>() else {
        return "-".to_owned();
    };
    let seconds = now.as_second() - then.as_second();
    match seconds {
        // A clock a little ahead of this one is "now", not "in the future".
        ..=4 => "just now".to_owned(),
        5..=59 => format!("{seconds} s ago"),
        60..=3_599 => format!("{} min ago", seconds / 60),
        3_600..=172_799 => format!("{} h ago", seconds / 3_600),
        _ => format!("{} days ago", seconds / 86_400),
    }
}

/// [`age_at`] from the current time.
pub fn age(then: &str) -> String {
    age_at(then, Timestamp::now())
}

/// `2026-11-30 19:07:07 (5 min ago)`.
pub fn when(rfc3339: &str) -> String {
    if rfc3339.parse::<Timestamp>().is_err() {
        return rfc3339.to_owned();
    }
    format!("{} ({})", local(rfc3339), age(rfc3339))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a time")
    }

    #[test]
    fn ages_read_as_a_person_says_them() {
        let now = at("2026-11-30T12:00:00Z");
        let cases = [
            ("2026-11-30T12:00:03Z", "just now"),
            ("2026-11-30T12:00:10Z", "just now"),
            ("2026-11-30T11:59:18Z", "42 s ago"),
            ("2026-11-30T11:55:00Z", "5 min ago"),
            ("2026-11-30T11:00:00.123456789Z", "1 h ago"),
            ("2026-11-29T12:00:01Z", "23 h ago"),
            ("2026-11-28T11:00:00Z", "2 days ago"),
            ("2026-10-31T12:00:00Z", "30 days ago"),
            ("not a time", "-"),
        ];
        for (then, expected) in cases {
            assert_eq!(age_at(then, now), expected, "{then}");
        }
        assert_eq!(cases.len(), 9);
    }

    #[test]
    fn local_time_is_to_the_second_in_the_zone() {
        // Nanoseconds (as older revisions recorded them) do not reach the column.
        let utc = local_in("2026-11-30T19:07:07.123456789Z", &TimeZone::UTC);
        assert_eq!(utc, "2026-11-30 19:07:07");
        let berlin = TimeZone::fixed(jiff::tz::offset(1));
        assert_eq!(
            local_in("2026-11-30T19:07:07Z", &berlin),
            "2026-11-30 20:07:07"
        );
        assert_eq!(local_in("yesterday", &TimeZone::UTC), "yesterday");
    }
}
