//! Request validation against an operation's parameters and request body. Each violation
//! carries its location as a list of path parts (`["body", "dogs", 0, "secret"]`), a message and
//! the JSON Schema keyword that failed.

use serde_json::{Map, Value};

use crate::negotiate::essence;
use crate::router::decode_component;
use crate::schema::{SchemaArena, SchemaId, SchemaNode, TypeSet};

/// The maximum number of violations reported for one request.
const MAX_VIOLATIONS: usize = 20;
/// The maximum nesting of schema checks (value levels plus `oneOf`/`anyOf`/`not` levels). A
/// deeper body gets a `maxDepth` violation rather than a deeper stack.
const MAX_DEPTH: usize = 200;
/// The maximum number of array items checked per array.
const MAX_CHECKED_ITEMS: usize = 1024;
/// The maximum number of schema checks per request. Past it the rest of the value is accepted
/// unchecked, so that overlapping `oneOf` trees cannot take exponential time.
const MAX_STEPS: usize = 200_000;

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

    pub fn name(self) -> &'static str {
        match self {
            Location::Path => "path",
            Location::Query => "query",
            Location::Header => "header",
            Location::Cookie => "cookie",
        }
    }
}

/// The serialisation `style` of a parameter (OpenAPI 3, "Style Values").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Simple,
    Label,
    Matrix,
    Form,
    SpaceDelimited,
    PipeDelimited,
    DeepObject,
}

impl Style {
    pub fn parse(text: &str) -> Option<Style> {
        Some(match text {
            "simple" => Style::Simple,
            "label" => Style::Label,
            "matrix" => Style::Matrix,
            "form" => Style::Form,
            "spaceDelimited" => Style::SpaceDelimited,
            "pipeDelimited" => Style::PipeDelimited,
            "deepObject" => Style::DeepObject,
            _ => return None,
        })
    }

    /// Returns the default style of a location: `form` for query and cookie, else `simple`.
    pub fn default_for(location: Location) -> Style {
        match location {
            Location::Query | Location::Cookie => Style::Form,
            Location::Path | Location::Header => Style::Simple,
        }
    }
}

/// A declared parameter of an operation.
#[derive(Debug, Clone)]
pub struct ParameterSpec {
    pub name: String,
    pub location: Location,
    pub required: bool,
    pub style: Style,
    pub explode: bool,
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

/// One part of a violation's location: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPart {
    Key(String),
    Index(usize),
}

/// One failed check.
#[derive(Debug, Clone)]
pub struct Violation {
    /// Starts with `path`, `query`, `header`, `cookie` or `body`.
    pub location: Vec<PathPart>,
    pub message: String,
    /// The JSON Schema keyword that failed, or `required`/`contentType`/`parse` for the request
    /// shape.
    pub keyword: &'static str,
}

impl Violation {
    /// Returns the location as a JSON array of strings and integers.
    pub fn location_json(&self) -> Value {
        Value::Array(
            self.location
                .iter()
                .map(|part| match part {
                    PathPart::Key(key) => Value::String(key.clone()),
                    PathPart::Index(index) => Value::from(*index),
                })
                .collect(),
        )
    }

    /// Returns `location: message`, with the location parts joined by `/`.
    pub fn summary(&self) -> String {
        let location: Vec<String> = self
            .location
            .iter()
            .map(|part| match part {
                PathPart::Key(key) => key.clone(),
                PathPart::Index(index) => index.to_string(),
            })
            .collect();
        format!("{}: {}", location.join("/"), self.message)
    }
}

/// The side of an exchange that a value belongs to. `readOnly` properties are not required in
/// requests, and `writeOnly` ones are not required in responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

