//! The pages in the end-user's language and the operator's theme: `ui_locales` (OIDC Core
//! §3.1.2.1) carried through the whole sign-in flow, `Accept-Language` (RFC 9110 §12.5.4) by
//! q-value, the English default for anything else, `ui_locales_supported` in discovery; a theme
//! directory replacing a template and the stylesheet, and `config check` naming a theme template
//! that does not parse; WCAG 2.1 AA contrast of the built-in stylesheet's colours.

mod common;

use common::*;

const STYLESHEET: &str = include_str!("../templates/style.css");

fn params<'a>(c: &'a TestClient, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = auth_params(c, "openid email", "i18n-state", "i18n-nonce");
    p.extend_from_slice(extra);
    p
}

/// The `lang` of the page's `<html>` element.
fn html_lang(page: &Resp) -> String {
    let (_, attrs) = tags(&page.body, "html").into_iter().next().unwrap_or_else(|| panic!("no <html>: {page:?}"));
    attrs.get("lang").cloned().unwrap_or_default()
}

fn heading(page: &Resp) -> String {
    let doc = scraper::Html::parse_document(&page.body);
    let h1 = scraper::Selector::parse("h1").unwrap();
    doc.select(&h1).next().map(|e| e.text().collect::<String>()).unwrap_or_default()
}

#[tokio::test]
async fn ui_locales_de_keeps_the_whole_sign_in_flow_in_german() {
    let server = Server::start();
    server.add_alice();
    let c = server.confidential_client();
    let browser = server.browser();

    let r = browser.authorize(&params(&c, &[("ui_locales", "fr-CA de-DE en")])).await;
    let login = browser.follow(&r).await;
    assert_eq!(login.status, 200, "{login:?}");
    assert_eq!(html_lang(&login), "de", "{login:?}");
    assert_eq!(heading(&login), "Anmelden");
    assert!(login.body.contains("Benutzername oder E-Mail") && login.body.contains("Passwort vergessen?"), "{login:?}");
    assert!(login.body.contains("Geschützt durch Latchkey"), "the footer too: {login:?}");

    // A refused password: the message from the code, translated on the page of the same flow.
    let form = login_form(&login).unwrap();
    let wrong = browser.submit(&form, &[("username", USER), ("password", "not the password")]).await;
    let wrong = if wrong.is_redirect() { browser.follow(&wrong).await } else { wrong };
    assert_eq!(html_lang(&wrong), "de", "{wrong:?}");
    assert!(wrong.body.contains("Benutzername oder Passwort ist falsch."), "{wrong:?}");
    assert!(!wrong.body.contains("Invalid username or password."), "{wrong:?}");

    // The consent page, reached without any language header, still speaks German.
    let form = login_form(&wrong).unwrap();
    let r = browser.submit(&form, &[("username", USER), ("password", PASSWORD)]).await;
    let consent = browser.follow(&r).await;
    assert!(consent_form(&consent).is_some(), "{consent:?}");
    assert_eq!(html_lang(&consent), "de", "{consent:?}");
    assert!(consent.body.contains("wissen, wer Sie sind"), "scopes in German words: {consent:?}");
    assert!(consent.body.contains("Ihre E-Mail-Adresse sehen"), "{consent:?}");
    assert!(consent.body.contains(">Erlauben<") && consent.body.contains(">Ablehnen<"), "{consent:?}");

    // The flow completes as in English.
    let o = browser.complete(browser.consent(&consent, true).await, None, Decision::NotExpected).await;
    o.code();
}

#[tokio::test]
async fn accept_language_picks_german_by_q_value() {
    let server = Server::start();
    let c = server.confidential_client();
    let browser = server.browser();
    let r = browser.authorize(&params(&c, &[])).await;
    let url = browser.resolve(r.location().unwrap());

    let german =
        browser.send(browser.client.get(&url).header("accept-language", "fr-CH, fr;q=0.9, de;q=0.8, en;q=0.7")).await;
    assert_eq!(html_lang(&german), "de", "{german:?}");
    assert_eq!(heading(&german), "Anmelden");

    // English preferred over German: English, though German is listed first.
    let english = browser.send(browser.client.get(&url).header("accept-language", "de;q=0.5, en")).await;
    assert_eq!(html_lang(&english), "en", "{english:?}");
    assert_eq!(heading(&english), "Sign in");

    // An error page outside any flow follows the header too.
    let missing =
        browser.send(browser.client.get(browser.resolve("/no-such-page")).header("accept-language", "de")).await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Unter dieser Adresse gibt es nichts."), "{missing:?}");
}

