//! The client address that per-IP rate limits count against. Normally the peer of the TCP
//! connection. Behind a load balancer every peer is the balancer, so when the peer is one of the
//! operator's `rate_limit.trusted_proxies`, the address is read from `X-Forwarded-For`: the
//! right-most entry that is not itself a trusted proxy (entries further left were written by the
//! client and can be forged). Anyone else's `X-Forwarded-For` is ignored.

use axum::extract::ConnectInfo;
use axum::http::Request;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
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

    fn is_trusted(&self, ip: IpAddr) -> bool {
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
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<IpAddr, GovernorError> {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or(GovernorError::UnableToExtractKey)?;
        let forwarded = req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        Ok(self.resolve(peer, forwarded.collect::<Vec<_>>().into_iter()))
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
}
