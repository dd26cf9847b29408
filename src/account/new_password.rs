//! Whether a new password may be used: the policy (`domain::password_policy`), then the
//! account's history (`password.history`): not one of its last N passwords, the current one
//! included. The history is argon2 hashes, so each entry is checked on the password pool.

use crate::config::PasswordPolicy;
use crate::domain::User;
use crate::domain::password_policy::{self, Refusal};
use crate::passwords::Passwords;
use crate::store::Store;

/// The policy and the history, for `user`'s new `password`.
pub async fn check(
    passwords: &Passwords,
    store: &Store,
    policy: &PasswordPolicy,
    user: &User,
    password: &str,
) -> crate::store::Result<Result<(), Refusal>> {
    if let Err(refusal) = password_policy::check(policy, password, &[&user.username, &user.email]) {
        return Ok(Err(refusal));
    }
    Ok(if reused(passwords, store, policy.history, user, password).await? {
        Err(Refusal::Reused(policy.history))
    } else {
        Ok(())
    })
}

/// Is `password` one of the account's last `n` passwords? All of them are checked (at once,
/// on the pool), so the time taken says nothing about which one matched.
pub async fn reused(
    passwords: &Passwords,
    store: &Store,
    n: usize,
    user: &User,
    password: &str,
) -> crate::store::Result<bool> {
    if n == 0 {
        return Ok(false);
    }
    let mut hashes = store.password_history(&user.id, n).await?;
    // An account whose password predates its history still has its current one checked.
    if let Some(current) = &user.password_hash
        && !hashes.contains(current)
    {
        hashes.truncate(n.saturating_sub(1));
        hashes.push(current.clone());
    }
    let mut checks = tokio::task::JoinSet::new();
    for hash in hashes {
        let (passwords, password) = (passwords.clone(), password.to_owned());
        checks.spawn(async move { passwords.verify(password, Some(hash)).await });
    }
    let mut matched = false;
    while let Some(result) = checks.join_next().await {
        matched |= result.unwrap_or(false);
    }
    Ok(matched)
}
