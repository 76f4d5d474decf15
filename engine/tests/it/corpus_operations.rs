//! Every operation of every corpus document: a valid request built from the operation's
//! parameter and body schemas must get a declared status and a body that validates against the
//! declared schema of its media type. The `jsonschema` crate checks bodies against the engine's
//! normalised schemas, exported as JSON Schema 2020-12.

use std::time::Instant;

use http::{HeaderValue, StatusCode};
use mockforge_engine::{
    compile, Mock, MockOptions, MockRequest, MockResponse, ResponseSchema, SampleRequest,
};
use serde_json::Value;

use crate::corpus::corpus_file;

const DOCUMENTS: &[&str] = &[
    "petstore-30.yaml",
    "petstore-31.yaml",
    "petstore-20.yaml",
    "petstore-expanded-20.json",
    "circular-20.yaml",
    "params-style-30.yaml",
    "multi-media-30.yaml",
    "discriminators-30.yaml",
    "server-vars-30.yaml",
    "train-travel-31.yaml",
    "schema-types-31.yaml",
    "galaxy-31.yaml",
    "figma-31.yaml",
    "github-webhooks-31.json",
    "stripe-30.json",
    "kubernetes-30.json",
    "gitea-30.json",
    "slack-30.json",
    "twilio-30.json",
    "gke-30.json",
    "jellyfin-30.json",
    "netbox-30.json",
    "github-30.json",
];

/// Operations whose generated answer cannot be valid, with the reason. Each entry is the
/// document, the method and the path template.
const EXCEPTIONS: &[(&str, &str, &str, &str)] = &[
    ("discriminators-30.yaml", "POST", "/potentially-undefined-formData",
     "the body's oneOf branches overlap (the compile warns), so the generated event also matches the other branch and the request fails oneOf"),
    ("github-30.json", "POST", "/orgs/{org}/projectsV2/{project_number}/items",
     "the body's two oneOf branches overlap (the compile warns), so every generated body matches both"),
    ("github-30.json", "POST", "/users/{username}/projectsV2/{project_number}/items",
     "the body's two oneOf branches overlap (the compile warns), so every generated body matches both"),
    // TODO: an engine gap. Generation cuts the recursive `Node` tree (a oneOf of more than 30
    // node types) at its depth limit, and the innermost node there matches no branch.
    ("figma-31.yaml", "GET", "/v1/files/{file_key}/nodes",
     "the generated recursive Node tree is cut at the depth limit and its innermost node matches no oneOf branch"),
    ("github-30.json", "GET", "/events", EVENT_PAYLOAD_OVERLAP),
    ("github-30.json", "GET", "/networks/{owner}/{repo}/events", EVENT_PAYLOAD_OVERLAP),
    ("github-30.json", "GET", "/orgs/{org}/events", EVENT_PAYLOAD_OVERLAP),
    ("github-30.json", "GET", "/repos/{owner}/{repo}/events", EVENT_PAYLOAD_OVERLAP),
    ("github-30.json", "GET", "/users/{username}/events", EVENT_PAYLOAD_OVERLAP),
    ("github-30.json", "GET", "/users/{username}/events/orgs/{org}", EVENT_PAYLOAD_OVERLAP),
    ("github-30.json", "GET", "/users/{username}/events/public", EVENT_PAYLOAD_OVERLAP),
    ("github-30.json", "GET", "/users/{username}/received_events", EVENT_PAYLOAD_OVERLAP),
    ("github-30.json", "GET", "/users/{username}/received_events/public", EVENT_PAYLOAD_OVERLAP),
    ("jellyfin-30.json", "GET", "/MusicGenres/{name}/InstantMix",
     "`/MusicGenres/{id}/InstantMix` has the same shape and comes first, so it serves every such path"),
    ("jellyfin-30.json", "DELETE", "/Plugins/{pluginId}/{version}", PLUGIN_VERSION_OBJECT),
    ("jellyfin-30.json", "POST", "/Plugins/{pluginId}/{version}/Disable", PLUGIN_VERSION_OBJECT),
    ("jellyfin-30.json", "POST", "/Plugins/{pluginId}/{version}/Enable", PLUGIN_VERSION_OBJECT),
    ("jellyfin-30.json", "GET", "/Plugins/{pluginId}/{version}/Image", PLUGIN_VERSION_OBJECT),
    ("schema-types-31.yaml", "PUT", "/anything/quirks/polymorphism", CONTRADICTING_ALL_OF),
    ("schema-types-31.yaml", "PATCH", "/anything/quirks/polymorphism", CONTRADICTING_ALL_OF),
];

const EVENT_PAYLOAD_OVERLAP: &str = "the event `payload` oneOf branches overlap (the compile warns), so the generated payload matches more than one";
const PLUGIN_VERSION_OBJECT: &str = "the `version` path parameter is an object whose properties are all readOnly with additionalProperties false, so no path text is valid";
const CONTRADICTING_ALL_OF: &str = "the request body is an allOf of string and integer, which no value satisfies (the compile warns)";

