//! The sign-in link step: "Email me a sign-in link", where the operator lets people sign in by
//! email (`login.email_first_factor`). The person types an address; if exactly one enabled
//! account has it, confirmed (`email_verified`, or emailed codes turned on), a link goes there.
//! The page that follows reads the same either way, so the form tells nobody which addresses
//! are registered.
//!
//! ```text
//!  address ──► mail: {issuer}/login/link/{token}/callback ──GET──► page with a button (a scanner
//!      │                                                             fetching the link uses nothing)
//!      ▼                                                              │ POST: token taken once
//!  "check your email" (refreshes) ◄── approved, on another device ────┤
//!      │                                                              │ same browser: signed in here
//!      └──► signed in (this browser) ◄────────────────────────────────┘
//! ```
//!
//! A link is 256 bits of randomness, kept only as its SHA-256, bound to the flow that asked
//! for it, good for `tokens.email_code_ttl` (10 minutes) and for one use. Opened on another
//! device it signs in nobody there: it approves the waiting flow, whose page (refreshing by
//! itself, no script needed) goes on. The `amr` is `otp` (RFC 8176): a one-time secret sent
//! out of band, like the emailed code, proving the mailbox.

use super::email_otp::{mask, ttl};
use super::{THROTTLED, account_key, login_key};
use crate::crypto::{hash_secret, random_token};
use crate::ephemeral::Taken;
use crate::http::{PageError, Params};
use crate::login::step::{Callback, Ctx, Outcome, Role, Step};
use crate::mail::Mail;
use crate::pages::Template;
use crate::pages::{Switch, View};
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Links sent to one account within a link's lifetime.
const MAX_SENDS: u64 = 5;
/// Seconds between two links for one flow.
const RESEND_AFTER: i64 = 30;
/// How often the waiting page looks again, in seconds.
const REFRESH: u32 = 3;

pub struct MagicLink;

