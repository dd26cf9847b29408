//! Sign-in codes by phone: one module, two registered steps — [`Sms`] and [`Whatsapp`] —
//! that differ only in the channel. A 6-digit code, good for `phone.code_ttl` (5 minutes) and
//! for one use, kept only as a salted hash, dead after 5 wrong tries (the emailed code's rules
//! and its judge, [`judge_code`]); a new one after 30 seconds. Codes go only to a verified
//! number ([`crate::store::PhoneNumber`]).
//!
//! A second factor for users who turned a channel on, and, where the operator sets
//! `phone.first_factor`, a first factor: the person types a number and the page that follows
//! reads the same whether or not an account has it. A user with both channels picks one: the
//! page offers to send by this one, and the policy offers the other as a switch.
//!
//! SMS pumping and toll fraud are the attacks on this: every send counts against the number,
//! the account, the client address and a global budget per hour, numbers must be mobile and of
//! an allowed region (`phone::number`), and every send, refusal and failure is audited.
//!
//! Setting up, on the account security page: verifying a number ([`begin_number`]) and turning
//! a channel's codes on ([`begin_codes`]) both send a code and finish in [`confirm`].

use super::email_otp::{MAX_TRIES, RESEND_AFTER, digest, matches, new_code};
use super::{THROTTLED, Verdict, account_key, code_page, judge_code, login_key};
use crate::domain::Credentials;
use crate::http::{PageError, Params};
use crate::login::step::{Account, Ctx, Enrolment, Outcome, Role, Step};
use crate::pages::{self, CodeText, View};
use crate::phone::{self, Channel, Message, mask};
use crate::state::AppState;
use crate::store::AuditEvent;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::time::Duration;

/// What makes one of the two steps: its channel and its words.
pub trait Via {
    const CHANNEL: Channel;
    const NAME: &'static str;
    /// RFC 8176 registers `sms`; WhatsApp has no value of its own there, so a WhatsApp code
    /// proves `otp` (a one-time code, a possession factor) and names itself in `whatsapp`.
    const PROVES: &'static [&'static str];
    const SWITCH_LABEL: &'static str;
    const PREFERENCE: u8;
    const PAGE: &'static CodeText;
}

pub struct Sms;
pub struct Whatsapp;

impl Via for Sms {
    const CHANNEL: Channel = Channel::Sms;
    const NAME: &'static str = "sms";
    const PROVES: &'static [&'static str] = &["sms"];
    const SWITCH_LABEL: &'static str = "Text me a code instead";
    const PREFERENCE: u8 = 3;
    const PAGE: &'static CodeText = &CodeText {
        title: "Code by SMS",
        heading: "Check your messages",
        intro: "enter the 6-digit code we sent you by SMS. It works once, for a few minutes.",
        label: "Code from the SMS",
        numeric: true,
        resend: true,
    };
}

impl Via for Whatsapp {
    const CHANNEL: Channel = Channel::Whatsapp;
    const NAME: &'static str = "whatsapp";
    const PROVES: &'static [&'static str] = &["otp", "whatsapp"];
    const SWITCH_LABEL: &'static str = "Send me a code by WhatsApp instead";
    const PREFERENCE: u8 = 4;
    const PAGE: &'static CodeText = &CodeText {
        title: "Code by WhatsApp",
        heading: "Check WhatsApp",
        intro: "enter the 6-digit code we sent you on WhatsApp. It works once, for a few minutes.",
        label: "Code from WhatsApp",
        numeric: true,
        resend: true,
    };
}

/// How long a code works.
pub fn ttl(state: &AppState) -> Duration {
    Duration::from_secs(state.settings.phone.code_ttl.max(1) as u64)
}

const HOUR: Duration = Duration::from_secs(3600);

/// The code waiting for this flow. `user_id` is None when the typed number has no account:
/// every code then fails, as a wrong one would.
#[derive(Serialize, Deserialize)]
struct Pending {
    user_id: Option<String>,
    number: String,
    /// The key failures count under.
    account: String,
    salt: String,
    hash: String,
    sent_at: i64,
}

fn pending_key(channel: Channel, flow_id: &str) -> String {
    format!("phone-otp:{}:{flow_id}", channel.name())
}

