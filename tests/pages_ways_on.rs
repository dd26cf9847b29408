//! Pages outside sign-in and consent: the signed-in home page leads to the account pages, every
//! error and signed-out page offers a way on, and the stylesheet meets WCAG 2.1 AA contrast for
//! the footer text (1.4.3, 4.5:1) and input borders (1.4.11, 3:1).

mod common;

use common::*;

fn links(body: &str) -> Vec<String> {
    body.split("href=\"").skip(1).filter_map(|s| s.split('"').next()).map(str::to_owned).collect()
}

#[tokio::test]
async fn the_signed_in_home_page_links_to_the_account_pages() {
    let server = Server::start();
    server.add_alice();
    let client = server.first_party_client();
    let browser = server.browser();
    server.code_flow(&browser, &client, "openid").await;
    let home = browser.get(&server.url("/")).await;
    assert!(home.body.contains("signed in as"), "{home:?}");
    let l = links(&home.body);
    assert!(l.contains(&"/account/security".to_owned()) && l.contains(&"/account/linked".to_owned()), "{l:?}");
    for target in ["/account/security", "/account/linked"] {
        assert_eq!(browser.get(&server.url(target)).await.status, 200, "{target}");
    }
}

#[tokio::test]
async fn error_and_signed_out_pages_offer_a_way_on() {
    let server = Server::start();
    let signed_out_home = server.get("/").await;
    assert!(links(&signed_out_home.body).contains(&"/account/security".to_owned()), "{signed_out_home:?}");
    // Signed out, the account link starts a sign-in rather than failing.
    let r = server.get("/account/security").await;
    assert!(r.is_redirect() || r.status == 200, "{r:?}");

    let not_found = server.get("/no-such-page").await;
    assert_eq!(not_found.status, 404);
    let bad_request = server.get("/authorize").await;
    assert_eq!(bad_request.status, 400);
    for page in [not_found, bad_request] {
        assert!(links(&page.body).contains(&"/".to_owned()), "no way on: {page:?}");
    }

    server.add_alice();
    let client = server.first_party_client();
    let browser = server.browser();
    let tokens = server.code_flow(&browser, &client, "openid").await;
    let page = browser.get(&server.url(&format!("/logout?id_token_hint={}", tokens.id_token()))).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("signed out"), "{page:?}");
    assert!(!links(&page.body).is_empty(), "the signed-out page leads nowhere: {page:?}");
}

/// WCAG 2.1 relative luminance of `#rrggbb`.
fn luminance(hex: &str) -> f64 {
    let c = |i: usize| {
        let v = u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap() as f64 / 255.0;
        if v <= 0.03928 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
    };
    0.2126 * c(0) + 0.7152 * c(1) + 0.0722 * c(2)
}

fn contrast(a: &str, b: &str) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// The value of `property` in the stylesheet rule whose selector is `selector`.
fn css(sheet: &str, selector: &str, property: &str) -> String {
    let rule = sheet.lines().find(|l| l.starts_with(&format!("{selector}{{"))).unwrap_or_else(|| panic!("{selector}"));
    let body = rule.split_once('{').unwrap().1.trim_end_matches('}');
    let value = body.split(';').find_map(|d| d.strip_prefix(&format!("{property}:"))).unwrap();
    value.split_whitespace().find(|w| w.starts_with('#')).unwrap_or(value).to_owned()
}

#[tokio::test]
async fn footer_text_and_input_borders_meet_wcag_aa() {
    let server = Server::start();
    let sheet = server.get("/assets/style.css").await.body;
    let page = css(&sheet, "body", "background");
    let footer = css(&sheet, "footer", "color");
    assert!(contrast(&footer, &page) >= 4.5, "footer {footer} on {page}: {:.2}", contrast(&footer, &page));
    let border = css(&sheet, "input[type=text],input[type=password],input[type=email]", "border");
    assert!(contrast(&border, "#ffffff") >= 3.0, "input border {border}: {:.2}", contrast(&border, "#ffffff"));
}
