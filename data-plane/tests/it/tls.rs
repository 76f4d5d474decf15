//! The TLS listener: certificates chosen by SNI, ALPN, and reloading changed certificate files.
//!
//! Every certificate is issued in the test by a test CA that only the test client trusts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mockforge_edge::{Edge, EdgeConfig, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use reqwest::tls::TlsInfo;
use reqwest::{StatusCode, Version};
use serde_json::json;

use crate::support::{json_body, record, test_config, FakeFeed, TestEdge, ORDERS, PETSTORE};

const BASE: &str = "mockforge.test";
const ACME_HOST: &str = "acme.mockforge.test";
/// An organization with a custom certificate for its own subdomain (`globex.crt`).
const GLOBEX_HOST: &str = "globex.mockforge.test";
/// A custom domain with a certificate of its own (`api.example.test.crt`).
const CUSTOM_HOST: &str = "api.example.test";
/// Interval between two checks of the certificate files in these tests.
const RELOAD_INTERVAL: Duration = Duration::from_millis(100);
/// Maximum time a replaced certificate may take to be served.
const RELOAD_LIMIT: Duration = Duration::from_secs(5);

/// A certificate authority that issues the test certificates.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "MockForge test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
        }
    }

    /// Issues a certificate for `names`.
    fn issue(&self, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let params = CertificateParams::new(names).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// An issued certificate with its key, and the DER the client compares to what was served.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Leaf {
    /// Writes the pair as `{stem}.crt` and `{stem}.key` in `dir`, each through a temporary file
    /// and a rename, as certificate managers replace them.
    fn write(&self, dir: &Path, stem: &str) {
        write_replacing(&dir.join(format!("{stem}.key")), &self.key_pem);
        write_replacing(&dir.join(format!("{stem}.crt")), &self.cert_pem);
    }
}

