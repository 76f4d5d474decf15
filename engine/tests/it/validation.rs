//! Request validation in the `off`, `warn` and `enforce` modes.

use http::{HeaderMap, HeaderValue, Method};
use mockforge_engine::{
    compile, Mock, MockError, MockOptions, MockRequest, MockResponse, Validation,
};

use crate::common::header;

const VALIDATED_DOCUMENT: &str = r##"
openapi: 3.0.3
info: {title: validated, version: "1"}
paths:
  /pets/{petId}:
    parameters:
      - {name: petId, in: path, required: true, schema: {type: integer, minimum: 1}}
    get:
      parameters:
        - {name: limit, in: query, required: true, schema: {type: integer, maximum: 100}}
        - {name: status, in: query, schema: {type: string, enum: [available, sold]}}
        - {name: X-Tenant, in: header, required: true, schema: {type: string}}
      responses:
        "200": {description: ok, content: {application/json: {example: {ok: true}}}}
  /pets:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/NewPet"}
      responses:
        "201": {description: created}
components:
  schemas:
    NewPet:
      type: object
      required: [name, id]
      properties:
        id: {type: integer, readOnly: true}
        name: {type: string, minLength: 2}
        tags: {type: array, items: {type: string}, maxItems: 2}
"##;

fn validated_mock(validation: Validation) -> Mock {
    compile(
        VALIDATED_DOCUMENT,
        MockOptions {
            validation,
            ..MockOptions::default()
        },
    )
    .unwrap()
    .mock
}

fn call(
    mock: &Mock,
    method: Method,
    path: &str,
    headers: &[(&'static str, &str)],
    body: &[u8],
) -> Result<MockResponse, MockError> {
    let mut header_map = HeaderMap::new();
    for (name, value) in headers {
        header_map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    mock.respond(&MockRequest {
        method: &method,
        path,
        query,
        headers: &header_map,
        body,
    })
}

/// Expects a 422 problem document and returns its `detail`, which lists every violation as
/// `location: message`.
fn bad_request_message(result: Result<MockResponse, MockError>) -> String {
    let problem = problem_of(result);
    problem["detail"].as_str().unwrap().to_owned()
}

/// Expects a 422 `application/problem+json` answer and returns its body.
fn problem_of(result: Result<MockResponse, MockError>) -> serde_json::Value {
    let response = result.unwrap_or_else(|error| panic!("expected a 422 answer, got {error:?}"));
    assert_eq!(response.status, 422);
    assert_eq!(
        header(&response, "content-type"),
        Some("application/problem+json")
    );
    let problem: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(problem["type"], "about:blank");
    assert_eq!(problem["title"], "Request validation failed");
    assert_eq!(problem["status"], 422);
    problem
}

#[test]
fn valid_request_passes() {
    let mock = validated_mock(Validation::Enforce);
    let response = call(
        &mock,
        Method::GET,
        "/pets/3?limit=10&status=sold",
        &[("x-tenant", "acme")],
        b"",
    )
    .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(header(&response, "x-mockforge-validation"), None);
}

#[test]
fn enforce_rejects_bad_parameters() {
    let mock = validated_mock(Validation::Enforce);
    let message = bad_request_message(call(
        &mock,
        Method::GET,
        "/pets/abc?limit=500&status=lost",
        &[],
        b"",
    ));
    assert!(
        message.contains("path/petId: must be an integer"),
        "{message}"
    );
    assert!(
        message.contains("query/limit: is 500 but must be at most 100"),
        "{message}"
    );
    assert!(message.contains("query/status: \"lost\" is not one of"), "{message}");
    assert!(
        message.contains("header/X-Tenant: the required header parameter `X-Tenant` is missing"),
        "{message}"
    );
}

#[test]
fn enforce_reports_missing_query() {
    let mock = validated_mock(Validation::Enforce);
    let message = bad_request_message(call(
        &mock,
        Method::GET,
        "/pets/3",
        &[("x-tenant", "acme")],
        b"",
    ));
    assert!(
        message.contains("query/limit: the required query parameter `limit` is missing"),
        "{message}"
    );
}

#[test]
fn enforce_checks_json_body() {
    let mock = validated_mock(Validation::Enforce);
    let json = [("content-type", "application/json")];

    let created = call(
        &mock,
        Method::POST,
        "/pets",
        &json,
        br#"{"name": "Rex", "tags": ["a"]}"#,
    )
    .unwrap();
    assert_eq!(created.status, 201);

    let message = bad_request_message(call(
        &mock,
        Method::POST,
        "/pets",
        &json,
        br#"{"name": "R", "tags": ["a", "b", 3]}"#,
    ));
    assert!(
        message.contains("body/name: has 1 characters"),
        "{message}"
    );
    assert!(
        message.contains("body/tags: has 3 items"),
        "{message}"
    );
    assert!(
        message.contains("body/tags/2: must be a string"),
        "{message}"
    );

    let message = bad_request_message(call(&mock, Method::POST, "/pets", &json, b"{not json"));
    assert!(message.contains("not valid JSON"), "{message}");

    let message = bad_request_message(call(&mock, Method::POST, "/pets", &json, b""));
    assert!(message.contains("body is required"), "{message}");

    let message = bad_request_message(call(
        &mock,
        Method::POST,
        "/pets",
        &[("content-type", "text/plain")],
        b"Rex",
    ));
    assert!(
        message.contains("Content-Type `text/plain` is not accepted"),
        "{message}"
    );
}

#[test]
fn warn_mode_adds_header() {
    let mock = validated_mock(Validation::Warn);
    let response = call(&mock, Method::GET, "/pets/3", &[("x-tenant", "acme")], b"").unwrap();
    assert_eq!(response.status, 200);
    let warning = header(&response, "x-mockforge-validation").unwrap();
    assert!(warning.contains("`limit` is missing"), "{warning}");
}

#[test]
fn off_mode_skips_checks() {
    let mock = validated_mock(Validation::Off);
    let response = call(&mock, Method::GET, "/pets/abc", &[], b"").unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(header(&response, "x-mockforge-validation"), None);
}

#[test]
fn swagger_body_parameter_validated() {
    let document = r##"
swagger: "2.0"
info: {title: legacy, version: "1"}
consumes: [application/json]
paths:
  /items:
    post:
      parameters:
        - {name: dry_run, in: query, type: boolean}
        - {name: item, in: body, required: true, schema: {type: object, required: [sku], properties: {sku: {type: string}}}}
      responses:
        "201": {description: created}
"##;
    let mock = compile(document, MockOptions::default()).unwrap().mock;
    let json = [("content-type", "application/json")];
    assert_eq!(
        call(
            &mock,
            Method::POST,
            "/items?dry_run=true",
            &json,
            br#"{"sku": "a"}"#
        )
        .unwrap()
        .status,
        201
    );
    let message = bad_request_message(call(
        &mock,
        Method::POST,
        "/items?dry_run=maybe",
        &json,
        br#"{}"#,
    ));
    assert!(
        message.contains("query/dry_run: must be a boolean"),
        "{message}"
    );
    assert!(
        message.contains("body/sku: the required property `sku` is missing"),
        "{message}"
    );
}
