//! Engine benchmarks: compiling documents, matching routes and building response bodies.
//!
//! The GitHub document comes from the spec corpus (`$MOCKFORGE_SPEC_CORPUS` or
//! `~/.cache/mockforge/spec-corpus`, filled by `scripts/spec-corpus.sh`); its benchmarks are
//! skipped with a note when the file is absent. The other inputs are generated here.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http::{HeaderMap, Method};
use mockforge_engine::{compile, Mock, MockOptions, MockRequest, Validation};

fn corpus_document(name: &str) -> Option<String> {
    let directory = match std::env::var_os("MOCKFORGE_SPEC_CORPUS") {
        Some(directory) => PathBuf::from(directory),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/mockforge/spec-corpus"),
    };
    let path = directory.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) => {
            eprintln!("skipped: {} is not readable ({error})", path.display());
            None
        }
    }
}

/// Builds an OpenAPI 3.0 document with `operations` operations: one GET and one POST per path,
/// each path with a parameter and a shared component schema.
fn generated_document(operations: usize) -> String {
    let mut paths = serde_json::Map::new();
    for index in 0..operations.div_ceil(2) {
        let item = serde_json::json!({
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
            "get": {"responses": {"200": {"description": "ok", "content": {"application/json":
                {"schema": {"$ref": "#/components/schemas/Item"}}}}}},
            "post": {"requestBody": {"content": {"application/json":
                {"schema": {"$ref": "#/components/schemas/Item"}}}},
                "responses": {"201": {"description": "created"}}}
        });
        paths.insert(format!("/resources{index}/{{id}}"), item);
    }
    serde_json::json!({
        "openapi": "3.0.3",
        "info": {"title": "generated", "version": "1"},
        "paths": paths,
        "components": {"schemas": {"Item": {"type": "object", "required": ["id", "name"],
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}}}}}}
    })
    .to_string()
}

fn get_request<'a>(path: &'a str, headers: &'a HeaderMap) -> MockRequest<'a> {
    MockRequest {
        method: &Method::GET,
        path,
        query: None,
        headers,
        body: &[],
    }
}

fn github(criterion: &mut Criterion) {
    let Some(text) = corpus_document("github-30.json") else {
        return;
    };
    let mut group = criterion.benchmark_group("github");
    group.sample_size(10);
    group.bench_function("compile", |bencher| {
        bencher.iter(|| compile(black_box(&text), MockOptions::default()).unwrap())
    });
    group.finish();

    let mock = compile(&text, MockOptions::default()).unwrap().mock;
    criterion.bench_function("github/route_match", |bencher| {
        bencher.iter(|| {
            mock.find_operation(
                black_box(&Method::GET),
                black_box("/repos/octocat/hello-world/pulls/42/comments"),
            )
        })
    });
    let headers = HeaderMap::new();
    // `GET /repos/{owner}/{repo}` has a named example, rendered at compile time.
    criterion.bench_function("github/respond_example", |bencher| {
        let request = get_request("/repos/octocat/hello-world", &headers);
        bencher.iter(|| mock.respond(black_box(&request)).unwrap())
    });
}

/// The generated-body benchmarks use a schema without examples and vary the path, so that
/// every iteration generates and none is served from the cache.
fn generation(criterion: &mut Criterion) {
    let document = r##"{"openapi": "3.0.3", "info": {"title": "g", "version": "1"},
      "paths": {"/users/{id}": {"get": {"responses": {"200": {"description": "ok",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/User"}}}}}}}},
      "components": {"schemas": {"User": {"type": "object", "required": ["id", "email", "name"],
        "properties": {"id": {"type": "integer", "minimum": 1}, "email": {"type": "string", "format": "email"},
          "name": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
          "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
          "address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}}}}}}"##;
    let options = MockOptions {
        validation: Validation::Off,
        ..MockOptions::default()
    };
    let mock: Mock = compile(document, options).unwrap().mock;
    let headers = HeaderMap::new();
    let paths: Vec<String> = (0..100_000).map(|index| format!("/users/{index}")).collect();
    let mut next = 0;
    criterion.bench_function("generate/user_schema", |bencher| {
        bencher.iter(|| {
            next = (next + 1) % paths.len();
            mock.respond(&get_request(&paths[next], &headers)).unwrap()
        })
    });
}

fn compile_scaling(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("compile_generated");
    group.sample_size(10);
    for operations in [1_000, 5_000, 20_000] {
        let text = generated_document(operations);
        group.throughput(Throughput::Elements(operations as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(operations),
            &text,
            |bencher, text| bencher.iter(|| compile(black_box(text), MockOptions::default()).unwrap()),
        );
    }
    group.finish();
}

criterion_group!(benches, github, generation, compile_scaling);
criterion_main!(benches);
