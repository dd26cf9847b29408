//! Accounts people create themselves (issue #13): sign-up from the sign-in page with the fields
//! the operator chose, each rule refused with its own message; a pending account confirmed by
//! its link or code and then signed in to the client that asked, as an independent RP sees it;
//! usernames and emails one account whatever their case (and a migration that reports old
//! conflicts instead of failing); a taken email answered like a free one, with no mail to
//! create anything and in similar time; the profile page; the JSON API; a real browser.

mod common;

#[path = "accounts_signup/api.rs"]
mod api;
#[path = "accounts_signup/browser.rs"]
mod browser;
#[path = "accounts_signup/fields.rs"]
mod field_rules;
#[path = "accounts_signup/identity.rs"]
mod identity;
#[path = "accounts_signup/profile.rs"]
mod profile;

use common::mail::Received;
use common::*;
use std::time::Duration;

/// A password the default policy accepts.
pub const NEW_PASSWORD: &str = "violet harbour tangent 92";

/// Sign-up on, asking for every kind of field; Bangladeshi numbers by default; adults only.
pub const ENV: &[(&str, &str)] = &[
    ("LATCHKEY_REGISTRATION_ENABLED", "true"),
    (
        "LATCHKEY_REGISTRATION_FIELDS",
        "given_name=required,family_name=optional,birthdate=optional,gender=optional,phone_number=optional,username=optional",
    ),
    ("LATCHKEY_REGISTRATION_MIN_AGE", "16"),
    ("LATCHKEY_REGISTRATION_PHONE_REGION", "BD"),
    ("LATCHKEY_REGISTRATION_EMAIL_DOMAINS_DENIED", "mailinator.com"),
    ("LATCHKEY_MAIL_PRODUCT_NAME", "Acme ID"),
];

/// Every field valid.
pub fn valid(email: &str) -> Vec<(&'static str, String)> {
    [
        ("given_name", "Rahim"),
        ("family_name", "Uddin-Chowdhury"),
        ("birthdate", "1990-04-23"),
        ("gender", "male"),
        ("phone_number", "01712345678"),
        ("password", NEW_PASSWORD),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .chain([("email", email.to_owned())])
    .collect()
}

pub fn fields<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    v.iter().map(|(k, s)| (*k, s.as_str())).collect()
}

/// A browser at the sign-up form of an authorization request by `client`.
pub async fn signup_form(server: &Server, client: &TestClient) -> (Browser, Form) {
    let browser = server.browser();
    let p = auth_params(client, "openid email profile", "st", "n");
    let login = browser.follow(&browser.authorize(&p).await).await;
    let page = browser.switch_to(&login, "signup").await;
    assert_eq!(page.status, 200, "{page:?}");
    let form = form_with(&page, "/login/", "given_name").unwrap_or_else(|| panic!("sign-up form: {page:?}"));
    (browser, form)
}

/// The path of the confirmation link in a mail (quoted-printable soft breaks undone).
pub fn link_in(mail: &Received) -> String {
    let text = mail.raw.replace("=\r\n", "");
    let start = text.find("/login/signup/").unwrap_or_else(|| panic!("no link: {mail:?}"));
    let rest = &text[start..];
    let end = rest.find("/callback").unwrap_or_else(|| panic!("no link end: {mail:?}")) + "/callback".len();
    rest[..end].to_owned()
}

/// The 6-digit code of a verification mail.
pub fn code_in(mail: &Received) -> String {
    let text = mail.raw.replace("=\r\n", "");
    let after =
        text.split("type this code on the page that asked for it: ").nth(1).unwrap_or_else(|| panic!("{mail:?}"));
    let code: String = after.chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{mail:?}");
    code
}

