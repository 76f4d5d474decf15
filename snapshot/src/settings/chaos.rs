//! The `chaos` setting of a deployment's `config_json`:
//!
//! ```json
//! {"latency": {"fixed_ms": 100},
//!  "error_rate": 0.1, "error_statuses": [500, 503],
//!  "fault": {"kind": "reset", "rate": 0.05},
//!  "operations": ["listPets", "getPet"]}
//! ```
//!
//! `latency` is either `{"fixed_ms": N}` or `{"min_ms": A, "max_ms": B, "distribution":
//! "uniform" | "normal"}`. `operations`, when present, limits chaos to the operations with these
//! `operationId`s. The control plane rejects an invalid setting when a deployment is created,
//! and an edge fails a deployment with one. The edge draws the delays and failures per request.

use std::time::Duration;

use http::{Method, StatusCode};
use mockforge_engine::Mock;
use serde_json::Value;

use super::operations::OperationFilter;
use super::{parse_present, parse_present_all, unknown_key_message};

/// Prefix of the errors of [`ChaosSettings::from_config`] and
/// [`ChaosSettings::resolve_operations`], which an edge reports as the failure reason.
const INVALID: &str = "the chaos configuration is invalid";

/// Maximum injected latency, so a typo cannot hold connections for hours.
pub const MAX_LATENCY_MS: u64 = 60_000;

/// Injected latency.
#[derive(Debug, Clone, PartialEq)]
pub enum Latency {
    Fixed(Duration),
    Uniform { min: Duration, max: Duration },
    /// Normal distribution centred between `min` and `max` with a standard deviation of a sixth
    /// of the range, clamped to the range.
    Normal { min: Duration, max: Duration },
}

/// Kind of connection fault injected in place of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Resets the connection: the edge sets SO_LINGER to 0 and closes the socket, so the
    /// client gets a TCP RST. On HTTP/2 only the request's stream ends.
    Reset,
    /// Closes the connection cleanly without sending a response.
    EmptyResponse,
}

/// A deployment's chaos settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ChaosSettings {
    pub latency: Option<Latency>,
    /// Share of requests, from 0 to 1, that get one of `error_statuses` as the response.
    pub error_rate: f64,
    pub error_statuses: Vec<StatusCode>,
    pub fault: Option<(FaultKind, f64)>,
    /// The operations chaos applies to, or `None` for every request.
    pub operations: Option<OperationFilter>,
}

impl ChaosSettings {
    /// Parses `config.chaos`. Returns `Ok(None)` when the key is absent or null.
    pub fn from_config(config: &Value) -> Result<Option<ChaosSettings>, String> {
        Self::parse_problem(config).map_err(|problems| format!("{INVALID}: {}", problems.join("; ")))
    }

    /// Checks the `operations` list against the compiled document.
    pub fn resolve_operations(&mut self, mock: &Mock) -> Result<(), String> {
        self.resolve_problem(mock)
            .map_err(|problem| format!("{INVALID}: {problem}"))
    }

    /// Parses `config.chaos`, with every problem found, each of the form
    /// `/config_json/chaos/POINTER: message`.
    pub(super) fn parse_problem(config: &Value) -> Result<Option<ChaosSettings>, Vec<String>> {
        let Some(chaos) = config.get("chaos").filter(|value| !value.is_null()) else {
            return Ok(None);
        };
        parse(chaos).map(Some).map_err(|problems| {
            problems
                .into_iter()
                .map(|problem| format!("/config_json/chaos{problem}"))
                .collect()
        })
    }

    /// Resolves the `operations` list, with an error of the form
    /// `/config_json/chaos/operations/N: message`.
    pub(super) fn resolve_problem(&mut self, mock: &Mock) -> Result<(), String> {
        match &mut self.operations {
            Some(filter) => filter
                .resolve(mock)
                .map_err(|problem| format!("/config_json/chaos{problem}")),
            None => Ok(()),
        }
    }

