//! Mutual-TLS client authentication and certificate-bound tokens (RFC 8705) behind a
//! TLS-terminating proxy, driven as the proxy would: a CA and client certificates made here with
//! OpenSSL (independently of the server's parser), passed in the certificate header in the forms
//! proxies write (nginx's URL-encoded PEM, Envoy's `X-Forwarded-Client-Cert`, RFC 9440, bare
//! base64 DER). `tls_client_auth` by DN and by each kind of subject alternative name,
//! `self_signed_tls_client_auth` against the client's JWK Set, the header from a peer that is
//! not a trusted proxy ignored, tokens bound to the certificate at userinfo, introspection,
//! refresh and the gateway, and a FAPI 2.0 client that uses mTLS instead of DPoP.

mod common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::*;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509NameBuilder};
use serde_json::json;
use sha2::{Digest, Sha256};

/// The header the proxy writes (the default of `mtls.header`).
const HEADER: &str = "X-Client-Cert";
/// The subject of the CA-issued client certificate, as RFC 4514 writes it (last RDN first).
const DN: &str = "CN=svc.example.com,O=Example\\, Inc.,C=SE";

/// A server that believes the certificate header from this test (its peer is 127.0.0.1).
fn behind_proxy() -> Server {
    Server::start_with(&[("LATCHKEY_MTLS_TRUSTED_PROXIES", "127.0.0.1/32")])
}

/// A client certificate and what the test needs of it.
struct Cert {
    x509: X509,
    key: PKey<Private>,
}

fn p256() -> PKey<Private> {
    PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap()).unwrap()
}

/// A certificate for `subject` (in certificate order: C, O, CN) with `sans`, signed by
/// `issuer` (none: self-signed).
fn certificate(subject: &[(&str, &str)], sans: &[(&str, &str)], issuer: Option<&Cert>) -> Cert {
    let key = p256();
    let mut name = X509NameBuilder::new().unwrap();
    for (k, v) in subject {
        name.append_entry_by_text(k, v).unwrap();
    }
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&Asn1Integer::from_bn(&serial).unwrap()).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map(|i| i.x509.subject_name()).unwrap_or(&name)).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap()).unwrap();
    if !sans.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for (kind, v) in sans {
            match *kind {
                "dns" => san.dns(v),
                "uri" => san.uri(v),
                "ip" => san.ip(v),
                "email" => san.email(v),
                _ => unreachable!(),
            };
        }
        let ext = san.build(&b.x509v3_context(issuer.map(|i| i.x509.as_ref()), None)).unwrap();
        b.append_extension(ext).unwrap();
    }
    b.sign(issuer.map(|i| &i.key).unwrap_or(&key), MessageDigest::sha256()).unwrap();
    Cert { x509: b.build(), key }
}

impl Cert {
    fn ca() -> Cert {
        certificate(&[("O", "Example CA")], &[], None)
    }

    /// The service's certificate from `ca`, with one name of each kind.
    fn service(ca: &Cert) -> Cert {
        certificate(
            &[("C", "SE"), ("O", "Example, Inc."), ("CN", "svc.example.com")],
            &[
                ("dns", "svc.example.com"),
                ("uri", "spiffe://example.com/svc"),
                ("ip", "10.1.2.3"),
                ("email", "svc@example.com"),
            ],
            Some(ca),
        )
    }

    fn pem(&self) -> String {
        String::from_utf8(self.x509.to_pem().unwrap()).unwrap()
    }

    fn der(&self) -> Vec<u8> {
        self.x509.to_der().unwrap()
    }

    /// As nginx's `$ssl_client_escaped_cert`: the PEM, URL-encoded.
    fn nginx(&self) -> String {
        percent_encoding::utf8_percent_encode(&self.pem(), percent_encoding::NON_ALPHANUMERIC).to_string()
    }

    /// The PEM as a form encoder writes it (a space as `+`).
    fn form_encoded(&self) -> String {
        form_urlencoded::byte_serialize(self.pem().as_bytes()).collect()
    }

