//! The engine's HTTP adapter: the login routes, and the one place where what a step found (an
//! [`Outcome`]) becomes a response. Routes are generic over the registry: a step's page and
//! form at `/login/{flow}`, its actions at `/login/{flow}/{route}[/{arg}]`, its external
//! callbacks at `/login/{route}/{arg}/callback`.

use super::flow::{self, Flow, HandBack, Stage};
use super::session;
use super::step::{Callback, Outcome};
use super::steps::StepKind;
use crate::domain::{Client, user_agent};
use crate::http::client_ip::ClientAddr;
use crate::http::{PageError, Params};
use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::IpAddr;

pub fn router() -> Router<AppState> {
    let mut router = Router::new()
        .route("/login/{flow}", get(show).post(submit))
        .route("/login/{flow}/{route}", post(action))
        .route("/login/{flow}/{route}/{arg}", post(action_with));
    // One callback route per registered step, so a callback names its step by a fixed segment.
    for &step in StepKind::ALL {
        let path = format!("/login/{}/{{arg}}/callback", step.route());
        let confirm = move |state, addr, headers, path, body| confirmed(step, state, addr, headers, path, body);
        router = router.route(
            &path,
            get(move |state, addr, headers, path, query| callback(step, state, addr, headers, path, query))
                .post(confirm),
        );
    }
    router
}

pub fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn ip(addr: &IpAddr) -> Option<String> {
    Some(addr.to_string())
}

/// GET /login/{flow}: the current step's page, or where the flow went.
async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (flow, client) = flow::load(&state, &headers, &id).await?;
    let Stage::Authenticate { step } = flow.stage else { return handed_back(&flow) };
    let waited = {
        let ctx = flow.ctx(&state, step, client.as_deref(), None).await?;
        match step.waiting(&ctx).await? {
            Some(outcome) => outcome,
            None => return Ok(step.render(&ctx, None, None).await?.into_response()),
        }
    };
    respond(&state, &headers, None, flow, client.as_deref(), step, waited, None).await
}

/// Where a flow past its steps sends the browser.
fn handed_back(flow: &Flow) -> Result<Response, PageError> {
    if let Some(page) = flow::notice_page(flow) {
        return Ok(page.into_response());
    }
    if flow.unmet() && matches!(flow.hand_back, HandBack::Return(_)) {
        return Err(PageError::forbidden("This sign-in cannot reach the required assurance."));
    }
    Ok(see_other(&flow.location()))
}

/// POST /login/{flow}: judge the current step's form (or switch to an alternative), then
/// follow the policy.
async fn submit(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (mut flow, client) = flow::load(&state, &headers, &id).await?;
    let current = match &flow.stage {
        Stage::Authenticate { step } => *step,
        Stage::Notice { session_id, .. } => {
            flow::form(&flow, &headers, &body)?;
            flow.stage = Stage::SignedIn { session_id: session_id.clone() };
            flow::hand_back(&state, &flow).await?;
            return handed_back(&flow);
        }
        _ => return handed_back(&flow),
    };
    let p = flow::form(&flow, &headers, &body)?;
    // "Remember me", where the page offered it: it travels with the flow to the session.
    if p.get("remember_offered").is_some() {
        flow.remember = p.get("remember").is_some();
    }
    let unknown = || PageError::bad_request("invalid_request", "The form could not be read", "Unknown step.");
    let factors = match &flow.user_id {
        Some(u) => flow::factors_of(&state, u).await?,
        None => Default::default(),
    };
    // "Cancel": handed back to the starter, which tells its client the user refused.
    if p.get("switch") == Some(flow::CANCEL) && flow.cancellable() {
        let event = flow::audit("login.cancelled", current, client.as_deref(), ip(&addr));
        state.store.audit(event, state.now()).await;
        flow.stage = Stage::Cancelled;
        flow::hand_back(&state, &flow).await?;
        return Ok(see_other(&flow.location()));
    }
    // "Use a recovery code instead": only to a step the policy offers in place of this one.
    if let Some(name) = p.get("switch") {
        let to = StepKind::parse(name).filter(|k| flow.alternatives(&state, current, &factors).contains(k));
        let to = to.ok_or_else(unknown)?;
        flow.stage = Stage::Authenticate { step: to };
        flow::save(&state, &flow).await?;
        return Ok(see_other(&flow.location()));
    }
    // A form may answer another step directly: the passkey offered on the password page.
    let step = match p.get("step").map(StepKind::parse) {
        None => current,
        Some(Some(k)) if flow.answerable(&state, current, k, &factors) => k,
        Some(_) => return Err(unknown()),
    };
    let ip = ip(&addr);
    let outcome = {
        let ctx = flow.ctx(&state, step, client.as_deref(), ip.clone()).await?;
        step.submit(&ctx, &p).await?
    };
    respond(&state, &headers, ip, flow, client.as_deref(), step, outcome, Some(&p)).await
}