#[tokio::test]
async fn an_unknown_locale_falls_back_to_english() {
    let server = Server::start();
    let c = server.confidential_client();
    let browser = server.browser();
    let r = browser.authorize(&params(&c, &[("ui_locales", "tlh x-klingon")])).await;
    let url = browser.resolve(r.location().unwrap());
    let page = browser.send(browser.client.get(&url).header("accept-language", "ja, zh;q=0.8")).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(html_lang(&page), "en", "{page:?}");
    assert_eq!(heading(&page), "Sign in");
    assert!(page.body.contains("Secured by Latchkey"), "{page:?}");

    // Discovery names exactly the shipped languages.
    let d = browser.get("/.well-known/openid-configuration").await.json();
    assert_eq!(d["ui_locales_supported"], serde_json::json!(["en", "de"]), "{d}");
}

#[tokio::test]
async fn ui_default_locale_sets_the_language_without_any_preference() {
    let server = Server::start_with(&[("LATCHKEY_UI_DEFAULT_LOCALE", "de")]);
    let page = server.browser().get("/").await;
    assert_eq!(html_lang(&page), "de", "{page:?}");
    assert!(page.body.contains("Sie sind nicht angemeldet."), "{page:?}");
}

#[tokio::test]
async fn a_theme_replaces_the_login_template_and_the_stylesheet() {
    let dir = std::env::temp_dir().join(format!("latchkey-theme-{}", random_string()));
    std::fs::create_dir_all(&dir).unwrap();
    let login = std::fs::read_to_string("templates/login_password.html")
        .unwrap()
        .replace("<h1>", "<p id=\"brand\">{{ _(\"Welcome to Example Corp\") }}</p>\n<h1>");
    std::fs::write(dir.join("login_password.html"), login).unwrap();
    std::fs::write(dir.join("style.css"), "body{background:#fff;color:#000}\n.brand{font-weight:700}\n").unwrap();
    let dir_s = dir.to_str().unwrap().to_owned();
    let server = Server::start_with(&[("LATCHKEY_UI_THEME_DIR", &dir_s)]);
    let c = server.confidential_client();
    let browser = server.browser();

    let r = browser.authorize(&params(&c, &[])).await;
    let page = browser.follow(&r).await;
    assert_eq!(element_text(&page, "brand").as_deref(), Some("Welcome to Example Corp"), "{page:?}");
    // The theme's page is the real one: it signs in.
    assert!(login_form(&page).is_some(), "{page:?}");
    // Templates the theme lacks are the built-in ones, the theme's own words stay as written
    // and the built-in words around them still translate.
    let german =
        browser.send(browser.client.get(browser.resolve(r.location().unwrap())).header("accept-language", "de")).await;
    assert_eq!(element_text(&german, "brand").as_deref(), Some("Welcome to Example Corp"), "{german:?}");
    assert_eq!(heading(&german), "Anmelden");
    let home = browser.get("/").await;
    assert!(home.body.contains("OpenID Connect provider"), "{home:?}");

    let css = browser.get("/assets/style.css").await;
    assert_eq!(css.status, 200);
    assert_eq!(css.media_type(), "text/css");
    assert!(css.body.contains(".brand{font-weight:700}") && !css.body.contains(".card{"), "{css:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `latchkey config check` with `env` only.
fn config_check(env: &[(&str, &str)]) -> (bool, String) {
    let data = std::env::temp_dir().join(format!("latchkey-theme-check-{}", random_string()));
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["config", "check"]).current_dir(std::env::temp_dir());
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("LATCHKEY_") && !k.starts_with("LATCHKEY_TEST")) {
        cmd.env_remove(name);
    }
    cmd.env("LATCHKEY_DATA_DIR", &data).env("LATCHKEY_KEYS_DIR", data.join("keys"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_dir_all(&data);
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn config_check_names_a_theme_template_that_does_not_parse() {
    let dir = std::env::temp_dir().join(format!("latchkey-theme-broken-{}", random_string()));
    std::fs::create_dir_all(dir.join("mail")).unwrap();
    std::fs::write(dir.join("consent.html"), "{% extends \"base.html\" %}{% block content %}ok{% endblock %}").unwrap();
    std::fs::write(dir.join("mail/sign_in_code.txt"), "Your code: {{ code }\n").unwrap();
    let dir_s = dir.to_str().unwrap().to_owned();

    let (ok, stderr) = config_check(&[("LATCHKEY_UI_THEME_DIR", &dir_s)]);
    assert!(!ok, "a broken theme passes config check: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line for the one broken file: {stderr}");
    assert!(lines[0].starts_with("ui.theme_dir: mail/sign_in_code.txt line 1"), "{stderr}");

    // Fixed, it passes; an unshipped default language does not.
    std::fs::write(dir.join("mail/sign_in_code.txt"), "Your code: {{ code }}\n").unwrap();
    let (ok, stderr) = config_check(&[("LATCHKEY_UI_THEME_DIR", &dir_s)]);
    assert!(ok, "{stderr}");
    let (ok, stderr) = config_check(&[("LATCHKEY_UI_DEFAULT_LOCALE", "tlh")]);
    assert!(!ok && stderr.contains("ui.default_locale"), "{stderr}");
    let (ok, stderr) = config_check(&[("LATCHKEY_UI_THEME_DIR", "/nonexistent/latchkey-theme")]);
    assert!(!ok && stderr.contains("ui.theme_dir: cannot read"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

// --- WCAG 2.1 AA contrast of the built-in stylesheet ---------------------------------------------

/// The declarations of each rule of `css`, by selector (one rule per selector list).
fn rules(css: &str) -> Vec<(String, Vec<(String, String)>)> {
    css.split('}')
        .filter_map(|rule| {
            let (selector, body) = rule.split_once('{')?;
            let decls = body
                .split(';')
                .filter_map(|d| d.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            Some((selector.trim().to_owned(), decls))
        })
        .collect()
}

/// `property` of the rule whose selector list contains `selector` exactly.
fn value(css: &str, selector: &str, property: &str) -> String {
    rules(css)
        .into_iter()
        .filter(|(sel, _)| sel.split(',').any(|s| s.trim() == selector))
        .flat_map(|(_, decls)| decls)
        .filter(|(k, _)| k == property)
        .map(|(_, v)| v)
        .next_back()
        .unwrap_or_else(|| panic!("no {property} for {selector} in the stylesheet"))
}

/// The `#rgb`/`#rrggbb` colour in a declaration (`1px solid #6b7280`).
fn colour(v: &str) -> [f64; 3] {
    let hex = v.split_whitespace().find(|w| w.starts_with('#')).unwrap_or_else(|| panic!("no colour in {v:?}"));
    let hex = &hex[1..];
    let hex: String = if hex.len() == 3 { hex.chars().flat_map(|c| [c, c]).collect() } else { hex.to_owned() };
    let n = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap() as f64;
    [n(0), n(2), n(4)]
}

/// WCAG 2.1 relative luminance.
fn luminance([r, g, b]: [f64; 3]) -> f64 {
    let c = |v: f64| {
        let s = v / 255.0;
        if s <= 0.03928 { s / 12.92 } else { ((s + 0.055) / 1.055).powf(2.4) }
    };
    0.2126 * c(r) + 0.7152 * c(g) + 0.0722 * c(b)
}

fn ratio(a: [f64; 3], b: [f64; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[test]
fn contrast_arithmetic_matches_known_pairs() {
    assert!((ratio([0.0; 3], [255.0; 3]) - 21.0).abs() < 0.01);
    assert!((ratio(colour("#777"), colour("#fff")) - 4.48).abs() < 0.01, "#777 on white is 4.48:1");
    assert_eq!(colour("1px solid #6b7280"), [107.0, 114.0, 128.0]);
}

#[test]
fn built_in_colours_meet_wcag_aa() {
    let css = STYLESHEET;
    let page = colour(&value(css, "body", "background"));
    let card = colour(&value(css, ".card", "background"));
    // (what, foreground, background, minimum): text 4.5:1 (1.4.3), component borders 3:1 (1.4.11).
    let mut checks = vec![
        ("footer text on the page", colour(&value(css, "footer", "color")), page, 4.5),
        ("body text on the card", colour(&value(css, "body", "color")), card, 4.5),
        ("sub-heading text", colour(&value(css, ".sub", "color")), card, 4.5),
        ("detail text", colour(&value(css, ".detail", "color")), card, 4.5),
        ("button text", colour(&value(css, "button", "color")), colour(&value(css, "button", "background")), 4.5),
        (
            "secondary button text",
            colour(&value(css, "button.secondary", "color")),
            colour(&value(css, "button.secondary", "background")),
            4.5,
        ),
        ("secondary button border", colour(&value(css, "button.secondary", "border")), card, 3.0),
        ("error text", colour(&value(css, ".error", "color")), colour(&value(css, ".error", "background")), 4.5),
        ("notice text", colour(&value(css, ".notice", "color")), colour(&value(css, ".notice", "background")), 4.5),
        ("focus outline", colour(&value(css, "input:focus", "outline")), card, 3.0),
    ];
    for input in ["input[type=text]", "input[type=password]", "input[type=email]", "input[type=tel]", "select"] {
        checks.push(("input border", colour(&value(css, input, "border")), card, 3.0));
        checks.push((
            "input border",
            colour(&value(css, input, "border")),
            colour(&value(css, input, "background")),
            3.0,
        ));
    }
    let failures: Vec<String> = checks
        .iter()
        .filter(|(_, fg, bg, min)| ratio(*fg, *bg) < *min)
        .map(|(what, fg, bg, min)| format!("{what}: {:.2}:1, needs {min}:1", ratio(*fg, *bg)))
        .collect();
    assert!(failures.is_empty(), "contrast below WCAG 2.1 AA: {failures:#?}");
}
