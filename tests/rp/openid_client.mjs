// openid-client (panva), the certified Node relying party: discovery, the code flow with PKCE,
// state and nonce, ID token validation against the JWKS, userinfo and a refresh.
import * as oidc from "openid-client";
import { keep, kept, run, settings } from "./rp.mjs";

const config = () =>
  // The client is registered for client_secret_basic; openid-client would post the secret.
  oidc.discovery(new URL(settings.issuer), settings.clientId, undefined, oidc.ClientSecretBasic(settings.clientSecret), {
    execute: [oidc.allowInsecureRequests],
  });

await run({
  async start() {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    keep({ verifier, state, nonce });
    return oidc.buildAuthorizationUrl(await config(), {
      redirect_uri: settings.redirectUri,
      scope: settings.scope,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    });
  },
  async finish(callback) {
    const { verifier, state, nonce } = kept();
    const c = await config();
    const tokens = await oidc.authorizationCodeGrant(c, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    const userinfo = await oidc.fetchUserInfo(c, tokens.access_token, claims.sub);
    const refreshed = await oidc.refreshTokenGrant(c, tokens.refresh_token);
    const again = await oidc.fetchUserInfo(c, refreshed.access_token, claims.sub);
    const logout_url = oidc.buildEndSessionUrl(c, {
      id_token_hint: tokens.id_token,
      post_logout_redirect_uri: settings.postLogoutRedirectUri,
      state: "signed-out",
    });
    return {
      claims,
      userinfo,
      refreshed_sub: again.sub,
      rotated: refreshed.refresh_token !== tokens.refresh_token,
      logout_url: String(logout_url),
    };
  },
});
