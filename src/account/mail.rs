//! The account's own mail: a password reset link, "your password was changed", "your sign-in
//! methods changed" and "your account was deleted". Each says what happened and what to do if
//! it was not the person, in a text and an HTML body from `templates/mail/`, naming the
//! operator's product (`mail.product_name`).

use crate::mail::Mail;
use crate::state::AppState;
use askama::Template;

#[derive(Template)]
#[template(path = "mail/password_reset.txt")]
struct ResetText<'a> {
    product: &'a str,
    url: &'a str,
    username: &'a str,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "mail/password_reset.html")]
struct ResetHtml<'a> {
    product: &'a str,
    url: &'a str,
    username: &'a str,
    minutes: i64,
}

/// The link that sets a new password.
pub fn reset_link(state: &AppState, to: &str, username: &str, url: &str) -> Mail {
    let minutes = (state.settings.tokens.reset_ttl.max(60) + 59) / 60;
    let product = state.settings.mail.product_name.as_str();
    let text = ResetText { product, url, username, minutes }.render().unwrap_or_default();
    let html = ResetHtml { product, url, username, minutes }.render().unwrap_or_default();
    Mail { to: to.to_owned(), subject: format!("Reset your {product} password"), text, html }
}

#[derive(Template)]
#[template(path = "mail/methods_changed.txt")]
struct ChangedText<'a> {
    product: &'a str,
    what: &'a str,
    username: &'a str,
    forgot: &'a str,
    security: &'a str,
    signed_out: &'a str,
}

#[derive(Template)]
#[template(path = "mail/methods_changed.html")]
struct ChangedHtml<'a> {
    product: &'a str,
    what: &'a str,
    username: &'a str,
    forgot: &'a str,
    security: &'a str,
    signed_out: &'a str,
}

/// A sign-in method changed (`what`, e.g. "Your password was changed."); `signed_out` says
/// who was signed out because of it.
pub fn methods_changed(state: &AppState, to: &str, username: &str, what: &str, signed_out: &str) -> Mail {
    let forgot = state.url(super::forgot::PAGE);
    let security = state.url(super::security::PAGE);
    let (forgot, security) = (forgot.as_str(), security.as_str());
    let product = state.settings.mail.product_name.as_str();
    let text = ChangedText { product, what, username, forgot, security, signed_out }.render().unwrap_or_default();
    let html = ChangedHtml { product, what, username, forgot, security, signed_out }.render().unwrap_or_default();
    let subject = match what.contains("password") {
        true => format!("Your {product} password was changed"),
        false => format!("Your {product} sign-in methods changed"),
    };
    Mail { to: to.to_owned(), subject, text, html }
}

#[derive(Template)]
#[template(path = "mail/account_deleted.txt")]
struct DeletedText<'a> {
    product: &'a str,
    username: &'a str,
}

#[derive(Template)]
#[template(path = "mail/account_deleted.html")]
struct DeletedHtml<'a> {
    product: &'a str,
    username: &'a str,
}

/// The account is gone, with what went with it.
pub fn account_deleted(state: &AppState, to: &str, username: &str) -> Mail {
    let product = state.settings.mail.product_name.as_str();
    let text = DeletedText { product, username }.render().unwrap_or_default();
    let html = DeletedHtml { product, username }.render().unwrap_or_default();
    Mail { to: to.to_owned(), subject: format!("Your {product} account was deleted"), text, html }
}
