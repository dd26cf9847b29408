//! JWTs and the checks the conformance suite makes on ID tokens, userinfo and error responses.

use super::*;

/// RFC 6749 §5.2 character rules on `error`, `error_description` and `error_uri` (plans.md 2.9).
pub fn check_error_chars(v: &Value) {
    let error = v["error"].as_str().expect("error is a string");
    assert!(
        error.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
        "bad characters in error: {error:?}"
    );
    if let Some(d) = v.get("error_description") {
        check_description(d.as_str().expect("error_description is a string"));
    }
    if let Some(u) = v.get("error_uri") {
        let u = u.as_str().expect("error_uri is a string");
        assert!(Url::parse(u).is_ok() && !u.contains(['"', '\\', ' ']), "bad error_uri {u:?}");
    }
}

pub fn check_description(d: &str) {
    assert!(
        d.bytes().all(|b| matches!(
            b,
            0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e
        )),
        "error_description has characters outside %x20-21 / %x23-5B / %x5D-7E \
         (or CR, LF, TAB): {d:?}"
    );
}

pub fn b64url_json(part: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD.decode(part).unwrap_or_else(|e| panic!("not base64url ({e}): {part}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {part}"))
}

pub fn jwt_header(jwt: &str) -> Value {
    b64url_json(jwt.split('.').next().unwrap())
}

pub fn jwt_claims(jwt: &str) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWS compact serialization: {jwt}");
    b64url_json(parts[1])
}

/// Verifies an RS256 JWS against the JWKS as plans.md 2.6 "Signature" asks: the header has a
/// `kid`, exactly one key in the set has that kid with kty RSA, its `alg`/`use` are absent or
/// match, and the signature verifies. Returns the header.
pub fn verify_rs256(jwt: &str, jwks: &Value) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWS: {jwt}");
    let header = b64url_json(parts[0]);
    assert_eq!(header["alg"], "RS256", "JWS alg: {header}");
    let kid = header["kid"].as_str().unwrap_or_else(|| panic!("JWS header without kid: {header}"));
    let keys: Vec<&Value> = jwks["keys"].as_array().expect("keys array").iter().filter(|k| k["kid"] == kid).collect();
    assert_eq!(keys.len(), 1, "exactly one JWKS key with kid {kid}: {jwks}");
    let key = keys[0];
    assert_eq!(key["kty"], "RSA", "kty of {kid}");
    if let Some(alg) = key.get("alg") {
        assert_eq!(alg, "RS256", "alg of key {kid}");
    }
    if let Some(u) = key.get("use") {
        assert_eq!(u, "sig", "use of key {kid}");
    }
    let jwk: CoreJsonWebKey = serde_json::from_value(key.clone()).expect("parse JWK");
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("signature base64url");
    let message = format!("{}.{}", parts[0], parts[1]);
    jwk.verify_signature(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, message.as_bytes(), &sig)
        .unwrap_or_else(|e| panic!("signature does not verify with {kid}: {e:?}"));
    header
}

/// `at_hash` / `c_hash` for RS256: base64url of the left half of SHA-256.
pub fn half_hash(value: &str) -> String {
    let d = Sha256::digest(value.as_bytes());
    URL_SAFE_NO_PAD.encode(&d[..16])
}

/// The ID token checks of plans.md 2.6 (PerformStandardIdTokenChecks). `nonce`, when given,
/// must match. Returns the claims.
pub fn check_id_token(
    id_token: &str,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
    access_token: Option<&str>,
    jwks: &Value,
) -> Value {
    verify_rs256(id_token, jwks);
    let c = jwt_claims(id_token);
    let now = now();
    assert_eq!(c["iss"], issuer, "iss: {c}");
    match &c["aud"] {
        Value::String(a) => assert_eq!(a, client_id, "aud: {c}"),
        Value::Array(a) => assert!(a.iter().any(|x| x == client_id), "aud: {c}"),
        _ => panic!("aud missing: {c}"),
    }
    let exp = c["exp"].as_i64().unwrap_or_else(|| panic!("exp: {c}"));
    assert!(exp > now - 300, "expired: {c}");
    assert!(exp < now + 50 * 365 * 86400, "exp too far: {c}");
    let iat = c["iat"].as_i64().unwrap_or_else(|| panic!("iat: {c}"));
    assert!(iat <= now + 300 && iat >= now - 300, "iat not near now ({now}): {c}");
    if let Some(at) = c.get("auth_time") {
        let at = at.as_i64().unwrap_or_else(|| panic!("auth_time not a number: {c}"));
        assert!(at <= now + 5 && at > now - 365 * 86400, "auth_time: {c}");
    }
    if let Some(acr) = c.get("acr") {
        assert!(acr.as_str().is_some_and(|a| !a.is_empty()), "acr must be a non-empty string: {c}");
    }
    check_claim_types(&c);
    if let Some(n) = nonce {
        assert_eq!(c["nonce"], n, "nonce: {c}");
    }
    let sub = c["sub"].as_str().unwrap_or_else(|| panic!("sub: {c}"));
    assert!(
        !sub.is_empty() && sub.len() <= 255 && sub.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "sub must be 1-255 printable ASCII: {sub:?}"
    );
    if let (Some(h), Some(at)) = (c.get("at_hash"), access_token) {
        assert_eq!(h.as_str().unwrap(), half_hash(at), "at_hash: {c}");
    }
    c
}

