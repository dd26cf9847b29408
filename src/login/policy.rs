//! Which steps a sign-in needs, decided from the request, the client, the user's enrolled
//! factors and the session. Pure functions of their inputs: no I/O, the time passed in.
//!
//! Assurance (`acr`, OIDC Core §2) has two levels: "1", one factor (a password), and "2", two
//! factors of different kinds (a password and a one-time code). A client's `min_acr` and an
//! essential `acr` claim (§5.5.1.1) must be met, or the client is told
//! `unmet_authentication_requirements`; `acr_values` is voluntary (§3.1.2.1) and gets the best
//! the user can reach. A user with a second factor is always asked for one after the first
//! step, whichever step that was, unless that step already proved two kinds of factor (a
//! passkey with user verification). `amr` values follow RFC 8176: `pwd`, `otp` (an
//! authenticator code, an emailed code or a recovery code: all one-time passwords), `hwk`/`swk`
//! (a passkey bound to one device / synced between devices), `user` (the authenticator verified
//! the user, by PIN or biometric: more than the presence test the name says, and counted as a
//! factor of its own kind), and `mfa` once two kinds of factor are proven.

use super::step::Role;
use super::steps::StepKind;
use crate::domain::{AuthRequest, Client, Credentials, Session};
use serde_json::Value;

/// Authentication context classes offered, lowest first; a value's level is its position + 1.
pub const ACR_VALUES_SUPPORTED: &[&str] = &["1", "2"];

const MAX_LEVEL: u8 = ACR_VALUES_SUPPORTED.len() as u8;

/// The level of an offered `acr` value.
pub fn acr_level(acr: &str) -> Option<u8> {
    ACR_VALUES_SUPPORTED.iter().position(|a| *a == acr).map(|i| i as u8 + 1)
}

/// The steps a user has enrolled, as each registered step judges its credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Factors(Vec<StepKind>);

impl Factors {
    pub fn new(enrolled: impl IntoIterator<Item = StepKind>) -> Self {
        Self(enrolled.into_iter().collect())
    }

    /// The second-factor steps this user can take, the one offered first first (a passkey, as
    /// it cannot be phished, then the app, then email: each step's preference). Fallbacks
    /// (recovery codes) are not among them: they stand in for these.
    pub fn second_factor_steps(&self) -> Vec<StepKind> {
        let mut steps: Vec<StepKind> =
            self.0.iter().copied().filter(|s| matches!(s.role(), Role::Second | Role::Either)).collect();
        steps.sort_by_key(|s| s.preference());
        steps
    }

    pub fn any(&self) -> bool {
        !self.second_factor_steps().is_empty()
    }

    /// The fallback steps that stand in for a factor this user has (recovery codes, made when
    /// the app or emailed codes are turned on, gone when both are off).
    pub fn fallbacks(&self) -> Vec<StepKind> {
        StepKind::ALL
            .iter()
            .copied()
            .filter(|f| f.role() == Role::Fallback)
            .filter(|f| f.stands_in_for().iter().any(|n| self.0.iter().any(|s| s.name() == *n)))
            .collect()
    }

    /// Whether this user should hold recovery codes.
    pub fn keeps_fallbacks(&self) -> bool {
        !self.fallbacks().is_empty()
    }

    /// These factors without `step` (to ask what a removal would leave).
    pub fn without(&self, step: StepKind) -> Self {
        Self(self.0.iter().copied().filter(|s| *s != step).collect())
    }
}

/// How many ways into the account its credentials leave: a password, each linked upstream
/// identity, the passkeys, a code or link by email where the operator allows signing in with
/// one (`email_first`: and the address is confirmed), and a code to the verified phone number
/// where the operator allows that (`phone_first`: `phone.first_factor` with a channel on).
/// Unlinking, removing a passkey, a factor or the number must leave at least one.
pub fn ways_in(c: &Credentials, email_first: bool, phone_first: bool) -> u32 {
    u32::from(c.password)
        + c.upstream
        + u32::from(c.passkeys > 0)
        + u32::from(email_first)
        + u32::from(phone_first && c.phone_number)
}

