//! Helpers shared by the integration tests.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use mockforge_engine::{compile, Mock, MockError, MockOptions, MockRequest, MockResponse};
use serde_json::Value;

/// Compiles a document with default options, panicking with the diagnostics on failure.
pub fn mock(document: &str) -> Mock {
    mock_with(document, MockOptions::default())
}

pub fn mock_with(document: &str, options: MockOptions) -> Mock {
    match compile(document, options) {
        Ok(compiled) => compiled.mock,
        Err(error) => panic!("compile failed: {:#?}", error.diagnostics),
    }
}

/// Sends a request with the given headers.
pub fn send(
    mock: &Mock,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<MockResponse, MockError> {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut header_map = HeaderMap::new();
    for (name, value) in headers {
        header_map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
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
        body: &[],
    })
}

/// Sends `GET path` and expects a response.
pub fn get(mock: &Mock, path: &str) -> MockResponse {
    send(mock, "GET", path, &[]).unwrap_or_else(|error| panic!("GET {path} failed: {error}"))
}

/// Parses a response body as JSON.
pub fn json(response: &MockResponse) -> Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|error| {
        panic!(
            "body is not JSON ({error}): {:?}",
            String::from_utf8_lossy(&response.body)
        )
    })
}

pub fn header<'r>(response: &'r MockResponse, name: &str) -> Option<&'r str> {
    response
        .headers
        .get(name)
        .map(|value| value.to_str().unwrap())
}

/// Builds a one-operation OpenAPI 3.0 document whose `GET /thing` 200 JSON response has `schema`.
pub fn schema_document(version: &str, schema: &str, components: &str) -> String {
    format!(
        r#"{{"openapi": "{version}", "info": {{"title": "t", "version": "1"}},
            "paths": {{"/thing": {{"get": {{"responses": {{"200": {{"description": "ok",
                "content": {{"application/json": {{"schema": {schema}}}}}}}}}}}}}}},
            "components": {{"schemas": {components}}}}}"#
    )
}

/// Returns the body of `GET /thing` for a schema document.
pub fn generated(version: &str, schema: &str, components: &str) -> Value {
    let mock = mock(&schema_document(version, schema, components));
    json(&get(&mock, "/thing"))
}
