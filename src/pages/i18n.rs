//! The pages' language: which one a request gets, and the translations templates call.
//!
//! The English text written in the templates and in the code is the message itself and its key:
//! `locales/*.yml` (compiled in through `rust-i18n`) maps it to each other shipped language, and
//! text without a translation stays English. Templates translate their own words with
//! `{{ _("Sign in") }}` (markup allowed in the message, `%{name}` arguments escaped),
//! `{{ _n("One code left.", "%{count} codes left.", n) }}` for a count, and words that come
//! from the code (error and notice lines) with `{{ error|t }}`.
//!
//! Negotiation (OIDC Core §3.1.2.1 `ui_locales`, RFC 9110 §12.5.4 `Accept-Language`): the
//! sign-in flow's `ui_locales`, else the browser's `Accept-Language` by q-value, else
//! `ui.default_locale`.

use minijinja::value::Kwargs;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, Value};

rust_i18n::i18n!("locales");

/// The language the templates are written in.
pub const SOURCE: &str = "en";

/// Every language the pages and mails are shipped in (`ui_locales_supported`), the source
/// language first.
pub fn shipped() -> Vec<String> {
    let mut out = vec![SOURCE.to_owned()];
    for l in _rust_i18n_available_locales() {
        if l != SOURCE {
            out.push(l.into_owned());
        }
    }
    out
}

/// The shipped language `tag` names: itself, or its primary language (`de-AT` → `de`).
pub fn supported(tag: &str) -> Option<String> {
    let tag = tag.trim().to_ascii_lowercase();
    let primary = tag.split('-').next().unwrap_or_default();
    let shipped = shipped();
    shipped.iter().find(|l| l.to_ascii_lowercase() == tag).or_else(|| shipped.iter().find(|l| *l == primary)).cloned()
}

/// The first shipped language of a `ui_locales` value (space-separated BCP 47 tags, in order of
/// preference).
pub fn from_ui_locales(ui_locales: &str) -> Option<String> {
    ui_locales.split(' ').filter(|t| !t.is_empty()).find_map(supported)
}

/// The shipped language an `Accept-Language` header prefers most (highest q, then the first
/// listed); `q=0` means "not this one".
pub fn from_accept_language(header: &str) -> Option<String> {
    let mut ranges: Vec<(u16, usize, &str)> = header
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.split(';');
            let tag = pieces.next()?.trim();
            let q = pieces
                .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (!tag.is_empty() && q > 0.0).then_some(((q.clamp(0.0, 1.0) * 1000.0) as u16, i, tag))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges.into_iter().find_map(|(_, _, tag)| supported(tag))
}

/// `text` in `lang`, or `text` itself when it has no translation there.
pub fn translate(lang: &str, text: &str) -> String {
    if lang == SOURCE {
        return text.to_owned();
    }
    _rust_i18n_try_translate(lang, text).map_or_else(|| text.to_owned(), |t| t.into_owned())
}

/// Adds `_`, `_n` and the `t` filter to `env`.
pub fn install(env: &mut Environment<'static>) {
    env.add_function("_", message);
    env.add_function("_n", plural);
    env.add_filter("t", text);
}

/// The page's language, from the context every page is rendered with.
fn lang(state: &State) -> String {
    state.lookup("lang").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| SOURCE.to_owned())
}

/// `_("message", name=value…)`: the template's own words, translated; they may hold markup, the
/// arguments are escaped.
fn message(state: &State, msg: &str, args: Kwargs) -> Result<Value, Error> {
    fill(state, &translate(&lang(state), msg), &args)
}

/// `_n("singular", "plural", count, name=value…)`: the singular for a count of one (English and
/// German alike), with `%{count}` filled in.
fn plural(state: &State, one: &str, many: &str, count: i64, args: Kwargs) -> Result<Value, Error> {
    let msg = translate(&lang(state), if count == 1 { one } else { many });
    fill(state, &msg.replace("%{count}", &count.to_string()), &args)
}

/// `{{ value|t }}`: words that come from the code, translated; escaped as any value is.
fn text(state: &State, value: &str) -> String {
    translate(&lang(state), value)
}

fn fill(state: &State, msg: &str, args: &Kwargs) -> Result<Value, Error> {
    let html = !matches!(state.auto_escape(), AutoEscape::None);
    let mut out = msg.to_owned();
    for name in args.args() {
        let value: Value = args.get(name)?;
        let shown = value.to_string();
        let shown = if html && !value.is_safe() { escape(&shown) } else { shown };
        out = out.replace(&format!("%{{{name}}}"), &shown);
    }
    if out.contains("%{") {
        return Err(Error::new(ErrorKind::MissingArgument, format!("an argument of \"{msg}\" is not given")));
    }
    Ok(if html { Value::from_safe_string(out) } else { Value::from(out) })
}

/// `s` as HTML text or a quoted attribute value.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_goes_by_q_value_then_order() {
        assert_eq!(from_accept_language("fr-CH, fr;q=0.9, de;q=0.8, en;q=0.7").as_deref(), Some("de"));
        assert_eq!(from_accept_language("en;q=0.5, de-AT").as_deref(), Some("de"));
        assert_eq!(from_accept_language("de;q=0, en").as_deref(), Some("en"));
        assert_eq!(from_accept_language("fr, ja").as_deref(), None);
        assert_eq!(from_accept_language("").as_deref(), None);
    }

    #[test]
    fn ui_locales_takes_the_first_shipped_tag() {
        assert_eq!(from_ui_locales("fr-CA de en").as_deref(), Some("de"));
        assert_eq!(from_ui_locales("xx").as_deref(), None);
    }

    #[test]
    fn untranslated_text_stays_english() {
        assert_eq!(translate("de", "Sign in"), "Anmelden");
        assert_eq!(translate("de", "No such sentence in any catalogue."), "No such sentence in any catalogue.");
        assert_eq!(translate("en", "Sign in"), "Sign in");
    }
}
