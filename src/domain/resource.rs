//! Resource servers a token may be issued for (RFC 8707 resource indicators), registered by the
//! operator (`latchkey resources add`) with the scopes a token for each may carry. An access
//! token issued for a resource names it as its `aud`, so no other resource server accepts it.

use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Resource {
    /// The resource indicator: an absolute URI without a fragment (RFC 8707 §2).
    pub uri: String,
    /// The scopes a token for this resource may carry, beyond the OpenID ones.
    pub scopes: Vec<String>,
    pub created_at: i64,
}

/// RFC 8707 §2: "an absolute URI … MUST NOT include a fragment component"; a query is
/// discouraged and refused here, so one resource has one spelling.
pub fn validate_uri(uri: &str) -> Result<(), String> {
    let u = url::Url::parse(uri).map_err(|e| format!("'{uri}' is not an absolute URI: {e}"))?;
    if u.fragment().is_some() || u.query().is_some() {
        return Err(format!("'{uri}': a resource indicator has no query and no fragment"));
    }
    if u.cannot_be_a_base() && !uri.starts_with("urn:") {
        return Err(format!("'{uri}' is not a URL or URN"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_indicator_is_an_absolute_uri_without_fragment_or_query() {
        assert!(validate_uri("https://api.example.com").is_ok());
        assert!(validate_uri("https://api.example.com/reports").is_ok());
        assert!(validate_uri("urn:example:api").is_ok());
        assert!(validate_uri("/reports").is_err());
        assert!(validate_uri("https://api.example.com/#x").is_err());
        assert!(validate_uri("https://api.example.com/?x=1").is_err());
    }
}
