//! Integration tests of the engine's public API, one binary with a module per concept.

mod common;
mod corpus;
mod documents;
mod generation;
mod negotiation;
mod options;
mod responses;
mod routing;
mod swagger;
mod validation;
