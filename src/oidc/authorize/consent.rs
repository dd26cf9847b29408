//! Consent (OIDC Core §3.1.2.4): whether the user must approve what a client asks, and the page
//! that asks. What is asked is the request's scopes and the scopes whose claims the `claims`
//! parameter names (§5.5), so claims asked by name are released only with the same consent.
//! A decision is remembered per scope; first-party clients are not asked.

use crate::domain::claims::scopes_for_claims;
use crate::domain::{AuthRequest, Client};
use crate::pages::{self, View};

/// What the user consents to for `req`: its scopes, and those its `claims` parameter implies.
pub fn asked(req: &AuthRequest) -> Vec<String> {
    let mut scopes = req.scopes.clone();
    scopes.extend(scopes_for_claims(req.claims.as_deref()));
    scopes.sort();
    scopes.dedup();
    scopes
}

/// Consent is needed unless the client is first-party or everything asked was granted before;
/// `prompt=consent` always asks (OIDC Core §3.1.2.1).
pub fn needed(req: &AuthRequest, client: &Client, consented: &[String]) -> bool {
    !client.first_party && (req.prompt.consent || !asked(req).iter().all(|s| consented.contains(s)))
}

/// The page: who asks, for whom, and what each scope means.
pub fn page(action: &str, csrf: &str, client: &Client, username: &str, req: &AuthRequest) -> View {
    View::ok(&pages::ConsentPage {
        action,
        csrf,
        client_name: &client.name,
        username,
        scopes: lines(&asked(req)),
        policy_uri: client.metadata.policy_uri.as_deref(),
        tos_uri: client.metadata.tos_uri.as_deref(),
    })
}

/// Each scope with what it means in words, for the pages that ask for approval.
pub fn lines(scopes: &[String]) -> Vec<pages::ScopeLine> {
    scopes.iter().map(|s| pages::ScopeLine { name: s.clone(), description: scope_description(s) }).collect()
}

fn scope_description(scope: &str) -> &'static str {
    match scope {
        "openid" => "know who you are",
        "profile" => "see your name and profile details",
        "email" => "see your email address",
        "address" => "see your postal address",
        "phone" => "see your phone number",
        "offline_access" => "keep access while you are away",
        "groups" => "see which groups you belong to",
        "roles" => "see your roles in this application",
        _ => "access this",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{client, request};

    #[test]
    fn consent_is_remembered_per_scope_and_skipped_for_first_party() {
        let req = request();
        assert!(needed(&req, &client(false), &["openid".into()]));
        assert!(!needed(&req, &client(false), &["email".into(), "openid".into()]));
        assert!(!needed(&req, &client(true), &[]));
        let mut again = request();
        again.prompt.consent = true;
        assert!(needed(&again, &client(false), &["email".into(), "openid".into()]));
    }

    #[test]
    fn claims_asked_by_name_need_their_scope_consent() {
        let mut req = request();
        req.scopes = vec!["openid".into()];
        req.claims = Some(r#"{"userinfo":{"email":null},"id_token":{"phone_number":{"essential":true}}}"#.into());
        assert_eq!(asked(&req), vec!["email".to_string(), "openid".into(), "phone".into()]);
        assert!(needed(&req, &client(false), &["openid".into()]));
        assert!(!needed(&req, &client(false), &["email".into(), "openid".into(), "phone".into()]));
    }
}
