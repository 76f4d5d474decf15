//! Expansion of request placeholders in response bodies, applied when the
//! `response_template_expand` option is on. Supported placeholders:
//! `{{request.method}}`, `{{request.path}}`, `{{request.path.NAME}}` (a decoded path parameter),
//! `{{request.query.NAME}}` and `{{request.header.NAME}}`. An unknown placeholder is left as is,
//! and a known one without a value in the request expands to an empty string.

use http::HeaderMap;

/// The request values placeholders can refer to.
pub struct TemplateContext<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub path_parameters: &'a [(&'a str, String)],
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

/// The escaping of expanded values, chosen by the body's media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escaping {
    /// Inside JSON strings: quotes, backslashes and control characters are escaped.
    Json,
    Xml,
    None,
}

/// Expands the placeholders of a body. Returns `None` when the body has no placeholder or is
/// not UTF-8, so the caller keeps the original bytes.
pub fn expand(body: &[u8], context: &TemplateContext<'_>, escaping: Escaping) -> Option<String> {
    if !body.windows(2).any(|pair| pair == b"{{") {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        output.push_str(&rest[..open]);
        let after_open = &rest[open + 2..];
        let Some(close) = after_open.find("}}") else {
            output.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let expression = after_open[..close].trim();
        match lookup(expression, context) {
            Some(value) => escape_into(&value, escaping, &mut output),
            None => output.push_str(&rest[open..open + 2 + close + 2]),
        }
        rest = &after_open[close + 2..];
    }
    output.push_str(rest);
    Some(output)
}

/// Returns the value of a known placeholder (empty when the request lacks it), or `None` for an
/// unknown placeholder.
fn lookup(expression: &str, context: &TemplateContext<'_>) -> Option<String> {
    match expression {
        "request.method" => return Some(context.method.to_owned()),
        "request.path" => return Some(context.path.to_owned()),
        _ => {}
    }
    if let Some(name) = expression.strip_prefix("request.path.") {
        let value = context
            .path_parameters
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, value)| value.clone());
        return Some(value.unwrap_or_default());
    }
    if let Some(name) = expression.strip_prefix("request.query.") {
        let query = context.query.unwrap_or_default();
        let value = query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = crate::router::decode_component(&key.replace('+', " "))?;
            (key == name).then(|| {
                crate::router::decode_component(&value.replace('+', " ")).unwrap_or_default()
            })
        });
        return Some(value.unwrap_or_default());
    }
    if let Some(name) = expression.strip_prefix("request.header.") {
        let value = context
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        return Some(value.unwrap_or_default());
    }
    None
}

fn escape_into(value: &str, escaping: Escaping, output: &mut String) {
    match escaping {
        Escaping::Json => {
            let quoted = serde_json::to_string(value).unwrap_or_default();
            output.push_str(&quoted[1..quoted.len() - 1]);
        }
        Escaping::Xml => {
            for character in value.chars() {
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
        Escaping::None => output.push_str(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<'a>(
        headers: &'a HeaderMap,
        parameters: &'a [(&'a str, String)],
    ) -> TemplateContext<'a> {
        TemplateContext {
            method: "GET",
            path: "/pets/7",
            path_parameters: parameters,
            query: Some("q=a+b&x=1"),
            headers,
        }
    }

    #[test]
    fn placeholders_expand() {
        let mut headers = HeaderMap::new();
        headers.insert("x-user", "ann\"e".parse().unwrap());
        let parameters = [("id", "7".to_owned())];
        let body = br#"{"id": "{{request.path.id}}", "q": "{{ request.query.q }}", "user": "{{request.header.x-user}}", "m": "{{request.method}}"}"#;
        let expanded = expand(body, &context(&headers, &parameters), Escaping::Json).unwrap();
        assert_eq!(
            expanded,
            r#"{"id": "7", "q": "a b", "user": "ann\"e", "m": "GET"}"#
        );
    }

    #[test]
    fn unknown_placeholder_kept() {
        let headers = HeaderMap::new();
        let expanded = expand(
            b"{{faker.name}} {{request.query.missing}}!",
            &context(&headers, &[]),
            Escaping::None,
        )
        .unwrap();
        assert_eq!(expanded, "{{faker.name}} !");
    }

    #[test]
    fn body_without_placeholder_untouched() {
        let headers = HeaderMap::new();
        assert_eq!(
            expand(b"{\"a\": 1}", &context(&headers, &[]), Escaping::Json),
            None
        );
    }
}
