//! The HTML pages and the mails, one template each under `templates/`, all pages on one base
//! layout. Every page works without JavaScript except for WebAuthn itself: the form_post page's
//! script only saves a click, and `webauthn.js` (a served file, never inline) runs the passkey
//! ceremonies.
//!
//! Templates are rendered at run time (minijinja) so that an operator's theme can replace them
//! ([`theme`]), in the language the request negotiated ([`i18n`]). Each request runs inside a
//! [`scope`] that holds the server's theme and that language, so a page is rendered where it is
//! built, as before, without every handler carrying both.

pub mod i18n;
pub mod theme;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use std::cell::RefCell;
use std::sync::{Arc, LazyLock};
pub use theme::Theme;

/// A page or mail body: its fields, and the template that shows them.
pub trait Template: Serialize {
    /// The template's name under `templates/` (and in a theme directory).
    const NAME: &'static str;

    /// Renders it with the current request's theme and language.
    fn render(&self) -> Result<String, minijinja::Error> {
        let page = minijinja::Value::from(minijinja::value::Serde(self));
        match SCOPE.try_with(|s| s.theme.render(Self::NAME, page.clone(), &s.lang.borrow())) {
            Ok(rendered) => rendered,
            // Outside a request (mails sent by a background task): the built-in templates in
            // the source language.
            Err(_) => BUILT_IN.render(Self::NAME, page, i18n::SOURCE),
        }
    }
}

/// Names the template of a page struct.
macro_rules! template {
    ($page:ident, $name:literal) => {
        impl crate::pages::Template for $page {
            const NAME: &'static str = $name;
        }
    };
    ($page:ident<$lt:lifetime>, $name:literal) => {
        impl crate::pages::Template for $page<'_> {
            const NAME: &'static str = $name;
        }
    };
}
pub(crate) use template;

static BUILT_IN: LazyLock<Theme> = LazyLock::new(Theme::built_in);

/// What a request renders with.
struct Scope {
    theme: Arc<Theme>,
    lang: RefCell<String>,
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// Middleware: runs the request inside a [`Scope`] with the server's theme and the language
/// the browser asked for (`Accept-Language`), else `ui.default_locale`; a sign-in flow that
/// carries `ui_locales` changes it with [`use_ui_locales`].
pub async fn scope(State(state): State<crate::state::AppState>, req: Request, next: Next) -> Response {
    let lang = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(i18n::from_accept_language)
        .unwrap_or_else(|| state.default_locale.clone());
    SCOPE.scope(Scope { theme: state.theme.clone(), lang: RefCell::new(lang) }, next.run(req)).await
}

/// The authorization request's `ui_locales` (OIDC Core §3.1.2.1) over `Accept-Language`, for
/// the rest of this request, when it names a shipped language.
pub fn use_ui_locales(ui_locales: Option<&str>) {
    if let Some(lang) = ui_locales.and_then(i18n::from_ui_locales) {
        let _ = SCOPE.try_with(|s| *s.lang.borrow_mut() = lang);
    }
}

/// The language this request's pages are rendered in.
pub fn lang() -> String {
    SCOPE.try_with(|s| s.lang.borrow().clone()).unwrap_or_else(|_| i18n::SOURCE.to_owned())
}

/// `text` (English, from the code) in this request's language.
pub fn tr(text: &str) -> String {
    i18n::translate(&lang(), text)
}

/// [`tr`] with `%{name}` arguments filled in (plain text: mail subjects).
pub fn tr_with(text: &str, args: &[(&str, &str)]) -> String {
    args.iter().fold(tr(text), |out, (name, value)| out.replace(&format!("%{{{name}}}"), value))
}

/// A rendered page as plain data: what login steps return and the engine turns into a response,
/// in one place ([`IntoResponse`]).
#[derive(Clone, Debug)]
pub struct View {
    pub status: StatusCode,
    pub html: String,
    /// It loads `webauthn.js`: its policy allows scripts from this origin.
    pub scripted: bool,
}

impl View {
    /// Renders `page`; a template failure is logged and becomes a plain 500 page.
    pub fn new(status: StatusCode, page: &impl Template) -> Self {
        match page.render() {
            Ok(html) => Self { status, html, scripted: false },
            Err(e) => {
                tracing::error!(error = %e, "template failed");
                Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    html: "<h1>Something went wrong</h1>".into(),
                    scripted: false,
                }
            }
        }
    }

