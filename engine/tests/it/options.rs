//! Reading `MockOptions` from a deployment's `config_json`.

use mockforge_engine::{MockOptions, Validation};
use serde_json::json;

#[test]
fn empty_config_gives_defaults() {
    let options = MockOptions::from_config(&json!({})).unwrap();
    assert_eq!(options, MockOptions::default());
    assert!(options.cors_enabled);
    assert!(!options.response_template_expand);
    assert_eq!(options.validation, Validation::Enforce);
    assert!(!options.ignore_trailing_slash);
}

#[test]
fn known_keys_read_and_unknown_ignored() {
    let config = json!({"cors_enabled": false, "response_template_expand": true, "validation": "warn",
        "ignore_trailing_slash": true, "plugins": ["x"], "chaos": {"latency_ms": 5}, "proxy": null});
    let options = MockOptions::from_config(&config).unwrap();
    assert!(!options.cors_enabled);
    assert!(options.response_template_expand);
    assert_eq!(options.validation, Validation::Warn);
    assert!(options.ignore_trailing_slash);
}

#[test]
fn wrong_types_give_pointed_diagnostics() {
    let config = json!({"cors_enabled": "yes", "validation": "strict"});
    let diagnostics = MockOptions::from_config(&config).unwrap_err();
    assert_eq!(diagnostics.len(), 2);
    assert_eq!(diagnostics[0].pointer, "/config_json/cors_enabled");
    assert!(
        diagnostics[0].message.contains("\"yes\""),
        "{}",
        diagnostics[0].message
    );
    assert!(
        diagnostics[0].message.contains("boolean"),
        "{}",
        diagnostics[0].message
    );
    assert_eq!(diagnostics[1].pointer, "/config_json/validation");
    assert!(
        diagnostics[1].message.contains("\"enforce\""),
        "{}",
        diagnostics[1].message
    );
}