/// The result of one operation.
enum Outcome {
    /// The generated body validates (or the response declares no schema for it).
    Valid,
    /// The document's own example was served and contradicts the schema, but the body generated
    /// with `Prefer: dynamic=true` validates. The engine serves examples as written.
    ExampleContradictsSchema(String),
    Failed(String),
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence == "application/json" || essence.ends_with("+json")
}

fn send(mock: &Mock, sample: &SampleRequest, prefer_dynamic: bool) -> Result<MockResponse, String> {
    let mut headers = sample.headers.clone();
    if prefer_dynamic {
        headers.insert("prefer", HeaderValue::from_static("dynamic=true"));
    }
    mock.respond(&MockRequest {
        method: &sample.method,
        path: &sample.path,
        query: sample.query.as_deref(),
        headers: &headers,
        body: &sample.body,
    })
    .map_err(|error| error.to_string())
}

fn status_declared(declared: &[&str], status: StatusCode) -> bool {
    let code = status.as_str();
    let range = format!("{}XX", &code[..1]);
    declared
        .iter()
        .any(|key| *key == code || key.eq_ignore_ascii_case(&range) || *key == "default")
}

/// One JSON body to validate against one of the mock's response schemas.
struct BodyCheck {
    key: u32,
    body: Value,
}

/// All response schemas of one document in a single JSON Schema validator, so that each
/// shared definition is compiled once. The instance `{"key": K, "body": B}` checks `B` against
/// the schema whose key is `K`.
struct CombinedSchemas {
    definitions: serde_json::Map<String, Value>,
    keys: Vec<u32>,
}

impl CombinedSchemas {
    fn add(&mut self, schema: &ResponseSchema<'_>) {
        if self.keys.contains(&schema.key()) {
            return;
        }
        self.keys.push(schema.key());
        let exported = schema.to_json_schema();
        if let Some(Value::Object(definitions)) = exported.get("$defs") {
            for (name, definition) in definitions {
                self.definitions
                    .entry(name.clone())
                    .or_insert_with(|| definition.clone());
            }
        }
    }

    fn build(self) -> jsonschema::Validator {
        // `allOf` must not be empty, so a document without JSON schemas gets one `true` branch.
        let branches: Vec<Value> = std::iter::once(Value::Bool(true))
            .chain(self.keys.iter().map(|key| {
                serde_json::json!({
                    "if": {"properties": {"key": {"const": key}}, "required": ["key"]},
                    "then": {"properties": {"body": {"$ref": format!("#/$defs/s{key}")}}}
                })
            }))
            .collect();
        let root = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$defs": self.definitions,
            "allOf": branches,
        });
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|error| panic!("the exported schemas do not compile: {error}"))
    }
}

fn validate(validator: &jsonschema::Validator, check: &BodyCheck) -> Result<(), String> {
    let instance = serde_json::json!({"key": check.key, "body": check.body});
    let first = validator
        .iter_errors(&instance)
        .next()
        .map(|error| (error.to_string(), error.instance_path().to_string()));
    match first {
        None => Ok(()),
        Some((text, location)) => {
            let text = &text[text.floor_char_boundary(text.len().saturating_sub(200))..];
            Err(format!("at {location}: ...{text}"))
        }
    }
}

/// Checks the status of one response and returns its JSON body with the schema to check it
/// against, if the response declares one.
fn collect_body(
    mock: &Mock,
    schemas: &mut CombinedSchemas,
    operation: usize,
    response: &MockResponse,
) -> Result<Option<BodyCheck>, String> {
    let declared = mock.declared_responses(operation);
    if !declared.is_empty() && !status_declared(&declared, response.status) {
        return Err(format!("status {} is not declared ({declared:?})", response.status));
    }
    let Some(content_type) = response
        .headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
    else {
        return Ok(None);
    };
    if !is_json(content_type) || response.body.is_empty() {
        return Ok(None);
    }
    let Some(schema) = mock.response_schema(operation, response.status, content_type) else {
        return Ok(None);
    };
    let body: Value = serde_json::from_slice(&response.body)
        .map_err(|error| format!("body is not JSON: {error}"))?;
    schemas.add(&schema);
    Ok(Some(BodyCheck {
        key: schema.key(),
        body,
    }))
}

/// The answers to one operation: the default one and the one generated with
/// `Prefer: dynamic=true`, which differs when the default serves an example.
struct Answers {
    served: Option<BodyCheck>,
    generated: Option<BodyCheck>,
}

