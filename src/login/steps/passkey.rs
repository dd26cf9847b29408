//! The passkey step (WebAuthn Level 3 §7.2, verifying an authentication assertion), through
//! webauthn-rs, which requires user verification for passkeys. Two uses:
//!
//! - first factor, passwordless: the password page offers the passkey (with the browser's
//!   conditional UI). No credential list is sent; the authenticator names the credential and
//!   the user handle, and both must point at the same enabled account. With user verification
//!   the result is two kinds of factor (`hwk`/`swk` and `user`), so no further factor is asked.
//! - second factor (or step-up): the signed-in user's own credentials are offered.
//!
//! A challenge is issued per flow by `POST /login/{flow}/passkey` and kept in the ephemeral
//! store until the assertion comes back; taking it is atomic, so an assertion is accepted once.
//! A signature counter that does not move forward (§6.1.1) is refused, audited as
//! `login.passkey_counter_regression` and counted toward the account's throttle.

use super::{Outcome, StepContext, THROTTLED, count_failure, failures_key, throttled};
use crate::crypto::b64url;
use crate::ephemeral::Taken;
use crate::http::{PageError, Params};
use crate::pages;
use crate::store::{AuditEvent, PasskeyRow};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PublicKeyCredential, WebauthnError,
};

/// How long an issued challenge waits for its assertion.
const CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);

/// What the challenge was issued for, kept until the assertion comes back.
#[derive(Serialize, Deserialize)]
enum Ceremony {
    /// Any discoverable credential (passwordless).
    Discoverable(DiscoverableAuthentication),
    /// One of the identified user's credentials.
    Known(PasskeyAuthentication),
}

fn ceremony_key(flow_id: &str) -> String {
    format!("passkey-auth:{flow_id}")
}

/// The page of the step as a second factor; as a first factor it is the password page.
pub fn render(ctx: &StepContext<'_>, error: Option<&str>, form: Option<&Params>) -> Response {
    if ctx.flow.user_id.is_none() {
        return super::password::render(ctx, error, form);
    }
    let action = ctx.action();
    let options = options_url(ctx);
    let switches = ctx.switches(super::StepKind::Passkey);
    let page = pages::PasskeyPage {
        action: &action,
        csrf: &ctx.flow.csrf,
        client_name: ctx.audience(),
        options: &options,
        error,
        switches,
    };
    pages::render_scripted(StatusCode::OK, &page)
}

/// Where the page's script asks for a challenge.
pub fn options_url(ctx: &StepContext<'_>) -> String {
    format!("/login/{}/passkey", ctx.flow.id)
}

