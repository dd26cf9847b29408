//! Sign-up and email verification, as the sign-up step's pages and the JSON API share them:
//! create a pending account, send it a link and a code, confirm it once.
//!
//! ```text
//!  form/JSON ──valid──► email free? ──yes──► pending account ──► mail: link + 6-digit code
//!                            │ no: the same answer, no account;             │ link (GET page, POST)
//!                            │ the owner told off the request path          │ or code on the page
//!                            ▼                                              ▼
//!                      "check your email"  ◄──────────────────────  active, email_verified
//! ```
//!
//! No enumeration: a sign-up with an address that has an account answers exactly as one
//! without, hashes the password all the same (the costly part) and sends its mail off the
//! request path, so the answer and its time are the same. A verification is kept under the
//! hash of its link token and, for the code, under its *flow* (the login flow of the page, or
//! the flow id the JSON API answers), for `registration.verify_ttl`; each works once.

use crate::crypto::{constant_time_eq, hash_secret, random_token};
use crate::domain::User;
use crate::domain::registration::Valid;
use crate::domain::user::Status;
use crate::ephemeral::Taken;
use crate::login::steps::email_otp::{mask, new_code};
use crate::mail::Mail;
use crate::pages::Template;
use crate::state::AppState;
use crate::store::AuditEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// Seconds between two mails for one flow ("send again").
pub const RESEND_AFTER: i64 = 60;
/// Mails to one address per hour, whoever asks.
const PER_ADDRESS_PER_HOUR: u64 = 5;
/// Wrong codes one flow may try.
const MAX_CODE_TRIES: u64 = 5;

/// What a flow sent: the masked address for its page; the user is none when the address had
/// an account already (the code then matches nothing).
#[derive(Clone, Serialize, Deserialize)]
pub struct Sent {
    pub user_id: Option<String>,
    pub email: String,
    pub to: String,
    code_hash: String,
    link_hash: String,
    pub sent_at: i64,
    /// The address replaces the account's current one when confirmed (a profile change).
    #[serde(default)]
    pub change: bool,
}

/// A link, under the hash of its token.
#[derive(Serialize, Deserialize)]
struct Link {
    user_id: String,
    email: String,
    flow_id: String,
    #[serde(default)]
    change: bool,
}

/// Why a sign-up or a verification was not done.
#[derive(Debug)]
pub enum Refused {
    /// The username chosen is another account's.
    UsernameTaken,
    /// Too many attempts: wait this many seconds.
    Throttled(u64),
    /// The code is wrong (or the flow has no verification).
    WrongCode,
    /// The link or code expired, was used, or its account is gone.
    Expired,
}

impl Refused {
    pub fn message(&self) -> &'static str {
        match self {
            Refused::UsernameTaken => "This username is taken. Choose another.",
            Refused::Throttled(_) => "Too many attempts. Wait a while and try again.",
            Refused::WrongCode => "That code is not right. Check the latest email we sent and try again.",
            Refused::Expired => {
                "This confirmation has expired or was used. Sign up again, or sign in to get a new one."
            }
        }
    }
}

pub type Result<T> = std::result::Result<std::result::Result<T, Refused>, crate::http::PageError>;

fn ttl(state: &AppState) -> Duration {
    Duration::from_secs(state.settings.registration.verify_ttl.max(1) as u64)
}

fn sent_key(flow_id: &str) -> String {
    format!("signup-sent:{flow_id}")
}

fn link_key(hash: &str) -> String {
    format!("signup-link:{hash}")
}

fn approved_key(flow_id: &str) -> String {
    format!("signup-approved:{flow_id}")
}

fn code_hash(flow_id: &str, code: &str) -> String {
    hash_secret(&format!("signup-code:{flow_id}:{code}"))
}

/// Counts one more use of a per-IP or per-address budget of an hour: false when it is spent.
async fn within(state: &AppState, key: String, limit: u64) -> std::result::Result<bool, crate::http::PageError> {
    Ok(state.ephemeral.incr(&key, Duration::from_secs(3600)).await? <= limit)
}

