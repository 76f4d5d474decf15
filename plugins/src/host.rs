//! The engine, the epoch ticker, loaded plugins and hook calls.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use wasmtime::component::Component;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreContextMut,
    StoreLimitsBuilder, Trap, UpdateDeadline,
};

use crate::bindings::{v0_1, v0_2};
use crate::sandbox::{linker_for, Counters, MemoryLimiter, StoreState};
use crate::world::{self, WorldInstance, WorldPre};
use crate::{
    checksum_hex, PluginError, PluginHostConfig, Request, RequestAction, Response, WorldVersion, MAX_MEMORY_LIMIT,
};

/// Maximum length of an error message kept from a trap, in bytes.
const MAX_MESSAGE_BYTES: usize = 512;
/// Low bytes of a pooled linear memory that stay mapped when its instance is dropped. A Rust
/// guest keeps its 1 MiB stack and the start of its heap there, so the next request's instance
/// takes no page faults for them.
const MEMORY_KEEP_RESIDENT_BYTES: usize = 2 * 1024 * 1024;
/// Bytes of a pooled table that stay mapped when its instance is dropped.
const TABLE_KEEP_RESIDENT_BYTES: usize = 64 * 1024;

/// One wasmtime engine with its epoch ticker and the plugins loaded into it.
pub struct PluginHost {
    engine: Engine,
    config: PluginHostConfig,
    /// Loaded plugins by checksum. Weak, so a plugin no deployment uses is dropped.
    loaded: Mutex<HashMap<String, Weak<LoadedPlugin>>>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost").field("config", &self.config).finish_non_exhaustive()
    }
}

