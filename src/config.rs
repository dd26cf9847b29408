//! Settings: built-in defaults, overridden by `latchkey.toml` (or `--config FILE`), overridden by
//! `LATCHKEY_*` environment variables. Every knob has exactly one name in each layer.

pub mod gateway;
pub mod phone;
pub mod upstream;

use serde::Deserialize;
use std::path::{Path, PathBuf};
pub use upstream::Upstream;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Public base URL. When unset: `http://localhost:<port actually bound>`.
    pub issuer: Option<String>,
    /// Address and port to listen on (`LATCHKEY_LISTEN`).
    pub listen: String,
    /// Where the embedded database and the development mail outbox live.
    pub data_dir: PathBuf,
    /// Where development key material (the key-encryption key) is written.
    pub keys_dir: PathBuf,
    pub database: Database,
    pub ephemeral: Ephemeral,
    pub tokens: Tokens,
    pub rate_limit: RateLimit,
    pub login: Login,
    /// `[password]`: what a new password must be (sign-up, reset, change, the CLI).
    pub password: PasswordPolicy,
    /// `[registration]`: whether and how people create their own accounts.
    pub registration: Registration,
    pub keys: Keys,
    pub mail: Mail,
    pub audit: Audit,
    pub purge: Purge,
    pub http: Http,
    /// `[[upstream]]`: identity providers to sign in with (Google, Facebook, any OIDC issuer).
    pub upstream: Vec<Upstream>,
    pub metrics: Metrics,
    /// `[gateway]`: forward-auth for apps behind a reverse proxy, and its rules.
    pub gateway: gateway::Gateway,
    /// `[phone]`: phone numbers and sign-in codes by SMS and WhatsApp (see `config::phone`).
    pub phone: phone::Phone,
    /// `[dynamic_registration]`: clients registering themselves (RFC 7591).
    pub dynamic_registration: DynamicRegistration,
    /// `[mtls]`: client certificates passed by a TLS-terminating proxy (RFC 8705).
    pub mtls: Mtls,
    /// `[ui]`: the pages' language and the operator's theme.
    pub ui: Ui,
}

/// Mutual TLS behind a proxy (RFC 8705, see `oidc::mtls`): the proxy terminates TLS, asks the
/// client for a certificate and passes it in `header`. Off until `trusted_proxies` names the
/// proxy: the header is believed from those addresses only, and each of them must set or clear
/// it on every request (a proxy that passes a client's own header on would let anyone claim
/// any certificate).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mtls {
    /// Addresses or CIDR ranges of the proxies that pass client certificates.
    pub trusted_proxies: Vec<String>,
    /// The request header holding the certificate: URL-encoded PEM (nginx
    /// `$ssl_client_escaped_cert`), Envoy's `X-Forwarded-Client-Cert`, RFC 9440 `Client-Cert`
    /// or base64 DER.
    pub header: String,
}

impl Default for Mtls {
    fn default() -> Self {
        Self { trusted_proxies: Vec::new(), header: "X-Client-Cert".into() }
    }
}

impl Mtls {
    /// Whether certificates can reach Latchkey at all: then the mTLS methods are offered.
    pub fn enabled(&self) -> bool {
        !self.trusted_proxies.is_empty()
    }
}

/// The pages and mails (see `crate::pages`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ui {
    /// The language of a page when neither `ui_locales` nor `Accept-Language` names a shipped
    /// one (`LATCHKEY_UI_DEFAULT_LOCALE`).
    pub default_locale: String,
    /// A directory whose templates (`login_password.html`, `mail/…`) and `style.css` replace the
    /// built-in ones file by file (`LATCHKEY_UI_THEME_DIR`).
    pub theme_dir: Option<PathBuf>,
}

impl Default for Ui {
    fn default() -> Self {
        Self { default_locale: "en".into(), theme_dir: None }
    }
}

/// The registration endpoint (RFC 7591, see `oidc::register`). It always takes an initial
/// access token from `latchkey clients token`; `open` lets anyone register without one.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DynamicRegistration {
    /// Anyone may register a client, with no initial access token. Off by default: a public
    /// provider open to registration is open to spam clients and phishing names.
    pub open: bool,
}

/// Prometheus metrics (see `crate::metrics`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    /// Serve `/metrics` on the main listener. Off by default: keep it from the public internet
    /// (block the path at the balancer, or scrape each node's own address).
    pub enabled: bool,
}

/// Outbound mail (sign-in codes).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mail {
    /// `smtps://user:pass@host:465` (TLS), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS), or plain `smtp://host:1025` for a local mail catcher only. Unset: the
    /// development outbox.
    pub smtp_url: Option<String>,
    /// The sender, `Name <address>`.
    pub from: String,
    /// Where the development outbox writes; default `<data_dir>/outbox`.
    pub outbox: Option<PathBuf>,
    /// The name messages give the service ("your Acme account").
    pub product_name: String,
}

impl Default for Mail {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "Latchkey <no-reply@localhost>".into(),
            outbox: None,
            product_name: "Latchkey".into(),
        }
    }
}

