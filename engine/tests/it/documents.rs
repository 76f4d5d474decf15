//! Document loading: formats, versions, references and diagnostics.

use mockforge_engine::{compile, MockOptions, Severity};

use crate::common::{get, json, mock};

fn errors_of(document: &str) -> Vec<mockforge_engine::Diagnostic> {
    match compile(document, MockOptions::default()) {
        Ok(_) => panic!("the document compiled but was expected to fail"),
        Err(error) => error.diagnostics,
    }
}

#[test]
fn not_json_or_yaml_rejected() {
    let diagnostics = errors_of("{\"openapi\": \"3.0.0\",");
    assert_eq!(diagnostics[0].severity, Severity::Error);
    assert!(
        diagnostics[0].message.contains("JSON"),
        "{}",
        diagnostics[0].message
    );
}

#[test]
fn non_object_document_rejected() {
    let diagnostics = errors_of("[1, 2]");
    assert!(
        diagnostics[0].message.contains("array"),
        "{}",
        diagnostics[0].message
    );
    assert_eq!(diagnostics[0].pointer, "");
}

#[test]
fn missing_version_rejected() {
    let diagnostics = errors_of("info: {title: t}\npaths: {}\n");
    assert!(
        diagnostics[0].message.contains("openapi"),
        "{}",
        diagnostics[0].message
    );
}

#[test]
fn paths_not_object_rejected() {
    let diagnostics = errors_of(r##"{"openapi": "3.0.0", "paths": []}"##);
    assert_eq!(diagnostics[0].pointer, "/paths");
}

#[test]
fn unresolvable_ref_rejected_with_pointer() {
    let document = r##"{"openapi": "3.0.0", "paths": {"/pets/{petId}": {"get": {"responses": {"200": {"$ref": "#/components/responses/Missing"}}}}}}"##;
    let diagnostics = errors_of(document);
    assert_eq!(diagnostics[0].severity, Severity::Error);
    assert_eq!(
        diagnostics[0].pointer,
        "/paths/~1pets~1{petId}/get/responses/200/$ref"
    );
    assert!(
        diagnostics[0]
            .message
            .contains("#/components/responses/Missing"),
        "{}",
        diagnostics[0].message
    );
}

#[test]
fn odd_nodes_give_warnings() {
    let document = r##"{"openapi": "3.0.0", "info": {"title": "odd", "version": "1"}, "paths": {
        "/bad": {"get": "not an operation"},
        "/good": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object", "required": true}}}}}}}}}"##;
    let compiled = compile(document, MockOptions::default()).unwrap();
    assert_eq!(compiled.mock.operation_count(), 1);
    assert!(
        compiled
            .warnings
            .iter()
            .any(|warning| warning.pointer == "/paths/~1bad/get"),
        "{:?}",
        compiled.warnings
    );
    assert!(
        compiled
            .warnings
            .iter()
            .any(|warning| warning.pointer.ends_with("/schema/required")),
        "{:?}",
        compiled.warnings
    );
    assert_eq!(get(&compiled.mock, "/good").status, 200);
}

#[test]
fn exclusive_minimum_number_in_3_0_warns() {
    let document = r##"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {"/n": {"get": {"responses": {"200": {"description": "ok",
        "content": {"application/json": {"schema": {"type": "integer", "exclusiveMinimum": 0}}}}}}}}}"##;
    let compiled = compile(document, MockOptions::default()).unwrap();
    assert!(
        compiled
            .warnings
            .iter()
            .any(|warning| warning.message.contains("exclusiveMinimum")),
        "{:?}",
        compiled.warnings
    );
    assert_eq!(json(&get(&compiled.mock, "/n")), 1);
}

#[test]
fn webhooks_only_document_loads() {
    let document = r##"{"openapi": "3.1.0", "info": {"title": "hooks", "version": "1"},
        "webhooks": {"newPet": {"post": {"responses": {"200": {"description": "ok"}}}}}}"##;
    let compiled = compile(document, MockOptions::default()).unwrap();
    assert_eq!(compiled.mock.operation_count(), 0);
    assert_eq!(compiled.mock.title(), "hooks");
}

#[test]
fn yaml_and_json_give_same_answer() {
    let yaml = "openapi: 3.1.0\ninfo: {title: y, version: '1'}\npaths:\n  /a:\n    get:\n      responses:\n        200:\n          description: ok\n          content:\n            application/json:\n              example: {a: 1}\n";
    let json_text = r##"{"openapi": "3.1.0", "info": {"title": "y", "version": "1"}, "paths": {"/a": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"example": {"a": 1}}}}}}}}}"##;
    assert_eq!(
        json(&get(&mock(yaml), "/a")),
        json(&get(&mock(json_text), "/a"))
    );
}

#[test]
fn path_item_ref_followed() {
    let document = r##"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {
        "/source": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"example": {"from": "source"}}}}}}},
        "/alias": {"$ref": "#/paths/~1source"}}}"##;
    let mock = mock(document);
    assert_eq!(json(&get(&mock, "/alias"))["from"], "source");
}

#[test]
fn cyclic_component_refs_load() {
    let document = r##"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {"/a": {"get": {"responses": {"200": {"description": "ok",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}}}}},
        "components": {"schemas": {"A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}}}}"##;
    let compiled = compile(document, MockOptions::default()).unwrap();
    assert_eq!(get(&compiled.mock, "/a").status, 200);
}

#[test]
fn title_and_operation_count() {
    let document = r##"{"openapi": "3.0.3", "info": {"title": "Pets", "version": "1"}, "paths": {
        "/a": {"get": {"responses": {}}, "post": {"responses": {}}}, "/b": {"put": {"responses": {}}}}}"##;
    let mock = mock(document);
    assert_eq!(mock.title(), "Pets");
    assert_eq!(mock.operation_count(), 3);
}

#[test]
fn long_reference_chain_loads() {
    // Each schema refers to the next through a property, 5000 deep, which would overflow the
    // stack if reference targets were lowered recursively.
    let count = 5000;
    let mut schemas = Vec::new();
    for index in 0..count {
        let next = if index + 1 < count {
            format!(r##"{{"$ref": "#/components/schemas/S{}"}}"##, index + 1)
        } else {
            r#"{"type": "string"}"#.to_owned()
        };
        schemas.push(format!(r#""S{index}": {{"type": "object", "required": ["next"], "properties": {{"next": {next}}}}}"#));
    }
    let document = format!(
        r##"{{"openapi": "3.0.3", "info": {{"title": "chain", "version": "1"}},
            "paths": {{"/chain": {{"get": {{"responses": {{"200": {{"description": "ok",
                "content": {{"application/json": {{"schema": {{"$ref": "#/components/schemas/S0"}}}}}}}}}}}}}}}},
            "components": {{"schemas": {{{}}}}}}}"##,
        schemas.join(",")
    );
    let mock = mock(&document);
    let body = json(&get(&mock, "/chain"));
    assert!(body["next"]["next"].is_object(), "{body}");
}
