"""Authlib, the Python OAuth and OpenID Connect library: the code flow with PKCE, state and
nonce, the ID token checked against the JWKS (signature, iss, aud, exp, nonce, at_hash),
userinfo and a refresh. Same interface as the Node relying parties (rp.mjs)."""

import json
import os
import sys

import requests
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken

ISSUER = os.environ["RP_ISSUER"]
CLIENT_ID = os.environ["RP_CLIENT_ID"]
STATE_FILE = os.environ["RP_STATE_FILE"]


def session(**kwargs):
    return OAuth2Session(
        CLIENT_ID,
        os.environ["RP_CLIENT_SECRET"],
        scope="openid email profile offline_access",
        redirect_uri=os.environ["RP_REDIRECT_URI"],
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        **kwargs,
    )


def start(meta):
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = session().create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    with open(STATE_FILE, "w") as f:
        json.dump({"verifier": verifier, "state": state, "nonce": nonce}, f)
    return {"url": url}


def finish(meta, callback):
    with open(STATE_FILE) as f:
        kept = json.load(f)
    rp = session(state=kept["state"])
    token = rp.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=kept["verifier"]
    )
    keys = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    claims = jwt.decode(
        token["id_token"],
        keys,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": ISSUER}},
        claims_params={"nonce": kept["nonce"], "client_id": CLIENT_ID, "access_token": token["access_token"]},
    )
    claims.validate()
    userinfo = rp.get(meta["userinfo_endpoint"], timeout=10).json()
    refreshed = rp.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    again = rp.get(meta["userinfo_endpoint"], timeout=10).json()
    # RP-Initiated Logout 1.0 §2; Authlib leaves the URL to the application.
    logout = add_params_to_uri(
        meta["end_session_endpoint"],
        {
            "id_token_hint": token["id_token"],
            "post_logout_redirect_uri": os.environ["RP_POST_LOGOUT_REDIRECT_URI"],
            "client_id": CLIENT_ID,
            "state": "signed-out",
        },
    )
    return {
        "logout_url": logout,
        "claims": dict(claims),
        "userinfo": userinfo,
        "refreshed_sub": again["sub"],
        "rotated": refreshed["refresh_token"] != token["refresh_token"],
    }


def main():
    meta = requests.get(ISSUER + "/.well-known/openid-configuration", timeout=10).json()
    if sys.argv[1:2] == ["start"]:
        out = start(meta)
    elif sys.argv[1:2] == ["finish"]:
        out = finish(meta, sys.argv[2])
    else:
        sys.exit("usage: start | finish CALLBACK_URL")
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
