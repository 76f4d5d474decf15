//! Values generated from schemas.

use serde_json::{json, Value};

use crate::common::{generated, get, json, mock, schema_document, send};

#[test]
fn all_of_merges_parts() {
    let components = r##"{
        "Base": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["ok"]}}},
        "Wrapped": {"allOf": [{"$ref": "#/components/schemas/Base"},
            {"type": "object", "required": ["data"], "properties": {"data": {"type": "object", "required": ["id"],
                "properties": {"id": {"type": "integer", "minimum": 1}}}}}]}}"##;
    let body = generated(
        "3.0.3",
        r##"{"$ref": "#/components/schemas/Wrapped"}"##,
        components,
    );
    assert_eq!(body, json!({"status": "ok", "data": {"id": 1}}));
}

#[test]
fn one_of_uses_discriminator_mapping_key() {
    let components = r##"{
        "Pet": {"oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
                "discriminator": {"propertyName": "petType", "mapping": {
                    "NICE": "#/components/schemas/Cat", "LOUD": "#/components/schemas/Dog"}}},
        "Cat": {"type": "object", "required": ["petType", "lives"], "properties": {
            "petType": {"type": "string"}, "lives": {"type": "integer", "minimum": 9}}},
        "Dog": {"type": "object", "required": ["petType"], "properties": {"petType": {"type": "string"}}}}"##;
    let body = generated(
        "3.0.3",
        r##"{"$ref": "#/components/schemas/Pet"}"##,
        components,
    );
    assert_eq!(body["petType"], "NICE");
    assert_eq!(body["lives"], 9);
}

#[test]
fn all_of_base_discriminator_names_subtype() {
    let components = r##"{
        "Pet": {"type": "object", "required": ["pet_type"], "properties": {"pet_type": {"type": "string"}},
                "discriminator": {"propertyName": "pet_type"}},
        "Dog": {"allOf": [{"$ref": "#/components/schemas/Pet"},
            {"type": "object", "properties": {"bark": {"type": "boolean"}}}]}}"##;
    let body = generated(
        "3.0.3",
        r##"{"$ref": "#/components/schemas/Dog"}"##,
        components,
    );
    assert_eq!(body["pet_type"], "Dog");
    assert!(body["bark"].is_boolean(), "{body}");
}

#[test]
fn nullable_default_null_gives_null() {
    let body = generated(
        "3.0.3",
        r##"{"type": "object", "required": ["nickname"], "properties": {
        "nickname": {"type": "string", "nullable": true, "default": null}}}"##,
        "{}",
    );
    assert_eq!(body, json!({"nickname": null}));
}

#[test]
fn nullable_email_matches_type_list() {
    let nullable = generated(
        "3.0.3",
        r##"{"type": "object", "required": ["contact"], "properties": {
        "contact": {"type": "string", "format": "email", "nullable": true}}}"##,
        "{}",
    );
    let type_list = generated(
        "3.1.0",
        r##"{"type": "object", "required": ["contact"], "properties": {
        "contact": {"type": ["string", "null"], "format": "email"}}}"##,
        "{}",
    );
    let contact = nullable["contact"].as_str().unwrap();
    assert!(contact.contains('@'), "{contact}");
    assert_eq!(nullable, type_list);
}

#[test]
fn read_only_kept_write_only_omitted() {
    let body = generated(
        "3.0.3",
        r##"{"type": "object", "required": ["id", "password"], "properties": {
        "id": {"type": "integer", "readOnly": true, "minimum": 5},
        "password": {"type": "string", "writeOnly": true}}}"##,
        "{}",
    );
    assert_eq!(body, json!({"id": 5}));
}

#[test]
fn circular_reference_terminates() {
    let components = r##"{"Node": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"},
        "parent": {"$ref": "#/components/schemas/Node"},
        "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}}"##;
    let body = generated(
        "3.0.3",
        r##"{"$ref": "#/components/schemas/Node"}"##,
        components,
    );
    assert!(body["name"].is_string(), "{body}");
    assert_eq!(body["children"], json!([]));
    assert!(body.get("parent").is_none(), "{body}");
}

#[test]
fn mutual_recursion_terminates() {
    let components = r##"{
        "A": {"type": "object", "required": ["b"], "properties": {"b": {"$ref": "#/components/schemas/B"}}},
        "B": {"type": "object", "required": ["a"], "properties": {"a": {"$ref": "#/components/schemas/A"}}}}"##;
    let document = crate::common::schema_document(
        "3.0.3",
        r##"{"$ref": "#/components/schemas/A"}"##,
        components,
    );
    let compiled = mockforge_engine::compile(&document, mockforge_engine::MockOptions::default())
        .unwrap();
    for pointer in ["/components/schemas/A", "/components/schemas/B"] {
        assert!(
            compiled
                .warnings
                .iter()
                .any(|warning| warning.pointer == pointer && warning.message.contains("no finite value")),
            "{pointer}: {:#?}",
            compiled.warnings
        );
    }
    // No finite value satisfies A, so the response has no body rather than an invalid one.
    let response = get(&compiled.mock, "/thing");
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
}

