//! Per-deployment settings read from a deployment's `config_json` object.

use serde_json::Value;

use crate::document::{diagnostic, kind_name};
use crate::{Diagnostic, Severity};

/// The request validation mode. Invalid percent-encoding in the path is rejected in every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Validation {
    Off,
    Warn,
    #[default]
    Enforce,
}

/// Per-deployment settings, read from a deployment's `config_json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockOptions {
    /// Respond to CORS preflights and add CORS headers to responses. Default: on.
    pub cors_enabled: bool,
    /// Expand request placeholders such as `{{request.path.id}}` in response bodies (see the
    /// `template` module for the list). Default: off.
    pub response_template_expand: bool,
    /// Request validation mode. Default: enforce. `enforce` responds to an invalid request with the
    /// operation's own 422 or 400 response, else a 422 `application/problem+json` document,
    /// `warn` serves it and lists the violations in the `x-mockforge-validation` response
    /// header, and `off` skips the checks.
    pub validation: Validation,
    /// Treat `/users/` and `/users` as the same path. Default: off.
    pub ignore_trailing_slash: bool,
    /// Return `NotAcceptable` (406) when no declared media type satisfies `Accept`. When off,
    /// such a request gets the first declared media type. Default: on.
    pub strict_accept: bool,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            cors_enabled: true,
            response_template_expand: false,
            validation: Validation::Enforce,
            ignore_trailing_slash: false,
            strict_accept: true,
        }
    }
}

impl MockOptions {
    /// Reads the engine's keys from a deployment's `config_json` object. Keys owned by other
    /// components (such as `plugins`, `chaos` or `proxy`) are ignored, and a missing key keeps
    /// its default. A value of the wrong type gives a diagnostic at `/config_json/KEY`.
    pub fn from_config(config: &Value) -> Result<MockOptions, Vec<Diagnostic>> {
        let mut options = MockOptions::default();
        let object = match config {
            Value::Object(object) => object,
            Value::Null => return Ok(options),
            other => {
                return Err(vec![diagnostic(
                    Severity::Error,
                    "/config_json",
                    format!(
                        "`config_json` is {} but must be an object",
                        kind_name(other)
                    ),
                )])
            }
        };

        let mut errors = Vec::new();
        let mut read_bool = |key: &str, target: &mut bool| match object.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Bool(flag)) => *target = *flag,
            Some(other) => errors.push(diagnostic(
                Severity::Error,
                format!("/config_json/{key}"),
                format!("`{key}` is {other} but must be a boolean (true or false)"),
            )),
        };
        read_bool("cors_enabled", &mut options.cors_enabled);
        read_bool(
            "response_template_expand",
            &mut options.response_template_expand,
        );
        read_bool("ignore_trailing_slash", &mut options.ignore_trailing_slash);
        read_bool("strict_accept", &mut options.strict_accept);

        match object.get("validation") {
            None | Some(Value::Null) => {}
            Some(Value::String(mode)) if mode == "off" => options.validation = Validation::Off,
            Some(Value::String(mode)) if mode == "warn" => options.validation = Validation::Warn,
            Some(Value::String(mode)) if mode == "enforce" => {
                options.validation = Validation::Enforce
            }
            Some(other) => errors.push(diagnostic(
                Severity::Error,
                "/config_json/validation",
                format!(
                    "`validation` is {other} but must be one of \"off\", \"warn\" or \"enforce\""
                ),
            )),
        }

        if errors.is_empty() {
            Ok(options)
        } else {
            Err(errors)
        }
    }
}
