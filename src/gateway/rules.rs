//! The access rules of `[[gateway.rules]]`, compiled once: which request needs what. First
//! match wins; a request no rule matches gets `gateway.default_policy`. Pure: no HTTP, no store.
//! [`problems`] is what `config check` (and every start) reports about them.

use crate::config::Settings;
use crate::config::gateway::{Gateway, Policy, Rule};
use crate::http::client_ip::parse_net;
use ipnet::IpNet;
use regex::Regex;
use std::net::IpAddr;

/// The request a proxy asks about.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    /// Lower case, without port.
    pub host: &'a str,
    pub path: &'a str,
    pub method: &'a str,
    pub client: IpAddr,
}

/// What the first matching rule asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need<'a> {
    pub policy: Policy,
    /// Groups one of which the user must be in, or usernames one of which the user must be;
    /// both empty: any signed-in user.
    pub groups: &'a [String],
    pub users: &'a [String],
}

impl Need<'_> {
    /// Whether a user with `username` in `groups` may pass.
    pub fn admits(&self, username: &str, groups: &[String]) -> bool {
        (self.groups.is_empty() && self.users.is_empty())
            || self.users.iter().any(|u| u == username)
            || self.groups.iter().any(|g| groups.contains(g))
    }

    /// The `acr` level this need asks (none for bypass and deny).
    pub fn level(&self) -> Option<u8> {
        match self.policy {
            Policy::OneFactor => Some(1),
            Policy::TwoFactor => Some(2),
            Policy::Bypass | Policy::Deny => None,
        }
    }
}

#[derive(Debug)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: held as `.example.com`, matching any name that ends with it.
    Subdomains(String),
}

impl HostPattern {
    fn parse(s: &str) -> Self {
        let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
        match s.strip_prefix("*.") {
            Some(rest) => Self::Subdomains(format!(".{rest}")),
            None => Self::Exact(s),
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => h == host,
            Self::Subdomains(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }

    fn name(&self) -> &str {
        match self {
            Self::Exact(h) => h,
            Self::Subdomains(s) => &s[1..],
        }
    }
}

#[derive(Debug)]
struct Compiled {
    hosts: Vec<HostPattern>,
    paths: Vec<String>,
    regex: Option<Regex>,
    methods: Vec<String>,
    networks: Vec<IpNet>,
    policy: Policy,
    groups: Vec<String>,
    users: Vec<String>,
}

impl Compiled {
    fn matches(&self, t: &Target) -> bool {
        (self.hosts.is_empty() || self.hosts.iter().any(|h| h.matches(t.host)))
            && (self.paths.is_empty() || self.paths.iter().any(|p| t.path.starts_with(p.as_str())))
            && self.regex.as_ref().is_none_or(|r| r.is_match(t.path))
            && (self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(t.method)))
            && (self.networks.is_empty() || self.networks.iter().any(|n| n.contains(&t.client)))
    }
}

/// The compiled rules.
#[derive(Debug)]
pub struct Rules {
    rules: Vec<Compiled>,
    default: Policy,
}

const NO_ONE: &[String] = &[];

impl Rules {
    /// Compiles the rules, or says what is wrong with them (one line each).
    pub fn compile(g: &Gateway) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        for (i, r) in g.rules.iter().enumerate() {
            match compile_rule(r) {
                Ok(c) => rules.push(c),
                Err(e) => problems.extend(e.into_iter().map(|e| format!("gateway.rules[{i}]: {e}"))),
            }
        }
        if problems.is_empty() { Ok(Self { rules, default: g.default_policy }) } else { Err(problems) }
    }

    /// What the first rule matching `t` needs.
    pub fn need(&self, t: &Target) -> Need<'_> {
        match self.rules.iter().find(|r| r.matches(t)) {
            Some(r) => Need { policy: r.policy, groups: &r.groups, users: &r.users },
            None => Need { policy: self.default, groups: NO_ONE, users: NO_ONE },
        }
    }

    /// Whether a rule names `host` (by name or wildcard): only those hosts are returned to after
    /// sign-in, so the sign-in page is no open redirect.
    pub fn covers(&self, host: &str) -> bool {
        self.rules.iter().any(|r| r.hosts.iter().any(|h| h.matches(host)))
    }
}

