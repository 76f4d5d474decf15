//! The `proxy` setting of a deployment's `config_json`, which forwards requests to a real API:
//!
//! ```json
//! {"proxy": {"upstream": "https://api.example.com/v1", "mode": "unmatched"}}
//! ```
//!
//! `mode` `all` forwards every request; `unmatched` (the default) forwards only requests that no
//! operation of the document matches. `operations` forwards only the operations listed in
//! `"operations": ["getPet", ...]` by `operationId` and mocks the rest. A list without `mode`
//! selects this mode. The path below the deployment is appended to the upstream's path.
//! `timeout_ms` is the time the upstream has to send its response header. The edge checks the
//! upstream's addresses when it forwards a request.

use std::time::Duration;

use mockforge_engine::Mock;
use serde_json::Value;

use super::operations::OperationFilter;
use super::{parse_present, unknown_key_message};

/// Prefix of the errors of [`ProxySettings::from_config`] and
/// [`ProxySettings::resolve_operations`], which an edge reports as the failure reason.
const INVALID: &str = "the proxy configuration is invalid";

/// Time the upstream has to send its response header when `timeout_ms` is not set.
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 30_000;
/// Maximum `timeout_ms`, so a forwarded request cannot hold a connection longer than the
/// edge's own read timeout.
pub const MAX_UPSTREAM_TIMEOUT_MS: u64 = 60_000;

/// Forwarding mode: every request, only those that no operation matches, or only the listed
/// operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    All,
    Unmatched,
    Operations,
}

/// A deployment's upstream settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// True for `https` upstreams.
    pub tls: bool,
    /// Host name or IP address, without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// Path prefix of the upstream URL, without a trailing slash (empty for none).
    pub base_path: String,
    pub mode: ProxyMode,
    /// The forwarded operations; set exactly when `mode` is [`ProxyMode::Operations`].
    pub operations: Option<OperationFilter>,
    /// Time from the start of forwarding (address lookup, connection, request and retries)
    /// until the upstream's response header arrives.
    pub timeout: Duration,
}

impl ProxySettings {
    /// Parses `config.proxy`. Returns `Ok(None)` when the key is absent or null.
    pub fn from_config(config: &Value) -> Result<Option<ProxySettings>, String> {
        Self::parse_problem(config).map_err(|problems| format!("{INVALID}: {}", problems.join("; ")))
    }

    /// Checks the `operations` list against the compiled document.
    pub fn resolve_operations(&mut self, mock: &Mock) -> Result<(), String> {
        self.resolve_problem(mock)
            .map_err(|problem| format!("{INVALID}: {problem}"))
    }

    /// Parses `config.proxy`, with every problem found, each of the form
    /// `/config_json/proxy/POINTER: message`.
    pub(super) fn parse_problem(config: &Value) -> Result<Option<ProxySettings>, Vec<String>> {
        let Some(proxy) = config.get("proxy").filter(|value| !value.is_null()) else {
            return Ok(None);
        };
        parse(proxy).map(Some).map_err(|problems| {
            problems
                .into_iter()
                .map(|problem| format!("/config_json/proxy{problem}"))
                .collect()
        })
    }

    /// Resolves the `operations` list, with an error of the form
    /// `/config_json/proxy/operations/N: message`.
    pub(super) fn resolve_problem(&mut self, mock: &Mock) -> Result<(), String> {
        match &mut self.operations {
            Some(filter) => filter
                .resolve(mock)
                .map_err(|problem| format!("/config_json/proxy{problem}")),
            None => Ok(()),
        }
    }
}

