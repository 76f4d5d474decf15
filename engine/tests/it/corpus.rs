//! Real-world documents from the optional spec corpus, found at `$MOCKFORGE_SPEC_CORPUS` or
//! `~/.cache/mockforge/spec-corpus`. Each test prints a note and passes when its file is absent,
//! unless `MOCKFORGE_REQUIRE_CORPUS` is set (as CI does), which turns a missing file into a failure.

use std::path::PathBuf;
use std::time::Instant;

use mockforge_engine::{compile, MockOptions};

use crate::common::{get, header, json};

fn corpus_file(name: &str) -> Option<String> {
    let directory = match std::env::var_os("MOCKFORGE_SPEC_CORPUS") {
        Some(directory) => PathBuf::from(directory),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/mockforge/spec-corpus"),
    };
    let path = directory.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) => {
            let required = std::env::var("MOCKFORGE_REQUIRE_CORPUS")
                .is_ok_and(|value| !value.is_empty() && value != "0");
            assert!(
                !required,
                "corpus file {} is not readable ({error}) and MOCKFORGE_REQUIRE_CORPUS is set",
                path.display()
            );
            println!(
                "skipped: corpus file {} is not readable ({error})",
                path.display()
            );
            None
        }
    }
}

#[test]
fn github_repository_example_served() {
    let Some(text) = corpus_file("github-30.json") else {
        return;
    };
    let started = Instant::now();
    let compiled = compile(&text, MockOptions::default())
        .unwrap_or_else(|error| panic!("{:#?}", error.diagnostics));
    let elapsed = started.elapsed();
    println!(
        "github-30.json compiled in {elapsed:?} with {} warnings",
        compiled.warnings.len()
    );
    // A generous bound that still catches a quadratic regression: a debug build takes about
    // 0.8 s and a release build about 0.17 s on a 2-core machine.
    assert!(
        elapsed.as_secs() < 15,
        "compiling github-30.json took {elapsed:?}"
    );
    assert!(
        compiled.mock.operation_count() > 1000,
        "{}",
        compiled.mock.operation_count()
    );

    let response = get(&compiled.mock, "/repos/octocat/hello-world");
    assert_eq!(response.status, 200);
    assert!(header(&response, "content-type")
        .unwrap()
        .starts_with("application/json"));
    let body = json(&response);
    assert!(body.get("full_name").is_some(), "{body}");
}

#[test]
fn corpus_documents_compile_and_answer() {
    let names = [
        "petstore-30.yaml",
        "petstore-31.yaml",
        "petstore-20.yaml",
        "petstore-expanded-20.json",
        "stripe-30.json",
        "kubernetes-30.json",
        "train-travel-31.yaml",
        "discriminators-30.yaml",
        "circular-20.yaml",
        "schema-types-31.yaml",
        "server-vars-30.yaml",
        "multi-media-30.yaml",
        "params-style-30.yaml",
        "galaxy-31.yaml",
        "figma-31.yaml",
        "gitea-30.json",
        "github-webhooks-31.json",
        "gke-30.json",
        "jellyfin-30.json",
        "netbox-30.json",
        "slack-30.json",
        "twilio-30.json",
    ];
    for name in names {
        let Some(text) = corpus_file(name) else {
            continue;
        };
        let compiled = compile(&text, MockOptions::default()).unwrap_or_else(|error| {
            panic!(
                "{name}: {:#?}",
                &error.diagnostics[..error.diagnostics.len().min(5)]
            )
        });
        println!(
            "{name}: {} operations, {} warnings",
            compiled.mock.operation_count(),
            compiled.warnings.len()
        );
    }
}

#[test]
fn petstore_pet_by_id_generated() {
    let Some(text) = corpus_file("petstore-30.yaml") else {
        return;
    };
    let mock = compile(&text, MockOptions::default()).unwrap().mock;
    let response = get(&mock, "/pet/10");
    assert_eq!(response.status, 200);
    let body = json(&response);
    assert!(body.get("name").is_some(), "{body}");
    assert!(body["photoUrls"].is_array(), "{body}");
}

/// Replaces every `{parameter}` in a path template with `1`.
fn concrete_path(template: &str) -> String {
    let mut path = String::new();
    let mut inside = false;
    for character in template.chars() {
        match character {
            '{' => {
                inside = true;
                path.push('1');
            }
            '}' => inside = false,
            _ if !inside => path.push(character),
            _ => {}
        }
    }
    path
}

