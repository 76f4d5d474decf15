//! The API's own OpenAPI document: served without credentials, complete, consistent with the
//! router, compilable by the engine, and matching real requests and responses.

use std::collections::BTreeSet;

use mockforge_control_plane::api::openapi::document;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::harness::{petstore, TestServer};

/// Every endpoint of the published API reference, as method and path.
const REFERENCE_OPERATIONS: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/health/detailed"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/api/v1/status"),
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/token/refresh"),
    ("get", "/api/v1/auth/oauth/{provider}/authorize"),
    ("get", "/api/v1/auth/oauth/{provider}/callback"),
    ("get", "/api/v1/auth/verify-email"),
    ("post", "/api/v1/auth/resend-verification"),
    ("get", "/api/v1/organizations"),
    ("get", "/api/v1/organizations/{org_id}"),
    ("get", "/api/v1/organizations/{org_id}/members"),
    ("get", "/api/v1/organizations/{org_id}/audit-logs"),
    ("get", "/api/v1/billing/subscription"),
    ("post", "/api/v1/billing/checkout"),
    ("post", "/api/v1/billing/webhook"),
    ("get", "/api/v1/usage"),
    ("get", "/api/v1/usage/history"),
    ("post", "/api/v1/tokens"),
    ("get", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{token_id}"),
    ("post", "/api/v1/tokens/{token_id}/rotate"),
    ("get", "/api/v1/tokens/rotation-status"),
    ("post", "/api/v1/deployments"),
    ("get", "/api/v1/deployments"),
    ("get", "/api/v1/deployments/{deployment_id}"),
    ("put", "/api/v1/deployments/{deployment_id}/status"),
    ("delete", "/api/v1/deployments/{deployment_id}"),
    ("get", "/api/v1/deployments/{deployment_id}/logs"),
    ("get", "/api/v1/deployments/{deployment_id}/metrics"),
    ("post", "/api/v1/plugins/search"),
    ("get", "/api/v1/plugins/{name}"),
    ("get", "/api/v1/plugins/{name}/versions/{version}"),
    ("post", "/api/v1/plugins/publish"),
    ("post", "/api/v1/templates/search"),
    ("get", "/api/v1/templates/{name}/{version}"),
    ("post", "/api/v1/templates/publish"),
    ("post", "/api/v1/scenarios/search"),
    ("get", "/api/v1/scenarios/{name}"),
    ("get", "/api/v1/scenarios/{name}/versions/{version}"),
    ("post", "/api/v1/scenarios/publish"),
    ("get", "/api/v1/settings/byok"),
    ("put", "/api/v1/settings/byok"),
    ("delete", "/api/v1/settings/byok"),
    ("get", "/api/v1/security/suspicious-activities"),
    ("post", "/api/v1/security/suspicious-activities/{activity_id}/resolve"),
    ("get", "/api/v1/gdpr/export"),
    ("post", "/api/v1/gdpr/delete"),
    ("get", "/api/v1/legal/terms"),
    ("get", "/api/v1/legal/privacy"),
    ("get", "/api/v1/legal/dpa"),
    ("get", "/api/v1/faq"),
    ("post", "/api/v1/support/contact"),
    ("post", "/api/v1/admin/plugins/{name}/verify"),
    ("get", "/api/v1/admin/stats"),
    ("get", "/api/v1/admin/analytics"),
];

/// Routes the server has beyond the reference.
const ADDITIONAL_OPERATIONS: &[(&str, &str)] = &[
    ("get", "/api/v1/openapi.json"),
    ("post", "/api/v1/auth/logout"),
    ("put", "/api/v1/admin/organizations/{org_id}/plan"),
    ("get", "/api/v1/admin/organizations/{org_id}/limits"),
    ("put", "/api/v1/admin/organizations/{org_id}/limits"),
    ("delete", "/api/v1/admin/organizations/{org_id}/limits"),
    ("get", "/api/v1/admin/edges"),
    ("get", "/api/v1/plugins/{name}/versions/{version}/download"),
    ("get", "/api/v1/templates/{name}/{version}/download"),
    ("get", "/api/v1/scenarios/{name}/versions/{version}/download"),
];

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];

/// Returns every operation of the document as (method, path, operation).
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths must be an object") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                found.push((method.to_owned(), path.clone(), operation.clone()));
            }
        }
    }
    found
}

/// Validates `instance` against the component schema `name` of the document with JSON Schema
/// 2020-12, which OpenAPI 3.1 schemas follow, and checks that the top-level object has no keys
/// that the schema does not document.
fn assert_matches_schema(document: &Value, name: &str, instance: &Value) {
    let schema = &document["components"]["schemas"][name];
    assert!(schema.is_object(), "the document has no schema {name}");
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": document["components"],
    });
    let validator = jsonschema::validator_for(&root).expect("the component schemas must be valid JSON Schema");
    let errors: Vec<String> = validator.iter_errors(instance).map(|error| format!("{error} at {}", error.instance_path())).collect();
    assert!(errors.is_empty(), "{instance} does not match schema {name}: {errors:?}");

    let documented: BTreeSet<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    for key in instance.as_object().expect("the instance must be an object").keys() {
        assert!(documented.contains(key.as_str()), "key {key} of {instance} is not a property of schema {name}");
    }
}