#[test]
fn unsatisfiable_schemas_warned() {
    let schema = r#"{"type": "object", "properties": {
        "impossible": {"type": "object", "required": ["gone"], "properties": {"gone": false}},
        "colors": {"type": "array", "uniqueItems": true, "minItems": 3, "items": {"enum": ["red", "blue"]}}}}"#;
    let document = crate::common::schema_document("3.1.0", schema, "{}");
    let compiled = mockforge_engine::compile(&document, mockforge_engine::MockOptions::default())
        .unwrap();
    let base = "/paths/~1thing/get/responses/200/content/application~1json/schema/properties";
    let warned = |pointer: &str, text: &str| {
        compiled
            .warnings
            .iter()
            .any(|warning| warning.pointer == pointer && warning.message.contains(text))
    };
    assert!(warned(&format!("{base}/impossible"), "`gone` has the schema `false`"), "{:#?}", compiled.warnings);
    assert!(warned(&format!("{base}/colors"), "cannot reach `minItems: 3`"), "{:#?}", compiled.warnings);
    let body = json(&get(&compiled.mock, "/thing"));
    assert!(body.get("impossible").is_none(), "{body}");
    assert!(body.get("colors").is_none(), "{body}");
}

#[test]
fn unique_enum_items_fill_min_items() {
    let body = generated(
        "3.0.3",
        r##"{"type": "object", "required": ["b", "none"], "properties": {
        "b": {"type": "array", "minItems": 2, "uniqueItems": true, "items": {"type": "string", "enum": ["x", "y"]}},
        "none": {"type": "array", "maxItems": 0, "items": {"type": "string"}}}}"##,
        "{}",
    );
    let mut items: Vec<&str> = body["b"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item.as_str().unwrap())
        .collect();
    items.sort();
    assert_eq!(items, ["x", "y"]);
    assert_eq!(body["none"], json!([]));
}

#[test]
fn array_length_respects_bounds() {
    let body = generated(
        "3.0.3",
        r##"{"type": "array", "minItems": 3, "maxItems": 5, "items": {"type": "integer"}}"##,
        "{}",
    );
    assert_eq!(body.as_array().unwrap().len(), 3);
}

#[test]
fn boolean_schemas_true_and_false() {
    let body = generated(
        "3.1.0",
        r##"{"type": "object", "required": ["anything"], "properties": {
        "anything": true, "nothing": false}}"##,
        "{}",
    );
    assert!(body.get("anything").is_some(), "{body}");
    assert!(body.get("nothing").is_none(), "{body}");
}

#[test]
fn formats_produce_valid_text() {
    let body = generated(
        "3.0.3",
        r##"{"type": "object", "properties": {
        "u": {"type": "string", "format": "uuid"},
        "t": {"type": "string", "format": "date-time"},
        "d": {"type": "string", "format": "date"},
        "e": {"type": "string", "format": "email"},
        "w": {"type": "string", "format": "uri"},
        "h": {"type": "string", "format": "hostname"},
        "i4": {"type": "string", "format": "ipv4"},
        "i6": {"type": "string", "format": "ipv6"},
        "n32": {"type": "integer", "format": "int32"},
        "n64": {"type": "integer", "format": "int64"},
        "f": {"type": "number", "format": "float"},
        "b": {"type": "string", "format": "byte"}}}"##,
        "{}",
    );
    let text = |key: &str| {
        body[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} is not a string: {body}"))
            .to_owned()
    };
    assert_eq!(text("u").len(), 36);
    assert!(text("t").contains('T'), "{}", text("t"));
    assert!(text("t").ends_with('Z'), "{}", text("t"));
    assert_eq!(text("d").len(), 10);
    assert!(text("e").contains('@'));
    assert!(text("w").starts_with("https://"));
    assert!(text("h").contains('.'));
    assert!(
        text("i4").parse::<std::net::Ipv4Addr>().is_ok(),
        "{}",
        text("i4")
    );
    assert!(
        text("i6").parse::<std::net::Ipv6Addr>().is_ok(),
        "{}",
        text("i6")
    );
    assert!(body["n32"].is_i64());
    assert!(body["n64"].is_i64());
    assert!(body["f"].is_f64() || body["f"].is_i64());
    assert_eq!(text("b"), "bW9ja2Zvcmdl");
}

#[test]
fn string_length_bounds_hold() {
    let body = generated(
        "3.0.3",
        r##"{"type": "object", "required": ["short", "long"], "properties": {
        "short": {"type": "string", "maxLength": 3},
        "long": {"type": "string", "minLength": 40}}}"##,
        "{}",
    );
    assert!(body["short"].as_str().unwrap().chars().count() <= 3);
    assert!(body["long"].as_str().unwrap().chars().count() >= 40);
}

