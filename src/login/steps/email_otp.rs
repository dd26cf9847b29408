//! The emailed-code step: a 6-digit code sent to the user's confirmed address, good for
//! `tokens.email_code_ttl` (10 minutes) and for one use, kept only as a salted hash, and dead
//! after 5 wrong tries. A new code can be asked for after 30 seconds, at most 5 per account
//! within the code lifetime.
//!
//! It is a second factor for users who turned it on (the address they confirmed then), and,
//! where the operator sets `login.email_first_factor`, a first factor: the person types an
//! address and the page that follows reads the same whether or not an account has it, so the
//! form tells nobody which addresses are registered.

use super::{THROTTLED, Verdict, account_key, judge_code, login_key};
use crate::crypto::{constant_time_eq, hash_secret, random_bytes, random_token};
use crate::domain::Credentials;
use crate::http::{PageError, Params};
use crate::login::step::{Account, Ctx, Enrolment, Outcome, Role, Step};
use crate::mail::Mail;
use crate::pages::{self, CodeText, View};
use crate::state::AppState;
use crate::store::AuditEvent;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Wrong tries a code survives.
pub const MAX_TRIES: u64 = 5;
/// Seconds before another code may be sent.
pub const RESEND_AFTER: i64 = 30;
/// Codes sent to one account within a code's lifetime.
pub const MAX_SENDS: u64 = 5;

/// How long a code works.
pub fn ttl(state: &AppState) -> Duration {
    Duration::from_secs(state.settings.tokens.email_code_ttl.max(1) as u64)
}

/// The mail carrying `code`, its lifetime in whole minutes (at least one).
pub fn mail(state: &AppState, to: &str, code: &str, audience: &str) -> Mail {
    let minutes = (state.settings.tokens.email_code_ttl.max(1) as u64).div_ceil(60);
    Mail::sign_in_code(to, code, audience, minutes)
}

pub const PAGE: CodeText = CodeText {
    title: "Emailed code",
    heading: "Check your email",
    intro: "enter the 6-digit code we emailed you. It works once, for a few minutes.",
    label: "Code from the email",
    numeric: true,
    resend: true,
};

/// The code waiting for this flow. `user_id` is None when the typed address has no account:
/// every code then fails, as a wrong one would.
#[derive(Serialize, Deserialize)]
struct Pending {
    user_id: Option<String>,
    /// The address, masked, as the page shows it.
    to: String,
    /// The per-account key sends and failures count under.
    account: String,
    salt: String,
    hash: String,
    sent_at: i64,
}

fn pending_key(flow_id: &str) -> String {
    format!("email-otp:{flow_id}")
}

/// Tries count per code (its salt), so a new code starts afresh.
fn tries_key(flow_id: &str, salt: &str) -> String {
    format!("email-otp-tries:{flow_id}:{salt}")
}

fn sends_key(account: &str) -> String {
    format!("email-otp-sends:{account}")
}

/// A code as stored: salted, hashed.
pub(super) fn digest(salt: &str, code: &str) -> String {
    hash_secret(&format!("{salt}:{code}"))
}

/// Whether `typed` (spaces ignored) is the code behind `salt` and `hash`.
pub(super) fn matches(typed: &str, salt: &str, hash: &str) -> bool {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    constant_time_eq(digest(salt, &typed).as_bytes(), hash.as_bytes())
}

/// A uniformly random 6-digit code.
pub(crate) fn new_code() -> String {
    // Rejection sampling: 4_294_000_000 is the largest multiple of 10^6 below 2^32.
    loop {
        let b = random_bytes(4);
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// `jane.doe@example.com` → `j•••@example.com`: enough to recognise, not to harvest.
pub fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "your address".into(),
    }
}

async fn pending(ctx: &Ctx<'_>) -> Result<Option<Pending>, PageError> {
    let raw = ctx.state.ephemeral.get(&pending_key(ctx.flow_id)).await?;
    Ok(raw.and_then(|json| serde_json::from_str(&json).ok()))
}

/// Why no code went out.
enum NotSent {
    TooSoon,
    TooMany,
    MailFailed,
}

impl NotSent {
    fn message(&self) -> &'static str {
        match self {
            Self::TooSoon => "A code was sent moments ago. Wait half a minute before asking for another.",
            Self::TooMany => "Too many codes were sent. Wait a few minutes and try again.",
            Self::MailFailed => "We could not send the email just now. Try again in a moment.",
        }
    }
}