    /// Returns true when chaos applies to a request with this method and path below the
    /// deployment.
    pub fn applies_to(&self, mock: &Mock, method: &Method, path: &str) -> bool {
        self.operations
            .as_ref()
            .is_none_or(|filter| filter.matches(mock, method, path))
    }
}

/// Parses the chaos object, collecting one problem per invalid key. Problems start with the
/// JSON pointer below `/config_json/chaos`.
fn parse(chaos: &Value) -> Result<ChaosSettings, Vec<String>> {
    let Value::Object(object) = chaos else {
        return Err(vec![format!(": must be an object, not {chaos}")]);
    };
    const CHAOS_KEYS: [&str; 5] = ["latency", "error_rate", "error_statuses", "fault", "operations"];
    let mut problems: Vec<String> = object
        .keys()
        .filter(|key| !CHAOS_KEYS.contains(&key.as_str()))
        .map(|key| format!("/{key}: {}", unknown_key_message(key, &CHAOS_KEYS)))
        .collect();

    let latency = parse_present_all(object.get("latency"), parse_latency, &mut problems);
    let error_rate = parse_present(object.get("error_rate"), |value| parse_rate(value, "/error_rate"), &mut problems);
    let error_statuses = parse_present(object.get("error_statuses"), parse_statuses, &mut problems);
    let fault = parse_present_all(object.get("fault"), parse_fault, &mut problems);
    let operations = parse_present(object.get("operations"), OperationFilter::parse, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ChaosSettings {
        latency,
        error_rate: error_rate.unwrap_or(0.0),
        error_statuses: error_statuses.unwrap_or_else(|| vec![StatusCode::INTERNAL_SERVER_ERROR]),
        fault,
        operations,
    })
}

fn parse_latency(latency: &Value) -> Result<Latency, Vec<String>> {
    let Value::Object(object) = latency else {
        return Err(vec![format!("/latency: must be an object, not {latency}")]);
    };
    let mut problems = Vec::new();
    if let Some(fixed) = object.get("fixed_ms") {
        for key in object.keys().filter(|key| key.as_str() != "fixed_ms") {
            problems.push(format!(
                "/latency/{key}: cannot be combined with fixed_ms; use fixed_ms alone, or min_ms, max_ms and distribution"
            ));
        }
        let fixed = parse_millis(fixed, "/latency/fixed_ms").map_err(|problem| problems.push(problem));
        return match fixed {
            Ok(fixed) if problems.is_empty() => Ok(Latency::Fixed(fixed)),
            _ => Err(problems),
        };
    }

    for key in object.keys() {
        if !matches!(key.as_str(), "min_ms" | "max_ms" | "distribution") {
            problems.push(format!(
                "/latency/{key}: unknown key `{key}`; expected fixed_ms, or min_ms, max_ms and distribution"
            ));
        }
    }
    let mut millis = |key: &str| {
        let pointer = format!("/latency/{key}");
        let Some(value) = object.get(key) else {
            problems.push(format!(
                "{pointer}: missing; set min_ms and max_ms, or use fixed_ms alone"
            ));
            return None;
        };
        parse_millis(value, &pointer)
            .map_err(|problem| problems.push(problem))
            .ok()
    };
    let min = millis("min_ms");
    let max = millis("max_ms");
    let normal = match object.get("distribution") {
        None | Some(Value::Null) => Some(false),
        Some(Value::String(name)) if name == "uniform" => Some(false),
        Some(Value::String(name)) if name == "normal" => Some(true),
        Some(other) => {
            problems.push(format!(
                "/latency/distribution: {other} is not supported; use \"uniform\" or \"normal\""
            ));
            None
        }
    };
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            problems.push(format!(
                "/latency: min_ms ({}) is greater than max_ms ({})",
                min.as_millis(),
                max.as_millis()
            ));
        }
    }
    match (min, max, normal) {
        (Some(min), Some(max), Some(normal)) if problems.is_empty() => Ok(if normal {
            Latency::Normal { min, max }
        } else {
            Latency::Uniform { min, max }
        }),
        _ => Err(problems),
    }
}

