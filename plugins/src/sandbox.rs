//! What a plugin instance can reach: the `host` interface of the plugin world, the WASI 0.2
//! random and clock functions, and nothing else.
//!
//! A Rust guest built for `wasm32-wasip2` imports WASI interfaces through its standard library
//! even when it never uses them (stderr for panic messages, for example). The linker answers
//! `wasi:random/*` and the `now` and `resolution` functions of `wasi:clocks/*`, and defines every
//! other import as a function that traps when called, so a plugin that opens a file, reads the
//! environment or opens a socket fails that call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rand::RngCore;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentType, HasSelf, Linker, Lower};
use wasmtime::{Engine, ResourceLimiter, StoreLimits};

use crate::bindings::{v0_1, v0_2};
use crate::{WorldVersion, MAX_COUNTERS};

/// Data of one store: the hook calls of one attached plugin for one request.
pub(crate) struct StoreState {
    pub(crate) limits: MemoryLimiter,
    pub(crate) counters: Arc<Counters>,
    /// Largest buffer the random functions return, equal to the memory limit.
    pub(crate) max_random_bytes: u64,
    /// Epoch ticks the current call may still run before it is interrupted.
    pub(crate) remaining_ticks: u64,
}

/// The store's [`StoreLimits`], which also records whether a memory growth was denied, so a
/// trap that follows can be reported as an exhausted memory.
pub(crate) struct MemoryLimiter {
    limits: StoreLimits,
    pub(crate) exhausted: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limits: StoreLimits) -> MemoryLimiter {
        MemoryLimiter { limits, exhausted: false }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum);
        if !matches!(allowed, Ok(true)) {
            self.exhausted = true;
        }
        allowed
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.exhausted = true;
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// Named counters of one attached plugin.
#[derive(Debug, Default)]
pub struct Counters {
    values: Mutex<HashMap<String, u64>>,
}

impl Counters {
    fn increment(&self, name: String) -> wasmtime::Result<u64> {
        let mut values = self.values.lock();
        let count = values.len();
        match values.get_mut(&name) {
            Some(value) => {
                *value += 1;
                Ok(*value)
            }
            None if count >= MAX_COUNTERS => Err(wasmtime::format_err!(
                "the plugin uses more than {MAX_COUNTERS} counter names"
            )),
            None => {
                values.insert(name, 1);
                Ok(1)
            }
        }
    }
}

impl v0_2::mockforge::plugin::host::Host for StoreState {
    fn increment_counter(&mut self, name: String) -> wasmtime::Result<u64> {
        self.counters.increment(name)
    }
}

impl v0_2::mockforge::plugin::types::Host for StoreState {}

impl v0_1::mockforge::plugin::host::Host for StoreState {
    fn increment_counter(&mut self, name: String) -> wasmtime::Result<u64> {
        self.counters.increment(name)
    }
}

impl v0_1::mockforge::plugin::types::Host for StoreState {}

/// The `datetime` record of `wasi:clocks/wall-clock`.
#[derive(ComponentType, Lower, Clone, Copy)]
#[component(record)]
struct Datetime {
    seconds: u64,
    nanoseconds: u32,
}

/// Builds the linker for one component: the imports of the plugin world `world`, WASI random
/// and clocks under the exact names the component imports, and traps for everything else.
pub(crate) fn linker_for(engine: &Engine, component: &Component, world: WorldVersion) -> wasmtime::Result<Linker<StoreState>> {
    let mut linker = Linker::new(engine);
    match world {
        WorldVersion::V0_1_0 => {
            v0_1::Plugin::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |state| state)?
        }
        WorldVersion::V0_2_0 => {
            v0_2::Plugin::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |state| state)?
        }
    }

    let started = Instant::now();
    for (name, item) in component.component_type().imports(engine) {
        if !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
            continue;
        }
        let interface = name.split('@').next().unwrap_or(name);
        match interface {
            "wasi:random/random" => {
                let mut instance = linker.instance(name)?;
                instance.func_wrap("get-random-bytes", |store, (len,): (u64,)| {
                    random_bytes(store.data(), len)
                })?;
                instance.func_wrap("get-random-u64", |_, (): ()| Ok((rand::thread_rng().next_u64(),)))?;
            }
            "wasi:random/insecure" => {
                let mut instance = linker.instance(name)?;
                instance.func_wrap("get-insecure-random-bytes", |store, (len,): (u64,)| {
                    random_bytes(store.data(), len)
                })?;
                instance.func_wrap("get-insecure-random-u64", |_, (): ()| {
                    Ok((rand::thread_rng().next_u64(),))
                })?;
            }
            "wasi:random/insecure-seed" => {
                let mut instance = linker.instance(name)?;
                instance.func_wrap("insecure-seed", |_, (): ()| {
                    let mut rng = rand::thread_rng();
                    Ok(((rng.next_u64(), rng.next_u64()),))
                })?;
            }
            "wasi:clocks/wall-clock" => {
                let mut instance = linker.instance(name)?;
                instance.func_wrap("now", |_, (): ()| {
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                    Ok((Datetime {
                        seconds: now.as_secs(),
                        nanoseconds: now.subsec_nanos(),
                    },))
                })?;
                instance.func_wrap("resolution", |_, (): ()| {
                    Ok((Datetime {
                        seconds: 0,
                        nanoseconds: 1,
                    },))
                })?;
            }
            "wasi:clocks/monotonic-clock" => {
                let mut instance = linker.instance(name)?;
                instance.func_wrap("now", move |_, (): ()| {
                    Ok((started.elapsed().as_nanos() as u64,))
                })?;
                instance.func_wrap("resolution", |_, (): ()| Ok((1u64,)))?;
            }
            _ => {}
        }
    }

    linker.define_unknown_imports_as_traps(component)?;
    Ok(linker)
}

fn random_bytes(state: &StoreState, len: u64) -> wasmtime::Result<(Vec<u8>,)> {
    if len > state.max_random_bytes {
        return Err(wasmtime::format_err!(
            "the plugin requested {len} random bytes, more than its memory limit"
        ));
    }
    let mut bytes = vec![0; len as usize];
    rand::thread_rng().fill_bytes(&mut bytes);
    Ok((bytes,))
}
