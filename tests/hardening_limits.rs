//! Issue #20, the bounds and the low-severity hardening: what one browser or one address can make
//! the server keep, who may introspect a token, recovery codes, redirect URIs, PKCE for every
//! client, the client address in the audit log, and the other items of the review, each
//! reproduced as the attack and now seen refused.

mod common;

use common::*;

const EMAIL: &str = "alice@example.com";

/// The flow a fresh `/authorize` in `browser` was sent to.
async fn start_flow(browser: &Browser, client: &TestClient, state: &str) -> String {
    let r = browser.authorize(&auth_params(client, "openid", state, "n")).await;
    assert!(r.is_redirect(), "a new flow is sent to sign in: {r:?}");
    r.location().unwrap().to_owned()
}

// --- Medium 5: live login flows per browser and per address ----------------------------------

/// One browser opening sign-in after sign-in keeps only its newest flows: the oldest go first.
#[tokio::test]
async fn one_browser_keeps_only_its_newest_login_flows() {
    let server = Server::start_with(&[("LATCHKEY_LOGIN_MAX_FLOWS_PER_BROWSER", "3")]);
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let mut flows = Vec::new();
    for i in 0..4 {
        flows.push(start_flow(&browser, &c, &format!("s{i}")).await);
    }
    let oldest = browser.get(&flows[0]).await;
    assert_eq!(oldest.status, 400, "the oldest flow was ended: {oldest:?}");
    assert!(oldest.body.contains("This sign-in has expired"), "{oldest:?}");
    for flow in &flows[1..] {
        assert!(login_form(&browser.get(flow).await).is_some(), "the newest three still work");
    }
    // The newest one signs in as usual.
    let page = browser.get(&flows[3]).await;
    let outcome = browser.complete(browser.login(&page, USER, PASSWORD).await, None, Decision::Allow).await;
    assert_eq!(outcome.param("state"), Some("s3"));
    // Another browser is not touched by this one's flows.
    let other = server.browser();
    let flow = start_flow(&other, &c, "o").await;
    start_flow(&browser, &c, "s4").await;
    assert!(login_form(&other.get(&flow).await).is_some());
}

/// Requests without our cookie each make a new browser; from one address only so many may be
/// started per flow lifetime, then a readable 429 page says to wait. Browsers that kept their
/// cookie still sign in, and the count resets when the flows would have expired.
#[tokio::test]
async fn cookieless_flows_from_one_address_are_capped() {
    let server =
        Server::start_with(&[("LATCHKEY_LOGIN_MAX_NEW_BROWSERS_PER_IP", "3"), ("LATCHKEY_RATE_LIMIT_PER_SECOND", "0")]);
    let c = server.first_party_client();
    let kept = server.browser();
    start_flow(&kept, &c, "kept").await;
    for i in 0..2 {
        start_flow(&server.browser(), &c, &format!("s{i}")).await;
    }
    let refused = server.browser().authorize(&auth_params(&c, "openid", "over", "n")).await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(refused.body.contains("Too many sign-ins"), "a page that says what happened: {refused:?}");
    assert!(refused.body.contains("temporarily_unavailable"), "{refused:?}");
    assert!(refused.body.contains("Wait a few minutes"), "and what to do: {refused:?}");
    // A browser with its cookie is not a new browser.
    start_flow(&kept, &c, "again").await;

    server.advance(31 * 60);
    start_flow(&server.browser(), &c, "later").await;
}

/// `/logout` confirmations are bounded the same way: one browser (here, one without a session,
/// counted by its address) holds only its newest confirmations.
#[tokio::test]
async fn logout_confirmations_are_bounded() {
    let server = Server::start_with(&[("LATCHKEY_LOGIN_MAX_FLOWS_PER_BROWSER", "3")]);
    let c = server.first_party_client();
    let browser = server.browser();
    let mut forms = Vec::new();
    for i in 0..4 {
        let q = encode_form(&[
            ("client_id", c.id.as_str()),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", &format!("s{i}")),
        ]);
        let page = browser.get(&format!("/logout?{q}")).await;
        let form = page.forms().into_iter().find(|f| f.action.ends_with("/logout") && f.has_button("confirm", "yes"));
        forms.push(form.unwrap_or_else(|| panic!("a confirmation: {page:?}")));
    }
    let oldest = browser.submit(&forms[0], &[("confirm", "yes")]).await;
    assert_eq!(oldest.status, 403, "the oldest confirmation was forgotten: {oldest:?}");
    let newest = browser.submit(&forms[3], &[("confirm", "yes")]).await;
    assert!(newest.location().is_some_and(|l| l.starts_with(POST_LOGOUT) && l.contains("state=s3")), "{newest:?}");
}

