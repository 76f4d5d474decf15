//! The MockForge engine: compiles an OpenAPI document into an immutable [`Mock`] that builds
//! mock responses to requests. No I/O and no global state: the same document and request give
//! the same response.
//!
//! Modules by concept:
//! - `document`: JSON or YAML text to a `serde_json::Value` tree, version detection, `$ref`
//!   resolution and diagnostics with JSON pointers. `swagger` converts Swagger 2.0 documents to
//!   the OpenAPI 3.0 layout.
//! - `schema`: the normalised schema model, an arena of lowered schemas with `allOf` merged.
//! - `router`: the segment trie that matches raw request paths.
//! - `negotiate`: choice of response status and media type.
//! - `generate`: deterministic values from schemas (`pattern` for regular expressions).
//! - `validate`: request checks for the `validation` option.
//! - `compile` builds a `mock`, which turns a request into a response (`xml` renders XML bodies
//!   and `template` expands request placeholders).

mod checks;
mod compile;
mod describe;
mod document;
mod format;
mod generate;
mod mock;
mod negotiate;
mod options;
mod paging;
mod pattern;
mod router;
mod schema;
mod swagger;
mod template;
mod validate;
mod xml;

use serde::Serialize;

pub use compile::compile;
pub use describe::{ResponseSchema, SampleRequest};
pub use mock::{Mock, MockError, MockRequest, MockResponse, PAGE_CUT_HEADER, VALIDATION_WARNING_HEADER};
pub use options::{MockOptions, Validation};

/// Severity of a compile-time finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// A finding about a document, located by a JSON pointer into it (for example
/// `/paths/~1pets~1{petId}/get/responses/200`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub pointer: String,
    pub message: String,
}

/// A document that cannot be served; `diagnostics` lists each problem, errors first.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the OpenAPI document is invalid: {} problem(s)", diagnostics.len())]
pub struct CompileError {
    pub diagnostics: Vec<Diagnostic>,
}

/// A compiled document with the warnings found while compiling it.
pub struct Compiled {
    pub mock: Mock,
    pub warnings: Vec<Diagnostic>,
}
