//! The marketplace API: publishing, search, reads, downloads and verification of plugins,
//! templates and scenarios, and plugins and templates at deployment creation.

use mockforge_plugins::examples::plugin_file;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::harness::{assert_error, petstore, read, TestServer};

fn plugin_form(name: &str, version: &str, category: &str, wasm: Vec<u8>) -> Form {
    Form::new()
        .text("name", name.to_owned())
        .text("version", version.to_owned())
        .text("description", format!("{name}: a test plugin"))
        .text("category", category.to_owned())
        .part("wasm_file", Part::bytes(wasm).file_name("plugin.wasm"))
}

async fn send_form(server: &TestServer, path: &str, token: Option<&str>, form: Form) -> (StatusCode, Value) {
    let mut request = server.client.post(server.url(path)).multipart(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    read(request.send().await.unwrap()).await
}

pub(crate) async fn publish_plugin(server: &TestServer, token: &str, name: &str, version: &str, wasm: Vec<u8>) -> (StatusCode, Value) {
    send_form(server, "/api/v1/plugins/publish", Some(token), plugin_form(name, version, "headers", wasm)).await
}

/// Builds a `tar.gz` package. Names go into the raw header, so tests can write `..` and
/// absolute paths that the `tar` builder itself rejects.
pub(crate) fn package(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for (path, kind, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        if *kind == tar::EntryType::Symlink {
            header.set_link_name("/etc/passwd").unwrap();
        }
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

pub(crate) fn good_package() -> Vec<u8> {
    package(&[("files/", tar::EntryType::Directory, b""), ("files/readme.md", tar::EntryType::Regular, b"# hello")])
}

pub(crate) fn template_manifest(name: &str, version: &str) -> Value {
    json!({
        "name": name,
        "version": version,
        "description": "CORS on and a fixed seed",
        "category": "testing",
        "settings": { "cors_enabled": true, "chaos": { "error_rate": 0.0 } },
    })
}

fn scenario_manifest(name: &str, version: &str) -> Value {
    json!({
        "name": name,
        "version": version,
        "description": "List pets, then read one",
        "category": "ecommerce",
        "steps": [ { "method": "GET", "path": "/pets" }, { "method": "GET", "path": "/pets/1" } ],
    })
}

pub(crate) async fn publish_package(server: &TestServer, token: &str, kind: &str, manifest: &Value, bytes: Vec<u8>) -> (StatusCode, Value) {
    let form = Form::new()
        .text("manifest", manifest.to_string())
        .part("package", Part::bytes(bytes).file_name("package.tar.gz"));
    send_form(server, &format!("/api/v1/{kind}/publish"), Some(token), form).await
}

async fn anonymous_get(server: &TestServer, path: &str) -> (StatusCode, Value) {
    server.request(reqwest::Method::GET, path, None, None).await
}

async fn anonymous_post(server: &TestServer, path: &str, body: &Value) -> (StatusCode, Value) {
    server.request(reqwest::Method::POST, path, None, Some(body)).await
}

backend_tests! {
    async fn plugin_publish_read_download(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let alice = server.register("alice").await;
        let wasm = plugin_file("add-header");
        let checksum = mockforge_plugins::checksum(&wasm);

        let (status, body) = publish_plugin(&server, &alice.token, "add-header", "1.0.0", wasm.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["name"], "add-header");
        assert_eq!(body["version"], "1.0.0");
        assert_eq!(body["checksum"], checksum.as_str());
        assert_eq!(body["message"], "Plugin published successfully");
        let stored = server
            .data_dir()
            .join("artifacts/plugins")
            .join(format!("{}.wasm", checksum.strip_prefix("sha256:").unwrap()));
        assert_eq!(std::fs::read(stored).unwrap(), wasm);

        let (status, plugin) = anonymous_get(&server, "/api/v1/plugins/add-header").await;
        assert_eq!(status, StatusCode::OK, "{plugin}");
        assert_eq!(plugin["author"], "alice");
        assert_eq!(plugin["category"], "headers");
        assert_eq!(plugin["latest_version"], "1.0.0");
        assert_eq!(plugin["downloads_total"], 0);
        assert_eq!(plugin["verified"], false);

        let (status, version) = anonymous_get(&server, "/api/v1/plugins/add-header/versions/1.0.0").await;
        assert_eq!(status, StatusCode::OK, "{version}");
        assert_eq!(version["checksum"], checksum.as_str());
        assert!(version["published_at"].is_string(), "{version}");
        let download_url = version["download_url"].as_str().unwrap().to_owned();
        assert_eq!(download_url, "/api/v1/plugins/add-header/versions/1.0.0/download");

        let response = server.client.get(server.url(&download_url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/wasm");
        assert_eq!(response.bytes().await.unwrap().to_vec(), wasm);
        let (_, plugin) = anonymous_get(&server, "/api/v1/plugins/add-header").await;
        assert_eq!(plugin["downloads_total"], 1);

        let (status, body) = anonymous_get(&server, "/api/v1/plugins/missing").await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        let (status, body) = anonymous_get(&server, "/api/v1/plugins/add-header/versions/9.9.9").await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    }

    async fn plugin_publish_rejects_invalid(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let alice = server.register("alice").await;
        let good = plugin_file("pass-through");

        let cases: [(&str, &str, Vec<u8>, &str); 5] = [
            ("text file", "1.0.0", b"not wasm".to_vec(), "wasm_file"),
            ("core module", "1.0.0", b"\0asm\x01\0\0\0".to_vec(), "wasm_file"),
            ("two-part version", "1.0", good.clone(), "version"),
            ("word version", "latest", good.clone(), "version"),
            ("leading v", "v1.0.0", good.clone(), "version"),
        ];
        for (label, version, wasm, field) in cases {
            let (status, body) = publish_plugin(&server, &alice.token, "checked", version, wasm).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(body["details"]["field"], field, "{label}: {body}");
        }

        // Publishing a valid component of another world fails with a message naming the accepted worlds.
        let (status, body) = publish_plugin(&server, &alice.token, "checked", "1.0.0", plugin_file("wrong-world")).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "wasm_file", "{body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(
                "the component does not implement a supported plugin world \
                 (mockforge:plugin/plugin@0.2.0 or mockforge:plugin/plugin@0.1.0)"
            ),
            "{body}"
        );

        let (status, body) = publish_plugin(&server, &alice.token, "Bad_Name", "1.0.0", good.clone()).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "name");

        let form = Form::new().text("name", "no-file").text("version", "1.0.0").text("category", "misc");
        let (status, body) = send_form(&server, "/api/v1/plugins/publish", Some(&alice.token), form).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "wasm_file");

        let (status, body) =
            send_form(&server, "/api/v1/plugins/publish", None, plugin_form("anonymous", "1.0.0", "misc", good.clone())).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        // The free plan allows files up to 5 MiB.
        let oversized = vec![0u8; 5 * 1024 * 1024 + 1];
        let (status, body) = publish_plugin(&server, &alice.token, "big", "1.0.0", oversized).await;
        assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");

        let (status, body) = anonymous_post(&server, "/api/v1/plugins/search", &json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["total"], 0, "rejected uploads must not be listed: {body}");
    }

    async fn plugin_versions_are_immutable(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;
        let wasm = plugin_file("add-header");

        let (status, body) = publish_plugin(&server, &alice.token, "add-header", "1.0.0", wasm.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = publish_plugin(&server, &alice.token, "add-header", "1.0.0", plugin_file("pass-through")).await;
        assert_error(status, &body, StatusCode::CONFLICT, "CONFLICT");

        let (status, body) = publish_plugin(&server, &alice.token, "add-header", "1.1.0", wasm.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = publish_plugin(&server, &alice.token, "add-header", "1.0.5", wasm.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (_, plugin) = anonymous_get(&server, "/api/v1/plugins/add-header").await;
        assert_eq!(plugin["latest_version"], "1.1.0", "{plugin}");
        assert_eq!(plugin["versions"].as_array().unwrap().len(), 3, "{plugin}");

        // The name belongs to alice's organization.
        let (status, body) = publish_plugin(&server, &bob.token, "add-header", "2.0.0", wasm.clone()).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
        let (status, _) = anonymous_get(&server, "/api/v1/plugins/add-header/versions/2.0.0").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, plugin) = anonymous_get(&server, "/api/v1/plugins/add-header").await;
        assert_eq!(plugin["latest_version"], "1.1.0", "{plugin}");
    }

    async fn plugin_search_filters_and_pages(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let alice = server.register("alice").await;
        let wasm = plugin_file("pass-through");
        for (name, category) in [("header-one", "headers"), ("header-two", "headers"), ("auth-key", "security")] {
            let form = plugin_form(name, "1.0.0", category, wasm.clone());
            let (status, body) = send_form(&server, "/api/v1/plugins/publish", Some(&alice.token), form).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }

        let (status, body) = anonymous_post(&server, "/api/v1/plugins/search", &json!({"query": "HEADER"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["total"], 2, "{body}");
        let first = &body["plugins"][0];
        assert_eq!(first["version"], "1.0.0");
        assert_eq!(first["category"], "headers");
        assert_eq!(first["verified"], false);
        assert!(first["downloads"].is_number(), "{body}");

        let (_, body) = anonymous_post(&server, "/api/v1/plugins/search", &json!({"category": "security"})).await;
        assert_eq!(body["total"], 1, "{body}");
        assert_eq!(body["plugins"][0]["name"], "auth-key");

        let (_, body) = anonymous_post(&server, "/api/v1/plugins/search", &json!({"limit": 1, "offset": 1})).await;
        assert_eq!(body["total"], 3, "{body}");
        assert_eq!(body["plugins"].as_array().unwrap().len(), 1, "{body}");

        // The wildcard characters of LIKE match only themselves.
        let (_, body) = anonymous_post(&server, "/api/v1/plugins/search", &json!({"query": "%"})).await;
        assert_eq!(body["total"], 0, "{body}");

        let (status, body) = anonymous_post(&server, "/api/v1/plugins/search", &json!({"limit": 0})).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        let (status, body) = anonymous_post(&server, "/api/v1/plugins/search", &json!({"offset": -1})).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    }

    async fn plugin_verify_needs_admin(backend) {
        let server = TestServer::start(backend, |config| config.admin_emails = vec!["root@example.com".to_owned()]).await;
        let alice = server.register("alice").await;
        let root = server.register("root").await;
        let (status, body) = publish_plugin(&server, &alice.token, "add-header", "1.0.0", plugin_file("add-header")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let (status, body) = server.post("/api/v1/admin/plugins/add-header/verify", &alice.token, &json!({})).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");

        let (status, body) = server.post("/api/v1/admin/plugins/add-header/verify", &root.token, &json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["verified"], true);
        let (_, body) = anonymous_post(&server, "/api/v1/plugins/search", &json!({"query": "add"})).await;
        assert_eq!(body["plugins"][0]["verified"], true, "{body}");

        let (status, body) = server.post("/api/v1/admin/plugins/missing/verify", &root.token, &json!({})).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    }

    async fn deployment_pins_plugins(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let alice = server.register("alice").await;
        let wasm = plugin_file("add-header");
        let (status, body) = publish_plugin(&server, &alice.token, "add-header", "1.0.0", wasm.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let request = json!({
            "name": "with plugin",
            "openapi_spec": petstore(),
            "config_json": { "plugins": [ { "name": "add-header", "version": "1.0.0", "config": { "name": "x-a" } } ] },
        });
        let (status, body) = server.post("/api/v1/deployments", &alice.token, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let pinned = &body["config_json"]["plugins"][0];
        assert_eq!(pinned["checksum"], mockforge_plugins::checksum(&wasm).as_str(), "{body}");
        assert_eq!(pinned["config"], json!({ "name": "x-a" }));

        for (label, plugins) in [
            ("unknown plugin", json!([{ "name": "ghost", "version": "1.0.0" }])),
            ("unknown version", json!([{ "name": "add-header", "version": "2.0.0" }])),
            ("missing version", json!([{ "name": "add-header" }])),
            ("not a list", json!({ "name": "add-header" })),
        ] {
            let request = json!({ "name": "broken", "openapi_spec": petstore(), "config_json": { "plugins": plugins } });
            let (status, body) = server.post("/api/v1/deployments", &alice.token, &request).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(body["details"]["field"], "config_json", "{label}: {body}");
        }
    }

    async fn legacy_world_plugin_publishes_and_pins(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let alice = server.register("alice").await;
        let wasm = plugin_file("legacy-pass-through");
        let (status, body) = publish_plugin(&server, &alice.token, "legacy-pass-through", "1.0.0", wasm.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "a mockforge:plugin@0.1.0 component must still publish: {body}");
        assert_eq!(body["checksum"], mockforge_plugins::checksum(&wasm).as_str(), "{body}");

        let request = json!({
            "name": "with legacy plugin",
            "openapi_spec": petstore(),
            "config_json": { "plugins": [ { "name": "legacy-pass-through", "version": "1.0.0" } ] },
        });
        let (status, body) = server.post("/api/v1/deployments", &alice.token, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let pinned = &body["config_json"]["plugins"][0];
        assert_eq!(pinned["checksum"], mockforge_plugins::checksum(&wasm).as_str(), "{body}");
    }

    async fn template_publish_and_deploy(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;

        let manifest = template_manifest("cors-on", "1.0.0");
        let (status, body) = publish_package(&server, &alice.token, "templates", &manifest, good_package()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["message"], "Template published successfully");
        let (status, body) = publish_package(&server, &alice.token, "templates", &manifest, good_package()).await;
        assert_error(status, &body, StatusCode::CONFLICT, "CONFLICT");
        let (status, body) =
            publish_package(&server, &bob.token, "templates", &template_manifest("cors-on", "2.0.0"), good_package()).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");

        let (status, body) = anonymous_get(&server, "/api/v1/templates/cors-on/1.0.0").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["manifest"], manifest);
        assert_eq!(body["download_url"], "/api/v1/templates/cors-on/1.0.0/download");
        let response = server.client.get(server.url("/api/v1/templates/cors-on/1.0.0/download")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.bytes().await.unwrap().to_vec(), good_package());

        let (status, body) = anonymous_post(&server, "/api/v1/templates/search", &json!({"query": "cors", "category": "testing"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["total"], 1, "{body}");
        assert_eq!(body["templates"][0]["name"], "cors-on");

        let request = json!({
            "name": "from template",
            "openapi_spec": petstore(),
            "template": "cors-on@1.0.0",
            "config_json": { "chaos": { "error_rate": 0.5 } },
        });
        let (status, body) = server.post("/api/v1/deployments", &bob.token, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["config_json"], json!({ "cors_enabled": true, "chaos": { "error_rate": 0.5 } }));

        let request = json!({ "name": "missing template", "openapi_spec": petstore(), "template": "cors-on@9.0.0" });
        let (status, body) = server.post("/api/v1/deployments", &bob.token, &request).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "template");
    }

    async fn package_rejects_unsafe_entries(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let alice = server.register("alice").await;
        let cases: [(&str, Vec<u8>); 6] = [
            ("parent folder", package(&[("../escape.txt", tar::EntryType::Regular, b"x")])),
            ("nested parent folder", package(&[("a/../../escape.txt", tar::EntryType::Regular, b"x")])),
            ("absolute path", package(&[("/etc/cron.d/x", tar::EntryType::Regular, b"x")])),
            ("symbolic link", package(&[("link", tar::EntryType::Symlink, b"")])),
            ("hard link", package(&[("hard", tar::EntryType::Link, b"")])),
            ("not gzip", b"plain text".to_vec()),
        ];
        for (index, (label, bytes)) in cases.into_iter().enumerate() {
            let manifest = scenario_manifest("unsafe", &format!("1.0.{index}"));
            let (status, body) = publish_package(&server, &alice.token, "scenarios", &manifest, bytes).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(body["details"]["field"], "package", "{label}: {body}");
        }

        let form = Form::new().text("manifest", "{not json").part("package", Part::bytes(good_package()));
        let (status, body) = send_form(&server, "/api/v1/scenarios/publish", Some(&alice.token), form).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "manifest");

        let mut no_steps = scenario_manifest("unsafe", "1.0.0");
        no_steps["steps"] = json!([]);
        let (status, body) = publish_package(&server, &alice.token, "scenarios", &no_steps, good_package()).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

        let mut bad_version = scenario_manifest("unsafe", "1.0.0");
        bad_version["version"] = json!("one");
        let (status, body) = publish_package(&server, &alice.token, "scenarios", &bad_version, good_package()).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "version");
    }

    async fn scenario_publish_and_read(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let alice = server.register("alice").await;
        let manifest = scenario_manifest("pet-flow", "1.0.0");
        let (status, body) = publish_package(&server, &alice.token, "scenarios", &manifest, good_package()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["message"], "Scenario published successfully");

        let (status, body) = anonymous_get(&server, "/api/v1/scenarios/pet-flow").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["latest_version"], "1.0.0");
        assert_eq!(body["author"], "alice");

        let (status, body) = anonymous_get(&server, "/api/v1/scenarios/pet-flow/versions/1.0.0").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["manifest"], manifest);
        let download_url = body["download_url"].as_str().unwrap().to_owned();
        let response = server.client.get(server.url(&download_url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);

        let (status, body) = anonymous_post(&server, "/api/v1/scenarios/search", &json!({"query": "read one"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["total"], 1, "{body}");
        assert_eq!(body["scenarios"][0]["downloads"], 1, "{body}");
    }
}
