//! `[phone]`: verified phone numbers and sign-in codes by SMS and WhatsApp (issue #14) — which
//! provider carries each channel, the abuse limits, and each provider's own table. Like mail,
//! nothing configured means the development outbox. Secrets are redacted in `Debug`.

use super::upstream::Secret;
use serde::Deserialize;
use std::path::PathBuf;

/// What carries one channel's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// The channel is not offered.
    Off,
    /// JSON files under `phone.outbox`, for development.
    Outbox,
    /// Twilio's Messages API (SMS, and WhatsApp through a Twilio WhatsApp sender).
    Twilio,
    /// Meta's WhatsApp Business Cloud API, with an approved authentication template.
    WhatsappCloud,
    /// Any gateway: a POST of `phone.webhook.body` to `phone.webhook.url`.
    Webhook,
}

impl Provider {
    fn parse(v: &str) -> Result<Self, String> {
        match v.trim() {
            "off" => Ok(Self::Off),
            "outbox" => Ok(Self::Outbox),
            "twilio" => Ok(Self::Twilio),
            "whatsapp_cloud" => Ok(Self::WhatsappCloud),
            "webhook" => Ok(Self::Webhook),
            _ => Err(format!("'{v}' is not off, outbox, twilio, whatsapp_cloud or webhook")),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Phone {
    /// What sends SMS: `outbox` (default), `twilio`, `webhook` or `off`.
    pub sms: Provider,
    /// What sends WhatsApp messages: `outbox` (default), `twilio`, `whatsapp_cloud`, `webhook`
    /// or `off`.
    pub whatsapp: Provider,
    /// Offer "text me a code" in place of the password: a code to a verified number signs in
    /// on its own (one factor). Off by default.
    pub first_factor: bool,
    /// When not empty, only numbers of these countries, as ISO 3166 codes (`GB`) or calling
    /// codes (`44`, `+44`).
    pub allowed_regions: Vec<String>,
    /// The region of numbers typed without `+` and a country code; unset: `+` is needed.
    pub default_region: Option<String>,
    /// Seconds a code works.
    pub code_ttl: i64,
    /// Codes sent per hour to one number, to one account, from one client address, and in all.
    pub per_number_per_hour: u64,
    pub per_account_per_hour: u64,
    pub per_ip_per_hour: u64,
    pub global_per_hour: u64,
    /// Seconds one call to a provider may take.
    pub timeout_secs: u64,
    /// Further tries after a 5xx answer (never after a 4xx or a timeout: the message may be out).
    pub retries: u32,
    /// Where the development outbox writes; default `<data_dir>/phone-outbox`.
    pub outbox: Option<PathBuf>,
    pub twilio: Twilio,
    pub whatsapp_cloud: WhatsappCloud,
    pub webhook: Webhook,
}

impl Default for Phone {
    fn default() -> Self {
        Self {
            sms: Provider::Outbox,
            whatsapp: Provider::Outbox,
            first_factor: false,
            allowed_regions: Vec::new(),
            default_region: None,
            code_ttl: 5 * 60,
            per_number_per_hour: 5,
            per_account_per_hour: 10,
            per_ip_per_hour: 20,
            global_per_hour: 1000,
            timeout_secs: 5,
            retries: 2,
            outbox: None,
            twilio: Twilio::default(),
            whatsapp_cloud: WhatsappCloud::default(),
            webhook: Webhook::default(),
        }
    }
}

/// `[phone.twilio]`: `POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Twilio {
    pub account_sid: String,
    pub auth_token: Secret,
    /// The SMS sender: a Twilio number (E.164) or a Messaging Service SID (`MG…`).
    pub from: String,
    /// The WhatsApp sender, E.164 (sent as `whatsapp:+…`).
    pub whatsapp_from: String,
    /// A Content API template (`HX…`) for WhatsApp, its variable `1` the code; unset: `Body`.
    pub whatsapp_content_sid: Option<String>,
    pub base_url: String,
}

impl Default for Twilio {
    fn default() -> Self {
        Self {
            account_sid: String::new(),
            auth_token: Secret::default(),
            from: String::new(),
            whatsapp_from: String::new(),
            whatsapp_content_sid: None,
            base_url: "https://api.twilio.com".into(),
        }
    }
}

/// `[phone.whatsapp_cloud]`: `POST {base_url}/{phone_number_id}/messages`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsappCloud {
    pub phone_number_id: String,
    pub access_token: Secret,
    /// The approved authentication template.
    pub template: String,
    pub language: String,
    pub base_url: String,
}

impl Default for WhatsappCloud {
    fn default() -> Self {
        Self {
            phone_number_id: String::new(),
            access_token: Secret::default(),
            template: "sign_in_code".into(),
            language: "en_US".into(),
            base_url: "https://graph.facebook.com/v21.0".into(),
        }
    }
}

/// `[phone.webhook]`: a POST of `body` with `{to}`, `{code}`, `{channel}` and `{message}`
/// filled in (JSON-escaped for a JSON body, percent-encoded for a form).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    pub body: String,
    pub content_type: String,
    /// Sent as the `Authorization` header when set.
    pub authorization: Option<Secret>,
}

