//! Path matching: precedence, partial templates, base paths, trailing slashes and methods.

use mockforge_engine::{MockError, MockOptions};

use crate::common::{get, json, mock, mock_with, send};

/// A document whose every operation returns its own name as the example body.
fn named_routes(paths: &[(&str, &str)]) -> String {
    let mut items = Vec::new();
    for (path, name) in paths {
        items.push(format!(
            r##""{path}": {{"get": {{"responses": {{"200": {{"description": "ok", "content": {{"application/json": {{"example": {{"route": "{name}"}}}}}}}}}}}}}}"##
        ));
    }
    format!(
        r##"{{"openapi": "3.0.3", "info": {{"title": "routes", "version": "1"}}, "paths": {{{}}}}}"##,
        items.join(",")
    )
}

fn route_of(mock: &mockforge_engine::Mock, path: &str) -> String {
    json(&get(mock, path))["route"].as_str().unwrap().to_owned()
}

#[test]
fn literal_beats_template_both_orders() {
    let literal_first = mock(&named_routes(&[
        ("/users/me", "me"),
        ("/users/{id}", "by-id"),
    ]));
    let template_first = mock(&named_routes(&[
        ("/users/{id}", "by-id"),
        ("/users/me", "me"),
    ]));
    for mock in [&literal_first, &template_first] {
        assert_eq!(route_of(mock, "/users/me"), "me");
        assert_eq!(route_of(mock, "/users/42"), "by-id");
    }
}

#[test]
fn literal_dead_end_backtracks_to_template() {
    let mock = mock(&named_routes(&[
        ("/a/b/c", "literal"),
        ("/a/{x}/d", "template"),
    ]));
    assert_eq!(route_of(&mock, "/a/b/c"), "literal");
    assert_eq!(route_of(&mock, "/a/b/d"), "template");
}

#[test]
fn partial_template_splits_at_last_dot() {
    let mock = mock(&named_routes(&[
        ("/files/{name}.{ext}", "file"),
        ("/files/{id}", "plain"),
    ]));
    assert_eq!(route_of(&mock, "/files/archive.tar.csv"), "file");
    assert_eq!(route_of(&mock, "/files/readme"), "plain");
}

#[test]
fn partial_templates_with_suffixes() {
    let mock = mock(&named_routes(&[
        ("/commits/{sha}.{diffType}", "diff"),
        ("/jobs/{id}:cancel", "cancel"),
        ("/compare/{base}...{head}", "compare"),
        ("/compare/{basehead}", "basehead"),
    ]));
    assert_eq!(route_of(&mock, "/commits/abc123.patch"), "diff");
    assert_eq!(route_of(&mock, "/jobs/7:cancel"), "cancel");
    assert_eq!(route_of(&mock, "/compare/main...feature"), "compare");
    assert_eq!(route_of(&mock, "/compare/main"), "basehead");
    assert!(matches!(
        send(&mock, "GET", "/jobs/7:stop", &[]),
        Err(MockError::NoRoute { .. })
    ));
}

#[test]
fn parameter_names_with_dash_and_dot() {
    let mock = mock(&named_routes(&[("/items/{item-id}/{v.1}", "item")]));
    assert_eq!(route_of(&mock, "/items/a/b"), "item");
}

#[test]
fn percent_encoded_slash_is_data() {
    let mock = mock(&named_routes(&[
        ("/files/{path}", "file"),
        ("/files/{dir}/{name}", "nested"),
    ]));
    assert_eq!(route_of(&mock, "/files/a%2Fb"), "file");
    assert_eq!(route_of(&mock, "/files/a/b"), "nested");
}