impl Step for MagicLink {
    const NAME: &'static str = "magic_link";
    const ROUTE: &'static str = "link";
    const ROLE: Role = Role::First;
    const PROVES: &'static [&'static str] = &["otp"];
    const SWITCH_LABEL: &'static str = "Email me a sign-in link";

    fn first_factor(state: &AppState) -> bool {
        state.settings.login.email_first_factor
    }

    async fn render(ctx: &Ctx<'_>, error: Option<&str>, _form: Option<&Params>) -> Result<View, PageError> {
        Ok(match sent(ctx).await? {
            Some(s) => waiting_page(ctx, error, &s.to),
            None => address_page(ctx, error, ctx.login_hint.filter(|h| h.contains('@')).unwrap_or_default()),
        })
    }

    /// The address (or "send a new link"): a link goes out when the address is an account's.
    async fn submit(ctx: &Ctx<'_>, form: &Params) -> Result<Outcome, PageError> {
        let previous = sent(ctx).await?;
        let email = match (form.get("email").map(str::trim), &previous) {
            (Some(email), _) => email.to_owned(),
            (None, Some(p)) if form.get("resend").is_some() => p.email.clone(),
            _ => return Ok(Outcome::failed("Enter the email address of your account.", "no address", None)),
        };
        if !email.contains('@') || email.len() > 254 {
            return Ok(Outcome::Show(address_page(ctx, Some("Enter the email address of your account."), &email)));
        }
        if previous.as_ref().is_some_and(|p| p.email.eq_ignore_ascii_case(&email) && ctx.now - p.sent_at < RESEND_AFTER)
        {
            let error = "A link was sent moments ago. Wait half a minute before asking for another.";
            return Ok(Outcome::Show(waiting_page(ctx, Some(error), &mask(&email))));
        }
        let user = account(ctx.state, &email).await?;
        // Counted under the typed address whether or not it is an account's (see email_otp).
        let account = login_key(&email);
        if ctx.state.ephemeral.count(&account).await? >= ctx.state.settings.login.max_failures {
            return Ok(Outcome::Show(address_page(ctx, Some(THROTTLED), &email)));
        }
        if ctx.state.ephemeral.incr(&format!("magic-link-sends:{account}"), ttl(ctx.state)).await? > MAX_SENDS {
            let error = "Too many links were sent. Wait a few minutes and try again.";
            return Ok(Outcome::Show(address_page(ctx, Some(error), &email)));
        }
        // A new link replaces the flow's earlier one.
        if let Some(p) = &previous {
            ctx.state.ephemeral.delete(&link_key(&p.link_hash)).await?;
        }
        let token = random_token();
        let link = Link { flow_id: ctx.flow_id.to_owned(), user_id: user.as_ref().map(|u| u.id.clone()) };
        let json = serde_json::to_string(&link).map_err(anyhow::Error::from)?;
        ctx.state.ephemeral.put(&link_key(&hash_secret(&token)), &json, ttl(ctx.state)).await?;
        let s = Sent { email: email.clone(), to: mask(&email), link_hash: hash_secret(&token), sent_at: ctx.now };
        let json = serde_json::to_string(&s).map_err(anyhow::Error::from)?;
        ctx.state.ephemeral.put(&sent_key(ctx.flow_id), &json, ttl(ctx.state)).await?;
        // After the answer: its time must not tell whether the address has an account.
        if let Some(user) = &user {
            let url = ctx.state.url(&format!("/login/{}/{token}/callback", Self::ROUTE));
            ctx.state.send_later(mail(ctx.state, &user.email, &url, ctx.audience));
        }
        let event = AuditEvent::new("login.email_link_sent").ip(ctx.ip.clone()).detail("to", s.to.clone());
        let event = match &user {
            Some(u) => event.user(&u.id),
            None => event.detail("account", false),
        };
        ctx.state.store.audit(event, ctx.now).await;
        Ok(Outcome::Show(waiting_page(ctx, None, &s.to)))
    }

    /// The link, opened: GET shows a button and uses nothing; POST takes the link once and
    /// approves its flow.
    async fn callback(
        state: &AppState,
        token: &str,
        _params: &Params,
        confirmed: bool,
        ip: Option<String>,
    ) -> Result<Callback, PageError> {
        let key = link_key(&hash_secret(token));
        if !confirmed {
            return Ok(Callback::Show(match state.ephemeral.get(&key).await? {
                Some(_) => View::ok(&ConfirmPage { action: &format!("/login/{}/{token}/callback", Self::ROUTE) }),
                None => expired(),
            }));
        }
        let link = match state.ephemeral.take(&key).await? {
            Taken::Fresh(json) => serde_json::from_str::<Link>(&json).ok(),
            Taken::Consumed(_) | Taken::Missing => None,
        };
        let Some(Link { flow_id, user_id: Some(user_id) }) = link else { return Ok(Callback::Show(expired())) };
        let event = AuditEvent::new("login.email_link_opened").user(&user_id).ip(ip);
        state.store.audit(event, state.now()).await;
        // The flow that asked may be waiting in another browser: approve it there.
        state.ephemeral.put(&approved_key(&flow_id), &user_id, ttl(state)).await?;
        let elsewhere = View::ok(&ElsewherePage {});
        Ok(Callback::Flow { flow_id, data: json!({ "user_id": user_id }), elsewhere: Some(elsewhere) })
    }

    /// Opened in the browser that asked: signed in here.
    async fn resume(ctx: &Ctx<'_>, _token: &str, _data: Value) -> Result<Outcome, PageError> {
        Ok(approved(ctx).await?.unwrap_or_else(|| Outcome::Show(expired())))
    }

    /// Approved on another device: the waiting page goes on.
    async fn waiting(ctx: &Ctx<'_>) -> Result<Option<Outcome>, PageError> {
        approved(ctx).await
    }
}

/// The approval of this flow, taken once.
async fn approved(ctx: &Ctx<'_>) -> Result<Option<Outcome>, PageError> {
    let Taken::Fresh(user_id) = ctx.state.ephemeral.take(&approved_key(ctx.flow_id)).await? else { return Ok(None) };
    ctx.state.ephemeral.delete(&sent_key(ctx.flow_id)).await?;
    let enabled = ctx.state.store.user(&user_id).await?.is_some_and(|u| !u.disabled);
    if !enabled {
        return Ok(Some(Outcome::failed("This account cannot sign in.", "account disabled", Some(user_id))));
    }
    ctx.state.ephemeral.delete(&account_key(&user_id)).await?;
    Ok(Some(Outcome::passed(user_id, MagicLink::PROVES.iter().map(|s| s.to_string()).collect())))
}