/// Parses the proxy object, collecting one problem per invalid key. Problems start with the
/// JSON pointer below `/config_json/proxy`.
fn parse(proxy: &Value) -> Result<ProxySettings, Vec<String>> {
    let Value::Object(object) = proxy else {
        return Err(vec![format!(": must be an object, not {proxy}")]);
    };
    const PROXY_KEYS: [&str; 4] = ["upstream", "mode", "operations", "timeout_ms"];
    let mut problems: Vec<String> = object
        .keys()
        .filter(|key| !PROXY_KEYS.contains(&key.as_str()))
        .map(|key| format!("/{key}: {}", unknown_key_message(key, &PROXY_KEYS)))
        .collect();
    let listed = object.get("operations").is_some_and(|value| !value.is_null());
    let operations = parse_present(object.get("operations"), OperationFilter::parse, &mut problems);
    let timeout = parse_present(object.get("timeout_ms"), parse_timeout, &mut problems);
    let mode = parse_mode(object.get("mode"), listed)
        .map_err(|problem| problems.push(problem))
        .ok();
    let config = match object.get("upstream") {
        Some(Value::String(upstream)) => parse_url(upstream, mode.unwrap_or(ProxyMode::Unmatched))
            .map_err(|problem| problems.push(format!("/upstream: {problem}")))
            .ok(),
        _ => {
            problems.push("/upstream: missing; set an http:// or https:// URL".to_owned());
            None
        }
    };
    match config {
        Some(mut config) if problems.is_empty() => {
            config.operations = operations;
            if let Some(timeout) = timeout {
                config.timeout = timeout;
            }
            Ok(config)
        }
        _ => Err(problems),
    }
}

/// Parses `mode` and checks it against the presence of an `operations` list.
fn parse_mode(mode: Option<&Value>, has_operations: bool) -> Result<ProxyMode, String> {
    let mode = match mode {
        None | Some(Value::Null) if has_operations => ProxyMode::Operations,
        None | Some(Value::Null) => ProxyMode::Unmatched,
        Some(Value::String(mode)) if mode == "unmatched" => ProxyMode::Unmatched,
        Some(Value::String(mode)) if mode == "all" => ProxyMode::All,
        Some(Value::String(mode)) if mode == "operations" => ProxyMode::Operations,
        Some(other) => {
            return Err(format!(
                "/mode: must be \"unmatched\", \"all\" or \"operations\", not {other}"
            ))
        }
    };
    match (mode, has_operations) {
        (ProxyMode::Operations, false) => Err(
            "/operations: missing; mode \"operations\" needs a list of operationIds".to_owned(),
        ),
        (ProxyMode::All | ProxyMode::Unmatched, true) => Err(
            "/operations: only mode \"operations\" takes a list; remove mode or set it to \"operations\""
                .to_owned(),
        ),
        _ => Ok(mode),
    }
}

fn parse_timeout(value: &Value) -> Result<Duration, String> {
    match value.as_u64() {
        Some(ms @ 1..=MAX_UPSTREAM_TIMEOUT_MS) => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "/timeout_ms: must be a whole number of milliseconds from 1 to {MAX_UPSTREAM_TIMEOUT_MS}, not {value}"
        )),
    }
}

