//! The host for MockForge plugins: WebAssembly components that implement the `plugin` world of
//! `wit/plugin.wit` (`mockforge:plugin/plugin@0.2.0`) and run on the edge around a deployment's
//! mock. Components built against the first world, `wit/v0.1.0/plugin.wit`, still load: the host
//! detects the world a component implements (see [`WorldVersion`]) and converts the records
//! to and from that world's types.
//!
//! One [`PluginHost`] owns one `wasmtime::Engine`. [`PluginHost::load`] compiles a component
//! once (or reads the compiled artifact from the disk cache) and pre-instantiates it, so a
//! request costs a new `Store`, one instantiation from the pooling allocator and its hook calls.
//! [`AttachedPlugin::instantiate`] creates the instance that runs every hook of one request, in
//! its own store with a memory limit, and each hook call gets its own epoch deadline. Both limits
//! belong to the attachment ([`CallLimits`]), so deployments on different plans can share one
//! loaded plugin. Hook calls are futures that yield to the async executor at every epoch tick. A
//! trap, a timeout, an exhausted memory or a malformed result is an error value for that request
//! only.
//!
//! Plugins get no filesystem, network or environment. The host implements the WASI random and
//! clock functions (see [`sandbox`]) and defines every other import as a function that traps.

mod cache;
pub mod examples;
mod host;
mod sandbox;
mod world;

use std::sync::Arc;
use std::time::Duration;

pub use host::{AttachedPlugin, CallLimits, LoadedPlugin, PluginHost, PluginInstance};
pub use world::WorldVersion;

mod bindings {
    /// Bindings of the current world, `mockforge:plugin/plugin@0.2.0`.
    pub(crate) mod v0_2 {
        wasmtime::component::bindgen!({
            path: "wit",
            world: "plugin",
            imports: { default: trappable },
            exports: { default: async },
        });
    }

    /// Bindings of the first world, `mockforge:plugin/plugin@0.1.0`.
    pub(crate) mod v0_1 {
        wasmtime::component::bindgen!({
            path: "wit/v0.1.0",
            world: "plugin",
            imports: { default: trappable },
            exports: { default: async },
        });
    }
}

/// The records of the current world. The host converts them for components of older worlds.
pub use bindings::v0_2::mockforge::plugin::types::{Header, Request, RequestAction, Response};

/// Default time one hook call may run: 10 ms.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(10);
/// Default maximum linear memory of one plugin instance: 16 MiB.
pub const DEFAULT_MEMORY_LIMIT: usize = 16 * 1024 * 1024;
/// Default interval of the epoch ticker thread: 1 ms. A call's deadline is a whole number of
/// ticks in which it ran. A call starts and resumes after a yield in the middle of a tick, so it
/// may run for less than its timeout, by up to one tick per yield.
pub const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(1);
/// Largest memory limit a host accepts: 4 GiB, the address space of 32-bit WebAssembly. wasmtime
/// 48 also rejects a pool whose maximum is above its memory reservation, 4 GiB on 64-bit hosts.
pub const MAX_MEMORY_LIMIT: usize = 4 * 1024 * 1024 * 1024;
/// Default number of plugin instances that can be alive at once on one host.
pub const DEFAULT_MAX_INSTANCES: u32 = 128;
/// Maximum number of counter names one attached plugin may use.
pub const MAX_COUNTERS: usize = 64;

/// Settings of a [`PluginHost`].
#[derive(Debug, Clone)]
pub struct PluginHostConfig {
    /// Time one hook call may run before it is interrupted, for plugins attached with
    /// [`LoadedPlugin::attach`].
    pub call_timeout: Duration,
    /// Maximum linear memory of one instance, in bytes: the size of each memory slot of the
    /// pooling allocator, so no attachment can get more (see [`LoadedPlugin::attach_with_limits`]),
    /// and the limit of plugins attached with [`LoadedPlugin::attach`]. At most
    /// [`MAX_MEMORY_LIMIT`].
    pub memory_limit: usize,
    /// Interval between two epoch increments.
    pub epoch_tick: Duration,
    /// Size of the pooling allocator: instances alive at once. A call beyond it fails.
    pub max_instances: u32,
    /// Folder for compiled artifacts, or `None` to compile every loaded plugin in memory.
    pub cache_dir: Option<std::path::PathBuf>,
}

impl Default for PluginHostConfig {
    fn default() -> Self {
        PluginHostConfig {
            call_timeout: DEFAULT_CALL_TIMEOUT,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            epoch_tick: DEFAULT_EPOCH_TICK,
            max_instances: DEFAULT_MAX_INSTANCES,
            cache_dir: None,
        }
    }
}

/// A failure to load a plugin or to run one of its hooks.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// The bytes are not a component, or the component implements none of the supported plugin
    /// worlds.
    #[error("invalid plugin: {0}")]
    Invalid(String),
    /// The hook ran longer than the call timeout.
    #[error("the plugin timed out after {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    /// The instance needed more linear memory than the memory limit allows.
    #[error("the plugin exceeded its memory limit of {limit_bytes} bytes")]
    OutOfMemory { limit_bytes: usize },
    /// The hook trapped, for example on `unreachable` or a stack overflow.
    #[error("the plugin trapped: {0}")]
    Trap(String),
    /// The hook returned a value the edge cannot use.
    #[error("the plugin returned an invalid result: {0}")]
    InvalidResult(String),
    /// The host itself failed, for example because every pooled instance slot is in use.
    #[error("the plugin host failed: {0}")]
    Host(String),
}

impl PluginError {
    /// Returns the kind of failure as a short name for metrics and logs: `invalid`, `timeout`,
    /// `out_of_memory`, `trap`, `invalid_result` or `host`.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Invalid(_) => "invalid",
            PluginError::Timeout { .. } => "timeout",
            PluginError::OutOfMemory { .. } => "out_of_memory",
            PluginError::Trap(_) => "trap",
            PluginError::InvalidResult(_) => "invalid_result",
            PluginError::Host(_) => "host",
        }
    }
}

/// Returns the checksum of a plugin file as the marketplace writes it: `sha256:` and 64 lowercase
/// hex digits.
pub fn checksum(wasm: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(wasm)))
}

/// Returns the hex digest of a `sha256:` checksum, or `None` when it is not in that form.
pub fn checksum_hex(checksum: &str) -> Option<&str> {
    let hex = checksum.strip_prefix("sha256:")?;
    let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then_some(hex)
}

/// Shared handle to a loaded plugin.
pub type SharedPlugin = Arc<LoadedPlugin>;
