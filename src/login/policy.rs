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

use super::steps::StepKind;
use crate::domain::AuthRequest;
use crate::domain::{Client, Session};
use serde_json::Value;

/// Authentication context classes offered, lowest first; a value's level is its position + 1.
pub const ACR_VALUES_SUPPORTED: &[&str] = &["1", "2"];

const MAX_LEVEL: u8 = ACR_VALUES_SUPPORTED.len() as u8;

/// The level of an offered `acr` value.
pub fn acr_level(acr: &str) -> Option<u8> {
    ACR_VALUES_SUPPORTED.iter().position(|a| *a == acr).map(|i| i as u8 + 1)
}

/// The second factors a user has enrolled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Factors {
    pub totp: bool,
    /// One-time codes sent to a confirmed email address.
    pub email: bool,
    pub passkey: bool,
}

impl Factors {
    /// The second-factor steps this user can take, the one offered first first: a passkey, as
    /// it cannot be phished, then the app, then email. Recovery codes are not among them: they
    /// stand in for these and are offered as an alternative.
    pub fn second_factor_steps(self) -> Vec<StepKind> {
        [(self.passkey, StepKind::Passkey), (self.totp, StepKind::Totp), (self.email, StepKind::EmailOtp)]
            .into_iter()
            .filter_map(|(has, step)| has.then_some(step))
            .collect()
    }

    pub fn any(self) -> bool {
        !self.second_factor_steps().is_empty()
    }

    /// Recovery codes stand in for the app and emailed codes (they are made when either is
    /// turned on, and go when both are off).
    pub fn recovery_codes(self) -> bool {
        self.totp || self.email
    }
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
    /// Signed in, but the user must approve this client's scopes.
    Consent,
}

/// `factors` are those of the session's user.
pub fn decide(
    req: &AuthRequest,
    client: &Client,
    session: Option<&Session>,
    factors: Factors,
    consented: &[String],
    now: i64,
) -> Decision {
    let Some(s) = session else { return Decision::Login };
    let too_old = req.max_age.is_some_and(|max| s.older_than(max, now));
    let other_user = req.hint_sub.as_ref().is_some_and(|sub| *sub != s.user_id);
    if req.prompt.login || too_old || other_user {
        return Decision::Login;
    }
    let need = requirement(req, client);
    let have = acr_level(&s.acr).unwrap_or(1);
    let step_up = if have < need.wanted { step_up_step(&s.amr, factors) } else { None };
    if let Some(step) = step_up {
        Decision::StepUp(step)
    } else if have < need.minimum {
        Decision::Unmet
    } else if needs_consent(req, client, consented) {
        Decision::Consent
    } else {
        Decision::Issue
    }
}

/// Consent is needed unless the client is first-party or every scope was granted before;
/// `prompt=consent` always asks (OIDC Core §3.1.2.1).
pub fn needs_consent(req: &AuthRequest, client: &Client, consented: &[String]) -> bool {
    !client.first_party && (req.prompt.consent || !req.scopes.iter().all(|s| consented.contains(s)))
}

/// The step a sign-in starts with.
pub fn first_step() -> StepKind {
    StepKind::Password
}

