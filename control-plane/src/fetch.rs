//! The guarded OpenAPI document fetcher.
//!
//! Unless private networks are allowed, a fetch never connects to a private, loopback,
//! link-local, unique-local, CGNAT, multicast, unspecified or otherwise reserved address. Two
//! checks enforce this: a DNS resolver that drops such addresses (host names, including those
//! reached by a redirect) and a check of literal IP hosts (which never reach the resolver) on the
//! first URL and on every redirect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::Value;
use reqwest::redirect;
use reqwest::Url;

use crate::error::ApiError;

/// Maximum number of redirects a fetch follows.
pub const MAX_REDIRECTS: usize = 5;

/// Returns the name of the reserved range `ip` belongs to, or `None` for a public address.
pub fn reserved_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => reserved_v4(v4),
        IpAddr::V6(v6) => reserved_v6(v6),
    }
}

fn reserved_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("CGNAT")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || a >= 240 {
        Some("reserved")
    } else if a == 192 && b == 0 && c == 0 {
        Some("IETF protocol assignments")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking")
    } else {
        None
    }
}

fn reserved_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return reserved_v4(v4);
    }
    // NAT64 (64:ff9b::/96) embeds an IPv4 address in the last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return reserved_v4(Ipv4Addr::from(((hi as u32) << 16) | lo as u32));
    }
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if segments[0] & 0xfe00 == 0xfc00 {
        Some("unique-local")
    } else if segments[0] & 0xffc0 == 0xfe80 || segments[0] & 0xffc0 == 0xfec0 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

/// A resolved or literal address that private-network protection rejects.
#[derive(Debug, thiserror::Error)]
#[error("address {address} is in a reserved range ({range})")]
pub struct BlockedAddress {
    pub address: IpAddr,
    pub range: &'static str,
}

#[derive(Debug, thiserror::Error)]
#[error("too many redirects (maximum {MAX_REDIRECTS})")]
struct TooManyRedirects;

#[derive(Debug, thiserror::Error)]
#[error("redirect to unsupported scheme {0:?}; only http and https are fetched")]
struct UnsupportedScheme(String);

/// Parses `openapi_spec_url` and checks that its scheme is http or https. The create handler
/// calls this before any other check, so a bad URL is reported even when the fetch never runs.
pub fn parse_document_url(raw_url: &str) -> Result<Url, ApiError> {
    let url = Url::parse(raw_url).map_err(|error| {
        ApiError::validation("openapi_spec_url", format!("is not a valid URL: {error}"), Value::from(raw_url))
            .expecting("an http:// or https:// URL")
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ApiError::validation(
            "openapi_spec_url",
            format!("unsupported scheme {:?}; use http or https", url.scheme()),
            Value::from(raw_url),
        )
        .expecting("an http:// or https:// URL"));
    }
    Ok(url)
}

