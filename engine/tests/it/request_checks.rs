//! Request validation answers (problem documents and declared 400/422 responses), schema
//! keywords, parameter styles and the compile-time warnings about requests and examples.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use mockforge_engine::{compile, Diagnostic, Mock, MockOptions, MockRequest, MockResponse};
use serde_json::{json, Value};

use crate::common::{header, json};

fn post(mock: &Mock, path: &str, body: &Value) -> MockResponse {
    send(mock, Method::POST, path, &[("content-type", "application/json")], &body.to_string())
}

fn send(mock: &Mock, method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> MockResponse {
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
        body: body.as_bytes(),
    })
    .unwrap_or_else(|error| panic!("{method} {path} failed: {error}"))
}

/// Returns the `validation` entries of a 422 problem document.
fn violations(response: &MockResponse) -> Vec<Value> {
    assert_eq!(response.status, 422, "{:?}", String::from_utf8_lossy(&response.body));
    assert_eq!(header(response, "content-type"), Some("application/problem+json"));
    json(response)["validation"].as_array().unwrap().clone()
}

fn has_violation(response: &MockResponse, location: Value, keyword: &str) -> bool {
    violations(response)
        .iter()
        .any(|violation| violation["location"] == location && violation["keyword"] == keyword)
}

fn warnings_of(document: &str) -> Vec<Diagnostic> {
    match compile(document, MockOptions::default()) {
        Ok(compiled) => compiled.warnings,
        Err(error) => panic!("compile failed: {:#?}", error.diagnostics),
    }
}

fn has_warning(warnings: &[Diagnostic], pointer: &str, text: &str) -> bool {
    warnings
        .iter()
        .any(|warning| warning.pointer == pointer && warning.message.contains(text))
}

const KENNEL: &str = r##"
openapi: 3.1.0
info: {title: kennel, version: "1"}
paths:
  /kennels:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [dogs]
              properties:
                dogs:
                  type: array
                  items: {$ref: "#/components/schemas/Dog"}
      responses:
        "201": {description: created}
  /checked:
    post:
      requestBody:
        content:
          application/json:
            schema: {type: object, required: [name], properties: {name: {type: string}}}
      responses:
        "201": {description: created}
        "422":
          description: invalid
          content:
            application/json:
              example: {error: invalid kennel}
  /loose:
    post:
      requestBody:
        content:
          application/json:
            schema: {type: object, required: [name], properties: {name: {type: string}}}
      responses:
        "201": {description: created}
        "400":
          description: bad
          content:
            application/json:
              schema: {type: object, required: [code], properties: {code: {type: integer, minimum: 1}}}
components:
  schemas:
    Dog:
      type: object
      required: [id, name, secret]
      properties:
        id: {type: integer, readOnly: true}
        name: {type: string}
        secret: {type: string, writeOnly: true}
"##;

#[test]
fn problem_document_locates_violation() {
    let mock = crate::common::mock(KENNEL);
    let response = post(&mock, "/kennels", &json!({"dogs": [{"name": "Rex"}]}));
    let listed = violations(&response);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["location"], json!(["body", "dogs", 0, "secret"]));
    assert_eq!(listed[0]["keyword"], "required");
    assert!(listed[0]["message"].as_str().unwrap().contains("secret"));
    let problem = json(&response);
    assert!(problem["detail"].as_str().unwrap().contains("body/dogs/0/secret"));
}

#[test]
fn read_only_optional_in_request_arrays() {
    let mock = crate::common::mock(KENNEL);
    let response = post(&mock, "/kennels", &json!({"dogs": [{"name": "Rex", "secret": "s"}]}));
    assert_eq!(response.status, 201);
}

#[test]
fn declared_422_and_400_used() {
    let mock = crate::common::mock(KENNEL);
    let response = post(&mock, "/checked", &json!({}));
    assert_eq!(response.status, 422);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(json(&response), json!({"error": "invalid kennel"}));

    let response = post(&mock, "/loose", &json!({"name": 3}));
    assert_eq!(response.status, 400);
    let body = json(&response);
    assert!(body["code"].as_i64().unwrap() >= 1, "{body}");
    assert!(header(&response, "x-mockforge-validation")
        .unwrap()
        .contains("body/name: must be a string"));
}