    /// The PEM with its line breaks turned into tabs (as nginx's older `$ssl_client_cert`).
    fn folded(&self) -> String {
        self.pem().trim_end().replace('\n', "\n\t").replace('\n', "")
    }

    /// As Envoy's `X-Forwarded-Client-Cert` element.
    fn envoy(&self) -> String {
        format!(r#"By=spiffe://example.com/proxy;Hash=abc;Cert="{}";Subject="CN=svc,O=x""#, self.nginx())
    }

    /// As RFC 9440 `Client-Cert`: the DER as a structured-field byte sequence.
    fn rfc9440(&self) -> String {
        format!(":{}:", STANDARD.encode(self.der()))
    }

    fn base64_der(&self) -> String {
        STANDARD.encode(self.der())
    }

    /// `x5t#S256` (RFC 8705 §3.1), computed here.
    fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.der()))
    }

    /// The public key as a JWK Set written where `--jwks` reads it.
    fn jwks_file(&self, server: &Server) -> String {
        let ec = self.key.ec_key().unwrap();
        let mut ctx = openssl::bn::BigNumContext::new().unwrap();
        let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
        ec.public_key().affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx).unwrap();
        let pad = |n: &BigNum| URL_SAFE_NO_PAD.encode(n.to_vec_padded(32).unwrap());
        let set = json!({ "keys": [{ "kty": "EC", "crv": "P-256", "x": pad(&x), "y": pad(&y), "kid": "tls" }] });
        let path = server.data_dir.join(format!("jwks-{}.json", &random_string()[..8]));
        std::fs::write(&path, set.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

/// POSTs a form to `path` with the certificate header `cert` (as the proxy would) and extra
/// headers.
async fn post(server: &Server, path: &str, params: &[(&str, &str)], cert: Option<&str>) -> Resp {
    let mut req = server
        .request(reqwest::Method::POST, path)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(encode_form(params));
    if let Some(c) = cert {
        req = req.header(HEADER, c);
    }
    server.send(req).await
}

async fn userinfo(server: &Server, at: &str, cert: Option<&str>) -> Resp {
    let mut req = server.request(reqwest::Method::GET, "/userinfo").header("Authorization", format!("Bearer {at}"));
    if let Some(c) = cert {
        req = req.header(HEADER, c);
    }
    server.send(req).await
}

/// A client_credentials request of `client_id` presenting `cert`.
async fn service_token(server: &Server, client_id: &str, cert: Option<&str>) -> Resp {
    post(server, "/token", &[("grant_type", "client_credentials"), ("client_id", client_id)], cert).await
}

/// A client_credentials client authenticating with mTLS by `how`.
fn service(server: &Server, how: &[&str]) -> String {
    let mut args = vec!["--grant-type", "client_credentials", "--scope", "reports"];
    args.extend_from_slice(how);
    server.add_client("svc", &args).id
}

fn assert_invalid_token(r: &Resp) {
    assert_eq!(r.status, 401, "{r:?}");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(challenge.contains("invalid_token"), "{r:?}");
}

#[tokio::test]
async fn discovery_offers_mtls_only_behind_a_trusted_proxy() {
    let plain = Server::start();
    let d = plain.discovery().await;
    assert_eq!(d["tls_client_certificate_bound_access_tokens"], false);
    for field in ["token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported"] {
        let methods = d[field].as_array().unwrap();
        assert!(!methods.contains(&json!("tls_client_auth")), "{field}: {methods:?}");
    }
    let server = behind_proxy();
    let d = server.discovery().await;
    assert_eq!(d["tls_client_certificate_bound_access_tokens"], true);
    for field in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        let methods = d[field].as_array().unwrap();
        for m in ["tls_client_auth", "self_signed_tls_client_auth", "private_key_jwt"] {
            assert!(methods.contains(&json!(m)), "{field}: {methods:?}");
        }
    }
    assert!(d.get("mtls_endpoint_aliases").is_none(), "{d}");
}

