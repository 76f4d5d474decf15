//! Rendering of JSON values as XML for XML media types: an object becomes an element with one
//! child element per property, and an array repeats its parent's element name for each item.

use serde_json::Value;

/// Returns whether a media type essence is XML (`application/xml`, `text/xml` or `+xml`).
pub fn is_xml(essence: &str) -> bool {
    essence == "application/xml" || essence == "text/xml" || essence.ends_with("+xml")
}

/// Renders a value as an XML document with the given root element name.
pub fn to_xml(value: &Value, root: &str) -> String {
    let mut output = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    write_element(value, &element_name(root), &mut output);
    output
}

fn write_element(value: &Value, name: &str, output: &mut String) {
    match value {
        Value::Array(items) => {
            for item in items {
                write_element(item, name, output);
            }
        }
        Value::Object(object) => {
            output.push('<');
            output.push_str(name);
            output.push('>');
            for (key, child) in object {
                write_element(child, &element_name(key), output);
            }
            output.push_str("</");
            output.push_str(name);
            output.push('>');
        }
        Value::Null => {
            output.push('<');
            output.push_str(name);
            output.push_str("/>");
        }
        scalar => {
            let text = match scalar {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            output.push('<');
            output.push_str(name);
            output.push('>');
            escape_into(&text, output);
            output.push_str("</");
            output.push_str(name);
            output.push('>');
        }
    }
}

/// Turns a property or schema name into a valid XML element name by replacing invalid
/// characters with `_` and prefixing `_` where the first character cannot start a name.
fn element_name(name: &str) -> String {
    let mut element: String = name
        .chars()
        .map(|character| {
            if character.is_alphanumeric() || matches!(character, '_' | '-' | '.') {
                character
            } else {
                '_'
            }
        })
        .collect();
    let starts_validly = element
        .chars()
        .next()
        .is_some_and(|first| first.is_alphabetic() || first == '_');
    if !starts_validly {
        element.insert(0, '_');
    }
    element
}

fn escape_into(text: &str, output: &mut String) {
    for character in text.chars() {
        match character {
            '<' => output.push_str("&lt;"),
            '>' => output.push_str("&gt;"),
            '&' => output.push_str("&amp;"),
            '"' => output.push_str("&quot;"),
            '\'' => output.push_str("&apos;"),
            other => output.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_with_array_renders() {
        let value = json!({"id": 1, "tags": ["a", "b"], "note": "x<y", "owner": null});
        assert_eq!(
            to_xml(&value, "Pet"),
            r#"<?xml version="1.0" encoding="UTF-8"?><Pet><id>1</id><tags>a</tags><tags>b</tags><note>x&lt;y</note><owner/></Pet>"#
        );
    }

    #[test]
    fn invalid_names_sanitised() {
        assert_eq!(element_name("1st place"), "_1st_place");
        assert_eq!(element_name("a:b"), "a_b");
    }
}
