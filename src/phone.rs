//! Outbound phone messages — sign-in codes by SMS and by WhatsApp — and the rules a number
//! must meet before anything is sent to it. Like `mail.rs`, it only delivers: limits, codes and
//! the audit log are the login steps' (`login/steps/phone_code.rs`).
//!
//! Providers (`[phone]`, `config::phone`): Twilio's Messages API (form body, basic auth with
//! the account SID and token), the WhatsApp Business Cloud API (JSON, bearer token, an approved
//! authentication template with the code as its parameter), a generic webhook with a body
//! template, and, with nothing configured, a development outbox of JSON files. Every call has a
//! timeout and is tried again on a 5xx answer only: after a 4xx nothing would change, and after
//! a timeout the message may well be on its way already.

use crate::clock::Clock;
use crate::config::Settings;
use crate::config::phone::{Phone, Provider};
use anyhow::{Context, bail};
use phonenumber::Type;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// How a code travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Whatsapp,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Sms, Channel::Whatsapp];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Sms => "SMS",
            Self::Whatsapp => "WhatsApp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }

    fn provider(self, p: &Phone) -> Provider {
        match self {
            Self::Sms => p.sms,
            Self::Whatsapp => p.whatsapp,
        }
    }
}

/// A region of `phone.allowed_regions`: an ISO 3166 code or a country calling code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    Iso(phonenumber::country::Id),
    CallingCode(u16),
}

pub fn region(s: &str) -> Option<Region> {
    let s = s.trim();
    let digits = s.strip_prefix('+').unwrap_or(s);
    if !digits.is_empty() && digits.len() <= 3 && digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits.parse().ok().map(Region::CallingCode);
    }
    s.to_ascii_uppercase().parse().ok().map(Region::Iso)
}

/// A typed number as E.164, if codes may go to it: valid (libphonenumber, as the sign-up form
/// parses it), of an allowed region, and a mobile number — premium-rate, shared-cost, fixed
/// and other numbers are where SMS pumping and toll fraud send codes. The error is for the
/// person.
pub fn number(settings: &Phone, typed: &str) -> Result<String, &'static str> {
    let default_region = settings.default_region.as_deref();
    let e164 = crate::domain::registration::phone(typed, default_region, false)
        .map_err(|_| "Enter a mobile number with + and its country code, e.g. +44 7400 123456.")?;
    let parsed = phonenumber::parse(None, &e164).map_err(|_| "This is not a valid phone number.")?;
    let allowed = settings.allowed_regions.is_empty()
        || settings.allowed_regions.iter().filter_map(|r| region(r)).any(|r| match r {
            Region::Iso(id) => parsed.country().id() == Some(id),
            Region::CallingCode(code) => parsed.code().value() == code,
        });
    if !allowed {
        return Err("Codes cannot be sent to numbers of this country.");
    }
    match parsed.number_type(&phonenumber::metadata::DATABASE) {
        Type::Mobile | Type::FixedLineOrMobile => Ok(e164),
        Type::PremiumRate | Type::SharedCost => Err("Codes are not sent to premium-rate or shared-cost numbers."),
        _ => Err("Enter a mobile number: codes are sent by SMS or WhatsApp."),
    }
}

/// `+447400123456` → `+44 ••• •••456`: enough to recognise, not to harvest.
pub fn mask(e164: &str) -> String {
    let code_len = phonenumber::parse(None, e164).map(|n| n.code().value().to_string().len()).unwrap_or(1);
    let digits: Vec<char> = e164.chars().filter(char::is_ascii_digit).collect();
    let cc: String = digits.iter().take(code_len).collect();
    let tail: String = digits.iter().skip(digits.len().saturating_sub(3).max(code_len)).collect();
    format!("+{cc} ••• •••{tail}")
}

/// One message: a code for `to` (E.164) by `channel`, and its text for the channels that send
/// text (a template carries the code alone).
pub struct Message {
    pub to: String,
    pub channel: Channel,
    pub code: String,
    pub text: String,
}

impl Message {
    /// The sign-in code text. Its last line is the origin-bound form of the WebOTP API and
    /// Android's SMS retriever, so the browser of the issuer's site can offer to fill it in.
    pub fn sign_in_code(to: &str, channel: Channel, code: &str, product: &str, issuer: &str, minutes: u64) -> Self {
        let host = url::Url::parse(issuer).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        let text = format!(
            "{code} is your {product} sign-in code. It expires in {minutes} minutes. Do not share it.\n\n@{host} #{code}"
        );
        Self { to: to.to_owned(), channel, code: code.to_owned(), text }
    }
}

/// What sends messages, built once from `[phone]`.
pub struct PhoneSender {
    settings: Phone,
    http: reqwest::Client,
    outbox: PathBuf,
    clock: Clock,
}