/// Sign-up and the profile (see `domain::registration`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Registration {
    /// People may create their own accounts, from a link on the sign-in page. Off by default.
    pub enabled: bool,
    /// The standard claims the sign-up form asks for, each `required` or `optional`
    /// (`given_name`, `family_name`, `name`, `middle_name`, `nickname`, `birthdate`, `gender`,
    /// `phone_number`, and `username`). The email and the password are always asked. Without
    /// `username` the account's username is made from its email.
    pub fields: std::collections::BTreeMap<String, Need>,
    /// The youngest age, in years, a birth date may give; unset: any past date.
    pub min_age: Option<u32>,
    /// The values the `gender` field offers.
    pub genders: Vec<String>,
    /// The region (ISO 3166 code, e.g. `BD`) of phone numbers typed without a country code.
    pub phone_region: Option<String>,
    /// Accept only mobile phone numbers.
    pub mobile_only: bool,
    /// When not empty, only addresses at these domains (or their subdomains) may sign up.
    pub email_domains_allowed: Vec<String>,
    /// Addresses at these domains (or their subdomains) may not sign up.
    pub email_domains_denied: Vec<String>,
    /// Seconds a verification link or code works.
    pub verify_ttl: i64,
    /// The claims a person may change on the profile page (and the email, when listed);
    /// unset: the sign-up fields and the email.
    pub editable: Option<Vec<String>>,
    /// Sign-ups (and "send again") per IP address per hour, counted in the ephemeral store.
    pub per_ip_per_hour: u64,
}

/// Whether a sign-up field must be filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Need {
    Required,
    Optional,
}

impl Default for Registration {
    fn default() -> Self {
        Self {
            enabled: false,
            fields: Default::default(),
            min_age: None,
            genders: vec!["female".into(), "male".into(), "other".into()],
            phone_region: None,
            mobile_only: false,
            email_domains_allowed: Vec::new(),
            email_domains_denied: Vec::new(),
            verify_ttl: 24 * 3600,
            editable: None,
            per_ip_per_hour: 20,
        }
    }
}

/// `given_name=required,phone_number=optional`, as the environment gives registration fields.
fn fields_list(v: &str) -> Result<std::collections::BTreeMap<String, Need>, String> {
    let mut out = std::collections::BTreeMap::new();
    for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, need) = item.split_once('=').unwrap_or((item, "required"));
        let need = match need.trim() {
            "required" => Need::Required,
            "optional" => Need::Optional,
            other => return Err(format!("'{other}' is not required or optional")),
        };
        out.insert(name.trim().to_owned(), need);
    }
    Ok(out)
}

fn list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|p| !p.is_empty()).map(Into::into).collect()
}

/// The audit log.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Audit {
    /// Days an audit event is kept before the background purge deletes it.
    pub retention_days: i64,
}

impl Default for Audit {
    fn default() -> Self {
        Self { retention_days: 365 }
    }
}

/// The background purge of expired rows (see `store::purge`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Purge {
    /// Seconds between two purges (one node at a time does it).
    pub interval_secs: u64,
    /// Rows deleted per statement, so a purge never holds a long write lock.
    pub batch_size: i64,
}

impl Default for Purge {
    fn default() -> Self {
        Self { interval_secs: 300, batch_size: 500 }
    }
}

/// The HTTP server's own limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    /// Seconds a client may take to send a request's headers; a slower connection is closed
    /// (slowloris).
    pub header_read_timeout_secs: u64,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// After SIGTERM, seconds in-flight requests may take before the process exits anyway.
    pub shutdown_deadline_secs: u64,
}