/// Makes a new code for this flow and mails it to `to` (when there is an account), replacing
/// any earlier one. The limits apply whether or not the address has an account.
async fn send(
    ctx: &Ctx<'_>,
    user: Option<(&str, &str)>,
    account: String,
    masked: String,
    previous: Option<&Pending>,
) -> Result<Result<(), NotSent>, PageError> {
    if previous.is_some_and(|p| ctx.now - p.sent_at < RESEND_AFTER) {
        return Ok(Err(NotSent::TooSoon));
    }
    if ctx.state.ephemeral.incr(&sends_key(&account), ttl(ctx.state)).await? > MAX_SENDS {
        return Ok(Err(NotSent::TooMany));
    }
    let code = new_code();
    let salt = random_token();
    let pending = Pending {
        user_id: user.map(|(id, _)| id.to_owned()),
        to: masked,
        account,
        hash: digest(&salt, &code),
        salt,
        sent_at: ctx.now,
    };
    match user {
        // A first factor: whoever typed the address must not learn from the time the answer
        // takes whether a mail went out, so it goes out after the answer.
        Some((_, address)) if ctx.user_id.is_none() => {
            ctx.state.send_later(mail(ctx.state, address, &code, ctx.audience));
        }
        // A second factor: the user is known already, so the person can be told it failed.
        Some((user_id, address)) => {
            if let Err(e) = ctx.state.mail.send(mail(ctx.state, address, &code, ctx.audience)).await {
                tracing::warn!(user = user_id, error = %format!("{e:#}"), "could not send a sign-in code");
                return Ok(Err(NotSent::MailFailed));
            }
        }
        None => {}
    }
    let json = serde_json::to_string(&pending).map_err(anyhow::Error::from)?;
    ctx.state.ephemeral.put(&pending_key(ctx.flow_id), &json, ttl(ctx.state)).await?;
    let mut event = AuditEvent::new("login.email_code_sent").ip(ctx.ip.clone()).detail("to", pending.to.clone());
    event = match &pending.user_id {
        Some(u) => event.user(u),
        None => event.detail("account", false),
    };
    ctx.state.store.audit(event, ctx.now).await;
    Ok(Ok(()))
}

/// Sends a code to the identified user's confirmed address (second factor).
async fn send_to_user(ctx: &Ctx<'_>, previous: Option<&Pending>) -> Result<Result<(), NotSent>, PageError> {
    let Some(user_id) = ctx.user_id else { return Ok(Err(NotSent::MailFailed)) };
    let user = ctx.state.store.user(user_id).await?.filter(|u| !u.disabled);
    let address = ctx.state.store.email_otp_address(user_id).await?;
    let (Some(user), Some(address)) = (user, address) else { return Ok(Err(NotSent::MailFailed)) };
    send(ctx, Some((&user.id, &address)), account_key(&user.id), mask(&address), previous).await
}

fn code_page(ctx: &Ctx<'_>, error: Option<&str>, to: Option<&str>) -> View {
    let notice = to.map(|to| format!("We sent a code to {to}."));
    super::code_page(ctx, error, notice.as_deref(), &PAGE)
}

fn email_page(ctx: &Ctx<'_>, error: Option<&str>, email: &str) -> View {
    let action = ctx.action();
    View::ok(&pages::EmailPage {
        action: &action,
        csrf: ctx.csrf,
        client_name: ctx.audience,
        email,
        error,
        switches: ctx.switches.clone(),
    })
}

pub struct EmailOtp;