/// Replaces each `{parameter}` of a path template with a value of the right form.
fn concrete_path(template: &str) -> String {
    let mut path = String::new();
    for segment in template.split('/').skip(1) {
        path.push('/');
        let value = match segment {
            "{provider}" => "github",
            "{name}" => "no-such-package",
            "{version}" => "1.0.0",
            parameter if parameter.starts_with('{') => "00000000-0000-0000-0000-000000000000",
            literal => literal,
        };
        path.push_str(value);
    }
    path
}

#[test]
fn openapi_document_is_openapi_3_1() {
    let document = serde_json::to_value(document()).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["title"], "MockForge Cloud API");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer_jwt"]["scheme"], "bearer");
    assert_eq!(schemes["bearer_jwt"]["bearerFormat"], "JWT");
    assert_eq!(schemes["api_token"]["scheme"], "bearer");
    let error_properties = &document["components"]["schemas"]["ErrorBody"]["properties"];
    for property in ["error", "code", "details"] {
        assert!(error_properties.get(property).is_some(), "ErrorBody lacks {property}");
    }
}

#[test]
fn openapi_lists_every_reference_path() {
    let document = serde_json::to_value(document()).unwrap();
    let documented: BTreeSet<(String, String)> =
        operations(&document).into_iter().map(|(method, path, _)| (method, path)).collect();
    for (method, path) in REFERENCE_OPERATIONS {
        assert!(documented.contains(&(method.to_string(), path.to_string())), "{method} {path} is not documented");
    }
    let expected: BTreeSet<(String, String)> = REFERENCE_OPERATIONS
        .iter()
        .chain(ADDITIONAL_OPERATIONS)
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    let unexpected: Vec<_> = documented.difference(&expected).collect();
    assert!(unexpected.is_empty(), "operations missing from this test's lists: {unexpected:?}");
}

#[test]
fn openapi_operations_document_errors() {
    let document = serde_json::to_value(document()).unwrap();
    let mut operation_ids = BTreeSet::new();
    for (method, path, operation) in operations(&document) {
        let label = format!("{method} {path}");
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{label} has no operationId"));
        assert!(operation_ids.insert(id.to_owned()), "operationId {id} of {label} is not unique");
        assert!(operation["summary"].is_string(), "{label} has no summary");
        assert!(operation["tags"].as_array().is_some_and(|tags| !tags.is_empty()), "{label} has no tag");

        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.keys().any(|status| status.starts_with('2') || status.starts_with('3')), "{label} has no success response");
        assert!(responses.contains_key("500"), "{label} lacks 500");
        if operation.get("requestBody").is_some() {
            assert!(responses.contains_key("413"), "{label} takes a body but lacks 413");
        }
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"];
                // Detailed health returns its own body with 503.
                if path == "/health/detailed" && status == "503" {
                    continue;
                }
                assert_eq!(schema["$ref"], "#/components/schemas/ErrorBody", "{label} {status} lacks the error body");
            }
        }

        let authenticated = operation["security"].as_array().is_some_and(|requirements| !requirements.is_empty());
        if authenticated {
            assert!(responses.contains_key("401"), "{label} is authenticated but lacks 401");
        }
        let rate_limited = path.starts_with("/api/") && path != "/api/v1/billing/webhook";
        if rate_limited {
            let too_many = &responses["429"];
            assert!(too_many["headers"]["Retry-After"].is_object(), "{label} 429 lacks Retry-After");
            for (status, response) in responses {
                for header in ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"] {
                    assert!(response["headers"][header].is_object(), "{label} {status} lacks {header}");
                }
            }
        } else {
            assert!(!responses.contains_key("429"), "{label} is not rate-limited but documents 429");
        }
    }
}

#[test]
fn openapi_security_matches_route_access() {
    let document = serde_json::to_value(document()).unwrap();
    let security = |method: &str, path: &str| document["paths"][path][method]["security"].clone();
    assert_eq!(security("get", "/api/v1/deployments"), json!([{ "bearer_jwt": [] }, { "api_token": [] }]));
    assert_eq!(security("post", "/api/v1/gdpr/delete"), json!([{ "bearer_jwt": [] }]));
    assert!(security("post", "/api/v1/auth/login").is_null(), "login must need no credentials");
    assert!(security("get", "/api/v1/openapi.json").is_null(), "the document must need no credentials");
    assert!(security("post", "/api/v1/plugins/search").is_null(), "marketplace search must need no credentials");
}

