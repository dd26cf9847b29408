//! Second factors: TOTP computed independently of the server, the forms of the account security
//! page and of the login flow's second-factor steps.

use super::*;

/// The RFC 6238 code (6 digits, 30 s, HMAC-SHA-1) of the base32 `secret` for time step `step`.
pub fn totp_code(secret: &str, step: i64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).unwrap_or_else(|e| panic!("base32 {secret}: {e:?}"));
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(bytes.as_bytes().to_vec())
        .build()
        .unwrap();
    totp.generate(step as u64 * 30).to_string()
}

/// The RFC 6238 time step now.
pub fn totp_step() -> i64 {
    now() / 30
}

/// The form whose action ends with `suffix` (or, for "/login/", is a login-flow form) and
/// that has an input named `field`.
pub fn form_with(page: &Resp, action: &str, field: &str) -> Option<Form> {
    page.forms().into_iter().find(|f| f.action.contains(action) && f.input(field).is_some())
}

/// The form on an account page that posts `action` (each carries it in a hidden field).
pub fn account_form(page: &Resp, action: &str) -> Form {
    page.forms()
        .into_iter()
        .find(|f| f.action == "/account/security" && f.value("action") == Some(action))
        .unwrap_or_else(|| panic!("no {action} form: {page:?}"))
}

/// A second-factor page of a login flow: a POST form to /login/ with a `code` field.
pub fn code_form(page: &Resp) -> Option<Form> {
    form_with(page, "/login/", "code")
}

/// The form on PAGE that switches to the step `to` ("Use a recovery code instead").
pub fn switch_form(page: &Resp, to: &str) -> Option<Form> {
    page.forms().into_iter().find(|f| f.has_button("switch", to))
}

/// The enrolment result: the key shown (base32), the step of the code that confirmed it, and
/// the recovery codes shown once.
pub struct Enrolled {
    pub secret: String,
    pub step: i64,
    pub recovery_codes: Vec<String>,
}

/// A server (with `env`) that has alice, a first-party client, and alice's authenticator set
/// up on the account page by the returned browser (whose session is still password-only).
pub async fn with_totp(env: &[(&str, &str)]) -> (Server, TestClient, Browser, Enrolled) {
    let server = Server::start_with(env);
    server.add_alice();
    let c = server.first_party_client();
    let owner = server.browser();
    let e = owner.enrol_totp(&owner.security_page((USER, PASSWORD)).await).await;
    (server, c, owner, e)
}

impl Browser {
    /// Presses "use … instead" on a second-factor page: switches the flow to step `to` and
    /// returns that step's page.
    pub async fn switch_to(&self, page: &Resp, to: &str) -> Resp {
        let form = switch_form(page, to).unwrap_or_else(|| panic!("no switch to {to}: {page:?}"));
        let r = self.submit(&form, &[("switch", to)]).await;
        assert_eq!(r.status, 303, "{r:?}");
        self.follow(&r).await
    }

    /// Opens /account/security, signing in with USER/PASSWORD (and, when asked, the code of
    /// `totp`) on the way if the browser has no session; returns the page.
    pub async fn security_page(&self, creds: (&str, &str)) -> Resp {
        let mut r = self.get("/account/security").await;
        for _ in 0..6 {
            if !r.is_redirect() {
                break;
            }
            r = self.follow(&r).await;
            if let Some(form) = login_form(&r) {
                r = self.submit(&form, &[("username", creds.0), ("password", creds.1)]).await;
            }
        }
        assert_eq!(r.status, 200, "account security page: {r:?}");
        assert!(r.body.contains("Account security"), "{r:?}");
        r
    }

    /// Sets up an authenticator from the account security page PAGE (already signed in and
    /// fresh): reads the key, checks the QR code, confirms with the current code.
    pub async fn enrol_totp(&self, page: &Resp) -> Enrolled {
        let form = account_form(page, "totp-begin");
        assert!(form.value("csrf").is_some_and(|v| !v.is_empty()), "{form:?}");
        let enrol = self.submit(&form, &[]).await;
        assert_eq!(enrol.status, 200, "{enrol:?}");
        assert!(!enrol.body.contains("<script"), "works without JavaScript: {enrol:?}");
        let secret = element_text(&enrol, "totp-secret").unwrap_or_else(|| panic!("no key: {enrol:?}"));
        let qr = enrol.body.split("src=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default();
        let png = qr.strip_prefix("data:image/png;base64,").unwrap_or_else(|| panic!("inline PNG QR: {enrol:?}"));
        let png = STANDARD.decode(png).expect("base64 PNG");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG image");
        let confirm = account_form(&enrol, "totp-confirm");
        let step = totp_step();
        let r = self.submit(&confirm, &[("code", &totp_code(&secret, step))]).await;
        assert_eq!(r.status, 200, "{r:?}");
        let recovery_codes = recovery_codes(&r);
        assert_eq!(recovery_codes.len(), 10, "{r:?}");
        Enrolled { secret, step, recovery_codes }
    }
}
