//! Mutual TLS (RFC 8705) behind a TLS-terminating proxy: the proxy asks the client for a
//! certificate and passes it on in a header (`mtls.header`, default `X-Client-Cert`). Only the
//! proxies of `mtls.trusted_proxies` are believed: [`from_trusted_proxies`] drops the header from
//! anyone else before a handler sees it, so [`presented`] reads what a trusted proxy vouched for.
//!
//! The certificate is then what `tls_client_auth` (§2.1: its subject DN or one subject
//! alternative name, exactly as registered) and `self_signed_tls_client_auth` (§2.2: its public
//! key is one of the client's keys) authenticate with, and what certificate-bound tokens are
//! bound to (§3: `cnf.x5t#S256`, the SHA-256 of its DER).
//!
//! The proxy has checked possession of the private key (the TLS handshake); chain validation is
//! not asked of it (nginx `ssl_verify_client optional_no_ca`): a `tls_client_auth` client is
//! known by a subject only its CA would certify, and that CA is the operator's to trust at the
//! proxy (`ssl_verify_client on` with `ssl_client_certificate`) when it matters.

use crate::crypto::{b64url, b64url_decode, sha256};
use crate::domain::client::TlsSubject;
use crate::http::client_ip::ClientIp;
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::http::{HeaderMap, HeaderName};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use josekit::jwk::Jwk;
use std::net::{IpAddr, SocketAddr};
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};
use x509_parser::public_key::PublicKey;

/// The largest certificate header read (a certificate chain's leaf is a few kilobytes).
const MAX_HEADER: usize = 16 * 1024;

/// A client certificate the proxy passed on: its DER bytes, parsed on demand.
#[derive(Clone, Debug)]
pub struct Certificate {
    der: Vec<u8>,
}

impl Certificate {
    /// Reads the header value in the forms proxies write it:
    /// - URL-encoded PEM (nginx `$ssl_client_escaped_cert`, Envoy's and Caddy's escaped PEM; a
    ///   space encoded as `+` too),
    /// - PEM with its line breaks replaced by spaces or tabs (nginx's old `$ssl_client_cert`),
    /// - Envoy's `X-Forwarded-Client-Cert` element list, from its `Cert="..."` element,
    /// - RFC 9440 `Client-Cert` (`:base64 DER:`), or bare base64 DER (Traefik, AWS ALB, Caddy's
    ///   `certificate_der_base64`).
    pub fn from_header(value: &str) -> Option<Certificate> {
        let value = value.trim();
        if value.is_empty() || value.len() > MAX_HEADER {
            return None;
        }
        let der = if let Some(cert) = xfcc_cert(value) {
            pem_der(&percent_decode(&cert))?
        } else if let Some(inner) = value.strip_prefix(':').and_then(|v| v.strip_suffix(':')) {
            base64_der(inner)?
        } else {
            // Form encoders write the space of the PEM armour as `+`.
            let decoded = percent_decode(value)
                .replace("BEGIN+CERTIFICATE", "BEGIN CERTIFICATE")
                .replace("END+CERTIFICATE", "END CERTIFICATE");
            if decoded.contains("-----BEGIN") { pem_der(&decoded)? } else { base64_der(&decoded)? }
        };
        X509Certificate::from_der(&der).ok().filter(|(rest, _)| rest.is_empty())?;
        Some(Certificate { der })
    }

    /// `x5t#S256` (RFC 8705 §3.1): the base64url SHA-256 of the DER encoding.
    pub fn thumbprint(&self) -> String {
        b64url(&sha256(&self.der))
    }

