//! The state every handler shares: settings, the two stores, signing keys, the password pool,
//! mail, the clock and the caches built once. It imports no handler module, so any layer may
//! hold it without an import loop.

use crate::clock::Clock;
use crate::config::Settings;
use crate::ephemeral::Ephemeral;
use crate::keys::{Alg, KeyRing};
use crate::mail::Mailer;
use crate::passwords::Passwords;
use crate::store::Store;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    /// The issuer identifier, exactly as it appears in `iss` (no trailing slash).
    pub issuer: String,
    pub store: Store,
    pub ephemeral: Ephemeral,
    pub keys: Arc<KeyRing>,
    pub passwords: Passwords,
    pub mail: Mailer,
    pub clock: Clock,
    /// Cookies carry `Secure` (and the `__Host-` prefix) unless the issuer is plain-http.
    pub secure_cookies: bool,
    /// The discovery document, built once per set of signing algorithms.
    pub discovery: ByAlgs,
    /// For calls to upstream identity providers: short timeouts, no redirects.
    pub upstream_http: reqwest::Client,
    /// Clients' JWK Sets fetched from their `jwks_uri`.
    pub client_keys: crate::keys::client_keys::ClientKeyCache,
    /// The WebAuthn relying party; none when the issuer cannot be one (an IP address).
    pub webauthn: Option<webauthn_rs::Webauthn>,
    /// Sign-in codes by SMS and WhatsApp (`[phone]`).
    pub phone: crate::phone::PhoneSender,
    /// The templates and stylesheet: built-in, or the operator's theme over them.
    pub theme: Arc<crate::pages::Theme>,
    /// `ui.default_locale` when it is shipped, else the templates' own language.
    pub default_locale: String,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// The state every handler shares. The mailer and the theme come from `settings`; either
    /// fails at start when its setting cannot be used (an SMTP URL, a theme template).
    pub fn new(
        settings: Settings,
        issuer: String,
        store: Store,
        ephemeral: Ephemeral,
        keys: Arc<KeyRing>,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let mail = Mailer::from_settings(&settings, clock.clone())?;
        let theme = crate::pages::Theme::load(settings.ui.theme_dir.as_deref())?;
        let secure_cookies = !issuer.starts_with("http://");
        let passwords = Passwords::new(settings.login.password_workers, settings.login.password_queue);
        let webauthn =
            crate::webauthn::relying_party(&issuer).inspect_err(|e| tracing::warn!("passkeys are off: {e}")).ok();
        let phone = crate::phone::PhoneSender::from_settings(&settings, clock.clone());
        Ok(Self(Arc::new(Inner {
            issuer,
            store,
            ephemeral,
            keys,
            passwords,
            mail,
            clock,
            secure_cookies,
            discovery: Default::default(),
            upstream_http: upstream_http(),
            client_keys: Default::default(),
            webauthn,
            phone,
            default_locale: crate::pages::i18n::supported(&settings.ui.default_locale)
                .unwrap_or_else(|| crate::pages::i18n::SOURCE.to_owned()),
            theme: Arc::new(theme),
            settings,
        })))
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Sends `mail` off the request path: the answer goes out at once, and takes the same time
    /// whether or not a message was sent (no enumeration by timing). A failure is logged.
    pub fn send_later(&self, mail: crate::mail::Mail) {
        let state = self.clone();
        tokio::spawn(async move {
            let to = crate::mail::masked(&mail.to);
            if let Err(e) = state.mail.send(mail).await {
                tracing::warn!(to = %to, "mail not sent: {e:#}");
            }
        });
    }

    /// An absolute URL under the issuer.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// How long one call to an upstream may take: an unreachable provider gives a readable page
/// quickly rather than a hanging sign-in.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client for upstream calls: short timeouts, and redirects never followed (as
/// `openidconnect` advises, against SSRF through a redirecting endpoint).
pub fn upstream_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("a TLS backend is compiled in")
}

/// A document derived from the signing algorithms on offer, rebuilt only when they change.
#[derive(Default)]
pub struct ByAlgs(RwLock<(Vec<Alg>, String)>);

impl ByAlgs {
    pub fn get(&self, algs: Vec<Alg>, build: impl FnOnce(&[Alg]) -> String) -> String {
        if let Some(doc) = self.0.read().ok().filter(|c| c.0 == algs && !c.1.is_empty()).map(|c| c.1.clone()) {
            return doc;
        }
        let doc = build(&algs);
        *self.0.write().unwrap() = (algs, doc.clone());
        doc
    }
}
