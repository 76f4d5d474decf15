//! Legal documents, the FAQ and support requests.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::backend_tests;
use crate::harness::{assert_error, TestServer};

backend_tests! {
    async fn legal_documents_served(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        for (path, title) in [
            ("/api/v1/legal/terms", "Terms of Service"),
            ("/api/v1/legal/privacy", "Privacy Policy"),
            ("/api/v1/legal/dpa", "Data Processing Agreement"),
        ] {
            let (status, body) = server.request(Method::GET, path, None, None).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert_eq!(body["title"], title);
            assert!(body["content"].as_str().unwrap().starts_with("# MockForge"), "{path}");
            assert_eq!(body["last_updated"], "2026-12-01");
        }
        let (status, faq) = server.request(Method::GET, "/api/v1/faq", None, None).await;
        assert_eq!(status, StatusCode::OK, "{faq}");
        assert_eq!(faq["categories"][0], "Getting Started");
        assert_eq!(faq["items"][0]["id"], "getting-started-1");
        assert_eq!(faq["items"][0]["question"], "What is MockForge Cloud?");
        assert!(faq["items"][0]["answer"].as_str().unwrap().starts_with("MockForge Cloud hosts"));
    }

    async fn legal_documents_editable(backend) {
        let dir = std::env::temp_dir().join(format!("mockforge-legal-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("terms.md"), "# MockForge Terms\n\nVersion one.\n").unwrap();
        let legal_dir = dir.clone();
        let server = TestServer::start(backend, move |config| config.legal_dir = legal_dir).await;
        let (_, body) = server.request(Method::GET, "/api/v1/legal/terms", None, None).await;
        assert!(body["content"].as_str().unwrap().contains("Version one."));
        // Without a "Last updated:" line the file's date is used.
        assert_eq!(body["last_updated"], chrono::Utc::now().format("%Y-%m-%d").to_string());

        std::fs::write(dir.join("terms.md"), "# MockForge Terms\n\nLast updated: 2030-01-02\n\nVersion two.\n").unwrap();
        let (_, body) = server.request(Method::GET, "/api/v1/legal/terms", None, None).await;
        assert!(body["content"].as_str().unwrap().contains("Version two."));
        assert_eq!(body["last_updated"], "2030-01-02");

        let (status, body) = server.request(Method::GET, "/api/v1/legal/dpa", None, None).await;
        assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
        let _ = std::fs::remove_dir_all(&dir);
    }

    async fn support_request_creates_ticket(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("wilma").await;
        let org_id = server.personal_org(&account).await["id"].as_str().unwrap().to_owned();
        let request = json!({ "category": "technical", "priority": "high", "subject": "Deployment issue", "message": "My deployment is failing." });
        let (status, body) = server.post("/api/v1/support/contact", &account.token, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let ticket = body["ticket_id"].as_str().unwrap();
        assert!(ticket.starts_with("TKT-") && ticket.len() == 10 && ticket[4..].bytes().all(|b| b.is_ascii_digit()), "{ticket}");
        assert_eq!(body["message"], "Your support request has been received.");

        let mails = crate::verification::outbox_mails(&server.data_dir());
        let mail = mails.iter().find(|mail| mail.contains(ticket)).unwrap_or_else(|| panic!("no outbox mail for {ticket}: {mails:?}"));
        assert!(mail.contains("To: support@mockforge.dev"), "{mail}");
        assert!(mail.contains(&format!("Reply-To: {}", account.email)));
        assert!(mail.contains("My deployment is failing."));
        let (_, entries) = server.get(&format!("/api/v1/organizations/{org_id}/audit-logs?event_type=support_ticket_created"), &account.token).await;
        assert_eq!(entries[0]["metadata"]["ticket_id"], ticket);
    }

    async fn support_request_validation(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("xaver").await;
        let base = json!({ "category": "billing", "priority": "low", "subject": "Invoice", "message": "Where is it?" });
        let cases = [
            ("category", json!("complaint")),
            ("priority", json!("critical")),
            ("subject", json!("  ")),
            ("subject", json!("s".repeat(201))),
            ("message", json!("")),
        ];
        for (field, value) in cases {
            let mut request = base.clone();
            request[field] = value;
            let (status, body) = server.post("/api/v1/support/contact", &account.token, &request).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(body["details"]["field"], field);
        }
        let (status, body) = server.post("/api/v1/support/contact", &account.token, &json!({ "category": "billing" })).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_JSON");
        let (status, body) = server.request(Method::POST, "/api/v1/support/contact", None, Some(&base)).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let read_token = server.api_token(&account, &["read"]).await;
        let (status, body) = server.post("/api/v1/support/contact", &read_token, &base).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
    }
}
