//! Criterion benchmarks of the edge's request path in process, without sockets: tenant
//! routing, the engine's example and generated responses, and the whole `handle` function.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use mockforge_benches::{get, petstore_mock, petstore_snapshot};
use mockforge_edge::{handle, route, Lookup};
use mockforge_engine::MockRequest;

/// Deployments in the benchmark snapshot, so lookups run in a table of realistic size.
const DEPLOYMENTS: usize = 1000;

fn request_path(c: &mut Criterion) {
    let snapshot = petstore_snapshot(DEPLOYMENTS);
    let mock = petstore_mock();
    let list = get("/_m/org7/p7/pets?limit=2");
    let generated = get("/_m/org7/p7/owners/42");

    c.bench_function("route_match", |b| {
        b.iter(|| {
            let route = route::resolve(black_box(&list), "localhost").expect("path form");
            matches!(
                snapshot.lookup(route.org, route.deployment),
                Lookup::Found(_)
            )
        })
    });

    let engine_request = |parts: &http::request::Parts, path: &'static str| {
        let request = MockRequest {
            method: &parts.method,
            path,
            query: None,
            headers: &parts.headers,
            body: b"",
        };
        mock.respond(black_box(&request)).expect("mock response")
    };
    c.bench_function("render_example", |b| {
        b.iter(|| engine_request(&list, "/pets"))
    });
    c.bench_function("render_generated", |b| {
        b.iter(|| engine_request(&generated, "/owners/42"))
    });

    c.bench_function("handle_example", |b| {
        b.iter(|| handle(&snapshot, "localhost", black_box(&list), b""))
    });
    c.bench_function("handle_generated", |b| {
        b.iter(|| handle(&snapshot, "localhost", black_box(&generated), b""))
    });
}

criterion_group!(benches, request_path);
criterion_main!(benches);
