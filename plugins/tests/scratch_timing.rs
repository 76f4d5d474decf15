use std::sync::Arc;
use mockforge_plugins::*;
#[test]
fn scratch() {
    let host = PluginHost::new(PluginHostConfig::default()).unwrap();
    let wasm = examples::plugin_file("pass-through");
    let p = host.load(&checksum(&wasm), &wasm).unwrap();
    let c = Arc::new(host::Counters::default());
    for _ in 0..100 { p.time_instantiate(&c); }
    let mut total = std::time::Duration::ZERO;
    for _ in 0..1000 { total += p.time_instantiate(&c); }
    eprintln!("instantiate+drop: {:?}", total / 1000);
}
