//! Loads PEM certificate chains and private keys, and selects the certificate for a server name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;

use super::TlsConfig;

/// Extension of a custom certificate chain in `cert_dir`. Its key file has the same stem.
pub(crate) const CERT_EXTENSION: &str = "crt";
/// Extension of a custom private key in `cert_dir`.
pub(crate) const KEY_EXTENSION: &str = "key";

/// The certificates one TLS listener serves.
#[derive(Debug)]
pub(crate) struct CertStore {
    /// The certificate for `*.{base_domain}`, served when no custom certificate matches.
    wildcard: Arc<CertifiedKey>,
    /// Custom certificates by lowercase server name.
    custom: HashMap<String, Arc<CertifiedKey>>,
}

impl CertStore {
    /// Loads the wildcard pair and every custom pair of `config.cert_dir`.
    ///
    /// Fails on the first file that cannot be read or parsed, on a key that does not match its
    /// certificate and on a certificate that is not valid for the name it is served for. The
    /// error names the file.
    pub(crate) fn load(config: &TlsConfig, base_domain: &str) -> anyhow::Result<CertStore> {
        let wildcard = load_pair(&config.cert, &config.key)?;
        // Any single label names an organization, so one sample name checks the wildcard.
        let sample = format!("org.{base_domain}");
        check_name(&wildcard, &config.cert, &sample)
            .map_err(|error| anyhow!("{error:#}; expected a certificate for *.{base_domain}"))?;

        let mut custom = HashMap::new();
        if let Some(dir) = &config.cert_dir {
            for pair in custom_pairs(dir, base_domain)? {
                let key = load_pair(&pair.cert, &pair.key)?;
                check_name(&key, &pair.cert, &pair.name)?;
                custom.insert(pair.name, Arc::new(key));
            }
        }
        Ok(CertStore {
            wildcard: Arc::new(wildcard),
            custom,
        })
    }

    /// Returns the custom certificate for `server_name` if there is one, else the wildcard
    /// certificate. Clients that send no server name get the wildcard certificate.
    pub(crate) fn select(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let custom = server_name.and_then(|name| {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            self.custom.get(&name)
        });
        custom.unwrap_or(&self.wildcard).clone()
    }

    /// Returns the number of custom certificates.
    pub(crate) fn custom_count(&self) -> usize {
        self.custom.len()
    }
}

/// A custom certificate file, its key file and the server name it is served for.
struct CustomPair {
    name: String,
    cert: PathBuf,
    key: PathBuf,
}

/// Lists the `NAME.crt` files of `dir` with their `NAME.key` files.
///
/// `NAME` is the server name, for example `api.acme.com.crt`. A name without a dot is an
/// organization slug and is short for `NAME.{base_domain}`, so `acme.crt` serves
/// `acme.{base_domain}`. Files with other extensions are ignored.
fn custom_pairs(dir: &Path, base_domain: &str) -> anyhow::Result<Vec<CustomPair>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "failed to read the TLS certificate directory {}",
            dir.display()
        )
    })?;
    let mut pairs = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| {
                format!(
                    "failed to read the TLS certificate directory {}",
                    dir.display()
                )
            })?
            .path();
        let extension = path.extension().and_then(|extension| extension.to_str());
        let stem = path.file_stem().and_then(|stem| stem.to_str());
        let (Some(extension), Some(stem)) = (extension, stem) else {
            continue;
        };
        if extension == KEY_EXTENSION {
            let cert = path.with_extension(CERT_EXTENSION);
            if !cert.exists() {
                bail!(
                    "the TLS key file {} has no certificate file {}",
                    path.display(),
                    cert.display()
                );
            }
            continue;
        }
        if extension != CERT_EXTENSION {
            continue;
        }
        let key = path.with_extension(KEY_EXTENSION);
        if !key.exists() {
            bail!(
                "the TLS certificate file {} has no key file {}",
                path.display(),
                key.display()
            );
        }
        let stem = stem.to_ascii_lowercase();
        let name = if stem.contains('.') {
            stem
        } else {
            format!("{stem}.{base_domain}")
        };
        pairs.push(CustomPair {
            name,
            cert: path,
            key,
        });
    }
    pairs.sort_by(|left, right| left.name.cmp(&right.name));
    Ok(pairs)
}

/// Reads a PEM certificate chain and the PEM private key that belongs to it.
fn load_pair(cert_path: &Path, key_path: &Path) -> anyhow::Result<CertifiedKey> {
    let cert_pem = std::fs::read(cert_path).with_context(|| {
        format!(
            "failed to read the TLS certificate file {}",
            cert_path.display()
        )
    })?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "the TLS certificate file {} is not valid PEM",
                cert_path.display()
            )
        })?;
    if chain.is_empty() {
        bail!(
            "the TLS certificate file {} contains no certificate; expected a PEM chain \
             starting with -----BEGIN CERTIFICATE-----",
            cert_path.display()
        );
    }

    let key_pem = std::fs::read(key_path)
        .with_context(|| format!("failed to read the TLS key file {}", key_path.display()))?;
    // The parse error names the PEM section at most, never key material.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| {
        anyhow!(
            "the TLS key file {} contains no valid PEM private key ({error}); expected \
             PKCS#8, PKCS#1 or SEC1 PEM",
            key_path.display()
        )
    })?;

    // pingora 0.9 signs with ring, so the key is loaded with ring too.
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|error| {
        anyhow!(
            "the TLS key file {} contains an unsupported private key: {error}; expected an \
             RSA, ECDSA P-256/P-384 or Ed25519 key",
            key_path.display()
        )
    })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(error) => Err(anyhow!(
            "the TLS key file {} does not match the certificate file {}: {error}",
            key_path.display(),
            cert_path.display()
        )),
    }
}

/// Checks that the end-entity certificate of `key` is valid for `name`, so a file served for the
/// wrong name fails when it is loaded instead of in every client.
fn check_name(key: &CertifiedKey, cert_path: &Path, name: &str) -> anyhow::Result<()> {
    let server_name = ServerName::try_from(name.to_owned()).map_err(|error| {
        anyhow!(
            "invalid server name {name:?} for the TLS certificate file {}: {error}",
            cert_path.display()
        )
    })?;
    let parsed = key
        .end_entity_cert()
        .and_then(rustls::server::ParsedCertificate::try_from)
        .map_err(|error| {
            anyhow!(
                "the TLS certificate file {} contains an invalid certificate: {error}",
                cert_path.display()
            )
        })?;
    rustls::client::verify_server_name(&parsed, &server_name).map_err(|error| {
        anyhow!(
            "the TLS certificate file {} is not valid for {name}: {error}",
            cert_path.display()
        )
    })
}