fn tries_key(flow_id: &str, salt: &str) -> String {
    format!("phone-otp-tries:{flow_id}:{salt}")
}

async fn pending(ctx: &Ctx<'_>, channel: Channel) -> Result<Option<Pending>, PageError> {
    let raw = ctx.state.ephemeral.get(&pending_key(channel, ctx.flow_id)).await?;
    Ok(raw.and_then(|json| serde_json::from_str(&json).ok()))
}

/// Why no code went out: each limit says which it is.
#[derive(Clone, Copy, Debug)]
pub enum NotSent {
    TooSoon,
    Number,
    Account,
    Address,
    Budget,
    Failed,
}

impl NotSent {
    pub fn message(self) -> &'static str {
        match self {
            Self::TooSoon => "A code was sent moments ago. Wait half a minute before asking for another.",
            Self::Number => "Too many codes were sent to this number. Try again in an hour, or sign in another way.",
            Self::Account => "Too many codes were sent for this account. Try again in an hour, or sign in another way.",
            Self::Address => "Too many codes were asked for from your network. Try again in an hour.",
            Self::Budget => "Codes by phone are paused for now. Try again later, or sign in another way.",
            Self::Failed => "We could not send the code. Try another way to sign in, or try again in a moment.",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Self::TooSoon => "too_soon",
            Self::Number => "per_number_limit",
            Self::Account => "per_account_limit",
            Self::Address => "per_ip_limit",
            Self::Budget => "global_limit",
            Self::Failed => "provider_failed",
        }
    }
}

/// One code to send: where, how, for whom.
struct Send<'a> {
    state: &'a AppState,
    number: &'a str,
    channel: Channel,
    /// The account it goes to; none for a typed number no account has (nothing is sent, but
    /// the limits count as if it were, so they tell nobody which numbers are registered).
    user_id: Option<&'a str>,
    /// Counted per account: only once a user is identified, else the answer would tell.
    limit_account: Option<&'a str>,
    ip: Option<&'a str>,
    code: &'a str,
    /// Off the request path (first factor: the answer must take the same time either way);
    /// else the person is told when it fails.
    later: bool,
    now: i64,
}

/// The hourly limits, then the message, then the audit event.
async fn deliver(s: Send<'_>) -> Result<Result<(), NotSent>, PageError> {
    let (state, p) = (s.state, &s.state.settings.phone);
    let mut limits = vec![(format!("phone-sends:number:{}", s.number), p.per_number_per_hour, NotSent::Number)];
    if let Some(account) = s.limit_account {
        limits.push((format!("phone-sends:account:{account}"), p.per_account_per_hour, NotSent::Account));
    }
    if let Some(ip) = s.ip {
        limits.push((format!("phone-sends:ip:{ip}"), p.per_ip_per_hour, NotSent::Address));
    }
    limits.push(("phone-sends:global".into(), p.global_per_hour, NotSent::Budget));
    let event = |kind: &'static str| {
        let e = AuditEvent::new(kind)
            .ip(s.ip.map(str::to_owned))
            .detail("to", mask(s.number))
            .detail("channel", s.channel.name());
        match s.user_id {
            Some(u) => e.user(u),
            None => e.detail("account", false),
        }
    };
    for (key, limit, why) in limits {
        if state.ephemeral.incr(&key, HOUR).await? > limit {
            state.store.audit(event("phone.code_refused").detail("reason", why.reason()), s.now).await;
            return Ok(Err(why));
        }
    }
    let Some(user_id) = s.user_id else { return Ok(Ok(())) };
    let minutes = (p.code_ttl.max(1) as u64).div_ceil(60);
    let product = &state.settings.mail.product_name;
    let message = Message::sign_in_code(s.number, s.channel, s.code, product, &state.issuer, minutes);
    if s.later {
        let (state, sent, failed) = (state.clone(), event("phone.code_sent"), event("phone.code_send_failed"));
        let user_id = user_id.to_owned();
        tokio::spawn(async move {
            let now = state.now();
            match state.phone.send(&message).await {
                Ok(()) => state.store.audit(sent, now).await,
                Err(e) => {
                    tracing::warn!(user = %user_id, error = %format!("{e:#}"), "could not send a code by phone");
                    state.store.audit(failed.detail("error", format!("{e:#}")), now).await;
                }
            }
        });
        return Ok(Ok(()));
    }
    match state.phone.send(&message).await {
        Ok(()) => {
            state.store.audit(event("phone.code_sent"), s.now).await;
            Ok(Ok(()))
        }
        Err(e) => {
            tracing::warn!(user = %user_id, error = %format!("{e:#}"), "could not send a code by phone");
            state.store.audit(event("phone.code_send_failed").detail("error", format!("{e:#}")), s.now).await;
            Ok(Err(NotSent::Failed))
        }
    }
}

