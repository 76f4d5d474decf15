//! Request validation against an operation's parameters and request body: presence of required
//! values, parameter types and a structural check of JSON bodies against their schema.

use serde_json::Value;

use crate::negotiate::essence;
use crate::router::decode_component;
use crate::schema::{SchemaArena, SchemaId, SchemaNode, TypeSet};

/// The maximum number of problems reported for one request.
const MAX_PROBLEMS: usize = 20;
/// The maximum schema nesting depth checked in a body.
const MAX_DEPTH: usize = 32;
/// The maximum number of array items checked per array.
const MAX_CHECKED_ITEMS: usize = 256;

/// The location of a parameter in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
    Header,
    Cookie,
}

impl Location {
    pub fn parse(text: &str) -> Option<Location> {
        Some(match text {
            "path" => Location::Path,
            "query" => Location::Query,
            "header" => Location::Header,
            "cookie" => Location::Cookie,
            _ => return None,
        })
    }

    fn label(self) -> &'static str {
        match self {
            Location::Path => "path parameter",
            Location::Query => "query parameter",
            Location::Header => "header",
            Location::Cookie => "cookie",
        }
    }
}

/// A declared parameter of an operation.
#[derive(Debug, Clone)]
pub struct ParameterSpec {
    pub name: String,
    pub location: Location,
    pub required: bool,
    pub schema: Option<SchemaId>,
}

/// A declared request body.
#[derive(Debug, Clone, Default)]
pub struct RequestBodySpec {
    pub required: bool,
    /// Declared media types (lowercased essence) with their schema.
    pub media: Vec<(String, Option<SchemaId>)>,
}

/// The parts of a request that validation reads, with path parameters already decoded.
pub struct RequestParts<'a> {
    pub path_parameters: &'a [(&'a str, String)],
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// Checks a request and returns the problems found, each as one sentence.
pub fn validate_request(
    arena: &SchemaArena,
    parameters: &[ParameterSpec],
    body: Option<&RequestBodySpec>,
    request: &RequestParts<'_>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let query = parse_query(request.query);
    let cookies = parse_cookies(request.headers);

    for parameter in parameters {
        let values: Vec<String> = match parameter.location {
            Location::Path => request
                .path_parameters
                .iter()
                .filter(|(name, _)| *name == parameter.name)
                .map(|(_, value)| value.clone())
                .collect(),
            Location::Query => query
                .iter()
                .filter(|(name, _)| *name == parameter.name)
                .map(|(_, value)| value.clone())
                .collect(),
            Location::Header => request
                .headers
                .get_all(parameter.name.as_str())
                .iter()
                .filter_map(|value| value.to_str().ok())
                .map(str::to_owned)
                .collect(),
            Location::Cookie => cookies
                .iter()
                .filter(|(name, _)| *name == parameter.name)
                .map(|(_, value)| value.clone())
                .collect(),
        };
        let label = parameter.location.label();
        if values.is_empty() {
            if parameter.required {
                problems.push(format!(
                    "the required {label} `{}` is missing",
                    parameter.name
                ));
            }
            continue;
        }
        let Some(schema) = parameter.schema else {
            continue;
        };
        check_parameter(
            arena,
            schema,
            &values,
            &format!("{label} `{}`", parameter.name),
            &mut problems,
        );
    }

    if let Some(spec) = body {
        check_body(arena, spec, request, &mut problems);
    }
    problems.truncate(MAX_PROBLEMS);
    problems
}

fn check_parameter(
    arena: &SchemaArena,
    schema: SchemaId,
    values: &[String],
    label: &str,
    problems: &mut Vec<String>,
) {
    let node = arena.get(arena.resolve(schema));
    if node.types.contains(TypeSet::ARRAY) {
        let Some(items) = node.items else { return };
        // Both `form` with explode (repeated names) and comma-separated values are accepted.
        for value in values.iter().flat_map(|value| value.split(',')) {
            let coerced = coerce(arena, items, value);
            check_value(arena, items, &coerced, label, 0, problems);
        }
        return;
    }
    if node.types.contains(TypeSet::OBJECT) {
        // TODO: object parameters (deepObject and form styles) are not validated.
        return;
    }
    let coerced = coerce(arena, schema, &values[0]);
    check_value(arena, schema, &coerced, label, 0, problems);
}

/// Converts parameter text to the JSON type its schema expects, when the text parses as that
/// type. Otherwise the text stays a string, so the type check reports it.
fn coerce(arena: &SchemaArena, schema: SchemaId, text: &str) -> Value {
    let node = arena.get(arena.resolve(schema));
    let types = node.types;
    if types.contains(TypeSet::INTEGER) {
        if let Ok(number) = text.parse::<i64>() {
            return Value::from(number);
        }
    }
    if types.contains(TypeSet::NUMBER) {
        if let Some(number) = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return Value::Number(number);
        }
    }
    if types.contains(TypeSet::BOOLEAN) && (text == "true" || text == "false") {
        return Value::Bool(text == "true");
    }
    if types.contains(TypeSet::NULL) && text.is_empty() {
        return Value::Null;
    }
    Value::String(text.to_owned())
}