#[test]
fn invalid_percent_escape_is_bad_request() {
    let mock = mock(&named_routes(&[("/files/{path}", "file")]));
    let error = send(&mock, "GET", "/files/a%zz", &[]).unwrap_err();
    match error {
        MockError::BadRequest(message) => assert!(message.contains("path"), "{message}"),
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

#[test]
fn trailing_slash_strict_by_default() {
    let mock = mock(&named_routes(&[("/users", "users")]));
    assert_eq!(route_of(&mock, "/users"), "users");
    assert!(matches!(
        send(&mock, "GET", "/users/", &[]),
        Err(MockError::NoRoute { .. })
    ));
}

#[test]
fn trailing_slash_ignored_when_configured() {
    let options = MockOptions {
        ignore_trailing_slash: true,
        ..MockOptions::default()
    };
    let mock = mock_with(
        &named_routes(&[("/users", "users"), ("/teams/", "teams")]),
        options,
    );
    assert_eq!(route_of(&mock, "/users"), "users");
    assert_eq!(route_of(&mock, "/users/"), "users");
    assert_eq!(route_of(&mock, "/teams"), "teams");
    assert_eq!(route_of(&mock, "/teams/"), "teams");
}

#[test]
fn unknown_path_is_no_route() {
    let mock = mock(&named_routes(&[("/users", "users")]));
    match send(&mock, "GET", "/nothing", &[]) {
        Err(MockError::NoRoute { method, path }) => {
            assert_eq!(method, "GET");
            assert_eq!(path, "/nothing");
        }
        other => panic!("expected NoRoute, got {other:?}"),
    }
}

#[test]
fn undeclared_method_lists_allowed() {
    let document = r##"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {
        "/pets": {"get": {"responses": {"200": {"description": "ok"}}},
                  "post": {"responses": {"201": {"description": "created"}}}}}}"##;
    let mock = mock(document);
    match send(&mock, "DELETE", "/pets", &[]) {
        Err(MockError::MethodNotAllowed { allow, .. }) => {
            assert!(allow.contains(&"GET".to_owned()), "{allow:?}");
            assert!(allow.contains(&"POST".to_owned()), "{allow:?}");
            assert!(allow.contains(&"HEAD".to_owned()), "{allow:?}");
            assert!(!allow.contains(&"DELETE".to_owned()), "{allow:?}");
        }
        other => panic!("expected MethodNotAllowed, got {other:?}"),
    }
    assert_eq!(send(&mock, "POST", "/pets", &[]).unwrap().status, 201);
}

#[test]
fn method_falls_through_to_template() {
    let document = r##"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {
        "/pets/mine": {"get": {"responses": {"200": {"description": "ok"}}}},
        "/pets/{id}": {"delete": {"responses": {"204": {"description": "gone"}}}}}}"##;
    let mock = mock(document);
    assert_eq!(
        send(&mock, "DELETE", "/pets/mine", &[]).unwrap().status,
        204
    );
    assert_eq!(send(&mock, "GET", "/pets/mine", &[]).unwrap().status, 200);
}

#[test]
fn head_mirrors_get_without_body() {
    let mock = mock(&named_routes(&[("/users", "users")]));
    let get_response = get(&mock, "/users");
    let head_response = send(&mock, "HEAD", "/users", &[]).unwrap();
    assert_eq!(head_response.status, get_response.status);
    assert_eq!(
        head_response.headers.get("content-type"),
        get_response.headers.get("content-type")
    );
    assert!(head_response.body.is_empty());
    assert!(!get_response.body.is_empty());
    assert_eq!(
        head_response.headers["content-length"],
        get_response.body.len().to_string().as_str()
    );
}

const SERVER_DOCUMENT: &str = r##"
openapi: 3.0.3
info: {title: servers, version: "1"}
servers:
  - url: https://{region}.example.com/{region}/v1
    variables:
      region:
        default: eu
        enum: [eu, us]
  - url: /api/{version}
    variables:
      version:
        default: v2
paths:
  /hello:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              example: {hello: world}
"##;

