//! The passkey step (WebAuthn Level 3 §7.2, verifying an authentication assertion), through
//! webauthn-rs, which requires user verification for passkeys. Two uses:
//!
//! - first factor, passwordless: the password page offers the passkey (with the browser's
//!   conditional UI). No credential list is sent; the authenticator names the credential and
//!   the user handle, and both must point at the same enabled account. With user verification
//!   the result is two kinds of factor (`hwk`/`swk` and `user`), so no further factor is asked.
//! - second factor (or step-up): the signed-in user's own credentials are offered.
//!
//! A challenge is issued per flow by its action (`POST /login/{flow}/passkey`) and kept in the ephemeral
//! store until the assertion comes back; taking it is atomic, so an assertion is accepted once.
//! Registration, for the account security page, is [`enrol`].
//!
//! A signature counter that does not move forward (§6.1.1) is refused, audited as
//! `login.passkey_counter_regression` and counted toward the account's throttle.

pub mod enrol;

use super::{THROTTLED, account_key, attempt, succeeded};
use crate::crypto::b64url;
use crate::domain::Credentials;
use crate::ephemeral::Taken;
use crate::http::{PageError, Params};
use crate::login::step::{Ctx, Outcome, Role, Step};
use crate::pages::{self, View};
use crate::state::AppState;
use crate::store::{AuditEvent, PasskeyRow};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey as Credential, PasskeyAuthentication, PublicKeyCredential, WebauthnError,
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

pub struct Passkey;

impl Step for Passkey {
    const NAME: &'static str = "passkey";
    const ROLE: Role = Role::Either;
    // A passkey's own values (`hwk` or `swk`, and `user`) come with its outcome; this is the
    // kind of factor it always adds.
    const PROVES: &'static [&'static str] = &["hwk"];
    const SWITCH_LABEL: &'static str = "Use a passkey instead";
    /// Offered first among second factors: it cannot be phished.
    const PREFERENCE: u8 = 0;
    const BESIDE_FIRST: bool = true;

    fn enrolled(state: &AppState, c: &Credentials) -> bool {
        c.passkeys > 0 && state.webauthn.is_some()
    }

    fn first_factor(state: &AppState) -> bool {
        state.webauthn.is_some()
    }

    /// As a second factor its own page; as a first factor it is the password page.
    async fn render(ctx: &Ctx<'_>, error: Option<&str>, form: Option<&Params>) -> Result<View, PageError> {
        if ctx.user_id.is_none() {
            return Ok(super::password::page(ctx, error, form));
        }
        let action = ctx.action();
        let options = options_url(ctx);
        let page = pages::PasskeyPage {
            action: &action,
            csrf: ctx.csrf,
            client_name: ctx.audience,
            options: &options,
            error,
            switches: ctx.switches.clone(),
        };
        Ok(View::scripted(StatusCode::OK, &page))
    }

    async fn submit(ctx: &Ctx<'_>, form: &Params) -> Result<Outcome, PageError> {
        submit(ctx, form).await
    }

    /// The challenge for the page's script.
    async fn action(ctx: &Ctx<'_>, arg: Option<&str>, _form: &Params) -> Result<Outcome, PageError> {
        match arg {
            None => challenge(ctx).await,
            Some(_) => Err(PageError::not_found("There is nothing at this address.")),
        }
    }
}

/// Where the page's script asks for a challenge.
pub fn options_url(ctx: &Ctx<'_>) -> String {
    ctx.action_url(<Passkey as Step>::ROUTE, None)
}