#[test]
fn engine_compiles_openapi_document() {
    let document = document();
    let text = serde_json::to_string(&document).unwrap();
    let compiled = match mockforge_engine::compile(&text, mockforge_engine::MockOptions::default()) {
        Ok(compiled) => compiled,
        Err(error) => {
            let problems: Vec<String> =
                error.diagnostics.iter().map(|diagnostic| format!("{} {}", diagnostic.pointer, diagnostic.message)).collect();
            panic!("the engine rejected the document: {problems:?}");
        }
    };
    let expected = operations(&serde_json::to_value(&document).unwrap()).len();
    assert_eq!(compiled.mock.operation_count(), expected);
}

backend_tests! {
    async fn openapi_served_without_credentials(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let response = reqwest::get(server.url("/api/v1/openapi.json")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(content_type, "application/json");
        assert!(response.headers().contains_key("x-ratelimit-limit"), "the document response lacks rate-limit headers");
        let served: Value = response.json().await.unwrap();
        assert_eq!(served, serde_json::to_value(document()).unwrap());
    }

    async fn openapi_operations_are_routed(backend) {
        // Requests without credentials reach every handler (authenticated ones return 401) and
        // change nothing. The limit is raised so that no 429 hides a fallback.
        let server = TestServer::start(backend, |config| config.anonymous_requests_per_minute = 10_000).await;
        let document = serde_json::to_value(document()).unwrap();
        for (method, template, _) in operations(&document) {
            let path = concrete_path(&template);
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = server.request(method.clone(), &path, None, None).await;
            assert_ne!(status, StatusCode::TOO_MANY_REQUESTS, "{method} {template} was rate-limited: {body}");
            // The router's fallbacks return 404 with the request's method and path in `details`,
            // or 405 METHOD_NOT_ALLOWED.
            let fallback = status == StatusCode::NOT_FOUND && body["details"]["path"].is_string();
            assert!(!fallback, "{method} {template} is documented but not routed: {body}");
            assert_ne!(body["code"], "METHOD_NOT_ALLOWED", "{method} {template} is documented but not routed");
        }
    }

    async fn openapi_schemas_match_real_bodies(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let document = serde_json::to_value(document()).unwrap();

        // The registration request and its session response.
        let registration = json!({ "username": "schema-check", "email": "schema-check@example.com", "password": "correct horse battery" });
        assert_matches_schema(&document, "RegisterRequest", &registration);
        let (status, session) = server.request(Method::POST, "/api/v1/auth/register", None, Some(&registration)).await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        assert_matches_schema(&document, "Session", &session);
        let token = session["token"].as_str().unwrap().to_owned();

        // A deployment request with every documented field, and the deployment it creates.
        let request = json!({
            "name": "Schema check",
            "slug": "schema-check",
            "description": "Checks the documented request fields",
            "project_id": "5f0c4e1a-8a4b-4d2c-9f2e-0c6d7a1b2c3d",
            "openapi_spec": petstore(),
            "config_json": {},
        });
        assert_matches_schema(&document, "CreateDeploymentRequest", &request);
        let request_schema = &document["paths"]["/api/v1/deployments"]["post"]["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(request_schema["$ref"], "#/components/schemas/CreateDeploymentRequest");
        let (status, deployment) = server.post("/api/v1/deployments", &token, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{deployment}");
        assert_matches_schema(&document, "DeploymentDetail", &deployment);
        assert_eq!(deployment["slug"], "schema-check");

        let (status, list) = server.get("/api/v1/deployments", &token).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_matches_schema(&document, "DeploymentSummary", &list[0]);

        let (status, organizations) = server.get("/api/v1/organizations", &token).await;
        assert_eq!(status, StatusCode::OK, "{organizations}");
        assert_matches_schema(&document, "Organization", &organizations[0]);

        let (status, created) = server.post("/api/v1/tokens", &token, &json!({ "name": "schema", "scopes": ["read"] })).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_matches_schema(&document, "CreatedToken", &created);
        let (status, tokens) = server.get("/api/v1/tokens", &token).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_matches_schema(&document, "ApiTokenSummary", &tokens[0]);

        let (status, usage) = server.get("/api/v1/usage", &token).await;
        assert_eq!(status, StatusCode::OK, "{usage}");
        assert_matches_schema(&document, "UsagePeriod", &usage);

        let (status, error) = server.get("/api/v1/deployments/00000000-0000-0000-0000-000000000000", &token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
        assert_matches_schema(&document, "ErrorBody", &error);

        let (status, health) = server.request(Method::GET, "/health/detailed", None, None).await;
        assert_eq!(status, StatusCode::OK, "{health}");
        assert_matches_schema(&document, "DetailedHealth", &health);
    }

    async fn openapi_document_deploys_as_mock(backend) {
        // The control plane accepts its own document, so it can host a mock of its own API.
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("self-hosting").await;
        let body = json!({ "name": "MockForge API", "openapi_spec": serde_json::to_value(document()).unwrap() });
        let (status, created) = server.post("/api/v1/deployments", &account.token, &body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["slug"], "mockforge-api");
        assert_eq!(created["status"], "deploying");
    }
}
