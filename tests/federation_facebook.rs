//! Upstream federation with Facebook (issue #6): OAuth 2 code flow with `state` and PKCE, the
//! code exchanged with the app secret, the person read from the Graph API (`/me?fields=…`),
//! here a stand-in running inside the test. Facebook's email is never taken as verified, so it
//! never leads to an existing account.

mod common;

use common::upstream::{Misbehave, Person, Upstream, config_env};
use common::*;
use url::Url;

const ID: &str = "facebook";

async fn start(up: &Upstream, allow_registration: bool) -> (Server, TestClient, std::path::PathBuf) {
    let (config, env) = config_env(&up.config(ID, "facebook", allow_registration));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start_with(&env);
    let client = server.first_party_client();
    (server, client, config)
}

/// A Facebook sign-in from a fresh browser, to the tokens.
async fn sign_in(server: &Server, client: &TestClient) -> Tokens {
    let browser = server.browser();
    let params = auth_params(client, "openid email profile", "s", "n");
    let r = browser.federate(&browser.authorize(&params).await, ID).await;
    let o = browser.complete(r, None, Decision::NotExpected).await;
    Tokens::from_json(server.redeem(client, &o.code(), None).await.json())
}

#[tokio::test]
async fn facebook_sign_in_creates_a_user_once_and_finds_it_after() {
    let up = Upstream::facebook().await;
    let (server, client, config) = start(&up, true).await;
    let first = sign_in(&server, &client).await;
    let c = first.id_claims();
    let users = server.db_strings("SELECT id FROM users");
    assert_eq!(users.len(), 1);
    assert_eq!(c["sub"], users[0].as_str());
    // One link; its subject is sealed at rest.
    let subjects = server.db_strings("SELECT subject FROM upstream_identities");
    assert!(subjects.len() == 1 && !subjects[0].contains("upstream-sub-1"), "{subjects:?}");
    assert!(c.get("amr").is_none_or(|a| a.as_array().is_some_and(|a| a.is_empty())), "Facebook gives no amr: {c}");
    // The request at Facebook: code flow, state and PKCE S256, the scopes Facebook knows.
    let req = &up.requests()[0];
    assert_eq!(req["scope"], "email,public_profile");
    assert_eq!(req["code_challenge_method"], "S256");
    assert!(req["redirect_uri"].ends_with("/login/upstream/facebook/callback"), "{req:?}");
    // Graph fields fill the profile; the email is there, not vouched for.
    let info = check_userinfo(&server.userinfo(&first.access_token).await);
    assert_eq!(info["email"], "person@upstream.example", "{info}");
    assert_eq!(info["email_verified"], false, "{info}");
    assert_eq!(info["given_name"], "Upstream", "{info}");
    assert_eq!(info["family_name"], "Person", "{info}");
    assert_eq!(info["picture"], "https://graph.example/picture.jpg", "{info}");

    let second = sign_in(&server, &client).await;
    assert_eq!(second.id_claims()["sub"], c["sub"]);
    assert_eq!(server.db_strings("SELECT id FROM users"), users);
    let _ = std::fs::remove_file(config);
}

#[tokio::test]
async fn a_facebook_email_never_reaches_an_existing_account() {
    let up = Upstream::facebook().await;
    let (server, client, config) = start(&up, false).await;
    server.add_alice();
    up.sign_in_as(Person::new("fb-mallory", "alice@example.com"));
    let browser = server.browser();
    let r = browser.federate(&browser.authorize(&auth_params(&client, "openid", "s", "n")).await, ID).await;
    assert_eq!(r.status, 403, "refused (registration closed), not linked to alice: {r:?}");
    assert!(element_text(&r, "upstream-error").is_some(), "{r:?}");
    assert!(server.db_strings("SELECT user_id FROM upstream_identities").is_empty());
    let _ = std::fs::remove_file(config);
}

#[tokio::test]
async fn facebook_failures_end_on_a_readable_page_and_create_nothing() {
    let up = Upstream::facebook().await;
    let (server, client, config) = start(&up, true).await;
    let params = auth_params(&client, "openid", "s", "n");

    up.misbehave(Misbehave::Deny);
    let browser = server.browser();
    let r = browser.federate(&browser.authorize(&params).await, ID).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(element_text(&r, "upstream-error").unwrap().contains("cancelled"), "{r:?}");
    up.misbehave(Misbehave::Nothing);

    // A code that is not Facebook's, and a state that is not ours.
    let page = browser.follow(&browser.authorize(&params).await).await;
    let form = page.forms().into_iter().find(|f| f.action.ends_with("/upstream/facebook")).unwrap();
    let to_fb = browser.submit(&form, &[]).await;
    let back = Url::parse(browser.get(to_fb.location().unwrap()).await.location().unwrap()).unwrap();
    let state = back.query_pairs().find(|(k, _)| k == "state").unwrap().1.to_string();
    let r = browser.get(&format!("{}?code=garbage&state={state}", back.path())).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(element_text(&r, "upstream-error").unwrap().contains("could not be trusted"), "{r:?}");
    let r = browser.get(&format!("{}?code=garbage&state=forged", back.path())).await;
    assert_eq!(r.status, 400, "{r:?}");

    assert!(server.db_strings("SELECT id FROM users").is_empty());
    assert!(server.db_strings("SELECT user_id FROM upstream_identities").is_empty());
    let _ = std::fs::remove_file(config);
}