/// The assurance a sign-in must and should reach, as levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// Must be reached: the client's `min_acr` and an essential `acr` claim. Above every
    /// offered level when the essential values name none we offer.
    pub minimum: u8,
    /// Reached when the user can: the first offered value of `acr_values`, else `minimum`.
    pub wanted: u8,
}

impl Requirement {
    /// What the account pages ask: one factor, and the second when the user has one.
    pub const ACCOUNT: Requirement = Requirement { minimum: 1, wanted: 1 };
}

/// The requirement of an authorization request for `client`.
pub fn requirement(req: &AuthRequest, client: &Client) -> Requirement {
    let (essential, voluntary) = acr_claim(req.claims.as_deref());
    let minimum = client.min_acr.max(1).max(essential.unwrap_or(1));
    let wanted = req.acr_values.iter().find_map(|v| acr_level(v)).or(voluntary).unwrap_or(1).max(minimum);
    Requirement { minimum, wanted }
}

/// The `acr` member of `claims.id_token` (OIDC Core §5.5.1.1): with `essential: true` it must
/// be met, otherwise it is a wish like `acr_values`. Of several values the lowest offered one
/// satisfies; an essential request naming only values we do not offer cannot be met.
fn acr_claim(claims: Option<&str>) -> (Option<u8>, Option<u8>) {
    let Some(Ok(Value::Object(root))) = claims.map(serde_json::from_str::<Value>) else { return (None, None) };
    let Some(Value::Object(acr)) = root.get("id_token").and_then(|t| t.get("acr")) else { return (None, None) };
    let mut values: Vec<&str> = acr.get("value").and_then(Value::as_str).into_iter().collect();
    if let Some(Value::Array(a)) = acr.get("values") {
        values.extend(a.iter().filter_map(Value::as_str));
    }
    if values.is_empty() {
        return (None, None);
    }
    let level = values.iter().filter_map(|v| acr_level(v)).min();
    if acr.get("essential") == Some(&Value::Bool(true)) {
        (Some(level.unwrap_or(MAX_LEVEL + 1)), None)
    } else {
        (None, level)
    }
}

/// What `/authorize` does for a request, given the browser's session.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Answer at once from the session.
    Issue,
    /// Authenticate (again): no session, `prompt=login`, `max_age` exceeded, or the
    /// `id_token_hint` names someone else.
    Login,
    /// Signed in with less than the request asks and the user has a second factor that raises
    /// it: prove that step and raise this session's acr, rather than start over.
    StepUp(StepKind),
    /// The request demands more than this user can prove.
    Unmet,
}

/// `factors` are those of the session's user; only a request that [`asks_more`] than the session
/// proved needs them. Consent is the authorization endpoint's
/// question, asked once this says `Issue`.
pub fn decide(req: &AuthRequest, client: &Client, session: Option<&Session>, factors: &Factors, now: i64) -> Decision {
    let Some(s) = session else { return Decision::Login };
    let too_old = req.max_age.is_some_and(|max| s.older_than(max, now));
    let other_user = req.hint_sub.as_ref().is_some_and(|sub| *sub != s.user_id);
    if req.prompt.login || too_old || other_user {
        return Decision::Login;
    }
    let need = requirement(req, client);
    let have = acr_level(&s.acr).unwrap_or(1);
    // As `asks_more` says (one reading of the request's `claims`, not two).
    let step_up = if have < need.wanted { step_up_step(&s.amr, factors) } else { None };
    if let Some(step) = step_up {
        Decision::StepUp(step)
    } else if have < need.minimum {
        Decision::Unmet
    } else {
        Decision::Issue
    }
}

/// Whether the request wants more than the session `s` proved: then, and only then, [`decide`]
/// weighs the user's factors (the step that would raise it).
pub fn asks_more(req: &AuthRequest, client: &Client, s: &Session) -> bool {
    acr_level(&s.acr).unwrap_or(1) < requirement(req, client).wanted
}

/// The step a sign-in starts with: the first of `firsts`, the steps that may start one here in
/// registry order.
pub fn first_step(firsts: &[StepKind]) -> Option<StepKind> {
    firsts.iter().copied().find(|s| !s.beside_first())
}