/// Parses `http[s]://host[:port][/path]`. Query strings, fragments and credentials are rejected.
fn parse_url(url: &str, mode: ProxyMode) -> Result<ProxySettings, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!("{url:?} must start with http:// or https://"));
    };
    if rest.contains(['?', '#', '@']) {
        return Err(format!(
            "{url:?} must not contain a query, fragment or credentials"
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("{url:?} has an unclosed IPv6 address"))?;
        let port = match after.strip_prefix(':') {
            Some(port) => parse_port(port, url)?,
            None if after.is_empty() => default_port,
            None => return Err(format!("{url:?} has an invalid authority")),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, parse_port(port, url)?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok(ProxySettings {
        tls,
        host: host.to_owned(),
        port,
        base_path: path.trim_end_matches('/').to_owned(),
        mode,
        operations: None,
        timeout: Duration::from_millis(DEFAULT_UPSTREAM_TIMEOUT_MS),
    })
}

fn parse_port(port: &str, url: &str) -> Result<u16, String> {
    port.parse()
        .map_err(|_| format!("{url:?} has an invalid port {port:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_proxy(proxy: Value) -> Result<Option<ProxySettings>, String> {
        ProxySettings::from_config(&json!({ "proxy": proxy }))
    }

    #[test]
    fn upstream_url_parses() {
        let config = parse_proxy(json!({"upstream": "https://api.example.com/v1/", "mode": "all"}))
            .unwrap()
            .unwrap();
        assert!(config.tls);
        assert_eq!(config.host, "api.example.com");
        assert_eq!(config.port, 443);
        assert_eq!(config.base_path, "/v1");
        assert_eq!(config.mode, ProxyMode::All);

        let config = parse_proxy(json!({"upstream": "http://[::1]:8081"}))
            .unwrap()
            .unwrap();
        assert!(!config.tls);
        assert_eq!(config.host, "::1");
        assert_eq!(config.port, 8081);
        assert_eq!(config.base_path, "");
        assert_eq!(config.mode, ProxyMode::Unmatched);

        let config = parse_proxy(json!({"upstream": "http://x", "operations": ["getPet"]}))
            .unwrap()
            .unwrap();
        assert_eq!(config.mode, ProxyMode::Operations);
        let ids = config.operations.as_ref().map(OperationFilter::ids);
        assert_eq!(ids, Some(&["getPet".to_owned()][..]));
    }

    #[test]
    fn upstream_timeout_parses() {
        let config = parse_proxy(json!({"upstream": "http://x"})).unwrap().unwrap();
        assert_eq!(config.timeout, Duration::from_secs(30));

        let config = parse_proxy(json!({"upstream": "http://x", "timeout_ms": 250}))
            .unwrap()
            .unwrap();
        assert_eq!(config.timeout, Duration::from_millis(250));

        for invalid in [json!(0), json!(60_001), json!(1.5), json!("5s"), json!(-1)] {
            let error = parse_proxy(json!({"upstream": "http://x", "timeout_ms": invalid}))
                .unwrap_err();
            let expected = format!(
                "/config_json/proxy/timeout_ms: must be a whole number of milliseconds from 1 to 60000, not {invalid}"
            );
            assert!(error.contains(&expected), "{error}");
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let error = parse_proxy(json!({"upstream": "ftp://x", "mode": "some", "timeout": 5})).unwrap_err();
        assert!(error.contains("/config_json/proxy/timeout: unknown key `timeout`"), "{error}");
        assert!(error.contains("/config_json/proxy/mode: must be"), "{error}");
        assert!(error.contains("/config_json/proxy/upstream: \"ftp://x\" must start with http://"), "{error}");
        assert_eq!(error.matches("; /config_json/proxy").count(), 2, "{error}");
    }

    #[test]
    fn invalid_proxy_configs_name_the_problem() {
        let cases = [
            (json!("https://x"), "/config_json/proxy: must be an object"),
            (json!({}), "/config_json/proxy/upstream: missing"),
            (json!({"upstream": "ftp://x"}), "must start with http://"),
            (json!({"upstream": "https://x?y=1"}), "must not contain a query"),
            (json!({"upstream": "https://x:port"}), "invalid port"),
            (json!({"upstream": "https://x", "mode": "some"}), "/config_json/proxy/mode"),
            (
                json!({"upstream": "https://x", "mode": "operations"}),
                "/config_json/proxy/operations: missing",
            ),
            (
                json!({"upstream": "https://x", "mode": "all", "operations": ["getPet"]}),
                "/config_json/proxy/operations: only mode \"operations\"",
            ),
            (
                json!({"upstream": "https://x", "operations": "getPet"}),
                "/config_json/proxy/operations: must be an array",
            ),
        ];
        for (proxy, expected) in cases {
            let error = parse_proxy(proxy.clone()).unwrap_err();
            assert!(error.contains(expected), "{proxy}: {error}");
        }
    }
}
