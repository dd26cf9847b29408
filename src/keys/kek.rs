//! The key-encryption key (KEK): AES-256-GCM over every private key at rest, with the key id as
//! associated data so a ciphertext cannot be moved onto another key's record.
//!
//! Source, first found wins: `LATCHKEY_KEK` (base64url of 32 bytes), else `<keys_dir>/kek`,
//! which development mode creates on first start (mode 0600, ignored by git).

use crate::crypto::{b64url, b64url_decode, random_bytes};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use std::io::Write;
use std::path::Path;

#[derive(Clone)]
pub struct Kek(Aes256Gcm);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

const PREFIX: &str = "v1";

impl Kek {
    pub fn load_or_create(keys_dir: &Path) -> anyhow::Result<Self> {
        if let Ok(v) = std::env::var("LATCHKEY_KEK") {
            return Self::from_b64(v.trim()).ok_or_else(|| anyhow::anyhow!("LATCHKEY_KEK: not base64url of 32 bytes"));
        }
        let path = keys_dir.join("kek");
        if !path.exists() {
            std::fs::create_dir_all(keys_dir)?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            // create_new: when two processes start at once, one writes and the other reads it.
            if let Ok(mut f) = options.open(&path) {
                f.write_all(b64url(&random_bytes(32)).as_bytes())?;
                f.sync_all()?;
                tracing::warn!(path = %path.display(), "generated a development key-encryption key; set LATCHKEY_KEK in production");
            }
        }
        let mut text = String::new();
        for _ in 0..50 {
            text = std::fs::read_to_string(&path)?;
            if !text.trim().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self::from_b64(text.trim()).ok_or_else(|| anyhow::anyhow!("{}: not a key-encryption key", path.display()))
    }

    fn from_b64(s: &str) -> Option<Self> {
        let bytes = b64url_decode(s)?;
        Aes256Gcm::new_from_slice(&bytes).ok().map(Self)
    }

    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> String {
        let nonce_bytes = random_bytes(12);
        let nonce = nonce_bytes.as_slice().try_into().expect("12-byte nonce");
        let ct = self
            .0
            .encrypt(nonce, Payload { msg: plaintext, aad: kid.as_bytes() })
            .expect("AES-GCM encryption of a small buffer cannot fail");
        format!("{PREFIX}.{}.{}", b64url(&nonce_bytes), b64url(&ct))
    }

    pub fn open(&self, kid: &str, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let mut parts = sealed.split('.');
        let (Some(PREFIX), Some(n), Some(c), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!("key {kid}: unknown encryption format");
        };
        let (Some(nonce_bytes), Some(ct)) = (b64url_decode(n), b64url_decode(c)) else {
            anyhow::bail!("key {kid}: malformed ciphertext");
        };
        let nonce = nonce_bytes.as_slice().try_into().map_err(|_| anyhow::anyhow!("key {kid}: bad nonce"))?;
        self.0
            .decrypt(nonce, Payload { msg: &ct, aad: kid.as_bytes() })
            .map_err(|_| anyhow::anyhow!("key {kid}: cannot decrypt with this key-encryption key"))
    }
}