fn check_body(
    arena: &SchemaArena,
    spec: &RequestBodySpec,
    request: &RequestParts<'_>,
    problems: &mut Vec<String>,
) {
    if request.body.is_empty() {
        if spec.required {
            problems.push("the request body is required but empty".to_owned());
        }
        return;
    }
    if spec.media.is_empty() {
        return;
    }
    let content_type = request
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let Some(content_type) = content_type else {
        problems.push(format!(
            "the request has a body but no Content-Type; send one of: {}",
            media_list(spec)
        ));
        return;
    };
    let essence = essence(content_type);
    let declared = spec
        .media
        .iter()
        .find(|(declared, _)| media_matches(declared, &essence));
    let Some((_, schema)) = declared else {
        problems.push(format!(
            "Content-Type `{essence}` is not accepted; send one of: {}",
            media_list(spec)
        ));
        return;
    };
    let is_json = essence == "application/json" || essence.ends_with("+json");
    if !is_json {
        return;
    }
    let value: Value = match serde_json::from_slice(request.body) {
        Ok(value) => value,
        Err(error) => {
            problems.push(format!("the request body is not valid JSON: {error}"));
            return;
        }
    };
    if let Some(schema) = schema {
        check_value(arena, *schema, &value, "request body", 0, problems);
    }
}