fn compile_rule(r: &Rule) -> Result<Compiled, Vec<String>> {
    let mut problems = Vec::new();
    let hosts: Vec<HostPattern> = r.hosts.iter().map(|h| HostPattern::parse(h)).collect();
    for h in &hosts {
        let name = h.name();
        if name.is_empty() || name.contains(['*', '/', ':', ' ']) {
            problems.push(format!("hosts: '{name}' is not a host name or *.domain"));
        }
    }
    for p in &r.paths {
        if !p.starts_with('/') {
            problems.push(format!("paths: '{p}' must start with /"));
        }
    }
    let regex = match &r.path_regex {
        Some(re) => match Regex::new(re) {
            Ok(re) => Some(re),
            Err(e) => {
                problems.push(format!("path_regex: {e}"));
                None
            }
        },
        None => None,
    };
    for m in &r.methods {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
            problems.push(format!("methods: '{m}' is not an HTTP method"));
        }
    }
    let mut networks = Vec::new();
    for n in &r.networks {
        match parse_net(n) {
            Some(net) => networks.push(net),
            None => problems.push(format!("networks: '{n}' is not an address or CIDR range")),
        }
    }
    if matches!(r.policy, Policy::Bypass | Policy::Deny) && !(r.groups.is_empty() && r.users.is_empty()) {
        problems.push("groups and users apply only to one_factor and two_factor rules".into());
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Compiled {
        hosts,
        paths: r.paths.clone(),
        regex,
        methods: r.methods.clone(),
        networks,
        policy: r.policy,
        groups: r.groups.clone(),
        users: r.users.clone(),
    })
}

/// Whether `host` is `domain` or under it.
pub fn within(host: &str, domain: &str) -> bool {
    let (host, domain) = (host.to_ascii_lowercase(), domain.trim_start_matches('.').to_ascii_lowercase());
    host == domain || host.ends_with(&format!(".{domain}"))
}

