//! Google and any OpenID Connect issuer, through the `openidconnect` crate: discovery (the
//! issuer in the document must be the configured one), the code flow with PKCE S256, `state`
//! and `nonce`, and full ID token validation — signature by a key of the upstream's JWKS,
//! `iss`, `aud`, `exp`, `nonce` (OIDC Core §3.1.3.7).

use super::{Failure, Identity, Started};
use crate::config::Upstream;
use crate::state::AppState;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse,
};

async fn discover(state: &AppState, upstream: &Upstream) -> Result<CoreProviderMetadata, Failure> {
    let issuer = upstream.issuer().unwrap_or_default();
    let issuer = IssuerUrl::new(issuer.to_owned()).map_err(|_| Failure::invalid(upstream, "bad issuer URL"))?;
    CoreProviderMetadata::discover_async(issuer, &state.upstream_http).await.map_err(|e| {
        tracing::warn!(upstream = %upstream.id, error = %e, "upstream discovery failed");
        Failure::unreachable(upstream)
    })
}

fn client(
    state: &AppState,
    upstream: &Upstream,
    metadata: CoreProviderMetadata,
) -> Result<
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    Failure,
> {
    let redirect = RedirectUrl::new(super::redirect_uri(state, upstream))
        .map_err(|_| Failure::invalid(upstream, "bad redirect URI"))?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(upstream.client_id.clone()),
        Some(ClientSecret::new(upstream.client_secret.0.clone())),
    )
    .set_redirect_uri(redirect))
}

/// The authorization URL, with the `state`, `nonce` and PKCE verifier to keep.
pub async fn authorization(state: &AppState, upstream: &Upstream) -> Result<Started, Failure> {
    let client = client(state, upstream, discover(state, upstream).await?)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    // 256-bit state and nonce, as strong as every other secret token Latchkey makes.
    let mut request = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        || CsrfToken::new_random_len(32),
        || Nonce::new_random_len(32),
    );
    for scope in upstream.scopes().into_iter().filter(|s| s != "openid") {
        request = request.add_scope(Scope::new(scope));
    }
    let (url, csrf, nonce) = request.set_pkce_challenge(challenge).url();
    Ok(Started {
        url: url.to_string(),
        state: csrf.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
    })
}

/// Exchanges `code` and validates the ID token it brings.
pub async fn identify(
    state: &AppState,
    upstream: &Upstream,
    code: &str,
    nonce: &str,
    verifier: &str,
) -> Result<Identity, Failure> {
    let client = client(state, upstream, discover(state, upstream).await?)?;
    let request = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|_| Failure::invalid(upstream, "no token endpoint"))?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
    let tokens = request.request_async(&state.upstream_http).await.map_err(|e| {
        tracing::warn!(upstream = %upstream.id, error = %e, "upstream token request failed");
        match e {
            openidconnect::RequestTokenError::Request(_) => Failure::unreachable(upstream),
            _ => Failure::invalid(upstream, "code refused"),
        }
    })?;
    let id_token = tokens.id_token().ok_or_else(|| Failure::invalid(upstream, "no id_token"))?;
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &Nonce::new(nonce.to_owned())).map_err(|e| {
        tracing::warn!(upstream = %upstream.id, error = %e, "upstream ID token rejected");
        Failure::invalid(upstream, "invalid id_token")
    })?;
    let all = match serde_json::to_value(claims) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => Default::default(),
    };
    Ok(Identity {
        subject: claims.subject().as_str().to_owned(),
        email: claims.email().map(|e| e.as_str().to_owned()),
        email_verified: claims.email_verified() == Some(true),
        claims: super::profile_claims(upstream, &all),
        amr: claims.auth_method_refs().map(|v| v.iter().map(|m| m.as_str().to_owned()).collect()).unwrap_or_default(),
    })
}
