//! The JWS algorithms Latchkey signs with (RFC 7518 §3, RFC 8037 §3.1) and, for each, how its
//! keys are generated, stored, imported and turned into josekit signers and verifiers.
//!
//! A private key is kept (sealed by the KEK) as PKCS#8 PEM. For PS256 that PEM carries the
//! RSASSA-PSS OID and parameters (SHA-256, MGF1-SHA-256, salt 32), the only RSA form josekit
//! signs PSS with; an ordinary RSA key is converted on import.

use crate::crypto::{b64url, sha256};
use josekit::JoseError;
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::ed::{EdCurve, EdKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jwk::alg::rsapss::RsaPssKeyPair;
use josekit::jwk::{Jwk, KeyPair};
use josekit::jws::{ES256, EdDSA, JwsAlgorithm, JwsSigner, JwsVerifier, PS256, RS256};
use josekit::util::HashAlgorithm;
use sha2::{Digest, Sha512};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    Rs256,
    Ps256,
    Es256,
    /// EdDSA over Ed25519 only (RFC 8037 §3.1).
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 4] = [Self::Rs256, Self::Ps256, Self::Es256, Self::EdDsa];
    /// What signs when a client names no algorithm (OIDC Dynamic Client Registration §2:
    /// `id_token_signed_response_alg` defaults to RS256).
    pub const DEFAULT: Alg = Alg::Rs256;

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// A new key pair: (private PEM as stored, public JWK without kid).
    pub fn generate(self) -> anyhow::Result<(Vec<u8>, Jwk)> {
        Ok(match self {
            Self::Rs256 => {
                let pair = RsaKeyPair::generate(2048)?;
                (pair.to_pem_private_key(), pair.to_jwk_public_key())
            }
            Self::Ps256 => {
                let pair = RsaPssKeyPair::generate(2048, HashAlgorithm::Sha256, HashAlgorithm::Sha256, 32)?;
                (pair.to_pem_private_key(), pair.to_jwk_public_key())
            }
            Self::Es256 => {
                let pair = EcKeyPair::generate(EcCurve::P256)?;
                (pair.to_pem_private_key(), pair.to_jwk_public_key())
            }
            Self::EdDsa => {
                let pair = EdKeyPair::generate(EdCurve::Ed25519)?;
                (pair.to_pem_private_key(), pair.to_jwk_public_key())
            }
        })
    }

    /// Reads an operator-supplied private key (PEM in any form josekit reads, or a private JWK)
    /// and returns it as this algorithm stores it, with its public JWK.
    pub fn import(self, input: &[u8]) -> anyhow::Result<(Vec<u8>, Jwk)> {
        let jwk = Jwk::from_bytes(input).ok();
        let pem = |p: &dyn KeyPair| p.to_pem_private_key();
        Ok(match self {
            Self::Rs256 => {
                let pair = match &jwk {
                    Some(j) => RsaKeyPair::from_jwk(j)?,
                    None => RsaKeyPair::from_pem(input)?,
                };
                (pem(&pair), strong_enough(pair.to_jwk_public_key())?)
            }
            Self::Ps256 => {
                let pair = match (&jwk, pss(input)) {
                    (_, Ok(p)) => p,
                    (Some(j), _) => pss_from_rsa(&RsaKeyPair::from_jwk(j)?)?,
                    (None, _) => pss_from_rsa(&RsaKeyPair::from_pem(input)?)?,
                };
                (pem(&pair), strong_enough(pair.to_jwk_public_key())?)
            }
            Self::Es256 => {
                let pair = match &jwk {
                    Some(j) => EcKeyPair::from_jwk(j)?,
                    None => EcKeyPair::from_pem(input, Some(EcCurve::P256))?,
                };
                anyhow::ensure!(pair.curve() == EcCurve::P256, "ES256 needs a P-256 key");
                (pem(&pair), pair.to_jwk_public_key())
            }
            Self::EdDsa => {
                let pair = match &jwk {
                    Some(j) => EdKeyPair::from_jwk(j)?,
                    None => EdKeyPair::from_pem(input)?,
                };
                anyhow::ensure!(pair.curve() == EdCurve::Ed25519, "EdDSA here means Ed25519");
                (pem(&pair), pair.to_jwk_public_key())
            }
        })
    }
}