/// What is wrong with `[gateway]`, one line per problem (nothing when it is off).
pub fn problems(s: &Settings) -> Vec<String> {
    let g = &s.gateway;
    if !g.enabled {
        return Vec::new();
    }
    let mut out = Vec::new();
    match &g.cookie_domain {
        None => out.push("gateway.cookie_domain: must be set when the gateway is enabled".into()),
        Some(domain) => {
            if domain.is_empty() || domain.contains(['*', '/', ':', ' ']) {
                out.push(format!("gateway.cookie_domain: '{domain}' is not a domain name"));
            }
            let issuer_host = s.issuer.as_deref().and_then(|i| url::Url::parse(i).ok()?.host_str().map(str::to_owned));
            if let Some(host) = issuer_host
                && !within(&host, domain)
            {
                out.push(format!(
                    "gateway.cookie_domain: the issuer's host '{host}' must be '{domain}' or under it, so that \
                     sign-in can set the gateway cookie"
                ));
            }
            for (i, r) in g.rules.iter().enumerate() {
                for h in &r.hosts {
                    let name = HostPattern::parse(h);
                    if !within(name.name(), domain) {
                        out.push(format!(
                            "gateway.rules[{i}]: host '{h}' is outside gateway.cookie_domain, where the gateway cookie \
                             is never sent"
                        ));
                    }
                }
            }
        }
    }
    if let Err(e) = Rules::compile(g) {
        out.extend(e);
    }
    if g.session_ttl <= 0 || g.idle_timeout < 2 * crate::domain::session::TOUCH_EVERY || g.idle_timeout > g.session_ttl
    {
        out.push("gateway.session_ttl must be positive, gateway.idle_timeout from 120 seconds to it".into());
    }
    if !(0..=2).contains(&g.cache_secs) {
        out.push("gateway.cache_secs: 0 to 2 (it is how late a logout may reach another node)".into());
    }
    if !(0..=3600).contains(&g.outage_grace_secs) {
        out.push("gateway.outage_grace_secs: 0 (fail closed) to 3600".into());
    }
    let h = &g.headers;
    for (name, v) in [("user", &h.user), ("email", &h.email), ("name", &h.name), ("groups", &h.groups)] {
        if axum::http::HeaderName::from_bytes(v.as_bytes()).is_err() {
            out.push(format!("gateway.headers.{name}: '{v}' is not a header name"));
        }
    }
    if g.cookie_name.is_empty() || !g.cookie_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        out.push("gateway.cookie_name: letters, digits, _ and - only".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(hosts: &[&str], policy: Policy) -> Rule {
        Rule { hosts: hosts.iter().map(|h| h.to_string()).collect(), policy, ..Default::default() }
    }

    fn target<'a>(host: &'a str, path: &'a str, method: &'a str, client: &str) -> Target<'a> {
        Target { host, path, method, client: client.parse().unwrap() }
    }

    #[test]
    fn first_match_wins_by_host_path_method_and_network() {
        let g = Gateway {
            rules: vec![
                Rule { paths: vec!["/public/".into()], ..rule(&["app.example.com"], Policy::Bypass) },
                Rule { path_regex: Some("^/admin(/|$)".into()), ..rule(&["*.example.com"], Policy::TwoFactor) },
                Rule { methods: vec!["DELETE".into()], ..rule(&["*.example.com"], Policy::Deny) },
                Rule { networks: vec!["10.0.0.0/8".into()], ..rule(&["intranet.example.com"], Policy::Bypass) },
                Rule { groups: vec!["ops".into()], ..rule(&["*.example.com"], Policy::OneFactor) },
            ],
            ..Default::default()
        };
        let rules = Rules::compile(&g).unwrap();
        let need = |t: Target| rules.need(&t).policy;
        assert_eq!(need(target("app.example.com", "/public/x", "GET", "1.2.3.4")), Policy::Bypass);
        assert_eq!(need(target("app.example.com", "/admin", "GET", "1.2.3.4")), Policy::TwoFactor);
        assert_eq!(need(target("app.example.com", "/administrator", "GET", "1.2.3.4")), Policy::OneFactor);
        assert_eq!(need(target("app.example.com", "/x", "delete", "1.2.3.4")), Policy::Deny);
        assert_eq!(need(target("intranet.example.com", "/", "GET", "10.1.2.3")), Policy::Bypass, "from the intranet");
        assert_eq!(need(target("intranet.example.com", "/", "GET", "1.2.3.4")), Policy::OneFactor, "from elsewhere");
        assert_eq!(need(target("example.com", "/", "GET", "1.2.3.4")), Policy::Deny, "*.x is not x: the default");
        assert_eq!(need(target("other.org", "/", "GET", "1.2.3.4")), Policy::Deny);
        let n = rules.need(&target("app.example.com", "/", "GET", "1.2.3.4"));
        assert!(n.admits("bob", &["ops".into()]) && !n.admits("bob", &["dev".into()]));
        assert!(rules.covers("app.example.com") && rules.covers("x.example.com") && !rules.covers("evil.org"));
    }

    #[test]
    fn bad_rules_are_reported_one_line_each() {
        let mut s = Settings { issuer: Some("https://auth.example.com".into()), ..Default::default() };
        s.gateway.enabled = true;
        s.gateway.cookie_domain = Some("example.com".into());
        s.gateway.rules = vec![
            Rule {
                path_regex: Some("(".into()),
                networks: vec!["nope".into()],
                ..rule(&["a.example.com"], Policy::OneFactor)
            },
            Rule { groups: vec!["g".into()], ..rule(&["evil.org"], Policy::Bypass) },
        ];
        let p = problems(&s);
        assert!(p.iter().any(|l| l.starts_with("gateway.rules[0]: path_regex")), "{p:?}");
        assert!(p.iter().any(|l| l.starts_with("gateway.rules[0]: networks")), "{p:?}");
        assert!(p.iter().any(|l| l.contains("'evil.org' is outside")), "{p:?}");
        assert!(p.iter().any(|l| l.starts_with("gateway.rules[1]: groups")), "{p:?}");
        s.gateway.cookie_domain = Some("other.com".into());
        assert!(problems(&s).iter().any(|l| l.contains("issuer's host")));
        assert!(within("a.b.example.com", "example.com") && !within("badexample.com", "example.com"));
    }
}
