//! A grant: what a user (or a client on its own behalf) authorised a client to have. Access
//! and refresh tokens point at their grant, so revoking the grant stops them all at once.

use crate::clock::Timestamp;

#[derive(Clone, Debug)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    pub scopes: Vec<String>,
    /// The `claims` request parameter (OIDC Core §5.5), as JSON text.
    pub claims: Option<String>,
    pub auth_time: Timestamp,
    pub acr: String,
    pub amr: Vec<String>,
    /// Survives the browser session (`offline_access`, OIDC Core §11).
    pub offline: bool,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// The JWK thumbprint (RFC 7638) of the DPoP key its refresh tokens are bound to: a public
    /// client's (RFC 9449 §5); confidential clients' refresh tokens are bound by their
    /// authentication instead.
    pub dpop_jkt: Option<String>,
    /// The SHA-256 thumbprint of the certificate a public client's refresh tokens are bound to
    /// (RFC 8705 §4).
    pub cert_x5t: Option<String>,
    /// The resource its access tokens are for (RFC 8707), their `aud`; none: the client.
    pub resource: Option<String>,
}

impl Grant {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}
