//! `[gateway]`: the forward-auth gateway for apps behind a reverse proxy (see `crate::gateway`),
//! and its `[[gateway.rules]]`. The rules are compiled and checked by `gateway::rules`, so
//! `config check` and the server read them the same way.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gateway {
    /// Serve `/gateway/auth` and the gateway's sign-in and sign-out. Off by default.
    pub enabled: bool,
    /// The parent domain the gateway cookie is set for (`example.com`: every `*.example.com`
    /// app shares one sign-in). The issuer's host must be it or under it.
    pub cookie_domain: Option<String>,
    /// The gateway cookie's name (`__Secure-` is put before it over https).
    pub cookie_name: String,
    /// Seconds a gateway session lives at most, however much it is used.
    pub session_ttl: i64,
    /// Seconds a gateway session may go unused before it is over; use is noted at most once a
    /// minute.
    pub idle_timeout: i64,
    /// Seconds a node may answer a check from its own memory before it asks the stores again:
    /// a logout elsewhere takes at most this long to reach this node. 0: ask every time.
    pub cache_secs: i64,
    /// When the stores are unreachable: 0 (the default) fails closed with 503; N lets a session
    /// verified within the last N seconds keep passing from the node's memory.
    pub outage_grace_secs: i64,
    /// What a check does when the device differs from the one the session was made on.
    pub device_binding: DeviceBinding,
    /// Count the client network (an IPv4 /24, an IPv6 /64) in the device fingerprint.
    pub device_network: bool,
    /// Mail the user when they sign in through the gateway from a device not seen before.
    pub new_device_mail: bool,
    /// What requests no rule matches get.
    pub default_policy: Policy,
    /// The names of the identity headers a passed check answers with.
    pub headers: Headers,
    /// First match wins.
    pub rules: Vec<Rule>,
}

impl Default for Gateway {
    fn default() -> Self {
        Self {
            enabled: false,
            cookie_domain: None,
            cookie_name: "latchkey_gateway".into(),
            session_ttl: 12 * 3600,
            idle_timeout: 3600,
            cache_secs: 1,
            outage_grace_secs: 0,
            device_binding: DeviceBinding::Audit,
            device_network: false,
            new_device_mail: false,
            default_policy: Policy::Deny,
            headers: Headers::default(),
            rules: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Headers {
    pub user: String,
    pub email: String,
    pub name: String,
    pub groups: String,
}

impl Default for Headers {
    fn default() -> Self {
        Self {
            user: "Remote-User".into(),
            email: "Remote-Email".into(),
            name: "Remote-Name".into(),
            groups: "Remote-Groups".into(),
        }
    }
}

/// One access rule: it matches a request when every condition it sets holds.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rule {
    /// Host names, `*.example.com` for any subdomain; empty: any host.
    pub hosts: Vec<String>,
    /// Path prefixes (`/api/`); empty: any path.
    pub paths: Vec<String>,
    /// A regular expression the whole path must match (`^/admin(/|$)`).
    pub path_regex: Option<String>,
    /// Methods (`GET`, `POST`); empty: any.
    pub methods: Vec<String>,
    /// Client networks (`10.0.0.0/8`, an address); empty: any.
    pub networks: Vec<String>,
    pub policy: Policy,
    /// The user must be in one of these groups (`latchkey groups`); empty: any user.
    pub groups: Vec<String>,
    /// Or be one of these usernames.
    pub users: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// No sign-in asked.
    Bypass,
    /// Refused whoever asks.
    #[default]
    Deny,
    /// Signed in with any first factor (`acr` 1).
    OneFactor,
    /// Signed in with two factors (`acr` 2).
    TwoFactor,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceBinding {
    Off,
    /// A mismatch is written to the audit log; the session goes on.
    #[default]
    Audit,
    /// A mismatch ends the session: sign in again.
    Enforce,
}

impl std::str::FromStr for DeviceBinding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "off" => Ok(Self::Off),
            "audit" => Ok(Self::Audit),
            "enforce" => Ok(Self::Enforce),
            other => Err(format!("'{other}' is not off, audit or enforce")),
        }
    }
}