impl Default for Http {
    fn default() -> Self {
        Self { header_read_timeout_secs: 10, max_connections: 4096, shutdown_deadline_secs: 10 }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// `sqlite://…` or `postgres://…`; default `sqlite://<data_dir>/latchkey.db`.
    pub url: Option<String>,
    /// Connections each node keeps open at most.
    pub max_connections: u32,
    /// Seconds a request waits for a connection before it fails with 503: short, so that an
    /// unreachable database gives quick, clean errors rather than piled-up requests.
    pub acquire_timeout: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ephemeral {
    /// Unset: in-process. `redis://host:port/db` (or `rediss://`): shared by every node.
    pub url: Option<String>,
    /// Put before every Redis key, so that several deployments can share one Redis.
    pub prefix: String,
    /// In-process store only: the bytes it may hold; past this the oldest entries are evicted
    /// (on Redis, size the server with `maxmemory`).
    pub max_bytes: usize,
    /// The largest single value either backend accepts, in bytes.
    pub max_value_bytes: usize,
}

impl Default for Database {
    fn default() -> Self {
        Self { url: None, max_connections: 8, acquire_timeout: 3 }
    }
}

impl Default for Ephemeral {
    fn default() -> Self {
        Self { url: None, prefix: "latchkey:".into(), max_bytes: 64 << 20, max_value_bytes: 256 << 10 }
    }
}

/// Lifetimes, in seconds. Every TTL Latchkey uses is here.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tokens {
    pub code_ttl: i64,
    pub access_token_ttl: i64,
    pub id_token_ttl: i64,
    pub refresh_token_ttl: i64,
    /// Seconds during which a rotated refresh token may be presented again and still get
    /// tokens (a client retrying after a lost response); later, reuse revokes the grant.
    /// 0 turns the grace off.
    pub refresh_reuse_grace_secs: i64,
    pub session_ttl: i64,
    pub login_flow_ttl: i64,
    /// How long an emailed sign-in code works.
    pub email_code_ttl: i64,
    /// How long a sign-in at an upstream provider may take before its `state` is forgotten.
    pub upstream_state_ttl: i64,
    /// Require PKCE of every client, confidential ones too (public clients always must). Off
    /// by default: the OpenID conformance plans send none outside their PKCE module.
    pub require_pkce: bool,
    /// How long a device's codes work (RFC 8628 `expires_in`): the time the person has to
    /// approve it.
    pub device_code_ttl: i64,
    /// How long a password reset link works (it works once, and only while the password is
    /// the one it was issued for).
    pub reset_ttl: i64,
    /// How long a pushed authorization request's `request_uri` works (RFC 9126 §2.2
    /// `expires_in`; FAPI 2.0 §5.3.2.2 asks for under 600 s).
    pub par_ttl: i64,
    /// Require pushed authorization requests of every client (RFC 9126 §5); a client may be
    /// held to them alone (`clients add --require-par`).
    pub require_par: bool,
    /// Ask for a server nonce in every DPoP proof (RFC 9449 §8): `use_dpop_nonce` until the
    /// client sends the one in `DPoP-Nonce`.
    pub dpop_nonce: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second per client IP on the protocol endpoints; 0 turns it off.
    pub per_second: u64,
    pub burst: u32,
    /// Load balancers (addresses or CIDR ranges) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Login {
    /// Failed sign-ins per account before it is throttled for `lockout_secs`.
    pub max_failures: u64,
    pub lockout_secs: i64,
    /// How recent a sign-in must be for a security change on the account page (removing a
    /// factor, new recovery codes); an older session signs in again first.
    pub reauth_secs: i64,
    /// How many argon2 computations may run at once.
    pub password_workers: usize,
    /// How many argon2 computations may wait for a worker; a sign-in past that is answered 503
    /// with `Retry-After` at once.
    pub password_queue: usize,
    /// Offer "email me a code" in place of the password: a code sent to the account's
    /// confirmed address signs in on its own (one factor, like a password).
    pub email_first_factor: bool,
    /// Sign-ins in progress one browser may hold; starting another ends its oldest.
    pub max_flows_per_browser: usize,
    /// Sign-ins that browsers without a Latchkey cookie may start from one address (an IPv6
    /// /64) within `tokens.login_flow_ttl`; past it new ones are refused until older ones expire.
    /// Generous, since many people may share one address behind a NAT.
    pub max_new_browsers_per_ip: u64,
    /// Seconds a browser session may go unused before it is over (sign-in asked again), next to
    /// the absolute `tokens.session_ttl`; 0 turns it off. The default is Keycloak's "SSO
    /// Session Idle", 30 minutes. Use is noted at most once a minute.
    pub idle_timeout: i64,
    /// Whether "Keep me signed in" starts ticked on the sign-in page: ticked, the session cookie
    /// lasts `tokens.session_ttl`; unticked, it ends when the browser closes.
    pub remember_me_default: bool,
}

/// The password policy (see `domain::password_policy`). The defaults follow NIST SP 800-63B:
/// length and a strength estimate, no composition rules, no expiry.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
    /// The lowest zxcvbn score (0–4) a new password must reach; 0 turns the estimate off.
    pub min_score: u8,
    /// How many of the four kinds of character (lower, upper, digit, other) a password must
    /// use; 0, the default, asks for none.
    pub min_classes: u8,
    /// A new password may not be one of this account's last `history` passwords.
    pub history: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_length: 8, max_length: 128, min_score: 3, min_classes: 0, history: 5 }
    }
}

/// Signing keys (see `keys::lifecycle`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Keys {
    /// `Cache-Control: max-age` of the JWKS, in seconds. A next key is published at least this
    /// long (plus the nodes' refresh interval) before it signs.
    pub jwks_max_age: i64,
    /// Rotate every algorithm's active key after this many seconds; unset: only by the CLI.
    pub rotate_every: Option<i64>,
}

impl Default for Keys {
    fn default() -> Self {
        Self { jwks_max_age: 300, rotate_every: None }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: None,
            listen: "127.0.0.1:8080".into(),
            data_dir: "data".into(),
            keys_dir: "keys".into(),
            database: Database::default(),
            ephemeral: Ephemeral::default(),
            tokens: Tokens::default(),
            rate_limit: RateLimit::default(),
            login: Login::default(),
            password: PasswordPolicy::default(),
            registration: Registration::default(),
            keys: Keys::default(),
            mail: Mail::default(),
            audit: Audit::default(),
            purge: Purge::default(),
            http: Http::default(),
            upstream: Vec::new(),
            metrics: Metrics::default(),
            gateway: gateway::Gateway::default(),
            phone: phone::Phone::default(),
            dynamic_registration: DynamicRegistration::default(),
            mtls: Mtls::default(),
            ui: Ui::default(),
        }
    }
}