/// A challenge for this flow: any discoverable credential before a user is identified, else
/// that user's credentials. Answers the JSON `navigator.credentials.get` takes.
pub async fn challenge(ctx: &StepContext<'_>) -> Result<Response, PageError> {
    let Some(webauthn) = &ctx.state.webauthn else { return Err(PageError::not_found(UNAVAILABLE)) };
    let (options, ceremony) = match &ctx.flow.user_id {
        None => {
            let (rcr, state) = webauthn.start_discoverable_authentication().map_err(internal)?;
            (serde_json::to_value(rcr), Ceremony::Discoverable(state))
        }
        Some(user_id) => {
            let keys: Vec<Passkey> =
                ctx.state.store.passkeys(user_id).await?.iter().filter_map(|r| parse(&r.passkey)).collect();
            if keys.is_empty() {
                return Err(PageError::not_found("There is no passkey on this account."));
            }
            let (rcr, state) = webauthn.start_passkey_authentication(&keys).map_err(internal)?;
            (serde_json::to_value(rcr), Ceremony::Known(state))
        }
    };
    let options = options.map_err(anyhow::Error::from)?;
    let state = serde_json::to_string(&ceremony).map_err(anyhow::Error::from)?;
    ctx.state.ephemeral.put(&ceremony_key(&ctx.flow.id), &state, CHALLENGE_TTL).await?;
    let mut resp = Json(options).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn internal(e: WebauthnError) -> PageError {
    PageError::from(anyhow::anyhow!("webauthn: {e}"))
}

fn parse(json: &str) -> Option<Passkey> {
    serde_json::from_str(json).ok()
}

pub async fn submit(ctx: &StepContext<'_>, form: &Params) -> Result<Outcome, PageError> {
    let expected = ctx.flow.user_id.clone();
    let fail = |message, reason, user_id: Option<String>| Outcome::Failed { message, reason, user_id };
    let Some(webauthn) = &ctx.state.webauthn else {
        return Ok(fail(UNAVAILABLE, "passkeys unavailable", expected));
    };
    let credential: Option<PublicKeyCredential> = form.get("credential").and_then(|j| serde_json::from_str(j).ok());
    let Some(credential) = credential else {
        return Ok(fail(NO_ANSWER, "no or unreadable passkey assertion", expected));
    };
    // Single use: the challenge is taken before anything is checked.
    let ceremony = match ctx.state.ephemeral.take(&ceremony_key(&ctx.flow.id)).await? {
        Taken::Fresh(json) => serde_json::from_str::<Ceremony>(&json).ok(),
        Taken::Consumed(_) | Taken::Missing => None,
    };
    let Some(ceremony) = ceremony else {
        return Ok(fail(EXPIRED, "no or used passkey challenge", expected));
    };
    // Whose credential: a registered one, of an enabled account, and the account expected.
    let row = ctx.state.store.passkey_by_credential(&b64url(&credential.raw_id)).await?;
    let Some(row) = row else { return Ok(fail(NOT_RECOGNISED, "unknown passkey", expected)) };
    let user = ctx.state.store.user(&row.user_id).await?.filter(|u| !u.disabled);
    let Some(user) = user else { return Ok(fail(NOT_RECOGNISED, "passkey of a disabled account", expected)) };
    let theirs = Some(user.id.clone());
    let mismatch = match &ceremony {
        Ceremony::Known(_) => (expected.as_deref() != Some(user.id.as_str())).then_some("passkey of another user"),
        Ceremony::Discoverable(_) => {
            (!handle_matches(ctx, webauthn, &credential, &user.id).await?).then_some("passkey user handle mismatch")
        }
    };
    if let Some(reason) = mismatch {
        return Ok(fail(NOT_RECOGNISED, reason, expected.or(theirs)));
    }
    let key = failures_key(&user.username);
    if throttled(ctx, &key).await? {
        return Ok(fail(THROTTLED, "account throttled", theirs));
    }
    let Some(mut passkey) = parse(&row.passkey) else {
        return Err(PageError::from(anyhow::anyhow!("stored passkey {} does not parse", row.id)));
    };
    let result = match ceremony {
        Ceremony::Known(state) => webauthn.finish_passkey_authentication(&credential, &state),
        Ceremony::Discoverable(state) => webauthn.finish_discoverable_authentication_v2(&credential, state, &passkey),
    };
    let result = match result {
        Ok(r) if r.user_verified() => r,
        Ok(_) => return refused(ctx, &key, "passkey without user verification", theirs).await,
        Err(WebauthnError::CredentialPossibleCompromise) => return regression(ctx, &key, &row).await,
        Err(e) => return refused(ctx, &key, reason(&e), theirs).await,
    };
    // Keep the new counter (and backup state); a racing assertion that moved it first wins.
    passkey.update_credential(&result);
    let json = serde_json::to_string(&passkey).map_err(anyhow::Error::from)?;
    let counter = i64::from(result.counter());
    if !ctx.state.store.record_passkey_use(&row.id, row.sign_count, counter, &json, ctx.now).await? {
        return regression(ctx, &key, &row).await;
    }
    ctx.state.ephemeral.delete(&key).await?;
    Ok(Outcome::Passed { user_id: user.id, amr: amr(row.backup_eligible() || result.backup_eligible()) })
}

/// RFC 8176 values for a verified passkey: `swk` when it may be synced to other devices (the
/// backup-eligible flag), `hwk` when bound to one authenticator; `user` for the verification.
fn amr(synced: bool) -> Vec<String> {
    vec![if synced { "swk" } else { "hwk" }.into(), "user".into()]
}

/// The user handle the authenticator returned is the one of the credential's account.
async fn handle_matches(
    ctx: &StepContext<'_>,
    webauthn: &webauthn_rs::Webauthn,
    credential: &PublicKeyCredential,
    user_id: &str,
) -> Result<bool, PageError> {
    let Ok((handle, _)) = webauthn.identify_discoverable_authentication(credential) else { return Ok(false) };
    let owner = ctx.state.store.user_by_webauthn_handle(&handle.to_string()).await?;
    Ok(owner.as_deref() == Some(user_id))
}

async fn refused(
    ctx: &StepContext<'_>,
    key: &str,
    reason: &'static str,
    user_id: Option<String>,
) -> Result<Outcome, PageError> {
    count_failure(ctx, key).await?;
    Ok(Outcome::Failed { message: NOT_VERIFIED, reason, user_id })
}

/// A counter at or below the stored one may mean a cloned authenticator (WebAuthn §6.1.1).
async fn regression(ctx: &StepContext<'_>, key: &str, row: &PasskeyRow) -> Result<Outcome, PageError> {
    let event = AuditEvent::new("login.passkey_counter_regression")
        .user(&row.user_id)
        .ip(ctx.ip.clone())
        .detail("passkey", row.id.clone())
        .detail("stored_counter", row.sign_count);
    ctx.state.store.audit(event, ctx.now).await;
    count_failure(ctx, key).await?;
    Ok(Outcome::Failed {
        message: "This passkey could not be accepted. Use another way to sign in.",
        reason: "passkey counter regression",
        user_id: Some(row.user_id.clone()),
    })
}

/// The audit reason of a refused assertion.
fn reason(e: &WebauthnError) -> &'static str {
    match e {
        WebauthnError::MismatchedChallenge => "passkey challenge mismatch",
        WebauthnError::InvalidRPOrigin => "passkey from another origin",
        WebauthnError::InvalidRPIDHash => "passkey for another relying party",
        WebauthnError::UserNotPresent => "passkey without user presence",
        WebauthnError::UserNotVerified => "passkey without user verification",
        WebauthnError::CredentialNotFound => "passkey not offered",
        _ => "passkey assertion refused",
    }
}

const UNAVAILABLE: &str = "Passkeys are not available on this server.";
const NO_ANSWER: &str = "Your passkey did not answer. Try again, or choose another way to sign in.";
const EXPIRED: &str = "That passkey request expired or was already used. Try again.";
const NOT_RECOGNISED: &str = "That passkey is not recognised here. Try another way to sign in.";
const NOT_VERIFIED: &str = "Your passkey could not be verified. Try again.";
