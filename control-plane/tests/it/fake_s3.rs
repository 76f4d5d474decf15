//! An in-memory S3 server on a loopback port for the object calls `object_store` makes: PUT,
//! GET, HEAD and DELETE of one object, path-style (`/{bucket}/{key}`). A request without an AWS
//! Signature Version 4 `Authorization` header for the expected access key gets 403.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use sha2::{Digest, Sha256};

pub struct FakeS3 {
    pub addr: SocketAddr,
    state: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    bucket: String,
    access_key_id: String,
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Method and path of every request, and whether its signature header was accepted.
    requests: Mutex<Vec<(Method, String, bool)>>,
}

impl FakeS3 {
    pub async fn start(bucket: &str, access_key_id: &str) -> FakeS3 {
        let state = Arc::new(Shared {
            bucket: bucket.to_owned(),
            access_key_id: access_key_id.to_owned(),
            objects: Mutex::new(BTreeMap::new()),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeS3 { addr, state, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Returns the object stored under `key`, without the bucket.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.state.objects.lock().unwrap().get(key).cloned()
    }

    pub fn keys(&self) -> Vec<String> {
        self.state.objects.lock().unwrap().keys().cloned().collect()
    }

    pub fn requests(&self) -> Vec<(Method, String, bool)> {
        self.state.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Checks the shape of a SigV4 header: the algorithm, the credential scope of the expected
/// access key, the signed headers and a 64-digit hex signature. The signature itself is not
/// recomputed.
fn is_signed(headers: &HeaderMap, access_key_id: &str) -> bool {
    let Some(authorization) = headers.get("authorization").and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let Some(rest) = authorization.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return false;
    };
    let credential_ok = rest.starts_with(&format!("Credential={access_key_id}/")) && rest.contains("/s3/aws4_request");
    let signature_ok = rest
        .split("Signature=")
        .nth(1)
        .is_some_and(|signature| signature.len() == 64 && signature.bytes().all(|byte| byte.is_ascii_hexdigit()));
    credential_ok && rest.contains("SignedHeaders=") && signature_ok && headers.contains_key("x-amz-date")
}

fn xml_error(status: StatusCode, code: &str) -> Response {
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{code}</Message></Error>");
    Response::builder().status(status).header("content-type", "application/xml").body(Body::from(body)).unwrap()
}

fn object_response(status: StatusCode, bytes: &[u8], body: Body) -> Response {
    Response::builder()
        .status(status)
        .header("content-length", bytes.len())
        .header("etag", format!("\"{}\"", hex::encode(Sha256::digest(bytes))))
        .header("last-modified", "Sat, 05 Dec 2026 00:00:00 GMT")
        .body(body)
        .unwrap()
}

async fn handle(State(state): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let signed = is_signed(&headers, &state.access_key_id);
    state.requests.lock().unwrap().push((method.clone(), path.clone(), signed));
    if !signed {
        return xml_error(StatusCode::FORBIDDEN, "AccessDenied");
    }
    let Some(key) = path.strip_prefix(&format!("/{}/", state.bucket)) else {
        return xml_error(StatusCode::NOT_FOUND, "NoSuchBucket");
    };
    let key = key.to_owned();
    let mut objects = state.objects.lock().unwrap();
    match method {
        Method::PUT => {
            let response = object_response(StatusCode::OK, &body, Body::empty());
            objects.insert(key, body.to_vec());
            response
        }
        Method::GET => match objects.get(&key) {
            Some(bytes) => object_response(StatusCode::OK, bytes, Body::from(bytes.clone())),
            None => xml_error(StatusCode::NOT_FOUND, "NoSuchKey"),
        },
        Method::HEAD => match objects.get(&key) {
            Some(bytes) => object_response(StatusCode::OK, bytes, Body::empty()),
            None => Response::builder().status(StatusCode::NOT_FOUND).body(Body::empty()).unwrap(),
        },
        Method::DELETE => {
            objects.remove(&key);
            Response::builder().status(StatusCode::NO_CONTENT).body(Body::empty()).unwrap()
        }
        _ => xml_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
    }
}
