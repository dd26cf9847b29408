//! The contract between the login engine and its steps.
//!
//! A step is a unit type implementing [`Step`]: it declares what it is (its name, its
//! [`Role`] in a sign-in, the `amr` values it proves, whether a user has it enrolled) and what it
//! does when its page is shown ([`Step::render`]), when its form is posted ([`Step::submit`]),
//! when its page's script or button asks for something ([`Step::action`]: a passkey challenge,
//! the redirect to an upstream provider) and when the outside world calls back
//! ([`Step::callback`] then [`Step::resume`]: an upstream provider's redirect, a link opened
//! from a mail). Every answer is plain data, an [`Outcome`]: show this view, go there, passed
//! (user and `amr`), failed (why). Only the engine's HTTP adapter turns outcomes into responses.
//!
//! A step never imports the engine (`login::flow`) and never decides what comes next: it sees
//! the flow through [`Ctx`] and the policy decides. Steps are listed once, in
//! `login::steps::registry!`.

use crate::domain::Credentials;
use crate::http::{PageError, Params};
use crate::pages::{Switch, View};
use crate::state::AppState;
use serde_json::Value;

/// Where a step may stand in a sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Identifies the user: a sign-in can start with it.
    First,
    /// Proves again the user a first step identified.
    Second,
    /// A second factor, and a first one where the operator enables it ([`Step::first_factor`]).
    Either,
    /// Stands in for the second factors named in [`Step::STANDS_IN_FOR`] (recovery codes).
    Fallback,
}

/// What a step is given for one request: the flow as far as a step may see it, and the user's
/// enrolled credentials once a first step identified one.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    /// The flow's id: it names the step's page and keys what a step keeps between requests.
    pub flow_id: &'a str,
    /// The token every form of the flow carries.
    pub csrf: &'a str,
    /// The step whose page the browser is on.
    pub current: &'static str,
    /// The user identified so far (or the session's user, for a step-up).
    pub user_id: Option<&'a str>,
    /// Whom the person is signing in to, for page headings.
    pub audience: &'a str,
    /// The client the sign-in is for, for the audit log; none for the account pages.
    pub client_id: Option<&'a str>,
    /// The name to prefill: the client's `login_hint`, or the account a step asked to prove.
    pub login_hint: Option<&'a str>,
    /// Why this sign-in is asked, when a step said so (e.g. to link an upstream account).
    pub notice: Option<&'a str>,
    /// The buttons to the other steps the policy offers instead of this one.
    pub switches: Vec<Switch>,
    pub credentials: Credentials,
    pub ip: Option<String>,
    pub now: i64,
    /// Whether "remember me" is ticked (offered on the first step's page).
    pub remember: bool,
}

impl Ctx<'_> {
    /// The form action of the flow's current step.
    pub fn action(&self) -> String {
        format!("/login/{}", self.flow_id)
    }

    /// Where a page's form or script reaches [`Step::action`] of the step routed at `route`.
    pub fn action_url(&self, route: &str, arg: Option<&str>) -> String {
        match arg {
            Some(arg) => format!("/login/{}/{route}/{arg}", self.flow_id),
            None => format!("/login/{}/{route}", self.flow_id),
        }
    }

    /// Before anyone is identified, on the first step's page.
    pub fn at_start(&self) -> bool {
        self.user_id.is_none()
    }
}

/// What a step found.
pub enum Outcome {
    /// Not judged yet: show this (the next part of the step, e.g. "we sent a code").
    Show(View),
    /// Send the browser there (e.g. to an upstream provider).
    Redirect(String),
    /// JSON for the page's script (e.g. a WebAuthn challenge).
    Data(Value),
    /// The step proved who the user is.
    Passed(Passed),
    /// Not proven: `message` is for the person, `reason` for the audit log.
    Failed(Failed),
    /// Nothing proven yet, but something to keep to the end of the flow: the flow goes back to
    /// its first step with `notice` and `login_hint`, and once signed in the step is handed
    /// `data` again ([`Step::signed_in`]).
    Hold { data: Value, notice: String, login_hint: Option<String> },
}

pub struct Passed {
    pub user_id: String,
    /// RFC 8176 values this step proved.
    pub amr: Vec<String>,
    /// A page to show once signed in, before going on (e.g. "you have 3 recovery codes left").
    pub then: Option<View>,
}

impl Outcome {
    /// The step proved `user_id`, with these `amr` values.
    pub fn passed(user_id: String, amr: Vec<String>) -> Self {
        Self::Passed(Passed { user_id, amr, then: None })
    }

    pub fn failed(message: &'static str, reason: &'static str, user_id: Option<String>) -> Self {
        Self::Failed(Failed { message, reason, user_id })
    }
}

