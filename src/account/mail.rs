//! The account's own mail: a password reset link, "your password was changed", "your sign-in
//! methods changed" and "your account was deleted". Each says what happened and what to do if
//! it was not the person, in a text and an HTML body from `templates/mail/`, naming the
//! operator's product (`mail.product_name`).

use crate::mail::Mail;
use crate::pages::Template;
use crate::state::AppState;

#[derive(serde::Serialize)]
struct ResetText<'a> {
    product: &'a str,
    url: &'a str,
    username: &'a str,
    minutes: i64,
}

crate::pages::template!(ResetText<'a>, "mail/password_reset.txt");

#[derive(serde::Serialize)]
struct ResetHtml<'a> {
    product: &'a str,
    url: &'a str,
    username: &'a str,
    minutes: i64,
}

crate::pages::template!(ResetHtml<'a>, "mail/password_reset.html");

/// The link that sets a new password.
pub fn reset_link(state: &AppState, to: &str, username: &str, url: &str) -> Mail {
    let minutes = (state.settings.tokens.reset_ttl.max(60) + 59) / 60;
    let product = state.settings.mail.product_name.as_str();
    let text = ResetText { product, url, username, minutes }.render().unwrap_or_default();
    let html = ResetHtml { product, url, username, minutes }.render().unwrap_or_default();
    Mail {
        to: to.to_owned(),
        subject: crate::pages::tr_with("Reset your %{product} password", &[("product", product)]),
        text,
        html,
    }
}

#[derive(serde::Serialize)]
struct ChangedText<'a> {
    product: &'a str,
    what: &'a str,
    username: &'a str,
    forgot: &'a str,
    security: &'a str,
    signed_out: &'a str,
}

crate::pages::template!(ChangedText<'a>, "mail/methods_changed.txt");

#[derive(serde::Serialize)]
struct ChangedHtml<'a> {
    product: &'a str,
    what: &'a str,
    username: &'a str,
    forgot: &'a str,
    security: &'a str,
    signed_out: &'a str,
}

crate::pages::template!(ChangedHtml<'a>, "mail/methods_changed.html");

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
        true => crate::pages::tr_with("Your %{product} password was changed", &[("product", product)]),
        false => crate::pages::tr_with("Your %{product} sign-in methods changed", &[("product", product)]),
    };
    Mail { to: to.to_owned(), subject, text, html }
}

#[derive(serde::Serialize)]
struct DeletedText<'a> {
    product: &'a str,
    username: &'a str,
}

crate::pages::template!(DeletedText<'a>, "mail/account_deleted.txt");

#[derive(serde::Serialize)]
struct DeletedHtml<'a> {
    product: &'a str,
    username: &'a str,
}

crate::pages::template!(DeletedHtml<'a>, "mail/account_deleted.html");

/// The account is gone, with what went with it.
pub fn account_deleted(state: &AppState, to: &str, username: &str) -> Mail {
    let product = state.settings.mail.product_name.as_str();
    let text = DeletedText { product, username }.render().unwrap_or_default();
    let html = DeletedHtml { product, username }.render().unwrap_or_default();
    Mail {
        to: to.to_owned(),
        subject: crate::pages::tr_with("Your %{product} account was deleted", &[("product", product)]),
        text,
        html,
    }
}