/// RFC 8705 §2.1: the certificate carries the registered subject DN (compared by RFC 4514
/// rules) or subject alternative name, in whichever form the proxy writes it.
#[tokio::test]
async fn tls_client_auth_by_subject_dn_and_each_san() {
    let server = behind_proxy();
    let ca = Cert::ca();
    let cert = Cert::service(&ca);
    let by_dn = service(&server, &["--auth-method", "tls_client_auth", "--tls-subject-dn", DN]);
    for form in [cert.nginx(), cert.form_encoded(), cert.folded(), cert.envoy(), cert.rfc9440(), cert.base64_der()] {
        let r = service_token(&server, &by_dn, Some(&form)).await;
        assert_eq!(r.status, 200, "{form}: {r:?}");
        assert_eq!(r.json()["token_type"], "Bearer");
    }
    // The same DN written otherwise: case, spaces, an escape in hex, a type by its OID.
    let same = "cn=SVC.example.com,  o=example\\2C inc. ,2.5.4.6=se";
    let by_same = service(&server, &["--auth-method", "tls_client_auth", "--tls-subject-dn", same]);
    assert_eq!(service_token(&server, &by_same, Some(&cert.nginx())).await.status, 200);
    for (flag, value) in [
        ("--tls-san-dns", "svc.example.com"),
        ("--tls-san-uri", "spiffe://example.com/svc"),
        ("--tls-san-ip", "10.1.2.3"),
        ("--tls-san-email", "svc@example.com"),
    ] {
        let id = service(&server, &["--auth-method", "tls_client_auth", flag, value]);
        let r = service_token(&server, &id, Some(&cert.nginx())).await;
        assert_eq!(r.status, 200, "{flag} {value}: {r:?}");
    }

    // Refused with invalid_client: another DN or name, the RDNs in certificate order, another
    // certificate, none, or something that is no certificate.
    for (flag, value) in [
        ("--tls-subject-dn", "CN=other.example.com,O=Example\\, Inc.,C=SE"),
        ("--tls-subject-dn", "C=SE,O=Example\\, Inc.,CN=svc.example.com"),
        ("--tls-san-dns", "other.example.com"),
        ("--tls-san-uri", "spiffe://example.com/other"),
        ("--tls-san-ip", "10.1.2.4"),
        ("--tls-san-email", "other@example.com"),
    ] {
        let id = service(&server, &["--auth-method", "tls_client_auth", flag, value]);
        service_token(&server, &id, Some(&cert.nginx())).await.assert_invalid_client();
    }
    let stranger = certificate(&[("CN", "svc.example.com")], &[("dns", "svc.example.com")], Some(&ca));
    service_token(&server, &by_dn, Some(&stranger.nginx())).await.assert_invalid_client();
    service_token(&server, &by_dn, None).await.assert_invalid_client();
    service_token(&server, &by_dn, Some("not%20a%20certificate")).await.assert_invalid_client();
    // A certificate is no secret: a client_secret_basic client is not authenticated by one.
    let secret = server.add_client("basic", &["--grant-type", "client_credentials", "--scope", "reports"]);
    service_token(&server, &secret.id, Some(&cert.nginx())).await.assert_invalid_client();

    // The other endpoints that authenticate clients: introspection and revocation.
    let r = service_token(&server, &by_dn, Some(&cert.nginx())).await;
    let at = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = post(&server, "/introspect", &[("token", &at), ("client_id", &by_dn)], Some(&cert.nginx())).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["active"], true);
    post(&server, "/introspect", &[("token", &at), ("client_id", &by_dn)], Some(&stranger.nginx()))
        .await
        .assert_invalid_client();
    let r = post(&server, "/revoke", &[("token", &at), ("client_id", &by_dn)], Some(&cert.nginx())).await;
    assert_eq!(r.status, 200, "{r:?}");

    // Registration refuses what cannot work.
    for (args, why) in [
        (vec!["--auth-method", "tls_client_auth"], "certificate subject"),
        (vec!["--auth-method", "tls_client_auth", "--tls-subject-dn", "XX=1"], "unknown attribute type"),
        (vec!["--auth-method", "tls_client_auth", "--tls-san-ip", "10.1.2"], "IPv4 or IPv6"),
        (vec!["--tls-san-dns", "svc.example.com"], "for tls_client_auth clients"),
        (vec!["--auth-method", "self_signed_tls_client_auth"], "needs its keys"),
    ] {
        let mut all = vec!["clients", "add", "--name", "x", "--grant-type", "client_credentials"];
        all.extend(args.iter());
        let (ok, _, stderr) = server.cli_raw(&all, None);
        assert!(!ok && stderr.contains(why), "{all:?}: {stderr}");
    }
    let both = ["clients", "add", "--name", "x", "--tls-subject-dn", DN, "--tls-san-dns", "svc.example.com"];
    assert!(!server.cli_raw(&both, None).0, "two subjects");
}

