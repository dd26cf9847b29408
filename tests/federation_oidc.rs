//! Upstream federation with an OpenID provider (issue #6): a real provider runs inside the test
//! (its own RSA key, discovery, JWKS, authorize, token with PKCE) and Latchkey signs people in
//! with it — discovery, code flow with PKCE, `state` and `nonce`, and the ID token validated
//! (OIDC Core §3.1.3.7) — then links the upstream identity to a local account, never on the
//! email alone.

mod common;

use common::upstream::{Misbehave, Person, Upstream, config_env, unreachable_url};
use common::*;
use serde_json::json;
use std::time::Duration;
use url::Url;

const ID: &str = "acme";

struct Fixture {
    up: Upstream,
    server: Server,
    client: TestClient,
    config: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

async fn fixture_with(up: Upstream, toml: &str, extra: &[(&str, &str)]) -> Fixture {
    let (config, env) = config_env(toml);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend_from_slice(extra);
    let server = Server::start_with(&env);
    let client = server.first_party_client();
    Fixture { up, server, client, config }
}

async fn fixture(allow_registration: bool) -> Fixture {
    let up = Upstream::oidc().await;
    let toml = up.config(ID, "oidc", allow_registration);
    fixture_with(up, &toml, &[]).await
}

impl Fixture {
    fn params(&self) -> Vec<(&str, &str)> {
        auth_params(&self.client, "openid email profile", "rp-state", "rp-nonce")
    }

    /// Redeems the code of `o` and returns the ID token's claims, checked as an RP checks them.
    async fn id_claims(&self, o: &Outcome) -> serde_json::Value {
        let r = self.server.redeem(&self.client, &o.code(), None).await;
        assert_eq!(r.status, 200, "{r:?}");
        let tokens = Tokens::from_json(r.json());
        let jwks = self.server.jwks().await;
        check_id_token(tokens.id_token(), &self.server.issuer, &self.client.id, Some("rp-nonce"), None, &jwks)
    }

    fn users(&self) -> Vec<String> {
        self.server.db_strings("SELECT id FROM users ORDER BY id")
    }

    fn links(&self) -> Vec<String> {
        self.server.db_strings("SELECT user_id FROM upstream_identities ORDER BY user_id")
    }

