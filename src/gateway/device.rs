//! Device binding: each gateway session records a fingerprint of the device it was made on —
//! a keyed hash (HMAC under a key derived from the key-encryption key, `store::sealed`) over
//! stable traits of the request: the browser family and platform (from `User-Agent`, without
//! its version, which changes with every update) and, with `gateway.device_network`, the
//! client's network (an IPv4 /24, an IPv6 /64). Those traits are few enough to guess from an
//! unkeyed hash, and the session keeps nothing else of the browser or the address. A check from
//! a different fingerprint is audited or ends the session (`gateway.device_binding`).
//!
//! A sign-in from a fingerprint the user has not signed in from before is audited and, with
//! `gateway.new_device_mail`, mailed to them. The devices seen are kept per user in the
//! ephemeral store for [`SEEN_TTL`] (on the in-process store, until the server restarts).
//! Once the previous KEK is gone after `keys rewrap`, a session made before the rewrap is
//! judged a different device (ended under `enforce`), and each device is new once more.

use crate::mail::Mail;
use crate::pages::Template;
use crate::state::AppState;
use crate::store::AuditEvent;
use crate::store::sealed::Hashes;
use axum::http::HeaderMap;
use std::net::IpAddr;
use std::time::Duration;

/// How long a device stays known for its user.
pub const SEEN_TTL: Duration = Duration::from_secs(180 * 24 * 3600);
/// The devices remembered per user (oldest forgotten first).
const SEEN_CAP: usize = 32;

/// The browser family and platform of a `User-Agent`: its summary without version numbers.
fn traits(user_agent: Option<&str>) -> String {
    let summary = crate::domain::user_agent::summary(user_agent);
    summary.split(' ').filter(|w| !w.bytes().all(|b| b.is_ascii_digit())).collect::<Vec<_>>().join(" ")
}

/// The network part of the client address that counts, when `network` is on.
fn network(client: IpAddr) -> String {
    match crate::http::client_ip::limit_key(client) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        v6 => format!("{v6}/64"),
    }
}

/// The traits of the device a request came from, which its fingerprint is a keyed hash of.
fn device_traits(headers: &HeaderMap, client: IpAddr, with_network: bool) -> String {
    let ua = crate::login::session::user_agent(headers);
    let mut t = traits(ua.as_deref());
    if with_network {
        t.push('\n');
        t.push_str(&network(client));
    }
    t
}

/// The fingerprint of the device a request came from: `current` is what a new session keeps;
/// a session's own matches `current`, or `previous` while a KEK rewrap is under way.
pub fn fingerprint(state: &AppState, headers: &HeaderMap, client: IpAddr) -> Hashes {
    let traits = device_traits(headers, client, state.settings.gateway.device_network);
    state.store.device_hashes(&traits)
}

/// Whether `stored` (a session's fingerprint) is the device `now` was taken of.
pub fn same(now: &Hashes, stored: &str) -> bool {
    let eq = |h: &str| crate::crypto::constant_time_eq(h.as_bytes(), stored.as_bytes());
    eq(&now.current) | eq(&now.previous)
}

/// Notes that `user_id` signed in from `device`; the first time, audits it and (when the
/// operator asks) mails the user.
pub async fn note_sign_in(
    state: &AppState,
    user_id: &str,
    device: &Hashes,
    browser: &str,
    ip: IpAddr,
    host: &str,
) -> crate::ephemeral::Result<()> {
    let key = format!("gw-devices:{user_id}");
    let seen = state.ephemeral.get(&key).await?.unwrap_or_default();
    if seen.split(' ').any(|d| same(device, d)) {
        return Ok(());
    }
    state.ephemeral.enlist(&key, &device.current, SEEN_CAP, SEEN_TTL).await?;
    let now = state.now();
    let event = AuditEvent::new("gateway.new_device").user(user_id).ip(Some(ip.to_string()));
    state.store.audit(event.detail("browser", browser).detail("host", host), now).await;
    if state.settings.gateway.new_device_mail
        && let Ok(Some(user)) = state.store.user(user_id).await
        && !user.email.is_empty()
    {
        state.send_later(new_device_mail(state, &user.email, &user.username, browser, &ip.to_string(), host));
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct NewDeviceText<'a> {
    product: &'a str,
    username: &'a str,
    device: &'a str,
    ip: &'a str,
    host: &'a str,
    forgot: &'a str,
    security: &'a str,
}

crate::pages::template!(NewDeviceText<'a>, "mail/gateway_new_device.txt");

#[derive(serde::Serialize)]
struct NewDeviceHtml<'a> {
    product: &'a str,
    username: &'a str,
    device: &'a str,
    ip: &'a str,
    host: &'a str,
    forgot: &'a str,
    security: &'a str,
}

crate::pages::template!(NewDeviceHtml<'a>, "mail/gateway_new_device.html");

fn new_device_mail(state: &AppState, to: &str, username: &str, device: &str, ip: &str, host: &str) -> Mail {
    let product = state.settings.mail.product_name.as_str();
    let forgot = state.url(crate::account::forgot::PAGE);
    let security = state.url(crate::account::security::PAGE);
    let (forgot, security) = (forgot.as_str(), security.as_str());
    let text = NewDeviceText { product, username, device, ip, host, forgot, security }.render().unwrap_or_default();
    let html = NewDeviceHtml { product, username, device, ip, host, forgot, security }.render().unwrap_or_default();
    Mail {
        to: to.to_owned(),
        subject: crate::pages::tr_with("A new device signed in to your %{product} account", &[("product", product)]),
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ua(v: &'static str) -> HeaderMap {
        [(axum::http::header::USER_AGENT, v.parse().unwrap())].into_iter().collect()
    }

    #[test]
    fn the_traits_ignore_versions_and_count_the_network_only_when_asked() {
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let near: IpAddr = "198.51.100.200".parse().unwrap();
        let far: IpAddr = "203.0.113.1".parse().unwrap();
        let ff127 = ua("Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0");
        let ff128 = ua("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
        let chrome =
            ua("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36");
        assert_eq!(device_traits(&ff127, ip, false), device_traits(&ff128, far, false));
        assert_ne!(device_traits(&ff128, ip, false), device_traits(&chrome, ip, false));
        assert_eq!(device_traits(&ff128, ip, true), device_traits(&ff128, near, true), "same /24");
        assert_ne!(device_traits(&ff128, ip, true), device_traits(&ff128, far, true));
    }
}