impl Default for Webhook {
    fn default() -> Self {
        Self {
            url: String::new(),
            body: r#"{"to":"{to}","channel":"{channel}","code":"{code}","message":"{message}"}"#.into(),
            content_type: "application/json".into(),
            authorization: None,
        }
    }
}

/// The environment layer of `[phone]`: `LATCHKEY_PHONE_` and the setting's path.
pub const ENVIRONMENT: &[&str] = &[
    "LATCHKEY_PHONE_SMS",
    "LATCHKEY_PHONE_WHATSAPP",
    "LATCHKEY_PHONE_FIRST_FACTOR",
    "LATCHKEY_PHONE_ALLOWED_REGIONS",
    "LATCHKEY_PHONE_DEFAULT_REGION",
    "LATCHKEY_PHONE_CODE_TTL",
    "LATCHKEY_PHONE_PER_NUMBER_PER_HOUR",
    "LATCHKEY_PHONE_PER_ACCOUNT_PER_HOUR",
    "LATCHKEY_PHONE_PER_IP_PER_HOUR",
    "LATCHKEY_PHONE_GLOBAL_PER_HOUR",
    "LATCHKEY_PHONE_TIMEOUT_SECS",
    "LATCHKEY_PHONE_RETRIES",
    "LATCHKEY_PHONE_OUTBOX",
    "LATCHKEY_PHONE_TWILIO_ACCOUNT_SID",
    "LATCHKEY_PHONE_TWILIO_AUTH_TOKEN",
    "LATCHKEY_PHONE_TWILIO_FROM",
    "LATCHKEY_PHONE_TWILIO_WHATSAPP_FROM",
    "LATCHKEY_PHONE_TWILIO_WHATSAPP_CONTENT_SID",
    "LATCHKEY_PHONE_TWILIO_BASE_URL",
    "LATCHKEY_PHONE_WHATSAPP_CLOUD_PHONE_NUMBER_ID",
    "LATCHKEY_PHONE_WHATSAPP_CLOUD_ACCESS_TOKEN",
    "LATCHKEY_PHONE_WHATSAPP_CLOUD_TEMPLATE",
    "LATCHKEY_PHONE_WHATSAPP_CLOUD_LANGUAGE",
    "LATCHKEY_PHONE_WHATSAPP_CLOUD_BASE_URL",
    "LATCHKEY_PHONE_WEBHOOK_URL",
    "LATCHKEY_PHONE_WEBHOOK_BODY",
    "LATCHKEY_PHONE_WEBHOOK_CONTENT_TYPE",
    "LATCHKEY_PHONE_WEBHOOK_AUTHORIZATION",
];

