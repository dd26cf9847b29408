//! The templates pages and mails are rendered from, and the stylesheet: the built-in ones,
//! compiled in, each replaced by the file of the same name in the operator's theme directory
//! (`ui.theme_dir`) when there is one. A theme holds only what it changes; a file it lacks is the
//! built-in one. Templates are minijinja (Jinja2) with HTML autoescaping for `.html` files.

use super::i18n;
use minijinja::{AutoEscape, Environment, Value};
use std::path::Path;

/// Every built-in template, by the name templates and the code use.
const BUILT_IN: &[(&str, &str)] = &[
    ("account_activity.html", include_str!("../../templates/account_activity.html")),
    ("account_delete.html", include_str!("../../templates/account_delete.html")),
    ("account_email_enrol.html", include_str!("../../templates/account_email_enrol.html")),
    ("account_linked.html", include_str!("../../templates/account_linked.html")),
    ("account_notice.html", include_str!("../../templates/account_notice.html")),
    ("account_passkey_enrol.html", include_str!("../../templates/account_passkey_enrol.html")),
    ("account_password.html", include_str!("../../templates/account_password.html")),
    ("account_password_forgot.html", include_str!("../../templates/account_password_forgot.html")),
    ("account_password_reset.html", include_str!("../../templates/account_password_reset.html")),
    ("account_phone_confirm.html", include_str!("../../templates/account_phone_confirm.html")),
    ("account_profile.html", include_str!("../../templates/account_profile.html")),
    ("account_recovery_codes.html", include_str!("../../templates/account_recovery_codes.html")),
    ("account_security.html", include_str!("../../templates/account_security.html")),
    ("account_sessions.html", include_str!("../../templates/account_sessions.html")),
    ("account_totp_enrol.html", include_str!("../../templates/account_totp_enrol.html")),
    ("base.html", include_str!("../../templates/base.html")),
    ("consent.html", include_str!("../../templates/consent.html")),
    ("demo_callback.html", include_str!("../../templates/demo_callback.html")),
    ("device_approve.html", include_str!("../../templates/device_approve.html")),
    ("device_code.html", include_str!("../../templates/device_code.html")),
    ("device_done.html", include_str!("../../templates/device_done.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("fields.html", include_str!("../../templates/fields.html")),
    ("form_post.html", include_str!("../../templates/form_post.html")),
    ("gateway_sign_out.html", include_str!("../../templates/gateway_sign_out.html")),
    ("home.html", include_str!("../../templates/home.html")),
    ("logged_out.html", include_str!("../../templates/logged_out.html")),
    ("login_code.html", include_str!("../../templates/login_code.html")),
    ("login_email.html", include_str!("../../templates/login_email.html")),
    ("login_link_address.html", include_str!("../../templates/login_link_address.html")),
    ("login_link_confirm.html", include_str!("../../templates/login_link_confirm.html")),
    ("login_link_elsewhere.html", include_str!("../../templates/login_link_elsewhere.html")),
    ("login_link_expired.html", include_str!("../../templates/login_link_expired.html")),
    ("login_link_waiting.html", include_str!("../../templates/login_link_waiting.html")),
    ("login_passkey.html", include_str!("../../templates/login_passkey.html")),
    ("login_password.html", include_str!("../../templates/login_password.html")),
    ("login_phone.html", include_str!("../../templates/login_phone.html")),
    ("login_recovery_notice.html", include_str!("../../templates/login_recovery_notice.html")),
    ("login_switch.html", include_str!("../../templates/login_switch.html")),
    ("login_upstream_error.html", include_str!("../../templates/login_upstream_error.html")),
    ("logout_confirm.html", include_str!("../../templates/logout_confirm.html")),
    ("signup_check_email.html", include_str!("../../templates/signup_check_email.html")),
    ("signup_confirm.html", include_str!("../../templates/signup_confirm.html")),
    ("signup_confirmed.html", include_str!("../../templates/signup_confirmed.html")),
    ("signup_expired.html", include_str!("../../templates/signup_expired.html")),
    ("signup_form.html", include_str!("../../templates/signup_form.html")),
    ("mail/account_deleted.html", include_str!("../../templates/mail/account_deleted.html")),
    ("mail/account_deleted.txt", include_str!("../../templates/mail/account_deleted.txt")),
    ("mail/email_changed.html", include_str!("../../templates/mail/email_changed.html")),
    ("mail/email_changed.txt", include_str!("../../templates/mail/email_changed.txt")),
    ("mail/gateway_new_device.html", include_str!("../../templates/mail/gateway_new_device.html")),
    ("mail/gateway_new_device.txt", include_str!("../../templates/mail/gateway_new_device.txt")),
    ("mail/methods_changed.html", include_str!("../../templates/mail/methods_changed.html")),
    ("mail/methods_changed.txt", include_str!("../../templates/mail/methods_changed.txt")),
    ("mail/password_reset.html", include_str!("../../templates/mail/password_reset.html")),
    ("mail/password_reset.txt", include_str!("../../templates/mail/password_reset.txt")),
    ("mail/sign_in_code.html", include_str!("../../templates/mail/sign_in_code.html")),
    ("mail/sign_in_code.txt", include_str!("../../templates/mail/sign_in_code.txt")),
    ("mail/sign_in_link.html", include_str!("../../templates/mail/sign_in_link.html")),
    ("mail/sign_in_link.txt", include_str!("../../templates/mail/sign_in_link.txt")),
    ("mail/signup_existing.html", include_str!("../../templates/mail/signup_existing.html")),
    ("mail/signup_existing.txt", include_str!("../../templates/mail/signup_existing.txt")),
    ("mail/verify_email.html", include_str!("../../templates/mail/verify_email.html")),
    ("mail/verify_email.txt", include_str!("../../templates/mail/verify_email.txt")),
];

const STYLESHEET: &str = include_str!("../../templates/style.css");

/// The file a theme replaces the stylesheet with.
const STYLESHEET_FILE: &str = "style.css";

/// The templates and the stylesheet one server renders with.
pub struct Theme {
    env: Environment<'static>,
    stylesheet: String,
}

impl Theme {
    /// The built-in templates and stylesheet.
    pub fn built_in() -> Self {
        Self::from_overrides(Vec::new(), None).expect("the built-in templates parse (tests render each)")
    }

    /// The built-in templates with `dir`'s files in their place; every template is parsed now,
    /// so a broken theme stops the start rather than a page.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let Some(dir) = dir else { return Ok(Self::built_in()) };
        let files = read_dir(dir)?;
        let (css, templates): (Vec<_>, Vec<_>) = files.into_iter().partition(|(name, _)| name == STYLESHEET_FILE);
        Self::from_overrides(templates, css.into_iter().next().map(|(_, text)| text))
            .map_err(|e| anyhow::anyhow!("ui.theme_dir: {}", describe(&e)))
    }

    fn from_overrides(templates: Vec<(String, String)>, stylesheet: Option<String>) -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        // `.txt` mails are plain text; everything else a theme adds is HTML.
        env.set_auto_escape_callback(|name| if name.ends_with(".txt") { AutoEscape::None } else { AutoEscape::Html });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // Strings are escaped as askama did (`& < > " '`); minijinja's own escaping also turns
        // every `/` of a URL into `&#x2f;`, which HTML does not need.
        env.set_formatter(|out, state, value| match value.as_str() {
            Some(s) if matches!(state.auto_escape(), AutoEscape::Html) && !value.is_safe() => {
                Ok(out.write_str(&i18n::escape(s))?)
            }
            _ => minijinja::escape_formatter(out, state, value),
        });
        i18n::install(&mut env);
        for (name, source) in BUILT_IN {
            if !templates.iter().any(|(n, _)| n.as_str() == *name) {
                env.add_template(name, source)?;
            }
        }
        for (name, source) in templates {
            env.add_template_owned(name, source)?;
        }
        Ok(Self { env, stylesheet: stylesheet.unwrap_or_else(|| STYLESHEET.to_owned()) })
    }

    /// Renders template `name` with `page`'s fields and `lang`, the page's language.
    pub fn render(&self, name: &str, page: Value, lang: &str) -> Result<String, minijinja::Error> {
        let ctx = minijinja::context! { lang => lang, ..page };
        self.env.get_template(name)?.render(ctx)
    }

    /// The stylesheet served as `/assets/style.css`.
    pub fn stylesheet(&self) -> &str {
        &self.stylesheet
    }
}