/// A challenge for this flow: any discoverable credential before a user is identified, else
/// that user's credentials. Answers the JSON `navigator.credentials.get` takes.
async fn challenge(ctx: &Ctx<'_>) -> Result<Outcome, PageError> {
    let Some(webauthn) = &ctx.state.webauthn else { return Err(PageError::not_found(UNAVAILABLE)) };
    let (options, ceremony) = match ctx.user_id {
        None => {
            let (rcr, state) = webauthn.start_discoverable_authentication().map_err(internal)?;
            (serde_json::to_value(rcr), Ceremony::Discoverable(state))
        }
        Some(user_id) => {
            let keys: Vec<Credential> =
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
    ctx.state.ephemeral.put(&ceremony_key(ctx.flow_id), &state, CHALLENGE_TTL).await?;
    Ok(Outcome::Data(options))
}

fn internal(e: WebauthnError) -> PageError {
    PageError::from(anyhow::anyhow!("webauthn: {e}"))
}

fn parse(json: &str) -> Option<Credential> {
    serde_json::from_str(json).ok()
}

async fn submit(ctx: &Ctx<'_>, form: &Params) -> Result<Outcome, PageError> {
    let expected = ctx.user_id.map(str::to_owned);
    let fail = Outcome::failed;
    let Some(webauthn) = &ctx.state.webauthn else {
        return Ok(fail(UNAVAILABLE, "passkeys unavailable", expected));
    };
    let credential: Option<PublicKeyCredential> = form.get("credential").and_then(|j| serde_json::from_str(j).ok());
    let Some(credential) = credential else {
        return Ok(fail(NO_ANSWER, "no or unreadable passkey assertion", expected));
    };
    // Single use: the challenge is taken before anything is checked.
    let ceremony = match ctx.state.ephemeral.take(&ceremony_key(ctx.flow_id)).await? {
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
    let key = account_key(&user.id);
    if !attempt(ctx, &key).await? {
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
        Ok(_) => return Ok(Outcome::failed(NOT_VERIFIED, "passkey without user verification", theirs)),
        Err(WebauthnError::CredentialPossibleCompromise) => return regression(ctx, &row).await,
        Err(e) => return Ok(Outcome::failed(NOT_VERIFIED, reason(&e), theirs)),
    };
    // Keep the new counter (and backup state); a racing assertion that moved it first wins.
    passkey.update_credential(&result);
    let json = serde_json::to_string(&passkey).map_err(anyhow::Error::from)?;
    let counter = i64::from(result.counter());
    if !ctx.state.store.record_passkey_use(&row.id, row.sign_count, counter, &json, ctx.now).await? {
        return regression(ctx, &row).await;
    }
    succeeded(ctx, &key).await?;
    Ok(Outcome::passed(user.id, amr(row.backup_eligible() || result.backup_eligible())))
}

/// RFC 8176 values for a verified passkey: `swk` when it may be synced to other devices (the
/// backup-eligible flag), `hwk` when bound to one authenticator; `user` for the verification.
fn amr(synced: bool) -> Vec<String> {
    vec![if synced { "swk" } else { "hwk" }.into(), "user".into()]
}

/// The user handle the authenticator returned is the one of the credential's account.
async fn handle_matches(
    ctx: &Ctx<'_>,
    webauthn: &webauthn_rs::Webauthn,
    credential: &PublicKeyCredential,
    user_id: &str,
) -> Result<bool, PageError> {
    let Ok((handle, _)) = webauthn.identify_discoverable_authentication(credential) else { return Ok(false) };
    let owner = ctx.state.store.user_by_webauthn_handle(&handle.to_string()).await?;
    Ok(owner.as_deref() == Some(user_id))
}

/// A counter at or below the stored one may mean a cloned authenticator (WebAuthn §6.1.1).
async fn regression(ctx: &Ctx<'_>, row: &PasskeyRow) -> Result<Outcome, PageError> {
    let event = AuditEvent::new("login.passkey_counter_regression")
        .user(&row.user_id)
        .ip(ctx.ip.clone())
        .detail("passkey", row.id.clone())
        .detail("stored_counter", row.sign_count);
    ctx.state.store.audit(event, ctx.now).await;
    Ok(Outcome::failed(
        "This passkey could not be accepted. Use another way to sign in.",
        "passkey counter regression",
        Some(row.user_id.clone()),
    ))
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