const STRING_CLAIMS: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
];

/// Standard claim types (plans.md 2.6 "Standard claim types").
pub fn check_claim_types(c: &Value) {
    for name in STRING_CLAIMS {
        if let Some(v) = c.get(*name) {
            let s = v.as_str().unwrap_or_else(|| panic!("{name} must be a string: {c}"));
            assert!(!s.trim().is_empty() && s != "null", "{name} must be non-blank: {c}");
        }
    }
    for name in ["email_verified", "phone_number_verified"] {
        if let Some(v) = c.get(name) {
            assert!(v.is_boolean(), "{name} must be a boolean: {c}");
        }
    }
    if let Some(a) = c.get("address") {
        let a = a.as_object().unwrap_or_else(|| panic!("address must be an object: {c}"));
        assert!(a.values().all(Value::is_string), "address members: {c}");
    }
    if let Some(u) = c.get("updated_at") {
        let u = u.as_i64().unwrap_or_else(|| panic!("updated_at must be a number: {c}"));
        assert!((631152000..=now() + 5).contains(&u), "updated_at: {c}");
    }
    if let Some(b) = c.get("birthdate") {
        let b = b.as_str().unwrap();
        let ok = match b.len() {
            4 => b.parse::<i64>().is_ok_and(|y| (1850..=2100).contains(&y)),
            10 => {
                let y = &b[..4];
                b.as_bytes()[4] == b'-'
                    && b.as_bytes()[7] == b'-'
                    && (y == "0000" || y.parse::<i64>().is_ok_and(|y| (1850..=2100).contains(&y)))
                    && b[5..7].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
                    && b[8..10].parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
            }
            _ => false,
        };
        assert!(ok, "birthdate format: {b}");
    }
}

/// The userinfo checks of plans.md 4.1 row 5. Returns the claims.
pub fn check_userinfo(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "userinfo: {r:?}");
    assert_eq!(r.media_type(), "application/json", "userinfo: {r:?}");
    let v = r.json();
    assert!(v.is_object(), "userinfo must be a JSON object: {v}");
    check_claim_types(&v);
    assert!(v["sub"].as_str().is_some_and(|s| !s.is_empty()), "sub: {v}");
    assert_eq!(v.get("_claim_names").is_some(), v.get("_claim_sources").is_some(), "_claim_names/_claim_sources: {v}");
    v
}

/// The suite's code/token strength estimate: Shannon entropy of the characters times length.
pub fn entropy_bits(s: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    for ch in s.chars() {
        *counts.entry(ch).or_default() += 1;
    }
    let n = s.chars().count() as f64;
    let h: f64 = counts
        .values()
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    h * n
}

/// The generic checks on an error sent back from the authorization endpoint (plans.md 2.8):
/// state echoed exactly, `iss` equal to the issuer, an `error`, no `code`, only the allowed
/// parameters, and `error_description` within the allowed characters. Returns the error.
pub fn check_authorization_error(o: &Outcome, state: Option<&str>, issuer: &str) -> String {
    let error = o.error().to_string();
    assert_eq!(o.param("state"), state, "state must be echoed exactly: {o:?}");
    assert_eq!(o.param("iss"), Some(issuer), "iss (RFC 9207): {o:?}");
    for (k, _) in &o.params {
        assert!(
            matches!(k.as_str(), "error" | "error_description" | "error_uri" | "state" | "session_state" | "iss"),
            "unexpected parameter {k} in an error response: {o:?}"
        );
    }
    for k in ["error", "state", "iss", "error_description"] {
        assert!(o.count(k) <= 1, "{k} repeated: {o:?}");
    }
    assert!(
        error.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
        "bad characters in error {error:?}"
    );
    if let Some(d) = o.param("error_description") {
        check_description(d);
    }
    if let Some(u) = o.param("error_uri") {
        assert!(Url::parse(u).is_ok() && !u.contains(['"', '\\', ' ']), "error_uri {u:?}");
    }
    error
}

/// The standard parameters of an authorization request for CLIENT (no PKCE).
pub fn auth_params<'a>(
    client: &'a TestClient,
    scope: &'a str,
    state: &'a str,
    nonce: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", client.id.as_str()),
        ("nonce", nonce),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("response_type", "code"),
        ("scope", scope),
        ("state", state),
    ]
}