const CATS: &str = r##"
openapi: 3.0.3
info: {title: cats, version: "1"}
paths:
  /pets:
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Pet"}
      responses:
        "201": {description: created}
components:
  schemas:
    Pet:
      oneOf:
        - $ref: "#/components/schemas/NiceCat"
        - $ref: "#/components/schemas/HunterCat"
      discriminator: {propertyName: petType}
    NiceCat:
      type: object
      required: [petType]
      properties:
        petType: {type: string}
        miaou: {type: boolean}
    HunterCat:
      type: object
      required: [petType]
      properties:
        petType: {type: string}
        hunts: {type: boolean}
"##;

#[test]
fn one_of_overlap_warned_and_rejected() {
    let warnings = warnings_of(CATS);
    assert!(
        has_warning(
            &warnings,
            "/components/schemas/Pet/oneOf",
            "oneOf branches overlap; discriminator cannot make them exclusive"
        ),
        "{warnings:#?}"
    );

    let mock = crate::common::mock(CATS);
    let response = post(&mock, "/pets", &json!({"petType": "NICE", "miaou": true}));
    let listed = violations(&response);
    assert_eq!(listed[0]["keyword"], "oneOf");
    assert_eq!(listed[0]["location"], json!(["body"]));
    let message = listed[0]["message"].as_str().unwrap();
    assert!(message.contains("NiceCat"), "{message}");
    assert!(message.contains("HunterCat"), "{message}");
}

const KEYWORDS: &str = r##"
openapi: 3.0.3
info: {title: keywords, version: "1"}
paths:
  /things:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              properties:
                version: {type: string, pattern: '^[0-9]+\.[0-9]+\.[0-9]+(\.b[0-9]+)?$'}
                when: {type: string, format: date-time}
                email: {type: string, format: email}
                id: {type: string, format: uuid}
                site: {type: string, format: uri}
                address: {type: string, format: ipv4}
                step: {type: number, multipleOf: 0.5}
                kind: {type: string, enum: [a, b]}
                fixed: {type: integer, not: {enum: [13]}}
                either: {anyOf: [{type: integer}, {type: boolean}]}
      responses:
        "201": {description: created}
  /releases:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              minProperties: 1
              additionalProperties:
                type: string
                pattern: '^[0-9]+\.[0-9]+\.[0-9]+(\.b[0-9]+)?$'
      responses:
        "201": {description: created}
"##;

#[test]
fn schema_keywords_checked() {
    let mock = crate::common::mock(KEYWORDS);
    let valid = json!({"version": "1.2.3.b4", "when": "2024-02-29T10:00:00Z", "email": "a@b.io",
        "id": "123e4567-e89b-42d3-a456-426614174000", "site": "https://example.com",
        "address": "10.0.0.1", "step": 1.5, "kind": "a", "fixed": 12, "either": true});
    assert_eq!(post(&mock, "/things", &valid).status, 201);

    let cases = [
        ("version", json!("1.2"), "pattern"),
        ("when", json!("yesterday"), "format"),
        ("email", json!("nobody"), "format"),
        ("id", json!("123"), "format"),
        ("site", json!("not a uri"), "format"),
        ("address", json!("300.1.1.1"), "format"),
        ("step", json!(1.2), "multipleOf"),
        ("kind", json!("c"), "enum"),
        ("fixed", json!(13), "not"),
        ("either", json!("text"), "anyOf"),
        ("extra", json!(1), "additionalProperties"),
    ];
    for (name, value, keyword) in cases {
        let response = post(&mock, "/things", &json!({ name: value }));
        assert!(
            has_violation(&response, json!(["body", name]), keyword),
            "{name}: {:?}",
            violations(&response)
        );
    }
}

#[test]
fn version_map_pattern_and_min_properties() {
    let mock = crate::common::mock(KEYWORDS);
    assert_eq!(post(&mock, "/releases", &json!({"stable": "1.2.3"})).status, 201);
    assert_eq!(post(&mock, "/releases", &json!({"beta": "1.2.3.b7"})).status, 201);
    let empty = post(&mock, "/releases", &json!({}));
    assert!(has_violation(&empty, json!(["body"]), "minProperties"));
    let bad = post(&mock, "/releases", &json!({"beta": "1.2.3-b7"}));
    assert!(has_violation(&bad, json!(["body", "beta"]), "pattern"));
}