/// Checks a request and returns the violations found.
pub fn validate_request(
    arena: &SchemaArena,
    parameters: &[ParameterSpec],
    body: Option<&RequestBodySpec>,
    request: &RequestParts<'_>,
) -> Vec<Violation> {
    let mut checker = Checker::new(arena, Direction::Request);
    let query = parse_pairs(request.query, '&');
    let cookies = parse_cookies(request.headers);

    for parameter in parameters {
        let raw: Vec<(String, String)> = match parameter.location {
            Location::Path => request
                .path_parameters
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect(),
            Location::Query => query.clone(),
            Location::Header => request
                .headers
                .get_all(parameter.name.as_str())
                .iter()
                .filter_map(|value| value.to_str().ok())
                .map(|value| (parameter.name.clone(), value.to_owned()))
                .collect(),
            Location::Cookie => cookies.clone(),
        };
        check_parameter(&mut checker, parameter, &raw);
    }

    if let Some(spec) = body {
        check_body(&mut checker, spec, request);
    }
    let mut violations = checker.violations;
    violations.truncate(MAX_VIOLATIONS);
    violations
}

/// Checks a value against a schema outside a request, such as a response example at compile time.
pub fn check_value(
    arena: &SchemaArena,
    schema: SchemaId,
    value: &Value,
    direction: Direction,
) -> Vec<Violation> {
    let mut checker = Checker::new(arena, direction);
    let mut location = Vec::new();
    checker.check(schema, value, &mut location, 0);
    checker.violations
}

/// Checks a value like [`check_value`] but gives up after `max_steps` schema checks, returning
/// `None` when the result is not known.
pub fn check_value_within(
    arena: &SchemaArena,
    schema: SchemaId,
    value: &Value,
    direction: Direction,
    max_steps: usize,
) -> Option<Vec<Violation>> {
    let mut checker = Checker::new(arena, direction);
    checker.max_steps = max_steps;
    let mut location = Vec::new();
    checker.check(schema, value, &mut location, 0);
    (checker.steps < max_steps).then_some(checker.violations)
}

fn check_parameter(checker: &mut Checker<'_>, parameter: &ParameterSpec, raw: &[(String, String)]) {
    let arena = checker.arena;
    let mut location = vec![
        PathPart::Key(parameter.location.name().to_owned()),
        PathPart::Key(parameter.name.clone()),
    ];
    let node = parameter.schema.map(|schema| arena.get(arena.resolve(schema)));
    let is_object = node.is_some_and(|node| {
        node.types.contains(TypeSet::OBJECT) && !node.types.contains(TypeSet::STRING)
    });
    let is_array = node.is_some_and(|node| node.types.contains(TypeSet::ARRAY));

    let value = if is_object {
        object_parameter(checker.arena, parameter, node.unwrap(), raw)
    } else {
        let values: Vec<&str> = raw
            .iter()
            .filter(|(name, _)| *name == parameter.name)
            .map(|(_, value)| value.as_str())
            .collect();
        if values.is_empty() {
            None
        } else if is_array {
            Some(array_parameter(checker.arena, parameter, node.unwrap(), &values))
        } else {
            let text = strip_prefix_style(parameter, values[0]);
            Some(match parameter.schema {
                Some(schema) => coerce(arena, schema, text),
                None => Value::String(text.to_owned()),
            })
        }
    };
    let Some(value) = value else {
        if parameter.required {
            checker.push(
                location,
                format!(
                    "the required {} parameter `{}` is missing",
                    parameter.location.name(),
                    parameter.name
                ),
                "required",
            );
        }
        return;
    };
    if let Some(schema) = parameter.schema {
        checker.check(schema, &value, &mut location, 0);
    }
}

/// Removes the `label` (`.`) and `matrix` (`;name=`) prefixes of a path value.
fn strip_prefix_style<'t>(parameter: &ParameterSpec, text: &'t str) -> &'t str {
    match parameter.style {
        Style::Label => text.strip_prefix('.').unwrap_or(text),
        Style::Matrix => text
            .strip_prefix(';')
            .and_then(|rest| rest.strip_prefix(parameter.name.as_str()))
            .map(|rest| rest.strip_prefix('=').unwrap_or(rest))
            .unwrap_or(text),
        _ => text,
    }
}

