//! Input rules shared by the handlers.

use serde_json::Value;

use crate::error::ApiError;

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 64;
pub const PASSWORD_MIN: usize = 8;
/// Upper bound on password length, so hashing cost stays bounded.
pub const PASSWORD_MAX: usize = 1024;
pub const EMAIL_MAX: usize = 254;
pub const DNS_LABEL_MAX: usize = 63;

pub fn username(value: &str) -> Result<(), ApiError> {
    let length = value.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&length) {
        return Err(ApiError::validation(
            "username",
            format!("must be {USERNAME_MIN} to {USERNAME_MAX} characters long, got {length}"),
            Value::from(value),
        ));
    }
    if let Some(bad) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return Err(ApiError::validation(
            "username",
            format!("may contain only letters, digits, '-' and '_', found {bad:?}"),
            Value::from(value),
        ));
    }
    Ok(())
}

pub fn password(value: &str) -> Result<(), ApiError> {
    let length = value.chars().count();
    if length < PASSWORD_MIN {
        // The password itself is never echoed, only its length.
        return Err(ApiError::validation(
            "password",
            format!("must be at least {PASSWORD_MIN} characters long, got {length}"),
            None,
        ));
    }
    if value.len() > PASSWORD_MAX {
        return Err(ApiError::validation("password", format!("must be at most {PASSWORD_MAX} bytes long"), None));
    }
    Ok(())
}

/// Checks the shape `local@domain.tld` and returns the address lowercased and trimmed.
pub fn email(value: &str) -> Result<String, ApiError> {
    let normalized = value.trim().to_lowercase();
    let invalid = || ApiError::validation("email", "must be a valid e-mail address like name@example.com", Value::from(value));
    if normalized.len() > EMAIL_MAX || normalized.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let Some((local, domain)) = normalized.split_once('@') else { return Err(invalid()) };
    if local.is_empty() || domain.contains('@') {
        return Err(invalid());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|label| label.is_empty() || label.starts_with('-') || label.ends_with('-')) {
        return Err(invalid());
    }
    Ok(normalized)
}

/// Derives a DNS label from free text: lowercase, every run of other characters than `a-z0-9`
/// becomes one `-`, leading and trailing `-` removed, at most 63 characters.
pub fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let trimmed = slug.trim_matches('-');
    let cut = &trimmed[..trimmed.len().min(DNS_LABEL_MAX)];
    cut.trim_end_matches('-').to_owned()
}

/// Checks that `value` is a DNS label: `a-z`, `0-9` and `-`, 1 to 63 characters, no leading or
/// trailing `-`.
pub fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= DNS_LABEL_MAX
        && !value.starts_with('-')
        && !value.ends_with('-')
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugify_examples() {
        assert_eq!(slugify("John_Doe"), "john-doe");
        assert_eq!(slugify("--User  API Mock!"), "user-api-mock");
        assert_eq!(slugify("___"), "");
        assert_eq!(slugify(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn dns_label_rules() {
        assert!(is_dns_label("user-api"));
        assert!(is_dns_label("a"));
        assert!(!is_dns_label(""));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a-"));
        assert!(!is_dns_label("User"));
        assert!(!is_dns_label("a_b"));
        assert!(!is_dns_label(&"a".repeat(64)));
    }

    #[test]
    fn email_rules() {
        assert_eq!(email(" John@Example.com ").unwrap(), "john@example.com");
        for bad in ["", "john", "john@", "@example.com", "john@example", "jo hn@example.com", "a@b@c.com", "a@.com"] {
            assert!(email(bad).is_err(), "{bad:?} must be rejected");
        }
    }
}