    /// A federated sign-in from a fresh browser to the client's callback.
    async fn sign_in(&self, browser: &Browser) -> Outcome {
        let start = browser.authorize(&self.params()).await;
        let back = browser.federate(&start, ID).await;
        browser.complete(back, None, Decision::NotExpected).await
    }
}

/// Asserts the readable page a failed federated sign-in ends on, and that its way back works.
async fn assert_upstream_error(browser: &Browser, r: &Resp, words: &str) {
    assert!(matches!(r.status, 400 | 403), "an error page: {r:?}");
    assert!(r.location().is_none(), "{r:?}");
    assert_eq!(r.media_type(), "text/html", "{r:?}");
    let message = element_text(r, "upstream-error").unwrap_or_else(|| panic!("no message: {r:?}"));
    assert!(message.contains(words), "{words:?} in {message:?}");
    let back = tags(&r.body, "a").into_iter().find_map(|(_, a)| (a.get("id")? == "back").then(|| a["href"].clone()));
    let back = back.unwrap_or_else(|| panic!("no way back: {r:?}"));
    let page = browser.get(&back).await;
    assert_eq!(page.status, 200, "the way back leads somewhere: {page:?}");
}

#[tokio::test]
async fn first_sign_in_creates_and_links_a_user_and_the_next_one_finds_it() {
    let f = fixture(true).await;
    assert!(f.users().is_empty());

    let first = f.sign_in(&f.server.browser()).await;
    let c = f.id_claims(&first).await;
    let users = f.users();
    assert_eq!(users.len(), 1, "one user created");
    assert_eq!(c["sub"], users[0], "{c}");
    assert_eq!(f.links(), users, "and linked");
    // The upstream's amr is carried (RFC 8176 values); one factor is acr 1.
    assert_eq!(c["amr"], json!(["pwd"]), "{c}");
    assert_eq!(c["acr"], "1", "{c}");
    // The request at the upstream: code flow with PKCE S256, a state and a nonce.
    let req = &f.up.requests()[0];
    assert_eq!(req["response_type"], "code");
    assert_eq!(req["code_challenge_method"], "S256");
    assert!(req["state"].len() >= 32 && req["nonce"].len() >= 32, "{req:?}");
    assert!(req["redirect_uri"].ends_with(&format!("/login/upstream/{ID}/callback")), "{req:?}");
    // Upstream claims filled the new account's empty profile; the email is the verified one.
    let r = f.server.redeem(&f.client, &f.sign_in(&f.server.browser()).await.code(), None).await;
    let tokens = Tokens::from_json(r.json());
    let info = check_userinfo(&f.server.userinfo(&tokens.access_token).await);
    assert_eq!(info["email"], "person@upstream.example", "{info}");
    assert_eq!(info["email_verified"], true, "{info}");
    assert_eq!(info["name"], "Upstream Person", "{info}");
    assert_eq!(info["given_name"], "Upstream", "{info}");

    // The second sign-in (another browser) finds the same account.
    let again = f.id_claims(&f.sign_in(&f.server.browser()).await).await;
    assert_eq!(again["sub"], c["sub"]);
    assert_eq!(f.users(), users, "no second user");
    let kinds = f.server.db_strings("SELECT kind FROM audit_events");
    assert!(kinds.iter().any(|k| k == "upstream.linked"), "{kinds:?}");
}

#[tokio::test]
async fn closed_registration_refuses_a_stranger_with_a_readable_page() {
    let f = fixture(false).await;
    let browser = f.server.browser();
    let start = browser.authorize(&f.params()).await;
    let r = browser.federate(&start, ID).await;
    assert_upstream_error(&browser, &r, "cannot be made").await;
    assert!(f.users().is_empty() && f.links().is_empty());
}

#[tokio::test]
async fn an_existing_email_must_prove_its_account_before_it_is_linked() {
    let f = fixture(true).await;
    let alice = f.server.add_alice()["id"].as_str().unwrap().to_string();
    f.up.sign_in_as(Person::new("alice-at-upstream", "alice@example.com"));

    // The email matches: no sign-in and no link yet, but alice's own sign-in page, saying why.
    let browser = f.server.browser();
    let start = browser.authorize(&f.params()).await;
    let r = browser.federate(&start, ID).await;
    assert_eq!(r.status, 303, "{r:?}");
    let page = browser.follow(&r).await;
    let notice = element_text(&page, "link-notice").unwrap_or_else(|| panic!("no notice: {page:?}"));
    assert!(notice.contains("alice@example.com") && notice.contains("Sign in to it to link"), "{notice}");
    assert!(f.links().is_empty(), "never linked on the email alone");
    assert_eq!(f.users(), vec![alice.clone()], "no account created");

    // A wrong password links nothing; abandoning links nothing.
    let wrong = browser.login(&page, USER, "not the password").await;
    assert_eq!(wrong.status, 200, "{wrong:?}");
    assert!(f.links().is_empty());
    let abandoned = f.server.browser();
    let r = abandoned.federate(&abandoned.authorize(&f.params()).await, ID).await;
    assert_eq!(r.status, 303, "{r:?}");
    assert!(f.links().is_empty());

    // Alice's password proves the account: signed in as alice, and now linked.
    let done = browser.login(&page, USER, PASSWORD).await;
    let o = browser.complete(done, None, Decision::NotExpected).await;
    let c = f.id_claims(&o).await;
    assert_eq!(c["sub"], alice);
    assert_eq!(c["amr"], json!(["pwd"]), "the password proved it: {c}");
    assert_eq!(f.links(), vec![alice.clone()]);

    // From now on the upstream alone signs alice in.
    let next = f.id_claims(&f.sign_in(&f.server.browser()).await).await;
    assert_eq!(next["sub"], alice);
    assert_eq!(f.users(), vec![alice]);
}

#[tokio::test]
async fn an_unverified_email_is_not_matched_to_an_account() {
    let f = fixture(false).await;
    f.server.add_alice();
    let mut person = Person::new("mallory", "alice@example.com");
    person.email_verified = false;
    f.up.sign_in_as(person);
    let browser = f.server.browser();
    let r = browser.federate(&browser.authorize(&f.params()).await, ID).await;
    assert_upstream_error(&browser, &r, "cannot be made").await;
    assert!(f.links().is_empty());
}

#[tokio::test]
async fn a_second_factor_is_still_asked_after_federation() {
    let up = Upstream::oidc().await;
    let (config, env) = config_env(&up.config(ID, "oidc", true));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (server, client, _owner, e) = with_totp(&env).await;
    let f = Fixture { up, server, client, config };
    let alice = f.server.db_strings("SELECT id FROM users");
    f.up.sign_in_as(Person::new("alice-at-upstream", "alice@example.com"));

    // Linking: the upstream, then alice's password and her second factor (here a recovery
    // code, so that the authenticator's next code is left for the federated sign-in).
    let browser = f.server.browser();
    let r = browser.federate(&browser.authorize(&f.params()).await, ID).await;
    let code_page = browser.login(&r, USER, PASSWORD).await;
    let code_page = browser.follow(&code_page).await;
    assert!(code_form(&code_page).is_some(), "the second factor is asked before linking: {code_page:?}");
    assert!(f.links().is_empty());
    let page = browser.switch_to(&code_page, "recovery_code").await;
    let r = browser.submit(&code_form(&page).unwrap(), &[("code", &e.recovery_codes[0])]).await;
    let notice = browser.follow(&r).await;
    let form = notice.forms().into_iter().find(|x| x.action.starts_with("/login/")).expect("recovery notice");
    browser.complete(browser.submit(&form, &[]).await, None, Decision::NotExpected).await.code();
    assert_eq!(f.links(), alice);

    // Federated sign-in: the code is asked after the upstream; two factors make acr 2.
    let strict = f.server.add_client("strict", &["--redirect-uri", CALLBACK, "--first-party", "--min-acr", "2"]);
    let browser = f.server.browser();
    let r = browser.federate(&browser.authorize(&auth_params(&strict, "openid", "s", "rp-nonce")).await, ID).await;
    assert_eq!(r.status, 303, "{r:?}");
    let page = browser.follow(&r).await;
    let form = code_form(&page).unwrap_or_else(|| panic!("a second factor after federation: {page:?}"));
    let r = browser.submit(&form, &[("code", &totp_code(&e.secret, e.step + 1))]).await;
    let o = browser.complete(r, None, Decision::NotExpected).await;
    let tokens = Tokens::from_json(f.server.redeem(&strict, &o.code(), None).await.json());
    let c = tokens.id_claims();
    assert_eq!(c["sub"], alice[0].as_str());
    assert_eq!(c["amr"], json!(["pwd", "otp", "mfa"]), "{c}");
    assert_eq!(c["acr"], "2", "{c}");
}

/// An upstream sign-in that reported `amr`, for a client that demands acr 2 and then for one
/// content with one factor: no local second factor, so the first is told so whatever the
/// upstream said, and only the registered first-factor values pass on to the second.
async fn upstream_amr_stays_one_factor(amr: &[&str]) {
    let f = fixture(true).await;
    let mut person = Person::new("strong", "strong@upstream.example");
    person.amr = Some(amr.iter().map(|m| m.to_string()).collect());
    f.up.sign_in_as(person);
    let strict = f.server.add_client("strict", &["--redirect-uri", CALLBACK, "--first-party", "--min-acr", "2"]);
    let browser = f.server.browser();
    let r = browser.federate(&browser.authorize(&auth_params(&strict, "openid", "s", "n")).await, ID).await;
    let o = browser.complete(r, None, Decision::NotExpected).await;
    assert_eq!(o.error(), "unmet_authentication_requirements", "{o:?}");
    let c = f.id_claims(&f.sign_in(&f.server.browser()).await).await;
    assert_eq!(c["amr"], json!(["pwd"]), "{c}");
    assert_eq!(c["acr"], "1", "{c}");
}

#[tokio::test]
async fn upstream_second_factor_claims_do_not_replace_the_local_one() {
    upstream_amr_stays_one_factor(&["pwd", "otp", "mfa", "made-up"]).await;
}

#[tokio::test]
async fn an_upstream_user_verification_is_not_a_second_factor_here() {
    // An upstream sign-in with a passkey: two kinds of factor there, none proven here.
    upstream_amr_stays_one_factor(&["pwd", "hwk", "user", "mfa"]).await;
}

#[tokio::test]
async fn unlinking_is_refused_when_it_would_leave_no_way_in() {
    let f = fixture(true).await;
    // A federated-only account: its one link is its only way in.
    let browser = f.server.browser();
    f.sign_in(&browser).await.code();
    let page = browser.get("/account/linked").await;
    assert_eq!(page.status, 200, "{page:?}");
    let form = page.forms().into_iter().find(|f| f.action == "/account/linked").expect("an Unlink button");
    let r = browser.submit(&form, &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let notice = element_text(&r, "linked-notice").unwrap();
    assert!(notice.contains("only way"), "{notice}");
    assert_eq!(f.links().len(), 1);

    // Alice has a password: her link can go.
    let alice = f.server.add_alice()["id"].as_str().unwrap().to_string();
    f.up.sign_in_as(Person::new("alice-at-upstream", "alice@example.com"));
    let browser = f.server.browser();
    let r = browser.federate(&browser.authorize(&f.params()).await, ID).await;
    let r = browser.login(&r, USER, PASSWORD).await;
    browser.complete(r, None, Decision::NotExpected).await.code();
    assert!(f.links().contains(&alice));
    let page = browser.get("/account/linked").await;
    assert!(page.body.contains("alice@example.com"), "{page:?}");
    let form = page.forms().into_iter().find(|f| f.action == "/account/linked").expect("an Unlink button");
    let r = browser.submit(&form, &[]).await;
    assert_eq!(element_text(&r, "linked-notice").as_deref(), Some("The account was unlinked."), "{r:?}");
    assert!(!f.links().contains(&alice));
    assert!(f.server.db_strings("SELECT kind FROM audit_events").iter().any(|k| k == "upstream.unlinked"));
    // A forged form (no CSRF token) changes nothing.
    let r = browser.post_form("/account/linked", &[("provider", ID), ("subject", "upstream-sub-1")]).await;
    assert_eq!(r.status, 403, "{r:?}");
}

#[tokio::test]
async fn every_upstream_failure_ends_on_a_readable_page_and_creates_nothing() {
    let f = fixture(true).await;
    let cases = [
        (Misbehave::Deny, "cancelled"),
        (Misbehave::WrongNonce, "could not be trusted"),
        (Misbehave::ForeignKey, "could not be trusted"),
        (Misbehave::WrongAudience, "could not be trusted"),
        (Misbehave::WrongIssuer, "could not be trusted"),
        (Misbehave::Expired, "could not be trusted"),
    ];
    for (misbehave, words) in cases {
        f.up.misbehave(misbehave);
        let browser = f.server.browser();
        let r = browser.federate(&browser.authorize(&f.params()).await, ID).await;
        assert_upstream_error(&browser, &r, words).await;
    }
    f.up.misbehave(Misbehave::Nothing);

    // The callback URL of a real sign-in, taken apart.
    let browser = f.server.browser();
    let start = browser.follow(&browser.authorize(&f.params()).await).await;
    let form = start.forms().into_iter().find(|x| x.action.ends_with(&format!("/upstream/{ID}"))).unwrap();
    let to_upstream = browser.submit(&form, &[]).await;
    let callback = Url::parse(browser.get(to_upstream.location().unwrap()).await.location().unwrap()).unwrap();
    let param = |name: &str| callback.query_pairs().find(|(k, _)| k == name).unwrap().1.to_string();
    let (code, state) = (param("code"), param("state"));
    let path = callback.path();

    // Bad state, missing state, garbage code, and a replayed state.
    let r = browser.get(&format!("{path}?code={code}&state=forged-{state}")).await;
    assert_upstream_error(&browser, &r, "unknown or has expired").await;
    let r = browser.get(&format!("{path}?code={code}")).await;
    assert_upstream_error(&browser, &r, "did not say which sign-in").await;
    let r = browser.get(&format!("{path}?code=garbage&state={state}")).await;
    assert_upstream_error(&browser, &r, "could not be trusted").await;
    let r = browser.get(&format!("{path}?code={code}&state={state}")).await;
    assert_upstream_error(&browser, &r, "already used").await;
    // Another browser cannot finish this browser's sign-in (login CSRF).
    let to_upstream = browser.submit(&form, &[]).await;
    let callback = browser.get(to_upstream.location().unwrap()).await.location().unwrap().to_string();
    let r = f.server.browser().get(&callback).await;
    assert_eq!(r.status, 403, "{r:?}");
    // Unknown provider and nonsense input: pages, never a 500.
    let r = browser.get("/login/upstream/nobody/callback?code=x&state=y").await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = browser.get(&format!("{path}?error=server_error&state=%ff%fe")).await;
    assert!(r.status < 500, "{r:?}");

    assert!(f.users().is_empty(), "no account: {:?}", f.users());
    assert!(f.links().is_empty(), "no link");
    let kinds = f.server.db_strings("SELECT kind FROM audit_events WHERE kind = 'login.failed'");
    assert!(kinds.len() >= 10, "failures are audited: {kinds:?}");
}

#[tokio::test]
async fn an_unreachable_provider_gives_a_readable_page_quickly() {
    let up = Upstream::oidc().await;
    let dead = unreachable_url().await;
    let toml = up.config(ID, "oidc", true).replace(&up.url, &dead);
    let f = fixture_with(up, &toml, &[]).await;
    let browser = f.server.browser();
    let page = browser.follow(&browser.authorize(&f.params()).await).await;
    let form = page.forms().into_iter().find(|x| x.action.ends_with(&format!("/upstream/{ID}"))).unwrap();
    let started = std::time::Instant::now();
    let r = browser.submit(&form, &[]).await;
    assert!(started.elapsed() < Duration::from_secs(15), "no hang");
    assert_upstream_error(&browser, &r, "could not be reached").await;
    assert!(f.users().is_empty() && f.links().is_empty());
}

#[tokio::test]
async fn config_check_names_each_upstream_problem() {
    let toml = "[[upstream]]\nid = \"Bad Id\"\nkind = \"oidc\"\nclient_id = \"\"\nclient_secret = \"s\"\n";
    let (path, env) = config_env(toml);
    let out = std::process::Command::new(bin())
        .args(["config", "check"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    // Problems go to stderr, one line each.
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    for expected in ["upstream[0].id", "upstream[0].client_id", "upstream[0].issuer"] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    let _ = std::fs::remove_file(path);
}
