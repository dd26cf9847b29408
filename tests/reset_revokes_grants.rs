//! Issue #20, medium 6 (operator side): after `users set-password` or `users reset-factors`,
//! whoever held the account before is out. Both end the user's sessions and revoke their grants,
//! `offline_access` refresh tokens included, so a token obtained before no longer works.

mod common;

use common::*;

/// Alice signed in with `offline_access`: her browser, client and refresh token.
async fn signed_in() -> (Server, TestClient, Browser, Tokens) {
    let server = Server::start();
    server.add_alice();
    let client = server.first_party_client();
    let browser = server.browser();
    let tokens = server.code_flow(&browser, &client, "openid offline_access").await;
    assert_eq!(server.introspect(&client, tokens.refresh_token()).await.json()["active"], true);
    (server, client, browser, tokens)
}

/// Refreshing with the family of `tokens` fails, its access token is inactive, and the browser
/// must sign in again.
async fn assert_locked_out(server: &Server, client: &TestClient, browser: &Browser, tokens: &Tokens) {
    server.refresh(client, tokens.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
    assert_eq!(server.introspect(client, &tokens.access_token).await.json()["active"], false);
    let mut p = auth_params(client, "openid", "pn", "n");
    p.push(("prompt", "none"));
    let o = browser.authorize_and_complete(&p, None, Decision::NotExpected).await;
    assert_eq!(check_authorization_error(&o, Some("pn"), &server.issuer), "login_required");
}

#[tokio::test]
async fn set_password_revokes_refresh_tokens_and_ends_sessions() {
    let (server, client, browser, tokens) = signed_in().await;
    server.cli_text(&["users", "set-password", USER, "--password-stdin"], Some("a brand new passphrase"));
    assert_locked_out(&server, &client, &browser, &tokens).await;
}

#[tokio::test]
async fn reset_factors_revokes_refresh_tokens_and_ends_sessions() {
    let (server, client, browser, tokens) = signed_in().await;
    let out = server.cli(&["users", "reset-factors", USER, "--json"]);
    assert_eq!(out["username"], USER, "{out}");
    assert_locked_out(&server, &client, &browser, &tokens).await;
}