impl Default for Tokens {
    fn default() -> Self {
        Self {
            code_ttl: 60,
            access_token_ttl: 300,
            id_token_ttl: 3600,
            refresh_token_ttl: 30 * 24 * 3600,
            // Okta's default grace for rotating refresh tokens (Hydra's
            // `rotation_grace_period` is off by default): long enough for a client's retry after
            // a lost response, short enough to leave a thief little room.
            refresh_reuse_grace_secs: 30,
            session_ttl: 7 * 24 * 3600,
            login_flow_ttl: 30 * 60,
            email_code_ttl: 10 * 60,
            upstream_state_ttl: 10 * 60,
            require_pkce: false,
            device_code_ttl: 10 * 60,
            reset_ttl: 30 * 60,
            par_ttl: 60,
            require_par: false,
            dpop_nonce: false,
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self { per_second: 50, burst: 100, trusted_proxies: Vec::new() }
    }
}

impl Default for Login {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lockout_secs: 15 * 60,
            reauth_secs: 5 * 60,
            password_workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            password_queue: 64,
            email_first_factor: false,
            max_flows_per_browser: 16,
            max_new_browsers_per_ip: 1000,
            idle_timeout: 30 * 60,
            remember_me_default: false,
        }
    }
}

/// The environment layer: every variable Latchkey reads, and the setting it overrides.
pub const ENVIRONMENT: &[&str] = &[
    "LATCHKEY_ISSUER",
    "LATCHKEY_LISTEN",
    "LATCHKEY_DATA_DIR",
    "LATCHKEY_KEYS_DIR",
    "LATCHKEY_DATABASE_URL",
    "LATCHKEY_DATABASE_MAX_CONNECTIONS",
    "LATCHKEY_DATABASE_ACQUIRE_TIMEOUT",
    "LATCHKEY_EPHEMERAL_URL",
    "LATCHKEY_EPHEMERAL_PREFIX",
    "LATCHKEY_EPHEMERAL_MAX_BYTES",
    "LATCHKEY_EPHEMERAL_MAX_VALUE_BYTES",
    "LATCHKEY_CODE_TTL",
    "LATCHKEY_ACCESS_TOKEN_TTL",
    "LATCHKEY_ID_TOKEN_TTL",
    "LATCHKEY_REFRESH_TOKEN_TTL",
    "LATCHKEY_SESSION_TTL",
    "LATCHKEY_EMAIL_CODE_TTL",
    "LATCHKEY_DEVICE_CODE_TTL",
    "LATCHKEY_RESET_TTL",
    "LATCHKEY_RATE_LIMIT_PER_SECOND",
    "LATCHKEY_RATE_LIMIT_BURST",
    "LATCHKEY_TRUSTED_PROXIES",
    "LATCHKEY_LOGIN_MAX_FAILURES",
    "LATCHKEY_JWKS_MAX_AGE",
    "LATCHKEY_KEYS_ROTATE_EVERY",
    "LATCHKEY_LOGIN_REAUTH_SECS",
    "LATCHKEY_LOGIN_EMAIL_FIRST_FACTOR",
    "LATCHKEY_LOGIN_IDLE_TIMEOUT",
    "LATCHKEY_LOGIN_REMEMBER_ME_DEFAULT",
    "LATCHKEY_MAIL_SMTP_URL",
    "LATCHKEY_MAIL_FROM",
    "LATCHKEY_MAIL_OUTBOX",
    "LATCHKEY_REFRESH_REUSE_GRACE_SECS",
    "LATCHKEY_AUDIT_RETENTION_DAYS",
    "LATCHKEY_PURGE_INTERVAL_SECS",
    "LATCHKEY_PURGE_BATCH_SIZE",
    "LATCHKEY_HEADER_READ_TIMEOUT_SECS",
    "LATCHKEY_MAX_CONNECTIONS",
    "LATCHKEY_SHUTDOWN_DEADLINE_SECS",
    "LATCHKEY_METRICS_ENABLED",
    "LATCHKEY_UI_DEFAULT_LOCALE",
    "LATCHKEY_UI_THEME_DIR",
    "LATCHKEY_PASSWORD_MIN_LENGTH",
    "LATCHKEY_PASSWORD_MIN_SCORE",
    "LATCHKEY_PASSWORD_MIN_CLASSES",
    "LATCHKEY_PASSWORD_HISTORY",
    "LATCHKEY_MAIL_PRODUCT_NAME",
    "LATCHKEY_REGISTRATION_ENABLED",
    "LATCHKEY_REGISTRATION_FIELDS",
    "LATCHKEY_REGISTRATION_MIN_AGE",
    "LATCHKEY_REGISTRATION_GENDERS",
    "LATCHKEY_REGISTRATION_PHONE_REGION",
    "LATCHKEY_REGISTRATION_MOBILE_ONLY",
    "LATCHKEY_REGISTRATION_EMAIL_DOMAINS_ALLOWED",
    "LATCHKEY_REGISTRATION_EMAIL_DOMAINS_DENIED",
    "LATCHKEY_REGISTRATION_VERIFY_TTL",
    "LATCHKEY_REGISTRATION_EDITABLE",
    "LATCHKEY_REGISTRATION_PER_IP_PER_HOUR",
    "LATCHKEY_LOGIN_MAX_FLOWS_PER_BROWSER",
    "LATCHKEY_LOGIN_MAX_NEW_BROWSERS_PER_IP",
    "LATCHKEY_REQUIRE_PKCE",
    "LATCHKEY_PAR_TTL",
    "LATCHKEY_REQUIRE_PAR",
    "LATCHKEY_DPOP_NONCE",
    "LATCHKEY_LOGIN_PASSWORD_WORKERS",
    "LATCHKEY_LOGIN_PASSWORD_QUEUE",
    // [gateway]
    "LATCHKEY_GATEWAY_ENABLED",
    "LATCHKEY_GATEWAY_COOKIE_DOMAIN",
    "LATCHKEY_GATEWAY_DEVICE_BINDING",
    "LATCHKEY_GATEWAY_CACHE_SECS",
    "LATCHKEY_GATEWAY_OUTAGE_GRACE_SECS",
    "LATCHKEY_DYNAMIC_REGISTRATION_OPEN",
    "LATCHKEY_MTLS_TRUSTED_PROXIES",
    "LATCHKEY_MTLS_HEADER",
];

