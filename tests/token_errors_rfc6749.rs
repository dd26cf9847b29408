//! RFC 6749 §2.3 (client authentication) and §5.2 (token error responses): exact error codes,
//! statuses and headers for bad clients and malformed requests.

mod common;

use common::*;

async fn setup() -> (Server, TestClient) {
    let server = Server::start();
    let c = server.confidential_client();
    (server, c)
}

const CC: &[(&str, &str)] = &[("grant_type", "refresh_token"), ("refresh_token", "x")];

#[tokio::test]
async fn wrong_secret_is_401_invalid_client() {
    let (server, c) = setup().await;
    server.token(&Auth::Basic(c.id.clone(), "wrong-secret".into()), CC).await.assert_invalid_client();
    server.token(&Auth::Basic(c.id.clone(), String::new()), CC).await.assert_invalid_client();
}

#[tokio::test]
async fn wrong_secret_by_post_is_401_invalid_client() {
    let server = Server::start();
    let c = server.add_client("post", &["--redirect-uri", CALLBACK, "--auth-method", "client_secret_post"]);
    server.token(&Auth::Post(c.id.clone(), "wrong-secret".into()), CC).await.assert_invalid_client();
}

#[tokio::test]
async fn unknown_client_is_401_invalid_client() {
    let (server, _) = setup().await;
    server.token(&Auth::Basic("no-such-client".into(), "secret".into()), CC).await.assert_invalid_client();
    server.token(&Auth::Post("no-such-client".into(), "secret".into()), CC).await.assert_invalid_client();
    server.token(&Auth::Public("no-such-client".into()), CC).await.assert_invalid_client();
}

#[tokio::test]
async fn confidential_client_without_authentication_is_invalid_client() {
    let (server, c) = setup().await;
    server.token(&Auth::Public(c.id.clone()), CC).await.assert_invalid_client();
    server.token(&Auth::Nothing, CC).await.assert_invalid_client();
}

#[tokio::test]
async fn malformed_basic_header_is_invalid_client() {
    let (server, _) = setup().await;
    for header in ["Basic !!!notbase64", "Basic", "Basic Zm9v"] {
        let r = server
            .send(
                server
                    .request(reqwest::Method::POST, "/token")
                    .header("Authorization", header)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body("grant_type=refresh_token&refresh_token=x"),
            )
            .await;
        r.assert_invalid_client();
    }
}

#[tokio::test]
async fn basic_credentials_are_form_url_decoded() {
    // RFC 6749 §2.3.1: id and secret are application/x-www-form-urlencoded before Base64.
    let (server, c) = setup().await;
    let pct = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let header = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", pct(&c.id), pct(c.secret()))
        )
    );
    let r = server
        .send(
            server
                .request(reqwest::Method::POST, "/token")
                .header("Authorization", header)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("grant_type=refresh_token&refresh_token=unknown"),
        )
        .await;
    // Authenticated, so the error is about the grant, not the client.
    r.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn two_authentication_methods_at_once_are_rejected() {
    // RFC 6749 §2.3: a client MUST NOT use more than one method in a request.
    let (server, c) = setup().await;
    let r = server
        .post_form(
            "/token",
            &c.auth(),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", &c.id),
                ("client_secret", c.secret()),
            ],
        )
        .await;
    assert!(matches!(r.status, 400 | 401), "two client authentication methods: {r:?}");
    let e = r.json()["error"].clone();
    assert!(e == "invalid_request" || e == "invalid_client", "{r:?}");
}

async fn raw(server: &Server, c: &TestClient, content_type: Option<&str>, body: Vec<u8>) -> Resp {
    let mut req = server.request(reqwest::Method::POST, "/token").header("Authorization", basic(&c.id, c.secret()));
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    server.send(req.body(body)).await
}

#[tokio::test]
async fn malformed_bodies_are_invalid_request() {
    let (server, c) = setup().await;
    let form = "application/x-www-form-urlencoded";
    let cases: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        ("JSON body", Some("application/json"), br#"{"grant_type":"refresh_token","refresh_token":"x"}"#.to_vec()),
        ("JSON in a form content type", Some(form), br#"{"grant_type":"refresh_token"}"#.to_vec()),
        ("text/plain", Some("text/plain"), b"grant_type=refresh_token&refresh_token=x".to_vec()),
        (
            "multipart",
            Some("multipart/form-data; boundary=x"),
            b"--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nrefresh_token\r\n--x--\r\n".to_vec(),
        ),
        ("no content type", None, b"grant_type=refresh_token&refresh_token=x".to_vec()),
        ("garbage bytes", Some(form), vec![0xff, 0xfe, 0x00, 0x9c, b'=', 0xc3, 0x28]),
        ("empty body", Some(form), Vec::new()),
        ("missing grant_type", Some(form), b"refresh_token=x".to_vec()),
        (
            "duplicate grant_type",
            Some(form),
            b"grant_type=refresh_token&grant_type=refresh_token&refresh_token=x".to_vec(),
        ),
        ("duplicate refresh_token", Some(form), b"grant_type=refresh_token&refresh_token=x&refresh_token=y".to_vec()),
        (
            "duplicate code",
            Some(form),
            format!("grant_type=authorization_code&code=a&code=b&redirect_uri={CALLBACK}").into_bytes(),
        ),
    ];
    for (what, ct, body) in cases {
        let r = raw(&server, &c, ct, body).await;
        assert_eq!(r.status, 400, "{what}: {r:?}");
        assert_eq!(r.json()["error"], "invalid_request", "{what}: {r:?}");
        r.assert_oauth_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn duplicate_client_id_in_body_is_invalid_request() {
    let server = Server::start();
    let c = server.add_client("pub", &["--redirect-uri", CALLBACK, "--public"]);
    let body = format!("grant_type=refresh_token&refresh_token=x&client_id={0}&client_id={0}", c.id);
    let r = server
        .send(
            server
                .request(reqwest::Method::POST, "/token")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await;
    r.assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn unknown_grant_type_is_unsupported_grant_type() {
    let (server, c) = setup().await;
    for g in ["password", "implicit", "urn:ietf:params:oauth:grant-type:saml2-bearer", "foo"] {
        server
            .token(&c.auth(), &[("grant_type", g), ("username", "a"), ("password", "b")])
            .await
            .assert_oauth_error(400, "unsupported_grant_type");
    }
}

#[tokio::test]
async fn unknown_code_errors_are_json_invalid_grant() {
    let (server, c) = setup().await;
    let r = server
        .token(&c.auth(), &[("grant_type", "authorization_code"), ("code", "zzz"), ("redirect_uri", CALLBACK)])
        .await;
    r.assert_oauth_error(400, "invalid_grant");
    let r = server
        .token(
            &c.auth(),
            &[("grant_type", "authorization_code"), ("code", "zzz"), ("redirect_uri", "https://elsewhere.example/cb")],
        )
        .await;
    r.assert_oauth_error(400, "invalid_grant");
}
