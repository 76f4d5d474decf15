use reqwest::StatusCode;
use serde_json::json;

use crate::backend_tests;
use crate::harness::{assert_error, create_deployment, TestServer};

backend_tests! {
    async fn organization_shapes(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("grace").await;

        let (status, list) = server.get("/api/v1/organizations", &account.token).await;
        assert_eq!(status, StatusCode::OK);
        let org = &list[0];
        for field in ["id", "name", "slug", "plan", "owner_id", "created_at"] {
            assert!(org[field].is_string(), "missing {field}: {org}");
        }
        let org_id = org["id"].as_str().unwrap();

        let (status, single) = server.get(&format!("/api/v1/organizations/{org_id}"), &account.token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&single, org);

        let (status, members) = server.get(&format!("/api/v1/organizations/{org_id}/members"), &account.token).await;
        assert_eq!(status, StatusCode::OK);
        let members = members.as_array().unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0]["user_id"].as_str().unwrap(), account.user_id);
        assert_eq!(members[0]["username"], "grace");
        assert_eq!(members[0]["email"], "grace@example.com");
        assert_eq!(members[0]["role"], "owner");
        assert!(members[0]["joined_at"].is_string());
    }

    async fn other_tenant_organization_is_404(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let owner = server.register("heidi").await;
        let stranger = server.register("ivan").await;
        let org_id = server.personal_org(&owner).await["id"].as_str().unwrap().to_owned();

        for path in [format!("/api/v1/organizations/{org_id}"), format!("/api/v1/organizations/{org_id}/members")] {
            let (status, body) = server.get(&path, &stranger.token).await;
            assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        }
        let (status, body) = server.get("/api/v1/organizations/not-a-uuid", &owner.token).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    }

    async fn organization_header_selects_org(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let owner = server.register("judy").await;
        let stranger = server.register("mallory").await;
        let own_org = server.personal_org(&owner).await["id"].as_str().unwrap().to_owned();
        let other_org = server.personal_org(&stranger).await["id"].as_str().unwrap().to_owned();
        create_deployment(&server, &owner.token, "Judy API").await;

        let list = |org: String, token: String| {
            let server = &server;
            async move {
                let response = server
                    .client
                    .get(server.url("/api/v1/deployments"))
                    .bearer_auth(token)
                    .header("X-Organization-Id", org)
                    .send()
                    .await
                    .unwrap();
                crate::harness::read(response).await
            }
        };

        let (status, body) = list(own_org.clone(), owner.token.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body.as_array().unwrap().len(), 1);

        let (status, body) = list(other_org.clone(), owner.token.clone()).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");

        let (status, body) = list("garbage".to_owned(), owner.token.clone()).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

        // An API token acts on its own organization only.
        let api_token = server.api_token(&owner, &["read"]).await;
        let (status, body) = list(own_org.clone(), api_token.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = list(other_org, api_token.clone()).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        let (status, orgs) = server.get("/api/v1/organizations", &api_token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(orgs, json!([server.personal_org(&owner).await]));
    }
}
