//! Cases that real documents get wrong or that mock servers often serve wrongly: trailing
//! slashes with both forms declared, CORS details, `Accept` with vendor types, the same schema
//! in OpenAPI 3.0 and 3.1 syntax, and `$ref` siblings.

use mockforge_engine::{compile, MockError, MockOptions};
use serde_json::json;

use crate::common::{get, header, json, mock, mock_with, send};

#[test]
fn trailing_slash_both_forms_stay_distinct() {
    let document = r##"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {
        "/users": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"example": "list"}}}}}},
        "/users/": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"example": "slash"}}}}}},
        "/teams": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"example": "teams"}}}}}}}}"##;
    let options = MockOptions {
        ignore_trailing_slash: true,
        ..MockOptions::default()
    };
    let mock = mock_with(document, options);
    assert_eq!(json(&get(&mock, "/users")), json!("list"));
    assert_eq!(json(&get(&mock, "/users/")), json!("slash"));
    assert_eq!(json(&get(&mock, "/teams/")), json!("teams"));

    let strict = crate::common::mock(document);
    match send(&strict, "GET", "/teams/", &[]) {
        Err(error @ MockError::NoRoute { .. }) => {
            assert!(error.to_string().contains("no route"), "{error}")
        }
        other => panic!("expected NoRoute, got {other:?}"),
    }
}

const CORS: &str = r##"
openapi: 3.0.3
info: {title: cors, version: "1"}
paths:
  /items:
    get:
      responses:
        "200":
          description: ok
          headers:
            X-Rate-Limit: {schema: {type: integer}, example: 100}
            ETag: {schema: {type: string}, example: "\"v1\""}
          content:
            application/json: {example: [1]}
    options:
      responses:
        "200":
          description: the document's own OPTIONS
          headers:
            Allow: {schema: {type: string}, example: "GET, OPTIONS"}
"##;

#[test]
fn cors_preflight_and_exposed_headers() {
    let mock = mock(CORS);
    let preflight = send(
        &mock,
        "OPTIONS",
        "/items",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization, x-trace"),
        ],
    )
    .unwrap();
    assert_eq!(preflight.status, 204);
    assert_eq!(header(&preflight, "access-control-allow-headers"), Some("authorization, x-trace"));
    assert_eq!(header(&preflight, "access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(header(&preflight, "vary"), Some("Origin"));

    let response = send(&mock, "GET", "/items", &[("origin", "https://app.example")]).unwrap();
    assert_eq!(header(&response, "vary"), Some("Origin"));
    let exposed = header(&response, "access-control-expose-headers").unwrap();
    assert!(exposed.contains("x-rate-limit"), "{exposed}");
    assert!(exposed.contains("etag"), "{exposed}");
    assert!(!exposed.contains("content-type"), "{exposed}");

    // An OPTIONS request that is not a preflight gets the document's OPTIONS operation.
    let options = send(&mock, "OPTIONS", "/items", &[("origin", "https://app.example")]).unwrap();
    assert_eq!(options.status, 200);
    assert_eq!(header(&options, "allow"), Some("GET, OPTIONS"));
}

const VENDOR: &str = r##"
openapi: 3.0.3
info: {title: vendor, version: "1"}
paths:
  /articles:
    get:
      responses:
        "200":
          description: ok
          content:
            application/vnd.api+json: {example: {data: []}}
            application/xml: {example: "<articles/>"}
"##;

#[test]
fn accept_vendor_json_and_xml() {
    let mock = mock(VENDOR);
    let content_type = |accept: Option<&str>| {
        let headers: Vec<(&str, &str)> = accept.map(|value| ("accept", value)).into_iter().collect();
        send(&mock, "GET", "/articles", &headers)
            .map(|response| header(&response, "content-type").unwrap().to_owned())
    };
    // (a) no Accept: the first declared type.
    assert_eq!(content_type(None).unwrap(), "application/vnd.api+json");
    // (b) the exact vendor type.
    assert_eq!(content_type(Some("application/vnd.api+json")).unwrap(), "application/vnd.api+json");
    // (c) XML.
    assert_eq!(content_type(Some("application/xml")).unwrap(), "application/xml");
    // (d) plain JSON does not match the vendor type.
    match content_type(Some("application/json")) {
        Err(MockError::NotAcceptable { available, .. }) => {
            assert_eq!(available, vec!["application/vnd.api+json", "application/xml"])
        }
        other => panic!("expected NotAcceptable, got {other:?}"),
    }
    // (e) a wildcard.
    assert_eq!(content_type(Some("*/*")).unwrap(), "application/vnd.api+json");
    // (f) quality values.
    assert_eq!(
        content_type(Some("application/vnd.api+json;q=0.4, application/xml;q=0.9")).unwrap(),
        "application/xml"
    );
    let xml = send(&mock, "GET", "/articles", &[("accept", "application/xml")]).unwrap();
    assert_eq!(&xml.body[..], b"<articles/>");
}

#[test]
fn same_schema_in_3_0_and_3_1() {
    let schema_30 = r#"{"type": "object", "required": ["email", "nickname"], "properties": {
        "email": {"type": "string", "format": "email"},
        "nickname": {"type": "string", "nullable": true, "default": null}}}"#;
    let schema_31 = r#"{"type": "object", "required": ["email", "nickname"], "properties": {
        "email": {"type": "string", "format": "email"},
        "nickname": {"type": ["string", "null"], "default": null}}}"#;
    let body_30 = crate::common::generated("3.0.3", schema_30, "{}");
    let body_31 = crate::common::generated("3.1.0", schema_31, "{}");
    assert_eq!(body_30, body_31);
    assert_eq!(body_30["nickname"], json!(null));
    assert!(body_30["email"].as_str().unwrap().contains('@'), "{body_30}");
}

#[test]
fn ref_siblings_applied_in_3_1() {
    let components = r#"{"Base": {"type": "object", "properties": {"id": {"type": "integer"}}}}"#;
    let schema = r##"{"$ref": "#/components/schemas/Base", "required": ["id", "label"],
        "properties": {"label": {"type": "string", "const": "fixed"}}}"##;
    let body = crate::common::generated("3.1.0", schema, components);
    assert_eq!(body["label"], json!("fixed"));
    assert!(body["id"].is_i64(), "{body}");

    let document = crate::common::schema_document("3.0.3", schema, components);
    let compiled = compile(&document, MockOptions::default()).unwrap();
    assert!(compiled
        .warnings
        .iter()
        .any(|warning| warning.message.contains("OpenAPI 3.0 ignores them")));
    let body = json(&get(&compiled.mock, "/thing"));
    assert!(body.get("label").is_none(), "{body}");
}

#[test]
fn odd_shapes_load_with_warnings() {
    let document = r##"{"openapi": "3.0.3", "info": {"title": "odd", "version": "1", "description": null},
      "paths": {"/odd": {"get": {"description": null, "responses": {"200": {"description": "ok",
        "content": {"application/json": {"schema": {"type": "object", "properties": {
          "count": {"type": "integer", "minimum": 0, "exclusiveMinimum": 0},
          "anything": {},
          "never": false}}}}}}}}}}"##;
    let compiled = compile(document, MockOptions::default()).unwrap();
    assert!(compiled
        .warnings
        .iter()
        .any(|warning| warning.pointer.ends_with("/count/exclusiveMinimum")));
    let body = json(&get(&compiled.mock, "/odd"));
    assert!(body["count"].as_i64().unwrap() > 0, "{body}");
    assert!(body.get("never").is_none(), "{body}");
}
