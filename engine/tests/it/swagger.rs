//! Swagger 2.0 documents converted to the OpenAPI 3.0 layout.

use serde_json::json;

use crate::common::{get, header, json, mock};

const SWAGGER_DOCUMENT: &str = r##"
swagger: "2.0"
info: {title: legacy, version: "1"}
basePath: /api
produces: [application/json]
paths:
  /pets/{id}:
    get:
      parameters:
        - {name: id, in: path, required: true, type: integer}
      responses:
        "200":
          description: ok
          schema: {$ref: "#/definitions/Pet"}
          headers:
            X-Count: {type: integer, minimum: 3}
  /status:
    get:
      produces: [text/plain]
      responses:
        "200":
          description: ok
          examples:
            text/plain: running
definitions:
  Pet:
    type: object
    required: [id, name]
    properties:
      id: {type: integer, minimum: 7}
      name: {type: string, example: Rex}
"##;

#[test]
fn swagger_definitions_and_base_path() {
    let mock = mock(SWAGGER_DOCUMENT);
    let response = get(&mock, "/api/pets/1");
    assert_eq!(json(&response), json!({"id": 7, "name": "Rex"}));
    assert_eq!(header(&response, "x-count"), Some("3"));
    assert_eq!(
        json(&get(&mock, "/pets/1")),
        json!({"id": 7, "name": "Rex"})
    );
}

#[test]
fn swagger_examples_and_produces() {
    let mock = mock(SWAGGER_DOCUMENT);
    let response = get(&mock, "/api/status");
    assert_eq!(header(&response, "content-type"), Some("text/plain"));
    assert_eq!(&response.body[..], b"running");
}

#[test]
fn swagger_discriminator_names_subtype() {
    let document = r##"
swagger: "2.0"
info: {title: legacy, version: "1"}
paths:
  /cat:
    get:
      responses:
        "200": {description: ok, schema: {$ref: "#/definitions/Cat"}}
definitions:
  Pet:
    type: object
    discriminator: petType
    required: [petType]
    properties:
      petType: {type: string}
  Cat:
    allOf:
      - $ref: "#/definitions/Pet"
      - type: object
        properties:
          huntingSkill: {type: string, enum: [lazy, aggressive]}
"##;
    let mock = mock(document);
    let body = json(&get(&mock, "/cat"));
    assert_eq!(body["petType"], "Cat");
    assert_eq!(body["huntingSkill"], "lazy");
}
