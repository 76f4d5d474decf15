//! Conversion of Swagger 2.0 documents to the OpenAPI 3.0 layout that the rest of the engine
//! reads: `definitions` become `components/schemas`, `basePath` becomes a server, and response
//! `schema`/`examples` become `content` entries for each `produces` media type.

use serde_json::{json, Map, Value};

use crate::document::{diagnostic, escape_token};
use crate::{Diagnostic, Severity};

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch"];

/// Keywords of a Swagger 2.0 parameter or header that describe its value.
const SCHEMA_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "items",
    "enum",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "multipleOf",
];

/// Converts a Swagger 2.0 tree to the OpenAPI 3.0 layout. Non-body parameters get a `schema`,
/// and a `body` parameter becomes the operation's `requestBody`. `formData` parameters are kept
/// as they are and not validated.
pub fn convert(mut root: Value, warnings: &mut Vec<Diagnostic>) -> Value {
    rewrite_references(&mut root);
    let Value::Object(object) = &mut root else {
        return root;
    };

    let global_produces =
        media_list(object.get("produces")).unwrap_or_else(|| vec!["application/json".to_owned()]);

    let global_consumes =
        media_list(object.get("consumes")).unwrap_or_else(|| vec!["application/json".to_owned()]);

    let mut components = Map::new();
    if let Some(definitions) = object.remove("definitions") {
        components.insert("schemas".to_owned(), definitions);
    }
    if let Some(mut parameters) = object.remove("parameters") {
        if let Value::Object(parameters) = &mut parameters {
            parameters.values_mut().for_each(move_parameter_schema);
        }
        components.insert("parameters".to_owned(), parameters);
    }
    if let Some(Value::Object(mut responses)) = object.remove("responses") {
        for (name, response) in responses.iter_mut() {
            let pointer = format!("/responses/{}", escape_token(name));
            convert_response(response, &global_produces, &pointer, warnings);
        }
        components.insert("responses".to_owned(), Value::Object(responses));
    }
    object.insert("components".to_owned(), Value::Object(components));

    if let Some(base_path) = object.get("basePath").and_then(Value::as_str) {
        let base_path = base_path.to_owned();
        object.insert("servers".to_owned(), json!([{ "url": base_path }]));
    }

    if let Some(Value::Object(paths)) = object.get_mut("paths") {
        for (path, item) in paths.iter_mut() {
            let Value::Object(item) = item else { continue };
            if let Some(Value::Array(parameters)) = item.get_mut("parameters") {
                parameters.iter_mut().for_each(move_parameter_schema);
            }
            for method in METHODS {
                let Some(Value::Object(operation)) = item.get_mut(*method) else {
                    continue;
                };
                let consumes = media_list(operation.get("consumes"))
                    .unwrap_or_else(|| global_consumes.clone());
                convert_parameters(operation, &consumes);
                let produces = media_list(operation.get("produces"))
                    .unwrap_or_else(|| global_produces.clone());
                let Some(Value::Object(responses)) = operation.get_mut("responses") else {
                    continue;
                };
                for (status, response) in responses.iter_mut() {
                    let pointer = format!(
                        "/paths/{}/{method}/responses/{}",
                        escape_token(path),
                        escape_token(status)
                    );
                    convert_response(response, &produces, &pointer, warnings);
                }
            }
        }
    }
    root
}

/// Gives a Swagger 2.0 non-body parameter an OpenAPI 3.0 `schema` built from its type keywords.
fn move_parameter_schema(parameter: &mut Value) {
    let Value::Object(parameter) = parameter else {
        return;
    };
    let location = parameter
        .get("in")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if parameter.contains_key("$ref")
        || parameter.contains_key("schema")
        || location == "body"
        || location == "formData"
    {
        return;
    }
    // `collectionFormat` (default `csv`) becomes the matching OpenAPI 3.0 style.
    let style = match parameter.remove("collectionFormat").as_ref().and_then(Value::as_str) {
        Some("multi") => Some(("form", true)),
        Some("ssv") => Some(("spaceDelimited", false)),
        Some("pipes") => Some(("pipeDelimited", false)),
        Some("tsv") => None,
        _ if location == "query" => Some(("form", false)),
        _ => None,
    };
    let is_array = parameter.get("type").and_then(Value::as_str) == Some("array");
    if let (true, Some((style, explode))) = (is_array, style) {
        parameter.insert("style".to_owned(), json!(style));
        parameter.insert("explode".to_owned(), json!(explode));
    }
    let mut schema = Map::new();
    for key in SCHEMA_KEYWORDS {
        if let Some(value) = parameter.remove(*key) {
            schema.insert((*key).to_owned(), value);
        }
    }
    parameter.insert("schema".to_owned(), Value::Object(schema));
}