const STYLES: &str = r##"
openapi: 3.0.3
info: {title: styles, version: "1"}
paths:
  /search:
    get:
      parameters:
        - {name: ids, in: query, schema: {type: array, items: {type: integer}}}
        - {name: tags, in: query, explode: false, schema: {type: array, items: {type: string}, maxItems: 2}}
        - {name: words, in: query, style: spaceDelimited, explode: false, schema: {type: array, items: {type: integer}}}
        - {name: pipes, in: query, style: pipeDelimited, explode: false, schema: {type: array, items: {type: integer}}}
        - name: filter
          in: query
          style: deepObject
          explode: true
          schema: {type: object, properties: {min: {type: integer}, color: {type: string, enum: [red, blue]}}}
        - {name: X-Ids, in: header, schema: {type: array, items: {type: integer}}}
        - {name: session, in: cookie, schema: {type: string, minLength: 3}}
      responses:
        "200": {description: ok, content: {application/json: {example: {ok: true}}}}
"##;

#[test]
fn query_styles_parsed() {
    let mock = crate::common::mock(STYLES);
    let valid = [
        "/search?ids=5",
        "/search?ids=5&ids=6",
        "/search?tags=a,b",
        "/search?words=1%202",
        "/search?pipes=1|2",
        "/search?filter[min]=3&filter[color]=red",
    ];
    for path in valid {
        let response = send(&mock, Method::GET, path, &[], "");
        assert_eq!(response.status, 200, "{path}: {:?}", String::from_utf8_lossy(&response.body));
    }
    let invalid = [
        ("/search?ids=x", json!(["query", "ids", 0]), "type"),
        ("/search?ids=1&ids=x", json!(["query", "ids", 1]), "type"),
        ("/search?tags=a,b,c", json!(["query", "tags"]), "maxItems"),
        ("/search?words=1%20x", json!(["query", "words", 1]), "type"),
        ("/search?pipes=1|x", json!(["query", "pipes", 1]), "type"),
        ("/search?filter[min]=x", json!(["query", "filter", "min"]), "type"),
        ("/search?filter[color]=green", json!(["query", "filter", "color"]), "enum"),
    ];
    for (path, location, keyword) in invalid {
        let response = send(&mock, Method::GET, path, &[], "");
        assert!(has_violation(&response, location, keyword), "{path}: {:?}", violations(&response));
    }
    let header_response = send(&mock, Method::GET, "/search", &[("x-ids", "1,x")], "");
    assert!(has_violation(&header_response, json!(["header", "X-Ids", 1]), "type"));
    let cookie_response = send(&mock, Method::GET, "/search", &[("cookie", "session=ab")], "");
    assert!(has_violation(&cookie_response, json!(["cookie", "session"]), "minLength"));
}

#[test]
fn deep_recursive_body_validates() {
    let document = r##"
openapi: 3.0.3
info: {title: tree, version: "1"}
paths:
  /nodes:
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Node"}
      responses:
        "201": {description: created}
components:
  schemas:
    Node:
      type: object
      required: [name]
      properties:
        name: {type: string}
        child: {$ref: "#/components/schemas/Node"}
"##;
    let mock = crate::common::mock(document);
    let mut body = json!({"name": "leaf"});
    for level in 0..50 {
        body = json!({"name": format!("level {level}"), "child": body});
    }
    assert_eq!(post(&mock, "/nodes", &body).status, 201);

    let mut broken = json!({"name": 7});
    for level in 0..50 {
        broken = json!({"name": format!("level {level}"), "child": broken});
    }
    let response = post(&mock, "/nodes", &broken);
    let listed = violations(&response);
    let location = listed[0]["location"].as_array().unwrap();
    assert_eq!(location.len(), 52, "{location:?}");
    assert_eq!(listed[0]["keyword"], "type");

    // Deeper than serde_json's nesting limit of 128: rejected as unparsable, not a crash.
    let deep = "[".repeat(5000) + &"]".repeat(5000);
    let response = send(&mock, Method::POST, "/nodes", &[("content-type", "application/json")], &deep);
    assert!(has_violation(&response, json!(["body"]), "parse"));
}

