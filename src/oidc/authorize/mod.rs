//! Authorization endpoint (OIDC Core §3.1.2, RFC 6749 §4.1): validate the request, then either
//! answer at once from the browser session or hand over to the login flow, which hands back to
//! [`resume`] once the user is signed in (consent, then the code).

pub mod code;
pub mod consent;
pub mod par;
pub mod request;
pub mod request_object;
pub mod response;
pub mod resume;

pub use request::{AuthRequest, PROMPT_VALUES, ResponseMode, Target};

use crate::http::client_ip::ClientAddr;
use crate::http::{PageError, Params};
use crate::login::flow::{self, Entry, HandBack};
use crate::login::routes::see_other;
use crate::login::{policy, session, steps};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use request::{Rejection, err};
use std::net::IpAddr;

/// GET: parameters in the query (OIDC Core §3.1.2.1).
pub async fn get(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => authorize(state, client, headers, p).await,
        Err(m) => PageError::bad_request("invalid_request", "This sign-in request is not valid", m).into_response(),
    }
}

/// POST: the same parameters, form-encoded (OIDC Core §3.1.2.1).
pub async fn post(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match Params::from_form(&headers, &body) {
        Ok(p) => authorize(state, client, headers, p).await,
        Err(m) => PageError::bad_request("invalid_request", "This sign-in request is not valid", m).into_response(),
    }
}

async fn authorize(state: AppState, client_addr: IpAddr, headers: HeaderMap, p: Params) -> Response {
    // A pushed request (RFC 9126 §4) stands in for the query.
    let (p, pushed) = match par::resolve(&state, p).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let (client, mut req) = match request::validate(&state, &p).await {
        Ok(v) => v,
        Err(Rejection::Page(e)) => return e.into_response(),
        Err(Rejection::Redirect(target, e)) => return response::error(&state, &target, &e),
    };
    // RFC 9126 §5, FAPI 2.0 §5.3.2.2-3: a client held to PAR is refused anything else.
    if pushed.is_none() && par::required(&state, &client) {
        let e = err("invalid_request", "this client must push its authorization requests (PAR)");
        return response::error(&state, &req.target, &e);
    }
    req.pushed = pushed;
    let browser = Browser { headers: &headers, addr: client_addr };
    match decide(&state, &browser, &client, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

/// The browser a request came from: its headers (cookies) and its address.
struct Browser<'a> {
    headers: &'a HeaderMap,
    addr: IpAddr,
}

async fn decide(
    state: &AppState,
    browser: &Browser<'_>,
    client: &crate::domain::Client,
    req: AuthRequest,
) -> Result<Response, PageError> {
    use policy::Decision;
    let now = state.now();
    // The session with the client's group rule and the user's consent: one read of the store.
    let at = session::current_at_client(state, browser.headers, &client.id, now).await?;
    // The user's factors, when the request wants more than the session proved (a step-up).
    let factors = match &at {
        Some(a) if policy::asks_more(&req, client, &a.session) => {
            steps::enrolled(state, &state.store.credentials(&a.session.user_id).await?)
        }
        _ => Default::default(),
    };
    let current = at.as_ref().map(|a| &a.session);
    Ok(match (policy::decide(&req, client, current, &factors, now), at) {
        (Decision::Issue, Some(at)) => {
            let s = at.session;
            if !at.may_use_client {
                return Ok(resume::refuse_outside_required_groups(state, &s, client, &req.target).await);
            }
            if !consent::needed(&req, client, &at.consented) {
                return resume::issue(state, &req, &s).await;
            }
            // prompt=none: no UI may be shown (OIDC Core §3.1.2.1), so say what would be needed.
            if req.prompt.none {
                let e = err("consent_required", "the user has not consented to this client");
                return Ok(response::error(state, &req.target, &e));
            }
            start(state, browser, req, Entry::SignedIn(s)).await?
        }
        // The request demands an acr this user cannot reach: say so rather than sign in weaker.
        (Decision::Unmet, _) => resume::unmet(state, &req.target),
        (Decision::StepUp(_), _) if req.prompt.none => response::error(
            state,
            &req.target,
            &err("interaction_required", "the requested authentication context needs the user's second factor"),
        ),
        (Decision::StepUp(step), Some(at)) => start(state, browser, req, Entry::StepUp(at.session, step)).await?,
        (_, _) if req.prompt.none => {
            response::error(state, &req.target, &err("login_required", "the user is not signed in"))
        }
        (_, _) => start(state, browser, req, Entry::SignIn).await?,
    })
}

/// Hands the request to a login flow that comes back to [`resume`].
async fn start(state: &AppState, browser: &Browser<'_>, req: AuthRequest, entry: Entry) -> Result<Response, PageError> {
    let hand_back = HandBack::Resume(resume::PATH.into());
    let (location, cookie) = flow::start(state, browser.headers, browser.addr, Some(req), hand_back, entry).await?;
    let mut resp = see_other(&location);
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}