fn collect_operation(
    mock: &Mock,
    schemas: &mut CombinedSchemas,
    operation: usize,
) -> Result<Answers, String> {
    let sample = mock.sample_request(operation);
    let response = send(mock, &sample, false).map_err(|error| format!("no answer: {error}"))?;
    if response.status == 422 && !mock.declared_responses(operation).contains(&"422") {
        return Err(format!(
            "the sample request failed validation: {}",
            String::from_utf8_lossy(&response.body)
        ));
    }
    let served = collect_body(mock, schemas, operation, &response)?;
    let dynamic = send(mock, &sample, true).map_err(|error| format!("no dynamic answer: {error}"))?;
    let generated = if dynamic.body == response.body {
        None
    } else {
        collect_body(mock, schemas, operation, &dynamic)?
    };
    Ok(Answers { served, generated })
}

fn judge(validator: &jsonschema::Validator, answers: &Answers) -> Outcome {
    let Some(served) = &answers.served else {
        return Outcome::Valid;
    };
    let Err(problem) = validate(validator, served) else {
        return Outcome::Valid;
    };
    // A served example that contradicts its schema is the document's error; the generated body
    // for the same request must still be valid.
    match &answers.generated {
        Some(generated) if validate(validator, generated).is_ok() => {
            Outcome::ExampleContradictsSchema(problem)
        }
        _ => Outcome::Failed(problem),
    }
}

struct DocumentReport {
    name: &'static str,
    operations: usize,
    valid: usize,
    example_contradictions: Vec<String>,
    failures: Vec<String>,
}

fn check_document(name: &'static str) -> Option<DocumentReport> {
    let text = corpus_file(name)?;
    let started = Instant::now();
    let compiled = compile(&text, MockOptions::default()).unwrap_or_else(|error| {
        panic!("{name}: {:#?}", &error.diagnostics[..error.diagnostics.len().min(5)])
    });
    let mock = compiled.mock;
    let mut report = DocumentReport {
        name,
        operations: mock.operation_count(),
        valid: 0,
        example_contradictions: Vec::new(),
        failures: Vec::new(),
    };
    let mut schemas = CombinedSchemas {
        definitions: serde_json::Map::new(),
        keys: Vec::new(),
    };
    let collected: Vec<Result<Answers, String>> = (0..mock.operation_count())
        .map(|operation| collect_operation(&mock, &mut schemas, operation))
        .collect();
    let validator = schemas.build();
    for (operation, answers) in collected.iter().enumerate() {
        let (method, path) = mock.operation_route(operation);
        let label = format!("{method} {path}");
        let excepted = EXCEPTIONS
            .iter()
            .any(|(document, m, p, _)| *document == name && *m == method.as_str() && *p == path);
        let outcome = match answers {
            Ok(answers) => judge(&validator, answers),
            Err(problem) => Outcome::Failed(problem.clone()),
        };
        match outcome {
            Outcome::Valid => report.valid += 1,
            Outcome::ExampleContradictsSchema(problem) => {
                report.example_contradictions.push(format!("{label}: {problem}"))
            }
            Outcome::Failed(_) if excepted => {}
            Outcome::Failed(problem) => report.failures.push(format!("{label}: {problem}")),
        }
    }
    println!("{name}: checked in {:?}", started.elapsed());
    Some(report)
}

#[test]
fn corpus_operations_answer_valid_bodies() {
    let started = Instant::now();
    // `MOCKFORGE_CORPUS_DOCUMENTS` (comma-separated file names) narrows the run to some documents.
    let only = std::env::var("MOCKFORGE_CORPUS_DOCUMENTS").unwrap_or_default();
    let selected: Vec<&'static str> = DOCUMENTS
        .iter()
        .copied()
        .filter(|name| only.is_empty() || only.split(',').any(|wanted| wanted.trim() == *name))
        .collect();
    // Two workers: the documents differ in size, so they take them from a shared queue.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let reports = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(name) = selected.get(index) else { break };
                if let Some(report) = check_document(name) {
                    reports.lock().unwrap().push(report);
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap();
    reports.sort_by_key(|report| report.name);

    let mut failures = Vec::new();
    let (mut total, mut valid) = (0, 0);
    for report in &reports {
        total += report.operations;
        valid += report.valid;
        println!(
            "{}: {} operations, {} valid, {} served examples contradict their schema, {} failed",
            report.name,
            report.operations,
            report.valid,
            report.example_contradictions.len(),
            report.failures.len()
        );
        for contradiction in report.example_contradictions.iter().take(3) {
            println!("  example: {contradiction}");
        }
        for failure in &report.failures {
            failures.push(format!("{}: {failure}", report.name));
        }
    }
    println!(
        "{} documents, {valid} of {total} operations valid, in {:?}",
        reports.len(),
        started.elapsed()
    );
    for failure in &failures {
        println!("FAILED {}", &failure[..failure.floor_char_boundary(400)]);
    }
    assert!(failures.is_empty(), "{} operations failed", failures.len());
}