/// DNS resolver that removes reserved addresses from every answer.
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_blocked = None;
            let mut allowed = Vec::new();
            for address in resolved {
                match reserved_range(address.ip()) {
                    Some(range) => {
                        first_blocked.get_or_insert(BlockedAddress { address: address.ip(), range });
                    }
                    None => allowed.push(address),
                }
            }
            if allowed.is_empty() {
                if let Some(blocked) = first_blocked {
                    return Err(Box::new(blocked) as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    host.parse().ok()
}

fn check_literal(url: &Url) -> Result<(), BlockedAddress> {
    match literal_ip(url) {
        Some(address) => match reserved_range(address) {
            Some(range) => Err(BlockedAddress { address, range }),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

pub struct Fetcher {
    client: reqwest::Client,
    allow_private_networks: bool,
    max_bytes: u64,
}

impl Fetcher {
    pub fn new(allow_private_networks: bool, max_bytes: u64, timeout: Duration) -> anyhow::Result<Self> {
        Self::with_resolver(allow_private_networks, max_bytes, timeout, Arc::new(PublicOnlyResolver))
    }

    /// Builds a fetcher whose resolver replaces [`PublicOnlyResolver`] when private networks are
    /// not allowed. Tests use it to make a loopback server look public.
    fn with_resolver(
        allow_private_networks: bool,
        max_bytes: u64,
        timeout: Duration,
        resolver: Arc<dyn Resolve>,
    ) -> anyhow::Result<Self> {
        let policy = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(TooManyRedirects);
            }
            let scheme = attempt.url().scheme().to_owned();
            if scheme != "http" && scheme != "https" {
                return attempt.error(UnsupportedScheme(scheme));
            }
            if !allow_private_networks {
                if let Err(blocked) = check_literal(attempt.url()) {
                    return attempt.error(blocked);
                }
            }
            attempt.follow()
        });
        // Proxies are disabled: a proxy would resolve and connect on our behalf, bypassing the
        // address checks.
        let mut builder = reqwest::Client::builder()
            .redirect(policy)
            .no_proxy()
            .timeout(timeout)
            .user_agent(concat!("mockforge-control-plane/", env!("CARGO_PKG_VERSION")));
        if !allow_private_networks {
            builder = builder.dns_resolver2(resolver);
        }
        Ok(Self { client: builder.build()?, allow_private_networks, max_bytes })
    }

    /// Fetches a document, counting its size while streaming.
    pub async fn fetch(&self, raw_url: &str) -> Result<String, ApiError> {
        let url = parse_document_url(raw_url)?;
        if !self.allow_private_networks {
            check_literal(&url).map_err(|blocked| blocked_error(raw_url, &blocked))?;
        }

        let mut response = self.client.get(url).send().await.map_err(|error| self.request_error(raw_url, &error))?;
        if !response.status().is_success() {
            return Err(ApiError::FetchFailed {
                url: raw_url.to_owned(),
                reason: format!("the server responded with status {}", response.status()),
            });
        }
        if response.content_length().is_some_and(|length| length > self.max_bytes) {
            return Err(ApiError::DocumentTooLarge { limit: self.max_bytes });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| self.request_error(raw_url, &error))? {
            if (body.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(ApiError::DocumentTooLarge { limit: self.max_bytes });
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| ApiError::FetchFailed {
            url: raw_url.to_owned(),
            reason: "the document is not valid UTF-8".to_owned(),
        })
    }

    fn request_error(&self, raw_url: &str, error: &reqwest::Error) -> ApiError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(current) = source {
            if let Some(blocked) = current.downcast_ref::<BlockedAddress>() {
                return blocked_error(raw_url, blocked);
            }
            source = current.source();
        }
        let reason = if error.is_timeout() {
            "the request timed out".to_owned()
        } else {
            error_chain(error)
        };
        ApiError::FetchFailed { url: raw_url.to_owned(), reason }
    }
}

fn blocked_error(raw_url: &str, blocked: &BlockedAddress) -> ApiError {
    ApiError::BlockedAddress { url: raw_url.to_owned(), address: format!("{} ({})", blocked.address, blocked.range) }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(current) = source {
        text.push_str(": ");
        text.push_str(&current.to_string());
        source = current.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{reserved_range, BlockedAddress, PublicOnlyResolver};
    use reqwest::dns::Resolve;

    /// Resolves `public.test` to a loopback address as if it were public, and every other name
    /// through [`PublicOnlyResolver`].
    struct PinnedResolver(std::net::SocketAddr);

    impl Resolve for PinnedResolver {
        fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
            if name.as_str() == "public.test" {
                let address = self.0;
                Box::pin(async move { Ok(Box::new(std::iter::once(address)) as reqwest::dns::Addrs) })
            } else {
                PublicOnlyResolver.resolve(name)
            }
        }
    }

    #[tokio::test]
    async fn redirects_to_private_addresses_rejected() {
        use axum::response::Redirect;
        use axum::routing::get;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let port = address.port();
        let app = axum::Router::new()
            .route("/doc", get(|| async { "{}" }))
            .route("/to-literal", get(move || async move { Redirect::temporary(&format!("http://127.0.0.1:{port}/doc")) }))
            .route("/to-localhost", get(move || async move { Redirect::temporary(&format!("http://localhost:{port}/doc")) }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let resolver = std::sync::Arc::new(PinnedResolver(address));
        let fetcher = super::Fetcher::with_resolver(false, 1024, std::time::Duration::from_secs(10), resolver).unwrap();

        let document = fetcher.fetch(&format!("http://public.test:{port}/doc")).await.expect("the pinned host is public");
        assert_eq!(document, "{}");

        for path in ["to-literal", "to-localhost"] {
            let error = fetcher.fetch(&format!("http://public.test:{port}/{path}")).await.unwrap_err();
            match error {
                crate::error::ApiError::BlockedAddress { address, .. } => {
                    assert!(address.contains("loopback"), "{path}: {address}")
                }
                other => panic!("{path}: expected a blocked address, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn resolver_rejects_loopback_names() {
        // `localhost` resolves locally (hosts file), so this sends nothing over the network.
        let error = match PublicOnlyResolver.resolve("localhost".parse().unwrap()).await {
            Ok(addresses) => panic!("localhost must be rejected, got {:?}", addresses.collect::<Vec<_>>()),
            Err(error) => error,
        };
        let blocked = error.downcast_ref::<BlockedAddress>().expect("a BlockedAddress error");
        assert_eq!(blocked.range, "loopback");
    }

    #[test]
    fn reserved_ranges_are_detected() {
        for blocked in [
            "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "224.0.0.1",
            "0.0.0.0", "255.255.255.255", "::1", "::", "fc00::1", "fd12::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(reserved_range(blocked.parse().unwrap()).is_some(), "{blocked} must be reserved");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(reserved_range(public.parse().unwrap()).is_none(), "{public} must be public");
        }
    }
}
