//! Checks of the string `format`s that JSON Schema 2020-12 and OpenAPI define. Formats not
//! listed here (such as `int64`, `byte` or `password`) are annotations and are not checked.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Returns whether `text` is valid for `format`, or `None` for a format that is not checked.
pub fn check_format(format: &str, text: &str) -> Option<bool> {
    Some(match format {
        "date-time" => is_date_time(text),
        "date" => is_date(text),
        "time" => is_time(text),
        "email" => is_email(text),
        "uuid" => is_uuid(text),
        "uri" => is_uri(text),
        "ipv4" => text.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => text.parse::<Ipv6Addr>().is_ok(),
        _ => return None,
    })
}

fn digits(text: &str, count: usize) -> Option<u32> {
    if text.len() == count && text.bytes().all(|byte| byte.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// RFC 3339 `full-date`: `2024-02-29`.
fn is_date(text: &str) -> bool {
    let mut parts = text.split('-');
    let (Some(year), Some(month), Some(day), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(year), Some(month), Some(day)) = (digits(year, 4), digits(month, 2), digits(day, 2))
    else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// RFC 3339 `full-time`: `13:45:00`, optional fraction, then `Z` or an offset such as `+02:00`.
fn is_time(text: &str) -> bool {
    let (clock, offset) = if let Some(clock) = text.strip_suffix(['Z', 'z']) {
        (clock, None)
    } else {
        match text.rfind(['+', '-']) {
            Some(position) => (&text[..position], Some(&text[position + 1..])),
            None => return false,
        }
    };
    if let Some(offset) = offset {
        let Some((hours, minutes)) = offset.split_once(':') else {
            return false;
        };
        if !matches!((digits(hours, 2), digits(minutes, 2)), (Some(0..=23), Some(0..=59))) {
            return false;
        }
    }
    let (clock, fraction) = match clock.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (clock, None),
    };
    if fraction.is_some_and(|fraction| fraction.is_empty() || !fraction.bytes().all(|byte| byte.is_ascii_digit())) {
        return false;
    }
    let mut parts = clock.split(':');
    let (Some(hours), Some(minutes), Some(seconds), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    // Second 60 is a leap second.
    matches!(
        (digits(hours, 2), digits(minutes, 2), digits(seconds, 2)),
        (Some(0..=23), Some(0..=59), Some(0..=60))
    )
}

fn is_date_time(text: &str) -> bool {
    match text.find(['T', 't']) {
        Some(position) => is_date(&text[..position]) && is_time(&text[position + 1..]),
        None => false,
    }
}

/// A pragmatic check: one `@`, a non-empty local part and a domain with no spaces.
fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !text.contains(char::is_whitespace)
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, length)| group.len() == length && group.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

/// An absolute URI (RFC 3986): a scheme, `:`, and no spaces.
fn is_uri(text: &str) -> bool {
    let Some((scheme, _)) = text.split_once(':') else {
        return false;
    };
    let mut characters = scheme.chars();
    characters.next().is_some_and(|first| first.is_ascii_alphabetic())
        && characters.all(|character| character.is_ascii_alphanumeric() || "+-.".contains(character))
        && !text.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::check_format;

    #[test]
    fn formats_checked() {
        let cases = [
            ("date-time", "2024-02-29T13:45:00Z", true),
            ("date-time", "2024-02-29T13:45:00.123+02:00", true),
            ("date-time", "2023-02-29T13:45:00Z", false),
            ("date-time", "2024-02-29 13:45", false),
            ("date", "2024-12-31", true),
            ("date", "2024-13-01", false),
            ("email", "ada@example.com", true),
            ("email", "ada example.com", false),
            ("uuid", "123e4567-e89b-42d3-a456-426614174000", true),
            ("uuid", "123e4567e89b42d3a456426614174000", false),
            ("uri", "https://example.com/a?b=c", true),
            ("uri", "/relative/path", false),
            ("ipv4", "192.168.0.1", true),
            ("ipv4", "256.1.1.1", false),
            ("ipv6", "::1", true),
            ("ipv6", "1:::2", false),
        ];
        for (format, text, valid) in cases {
            assert_eq!(check_format(format, text), Some(valid), "{format} {text}");
        }
        assert_eq!(check_format("int64", "x"), None);
    }
}
