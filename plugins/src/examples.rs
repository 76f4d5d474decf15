//! The example and test plugins of `examples/plugins`, for tests and benchmarks.

use std::path::PathBuf;
use std::sync::OnceLock;

/// Environment variable naming the folder with the built plugins, as printed by
/// `scripts/build-plugins.sh`.
pub const PLUGIN_DIR_VARIABLE: &str = "MOCKFORGE_PLUGIN_DIR";

/// Returns the folder with the built example plugins: `MOCKFORGE_PLUGIN_DIR` when set, else the
/// folder that `scripts/build-plugins.sh` prints after building them (once per process).
///
/// # Panics
///
/// Panics with the script's output when the build fails.
pub fn plugin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os(PLUGIN_DIR_VARIABLE) {
            return PathBuf::from(dir);
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-plugins.sh");
        let output = std::process::Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|error| panic!("failed to run {}: {error}", script.display()));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{} failed ({}); set {PLUGIN_DIR_VARIABLE} to a folder of built plugins or fix the build:\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let dir = stdout.lines().last().unwrap_or_default().trim();
        PathBuf::from(dir)
    })
    .clone()
}

/// Reads a built example plugin by crate name, for example `add-header`.
///
/// # Panics
///
/// Panics when the file is missing.
pub fn plugin_file(name: &str) -> Vec<u8> {
    let path = plugin_dir().join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "failed to read plugin {}: {error}; run scripts/build-plugins.sh and set {PLUGIN_DIR_VARIABLE}",
            path.display()
        )
    })
}