pub fn apply_env(p: &mut Phone, name: &str, v: String) -> Result<(), String> {
    use super::{flag, list, num};
    match name {
        "LATCHKEY_PHONE_SMS" => p.sms = Provider::parse(&v)?,
        "LATCHKEY_PHONE_WHATSAPP" => p.whatsapp = Provider::parse(&v)?,
        "LATCHKEY_PHONE_FIRST_FACTOR" => p.first_factor = flag(&v)?,
        "LATCHKEY_PHONE_ALLOWED_REGIONS" => p.allowed_regions = list(&v),
        "LATCHKEY_PHONE_DEFAULT_REGION" => p.default_region = Some(v),
        "LATCHKEY_PHONE_CODE_TTL" => p.code_ttl = num(&v)?,
        "LATCHKEY_PHONE_PER_NUMBER_PER_HOUR" => p.per_number_per_hour = num(&v)?,
        "LATCHKEY_PHONE_PER_ACCOUNT_PER_HOUR" => p.per_account_per_hour = num(&v)?,
        "LATCHKEY_PHONE_PER_IP_PER_HOUR" => p.per_ip_per_hour = num(&v)?,
        "LATCHKEY_PHONE_GLOBAL_PER_HOUR" => p.global_per_hour = num(&v)?,
        "LATCHKEY_PHONE_TIMEOUT_SECS" => p.timeout_secs = num(&v)?,
        "LATCHKEY_PHONE_RETRIES" => p.retries = num(&v)?,
        "LATCHKEY_PHONE_OUTBOX" => p.outbox = Some(v.into()),
        "LATCHKEY_PHONE_TWILIO_ACCOUNT_SID" => p.twilio.account_sid = v,
        "LATCHKEY_PHONE_TWILIO_AUTH_TOKEN" => p.twilio.auth_token = Secret(v),
        "LATCHKEY_PHONE_TWILIO_FROM" => p.twilio.from = v,
        "LATCHKEY_PHONE_TWILIO_WHATSAPP_FROM" => p.twilio.whatsapp_from = v,
        "LATCHKEY_PHONE_TWILIO_WHATSAPP_CONTENT_SID" => p.twilio.whatsapp_content_sid = Some(v),
        "LATCHKEY_PHONE_TWILIO_BASE_URL" => p.twilio.base_url = v,
        "LATCHKEY_PHONE_WHATSAPP_CLOUD_PHONE_NUMBER_ID" => p.whatsapp_cloud.phone_number_id = v,
        "LATCHKEY_PHONE_WHATSAPP_CLOUD_ACCESS_TOKEN" => p.whatsapp_cloud.access_token = Secret(v),
        "LATCHKEY_PHONE_WHATSAPP_CLOUD_TEMPLATE" => p.whatsapp_cloud.template = v,
        "LATCHKEY_PHONE_WHATSAPP_CLOUD_LANGUAGE" => p.whatsapp_cloud.language = v,
        "LATCHKEY_PHONE_WHATSAPP_CLOUD_BASE_URL" => p.whatsapp_cloud.base_url = v,
        "LATCHKEY_PHONE_WEBHOOK_URL" => p.webhook.url = v,
        "LATCHKEY_PHONE_WEBHOOK_BODY" => p.webhook.body = v,
        "LATCHKEY_PHONE_WEBHOOK_CONTENT_TYPE" => p.webhook.content_type = v,
        "LATCHKEY_PHONE_WEBHOOK_AUTHORIZATION" => p.webhook.authorization = Some(Secret(v)),
        _ => return Err("unknown variable".into()),
    }
    Ok(())
}

/// One line per problem, for `config check`.
pub fn problems(p: &Phone) -> Vec<String> {
    let mut out = Vec::new();
    if p.sms == Provider::WhatsappCloud {
        out.push("phone.sms: whatsapp_cloud sends WhatsApp messages only".into());
    }
    for (channel, provider) in [("sms", p.sms), ("whatsapp", p.whatsapp)] {
        match provider {
            Provider::Twilio => {
                let t = &p.twilio;
                let from = if channel == "sms" { &t.from } else { &t.whatsapp_from };
                if t.account_sid.is_empty() || t.auth_token.0.is_empty() || from.is_empty() {
                    out.push(format!(
                        "phone.twilio: account_sid, auth_token and {} are needed for phone.{channel} = twilio",
                        if channel == "sms" { "from" } else { "whatsapp_from" }
                    ));
                }
                if url::Url::parse(&t.base_url).is_err() {
                    out.push(format!("phone.twilio.base_url: '{}' is not a URL", t.base_url));
                }
            }
            Provider::WhatsappCloud => {
                let w = &p.whatsapp_cloud;
                if w.phone_number_id.is_empty() || w.access_token.0.is_empty() || w.template.is_empty() {
                    out.push("phone.whatsapp_cloud: phone_number_id, access_token and template are needed".into());
                }
                if url::Url::parse(&w.base_url).is_err() {
                    out.push(format!("phone.whatsapp_cloud.base_url: '{}' is not a URL", w.base_url));
                }
            }
            Provider::Webhook if url::Url::parse(&p.webhook.url).is_err() => {
                out.push(format!("phone.webhook.url: '{}' is not a URL", p.webhook.url));
            }
            _ => {}
        }
    }
    for r in &p.allowed_regions {
        if crate::phone::region(r).is_none() {
            out.push(format!("phone.allowed_regions: '{r}' is not a region (GB) or a calling code (+44)"));
        }
    }
    if let Some(r) = &p.default_region
        && !matches!(crate::phone::region(r), Some(crate::phone::Region::Iso(_)))
    {
        out.push(format!("phone.default_region: '{r}' is not an ISO 3166 region such as GB"));
    }
    if p.code_ttl <= 0 || p.timeout_secs == 0 {
        out.push("phone.code_ttl and phone.timeout_secs: must be positive".into());
    }
    out
}