    fn parsed(&self) -> X509Certificate<'_> {
        // Checked in `from_header`.
        X509Certificate::from_der(&self.der).map(|(_, c)| c).expect("parsed when read")
    }

    /// RFC 8705 §2.1.2: does the certificate carry the registered subject? The DN by RFC 4514
    /// rules (type names or OIDs, escapes, case and spaces of values ignored); a subject
    /// alternative name of the registered type exactly (a DNS name in any case, an IP address
    /// by its bytes).
    pub fn has_subject(&self, subject: &TlsSubject) -> bool {
        let cert = self.parsed();
        if let TlsSubject::SubjectDn(dn) = subject {
            let Ok(registered) = parse_dn(dn) else { return false };
            // RFC 4514 §2.1 writes the last RDN of the sequence first.
            let mut ours: Vec<Rdn> = cert
                .subject()
                .iter()
                .map(|rdn| {
                    let mut avas: Vec<(String, String)> = rdn
                        .iter()
                        .map(|a| {
                            let value = a
                                .as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|_| String::from_utf8_lossy(a.as_slice()).into_owned());
                            (a.attr_type().to_id_string(), normalise_value(&value))
                        })
                        .collect();
                    avas.sort();
                    avas
                })
                .collect();
            ours.reverse();
            return ours == registered;
        }
        let names = cert.extensions().iter().filter_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => Some(san.general_names.iter()),
            _ => None,
        });
        names.flatten().any(|name| match (subject, name) {
            (TlsSubject::SanDns(want), GeneralName::DNSName(got)) => want.eq_ignore_ascii_case(got),
            (TlsSubject::SanUri(want), GeneralName::URI(got)) => want.as_str() == *got,
            (TlsSubject::SanEmail(want), GeneralName::RFC822Name(got)) => want.as_str() == *got,
            (TlsSubject::SanIp(want), GeneralName::IPAddress(got)) => ip_bytes(*want) == *got,
            _ => false,
        })
    }

    /// RFC 8705 §2.2: is the certificate's public key `jwk`?
    pub fn has_key(&self, jwk: &Jwk) -> bool {
        let cert = self.parsed();
        let spki = cert.public_key();
        let member = |name: &str| jwk.parameter(name).and_then(|v| v.as_str()).and_then(b64url_decode);
        let unsigned = |b: &[u8]| b.iter().skip_while(|x| **x == 0).copied().collect::<Vec<u8>>();
        // The key as the certificate holds it: an EC point, or an EdDSA key, is the bit string.
        let raw: &[u8] = spki.subject_public_key.data.as_ref();
        let oid = spki.algorithm.algorithm.to_id_string();
        match jwk.key_type() {
            "RSA" => match spki.parsed() {
                Ok(PublicKey::RSA(rsa)) => {
                    member("n").is_some_and(|n| unsigned(&n) == unsigned(rsa.modulus))
                        && member("e").is_some_and(|e| unsigned(&e) == unsigned(rsa.exponent))
                }
                _ => false,
            },
            // An uncompressed point: 04 || x || y (SEC 1 §2.3.3).
            "EC" => match (member("x"), member("y")) {
                (Some(x), Some(y)) => {
                    oid == "1.2.840.10045.2.1" && raw.first() == Some(&4) && raw[1..] == [x, y].concat()
                }
                _ => false,
            },
            // Ed25519 and Ed448 (RFC 8410 §4).
            "OKP" => {
                let curve = jwk.curve();
                let fits = (oid == "1.3.101.112" && curve == Some("Ed25519"))
                    || (oid == "1.3.101.113" && curve == Some("Ed448"));
                fits && member("x").is_some_and(|x| x == raw)
            }
            _ => false,
        }
    }
}

/// The certificate a trusted proxy passed with this request, if any (see
/// [`from_trusted_proxies`]). One the proxy sent but that cannot be read is logged and counts as
/// none.
pub fn presented(state: &AppState, headers: &HeaderMap) -> Option<Certificate> {
    let name = state.settings.mtls.header.as_str();
    let value = headers.get(name)?;
    let cert = value.to_str().ok().and_then(Certificate::from_header);
    if cert.is_none() {
        tracing::warn!(header = name, "the proxy's client certificate header is not a certificate");
    }
    cert
}

/// The thumbprint of the presented certificate, for binding what is issued (RFC 8705 §3).
pub fn thumbprint(state: &AppState, headers: &HeaderMap) -> Option<String> {
    presented(state, headers).map(|c| c.thumbprint())
}

/// Who may pass client certificates: the proxies of `mtls.trusted_proxies`, under `header`.
#[derive(Clone)]
pub struct Gate {
    state: AppState,
    header: HeaderName,
    proxies: ClientIp,
}

