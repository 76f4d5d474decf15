//! Loading of document text into a loose [`serde_json::Value`] tree, version detection, local
//! `$ref` resolution and diagnostics located by JSON pointers.

use serde_json::{Map, Value};

use crate::{Diagnostic, Severity};

/// The most `$ref` hops followed for one reference before it counts as a cycle.
const MAX_REF_HOPS: usize = 64;

/// The specification family of a loaded document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecVersion {
    /// Swagger 2.0, already converted to the OpenAPI 3.0 layout by [`crate::swagger`].
    Swagger2,
    OpenApi30,
    OpenApi31,
}

/// A parsed document in the OpenAPI 3.x layout.
pub struct Document {
    pub root: Value,
    pub version: SpecVersion,
}

/// Builds a diagnostic.
pub fn diagnostic(
    severity: Severity,
    pointer: impl Into<String>,
    message: impl Into<String>,
) -> Diagnostic {
    Diagnostic {
        severity,
        pointer: pointer.into(),
        message: message.into(),
    }
}

/// Escapes one reference token for a JSON pointer (`~` to `~0`, `/` to `~1`).
pub fn escape_token(token: &str) -> String {
    if !token.contains(['~', '/']) {
        return token.to_owned();
    }
    token.replace('~', "~0").replace('/', "~1")
}

/// Appends one reference token to a JSON pointer.
pub fn join_pointer(pointer: &str, token: &str) -> String {
    let mut joined = String::with_capacity(pointer.len() + token.len() + 1);
    joined.push_str(pointer);
    joined.push('/');
    joined.push_str(&escape_token(token));
    joined
}

/// Parses JSON or YAML text, detects the specification version and converts Swagger 2.0 to
/// the OpenAPI 3.0 layout. Errors are returned as diagnostics.
pub fn load(text: &str) -> Result<(Document, Vec<Diagnostic>), Vec<Diagnostic>> {
    let root =
        parse_text(text).map_err(|message| vec![diagnostic(Severity::Error, "", message)])?;
    let Value::Object(object) = &root else {
        let message = format!(
            "the document is {} but must be an object with an `openapi` or `swagger` field",
            kind_name(&root)
        );
        return Err(vec![diagnostic(Severity::Error, "", message)]);
    };

    let version = detect_version(object)?;
    let mut warnings = Vec::new();
    let root = if version == SpecVersion::Swagger2 {
        crate::swagger::convert(root, &mut warnings)
    } else {
        root
    };

    let mut errors = Vec::new();
    match root.get("paths") {
        None | Some(Value::Null) => {}
        Some(Value::Object(_)) => {}
        Some(other) => errors.push(diagnostic(
            Severity::Error,
            "/paths",
            format!("`paths` is {} but must be an object", kind_name(other)),
        )),
    }

    check_references(&root, &mut errors, &mut warnings);
    if !errors.is_empty() {
        errors.extend(warnings);
        return Err(errors);
    }
    Ok((Document { root, version }, warnings))
}

/// Parses text as JSON when it looks like JSON, and as YAML otherwise or when JSON fails.
fn parse_text(text: &str) -> Result<Value, String> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.is_empty() {
        return Err("the document is empty; expected OpenAPI JSON or YAML text".to_owned());
    }
    let json_error = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(trimmed) {
            Ok(value) => return Ok(value),
            Err(error) => Some(error),
        }
    } else {
        None
    };

    match serde_yaml::from_str::<serde_yaml::Value>(trimmed) {
        Ok(mut yaml) => {
            if let Err(error) = yaml.apply_merge() {
                return Err(format!(
                    "the YAML document has an invalid merge key: {error}"
                ));
            }
            Ok(yaml_to_json(yaml))
        }
        Err(yaml_error) => match json_error {
            Some(error) => Err(format!("the document is not valid JSON: {error}")),
            None => Err(format!(
                "the document is neither valid JSON nor valid YAML: {yaml_error}"
            )),
        },
    }
}