/// Makes a new code for this flow and sends it to `number` (when an account is behind it),
/// replacing any earlier one.
async fn send(
    ctx: &Ctx<'_>,
    channel: Channel,
    number: &str,
    user_id: Option<&str>,
    account: String,
    previous: Option<&Pending>,
) -> Result<Result<(), NotSent>, PageError> {
    if previous.is_some_and(|p| ctx.now - p.sent_at < RESEND_AFTER) {
        return Ok(Err(NotSent::TooSoon));
    }
    let code = new_code();
    let sent = deliver(Send {
        state: ctx.state,
        number,
        channel,
        user_id,
        limit_account: ctx.user_id,
        ip: ctx.ip.as_deref(),
        code: &code,
        later: ctx.user_id.is_none(),
        now: ctx.now,
    })
    .await?;
    if let Err(why) = sent {
        return Ok(Err(why));
    }
    let salt = crate::crypto::random_token();
    let pending = Pending {
        user_id: user_id.map(str::to_owned),
        number: number.to_owned(),
        account,
        hash: digest(&salt, &code),
        salt,
        sent_at: ctx.now,
    };
    let json = serde_json::to_string(&pending).map_err(anyhow::Error::from)?;
    ctx.state.ephemeral.put(&pending_key(channel, ctx.flow_id), &json, ttl(ctx.state)).await?;
    Ok(Ok(()))
}

/// The identified user's verified number, when this channel's codes are on for it.
async fn user_number(ctx: &Ctx<'_>, channel: Channel) -> Result<Option<(String, String)>, PageError> {
    let Some(user_id) = ctx.user_id else { return Ok(None) };
    let user = ctx.state.store.user(user_id).await?.filter(|u| !u.disabled);
    let number = ctx.state.store.phone_number(user_id).await?.filter(|n| n.codes(channel));
    Ok(user.zip(number).map(|(u, n)| (u.id, n.number)))
}

async fn send_to_user(
    ctx: &Ctx<'_>,
    channel: Channel,
    previous: Option<&Pending>,
) -> Result<Result<(), NotSent>, PageError> {
    let Some((user_id, number)) = user_number(ctx, channel).await? else { return Ok(Err(NotSent::Failed)) };
    send(ctx, channel, &number, Some(&user_id), account_key(&user_id), previous).await
}

fn sent_page<V: Via>(ctx: &Ctx<'_>, error: Option<&str>, number: Option<&str>) -> View {
    let notice = number.map(|n| format!("We sent a code by {} to {}.", V::CHANNEL.label(), mask(n)));
    code_page(ctx, error, notice.as_deref(), V::PAGE)
}

fn phone_page<V: Via>(ctx: &Ctx<'_>, error: Option<&str>, number: Option<&str>, typed: &str) -> View {
    let action = ctx.action();
    let masked = number.map(mask);
    View::ok(&pages::PhonePage {
        action: &action,
        csrf: ctx.csrf,
        client_name: ctx.audience,
        channel: V::CHANNEL.label(),
        number: masked.as_deref(),
        phone: typed,
        error,
        switches: ctx.switches.clone(),
    })
}

/// The other channel's step is among the switches: the person picks before anything is sent.
fn picks(ctx: &Ctx<'_>, channel: Channel) -> bool {
    let other = Channel::ALL.into_iter().find(|c| *c != channel).map(Channel::name);
    ctx.switches.iter().any(|s| Some(s.step) == other)
}

pub struct PhoneCode<V>(PhantomData<V>);