#[test]
fn corpus_every_operation_answers() {
    let names = [
        "petstore-30.yaml",
        "petstore-31.yaml",
        "petstore-20.yaml",
        "stripe-30.json",
        "kubernetes-30.json",
        "train-travel-31.yaml",
        "discriminators-30.yaml",
        "circular-20.yaml",
        "schema-types-31.yaml",
        "multi-media-30.yaml",
        "galaxy-31.yaml",
        "figma-31.yaml",
        "gitea-30.json",
        "gke-30.json",
        "jellyfin-30.json",
        "netbox-30.json",
        "slack-30.json",
        "twilio-30.json",
        "github-30.json",
    ];
    for name in names {
        let Some(text) = corpus_file(name) else {
            continue;
        };
        // Requests here carry no parameters or bodies, so validation is off.
        let options = MockOptions {
            validation: mockforge_engine::Validation::Off,
            ..MockOptions::default()
        };
        let mock = compile(&text, options).unwrap().mock;
        let document: serde_json::Value = if name.ends_with(".json") {
            serde_json::from_str(&text).unwrap()
        } else {
            serde_yaml::from_str(&text).unwrap()
        };
        let started = Instant::now();
        let mut answered = 0;
        for (template, item) in document["paths"].as_object().unwrap() {
            if template.contains("}{") {
                continue;
            }
            for method in ["get", "put", "post", "delete", "patch"] {
                if item.get(method).is_none() {
                    continue;
                }
                let path = concrete_path(template);
                let response = crate::common::send(&mock, &method.to_ascii_uppercase(), &path, &[])
                    .unwrap_or_else(|error| {
                        panic!("{name}: {method} {template} as {path}: {error}")
                    });
                let is_json =
                    header(&response, "content-type").is_some_and(|value| value.contains("json"));
                if is_json && !response.body.is_empty() {
                    serde_json::from_slice::<serde_json::Value>(&response.body).unwrap_or_else(
                        |error| panic!("{name}: {method} {template}: body is not JSON: {error}"),
                    );
                }
                answered += 1;
            }
        }
        println!(
            "{name}: {answered} operations answered in {:?}",
            started.elapsed()
        );
        assert!(answered > 0, "{name}");
    }
}

#[test]
fn petstore_variants_agree_on_pet() {
    for name in ["petstore-20.yaml", "petstore-31.yaml"] {
        let Some(text) = corpus_file(name) else {
            continue;
        };
        let mock = compile(&text, MockOptions::default()).unwrap().mock;
        let response = get(&mock, "/v2/pet/10");
        assert_eq!(response.status, 200, "{name}");
        let body = json(&response);
        assert!(body["name"].is_string(), "{name}: {body}");
        assert!(body["photoUrls"].is_array(), "{name}: {body}");
    }
}

#[test]
fn multi_media_prefers_json_example() {
    let Some(text) = corpus_file("multi-media-30.yaml") else {
        return;
    };
    let mock = compile(
        &text,
        MockOptions {
            validation: mockforge_engine::Validation::Off,
            ..MockOptions::default()
        },
    )
    .unwrap()
    .mock;
    let response =
        crate::common::send(&mock, "POST", "/multiple-types-multiple-examples", &[]).unwrap();
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(json(&response)["name"], "Fluffy");
    let text_response = crate::common::send(
        &mock,
        "POST",
        "/multiple-types-multiple-examples",
        &[("accept", "text/plain")],
    )
    .unwrap();
    assert_eq!(&text_response.body[..], b"OK");
}

#[test]
fn petstore_xml_generated() {
    let Some(text) = corpus_file("petstore-30.yaml") else {
        return;
    };
    let mock = compile(&text, MockOptions::default()).unwrap().mock;
    let response =
        crate::common::send(&mock, "GET", "/pet/10", &[("accept", "application/xml")]).unwrap();
    assert_eq!(header(&response, "content-type"), Some("application/xml"));
    let body = String::from_utf8(response.body.to_vec()).unwrap();
    assert!(body.starts_with("<?xml"), "{body}");
    assert!(body.contains("<pet>") || body.contains("<Pet>"), "{body}");
    assert!(body.contains("<name>"), "{body}");
}