/// Builds an array from parameter text. Exploded query and cookie arrays repeat the name, so
/// each occurrence is one item and a single occurrence is an array of one. Otherwise the one
/// value is split at the style's delimiter.
fn array_parameter(
    arena: &SchemaArena,
    parameter: &ParameterSpec,
    node: &SchemaNode,
    values: &[&str],
) -> Value {
    let repeated = parameter.explode
        && matches!(
            parameter.style,
            Style::Form | Style::SpaceDelimited | Style::PipeDelimited
        );
    let texts: Vec<&str> = if repeated {
        values.to_vec()
    } else {
        let text = strip_prefix_style(parameter, values[0]);
        let delimiter = match parameter.style {
            Style::SpaceDelimited => " ",
            Style::PipeDelimited => "|",
            Style::Label if parameter.explode => ".",
            Style::Matrix if parameter.explode => {
                // `;id=3;id=4;id=5`: the prefix of the first item is already stripped.
                return Value::Array(
                    text.split(&format!(";{}=", parameter.name))
                        .map(|item| coerce_item(arena, node, 0, item))
                        .collect(),
                );
            }
            _ => ",",
        };
        if text.is_empty() {
            Vec::new()
        } else {
            text.split(delimiter).collect()
        }
    };
    Value::Array(
        texts
            .iter()
            .enumerate()
            .map(|(index, text)| coerce_item(arena, node, index, text))
            .collect(),
    )
}

fn coerce_item(arena: &SchemaArena, node: &SchemaNode, index: usize, text: &str) -> Value {
    match node.prefix_items.get(index).copied().or(node.items) {
        Some(items) => coerce(arena, items, text),
        None => Value::String(text.to_owned()),
    }
}

/// Builds an object from parameter text. Returns `None` when the request carries none of it.
fn object_parameter(
    arena: &SchemaArena,
    parameter: &ParameterSpec,
    node: &SchemaNode,
    raw: &[(String, String)],
) -> Option<Value> {
    let name = parameter.name.as_str();
    let mut pairs: Vec<(String, String)> = Vec::new();
    match (parameter.style, parameter.explode) {
        (Style::DeepObject, _) => {
            for (key, value) in raw {
                let inner = key
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('['))
                    .and_then(|rest| rest.strip_suffix(']'));
                if let Some(inner) = inner {
                    pairs.push((inner.to_owned(), value.clone()));
                }
            }
        }
        (Style::Form, true) => {
            // Exploded form objects spread their properties over the query: `role=admin&name=x`.
            let declared = |key: &str| node.properties.iter().any(|(known, _)| &**known == key);
            for (key, value) in raw {
                if declared(key) {
                    pairs.push((key.clone(), value.clone()));
                }
            }
        }
        (_, explode) => {
            let text = raw
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| strip_prefix_style(parameter, value))?;
            if explode {
                // `role=admin,firstName=Alex` (simple) or `.role=admin.firstName=Alex` (label).
                let separator = if parameter.style == Style::Label { '.' } else { ',' };
                for item in text.split(separator).filter(|item| !item.is_empty()) {
                    let (key, value) = item.split_once('=').unwrap_or((item, ""));
                    pairs.push((key.to_owned(), value.to_owned()));
                }
            } else {
                let separator = match parameter.style {
                    Style::SpaceDelimited => ' ',
                    Style::PipeDelimited => '|',
                    _ => ',',
                };
                let mut parts = text.split(separator);
                while let Some(key) = parts.next() {
                    let value = parts.next().unwrap_or("");
                    pairs.push((key.to_owned(), value.to_owned()));
                }
            }
            if pairs.is_empty() {
                return Some(Value::Object(Map::new()));
            }
        }
    }
    if pairs.is_empty() {
        return None;
    }
    let mut object = Map::new();
    for (key, text) in pairs {
        let schema = node
            .properties
            .iter()
            .find(|(known, _)| **known == *key)
            .map(|(_, schema)| *schema)
            .or(node.additional_properties);
        let value = match schema {
            Some(schema) => coerce(arena, schema, &text),
            None => Value::String(text),
        };
        object.insert(key, value);
    }
    Some(Value::Object(object))
}