impl Step for EmailOtp {
    const NAME: &'static str = "email_otp";
    const ROLE: Role = Role::Either;
    const PROVES: &'static [&'static str] = &["otp"];
    const SWITCH_LABEL: &'static str = "Email me a code instead";
    const PREFERENCE: u8 = 2;

    fn enrolled(_state: &AppState, c: &Credentials) -> bool {
        c.email_otp
    }

    fn first_factor(state: &AppState) -> bool {
        state.settings.login.email_first_factor
    }

    /// The code page while a code waits; else (first factor) the address form; else, for an
    /// identified user arriving at the step, a code is sent first. After a failure (`error`) no
    /// code is sent unasked: the page offers "Send a new code".
    async fn render(ctx: &Ctx<'_>, error: Option<&str>, _form: Option<&Params>) -> Result<View, PageError> {
        if let Some(p) = pending(ctx).await? {
            return Ok(code_page(ctx, error, Some(&p.to)));
        }
        if ctx.user_id.is_none() {
            return Ok(email_page(ctx, error, ctx.login_hint.filter(|h| h.contains('@')).unwrap_or_default()));
        }
        if error.is_some() {
            return Ok(code_page(ctx, error, None));
        }
        Ok(match send_to_user(ctx, None).await? {
            Ok(()) => {
                let p = pending(ctx).await?;
                code_page(ctx, error, p.as_ref().map(|p| p.to.as_str()))
            }
            Err(why) => code_page(ctx, Some(why.message()), None),
        })
    }

    async fn submit(ctx: &Ctx<'_>, form: &Params) -> Result<Outcome, PageError> {
        let previous = pending(ctx).await?;
        if let Some(email) = form.get("email").map(str::trim).filter(|_| ctx.user_id.is_none()) {
            return start_first_factor(ctx, email, previous.as_ref()).await;
        }
        if form.get("resend").is_some() {
            let sent = match (ctx.user_id, &previous) {
                (Some(_), _) => send_to_user(ctx, previous.as_ref()).await?,
                (None, Some(p)) => {
                    let user = match &p.user_id {
                        Some(id) => ctx.state.store.user(id).await?.filter(|u| !u.disabled),
                        None => None,
                    };
                    let user = user.as_ref().map(|u| (u.id.as_str(), u.email.as_str()));
                    send(ctx, user, p.account.clone(), p.to.clone(), Some(p)).await?
                }
                (None, None) => return Ok(Outcome::Show(email_page(ctx, Some(EXPIRED), ""))),
            };
            let to = pending(ctx).await?.map(|p| p.to);
            return Ok(Outcome::Show(match sent {
                Ok(()) => code_page(ctx, None, to.as_deref()),
                Err(why) => code_page(ctx, Some(why.message()), to.as_deref()),
            }));
        }
        let Some(p) = previous else {
            return Ok(Outcome::failed(EXPIRED, "no emailed code waiting", None));
        };
        let failed = |message, reason| Outcome::failed(message, reason, p.user_id.clone());
        let right = matches(form.get("code").unwrap_or_default(), &p.salt, &p.hash);
        let (key, tries) = (pending_key(ctx.flow_id), tries_key(ctx.flow_id, &p.salt));
        Ok(match judge_code(ctx, &key, &tries, &p.account, p.user_id.as_deref(), right, ttl(ctx.state)).await? {
            Verdict::Right(user_id) => Outcome::passed(user_id, Self::PROVES.iter().map(|s| s.to_string()).collect()),
            Verdict::Throttled => failed(THROTTLED, "account throttled"),
            Verdict::Exhausted => failed(EXHAUSTED, "emailed code exhausted"),
            Verdict::Used => failed(EXPIRED, "emailed code already used"),
            Verdict::Wrong => {
                failed("That code is not right. Check the latest email and try again.", "wrong emailed code")
            }
        })
    }
}

/// First factor: the typed address gets a code if exactly one enabled account has it,
/// confirmed (`email_verified`, or emailed codes turned on). The answer is the same either way.
async fn start_first_factor(ctx: &Ctx<'_>, email: &str, previous: Option<&Pending>) -> Result<Outcome, PageError> {
    if !ctx.state.settings.login.email_first_factor {
        return Err(PageError::bad_request("invalid_request", "The form could not be read", "Unknown step."));
    }
    if !email.contains('@') || email.len() > 254 {
        return Ok(Outcome::Show(email_page(ctx, Some("Enter the email address of your account."), email)));
    }
    let user =
        ctx.state.store.user_by_login(email).await?.filter(|u| !u.disabled && u.email.eq_ignore_ascii_case(email));
    let user = match user {
        Some(u) if confirmed(ctx, &u).await? => Some(u),
        _ => None,
    };
    // Counted under the typed address whether or not it is an account's: a key (or a lockout
    // left by password guesses on the account) that depended on the account would tell.
    let account = login_key(email);
    if ctx.state.ephemeral.count(&account).await? >= ctx.state.settings.login.max_failures {
        return Ok(Outcome::Show(email_page(ctx, Some(THROTTLED), email)));
    }
    // A different address starts afresh; the same one is a resend, with its limits.
    let previous = previous.filter(|p| p.account == account);
    let target = user.as_ref().map(|u| (u.id.as_str(), u.email.as_str()));
    Ok(Outcome::Show(match send(ctx, target, account, mask(email), previous).await? {
        Ok(()) => code_page(ctx, None, Some(&mask(email))),
        Err(why) => email_page(ctx, Some(why.message()), email),
    }))
}