// --- Low: the client address through trusted proxies -----------------------------------------

/// The client addresses of the successful sign-ins, as `latchkey audit` reads them (they are
/// sealed at rest).
fn succeeded_ips(server: &Server) -> Vec<String> {
    let events = server.cli(&["audit", "--kind", "login.succeeded", "--json"]);
    events
        .as_array()
        .unwrap_or_else(|| panic!("{events}"))
        .iter()
        .map(|e| e["ip"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Behind a trusted balancer the audit log records the client's address, not the balancer's.
#[tokio::test]
async fn the_audit_log_records_the_client_behind_a_trusted_proxy() {
    let server = Server::start_with(&[("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1")]);
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser_behind_proxy("198.51.100.7");
    browser.authorize_and_complete(&auth_params(&c, "openid", "s", "n"), Some((USER, PASSWORD)), Decision::Allow).await;
    assert_eq!(succeeded_ips(&server), ["198.51.100.7"]);

    // An untrusted peer's header is its own writing: the peer's address is recorded.
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser_behind_proxy("198.51.100.7");
    browser.authorize_and_complete(&auth_params(&c, "openid", "s", "n"), Some((USER, PASSWORD)), Decision::Allow).await;
    assert_eq!(succeeded_ips(&server), ["127.0.0.1"]);
}

/// Per-address limits count an IPv6 client by its /64: walking through the addresses of one
/// /64 does not get a fresh allowance.
#[tokio::test]
async fn per_address_limits_group_ipv6_by_64() {
    let server = Server::start_with(&[
        ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1"),
        ("LATCHKEY_LOGIN_MAX_NEW_BROWSERS_PER_IP", "3"),
        ("LATCHKEY_RATE_LIMIT_PER_SECOND", "0"),
    ]);
    let c = server.first_party_client();
    for i in 1..=3 {
        start_flow(&server.browser_behind_proxy(&format!("2001:db8:1:2::{i}")), &c, "s").await;
    }
    let b = server.browser_behind_proxy("2001:db8:1:2:ffff::9");
    let r = b.authorize(&auth_params(&c, "openid", "s", "n")).await;
    assert_eq!(r.status, 429, "the same /64: {r:?}");
    start_flow(&server.browser_behind_proxy("2001:db8:1:3::1"), &c, "s").await;

    // The request-rate limit too: one /64's burst is shared.
    let server = Server::start_with(&[
        ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1"),
        ("LATCHKEY_RATE_LIMIT_PER_SECOND", "1"),
        ("LATCHKEY_RATE_LIMIT_BURST", "2"),
    ]);
    // Sent at once, and many more than the burst: however slowly a loaded machine answers, the
    // allowance cannot refill as fast as they arrive.
    let browsers: Vec<Browser> = (1..=12).map(|i| server.browser_behind_proxy(&format!("2001:db8:5:6::{i}"))).collect();
    let statuses: Vec<u16> =
        futures::future::join_all(browsers.iter().map(|b| async move { b.get("/authorize").await.status })).await;
    assert!(statuses.contains(&429), "addresses of one /64 share one allowance: {statuses:?}");
}

// --- Low: introspection only for the token's own client or a resource server ----------------

/// Another client learns nothing about a token it does not hold (RFC 7662 §2.2); a client
/// registered as a resource server does, for access and refresh tokens alike.
#[tokio::test]
async fn introspection_answers_only_the_tokens_client_or_a_resource_server() {
    let server = Server::start();
    server.add_alice();
    let holder = server.first_party_client();
    let other = server.add_client("other rp", &["--redirect-uri", CALLBACK2]);
    let api = server.add_client("api", &["--grant-type", "client_credentials", "--scope", "api", "--resource-server"]);
    let t = server.code_flow(&server.browser(), &holder, "openid offline_access").await;

    for token in [t.access_token.as_str(), t.refresh_token()] {
        assert_eq!(server.introspect(&holder, token).await.json()["active"], true, "its own client");
        let r = server.introspect(&other, token).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json(), serde_json::json!({ "active": false }), "another client learns nothing");
        let i = server.introspect(&api, token).await.json();
        assert_eq!(i["active"], true, "a resource server: {i}");
        assert_eq!(i["client_id"], holder.id.as_str(), "{i}");
    }

    // The flag can be turned on and off later (on clients the server has not cached yet: the
    // server reads a client again within seconds of a change).
    let later = server.add_client("later api", &["--grant-type", "client_credentials", "--scope", "api"]);
    server.cli(&["clients", "update", &later.id, "--resource-server", "true", "--json"]);
    assert_eq!(server.introspect(&later, &t.access_token).await.json()["active"], true);
    let former = server.add_client("former api", &["--grant-type", "client_credentials", "--resource-server"]);
    server.cli(&["clients", "update", &former.id, "--resource-server", "false", "--json"]);
    assert_eq!(server.introspect(&former, &t.access_token).await.json()["active"], false);
}

// --- Low: redirect URIs at registration --------------------------------------------------------

/// `clients add` and `clients update` accept https, loopback http and private-use schemes, and
/// refuse script, data and file URIs, fragments and plain http elsewhere (but for development).
#[tokio::test]
async fn registration_refuses_unsafe_redirect_uris() {
    let server = Server::start();
    for bad in [
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "vbscript:msgbox(1)",
        "http://rp.example.com/callback",
        "https://rp.example.com/callback#token",
        "myapp:/callback",
    ] {
        let (ok, _, err) = server.cli_raw(&["clients", "add", "--name", "bad", "--redirect-uri", bad], None);
        assert!(!ok, "{bad} was registered");
        assert!(err.contains(bad), "the refusal names the URI: {err}");
        let (ok, _, _) = server.cli_raw(
            &["clients", "add", "--name", "bad", "--redirect-uri", CALLBACK, "--post-logout-redirect-uri", bad],
            None,
        );
        assert!(!ok, "{bad} as a post-logout URI");
    }
    for good in [
        "https://rp.example.com/callback",
        "http://127.0.0.1:8400/callback",
        "http://[::1]/callback",
        "http://localhost:3000/callback",
        "com.example.app:/oauth2redirect",
    ] {
        server.add_client("good", &["--redirect-uri", good, "--public"]);
    }
    server.add_client("dev", &["--redirect-uri", "http://rp.example.com/callback", "--allow-http"]);

    let c = server.first_party_client();
    let (ok, _, _) = server.cli_raw(&["clients", "update", &c.id, "--redirect-uri", "javascript:alert(1)"], None);
    assert!(!ok, "update refuses it too");
    let v = server.cli(&["clients", "update", &c.id, "--redirect-uri", CALLBACK2, "--json"]);
    assert_eq!(v["redirect_uris"], serde_json::json!([CALLBACK2]), "{v}");
}

// --- Low: PKCE for confidential clients ---------------------------------------------------------

/// Without a code_challenge the authorization endpoint answers `invalid_request` at the
/// client's redirect URI.
fn assert_pkce_refused(r: &Resp) {
    let location = r.location().unwrap_or_else(|| panic!("redirected with the error: {r:?}"));
    assert!(location.starts_with(CALLBACK), "{r:?}");
    assert!(location.contains("error=invalid_request"), "{r:?}");
    assert!(location.contains("PKCE"), "says why: {r:?}");
}

/// A confidential client flagged `--require-pkce` must send a code_challenge; others need not
/// unless the operator requires PKCE of every client.
#[tokio::test]
async fn pkce_can_be_required_of_confidential_clients() {
    let server = Server::start();
    server.add_alice();
    let strict = server.add_client("strict", &["--redirect-uri", CALLBACK, "--require-pkce", "--first-party"]);
    let lax = server.first_party_client();
    let browser = server.browser();
    assert_pkce_refused(&browser.authorize(&auth_params(&strict, "openid", "s", "n")).await);
    server.code_flow(&browser, &strict, "openid").await;
    let r = server.browser().authorize(&auth_params(&lax, "openid", "s", "n")).await;
    assert!(r.location().is_some_and(|l| l.starts_with("/login/")), "off by default: {r:?}");
    let relaxed = server.add_client("relaxed", &["--redirect-uri", CALLBACK, "--require-pkce", "--first-party"]);
    server.cli(&["clients", "update", &relaxed.id, "--require-pkce", "false", "--json"]);
    let r = server.browser().authorize(&auth_params(&relaxed, "openid", "s", "n")).await;
    assert!(r.location().is_some_and(|l| l.starts_with("/login/")), "turned off: {r:?}");

    let server = Server::start_with(&[("LATCHKEY_REQUIRE_PKCE", "true")]);
    server.add_alice();
    let c = server.first_party_client();
    assert_pkce_refused(&server.browser().authorize(&auth_params(&c, "openid", "s", "n")).await);
    server.code_flow(&server.browser(), &c, "openid").await;
}

// --- Low: recovery codes of 80 bits, salted at rest -----------------------------------------

/// Codes carry 80 bits, grouped for reading; the table holds neither them nor their plain
/// SHA-256; a code of the earlier 10-character form (plain SHA-256) still signs in once.
#[tokio::test]
async fn recovery_codes_carry_80_bits_and_are_salted_at_rest() {
    let (server, c, _, e) = with_totp(&[]).await;
    for code in &e.recovery_codes {
        let chars: String = code.chars().filter(|c| *c != '-').collect();
        assert_eq!(chars.len(), 16, "16 base32 characters are 80 bits: {code}");
        assert!(code.split('-').all(|g| g.len() == 4), "grouped for reading: {code}");
    }
    let stored = server.db_strings("SELECT code_hash FROM recovery_codes");
    assert_eq!(stored.len(), 10);
    for code in &e.recovery_codes {
        let plain = s256(&code.replace('-', ""));
        assert!(!stored.contains(&plain), "not a plain SHA-256 of {code}");
        assert!(!stored.iter().any(|s| s.contains(&code.replace('-', ""))), "not the code itself");
    }

    // A code from before: its row holds the plain SHA-256 of the 10 characters.
    let updated = server.db_strings(&format!(
        "UPDATE recovery_codes SET code_hash = '{}' WHERE code_hash = '{}' RETURNING id",
        s256("abcdefghjk"),
        stored[0]
    ));
    assert_eq!(updated.len(), 1);
    let sign_in_with = |code: &'static str| {
        let server = &server;
        let c = &c;
        async move {
            let browser = server.browser();
            let page = browser.follow(&browser.authorize(&auth_params(c, "openid", "st", "n")).await).await;
            let second = browser.follow(&browser.login(&page, USER, PASSWORD).await).await;
            let page = browser.switch_to(&second, "recovery_code").await;
            browser.submit(&code_form(&page).unwrap(), &[("code", code)]).await
        }
    };
    let r = sign_in_with("ABCDE FGHJK").await;
    assert_eq!(r.status, 303, "the earlier code works: {r:?}");
    let again = sign_in_with("abcde-fghjk").await;
    assert!(again.body.contains("not valid, or it was already used"), "once: {again:?}");
}

// --- Low: email-first sign-in tells nothing by its time or its throttle --------------------

/// The address form of "Email me a code instead", in a fresh browser.
async fn email_code_form(server: &Server, c: &TestClient) -> (Browser, Form) {
    let browser = server.browser();
    let login = browser.follow(&browser.authorize(&auth_params(c, "openid", "st", "n")).await).await;
    let page = browser.switch_to(&login, "email_otp").await;
    let form = form_with(&page, "/login/", "email").unwrap_or_else(|| panic!("address form: {page:?}"));
    (browser, form)
}

/// With a slow mail relay, an account's address must not take longer to answer than an unknown
/// one: the mail goes out after the answer. The relay holds every mail until the test lets it
/// go, so an answer that waited for the mail would come only after the relay had it.
#[tokio::test]
async fn email_first_sign_in_answers_before_the_mail_goes_out() {
    let relay = common::mail::SmtpServer::held();
    let url = relay.url();
    let server = Server::start_with(&[("LATCHKEY_LOGIN_EMAIL_FIRST_FACTOR", "true"), ("LATCHKEY_MAIL_SMTP_URL", &url)]);
    server.add_alice();
    let c = server.first_party_client();
    for address in ["nobody@example.com", EMAIL] {
        let (browser, form) = email_code_form(&server, &c).await;
        let r = browser.submit(&form, &[("email", address)]).await;
        assert!(r.body.contains("We sent a code to"), "{r:?}");
        assert!(relay.received.lock().unwrap().is_empty(), "the answer for {address} waited for the mail");
    }
    relay.release();
    assert_eq!(relay.wait_for(1).len(), 1, "the mail still goes out");
}

/// Password guesses that throttle alice's account must not show on the email-first form: the
/// typed address is counted on its own, account or not.
#[tokio::test]
async fn email_first_throttle_does_not_tell_which_addresses_have_accounts() {
    let server = Server::start_with(&[("LATCHKEY_LOGIN_EMAIL_FIRST_FACTOR", "true")]);
    server.add_alice();
    let c = server.first_party_client();
    for _ in 0..6 {
        let browser = server.browser();
        let page = browser.follow(&browser.authorize(&auth_params(&c, "openid", "st", "n")).await).await;
        browser.login(&page, USER, "wrong password").await;
    }
    let (browser, form) = email_code_form(&server, &c).await;
    let r = browser.submit(&form, &[("email", EMAIL)]).await;
    assert!(!r.body.contains("Too many failed attempts"), "the account's lockout shows: {r:?}");
    assert!(r.body.contains("We sent a code to a•••@example.com"), "{r:?}");
    let (browser, form) = email_code_form(&server, &c).await;
    let nobody = browser.submit(&form, &[("email", "nobody@example.com")]).await;
    assert!(nobody.body.contains("We sent a code to n•••@example.com"), "{nobody:?}");
}

// --- Low: the argon2 queue is bounded ---------------------------------------------------------

/// A burst of sign-ins past the password queue is answered at once with 503, `Retry-After` and
/// a page that says to wait, instead of queueing without bound; the rest are judged as usual.
#[tokio::test]
async fn sign_ins_past_the_password_queue_get_503_with_retry_after() {
    let server = Server::start_with(&[
        ("LATCHKEY_LOGIN_PASSWORD_WORKERS", "1"),
        ("LATCHKEY_LOGIN_PASSWORD_QUEUE", "1"),
        ("LATCHKEY_RATE_LIMIT_PER_SECOND", "0"),
    ]);
    server.expect_unavailable();
    let c = server.first_party_client();
    let mut forms = Vec::new();
    for _ in 0..16 {
        let browser = server.browser();
        let page = browser.follow(&browser.authorize(&auth_params(&c, "openid", "st", "n")).await).await;
        let form = login_form(&page).unwrap_or_else(|| panic!("{page:?}"));
        forms.push((browser, form));
    }
    let answers = futures::future::join_all(forms.iter().enumerate().map(|(i, (browser, form))| async move {
        browser.submit(form, &[("username", format!("nobody{i}").as_str()), ("password", "a wrong password")]).await
    }))
    .await;
    let busy: Vec<&Resp> = answers.iter().filter(|r| r.status == 503).collect();
    assert!(!busy.is_empty(), "some were refused: {:?}", answers.iter().map(|r| r.status).collect::<Vec<_>>());
    for r in &busy {
        assert!(r.header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok()), "{r:?}");
        assert!(r.body.contains("Wait a few seconds and try again"), "{r:?}");
        assert!(r.body.contains("temporarily_unavailable"), "{r:?}");
    }
    let judged = answers.iter().filter(|r| r.status == 200).count();
    assert!(judged >= 1, "the first were judged as usual");
    assert_eq!(judged + busy.len(), answers.len(), "nothing else: {answers:?}");
}

