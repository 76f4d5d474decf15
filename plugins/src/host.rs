//! The engine, the epoch ticker, loaded plugins and hook calls.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimitsBuilder, Trap};

use crate::bindings::{Plugin, PluginPre};
use crate::sandbox::{linker_for, Counters, StoreState};
use crate::{checksum_hex, PluginError, PluginHostConfig, Request, RequestAction, Response};

/// Maximum length of an error message kept from a trap, in bytes.
const MAX_MESSAGE_BYTES: usize = 512;

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
    pub fn new(config: PluginHostConfig) -> Result<PluginHost, PluginError> {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances.saturating_mul(4))
            .total_memories(config.max_instances.saturating_mul(2))
            .total_tables(config.max_instances.saturating_mul(4))
            .max_memory_size(config.memory_limit);

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

    /// Checks that `wasm` is a component that implements the plugin world, without caching it.
    pub fn validate(&self, wasm: &[u8]) -> Result<(), PluginError> {
        let component = Component::new(&self.engine, wasm).map_err(invalid)?;
        self.pre_instantiate(&component).map(|_| ())
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
            deadline_ticks: deadline_ticks(self.config.call_timeout, self.config.epoch_tick),
            call_timeout: self.config.call_timeout,
            memory_limit: self.config.memory_limit,
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

    fn pre_instantiate(&self, component: &Component) -> Result<PluginPre<StoreState>, PluginError> {
        let linker = linker_for(&self.engine, component).map_err(invalid)?;
        let instance_pre = linker.instantiate_pre(component).map_err(invalid)?;
        PluginPre::new(instance_pre).map_err(invalid)
    }
}

/// Number of epoch ticks that covers `timeout`, at least 1.
fn deadline_ticks(timeout: Duration, tick: Duration) -> u64 {
    let tick = tick.as_nanos().max(1);
    (timeout.as_nanos().div_ceil(tick) as u64).max(1)
}

/// A compiled, pre-instantiated plugin.
pub struct LoadedPlugin {
    checksum: String,
    pre: PluginPre<StoreState>,
    engine: Engine,
    deadline_ticks: u64,
    call_timeout: Duration,
    memory_limit: usize,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin").field("checksum", &self.checksum).finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    pub fn checksum(&self) -> &str {
        &self.checksum
    }

    /// Attaches the plugin to one deployment with its configuration (JSON text).
    pub fn attach(self: &Arc<Self>, config_json: String) -> AttachedPlugin {
        AttachedPlugin {
            plugin: self.clone(),
            config_json,
            counters: Arc::new(Counters::default()),
        }
    }

    fn instantiate(&self, counters: &Arc<Counters>) -> Result<(Store<StoreState>, Plugin), PluginError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.memory_limit)
            .trap_on_grow_failure(true)
            .build();
        let state = StoreState {
            limits,
            counters: counters.clone(),
            max_random_bytes: self.memory_limit as u64,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(self.deadline_ticks);
        store.epoch_deadline_trap();
        let plugin = self
            .pre
            .instantiate(&mut store)
            .map_err(|error| self.call_error(error))?;
        Ok((store, plugin))
    }

    fn call_error(&self, error: wasmtime::Error) -> PluginError {
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => PluginError::Timeout {
                timeout_ms: self.call_timeout.as_millis() as u64,
            },
            Some(_) | None => PluginError::Trap(truncate(format!("{error:#}"))),
        }
    }
}

/// A loaded plugin attached to one deployment: its configuration and its counters.
#[derive(Debug, Clone)]
pub struct AttachedPlugin {
    plugin: Arc<LoadedPlugin>,
    config_json: String,
    counters: Arc<Counters>,
}

impl AttachedPlugin {
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// Runs `on-request` in a fresh instance.
    // TODO: run both hooks of one request in one instance. One instantiation took about 11 µs
    // in a release build on the 2-core benchmark machine, and a request pays it twice.
    pub fn on_request(&self, request: &Request) -> Result<RequestAction, PluginError> {
        let (mut store, instance) = self.plugin.instantiate(&self.counters)?;
        let action = instance
            .call_on_request(&mut store, request, &self.config_json)
            .map_err(|error| self.plugin.call_error(error))?;
        match &action {
            RequestAction::Continue => {}
            RequestAction::Modify(request) => check_request(request)?,
            RequestAction::Respond(response) => check_response(response)?,
        }
        Ok(action)
    }

    /// Runs `on-response` in a fresh instance. Returns the replacement response, if any.
    pub fn on_response(&self, request: &Request, response: &Response) -> Result<Option<Response>, PluginError> {
        let (mut store, instance) = self.plugin.instantiate(&self.counters)?;
        let replaced = instance
            .call_on_response(&mut store, request, response, &self.config_json)
            .map_err(|error| self.plugin.call_error(error))?;
        if let Some(response) = &replaced {
            check_response(response)?;
        }
        Ok(replaced)
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
