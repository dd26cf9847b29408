//! A software WebAuthn authenticator for the tests, written from the spec rather than with the
//! server's library: ES256 (P-256) keys, "none" attestation, CBOR built by hand, and every
//! field the server must check under the test's control — the RP ID it signs for, the
//! counter, and the UP/UV/BE flags (WebAuthn Level 3 §6.1 authenticator data, §6.5.4 `none`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const AT: u8 = 0x40;

pub struct SoftAuthenticator {
    key: PKey<Private>,
    pub credential_id: Vec<u8>,
    /// The user handle stored at registration, returned with each assertion.
    pub user_handle: Option<String>,
    /// The origin the "browser" reports in clientDataJSON.
    pub origin: String,
    /// Signs for this RP ID instead of the one asked for, when set.
    pub rp_id_override: Option<String>,
    /// The counter of the last signature; each assertion adds one first unless `next_counter`
    /// is set.
    pub counter: u32,
    pub next_counter: Option<u32>,
    /// Reports user verification.
    pub uv: bool,
    /// Backup eligible: a synced passkey.
    pub backup_eligible: bool,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).unwrap_or_else(|e| panic!("base64url {s}: {e}"))
}

// Minimal CBOR (RFC 8949) for the attestation object and the COSE key.
fn cbor_head(major: u8, n: usize, out: &mut Vec<u8>) {
    match n {
        0..=23 => out.push(major << 5 | n as u8),
        24..=255 => out.extend([major << 5 | 24, n as u8]),
        _ => {
            out.push(major << 5 | 25);
            out.extend((n as u16).to_be_bytes());
        }
    }
}
fn cbor_int(v: i64, out: &mut Vec<u8>) {
    if v >= 0 { cbor_head(0, v as usize, out) } else { cbor_head(1, (-1 - v) as usize, out) }
}
fn cbor_bytes(b: &[u8], out: &mut Vec<u8>) {
    cbor_head(2, b.len(), out);
    out.extend(b);
}
fn cbor_text(s: &str, out: &mut Vec<u8>) {
    cbor_head(3, s.len(), out);
    out.extend(s.as_bytes());
}

impl SoftAuthenticator {
    /// A new device-bound authenticator that verifies its user, for pages at `origin`.
    pub fn new(origin: &str) -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut credential_id = vec![0u8; 32];
        openssl::rand::rand_bytes(&mut credential_id).unwrap();
        SoftAuthenticator {
            key,
            credential_id,
            user_handle: None,
            origin: origin.to_owned(),
            rp_id_override: None,
            counter: 0,
            next_counter: None,
            uv: true,
            backup_eligible: false,
        }
    }

    fn cose_key(&self) -> Vec<u8> {
        let ec = self.key.ec_key().unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let (mut x, mut y) = (openssl::bn::BigNum::new().unwrap(), openssl::bn::BigNum::new().unwrap());
        ec.public_key().affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx).unwrap();
        let mut out = Vec::new();
        cbor_head(5, 5, &mut out);
        cbor_int(1, &mut out); // kty: EC2
        cbor_int(2, &mut out);
        cbor_int(3, &mut out); // alg: ES256
        cbor_int(-7, &mut out);
        cbor_int(-1, &mut out); // crv: P-256
        cbor_int(1, &mut out);
        cbor_int(-2, &mut out);
        cbor_bytes(&x.to_vec_padded(32).unwrap(), &mut out);
        cbor_int(-3, &mut out);
        cbor_bytes(&y.to_vec_padded(32).unwrap(), &mut out);
        out
    }

    fn auth_data(&self, rp_id: &str, attested: bool) -> Vec<u8> {
        let mut flags = UP;
        if self.uv {
            flags |= UV;
        }
        if self.backup_eligible {
            flags |= BE;
        }
        if attested {
            flags |= AT;
        }
        let mut out = Sha256::digest(self.rp_id_override.as_deref().unwrap_or(rp_id).as_bytes()).to_vec();
        out.push(flags);
        out.extend(self.counter.to_be_bytes());
        if attested {
            out.extend([0u8; 16]); // AAGUID: none
            out.extend((self.credential_id.len() as u16).to_be_bytes());
            out.extend(&self.credential_id);
            out.extend(self.cose_key());
        }
        out
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    /// Answers `navigator.credentials.create` options (`{"publicKey": ...}`) with the JSON the
    /// page's script would post.
    pub fn create(&mut self, options: &Value) -> String {
        let pk = &options["publicKey"];
        let rp_id = pk["rp"]["id"].as_str().expect("rp.id");
        self.user_handle = Some(pk["user"]["id"].as_str().expect("user.id").to_owned());
        let client_data = self.client_data("webauthn.create", pk["challenge"].as_str().expect("challenge"));
        let mut att = Vec::new();
        cbor_head(5, 3, &mut att);
        cbor_text("fmt", &mut att);
        cbor_text("none", &mut att);
        cbor_text("attStmt", &mut att);
        cbor_head(5, 0, &mut att);
        cbor_text("authData", &mut att);
        cbor_bytes(&self.auth_data(rp_id, true), &mut att);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {"attestationObject": b64(&att), "clientDataJSON": b64(&client_data)},
            "extensions": {}
        })
        .to_string()
    }

    /// Answers `navigator.credentials.get` options with a signed assertion, as posted.
    pub fn get(&mut self, options: &Value) -> String {
        let pk = &options["publicKey"];
        self.assert(pk["rpId"].as_str().expect("rpId"), pk["challenge"].as_str().expect("challenge"))
    }

    /// An assertion for `rp_id` over `challenge` (base64url).
    pub fn assert(&mut self, rp_id: &str, challenge: &str) -> String {
        self.counter = self.next_counter.take().unwrap_or(self.counter + 1);
        let auth_data = self.auth_data(rp_id, false);
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key).unwrap();
        signer.update(&auth_data).unwrap();
        signer.update(&Sha256::digest(&client_data)).unwrap();
        let signature = signer.sign_to_vec().unwrap();
        let mut response = json!({
            "authenticatorData": b64(&auth_data),
            "clientDataJSON": b64(&client_data),
            "signature": b64(&signature),
        });
        if let Some(h) = &self.user_handle {
            response["userHandle"] = json!(h);
        }
        json!({"id": b64(&self.credential_id), "rawId": b64(&self.credential_id), "type": "public-key",
               "response": response, "extensions": {}})
        .to_string()
    }

    /// A random base64url challenge the server never issued.
    pub fn stray_challenge() -> String {
        let mut c = vec![0u8; 32];
        openssl::rand::rand_bytes(&mut c).unwrap();
        b64(&c)
    }

    /// The user handle as bytes (for checks that it is not the username).
    pub fn user_handle_bytes(&self) -> Vec<u8> {
        unb64(self.user_handle.as_deref().expect("registered"))
    }
}
