//! Which steps a sign-in needs, decided from the request, the client and the session. Pure
//! functions of their inputs: no I/O, the time passed in.

use super::steps::StepKind;
use crate::domain::{Client, Session};
use crate::oidc::authorize::AuthRequest;

/// Authentication context classes offered (OIDC Core §2 `acr`). "1": one factor.
pub const ACR_VALUES_SUPPORTED: &[&str] = &["1"];

/// What `/authorize` does for a request, given the browser's session.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Answer at once from the session.
    Issue,
    /// Authenticate (again): no session, `prompt=login`, `max_age` exceeded, or the
    /// `id_token_hint` names someone else.
    Login,
    /// Signed in, but the user must approve this client's scopes.
    Consent,
}

pub fn decide(
    req: &AuthRequest,
    client: &Client,
    session: Option<&Session>,
    consented: &[String],
    now: i64,
) -> Decision {
    let Some(s) = session else { return Decision::Login };
    let too_old = req.max_age.is_some_and(|max| s.older_than(max, now));
    let other_user = req.hint_sub.as_ref().is_some_and(|sub| *sub != s.user_id);
    if req.prompt.login || too_old || other_user {
        Decision::Login
    } else if needs_consent(req, client, consented) {
        Decision::Consent
    } else {
        Decision::Issue
    }
}

/// Consent is needed unless the client is first-party or every scope was granted before;
/// `prompt=consent` always asks (OIDC Core §3.1.2.1).
pub fn needs_consent(req: &AuthRequest, client: &Client, consented: &[String]) -> bool {
    !client.first_party && (req.prompt.consent || !req.scopes.iter().all(|s| consented.contains(s)))
}

/// The step a sign-in starts with.
pub fn first_step(_req: &AuthRequest) -> StepKind {
    StepKind::Password
}

/// After a step passed: the next step, if the request needs more than what was proven.
pub fn next_step(_req: &AuthRequest, _passed: &[StepKind]) -> Option<StepKind> {
    None
}

/// The `acr` a set of `amr` values earns.
pub fn acr_for(_amr: &[String]) -> &'static str {
    "1"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AuthMethod, GrantType};
    use crate::oidc::authorize::{ResponseMode, Target, request::Prompt};

    fn client(first_party: bool) -> Client {
        Client {
            id: "c".into(),
            name: "C".into(),
            secret_hash: None,
            auth_method: AuthMethod::ClientSecretBasic,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: vec![],
            first_party,
            created_at: 0,
            id_token_signed_response_alg: crate::keys::Alg::DEFAULT,
        }
    }

    fn request() -> AuthRequest {
        AuthRequest {
            client_id: "c".into(),
            target: Target { redirect_uri: "https://rp/cb".into(), response_mode: ResponseMode::Query, state: None },
            scopes: vec!["openid".into(), "email".into()],
            nonce: None,
            code_challenge: None,
            prompt: Prompt::default(),
            max_age: None,
            login_hint: None,
            hint_sub: None,
            acr_values: vec![],
            claims: None,
        }
    }

    fn session(auth_time: i64) -> Session {
        Session {
            id: "s".into(),
            user_id: "u".into(),
            auth_time,
            amr: vec!["pwd".into()],
            acr: "1".into(),
            expires_at: i64::MAX,
        }
    }

    #[test]
    fn no_session_means_login() {
        assert_eq!(decide(&request(), &client(false), None, &[], 100), Decision::Login);
    }

    #[test]
    fn max_age_and_prompt_login_force_authentication() {
        let mut req = request();
        req.max_age = Some(10);
        let all = vec!["email".to_string(), "openid".to_string()];
        assert_eq!(decide(&req, &client(true), Some(&session(0)), &all, 11), Decision::Login);
        assert_eq!(decide(&req, &client(true), Some(&session(0)), &all, 10), Decision::Issue);
        let mut req = request();
        req.prompt.login = true;
        assert_eq!(decide(&req, &client(true), Some(&session(0)), &all, 1), Decision::Login);
    }

    #[test]
    fn consent_is_remembered_per_scope_and_skipped_for_first_party() {
        let req = request();
        assert_eq!(decide(&req, &client(false), Some(&session(0)), &["openid".into()], 1), Decision::Consent);
        assert_eq!(
            decide(&req, &client(false), Some(&session(0)), &["email".into(), "openid".into()], 1),
            Decision::Issue
        );
        assert_eq!(decide(&req, &client(true), Some(&session(0)), &[], 1), Decision::Issue);
    }

    #[test]
    fn id_token_hint_for_another_user_means_login() {
        let mut req = request();
        req.hint_sub = Some("someone-else".into());
        assert_eq!(decide(&req, &client(true), Some(&session(0)), &[], 1), Decision::Login);
    }
}