fn write_replacing(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// A directory with the wildcard pair and a `custom/` directory of custom certificates.
struct CertFiles {
    dir: PathBuf,
    ca: TestCa,
    wildcard: Leaf,
    globex: Leaf,
    custom_domain: Leaf,
}

impl CertFiles {
    fn new() -> CertFiles {
        let dir = std::env::temp_dir().join(format!("mockforge-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("custom")).unwrap();
        let ca = TestCa::new();
        let wildcard = ca.issue(&["*.mockforge.test"]);
        let globex = ca.issue(&[GLOBEX_HOST]);
        let custom_domain = ca.issue(&[CUSTOM_HOST]);
        wildcard.write(&dir, "wildcard");
        globex.write(&dir.join("custom"), "globex");
        custom_domain.write(&dir.join("custom"), CUSTOM_HOST);
        CertFiles {
            dir,
            ca,
            wildcard,
            globex,
            custom_domain,
        }
    }

    fn tls_config(&self) -> TlsConfig {
        TlsConfig {
            cert_dir: Some(self.dir.join("custom")),
            reload_interval: RELOAD_INTERVAL,
            ..TlsConfig::new(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                self.dir.join("wildcard.crt"),
                self.dir.join("wildcard.key"),
            )
        }
    }

    fn edge_config(&self) -> EdgeConfig {
        EdgeConfig {
            base_domain: BASE.to_owned(),
            tls: Some(self.tls_config()),
            ..test_config()
        }
    }

    /// Returns a new client that trusts only the test CA and resolves the test hosts to `addr`.
    /// A new client per request makes a new handshake, so it gets the current certificate.
    fn client(&self, addr: SocketAddr) -> reqwest::ClientBuilder {
        let ca = reqwest::Certificate::from_pem(self.ca.cert_pem.as_bytes()).unwrap();
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .tls_info(true)
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .resolve(ACME_HOST, addr)
            .resolve(GLOBEX_HOST, addr)
            .resolve(CUSTOM_HOST, addr)
    }
}

impl Drop for CertFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn tls_edge(files: &CertFiles) -> TestEdge {
    let feed = FakeFeed::new([
        record("acme", "petstore", PETSTORE),
        record("globex", "orders", ORDERS),
    ]);
    TestEdge::start_with(feed, files.edge_config()).await
}

/// Sends a GET over a new connection and returns the response with the certificate served.
async fn get(client: reqwest::ClientBuilder, url: &str) -> (reqwest::Response, Vec<u8>) {
    try_get(client, url).await.unwrap()
}

async fn try_get(
    client: reqwest::ClientBuilder,
    url: &str,
) -> Result<(reqwest::Response, Vec<u8>), reqwest::Error> {
    let response = client.build().unwrap().get(url).send().await?;
    let served = response
        .extensions()
        .get::<TlsInfo>()
        .and_then(TlsInfo::peer_certificate)
        .expect("the response carries no TLS peer certificate")
        .to_vec();
    Ok((response, served))
}

fn url(edge: &TestEdge, host: &str, path: &str) -> String {
    format!("https://{host}:{}{path}", edge.tls_addr().port())
}

/// Waits until a handshake for `host` serves `expected`; fails after [`RELOAD_LIMIT`].
async fn wait_for_cert(files: &CertFiles, edge: &TestEdge, host: &str, expected: &[u8]) {
    let deadline = tokio::time::Instant::now() + RELOAD_LIMIT;
    loop {
        let (_, served) = get(files.client(edge.tls_addr()), &url(edge, host, "/")).await;
        if served == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{host} still gets the previous certificate {RELOAD_LIMIT:?} after the files changed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_cert_serves_org_over_h2() {
    let files = CertFiles::new();
    let edge = tls_edge(&files).await;

    let (response, served) = get(
        files.client(edge.tls_addr()),
        &url(&edge, ACME_HOST, "/petstore/pets"),
    )
    .await;
    assert_eq!(
        served, files.wildcard.der,
        "acme gets the wildcard certificate"
    );
    assert_eq!(response.version(), Version::HTTP_2, "ALPN selects h2");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, json!([{"id": 1, "name": "Rex"}]));

    // A client that offers only http/1.1 by ALPN is served too.
    let (response, _) = get(
        files.client(edge.tls_addr()).http1_only(),
        &url(&edge, ACME_HOST, "/petstore/pets/7"),
    )
    .await;
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(json_body(response).await, json!({"id": 1, "name": "Rex"}));

    // The plain listener keeps serving next to the TLS one.
    let response = edge
        .client()
        .get(edge.url("acme.localhost", "/_m/acme/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, json!([{"id": 1, "name": "Rex"}]));

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_cert_wins_by_sni() {
    let files = CertFiles::new();
    let edge = tls_edge(&files).await;

    let (response, served) = get(
        files.client(edge.tls_addr()),
        &url(&edge, CUSTOM_HOST, "/_m/acme/petstore/pets"),
    )
    .await;
    assert_eq!(
        served, files.custom_domain.der,
        "the custom domain gets its certificate"
    );
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(json_body(response).await, json!([{"id": 1, "name": "Rex"}]));

    let (response, served) = get(
        files.client(edge.tls_addr()),
        &url(&edge, GLOBEX_HOST, "/orders/orders"),
    )
    .await;
    assert_eq!(
        served, files.globex.der,
        "globex.crt serves the globex subdomain"
    );
    assert_eq!(json_body(response).await, json!([{"id": "o-1"}]));

    let (_, served) = get(files.client(edge.tls_addr()), &url(&edge, ACME_HOST, "/")).await;
    assert_eq!(
        served, files.wildcard.der,
        "other organizations keep the wildcard"
    );

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_cert_served_without_restart() {
    let files = CertFiles::new();
    let edge = tls_edge(&files).await;
    let (_, served) = get(files.client(edge.tls_addr()), &url(&edge, ACME_HOST, "/")).await;
    assert_eq!(served, files.wildcard.der);

    let renewed = files.ca.issue(&["*.mockforge.test"]);
    renewed.write(&files.dir, "wildcard");
    wait_for_cert(&files, &edge, ACME_HOST, &renewed.der).await;

    // A custom certificate added to the directory is picked up as well.
    let added_host = "shop.example.test";
    let added = files.ca.issue(&[added_host]);
    added.write(&files.dir.join("custom"), added_host);
    let addr = edge.tls_addr();
    let deadline = tokio::time::Instant::now() + RELOAD_LIMIT;
    loop {
        // Until the reload, the client rejects the wildcard certificate for this name.
        let client = files.client(addr).resolve(added_host, addr);
        let result = try_get(client, &url(&edge, added_host, "/")).await;
        if result
            .as_ref()
            .is_ok_and(|(_, served)| *served == added.der)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{added_host} does not get its new certificate after {RELOAD_LIMIT:?}: {:?}",
            result.map(|(response, _)| response.status())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A broken replacement is rejected, and the certificate loaded before stays in service.
    write_replacing(&files.dir.join("wildcard.crt"), "this is not a certificate");
    tokio::time::sleep(RELOAD_INTERVAL * 5).await;
    let (response, served) = get(
        files.client(edge.tls_addr()),
        &url(&edge, ACME_HOST, "/petstore/pets"),
    )
    .await;
    assert_eq!(
        served, renewed.der,
        "the broken file replaced the served certificate"
    );
    assert_eq!(json_body(response).await, json!([{"id": 1, "name": "Rex"}]));

    // A key that does not match its certificate is rejected in the same way.
    let mismatched = files.ca.issue(&["*.mockforge.test"]);
    write_replacing(&files.dir.join("wildcard.crt"), &mismatched.cert_pem);
    tokio::time::sleep(RELOAD_INTERVAL * 5).await;
    let (_, served) = get(files.client(edge.tls_addr()), &url(&edge, ACME_HOST, "/")).await;
    assert_eq!(
        served, renewed.der,
        "a mismatched key replaced the served certificate"
    );

    // Repairing the files is picked up without a restart.
    write_replacing(&files.dir.join("wildcard.key"), &mismatched.key_pem);
    wait_for_cert(&files, &edge, ACME_HOST, &mismatched.der).await;

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_certs_at_once() {
    let files = CertFiles::new();
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let mut config = files.edge_config();
    if let Some(tls) = &mut config.tls {
        // Long enough that only the signal can explain a reload within the test.
        tls.reload_interval = Duration::from_secs(3600);
    }
    let edge = TestEdge::start_with(feed, config).await;

    let renewed = files.ca.issue(&["*.mockforge.test"]);
    renewed.write(&files.dir, "wildcard");
    tokio::time::sleep(RELOAD_INTERVAL * 3).await;
    let (_, served) = get(files.client(edge.tls_addr()), &url(&edge, ACME_HOST, "/")).await;
    assert_eq!(
        served, files.wildcard.der,
        "the files changed but no check has run yet"
    );

    // Every edge of this test process reloads on the signal, which the other tests tolerate.
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -HUP failed: {status}");
    wait_for_cert(&files, &edge, ACME_HOST, &renewed.der).await;

    edge.shutdown().await;
}

/// Starts an edge with the certificate files as they are and returns its start error.
fn start_error(files: &CertFiles) -> String {
    let error = Edge::new(files.edge_config())
        .start()
        .err()
        .expect("the edge started with invalid certificate files");
    format!("{error:#}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_cert_files_fail_start() {
    let files = CertFiles::new();
    let cert_path = files.dir.join("wildcard.crt");
    std::fs::write(&cert_path, "this is not a certificate").unwrap();
    let message = start_error(&files);
    assert!(
        message.contains(&cert_path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("contains no certificate"), "{message}");

    // A key file that belongs to another certificate.
    files.wildcard.write(&files.dir, "wildcard");
    let other = files.ca.issue(&["*.mockforge.test"]);
    let key_path = files.dir.join("wildcard.key");
    std::fs::write(&key_path, &other.key_pem).unwrap();
    let message = start_error(&files);
    assert!(
        message.contains(&key_path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("does not match"), "{message}");

    // A custom certificate that does not cover the name its file is served for.
    files.wildcard.write(&files.dir, "wildcard");
    let misnamed = files.ca.issue(&["other.example.test"]);
    misnamed.write(&files.dir.join("custom"), CUSTOM_HOST);
    let message = start_error(&files);
    let custom_path = files.dir.join("custom").join(format!("{CUSTOM_HOST}.crt"));
    assert!(
        message.contains(&custom_path.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains(&format!("not valid for {CUSTOM_HOST}")),
        "{message}"
    );

    // A wildcard certificate for another domain.
    std::fs::remove_file(&custom_path).unwrap();
    std::fs::remove_file(custom_path.with_extension("key")).unwrap();
    files
        .ca
        .issue(&["*.elsewhere.test"])
        .write(&files.dir, "wildcard");
    let message = start_error(&files);
    assert!(
        message.contains(&cert_path.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("expected a certificate for *.mockforge.test"),
        "{message}"
    );
}