/// Creates a pending account from a valid form and sends its verification; with an address
/// that has an account, does everything but that (see the module doc). `flow_id` keys the code.
pub async fn register(
    state: &AppState,
    valid: Valid,
    password: String,
    flow_id: &str,
    audience: &str,
    ip: Option<String>,
) -> Result<Sent> {
    let now = state.now();
    let ip_key = format!("signup-ip:{}", ip.as_deref().unwrap_or("-"));
    if !within(state, ip_key, state.settings.registration.per_ip_per_hour).await? {
        return Ok(Err(Refused::Throttled(3600)));
    }
    let email_key = crate::domain::user::login_key(&valid.email).unwrap_or_default();
    if !within(state, format!("signup-address:{email_key}"), PER_ADDRESS_PER_HOUR).await? {
        return Ok(Err(Refused::Throttled(3600)));
    }
    let username = match &valid.username {
        Some(u) => u.clone(),
        None => username_from(state, &valid.email).await?,
    };
    let (username_taken, email_taken) = state.store.login_taken(&username, &valid.email).await?;
    if username_taken && valid.username.is_some() {
        return Ok(Err(Refused::UsernameTaken));
    }
    // Hashed whichever way it goes: the costly part takes the same time for a taken address.
    let hash = state.passwords.hash(password).await?;
    let mut claims = valid.claims;
    claims.insert("email_verified".into(), Value::Bool(false));
    if claims.contains_key("phone_number") {
        claims.insert("phone_number_verified".into(), Value::Bool(false));
    }
    let user = User {
        id: crate::crypto::random_id(),
        username,
        email: valid.email.clone(),
        password_hash: Some(hash),
        claims,
        disabled: false,
        status: Status::Pending,
        created_at: now,
        updated_at: now,
    };
    let created = !email_taken && state.store.create_user(&user).await?;
    let event = AuditEvent::new("account.signup").ip(ip).detail("to", mask(&valid.email));
    if created {
        state.store.audit(event.user(&user.id), now).await;
        Ok(Ok(send(state, Some(&user.id), &valid.email, flow_id, audience, false).await?))
    } else {
        // The owner hears of it; the person signing up reads the same page as anyone.
        if let Some(owner) = state.store.user_by_login(&valid.email).await?.filter(|u| !u.disabled) {
            state.store.audit(event.user(&owner.id).detail("existing", true), now).await;
            state.send_later(existing_mail(state, &owner.email));
        }
        Ok(Ok(send(state, None, &valid.email, flow_id, audience, false).await?))
    }
}