/// The step that raises a session proven by `amr` to a higher acr: the user's first second
/// factor that adds a kind of factor the session lacks. None when no enrolled step would.
pub fn step_up_step(amr: &[String], factors: &Factors) -> Option<StepKind> {
    let level = |amr: &[String]| acr_level(acr_for(amr)).unwrap_or(1);
    factors.second_factor_steps().into_iter().find(|step| level(&combine_amr(amr, &step.proves())) > level(amr))
}

/// What follows once a step has passed.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Step(StepKind),
    Done,
    /// Every step the user can take is taken and the minimum is still not met.
    Unmet,
}

/// After a step passed: `passed` are this flow's steps so far, `amr` what they (and, for a
/// step-up, the session) proved, `factors` the user's. A second factor is asked once the first
/// step is done — a step not yet taken in this flow — unless the `amr` is already `mfa`.
pub fn next_step(need: Requirement, passed: &[StepKind], amr: &[String], factors: &Factors) -> Next {
    let has_mfa = amr.iter().any(|m| m == "mfa");
    let second_done = passed.len() >= 2 || passed.iter().any(|s| s.role() == Role::Fallback);
    if !has_mfa
        && !second_done
        && let Some(step) = factors.second_factor_steps().into_iter().find(|s| !passed.contains(s))
    {
        return Next::Step(step);
    }
    if acr_level(acr_for(amr)).unwrap_or(1) >= need.minimum { Next::Done } else { Next::Unmet }
}

/// Steps the person may switch to instead of `step`. Before anyone is identified: the other
/// steps that may start a sign-in here (`firsts`), less those its page offers beside it (a
/// passkey, upstream providers). After: the user's other second factors, and the fallbacks
/// standing in for them.
pub fn alternatives(step: StepKind, identified: bool, factors: &Factors, firsts: &[StepKind]) -> Vec<StepKind> {
    let candidates = if !identified {
        let own: Vec<StepKind> = firsts.iter().copied().filter(|s| !s.beside_first()).collect();
        if own.len() > 1 { own } else { vec![] }
    } else {
        let mut steps = factors.second_factor_steps();
        steps.extend(factors.fallbacks());
        steps
    };
    candidates.into_iter().filter(|s| *s != step).collect()
}

