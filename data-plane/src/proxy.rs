//! Forwarding to a real API per deployment at request time. The `config_json.proxy` setting is
//! parsed and checked by [`mockforge_snapshot::settings`], which the control plane also uses.
//! Upstreams that resolve to loopback, private, link-local or other non-public addresses are
//! rejected unless `EdgeConfig::allow_private_upstreams` is set.

use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;

use http::Method;
use mockforge_engine::Mock;

pub use mockforge_snapshot::settings::{ProxyMode, ProxySettings};

/// A deployment's upstream settings, with the forwarding decisions. It dereferences to the
/// parsed [`ProxySettings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    settings: ProxySettings,
}

impl ProxyConfig {
    /// Wraps settings whose `operations` list is resolved against the deployment's mock.
    pub fn new(settings: ProxySettings) -> ProxyConfig {
        ProxyConfig { settings }
    }

    /// Returns true when a request with this method and path below the deployment goes to the
    /// upstream.
    pub fn forwards(&self, mock: &Mock, method: &Method, path: &str) -> bool {
        match self.mode {
            ProxyMode::All => true,
            ProxyMode::Unmatched => mock.find_operation(method, path).is_none(),
            ProxyMode::Operations => self
                .operations
                .as_ref()
                .is_some_and(|filter| filter.matches(mock, method, path)),
        }
    }

    /// Returns the upstream URL for messages, for example `https://api.example.com:443/v1`.
    pub fn display_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}{}", self.host, self.port, self.base_path)
    }

    /// Resolves the upstream host and returns its first address, rejecting non-public
    /// addresses unless `allow_private` is set.
    pub async fn resolve(&self, allow_private: bool) -> Result<SocketAddr, String> {
        let addresses = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|error| format!("failed to resolve upstream host {}: {error}", self.host))?;
        let mut rejected = None;
        for address in addresses {
            if allow_private || is_public(address.ip()) {
                return Ok(address);
            }
            rejected = Some(address.ip());
        }
        match rejected {
            Some(ip) => Err(format!(
                "upstream host {} resolves to the non-public address {ip}, which the edge does not forward to unless it runs with --fetch-allow-private-networks",
                self.host
            )),
            None => Err(format!("upstream host {} has no address", self.host)),
        }
    }
}

impl Deref for ProxyConfig {
    type Target = ProxySettings;

    fn deref(&self) -> &ProxySettings {
        &self.settings
    }
}

/// Returns true for addresses on the public internet: not loopback, private, link-local,
/// shared (100.64/10), unspecified, multicast, documentation or unique-local.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [first, second, ..] = ip.octets();
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_multicast()
                || ip.is_documentation()
                || first == 0
                || (first == 100 && (64..128).contains(&second)))
        }
        IpAddr::V6(ip) => {
            if let Some(mapped) = ip.to_ipv4_mapped() {
                return is_public(IpAddr::V4(mapped));
            }
            let first = ip.segments()[0];
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_detected() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} counted as public");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip} counted as non-public");
        }
    }
}
