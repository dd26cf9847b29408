//! Responses and the browser: a cookie-keeping user agent that never follows redirects, drives
//! the authorization flow through login and consent pages, and reports where it was sent back.

use super::*;

#[derive(Clone)]
pub struct Resp {
    pub what: String,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body: String = self.body.chars().take(3000).collect();
        write!(f, "\n[{}] -> {}\nheaders: {:?}\nbody: {}\n", self.what, self.status, self.headers, body)
    }
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }
    pub fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308) && self.location().is_some()
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("response is not JSON ({e}): {self:?}"))
    }
    /// The media type of `Content-Type`, without parameters, lower-cased.
    pub fn media_type(&self) -> String {
        self.header("content-type").unwrap_or("").split(';').next().unwrap().trim().to_ascii_lowercase()
    }
    pub fn forms(&self) -> Vec<Form> {
        forms(&self.body)
    }
    /// Asserts a token-endpoint style error (RFC 6749 §5.2).
    pub fn assert_oauth_error(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "expected {status} {error}: {self:?}");
        assert_eq!(self.media_type(), "application/json", "error Content-Type: {self:?}");
        let cc = self.header("cache-control").unwrap_or("");
        assert!(cc.to_ascii_lowercase().contains("no-store"), "error without Cache-Control: no-store: {self:?}");
        let v = self.json();
        assert_eq!(v["error"], error, "wrong error code: {self:?}");
        check_error_chars(&v);
    }
    /// Asserts 401 `invalid_client` with a `WWW-Authenticate: Basic realm=...` challenge.
    pub fn assert_invalid_client(&self) {
        self.assert_oauth_error(401, "invalid_client");
        let wa = self
            .header("www-authenticate")
            .unwrap_or_else(|| panic!("401 invalid_client without WWW-Authenticate: {self:?}"));
        assert!(
            wa.to_ascii_lowercase().starts_with("basic") && wa.contains("realm="),
            "WWW-Authenticate should be a Basic challenge with a realm: {wa}"
        );
    }
    /// Asserts an HTML error page: status 400, no `Location`.
    pub fn assert_error_page(&self) {
        assert_eq!(self.status, 400, "expected an error page: {self:?}");
        assert!(self.location().is_none(), "an error page must not redirect: {self:?}");
        assert_eq!(self.media_type(), "text/html", "error page: {self:?}");
    }
}

pub async fn send_recorded(rec: &Recorder, req: reqwest::RequestBuilder) -> Resp {
    let (client, req) = req.build_split();
    let req = req.expect("request builds");
    let what = format!("{} {}", req.method(), req.url());
    let response = client.execute(req).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status().as_u16();
    rec.record(what.clone(), status);
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("response body");
    Resp { what, status, headers, body: String::from_utf8_lossy(&bytes).to_string() }
}

/// A user agent: keeps cookies, never follows redirects, records statuses.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
    pub issuer: String,
    pub(super) rec: Recorder,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    Allow,
    Deny,
    /// A consent page is a test failure.
    NotExpected,
}

