//! The cost floor of pingora's HTTP/1 server on this machine: a `ServeHttp` app that returns
//! the same 69-byte JSON body as `GET /pets` in the load document for every request, with no
//! routing, limits or telemetry. The load script measures it next to the edge, so the share of
//! each request's cost that comes from the server framework can be separated from the edge's
//! own work.
//!
//! Usage: `pingora_floor [LISTEN_ADDR]` (default `127.0.0.1:18087`). Stops on Ctrl-C.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::listening::Service;

/// The allocator of the `mockforge` binary, so the load test measures what ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PETS_BODY: Bytes =
    Bytes::from_static(br#"[{"id":1,"name":"Rex","tag":"dog"},{"id":2,"name":"Tom","tag":"cat"}]"#);

/// A `ServeHttp` app that returns [`PETS_BODY`] for every request.
struct FixedBody;

#[async_trait]
impl ServeHttp for FixedBody {
    async fn response(&self, _session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let mut response = http::Response::new(PETS_BODY.to_vec());
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(PETS_BODY.len()));
        response
    }
}

fn main() -> anyhow::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18087".to_owned());
    // The same number of worker threads as the edge's default unless the second argument sets
    // another.
    let threads = match std::env::args().nth(2) {
        Some(threads) => threads
            .parse()
            .map_err(|_| anyhow::anyhow!("the second argument must be a number of worker threads"))?,
        None => mockforge_edge::default_threads(),
    };
    let mut server = Server::new(None)?;
    server.configuration = Arc::new(ServerConf {
        threads,
        ..ServerConf::default()
    });
    let mut service = Service::new("pingora-floor".to_owned(), FixedBody);
    service.add_tcp(&listen);
    server.add_service(service);
    println!("pingora floor listening on http://{listen}/pets");
    server.run_forever();
}
