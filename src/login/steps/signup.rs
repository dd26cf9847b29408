//! The sign-up step: "Create an account", offered on the sign-in page where the operator lets
//! people register (`registration.enabled`). Its form asks for the fields the operator chose
//! (`domain::registration`), the email and a password by the policy; a valid form makes a
//! pending account and mails a link and a code (`crate::signup`). The account signs in nowhere
//! until one of them is used: then this flow goes on, signed in, to wherever it was going (the
//! authorization request it serves continues).
//!
//! ```text
//!  form ──valid──► "check your email": code field, "send again" ──code──► signed in here
//!                        ▲                                      link: GET page, POST
//!                        │ (a pending account's password        ├─ this browser: signed in
//!                        │  sign-in lands here too)             └─ another device: this page goes on
//! ```
//!
//! The `amr` is `otp` (RFC 8176): a one-time secret sent to the mailbox proves it; the password
//! just chosen proves nothing yet.

use crate::domain::password_policy;
use crate::domain::registration::{self, EMAIL, Errors};
use crate::http::{PageError, Params};
use crate::login::step::{Callback, Ctx, Outcome, Role, Step};
use crate::pages::{FieldView, Switch, View};
use crate::signup::{self as core, Refused};
use crate::state::AppState;
use axum::http::StatusCode;
use serde_json::{Value, json};

pub struct Signup;

impl Step for Signup {
    const NAME: &'static str = "signup";
    const ROLE: Role = Role::First;
    const PROVES: &'static [&'static str] = &["otp"];
    const SWITCH_LABEL: &'static str = "Create an account";

    fn first_factor(state: &AppState) -> bool {
        state.settings.registration.enabled
    }

    async fn render(ctx: &Ctx<'_>, error: Option<&str>, _form: Option<&Params>) -> Result<View, PageError> {
        if let Some(view) = pending_page(ctx, error, None).await? {
            return Ok(view);
        }
        Ok(form_page(ctx, StatusCode::OK, &Params::default(), &Errors::new(), error))
    }

    /// The sign-up form, or the code / "send again" of the page that follows it.
    async fn submit(ctx: &Ctx<'_>, form: &Params) -> Result<Outcome, PageError> {
        if let Some(outcome) = answer(ctx, form).await? {
            return Ok(outcome);
        }
        let today = chrono::DateTime::from_timestamp(ctx.now, 0).unwrap_or_default().date_naive();
        let rules = &ctx.state.settings.registration;
        let checked = registration::validate(rules, |name| form.get(name), today);
        let password = form.get("password").unwrap_or_default();
        let mut errors = checked.as_ref().err().cloned().unwrap_or_default();
        let identifiers = [form.get("username").unwrap_or_default(), form.get(EMAIL.name).unwrap_or_default()];
        if let Err(refusal) = password_policy::check(&ctx.state.settings.password, password, &identifiers) {
            errors.insert("password", refusal.to_string());
        }
        let valid = match checked {
            Ok(valid) if errors.is_empty() => valid,
            _ => return Ok(Outcome::Show(form_page(ctx, StatusCode::BAD_REQUEST, form, &errors, Some(CHECK_FIELDS)))),
        };
        match core::register(ctx.state, valid, password.to_owned(), ctx.flow_id, ctx.audience, ctx.ip.clone()).await? {
            Ok(sent) => Ok(Outcome::Show(waiting_page(ctx, &sent.to, None, None))),
            Err(Refused::UsernameTaken) => {
                errors.insert("username", Refused::UsernameTaken.message().into());
                Ok(Outcome::Show(form_page(ctx, StatusCode::BAD_REQUEST, form, &errors, Some(CHECK_FIELDS))))
            }
            Err(refused) => {
                Ok(Outcome::Show(form_page(ctx, StatusCode::TOO_MANY_REQUESTS, form, &errors, Some(refused.message()))))
            }
        }
    }

    /// The link, opened: GET shows a button and uses nothing (mail scanners fetch links); POST
    /// confirms the address once and approves the flow that sent it.
    async fn callback(
        state: &AppState,
        token: &str,
        _params: &Params,
        confirmed: bool,
        ip: Option<String>,
    ) -> Result<Callback, PageError> {
        if !confirmed {
            return Ok(Callback::Show(match core::link_exists(state, token).await? {
                true => View::ok(&ConfirmPage { action: &format!("/login/{}/{token}/callback", Self::ROUTE) }),
                false => expired(),
            }));
        }
        let Ok((user_id, flow_id)) = core::confirm_token(state, token, ip).await? else {
            return Ok(Callback::Show(expired()));
        };
        core::approve(state, &flow_id, &user_id).await?;
        let elsewhere = View::ok(&ConfirmedPage {});
        Ok(Callback::Flow { flow_id, data: json!({}), elsewhere: Some(elsewhere) })
    }

    /// Confirmed in the browser that signed up: signed in here.
    async fn resume(ctx: &Ctx<'_>, _token: &str, _data: Value) -> Result<Outcome, PageError> {
        Ok(approved(ctx).await?.unwrap_or_else(|| Outcome::Show(expired())))
    }

    /// Confirmed on another device: the waiting page goes on.
    async fn waiting(ctx: &Ctx<'_>) -> Result<Option<Outcome>, PageError> {
        approved(ctx).await
    }
}

const CHECK_FIELDS: &str = "Some fields need another look: see the messages below.";