/// The one enabled account with this address, confirmed.
async fn account(state: &AppState, email: &str) -> Result<Option<crate::domain::User>, PageError> {
    let user = state.store.user_by_login(email).await?.filter(|u| !u.disabled && u.email.eq_ignore_ascii_case(email));
    let Some(user) = user else { return Ok(None) };
    let verified = user.claims.get("email_verified") == Some(&Value::Bool(true));
    let confirmed =
        verified || state.store.email_otp_address(&user.id).await?.is_some_and(|a| a.eq_ignore_ascii_case(email));
    Ok(confirmed.then_some(user))
}

/// A link, under the hash of its token: the flow it signs in, and whom (none for an address
/// with no account: it is never sent).
#[derive(Serialize, Deserialize)]
struct Link {
    flow_id: String,
    user_id: Option<String>,
}

/// What this flow last sent.
#[derive(Serialize, Deserialize)]
struct Sent {
    email: String,
    to: String,
    link_hash: String,
    sent_at: i64,
}

fn link_key(hash: &str) -> String {
    format!("magic-link:{hash}")
}

fn sent_key(flow_id: &str) -> String {
    format!("magic-link-sent:{flow_id}")
}

fn approved_key(flow_id: &str) -> String {
    format!("magic-link-approved:{flow_id}")
}

async fn sent(ctx: &Ctx<'_>) -> Result<Option<Sent>, PageError> {
    let raw = ctx.state.ephemeral.get(&sent_key(ctx.flow_id)).await?;
    Ok(raw.and_then(|json| serde_json::from_str(&json).ok()))
}

fn expired() -> View {
    View::new(StatusCode::BAD_REQUEST, &ExpiredPage {})
}

fn mail(state: &AppState, to: &str, url: &str, audience: &str) -> Mail {
    let minutes = (state.settings.tokens.email_code_ttl.max(1) as u64).div_ceil(60);
    let text = LinkText { url, audience, minutes }.render().unwrap_or_default();
    let html = LinkHtml { url, audience, minutes }.render().unwrap_or_default();
    Mail { to: to.to_owned(), subject: crate::pages::tr("Your sign-in link"), text, html }
}

fn address_page(ctx: &Ctx<'_>, error: Option<&str>, email: &str) -> View {
    let action = ctx.action();
    View::ok(&AddressPage {
        action: &action,
        csrf: ctx.csrf,
        client_name: ctx.audience,
        email,
        error,
        switches: ctx.switches.clone(),
    })
}

fn waiting_page(ctx: &Ctx<'_>, error: Option<&str>, to: &str) -> View {
    let action = ctx.action();
    View::ok(&WaitingPage {
        action: &action,
        csrf: ctx.csrf,
        client_name: ctx.audience,
        to,
        error,
        refresh: REFRESH,
        switches: ctx.switches.clone(),
    })
}

#[derive(serde::Serialize)]
struct AddressPage<'a> {
    action: &'a str,
    csrf: &'a str,
    client_name: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    switches: Vec<Switch>,
}

crate::pages::template!(AddressPage<'a>, "login_link_address.html");

#[derive(serde::Serialize)]
struct WaitingPage<'a> {
    action: &'a str,
    csrf: &'a str,
    client_name: &'a str,
    to: &'a str,
    error: Option<&'a str>,
    refresh: u32,
    switches: Vec<Switch>,
}

crate::pages::template!(WaitingPage<'a>, "login_link_waiting.html");

#[derive(serde::Serialize)]
struct ConfirmPage<'a> {
    action: &'a str,
}

crate::pages::template!(ConfirmPage<'a>, "login_link_confirm.html");

#[derive(serde::Serialize)]
struct ElsewherePage {}

#[derive(serde::Serialize)]
struct ExpiredPage {}

#[derive(serde::Serialize)]
struct LinkText<'a> {
    url: &'a str,
    audience: &'a str,
    minutes: u64,
}

crate::pages::template!(LinkText<'a>, "mail/sign_in_link.txt");

crate::pages::template!(ExpiredPage, "login_link_expired.html");

crate::pages::template!(ElsewherePage, "login_link_elsewhere.html");

#[derive(serde::Serialize)]
struct LinkHtml<'a> {
    url: &'a str,
    audience: &'a str,
    minutes: u64,
}

crate::pages::template!(LinkHtml<'a>, "mail/sign_in_link.html");
