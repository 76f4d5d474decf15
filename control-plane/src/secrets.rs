//! Encryption of stored provider API keys with AES-256-GCM under a master key.
//!
//! The AES key is the SHA-256 of the master secret, which comes from the configuration or from
//! `{data_dir}/master-key` (created with mode 0600 on first start). Each value gets a random
//! 96-bit nonce, and the owning organization's id is the associated data, so a ciphertext copied
//! to another organization's row does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::ControlPlaneConfig;

const NONCE_LEN: usize = 12;
const MASTER_KEY_MIN: usize = 32;

pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl SecretBox {
    pub fn new(master_secret: &[u8]) -> SecretBox {
        let key = Sha256::digest(master_secret);
        SecretBox { cipher: Aes256Gcm::new(&key) }
    }

    /// Encrypts `plaintext` for organization `org_id` and returns base64 of nonce and ciphertext.
    pub fn encrypt(&self, org_id: Uuid, plaintext: &str) -> anyhow::Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: org_id.as_bytes() })
            .map_err(|_| anyhow::anyhow!("AES-GCM encryption failed"))?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&ciphertext);
        Ok(base64::engine::general_purpose::STANDARD.encode(stored))
    }

    /// Decrypts a value from [`SecretBox::encrypt`] for the same organization.
    pub fn decrypt(&self, org_id: Uuid, stored: &str) -> anyhow::Result<String> {
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(stored).context("the stored secret is not base64")?;
        anyhow::ensure!(bytes.len() > NONCE_LEN, "the stored secret is too short");
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plaintext = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: org_id.as_bytes() })
            .map_err(|_| anyhow::anyhow!("failed to decrypt a stored secret: wrong master key or organization"))?;
        String::from_utf8(plaintext).context("the decrypted secret is not UTF-8")
    }
}

/// Returns the configured master secret, or reads (creating on first use) `{data_dir}/master-key`.
pub(crate) fn load_master_secret(config: &ControlPlaneConfig) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.master_key {
        anyhow::ensure!(
            secret.len() >= MASTER_KEY_MIN,
            "the master key must be at least {MASTER_KEY_MIN} bytes long, got {}",
            secret.len()
        );
        return Ok(secret.as_bytes().to_vec());
    }
    let path = config.data_dir.join("master-key");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let secret = text.trim();
            anyhow::ensure!(
                secret.len() >= MASTER_KEY_MIN,
                "the master key in {} is shorter than {MASTER_KEY_MIN} bytes; restore it from a backup, because stored API keys cannot be decrypted without it",
                path.display()
            );
            Ok(secret.as_bytes().to_vec())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => crate::config::create_secret_file(&path),
        Err(error) => Err(error).with_context(|| format!("failed to read {}", path.display())),
    }
}

/// Masks an API key for display: its first three characters and `...***`.
pub fn mask(key: &str) -> String {
    let visible: String = key.chars().take(3).collect();
    format!("{visible}...***")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_bound_to_organization() {
        let secrets = SecretBox::new(b"0123456789abcdef0123456789abcdef");
        let org = Uuid::new_v4();
        let stored = secrets.encrypt(org, "sk-live-secret").unwrap();
        assert!(!stored.contains("sk-live-secret"));
        assert_eq!(secrets.decrypt(org, &stored).unwrap(), "sk-live-secret");
        assert!(secrets.decrypt(Uuid::new_v4(), &stored).is_err());
        let other = SecretBox::new(b"another master key of 32 bytes!!");
        assert!(other.decrypt(org, &stored).is_err());
        assert_ne!(secrets.encrypt(org, "sk-live-secret").unwrap(), stored, "nonces differ");
    }

    #[test]
    fn mask_shows_prefix_only() {
        assert_eq!(mask("sk-abcdef123456"), "sk-...***");
        assert_eq!(mask("ab"), "ab...***");
    }
}