/// The flow's confirmation, taken once: the account, now active, has signed in.
pub async fn approved(ctx: &Ctx<'_>) -> Result<Option<Outcome>, PageError> {
    let Some(user_id) = core::approved(ctx.state, ctx.flow_id).await? else { return Ok(None) };
    Ok(Some(Outcome::passed(user_id, Signup::PROVES.iter().map(|s| s.to_string()).collect())))
}

/// The "check your email" page, when this flow is waiting for a confirmation.
pub async fn pending_page(ctx: &Ctx<'_>, error: Option<&str>, notice: Option<&str>) -> Result<Option<View>, PageError> {
    Ok(core::sent(ctx.state, ctx.flow_id).await?.map(|s| waiting_page(ctx, &s.to, error, notice)))
}

/// A pending account proved its password: it confirms its email before it signs in anywhere.
pub async fn pending_sign_in(ctx: &Ctx<'_>, user: &crate::domain::User) -> Result<Outcome, PageError> {
    let view = match core::pending_sign_in(ctx.state, user, ctx.flow_id, ctx.audience).await? {
        Ok(sent) => waiting_page(ctx, &sent.to, None, Some(PENDING)),
        Err(refused) => waiting_page(
            ctx,
            &crate::login::steps::email_otp::mask(&user.email),
            Some(refused.message()),
            Some(PENDING),
        ),
    };
    Ok(Outcome::Show(view))
}

const PENDING: &str = "Your account is waiting for you to confirm your email address.";

/// The waiting page's forms, for whichever step shows it: a code, or "send again". None when
/// the form is neither or the flow waits for nothing.
pub async fn answer(ctx: &Ctx<'_>, form: &Params) -> Result<Option<Outcome>, PageError> {
    let Some(sent) = core::sent(ctx.state, ctx.flow_id).await? else { return Ok(None) };
    if form.get("resend").is_some() {
        let view = match core::resend(ctx.state, ctx.flow_id, ctx.audience).await? {
            Ok(s) => waiting_page(ctx, &s.to, None, Some("We sent a new link and code. Only the latest one works.")),
            Err(Refused::Throttled(secs)) if secs < 3600 => waiting_page(
                ctx,
                &sent.to,
                Some("A message was sent moments ago. Wait a minute before asking again."),
                None,
            ),
            Err(refused) => waiting_page(ctx, &sent.to, Some(refused.message()), None),
        };
        return Ok(Some(Outcome::Show(view)));
    }
    let Some(code) = form.get("code") else { return Ok(None) };
    Ok(Some(match core::confirm_code(ctx.state, ctx.flow_id, code, ctx.ip.clone()).await? {
        Ok(user_id) => Outcome::passed(user_id, Signup::PROVES.iter().map(|s| s.to_string()).collect()),
        Err(refused) => Outcome::failed(refused.message(), "wrong verification code", sent.user_id),
    }))
}

fn expired() -> View {
    View::new(StatusCode::BAD_REQUEST, &ExpiredPage {})
}

fn form_page(ctx: &Ctx<'_>, status: StatusCode, form: &Params, errors: &Errors, error: Option<&str>) -> View {
    let rules = &ctx.state.settings.registration;
    let show = |f: &'static registration::Field, required: bool| {
        let value = form.get(f.name).unwrap_or_default();
        FieldView::new(f, required, value, errors.get(f.name).cloned(), &rules.genders)
    };
    let mut fields: Vec<FieldView> =
        registration::asked(rules).into_iter().map(|(f, required)| show(f, required)).collect();
    fields.push(show(&EMAIL, true));
    let action = ctx.action();
    View::new(
        status,
        &FormPage {
            action: &action,
            csrf: ctx.csrf,
            client_name: ctx.audience,
            error,
            fields,
            password_error: errors.get("password").map(String::as_str),
            min_length: ctx.state.settings.password.min_length,
            switches: ctx.switches.clone(),
        },
    )
}

fn waiting_page(ctx: &Ctx<'_>, to: &str, error: Option<&str>, notice: Option<&str>) -> View {
    let action = ctx.action();
    let hours = (ctx.state.settings.registration.verify_ttl.max(1) as u64).div_ceil(3600);
    View::ok(&WaitingPage { action: &action, csrf: ctx.csrf, client_name: ctx.audience, to, error, notice, hours })
}

crate::pages::template!(FormPage<'a>, "signup_form.html");
#[derive(serde::Serialize)]
struct FormPage<'a> {
    action: &'a str,
    csrf: &'a str,
    client_name: &'a str,
    error: Option<&'a str>,
    fields: Vec<FieldView>,
    password_error: Option<&'a str>,
    min_length: usize,
    switches: Vec<Switch>,
}

crate::pages::template!(WaitingPage<'a>, "signup_check_email.html");
#[derive(serde::Serialize)]
struct WaitingPage<'a> {
    action: &'a str,
    csrf: &'a str,
    client_name: &'a str,
    to: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    hours: u64,
}

crate::pages::template!(ConfirmPage<'a>, "signup_confirm.html");
#[derive(serde::Serialize)]
struct ConfirmPage<'a> {
    action: &'a str,
}

crate::pages::template!(ConfirmedPage, "signup_confirmed.html");
#[derive(serde::Serialize)]
struct ConfirmedPage {}

crate::pages::template!(ExpiredPage, "signup_expired.html");
#[derive(serde::Serialize)]
struct ExpiredPage {}