impl Browser {
    /// The same browser (same cookie jar) talking to another node of the deployment.
    pub fn on(&self, server: &Server) -> Browser {
        Browser {
            client: self.client.clone(),
            base: server.base.clone(),
            issuer: server.issuer.clone(),
            rec: self.rec.clone(),
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        send_recorded(&self.rec, req).await
    }

    /// Resolves a (possibly relative) URL against the OP's base URL.
    pub fn resolve(&self, url: &str) -> String {
        Url::parse(&self.base).unwrap().join(url).unwrap_or_else(|e| panic!("bad URL {url:?}: {e}")).to_string()
    }

    /// Whether URL belongs to the OP (as opposed to a client's redirect URI).
    pub fn is_internal(&self, url: &str) -> bool {
        let u = Url::parse(url).unwrap();
        let b = Url::parse(&self.base).unwrap();
        let i = Url::parse(&self.issuer).unwrap();
        u.origin() == b.origin() || u.origin() == i.origin()
    }

    pub async fn get(&self, url: &str) -> Resp {
        let url = self.resolve(url);
        self.send(self.client.get(url)).await
    }

    pub async fn post_form<K: AsRef<str>, V: AsRef<str>>(&self, url: &str, params: &[(K, V)]) -> Resp {
        let url = self.resolve(url);
        self.send(
            self.client.post(url).header("Content-Type", "application/x-www-form-urlencoded").body(encode_form(params)),
        )
        .await
    }

    pub fn authorize_url(&self, params: &[(&str, &str)]) -> String {
        format!("{}/authorize?{}", self.base, encode_form(params))
    }

    /// GET /authorize with the parameters in the given order.
    pub async fn authorize(&self, params: &[(&str, &str)]) -> Resp {
        let url = self.authorize_url(params);
        self.send(self.client.get(url)).await
    }

    /// POST /authorize with a form body (OIDC Core §3.1.2.1).
    pub async fn authorize_post(&self, params: &[(&str, &str)]) -> Resp {
        self.post_form("/authorize", params).await
    }

    /// Follows the `Location` of RESP, which must point into the OP.
    pub async fn follow(&self, resp: &Resp) -> Resp {
        let loc = resp.location().unwrap_or_else(|| panic!("expected a redirect: {resp:?}"));
        let target = self.resolve(loc);
        assert!(self.is_internal(&target), "redirect leaves the OP: {resp:?}");
        self.get(&target).await
    }

    /// Submits FORM with all its named inputs, overriding/adding FIELDS.
    pub async fn submit(&self, form: &Form, fields: &[(&str, &str)]) -> Resp {
        assert_eq!(form.method, "post", "form method: {form:?}");
        let mut params: Vec<(String, String)> = form
            .inputs
            .iter()
            .filter(|i| !matches!(i.kind.as_str(), "submit" | "button" | "image" | "reset"))
            .filter(|i| !matches!(i.kind.as_str(), "checkbox" | "radio") || i.checked)
            .filter(|i| !fields.iter().any(|(k, _)| *k == i.name))
            .map(|i| (i.name.clone(), i.value.clone()))
            .collect();
        for (k, v) in fields {
            params.push((k.to_string(), v.to_string()));
        }
        self.post_form(&form.action, &params).await
    }

    /// Fills in the login page PAGE (a 200 HTML page with a password form) and posts it.
    pub async fn login(&self, page: &Resp, user: &str, password: &str) -> Resp {
        let page = if page.is_redirect() { self.follow(page).await } else { page.clone() };
        let form = login_form(&page).unwrap_or_else(|| panic!("not a login page: {page:?}"));
        self.submit(&form, &[("username", user), ("password", password)]).await
    }

    /// Answers the consent page PAGE (or the redirect to it).
    pub async fn consent(&self, page: &Resp, allow: bool) -> Resp {
        let page = if page.is_redirect() { self.follow(page).await } else { page.clone() };
        let form = consent_form(&page).unwrap_or_else(|| panic!("not a consent page: {page:?}"));
        self.submit(&form, &[("decision", if allow { "allow" } else { "deny" })]).await
    }

    /// Drives the interaction from RESP (the answer of /authorize or of a login/consent POST)
    /// until the browser is sent back to the client, by redirect or by form_post.
    pub async fn complete(&self, resp: Resp, creds: Option<(&str, &str)>, decision: Decision) -> Outcome {
        let mut resp = resp;
        let mut logins = 0;
        let mut consents = 0;
        for _ in 0..12 {
            if resp.is_redirect() {
                let target = self.resolve(resp.location().unwrap());
                if self.is_internal(&target) {
                    resp = self.get(&target).await;
                    continue;
                }
                return Outcome::from_redirect(&target, logins, consents);
            }
            if resp.status == 200 {
                if let Some(form) = login_form(&resp) {
                    let (u, p) = creds.unwrap_or_else(|| panic!("unexpected login page: {resp:?}"));
                    logins += 1;
                    resp = self.submit(&form, &[("username", u), ("password", p)]).await;
                    continue;
                }
                if let Some(form) = consent_form(&resp) {
                    let value = match decision {
                        Decision::Allow => "allow",
                        Decision::Deny => "deny",
                        Decision::NotExpected => panic!("unexpected consent page: {resp:?}"),
                    };
                    consents += 1;
                    resp = self.submit(&form, &[("decision", value)]).await;
                    continue;
                }
                if let Some(form) =
                    resp.forms().into_iter().find(|f| f.method == "post" && !self.is_internal(&self.resolve(&f.action)))
                {
                    return Outcome::from_form_post(&resp, &form, logins, consents);
                }
            }
            panic!("unexpected response in the authorization flow: {resp:?}");
        }
        panic!("too many steps in the authorization flow");
    }

    pub async fn authorize_and_complete(
        &self,
        params: &[(&str, &str)],
        creds: Option<(&str, &str)>,
        decision: Decision,
    ) -> Outcome {
        let resp = self.authorize(params).await;
        self.complete(resp, creds, decision).await
    }
}

/// Where the browser was sent back to the client, and with what.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The callback URL without its query (redirect) or the form's action (form_post).
    pub target: String,
    /// The full callback URL (redirect only).
    pub url: Option<Url>,
    pub params: Vec<(String, String)>,
    pub form_post: bool,
    /// How many login and consent pages were shown and answered.
    pub logins: u32,
    pub consents: u32,
    /// For form_post: the page that carried the form.
    pub page: Option<Resp>,
}

impl Outcome {
    fn from_redirect(target: &str, logins: u32, consents: u32) -> Outcome {
        let url = Url::parse(target).unwrap();
        let mut bare = url.clone();
        bare.set_query(None);
        bare.set_fragment(None);
        Outcome {
            target: bare.to_string(),
            params: url.query_pairs().into_owned().collect(),
            url: Some(url),
            form_post: false,
            logins,
            consents,
            page: None,
        }
    }

    fn from_form_post(page: &Resp, form: &Form, logins: u32, consents: u32) -> Outcome {
        Outcome {
            target: form.action.clone(),
            url: None,
            params: form
                .inputs
                .iter()
                .filter(|i| !i.name.is_empty())
                .map(|i| (i.name.clone(), i.value.clone()))
                .collect(),
            form_post: true,
            logins,
            consents,
            page: Some(page.clone()),
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn count(&self, name: &str) -> usize {
        self.params.iter().filter(|(k, _)| k == name).count()
    }

    /// The `code`, asserting there is exactly one and no `error`.
    pub fn code(&self) -> String {
        assert!(self.param("error").is_none(), "authorization failed: {self:?}");
        assert_eq!(self.count("code"), 1, "one code expected: {self:?}");
        self.param("code").unwrap().to_string()
    }

    /// The `error`, asserting there is no `code`.
    pub fn error(&self) -> &str {
        assert!(self.param("code").is_none(), "code in an error response: {self:?}");
        if let Some(url) = &self.url {
            assert!(!url.fragment().unwrap_or("").contains("code="), "code in the fragment: {self:?}");
        }
        self.param("error").unwrap_or_else(|| panic!("no error in the response: {self:?}"))
    }
}
