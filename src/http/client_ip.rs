//! The client address that per-IP rate limits count against. Normally the peer of the TCP
//! connection. Behind a load balancer every peer is the balancer, so when the peer is one of the
//! operator's `rate_limit.trusted_proxies`, the address is read from `X-Forwarded-For`: the
//! right-most entry that is not itself a trusted proxy (entries further left were written by the
//! client and can be forged). Anyone else's `X-Forwarded-For` is ignored.
//!
//! The same address goes in the audit log and keys the per-address caps: [`resolve_client`]
//! resolves it once per request into a [`ClientAddr`] that handlers extract. Per-IP limits count
//! an IPv6 client by its /64 ([`limit_key`]): one subscriber usually holds a whole /64, so
//! counting single addresses would give one client 2^64 buckets.

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::Request;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tower_governor::GovernorError;
use tower_governor::key_extractor::KeyExtractor;

#[derive(Clone, Debug, Default)]
pub struct ClientIp {
    trusted: Arc<[IpNet]>,
}

impl ClientIp {
    pub fn new(trusted: &[IpNet]) -> Self {
        Self { trusted: trusted.into() }
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request from `peer` carrying these `X-Forwarded-For` values.
    pub fn resolve<'a>(&self, peer: IpAddr, forwarded_for: impl DoubleEndedIterator<Item = &'a str>) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded_for.rev().flat_map(|v| v.rsplit(',')) {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.is_trusted(ip) {
                        break;
                    }
                }
                // Garbage in the chain: stop at the last address a trusted proxy vouched for.
                Err(_) => break,
            }
        }
        client
    }

    /// The client address of `req`: its peer, or what the trusted proxies say; none without a
    /// peer (a request that did not come over a socket).
    fn of<T>(&self, req: &Request<T>) -> Option<IpAddr> {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())?;
        let forwarded = req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        Some(self.resolve(peer, forwarded.collect::<Vec<_>>().into_iter()))
    }
}

/// What per-address limits count against: an IPv4 address, or an IPv6 address's /64 (an
/// IPv4-mapped IPv6 address counts as its IPv4 address).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<IpAddr, GovernorError> {
        self.of(req).map(limit_key).ok_or(GovernorError::UnableToExtractKey)
    }
}

/// The client's address, resolved through the trusted proxies (the balancer's own address is
/// never the client's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Middleware: resolves the client address once, for every handler and the audit log.
pub async fn resolve_client(State(trusted): State<ClientIp>, mut req: axum::extract::Request, next: Next) -> Response {
    if let Some(ip) = trusted.of(&req) {
        req.extensions_mut().insert(ClientAddr(ip));
    }
    next.run(req).await
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    /// What [`resolve_client`] found; the unspecified address for a request that came over no
    /// socket (none does in the server).
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let ip = parts.extensions.get::<ClientAddr>().map(|c| c.0);
        let peer = || parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        Ok(ClientAddr(ip.or_else(peer).unwrap_or(IpAddr::from([0, 0, 0, 0]))))
    }
}

/// Parses `10.0.0.0/8` or a bare address (a /32 or /128).
pub fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let c = ClientIp::new(&[parse_net("10.0.0.0/8").unwrap(), parse_net("192.168.1.5").unwrap()]);
        // An untrusted peer's header is ignored.
        assert_eq!(c.resolve(ip("203.0.113.9"), ["1.2.3.4"].into_iter()), ip("203.0.113.9"));
        // Through one trusted proxy: the address it saw.
        assert_eq!(c.resolve(ip("10.0.0.2"), ["198.51.100.7"].into_iter()), ip("198.51.100.7"));
        // A forged left-most entry does not win over the one the proxy appended.
        assert_eq!(c.resolve(ip("10.0.0.2"), ["1.1.1.1, 198.51.100.7"].into_iter()), ip("198.51.100.7"));
        // Two trusted hops, split over two header lines.
        assert_eq!(c.resolve(ip("10.0.0.2"), ["198.51.100.7", "192.168.1.5"].into_iter()), ip("198.51.100.7"));
        // Garbage: the last vouched-for address.
        assert_eq!(c.resolve(ip("10.0.0.2"), ["nonsense"].into_iter()), ip("10.0.0.2"));
        assert_eq!(c.resolve(ip("10.0.0.2"), [].into_iter()), ip("10.0.0.2"));
    }

    #[test]
    fn limits_count_an_ipv6_client_by_its_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")), ip("2001:db8:1:2::"));
        assert_ne!(limit_key(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("::ffff:198.51.100.7")), ip("198.51.100.7"));
        assert_eq!(limit_key(ip("198.51.100.7")), ip("198.51.100.7"));
    }
}
