//! Real-world documents from the optional spec corpus, found at `$MOCKFORGE_SPEC_CORPUS` or
//! `~/.cache/mockforge/spec-corpus`. Each test prints a note and passes when its file is absent,
//! unless `MOCKFORGE_REQUIRE_CORPUS` is set (as CI does), which turns a missing file into a failure.

use std::path::PathBuf;

use mockforge_engine::{compile, MockOptions};

use crate::common::{get, header, json};

pub fn corpus_file(name: &str) -> Option<String> {
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
    let compiled = compile(&text, MockOptions::default())
        .unwrap_or_else(|error| panic!("{:#?}", error.diagnostics));
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
