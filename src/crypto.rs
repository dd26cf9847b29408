//! Random values, hashes at rest and constant-time comparison.
//!
//! Every bearer secret Latchkey hands out (codes, refresh tokens, client secrets, session
//! cookies) is 256 bits from the thread's CSPRNG, encoded base64url, and stored only as its
//! SHA-256 digest: for 256-bit random values a fast hash is enough, argon2 is for passwords.
//! A refresh token also carries the time it was made, which its digest is stored after
//! ([`refresh_token_key`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `n` random bytes from the thread's CSPRNG (`rand`'s ThreadRng: ChaCha12, seeded from the
/// operating system and reseeded from it every 64 KiB). A code flow draws seven values: read
/// from the operating system each was a system call (0.35 µs), from OpenSSL's DRBG 0.7 µs of
/// its provider machinery; here a few nanoseconds.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut buf);
    buf
}

/// A 256-bit random token, base64url without padding (43 characters).
pub fn random_token() -> String {
    b64url(&random_bytes(32))
}

/// A shorter random identifier (128 bits) for records that are not secrets.
pub fn random_id() -> String {
    b64url(&random_bytes(16))
}

/// A random identifier for records that are not secrets and are written in great numbers
/// (grants), in the form of [`random_id`]: the time it is made at, `now_ms` (see
/// [`time_prefix`]), then 80 random bits. Ids made together sort together, so the records
/// written in one commit share the pages of the indexes on them (see `store/group_commit.rs`),
/// where random ones each wrote a page of their own.
pub fn ordered_id(now_ms: i64) -> String {
    let mut id = time_prefix(now_ms);
    id.push_str(&b64url(&random_bytes(10)));
    id
}

/// A refresh token: the time it is made at, `now_ms` (see [`time_prefix`]), then 256 random
/// bits; 51 characters of base64url's alphabet.
pub fn refresh_token(now_ms: i64) -> String {
    let mut token = time_prefix(now_ms);
    token.push_str(&random_token());
    token
}

const REFRESH_TOKEN_LEN: usize = TIME_PREFIX_LEN + 43;

/// The key a refresh token is stored under: the time it was made, then its digest
/// ([`hash_secret`]). Tokens are found by this key, and a rotation marks one token and writes
/// the next: keyed by the digest alone, each wrote a page of its own at a random place in the
/// table, a place that was less and less often cached as the table grew; keyed by time, the
/// tokens written together, and the recent ones a refresh marks, share the pages at the table's
/// end. A refresh token of another length (one made before tokens carried their time: 43
/// characters) is stored under its digest alone.
pub fn refresh_token_key(token: &str) -> String {
    match token.get(..TIME_PREFIX_LEN) {
        Some(time) if token.len() == REFRESH_TOKEN_LEN => format!("{time}{}", hash_secret(token)),
        _ => hash_secret(token),
    }
}

const TIME_PREFIX_LEN: usize = 8;

/// `now_ms` (48 bits) in eight of base64url's characters, taken in the order they sort in, so
/// that strings that start with it sort by it. The time a record was made is no secret: a
/// token's is in its `iat` already.
fn time_prefix(now_ms: i64) -> String {
    const SORTED: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
    let ms = now_ms.clamp(0, (1 << 48) - 1);
    (0..TIME_PREFIX_LEN).rev().map(|i| char::from(SORTED[(ms >> (6 * i)) as usize & 63])).collect()
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The form a secret takes at rest: base64url of its SHA-256.
pub fn hash_secret(secret: &str) -> String {
    b64url(&sha256(secret.as_bytes()))
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&sha256(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Checks a presented secret against its stored hash, in constant time.
pub fn verify_secret(presented: &str, stored_hash: &str) -> bool {
    constant_time_eq(hash_secret(presented).as_bytes(), stored_hash.as_bytes())
}

#[cfg(test)]
mod hmac_tests {
    /// RFC 4231 §4.3 (test case 2) and §4.7 (test case 6, a key longer than the block).
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        let hex = |b: [u8; 32]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(super::hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(super::hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_ids_sort_as_their_times_do() {
        let times = [0, 1, 63, 64, 4_095, 4_096, 1_796_626_571_000, 1_796_626_571_001, 1_796_626_575_096];
        let ids: Vec<String> = times.iter().map(|&t| ordered_id(t)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        for id in &ids {
            assert_eq!(id.len(), random_id().len());
            assert!(b64url_decode(id).is_some(), "{id} is not base64url");
        }
        assert_ne!(ordered_id(5), ordered_id(5));
    }

    #[test]
    fn refresh_tokens_are_stored_under_their_time_and_digest() {
        let (early, late) = (refresh_token(1_796_626_571_000), refresh_token(1_796_626_571_001));
        assert_eq!(early.len(), REFRESH_TOKEN_LEN);
        assert!(b64url_decode(&early).is_some(), "{early} is not base64url");
        let (a, b) = (refresh_token_key(&early), refresh_token_key(&late));
        assert!(a < b, "keys sort by the tokens' times: {a} {b}");
        assert_eq!(a, format!("{}{}", &early[..TIME_PREFIX_LEN], hash_secret(&early)));
        assert!(!a.contains(&early[TIME_PREFIX_LEN..]), "the secret part is not stored");
        // A token from before tokens carried their time is stored under its digest; so is
        // whatever else is presented, a character across the time's end included (no panic).
        let legacy = random_token();
        assert_eq!(refresh_token_key(&legacy), hash_secret(&legacy));
        let split = format!("abcdefg\u{e9}{}", &early[..REFRESH_TOKEN_LEN - 9]);
        assert_eq!(split.len(), REFRESH_TOKEN_LEN);
        assert_eq!(refresh_token_key(&split), hash_secret(&split));
    }
}
