//! Authorization endpoint (OIDC Core §3.1.2, RFC 6749 §4.1): validate the request, then either
//! answer at once from the browser session or hand over to the login flow, which hands back to
//! [`resume`] once the user is signed in (consent, then the code).

pub mod code;
pub mod consent;
pub mod request;
pub mod response;
pub mod resume;

pub use request::{AuthRequest, PROMPT_VALUES, ResponseMode, Target};

use crate::http::{PageError, Params};
use crate::login::flow::{self, Entry, HandBack};
use crate::login::routes::see_other;
use crate::login::{policy, session};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use request::{Rejection, err};

/// GET: parameters in the query (OIDC Core §3.1.2.1).
pub async fn get(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => authorize(state, headers, p).await,
        Err(m) => PageError::bad_request("invalid_request", "This sign-in request is not valid", m).into_response(),
    }
}

/// POST: the same parameters, form-encoded (OIDC Core §3.1.2.1).
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match Params::from_form(&headers, &body) {
        Ok(p) => authorize(state, headers, p).await,
        Err(m) => PageError::bad_request("invalid_request", "This sign-in request is not valid", m).into_response(),
    }
}

async fn authorize(state: AppState, headers: HeaderMap, p: Params) -> Response {
    let (client, req) = match request::validate(&state, &p).await {
        Ok(v) => v,
        Err(Rejection::Page(e)) => return e.into_response(),
        Err(Rejection::Redirect(target, e)) => return response::error(&state, &target, &e),
    };
    match decide(&state, &headers, &client, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn decide(
    state: &AppState,
    headers: &HeaderMap,
    client: &crate::domain::Client,
    req: AuthRequest,
) -> Result<Response, PageError> {
    use policy::Decision;
    let now = state.now();
    let current = session::current(state, headers, now).await?;
    let factors = match &current {
        Some(s) => flow::factors_of(state, &s.user_id).await?,
        None => Default::default(),
    };
    Ok(match (policy::decide(&req, client, current.as_ref(), &factors, now), current) {
        (Decision::Issue, Some(s)) => {
            if let Some(refusal) = resume::outside_required_groups(state, &s, client, &req.target).await? {
                return Ok(refusal);
            }
            let consented = state.store.consented_scopes(&s.user_id, &client.id).await?;
            if !consent::needed(&req, client, &consented) {
                let code = code::issue(state, &req, &s).await?;
                return Ok(response::code(state, &req.target, &code));
            }
            // prompt=none: no UI may be shown (OIDC Core §3.1.2.1), so say what would be needed.
            if req.prompt.none {
                let e = err("consent_required", "the user has not consented to this client");
                return Ok(response::error(state, &req.target, &e));
            }
            start(state, headers, req, Entry::SignedIn(s)).await?
        }
        // The request demands an acr this user cannot reach: say so rather than sign in weaker.
        (Decision::Unmet, _) => resume::unmet(state, &req.target),
        (Decision::StepUp(_), _) if req.prompt.none => response::error(
            state,
            &req.target,
            &err("interaction_required", "the requested authentication context needs the user's second factor"),
        ),
        (Decision::StepUp(step), Some(s)) => start(state, headers, req, Entry::StepUp(s, step)).await?,
        (_, _) if req.prompt.none => {
            response::error(state, &req.target, &err("login_required", "the user is not signed in"))
        }
        (_, _) => start(state, headers, req, Entry::SignIn).await?,
    })
}

/// Hands the request to a login flow that comes back to [`resume`].
async fn start(state: &AppState, headers: &HeaderMap, req: AuthRequest, entry: Entry) -> Result<Response, PageError> {
    let (location, cookie) =
        flow::start(state, headers, Some(req), HandBack::Resume(resume::PATH.into()), entry).await?;
    let mut resp = see_other(&location);
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}
