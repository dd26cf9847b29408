//! The `sub` a client sees (OIDC Core §8): the account's id for a public client; for a pairwise
//! client, an HMAC of the account's id under its sector's salt (§8.1), so that clients of
//! different sectors cannot match their users, while clients of one sector (the host of their
//! redirect URIs, or their `sector_identifier_uri`) see one `sub`.

use crate::crypto::{b64url, hmac_sha256};
use crate::domain::Client;
use crate::domain::client_metadata::{SubjectType, sector_of};
use crate::state::AppState;

/// The `sub` of `user_id` as `client` sees it.
pub async fn for_client(state: &AppState, client: &Client, user_id: &str) -> crate::store::Result<String> {
    if client.metadata.subject_type() != SubjectType::Pairwise {
        return Ok(user_id.to_owned());
    }
    // Registration makes sure a pairwise client has one sector; a client whose redirect URIs
    // were changed since to several hosts falls back to a sector of its own.
    let sector = sector_of(&client.redirect_uris, client.metadata.sector_identifier_uri.as_deref())
        .unwrap_or_else(|| format!("client:{}", client.id));
    let salt = state.store.sector_salt(&sector, state.now()).await?;
    Ok(pairwise(&salt, &sector, user_id))
}

/// OIDC Core §8.1: a value that only the provider can compute from the sector and the account.
pub fn pairwise(salt: &str, sector: &str, user_id: &str) -> String {
    b64url(&hmac_sha256(salt.as_bytes(), format!("{sector}\n{user_id}").as_bytes()))
}

/// The account behind a `sub` that `client` was given (an `id_token_hint`'s): itself for a
/// public client; for a pairwise one, the account of the session `sid` names when its `sub`
/// for this client is that one. Otherwise the `sub` as it is, which names no account.
pub async fn account_of(
    state: &AppState,
    client: &Client,
    sub: &str,
    sid: Option<&str>,
) -> crate::store::Result<String> {
    if client.metadata.subject_type() != SubjectType::Pairwise {
        return Ok(sub.to_owned());
    }
    if let Some(sid) = sid
        && let Some(session) = state.store.session(sid, state.now()).await?
        && for_client(state, client, &session.user_id).await? == sub
    {
        return Ok(session.user_id);
    }
    Ok(sub.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn pairwise_subjects_differ_by_sector_and_salt() {
        let a = super::pairwise("salt", "a.example.com", "user-1");
        assert_eq!(a, super::pairwise("salt", "a.example.com", "user-1"));
        assert_ne!(a, super::pairwise("salt", "b.example.com", "user-1"));
        assert_ne!(a, super::pairwise("other", "a.example.com", "user-1"));
        assert_ne!(a, "user-1");
    }
}
