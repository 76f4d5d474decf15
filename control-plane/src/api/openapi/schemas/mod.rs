//! Schemas of the OpenAPI document that no handler type carries: the error body, and response
//! bodies that handlers build with `serde_json::json!`.

mod accounts;
mod errors;
mod marketplace;
mod platform;

pub use accounts::*;
pub use errors::*;
pub use marketplace::*;
pub use platform::*;

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};

/// Returns the schema of an inline OpenAPI document: a JSON object, or JSON or YAML text.
pub fn inline_document_schema() -> Schema {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Object))
        .item(ObjectBuilder::new().schema_type(Type::String))
        .description(Some("A Swagger 2.0, OpenAPI 3.0 or 3.1 document: a JSON object, or JSON or YAML text."))
        .into()
}