impl PluginHost {
    /// Creates the engine and starts the epoch ticker thread, which ends when the engine and
    /// every plugin loaded into it are dropped.
    ///
    /// Fails when `config.memory_limit` is above [`MAX_MEMORY_LIMIT`].
    pub fn new(config: PluginHostConfig) -> Result<PluginHost, PluginError> {
        if config.memory_limit > MAX_MEMORY_LIMIT {
            return Err(PluginError::Host(format!(
                "invalid memory limit of {} bytes: the maximum is {MAX_MEMORY_LIMIT} bytes (4 GiB)",
                config.memory_limit
            )));
        }
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances.saturating_mul(4))
            .total_memories(config.max_instances.saturating_mul(2))
            .total_tables(config.max_instances.saturating_mul(4))
            .max_memory_size(config.memory_limit);
        // With the PAGEMAP_SCAN ioctl (Linux 6.7 and later) wasmtime resets only the pages an
        // instance wrote, to zero or to the module's initial image, before the slot is reused.
        // Without it, wasmtime would memset the whole kept region for every instance, so the
        // host then keeps nothing resident.
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pooling
                .pagemap_scan(Enabled::Yes)
                .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT_BYTES.min(config.memory_limit))
                .table_keep_resident(TABLE_KEEP_RESIDENT_BYTES);
        }

        // Since wasmtime 48 the `async` feature replaces `Config::async_support`. The host calls
        // only the `*_async` entry points, which run guest code on a fiber, so a call can yield
        // its thread to the async executor at each epoch tick (see `yield_or_interrupt`).
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .wasm_component_model(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&wasm).map_err(|error| PluginError::Host(format!("{error:#}")))?;

        let weak = engine.weak();
        let tick = config.epoch_tick;
        std::thread::Builder::new()
            .name("plugin-epoch".to_owned())
            .spawn(move || loop {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            })
            .map_err(|error| PluginError::Host(format!("failed to start the epoch ticker: {error}")))?;

        Ok(PluginHost {
            engine,
            config,
            loaded: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &PluginHostConfig {
        &self.config
    }

    /// Returns the limits of plugins attached with [`LoadedPlugin::attach`]: the call timeout and
    /// memory limit of the host's configuration.
    pub fn default_limits(&self) -> CallLimits {
        CallLimits {
            call_timeout: self.config.call_timeout,
            memory_limit: self.config.memory_limit,
        }
    }

    /// Checks that `wasm` is a component that implements one of the supported plugin worlds
    /// ([`WorldVersion::SUPPORTED`]), without caching it. Returns the world it implements.
    pub fn validate(&self, wasm: &[u8]) -> Result<WorldVersion, PluginError> {
        let component = Component::new(&self.engine, wasm).map_err(invalid)?;
        self.pre_instantiate(&component).map(|pre| pre.version())
    }

    /// Returns the plugin with `checksum` (`sha256:` and hex), compiling `wasm` or reading the
    /// compiled artifact from the cache folder when it is not loaded yet. Compiles on the calling
    /// thread, so call it off the request path.
    pub fn load(&self, checksum: &str, wasm: &[u8]) -> Result<Arc<LoadedPlugin>, PluginError> {
        if let Some(plugin) = self.loaded(checksum) {
            return Ok(plugin);
        }
        let Some(hex) = checksum_hex(checksum) else {
            return Err(PluginError::Invalid(format!(
                "checksum {checksum:?} is not `sha256:` followed by 64 lowercase hex digits"
            )));
        };
        let actual = crate::checksum(wasm);
        if actual != checksum {
            return Err(PluginError::Invalid(format!(
                "the plugin file has checksum {actual}, expected {checksum}"
            )));
        }

        let component = crate::cache::load_component(&self.engine, self.config.cache_dir.as_deref(), hex, wasm)?;
        let pre = self.pre_instantiate(&component)?;
        let plugin = Arc::new(LoadedPlugin {
            checksum: checksum.to_owned(),
            pre,
            engine: self.engine.clone(),
            default_limits: self.default_limits(),
            epoch_tick: self.config.epoch_tick,
        });
        let mut loaded = self.loaded.lock();
        loaded.retain(|_, plugin| plugin.strong_count() > 0);
        loaded.insert(checksum.to_owned(), Arc::downgrade(&plugin));
        Ok(plugin)
    }

    /// Returns the plugin with `checksum` if it is loaded.
    pub fn loaded(&self, checksum: &str) -> Option<Arc<LoadedPlugin>> {
        self.loaded.lock().get(checksum).and_then(Weak::upgrade)
    }

    /// Pre-instantiates `component` with the bindings of the world that its import and export
    /// names carry. A component whose names carry no `mockforge:plugin` version gets each
    /// supported world in turn, newest first, and keeps the first whose types match.
    fn pre_instantiate(&self, component: &Component) -> Result<WorldPre, PluginError> {
        if let Some(version) = world::detect(&self.engine, component)? {
            return self.pre_instantiate_as(component, version).map_err(|error| {
                PluginError::Invalid(truncate(format!(
                    "the component uses the interfaces of mockforge:plugin@{} but does not implement the world {version}: {error:#}",
                    version.version()
                )))
            });
        }

        let mut newest_error = None;
        for version in WorldVersion::SUPPORTED {
            match self.pre_instantiate_as(component, version) {
                Ok(pre) => return Ok(pre),
                Err(error) => {
                    newest_error.get_or_insert(error);
                }
            }
        }
        let reason = newest_error.map(|error| format!("{error:#}")).unwrap_or_default();
        Err(PluginError::Invalid(truncate(format!(
            "the component does not implement a supported plugin world ({}): {reason}",
            world::expected_worlds()
        ))))
    }

    fn pre_instantiate_as(&self, component: &Component, version: WorldVersion) -> wasmtime::Result<WorldPre> {
        let linker = linker_for(&self.engine, component, version)?;
        let instance_pre = linker.instantiate_pre(component)?;
        Ok(match version {
            WorldVersion::V0_1_0 => WorldPre::V0_1(v0_1::PluginPre::new(instance_pre)?),
            WorldVersion::V0_2_0 => WorldPre::V0_2(v0_2::PluginPre::new(instance_pre)?),
        })
    }
}

/// Runs at every epoch tick while the store runs guest code. It yields to the async executor and
/// lets the call run one more tick, or interrupts the call once it has run for its deadline.
/// The count covers the ticks in which the call ran, so time spent waiting for the executor
/// after a yield does not count against the plugin.
/// NOTE: a call resumes in the middle of a tick, and that partial tick counts as a whole one, so
/// on a busy executor a call can get noticeably less than its timeout of guest time.
///
/// The yield is `tokio::task::yield_now`, which puts the task behind the runtime's I/O events.
/// A task that only wakes itself (wasmtime's plain `Yield`) can run again before tokio polls its
/// I/O driver, so sockets of other requests would wait. Outside a tokio runtime, `yield_now`
/// wakes the task at once.
fn yield_or_interrupt(mut store: StoreContextMut<'_, StoreState>) -> wasmtime::Result<UpdateDeadline> {
    let state = store.data_mut();
    state.remaining_ticks = state.remaining_ticks.saturating_sub(1);
    if state.remaining_ticks == 0 {
        return Err(Trap::Interrupt.into());
    }
    Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
}

/// Number of epoch ticks that covers `timeout`, at least 1.
fn deadline_ticks(timeout: Duration, tick: Duration) -> u64 {
    let tick = tick.as_nanos().max(1);
    (timeout.as_nanos().div_ceil(tick) as u64).max(1)
}

/// Limits of the hook calls of one attached plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Time one hook call may run before it is interrupted.
    pub call_timeout: Duration,
    /// Maximum linear memory of one instance, in bytes.
    pub memory_limit: usize,
}