/// The smallest RSA modulus accepted, in bits (NIST SP 800-57 Part 1 and RFC 7518 §3.3: 2048).
pub const MIN_RSA_BITS: usize = 2048;

/// Refuses an RSA key whose modulus (the JWK's `n`) is under [`MIN_RSA_BITS`].
fn strong_enough(public: Jwk) -> anyhow::Result<Jwk> {
    let n = public.parameter("n").and_then(|v| v.as_str()).and_then(crate::crypto::b64url_decode).unwrap_or_default();
    let bits = match n.iter().position(|b| *b != 0) {
        Some(i) => (n.len() - i) * 8 - n[i].leading_zeros() as usize,
        None => 0,
    };
    anyhow::ensure!(bits >= MIN_RSA_BITS, "an RSA key of {bits} bits is too weak; {MIN_RSA_BITS} bits at least");
    Ok(public)
}

impl Alg {
    /// Guesses the algorithm of an imported key from its type: a JWK's `alg` wins; RSA keys
    /// default to RS256.
    pub fn of_key(input: &[u8]) -> Option<Self> {
        if let Ok(jwk) = Jwk::from_bytes(input) {
            if let Some(a) = jwk.algorithm() {
                return Self::parse(a);
            }
            return match (jwk.key_type(), jwk.curve()) {
                ("RSA", _) => Some(Self::Rs256),
                ("EC", Some("P-256")) => Some(Self::Es256),
                ("OKP", Some("Ed25519")) => Some(Self::EdDsa),
                _ => None,
            };
        }
        if RsaKeyPair::from_pem(input).is_ok() {
            Some(Self::Rs256)
        } else if EcKeyPair::from_pem(input, Some(EcCurve::P256)).is_ok() {
            Some(Self::Es256)
        } else if EdKeyPair::from_pem(input).is_ok() {
            Some(Self::EdDsa)
        } else {
            None
        }
    }

    /// The public key as PEM (SPKI), from the stored private PEM.
    pub fn public_pem(self, private_pem: &[u8]) -> anyhow::Result<Vec<u8>> {
        Ok(match self {
            Self::Rs256 => RsaKeyPair::from_pem(private_pem)?.to_pem_public_key(),
            // The plain rsaEncryption form, which every tool reads.
            Self::Ps256 => RsaKeyPair::from_jwk(&pss(private_pem)?.to_jwk_key_pair())?.to_pem_public_key(),
            Self::Es256 => EcKeyPair::from_pem(private_pem, Some(EcCurve::P256))?.to_pem_public_key(),
            Self::EdDsa => EdKeyPair::from_pem(private_pem)?.to_pem_public_key(),
        })
    }

    pub fn signer(self, private_pem: &[u8]) -> anyhow::Result<Box<dyn JwsSigner>> {
        Ok(match self {
            Self::Rs256 => Box::new(RS256.signer_from_pem(private_pem)?),
            Self::Ps256 => Box::new(PS256.signer_from_pem(private_pem)?),
            Self::Es256 => Box::new(Es256Signer::from_pem(private_pem)?),
            Self::EdDsa => Box::new(EdDSA.signer_from_pem(private_pem)?),
        })
    }

    pub fn verifier(self, public_jwk: &Jwk) -> anyhow::Result<Box<dyn JwsVerifier>> {
        Ok(match self {
            Self::Rs256 => Box::new(RS256.verifier_from_jwk(public_jwk)?),
            Self::Ps256 => Box::new(PS256.verifier_from_jwk(public_jwk)?),
            Self::Es256 => Box::new(ES256.verifier_from_jwk(public_jwk)?),
            Self::EdDsa => Box::new(EdDSA.verifier_from_jwk(public_jwk)?),
        })
    }

    /// `at_hash` and `c_hash` (OIDC Core §3.1.3.6, §3.3.2.11): the left half of the hash that
    /// goes with the `alg`. For EdDSA with Ed25519 that is SHA-512 (OpenID Connect Token Hash
    /// Algorithms 1.0, settled in openid/connect issue #1125).
    pub fn half_hash(self, value: &str) -> String {
        match self {
            Self::Rs256 | Self::Ps256 | Self::Es256 => b64url(&sha256(value.as_bytes())[..16]),
            Self::EdDsa => b64url(&Sha512::digest(value.as_bytes())[..32]),
        }
    }
}