/// A username for an account whose form did not ask for one: the email's local part, made
/// unique.
async fn username_from(state: &AppState, email: &str) -> std::result::Result<String, crate::http::PageError> {
    let local = email.split('@').next().unwrap_or_default();
    let base: String = local.chars().filter(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_')).take(48).collect();
    let base = if base.chars().count() < 3 { format!("user-{base}") } else { base };
    if state.store.login_taken(&base, "").await?.0 {
        return Ok(format!("{base}-{}", &random_token()[..6].to_lowercase()));
    }
    Ok(base)
}

/// Issues a link and a code for `user_id` (none: an address that is not to be verified, for
/// which a flow still records a send) and mails them off the request path.
async fn send(
    state: &AppState,
    user_id: Option<&str>,
    email: &str,
    flow_id: &str,
    audience: &str,
    change: bool,
) -> std::result::Result<Sent, crate::http::PageError> {
    // A new send replaces the flow's earlier link.
    if let Some(previous) = sent(state, flow_id).await? {
        state.ephemeral.delete(&link_key(&previous.link_hash)).await?;
    }
    let (token, code) = (random_token(), new_code());
    let sent = Sent {
        user_id: user_id.map(str::to_owned),
        email: email.to_owned(),
        to: mask(email),
        code_hash: code_hash(flow_id, &code),
        link_hash: hash_secret(&token),
        sent_at: state.now(),
        change,
    };
    let json = serde_json::to_string(&sent).map_err(anyhow::Error::from)?;
    state.ephemeral.put(&sent_key(flow_id), &json, ttl(state)).await?;
    if let Some(user_id) = user_id {
        let link = Link { user_id: user_id.to_owned(), email: email.to_owned(), flow_id: flow_id.to_owned(), change };
        let json = serde_json::to_string(&link).map_err(anyhow::Error::from)?;
        state.ephemeral.put(&link_key(&sent.link_hash), &json, ttl(state)).await?;
        let url = state.url(&format!("/login/signup/{token}/callback"));
        state.send_later(verify_mail(state, email, &url, &code, audience, change));
    }
    Ok(sent)
}

/// What `flow_id` last sent.
pub async fn sent(state: &AppState, flow_id: &str) -> std::result::Result<Option<Sent>, crate::http::PageError> {
    let raw = state.ephemeral.get(&sent_key(flow_id)).await?;
    Ok(raw.and_then(|json| serde_json::from_str(&json).ok()))
}

/// "Send again": a new link and code to the flow's address, once a minute and within the
/// address's hourly budget. The answer is the same for an address that had an account.
pub async fn resend(state: &AppState, flow_id: &str, audience: &str) -> Result<Sent> {
    let Some(previous) = sent(state, flow_id).await? else { return Ok(Err(Refused::Expired)) };
    let wait = previous.sent_at + RESEND_AFTER - state.now();
    if wait > 0 {
        return Ok(Err(Refused::Throttled(wait as u64)));
    }
    let email_key = crate::domain::user::login_key(&previous.email).unwrap_or_default();
    if !within(state, format!("signup-address:{email_key}"), PER_ADDRESS_PER_HOUR).await? {
        return Ok(Err(Refused::Throttled(3600)));
    }
    let sent = send(state, previous.user_id.as_deref(), &previous.email, flow_id, audience, previous.change).await?;
    Ok(Ok(sent))
}

/// A pending account signed in with its password: its page asks for the email first, with a
/// fresh link and code (unless one went out moments ago).
pub async fn pending_sign_in(state: &AppState, user: &User, flow_id: &str, audience: &str) -> Result<Sent> {
    if let Some(previous) = sent(state, flow_id).await?
        && previous.user_id.as_deref() == Some(user.id.as_str())
    {
        return Ok(Ok(previous));
    }
    let email_key = crate::domain::user::login_key(&user.email).unwrap_or_default();
    if !within(state, format!("signup-address:{email_key}"), PER_ADDRESS_PER_HOUR).await? {
        return Ok(Err(Refused::Throttled(3600)));
    }
    Ok(Ok(send(state, Some(&user.id), &user.email, flow_id, audience, false).await?))
}

/// A profile's new address: a link and code go to it; the account keeps its old address until
/// one of them is used. An address another account has reads the same (its owner is told).
pub async fn change_email(state: &AppState, user: &User, email: &str, flow_id: &str) -> Result<Sent> {
    let email_key = crate::domain::user::login_key(email).unwrap_or_default();
    if !within(state, format!("signup-address:{email_key}"), PER_ADDRESS_PER_HOUR).await? {
        return Ok(Err(Refused::Throttled(3600)));
    }
    if let Some(owner) = state.store.user_by_login(email).await?.filter(|u| u.id != user.id) {
        state.send_later(existing_mail(state, &owner.email));
        return Ok(Ok(send(state, None, email, flow_id, "your account", true).await?));
    }
    Ok(Ok(send(state, Some(&user.id), email, flow_id, "your account", true).await?))
}

/// The code typed on the flow's page: the account it confirms.
pub async fn confirm_code(state: &AppState, flow_id: &str, code: &str, ip: Option<String>) -> Result<String> {
    let Some(s) = sent(state, flow_id).await? else { return Ok(Err(Refused::Expired)) };
    if !within(state, format!("signup-code-tries:{flow_id}"), MAX_CODE_TRIES).await? {
        return Ok(Err(Refused::Throttled(3600)));
    }
    let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let right = constant_time_eq(code_hash(flow_id, &typed).as_bytes(), s.code_hash.as_bytes());
    let Some(user_id) = s.user_id.clone().filter(|_| right) else { return Ok(Err(Refused::WrongCode)) };
    // The link of the same mail goes with it: one confirmation per mail.
    match state.ephemeral.take(&link_key(&s.link_hash)).await? {
        Taken::Fresh(_) => {}
        Taken::Consumed(_) | Taken::Missing => return Ok(Err(Refused::Expired)),
    }
    state.ephemeral.delete(&sent_key(flow_id)).await?;
    confirm(state, &user_id, &s.email, s.change, ip).await
}

/// The link, used (its POST): the account it confirms and the flow that sent it.
pub async fn confirm_token(state: &AppState, token: &str, ip: Option<String>) -> Result<(String, String)> {
    let link = match state.ephemeral.take(&link_key(&hash_secret(token))).await? {
        Taken::Fresh(json) => serde_json::from_str::<Link>(&json).ok(),
        Taken::Consumed(_) | Taken::Missing => None,
    };
    let Some(link) = link else { return Ok(Err(Refused::Expired)) };
    state.ephemeral.delete(&sent_key(&link.flow_id)).await?;
    Ok(confirm(state, &link.user_id, &link.email, link.change, ip).await?.map(|u| (u, link.flow_id)))
}

/// Whether a link token is (still) good, for the page its GET shows.
pub async fn link_exists(state: &AppState, token: &str) -> std::result::Result<bool, crate::http::PageError> {
    Ok(state.ephemeral.get(&link_key(&hash_secret(token))).await?.is_some())
}

/// Marks the address confirmed: a pending account becomes active; a changed address replaces
/// the old one, which is told.
async fn confirm(state: &AppState, user_id: &str, email: &str, change: bool, ip: Option<String>) -> Result<String> {
    let now = state.now();
    let Some(user) = state.store.user(user_id).await?.filter(|u| !u.disabled) else { return Ok(Err(Refused::Expired)) };
    if change {
        let mut claims = user.claims.clone();
        claims.insert("email_verified".into(), Value::Bool(true));
        if !state.store.update_profile(user_id, email, &claims, now).await? {
            return Ok(Err(Refused::Expired));
        }
        state.send_later(changed_mail(state, &user.email, email));
        let event = AuditEvent::new("account.email_changed").user(user_id).ip(ip).detail("to", mask(email));
        state.store.audit(event, now).await;
    } else {
        if !state.store.confirm_email(user_id, email, now).await? {
            return Ok(Err(Refused::Expired));
        }
        state.store.audit(AuditEvent::new("account.email_verified").user(user_id).ip(ip), now).await;
    }
    Ok(Ok(user_id.to_owned()))
}

/// Marks `flow_id` approved for `user_id`, for the page waiting on it.
pub async fn approve(
    state: &AppState,
    flow_id: &str,
    user_id: &str,
) -> std::result::Result<(), crate::http::PageError> {
    state.ephemeral.put(&approved_key(flow_id), user_id, ttl(state)).await?;
    Ok(())
}

/// The approval of `flow_id`, taken once.
pub async fn approved(state: &AppState, flow_id: &str) -> std::result::Result<Option<String>, crate::http::PageError> {
    Ok(match state.ephemeral.take(&approved_key(flow_id)).await? {
        Taken::Fresh(user_id) => Some(user_id),
        _ => None,
    })
}

fn hours(state: &AppState) -> u64 {
    (state.settings.registration.verify_ttl.max(1) as u64).div_ceil(3600)
}

#[derive(serde::Serialize)]
struct VerifyText<'a> {
    product: &'a str,
    audience: &'a str,
    url: &'a str,
    code: &'a str,
    hours: u64,
    change: bool,
}

