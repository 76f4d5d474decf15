//! Read-only views of a compiled mock for tools and tests: the declared operations, a valid
//! sample request for each, and response schemas exported as JSON Schema 2020-12.

use std::collections::BTreeSet;

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, COOKIE};
use http::{HeaderMap, Method, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use crate::generate::{generate_for, mix};
use crate::mock::Mock;
use crate::schema::{SchemaArena, SchemaId};
use crate::validate::{Direction, Location, ParameterSpec, Style};

/// Characters left as they are in generated path and query values (RFC 3986 unreserved).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A request built from an operation's declared parameters and body, which passes validation
/// when the schemas are satisfiable.
#[derive(Debug, Clone)]
pub struct SampleRequest {
    pub method: Method,
    /// The raw path, with parameter values percent-encoded.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Mock {
    /// Returns the method and path template of an operation (`0..operation_count()`).
    pub fn operation_route(&self, operation: usize) -> (&Method, &str) {
        let operation = &self.operations[operation];
        (&operation.method, &operation.path)
    }

    /// Returns the `operationId` of an operation (`0..operation_count()`), or `None` when the
    /// document declares none.
    pub fn operation_id(&self, operation: usize) -> Option<&str> {
        self.operations[operation].operation_id.as_deref()
    }

    /// Returns the response keys an operation declares (`200`, `4XX`, `default`), in order.
    pub fn declared_responses(&self, operation: usize) -> Vec<&str> {
        self.operations[operation]
            .responses
            .iter()
            .map(|response| response.key.as_str())
            .collect()
    }

    /// Builds a request for an operation from its parameters' schemas: every path parameter,
    /// the required query, header and cookie parameters, and a body when one is required.
    pub fn sample_request(&self, operation: usize) -> SampleRequest {
        let operation = &self.operations[operation];
        let arena = &self.schemas;
        let seed = mix(operation.seed, "sample request");
        let value_of = |parameter: &ParameterSpec| -> Value {
            parameter
                .schema
                .and_then(|schema| {
                    generate_for(arena, schema, mix(seed, &parameter.name), Direction::Request)
                })
                .unwrap_or_else(|| Value::String("1".to_owned()))
        };

        let mut path = operation.path.clone();
        let mut query = Vec::new();
        let mut headers = HeaderMap::new();
        let mut cookies = Vec::new();
        for parameter in &operation.parameters {
            if parameter.location != Location::Path && !parameter.required {
                continue;
            }
            let value = value_of(parameter);
            match parameter.location {
                Location::Path => {
                    // An empty segment would not match the route.
                    let text = match simple_text(&value) {
                        text if text.is_empty() => "1".to_owned(),
                        text => encode(&text),
                    };
                    path = path.replace(&format!("{{{}}}", parameter.name), &text);
                }
                Location::Query => query.extend(query_pairs(parameter, &value)),
                Location::Header => {
                    let name = HeaderName::from_bytes(parameter.name.as_bytes());
                    let text = HeaderValue::from_str(&simple_text(&value));
                    if let (Ok(name), Ok(text)) = (name, text) {
                        headers.insert(name, text);
                    }
                }
                Location::Cookie => cookies.push(format!("{}={}", parameter.name, encode(&simple_text(&value)))),
            }
        }
        if !cookies.is_empty() {
            if let Ok(value) = HeaderValue::from_str(&cookies.join("; ")) {
                headers.insert(COOKIE, value);
            }
        }

        let mut body = Vec::new();
        if let Some(spec) = operation.request_body.as_ref().filter(|spec| spec.required) {
            let concrete = || spec.media.iter().filter(|(media, _)| !media.contains('*'));
            let chosen = concrete()
                .find(|(media, _)| media == "application/json")
                .or_else(|| concrete().find(|(media, _)| media.ends_with("+json")))
                .or_else(|| concrete().next())
                .or_else(|| spec.media.first());
            if let Some((media, schema)) = chosen {
                let media = if media.contains('*') { "application/octet-stream" } else { media };
                let value = schema
                    .and_then(|schema| generate_for(arena, schema, mix(seed, "body"), Direction::Request))
                    .unwrap_or(Value::Null);
                body = if media == "application/json" || media.ends_with("+json") {
                    serde_json::to_vec(&value).unwrap_or_default()
                } else if media == "application/x-www-form-urlencoded" {
                    form_text(&value).into_bytes()
                } else {
                    simple_text(&value).into_bytes()
                };
                if body.is_empty() {
                    body = b"x".to_vec();
                }
                if let Ok(value) = HeaderValue::from_str(media) {
                    headers.insert(CONTENT_TYPE, value);
                }
            }
        }

        SampleRequest {
            method: operation.method.clone(),
            path,
            query: (!query.is_empty()).then(|| query.join("&")),
            headers,
            body,
        }
    }

    /// Returns the schema of the response an operation sends with `status` and `content_type`,
    /// or `None` when that response declares no schema.
    pub fn response_schema(
        &self,
        operation: usize,
        status: StatusCode,
        content_type: &str,
    ) -> Option<ResponseSchema<'_>> {
        let response = self.operations[operation].response_for_status(status)?;
        let content = response
            .content
            .iter()
            .find(|content| content.content_type.as_bytes() == content_type.as_bytes())?;
        Some(ResponseSchema {
            mock: self,
            id: self.schemas.resolve(content.schema?),
        })
    }
}