fn apply_env(s: &mut Settings, name: &str, v: String) -> Result<(), String> {
    match name {
        "LATCHKEY_ISSUER" => s.issuer = Some(v),
        "LATCHKEY_LISTEN" => s.listen = v,
        "LATCHKEY_DATA_DIR" => s.data_dir = v.into(),
        "LATCHKEY_KEYS_DIR" => s.keys_dir = v.into(),
        "LATCHKEY_DATABASE_URL" => s.database.url = Some(v),
        "LATCHKEY_DATABASE_MAX_CONNECTIONS" => s.database.max_connections = num(&v)?,
        "LATCHKEY_DATABASE_ACQUIRE_TIMEOUT" => s.database.acquire_timeout = num(&v)?,
        "LATCHKEY_EPHEMERAL_URL" => s.ephemeral.url = Some(v),
        "LATCHKEY_EPHEMERAL_PREFIX" => s.ephemeral.prefix = v,
        "LATCHKEY_EPHEMERAL_MAX_BYTES" => s.ephemeral.max_bytes = num(&v)?,
        "LATCHKEY_EPHEMERAL_MAX_VALUE_BYTES" => s.ephemeral.max_value_bytes = num(&v)?,
        "LATCHKEY_CODE_TTL" => s.tokens.code_ttl = num(&v)?,
        "LATCHKEY_ACCESS_TOKEN_TTL" => s.tokens.access_token_ttl = num(&v)?,
        "LATCHKEY_ID_TOKEN_TTL" => s.tokens.id_token_ttl = num(&v)?,
        "LATCHKEY_REFRESH_TOKEN_TTL" => s.tokens.refresh_token_ttl = num(&v)?,
        "LATCHKEY_SESSION_TTL" => s.tokens.session_ttl = num(&v)?,
        "LATCHKEY_EMAIL_CODE_TTL" => s.tokens.email_code_ttl = num(&v)?,
        "LATCHKEY_DEVICE_CODE_TTL" => s.tokens.device_code_ttl = num(&v)?,
        "LATCHKEY_RESET_TTL" => s.tokens.reset_ttl = num(&v)?,
        "LATCHKEY_RATE_LIMIT_PER_SECOND" => s.rate_limit.per_second = num(&v)?,
        "LATCHKEY_RATE_LIMIT_BURST" => s.rate_limit.burst = num(&v)?,
        "LATCHKEY_TRUSTED_PROXIES" => {
            s.rate_limit.trusted_proxies =
                v.split(',').map(str::trim).filter(|p| !p.is_empty()).map(Into::into).collect()
        }
        "LATCHKEY_LOGIN_MAX_FAILURES" => s.login.max_failures = num(&v)?,
        "LATCHKEY_JWKS_MAX_AGE" => s.keys.jwks_max_age = num(&v)?,
        "LATCHKEY_KEYS_ROTATE_EVERY" => s.keys.rotate_every = Some(num(&v)?),
        "LATCHKEY_LOGIN_REAUTH_SECS" => s.login.reauth_secs = num(&v)?,
        "LATCHKEY_LOGIN_EMAIL_FIRST_FACTOR" => s.login.email_first_factor = flag(&v)?,
        "LATCHKEY_LOGIN_IDLE_TIMEOUT" => s.login.idle_timeout = num(&v)?,
        "LATCHKEY_LOGIN_REMEMBER_ME_DEFAULT" => s.login.remember_me_default = flag(&v)?,
        "LATCHKEY_MAIL_SMTP_URL" => s.mail.smtp_url = Some(v),
        "LATCHKEY_MAIL_FROM" => s.mail.from = v,
        "LATCHKEY_MAIL_OUTBOX" => s.mail.outbox = Some(v.into()),
        "LATCHKEY_REFRESH_REUSE_GRACE_SECS" => s.tokens.refresh_reuse_grace_secs = num(&v)?,
        "LATCHKEY_AUDIT_RETENTION_DAYS" => s.audit.retention_days = num(&v)?,
        "LATCHKEY_PURGE_INTERVAL_SECS" => s.purge.interval_secs = num(&v)?,
        "LATCHKEY_PURGE_BATCH_SIZE" => s.purge.batch_size = num(&v)?,
        "LATCHKEY_HEADER_READ_TIMEOUT_SECS" => s.http.header_read_timeout_secs = num(&v)?,
        "LATCHKEY_MAX_CONNECTIONS" => s.http.max_connections = num(&v)?,
        "LATCHKEY_SHUTDOWN_DEADLINE_SECS" => s.http.shutdown_deadline_secs = num(&v)?,
        "LATCHKEY_METRICS_ENABLED" => s.metrics.enabled = flag(&v)?,
        "LATCHKEY_UI_DEFAULT_LOCALE" => s.ui.default_locale = v,
        "LATCHKEY_UI_THEME_DIR" => s.ui.theme_dir = Some(v.into()),
        "LATCHKEY_PASSWORD_MIN_LENGTH" => s.password.min_length = num(&v)?,
        "LATCHKEY_PASSWORD_MIN_SCORE" => s.password.min_score = num(&v)?,
        "LATCHKEY_PASSWORD_MIN_CLASSES" => s.password.min_classes = num(&v)?,
        "LATCHKEY_PASSWORD_HISTORY" => s.password.history = num(&v)?,
        "LATCHKEY_MAIL_PRODUCT_NAME" => s.mail.product_name = v,
        "LATCHKEY_REGISTRATION_ENABLED" => s.registration.enabled = flag(&v)?,
        "LATCHKEY_REGISTRATION_FIELDS" => s.registration.fields = fields_list(&v)?,
        "LATCHKEY_REGISTRATION_MIN_AGE" => s.registration.min_age = Some(num(&v)?),
        "LATCHKEY_REGISTRATION_GENDERS" => s.registration.genders = list(&v),
        "LATCHKEY_REGISTRATION_PHONE_REGION" => s.registration.phone_region = Some(v),
        "LATCHKEY_REGISTRATION_MOBILE_ONLY" => s.registration.mobile_only = flag(&v)?,
        "LATCHKEY_REGISTRATION_EMAIL_DOMAINS_ALLOWED" => s.registration.email_domains_allowed = list(&v),
        "LATCHKEY_REGISTRATION_EMAIL_DOMAINS_DENIED" => s.registration.email_domains_denied = list(&v),
        "LATCHKEY_REGISTRATION_VERIFY_TTL" => s.registration.verify_ttl = num(&v)?,
        "LATCHKEY_REGISTRATION_EDITABLE" => s.registration.editable = Some(list(&v)),
        "LATCHKEY_REGISTRATION_PER_IP_PER_HOUR" => s.registration.per_ip_per_hour = num(&v)?,
        "LATCHKEY_LOGIN_MAX_FLOWS_PER_BROWSER" => s.login.max_flows_per_browser = num(&v)?,
        "LATCHKEY_LOGIN_MAX_NEW_BROWSERS_PER_IP" => s.login.max_new_browsers_per_ip = num(&v)?,
        "LATCHKEY_REQUIRE_PKCE" => s.tokens.require_pkce = flag(&v)?,
        "LATCHKEY_PAR_TTL" => s.tokens.par_ttl = num(&v)?,
        "LATCHKEY_REQUIRE_PAR" => s.tokens.require_par = flag(&v)?,
        "LATCHKEY_DPOP_NONCE" => s.tokens.dpop_nonce = flag(&v)?,
        "LATCHKEY_LOGIN_PASSWORD_WORKERS" => s.login.password_workers = num(&v)?,
        "LATCHKEY_LOGIN_PASSWORD_QUEUE" => s.login.password_queue = num(&v)?,
        "LATCHKEY_GATEWAY_ENABLED" => s.gateway.enabled = flag(&v)?,
        "LATCHKEY_GATEWAY_COOKIE_DOMAIN" => s.gateway.cookie_domain = Some(v),
        "LATCHKEY_GATEWAY_DEVICE_BINDING" => s.gateway.device_binding = v.parse()?,
        "LATCHKEY_GATEWAY_CACHE_SECS" => s.gateway.cache_secs = num(&v)?,
        "LATCHKEY_GATEWAY_OUTAGE_GRACE_SECS" => s.gateway.outage_grace_secs = num(&v)?,
        "LATCHKEY_DYNAMIC_REGISTRATION_OPEN" => s.dynamic_registration.open = flag(&v)?,
        "LATCHKEY_MTLS_TRUSTED_PROXIES" => s.mtls.trusted_proxies = list(&v),
        "LATCHKEY_MTLS_HEADER" => s.mtls.header = v,
        _ => return Err("unknown variable".into()),
    }
    Ok(())
}