impl PhoneSender {
    pub fn from_settings(settings: &Settings, clock: Clock) -> Self {
        let phone = settings.phone.clone();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(phone.timeout_secs.max(1)))
            .build()
            .expect("a TLS backend is compiled in");
        let outbox = phone.outbox.clone().unwrap_or_else(|| settings.data_dir.join("phone-outbox"));
        Self { settings: phone, http, outbox, clock }
    }

    /// Whether codes go out by `channel` on this server.
    pub fn offers(&self, channel: Channel) -> bool {
        channel.provider(&self.settings) != Provider::Off
    }

    pub async fn send(&self, m: &Message) -> anyhow::Result<()> {
        let provider = m.channel.provider(&self.settings);
        if provider == Provider::Outbox {
            return self.to_outbox(m).await;
        }
        let retries = self.settings.retries;
        for attempt in 0..=retries {
            let request = match self.request(provider, m) {
                Some(r) => r,
                None => bail!("phone.{} is off", m.channel.name()),
            };
            let answer = request.send().await.with_context(|| format!("{provider:?}: no answer"))?;
            let status = answer.status();
            if status.is_success() {
                tracing::info!(to = %mask(&m.to), channel = m.channel.name(), ?provider, "code sent");
                return Ok(());
            }
            let body: String = answer.text().await.unwrap_or_default().chars().take(300).collect();
            if !status.is_server_error() || attempt == retries {
                bail!("{provider:?} answered {status}: {body}");
            }
            tracing::warn!(?provider, %status, attempt, "provider failed; trying again");
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        unreachable!("the last attempt returns")
    }

    fn request(&self, provider: Provider, m: &Message) -> Option<reqwest::RequestBuilder> {
        let p = &self.settings;
        Some(match provider {
            // https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
            Provider::Twilio => {
                let t = &p.twilio;
                let url =
                    format!("{}/2010-04-01/Accounts/{}/Messages.json", t.base_url.trim_end_matches('/'), t.account_sid);
                let mut form: Vec<(&str, String)> = Vec::new();
                match m.channel {
                    Channel::Sms => {
                        form.push(("To", m.to.clone()));
                        let key = if t.from.starts_with("MG") { "MessagingServiceSid" } else { "From" };
                        form.push((key, t.from.clone()));
                        form.push(("Body", m.text.clone()));
                    }
                    Channel::Whatsapp => {
                        form.push(("To", format!("whatsapp:{}", m.to)));
                        form.push(("From", format!("whatsapp:{}", t.whatsapp_from)));
                        match &t.whatsapp_content_sid {
                            Some(sid) => {
                                form.push(("ContentSid", sid.clone()));
                                form.push(("ContentVariables", json!({ "1": m.code }).to_string()));
                            }
                            None => form.push(("Body", m.text.clone())),
                        }
                    }
                }
                self.http.post(url).basic_auth(&t.account_sid, Some(&t.auth_token.0)).form(&form)
            }
            // https://developers.facebook.com/docs/whatsapp/business-management-api/authentication-templates/
            Provider::WhatsappCloud => {
                let w = &p.whatsapp_cloud;
                let url = format!("{}/{}/messages", w.base_url.trim_end_matches('/'), w.phone_number_id);
                let body = json!({
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": m.to,
                    "type": "template",
                    "template": {
                        "name": w.template,
                        "language": { "code": w.language },
                        "components": [
                            { "type": "body", "parameters": [{ "type": "text", "text": m.code }] },
                            { "type": "button", "sub_type": "url", "index": "0",
                              "parameters": [{ "type": "text", "text": m.code }] }
                        ]
                    }
                });
                self.http.post(url).bearer_auth(&w.access_token.0).json(&body)
            }
            Provider::Webhook => {
                let h = &p.webhook;
                let json = h.content_type.contains("json");
                let fill = |v: &str| -> String {
                    if json {
                        let quoted = serde_json::Value::String(v.to_owned()).to_string();
                        quoted[1..quoted.len() - 1].to_owned()
                    } else {
                        url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
                    }
                };
                let body = h
                    .body
                    .replace("{to}", &fill(&m.to))
                    .replace("{channel}", &fill(m.channel.name()))
                    .replace("{code}", &fill(&m.code))
                    .replace("{message}", &fill(&m.text));
                let mut r = self.http.post(&h.url).header(reqwest::header::CONTENT_TYPE, &h.content_type).body(body);
                if let Some(auth) = &h.authorization {
                    r = r.header(reqwest::header::AUTHORIZATION, &auth.0);
                }
                r
            }
            Provider::Off | Provider::Outbox => return None,
        })
    }

    async fn to_outbox(&self, m: &Message) -> anyhow::Result<()> {
        let dir = &self.outbox;
        tokio::fs::create_dir_all(dir).await.with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}-{}.json", self.clock.now(), crate::crypto::random_id()));
        let body = json!({ "to": m.to, "channel": m.channel.name(), "text": m.text });
        tokio::fs::write(&path, body.to_string()).await.with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(to = %mask(&m.to), channel = m.channel.name(), path = %path.display(), "code written to the phone outbox");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_must_be_mobile_and_allowed() {
        let mut p = Phone::default();
        assert_eq!(number(&p, "+44 7400 123456"), Ok("+447400123456".into()));
        assert!(number(&p, "+44 20 7946 0000").is_err(), "a London landline");
        assert_eq!(number(&p, "+44 909 879 0000"), Err("Codes are not sent to premium-rate or shared-cost numbers."));
        assert!(number(&p, "07400 123456").is_err(), "no default region");
        p.default_region = Some("GB".into());
        assert_eq!(number(&p, "07400 123456"), Ok("+447400123456".into()));
        p.allowed_regions = vec!["+1".into(), "FR".into()];
        assert_eq!(number(&p, "+44 7400 123456"), Err("Codes cannot be sent to numbers of this country."));
        assert!(number(&p, "+33 6 12 34 56 78").is_ok());
    }

    #[test]
    fn numbers_are_masked() {
        assert_eq!(mask("+447400123456"), "+44 ••• •••456");
        assert_eq!(mask("+15005550006"), "+1 ••• •••006");
    }
}