/// Converts an operation's parameters, turning a `body` parameter into `requestBody`.
fn convert_parameters(operation: &mut Map<String, Value>, consumes: &[String]) {
    let Some(Value::Array(parameters)) = operation.get_mut("parameters") else {
        return;
    };
    parameters.iter_mut().for_each(move_parameter_schema);
    let body_position = parameters
        .iter()
        .position(|parameter| parameter.get("in").and_then(Value::as_str) == Some("body"));
    let Some(position) = body_position else {
        return;
    };
    let body = parameters.remove(position);
    let schema = body.get("schema").cloned().unwrap_or_else(|| json!({}));
    let required = body
        .get("required")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut content = Map::new();
    for media_type in consumes {
        content.insert(media_type.clone(), json!({ "schema": schema }));
    }
    operation.insert(
        "requestBody".to_owned(),
        json!({ "required": required, "content": content }),
    );
}

fn media_list(value: Option<&Value>) -> Option<Vec<String>> {
    let list: Vec<String> = value?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    (!list.is_empty()).then_some(list)
}

fn convert_response(
    response: &mut Value,
    produces: &[String],
    pointer: &str,
    warnings: &mut Vec<Diagnostic>,
) {
    let Value::Object(response) = response else {
        return;
    };
    if response.contains_key("$ref") {
        return;
    }

    let schema = response.remove("schema");
    let examples = response.remove("examples");
    let mut content = Map::new();
    if let Some(schema) = &schema {
        for media_type in produces {
            content.insert(media_type.clone(), json!({ "schema": schema }));
        }
    }
    match examples {
        Some(Value::Object(examples)) => {
            for (media_type, example) in examples {
                let entry = content.entry(media_type).or_insert_with(|| json!({}));
                if let Value::Object(entry) = entry {
                    entry.insert("example".to_owned(), example);
                }
            }
        }
        Some(_) => warnings.push(diagnostic(
            Severity::Warning,
            format!("{pointer}/examples"),
            "Swagger 2.0 `examples` must map media types to examples; it is ignored",
        )),
        None => {}
    }
    if !content.is_empty() {
        response.insert("content".to_owned(), Value::Object(content));
    }

    if let Some(Value::Object(headers)) = response.get_mut("headers") {
        for header in headers.values_mut() {
            let Value::Object(header) = header else {
                continue;
            };
            if header.contains_key("schema") || header.contains_key("$ref") {
                continue;
            }
            let mut schema = Map::new();
            for key in SCHEMA_KEYWORDS {
                if let Some(value) = header.remove(*key) {
                    schema.insert((*key).to_owned(), value);
                }
            }
            if let Some(example) = header.remove("x-example") {
                header.insert("example".to_owned(), example);
            }
            header.insert("schema".to_owned(), Value::Object(schema));
        }
    }
}

/// Points Swagger 2.0 references at their OpenAPI 3.0 locations.
fn rewrite_references(node: &mut Value) {
    match node {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get_mut("$ref") {
                for (old, new) in [
                    ("#/definitions/", "#/components/schemas/"),
                    ("#/parameters/", "#/components/parameters/"),
                    ("#/responses/", "#/components/responses/"),
                ] {
                    if let Some(rest) = reference.strip_prefix(old) {
                        *reference = format!("{new}{rest}");
                        break;
                    }
                }
            }
            for (key, child) in object.iter_mut() {
                if key != "example" && key != "examples" {
                    rewrite_references(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_references),
        _ => {}
    }
}
