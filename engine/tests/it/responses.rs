//! Status, body source, headers and CORS of responses.

use serde_json::json;

use crate::common::{get, header, json, mock, send};

const RESPONSES_DOCUMENT: &str = r##"
openapi: 3.0.3
info: {title: responses, version: "1"}
paths:
  /lowest:
    get:
      responses:
        "404": {description: missing}
        "201": {description: created, content: {application/json: {example: {code: 201}}}}
        "200": {description: ok, content: {application/json: {example: {code: 200}}}}
  /default:
    get:
      responses:
        default: {description: any, content: {application/json: {example: {code: default}}}}
  /empty:
    delete:
      responses:
        "204": {description: gone}
  /examples:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              examples:
                external: {externalValue: "https://example.com/x.json"}
                referenced: {$ref: "#/components/examples/Referenced"}
                inline: {value: {source: inline}}
  /shared-response:
    get:
      responses:
        "200": {$ref: "#/components/responses/Shared"}
  /headers:
    get:
      responses:
        "200":
          description: ok
          headers:
            X-Rate-Limit: {schema: {type: integer}, example: 1000}
            ETag: {schema: {type: string}}
            Content-Encoding: {schema: {type: string}, example: gzip}
            X-Shared: {$ref: "#/components/headers/Shared"}
          content:
            application/json:
              example: {ok: true}
  /text:
    get:
      responses:
        "200":
          description: ok
          content:
            text/plain:
              schema: {type: string, example: hello}
components:
  examples:
    Referenced: {value: {source: referenced}}
  responses:
    Shared:
      description: shared
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Item"}
  headers:
    Shared: {schema: {type: string}, example: shared-value}
  schemas:
    Item:
      type: object
      required: [id]
      properties:
        id: {type: integer, minimum: 4}
"##;

#[test]
fn lowest_success_status_chosen() {
    let mock = mock(RESPONSES_DOCUMENT);
    let response = get(&mock, "/lowest");
    assert_eq!(response.status, 200);
    assert_eq!(json(&response), json!({"code": 200}));
}

#[test]
fn default_response_served_as_200() {
    let mock = mock(RESPONSES_DOCUMENT);
    let response = get(&mock, "/default");
    assert_eq!(response.status, 200);
    assert_eq!(json(&response), json!({"code": "default"}));
}

#[test]
fn no_content_has_no_body() {
    let mock = mock(RESPONSES_DOCUMENT);
    let response = send(&mock, "DELETE", "/empty", &[]).unwrap();
    assert_eq!(response.status, 204);
    assert!(response.body.is_empty());
    assert_eq!(header(&response, "content-type"), None);
}

#[test]
fn examples_skip_external_and_follow_ref() {
    let mock = mock(RESPONSES_DOCUMENT);
    assert_eq!(
        json(&get(&mock, "/examples")),
        json!({"source": "referenced"})
    );
}

#[test]
fn response_ref_resolved() {
    let mock = mock(RESPONSES_DOCUMENT);
    let response = get(&mock, "/shared-response");
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(json(&response), json!({"id": 4}));
}

#[test]
fn declared_headers_sent() {
    let mock = mock(RESPONSES_DOCUMENT);
    let response = get(&mock, "/headers");
    assert_eq!(header(&response, "x-rate-limit"), Some("1000"));
    let etag = header(&response, "etag").expect("ETag is generated");
    assert!(!etag.is_empty());
    assert_eq!(header(&response, "content-encoding"), None);
    assert_eq!(header(&response, "x-shared"), Some("shared-value"));
}

#[test]
fn text_body_is_raw_string() {
    let mock = mock(RESPONSES_DOCUMENT);
    let response = get(&mock, "/text");
    assert_eq!(header(&response, "content-type"), Some("text/plain"));
    assert_eq!(&response.body[..], b"hello");
}

#[test]
fn cors_preflight_answered() {
    let mock = mock(RESPONSES_DOCUMENT);
    let response = send(
        &mock,
        "OPTIONS",
        "/lowest",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-api-key, content-type"),
        ],
    )
    .unwrap();
    assert_eq!(response.status, 204);
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some("https://app.example")
    );
    let methods = header(&response, "access-control-allow-methods").unwrap();
    assert!(methods.contains("GET"), "{methods}");
    assert_eq!(
        header(&response, "access-control-allow-headers"),
        Some("x-api-key, content-type")
    );
    assert_eq!(header(&response, "vary"), Some("Origin"));
    assert!(header(&response, "access-control-max-age").is_some());
    assert!(response.body.is_empty());
}

#[test]
fn cors_origin_echoed_on_response() {
    let mock = mock(RESPONSES_DOCUMENT);
    let response = send(
        &mock,
        "GET",
        "/lowest",
        &[("origin", "https://app.example")],
    )
    .unwrap();
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some("https://app.example")
    );
    let plain = get(&mock, "/lowest");
    assert_eq!(header(&plain, "access-control-allow-origin"), None);
}

#[test]
fn cors_off_gives_no_preflight() {
    let options = mockforge_engine::MockOptions {
        cors_enabled: false,
        ..Default::default()
    };
    let mock = crate::common::mock_with(RESPONSES_DOCUMENT, options);
    let result = send(
        &mock,
        "OPTIONS",
        "/lowest",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "GET"),
        ],
    );
    assert!(
        matches!(
            result,
            Err(mockforge_engine::MockError::MethodNotAllowed { .. })
        ),
        "{result:?}"
    );
    let response = send(
        &mock,
        "GET",
        "/lowest",
        &[("origin", "https://app.example")],
    )
    .unwrap();
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