fn parse_millis(value: &Value, pointer: &str) -> Result<Duration, String> {
    match value.as_u64() {
        Some(ms) if ms <= MAX_LATENCY_MS => Ok(Duration::from_millis(ms)),
        Some(ms) => Err(format!(
            "{pointer}: {ms} exceeds the maximum of {MAX_LATENCY_MS} ms"
        )),
        None => Err(format!(
            "{pointer}: must be a whole number of milliseconds, not {value}"
        )),
    }
}

fn parse_rate(value: &Value, pointer: &str) -> Result<f64, String> {
    match value.as_f64() {
        Some(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{pointer}: must be a number from 0 to 1, not {value}")),
    }
}

fn parse_statuses(value: &Value) -> Result<Vec<StatusCode>, String> {
    let Value::Array(items) = value else {
        return Err(format!("/error_statuses: must be an array, not {value}"));
    };
    if items.is_empty() {
        return Err("/error_statuses: must list at least one status".to_owned());
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            item.as_u64()
                .filter(|code| (400..=599).contains(code))
                .and_then(|code| StatusCode::from_u16(code as u16).ok())
                .ok_or_else(|| {
                    format!("/error_statuses/{index}: must be a status from 400 to 599, not {item}")
                })
        })
        .collect()
}

fn parse_fault(value: &Value) -> Result<(FaultKind, f64), Vec<String>> {
    let Value::Object(object) = value else {
        return Err(vec![format!("/fault: must be an object, not {value}")]);
    };
    const FAULT_KEYS: [&str; 2] = ["kind", "rate"];
    let mut problems: Vec<String> = object
        .keys()
        .filter(|key| !FAULT_KEYS.contains(&key.as_str()))
        .map(|key| format!("/fault/{key}: {}", unknown_key_message(key, &FAULT_KEYS)))
        .collect();
    let kind = match object.get("kind") {
        Some(Value::String(kind)) if kind == "reset" => Some(FaultKind::Reset),
        Some(Value::String(kind)) if kind == "empty_response" => Some(FaultKind::EmptyResponse),
        Some(other) => {
            problems.push(format!(
                "/fault/kind: must be \"reset\" or \"empty_response\", not {other}"
            ));
            None
        }
        None => {
            problems.push(
                "/fault/kind: missing; set \"reset\" or \"empty_response\"".to_owned(),
            );
            None
        }
    };
    let rate = match object.get("rate") {
        None | Some(Value::Null) => Some(1.0),
        Some(rate) => parse_rate(rate, "/fault/rate")
            .map_err(|problem| problems.push(problem))
            .ok(),
    };
    match (kind, rate) {
        (Some(kind), Some(rate)) if problems.is_empty() => Ok((kind, rate)),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_chaos(chaos: Value) -> Result<Option<ChaosSettings>, String> {
        ChaosSettings::from_config(&json!({ "chaos": chaos }))
    }

    #[test]
    fn absent_chaos_is_none() {
        assert_eq!(ChaosSettings::from_config(&json!({})), Ok(None));
        assert_eq!(ChaosSettings::from_config(&Value::Null), Ok(None));
    }

    #[test]
    fn full_config_parses() {
        let config = parse_chaos(json!({
            "latency": {"min_ms": 10, "max_ms": 200, "distribution": "normal"},
            "error_rate": 0.1,
            "error_statuses": [500, 503],
            "fault": {"kind": "reset", "rate": 0.05}
        }))
        .unwrap()
        .unwrap();
        assert_eq!(
            config.latency,
            Some(Latency::Normal {
                min: Duration::from_millis(10),
                max: Duration::from_millis(200)
            })
        );
        assert_eq!(config.error_rate, 0.1);
        assert_eq!(
            config.error_statuses,
            [StatusCode::INTERNAL_SERVER_ERROR, StatusCode::SERVICE_UNAVAILABLE]
        );
        assert_eq!(config.fault, Some((FaultKind::Reset, 0.05)));
    }

    #[test]
    fn every_problem_is_reported() {
        let error = parse_chaos(json!({
            "error_rate": 2,
            "fault": {"kind": "explode"},
            "colour": "red"
        }))
        .unwrap_err();
        assert!(error.contains("/config_json/chaos/colour: unknown key `colour`"), "{error}");
        assert!(error.contains("/config_json/chaos/error_rate: must be a number from 0 to 1"), "{error}");
        assert!(error.contains("/config_json/chaos/fault/kind"), "{error}");
        assert_eq!(error.matches("; /config_json/chaos").count(), 2, "{error}");
    }

    #[test]
    fn every_latency_and_fault_problem_is_reported() {
        let error = parse_chaos(json!({
            "latency": {"min_ms": -1, "max_ms": "slow", "distribution": "pareto", "jitter": 3},
            "fault": {"kind": "explode", "rate": 7, "chance": 0.5}
        }))
        .unwrap_err();
        for expected in [
            "/config_json/chaos/latency/min_ms: must be a whole number of milliseconds, not -1",
            "/config_json/chaos/latency/max_ms: must be a whole number of milliseconds, not \"slow\"",
            "/config_json/chaos/latency/distribution: \"pareto\" is not supported",
            "/config_json/chaos/latency/jitter: unknown key `jitter`",
            "/config_json/chaos/fault/kind: must be \"reset\" or \"empty_response\", not \"explode\"",
            "/config_json/chaos/fault/rate: must be a number from 0 to 1, not 7",
            "/config_json/chaos/fault/chance: unknown key `chance`",
        ] {
            assert!(error.contains(expected), "{expected} missing from {error}");
        }
        assert_eq!(error.matches("/config_json/chaos/").count(), 7, "{error}");

        let error = parse_chaos(json!({"latency": {"min_ms": 5}, "fault": {"rate": 0.5}}))
            .unwrap_err();
        for expected in [
            "/config_json/chaos/latency/max_ms: missing; set min_ms and max_ms, or use fixed_ms alone",
            "/config_json/chaos/fault/kind: missing; set \"reset\" or \"empty_response\"",
        ] {
            assert!(error.contains(expected), "{expected} missing from {error}");
        }

        let error = parse_chaos(json!({"latency": {"fixed_ms": 10, "min_ms": 1, "max_ms": 2}}))
            .unwrap_err();
        assert!(
            error.contains("/config_json/chaos/latency/min_ms: cannot be combined with fixed_ms"),
            "{error}"
        );
        assert!(
            error.contains("/config_json/chaos/latency/max_ms: cannot be combined with fixed_ms"),
            "{error}"
        );
    }

    #[test]
    fn invalid_configs_name_the_problem() {
        let cases = [
            (json!("slow"), "/config_json/chaos: must be an object"),
            (json!({"error_rate": 1.5}), "/config_json/chaos/error_rate"),
            (json!({"error_statuses": [200]}), "/config_json/chaos/error_statuses/0"),
            (json!({"latency": {"min_ms": 5, "max_ms": 1}}), "greater than max_ms"),
            (json!({"latency": {"fixed_ms": 999999}}), "exceeds the maximum"),
            (
                json!({"latency": {"min_ms": 1, "max_ms": 2, "distribution": "pareto"}}),
                "/config_json/chaos/latency/distribution",
            ),
            (json!({"fault": {"kind": "explode"}}), "/config_json/chaos/fault/kind"),
            (
                json!({"fault": {"kind": "reset", "chance": 0.5}}),
                "/config_json/chaos/fault/chance: unknown key `chance`; the known keys are kind and rate",
            ),
            (json!({"colour": "red"}), "/config_json/chaos/colour: unknown key `colour`"),
            (
                json!({"error-rate": 0.5}),
                "/config_json/chaos/error-rate: unknown key `error-rate`; did you mean `error_rate`?",
            ),
            (json!({"operations": []}), "/config_json/chaos/operations: must list"),
            (json!({"operations": [1]}), "/config_json/chaos/operations/0"),
        ];
        for (chaos, expected) in cases {
            let error = parse_chaos(chaos.clone()).unwrap_err();
            assert!(error.contains(expected), "{chaos}: {error}");
            assert!(
                error.starts_with("the chaos configuration is invalid"),
                "{error}"
            );
        }
    }
}