impl<V: Via> Step for PhoneCode<V> {
    const NAME: &'static str = V::NAME;
    const ROLE: Role = Role::Either;
    const PROVES: &'static [&'static str] = V::PROVES;
    const SWITCH_LABEL: &'static str = V::SWITCH_LABEL;
    const PREFERENCE: u8 = V::PREFERENCE;

    fn enrolled(state: &AppState, c: &Credentials) -> bool {
        let on = match V::CHANNEL {
            Channel::Sms => c.sms_codes,
            Channel::Whatsapp => c.whatsapp_codes,
        };
        on && state.phone.offers(V::CHANNEL)
    }

    fn first_factor(state: &AppState) -> bool {
        state.settings.phone.first_factor && state.phone.offers(V::CHANNEL)
    }

    /// The code page while a code waits; else (first factor) the number form; else, for an
    /// identified user, a code is sent — unless the user has the other channel too, who first
    /// picks. After a failure (`error`) no code is sent unasked.
    async fn render(ctx: &Ctx<'_>, error: Option<&str>, _form: Option<&Params>) -> Result<View, PageError> {
        if let Some(p) = pending(ctx, V::CHANNEL).await? {
            return Ok(sent_page::<V>(ctx, error, Some(&p.number)));
        }
        if ctx.user_id.is_none() {
            return Ok(phone_page::<V>(ctx, error, None, ""));
        }
        if error.is_some() {
            return Ok(sent_page::<V>(ctx, error, None));
        }
        let number = user_number(ctx, V::CHANNEL).await?.map(|(_, n)| n);
        if picks(ctx, V::CHANNEL) {
            return Ok(phone_page::<V>(ctx, None, Some(number.as_deref().unwrap_or_default()), ""));
        }
        Ok(match send_to_user(ctx, V::CHANNEL, None).await? {
            Ok(()) => sent_page::<V>(ctx, None, number.as_deref()),
            Err(why) => sent_page::<V>(ctx, Some(why.message()), None),
        })
    }

    async fn submit(ctx: &Ctx<'_>, form: &Params) -> Result<Outcome, PageError> {
        let channel = V::CHANNEL;
        let previous = pending(ctx, channel).await?;
        if let Some(typed) = form.get("phone").map(str::trim).filter(|_| ctx.user_id.is_none()) {
            return start_first_factor::<V>(ctx, typed, previous.as_ref()).await;
        }
        if form.get("resend").is_some() || form.get("send").is_some() {
            let sent = match (ctx.user_id, &previous) {
                (Some(_), _) => send_to_user(ctx, channel, previous.as_ref()).await?,
                (None, Some(p)) => {
                    let user = match &p.user_id {
                        Some(id) => ctx.state.store.user(id).await?.filter(|u| !u.disabled).map(|u| u.id),
                        None => None,
                    };
                    send(ctx, channel, &p.number, user.as_deref(), p.account.clone(), Some(p)).await?
                }
                (None, None) => return Ok(Outcome::Show(phone_page::<V>(ctx, Some(EXPIRED), None, ""))),
            };
            let number = pending(ctx, channel).await?.map(|p| p.number);
            return Ok(Outcome::Show(match sent {
                Ok(()) => sent_page::<V>(ctx, None, number.as_deref()),
                Err(why) => sent_page::<V>(ctx, Some(why.message()), number.as_deref()),
            }));
        }
        let Some(p) = previous else {
            return Ok(Outcome::failed(EXPIRED, "no phone code waiting", None));
        };
        let failed = |message, reason| Outcome::failed(message, reason, p.user_id.clone());
        let right = matches(form.get("code").unwrap_or_default(), &p.salt, &p.hash);
        let (key, tries) = (pending_key(channel, ctx.flow_id), tries_key(ctx.flow_id, &p.salt));
        Ok(match judge_code(ctx, &key, &tries, &p.account, p.user_id.as_deref(), right, ttl(ctx.state)).await? {
            Verdict::Right(user_id) => Outcome::passed(user_id, V::PROVES.iter().map(|s| s.to_string()).collect()),
            Verdict::Throttled => failed(THROTTLED, "account throttled"),
            Verdict::Exhausted => failed(EXHAUSTED, "phone code exhausted"),
            Verdict::Used => failed(EXPIRED, "phone code already used"),
            Verdict::Wrong => {
                failed("That code is not right. Check the latest message and try again.", "wrong phone code")
            }
        })
    }
}

