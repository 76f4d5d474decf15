//! Customer plugins on the edge: loading them while a snapshot is built, and running their hooks
//! around the mock on the request path.
//!
//! A deployment lists its plugins in `config.plugins` as
//! `[{"name", "version", "checksum", "config"}]`. The sync loop fetches each file from the
//! [`PluginSource`] and compiles it once per edge (see [`attach_all`]), so the request path only
//! instantiates the pre-compiled component, once per plugin and request. When a hook fails,
//! only that request gets 502 `PLUGIN_FAILED`.
//!
//! Hook calls run under the limits of the deployment's plan: `plugin_call_timeout_ms` and
//! `plugin_memory_bytes`, or the edge's [`PluginHostConfig`] values for a plan without them (see
//! `EdgePlugins::call_limits`). The pooling allocator's memory slots are sized at start for the
//! largest memory limit of the plan table, so every plan gets its own value up to 4 GiB.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode};
use mockforge_engine::{Mock, MockRequest, MockResponse};
use mockforge_plugins::{
    AttachedPlugin, CallLimits, Header, PluginError, PluginHost, Request, RequestAction, Response, MAX_MEMORY_LIMIT,
};
use mockforge_snapshot::{ApplyOutcome, PlanLimits, PlanTable, PluginSource};
use parking_lot::RwLock;
use prometheus::{IntCounterVec, Opts, Registry};
use uuid::Uuid;

/// The plugin host crate, for tools that load plugins themselves.
pub use mockforge_plugins as host;
/// Sandbox settings for [`crate::Edge::enable_plugins`].
pub use mockforge_plugins::PluginHostConfig;

use crate::error::{error_response, EdgeError};
use crate::route::EnginePath;
use crate::snapshot::{ServedDeployment, Snapshot};
use crate::telemetry::LogMessage;

/// The plugins of one deployment, in the order its configuration lists them.
#[derive(Debug)]
pub struct PluginChain {
    /// The `config.plugins` value the chain was built from, to reuse the chain (and its
    /// counters) while the value does not change.
    spec: serde_json::Value,
    /// The plan's limits the chain was built with, so a plan change rebuilds it. `None` for a
    /// chain from [`PluginChain::from_attached`].
    limits: Option<CallLimits>,
    plugins: Vec<NamedPlugin>,
}

#[derive(Debug)]
struct NamedPlugin {
    name: String,
    version: String,
    attached: AttachedPlugin,
}