async fn confirmed(ctx: &Ctx<'_>, user: &crate::domain::User) -> Result<bool, PageError> {
    let verified = user.claims.get("email_verified") == Some(&serde_json::Value::Bool(true));
    Ok(verified
        || ctx.state.store.email_otp_address(&user.id).await?.is_some_and(|a| a.eq_ignore_ascii_case(&user.email)))
}

// Enrolment, for the account security page: a first code sent to the account's address
// proves it reaches this person; codes go to it from then on.

/// An emailed code waiting to confirm the address codes will go to.
#[derive(Serialize, Deserialize)]
struct Enrolling {
    email: String,
    salt: String,
    hash: String,
}

fn enrol_key(session_id: &str) -> String {
    format!("email-enrol:{session_id}")
}

/// Emails a code to the account's address, within the same limits as sign-in codes.
pub async fn begin(account: &Account<'_>) -> Result<Enrolment, PageError> {
    let state = account.state;
    let user = state.store.user(account.user_id).await?.ok_or_else(PageError::expired)?;
    if state.ephemeral.incr(&sends_key(&account_key(&user.id)), ttl(state)).await? > MAX_SENDS {
        return Ok(Enrolment::Notice("Too many codes were sent. Wait a few minutes and try again."));
    }
    let code = new_code();
    let salt = random_token();
    let pending = Enrolling { email: user.email.clone(), hash: digest(&salt, &code), salt };
    if let Err(e) = state.mail.send(mail(state, &user.email, &code, "your account")).await {
        tracing::warn!(user = %user.id, error = %format!("{e:#}"), "could not send an enrolment code");
        return Ok(Enrolment::Notice("We could not send the email just now. Try again in a moment."));
    }
    let key = enrol_key(account.session_id);
    state.ephemeral.put(&key, &serde_json::to_string(&pending).map_err(anyhow::Error::from)?, ttl(state)).await?;
    state.ephemeral.delete(&format!("{key}:tries")).await?;
    Ok(enrol_page(account, &user.email, None))
}

/// The code proves the address: emailed codes are on, to it.
pub async fn confirm(account: &Account<'_>, code: &str) -> Result<Enrolment, PageError> {
    let (state, now) = (account.state, account.now);
    let key = enrol_key(account.session_id);
    let Some(pending) = state.ephemeral.get(&key).await?.and_then(|j| serde_json::from_str::<Enrolling>(&j).ok())
    else {
        return Ok(Enrolment::Notice("That code expired. Start again."));
    };
    let tries = state.ephemeral.incr(&format!("{key}:tries"), ttl(state)).await?;
    if tries > MAX_TRIES || !matches(code, &pending.salt, &pending.hash) {
        state.store.audit(account.event("mfa.email_otp_enrol_failed"), now).await;
        if tries >= MAX_TRIES {
            state.ephemeral.delete(&key).await?;
            return Ok(Enrolment::Notice("Too many wrong codes. Start again."));
        }
        let error = "That code is not right. Enter the code from the email we just sent.";
        return Ok(enrol_page(account, &pending.email, Some(error)));
    }
    state.ephemeral.delete(&key).await?;
    state.store.enable_email_otp(account.user_id, &pending.email, now).await?;
    state.store.audit(account.event("mfa.email_otp_enabled"), now).await;
    Ok(Enrolment::Enabled("Emailed codes are on."))
}

/// Emailed codes off; the fallbacks go too when `drop_fallbacks`.
pub async fn remove(account: &Account<'_>, drop_fallbacks: bool) -> Result<(), PageError> {
    if account.state.store.disable_email_otp(account.user_id, drop_fallbacks).await? {
        account.state.store.audit(account.event("mfa.email_otp_disabled"), account.now).await;
    }
    Ok(())
}

fn enrol_page(account: &Account<'_>, email: &str, error: Option<&str>) -> Enrolment {
    let to = mask(email);
    Enrolment::Show(View::ok(&pages::EmailEnrolPage { csrf: account.csrf, to: &to, error }))
}

const EXPIRED: &str = "That code has expired. Ask for a new one.";
const EXHAUSTED: &str = "Too many wrong codes: that one no longer works. Ask for a new one.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..1000 {
            let c = new_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn addresses_are_masked() {
        assert_eq!(mask("jane.doe@example.com"), "j•••@example.com");
        assert_eq!(mask("nobody"), "your address");
    }
}