/// First factor: the typed number gets a code if exactly one enabled account verified it. The
/// page that follows is the same either way.
async fn start_first_factor<V: Via>(
    ctx: &Ctx<'_>,
    typed: &str,
    previous: Option<&Pending>,
) -> Result<Outcome, PageError> {
    if !<PhoneCode<V> as Step>::first_factor(ctx.state) {
        return Err(PageError::bad_request("invalid_request", "The form could not be read", "Unknown step."));
    }
    let number = match phone::number(&ctx.state.settings.phone, typed) {
        Ok(n) => n,
        Err(why) => return Ok(Outcome::Show(phone_page::<V>(ctx, Some(why), None, typed))),
    };
    let users = ctx.state.store.users_with_phone(&number).await?;
    let user = match users.as_slice() {
        [id] => ctx.state.store.user(id).await?.filter(|u| !u.disabled).map(|u| u.id),
        _ => None,
    };
    let account = login_key(&number);
    if ctx.state.ephemeral.count(&account).await? >= ctx.state.settings.login.max_failures {
        return Ok(Outcome::Show(phone_page::<V>(ctx, Some(THROTTLED), None, typed)));
    }
    let previous = previous.filter(|p| p.number == number);
    Ok(Outcome::Show(match send(ctx, V::CHANNEL, &number, user.as_deref(), account, previous).await? {
        Ok(()) => sent_page::<V>(ctx, None, Some(&number)),
        Err(why) => phone_page::<V>(ctx, Some(why.message()), None, typed),
    }))
}

const EXPIRED: &str = "That code has expired. Ask for a new one.";
const EXHAUSTED: &str = "Too many wrong codes: that one no longer works. Ask for a new one.";

// Enrolment, for the account security page.

/// What a code sent from the account page will confirm.
#[derive(Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
enum Purpose {
    /// The number is the person's: it becomes the verified number.
    Verify,
    /// Codes by this channel reach the person: they are turned on.
    Codes,
}

#[derive(Serialize, Deserialize)]
struct Enrolling {
    purpose: Purpose,
    number: String,
    channel: Channel,
    salt: String,
    hash: String,
}

fn enrol_key(session_id: &str) -> String {
    format!("phone-enrol:{session_id}")
}

/// Sends a code by `channel` to the typed number, to verify it.
pub async fn begin_number(account: &Account<'_>, typed: &str, channel: Option<&str>) -> Result<Enrolment, PageError> {
    let state = account.state;
    let Some(channel) = channel.and_then(Channel::parse).filter(|c| state.phone.offers(*c)) else {
        return Ok(Enrolment::Notice("Choose how the code should be sent."));
    };
    let number = match phone::number(&state.settings.phone, typed) {
        Ok(n) => n,
        Err(why) => return Ok(Enrolment::Notice(why)),
    };
    begin(account, Purpose::Verify, number, channel).await
}

/// Sends a code by `channel` to the verified number, to turn that channel's codes on.
pub async fn begin_codes(account: &Account<'_>, channel: Channel) -> Result<Enrolment, PageError> {
    let state = account.state;
    if !state.phone.offers(channel) {
        return Ok(Enrolment::Notice("Codes by this channel are not offered here."));
    }
    let Some(number) = state.store.phone_number(account.user_id).await? else {
        return Ok(Enrolment::Notice("Add and verify a phone number first."));
    };
    begin(account, Purpose::Codes, number.number, channel).await
}

async fn begin(
    account: &Account<'_>,
    purpose: Purpose,
    number: String,
    channel: Channel,
) -> Result<Enrolment, PageError> {
    let state = account.state;
    let code = new_code();
    let sent = deliver(Send {
        state,
        number: &number,
        channel,
        user_id: Some(account.user_id),
        limit_account: Some(account.user_id),
        ip: account.ip.as_deref(),
        code: &code,
        later: false,
        now: account.now,
    })
    .await?;
    if let Err(why) = sent {
        return Ok(Enrolment::Notice(why.message()));
    }
    let salt = crate::crypto::random_token();
    let pending = Enrolling { purpose, number, channel, hash: digest(&salt, &code), salt };
    let key = enrol_key(account.session_id);
    state.ephemeral.put(&key, &serde_json::to_string(&pending).map_err(anyhow::Error::from)?, ttl(state)).await?;
    state.ephemeral.delete(&format!("{key}:tries")).await?;
    Ok(confirm_page(account, &pending, None))
}