/// Converts parameter text to the JSON type its schema expects, when the text parses as that
/// type. Otherwise the text stays a string, so the type check reports it.
fn coerce(arena: &SchemaArena, schema: SchemaId, text: &str) -> Value {
    let node = arena.get(arena.resolve(schema));
    let mut types = node.types;
    // Branches of `oneOf`/`anyOf` without an outer type add their types.
    for branch in node.one_of.iter().chain(&node.any_of) {
        let branch = arena.get(arena.resolve(*branch));
        types = types.union(branch.types);
    }
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
    if (types.contains(TypeSet::NULL) || node.nullable) && (text.is_empty() || text == "null") {
        return Value::Null;
    }
    Value::String(text.to_owned())
}

fn check_body(checker: &mut Checker<'_>, spec: &RequestBodySpec, request: &RequestParts<'_>) {
    let body_location = || vec![PathPart::Key("body".to_owned())];
    if request.body.is_empty() {
        if spec.required {
            checker.push(
                body_location(),
                "the request body is required but empty".to_owned(),
                "required",
            );
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
        checker.push(
            body_location(),
            format!(
                "the request has a body but no Content-Type; send one of: {}",
                media_list(spec)
            ),
            "contentType",
        );
        return;
    };
    let essence = essence(content_type);
    let declared = spec
        .media
        .iter()
        .find(|(declared, _)| media_matches(declared, &essence));
    let Some((_, schema)) = declared else {
        checker.push(
            body_location(),
            format!(
                "Content-Type `{essence}` is not accepted; send one of: {}",
                media_list(spec)
            ),
            "contentType",
        );
        return;
    };
    let is_json = essence == "application/json" || essence.ends_with("+json");
    let value: Value = if is_json {
        match serde_json::from_slice(request.body) {
            Ok(value) => value,
            Err(error) => {
                checker.push(
                    body_location(),
                    format!("the request body is not valid JSON: {error}"),
                    "parse",
                );
                return;
            }
        }
    } else if essence == "application/x-www-form-urlencoded" {
        let Some(schema) = schema else { return };
        let text = String::from_utf8_lossy(request.body);
        form_body(checker.arena, *schema, &text)
    } else {
        // TODO: multipart and other non-JSON bodies are not checked against their schema.
        return;
    };
    if let Some(schema) = schema {
        let mut location = body_location();
        checker.check(*schema, &value, &mut location, 0);
    }
}

/// Reads an `application/x-www-form-urlencoded` body as an object. Keys in bracket notation
/// (`card[number]=4242`, `items[0][price]=5`, the `deepObject` encoding) build nested values,
/// repeated keys build arrays, and each leaf is coerced to its schema's type.
fn form_body(arena: &SchemaArena, schema: SchemaId, text: &str) -> Value {
    let mut root = FormTree::Branch(Vec::new());
    for (key, value) in parse_pairs(Some(text), '&') {
        let (head, rest) = match key.find('[') {
            Some(position) => (&key[..position], &key[position..]),
            None => (key.as_str(), ""),
        };
        let mut path = vec![head.to_owned()];
        for part in rest.split('[').skip(1) {
            path.push(part.trim_end_matches(']').to_owned());
        }
        root.insert(&path, value);
    }
    root.shape(arena, Some(schema))
}

/// Form fields grouped by their bracket path, in body order.
enum FormTree {
    Leaf(Vec<String>),
    Branch(Vec<(String, FormTree)>),
}

impl FormTree {
    fn insert(&mut self, path: &[String], value: String) {
        let FormTree::Branch(children) = self else {
            return;
        };
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let position = match children.iter().position(|(key, _)| key == first) {
            Some(position) => position,
            None => {
                let child = if rest.is_empty() {
                    FormTree::Leaf(Vec::new())
                } else {
                    FormTree::Branch(Vec::new())
                };
                children.push((first.clone(), child));
                children.len() - 1
            }
        };
        match (&mut children[position].1, rest.is_empty()) {
            (FormTree::Leaf(values), true) => values.push(value),
            (branch @ FormTree::Branch(_), false) => branch.insert(rest, value),
            // A key used both as a leaf and as a parent keeps its first form.
            _ => {}
        }
    }

    /// Builds the JSON value the schema expects from the grouped fields.
    fn shape(&self, arena: &SchemaArena, schema: Option<SchemaId>) -> Value {
        let node = schema.map(|schema| structured_branch(arena, schema));
        match self {
            FormTree::Leaf(values) => {
                let is_array = node.is_some_and(|node| node.types.contains(TypeSet::ARRAY));
                match (node, is_array) {
                    (Some(node), true) => Value::Array(
                        values
                            .iter()
                            .enumerate()
                            .map(|(index, text)| coerce_item(arena, node, index, text))
                            .collect(),
                    ),
                    _ => match schema {
                        Some(schema) => coerce(arena, schema, values.last().map_or("", String::as_str)),
                        None => Value::String(values.last().cloned().unwrap_or_default()),
                    },
                }
            }
            FormTree::Branch(children) => {
                let is_array = node.is_some_and(|node| node.types.contains(TypeSet::ARRAY))
                    && children.iter().all(|(key, _)| key.is_empty() || key.parse::<usize>().is_ok());
                if is_array {
                    let node = node.unwrap();
                    let mut indexed: Vec<(usize, &FormTree)> = children
                        .iter()
                        .enumerate()
                        .map(|(order, (key, child))| (key.parse().unwrap_or(order), child))
                        .collect();
                    indexed.sort_by_key(|(index, _)| *index);
                    return Value::Array(
                        indexed
                            .into_iter()
                            .enumerate()
                            .map(|(index, (_, child))| {
                                child.shape(arena, node.prefix_items.get(index).copied().or(node.items))
                            })
                            .collect(),
                    );
                }
                let mut object = Map::new();
                for (key, child) in children {
                    let property = node.and_then(|node| {
                        node.properties
                            .iter()
                            .find(|(known, _)| **known == **key)
                            .map(|(_, schema)| *schema)
                            .or(node.additional_properties)
                    });
                    object.insert(key.clone(), child.shape(arena, property));
                }
                Value::Object(object)
            }
        }
    }
}

/// Returns the node that describes a structured form value: the schema itself, or for an
/// `anyOf`/`oneOf` without a type its first object or array branch.
fn structured_branch(arena: &SchemaArena, schema: SchemaId) -> &SchemaNode {
    let node = arena.get(arena.resolve(schema));
    if !node.types.is_empty() {
        return node;
    }
    node.any_of
        .iter()
        .chain(&node.one_of)
        .map(|branch| arena.get(arena.resolve(*branch)))
        .find(|branch| branch.types.contains(TypeSet::OBJECT) || branch.types.contains(TypeSet::ARRAY))
        .unwrap_or(node)
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
        (TypeSet::OBJECT, "an object"),
        (TypeSet::ARRAY, "an array"),
        (TypeSet::STRING, "a string"),
        (TypeSet::INTEGER, "an integer"),
        (TypeSet::NUMBER, "a number"),
        (TypeSet::BOOLEAN, "a boolean"),
        (TypeSet::NULL, "null"),
    ] {
        if node.types.contains(bit) {
            names.push(name);
        }
    }
    names.join(" or ")
}