// --- Low: key material ---------------------------------------------------------------------------

/// `keys import` refuses an RSA key under 2048 bits, as PEM or as JWK, for RS256 and PS256.
#[tokio::test]
async fn weak_rsa_keys_are_refused_at_import() {
    use josekit::jwk::KeyPair;
    use josekit::jwk::alg::rsa::RsaKeyPair;
    let server = Server::start();
    let dir = server.data_dir.join("imports");
    std::fs::create_dir_all(&dir).unwrap();
    let weak = RsaKeyPair::generate(1024).unwrap();
    let before = server.cli(&["keys", "list", "--json"]);
    for (name, bytes) in
        [("weak.pem", weak.to_pem_private_key()), ("weak.jwk", weak.to_jwk_private_key().to_string().into_bytes())]
    {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        for alg in ["RS256", "PS256"] {
            let (ok, _, err) = server.cli_raw(&["keys", "import", path.to_str().unwrap(), "--alg", alg], None);
            assert!(!ok, "a 1024-bit key was imported for {alg} from {name}");
            assert!(err.contains("1024 bits is too weak"), "{err}");
        }
    }
    assert_eq!(server.cli(&["keys", "list", "--json"]), before, "nothing was added");
    let strong = dir.join("strong.pem");
    std::fs::write(&strong, RsaKeyPair::generate(2048).unwrap().to_pem_private_key()).unwrap();
    server.cli(&["keys", "import", strong.to_str().unwrap(), "--json"]);
}

/// A production issuer with the key-encryption key in a file on the database's volume gets a
/// warning at start; a loopback development issuer does not.
#[tokio::test]
async fn a_kek_file_beside_the_database_is_warned_about_outside_development() {
    const WARNING: &str = "key-encryption key file is on the same volume as the database";
    let server = Server::start_with(&[("LATCHKEY_ISSUER", "https://login.example.com")]);
    if server.backends().uses_postgres() {
        assert!(!server.output().contains(WARNING), "the database is not a file here");
    } else {
        assert!(server.output().contains(WARNING), "{}", server.output());
    }
    let dev = Server::start();
    assert!(!dev.output().contains(WARNING), "{}", dev.output());
}