/// The code came back: the number is verified, or the channel's codes are on.
pub async fn confirm(account: &Account<'_>, code: &str) -> Result<Enrolment, PageError> {
    let (state, now) = (account.state, account.now);
    let key = enrol_key(account.session_id);
    let Some(pending) = state.ephemeral.get(&key).await?.and_then(|j| serde_json::from_str::<Enrolling>(&j).ok())
    else {
        return Ok(Enrolment::Notice("That code expired. Start again."));
    };
    let tries = state.ephemeral.incr(&format!("{key}:tries"), ttl(state)).await?;
    if tries > MAX_TRIES || !matches(code, &pending.salt, &pending.hash) {
        state.store.audit(account.event("phone.enrol_failed").detail("channel", pending.channel.name()), now).await;
        if tries >= MAX_TRIES {
            state.ephemeral.delete(&key).await?;
            return Ok(Enrolment::Notice("Too many wrong codes. Start again."));
        }
        return Ok(confirm_page(account, &pending, Some("That code is not right. Enter the code we just sent.")));
    }
    state.ephemeral.delete(&key).await?;
    let masked = mask(&pending.number);
    match pending.purpose {
        Purpose::Verify => {
            state.store.set_phone_number(account.user_id, &pending.number, now).await?;
            state.store.audit(account.event("phone.verified").detail("to", masked), now).await;
            Ok(Enrolment::Notice("Your phone number is verified."))
        }
        Purpose::Codes => {
            // The number may have changed since the code was sent.
            let current = state.store.phone_number(account.user_id).await?;
            if current.is_none_or(|c| c.number != pending.number) {
                return Ok(Enrolment::Notice("Your phone number changed meanwhile. Start again."));
            }
            state.store.set_phone_codes(account.user_id, pending.channel, true).await?;
            let kind = match pending.channel {
                Channel::Sms => "mfa.sms_enabled",
                Channel::Whatsapp => "mfa.whatsapp_enabled",
            };
            state.store.audit(account.event(kind).detail("to", masked), now).await;
            Ok(Enrolment::Enabled(match pending.channel {
                Channel::Sms => "Codes by SMS are on.",
                Channel::Whatsapp => "Codes by WhatsApp are on.",
            }))
        }
    }
}

/// Which channel a confirmation turned on, for the account page's notice of a change.
pub async fn confirming(account: &Account<'_>) -> Result<Option<Channel>, PageError> {
    let key = enrol_key(account.session_id);
    let pending = account.state.ephemeral.get(&key).await?.and_then(|j| serde_json::from_str::<Enrolling>(&j).ok());
    Ok(pending.filter(|p| p.purpose == Purpose::Codes).map(|p| p.channel))
}

/// One channel's codes off; the fallbacks go too when `drop_fallbacks`.
pub async fn remove_codes(account: &Account<'_>, channel: Channel, drop_fallbacks: bool) -> Result<(), PageError> {
    if account.state.store.disable_phone_codes(account.user_id, channel, drop_fallbacks).await? {
        let kind = match channel {
            Channel::Sms => "mfa.sms_disabled",
            Channel::Whatsapp => "mfa.whatsapp_disabled",
        };
        account.state.store.audit(account.event(kind), account.now).await;
    }
    Ok(())
}

/// The number gone, with both channels; the fallbacks too when `drop_fallbacks`.
pub async fn remove_number(account: &Account<'_>, drop_fallbacks: bool) -> Result<(), PageError> {
    if account.state.store.remove_phone_number(account.user_id, drop_fallbacks, account.now).await? {
        account.state.store.audit(account.event("phone.removed"), account.now).await;
    }
    Ok(())
}

fn confirm_page(account: &Account<'_>, pending: &Enrolling, error: Option<&str>) -> Enrolment {
    let to = mask(&pending.number);
    let heading = match pending.purpose {
        Purpose::Verify => "Verify your phone number",
        Purpose::Codes => match pending.channel {
            Channel::Sms => "Turn on codes by SMS",
            Channel::Whatsapp => "Turn on codes by WhatsApp",
        },
    };
    Enrolment::Show(View::ok(&pages::PhoneConfirmPage {
        csrf: account.csrf,
        heading,
        to: &to,
        channel: pending.channel.label(),
        error,
    }))
}