impl Gate {
    /// None when the setting names no proxy: then no certificate is ever read, and the header is
    /// dropped from every request.
    pub fn new(state: &AppState) -> Gate {
        let m = &state.settings.mtls;
        let nets: Vec<_> = m.trusted_proxies.iter().filter_map(|p| crate::http::client_ip::parse_net(p)).collect();
        let header = HeaderName::try_from(m.header.as_str()).unwrap_or(HeaderName::from_static("x-client-cert"));
        Gate { state: state.clone(), header, proxies: ClientIp::new(&nets) }
    }
}

/// Middleware: the certificate header of a request that did not come from a trusted proxy is
/// removed, so no handler can be fooled by a client writing it itself. Each such request to an
/// endpoint where certificates matter is logged and audited.
pub async fn from_trusted_proxies(
    axum::extract::State(gate): axum::extract::State<Gate>,
    mut req: axum::extract::Request,
    next: Next,
) -> Response {
    if req.headers().contains_key(&gate.header) {
        let peer = req.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        if !peer.is_some_and(|ip| gate.proxies.is_trusted(ip)) {
            req.headers_mut().remove(&gate.header);
            untrusted(&gate, peer, req.uri().path()).await;
        }
    }
    next.run(req).await
}

/// Records a certificate header from a peer that is not a trusted proxy.
async fn untrusted(gate: &Gate, peer: Option<IpAddr>, path: &str) {
    tracing::warn!(peer = ?peer, path, header = %gate.header, "client certificate header from an untrusted peer ignored");
    use crate::oidc::{INTROSPECT, REVOKE, TOKEN, USERINFO, authorize::par, device};
    if [TOKEN, par::PATH, REVOKE, INTROSPECT, USERINFO, device::AUTHORIZATION].contains(&path) {
        let event = AuditEvent::new("mtls.untrusted_header").ip(peer.map(|p| p.to_string())).detail("path", path);
        gate.state.store.audit(event, gate.state.now()).await;
    }
}

/// An RDN as compared: its attributes (type OID, normalised value), sorted.
type Rdn = Vec<(String, String)>;

/// Parses an RFC 4514 distinguished name into its RDNs, as written (the last RDN of the
/// certificate's sequence first). Attribute types are names of RFC 4514 §3 and a few common
/// others, or dotted OIDs; values are unescaped (§2.4) and normalised for comparison. The
/// `#hex` form of values is not supported.
pub fn parse_dn(dn: &str) -> Result<Vec<Rdn>, String> {
    let mut out = Vec::new();
    for rdn in split_unescaped(dn, &[',', ';']) {
        let mut avas = Vec::new();
        for ava in split_unescaped(&rdn, &['+']) {
            let (kind, value) = ava.split_once('=').ok_or_else(|| format!("'{}' is not type=value", ava.trim()))?;
            let oid = attribute_oid(kind.trim()).ok_or_else(|| format!("unknown attribute type '{}'", kind.trim()))?;
            let value = value.trim_start();
            if value.starts_with('#') {
                return Err("the #hex form of attribute values is not supported".into());
            }
            avas.push((oid, normalise_value(&unescape(value)?)));
        }
        avas.sort();
        out.push(avas);
    }
    if out.is_empty() { Err("the DN is empty".into()) } else { Ok(out) }
}

/// Splits `s` at unescaped `seps`, keeping escapes for [`unescape`].
fn split_unescaped(s: &str, seps: &[char]) -> Vec<String> {
    let (mut parts, mut cur, mut escaped) = (Vec::new(), String::new(), false);
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if seps.contains(&c) {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// RFC 4514 §2.4 escapes: `\` before a special character, or two hex digits of a UTF-8 byte.
/// Unescaped trailing spaces are not part of the value.
fn unescape(v: &str) -> Result<String, String> {
    let mut bytes = Vec::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some(h) if h.is_ascii_hexdigit() => {
                let l = chars.next().filter(char::is_ascii_hexdigit).ok_or("a \\ escape needs two hex digits")?;
                bytes.push(u8::from_str_radix(&format!("{h}{l}"), 16).map_err(|e| e.to_string())?);
            }
            Some(s) => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(s.encode_utf8(&mut buf).as_bytes());
            }
            None => return Err("the DN ends in a lone \\".into()),
        }
    }
    String::from_utf8(bytes).map_err(|_| "an escaped value is not UTF-8".into())
}