pub struct Failed {
    pub message: &'static str,
    pub reason: &'static str,
    pub user_id: Option<String>,
}

/// What an external callback found, before any flow is loaded.
pub enum Callback {
    /// It belongs to this flow; [`Step::resume`] gets `data` once the flow is loaded and known
    /// to be this browser's. Opened in another browser (a link opened on a phone), `elsewhere`
    /// is shown there instead when the step has something to say; else the flow's error.
    Flow { flow_id: String, data: Value, elsewhere: Option<View> },
    /// It belongs to no flow we can trust: show this, with a way back to the start.
    Show(View),
}

/// One login step. The engine calls these through the registry; a step overrides what it uses.
#[allow(async_fn_in_trait)]
pub trait Step {
    /// Its name in forms (`step=`, `switch=`), the flow and the audit log.
    const NAME: &'static str;
    /// The path segment of its actions and callbacks (`/login/{flow}/{route}/…`).
    const ROUTE: &'static str = Self::NAME;
    const ROLE: Role;
    /// The `amr` values (RFC 8176) it always proves; a step may report more when it passes.
    const PROVES: &'static [&'static str];
    /// The button that switches to it from another step.
    const SWITCH_LABEL: &'static str;
    /// Among the second factors a user has, the lower is asked first.
    const PREFERENCE: u8 = u8::MAX;
    /// Offered on the first step's page beside it (a passkey, upstream providers), so its
    /// form or action may answer that page.
    const BESIDE_FIRST: bool = false;
    /// Its proof comes from another provider: it counts as one first factor, whatever that
    /// provider reports.
    const UPSTREAM: bool = false;
    /// For a [`Role::Fallback`]: the steps it stands in for.
    const STANDS_IN_FOR: &'static [&'static str] = &[];

    /// Whether the user with these credentials can take this step as a second factor.
    fn enrolled(_state: &AppState, _credentials: &Credentials) -> bool {
        false
    }

    /// Whether it may start a sign-in here (for [`Role::Either`], an operator's choice).
    fn first_factor(_state: &AppState) -> bool {
        matches!(Self::ROLE, Role::First)
    }

    /// Its page. `error` is what a failed submission said; `form` what was posted.
    async fn render(ctx: &Ctx<'_>, error: Option<&str>, form: Option<&Params>) -> Result<View, PageError>;

    /// Judges its form.
    async fn submit(ctx: &Ctx<'_>, form: &Params) -> Result<Outcome, PageError>;

    /// `POST /login/{flow}/{route}[/{arg}]`, from its page (a challenge, a redirect).
    async fn action(_ctx: &Ctx<'_>, _arg: Option<&str>, _form: &Params) -> Result<Outcome, PageError> {
        Err(PageError::not_found("There is nothing at this address."))
    }

    /// `GET` (or `POST`, `confirmed`) `/login/{route}/{arg}/callback`: the outside world
    /// answering — an upstream provider's redirect, a link opened from a mail and confirmed.
    /// `params` are the query, or the posted form.
    async fn callback(
        _state: &AppState,
        _arg: &str,
        _params: &Params,
        _confirmed: bool,
        _ip: Option<String>,
    ) -> Result<Callback, PageError> {
        Err(PageError::not_found("There is nothing at this address."))
    }

    /// Before its page is shown: whether what the step waits for has happened elsewhere (a link
    /// confirmed on another device), so the flow goes on without a form.
    async fn waiting(_ctx: &Ctx<'_>) -> Result<Option<Outcome>, PageError> {
        Ok(None)
    }

    /// The flow a [`Callback::Flow`] named, loaded: judge what came back.
    async fn resume(_ctx: &Ctx<'_>, _arg: &str, _data: Value) -> Result<Outcome, PageError> {
        Err(PageError::expired())
    }

    /// The flow that held `data` ([`Outcome::Hold`]) has signed in as `user_id`.
    async fn signed_in(
        _state: &AppState,
        _data: Value,
        _user_id: &str,
        _ip: Option<String>,
        _now: i64,
    ) -> Result<(), PageError> {
        Ok(())
    }
}

/// Declares the steps, once: each line names a variant of [`StepKind`](crate::login::steps::StepKind)
/// and the type implementing [`Step`]. It writes the dispatch from a kind to its step, so the
/// engine and the policy work over kinds and never name one.
macro_rules! registry {
    ($($kind:ident => $step:ty),+ $(,)?) => {
        /// A registered step, as the flow records it and the policy reasons about it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum StepKind { $($kind),+ }

        impl StepKind {
            /// Every step, in registry order: the first one a sign-in may start with is where it starts.
            pub const ALL: &'static [StepKind] = &[$(StepKind::$kind),+];

            pub fn name(self) -> &'static str { match self { $(Self::$kind => <$step as Step>::NAME),+ } }
            pub fn route(self) -> &'static str { match self { $(Self::$kind => <$step as Step>::ROUTE),+ } }
            pub fn role(self) -> Role { match self { $(Self::$kind => <$step as Step>::ROLE),+ } }
            pub fn switch_label(self) -> &'static str { match self { $(Self::$kind => <$step as Step>::SWITCH_LABEL),+ } }
            pub fn preference(self) -> u8 { match self { $(Self::$kind => <$step as Step>::PREFERENCE),+ } }
            pub fn beside_first(self) -> bool { match self { $(Self::$kind => <$step as Step>::BESIDE_FIRST),+ } }
            pub fn upstream(self) -> bool { match self { $(Self::$kind => <$step as Step>::UPSTREAM),+ } }
            pub fn stands_in_for(self) -> &'static [&'static str] {
                match self { $(Self::$kind => <$step as Step>::STANDS_IN_FOR),+ }
            }
            /// The `amr` values it always proves.
            pub fn proves(self) -> Vec<String> {
                let v: &[&str] = match self { $(Self::$kind => <$step as Step>::PROVES),+ };
                v.iter().map(|s| s.to_string()).collect()
            }
            pub fn enrolled(self, state: &AppState, c: &Credentials) -> bool {
                match self { $(Self::$kind => <$step as Step>::enrolled(state, c)),+ }
            }
            pub fn first_factor(self, state: &AppState) -> bool {
                match self { $(Self::$kind => <$step as Step>::first_factor(state)),+ }
            }
            pub fn parse(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|k| k.name() == name)
            }
            pub fn by_route(route: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|k| k.route() == route)
            }

            pub async fn render(self, ctx: &Ctx<'_>, error: Option<&str>, form: Option<&Params>) -> Result<View, PageError> {
                match self { $(Self::$kind => <$step as Step>::render(ctx, error, form).await),+ }
            }
            pub async fn submit(self, ctx: &Ctx<'_>, form: &Params) -> Result<Outcome, PageError> {
                match self { $(Self::$kind => <$step as Step>::submit(ctx, form).await),+ }
            }
            pub async fn action(self, ctx: &Ctx<'_>, arg: Option<&str>, form: &Params) -> Result<Outcome, PageError> {
                match self { $(Self::$kind => <$step as Step>::action(ctx, arg, form).await),+ }
            }
            pub async fn callback(self, state: &AppState, arg: &str, params: &Params, confirmed: bool, ip: Option<String>) -> Result<Callback, PageError> {
                match self { $(Self::$kind => <$step as Step>::callback(state, arg, params, confirmed, ip).await),+ }
            }
            pub async fn waiting(self, ctx: &Ctx<'_>) -> Result<Option<Outcome>, PageError> {
                match self { $(Self::$kind => <$step as Step>::waiting(ctx).await),+ }
            }
            pub async fn resume(self, ctx: &Ctx<'_>, arg: &str, data: Value) -> Result<Outcome, PageError> {
                match self { $(Self::$kind => <$step as Step>::resume(ctx, arg, data).await),+ }
            }
            pub async fn signed_in(self, state: &AppState, data: Value, user_id: &str, ip: Option<String>, now: i64) -> Result<(), PageError> {
                match self { $(Self::$kind => <$step as Step>::signed_in(state, data, user_id, ip, now).await),+ }
            }
        }

        impl serde::Serialize for StepKind {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for StepKind {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <String as serde::Deserialize>::deserialize(d)?;
                Self::parse(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown step {name}")))
            }
        }
    };
}
pub(crate) use registry;

/// Who is changing their factors on the account security page, as a step's enrolment sees it.
pub struct Account<'a> {
    pub state: &'a AppState,
    pub user_id: &'a str,
    /// Keys what an enrolment keeps between its start and its confirmation.
    pub session_id: &'a str,
    /// The token the account page's forms carry.
    pub csrf: &'a str,
    pub ip: Option<String>,
    pub now: i64,
}

impl Account<'_> {
    /// An audit event about this account's factors.
    pub fn event(&self, kind: &'static str) -> crate::store::AuditEvent {
        crate::store::AuditEvent::new(kind)
            .user(self.user_id)
            .ip(self.ip.clone())
            .detail("sid", self.session_id.to_owned())
    }
}

/// What an enrolment action found.
pub enum Enrolment {
    /// Its own page: a QR code, the code just mailed, the browser's passkey ceremony, new codes.
    Show(View),
    /// Back to the security page, saying this.
    Notice(&'static str),
    /// A factor is on: the security page says this, once the fallbacks due are made.
    Enabled(&'static str),
}
