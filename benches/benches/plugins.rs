//! Criterion benchmarks of the request-path cost of plugins: the whole in-process `handle`
//! function for a deployment without plugins, with the pass-through plugin (both hooks, no
//! change) and with the add-header plugin (both hooks, a new header on every response).
//!
//! The plugins come from `scripts/build-plugins.sh` (or `MOCKFORGE_PLUGIN_DIR`).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use mockforge_benches::{get, petstore_snapshot};
use mockforge_edge::plugins::host::examples::plugin_file;
use mockforge_edge::plugins::host::{checksum, PluginHost, PluginHostConfig};
use mockforge_edge::plugins::PluginChain;
use mockforge_edge::{handle, Lookup, Snapshot};

/// Deployments in the benchmark snapshot, as in the `request_path` benchmark.
const DEPLOYMENTS: usize = 1000;

/// Builds the benchmark snapshot where deployment `org7/p7` runs `plugin` with `config`.
fn snapshot_with(host: &PluginHost, plugin: &str, config: &str) -> Snapshot {
    let snapshot = petstore_snapshot(DEPLOYMENTS);
    let id = match snapshot.lookup("org7", "p7") {
        Lookup::Found(served) => served.id,
        other => panic!("the benchmark snapshot has no org7/p7: {other:?}"),
    };
    let wasm = plugin_file(plugin);
    let loaded = host
        .load(&checksum(&wasm), &wasm)
        .unwrap_or_else(|error| panic!("plugin {plugin} does not load: {error}"));
    let attached = loaded.attach(config.to_owned());
    let chain = PluginChain::from_attached([(plugin.to_owned(), "1.0.0".to_owned(), attached)]);
    snapshot.with_plugins(HashMap::from([(id, Arc::new(chain))]))
}

fn plugins(c: &mut Criterion) {
    let host = PluginHost::new(PluginHostConfig::default()).expect("the plugin host starts");
    let request = get("/_m/org7/p7/pets?limit=2");

    let without = petstore_snapshot(DEPLOYMENTS);
    let pass_through = snapshot_with(&host, "pass-through", "null");
    let add_header = snapshot_with(&host, "add-header", r#"{"name": "x-bench", "value": "1"}"#);

    let response = handle(&add_header, "localhost", &request, b"");
    assert_eq!(response.headers()["x-bench"], "1", "the add-header plugin did not run");

    c.bench_function("handle_without_plugins", |b| {
        b.iter(|| handle(&without, "localhost", black_box(&request), b""))
    });
    c.bench_function("handle_pass_through_plugin", |b| {
        b.iter(|| handle(&pass_through, "localhost", black_box(&request), b""))
    });
    c.bench_function("handle_add_header_plugin", |b| {
        b.iter(|| handle(&add_header, "localhost", black_box(&request), b""))
    });
}

criterion_group!(benches, plugins);
criterion_main!(benches);