#[test]
fn server_enum_expands_base_paths() {
    let mock = mock(SERVER_DOCUMENT);
    assert_eq!(get(&mock, "/eu/v1/hello").status, 200);
    assert_eq!(get(&mock, "/us/v1/hello").status, 200);
    assert_eq!(get(&mock, "/hello").status, 200);
    assert!(matches!(
        send(&mock, "GET", "/apac/v1/hello", &[]),
        Err(MockError::NoRoute { .. })
    ));
}

#[test]
fn server_variable_without_enum_matches_any() {
    let mock = mock(SERVER_DOCUMENT);
    assert_eq!(get(&mock, "/api/v2/hello").status, 200);
    assert_eq!(get(&mock, "/api/v9/hello").status, 200);
    assert!(matches!(
        send(&mock, "GET", "/api/hello", &[]),
        Err(MockError::NoRoute { .. })
    ));
}

#[test]
fn base_path_form_wins_collision() {
    let document = r##"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
        "servers": [{"url": "https://api.example.com/v1"}],
        "paths": {
          "/v1/users": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"example": {"route": "bare"}}}}}}},
          "/users": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"example": {"route": "based"}}}}}}}}}"##;
    let mock = mock(document);
    assert_eq!(route_of(&mock, "/v1/users"), "based");
    assert_eq!(route_of(&mock, "/users"), "based");
    assert_eq!(route_of(&mock, "/v1/v1/users"), "bare");
}

#[test]
fn path_and_operation_servers_apply() {
    let document = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/data/server-levels.yaml"
    ))
    .unwrap();
    let mock = mock(&document);
    assert_eq!(get(&mock, "/v2/relative-path-server").status, 200);
    assert_eq!(get(&mock, "/v3/relative-operation-server").status, 200);
    assert_eq!(get(&mock, "/relative-operation-server").status, 200);
    assert!(matches!(
        send(&mock, "GET", "/v1/relative-operation-server", &[]),
        Err(MockError::NoRoute { .. })
    ));
}

#[test]
fn root_path_served_at_base() {
    let document = r##"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
        "servers": [{"url": "https://api.example.com/v1"}],
        "paths": {"/": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"example": {"route": "root"}}}}}}}}}"##;
    let mock = mock(document);
    assert_eq!(route_of(&mock, "/v1"), "root");
    assert_eq!(route_of(&mock, "/v1/"), "root");
    assert_eq!(route_of(&mock, "/"), "root");
}

#[test]
fn bare_path_beats_variable_base() {
    let document = r##"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
        "servers": [{"url": "/{tenant}", "variables": {"tenant": {"default": "acme"}}}],
        "paths": {
          "/{repo}": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"example": {"route": "repo"}}}}}}},
          "/{owner}/{repo}": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"example": {"route": "owner-repo"}}}}}}}}}"##;
    let mock = mock(document);
    assert_eq!(route_of(&mock, "/octocat/hello"), "owner-repo");
    assert_eq!(route_of(&mock, "/hello"), "repo");
}

#[test]
fn captured_values_split_and_decode() {
    let document = r##"
openapi: 3.0.3
info: {title: captures, version: "1"}
paths:
  /files/{name}.{ext}:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              example: {name: "{{request.path.name}}", ext: "{{request.path.ext}}"}
  /items/{item-id}/{v.1}:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              example: {item: "{{request.path.item-id}}", version: "{{request.path.v.1}}"}
"##;
    let options = MockOptions {
        response_template_expand: true,
        validation: mockforge_engine::Validation::Off,
        ..MockOptions::default()
    };
    let mock = mock_with(document, options);
    let file = json(&get(&mock, "/files/archive.tar.csv"));
    assert_eq!(file["name"], "archive.tar");
    assert_eq!(file["ext"], "csv");
    let encoded = json(&get(&mock, "/files/a%2Fb.txt"));
    assert_eq!(encoded["name"], "a/b");
    let item = json(&get(&mock, "/items/x%20y/2"));
    assert_eq!(item["item"], "x y");
    assert_eq!(item["version"], "2");
}