/// A normalised response schema of a compiled mock.
pub struct ResponseSchema<'m> {
    mock: &'m Mock,
    id: SchemaId,
}

impl ResponseSchema<'_> {
    /// Returns a key that is equal for responses sharing one schema of the same mock.
    pub fn key(&self) -> u32 {
        self.id.0
    }

    /// Exports the schema as a JSON Schema 2020-12 document, with `allOf` merged and `$ref`s
    /// pointing into `$defs`. `writeOnly` properties are not required in it, as in generated
    /// responses.
    pub fn to_json_schema(&self) -> Value {
        to_json_schema(&self.mock.schemas, self.id, Direction::Response)
    }
}

/// Writes a value as parameter text in the `simple` style: arrays joined with commas.
fn simple_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(simple_text).collect::<Vec<_>>().join(","),
        Value::Object(object) => object
            .iter()
            .flat_map(|(key, value)| [key.clone(), simple_text(value)])
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// Serialises a query parameter in its declared style.
fn query_pairs(parameter: &ParameterSpec, value: &Value) -> Vec<String> {
    let name = encode(&parameter.name);
    match value {
        Value::Array(items) => {
            let texts: Vec<String> = items.iter().map(simple_text).collect();
            if parameter.explode && parameter.style == Style::Form {
                return texts.iter().map(|text| format!("{name}={}", encode(text))).collect();
            }
            let delimiter = match parameter.style {
                Style::SpaceDelimited => " ",
                Style::PipeDelimited => "|",
                _ => ",",
            };
            vec![format!("{name}={}", encode(&texts.join(delimiter)))]
        }
        Value::Object(object) => match (parameter.style, parameter.explode) {
            (Style::DeepObject, _) => object
                .iter()
                .map(|(key, value)| format!("{name}%5B{}%5D={}", encode(key), encode(&simple_text(value))))
                .collect(),
            (Style::Form, true) => object
                .iter()
                .map(|(key, value)| format!("{}={}", encode(key), encode(&simple_text(value))))
                .collect(),
            _ => vec![format!("{name}={}", encode(&simple_text(value)))],
        },
        other => vec![format!("{name}={}", encode(&simple_text(other)))],
    }
}

/// Serialises a value as a form body, with nested objects and arrays in the bracket notation
/// (`card[number]=4242`, `items[0][price]=5`) that the `deepObject` encoding describes.
fn form_text(value: &Value) -> String {
    let Value::Object(object) = value else {
        return String::new();
    };
    let mut pairs = Vec::new();
    for (key, value) in object {
        push_form_pairs(&encode(key), value, &mut pairs);
    }
    pairs.join("&")
}

fn push_form_pairs(prefix: &str, value: &Value, pairs: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, value) in object {
                push_form_pairs(&format!("{prefix}%5B{}%5D", encode(key)), value, pairs);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                push_form_pairs(&format!("{prefix}%5B{index}%5D"), item, pairs);
            }
        }
        other => pairs.push(format!("{prefix}={}", encode(&simple_text(other)))),
    }
}

/// Exports a lowered schema and everything it reaches as a JSON Schema 2020-12 document, one
/// `$defs` entry per arena node, so cycles become `$ref`s.
pub fn to_json_schema(arena: &SchemaArena, root: SchemaId, direction: Direction) -> Value {
    let mut seen = BTreeSet::new();
    let mut pending = vec![root];
    let mut definitions = Map::new();
    while let Some(id) = pending.pop() {
        if !seen.insert(id.0) {
            continue;
        }
        let (definition, reached) = export_node(arena, id, direction);
        definitions.insert(definition_name(id), definition);
        pending.extend(reached);
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": definition_ref(root),
        "$defs": definitions,
    })
}