/// Whether a form or action on the page of `step` may answer step `k`: its own step, an
/// alternative, or — before anyone is identified — a step offered beside the first one.
pub fn answerable(step: StepKind, k: StepKind, identified: bool, factors: &Factors, firsts: &[StepKind]) -> bool {
    k == step || (k.beside_first() && !identified) || alternatives(step, identified, factors, firsts).contains(&k)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FactorKind {
    Knowledge,
    Possession,
    /// The authenticator's own check of the user (PIN or biometric), reported as `user`.
    Verification,
}

/// RFC 8176 values by the kind of factor they prove.
fn factor_kind(amr: &str) -> Option<FactorKind> {
    match amr {
        "pwd" | "pin" | "kba" => Some(FactorKind::Knowledge),
        "otp" | "hwk" | "swk" | "sms" | "tel" => Some(FactorKind::Possession),
        "user" => Some(FactorKind::Verification),
        _ => None,
    }
}

fn proves(amr: &[String], kind: FactorKind) -> bool {
    amr.iter().any(|m| factor_kind(m) == Some(kind))
}

/// `so_far` with `added`, and `mfa` once two kinds of factor are in (RFC 8176 §2).
pub fn combine_amr(so_far: &[String], added: &[String]) -> Vec<String> {
    let mut out: Vec<String> = so_far.iter().filter(|m| *m != "mfa").cloned().collect();
    for m in added {
        if !out.contains(m) {
            out.push(m.clone());
        }
    }
    let kinds = [FactorKind::Knowledge, FactorKind::Possession, FactorKind::Verification];
    if kinds.iter().filter(|k| proves(&out, **k)).count() >= 2 {
        out.push("mfa".into());
    }
    out
}

/// RFC 8176 §2 (the IANA registry's values).
const REGISTERED_AMR: &[&str] = &[
    "face", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pwd", "rba", "retina", "sc", "sms", "swk",
    "tel", "user", "vbm", "wia",
];

/// The `amr` an upstream sign-in adds: the upstream's own values that RFC 8176 registers, less
/// those that would read here as a further kind of factor proven (possession values, the
/// authenticator's `user` verification, `mfa`, `mca`): upstream values never count toward the
/// local second factor, so the user's own is still asked after federation, and only local
/// steps raise `acr` above 1.
pub fn upstream_amr(upstream: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in upstream {
        let second = matches!(factor_kind(m), Some(FactorKind::Possession | FactorKind::Verification))
            || m == "mfa"
            || m == "mca";
        if REGISTERED_AMR.contains(&m.as_str()) && !second && !out.contains(m) {
            out.push(m.clone());
        }
    }
    out
}

/// An upstream sign-in is the first factor whatever `amr` it reported: followed by a
/// possession factor proven here, the sign-in has two factors (`mfa`).
pub fn after_federation(passed: &[StepKind], mut amr: Vec<String>) -> Vec<String> {
    let federated = passed.iter().any(|s| s.upstream());
    let possession = amr.iter().any(|m| factor_kind(m) == Some(FactorKind::Possession));
    if federated && possession && !amr.iter().any(|m| m == "mfa") {
        amr.push("mfa".into());
    }
    amr
}

/// The `acr` a set of `amr` values earns.
pub fn acr_for(amr: &[String]) -> &'static str {
    if amr.iter().any(|m| m == "mfa") { ACR_VALUES_SUPPORTED[1] } else { ACR_VALUES_SUPPORTED[0] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{client, request};
    use StepKind::{EmailOtp as E, Passkey as P, Totp as T};

    fn f(steps: &[StepKind]) -> Factors {
        Factors::new(steps.iter().copied())
    }
    fn none() -> Factors {
        f(&[])
    }
    fn totp() -> Factors {
        f(&[T])
    }
    fn email() -> Factors {
        f(&[E])
    }
    fn passkey() -> Factors {
        f(&[P])
    }
    /// An authenticator app and emailed codes.
    fn both() -> Factors {
        f(&[T, E])
    }
    fn totp_passkey() -> Factors {
        f(&[T, P])
    }
    /// The steps that may start a sign-in: the password (and passkey, federation beside it),
    /// and with `email_first` an emailed code.
    fn firsts(email_first: bool) -> Vec<StepKind> {
        let mut v = vec![StepKind::Password, StepKind::Passkey, StepKind::Federation];
        if email_first {
            v.push(StepKind::EmailOtp);
        }
        v
    }

    fn session(auth_time: i64) -> Session {
        Session {
            id: "s".into(),
            user_id: "u".into(),
            auth_time,
            amr: vec!["pwd".into()],
            acr: "1".into(),
            expires_at: i64::MAX,
            created_at: auth_time,
            last_seen_at: auth_time,
            user_agent: None,
            ip: None,
            persistent: false,
        }
    }

    #[test]
    fn no_session_means_login() {
        assert_eq!(decide(&request(), &client(false), None, &none(), 100), Decision::Login);
    }

    #[test]
    fn max_age_and_prompt_login_force_authentication() {
        let mut req = request();
        req.max_age = Some(10);
        assert_eq!(decide(&req, &client(true), Some(&session(0)), &none(), 11), Decision::Login);
        assert_eq!(decide(&req, &client(true), Some(&session(0)), &none(), 10), Decision::Issue);
        let mut req = request();
        req.prompt.login = true;
        assert_eq!(decide(&req, &client(true), Some(&session(0)), &none(), 1), Decision::Login);
    }

    #[test]
    fn id_token_hint_for_another_user_means_login() {
        let mut req = request();
        req.hint_sub = Some("someone-else".into());
        assert_eq!(decide(&req, &client(true), Some(&session(0)), &none(), 1), Decision::Login);
    }

    fn amr(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn two_kinds_of_factor_make_mfa_and_acr_2() {
        let pwd = combine_amr(&[], &amr(&["pwd"]));
        assert_eq!(pwd, amr(&["pwd"]));
        assert_eq!(acr_for(&pwd), "1");
        let both = combine_amr(&pwd, &amr(&["otp"]));
        assert_eq!(both, amr(&["pwd", "otp", "mfa"]));
        assert_eq!(acr_for(&both), "2");
        // Two possession factors are not two kinds.
        assert_eq!(acr_for(&combine_amr(&amr(&["otp"]), &amr(&["hwk"]))), "1");
        // Combining again does not repeat values.
        assert_eq!(combine_amr(&both, &amr(&["otp"])), amr(&["pwd", "otp", "mfa"]));
    }

    #[test]
    fn requirement_reads_client_minimum_essential_claim_and_acr_values() {
        let mut req = request();
        assert_eq!(requirement(&req, &client(true)), Requirement { minimum: 1, wanted: 1 });
        req.acr_values = vec!["unknown".into(), "2".into()];
        assert_eq!(requirement(&req, &client(true)), Requirement { minimum: 1, wanted: 2 });
        req.acr_values = vec![];
        req.claims = Some(r#"{"id_token":{"acr":{"essential":true,"values":["2"]}}}"#.into());
        assert_eq!(requirement(&req, &client(true)), Requirement { minimum: 2, wanted: 2 });
        req.claims = Some(r#"{"id_token":{"acr":{"essential":true,"values":["1","2"]}}}"#.into());
        assert_eq!(requirement(&req, &client(true)).minimum, 1);
        req.claims = Some(r#"{"id_token":{"acr":{"essential":true,"value":"gold"}}}"#.into());
        assert_eq!(requirement(&req, &client(true)).minimum, 3, "nothing offered can meet it");
        req.claims = Some(r#"{"id_token":{"acr":{"values":["2"]}}}"#.into());
        assert_eq!(requirement(&req, &client(true)), Requirement { minimum: 1, wanted: 2 });
        req.claims = None;
        let mut c = client(true);
        c.min_acr = 2;
        assert_eq!(requirement(&req, &c), Requirement { minimum: 2, wanted: 2 });
    }

    #[test]
    fn second_factor_is_always_asked_when_enrolled() {
        use StepKind::*;
        let need = Requirement { minimum: 1, wanted: 1 };
        assert_eq!(next_step(need, &[Password], &amr(&["pwd"]), &totp()), Next::Step(Totp));
        assert_eq!(next_step(need, &[Password], &amr(&["pwd"]), &email()), Next::Step(EmailOtp));
        assert_eq!(next_step(need, &[Password], &amr(&["pwd"]), &both()), Next::Step(Totp));
        assert_eq!(next_step(need, &[Password], &amr(&["pwd"]), &none()), Next::Done);
        assert_eq!(next_step(need, &[Password, Totp], &amr(&["pwd", "otp", "mfa"]), &totp()), Next::Done);
        assert_eq!(next_step(need, &[Password, RecoveryCode], &amr(&["pwd", "otp", "mfa"]), &both()), Next::Done);
        let strict = Requirement { minimum: 2, wanted: 2 };
        assert_eq!(next_step(strict, &[Password], &amr(&["pwd"]), &none()), Next::Unmet);
    }

    #[test]
    fn an_emailed_code_as_first_step_is_followed_by_another_factor() {
        use StepKind::*;
        let need = Requirement { minimum: 1, wanted: 1 };
        // The authenticator is still asked; the emailed code is not asked twice.
        assert_eq!(next_step(need, &[EmailOtp], &amr(&["otp"]), &both()), Next::Step(Totp));
        assert_eq!(next_step(need, &[EmailOtp], &amr(&["otp"]), &email()), Next::Done);
        // Two possession factors are one kind: acr stays 1, and a minimum of 2 is unmet.
        let two_codes = combine_amr(&amr(&["otp"]), &amr(&["otp"]));
        assert_eq!(acr_for(&two_codes), "1");
        let strict = Requirement { minimum: 2, wanted: 2 };
        assert_eq!(next_step(strict, &[EmailOtp, Totp], &two_codes, &both()), Next::Unmet);
    }

    #[test]
    fn alternatives_offer_the_other_factors_and_recovery_codes() {
        use StepKind::*;
        assert_eq!(alternatives(Totp, true, &totp(), &firsts(false)), vec![RecoveryCode]);
        assert_eq!(alternatives(Totp, true, &both(), &firsts(false)), vec![EmailOtp, RecoveryCode]);
        assert_eq!(alternatives(RecoveryCode, true, &email(), &firsts(false)), vec![EmailOtp]);
        assert_eq!(alternatives(Password, false, &none(), &firsts(false)), vec![]);
        assert_eq!(alternatives(Password, false, &none(), &firsts(true)), vec![EmailOtp]);
        assert_eq!(alternatives(EmailOtp, false, &none(), &firsts(true)), vec![Password]);
        // Nobody identified yet: no second factor is on offer, whatever was typed.
        assert_eq!(alternatives(Password, false, &both(), &firsts(false)), vec![]);
    }

    #[test]
    fn upstream_amr_never_stands_in_for_a_second_factor_here() {
        assert_eq!(upstream_amr(&amr(&["pwd", "otp", "mfa", "custom", "pwd"])), amr(&["pwd"]));
        let fed = [StepKind::Federation];
        assert_eq!(after_federation(&fed, amr(&[])), amr(&[]));
        let with_code = after_federation(&[StepKind::Federation, StepKind::Totp], combine_amr(&[], &amr(&["otp"])));
        assert_eq!(with_code, amr(&["otp", "mfa"]));
        assert_eq!(acr_for(&with_code), "2");
        assert_eq!(after_federation(&[StepKind::Totp], amr(&["otp"])), amr(&["otp"]), "not without federation");
        let need = Requirement { minimum: 2, wanted: 2 };
        let fed = [StepKind::Federation];
        assert_eq!(next_step(need, &fed, &upstream_amr(&amr(&["otp"])), &totp()), Next::Step(StepKind::Totp));
    }

    #[test]
    fn one_factor_session_steps_up_or_is_unmet() {
        let mut req = request();
        req.acr_values = vec!["2".into()];
        let s = session(0);
        assert_eq!(decide(&req, &client(true), Some(&s), &totp(), 1), Decision::StepUp(StepKind::Totp));
        assert_eq!(decide(&req, &client(true), Some(&s), &email(), 1), Decision::StepUp(StepKind::EmailOtp));
        // Voluntary: without a second factor the session is good enough.
        assert_eq!(decide(&req, &client(true), Some(&s), &none(), 1), Decision::Issue);
        let mut c = client(true);
        c.min_acr = 2;
        assert_eq!(decide(&request(), &c, Some(&s), &none(), 1), Decision::Unmet);
        assert_eq!(decide(&request(), &c, Some(&s), &totp(), 1), Decision::StepUp(StepKind::Totp));
        // A session from an emailed code gains no new kind of factor from the authenticator.
        let mut emailed = session(0);
        emailed.amr = amr(&["otp"]);
        assert_eq!(decide(&request(), &c, Some(&emailed), &totp(), 1), Decision::Unmet);
        let mut strong = session(0);
        strong.amr = amr(&["pwd", "otp", "mfa"]);
        strong.acr = "2".into();
        assert_eq!(decide(&request(), &c, Some(&strong), &totp(), 1), Decision::Issue);
    }

    #[test]
    fn factors_weigh_only_when_the_request_asks_more_than_the_session_proved() {
        // Authorization reads the user's factors only when `asks_more`: otherwise the decision
        // must be the same whatever they are.
        let mut wants_two = request();
        wants_two.acr_values = vec!["2".into()];
        let mut min_two = client(true);
        min_two.min_acr = 2;
        let mut strong = session(0);
        strong.amr = amr(&["pwd", "otp", "mfa"]);
        strong.acr = "2".into();
        let cases = [
            (request(), client(true), session(0), false),
            (wants_two.clone(), client(true), session(0), true),
            (request(), min_two.clone(), session(0), true),
            (wants_two, client(true), strong.clone(), false),
            (request(), min_two, strong, false),
        ];
        for (req, c, s, more) in cases {
            assert_eq!(asks_more(&req, &c, &s), more, "{:?} at min_acr {}", s.acr, c.min_acr);
            if !more {
                for factors in [none(), totp(), email(), passkey()] {
                    assert_eq!(decide(&req, &c, Some(&s), &factors, 1), decide(&req, &c, Some(&s), &none(), 1));
                }
            }
        }
    }

    #[test]
    fn a_verified_passkey_is_two_kinds_of_factor_alone() {
        use StepKind::*;
        let uv = combine_amr(&[], &amr(&["hwk", "user"]));
        assert_eq!(uv, amr(&["hwk", "user", "mfa"]));
        assert_eq!(acr_for(&uv), "2");
        // Not asked for another factor, even by a user who has &totp() too.
        let need = Requirement { minimum: 2, wanted: 2 };
        assert_eq!(next_step(need, &[Passkey], &uv, &totp_passkey()), Next::Done);
        // Without verification a passkey is one possession factor: the next one is asked.
        let up = combine_amr(&[], &amr(&["swk"]));
        assert_eq!(acr_for(&up), "1");
        assert_eq!(next_step(need, &[Passkey], &up, &totp_passkey()), Next::Step(Totp));
        assert_eq!(next_step(need, &[Passkey], &up, &passkey()), Next::Unmet);
        // After a password, a passkey adds possession (and its verification).
        let both = combine_amr(&amr(&["pwd"]), &amr(&["swk", "user"]));
        assert_eq!(both, amr(&["pwd", "swk", "user", "mfa"]));
        assert_eq!(acr_for(&combine_amr(&amr(&["pwd"]), &amr(&["hwk"]))), "2");
    }

    #[test]
    fn the_second_factor_asked_is_one_the_user_has() {
        use StepKind::*;
        let need = Requirement { minimum: 1, wanted: 1 };
        let pwd = amr(&["pwd"]);
        assert_eq!(next_step(need, &[Password], &pwd, &passkey()), Next::Step(Passkey));
        assert_eq!(next_step(need, &[Password], &pwd, &totp_passkey()), Next::Step(Passkey));
        assert_eq!(next_step(need, &[Password], &pwd, &totp()), Next::Step(Totp));
        assert_eq!(step_up_step(&pwd, &none()), None);
        assert_eq!(alternatives(Passkey, true, &totp_passkey(), &firsts(false)), vec![Totp, RecoveryCode]);
        // Recovery codes come with the app or emailed codes, not with passkeys alone.
        assert_eq!(alternatives(Passkey, true, &passkey(), &firsts(false)), vec![]);
        assert_eq!(alternatives(Totp, true, &totp_passkey(), &firsts(false)), vec![Passkey, RecoveryCode]);
        assert_eq!(alternatives(Totp, true, &totp(), &firsts(false)), vec![RecoveryCode]);
    }

    #[test]
    fn a_passkey_session_steps_up_a_password_session() {
        let mut c = client(true);
        c.min_acr = 2;
        assert_eq!(decide(&request(), &c, Some(&session(0)), &passkey(), 1), Decision::StepUp(StepKind::Passkey));
        let mut passwordless = session(0);
        passwordless.amr = amr(&["hwk", "user", "mfa"]);
        passwordless.acr = "2".into();
        assert_eq!(decide(&request(), &c, Some(&passwordless), &passkey(), 1), Decision::Issue);
    }

    #[test]
    fn a_verified_number_is_a_way_in_only_where_codes_by_phone_sign_in() {
        let phone_only = Credentials { phone_number: true, sms_codes: true, ..Credentials::default() };
        assert_eq!(ways_in(&phone_only, false, true), 1);
        assert_eq!(ways_in(&phone_only, false, false), 0, "a second factor is no way in");
        let codes_off = Credentials { sms_codes: false, ..phone_only };
        assert_eq!(ways_in(&codes_off, false, true), 1, "the number signs in with its codes off");
        let with_password = Credentials { password: true, ..phone_only };
        assert_eq!(ways_in(&with_password, true, true), 3);
    }
}
