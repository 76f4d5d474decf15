//! The plugin host against the example and hostile plugins of `examples/plugins`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mockforge_plugins::examples::plugin_file;
use mockforge_plugins::{
    checksum, CallLimits, Header, LoadedPlugin, PluginError, PluginHost, PluginHostConfig, Request, RequestAction,
    Response, WorldVersion, DEFAULT_CALL_TIMEOUT, DEFAULT_MEMORY_LIMIT, MAX_MEMORY_LIMIT,
};

fn host() -> PluginHost {
    PluginHost::new(PluginHostConfig::default()).expect("the plugin host starts")
}

fn load(host: &PluginHost, name: &str) -> Arc<LoadedPlugin> {
    let wasm = plugin_file(name);
    host.load(&checksum(&wasm), &wasm).unwrap_or_else(|error| panic!("plugin {name} does not load: {error}"))
}

fn request(headers: &[(&str, &str)]) -> Request {
    Request {
        method: "GET".to_owned(),
        path: "/pets/1".to_owned(),
        query: None,
        headers: headers
            .iter()
            .map(|(name, value)| Header { name: (*name).to_owned(), value: (*value).to_owned() })
            .collect(),
        body: Vec::new(),
        route: Some("GET /pets/{petId}".to_owned()),
        operation_id: Some("getPet".to_owned()),
        path_params: vec![Header { name: "petId".to_owned(), value: "1".to_owned() }],
    }
}

fn response(body: &str) -> Response {
    Response {
        status: 200,
        headers: vec![Header { name: "content-type".to_owned(), value: "application/json".to_owned() }],
        body: body.as_bytes().to_vec(),
    }
}

