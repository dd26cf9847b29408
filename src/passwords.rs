//! Password hashing with argon2id on a bounded blocking pool, so a storm of sign-ins queues
//! here instead of starving the async runtime.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

/// Verified against when the account does not exist, so unknown users cost the same time as
/// wrong passwords (no account enumeration by timing).
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_blocking("not a real password").expect("argon2 works"));

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    Ok(Argon2::default().hash_password(password.as_bytes()).map_err(|e| anyhow::anyhow!("argon2: {e}"))?.to_string())
}

fn verify_blocking(password: &str, hash: Option<&str>) -> bool {
    let hash = hash.unwrap_or(DUMMY_HASH.as_str());
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

impl Passwords {
    pub fn new(workers: usize) -> Self {
        LazyLock::force(&DUMMY_HASH);
        Self { permits: Arc::new(Semaphore::new(workers.max(1))) }
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
    }

    /// True when `password` matches `hash`; with no hash, spends the same effort and says no.
    pub async fn verify(&self, password: String, hash: Option<String>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else { return false };
        let known = hash.is_some();
        let ok =
            tokio::task::spawn_blocking(move || verify_blocking(&password, hash.as_deref())).await.unwrap_or(false);
        ok && known
    }
}

/// Minimum rules for a new password.
pub fn check_new(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < 8 {
        return Err("a password must have at least 8 characters");
    }
    if password.len() > 1024 {
        return Err("a password must have at most 1024 bytes");
    }
    Ok(())
}