fn flag(v: &str) -> Result<bool, String> {
    match v.trim() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("'{v}' is not true or false")),
    }
}

fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.trim().parse().map_err(|_| format!("'{v}' is not a number"))
}

impl Settings {
    /// Loads the layers. `file` is `--config FILE`; without it `latchkey.toml` is read if present.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let settings = Self::load_unchecked(file)?;
        settings.check()?;
        Ok(settings)
    }

    /// The layers without the checks of [`Settings::problems`], for `config check` to list them.
    pub fn load_unchecked(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut settings = match file {
            Some(path) => Self::from_file(path)?,
            None if Path::new("latchkey.toml").exists() => Self::from_file(Path::new("latchkey.toml"))?,
            None => Self::default(),
        };
        for name in ENVIRONMENT {
            if let Ok(value) = std::env::var(name) {
                apply_env(&mut settings, name, value).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            }
        }
        for name in phone::ENVIRONMENT {
            if let Ok(value) = std::env::var(name) {
                phone::apply_env(&mut settings.phone, name, value).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            }
        }
        Ok(settings)
    }

    fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// One line per problem, as `latchkey config check` prints them.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if crate::pages::i18n::supported(&self.ui.default_locale).is_none() {
            out.push(format!(
                "ui.default_locale: '{}' is not one of the shipped languages ({})",
                self.ui.default_locale,
                crate::pages::i18n::shipped().join(", ")
            ));
        }
        if let Some(dir) = &self.ui.theme_dir {
            out.extend(crate::pages::theme::problems(dir));
        }
        if let Some(issuer) = &self.issuer {
            match url::Url::parse(issuer) {
                Ok(u) if u.query().is_some() || u.fragment().is_some() => {
                    out.push("issuer: must have no query or fragment".into())
                }
                Ok(u) if u.scheme() != "https" && !is_loopback(&u) => {
                    out.push("issuer: must be https (plain http only for localhost)".into())
                }
                Ok(_) => {}
                Err(e) => out.push(format!("issuer: {e}")),
            }
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            out.push(format!("listen: '{}' is not address:port", self.listen));
        }
        if let Some(url) = &self.database.url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            out.push("database.url: must be sqlite:… or postgres://…".into());
        }
        if self.database.max_connections == 0 {
            out.push("database.max_connections: must be at least 1".into());
        }
        if self.database.acquire_timeout == 0 {
            out.push("database.acquire_timeout: must be at least 1 second".into());
        }
        if let Some(url) = &self.ephemeral.url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            out.push("ephemeral.url: must be redis://… or rediss://… (unset: in-process state)".into());
        }
        for p in &self.rate_limit.trusted_proxies {
            if crate::http::client_ip::parse_net(p).is_none() {
                out.push(format!("rate_limit.trusted_proxies: '{p}' is not an address or CIDR range"));
            }
        }
        for p in &self.mtls.trusted_proxies {
            if crate::http::client_ip::parse_net(p).is_none() {
                out.push(format!("mtls.trusted_proxies: '{p}' is not an address or CIDR range"));
            }
        }
        if axum::http::HeaderName::try_from(self.mtls.header.as_str()).is_err() {
            out.push(format!("mtls.header: '{}' is not a header name", self.mtls.header));
        }
        let t = &self.tokens;
        for (name, v) in [
            ("tokens.code_ttl", t.code_ttl),
            ("tokens.access_token_ttl", t.access_token_ttl),
            ("tokens.id_token_ttl", t.id_token_ttl),
            ("tokens.refresh_token_ttl", t.refresh_token_ttl),
            ("tokens.session_ttl", t.session_ttl),
            ("tokens.login_flow_ttl", t.login_flow_ttl),
            ("tokens.email_code_ttl", t.email_code_ttl),
            ("tokens.upstream_state_ttl", t.upstream_state_ttl),
            ("tokens.device_code_ttl", t.device_code_ttl),
            ("tokens.reset_ttl", t.reset_ttl),
        ] {
            if v <= 0 {
                out.push(format!("{name}: must be positive"));
            }
        }
        if !(5..600).contains(&t.par_ttl) {
            out.push("tokens.par_ttl: 5 to 599 seconds (RFC 9126 §2.2, FAPI 2.0 §5.3.2.2)".into());
        }
        if t.code_ttl > 600 {
            out.push("tokens.code_ttl: at most 600 seconds (RFC 6749 §4.1.2)".into());
        }
        if self.keys.jwks_max_age < 0 {
            out.push("keys.jwks_max_age: must not be negative".into());
        }
        if let Some(every) = self.keys.rotate_every
            && every <= self.keys.jwks_max_age + crate::keys::REFRESH.as_secs() as i64
        {
            out.push(
                "keys.rotate_every: must exceed keys.jwks_max_age plus 2 s, or a next key could never be old enough"
                    .into(),
            );
        }
        if self.login.max_flows_per_browser == 0 || self.login.max_new_browsers_per_ip == 0 {
            out.push("login.max_flows_per_browser and login.max_new_browsers_per_ip: must be at least 1".into());
        }
        if self.login.password_workers == 0 || self.login.password_queue == 0 {
            out.push("login.password_workers and login.password_queue: must be at least 1".into());
        }
        if let Err(e) = self.mail.from.parse::<lettre::message::Mailbox>() {
            out.push(format!("mail.from: '{}' is not `Name <address>` or an address: {e}", self.mail.from));
        }
        if let Some(url) = &self.mail.smtp_url {
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "smtp" | "smtps") && u.host_str().is_some() => {}
                _ => {
                    out.push(format!("mail.smtp_url: '{}' is not smtp://host:port or smtps://host:port", redacted(url)))
                }
            }
        }
        if self.login.reauth_secs <= 0 {
            out.push("login.reauth_secs: must be positive (else no sign-in is ever recent enough)".into());
        }
        // "Last used" is written at most once a minute, so a shorter idle timeout would end
        // sessions in use.
        let idle = self.login.idle_timeout;
        if idle != 0 && (idle < 2 * crate::domain::session::TOUCH_EVERY || idle > t.session_ttl) {
            out.push("login.idle_timeout: 0 (off), or from 120 seconds to tokens.session_ttl".into());
        }
        if t.refresh_reuse_grace_secs < 0 || t.refresh_reuse_grace_secs > 300 {
            out.push("tokens.refresh_reuse_grace_secs: 0 (off) to 300 seconds".into());
        }
        if self.audit.retention_days <= 0 {
            out.push("audit.retention_days: must be at least 1".into());
        }
        if self.purge.interval_secs == 0 || self.purge.batch_size <= 0 {
            out.push("purge.interval_secs and purge.batch_size: must be at least 1".into());
        }
        if self.http.header_read_timeout_secs == 0 || self.http.max_connections == 0 {
            out.push("http.header_read_timeout_secs and http.max_connections: must be at least 1".into());
        }
        let pw = &self.password;
        if pw.min_length < 8 || pw.max_length < pw.min_length.max(64) || pw.max_length > 1024 {
            out.push("password: min_length at least 8, max_length from 64 (and min_length) to 1024".into());
        }
        if pw.history > 24 {
            out.push("password.history: at most 24 (each remembered password costs an argon2 check per change)".into());
        }
        if pw.min_score > 4 || pw.min_classes > 4 {
            out.push("password: min_score and min_classes are 0 to 4".into());
        }
        out.extend(crate::domain::registration::problems(&self.registration));
        out.extend(upstream::problems(&self.upstream));
        out.extend(crate::gateway::rules::problems(self));
        out.extend(phone::problems(&self.phone));
        out
    }

    fn check(&self) -> anyhow::Result<()> {
        let problems = self.problems();
        if problems.is_empty() { Ok(()) } else { anyhow::bail!("invalid settings: {}", problems.join("; ")) }
    }

    pub fn outbox(&self) -> PathBuf {
        self.mail.outbox.clone().unwrap_or_else(|| self.data_dir.join("outbox"))
    }

    pub fn database_url(&self) -> String {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/latchkey.db?mode=rwc", self.data_dir.display()))
    }
}