#[test]
fn numeric_bounds_hold() {
    let body = generated(
        "3.0.3",
        r##"{"type": "object", "required": ["low", "exclusive", "capped", "step"], "properties": {
        "low": {"type": "integer", "minimum": 10, "maximum": 20},
        "exclusive": {"type": "integer", "minimum": 0, "exclusiveMinimum": true},
        "capped": {"type": "integer", "maximum": -5},
        "step": {"type": "integer", "minimum": 7, "multipleOf": 5}}}"##,
        "{}",
    );
    assert_eq!(body["low"], 10);
    assert_eq!(body["exclusive"], 1);
    assert_eq!(body["capped"], -5);
    assert_eq!(body["step"], 10);
}

#[test]
fn property_names_steer_values() {
    let body = generated(
        "3.0.3",
        r##"{"type": "object", "properties": {
        "email": {"type": "string"}, "created_at": {"type": "string"}, "avatar_url": {"type": "string"},
        "city": {"type": "string"}, "phone": {"type": "string"}}}"##,
        "{}",
    );
    assert!(body["email"].as_str().unwrap().contains('@'), "{body}");
    assert!(body["created_at"].as_str().unwrap().contains('T'), "{body}");
    assert!(
        body["avatar_url"].as_str().unwrap().starts_with("https://"),
        "{body}"
    );
    assert!(!body["city"].as_str().unwrap().is_empty(), "{body}");
    assert!(body["phone"].as_str().unwrap().starts_with('+'), "{body}");
}

#[test]
fn additional_properties_generate_entry() {
    let body = generated(
        "3.0.3",
        r##"{"type": "object", "additionalProperties": {"type": "integer", "minimum": 3}}"##,
        "{}",
    );
    assert_eq!(body, json!({"additionalProp1": 3}));
}

#[test]
fn const_and_enum_win() {
    let body = generated(
        "3.1.0",
        r##"{"type": "object", "required": ["kind", "level"], "properties": {
        "kind": {"const": "fixed"}, "level": {"type": "string", "enum": ["high", "low"]}}}"##,
        "{}",
    );
    assert_eq!(body, json!({"kind": "fixed", "level": "high"}));
}

#[test]
fn generation_is_deterministic_per_path() {
    let document = r##"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {
        "/users/{id}": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"token": {"type": "string", "format": "uuid"}}}}}}}}}}}"##;
    let mock = mock(document);
    let first = json(&get(&mock, "/users/1"));
    let again = json(&get(&mock, "/users/1"));
    let other = json(&get(&mock, "/users/2"));
    assert_eq!(first, again);
    assert_ne!(first, other);
}

#[test]
fn schema_example_through_ref() {
    let components = r##"{"Pet": {"type": "object", "example": {"name": "Rex"}, "properties": {"name": {"type": "string"}}}}"##;
    let body = generated(
        "3.0.3",
        r##"{"$ref": "#/components/schemas/Pet"}"##,
        components,
    );
    assert_eq!(body, json!({"name": "Rex"}));
}

#[test]
fn nested_property_example_used() {
    let body = generated(
        "3.0.3",
        r##"{"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "example": "doggie"}}}"##,
        "{}",
    );
    assert_eq!(body, json!({"name": "doggie"}));
}

#[test]
fn ref_siblings_ignored_in_3_0() {
    let document = schema_document(
        "3.0.3",
        r##"{"$ref": "#/components/schemas/Name", "maxLength": 2}"##,
        r##"{"Name": {"type": "string", "example": "abcdef"}}"##,
    );
    let compiled = mockforge_engine::compile(&document, Default::default()).unwrap();
    assert!(
        compiled
            .warnings
            .iter()
            .any(|warning| warning.message.contains("sibling")),
        "{:?}",
        compiled.warnings
    );
    let body = json(&send(&compiled.mock, "GET", "/thing", &[]).unwrap());
    assert_eq!(body, Value::String("abcdef".into()));
}

#[test]
fn pattern_strings_match() {
    let body = generated(
        "3.0.3",
        r##"{"type": "object", "required": ["code", "sku"], "properties": {
        "code": {"type": "string", "pattern": "^[A-Z]{3}-\\d{4}$"},
        "sku": {"type": "string", "pattern": "^(ab|cd)[0-9]+$", "maxLength": 6}}}"##,
        "{}",
    );
    let code = body["code"].as_str().unwrap();
    assert!(
        regex::Regex::new(r"^[A-Z]{3}-\d{4}$")
            .unwrap()
            .is_match(code),
        "{code}"
    );
    let sku = body["sku"].as_str().unwrap();
    assert!(
        regex::Regex::new(r"^(ab|cd)[0-9]+$").unwrap().is_match(sku),
        "{sku}"
    );
    assert!(sku.len() <= 6, "{sku}");
}

#[test]
fn self_referencing_one_of_terminates() {
    let components =
        r##"{"Loop": {"oneOf": [{"$ref": "#/components/schemas/Loop"}, {"type": "string"}]}}"##;
    let body = generated(
        "3.0.3",
        r##"{"$ref": "#/components/schemas/Loop"}"##,
        components,
    );
    assert!(body.is_string(), "{body}");
}
