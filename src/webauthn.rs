//! The WebAuthn relying party (webauthn-rs), built once at start-up from the issuer: its host is
//! the RP ID and its origin the only origin accepted (WebAuthn §5.1.3, §7.1 step 9). Browsers
//! treat `http://localhost` as a secure context, so a development issuer works too. An issuer
//! whose host is an IP address cannot be an RP ID (§5.1.4.1: a valid domain string), and then
//! passkeys are off.

use url::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// Shown by the browser and the authenticator beside the account name.
const RP_NAME: &str = "Latchkey";

/// The relying party for `issuer`, or why there can be none.
pub fn relying_party(issuer: &str) -> Result<Webauthn, String> {
    let url = Url::parse(issuer).map_err(|e| format!("issuer is not a URL: {e}"))?;
    let host = url.domain().ok_or("passkeys need an issuer with a domain name, not an IP address")?.to_owned();
    let origin = Url::parse(&url.origin().ascii_serialization()).map_err(|e| e.to_string())?;
    WebauthnBuilder::new(&host, &origin)
        .and_then(|b| b.rp_name(RP_NAME).build())
        .map_err(|e| format!("cannot set up WebAuthn for {issuer}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rp_id_is_the_issuer_host() {
        assert!(relying_party("http://localhost:8080").is_ok());
        assert!(relying_party("https://id.example.com/tenant").is_ok());
        assert!(relying_party("http://127.0.0.1:8080").is_err());
    }
}