#[test]
fn mock_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<mockforge_engine::Mock>();
}

#[test]
fn shared_mock_answers_across_threads() {
    let mock = std::sync::Arc::new(mock(RESPONSES_DOCUMENT));
    let expected = json(&get(&mock, "/shared-response"));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let mock = std::sync::Arc::clone(&mock);
            std::thread::spawn(move || {
                (0..200)
                    .map(|_| json(&get(&mock, "/shared-response")))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for worker in workers {
        for body in worker.join().unwrap() {
            assert_eq!(body, expected);
        }
    }
}

const TEMPLATE_DOCUMENT: &str = r##"
openapi: 3.0.3
info: {title: templates, version: "1"}
paths:
  /users/{userId}:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              example: {id: "{{request.path.userId}}", search: "{{request.query.q}}", agent: "{{request.header.user-agent}}"}
"##;

#[test]
fn templates_expand_when_enabled() {
    let options = mockforge_engine::MockOptions {
        response_template_expand: true,
        ..Default::default()
    };
    let mock = crate::common::mock_with(TEMPLATE_DOCUMENT, options);
    let response = send(
        &mock,
        "GET",
        "/users/a%20b?q=x%22y",
        &[("user-agent", "curl/8")],
    )
    .unwrap();
    assert_eq!(
        json(&response),
        json!({"id": "a b", "search": "x\"y", "agent": "curl/8"})
    );
}

#[test]
fn templates_kept_when_disabled() {
    let mock = mock(TEMPLATE_DOCUMENT);
    let response = get(&mock, "/users/7");
    assert_eq!(json(&response)["id"], "{{request.path.userId}}");
}

#[test]
fn inline_petstore_example_and_validation() {
    let document = r##"{"openapi":"3.0.3","info":{"title":"Petstore","version":"1"},
     "paths":{"/pets/{petId}":{"get":{"parameters":[{"name":"petId","in":"path","required":true,"schema":{"type":"integer"}}],
       "responses":{"200":{"description":"ok","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Pet"},
       "example":{"id":1,"name":"Rex"}}}}}}}},
     "components":{"schemas":{"Pet":{"type":"object","required":["id","name"],"properties":{"id":{"type":"integer"},"name":{"type":"string"}}}}}}"##;
    let mock = mock(document);
    assert_eq!(
        json(&get(&mock, "/pets/1")),
        json!({"id": 1, "name": "Rex"})
    );
    let rejected = send(&mock, "GET", "/pets/abc", &[]).unwrap();
    assert_eq!(rejected.status, 422);
    assert_eq!(
        json(&rejected)["validation"][0]["location"],
        json!(["path", "petId"])
    );
}

const PREFER_DOCUMENT: &str = r##"
openapi: 3.0.3
info: {title: prefer, version: "1"}
paths:
  /pets/{id}:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                type: object
                required: [id]
                properties:
                  id: {type: integer, minimum: 5}
              examples:
                cat: {value: {kind: cat}}
                dog: {value: {kind: dog}}
        "404":
          description: missing
          content:
            application/json:
              example: {error: not found}
        4XX:
          description: client error
          content:
            application/json:
              example: {error: client}
        default:
          description: other
          content:
            application/json:
              example: {error: other}
"##;

#[test]
fn prefer_code_selects_response() {
    let mock = mock(PREFER_DOCUMENT);
    let missing = send(&mock, "GET", "/pets/1", &[("prefer", "code=404")]).unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(json(&missing), json!({"error": "not found"}));

    let range = send(&mock, "GET", "/pets/1", &[("prefer", "code=409")]).unwrap();
    assert_eq!(range.status, 409);
    assert_eq!(json(&range), json!({"error": "client"}));

    let fallback = send(&mock, "GET", "/pets/1", &[("prefer", "code=503")]).unwrap();
    assert_eq!(fallback.status, 503);
    assert_eq!(json(&fallback), json!({"error": "other"}));
}

#[test]
fn prefer_example_and_dynamic() {
    let mock = mock(PREFER_DOCUMENT);
    assert_eq!(json(&get(&mock, "/pets/1")), json!({"kind": "cat"}));

    let dog = send(&mock, "GET", "/pets/1", &[("prefer", "example=dog")]).unwrap();
    assert_eq!(json(&dog), json!({"kind": "dog"}));

    let unknown = send(&mock, "GET", "/pets/1", &[("prefer", "example=bird")]).unwrap();
    assert_eq!(json(&unknown), json!({"kind": "cat"}));

    let dynamic = send(&mock, "GET", "/pets/1", &[("prefer", "dynamic=true")]).unwrap();
    assert_eq!(json(&dynamic), json!({"id": 5}));
}

#[test]
fn prefer_code_without_content() {
    let mock = mock(RESPONSES_DOCUMENT);
    let response = send(&mock, "GET", "/lowest", &[("prefer", "code=404")]).unwrap();
    assert_eq!(response.status, 404);
    assert!(response.body.is_empty());
    assert_eq!(header(&response, "content-type"), None);
}