/// A compiled, pre-instantiated plugin.
pub struct LoadedPlugin {
    checksum: String,
    pre: WorldPre,
    engine: Engine,
    /// The host's limits, for [`LoadedPlugin::attach`]. Their memory limit is also the size of
    /// a pooled memory slot, the maximum of every attachment.
    default_limits: CallLimits,
    epoch_tick: Duration,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("checksum", &self.checksum)
            .field("world", &self.world())
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    pub fn checksum(&self) -> &str {
        &self.checksum
    }

    /// Returns the plugin world the component implements.
    pub fn world(&self) -> WorldVersion {
        self.pre.version()
    }

    /// Attaches the plugin to one deployment with its configuration (JSON text), under the
    /// host's limits ([`PluginHost::default_limits`]).
    pub fn attach(self: &Arc<Self>, config_json: String) -> AttachedPlugin {
        self.attach_with_limits(config_json, self.default_limits)
    }

    /// Attaches the plugin to one deployment with its configuration (JSON text) and its own
    /// limits, so attachments of one loaded plugin can run under different limits. A memory limit
    /// above the host's is lowered to the host's, because that is the size of a pooled memory
    /// slot. [`AttachedPlugin::limits`] returns the limits that apply.
    pub fn attach_with_limits(self: &Arc<Self>, config_json: String, limits: CallLimits) -> AttachedPlugin {
        let limits = CallLimits {
            call_timeout: limits.call_timeout,
            memory_limit: limits.memory_limit.min(self.max_memory_limit()),
        };
        AttachedPlugin {
            plugin: self.clone(),
            config_json,
            counters: Arc::new(Counters::default()),
            limits,
            deadline_ticks: deadline_ticks(limits.call_timeout, self.epoch_tick),
        }
    }

    /// Returns the largest memory limit an attachment can get: the host's memory limit.
    pub fn max_memory_limit(&self) -> usize {
        self.default_limits.memory_limit
    }

    async fn instantiate(
        &self,
        counters: &Arc<Counters>,
        limits: CallLimits,
        deadline_ticks: u64,
    ) -> Result<(Store<StoreState>, WorldInstance), PluginError> {
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_limit)
            .trap_on_grow_failure(true)
            .build();
        let state = StoreState {
            limits: MemoryLimiter::new(store_limits),
            counters: counters.clone(),
            max_random_bytes: limits.memory_limit as u64,
            remaining_ticks: deadline_ticks,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(yield_or_interrupt);
        match self.pre.instantiate_async(&mut store).await {
            Ok(plugin) => Ok((store, plugin)),
            Err(error) => Err(call_error(error, &store, limits)),
        }
    }
}

/// Classifies the error of a call or an instantiation in `store`, which ran under `limits`.
fn call_error(error: wasmtime::Error, store: &Store<StoreState>, limits: CallLimits) -> PluginError {
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PluginError::Timeout {
            timeout_ms: limits.call_timeout.as_millis() as u64,
        },
        _ if store.data().limits.exhausted => PluginError::OutOfMemory {
            limit_bytes: limits.memory_limit,
        },
        Some(_) | None => PluginError::Trap(truncate(format!("{error:#}"))),
    }
}

/// A loaded plugin attached to one deployment: its configuration, its counters and its limits.
#[derive(Debug, Clone)]
pub struct AttachedPlugin {
    plugin: Arc<LoadedPlugin>,
    config_json: String,
    counters: Arc<Counters>,
    limits: CallLimits,
    /// Epoch ticks of one hook call, from `limits.call_timeout`.
    deadline_ticks: u64,
}

impl AttachedPlugin {
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// Returns the limits the hook calls of this attachment run under.
    pub fn limits(&self) -> CallLimits {
        self.limits
    }