/// Converts a YAML tree to JSON, turning non-string keys (such as the status code `200`) into
/// their text form.
fn yaml_to_json(yaml: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Yaml;
    match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(flag) => Value::Bool(flag),
        Yaml::Number(number) => {
            if let Some(int) = number.as_i64() {
                Value::from(int)
            } else if let Some(uint) = number.as_u64() {
                Value::from(uint)
            } else {
                number
                    .as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Yaml::String(text) => Value::String(text),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Yaml::Mapping(mapping) => {
            let mut object = Map::with_capacity(mapping.len());
            for (key, value) in mapping {
                object.insert(yaml_key_text(key), yaml_to_json(value));
            }
            Value::Object(object)
        }
        Yaml::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

fn yaml_key_text(key: serde_yaml::Value) -> String {
    use serde_yaml::Value as Yaml;
    match key {
        Yaml::String(text) => text,
        Yaml::Number(number) => number.to_string(),
        Yaml::Bool(flag) => flag.to_string(),
        Yaml::Null => "null".to_owned(),
        other => serde_yaml::to_string(&other)
            .map(|text| text.trim().to_owned())
            .unwrap_or_default(),
    }
}

fn detect_version(object: &Map<String, Value>) -> Result<SpecVersion, Vec<Diagnostic>> {
    if let Some(value) = object.get("openapi") {
        let text = version_text(value);
        return match text.as_deref() {
            Some(v) if v.starts_with("3.0") => Ok(SpecVersion::OpenApi30),
            Some(v) if v.starts_with("3.1") || v.starts_with("3.2") => Ok(SpecVersion::OpenApi31),
            _ => Err(vec![diagnostic(
                Severity::Error,
                "/openapi",
                format!("unsupported `openapi` version {value}; expected 3.0.x or 3.1.x"),
            )]),
        };
    }
    if let Some(value) = object.get("swagger") {
        return match version_text(value).as_deref() {
            Some("2.0") | Some("2") => Ok(SpecVersion::Swagger2),
            _ => Err(vec![diagnostic(
                Severity::Error,
                "/swagger",
                format!("unsupported `swagger` version {value}; expected \"2.0\""),
            )]),
        };
    }
    Err(vec![diagnostic(
        Severity::Error,
        "",
        "the document has no `openapi` or `swagger` version field; add `openapi: 3.0.3` or `openapi: 3.1.0`",
    )])
}

fn version_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Returns a JSON value's kind with its article for messages, such as "an array" or "null".
pub fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Converts a local reference (`#/components/schemas/Pet`) to a JSON pointer
/// (`/components/schemas/Pet`), decoding percent escapes in the fragment. Returns `None` for a
/// reference to another document.
pub fn local_pointer(reference: &str) -> Option<String> {
    let fragment = reference.strip_prefix('#')?;
    let decoded = percent_encoding::percent_decode_str(fragment)
        .decode_utf8()
        .ok()?;
    Some(decoded.into_owned())
}

/// Walks the whole tree and reports every `$ref` that cannot be resolved. A local reference
/// that points nowhere is an error, and a reference to another document is a warning because
/// only local references are supported.
fn check_references(root: &Value, errors: &mut Vec<Diagnostic>, warnings: &mut Vec<Diagnostic>) {
    let mut pointer = String::new();
    walk_references(root, root, &mut pointer, None, errors, warnings);
}

fn walk_references(
    root: &Value,
    node: &Value,
    pointer: &mut String,
    parent_key: Option<&str>,
    errors: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) {
    match node {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get("$ref") {
                let ref_pointer = format!("{pointer}/$ref");
                match local_pointer(reference) {
                    Some(target) => {
                        if root.pointer(&target).is_none() {
                            errors.push(diagnostic(
                                Severity::Error,
                                ref_pointer,
                                format!("`$ref` {reference:?} does not resolve to any node in this document"),
                            ));
                        }
                    }
                    None => warnings.push(diagnostic(
                        Severity::Warning,
                        ref_pointer,
                        format!("`$ref` {reference:?} points to another document; only local references are resolved, so it is treated as an empty schema"),
                    )),
                }
            }
            for (key, child) in object {
                // Example payloads are data: a `$ref` key inside them is not a reference.
                let is_example_data =
                    (key == "example" || key == "x-example") && parent_key != Some("properties");
                if is_example_data || !matches!(child, Value::Object(_) | Value::Array(_)) {
                    continue;
                }
                let length = pointer.len();
                pointer.push('/');
                pointer.push_str(&escape_token(key));
                walk_references(root, child, pointer, Some(key), errors, warnings);
                pointer.truncate(length);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                if !matches!(child, Value::Object(_) | Value::Array(_)) {
                    continue;
                }
                let length = pointer.len();
                pointer.push('/');
                pointer.push_str(&index.to_string());
                walk_references(root, child, pointer, None, errors, warnings);
                pointer.truncate(length);
            }
        }
        _ => {}
    }
}

/// Follows `$ref` chains from `node` (found at `pointer`) to a non-reference node. Returns the
/// node and its pointer, or a diagnostic for a missing target, an external reference or a cycle.
pub fn resolve<'a>(
    root: &'a Value,
    node: &'a Value,
    pointer: &str,
) -> Result<(&'a Value, String), Diagnostic> {
    let mut current = node;
    let mut current_pointer = pointer.to_owned();
    for _ in 0..MAX_REF_HOPS {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            return Ok((current, current_pointer));
        };
        let Some(target) = local_pointer(reference) else {
            return Err(diagnostic(
                Severity::Warning,
                format!("{current_pointer}/$ref"),
                format!("`$ref` {reference:?} points to another document and is ignored"),
            ));
        };
        let Some(next) = root.pointer(&target) else {
            return Err(diagnostic(
                Severity::Error,
                format!("{current_pointer}/$ref"),
                format!("`$ref` {reference:?} does not resolve"),
            ));
        };
        current = next;
        current_pointer = target;
    }
    Err(diagnostic(
        Severity::Warning,
        pointer,
        format!("`$ref` chain longer than {MAX_REF_HOPS} hops or cyclic; the node is ignored"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_numeric_keys_become_strings() {
        let value = parse_text("openapi: 3.0.0\npaths:\n  /a:\n    get:\n      responses:\n        200:\n          description: ok\n").unwrap();
        assert!(value.pointer("/paths/~1a/get/responses/200").is_some());
    }

    #[test]
    fn json_error_reports_position() {
        let error = parse_text("{\"openapi\": ").unwrap_err();
        assert!(error.contains("not valid JSON"), "{error}");
    }

    #[test]
    fn local_pointer_decodes_fragment() {
        assert_eq!(
            local_pointer("#/paths/~1pets~1%7Bid%7D").as_deref(),
            Some("/paths/~1pets~1{id}")
        );
        assert_eq!(local_pointer("other.yaml#/a"), None);
    }

    #[test]
    fn resolve_reports_cycle() {
        let root: Value = serde_json::json!({"a": {"$ref": "#/b"}, "b": {"$ref": "#/a"}});
        let error = resolve(&root, &root["a"], "/a").unwrap_err();
        assert!(error.message.contains("cyclic"), "{}", error.message);
    }
}