/// What `config check` reports of a theme directory: one line per file that cannot be read or
/// does not parse.
pub fn problems(dir: &Path) -> Vec<String> {
    let files = match read_dir(dir) {
        Ok(files) => files,
        Err(e) => return vec![format!("ui.theme_dir: {e:#}")],
    };
    let mut env = Environment::new();
    let mut out = Vec::new();
    for (name, source) in files.iter().filter(|(n, _)| n != STYLESHEET_FILE) {
        if let Err(e) = env.add_template(name, source) {
            out.push(format!("ui.theme_dir: {}", describe(&e)));
        }
    }
    out
}

/// A template error in one line: the file, the line and what is wrong.
fn describe(e: &minijinja::Error) -> String {
    let place = match (e.name(), e.line()) {
        (Some(name), Some(line)) => format!("{name} line {line}: "),
        (Some(name), None) => format!("{name}: "),
        _ => String::new(),
    };
    format!("{place}{}", e.detail().unwrap_or("does not parse"))
}

/// The theme's files by template name (`mail/` for the mails' folder): templates and the
/// stylesheet.
fn read_dir(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (sub, prefix) in [(dir.to_path_buf(), ""), (dir.join("mail"), "mail/")] {
        if prefix == "mail/" && !sub.is_dir() {
            continue;
        }
        let entries = std::fs::read_dir(&sub).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", sub.display()))?;
        for entry in entries {
            let path = entry?.path();
            let Some(file) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if !path.is_file() || !(file.ends_with(".html") || file.ends_with(".txt") || file == STYLESHEET_FILE) {
                continue;
            }
            let text =
                std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            out.push((format!("{prefix}{file}"), text));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_theme_replaces_one_template_and_keeps_the_others() {
        let theme = Theme::from_overrides(vec![("home.html".into(), "themed {{ lang }}".into())], None).unwrap();
        let page = Value::from(minijinja::value::Serde(
            serde_json::json!({ "issuer": "https://id.example", "username": null }),
        ));
        assert_eq!(theme.render("home.html", page, "de").unwrap(), "themed de");
        assert!(theme.env.get_template("login_password.html").is_ok());
        assert_eq!(theme.stylesheet(), STYLESHEET);
    }
}