/// Returns a readable name of a schema for messages: its component name, else `branch N`.
pub fn branch_name(arena: &SchemaArena, schema: SchemaId, index: usize) -> String {
    let resolved = arena.resolve(schema);
    let origin = arena
        .get(schema)
        .origin
        .as_deref()
        .or(arena.get(resolved).origin.as_deref());
    match origin.and_then(|origin| origin.rsplit('/').next()) {
        Some(name) if !name.is_empty() => name.replace("~1", "/").replace("~0", "~"),
        _ => format!("branch {index}"),
    }
}

/// The schema checker: walks a value and its schema together, collecting violations.
struct Checker<'a> {
    arena: &'a SchemaArena,
    direction: Direction,
    steps: usize,
    max_steps: usize,
    violations: Vec<Violation>,
}

impl<'a> Checker<'a> {
    fn new(arena: &'a SchemaArena, direction: Direction) -> Self {
        Self {
            arena,
            direction,
            steps: 0,
            max_steps: MAX_STEPS,
            violations: Vec::new(),
        }
    }

    fn push(&mut self, location: Vec<PathPart>, message: String, keyword: &'static str) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(Violation {
                location,
                message,
                keyword,
            });
        }
    }

    fn fail(&mut self, location: &[PathPart], message: String, keyword: &'static str) {
        self.push(location.to_vec(), message, keyword);
    }

    /// Returns whether a value matches a schema, without recording violations.
    fn matches(&mut self, schema: SchemaId, value: &Value, location: &mut Vec<PathPart>, depth: usize) -> bool {
        let saved = std::mem::take(&mut self.violations);
        self.check(schema, value, location, depth);
        let matched = self.violations.is_empty();
        self.violations = saved;
        matched
    }

    /// Checks a value against a schema; `location` is the path of the value.
    fn check(&mut self, schema: SchemaId, value: &Value, location: &mut Vec<PathPart>, depth: usize) {
        if self.violations.len() >= MAX_VIOLATIONS || self.steps >= self.max_steps {
            return;
        }
        self.steps += 1;
        if depth > MAX_DEPTH {
            self.fail(
                location,
                format!("the value is nested deeper than {MAX_DEPTH} levels, which is not checked"),
                "maxDepth",
            );
            return;
        }
        let arena = self.arena;
        let node = arena.get(arena.resolve(schema));
        if node.never {
            self.fail(location, "no value is allowed here (the schema is `false`)".to_owned(), "false");
            return;
        }
        if value.is_null() && node.nullable {
            return;
        }
        if !type_matches(node, value) {
            self.fail(
                location,
                format!("must be {}, found {}", expected_types(node), type_name(value)),
                "type",
            );
            return;
        }
        if let Some(allowed) = &node.enum_values {
            if !allowed.contains(value) {
                let listed: Vec<String> = allowed.iter().take(10).map(Value::to_string).collect();
                self.fail(
                    location,
                    format!("{value} is not one of {}", listed.join(", ")),
                    "enum",
                );
                return;
            }
        }
        if let Some(expected) = &node.const_value {
            if expected != value {
                self.fail(location, format!("must be {expected}, found {value}"), "const");
                return;
            }
        }

        match value {
            Value::String(text) => self.check_string(node, text, location),
            Value::Number(number) => self.check_number(node, number, location),
            Value::Array(items) => self.check_array(node, items, location, depth),
            Value::Object(object) => self.check_object(node, object, location, depth),
            _ => {}
        }

        if let Some(negated) = node.not {
            if self.matches(negated, value, location, depth + 1) {
                self.fail(location, "must not match the `not` schema".to_owned(), "not");
            }
        }
        if !node.one_of.is_empty() {
            self.check_one_of(node, value, location, depth);
        }
        if !node.any_of.is_empty() {
            let any = node
                .any_of
                .iter()
                .any(|branch| self.matches(*branch, value, location, depth + 1));
            if !any {
                self.fail(
                    location,
                    format!("matches none of the {} anyOf branches", node.any_of.len()),
                    "anyOf",
                );
            }
        }
    }

    fn check_one_of(&mut self, node: &SchemaNode, value: &Value, location: &mut Vec<PathPart>, depth: usize) {
        let arena = self.arena;
        let mut matched = Vec::new();
        for (index, branch) in node.one_of.iter().enumerate() {
            if self.matches(*branch, value, location, depth + 1) {
                matched.push(branch_name(arena, *branch, index));
            }
        }
        match matched.len() {
            1 => {}
            0 => {
                // With a discriminator, the violations of the branch it selects explain more.
                if let Some(selected) = self.discriminated_branch(node, value) {
                    self.check(selected, value, location, depth + 1);
                    if !self.violations.is_empty() {
                        return;
                    }
                }
                self.fail(
                    location,
                    format!("matches none of the {} oneOf branches", node.one_of.len()),
                    "oneOf",
                );
            }
            _ => self.fail(
                location,
                format!(
                    "matches {} oneOf branches ({}) but must match exactly one",
                    matched.len(),
                    matched.join(", ")
                ),
                "oneOf",
            ),
        }
    }

    /// Returns the `oneOf` branch that the discriminator value of an object names.
    fn discriminated_branch(&self, node: &SchemaNode, value: &Value) -> Option<SchemaId> {
        let discriminator = node.discriminator.as_ref()?;
        let tag = value.get(&discriminator.property_name)?.as_str()?;
        if let Some((_, schema)) = discriminator.mapping.iter().find(|(key, _)| key == tag) {
            return Some(*schema);
        }
        node.one_of
            .iter()
            .enumerate()
            .find(|(index, branch)| branch_name(self.arena, **branch, *index) == tag)
            .map(|(_, branch)| *branch)
    }

    fn check_string(&mut self, node: &SchemaNode, text: &str, location: &[PathPart]) {
        let length = text.chars().count() as u64;
        if let Some(minimum) = node.min_length {
            if length < minimum {
                self.fail(
                    location,
                    format!("has {length} characters but needs at least {minimum}"),
                    "minLength",
                );
            }
        }
        if let Some(maximum) = node.max_length {
            if length > maximum {
                self.fail(
                    location,
                    format!("has {length} characters but allows at most {maximum}"),
                    "maxLength",
                );
            }
        }
        if let Some(pattern) = &node.pattern_regex {
            if !pattern.is_match(text) {
                self.fail(
                    location,
                    format!("{text:?} does not match the pattern {:?}", pattern.as_str()),
                    "pattern",
                );
            }
        }
        if let Some(format) = node.format.as_deref() {
            if let Some(false) = crate::format::check_format(format, text) {
                self.fail(
                    location,
                    format!("{text:?} is not a valid `{format}`"),
                    "format",
                );
            }
        }
    }

    fn check_number(&mut self, node: &SchemaNode, number: &serde_json::Number, location: &[PathPart]) {
        let value = number.as_f64().unwrap_or(0.0);
        if let Some(minimum) = node.minimum {
            let (below, relation) = if node.exclusive_minimum {
                (value <= minimum, "greater than")
            } else {
                (value < minimum, "at least")
            };
            if below {
                let keyword = if node.exclusive_minimum { "exclusiveMinimum" } else { "minimum" };
                self.fail(location, format!("is {number} but must be {relation} {minimum}"), keyword);
            }
        }
        if let Some(maximum) = node.maximum {
            let (above, relation) = if node.exclusive_maximum {
                (value >= maximum, "less than")
            } else {
                (value > maximum, "at most")
            };
            if above {
                let keyword = if node.exclusive_maximum { "exclusiveMaximum" } else { "maximum" };
                self.fail(location, format!("is {number} but must be {relation} {maximum}"), keyword);
            }
        }
        if let Some(step) = node.multiple_of {
            if !is_multiple_of(number, step) {
                self.fail(location, format!("is {number} but must be a multiple of {step}"), "multipleOf");
            }
        }
    }

    fn check_array(&mut self, node: &SchemaNode, items: &[Value], location: &mut Vec<PathPart>, depth: usize) {
        let count = items.len() as u64;
        if let Some(minimum) = node.min_items {
            if count < minimum {
                self.fail(location, format!("has {count} items but needs at least {minimum}"), "minItems");
            }
        }
        if let Some(maximum) = node.max_items {
            if count > maximum {
                self.fail(location, format!("has {count} items but allows at most {maximum}"), "maxItems");
            }
        }
        if node.unique_items {
            let duplicate = items
                .iter()
                .take(MAX_CHECKED_ITEMS)
                .enumerate()
                .find(|(index, item)| items[..*index].contains(item));
            if let Some((index, _)) = duplicate {
                self.fail(location, format!("item {index} repeats an earlier item, but items must be unique"), "uniqueItems");
            }
        }
        for (index, item) in items.iter().enumerate().take(MAX_CHECKED_ITEMS) {
            let schema = node.prefix_items.get(index).copied().or(node.items);
            if let Some(schema) = schema {
                location.push(PathPart::Index(index));
                self.check(schema, item, location, depth + 1);
                location.pop();
            }
        }
    }

    /// Returns whether a required property may be absent: `readOnly` ones in requests and
    /// `writeOnly` ones in responses.
    fn may_omit(&self, schema: Option<SchemaId>) -> bool {
        let Some(schema) = schema else { return false };
        let arena = self.arena;
        let (own, resolved) = (arena.get(schema), arena.get(arena.resolve(schema)));
        match self.direction {
            Direction::Request => own.read_only || resolved.read_only,
            Direction::Response => own.write_only || resolved.write_only,
        }
    }

    fn check_object(&mut self, node: &SchemaNode, object: &Map<String, Value>, location: &mut Vec<PathPart>, depth: usize) {
        let property_schema = |name: &str| {
            node.properties
                .iter()
                .find(|(property, _)| &**property == name)
                .map(|(_, schema)| *schema)
        };
        for name in &node.required {
            if object.contains_key(&**name) {
                continue;
            }
            let schema = property_schema(name).or(node.additional_properties);
            if !self.may_omit(schema) {
                let mut at = location.clone();
                at.push(PathPart::Key(name.to_string()));
                self.push(at, format!("the required property `{name}` is missing"), "required");
            }
        }
        let count = object.len() as u64;
        if let Some(minimum) = node.min_properties {
            if count < minimum {
                self.fail(location, format!("has {count} properties but needs at least {minimum}"), "minProperties");
            }
        }
        if let Some(maximum) = node.max_properties {
            if count > maximum {
                self.fail(location, format!("has {count} properties but allows at most {maximum}"), "maxProperties");
            }
        }
        for (key, item) in object {
            let schema = match property_schema(key) {
                Some(schema) => schema,
                None => match node.additional_properties {
                    Some(additional) => {
                        if self.arena.get(self.arena.resolve(additional)).never {
                            let mut at = location.clone();
                            at.push(PathPart::Key(key.clone()));
                            self.push(
                                at,
                                format!("the property `{key}` is not declared and additionalProperties is false"),
                                "additionalProperties",
                            );
                            continue;
                        }
                        additional
                    }
                    None => continue,
                },
            };
            location.push(PathPart::Key(key.clone()));
            self.check(schema, item, location, depth + 1);
            location.pop();
        }
    }
}