impl PluginChain {
    /// Builds a chain from `(name, version, plugin)` triples, for tools that build snapshots
    /// themselves with [`crate::Snapshot::with_plugins`].
    pub fn from_attached(plugins: impl IntoIterator<Item = (String, String, AttachedPlugin)>) -> PluginChain {
        PluginChain {
            spec: serde_json::Value::Null,
            limits: None,
            plugins: plugins
                .into_iter()
                .map(|(name, version, attached)| NamedPlugin {
                    name,
                    version,
                    attached,
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.plugins.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }
}

/// Plugin state of one edge: the source of plugin files, the lazily created host and the
/// failure counter.
pub(crate) struct EdgePlugins {
    source: RwLock<Option<Arc<dyn PluginSource>>>,
    /// The host's settings, with the memory limit raised to the largest of the plan table.
    host_config: RwLock<PluginHostConfig>,
    /// The limits of a plan without plugin limits: the configured host settings.
    default_limits: RwLock<CallLimits>,
    host: OnceLock<Result<Arc<PluginHost>, String>>,
    failures: IntCounterVec,
}

impl EdgePlugins {
    pub(crate) fn new(registry: &Registry) -> EdgePlugins {
        let failures = IntCounterVec::new(
            Opts::new(
                "mockforge_edge_plugin_failures_total",
                "Plugin hook calls that failed, by kind of failure",
            ),
            &["kind"],
        )
        .expect("the metric definition is valid");
        if let Err(error) = registry.register(Box::new(failures.clone())) {
            tracing::warn!(%error, "failed to register the plugin failure metric");
        }
        EdgePlugins {
            source: RwLock::new(None),
            host_config: RwLock::new(PluginHostConfig::default()),
            default_limits: RwLock::new(CallLimits {
                call_timeout: mockforge_plugins::DEFAULT_CALL_TIMEOUT,
                memory_limit: mockforge_plugins::DEFAULT_MEMORY_LIMIT,
            }),
            host: OnceLock::new(),
            failures,
        }
    }

    /// Sets where plugin files come from and the host settings. `config`'s call timeout and
    /// memory limit become the defaults of plans without plugin limits, and the host's memory
    /// limit, the size of a pooled memory slot, becomes the largest of `config` and `plans`. The
    /// host settings apply only when no plugin has been loaded yet, because the host is created
    /// once.
    pub(crate) fn enable(&self, source: Arc<dyn PluginSource>, config: PluginHostConfig, plans: &PlanTable) {
        let defaults = CallLimits {
            call_timeout: config.call_timeout,
            memory_limit: config.memory_limit,
        };
        let host_config = PluginHostConfig {
            memory_limit: pool_memory_limit(config.memory_limit, plans),
            ..config
        };
        *self.source.write() = Some(source);
        *self.default_limits.write() = defaults;
        *self.host_config.write() = host_config;
    }

    /// Returns the limits of the plugin hook calls of a deployment whose plan has `limits`: the
    /// plan's `plugin_call_timeout_ms` and `plugin_memory_bytes`, or the edge's default for a
    /// key the plan omits.
    pub(crate) fn call_limits(&self, limits: &PlanLimits) -> CallLimits {
        let defaults = *self.default_limits.read();
        CallLimits {
            call_timeout: limits
                .plugin_call_timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(defaults.call_timeout),
            memory_limit: limits
                .plugin_memory_bytes
                .map(|bytes| usize::try_from(bytes).unwrap_or(usize::MAX))
                .unwrap_or(defaults.memory_limit),
        }
    }

    fn host(&self) -> Result<Arc<PluginHost>, String> {
        self.host
            .get_or_init(|| {
                let config = self.host_config.read().clone();
                PluginHost::new(config)
                    .map(Arc::new)
                    .map_err(|error| error.to_string())
            })
            .clone()
    }

    pub(crate) fn record_failure(&self, error: &PluginError) {
        self.failures.with_label_values(&[error.kind()]).inc();
    }
}

/// Returns the memory limit of the plugin host: the largest of `configured` and every plan's
/// `plugin_memory_bytes`, at most [`MAX_MEMORY_LIMIT`]. A larger plan value is logged as a
/// warning, and its deployments get [`MAX_MEMORY_LIMIT`].
///
/// In wasmtime 48 on 64-bit hosts a pooled memory slot reserves 4 GiB of address space plus a
/// 32 MiB guard region whatever its maximum, so a larger maximum costs no more address space.
/// Resident memory depends on what instances touch.
fn pool_memory_limit(configured: usize, plans: &PlanTable) -> usize {
    let mut largest = configured.min(MAX_MEMORY_LIMIT);
    for name in plans.names() {
        let Some(bytes) = plans.limits(name).and_then(|limits| limits.plugin_memory_bytes) else {
            continue;
        };
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        if bytes > MAX_MEMORY_LIMIT {
            tracing::warn!(
                plan = name,
                plugin_memory_bytes = bytes,
                maximum = MAX_MEMORY_LIMIT,
                "the plan's plugin_memory_bytes is above the maximum of 32-bit WebAssembly; its plugins get the maximum"
            );
        }
        largest = largest.max(bytes.min(MAX_MEMORY_LIMIT));
    }
    largest
}

/// One entry of `config.plugins`.
#[derive(serde::Deserialize)]
struct PluginRef {
    name: String,
    version: String,
    checksum: Option<String>,
    #[serde(default)]
    config: serde_json::Value,
}

/// Builds the plugin chain of every served deployment that lists plugins. A deployment whose
/// plugins cannot be loaded is removed from `served` and its outcome becomes a failure, because
/// serving it without them could skip a check such as an API key.
pub(crate) async fn attach_all(
    plugins: &EdgePlugins,
    current: &Snapshot,
    served: &mut HashMap<Uuid, Arc<ServedDeployment>>,
    outcomes: &mut [(Uuid, ApplyOutcome)],
) -> HashMap<Uuid, Arc<PluginChain>> {
    let mut chains = HashMap::new();
    let mut failed = Vec::new();
    for deployment in served.values() {
        let spec = match deployment.config.get("plugins") {
            None | Some(serde_json::Value::Null) => continue,
            Some(serde_json::Value::Array(list)) if list.is_empty() => continue,
            Some(spec) => spec,
        };
        let limits = plugins.call_limits(&deployment.limits);
        if let Some(existing) = current
            .plugin_chain(&deployment.id)
            .filter(|chain| &chain.spec == spec && chain.limits == Some(limits))
        {
            chains.insert(deployment.id, existing.clone());
            continue;
        }
        match build_chain(plugins, deployment, spec, limits).await {
            Ok(chain) => {
                chains.insert(deployment.id, Arc::new(chain));
            }
            Err(reason) => {
                tracing::warn!(
                    deployment_id = %deployment.id,
                    org = %deployment.org_slug,
                    deployment = %deployment.slug,
                    %reason,
                    "a deployment's plugins failed to load; the deployment is not served"
                );
                failed.push((deployment.id, reason));
            }
        }
    }

    for (id, reason) in failed {
        served.remove(&id);
        for (outcome_id, outcome) in outcomes.iter_mut() {
            if *outcome_id == id {
                *outcome = ApplyOutcome::Failed {
                    reason: reason.clone(),
                };
            }
        }
    }
    chains
}

async fn build_chain(
    plugins: &EdgePlugins,
    deployment: &ServedDeployment,
    spec: &serde_json::Value,
    limits: CallLimits,
) -> Result<PluginChain, String> {
    let references: Vec<PluginRef> = serde_json::from_value(spec.clone()).map_err(|error| {
        format!("config.plugins must be a list of {{\"name\", \"version\", \"checksum\", \"config\"}} objects: {error}")
    })?;
    let source = plugins
        .source
        .read()
        .clone()
        .ok_or_else(|| "this edge has no plugin source, so it cannot serve deployments with plugins".to_owned())?;
    let host = plugins
        .host()
        .map_err(|error| format!("the plugin host failed to start: {error}"))?;

    let mut chain = Vec::with_capacity(references.len());
    for reference in references {
        let label = format!("{}@{}", reference.name, reference.version);
        let checksum = reference.checksum.ok_or_else(|| {
            format!("plugin {label} has no checksum; create the deployment again so the control plane pins it")
        })?;
        let loaded = match host.loaded(&checksum) {
            Some(loaded) => loaded,
            None => {
                let wasm = source
                    .plugin(&checksum)
                    .await
                    .map_err(|error| format!("failed to fetch plugin {label}: {error}"))?;
                let host = host.clone();
                let compile_checksum = checksum.clone();
                tokio::task::spawn_blocking(move || host.load(&compile_checksum, &wasm))
                    .await
                    .map_err(|error| format!("the compile task of plugin {label} failed: {error}"))?
                    .map_err(|error| format!("failed to load plugin {label}: {error}"))?
            }
        };
        let attached = loaded.attach_with_limits(reference.config.to_string(), limits);
        if attached.limits() != limits {
            tracing::warn!(
                deployment_id = %deployment.id,
                org = %deployment.org_slug,
                deployment = %deployment.slug,
                plan = %deployment.plan,
                plugin = %label,
                requested_memory_bytes = limits.memory_limit,
                memory_limit_bytes = attached.limits().memory_limit,
                "the plan's plugin memory limit is above the plugin host's maximum; applying the maximum"
            );
        }
        chain.push(NamedPlugin {
            name: reference.name,
            version: reference.version,
            attached,
        });
    }
    Ok(PluginChain {
        spec: spec.clone(),
        limits: Some(limits),
        plugins: chain,
    })
}

/// Builds the response to a request of a deployment with plugins: `on-request` hooks in order,
/// the mock, then `on-response` hooks in order. A hook that returns a response ends the chain,
/// so the mock and the later plugins do not run.
pub(crate) async fn respond_with_plugins(
    plugins: Option<&EdgePlugins>,
    chain: &PluginChain,
    served: &ServedDeployment,
    path: EnginePath,
    request: &Parts,
    body: &[u8],
) -> http::Response<Bytes> {
    let path = path.of(request);
    let mut current = plugin_request(&served.mock, request, path, request.uri.query(), body);

    // One instance per plugin runs both hooks of this request and is dropped with it. A plugin
    // is instantiated only when its first hook runs, so a chain that a plugin ends early skips
    // the instantiation of the later ones. The hook futures yield to the worker's executor at
    // every epoch tick, so a plugin that runs until its deadline does not hold the worker.
    let mut instances = Vec::with_capacity(chain.plugins.len());
    for plugin in &chain.plugins {
        let action = match plugin.attached.instantiate().await {
            Ok(mut instance) => {
                let action = instance.on_request(&current).await;
                instances.push(instance);
                action
            }
            Err(error) => Err(error),
        };
        let action = action.map_err(|error| failure(plugins, served, plugin, "on-request", error));
        match action {
            Ok(RequestAction::Continue) => {}
            Ok(RequestAction::Modify(modified)) => {
                current = modified;
                let matched = match_operation(&served.mock, &current.method, &current.path);
                current.route = matched.route;
                current.operation_id = matched.operation_id;
                current.path_params = matched.path_params;
            }
            Ok(RequestAction::Respond(response)) => {
                return into_http(response)
                    .unwrap_or_else(|error| failure(plugins, served, plugin, "on-request", error));
            }
            Err(response) => return response,
        }
    }

    let mut response = match call_mock(served, &current) {
        Ok(response) => response,
        Err(response) => return response,
    };
    for (plugin, instance) in chain.plugins.iter().zip(&mut instances) {
        match instance.on_response(&current, &response).await {
            Ok(Some(replaced)) => response = replaced,
            Ok(None) => {}
            Err(error) => return failure(plugins, served, plugin, "on-response", error),
        }
    }
    into_http(response).unwrap_or_else(|error| {
        let last = chain.plugins.last().expect("a chain that ran hooks has a plugin");
        failure(plugins, served, last, "on-response", error)
    })
}

/// Logs a failed hook, counts it and builds the 502 response. The response carries a
/// [`LogMessage`] with the plugin, its version and the kind of failure for the deployment's
/// request log, where the status 502 gives the entry the level `error`.
fn failure(
    plugins: Option<&EdgePlugins>,
    served: &ServedDeployment,
    plugin: &NamedPlugin,
    hook: &'static str,
    error: PluginError,
) -> http::Response<Bytes> {
    if let Some(plugins) = plugins {
        plugins.record_failure(&error);
    }
    tracing::warn!(
        deployment_id = %served.id,
        org = %served.org_slug,
        deployment = %served.slug,
        plugin = %plugin.name,
        version = %plugin.version,
        checksum = %plugin.attached.plugin().checksum(),
        hook,
        kind = error.kind(),
        %error,
        "a plugin failed; answering 502"
    );
    let message = format!(
        "plugin {} version {} failed in {hook} ({}): {error}",
        plugin.name,
        plugin.version,
        error.kind()
    );
    let mut response = error_response(&EdgeError::PluginFailed {
        plugin: plugin.name.clone(),
        version: plugin.version.clone(),
        hook,
        reason: error.to_string(),
    });
    response.extensions_mut().insert(LogMessage(message));
    response
}

/// Converts the edge's request to the plugin world's record.
fn plugin_request(mock: &Mock, request: &Parts, path: &str, query: Option<&str>, body: &[u8]) -> Request {
    let headers = request
        .headers
        .iter()
        .map(|(name, value)| Header {
            name: name.as_str().to_owned(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        })
        .collect();
    let method = request.method.as_str().to_owned();
    let matched = match_operation(mock, &method, path);
    Request {
        method,
        path: path.to_owned(),
        query: query.map(str::to_owned),
        headers,
        body: body.to_vec(),
        route: matched.route,
        operation_id: matched.operation_id,
        path_params: matched.path_params,
    }
}

/// The fields of the plugin request that come from the operation a path matches. All are
/// empty when no operation matches.
#[derive(Default)]
struct MatchedOperation {
    /// `METHOD /template`, for example `GET /pets/{petId}`.
    route: Option<String>,
    /// The operation's `operationId`, when the document declares one.
    operation_id: Option<String>,
    /// Values of the template's parameters, in template order.
    path_params: Vec<Header>,
}

fn match_operation(mock: &Mock, method: &str, path: &str) -> MatchedOperation {
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return MatchedOperation::default();
    };
    let Some(operation) = mock.find_operation(&method, path) else {
        return MatchedOperation::default();
    };
    let (method, template) = mock.operation_route(operation);
    MatchedOperation {
        route: Some(format!("{method} {template}")),
        operation_id: mock.operation_id(operation).map(str::to_owned),
        path_params: path_parameters(template, path),
    }
}

/// Extracts the values of `{name}` segments of `template` from `path`. A segment may have a
/// literal prefix and suffix around one parameter, as in `{id}.json`.
fn path_parameters(template: &str, path: &str) -> Vec<Header> {
    let mut parameters = Vec::new();
    for (pattern, actual) in template.split('/').zip(path.split('/')) {
        let (Some(open), Some(close)) = (pattern.find('{'), pattern.rfind('}')) else {
            continue;
        };
        if close < open {
            continue;
        }
        let value = actual
            .strip_prefix(&pattern[..open])
            .and_then(|rest| rest.strip_suffix(&pattern[close + 1..]));
        if let Some(value) = value {
            parameters.push(Header {
                name: pattern[open + 1..close].to_owned(),
                value: percent_encoding::percent_decode_str(value)
                    .decode_utf8_lossy()
                    .into_owned(),
            });
        }
    }
    parameters
}

/// Calls the mock with the (possibly modified) request. An engine error becomes the error
/// response the edge would send without plugins, which the `on-response` hooks then see.
fn call_mock(served: &ServedDeployment, request: &Request) -> Result<Response, http::Response<Bytes>> {
    let method = Method::from_bytes(request.method.as_bytes()).map_err(|_| {
        error_response(&EdgeError::InvalidRequest(format!(
            "a plugin set the invalid method {:?}",
            request.method
        )))
    })?;
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for header in &request.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_str(&header.value),
        ) {
            headers.append(name, value);
        }
    }
    let mock_request = MockRequest {
        method: &method,
        path: &request.path,
        query: request.query.as_deref(),
        headers: &headers,
        body: &request.body,
    };
    let response = match served.mock.respond(&mock_request) {
        Ok(MockResponse {
            status,
            headers,
            body,
            ..
        }) => (status, headers, body),
        Err(error) => {
            let response = error_response(&EdgeError::Mock {
                org: Some(served.org_slug.clone()),
                deployment: Some(served.slug.clone()),
                error,
            });
            let (parts, body) = response.into_parts();
            (parts.status, parts.headers, body)
        }
    };
    let (status, headers, body) = response;
    Ok(Response {
        status: status.as_u16(),
        headers: headers
            .iter()
            .map(|(name, value)| Header {
                name: name.as_str().to_owned(),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })
            .collect(),
        body: body.to_vec(),
    })
}

/// Converts a plugin's response to an HTTP response.
fn into_http(response: Response) -> Result<http::Response<Bytes>, PluginError> {
    let status = StatusCode::from_u16(response.status)
        .map_err(|_| PluginError::InvalidResult(format!("invalid status {}", response.status)))?;
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    for header in response.headers {
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
            PluginError::InvalidResult(format!("invalid header name {:?}", header.name))
        })?;
        let value = HeaderValue::from_str(&header.value).map_err(|_| {
            PluginError::InvalidResult(format!("invalid value of header {:?}", header.name))
        })?;
        headers.append(name, value);
    }
    let mut http_response = http::Response::new(Bytes::from(response.body));
    *http_response.status_mut() = status;
    *http_response.headers_mut() = headers;
    Ok(http_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_match_template() {
        let values = path_parameters("/pets/{petId}/photos/{name}.json", "/pets/42/photos/a%20b.json");
        let pairs: Vec<(&str, &str)> = values
            .iter()
            .map(|header| (header.name.as_str(), header.value.as_str()))
            .collect();
        assert_eq!(pairs, [("petId", "42"), ("name", "a b")]);
    }

    #[test]
    fn path_parameters_skip_literal_segments() {
        assert!(path_parameters("/pets", "/pets").is_empty());
    }

    #[test]
    fn pool_memory_limit_covers_largest_plan() {
        let default = mockforge_plugins::DEFAULT_MEMORY_LIMIT;
        assert_eq!(pool_memory_limit(default, &PlanTable::default()), 64 * 1024 * 1024);
        assert_eq!(pool_memory_limit(default, &PlanTable::new(Default::default())), default);

        let huge = PlanLimits { plugin_memory_bytes: Some(1 << 40), ..Default::default() };
        let plans = PlanTable::new([("huge".to_owned(), huge)].into());
        assert_eq!(pool_memory_limit(default, &plans), MAX_MEMORY_LIMIT);
    }

    #[test]
    fn call_limits_default_for_omitted_keys() {
        let plugins = EdgePlugins::new(&Registry::new());
        let defaults = plugins.call_limits(&PlanLimits::default());
        assert_eq!(defaults.call_timeout, mockforge_plugins::DEFAULT_CALL_TIMEOUT);
        assert_eq!(defaults.memory_limit, mockforge_plugins::DEFAULT_MEMORY_LIMIT);

        let plan = PlanLimits {
            plugin_call_timeout_ms: Some(40),
            plugin_memory_bytes: Some(1 << 22),
            ..Default::default()
        };
        let limits = plugins.call_limits(&plan);
        assert_eq!(limits.call_timeout, Duration::from_millis(40));
        assert_eq!(limits.memory_limit, 1 << 22);
    }

    #[test]
    fn invalid_plugin_status_is_rejected() {
        let error = into_http(Response {
            status: 42,
            headers: Vec::new(),
            body: Vec::new(),
        })
        .unwrap_err();
        assert!(matches!(error, PluginError::InvalidResult(_)), "{error}");
    }
}