    /// A page that loads `webauthn.js`.
    pub fn scripted(status: StatusCode, page: &impl Template) -> Self {
        Self { scripted: true, ..Self::new(status, page) }
    }

    pub fn ok(page: &impl Template) -> Self {
        Self::new(StatusCode::OK, page)
    }
}

impl IntoResponse for View {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Html(self.html)).into_response();
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.scripted {
            resp.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(crate::http::middleware::SCRIPTED_CSP),
            );
        }
        resp
    }
}

/// Renders a page.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    View::new(status, page).into_response()
}

/// Renders a page that loads `webauthn.js`: the default policy plus scripts and requests to
/// this origin only.
pub fn render_scripted(status: StatusCode, page: &impl Template) -> Response {
    View::scripted(status, page).into_response()
}

#[derive(serde::Serialize)]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub code: Option<&'a str>,
}

crate::pages::template!(ErrorPage<'a>, "error.html");

#[derive(serde::Serialize)]
pub struct PasswordPage<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
    pub switches: Vec<Switch>,
    /// "Continue with …": one form per upstream provider.
    pub upstreams: Vec<UpstreamButton>,
    /// Why this sign-in is asked (e.g. to link an upstream account).
    pub notice: Option<String>,
    /// Where the passkey offered beside the password gets its challenge; none when off.
    pub passkey: Option<&'a str>,
    /// "Remember me", ticked or not; offered before anyone is identified.
    pub remember: Option<bool>,
}

crate::pages::template!(PasswordPage<'a>, "login_password.html");

/// The passkey step as a second factor, with switches to the other factors the user has.
#[derive(serde::Serialize)]
pub struct PasskeyPage<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub options: &'a str,
    pub error: Option<&'a str>,
    /// (step, button label)
    pub switches: Vec<Switch>,
}

crate::pages::template!(PasskeyPage<'a>, "login_passkey.html");

#[derive(Serialize)]
pub struct UpstreamButton {
    pub action: String,
    pub label: String,
}

/// A federated sign-in that stopped: what happened and a way back.
#[derive(serde::Serialize)]
pub struct UpstreamErrorPage<'a> {
    pub message: &'a str,
    pub back: &'a str,
}

crate::pages::template!(UpstreamErrorPage<'a>, "login_upstream_error.html");

#[derive(Serialize)]
pub struct LinkedLine {
    pub provider: String,
    pub label: String,
    pub subject: String,
    pub email: String,
}

/// `/account/linked`: upstream identities linked to the account.
#[derive(serde::Serialize)]
pub struct LinkedPage<'a> {
    pub username: &'a str,
    pub csrf: &'a str,
    pub links: Vec<LinkedLine>,
    pub notice: Option<&'a str>,
}

crate::pages::template!(LinkedPage<'a>, "account_linked.html");

/// A button on a login page that switches to another step (`switch=<step>`), or cancels the
/// sign-in (`switch=cancel`, `login::flow::CANCEL`).
#[derive(Clone, Debug, Serialize)]
pub struct Switch {
    pub step: &'static str,
    pub label: &'static str,
}

/// The words of a one-code step's page.
#[derive(Serialize)]
pub struct CodeText {
    pub title: &'static str,
    pub heading: &'static str,
    pub intro: &'static str,
    pub label: &'static str,
    /// Digits only: a numeric keyboard and the browser's one-time-code autofill.
    pub numeric: bool,
    /// A "send a new code" button (`resend=1`).
    pub resend: bool,
}

#[derive(serde::Serialize)]
pub struct CodePage<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub text: &'static CodeText,
    pub switches: Vec<Switch>,
}

crate::pages::template!(CodePage<'a>, "login_code.html");

/// The first part of signing in with an emailed code: which address.
#[derive(serde::Serialize)]
pub struct EmailPage<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub switches: Vec<Switch>,
}

crate::pages::template!(EmailPage<'a>, "login_email.html");

/// After a sign-in with a recovery code: how many are left, and where to set up a new factor.
#[derive(serde::Serialize)]
pub struct RecoveryNoticePage<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub left: i64,
}

