// oauth4webapi (panva), the low-level OAuth 2 / OpenID Connect library for any JavaScript
// runtime: every response is processed and checked by the library itself.
import * as oauth from "oauth4webapi";
import { keep, kept, run, settings } from "./rp.mjs";

const insecure = { [oauth.allowInsecureRequests]: true };
const client = { client_id: settings.clientId };
const auth = oauth.ClientSecretBasic(settings.clientSecret);

async function server() {
  const issuer = new URL(settings.issuer);
  const response = await oauth.discoveryRequest(issuer, { ...insecure, algorithm: "oidc" });
  return oauth.processDiscoveryResponse(issuer, response);
}

await run({
  async start() {
    const as = await server();
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    keep({ verifier, state, nonce });
    const url = new URL(as.authorization_endpoint);
    url.search = new URLSearchParams({
      client_id: settings.clientId,
      redirect_uri: settings.redirectUri,
      response_type: "code",
      scope: settings.scope,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    });
    return url;
  },
  async finish(callback) {
    const { verifier, state, nonce } = kept();
    const as = await server();
    const params = oauth.validateAuthResponse(as, client, callback, state);
    const response = await oauth.authorizationCodeGrantRequest(
      as, client, auth, params, settings.redirectUri, verifier, insecure,
    );
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, {
      expectedNonce: nonce,
      requireIdToken: true,
    });
    const claims = oauth.getValidatedIdTokenClaims(tokens);
    const info = await oauth.userInfoRequest(as, client, tokens.access_token, insecure);
    const userinfo = await oauth.processUserInfoResponse(as, client, claims.sub, info);
    const refresh = await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, insecure);
    const refreshed = await oauth.processRefreshTokenResponse(as, client, refresh);
    const again = await oauth.processUserInfoResponse(
      as, client, claims.sub, await oauth.userInfoRequest(as, client, refreshed.access_token, insecure),
    );
    // RP-Initiated Logout 1.0 §2: oauth4webapi leaves the URL to the application.
    const logout = new URL(as.end_session_endpoint);
    logout.search = new URLSearchParams({
      id_token_hint: tokens.id_token,
      post_logout_redirect_uri: settings.postLogoutRedirectUri,
      client_id: settings.clientId,
      state: "signed-out",
    });
    return {
      claims,
      userinfo,
      refreshed_sub: again.sub,
      rotated: refreshed.refresh_token !== tokens.refresh_token,
      logout_url: String(logout),
    };
  },
});
