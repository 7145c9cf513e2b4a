//! Access tokens at rest: AES-256-GCM with a random 96-bit nonce per value. The stored form is
//! `v1.{key_id}.{base64(nonce || ciphertext)}`; the key id lets old values decrypt after the key
//! rotates (list the new key first, the old ones after it). The associated data binds each value
//! to its owner (e.g. the shop domain), so a ciphertext copied onto another row does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("encryption key must be base64 of exactly 32 bytes")]
    BadKey,
    #[error("stored secret is malformed")]
    Malformed,
    #[error("stored secret was encrypted with key `{0}`, which is not configured")]
    UnknownKey(String),
    #[error("stored secret failed authentication (wrong key or tampered value)")]
    Inauthentic,
}

struct Key {
    id: String,
    cipher: Aes256Gcm,
}

/// Cheap to clone: the keys are shared.
#[derive(Clone)]
pub struct Cipher {
    keys: std::sync::Arc<Vec<Key>>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Cipher").field("key_ids", &ids).finish()
    }
}

impl Cipher {
    /// Parses `LIFECYCLE_ENCRYPTION_KEY`: one or more comma-separated base64 keys.
    pub fn from_config(value: &str) -> Result<Cipher, SecretsError> {
        let keys = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                let bytes = STANDARD.decode(s).map_err(|_| SecretsError::BadKey)?;
                Key::new(&bytes)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(SecretsError::BadKey);
        }
        Ok(Cipher {
            keys: std::sync::Arc::new(keys),
        })
    }

    /// A fresh random key, for local use when none is configured.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        STANDARD.encode(key)
    }

    pub fn encrypt(&self, plaintext: &str, owner: &str) -> String {
        let key = &self.keys[0];
        let mut nonce_bytes = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce_bytes);
        let nonce = Nonce::from(nonce_bytes);
        let sealed = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: owner.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short token cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        format!("v1.{}.{}", key.id, URL_SAFE_NO_PAD.encode(out))
    }

    pub fn decrypt(&self, stored: &str, owner: &str) -> Result<String, SecretsError> {
        let mut parts = stored.splitn(3, '.');
        let (Some("v1"), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SecretsError::Malformed);
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| SecretsError::UnknownKey(id.to_string()))?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SecretsError::Malformed)?;
        if raw.len() < 12 + 16 {
            return Err(SecretsError::Malformed);
        }
        let (nonce_bytes, sealed) = raw.split_at(12);
        let nonce_arr: [u8; 12] = nonce_bytes
            .try_into()
            .map_err(|_| SecretsError::Malformed)?;
        let plain = key
            .cipher
            .decrypt(
                &Nonce::from(nonce_arr),
                Payload {
                    msg: sealed,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Inauthentic)?;
        String::from_utf8(plain).map_err(|_| SecretsError::Malformed)
    }
}

impl Key {
    fn new(bytes: &[u8]) -> Result<Key, SecretsError> {
        if bytes.len() != 32 {
            return Err(SecretsError::BadKey);
        }
        let cipher = Aes256Gcm::new_from_slice(bytes).map_err(|_| SecretsError::BadKey)?;
        // The id is a digest prefix, so it names the key without revealing it.
        let id = hex::encode(&Sha256::digest(bytes)[..4]);
        Ok(Key { id, cipher })
    }
}

/// A random secret for local use, e.g. an unset client secret.
pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_owner() {
        let c = Cipher::from_config(&Cipher::generate_key()).unwrap();
        let s = c.encrypt("token-value", "a.example.com");
        assert!(!s.contains("token-value"));
        assert_eq!(c.decrypt(&s, "a.example.com").unwrap(), "token-value");
        assert!(matches!(
            c.decrypt(&s, "b.example.com"),
            Err(SecretsError::Inauthentic)
        ));
        // Two encryptions differ (random nonce).
        assert_ne!(s, c.encrypt("token-value", "a.example.com"));
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = Cipher::generate_key();
        let new = Cipher::generate_key();
        let before = Cipher::from_config(&old).unwrap().encrypt("t", "shop");
        let rotated = Cipher::from_config(&format!("{new},{old}")).unwrap();
        assert_eq!(rotated.decrypt(&before, "shop").unwrap(), "t");
        let after = rotated.encrypt("t", "shop");
        assert!(matches!(
            Cipher::from_config(&old).unwrap().decrypt(&after, "shop"),
            Err(SecretsError::UnknownKey(_))
        ));
    }

    #[test]
    fn rejects_bad_keys_and_garbage() {
        assert!(Cipher::from_config("short").is_err());
        assert!(Cipher::from_config("").is_err());
        let c = Cipher::from_config(&Cipher::generate_key()).unwrap();
        assert!(matches!(
            c.decrypt("v1.x", "s"),
            Err(SecretsError::Malformed)
        ));
        assert!(c.decrypt("nonsense", "s").is_err());
    }
}