#[tokio::test]
async fn add_header_adds_configured_header() {
    let host = host();
    let plugin = load(&host, "add-header").attach(r#"{"name": "X-Plugin", "value": "yes"}"#.to_owned());
    assert!(matches!(plugin.on_request(&request(&[])).await.unwrap(), RequestAction::Continue));
    let replaced = plugin.on_response(&request(&[]), &response("{}")).await.unwrap().expect("a new response");
    assert!(replaced.headers.iter().any(|header| header.name == "x-plugin" && header.value == "yes"));
}

#[tokio::test]
async fn require_api_key_checks_header() {
    let host = host();
    let plugin = load(&host, "require-api-key").attach(r#"{"keys": ["secret"]}"#.to_owned());
    match plugin.on_request(&request(&[])).await.unwrap() {
        RequestAction::Respond(response) => assert_eq!(response.status, 401),
        _ => panic!("a request without a key must get a response"),
    }
    assert!(matches!(
        plugin.on_request(&request(&[("x-api-key", "secret")])).await.unwrap(),
        RequestAction::Continue
    ));
}

#[tokio::test]
async fn rewrite_json_field_sets_value() {
    let host = host();
    let plugin = load(&host, "rewrite-json-field").attach(r#"{"pointer": "/name", "value": "Rex"}"#.to_owned());
    let replaced = plugin.on_response(&request(&[]), &response(r#"{"name": "Tom", "id": 1}"#)).await.unwrap().unwrap();
    let body: serde_json::Value = serde_json::from_slice(&replaced.body).unwrap();
    assert_eq!(body, serde_json::json!({"name": "Rex", "id": 1}));
}

#[tokio::test]
async fn every_nth_counts_per_attachment() {
    let host = host();
    let loaded = load(&host, "every-nth-429");
    let plugin = loaded.attach(r#"{"every": 3}"#.to_owned());
    let mut statuses: Vec<Option<u16>> = Vec::new();
    for _ in 0..6 {
        let status = match plugin.on_request(&request(&[])).await.unwrap() {
            RequestAction::Respond(response) => Some(response.status),
            _ => None,
        };
        statuses.push(status);
    }
    assert_eq!(statuses, [None, None, Some(429), None, None, Some(429)]);

    let other = loaded.attach(r#"{"every": 3}"#.to_owned());
    assert!(matches!(other.on_request(&request(&[])).await.unwrap(), RequestAction::Continue));
}

#[tokio::test]
async fn hostile_plugins_fail_alone() {
    let host = host();
    let cases: [(&str, fn(&PluginError) -> bool); 5] = [
        ("hostile-loop", |error| matches!(error, PluginError::Timeout { .. })),
        ("hostile-alloc", |error| matches!(error, PluginError::OutOfMemory { .. })),
        ("hostile-recursion", |error| matches!(error, PluginError::Trap(_))),
        ("hostile-trap", |error| matches!(error, PluginError::Trap(_))),
        ("hostile-garbage", |error| matches!(error, PluginError::InvalidResult(_))),
    ];
    let good = load(&host, "pass-through").attach("null".to_owned());
    for (name, expected) in cases {
        let plugin = load(&host, name).attach("null".to_owned());
        let started = Instant::now();
        let error = plugin.on_request(&request(&[])).await.expect_err(name);
        let elapsed = started.elapsed();
        assert!(expected(&error), "{name} failed with {error:?}");
        assert!(elapsed < Duration::from_secs(1), "{name} took {elapsed:?}");
        assert!(matches!(good.on_request(&request(&[])).await, Ok(RequestAction::Continue)), "after {name}");
    }
}

#[test]
fn validate_rejects_non_components() {
    let host = host();
    for (label, bytes) in [
        ("empty", Vec::new()),
        ("text", b"not wasm at all".to_vec()),
        ("core module", b"\0asm\x01\0\0\0".to_vec()),
    ] {
        let error = host.validate(&bytes).expect_err(label);
        assert!(matches!(error, PluginError::Invalid(_)), "{label}: {error:?}");
    }
    host.validate(&plugin_file("add-header")).expect("add-header is a plugin");
}

#[test]
fn load_rejects_wrong_checksum() {
    let host = host();
    let wasm = plugin_file("pass-through");
    let wrong = checksum(b"something else");
    assert!(matches!(host.load(&wrong, &wasm), Err(PluginError::Invalid(_))));
}

#[tokio::test]
async fn disk_cache_is_reused() {
    let dir = std::env::temp_dir().join(format!("mockforge-plugin-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = PluginHostConfig { cache_dir: Some(dir.clone()), ..PluginHostConfig::default() };
    let wasm = plugin_file("add-header");
    let sum = checksum(&wasm);

    let first = PluginHost::new(config.clone()).unwrap();
    drop(first.load(&sum, &wasm).unwrap());
    let artifacts: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let name = artifacts[0].to_string_lossy().into_owned();
    assert!(name.starts_with(sum.strip_prefix("sha256:").unwrap()), "{name}");
    assert!(name.ends_with(".cwasm"), "{name}");

    let second = PluginHost::new(config).unwrap();
    let plugin = second.load(&sum, &wasm).unwrap().attach("{}".to_owned());
    assert!(plugin.on_response(&request(&[]), &response("{}")).await.unwrap().is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn instance_runs_both_hooks() {
    let host = host();
    let plugin = load(&host, "add-header").attach(r#"{"name": "x-plugin", "value": "once"}"#.to_owned());
    let mut instance = plugin.instantiate().await.unwrap();
    assert!(matches!(instance.on_request(&request(&[])).await.unwrap(), RequestAction::Continue));
    let replaced = instance.on_response(&request(&[]), &response("{}")).await.unwrap().expect("a new response");
    let added: Vec<&Header> = replaced.headers.iter().filter(|header| header.name == "x-plugin").collect();
    assert_eq!(added.len(), 1, "{:?}", replaced.headers);
    assert_eq!(added[0].value, "once");
}

#[tokio::test]
async fn failed_instance_rejects_next_hook() {
    let host = host();
    let plugin = load(&host, "hostile-trap").attach("null".to_owned());
    let mut instance = plugin.instantiate().await.unwrap();
    let error = instance.on_request(&request(&[])).await.unwrap_err();
    assert!(matches!(error, PluginError::Trap(_)), "{error:?}");
    let error = instance.on_response(&request(&[]), &response("{}")).await.unwrap_err();
    assert!(matches!(error, PluginError::Host(_)), "{error:?}");
    assert!(error.to_string().contains("earlier hook call"), "{error}");
}

#[tokio::test(flavor = "current_thread")]
async fn hostile_loop_yields_to_executor() {
    let host = host();
    let plugin = load(&host, "hostile-loop").attach("null".to_owned());
    let polls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let other_task = tokio::spawn({
        let polls = polls.clone();
        async move {
            loop {
                polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }
    });

    let error = plugin.on_request(&request(&[])).await.unwrap_err();
    other_task.abort();

    assert!(matches!(error, PluginError::Timeout { timeout_ms: 10 }), "{error:?}");
    let polls = polls.load(std::sync::atomic::Ordering::Relaxed);
    assert!(polls > 0, "another task on the same thread never ran while the plugin looped");
}

#[tokio::test]
async fn attachments_report_own_timeouts() {
    let host = host();
    let loaded = load(&host, "hostile-loop");
    let short = loaded.attach_with_limits(
        "null".to_owned(),
        CallLimits { call_timeout: Duration::from_millis(5), memory_limit: DEFAULT_MEMORY_LIMIT },
    );
    let long = loaded.attach_with_limits(
        "null".to_owned(),
        CallLimits { call_timeout: Duration::from_millis(20), memory_limit: DEFAULT_MEMORY_LIMIT },
    );
    let default = loaded.attach("null".to_owned());

    let error = short.on_request(&request(&[])).await.unwrap_err();
    assert!(matches!(error, PluginError::Timeout { timeout_ms: 5 }), "{error:?}");
    let error = long.on_request(&request(&[])).await.unwrap_err();
    assert!(matches!(error, PluginError::Timeout { timeout_ms: 20 }), "{error:?}");
    let error = default.on_request(&request(&[])).await.unwrap_err();
    assert!(matches!(error, PluginError::Timeout { timeout_ms: 10 }), "{error:?}");
    assert_eq!(default.limits().call_timeout, DEFAULT_CALL_TIMEOUT);
}

#[tokio::test]
async fn attachments_report_own_memory_limits() {
    let host = host();
    let loaded = load(&host, "hostile-alloc");
    let small_limit = 4 * 1024 * 1024;
    let small = loaded.attach_with_limits(
        "null".to_owned(),
        CallLimits { call_timeout: DEFAULT_CALL_TIMEOUT, memory_limit: small_limit },
    );
    let default = loaded.attach("null".to_owned());

    let error = small.on_request(&request(&[])).await.unwrap_err();
    assert!(matches!(error, PluginError::OutOfMemory { limit_bytes } if limit_bytes == small_limit), "{error:?}");
    let error = default.on_request(&request(&[])).await.unwrap_err();
    assert!(
        matches!(error, PluginError::OutOfMemory { limit_bytes } if limit_bytes == DEFAULT_MEMORY_LIMIT),
        "{error:?}"
    );
}

#[tokio::test]
async fn attachment_memory_limit_capped_at_host() {
    let host = host();
    let loaded = load(&host, "hostile-alloc");
    let plugin = loaded.attach_with_limits(
        "null".to_owned(),
        CallLimits { call_timeout: DEFAULT_CALL_TIMEOUT, memory_limit: 512 * 1024 * 1024 },
    );

    assert_eq!(plugin.limits().memory_limit, DEFAULT_MEMORY_LIMIT);
    let error = plugin.on_request(&request(&[])).await.unwrap_err();
    assert!(
        matches!(error, PluginError::OutOfMemory { limit_bytes } if limit_bytes == DEFAULT_MEMORY_LIMIT),
        "{error:?}"
    );
}

#[test]
fn host_rejects_memory_limit_above_maximum() {
    let config = PluginHostConfig { memory_limit: MAX_MEMORY_LIMIT + 1, ..PluginHostConfig::default() };
    let error = PluginHost::new(config).unwrap_err();
    assert!(matches!(error, PluginError::Host(_)), "{error:?}");
    assert!(error.to_string().contains(&format!("{}", MAX_MEMORY_LIMIT + 1)), "{error}");
}

/// Returns the values of the headers named `name`.
fn header_values<'a>(response: &'a Response, name: &str) -> Vec<&'a str> {
    response
        .headers
        .iter()
        .filter(|header| header.name == name)
        .map(|header| header.value.as_str())
        .collect()
}

#[tokio::test]
async fn add_header_expands_operation_placeholders() {
    let host = host();
    let loaded = load(&host, "add-header");
    assert_eq!(loaded.world(), WorldVersion::V0_2_0);
    let plugin = loaded.attach(r#"{"name": "x-operation", "value": "{operationId} at {route} {other}"}"#.to_owned());

    let replaced = plugin.on_response(&request(&[]), &response("{}")).await.unwrap().expect("a new response");
    assert_eq!(header_values(&replaced, "x-operation"), ["getPet at GET /pets/{petId} {other}"]);
    assert_eq!(replaced.body, b"{}");

    let unmatched = Request { route: None, operation_id: None, path_params: Vec::new(), ..request(&[]) };
    let replaced = plugin.on_response(&unmatched, &response("{}")).await.unwrap().expect("a new response");
    assert_eq!(header_values(&replaced, "x-operation"), [" at  {other}"]);
}

#[tokio::test]
async fn add_header_filters_by_operation_id() {
    let host = host();
    let plugin = load(&host, "add-header").attach(r#"{"name": "x-only", "value": "yes", "operations": ["getPet"]}"#.to_owned());

    let replaced = plugin.on_response(&request(&[]), &response("{}")).await.unwrap().expect("getPet gets the header");
    assert_eq!(header_values(&replaced, "x-only"), ["yes"]);

    let other = Request { operation_id: Some("listPets".to_owned()), ..request(&[]) };
    assert!(plugin.on_response(&other, &response("{}")).await.unwrap().is_none(), "listPets is not listed");

    let without_id = Request { operation_id: None, ..request(&[]) };
    assert!(plugin.on_response(&without_id, &response("{}")).await.unwrap().is_none(), "no operationId");
}

#[tokio::test]
async fn legacy_plugin_gets_route_as_operation() {
    let host = host();
    let loaded = load(&host, "legacy-pass-through");
    assert_eq!(loaded.world(), WorldVersion::V0_1_0);
    let plugin = loaded.attach("null".to_owned());
    let mut instance = plugin.instantiate().await.unwrap();

    let original = request(&[("accept", "application/json")]);
    let modified = match instance.on_request(&original).await.unwrap() {
        RequestAction::Modify(modified) => modified,
        other => panic!("legacy-pass-through returns its request through modify, got {other:?}"),
    };
    assert_eq!(modified.method, "GET");
    assert_eq!(modified.path, "/pets/1");
    assert_eq!(modified.headers.len(), 1);
    assert_eq!(modified.headers[0].name, "accept");
    assert_eq!(modified.headers[0].value, "application/json");
    assert_eq!(modified.route.as_deref(), Some("GET /pets/{petId}"));
    assert_eq!(modified.operation_id, None, "world 0.1.0 has no operationId");
    assert_eq!(modified.path_params.len(), 1);
    assert_eq!(modified.path_params[0].value, "1");

    let replaced = instance.on_response(&original, &response(r#"{"id": 1}"#)).await.unwrap().expect("a new response");
    assert_eq!(replaced.status, 200);
    assert_eq!(replaced.body, br#"{"id": 1}"#);
    assert_eq!(header_values(&replaced, "content-type"), ["application/json"]);
    assert_eq!(header_values(&replaced, "x-legacy-operation"), ["GET /pets/{petId}"]);
}

#[test]
fn validate_reports_world_version() {
    let host = host();
    assert_eq!(host.validate(&plugin_file("pass-through")).unwrap(), WorldVersion::V0_2_0);
    assert_eq!(host.validate(&plugin_file("legacy-pass-through")).unwrap(), WorldVersion::V0_1_0);
}

#[test]
fn validate_rejects_other_worlds() {
    let host = host();
    // A component with no imports or exports: the header of a component binary, layer 1.
    let empty_component = b"\0asm\x0d\0\x01\0".to_vec();
    for (label, bytes) in [("wrong-world", plugin_file("wrong-world")), ("empty component", empty_component)] {
        let error = host.validate(&bytes).expect_err(label);
        let PluginError::Invalid(message) = &error else {
            panic!("{label}: expected an invalid plugin error, got {error:?}");
        };
        assert!(
            message.starts_with(
                "the component does not implement a supported plugin world \
                 (mockforge:plugin/plugin@0.2.0 or mockforge:plugin/plugin@0.1.0): "
            ),
            "{label}: {message}"
        );
        assert!(message.contains("on-request"), "{label}: {message}");
    }
}
