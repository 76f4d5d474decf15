//! Page-size and page-position query parameters in generated list responses.

use serde_json::Value;

use crate::common::{get, json, mock};

/// A list operation returning a bare array, and one returning a Stripe-style list object.
const LISTS: &str = r##"{
  "openapi": "3.0.3",
  "info": {"title": "lists", "version": "1"},
  "paths": {
    "/pets": {"get": {
      "parameters": [
        {"name": "per_page", "in": "query", "schema": {"type": "integer", "maximum": 100}},
        {"name": "page", "in": "query", "schema": {"type": "integer"}}
      ],
      "responses": {"200": {"description": "ok", "content": {"application/json": {"schema":
        {"type": "array", "maxItems": 50, "items": {"$ref": "#/components/schemas/Pet"}}}}}}}},
    "/charges": {"get": {
      "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}},
                     {"name": "starting_after", "in": "query", "schema": {"type": "string"}}],
      "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
        "type": "object", "required": ["object", "data", "has_more"],
        "properties": {
          "object": {"type": "string", "enum": ["list"]},
          "data": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}},
          "has_more": {"type": "boolean"}}}}}}}}},
    "/tags": {"get": {
      "parameters": [{"name": "size", "in": "query", "schema": {"type": "string"}}],
      "responses": {"200": {"description": "ok", "content": {"application/json": {"schema":
        {"type": "array", "items": {"type": "string"}}}}}}}}
  },
  "components": {"schemas": {"Pet": {"type": "object", "required": ["id", "tags"], "properties": {
    "id": {"type": "integer"},
    "tags": {"type": "array", "items": {"type": "string"}}}}}}
}"##;

fn items(body: &Value) -> &Vec<Value> {
    body.as_array().unwrap_or_else(|| panic!("body is not an array: {body}"))
}

#[test]
fn page_size_sets_array_length() {
    let mock = mock(LISTS);

    let default = json(&get(&mock, "/pets"));
    let five = json(&get(&mock, "/pets?per_page=5"));
    let zero = json(&get(&mock, "/pets?per_page=0"));

    assert_eq!(items(&default).len(), 1);
    assert_eq!(items(&five).len(), 5);
    assert_eq!(items(&zero).len(), 0);
    // Nested arrays keep their default length.
    for pet in items(&five) {
        assert_eq!(pet["tags"].as_array().unwrap().len(), 1, "{pet}");
    }
}

#[test]
fn page_size_capped_by_max_items() {
    let mock = mock(LISTS);
    // `maximum: 100` allows the request, `maxItems: 50` bounds the array.
    let response = get(&mock, "/pets?per_page=80");
    assert_eq!(items(&json(&response)).len(), 50);
    // The document's own bound is no truncation by the mock.
    assert!(!response.headers.contains_key(mockforge_engine::PAGE_CUT_HEADER));
}

#[test]
fn page_over_item_cap_is_marked() {
    let mock = mock(LISTS);
    let response = get(&mock, "/charges?limit=5000");
    let body = json(&response);
    assert_eq!(body["data"].as_array().unwrap().len(), 1000);
    assert_eq!(response.headers[mockforge_engine::PAGE_CUT_HEADER], "1000 of 5000 items");
}

#[test]
fn page_position_changes_items() {
    let mock = mock(LISTS);
    let first = json(&get(&mock, "/pets?per_page=3&page=1"));
    let second = json(&get(&mock, "/pets?per_page=3&page=2"));
    let first_again = json(&get(&mock, "/pets?page=1&per_page=3"));

    assert_eq!(items(&second).len(), 3);
    assert_ne!(first, second);
    assert_eq!(first, first_again);
}

#[test]
fn page_size_fills_list_object() {
    let mock = mock(LISTS);
    let body = json(&get(&mock, "/charges?limit=4&starting_after=ch_1"));

    assert_eq!(body["object"], "list");
    assert_eq!(body["data"].as_array().unwrap().len(), 4);
    assert!(body["has_more"].is_boolean(), "{body}");
}

#[test]
fn string_size_parameter_ignored() {
    let mock = mock(LISTS);
    // `size` is a page size only when its schema allows integers.
    let body = json(&get(&mock, "/tags?size=7"));
    assert_eq!(items(&body).len(), 1);
}

#[test]
fn page_stops_at_byte_budget() {
    // Each item is a 4,000-character string, so 1,000 items would be about 4 MB.
    let document = r##"{
      "openapi": "3.0.3",
      "info": {"title": "big", "version": "1"},
      "paths": {"/blobs": {"get": {
        "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema":
          {"type": "array", "minItems": 2,
           "items": {"type": "string", "minLength": 4000, "maxLength": 4000}}}}}}}}}
    }"##;
    let mock = mock(document);

    let response = get(&mock, "/blobs?limit=1000");
    let body = json(&response);

    let count = items(&body).len();
    assert!(count < 1000, "{count} items");
    assert!(count >= 100, "{count} items");
    assert!(response.body.len() <= 512 * 1024 + 4010, "{} bytes", response.body.len());
    assert_eq!(
        response.headers[mockforge_engine::PAGE_CUT_HEADER],
        format!("{count} of 1000 items").as_str()
    );
    // A page within the limits carries no such header.
    let small = get(&mock, "/blobs?limit=3");
    assert_eq!(items(&json(&small)).len(), 3);
    assert!(!small.headers.contains_key(mockforge_engine::PAGE_CUT_HEADER));
    // minItems wins over the budget.
    assert_eq!(items(&json(&get(&mock, "/blobs?limit=0"))).len(), 2);
}