/// Returns whether a number is a multiple of `step`, allowing for binary rounding of decimals.
fn is_multiple_of(number: &serde_json::Number, step: f64) -> bool {
    if let (Some(value), true) = (number.as_i64(), step.fract() == 0.0) {
        return step == 0.0 || value % (step as i64).max(1) == 0;
    }
    let value = number.as_f64().unwrap_or(0.0);
    let quotient = value / step;
    (quotient - quotient.round()).abs() <= 1e-9 * quotient.abs().max(1.0)
}

/// Splits `name=value` pairs at a separator and percent-decodes them (`+` is a space).
pub(crate) fn parse_pairs(text: Option<&str>, separator: char) -> Vec<(String, String)> {
    let Some(text) = text else {
        return Vec::new();
    };
    text.split(separator)
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
        let pairs = parse_pairs(Some("a=1&b=x+y&c=%2F&flag"), '&');
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

    #[test]
    fn multiple_of_decimals() {
        let number = |text: &str| serde_json::from_str::<serde_json::Number>(text).unwrap();
        assert!(is_multiple_of(&number("0.3"), 0.1));
        assert!(is_multiple_of(&number("10"), 5.0));
        assert!(!is_multiple_of(&number("7"), 5.0));
        assert!(!is_multiple_of(&number("0.35"), 0.1));
    }
}
