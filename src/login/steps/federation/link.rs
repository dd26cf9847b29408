//! Which local account an upstream identity signs in to. A linked (provider, subject) is that
//! account. Otherwise an account with the same verified email is never signed in to or linked
//! on the email alone: the person must sign in to it with its own steps first, and only then
//! is the link made ([`link_proven`]). Otherwise a new account, when the upstream allows
//! registration, created with its link in one transaction.

use super::{Failure, Identity};
use crate::config::Upstream;
use crate::crypto::{random_id, random_token};
use crate::domain::User;
use crate::http::PageError;
use crate::state::AppState;
use crate::store::{AuditEvent, LinkedIdentity};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An identity waiting for its account to be proven, kept in the login flow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingLink {
    pub provider: String,
    pub display_name: String,
    pub subject: String,
    pub email: String,
    /// The account the email matched: the only one this identity may be linked to.
    pub user_id: String,
    pub claims: Map<String, Value>,
}

pub enum Resolved {
    /// Sign in as this user.
    User(String),
    /// An account has this email: prove it first.
    ProveAccount(PendingLink),
    Refused(Failure),
}

pub async fn resolve(state: &AppState, upstream: &Upstream, id: &Identity, now: i64) -> Result<Resolved, PageError> {
    if let Some(user_id) = state.store.linked_user(&upstream.id, &id.subject).await? {
        let Some(user) = state.store.user(&user_id).await?.filter(|u| !u.disabled) else {
            return Ok(Resolved::Refused(Failure::new("This account cannot sign in.", "account disabled")));
        };
        state.store.fill_empty_claims(&user, &id.claims, now).await?;
        return Ok(Resolved::User(user_id));
    }
    // Only an email the upstream vouches for is compared; even then it only asks for proof.
    if let Some(email) = id.email.as_deref().filter(|_| id.email_verified)
        && let Some(user_id) = state.store.user_by_email(email).await?
    {
        return Ok(Resolved::ProveAccount(PendingLink {
            provider: upstream.id.clone(),
            display_name: upstream.display_name().to_owned(),
            subject: id.subject.clone(),
            email: email.to_owned(),
            user_id,
            claims: id.claims.clone(),
        }));
    }
    if !upstream.allow_registration {
        return Ok(Resolved::Refused(Failure::new(
            format!(
                "There is no account here for your {} sign-in, and new accounts cannot be made this way.",
                upstream.display_name()
            ),
            "registration closed",
        )));
    }
    let user = new_user(state, upstream, id, now).await?;
    let link = LinkedIdentity {
        provider: upstream.id.clone(),
        subject: id.subject.clone(),
        user_id: user.id.clone(),
        email: id.email.clone(),
        created_at: now,
    };
    if !state.store.insert_federated_user(&user, &link).await? {
        // Linked by a racing sign-in meanwhile: that account is the one.
        return match state.store.linked_user(&upstream.id, &id.subject).await? {
            Some(user_id) => Ok(Resolved::User(user_id)),
            None => Err(PageError::expired()),
        };
    }
    let event = AuditEvent::new("upstream.registered").user(&user.id).detail("upstream", upstream.id.clone());
    state.store.audit(event, now).await;
    state.store.audit(linked_event(&link), now).await;
    Ok(Resolved::User(user.id))
}

/// A new account for `id`: no password, the upstream's profile claims, its email with
/// `email_verified` as the upstream said.
async fn new_user(state: &AppState, upstream: &Upstream, id: &Identity, now: i64) -> Result<User, PageError> {
    let mut claims = id.claims.clone();
    if id.email.is_some() {
        claims.insert("email_verified".into(), Value::Bool(id.email_verified));
    }
    // The provider and a random suffix, not the subject: the username is kept in clear (it is
    // the `preferred_username`), the subject is sealed like the rest of the person's data.
    let provider: String =
        upstream.id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).take(40).collect();
    let username = loop {
        let candidate = format!("{provider}-{}", &random_token()[..12]);
        if state.store.user_by_login(&candidate).await?.is_none() {
            break candidate;
        }
    };
    Ok(User {
        id: random_id(),
        username,
        email: id.email.clone().unwrap_or_default(),
        password_hash: None,
        claims,
        disabled: false,
        status: Default::default(),
        created_at: now,
        updated_at: now,
    })
}

fn linked_event(link: &LinkedIdentity) -> AuditEvent {
    AuditEvent::new("upstream.linked").user(&link.user_id).detail("upstream", link.provider.clone())
}

/// The flow that carried `pending` has signed in as `user_id` with every step its policy
/// asked: link it, if that is the account the email matched.
pub async fn link_proven(
    state: &AppState,
    pending: PendingLink,
    user_id: &str,
    ip: Option<String>,
    now: i64,
) -> Result<(), PageError> {
    if pending.user_id != user_id {
        let event = AuditEvent::new("upstream.link_skipped")
            .user(user_id)
            .ip(ip)
            .detail("upstream", pending.provider)
            .detail("reason", "signed in to another account");
        state.store.audit(event, now).await;
        return Ok(());
    }
    let link = LinkedIdentity {
        provider: pending.provider,
        subject: pending.subject,
        user_id: user_id.to_owned(),
        email: Some(pending.email),
        created_at: now,
    };
    if state.store.link_identity(&link).await? {
        if let Some(user) = state.store.user(user_id).await? {
            state.store.fill_empty_claims(&user, &pending.claims, now).await?;
        }
        state.store.audit(linked_event(&link).ip(ip), now).await;
    }
    Ok(())
}