crate::pages::template!(RecoveryNoticePage<'a>, "login_recovery_notice.html");

#[derive(serde::Serialize)]
pub struct SecurityPage<'a> {
    pub username: &'a str,
    pub csrf: &'a str,
    pub totp: bool,
    /// Where emailed codes go (masked), when they are on.
    pub email: Option<&'a str>,
    pub codes_left: i64,
    pub notice: Option<&'a str>,
    /// None when WebAuthn is off on this server.
    pub passkeys: Option<Vec<PasskeyLine>>,
    /// None when no channel sends codes by phone on this server.
    pub phone: Option<PhoneSection>,
    /// Set from [`SecurityPage::second_factor_on`]: whether recovery codes are shown.
    pub has_second_factor: bool,
}

crate::pages::template!(SecurityPage<'a>, "account_security.html");

impl SecurityPage<'_> {
    /// Whether a second factor is on, for recovery codes to stand in for.
    pub fn second_factor_on(&self) -> bool {
        self.totp || self.email.is_some() || self.phone.as_ref().is_some_and(PhoneSection::codes_on)
    }
}

/// The security page's phone number: the verified number (masked) and each offered channel.
#[derive(Serialize)]
pub struct PhoneSection {
    pub number: Option<String>,
    pub channels: Vec<PhoneChannel>,
}

impl PhoneSection {
    /// Whether any channel's codes are on (recovery codes then stand in for them).
    pub fn codes_on(&self) -> bool {
        self.channels.iter().any(|c| c.on)
    }
}

#[derive(Serialize)]
pub struct PhoneChannel {
    /// `sms` or `whatsapp`: names its forms and actions.
    pub name: &'static str,
    pub label: &'static str,
    pub on: bool,
}

/// A code just sent to a phone, to verify the number or to turn a channel's codes on.
#[derive(serde::Serialize)]
pub struct PhoneConfirmPage<'a> {
    pub csrf: &'a str,
    pub heading: &'a str,
    pub to: &'a str,
    pub channel: &'a str,
    pub error: Option<&'a str>,
}

crate::pages::template!(PhoneConfirmPage<'a>, "account_phone_confirm.html");

/// Signing in with a code by phone, before a code is sent: the number to send it to (first
/// factor), or, for a user with codes by SMS and by WhatsApp, a button to send it this way.
#[derive(serde::Serialize)]
pub struct PhonePage<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub channel: &'a str,
    /// The user's number, masked; None: ask for it.
    pub number: Option<&'a str>,
    /// What was typed, to show again.
    pub phone: &'a str,
    pub error: Option<&'a str>,
    pub switches: Vec<Switch>,
}

crate::pages::template!(PhonePage<'a>, "login_phone.html");

/// A registered passkey as the security page lists it (dates as YYYY-MM-DD, UTC).
#[derive(Serialize)]
pub struct PasskeyLine {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: Option<String>,
    pub synced: bool,
}

/// Creating a passkey: the options for `navigator.credentials.create`, as JSON.
#[derive(serde::Serialize)]
pub struct PasskeyEnrolPage<'a> {
    pub csrf: &'a str,
    pub name: &'a str,
    pub options: &'a str,
}

crate::pages::template!(PasskeyEnrolPage<'a>, "account_passkey_enrol.html");

/// Turning emailed codes on: the code just sent to the account's address.
#[derive(serde::Serialize)]
pub struct EmailEnrolPage<'a> {
    pub csrf: &'a str,
    pub to: &'a str,
    pub error: Option<&'a str>,
}

crate::pages::template!(EmailEnrolPage<'a>, "account_email_enrol.html");

#[derive(serde::Serialize)]
pub struct TotpEnrolPage<'a> {
    pub csrf: &'a str,
    pub secret: &'a str,
    pub qr: &'a str,
    pub error: Option<&'a str>,
}

crate::pages::template!(TotpEnrolPage<'a>, "account_totp_enrol.html");

#[derive(serde::Serialize)]
pub struct RecoveryCodesPage<'a> {
    pub codes: &'a [String],
}