/// A PKCS#8 RSASSA-PSS key with the PS256 parameters.
fn pss(pem: &[u8]) -> Result<RsaPssKeyPair, josekit::JoseError> {
    RsaPssKeyPair::from_pem(pem, Some(HashAlgorithm::Sha256), Some(HashAlgorithm::Sha256), Some(32))
}

fn pss_from_rsa(pair: &RsaKeyPair) -> Result<RsaPssKeyPair, josekit::JoseError> {
    RsaPssKeyPair::from_jwk(&pair.to_jwk_key_pair(), HashAlgorithm::Sha256, HashAlgorithm::Sha256, 32)
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Alg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// ES256 (RFC 7518 §3.4): OpenSSL's ECDSA over a SHA-256 made here, `R || S` as 32 bytes each.
/// josekit's signer sets up an OpenSSL signing context for every signature (a provider lookup
/// and an allocation: a quarter of the signature's cost) and has the signature DER-encoded only
/// to decode it again.
#[derive(Clone, Debug)]
struct Es256Signer(openssl::ec::EcKey<openssl::pkey::Private>);

impl Es256Signer {
    fn from_pem(private_pem: &[u8]) -> anyhow::Result<Self> {
        let key = openssl::pkey::PKey::private_key_from_pem(private_pem)?.ec_key()?;
        anyhow::ensure!(
            key.group().curve_name() == Some(openssl::nid::Nid::X9_62_PRIME256V1),
            "an ES256 key is on P-256"
        );
        key.check_key()?;
        Ok(Self(key))
    }
}

impl JwsSigner for Es256Signer {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &ES256
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn signature_len(&self) -> usize {
        64
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        let rs = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
            let sig = openssl::ecdsa::EcdsaSig::sign(&sha256(message), &self.0)?;
            let mut out = sig.r().to_vec_padded(32)?;
            out.extend(sig.s().to_vec_padded(32)?);
            Ok(out)
        };
        rs().map_err(|e| JoseError::InvalidSignature(e.into()))
    }

    fn box_clone(&self) -> Box<dyn JwsSigner> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::JwsHeader;

    #[test]
    fn every_alg_generates_signs_and_verifies() {
        for alg in Alg::ALL {
            let (pem, mut jwk) = alg.generate().unwrap();
            jwk.set_algorithm(alg.as_str());
            jwk.set_key_use("sig");
            let signer = alg.signer(&pem).unwrap_or_else(|e| panic!("{alg} signer: {e}"));
            let verifier = alg.verifier(&jwk).unwrap_or_else(|e| panic!("{alg} verifier: {e}"));
            let jws = josekit::jws::serialize_compact(b"{}", &JwsHeader::new(), signer.as_ref()).unwrap();
            josekit::jws::deserialize_compact(&jws, verifier.as_ref()).unwrap_or_else(|e| panic!("{alg} verify: {e}"));
            let (again, _) = alg.import(&pem).unwrap_or_else(|e| panic!("{alg} import: {e}"));
            alg.signer(&again).unwrap();
            if alg == Alg::Ps256 {
                let rsa = RsaKeyPair::generate(2048).unwrap();
                for input in [rsa.to_pem_private_key(), rsa.to_jwk_private_key().to_string().into_bytes()] {
                    let (imported, _) = alg.import(&input).unwrap_or_else(|e| panic!("PS256 import of RSA: {e}"));
                    alg.signer(&imported).unwrap();
                }
            }
            alg.public_pem(&pem).unwrap_or_else(|e| panic!("{alg} public pem: {e}"));
        }
    }

    /// R and S are each 32 bytes, leading zeros included: one in 128 signatures has a shorter
    /// one, which a verifier then refuses unless it is padded.
    #[test]
    fn es256_signatures_verify_whatever_the_length_of_r_and_s() {
        let (pem, mut jwk) = Alg::Es256.generate().unwrap();
        jwk.set_algorithm("ES256");
        let (signer, verifier) = (Alg::Es256.signer(&pem).unwrap(), Alg::Es256.verifier(&jwk).unwrap());
        for i in 0..1000 {
            let claims = format!(r#"{{"n":{i}}}"#);
            let jws = josekit::jws::serialize_compact(claims.as_bytes(), &JwsHeader::new(), signer.as_ref()).unwrap();
            let (payload, _) = josekit::jws::deserialize_compact(&jws, verifier.as_ref()).unwrap();
            assert_eq!(payload, claims.as_bytes());
        }
    }
}