/// Mail goes out off the request path: waits (briefly) for `n` messages to `to`.
pub async fn wait_mail(server: &Server, to: &str, n: usize) -> Vec<Received> {
    for _ in 0..100 {
        let mail = server.mail_to(to);
        if mail.len() >= n {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("expected {n} mail(s) to {to}, got {:?}", server.mail_to(to));
}

/// The verification mails to `to` (not notices).
pub fn verifications(server: &Server, to: &str) -> Vec<Received> {
    server.mail_to(to).into_iter().filter(|m| m.header("Subject").is_some_and(|s| s.starts_with("Confirm"))).collect()
}

/// Opens a confirmation link: GET shows a button (and uses nothing), POST confirms.
pub async fn confirm_link(browser: &Browser, link: &str) -> Resp {
    let page = browser.get(link).await;
    assert_eq!(page.status, 200, "{page:?}");
    let form = page.forms().into_iter().find(|f| f.action.ends_with("/callback")).unwrap_or_else(|| panic!("{page:?}"));
    browser.submit(&form, &[]).await
}

/// The status of the account with `email` (through the CLI: the stored email is sealed).
pub fn status_of(server: &Server, email: &str) -> Vec<String> {
    let user = server.cli(&["users", "show", email, "--json"]);
    vec![user["status"].as_str().unwrap_or_else(|| panic!("{user}")).to_owned()]
}

#[tokio::test]
async fn pending_until_the_link_then_signed_in_to_the_client_as_an_independent_rp_sees_it() {
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
    use openidconnect::{
        AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, Scope,
        TokenResponse,
    };
    let server = Server::start_with(ENV);
    let c = server.confidential_client();
    let http = server.rp_http();
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(server.issuer.clone()).unwrap(), &http)
        .await
        .expect("discovery");
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(c.id.clone()),
        Some(ClientSecret::new(c.secret().into())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.to_string()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _csrf, nonce) = rp
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("phone".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = server.browser();
    let login = browser.follow(&browser.send(browser.client.get(url.as_str())).await).await;
    let offered =
        switch_form(&login, "signup").unwrap_or_else(|| panic!("sign-up offered on the sign-in page: {login:?}"));
    assert!(offered.has_button("switch", "signup"));
    let page = browser.switch_to(&login, "signup").await;
    for (name, token) in [
        ("given_name", "given-name"),
        ("family_name", "family-name"),
        ("birthdate", "bday"),
        ("gender", "sex"),
        ("phone_number", "tel"),
        ("username", "username"),
        ("email", "email"),
        ("password", "new-password"),
    ] {
        let tag = page.body.split(&format!("id=\"{name}\"")).nth(1).unwrap_or_else(|| panic!("{name}: {page:?}"));
        let tag = &tag[..tag.find('>').unwrap()];
        assert!(tag.contains(&format!("autocomplete=\"{token}\"")), "{name} has autocomplete {token}: {tag}");
        assert!(page.body.contains(&format!("<label for=\"{name}\">")), "{name} is labelled");
    }
    let form = form_with(&page, "/login/", "given_name").unwrap();
    let v = valid("rahim@example.com");
    let sent = browser.submit(&form, &fields(&v)).await;
    assert_eq!(sent.status, 200, "{sent:?}");
    assert!(element_text(&sent, "notice").unwrap().contains("r•••@example.com"), "{sent:?}");
    assert_eq!(status_of(&server, "rahim@example.com"), ["pending"]);
    let claims = server.cli(&["users", "show", "rahim@example.com", "--json"])["claims"].clone();
    assert_eq!(claims["phone_number"], "+8801712345678", "stored E.164: {claims}");
    assert_eq!(claims["email_verified"], false, "{claims}");

    // Pending: the password alone signs in nowhere.
    let other = server.browser();
    let again = other.follow(&other.authorize(&auth_params(&c, "openid", "s2", "n2")).await).await;
    let r = other.login(&again, "rahim@example.com", NEW_PASSWORD).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("Confirm your email"), "{r:?}");
    assert!(r.location().is_none());

    let mail = wait_mail(&server, "rahim@example.com", 1).await;
    assert_eq!(mail[0].header("Subject"), Some("Confirm your email for Acme ID"));
    assert!(mail[0].has_html_part() && mail[0].raw.contains("If this was not you"), "{:?}", mail[0]);
    // The first mail's link (the second browser's sign-in sent a newer one to its own flow).
    let link = link_in(&mail[0]);
    server.browser().get(&link).await; // a mail scanner's GET uses nothing
    let r = confirm_link(&browser, &link).await;
    assert_eq!(r.status, 303, "{r:?}");
    let outcome = browser.complete(r, None, Decision::Allow).await;
    assert_eq!(outcome.target, CALLBACK);
    assert_eq!(status_of(&server, "rahim@example.com"), ["active"]);

    let token = rp
        .exchange_code(AuthorizationCode::new(outcome.code()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = token.id_token().expect("id_token");
    let claims = id_token.claims(&rp.id_token_verifier(), &nonce).expect("the RP verifies the ID token");
    let userinfo: CoreUserInfoClaims = rp
        .user_info(openidconnect::OAuth2TokenResponse::access_token(&token).clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(userinfo.email().map(|e| e.as_str()), Some("rahim@example.com"));
    assert_eq!(userinfo.email_verified(), Some(true));
    assert_eq!(userinfo.phone_number().map(|p| p.as_str()), Some("+8801712345678"));
    assert_eq!(jwt_claims(&id_token.to_string())["amr"], serde_json::json!(["otp"]));

    // Spent.
    assert_eq!(browser.get(&link).await.status, 400);
}

#[tokio::test]
async fn the_code_confirms_on_the_page_and_send_again_waits_a_minute() {
    let server = Server::start_with(ENV);
    let c = server.first_party_client();
    let (browser, form) = signup_form(&server, &c).await;
    let v = valid("code@example.com");
    let page = browser.submit(&form, &fields(&v)).await;
    let first = code_in(&wait_mail(&server, "code@example.com", 1).await[0]);

    let resend = page.forms().into_iter().find(|f| f.has_button("resend", "1")).unwrap_or_else(|| panic!("{page:?}"));
    let r = browser.submit(&resend, &[("resend", "1")]).await;
    assert!(r.body.contains("Wait a minute"), "send again is throttled: {r:?}");
    server.advance(61);
    let r = browser.submit(&resend, &[("resend", "1")]).await;
    assert!(r.body.contains("We sent a new link and code"), "{r:?}");
    let mail = wait_mail(&server, "code@example.com", 2).await;
    let second = code_in(&mail[1]);
    assert_ne!(first, second);

    let code_form = code_form(&r).unwrap_or_else(|| panic!("{r:?}"));
    let code_tag = r.body.split("id=\"code\"").nth(1).unwrap();
    assert!(code_tag[..code_tag.find('>').unwrap()].contains("autocomplete=\"one-time-code\""));
    let wrong = browser.submit(&code_form, &[("code", &first)]).await;
    assert_eq!(wrong.status, 200, "{wrong:?}");
    assert!(wrong.body.contains("That code is not right"), "only the latest code works: {wrong:?}");
    assert_eq!(status_of(&server, "code@example.com"), ["pending"]);
    let r = browser.submit(&code_form, &[("code", &second)]).await;
    assert_eq!(r.status, 303, "{r:?}");
    let outcome = browser.complete(r, None, Decision::NotExpected).await;
    assert!(!outcome.code().is_empty());
    assert_eq!(status_of(&server, "code@example.com"), ["active"]);
    // The link of the same mail went with the code.
    assert_eq!(server.browser().get(&link_in(&mail[1])).await.status, 400);
}

#[tokio::test]
async fn a_pending_account_signing_in_confirms_its_email_first_then_goes_on() {
    let server = Server::start_with(ENV);
    let c = server.first_party_client();
    let (browser, form) = signup_form(&server, &c).await;
    let v = valid("later@example.com");
    browser.submit(&form, &fields(&v)).await;
    wait_mail(&server, "later@example.com", 1).await;

    // Days later, on another device: the password is right, the email still unconfirmed.
    server.advance(3 * 24 * 3600);
    let other = server.browser();
    let login = other.follow(&other.authorize(&auth_params(&c, "openid email", "s", "n")).await).await;
    let page = other.login(&login, "LATER@example.com", NEW_PASSWORD).await;
    assert!(page.body.contains("waiting for you to confirm your email"), "{page:?}");
    assert!(page.forms().iter().any(|f| f.has_button("resend", "1")), "send again offered: {page:?}");
    let mail = wait_mail(&server, "later@example.com", 2).await;
    // The first link has expired (24 h); the new code works.
    assert_eq!(server.browser().get(&link_in(&mail[0])).await.status, 400);
    let r = other.submit(&code_form(&page).unwrap(), &[("code", &code_in(&mail[1]))]).await;
    let outcome = other.complete(r, None, Decision::NotExpected).await;
    let tokens = Tokens::from_json(server.redeem(&c, &outcome.code(), None).await.json());
    let userinfo = server.userinfo(&tokens.access_token).await.json();
    assert_eq!(userinfo["email"], "later@example.com", "{userinfo}");
    assert_eq!(userinfo["email_verified"], true, "{userinfo}");
}

#[tokio::test]
async fn a_taken_email_answers_like_a_free_one_sends_nothing_to_create_and_takes_as_long() {
    let server = Server::start_with(ENV);
    server.add_user("taken", "an old password of theirs");
    let c = server.first_party_client();

    let mut free = Vec::new();
    let mut taken = Vec::new();
    let mut pages = Vec::new();
    // A first round warms up what a first request pays for once; then six measured rounds, an
    // hour apart (the taken address's hourly budget is five mails).
    for i in 0..7 {
        server.advance(3600);
        for (address, times) in
            [(format!("fresh{i}@example.com"), &mut free), ("TAKEN@example.com".to_string(), &mut taken)]
        {
            let (browser, form) = signup_form(&server, &c).await;
            let v = valid(&address);
            let started = std::time::Instant::now();
            let page = browser.submit(&form, &fields(&v)).await;
            if i > 0 {
                times.push(started.elapsed().as_secs_f64());
            }
            assert_eq!(page.status, 200, "{page:?}");
            pages.push((address, page));
        }
    }
    // The same page, the address aside.
    let text = |(address, page): &(String, Resp)| {
        let masked = format!("{}•••@example.com", &address[..1]);
        element_text(page, "notice").unwrap().replace(&masked, "ADDRESS")
    };
    assert_eq!(text(&pages[0]), text(&pages[1]));
    assert_eq!(pages[0].1.forms().len(), pages[1].1.forms().len());

    // Nothing created, no verification sent; the owner is told.
    let users = server.cli(&["users", "list", "--json"]);
    let holders = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["email"].as_str().is_some_and(|e| e.eq_ignore_ascii_case("taken@example.com")));
    assert_eq!(holders.count(), 1, "{users}");
    let notices = wait_mail(&server, "taken@example.com", 1).await;
    assert!(
        notices.iter().all(|m| m.header("Subject") == Some("Someone tried to sign up to Acme ID with your address"))
    );
    assert!(
        verifications(&server, "TAKEN@example.com").is_empty()
            && verifications(&server, "taken@example.com").is_empty()
    );
    wait_mail(&server, "fresh6@example.com", 1).await;

    // Similar time: the password is hashed either way and mail goes out off the request path.
    // The fastest of each branch is its own cost, least disturbed by whatever else the machine
    // runs.
    let fastest = |t: &[f64]| t.iter().copied().fold(f64::MAX, f64::min);
    let (f, t) = (fastest(&free), fastest(&taken));
    assert!((f - t).abs() < 0.5 * f.max(t), "free {free:?} vs taken {taken:?}");
}

#[tokio::test]
async fn the_link_works_once_and_a_scanner_uses_nothing() {
    let server = Server::start_with(ENV);
    let c = server.first_party_client();
    let (browser, form) = signup_form(&server, &c).await;
    let v = valid("once@example.com");
    let waiting = browser.submit(&form, &fields(&v)).await;
    let link = link_in(&wait_mail(&server, "once@example.com", 1).await[0]);
    // Opened on another device: confirmed there, the waiting page goes on here.
    let phone = server.browser();
    let r = confirm_link(&phone, &link).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("Your email is confirmed"), "{r:?}");
    assert_eq!(status_of(&server, "once@example.com"), ["active"]);
    let cont = waiting.forms().into_iter().find(|f| f.has_button("resend", "1")).unwrap().action;
    let r = browser.get(&cont).await;
    assert_eq!(r.status, 303, "the waiting page goes on: {r:?}");
    let outcome = browser.complete(r, None, Decision::NotExpected).await;
    assert!(!outcome.code().is_empty());
    // Spent: its page says so, and a second POST confirms nothing.
    let again = phone.get(&link).await;
    assert_eq!(again.status, 400);
    let r = phone.post_form(&link, &[("confirm", "yes")]).await;
    assert_eq!(r.status, 400, "{r:?}");
}