fn media_list(spec: &RequestBodySpec) -> String {
    spec.media
        .iter()
        .map(|(media, _)| media.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Matches a request media type against a declared one, which may be a range such as `image/*`.
fn media_matches(declared: &str, actual: &str) -> bool {
    if declared == actual || declared == "*/*" {
        return true;
    }
    match declared.strip_suffix("/*") {
        Some(kind) => actual.split('/').next() == Some(kind),
        None => false,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn type_matches(node: &SchemaNode, value: &Value) -> bool {
    let types = node.types;
    if types.is_empty() {
        return true;
    }
    match value {
        Value::Null => types.contains(TypeSet::NULL) || node.nullable,
        Value::Bool(_) => types.contains(TypeSet::BOOLEAN),
        Value::Number(number) => {
            let is_integer = number.is_i64()
                || number.is_u64()
                || number.as_f64().is_some_and(|float| float.fract() == 0.0);
            types.contains(TypeSet::NUMBER) || (types.contains(TypeSet::INTEGER) && is_integer)
        }
        Value::String(_) => types.contains(TypeSet::STRING),
        Value::Array(_) => types.contains(TypeSet::ARRAY),
        Value::Object(_) => types.contains(TypeSet::OBJECT),
    }
}

fn expected_types(node: &SchemaNode) -> String {
    let mut names = Vec::new();
    for (bit, name) in [
        (TypeSet::OBJECT, "object"),
        (TypeSet::ARRAY, "array"),
        (TypeSet::STRING, "string"),
        (TypeSet::INTEGER, "integer"),
        (TypeSet::NUMBER, "number"),
        (TypeSet::BOOLEAN, "boolean"),
        (TypeSet::NULL, "null"),
    ] {
        if node.types.contains(bit) {
            names.push(name);
        }
    }
    names.join(" or ")
}

/// Checks a value against a schema and appends one problem per violation found. `location`
/// names the value, such as `request body/items/0`.
// TODO: `pattern`, `format`, `multipleOf` and the exactly-one rule of `oneOf` are not checked.
pub fn check_value(
    arena: &SchemaArena,
    schema: SchemaId,
    value: &Value,
    location: &str,
    depth: usize,
    problems: &mut Vec<String>,
) {
    if depth > MAX_DEPTH || problems.len() >= MAX_PROBLEMS {
        return;
    }
    let node = arena.get(arena.resolve(schema));
    if node.never {
        problems.push(format!("{location} is not allowed"));
        return;
    }
    if value.is_null() && node.nullable {
        return;
    }
    if !type_matches(node, value) {
        problems.push(format!(
            "{location} must be {}, found {}",
            expected_types(node),
            type_name(value)
        ));
        return;
    }
    if let Some(allowed) = &node.enum_values {
        if !allowed.contains(value) {
            let listed: Vec<String> = allowed.iter().take(10).map(Value::to_string).collect();
            problems.push(format!(
                "{location} is {value}, which is not one of {}",
                listed.join(", ")
            ));
            return;
        }
    }
    if let Some(expected) = &node.const_value {
        if expected != value {
            problems.push(format!("{location} must be {expected}, found {value}"));
            return;
        }
    }

    match value {
        Value::String(text) => check_string(node, text, location, problems),
        Value::Number(number) => {
            check_number(node, number.as_f64().unwrap_or(0.0), location, problems)
        }
        Value::Array(items) => check_array(arena, node, items, location, depth, problems),
        Value::Object(object) => check_object(arena, node, object, location, depth, problems),
        _ => {}
    }

    let branches = if node.one_of.is_empty() {
        &node.any_of
    } else {
        &node.one_of
    };
    if !branches.is_empty() {
        let matches_any = branches.iter().any(|branch| {
            let mut branch_problems = Vec::new();
            check_value(
                arena,
                *branch,
                value,
                location,
                depth + 1,
                &mut branch_problems,
            );
            branch_problems.is_empty()
        });
        if !matches_any {
            problems.push(format!(
                "{location} matches none of the {} alternative schemas",
                branches.len()
            ));
        }
    }
}

fn check_string(node: &SchemaNode, text: &str, location: &str, problems: &mut Vec<String>) {
    let length = text.chars().count() as u64;
    if let Some(minimum) = node.min_length {
        if length < minimum {
            problems.push(format!(
                "{location} has {length} characters but needs at least {minimum}"
            ));
        }
    }
    if let Some(maximum) = node.max_length {
        if length > maximum {
            problems.push(format!(
                "{location} has {length} characters but allows at most {maximum}"
            ));
        }
    }
}

fn check_number(node: &SchemaNode, number: f64, location: &str, problems: &mut Vec<String>) {
    if let Some(minimum) = node.minimum {
        let below = if node.exclusive_minimum {
            number <= minimum
        } else {
            number < minimum
        };
        if below {
            let relation = if node.exclusive_minimum {
                "greater than"
            } else {
                "at least"
            };
            problems.push(format!(
                "{location} is {number} but must be {relation} {minimum}"
            ));
        }
    }
    if let Some(maximum) = node.maximum {
        let above = if node.exclusive_maximum {
            number >= maximum
        } else {
            number > maximum
        };
        if above {
            let relation = if node.exclusive_maximum {
                "less than"
            } else {
                "at most"
            };
            problems.push(format!(
                "{location} is {number} but must be {relation} {maximum}"
            ));
        }
    }
}

fn check_array(
    arena: &SchemaArena,
    node: &SchemaNode,
    items: &[Value],
    location: &str,
    depth: usize,
    problems: &mut Vec<String>,
) {
    let count = items.len() as u64;
    if let Some(minimum) = node.min_items {
        if count < minimum {
            problems.push(format!(
                "{location} has {count} items but needs at least {minimum}"
            ));
        }
    }
    if let Some(maximum) = node.max_items {
        if count > maximum {
            problems.push(format!(
                "{location} has {count} items but allows at most {maximum}"
            ));
        }
    }
    if node.unique_items {
        let has_duplicate = items
            .iter()
            .enumerate()
            .any(|(index, item)| items[..index].contains(item));
        if has_duplicate {
            problems.push(format!("{location} must not contain duplicate items"));
        }
    }
    for (index, item) in items.iter().enumerate().take(MAX_CHECKED_ITEMS) {
        let schema = node.prefix_items.get(index).copied().or(node.items);
        if let Some(schema) = schema {
            check_value(
                arena,
                schema,
                item,
                &format!("{location}/{index}"),
                depth + 1,
                problems,
            );
        }
    }
}

fn check_object(
    arena: &SchemaArena,
    node: &SchemaNode,
    object: &serde_json::Map<String, Value>,
    location: &str,
    depth: usize,
    problems: &mut Vec<String>,
) {
    for name in &node.required {
        if object.contains_key(&**name) {
            continue;
        }
        // `readOnly` properties are required only in responses.
        let is_read_only = node
            .properties
            .iter()
            .find(|(property, _)| property == name)
            .is_some_and(|(_, schema)| {
                arena.get(*schema).read_only || arena.get(arena.resolve(*schema)).read_only
            });
        if !is_read_only {
            problems.push(format!(
                "{location} is missing the required property `{name}`"
            ));
        }
    }
    for (key, item) in object {
        let declared = node
            .properties
            .iter()
            .find(|(property, _)| &**property == key.as_str());
        let schema = match declared {
            Some((_, schema)) => Some(*schema),
            None => node.additional_properties,
        };
        if let Some(schema) = schema {
            check_value(
                arena,
                schema,
                item,
                &format!("{location}/{key}"),
                depth + 1,
                problems,
            );
        }
    }
}

/// Splits a query string into decoded name and value pairs (`+` is a space in query strings).
fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    let Some(query) = query else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_query_part(name), decode_query_part(value))
        })
        .collect()
}

fn decode_query_part(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    decode_component(&spaced).unwrap_or(spaced)
}

fn parse_cookies(headers: &http::HeaderMap) -> Vec<(String, String)> {
    let mut cookies = Vec::new();
    for header in headers.get_all(http::header::COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }
    cookies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_decoded() {
        let pairs = parse_query(Some("a=1&b=x+y&c=%2F&flag"));
        assert_eq!(pairs[0], ("a".to_owned(), "1".to_owned()));
        assert_eq!(pairs[1], ("b".to_owned(), "x y".to_owned()));
        assert_eq!(pairs[2], ("c".to_owned(), "/".to_owned()));
        assert_eq!(pairs[3], ("flag".to_owned(), String::new()));
    }

    #[test]
    fn media_ranges_match() {
        assert!(media_matches("image/*", "image/png"));
        assert!(media_matches("*/*", "text/plain"));
        assert!(!media_matches(
            "application/json",
            "application/vnd.api+json"
        ));
    }
}