fn definition_name(id: SchemaId) -> String {
    format!("s{}", id.0)
}

fn definition_ref(id: SchemaId) -> String {
    format!("#/$defs/s{}", id.0)
}

/// Exports one node with references to the nodes it names, and returns those nodes.
fn export_node(arena: &SchemaArena, id: SchemaId, direction: Direction) -> (Value, Vec<SchemaId>) {
    let node = arena.get(id);
    let mut reached = Vec::new();
    let mut link = |target: SchemaId| {
        reached.push(target);
        json!({ "$ref": definition_ref(target) })
    };
    if let Some(target) = node.reference {
        let linked = link(target);
        return (linked, reached);
    }
    if node.never {
        return (Value::Bool(false), reached);
    }
    let mut out = Map::new();
    if !node.types.is_empty() {
        let mut names = node.types.names();
        if node.nullable && !names.contains(&"null") {
            names.push("null");
        }
        out.insert("type".into(), json!(names));
    }
    if let Some(values) = &node.enum_values {
        let mut values = values.clone();
        if node.nullable && !values.contains(&Value::Null) {
            values.push(Value::Null);
        }
        out.insert("enum".into(), Value::Array(values));
    }
    if let Some(value) = &node.const_value {
        out.insert("const".into(), value.clone());
    }
    if let Some(format) = &node.format {
        out.insert("format".into(), json!(format));
    }
    let numbers = [
        ("minLength", node.min_length),
        ("maxLength", node.max_length),
        ("minItems", node.min_items),
        ("maxItems", node.max_items),
        ("minProperties", node.min_properties),
        ("maxProperties", node.max_properties),
    ];
    for (key, value) in numbers {
        if let Some(value) = value {
            out.insert(key.into(), json!(value));
        }
    }
    if let Some(pattern) = node.pattern_regex.as_ref().and(node.pattern_source.as_ref()) {
        out.insert("pattern".into(), json!(pattern));
    }
    if let Some(minimum) = node.minimum {
        let key = if node.exclusive_minimum { "exclusiveMinimum" } else { "minimum" };
        out.insert(key.into(), json!(minimum));
    }
    if let Some(maximum) = node.maximum {
        let key = if node.exclusive_maximum { "exclusiveMaximum" } else { "maximum" };
        out.insert(key.into(), json!(maximum));
    }
    if let Some(step) = node.multiple_of {
        out.insert("multipleOf".into(), json!(step));
    }
    if !node.prefix_items.is_empty() {
        let prefix: Vec<Value> = node.prefix_items.iter().map(|item| link(*item)).collect();
        out.insert("prefixItems".into(), Value::Array(prefix));
    }
    if let Some(items) = node.items {
        out.insert("items".into(), link(items));
    }
    if node.unique_items {
        out.insert("uniqueItems".into(), json!(true));
    }
    if !node.properties.is_empty() {
        let mut properties = Map::new();
        for (name, schema) in &node.properties {
            properties.insert(name.to_string(), link(*schema));
        }
        out.insert("properties".into(), Value::Object(properties));
    }
    let required: Vec<&str> = node
        .required
        .iter()
        .filter(|name| {
            let schema = node
                .properties
                .iter()
                .find(|(property, _)| property == *name)
                .map(|(_, schema)| *schema);
            !schema.is_some_and(|schema| {
                let (own, resolved) = (arena.get(schema), arena.get(arena.resolve(schema)));
                match direction {
                    Direction::Response => own.write_only || resolved.write_only,
                    Direction::Request => own.read_only || resolved.read_only,
                }
            })
        })
        .map(|name| &**name)
        .collect();
    if !required.is_empty() {
        out.insert("required".into(), json!(required));
    }
    if let Some(additional) = node.additional_properties {
        out.insert("additionalProperties".into(), link(additional));
    }
    if let Some(negated) = node.not {
        out.insert("not".into(), link(negated));
    }
    for (key, branches) in [("oneOf", &node.one_of), ("anyOf", &node.any_of)] {
        if !branches.is_empty() {
            let linked: Vec<Value> = branches.iter().map(|branch| link(*branch)).collect();
            out.insert(key.into(), Value::Array(linked));
        }
    }
    // `nullable` without `type` still lets null through, as validation does.
    if node.nullable && node.types.is_empty() {
        let with_null = json!({ "anyOf": [{ "type": "null" }, Value::Object(out)] });
        return (with_null, reached);
    }
    (Value::Object(out), reached)
}