#[test]
fn strict_accept_switch() {
    let document = r##"
openapi: 3.0.3
info: {title: accept, version: "1"}
paths:
  /items:
    get:
      responses:
        "200":
          description: ok
          content:
            application/vnd.api+json: {example: {data: []}}
            application/xml: {example: "<items/>"}
"##;
    let strict = crate::common::mock(document);
    let error = crate::common::send(&strict, "GET", "/items", &[("accept", "text/csv")]).unwrap_err();
    match error {
        mockforge_engine::MockError::NotAcceptable { available, .. } => {
            assert_eq!(available, vec!["application/vnd.api+json", "application/xml"])
        }
        other => panic!("expected NotAcceptable, got {other:?}"),
    }

    let options = MockOptions::from_config(&json!({"strict_accept": false})).unwrap();
    assert!(!options.strict_accept);
    assert!(MockOptions::default().strict_accept);
    let lenient = crate::common::mock_with(document, options);
    let response = crate::common::send(&lenient, "GET", "/items", &[("accept", "text/csv")]).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(header(&response, "content-type"), Some("application/vnd.api+json"));
}

#[test]
fn request_warnings_have_pointers() {
    let document = r##"
openapi: 3.0.3
info: {title: warnings, version: "1"}
paths:
  /users/{id}:
    get:
      parameters:
        - {name: userId, in: path, required: true, schema: {type: integer}}
      responses:
        "200":
          description: ok
          headers:
            Content-Length: {schema: {type: integer}}
            X-Rate: {schema: {type: integer}}
          content:
            application/json:
              schema: {type: object, required: [id], properties: {id: {type: integer}}}
              example: {id: "seven"}
        "204":
          description: none
          content:
            application/json: {schema: {type: object}}
  /search?q=1:
    get:
      responses:
        "200": {description: ok}
  /mixed:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                type: [string, "null"]
                allOf: [{type: string}, {type: integer}]
  /pattern:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {type: string, pattern: '^(?!admin).*$'}
"##;
    let warnings = warnings_of(document);
    let get = "/paths/~1users~1{id}/get";
    assert!(has_warning(&warnings, get, "declares no path parameter `id`"), "{warnings:#?}");
    assert!(has_warning(&warnings, &format!("{get}/parameters"), "`userId` is declared but the path template has no `{userId}`"), "{warnings:#?}");
    assert!(has_warning(&warnings, &format!("{get}/responses/200/headers/Content-Length"), "transport header"), "{warnings:#?}");
    assert!(has_warning(&warnings, &format!("{get}/responses/204/content"), "never sent"), "{warnings:#?}");
    assert!(has_warning(&warnings, &format!("{get}/responses/200/content/application~1json/example"), "contradicts its schema"), "{warnings:#?}");
    assert!(has_warning(&warnings, "/paths/~1search?q=1", "contains `?`"), "{warnings:#?}");
    assert!(has_warning(&warnings, "/paths/~1mixed/get/responses/200/content/application~1json/schema/type", "OpenAPI 3.1 syntax"), "{warnings:#?}");
    assert!(has_warning(&warnings, "/paths/~1pattern/get/responses/200/content/application~1json/schema/pattern", "look-around"), "{warnings:#?}");

    let mock = crate::common::mock(document);
    let response = crate::common::get(&mock, "/users/7");
    assert_eq!(json(&response), json!({"id": "seven"}), "contradicting examples are still served");
    assert!(header(&response, "content-length").is_none());
    assert!(header(&response, "x-rate").is_some());
    assert_eq!(crate::common::get(&mock, "/search").status, 200);
    let no_content = crate::common::send(&mock, "GET", "/users/7", &[("prefer", "code=204")]).unwrap();
    assert_eq!(no_content.status, 204);
    assert!(no_content.body.is_empty());
    assert!(header(&no_content, "content-type").is_none());
}

#[test]
fn nullable_in_3_1_ignored_with_warning() {
    let document = crate::common::schema_document("3.1.0", r#"{"type": "string", "nullable": true}"#, "{}");
    let warnings = warnings_of(&document);
    assert!(
        has_warning(&warnings, "/paths/~1thing/get/responses/200/content/application~1json/schema/nullable", "not part of OpenAPI 3.1"),
        "{warnings:#?}"
    );
}
