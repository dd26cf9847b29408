//! Issue #20, medium 4: logout cannot be forced. RP-Initiated Logout 1.0 §2 lets the OP skip the
//! confirmation only when the `id_token_hint` names the browser's own session; another user's ID
//! token, an ID token of an earlier session, or a hint sent to a browser with no session all ask
//! the user first, and a confirmation form only ends the session it was shown for.

mod common;

use common::*;

const BOB: &str = "bob";
const BOB_PASSWORD: &str = "another long passphrase";

/// A code flow in `browser` signed in as `user`; returns its tokens.
async fn sign_in_as(server: &Server, browser: &Browser, client: &TestClient, user: &str, password: &str) -> Tokens {
    let pkce = Pkce::new();
    let mut p = auth_params(client, "openid", "st", "nonce");
    p.extend([("code_challenge", pkce.challenge.as_str()), ("code_challenge_method", "S256")]);
    let outcome = browser.authorize_and_complete(&p, Some((user, password)), Decision::NotExpected).await;
    let r = server.redeem(client, &outcome.code(), Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    Tokens::from_json(r.json())
}

async fn logout_with_hint(browser: &Browser, hint: &str) -> Resp {
    browser
        .get(&format!(
            "/logout?{}",
            encode_form(&[("id_token_hint", hint), ("post_logout_redirect_uri", POST_LOGOUT), ("state", "s")])
        ))
        .await
}

fn confirmation_form(r: &Resp) -> Option<Form> {
    r.forms().into_iter().find(|f| f.action.ends_with("/logout") && f.has_button("confirm", "yes"))
}

/// The browser still has a session: `prompt=none` gets a code.
async fn assert_signed_in(browser: &Browser, client: &TestClient) {
    let mut p = auth_params(client, "openid", "pn", "pn-nonce");
    p.push(("prompt", "none"));
    browser.authorize_and_complete(&p, None, Decision::NotExpected).await.code();
}

/// The attack of the review: Bob sends Alice's browser to `/logout` with his own ID token; her
/// session must not end without her saying so.
#[tokio::test]
async fn another_users_id_token_hint_asks_before_ending_the_session() {
    let server = Server::start();
    server.add_alice();
    server.add_user(BOB, BOB_PASSWORD);
    let client = server.first_party_client();
    let alice = server.browser();
    server.code_flow(&alice, &client, "openid").await;
    let bobs = sign_in_as(&server, &server.browser(), &client, BOB, BOB_PASSWORD).await;

    let r = logout_with_hint(&alice, bobs.id_token()).await;
    assert_eq!(r.status, 200, "a page, not a redirect: {r:?}");
    assert!(r.location().is_none(), "{r:?}");
    assert!(confirmation_form(&r).is_some(), "the user is asked: {r:?}");
    assert_signed_in(&alice, &client).await;

    // Confirming is the user's own decision, and then it works.
    let done = alice.submit(&confirmation_form(&r).unwrap(), &[("confirm", "yes")]).await;
    assert!(done.status < 400, "{done:?}");
    let mut p = auth_params(&client, "openid", "pn", "pn-nonce");
    p.push(("prompt", "none"));
    let o = alice.authorize_and_complete(&p, None, Decision::NotExpected).await;
    assert_eq!(check_authorization_error(&o, Some("pn"), &server.issuer), "login_required");
}

/// The same user's ID token from an earlier session (another `sid`) does not end this one.
#[tokio::test]
async fn an_id_token_of_an_earlier_session_asks_first() {
    let server = Server::start();
    server.add_alice();
    let client = server.first_party_client();
    let browser = server.browser();
    let old = server.code_flow(&browser, &client, "openid").await;
    let ended = logout_with_hint(&browser, old.id_token()).await;
    assert_eq!(ended.status, 302, "its own session's hint ends it at once: {ended:?}");
    let new = server.code_flow(&browser, &client, "openid").await;
    assert_ne!(old.id_claims()["sid"], new.id_claims()["sid"]);

    let r = logout_with_hint(&browser, old.id_token()).await;
    assert!(confirmation_form(&r).is_some(), "an old session's hint asks: {r:?}");
    assert_signed_in(&browser, &client).await;

    // The current session's own hint still skips the question.
    let r = logout_with_hint(&browser, new.id_token()).await;
    assert_eq!(r.status, 302, "{r:?}");
    assert!(r.location().unwrap().starts_with(POST_LOGOUT), "{r:?}");
}

/// A browser without a session is asked too, instead of being sent on to the client.
#[tokio::test]
async fn a_hint_without_a_session_asks_first() {
    let server = Server::start();
    server.add_alice();
    let client = server.first_party_client();
    let tokens = server.code_flow(&server.browser(), &client, "openid").await;
    let r = logout_with_hint(&server.browser(), tokens.id_token()).await;
    assert!(r.location().is_none(), "{r:?}");
    assert!(confirmation_form(&r).is_some(), "{r:?}");
}

/// A confirmation form obtained for one session cannot end another: here the page was fetched
/// before signing in, then submitted from the signed-in browser.
#[tokio::test]
async fn a_confirmation_is_bound_to_the_session_it_was_shown_for() {
    let server = Server::start();
    server.add_alice();
    let client = server.first_party_client();
    let browser = server.browser();
    let page = browser.get("/logout").await;
    let form = confirmation_form(&page).unwrap_or_else(|| panic!("{page:?}"));
    server.code_flow(&browser, &client, "openid").await;

    let r = browser.submit(&form, &[("confirm", "yes")]).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_signed_in(&browser, &client).await;

    // A form fetched now, for this session, works.
    let page = browser.get("/logout").await;
    let r = browser.submit(&confirmation_form(&page).unwrap(), &[("confirm", "yes")]).await;
    assert!(r.status < 400, "{r:?}");
}