crate::pages::template!(VerifyText<'a>, "mail/verify_email.txt");

#[derive(serde::Serialize)]
struct VerifyHtml<'a> {
    product: &'a str,
    audience: &'a str,
    url: &'a str,
    code: &'a str,
    hours: u64,
    change: bool,
}

crate::pages::template!(VerifyHtml<'a>, "mail/verify_email.html");

#[derive(serde::Serialize)]
struct ExistingText<'a> {
    product: &'a str,
}

crate::pages::template!(ExistingText<'a>, "mail/signup_existing.txt");

#[derive(serde::Serialize)]
struct ExistingHtml<'a> {
    product: &'a str,
}

crate::pages::template!(ExistingHtml<'a>, "mail/signup_existing.html");

#[derive(serde::Serialize)]
struct ChangedText<'a> {
    product: &'a str,
    to: &'a str,
}

crate::pages::template!(ChangedText<'a>, "mail/email_changed.txt");

#[derive(serde::Serialize)]
struct ChangedHtml<'a> {
    product: &'a str,
    to: &'a str,
}

crate::pages::template!(ChangedHtml<'a>, "mail/email_changed.html");

fn verify_mail(state: &AppState, to: &str, url: &str, code: &str, audience: &str, change: bool) -> Mail {
    let product = &state.settings.mail.product_name;
    let hours = hours(state);
    let text = VerifyText { product, audience, url, code, hours, change }.render().unwrap_or_default();
    let html = VerifyHtml { product, audience, url, code, hours, change }.render().unwrap_or_default();
    Mail {
        to: to.to_owned(),
        subject: crate::pages::tr_with("Confirm your email for %{product}", &[("product", product)]),
        text,
        html,
    }
}

fn existing_mail(state: &AppState, to: &str) -> Mail {
    let product = &state.settings.mail.product_name;
    let text = ExistingText { product }.render().unwrap_or_default();
    let html = ExistingHtml { product }.render().unwrap_or_default();
    Mail {
        to: to.to_owned(),
        subject: crate::pages::tr_with(
            "Someone tried to sign up to %{product} with your address",
            &[("product", product)],
        ),
        text,
        html,
    }
}

fn changed_mail(state: &AppState, old: &str, new: &str) -> Mail {
    let product = &state.settings.mail.product_name;
    let to = mask(new);
    let text = ChangedText { product, to: &to }.render().unwrap_or_default();
    let html = ChangedHtml { product, to: &to }.render().unwrap_or_default();
    Mail {
        to: old.to_owned(),
        subject: crate::pages::tr_with("The email of your %{product} account changed", &[("product", product)]),
        text,
        html,
    }
}
