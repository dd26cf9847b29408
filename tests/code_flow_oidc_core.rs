//! OIDC Core §3.1 (authorization code flow) driven by an independent RP library
//! (`openidconnect`), plus RFC 9068 access tokens and single sign-on across clients.

mod common;

use common::*;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

#[tokio::test]
async fn code_flow_with_pkce_and_nonce_verified_by_openidconnect_rp() {
    let server = Server::start();
    server.add_alice();
    let c = server.confidential_client();
    let http = server.rp_http();
    let browser = server.browser();

    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(server.issuer.clone()).unwrap(), &http)
        .await
        .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(c.id.clone()),
        Some(ClientSecret::new(c.secret().to_string())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.to_string()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".to_string()))
        .add_scope(Scope::new("email".to_string()))
        .set_pkce_challenge(challenge)
        .url();

    let before = now();
    let resp = browser.send(browser.client.get(url.as_str())).await;
    let outcome = browser.complete(resp, Some((USER, PASSWORD)), Decision::Allow).await;
    let after = now();
    assert_eq!(outcome.target, CALLBACK, "{outcome:?}");
    assert_eq!(outcome.logins, 1);
    assert_eq!(outcome.consents, 1, "a non-first-party client shows consent");
    assert_eq!(outcome.param("state"), Some(csrf.secret().as_str()));
    assert_eq!(outcome.param("iss"), Some(server.issuer.as_str()));

    let token = client
        .exchange_code(AuthorizationCode::new(outcome.code()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = token.id_token().expect("id_token");
    let id_verifier = client.id_token_verifier();
    let claims = id_token.claims(&id_verifier, &nonce).expect("the RP verifies the ID token");
    assert_eq!(claims.issuer().as_str(), server.issuer);
    let auth_time = claims.auth_time().expect("auth_time").timestamp();
    assert!(
        (before - 1..=after + 1).contains(&auth_time),
        "auth_time {auth_time} not within the login ({before}..{after})"
    );
    let expected_hash = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        token.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected_hash, "at_hash");

    // Claims the library does not model are checked on the raw token.
    let raw = jwt_claims(&id_token.to_string());
    assert_eq!(raw["azp"], c.id.as_str(), "azp: {raw}");
    assert!(raw["sid"].as_str().is_some_and(|s| !s.is_empty()), "sid: {raw}");
    assert!(raw["acr"].as_str().is_some_and(|s| !s.is_empty()), "acr: {raw}");
    let amr = raw["amr"].as_array().unwrap_or_else(|| panic!("amr: {raw}"));
    assert!(amr.iter().any(|m| m == "pwd"), "amr should contain pwd: {raw}");
    assert_eq!(jwt_header(&id_token.to_string())["alg"], "RS256");

    // Userinfo through the RP library agrees with the ID token.
    let userinfo: CoreUserInfoClaims =
        client.user_info(token.access_token().clone(), None).unwrap().request_async(&http).await.expect("userinfo");
    assert_eq!(userinfo.subject(), claims.subject());
    assert_eq!(userinfo.email().map(|e| e.as_str().to_string()), Some("alice@example.com".to_string()));
}

#[tokio::test]
async fn access_token_is_an_rfc9068_jwt() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let t = server.code_flow(&browser, &c, "openid email").await;
    let jwks = server.jwks().await;

    let header = verify_rs256(&t.access_token, &jwks);
    assert!(
        header["typ"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")),
        "typ must be at+jwt (RFC 9068 §2.1): {header}"
    );
    let at = jwt_claims(&t.access_token);
    let id = t.id_claims();
    assert_eq!(at["iss"], server.issuer.as_str(), "{at}");
    assert_eq!(at["sub"], id["sub"], "{at}");
    assert_eq!(at["client_id"], c.id.as_str(), "{at}");
    assert!(at["aud"].is_string() || at["aud"].is_array(), "aud: {at}");
    assert!(at["jti"].as_str().is_some_and(|j| !j.is_empty()), "jti: {at}");
    let (iat, exp) = (at["iat"].as_i64().unwrap(), at["exp"].as_i64().unwrap());
    assert!(exp > iat && exp <= iat + 300 + 5, "default TTL 300 s: {at}");
    let scope = at["scope"].as_str().unwrap_or_else(|| panic!("scope: {at}"));
    let scopes: Vec<&str> = scope.split(' ').collect();
    assert!(scopes.contains(&"openid") && scopes.contains(&"email"), "{at}");
    assert_eq!(t.json["token_type"].as_str().map(str::to_ascii_lowercase), Some("bearer".into()));
    assert!(t.json["expires_in"].as_i64().is_some_and(|e| e > 0 && e <= 300), "{}", t.json);
}

#[tokio::test]
async fn token_response_is_not_cached() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let pkce = Pkce::new();
    let mut p = auth_params(&c, "openid", "st", "n");
    p.push(("code_challenge", &pkce.challenge));
    p.push(("code_challenge_method", "S256"));
    let o = browser.authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::NotExpected).await;
    let r = server.redeem(&c, &o.code(), Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.media_type(), "application/json");
    assert!(
        r.header("cache-control").unwrap_or("").contains("no-store"),
        "RFC 6749 §5.1 Cache-Control: no-store: {r:?}"
    );
}

#[tokio::test]
async fn second_client_signs_in_without_a_second_password() {
    let server = Server::start();
    server.add_alice();
    let c1 = server.first_party_client();
    let c2 = server.add_client("second rp", &["--redirect-uri", CALLBACK2]);
    let c3 = server.add_client("third rp", &["--redirect-uri", "https://rp3.example.com/cb", "--first-party"]);
    let browser = server.browser();
    let t1 = server.code_flow(&browser, &c1, "openid").await;
    assert_eq!(t1.outcome.as_ref().unwrap().logins, 1);

    // Non-first-party: consent, but no password.
    let t2 = server.code_flow(&browser, &c2, "openid").await;
    let o2 = t2.outcome.as_ref().unwrap();
    assert_eq!(o2.logins, 0, "SSO: no second login for another client");
    assert_eq!(o2.consents, 1);
    // First-party: straight back with a code.
    let t3 = server.code_flow(&browser, &c3, "openid").await;
    let o3 = t3.outcome.as_ref().unwrap();
    assert_eq!((o3.logins, o3.consents), (0, 0));

    let (a, b, c) = (t1.id_claims(), t2.id_claims(), t3.id_claims());
    assert_eq!(a["sub"], b["sub"]);
    assert_eq!(a["sub"], c["sub"]);
    assert_eq!(a["sid"], b["sid"], "one browser session");
    assert_eq!(a["auth_time"], b["auth_time"], "the same authentication");
    assert_eq!(b["aud"], c2.id.as_str());
    assert_eq!(b["azp"], c2.id.as_str());

    // A different browser has no session.
    let other = server.browser();
    let r = other.authorize(&auth_params(&c1, "openid", "s", "n")).await;
    let page = other.follow(&r).await;
    assert!(login_form(&page).is_some(), "a new browser must log in: {page:?}");
}

#[tokio::test]
async fn authorization_request_by_post_succeeds() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let r = browser.authorize_post(&auth_params(&c, "openid", "poststate", "postnonce")).await;
    let o = browser.complete(r, Some((USER, PASSWORD)), Decision::NotExpected).await;
    assert_eq!(o.param("state"), Some("poststate"));
    let r = server.redeem(&c, &o.code(), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let t = Tokens::from_json(r.json());
    assert_eq!(t.id_claims()["nonce"], "postnonce");
}
