//! Parsing and validation of a deployment's settings, its `config_json` object.
//!
//! The control plane rejects invalid settings when a deployment is created, and an edge fails
//! a deployment whose settings are invalid, because settings may come from an older control
//! plane. Both sides use this module, so they accept exactly the same settings. Every problem
//! names the JSON pointer of the offending value below `/config_json`.

mod chaos;
mod operations;
mod proxy;

pub use chaos::{ChaosSettings, FaultKind, Latency, MAX_LATENCY_MS};
pub use operations::OperationFilter;
pub use proxy::{ProxyMode, ProxySettings};

use mockforge_engine::{Diagnostic, Mock, MockOptions, Severity};
use serde_json::Value;

/// Every top-level key of `config_json`: the engine's mock options (see
/// [`MockOptions::from_config`]), then the keys the edge reads.
pub const KNOWN_KEYS: [&str; 8] = [
    "validation",
    "cors_enabled",
    "response_template_expand",
    "ignore_trailing_slash",
    "strict_accept",
    "chaos",
    "proxy",
    "plugins",
];

/// Every key of one `plugins` entry. The control plane writes `checksum` when it creates the
/// deployment.
pub const PLUGIN_ENTRY_KEYS: [&str; 4] = ["name", "version", "config", "checksum"];

/// The parsed settings of one deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentSettings {
    pub options: MockOptions,
    pub chaos: Option<ChaosSettings>,
    pub proxy: Option<ProxySettings>,
}

impl DeploymentSettings {
    /// Parses and checks `config`, without the document: unknown keys, the mock options, and
    /// the `chaos` and `proxy` settings. Returns every problem found, each at its JSON pointer.
    /// The `operations` lists are checked later by [`DeploymentSettings::resolve_operations`].
    pub fn from_config(config: &Value) -> Result<DeploymentSettings, Vec<Diagnostic>> {
        let mut problems = unknown_keys(config);
        let options = MockOptions::from_config(config).unwrap_or_else(|diagnostics| {
            problems.extend(diagnostics);
            MockOptions::default()
        });
        // The engine's diagnostic for a non-object `config_json` covers every setting.
        if !problems.is_empty() && !config.is_object() {
            return Err(problems);
        }
        let chaos = ChaosSettings::parse_problem(config).unwrap_or_else(|found| {
            problems.extend(found.iter().map(|problem| problem_diagnostic(problem)));
            None
        });
        let proxy = ProxySettings::parse_problem(config).unwrap_or_else(|found| {
            problems.extend(found.iter().map(|problem| problem_diagnostic(problem)));
            None
        });
        if problems.is_empty() {
            Ok(DeploymentSettings {
                options,
                chaos,
                proxy,
            })
        } else {
            Err(problems)
        }
    }

