//! Compiled components on disk, keyed by the plugin's checksum and the engine's compatibility
//! hash (which covers the wasmtime version and the engine settings).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;
use wasmtime::Engine;

use crate::PluginError;

/// Returns the compiled component for `wasm`, from `cache_dir` when an artifact is there, else
/// compiled now and written to `cache_dir` for the next load.
pub(crate) fn load_component(
    engine: &Engine,
    cache_dir: Option<&Path>,
    checksum_hex: &str,
    wasm: &[u8],
) -> Result<Component, PluginError> {
    let Some(cache_dir) = cache_dir else {
        return Component::new(engine, wasm).map_err(invalid);
    };

    let path = artifact_path(engine, cache_dir, checksum_hex);
    if path.is_file() {
        // SAFETY: only `write_artifact` below writes into the cache folder, and it writes the
        // output of `Engine::precompile_component`; the file name contains the engine's
        // compatibility hash, and `deserialize_file` checks the header again.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %format!("{error:#}"), "failed to load a cached plugin artifact; compiling again");
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    let compiled = engine.precompile_component(wasm).map_err(invalid)?;
    if let Err(error) = write_artifact(cache_dir, &path, &compiled) {
        tracing::warn!(path = %path.display(), %error, "failed to write a compiled plugin to the cache");
    }
    // SAFETY: `compiled` was produced by `precompile_component` of this very engine.
    unsafe { Component::deserialize(engine, &compiled) }.map_err(invalid)
}

fn artifact_path(engine: &Engine, cache_dir: &Path, checksum_hex: &str) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    cache_dir.join(format!("{checksum_hex}-{:016x}.cwasm", hasher.finish()))
}

/// Writes through a temporary file and a rename, so a reader never sees half an artifact.
fn write_artifact(cache_dir: &Path, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(cache_dir)?;
    let temporary = cache_dir.join(format!(
        ".{}.{}.{:016x}.tmp",
        path.file_name().and_then(|name| name.to_str()).unwrap_or("artifact"),
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::write(&temporary, compiled)?;
    std::fs::rename(&temporary, path)
}

fn invalid(error: wasmtime::Error) -> PluginError {
    PluginError::Invalid(format!("{error:#}"))
}