/// RFC 8705 §2.2: a self-signed certificate whose key is in the client's JWK Set.
#[tokio::test]
async fn self_signed_tls_client_auth_matches_the_jwks() {
    let server = behind_proxy();
    let own = certificate(&[("CN", "self-signed svc")], &[], None);
    let jwks = own.jwks_file(&server);
    let id = service(&server, &["--auth-method", "self_signed_tls_client_auth", "--jwks", &jwks]);
    let r = service_token(&server, &id, Some(&own.nginx())).await;
    assert_eq!(r.status, 200, "{r:?}");
    // Another self-signed certificate with the same subject, another key.
    let other = certificate(&[("CN", "self-signed svc")], &[], None);
    service_token(&server, &id, Some(&other.nginx())).await.assert_invalid_client();
    service_token(&server, &id, None).await.assert_invalid_client();
    let shown = server.cli(&["clients", "show", &id, "--json"]);
    assert_eq!(shown["auth_method"], "self_signed_tls_client_auth", "{shown}");
}

/// RFC 8705 §2.1.2 and §3.4 metadata at the registration endpoint (RFC 7591), in the admin
/// view, and changed by `clients update`.
#[tokio::test]
async fn registration_admin_and_update_carry_the_mtls_metadata() {
    let server = Server::start_with(&[
        ("LATCHKEY_MTLS_TRUSTED_PROXIES", "127.0.0.1"),
        ("LATCHKEY_DYNAMIC_REGISTRATION_OPEN", "true"),
    ]);
    let cert = Cert::service(&Cert::ca());
    let body = json!({
        "client_name": "registered svc",
        "grant_types": ["client_credentials"],
        "response_types": [],
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_san_uri": "spiffe://example.com/svc",
        "tls_client_certificate_bound_access_tokens": true,
    });
    let r = server.send(server.request(reqwest::Method::POST, "/register").json(&body)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let reg = r.json();
    assert_eq!(reg["token_endpoint_auth_method"], "tls_client_auth", "{reg}");
    assert_eq!(reg["tls_client_auth_san_uri"], "spiffe://example.com/svc", "{reg}");
    assert_eq!(reg["tls_client_certificate_bound_access_tokens"], true, "{reg}");
    assert!(reg.get("client_secret").is_none(), "{reg}");
    let id = reg["client_id"].as_str().unwrap();
    let r = service_token(&server, id, Some(&cert.nginx())).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(jwt_claims(r.json()["access_token"].as_str().unwrap())["cnf"]["x5t#S256"], cert.thumbprint());
    // Two subjects, or a bad one, are refused with invalid_client_metadata.
    for extra in [json!({ "tls_client_auth_san_dns": "svc.example.com" }), json!({ "tls_client_auth_san_uri": 7 })] {
        let mut b = body.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        let r = server.send(server.request(reqwest::Method::POST, "/register").json(&b)).await;
        r.assert_oauth_error(400, "invalid_client_metadata");
    }

    // The operator's view and update.
    let id = service(&server, &["--auth-method", "tls_client_auth", "--tls-san-dns", "svc.example.com"]);
    let shown = server.cli(&["clients", "show", &id, "--json"]);
    assert_eq!(shown["tls_client_auth_san_dns"], "svc.example.com", "{shown}");
    assert_eq!(shown["tls_client_certificate_bound_access_tokens"], false, "{shown}");
    // Changed before the server has read (and cached) the client.
    server.cli(&["clients", "update", &id, "--tls-subject-dn", DN, "--cert-bound-tokens", "true", "--json"]);
    let shown = server.cli(&["clients", "show", &id, "--json"]);
    assert_eq!(shown["tls_client_auth_subject_dn"], DN, "{shown}");
    assert!(shown.get("tls_client_auth_san_dns").is_none(), "{shown}");
    assert_eq!(shown["tls_client_certificate_bound_access_tokens"], true, "{shown}");
    let r = service_token(&server, &id, Some(&cert.nginx())).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(jwt_claims(r.json()["access_token"].as_str().unwrap())["cnf"]["x5t#S256"], cert.thumbprint());
    // The admin API takes the same names.
    let admin = server.add_client("admin", &["--grant-type", "client_credentials", "--scope", "latchkey:admin"]);
    let t = server.token(&admin.auth(), &[("grant_type", "client_credentials"), ("scope", "latchkey:admin")]).await;
    let t = t.json()["access_token"].as_str().unwrap().to_owned();
    let new = json!({ "name": "api svc", "grant_types": ["client_credentials"], "auth_method": "tls_client_auth",
                      "tls_client_auth_san_ip": "10.1.2.3", "tls_client_certificate_bound_access_tokens": true });
    let req = server.request(reqwest::Method::POST, "/admin/api/v1/clients").bearer_auth(&t).json(&new);
    let r = server.send(req).await;
    assert_eq!(r.status, 201, "{r:?}");
    let api_id = r.json()["client_id"].as_str().unwrap().to_owned();
    let r = server
        .send(server.request(reqwest::Method::GET, &format!("/admin/api/v1/clients/{api_id}")).bearer_auth(&t))
        .await;
    assert_eq!(r.json()["tls_client_auth_san_ip"], "10.1.2.3", "{r:?}");
    assert_eq!(r.json()["tls_client_certificate_bound_access_tokens"], true, "{r:?}");
    assert_eq!(service_token(&server, &api_id, Some(&cert.nginx())).await.status, 200);
    // A subject for a client that does not use tls_client_auth is refused.
    let basic = server.add_client("basic", &["--redirect-uri", CALLBACK]);
    let (ok, _, stderr) = server.cli_raw(&["clients", "update", &basic.id, "--tls-san-dns", "x.example.com"], None);
    assert!(!ok && stderr.contains("tls_client_auth"), "{stderr}");
}

/// Only a trusted proxy's header counts: anyone else's is dropped, logged and audited.
#[tokio::test]
async fn the_header_from_an_untrusted_peer_is_ignored() {
    let server = Server::start_with(&[("LATCHKEY_MTLS_TRUSTED_PROXIES", "192.0.2.10")]);
    let cert = Cert::service(&Cert::ca());
    let id = service(&server, &["--auth-method", "tls_client_auth", "--tls-subject-dn", DN]);
    service_token(&server, &id, Some(&cert.nginx())).await.assert_invalid_client();
    let events = server.cli(&["audit", "--kind", "mtls.untrusted_header", "--json"]);
    let events = events.as_array().expect("audit events");
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].to_string().contains("/token"), "{events:?}");
    // Without mTLS configured at all the header is never read either.
    let plain = Server::start();
    let id = service(&plain, &["--auth-method", "tls_client_auth", "--tls-subject-dn", DN]);
    service_token(&plain, &id, Some(&cert.nginx())).await.assert_invalid_client();
}