/// Values compare as `caseIgnoreMatch` does (RFC 4517 §4.2.11, with the insignificant-space
/// handling of RFC 4518 §2.6.1): case folded, runs of spaces one, none at either end.
fn normalise_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The OID of an attribute type name (RFC 4514 §3, and the names OpenSSL and Java write).
fn attribute_oid(name: &str) -> Option<String> {
    let oid = match name.to_ascii_uppercase().as_str() {
        "CN" => "2.5.4.3",
        "SN" | "SURNAME" => "2.5.4.4",
        "SERIALNUMBER" => "2.5.4.5",
        "C" => "2.5.4.6",
        "L" => "2.5.4.7",
        "ST" | "S" => "2.5.4.8",
        "STREET" => "2.5.4.9",
        "O" => "2.5.4.10",
        "OU" => "2.5.4.11",
        "TITLE" => "2.5.4.12",
        "GN" | "GIVENNAME" => "2.5.4.42",
        "DC" => "0.9.2342.19200300.100.1.25",
        "UID" => "0.9.2342.19200300.100.1.1",
        "E" | "EMAIL" | "EMAILADDRESS" => "1.2.840.113549.1.9.1",
        other => {
            let dotted = other.strip_prefix("OID.").unwrap_or(other);
            let valid = !dotted.is_empty()
                && dotted.split('.').count() >= 2
                && dotted.split('.').all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            return valid.then(|| dotted.to_owned());
        }
    };
    Some(oid.to_owned())
}

/// The value of Envoy's `Cert="..."` element in an `X-Forwarded-Client-Cert` value (the last
/// element list: the one the nearest proxy appended).
fn xfcc_cert(value: &str) -> Option<String> {
    let last = value.rsplit(',').find(|e| e.contains("Cert="))?;
    last.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        k.eq_ignore_ascii_case("cert").then(|| v.trim_matches('"').to_owned())
    })
}

/// `%XX` decoded; `+` stays `+` (base64 uses it).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The DER of the first certificate of a PEM text, whatever white space its lines are joined
/// with.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = start + pem[start..].find("-----END CERTIFICATE-----")?;
    base64_der(&pem[start..end])
}

fn base64_der(b64: &str) -> Option<Vec<u8>> {
    let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact).ok()
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_are_parsed_by_rfc_4514() {
        let a = parse_dn("CN=Client One, O=Example\\, Inc.,C=US").unwrap();
        let b = parse_dn("cn=client  one,o=EXAMPLE\\2C INC.,2.5.4.6=us").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);
        assert_eq!(a[1], vec![("2.5.4.10".to_owned(), "example, inc.".to_owned())]);
        let multi = parse_dn("OU=Sales+CN=J. Smith,DC=example,DC=net").unwrap();
        assert_eq!(multi, parse_dn("CN=J. Smith+OU=Sales,DC=example,DC=net").unwrap());
        assert_ne!(a, parse_dn("C=US,O=Example\\, Inc.,CN=Client One").unwrap(), "order matters");
        assert!(parse_dn("").is_err());
        assert!(parse_dn("CN").is_err());
        assert!(parse_dn("XX=1").is_err());
        assert!(parse_dn("CN=#04024869").is_err());
        assert!(parse_dn("CN=a\\").is_err());
    }

    #[test]
    fn header_forms() {
        assert!(Certificate::from_header("").is_none());
        assert!(Certificate::from_header("not a certificate").is_none());
        assert!(Certificate::from_header("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----").is_none());
        assert_eq!(
            xfcc_cert(r#"By=spiffe://a;Hash=ab;Cert="-----BEGIN%20CERTIFICATE-----";Subject="CN=x""#).as_deref(),
            Some("-----BEGIN%20CERTIFICATE-----")
        );
        assert_eq!(percent_decode("a%2Bb+c%0A"), "a+b+c\n");
    }
}