crate::pages::template!(RecoveryCodesPage<'a>, "account_recovery_codes.html");

#[derive(Serialize)]
pub struct ScopeLine {
    pub name: String,
    pub description: &'static str,
}

#[derive(serde::Serialize)]
pub struct ConsentPage<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub username: &'a str,
    pub scopes: Vec<ScopeLine>,
    /// The client's privacy policy and terms of service, as it registered them.
    pub policy_uri: Option<&'a str>,
    pub tos_uri: Option<&'a str>,
}

crate::pages::template!(ConsentPage<'a>, "consent.html");

#[derive(serde::Serialize)]
pub struct LogoutConfirmPage<'a> {
    pub csrf: &'a str,
    pub client_name: Option<&'a str>,
}

crate::pages::template!(LogoutConfirmPage<'a>, "logout_confirm.html");

#[derive(serde::Serialize)]
pub struct LoggedOutPage<'a> {
    /// Front-channel logout URIs to load in frames (OIDC Front-Channel Logout 1.0 §4).
    pub frames: &'a [String],
    /// Where the page goes once they are loaded: the client's post-logout redirect URI.
    pub next: Option<&'a str>,
}

crate::pages::template!(LoggedOutPage<'a>, "logged_out.html");

#[derive(serde::Serialize)]
pub struct FormPostPage<'a> {
    pub action: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
    pub nonce: &'a str,
}

crate::pages::template!(FormPostPage<'a>, "form_post.html");

#[derive(serde::Serialize)]
pub struct HomePage<'a> {
    pub issuer: &'a str,
    pub username: Option<&'a str>,
}

crate::pages::template!(HomePage<'a>, "home.html");

/// The WebAuthn ceremonies in the browser, served as `/assets/webauthn.js`.
pub const WEBAUTHN_JS: &str = include_str!("../templates/webauthn.js");

/// One browser session on the sessions page.
#[derive(Serialize)]
pub struct SessionLine {
    pub id: String,
    /// This browser's own session.
    pub current: bool,
    pub browser: String,
    pub ip: String,
    pub started: String,
    pub last_used: String,
    /// "Keep me signed in" was ticked.
    pub remembered: bool,
    /// The applications holding grants from it.
    pub applications: Vec<String>,
    /// Its gateway sessions (apps behind the reverse proxy), each with its device, in words.
    pub gateway: Vec<String>,
}

#[derive(serde::Serialize)]
pub struct SessionsPage<'a> {
    pub username: &'a str,
    pub csrf: &'a str,
    pub sessions: Vec<SessionLine>,
    pub notice: Option<&'a str>,
}

crate::pages::template!(SessionsPage<'a>, "account_sessions.html");

/// One event on the activity page, in words.
#[derive(Serialize)]
pub struct ActivityLine {
    pub what: String,
    pub at: String,
    pub ip: Option<String>,
    pub browser: Option<String>,
    /// A failed sign-in, set apart.
    pub failed: bool,
}

#[derive(serde::Serialize)]
pub struct ActivityPage<'a> {
    pub username: &'a str,
    pub events: Vec<ActivityLine>,
}

crate::pages::template!(ActivityPage<'a>, "account_activity.html");

/// One field of a sign-up or profile form, as `fields.html` shows it: labelled, with its
/// standard `autocomplete` token and, after a refusal, its message.
#[derive(Serialize)]
pub struct FieldView {
    pub name: &'static str,
    pub label: &'static str,
    /// The `<input>` type, or `select`.
    pub input: &'static str,
    pub autocomplete: &'static str,
    pub required: bool,
    pub value: String,
    pub error: Option<String>,
    /// For a `select`: (value, selected).
    pub options: Vec<(String, bool)>,
}

impl FieldView {
    /// `field` with `value`, `error`, and the choices of a `select`.
    pub fn new(
        field: &'static crate::domain::registration::Field,
        required: bool,
        value: &str,
        error: Option<String>,
        choices: &[String],
    ) -> Self {
        let options = match field.input {
            "select" => choices.iter().map(|g| (g.clone(), g.eq_ignore_ascii_case(value))).collect(),
            _ => Vec::new(),
        };
        Self {
            name: field.name,
            label: field.label,
            input: field.input,
            autocomplete: field.autocomplete,
            required,
            value: value.to_owned(),
            error,
            options,
        }
    }
}
