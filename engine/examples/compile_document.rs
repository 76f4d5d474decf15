//! Compiles one document file and prints the compile time, operation count and warnings.
//!
//! Usage: `cargo run --release -p mockforge-engine --example compile_document -- FILE [REQUEST_PATH]`

use std::time::Instant;

use http::{HeaderMap, Method};
use mockforge_engine::{compile, MockOptions, MockRequest};

fn main() {
    let mut arguments = std::env::args().skip(1);
    let Some(file) = arguments.next() else {
        eprintln!("usage: compile_document FILE [REQUEST_PATH]");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|error| panic!("cannot read {file}: {error}"));

    let started = Instant::now();
    let compiled = match compile(&text, MockOptions::default()) {
        Ok(compiled) => compiled,
        Err(error) => {
            for diagnostic in &error.diagnostics {
                println!(
                    "{:?} {} {}",
                    diagnostic.severity, diagnostic.pointer, diagnostic.message
                );
            }
            std::process::exit(1);
        }
    };
    let elapsed = started.elapsed();
    println!(
        "{file}: compiled in {elapsed:?}, {} operations, {} warnings",
        compiled.mock.operation_count(),
        compiled.warnings.len()
    );
    for warning in compiled.warnings.iter().take(20) {
        println!("  warning {} {}", warning.pointer, warning.message);
    }

    if let Some(path) = arguments.next() {
        let headers = HeaderMap::new();
        let request = MockRequest {
            method: &Method::GET,
            path: &path,
            query: None,
            headers: &headers,
            body: &[],
        };
        let started = Instant::now();
        let iterations = 10_000;
        for _ in 0..iterations {
            let _ = compiled.mock.respond(&request);
        }
        let per_request = started.elapsed() / iterations;
        match compiled.mock.respond(&request) {
            Ok(response) => {
                println!(
                    "GET {path}: {} ({} bytes, {per_request:?} per request)",
                    response.status,
                    response.body.len()
                );
                if std::env::var_os("SHOW_BODY").is_some() {
                    println!(
                        "{:?}\n{}",
                        response.headers,
                        String::from_utf8_lossy(&response.body)
                    );
                }
            }
            Err(error) => println!("GET {path}: {error}"),
        }
    }
}