/// POST /login/{flow}/{route}: an action of a step offered on the current page.
async fn action(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path((id, route)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, PageError> {
    run_action(state, addr, headers, id, route, None, body).await
}

/// POST /login/{flow}/{route}/{arg}: the same, with an argument (which upstream provider).
async fn action_with(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path((id, route, arg)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, PageError> {
    run_action(state, addr, headers, id, route, Some(arg), body).await
}

async fn run_action(
    state: AppState,
    addr: IpAddr,
    headers: HeaderMap,
    id: String,
    route: String,
    arg: Option<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (flow, client) = flow::load(&state, &headers, &id).await?;
    let Stage::Authenticate { step: current } = flow.stage else { return handed_back(&flow) };
    let p = flow::form(&flow, &headers, &body)?;
    let step = StepKind::by_route(&route).ok_or_else(|| PageError::not_found("There is nothing at this address."))?;
    let factors = match &flow.user_id {
        Some(u) => flow::factors_of(&state, u).await?,
        None => Default::default(),
    };
    if !flow.answerable(&state, current, step, &factors) {
        return Err(PageError::not_found("This sign-in step offers nothing here."));
    }
    let ip = ip(&addr);
    let outcome = {
        let ctx = flow.ctx(&state, step, client.as_deref(), ip.clone()).await?;
        step.action(&ctx, arg.as_deref(), &p).await?
    };
    respond(&state, &headers, ip, flow, client.as_deref(), step, outcome, None).await
}

/// GET /login/{route}/{arg}/callback: the outside world answering a step.
async fn callback(
    step: StepKind,
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path(arg): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    called_back(step, state, addr, headers, arg, query, false).await
}

/// POST /login/{route}/{arg}/callback: the same, confirmed by the person (a button on the page
/// the GET showed, so that a mail scanner fetching a link consumes nothing).
async fn confirmed(
    step: StepKind,
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path(arg): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Params::from_form(&headers, &body)
        .map_err(|m| PageError::bad_request("invalid_request", "The form could not be read", m))?;
    called_back(step, state, addr, headers, arg, form, true).await
}

/// The step names the flow; the flow must be this browser's and still at a page that offers
/// the step.
async fn called_back(
    step: StepKind,
    state: AppState,
    addr: IpAddr,
    headers: HeaderMap,
    arg: String,
    params: Params,
    confirmed: bool,
) -> Result<Response, PageError> {
    let ip = ip(&addr);
    let (flow_id, data, elsewhere) = match step.callback(&state, &arg, &params, confirmed, ip.clone()).await? {
        Callback::Show(view) => return Ok(view.into_response()),
        Callback::Flow { flow_id, data, elsewhere } => (flow_id, data, elsewhere),
    };
    // A callback carried into another browser (login CSRF) goes no further here.
    let (flow, client) = match (flow::load(&state, &headers, &flow_id).await, elsewhere) {
        (Ok(loaded), _) => loaded,
        (Err(_), Some(view)) => return Ok(view.into_response()),
        (Err(e), None) => return Ok(e.into_response()),
    };
    let Stage::Authenticate { step: current } = flow.stage else { return handed_back(&flow) };
    let factors = match &flow.user_id {
        Some(u) => flow::factors_of(&state, u).await?,
        None => Default::default(),
    };
    if !flow.answerable(&state, current, step, &factors) {
        return Ok(see_other(&flow.location()));
    }
    let outcome = {
        let ctx = flow.ctx(&state, step, client.as_deref(), ip.clone()).await?;
        step.resume(&ctx, &arg, data).await?
    };
    respond(&state, &headers, ip, flow, client.as_deref(), step, outcome, None).await
}

/// What a step found, as a response: the one place outcomes become HTTP.
#[allow(clippy::too_many_arguments)]
async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    flow: Flow,
    client: Option<&Client>,
    step: StepKind,
    outcome: Outcome,
    form: Option<&Params>,
) -> Result<Response, PageError> {
    match outcome {
        Outcome::Show(view) => Ok(view.into_response()),
        Outcome::Redirect(location) => Ok(see_other(&location)),
        Outcome::Data(json) => {
            let mut resp = axum::Json(json).into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(resp)
        }
        Outcome::Failed(failed) => {
            let mut event = flow::audit("login.failed", step, client, ip.clone())
                .detail("reason", failed.reason)
                .detail("browser", user_agent::summary(session::user_agent(headers).as_deref()));
            if let Some(u) = &failed.user_id {
                event = event.user(u);
            }
            state.store.audit(event, state.now()).await;
            let ctx = flow.ctx(state, step, client, ip).await?;
            Ok(step.render(&ctx, Some(failed.message), form).await?.into_response())
        }
        Outcome::Hold { data, notice, login_hint } => {
            Ok(see_other(&flow::hold(state, flow, step, data, notice, login_hint).await?))
        }
        Outcome::Passed(passed) => {
            let advanced = flow::advance(state, headers, ip, flow, client, step, passed).await?;
            let mut resp = see_other(&advanced.location);
            if let Some(c) = advanced.cookie {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            Ok(resp)
        }
    }
}
