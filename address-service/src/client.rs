//! The client's address: the TCP peer, or, when the peer is a trusted proxy, the address that
//! the chain of trusted proxies recorded in `X-Forwarded-For`.
//!
//! `X-Forwarded-For` is read right to left: each trusted proxy appends the address it got the
//! request from (nginx's `$proxy_add_x_forwarded_for`), so the first entry from the right that
//! is not a trusted proxy is the client. Everything left of it was written by the client and
//! is never believed, so a client cannot pick its own rate-limit bucket.

use axum::http::HeaderMap;
use std::net::IpAddr;
use std::str::FromStr;

/// An address block such as `10.0.0.0/8`, `fd00::/8` or a single address (`127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let network = addr
            .parse::<IpAddr>()
            .map_err(|_| format!("{s:?} is not an address block like 10.0.0.0/8 or fd00::/8"))?
            .to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { network, prefix })
    }
}

/// The client of a request that arrived from `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    // Several X-Forwarded-For headers read as one comma-separated list, in order.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // Not an address: nothing further left can be believed either.
            return client;
        };
        client = ip.to_canonical();
        if !is_trusted(client) {
            return client;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().expect("cidr")).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn xff(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_static(v));
        }
        headers
    }

    #[test]
    fn blocks() {
        let c: Cidr = "10.0.0.0/8".parse().expect("parses");
        assert!(c.contains(ip("10.200.1.2")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6");
        let one: Cidr = "127.0.0.1".parse().expect("parses");
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: Cidr = "fd00::/8".parse().expect("parses");
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().expect("parses");
        assert!(all.contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "fd00::/129", "nginx", "10.0.0.0/x", ""] {
            let err = bad.parse::<Cidr>().expect_err(bad);
            assert!(err.contains(bad.trim()), "{err}");
        }
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_send() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        let headers = xff(&["1.2.3.4"]);
        assert_eq!(
            client_ip(ip("203.0.113.9"), &headers, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.5"), &headers, &[]),
            ip("10.0.0.5"),
            "no trusted proxies configured: the header is ignored"
        );
    }

    #[test]
    fn forwarded_for_is_read_right_to_left_across_trusted_hops() {
        let trusted = cidrs(&["10.0.0.0/8", "192.168.0.1"]);
        let peer = ip("10.0.0.5");
        // nginx appends the address it saw; the client wrote the spoofed entry on the left.
        assert_eq!(
            client_ip(peer, &xff(&["6.6.6.6, 198.51.100.7"]), &trusted),
            ip("198.51.100.7")
        );
        // Two proxies: an edge proxy (192.168.0.1) in front of nginx.
        assert_eq!(
            client_ip(
                peer,
                &xff(&["6.6.6.6, 198.51.100.7, 192.168.0.1"]),
                &trusted
            ),
            ip("198.51.100.7")
        );
        // Header split over several lines reads as one list.
        assert_eq!(
            client_ip(
                peer,
                &xff(&["6.6.6.6", "198.51.100.7, 192.168.0.1"]),
                &trusted
            ),
            ip("198.51.100.7")
        );
        // No header: the proxy itself.
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), peer);
        // Garbage behind trusted hops stops the walk at the last trusted hop.
        assert_eq!(
            client_ip(peer, &xff(&["198.51.100.7, junk, 192.168.0.1"]), &trusted),
            ip("192.168.0.1")
        );
        // Every hop trusted: the furthest one.
        assert_eq!(
            client_ip(peer, &xff(&["10.9.9.9, 192.168.0.1"]), &trusted),
            ip("10.9.9.9")
        );
        // IPv6 and IPv4-mapped peers.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.5"), &xff(&["2001:db8::1"]), &trusted),
            ip("2001:db8::1")
        );
    }
}