    /// Instantiates the plugin for the hooks of one request. Use the instance for that request
    /// only and drop it afterwards, so no state reaches another request.
    pub async fn instantiate(&self) -> Result<PluginInstance<'_>, PluginError> {
        let (store, instance) = self
            .plugin
            .instantiate(&self.counters, self.limits, self.deadline_ticks)
            .await?;
        Ok(PluginInstance {
            attached: self,
            store,
            instance,
            failed: false,
        })
    }

    /// Runs `on-request` in a fresh instance.
    pub async fn on_request(&self, request: &Request) -> Result<RequestAction, PluginError> {
        self.instantiate().await?.on_request(request).await
    }

    /// Runs `on-response` in a fresh instance. Returns the replacement response, if any.
    pub async fn on_response(&self, request: &Request, response: &Response) -> Result<Option<Response>, PluginError> {
        self.instantiate().await?.on_response(request, response).await
    }
}

/// One instance of an attached plugin that runs the hooks of one request. Each hook call gets
/// its own epoch deadline, and the memory limit covers the instance as a whole. The hook
/// futures yield at every epoch tick, so a slow plugin shares its thread with other tasks.
pub struct PluginInstance<'a> {
    attached: &'a AttachedPlugin,
    store: Store<StoreState>,
    instance: WorldInstance,
    /// True after a call failed. A trapped instance must not run guest code again.
    failed: bool,
}

impl std::fmt::Debug for PluginInstance<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("plugin", &self.attached.plugin.checksum)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl PluginInstance<'_> {
    /// Runs `on-request`.
    pub async fn on_request(&mut self, request: &Request) -> Result<RequestAction, PluginError> {
        self.start_call()?;
        let config = &self.attached.config_json;
        let action = self
            .instance
            .call_on_request(&mut self.store, request, config)
            .await
            .map_err(|error| call_error(error, &self.store, self.attached.limits))?;
        self.failed = false;
        match &action {
            RequestAction::Continue => {}
            RequestAction::Modify(request) => check_request(request)?,
            RequestAction::Respond(response) => check_response(response)?,
        }
        Ok(action)
    }

    /// Runs `on-response`. Returns the replacement response, if any.
    pub async fn on_response(&mut self, request: &Request, response: &Response) -> Result<Option<Response>, PluginError> {
        self.start_call()?;
        let config = &self.attached.config_json;
        let replaced = self
            .instance
            .call_on_response(&mut self.store, request, response, config)
            .await
            .map_err(|error| call_error(error, &self.store, self.attached.limits))?;
        self.failed = false;
        if let Some(response) = &replaced {
            check_response(response)?;
        }
        Ok(replaced)
    }

    /// Rejects a call after a failed one and starts the call's epoch deadline. The flag stays
    /// set until the call returns, so a call that traps leaves the instance marked as failed.
    fn start_call(&mut self) -> Result<(), PluginError> {
        if self.failed {
            return Err(PluginError::Host(
                "the plugin instance failed in an earlier hook call of this request".to_owned(),
            ));
        }
        self.failed = true;
        self.store.data_mut().remaining_ticks = self.attached.deadline_ticks;
        self.store.set_epoch_deadline(1);
        Ok(())
    }
}

fn check_request(request: &Request) -> Result<(), PluginError> {
    if request.method.is_empty() || !request.method.bytes().all(is_token_byte) {
        return Err(PluginError::InvalidResult(format!("invalid method {:?}", request.method)));
    }
    if !request.path.starts_with('/') || request.path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(PluginError::InvalidResult(format!(
            "invalid path {:?}: it must start with / and contain no spaces or control characters",
            truncate(request.path.clone())
        )));
    }
    if let Some(query) = &request.query {
        if query.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'#') {
            return Err(PluginError::InvalidResult(format!("invalid query {:?}", truncate(query.clone()))));
        }
    }
    request.headers.iter().try_for_each(check_header)
}

fn check_response(response: &Response) -> Result<(), PluginError> {
    if !(100..=999).contains(&response.status) {
        return Err(PluginError::InvalidResult(format!(
            "status {} is outside 100 to 999",
            response.status
        )));
    }
    response.headers.iter().try_for_each(check_header)
}

fn check_header(header: &crate::Header) -> Result<(), PluginError> {
    if header.name.is_empty() || !header.name.bytes().all(is_token_byte) {
        return Err(PluginError::InvalidResult(format!(
            "invalid header name {:?}",
            truncate(header.name.clone())
        )));
    }
    if header.value.bytes().any(|b| (b.is_ascii_control() && b != b'\t') || b == 0x7f) {
        return Err(PluginError::InvalidResult(format!(
            "invalid value of header {:?}: it contains a control character",
            header.name
        )));
    }
    Ok(())
}

/// Returns true for the bytes of an HTTP token (RFC 9110, section 5.6.2).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

fn invalid(error: wasmtime::Error) -> PluginError {
    PluginError::Invalid(truncate(format!("{error:#}")))
}
