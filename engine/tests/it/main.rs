//! Integration tests of the engine's public API, one binary with a module per concept.

mod common;
mod corpus;
mod corpus_operations;
mod documents;
mod generation;
mod hard_cases;
mod negotiation;
mod options;
mod paging;
mod request_checks;
mod responses;
mod routing;
mod swagger;
mod validation;