/// The tokens of a code flow for `client`, redeemed with `cert`.
async fn code_flow(server: &Server, client: &TestClient, auth: &[(&str, &str)], cert: Option<&str>) -> Resp {
    let pkce = Pkce::new();
    let state = random_string();
    let params = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", CALLBACK),
        ("scope", "openid email offline_access"),
        ("state", state.as_str()),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let o = server.browser().authorize_and_complete(&params, Some((USER, PASSWORD)), Decision::Allow).await;
    let code = o.code();
    let mut p = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    p.extend_from_slice(auth);
    post(server, "/token", &p, cert).await
}

/// RFC 8705 §3: tokens of a client registered for them carry `cnf.x5t#S256`; userinfo, the
/// gateway and token exchange take them only with that certificate; introspection shows `cnf`.
/// §4: a public client's refresh token is bound to its certificate too.
#[tokio::test]
async fn certificate_bound_tokens() {
    // The gateway protects app.localhost; the proxy in front of it passes certificates too.
    let dir = std::env::temp_dir().join(format!("latchkey-mtls-{}", random_string()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("latchkey.toml");
    let rules = "[gateway]\nenabled = true\ncookie_domain = \"localhost\"\n\n[[gateway.rules]]\n\
                 hosts = [\"app.localhost\"]\npolicy = \"one_factor\"\n\n[mtls]\ntrusted_proxies = [\"127.0.0.1\"]\n";
    std::fs::write(&config, rules).unwrap();
    let server =
        Server::start_with(&[("LATCHKEY_CONFIG", config.to_str().unwrap()), ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1")]);
    server.add_alice();
    let ca = Cert::ca();
    let cert = Cert::service(&ca);
    let other = certificate(&[("C", "SE"), ("O", "Example, Inc."), ("CN", "svc.example.com")], &[], Some(&ca));
    let client = server.add_client(
        "bound rp",
        &[
            "--redirect-uri",
            CALLBACK,
            "--first-party",
            "--resource-server",
            "--auth-method",
            "tls_client_auth",
            "--tls-san-dns",
            "svc.example.com",
            "--cert-bound-tokens",
        ],
    );
    let me = [("client_id", client.id.as_str())];

    let r = code_flow(&server, &client, &me, Some(&cert.nginx())).await;
    assert_eq!(r.status, 200, "{r:?}");
    let tokens = r.json();
    assert_eq!(tokens["token_type"], "Bearer");
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_claims(&at)["cnf"]["x5t#S256"], cert.thumbprint());

    // userinfo: without the certificate, or with another, invalid_token (§3.1).
    assert_invalid_token(&userinfo(&server, &at, None).await);
    assert_invalid_token(&userinfo(&server, &at, Some(&other.nginx())).await);
    let r = userinfo(&server, &at, Some(&cert.rfc9440())).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["email"], "alice@example.com");

    // Introspection shows the binding (§3.2).
    let r = post(&server, "/introspect", &[("token", &at), ("client_id", &client.id)], Some(&cert.nginx())).await;
    let v = r.json();
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["cnf"]["x5t#S256"], cert.thumbprint(), "{v}");
    assert_eq!(v["token_type"], "Bearer");

    // The gateway's bearer check holds the token to the certificate too.
    let check = |c: Option<String>| {
        let mut req = server
            .request(reqwest::Method::GET, "/gateway/auth")
            .header("Authorization", format!("Bearer {at}"))
            .header("X-Forwarded-Host", "app.localhost")
            .header("X-Forwarded-Uri", "/")
            .header("X-Forwarded-Proto", "http");
        if let Some(c) = c {
            req = req.header(HEADER, c);
        }
        req
    };
    assert_invalid_token(&server.send(check(None)).await);
    assert_invalid_token(&server.send(check(Some(other.nginx()))).await);
    let r = server.send(check(Some(cert.nginx()))).await;
    assert_eq!(r.status, 200, "{r:?}");

    // Without its certificate at the token endpoint a bound client gets nothing.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let p = [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", &client.id)];
    post(&server, "/token", &p, None).await.assert_invalid_client();
    let r = post(&server, "/token", &p, Some(&cert.nginx())).await;
    assert_eq!(r.status, 200, "{r:?}");

    // A public client: its refresh token is bound to the certificate it redeemed the code with.
    let public = server
        .add_client("public bound", &["--redirect-uri", CALLBACK, "--public", "--first-party", "--cert-bound-tokens"]);
    let me = [("client_id", public.id.as_str())];
    code_flow(&server, &public, &me, None).await.assert_oauth_error(400, "invalid_request");
    let r = code_flow(&server, &public, &me, Some(&cert.nginx())).await;
    assert_eq!(r.status, 200, "{r:?}");
    let tokens = r.json();
    assert_eq!(jwt_claims(tokens["access_token"].as_str().unwrap())["cnf"]["x5t#S256"], cert.thumbprint());
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let p = [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", &public.id)];
    post(&server, "/token", &p, Some(&other.nginx())).await.assert_oauth_error(400, "invalid_grant");
    let r = post(&server, "/token", &p, Some(&cert.nginx())).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// FAPI 2.0 §5.3.2.1-4 and -6: mTLS as client authentication and as the sender constraint, in
/// place of private_key_jwt and DPoP: PAR, the code flow and userinfo with the certificate only.
#[tokio::test]
async fn fapi2_client_with_mtls_instead_of_dpop() {
    let server = behind_proxy();
    server.add_alice();
    let cert = Cert::service(&Cert::ca());
    let mtls = ["--auth-method", "tls_client_auth", "--tls-subject-dn", DN];
    let base = ["--redirect-uri", CALLBACK, "--first-party", "--profile", "fapi2", "--id-token-alg", "ES256"];
    let mut args = base.to_vec();
    args.extend(mtls);
    args.push("--cert-bound-tokens");
    let client = server.add_client("fapi mtls", &args);

    let pkce = Pkce::new();
    let state = random_string();
    let params = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", CALLBACK),
        ("scope", "openid email"),
        ("state", state.as_str()),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    // PAR authenticates the client by its certificate.
    post(&server, "/par", &params, None).await.assert_invalid_client();
    let r = post(&server, "/par", &params, Some(&cert.nginx())).await;
    assert_eq!(r.status, 201, "{r:?}");
    let uri = r.json()["request_uri"].as_str().unwrap().to_owned();
    let o = server
        .browser()
        .authorize_and_complete(
            &[("client_id", &client.id), ("request_uri", &uri)],
            Some((USER, PASSWORD)),
            Decision::Allow,
        )
        .await;
    assert_eq!(o.param("iss"), Some(server.issuer.as_str()));
    let code = o.code();
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", pkce.verifier.as_str()),
        ("client_id", client.id.as_str()),
    ];
    // No DPoP proof, and none needed: the token is bound to the certificate.
    let r = post(&server, "/token", &redeem, Some(&cert.nginx())).await;
    assert_eq!(r.status, 200, "{r:?}");
    let tokens = r.json();
    assert_eq!(tokens["token_type"], "Bearer");
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(at)["cnf"]["x5t#S256"], cert.thumbprint());
    assert_eq!(jwt_header(tokens["id_token"].as_str().unwrap())["alg"], "ES256");
    assert_invalid_token(&userinfo(&server, at, None).await);
    assert_eq!(userinfo(&server, at, Some(&cert.nginx())).await.status, 200);

    // A FAPI 2.0 mTLS client without certificate-bound tokens still needs DPoP.
    let mut args = base.to_vec();
    args.extend(mtls);
    let unbound = server.add_client("fapi mtls dpop", &args);
    let p = [("grant_type", "client_credentials"), ("client_id", unbound.id.as_str())];
    post(&server, "/token", &p, Some(&cert.nginx())).await.assert_oauth_error(400, "invalid_dpop_proof");
    // client_secret_basic stays refused under the profile.
    let mut args = base.to_vec();
    args.extend(["--auth-method", "client_secret_basic"]);
    let mut all = vec!["clients", "add", "--name", "fapi basic"];
    all.extend(args);
    let (ok, _, stderr) = server.cli_raw(&all, None);
    assert!(!ok && stderr.contains("private_key_jwt or mTLS"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Through a real nginx
// ---------------------------------------------------------------------------------------------

const NGINX: &str = "/usr/sbin/nginx";

/// nginx terminating TLS in front of the server, asking for client certificates without
/// checking their issuer and passing them as `$ssl_client_escaped_cert`.
struct Nginx {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Nginx {
    /// None when nginx is not installed and `LATCHKEY_REQUIRE_PROXIES` is not `1` (`.ci/run`
    /// sets it, and installs nginx).
    fn start(server: &Server) -> Option<Nginx> {
        if !std::path::Path::new(NGINX).exists() {
            if std::env::var("LATCHKEY_REQUIRE_PROXIES").is_ok_and(|v| v == "1") {
                panic!("{NGINX} is not installed and LATCHKEY_REQUIRE_PROXIES=1 (apt-get install nginx)");
            }
            eprintln!("skipped: {NGINX} is not installed");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("latchkey-mtls-nginx-{}", random_string()));
        std::fs::create_dir_all(&dir).unwrap();
        let tls = certificate(&[("CN", "localhost")], &[("dns", "localhost"), ("ip", "127.0.0.1")], None);
        std::fs::write(dir.join("server.pem"), tls.pem()).unwrap();
        std::fs::write(dir.join("server.key"), tls.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let latchkey: u16 = server.base.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap();
        let d = dir.display();
        let conf = format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {d}/server.pem;
        ssl_certificate_key {d}/server.key;
        ssl_verify_client optional_no_ca;
        location / {{
            proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
            proxy_pass http://127.0.0.1:{latchkey};
        }}
    }}
}}
"#
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let log = std::fs::File::create(dir.join("output.log")).unwrap();
        let child = std::process::Command::new(NGINX)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn nginx");
        let nginx = Nginx { child, port, dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "nginx did not listen: {}", nginx.output());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(nginx)
    }

    fn output(&self) -> String {
        let mut out = std::fs::read_to_string(self.dir.join("output.log")).unwrap_or_default();
        out.push_str(&std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default());
        out
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

/// A TLS client of nginx, presenting `cert` when given (its server certificate is the test's own).
fn tls_client(cert: Option<&Cert>) -> reqwest::Client {
    let mut b =
        reqwest::Client::builder().danger_accept_invalid_certs(true).redirect(reqwest::redirect::Policy::none());
    if let Some(c) = cert {
        let mut pem = c.key.private_key_to_pem_pkcs8().unwrap();
        pem.extend_from_slice(c.pem().as_bytes());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

/// The whole path: nginx asks for the certificate in the TLS handshake, passes it URL-encoded,
/// and overwrites a header the client sent itself.
#[tokio::test]
async fn through_nginx_with_ssl_verify_client_optional_no_ca() {
    let server = behind_proxy();
    let Some(nginx) = Nginx::start(&server) else { return };
    let cert = Cert::service(&Cert::ca());
    let mut args = vec!["--auth-method", "tls_client_auth", "--tls-subject-dn", DN, "--cert-bound-tokens"];
    args.push("--resource-server");
    let id = service(&server, &args);
    let form = [("grant_type", "client_credentials"), ("client_id", id.as_str())];
    let token = |client: reqwest::Client, forged: Option<String>| {
        let mut req = client.post(nginx.url("/token")).form(&form);
        if let Some(h) = forged {
            req = req.header(HEADER, h);
        }
        server.send(req)
    };

    let r = token(tls_client(Some(&cert)), None).await;
    assert_eq!(r.status, 200, "{r:?}\n{}", nginx.output());
    let at = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_claims(&at)["cnf"]["x5t#S256"], cert.thumbprint());
    // Introspection through the proxy, authenticated by the same certificate.
    let r = server
        .send(
            tls_client(Some(&cert)).post(nginx.url("/introspect")).form(&[("token", at.as_str()), ("client_id", &id)]),
        )
        .await;
    assert_eq!(r.json()["cnf"]["x5t#S256"], cert.thumbprint(), "{r:?}");

    // No certificate in the handshake: nothing, whatever header the client writes itself.
    token(tls_client(None), None).await.assert_invalid_client();
    token(tls_client(None), Some(cert.nginx())).await.assert_invalid_client();
    // Another certificate in the handshake, the right one in a header of its own: nginx's wins.
    let other = certificate(&[("CN", "other")], &[], None);
    token(tls_client(Some(&other)), Some(cert.nginx())).await.assert_invalid_client();
}