    /// Checks the `operations` lists of `chaos` and `proxy` against the compiled document. An
    /// unknown operationId is a problem that lists the ids the document declares.
    pub fn resolve_operations(&mut self, mock: &Mock) -> Result<(), Vec<Diagnostic>> {
        let mut problems = Vec::new();
        if let Some(chaos) = &mut self.chaos {
            if let Err(problem) = chaos.resolve_problem(mock) {
                problems.push(problem_diagnostic(&problem));
            }
        }
        if let Some(proxy) = &mut self.proxy {
            if let Err(problem) = proxy.resolve_problem(mock) {
                problems.push(problem_diagnostic(&problem));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Finds the keys of `config` that no component reads: unknown top-level keys and unknown keys
/// inside each `plugins` entry. The `chaos` and `proxy` parsers reject unknown keys inside
/// those settings themselves. A value that is not an object has no keys to check.
pub fn unknown_keys(config: &Value) -> Vec<Diagnostic> {
    let Value::Object(object) = config else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    for key in object.keys() {
        if !KNOWN_KEYS.contains(&key.as_str()) {
            problems.push(error(
                format!("/config_json/{}", pointer_token(key)),
                unknown_key_message(key, &KNOWN_KEYS),
            ));
        }
    }
    if let Some(Value::Array(entries)) = object.get("plugins") {
        for (index, entry) in entries.iter().enumerate() {
            let Value::Object(entry) = entry else {
                continue;
            };
            for key in entry.keys() {
                if !PLUGIN_ENTRY_KEYS.contains(&key.as_str()) {
                    problems.push(error(
                        format!("/config_json/plugins/{index}/{}", pointer_token(key)),
                        unknown_key_message(key, &PLUGIN_ENTRY_KEYS),
                    ));
                }
            }
        }
    }
    problems
}

/// Builds the message for an unknown key: the key, the closest known key when one is within a
/// small edit distance, and the known keys.
pub(crate) fn unknown_key_message(key: &str, known: &[&str]) -> String {
    let list = match known.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => known.join(""),
    };
    match closest_key(key, known) {
        Some(suggestion) => format!(
            "unknown key `{key}`; did you mean `{suggestion}`? The known keys are {list}"
        ),
        None => format!("unknown key `{key}`; the known keys are {list}"),
    }
}

/// Returns the known key with the smallest edit distance to `key`, if that distance is at most
/// a third of the longer name's length (at least 1, at most 3). Case differences are ignored,
/// so `Chaos` suggests `chaos`.
fn closest_key<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let lowered = key.to_lowercase();
    known
        .iter()
        .map(|candidate| (edit_distance(&lowered, candidate), *candidate))
        .filter(|(distance, candidate)| {
            let longer = lowered.chars().count().max(candidate.len());
            *distance <= (longer / 3).clamp(1, 3)
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Returns the optimal string alignment distance: the number of single-character insertions,
/// deletions, substitutions and transpositions of adjacent characters that turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j] is the distance between the first i characters of a and the first j of b.
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for j in 0..=b.len() {
        rows[0][j] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut distance = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                distance = distance.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = distance;
        }
    }
    rows[a.len()][b.len()]
}

/// Escapes a key as a JSON pointer token (RFC 6901): `~` becomes `~0` and `/` becomes `~1`.
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Splits a `POINTER: message` problem of the `chaos` and `proxy` parsers into a diagnostic.
// NOTE: the split is at the first ": ", so an unknown key inside `chaos` or `proxy` that itself
// contains ": " moves the rest of that key into the message.
fn problem_diagnostic(problem: &str) -> Diagnostic {
    match problem.split_once(": ") {
        Some((pointer, message)) => error(pointer.to_owned(), message.to_owned()),
        None => error(String::new(), problem.to_owned()),
    }
}

/// Parses a setting that may be absent or null. A problem goes to `problems` and gives `None`.
pub(crate) fn parse_present<T>(
    value: Option<&Value>,
    parse: impl FnOnce(&Value) -> Result<T, String>,
    problems: &mut Vec<String>,
) -> Option<T> {
    match value {
        None | Some(Value::Null) => None,
        Some(value) => parse(value).map_err(|problem| problems.push(problem)).ok(),
    }
}

/// Parses `value` like [`parse_present`] with a parser that reports every problem it finds.
pub(crate) fn parse_present_all<T>(
    value: Option<&Value>,
    parse: impl FnOnce(&Value) -> Result<T, Vec<String>>,
    problems: &mut Vec<String>,
) -> Option<T> {
    match value {
        None | Some(Value::Null) => None,
        Some(value) => parse(value).map_err(|found| problems.extend(found)).ok(),
    }
}

fn error(pointer: String, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        pointer,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DOCUMENT: &str = r#"{
      "openapi": "3.0.3",
      "info": {"title": "Pets", "version": "1"},
      "paths": {
        "/pets": {"get": {"operationId": "listPets", "responses": {"200": {"description": "ok"}}}},
        "/pets/{id}": {"get": {"operationId": "getPet", "responses": {"200": {"description": "ok"}}}}
      }
    }"#;

    fn problems(config: Value) -> Vec<(String, String)> {
        match DeploymentSettings::from_config(&config) {
            Ok(settings) => panic!("{config} was accepted as {settings:?}"),
            Err(problems) => problems
                .into_iter()
                .map(|problem| (problem.pointer, problem.message))
                .collect(),
        }
    }

    #[test]
    fn full_example_is_accepted() {
        let config = json!({
            "validation": "warn",
            "cors_enabled": true,
            "response_template_expand": true,
            "ignore_trailing_slash": true,
            "strict_accept": false,
            "chaos": {
                "latency": {"min_ms": 50, "max_ms": 400, "distribution": "normal"},
                "error_rate": 0.1,
                "error_statuses": [500, 503],
                "fault": {"kind": "reset", "rate": 0.02},
                "operations": ["listPets", "getPet"]
            },
            "proxy": {"upstream": "https://api.example.com/v1", "mode": "unmatched"},
            "plugins": [
                {"name": "add-header", "version": "1.0.0", "checksum": "sha256:00", "config": {}}
            ]
        });
        let mut settings = DeploymentSettings::from_config(&config).unwrap();
        assert!(settings.chaos.is_some());
        assert!(settings.proxy.is_some());
        let mock = mockforge_engine::compile(DOCUMENT, settings.options.clone())
            .unwrap()
            .mock;
        assert_eq!(settings.resolve_operations(&mock), Ok(()));
    }

    #[test]
    fn absent_or_null_config_is_accepted() {
        for config in [json!({}), Value::Null] {
            let settings = DeploymentSettings::from_config(&config).unwrap();
            assert_eq!(settings.options, MockOptions::default());
            assert_eq!(settings.chaos, None);
            assert_eq!(settings.proxy, None);
        }
    }

    #[test]
    fn misspelt_key_gets_suggestion() {
        let found = problems(json!({"chaoss": {"error_rate": 0.5}}));
        assert_eq!(found.len(), 1, "{found:?}");
        let (pointer, message) = &found[0];
        assert_eq!(pointer, "/config_json/chaoss");
        assert!(message.starts_with("unknown key `chaoss`; did you mean `chaos`?"), "{message}");
        assert!(
            message.ends_with(
                "The known keys are validation, cors_enabled, response_template_expand, \
                 ignore_trailing_slash, strict_accept, chaos, proxy and plugins"
            ),
            "{message}"
        );
    }

    #[test]
    fn suggestions_need_a_close_key() {
        let cases = [
            ("Chaos", Some("chaos")),
            ("cahos", Some("chaos")),
            ("proxi", Some("proxy")),
            ("plugin", Some("plugins")),
            ("validate", Some("validation")),
            ("cors", None),
            ("seed", None),
            ("timeout", None),
        ];
        for (key, expected) in cases {
            assert_eq!(closest_key(key, &KNOWN_KEYS), expected, "{key}");
        }
        let found = problems(json!({"seed": 1}));
        assert_eq!(found[0].1, "unknown key `seed`; the known keys are validation, cors_enabled, response_template_expand, ignore_trailing_slash, strict_accept, chaos, proxy and plugins");
    }

    #[test]
    fn pointer_escapes_key() {
        let found = problems(json!({"a/b~c": true}));
        assert_eq!(found[0].0, "/config_json/a~1b~0c");
    }

    #[test]
    fn unknown_plugin_entry_key() {
        let found = problems(json!({"plugins": [
            {"name": "a", "version": "1.0.0"},
            {"name": "b", "version": "1.0.0", "confg": {}}
        ]}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "/config_json/plugins/1/confg");
        assert!(found[0].1.starts_with("unknown key `confg`; did you mean `config`?"), "{}", found[0].1);
    }

    #[test]
    fn every_problem_is_listed() {
        let found = problems(json!({
            "strict": true,
            "cors_enabled": "yes",
            "chaos": {"error_rate": 2},
            "proxy": {"upstream": "ftp://x"}
        }));
        let pointers: Vec<&str> = found.iter().map(|(pointer, _)| pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/config_json/strict",
                "/config_json/cors_enabled",
                "/config_json/chaos/error_rate",
                "/config_json/proxy/upstream"
            ]
        );
        assert_eq!(found[2].1, "must be a number from 0 to 1, not 2");
        assert_eq!(found[3].1, "\"ftp://x\" must start with http:// or https://");
    }

    #[test]
    fn non_object_config_is_one_problem() {
        let found = problems(json!([1]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "/config_json");
    }

    #[test]
    fn unknown_operation_is_a_problem() {
        let config = json!({
            "chaos": {"operations": ["listPets"]},
            "proxy": {"upstream": "http://x", "operations": ["getPet", "deletePet"]}
        });
        let mut settings = DeploymentSettings::from_config(&config).unwrap();
        let mock = mockforge_engine::compile(DOCUMENT, settings.options.clone())
            .unwrap()
            .mock;
        let found = settings.resolve_operations(&mock).unwrap_err();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pointer, "/config_json/proxy/operations/1");
        assert_eq!(
            found[0].message,
            "the document has no operation with operationId \"deletePet\"; valid operation ids: \"listPets\", \"getPet\""
        );
    }
}
