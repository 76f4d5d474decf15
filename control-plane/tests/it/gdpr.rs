//! The data export and account deletion.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use mockforge_control_plane::nodes::NodeTokens;
use mockforge_control_plane::store::{AuditEntry, AuditQuery};

use crate::backend_tests;
use crate::documents::fetch_document;
use crate::harness::{assert_error, create_deployment, TestServer, PASSWORD};
use crate::marketplace::{package, publish_package, template_manifest};

/// Runs `sql` with `id` as `$1` directly in the test server's database and returns the single
/// `BIGINT` it selects.
async fn count_rows(server: &TestServer, sql: &'static str, id: Uuid) -> i64 {
    match &server.config.database_url {
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let count: i64 = sqlx::query_scalar(sql).bind(id).fetch_one(&pool).await.unwrap();
            pool.close().await;
            count
        }
        None => {
            let url = format!("sqlite://{}", server.data_dir().join("mockforge.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let count: i64 = sqlx::query_scalar(sql).bind(id).fetch_one(&pool).await.unwrap();
            pool.close().await;
            count
        }
    }
}

/// Inserts an audit entry by `user_id` into `org_id` with the IP address 203.0.113.9 and a user
/// agent, directly in the database, as if the user had acted there.
async fn insert_audit_entry(server: &TestServer, org_id: Uuid, user_id: Uuid, description: &str, metadata: Value) -> Uuid {
    let id = Uuid::new_v4();
    let sql = "INSERT INTO audit_logs (id, org_id, user_id, event_type, description, metadata, ip_address, user_agent, created_at) \
               VALUES ($1, $2, $3, 'test_event', $4, $5, '203.0.113.9', 'test-agent', $6)";
    let metadata = sqlx::types::Json(metadata);
    match &server.config.database_url {
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql).bind(id).bind(org_id).bind(user_id).bind(description).bind(metadata).bind(chrono::Utc::now()).execute(&pool).await.unwrap();
            pool.close().await;
        }
        None => {
            let url = format!("sqlite://{}", server.data_dir().join("mockforge.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query(sql).bind(id).bind(org_id).bind(user_id).bind(description).bind(metadata).bind(chrono::Utc::now()).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
    id
}

/// Returns the organization's audit entries, newest first, read through the control plane's
/// store as a platform admin would, also after the organization is deleted.
async fn audit_entries(server: &TestServer, org_id: Uuid) -> Vec<AuditEntry> {
    let url = match &server.config.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", server.data_dir().join("mockforge.db").display()),
    };
    let (store, _) = mockforge_control_plane::store::connect(&url).await.unwrap();
    let query = AuditQuery { event_type: None, user_id: None, limit: 1000, offset: 0 };
    store.accounts().audit_logs(org_id, &query).await.unwrap()
}

async fn login(server: &TestServer, email: &str) -> (StatusCode, Value) {
    let body = json!({ "email": email, "password": PASSWORD });
    server.request(Method::POST, "/api/v1/auth/login", None, Some(&body)).await
}

backend_tests! {
    async fn export_contains_user_data(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("zelda").await;
        let stranger = server.register("anton").await;
        let token = server.api_token(&account, &["read", "write", "admin"]).await;
        create_deployment(&server, &account.token, "Exported").await;
        create_deployment(&server, &stranger.token, "Not mine").await;
        let request = json!({ "category": "other", "priority": "low", "subject": "Hello", "message": "Export me." });
        server.post("/api/v1/support/contact", &account.token, &request).await;

        let (status, export) = server.get("/api/v1/gdpr/export", &account.token).await;
        assert_eq!(status, StatusCode::OK, "{export}");
        assert_eq!(export["user_data"]["email"], account.email.as_str());
        assert_eq!(export["organizations"].as_array().unwrap().len(), 1);
        assert_eq!(export["organizations"][0]["role"], "owner");
        assert_eq!(export["deployments"].as_array().unwrap().len(), 1);
        assert_eq!(export["deployments"][0]["name"], "Exported");
        assert_eq!(export["api_tokens"].as_array().unwrap().len(), 1);
        assert_eq!(export["support_tickets"][0]["message"], "Export me.");
        assert!(export["audit_logs"].as_array().unwrap().len() >= 3);
        assert!(export["exported_at"].is_string());
        let text = export.to_string();
        assert!(!text.contains(&token), "the export contains an API token");
        assert!(!text.contains(PASSWORD), "the export contains the password");
        assert!(!text.contains("argon2"), "the export contains the password hash");
        assert!(!text.contains("token_hash"));

        let (status, body) = server.get("/api/v1/gdpr/export", &token).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
        let (status, body) = server.request(Method::GET, "/api/v1/gdpr/export", None, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }

    async fn delete_requires_confirmation(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("conny").await;
        for body in [json!({}), json!({ "confirm": false }), json!({ "confirm": "yes" }), json!({ "confirm": 1 })] {
            let (status, response) = server.post("/api/v1/gdpr/delete", &account.token, &body).await;
            assert_error(status, &response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(response["details"]["field"], "confirm", "{body}: {response}");
        }
        let token = server.api_token(&account, &["read", "write", "admin"]).await;
        let (status, body) = server.post("/api/v1/gdpr/delete", &token, &json!({ "confirm": true })).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");

        let (status, body) = server.get("/api/v1/organizations", &account.token).await;
        assert_eq!(status, StatusCode::OK, "a rejected request must not lock the account: {body}");
    }

    async fn delete_locks_account_at_once(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("lotte").await;
        let token = server.api_token(&account, &["read", "write"]).await;
        create_deployment(&server, &account.token, "Locked").await;

        let (status, body) = server.post("/api/v1/gdpr/delete", &account.token, &json!({ "confirm": true })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["message"], "Data deletion initiated. This action cannot be undone.");
        let scheduled: chrono::DateTime<chrono::Utc> = body["deletion_scheduled_at"].as_str().unwrap().parse().unwrap();
        let expected = chrono::Utc::now() + chrono::Duration::hours(24);
        assert!((scheduled - expected).num_seconds().abs() < 60, "{scheduled} is not about 24 hours from now");

        let (status, body) = server.get("/api/v1/organizations", &account.token).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let (status, body) = server.get("/api/v1/deployments", &token).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let (status, body) = login(&server, &account.email).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let (status, body) = server.request(Method::POST, "/api/v1/auth/token/refresh", None, Some(&json!({ "token": account.token }))).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        // Within the grace period a restart deletes nothing, and the account stays locked.
        let server = server.restart().await;
        let user_id: Uuid = account.user_id.parse().unwrap();
        assert_eq!(count_rows(&server, "SELECT COUNT(*) FROM users WHERE id = $1", user_id).await, 1);
        let (status, body) = login(&server, &account.email).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }

    async fn delete_purges_after_grace_period(backend) {
        let server = TestServer::start(backend, |config| config.gdpr_grace_period = Duration::ZERO).await;
        let account = server.register("paula").await;
        let other = server.register("otto").await;
        let user_id: Uuid = account.user_id.parse().unwrap();
        let org_id: Uuid = server.personal_org(&account).await["id"].as_str().unwrap().parse().unwrap();
        let other_org_id: Uuid = server.personal_org(&other).await["id"].as_str().unwrap().parse().unwrap();
        server.api_token(&account, &["read"]).await;
        let deployment = create_deployment(&server, &account.token, "Doomed").await;
        let deployment_id: Uuid = deployment["id"].as_str().unwrap().parse().unwrap();
        let kept_deployment = create_deployment(&server, &other.token, "Kept").await;
        // A document only the deleted account uses goes with it. The shared petstore stays.
        let mut own_document = crate::harness::petstore();
        own_document["info"]["title"] = json!("Paula's own API");
        let (status, own) = server.post("/api/v1/deployments", &account.token, &json!({ "name": "Own", "openapi_spec": own_document })).await;
        assert_eq!(status, StatusCode::CREATED, "{own}");
        let node_token = NodeTokens::open(&server.config).await.unwrap().create("edge-gdpr").await.unwrap();
        let own_sha256 = own["document_sha256"].as_str().unwrap().to_owned();
        let shared_sha256 = kept_deployment["document_sha256"].as_str().unwrap().to_owned();
        assert_eq!(fetch_document(&server, &node_token, &own_sha256).await.0, StatusCode::OK);
        assert_eq!(fetch_document(&server, &node_token, &shared_sha256).await.0, StatusCode::OK);
        let foreign_entry = insert_audit_entry(&server, other_org_id, user_id, "Acted in another organization", json!({})).await;
        let before = server.feed.changes_since(0).await.unwrap();
        assert_eq!(before.upserts.len(), 3);

        let (status, body) = server.post("/api/v1/gdpr/delete", &account.token, &json!({ "confirm": true })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // The job runs when the control plane starts.
        let server = server.restart().await;

        let delta = server.feed.changes_since(before.version).await.unwrap();
        assert!(delta.version > before.version, "the deletion must bump the configuration version");
        assert!(delta.removals.contains(&deployment_id), "{:?}", delta.removals);
        let snapshot = server.feed.changes_since(0).await.unwrap();
        let served: Vec<String> = snapshot.upserts.iter().map(|record| record.id.to_string()).collect();
        assert_eq!(served, vec![kept_deployment["id"].as_str().unwrap().to_owned()]);

        assert_eq!(count_rows(&server, "SELECT COUNT(*) FROM users WHERE id = $1", user_id).await, 0);
        assert_eq!(count_rows(&server, "SELECT COUNT(*) FROM organizations WHERE id = $1", org_id).await, 0);
        assert_eq!(count_rows(&server, "SELECT COUNT(*) FROM deployments WHERE org_id = $1", org_id).await, 0);
        assert_eq!(count_rows(&server, "SELECT COUNT(*) FROM api_tokens WHERE user_id = $1", user_id).await, 0);
        assert_eq!(count_rows(&server, "SELECT COUNT(*) FROM audit_logs WHERE user_id = $1", user_id).await, 0);
        let anonymised = "SELECT COUNT(*) FROM audit_logs WHERE id = $1 AND user_id IS NULL AND ip_address IS NULL AND user_agent IS NULL";
        assert_eq!(count_rows(&server, anonymised, foreign_entry).await, 1, "the audit entry must be kept and anonymised");

        let (status, body) = server.get("/api/v1/deployments", &other.token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body.as_array().unwrap().len(), 1, "{body}");
        let (status, _) = fetch_document(&server, &node_token, &own_sha256).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "the deleted account's own document must be removed");
        let (status, _) = fetch_document(&server, &node_token, &shared_sha256).await;
        assert_eq!(status, StatusCode::OK, "a document another deployment uses must be kept");

        // The e-mail address is free again.
        server.register("paula").await;
    }

    async fn delete_removes_marketplace_files(backend) {
        let server = TestServer::start(backend, |config| config.gdpr_grace_period = Duration::ZERO).await;
        let leaving = server.register("lena").await;
        let staying = server.register("sven").await;
        let own_bytes = package(&[("files/own.md", tar::EntryType::Regular, b"# only lena's")]);
        let shared_bytes = package(&[("files/shared.md", tar::EntryType::Regular, b"# published twice")]);
        let mut published = Vec::new();
        for (token, name, bytes) in [
            (&leaving.token, "lena-own", own_bytes),
            (&leaving.token, "lena-shared", shared_bytes.clone()),
            (&staying.token, "sven-shared", shared_bytes),
        ] {
            let (status, body) = publish_package(&server, token, "templates", &template_manifest(name, "1.0.0"), bytes).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let checksum = body["checksum"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
            published.push(server.data_dir().join("artifacts/templates").join(format!("{checksum}.tar.gz")));
        }
        let (own_file, shared_file) = (&published[0], &published[1]);
        assert_eq!(shared_file, &published[2], "the same bytes are stored once");
        assert!(own_file.exists(), "{}", own_file.display());

        let (status, body) = server.post("/api/v1/gdpr/delete", &leaving.token, &json!({ "confirm": true })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // The job runs when the control plane starts.
        let server = server.restart().await;

        assert!(!own_file.exists(), "the deleted organization's own package file must be removed");
        assert!(shared_file.exists(), "a file another organization published must be kept");
        let (status, body) = server.get("/api/v1/templates/sven-shared/1.0.0", &staying.token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = server.get("/api/v1/templates/lena-own/1.0.0", &staying.token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }

    async fn delete_keeps_audit_entries_anonymised(backend) {
        let server = TestServer::start(backend, |config| config.gdpr_grace_period = Duration::ZERO).await;
        let account = server.register("greta").await;
        let other = server.register("henrik").await;
        let user_id: Uuid = account.user_id.parse().unwrap();
        let other_user_id: Uuid = other.user_id.parse().unwrap();
        let org_id: Uuid = server.personal_org(&account).await["id"].as_str().unwrap().parse().unwrap();
        let other_org_id: Uuid = server.personal_org(&other).await["id"].as_str().unwrap().parse().unwrap();

        // Entries in the organization that goes with the account: from the API (with the
        // client's address) and one carrying personal data in its metadata.
        server.api_token(&account, &["read"]).await;
        create_deployment(&server, &account.token, "Audited").await;
        let personal = json!({ "email": account.email, "username": "greta", "nested": { "ip_address": "203.0.113.9" }, "plan": "pro" });
        insert_audit_entry(&server, org_id, user_id, "Changed the plan", personal).await;
        // An entry by another user that names the deleted user.
        let mention = insert_audit_entry(
            &server,
            other_org_id,
            other_user_id,
            &format!("Invited {}", account.email),
            json!({ "invitee": account.email, "invitee_id": user_id }),
        )
        .await;

        let (status, body) = server.post("/api/v1/gdpr/delete", &account.token, &json!({ "confirm": true })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let before = audit_entries(&server, org_id).await;
        assert!(before.len() >= 4, "token, deployment, inserted and deletion request entries: {before:?}");
        assert!(before.iter().any(|entry| entry.ip_address.is_some()), "{before:?}");

        // The job runs when the control plane starts.
        let server = server.restart().await;
        assert_eq!(count_rows(&server, "SELECT COUNT(*) FROM organizations WHERE id = $1", org_id).await, 0);

        let after = audit_entries(&server, org_id).await;
        assert_eq!(after.len(), before.len(), "the deleted organization's audit entries must be kept");
        let ids = |entries: &[AuditEntry]| entries.iter().map(|entry| entry.id).collect::<Vec<_>>();
        assert_eq!(ids(&after), ids(&before));
        for entry in &after {
            assert_eq!(entry.user_id, None, "{entry:?}");
            assert_eq!(entry.ip_address, None, "{entry:?}");
            assert_eq!(entry.user_agent, None, "{entry:?}");
            let text = format!("{} {}", entry.description, entry.metadata);
            assert!(!text.contains(&account.email), "{entry:?}");
            assert!(!text.contains(&account.user_id), "{entry:?}");
            assert!(!text.contains("203.0.113.9"), "{entry:?}");
        }
        let changed = after.iter().find(|entry| entry.description == "Changed the plan").unwrap();
        assert_eq!(changed.metadata, json!({ "nested": {}, "plan": "pro" }));

        let others = audit_entries(&server, other_org_id).await;
        let mention = others.iter().find(|entry| entry.id == mention).unwrap();
        assert_eq!(mention.user_id, Some(other_user_id), "another user's entry keeps its actor");
        assert_eq!(mention.ip_address.as_deref(), Some("203.0.113.9"));
        assert_eq!(mention.description, "Invited [deleted user]");
        assert_eq!(mention.metadata, json!({ "invitee": null, "invitee_id": null }));
    }
}
