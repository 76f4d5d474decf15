//! Anonymisation of audit entries when an account is deleted: the entries stay, but no longer
//! identify the deleted user.

use serde_json::Value;
use uuid::Uuid;

/// Metadata keys that describe the acting user. They are removed from the deleted user's own
/// entries.
const ACTOR_KEYS: &[&str] = &["email", "username", "user_id", "ip_address", "user_agent"];

/// Text that replaces the deleted user's e-mail address or id in descriptions.
pub const DELETED_USER: &str = "[deleted user]";

/// The identifiers of a deleted user that audit entries may contain.
#[derive(Debug, Clone)]
pub struct DeletedIdentity {
    pub user_id: Uuid,
    pub email: String,
}

impl DeletedIdentity {
    /// Returns `LIKE` patterns that match text containing the e-mail address (compared in lower
    /// case) or the hyphenated user id, escaped for `ESCAPE '\'`.
    pub fn like_patterns(&self) -> (String, String) {
        (contains_pattern(&self.email.to_lowercase()), contains_pattern(&self.user_id.to_string()))
    }

    fn matches(&self, text: &str) -> bool {
        text.eq_ignore_ascii_case(&self.email) || text.eq_ignore_ascii_case(&self.user_id.to_string())
    }
}

/// Wraps `text` in `%` and escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Removes the deleted user from audit metadata. In the user's own entries (`own_entry`) the
/// [`ACTOR_KEYS`] are removed at every depth. In every entry a string equal to the user's
/// e-mail address or id (ASCII case-insensitive) becomes `null`.
pub fn anonymise_metadata(metadata: &mut Value, identity: &DeletedIdentity, own_entry: bool) {
    match metadata {
        Value::Object(object) => {
            if own_entry {
                object.retain(|key, _| !ACTOR_KEYS.contains(&key.as_str()));
            }
            for value in object.values_mut() {
                anonymise_metadata(value, identity, own_entry);
            }
        }
        Value::Array(items) => {
            for item in items {
                anonymise_metadata(item, identity, own_entry);
            }
        }
        Value::String(text) if identity.matches(text) => *metadata = Value::Null,
        _ => {}
    }
}

/// Replaces every occurrence of the user's e-mail address or id in `description` (ASCII
/// case-insensitive) with [`DELETED_USER`].
pub fn anonymise_description(description: &str, identity: &DeletedIdentity) -> String {
    let email = replace_ignore_ascii_case(description, &identity.email, DELETED_USER);
    replace_ignore_ascii_case(&email, &identity.user_id.to_string(), DELETED_USER)
}

fn replace_ignore_ascii_case(text: &str, needle: &str, replacement: &str) -> String {
    if needle.is_empty() {
        return text.to_owned();
    }
    let mut result = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(position) = find_ignore_ascii_case(rest, needle) {
        result.push_str(&rest[..position]);
        result.push_str(replacement);
        rest = &rest[position + needle.len()..];
    }
    result.push_str(rest);
    result
}

/// Returns the byte offset of the first ASCII case-insensitive match of `needle` in `text`.
fn find_ignore_ascii_case(text: &str, needle: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let needle = needle.as_bytes();
    (0..=bytes.len().checked_sub(needle.len())?)
        .filter(|&start| text.is_char_boundary(start) && text.is_char_boundary(start + needle.len()))
        .find(|&start| bytes[start..start + needle.len()].eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn identity() -> DeletedIdentity {
        DeletedIdentity { user_id: Uuid::from_u128(7), email: "paula@example.com".to_owned() }
    }

    #[test]
    fn own_entry_loses_actor_keys() {
        let mut metadata = json!({
            "email": "someone@example.org",
            "username": "paula",
            "ip_address": "203.0.113.9",
            "nested": { "user_agent": "curl/8", "plan": "pro" },
            "token_id": "t1",
        });
        anonymise_metadata(&mut metadata, &identity(), true);
        assert_eq!(metadata, json!({ "nested": { "plan": "pro" }, "token_id": "t1" }));
    }

    #[test]
    fn other_entry_keeps_keys_but_not_identity() {
        let mut metadata = json!({
            "email": "Paula@Example.com",
            "members": [identity().user_id.to_string(), "other"],
            "ip_address": "198.51.100.1",
        });
        anonymise_metadata(&mut metadata, &identity(), false);
        assert_eq!(metadata, json!({ "email": null, "members": [null, "other"], "ip_address": "198.51.100.1" }));
    }

    #[test]
    fn description_replaces_email_and_id() {
        let description = format!("Invited PAULA@example.com as {}; Ünïcode stays", identity().user_id);
        assert_eq!(
            anonymise_description(&description, &identity()),
            "Invited [deleted user] as [deleted user]; Ünïcode stays"
        );
        assert_eq!(anonymise_description("Deployment shop deleted", &identity()), "Deployment shop deleted");
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        let identity = DeletedIdentity { user_id: Uuid::from_u128(1), email: "A_B%c@Example.com".to_owned() };
        let (email, id) = identity.like_patterns();
        assert_eq!(email, "%a\\_b\\%c@example.com%");
        assert_eq!(id, "%00000000-0000-0000-0000-000000000001%");
    }
}