/// The step that raises a session proven by `amr` to a higher acr: the user's first second
/// factor that adds a kind of factor the session lacks. None when no enrolled step would.
pub fn step_up_step(amr: &[String], factors: Factors) -> Option<StepKind> {
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
pub fn next_step(need: Requirement, passed: &[StepKind], amr: &[String], factors: Factors) -> Next {
    let has_mfa = amr.iter().any(|m| m == "mfa");
    let second_done = passed.len() >= 2 || passed.contains(&StepKind::RecoveryCode);
    if !has_mfa
        && !second_done
        && let Some(step) = factors.second_factor_steps().into_iter().find(|s| !passed.contains(s))
    {
        return Next::Step(step);
    }
    if acr_level(acr_for(amr)).unwrap_or(1) >= need.minimum { Next::Done } else { Next::Unmet }
}

/// Steps the person may switch to instead of `step`. Before anyone is identified:
/// the first-factor steps the operator enabled (`email_first`: a code by email instead of a
/// password; a passkey is offered beside the password by the page itself). After: the user's
/// other second factors, and recovery codes standing in for the app and emailed codes.
pub fn alternatives(step: StepKind, identified: bool, factors: Factors, email_first: bool) -> Vec<StepKind> {
    let candidates = if !identified {
        if email_first { vec![StepKind::Password, StepKind::EmailOtp] } else { vec![] }
    } else {
        let mut steps = factors.second_factor_steps();
        if factors.recovery_codes() {
            steps.push(StepKind::RecoveryCode);
        }
        steps
    };
    candidates.into_iter().filter(|s| *s != step).collect()
}

/// Whether a form on the page of `step` may answer step `k` directly: its own step, an
/// alternative, or — before anyone is identified — the passkey the sign-in page offers beside
/// the password.
pub fn answerable(step: StepKind, k: StepKind, identified: bool, factors: Factors, email_first: bool) -> bool {
    k == step
        || (k == StepKind::Passkey && !identified)
        || alternatives(step, identified, factors, email_first).contains(&k)
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
/// those that would read here as a second factor proven (possession values, `mfa`, `mca`):
/// the user's own second factor is still asked after federation, whatever the upstream did.
pub fn upstream_amr(upstream: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in upstream {
        let second = factor_kind(m) == Some(FactorKind::Possession) || m == "mfa" || m == "mca";
        if REGISTERED_AMR.contains(&m.as_str()) && !second && !out.contains(m) {
            out.push(m.clone());
        }
    }
    out
}

/// An upstream sign-in is the first factor whatever `amr` it reported: followed by a
/// possession factor proven here, the sign-in has two factors (`mfa`).
pub fn after_federation(passed: &[StepKind], mut amr: Vec<String>) -> Vec<String> {
    let federated = passed.contains(&StepKind::Federation);
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
    use crate::domain::authorization::{Prompt, ResponseMode, Target};
    use crate::domain::{AuthMethod, GrantType};

    const NONE: Factors = Factors { totp: false, email: false, passkey: false };
    const TOTP: Factors = Factors { totp: true, email: false, passkey: false };
    const EMAIL: Factors = Factors { totp: false, email: true, passkey: false };
    const PASSKEY: Factors = Factors { totp: false, email: false, passkey: true };
    /// An authenticator app and emailed codes.
    const BOTH: Factors = Factors { totp: true, email: true, passkey: false };
    const TOTP_PASSKEY: Factors = Factors { totp: true, email: false, passkey: true };

    fn client(first_party: bool) -> Client {
        Client {
            id: "c".into(),
            name: "C".into(),
            secret_hash: None,
            auth_method: AuthMethod::ClientSecretBasic,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: vec![],
            first_party,
            min_acr: 1,
            created_at: 0,
            id_token_signed_response_alg: crate::keys::Alg::DEFAULT,
        }
    }

    fn request() -> AuthRequest {
        AuthRequest {
            client_id: "c".into(),
            target: Target { redirect_uri: "https://rp/cb".into(), response_mode: ResponseMode::Query, state: None },
            scopes: vec!["openid".into(), "email".into()],
            nonce: None,
            code_challenge: None,
            prompt: Prompt::default(),
            max_age: None,
            login_hint: None,
            hint_sub: None,
            acr_values: vec![],
            claims: None,
        }
    }

    fn session(auth_time: i64) -> Session {
        Session {
            id: "s".into(),
            user_id: "u".into(),
            auth_time,
            amr: vec!["pwd".into()],
            acr: "1".into(),
            expires_at: i64::MAX,
        }
    }

    #[test]
    fn no_session_means_login() {
        assert_eq!(decide(&request(), &client(false), None, NONE, &[], 100), Decision::Login);
    }

    #[test]
    fn max_age_and_prompt_login_force_authentication() {
        let mut req = request();
        req.max_age = Some(10);
        let all = vec!["email".to_string(), "openid".to_string()];
        assert_eq!(decide(&req, &client(true), Some(&session(0)), NONE, &all, 11), Decision::Login);
        assert_eq!(decide(&req, &client(true), Some(&session(0)), NONE, &all, 10), Decision::Issue);
        let mut req = request();
        req.prompt.login = true;
        assert_eq!(decide(&req, &client(true), Some(&session(0)), NONE, &all, 1), Decision::Login);
    }

    #[test]
    fn consent_is_remembered_per_scope_and_skipped_for_first_party() {
        let req = request();
        assert_eq!(decide(&req, &client(false), Some(&session(0)), NONE, &["openid".into()], 1), Decision::Consent);
        assert_eq!(
            decide(&req, &client(false), Some(&session(0)), NONE, &["email".into(), "openid".into()], 1),
            Decision::Issue
        );
        assert_eq!(decide(&req, &client(true), Some(&session(0)), NONE, &[], 1), Decision::Issue);
    }

    #[test]
    fn id_token_hint_for_another_user_means_login() {
        let mut req = request();
        req.hint_sub = Some("someone-else".into());
        assert_eq!(decide(&req, &client(true), Some(&session(0)), NONE, &[], 1), Decision::Login);
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
        assert_eq!(next_step(need, &[Password], &amr(&["pwd"]), TOTP), Next::Step(Totp));
        assert_eq!(next_step(need, &[Password], &amr(&["pwd"]), EMAIL), Next::Step(EmailOtp));
        assert_eq!(next_step(need, &[Password], &amr(&["pwd"]), BOTH), Next::Step(Totp));
        assert_eq!(next_step(need, &[Password], &amr(&["pwd"]), NONE), Next::Done);
        assert_eq!(next_step(need, &[Password, Totp], &amr(&["pwd", "otp", "mfa"]), TOTP), Next::Done);
        assert_eq!(next_step(need, &[Password, RecoveryCode], &amr(&["pwd", "otp", "mfa"]), BOTH), Next::Done);
        let strict = Requirement { minimum: 2, wanted: 2 };
        assert_eq!(next_step(strict, &[Password], &amr(&["pwd"]), NONE), Next::Unmet);
    }

    #[test]
    fn an_emailed_code_as_first_step_is_followed_by_another_factor() {
        use StepKind::*;
        let need = Requirement { minimum: 1, wanted: 1 };
        // The authenticator is still asked; the emailed code is not asked twice.
        assert_eq!(next_step(need, &[EmailOtp], &amr(&["otp"]), BOTH), Next::Step(Totp));
        assert_eq!(next_step(need, &[EmailOtp], &amr(&["otp"]), EMAIL), Next::Done);
        // Two possession factors are one kind: acr stays 1, and a minimum of 2 is unmet.
        let both = combine_amr(&amr(&["otp"]), &amr(&["otp"]));
        assert_eq!(acr_for(&both), "1");
        let strict = Requirement { minimum: 2, wanted: 2 };
        assert_eq!(next_step(strict, &[EmailOtp, Totp], &both, BOTH), Next::Unmet);
    }

    #[test]
    fn alternatives_offer_the_other_factors_and_recovery_codes() {
        use StepKind::*;
        assert_eq!(alternatives(Totp, true, TOTP, false), vec![RecoveryCode]);
        assert_eq!(alternatives(Totp, true, BOTH, false), vec![EmailOtp, RecoveryCode]);
        assert_eq!(alternatives(RecoveryCode, true, EMAIL, false), vec![EmailOtp]);
        assert_eq!(alternatives(Password, false, NONE, false), vec![]);
        assert_eq!(alternatives(Password, false, NONE, true), vec![EmailOtp]);
        assert_eq!(alternatives(EmailOtp, false, NONE, true), vec![Password]);
        // Nobody identified yet: no second factor is on offer, whatever was typed.
        assert_eq!(alternatives(Password, false, BOTH, false), vec![]);
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
        assert_eq!(next_step(need, &fed, &upstream_amr(&amr(&["otp"])), TOTP), Next::Step(StepKind::Totp));
    }

    #[test]
    fn one_factor_session_steps_up_or_is_unmet() {
        let mut req = request();
        req.acr_values = vec!["2".into()];
        let all = vec!["email".to_string(), "openid".to_string()];
        let s = session(0);
        assert_eq!(decide(&req, &client(true), Some(&s), TOTP, &all, 1), Decision::StepUp(StepKind::Totp));
        assert_eq!(decide(&req, &client(true), Some(&s), EMAIL, &all, 1), Decision::StepUp(StepKind::EmailOtp));
        // Voluntary: without a second factor the session is good enough.
        assert_eq!(decide(&req, &client(true), Some(&s), NONE, &all, 1), Decision::Issue);
        let mut c = client(true);
        c.min_acr = 2;
        assert_eq!(decide(&request(), &c, Some(&s), NONE, &all, 1), Decision::Unmet);
        assert_eq!(decide(&request(), &c, Some(&s), TOTP, &all, 1), Decision::StepUp(StepKind::Totp));
        // A session from an emailed code gains no new kind of factor from the authenticator.
        let mut emailed = session(0);
        emailed.amr = amr(&["otp"]);
        assert_eq!(decide(&request(), &c, Some(&emailed), TOTP, &all, 1), Decision::Unmet);
        let mut strong = session(0);
        strong.amr = amr(&["pwd", "otp", "mfa"]);
        strong.acr = "2".into();
        assert_eq!(decide(&request(), &c, Some(&strong), TOTP, &all, 1), Decision::Issue);
    }

    #[test]
    fn a_verified_passkey_is_two_kinds_of_factor_alone() {
        use StepKind::*;
        let uv = combine_amr(&[], &amr(&["hwk", "user"]));
        assert_eq!(uv, amr(&["hwk", "user", "mfa"]));
        assert_eq!(acr_for(&uv), "2");
        // Not asked for another factor, even by a user who has TOTP too.
        let need = Requirement { minimum: 2, wanted: 2 };
        assert_eq!(next_step(need, &[Passkey], &uv, TOTP_PASSKEY), Next::Done);
        // Without verification a passkey is one possession factor: the next one is asked.
        let up = combine_amr(&[], &amr(&["swk"]));
        assert_eq!(acr_for(&up), "1");
        assert_eq!(next_step(need, &[Passkey], &up, TOTP_PASSKEY), Next::Step(Totp));
        assert_eq!(next_step(need, &[Passkey], &up, PASSKEY), Next::Unmet);
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
        assert_eq!(next_step(need, &[Password], &pwd, PASSKEY), Next::Step(Passkey));
        assert_eq!(next_step(need, &[Password], &pwd, TOTP_PASSKEY), Next::Step(Passkey));
        assert_eq!(next_step(need, &[Password], &pwd, TOTP), Next::Step(Totp));
        assert_eq!(step_up_step(&pwd, NONE), None);
        assert_eq!(alternatives(Passkey, true, TOTP_PASSKEY, false), vec![Totp, RecoveryCode]);
        // Recovery codes come with the app or emailed codes, not with passkeys alone.
        assert_eq!(alternatives(Passkey, true, PASSKEY, false), vec![]);
        assert_eq!(alternatives(Totp, true, TOTP_PASSKEY, false), vec![Passkey, RecoveryCode]);
        assert_eq!(alternatives(Totp, true, TOTP, false), vec![RecoveryCode]);
    }

    #[test]
    fn a_passkey_session_steps_up_a_password_session() {
        let mut c = client(true);
        c.min_acr = 2;
        let all = vec!["email".to_string(), "openid".to_string()];
        assert_eq!(decide(&request(), &c, Some(&session(0)), PASSKEY, &all, 1), Decision::StepUp(StepKind::Passkey));
        let mut passwordless = session(0);
        passwordless.amr = amr(&["hwk", "user", "mfa"]);
        passwordless.acr = "2".into();
        assert_eq!(decide(&request(), &c, Some(&passwordless), PASSKEY, &all, 1), Decision::Issue);
    }
}