/// The database file a `sqlite:` URL names; None for another database or an in-memory one.
pub fn sqlite_file(url: &str) -> Option<&std::path::Path> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    let in_memory = file.is_empty() || file.starts_with(":memory:") || url.contains("mode=memory");
    (!in_memory).then(|| std::path::Path::new(file))
}

/// A store URL fit for logs and error messages: any password replaced by `***`.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

pub fn is_loopback(u: &url::Url) -> bool {
    matches!(u.host_str(), Some("localhost") | Some("127.0.0.1") | Some("[::1]"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_file_of_a_sqlite_url() {
        use std::path::Path;
        assert_eq!(super::sqlite_file("sqlite://data/latchkey.db?mode=rwc"), Some(Path::new("data/latchkey.db")));
        assert_eq!(super::sqlite_file("sqlite:/var/lib/latchkey.db"), Some(Path::new("/var/lib/latchkey.db")));
        assert_eq!(super::sqlite_file("sqlite::memory:"), None);
        assert_eq!(super::sqlite_file("sqlite://shared?mode=memory&cache=shared"), None);
        assert_eq!(super::sqlite_file("postgres://localhost/db"), None);
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(super::redacted("postgres://app:s3cret@db:5432/latchkey"), "postgres://app:***@db:5432/latchkey");
        assert_eq!(super::redacted("redis://:s3cret@cache:6379/0"), "redis://:***@cache:6379/0");
        assert_eq!(super::redacted("sqlite://data/latchkey.db?mode=rwc"), "sqlite://data/latchkey.db?mode=rwc");
    }
}
