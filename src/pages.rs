//! The HTML pages, one askama template each under `templates/`, all on one base layout. Every
//! page works without JavaScript except for WebAuthn itself: the form_post page's script only
//! saves a click, and `webauthn.js` (a served file, never inline) runs the passkey ceremonies.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

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

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub code: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "login_password.html")]
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

/// The passkey step as a second factor, with switches to the other factors the user has.
#[derive(Template)]
#[template(path = "login_passkey.html")]
pub struct PasskeyPage<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub options: &'a str,
    pub error: Option<&'a str>,
    /// (step, button label)
    pub switches: Vec<Switch>,
}

pub struct UpstreamButton {
    pub action: String,
    pub label: String,
}

/// A federated sign-in that stopped: what happened and a way back.
#[derive(Template)]
#[template(path = "login_upstream_error.html")]
pub struct UpstreamErrorPage<'a> {
    pub message: &'a str,
    pub back: &'a str,
}

pub struct LinkedLine {
    pub provider: String,
    pub label: String,
    pub subject: String,
    pub email: String,
}

/// `/account/linked`: upstream identities linked to the account.
#[derive(Template)]
#[template(path = "account_linked.html")]
pub struct LinkedPage<'a> {
    pub username: &'a str,
    pub csrf: &'a str,
    pub links: Vec<LinkedLine>,
    pub notice: Option<&'a str>,
}

/// A button on a login page that switches to another step (`switch=<step>`), or cancels the
/// sign-in (`switch=cancel`, `login::flow::CANCEL`).
#[derive(Clone, Debug)]
pub struct Switch {
    pub step: &'static str,
    pub label: &'static str,
}

/// The words of a one-code step's page.
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

#[derive(Template)]
#[template(path = "login_code.html")]
pub struct CodePage<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub text: &'static CodeText,
    pub switches: Vec<Switch>,
}

/// The first part of signing in with an emailed code: which address.
#[derive(Template)]
#[template(path = "login_email.html")]
pub struct EmailPage<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub switches: Vec<Switch>,
}

/// After a sign-in with a recovery code: how many are left, and where to set up a new factor.
#[derive(Template)]
#[template(path = "login_recovery_notice.html")]
pub struct RecoveryNoticePage<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub left: i64,
}

#[derive(Template)]
#[template(path = "account_security.html")]
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
}

impl SecurityPage<'_> {
    /// Whether a second factor is on, for recovery codes to stand in for.
    pub fn has_second_factor(&self) -> bool {
        self.totp || self.email.is_some() || self.phone.as_ref().is_some_and(PhoneSection::codes_on)
    }
}

/// The security page's phone number: the verified number (masked) and each offered channel.
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

pub struct PhoneChannel {
    /// `sms` or `whatsapp`: names its forms and actions.
    pub name: &'static str,
    pub label: &'static str,
    pub on: bool,
}

/// A code just sent to a phone, to verify the number or to turn a channel's codes on.
#[derive(Template)]
#[template(path = "account_phone_confirm.html")]
pub struct PhoneConfirmPage<'a> {
    pub csrf: &'a str,
    pub heading: &'a str,
    pub to: &'a str,
    pub channel: &'a str,
    pub error: Option<&'a str>,
}

/// Signing in with a code by phone, before a code is sent: the number to send it to (first
/// factor), or, for a user with codes by SMS and by WhatsApp, a button to send it this way.
#[derive(Template)]
#[template(path = "login_phone.html")]
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

/// A registered passkey as the security page lists it (dates as YYYY-MM-DD, UTC).
pub struct PasskeyLine {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: Option<String>,
    pub synced: bool,
}

/// Creating a passkey: the options for `navigator.credentials.create`, as JSON.
#[derive(Template)]
#[template(path = "account_passkey_enrol.html")]
pub struct PasskeyEnrolPage<'a> {
    pub csrf: &'a str,
    pub name: &'a str,
    pub options: &'a str,
}

/// Turning emailed codes on: the code just sent to the account's address.
#[derive(Template)]
#[template(path = "account_email_enrol.html")]
pub struct EmailEnrolPage<'a> {
    pub csrf: &'a str,
    pub to: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "account_totp_enrol.html")]
pub struct TotpEnrolPage<'a> {
    pub csrf: &'a str,
    pub secret: &'a str,
    pub qr: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "account_recovery_codes.html")]
pub struct RecoveryCodesPage<'a> {
    pub codes: &'a [String],
}

pub struct ScopeLine {
    pub name: String,
    pub description: &'static str,
}

#[derive(Template)]
#[template(path = "consent.html")]
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

#[derive(Template)]
#[template(path = "logout_confirm.html")]
pub struct LogoutConfirmPage<'a> {
    pub csrf: &'a str,
    pub client_name: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "logged_out.html")]
pub struct LoggedOutPage<'a> {
    /// Front-channel logout URIs to load in frames (OIDC Front-Channel Logout 1.0 §4).
    pub frames: &'a [String],
    /// Where the page goes once they are loaded: the client's post-logout redirect URI.
    pub next: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostPage<'a> {
    pub action: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
    pub nonce: &'a str,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage<'a> {
    pub issuer: &'a str,
    pub username: Option<&'a str>,
}

pub const STYLESHEET: &str = include_str!("../templates/style.css");

/// The WebAuthn ceremonies in the browser, served as `/assets/webauthn.js`.
pub const WEBAUTHN_JS: &str = include_str!("../templates/webauthn.js");

/// One browser session on the sessions page.
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

#[derive(Template)]
#[template(path = "account_sessions.html")]
pub struct SessionsPage<'a> {
    pub username: &'a str,
    pub csrf: &'a str,
    pub sessions: Vec<SessionLine>,
    pub notice: Option<&'a str>,
}

/// One event on the activity page, in words.
pub struct ActivityLine {
    pub what: String,
    pub at: String,
    pub ip: Option<String>,
    pub browser: Option<String>,
    /// A failed sign-in, set apart.
    pub failed: bool,
}

#[derive(Template)]
#[template(path = "account_activity.html")]
pub struct ActivityPage<'a> {
    pub username: &'a str,
    pub events: Vec<ActivityLine>,
}

/// One field of a sign-up or profile form, as `fields.html` shows it: labelled, with its
/// standard `autocomplete` token and, after a refusal, its message.
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
