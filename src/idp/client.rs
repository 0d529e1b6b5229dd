//! The address a request came from, as the identity provider's rules see it (throttling, fair
//! hash queues, security logs).
//!
//! It is the socket's peer, unless that peer is one of the proxies listed in
//! `http.trusted_proxies`: then the forwarding header the proxies write
//! (`http.forwarded_header`: `X-Forwarded-For` by default, or RFC 7239 `Forwarded`) is read
//! from the right, skipping every hop that is itself a trusted proxy, and the first hop that is
//! not is the client. Anything to the left of it was written by the client and proves nothing.
//! Exactly one header is read, the one the operator names: a proxy appends to the header it
//! writes and passes the other through untouched, so reading both would let a client forge the
//! one its proxy does not write. Only this module decides which header to believe; every rule
//! asks [`ClientAddr`].

use std::future::{Ready, ready};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpRequest, web};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::error::IdpError;

/// The client's IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

/// Which header the trusted proxies write the client's address into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// The proxies whose forwarding headers are believed, registered as app data by the server.
/// With none registered (or an empty list) the peer is the client.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    pub networks: Vec<IpNet>,
    pub header: ForwardedHeader,
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, given the request's headers.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => header_values(headers, "x-forwarded-for")
                .flat_map(|v| v.split(','))
                .map(|hop| parse_hop(hop.trim()))
                .collect::<Vec<_>>(),
            ForwardedHeader::Forwarded => header_values(headers, "forwarded")
                .flat_map(|v| v.split(','))
                .map(forwarded_for)
                .collect::<Vec<_>>(),
        };
        // Right to left: the nearest hop was written by the peer, a trusted proxy. The first
        // hop that is not a trusted proxy is the client. A hop that is not an address
        // (`unknown`, an obfuscated name) ends the walk: the last proxy that could say who
        // connected to it is then the best we know.
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) => {
                    client = ip.to_canonical();
                    if !self.trusts(client) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .filter_map(|value| value.to_str().ok())
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`, optionally quoted.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse().ok())
}

/// The `for=` parameter of one `Forwarded` element (`for=192.0.2.60;proto=http;by=…`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
        .and_then(|(_, value)| parse_hop(value))
}

impl ClientAddr {
    pub fn of(req: &HttpRequest) -> Self {
        // A request on a TCP listener always has a peer; the unspecified address stands in for
        // the test harness's synthetic requests, which have none.
        let peer = req
            .peer_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.ip());
        match req.app_data::<web::Data<TrustedProxies>>() {
            Some(proxies) => ClientAddr(proxies.client_of(peer, req.headers())),
            None => ClientAddr(peer.to_canonical()),
        }
    }

    /// The key the per-address rules count under: the IPv4 address, or the /64 an IPv6 address
    /// belongs to — one subscriber usually holds a whole /64, so counting single IPv6 addresses
    /// would give one attacker 2^64 budgets.
    pub fn bucket(&self) -> String {
        match self.0 {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => IpNet::new(IpAddr::V6(ip), 64)
                .map(|net| net.trunc().to_string())
                .unwrap_or_else(|_| ip.to_string()),
        }
    }
}

impl FromRequest for ClientAddr {
    type Error = IdpError;
    type Future = Ready<Result<Self, IdpError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// `http.trusted_proxies`: CIDRs (`10.0.0.0/8`) or single addresses, parsed at load so a typo
/// stops the start naming the setting.
pub fn deserialize_networks<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|raw| parse_network(raw).map_err(serde::de::Error::custom))
        .collect()
}

pub fn serialize_networks<S: serde::Serializer>(
    networks: &[IpNet],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(networks.iter().map(ToString::to_string))
}

fn parse_network(raw: &str) -> Result<IpNet, String> {
    let raw = raw.trim();
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!(
                "http.trusted_proxies: {raw:?} is not an address or a CIDR such as 10.0.0.0/8 \
                 (LAYER_IDP_HTTP__TRUSTED_PROXIES)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn proxies(header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies {
            networks: vec![
                parse_network("10.0.0.0/8").unwrap(),
                parse_network("2001:db8:ffff::1").unwrap(),
            ],
            header,
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        let client = proxies(ForwardedHeader::XForwardedFor).client_of(ip("198.51.100.7"), &h);
        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        // The client claimed 1.1.1.1; the real client 203.0.113.9 reached proxy 10.0.0.2,
        // which reached proxy 10.0.0.1 (the peer).
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        let client = proxies(ForwardedHeader::XForwardedFor).client_of(ip("10.0.0.1"), &h);
        assert_eq!(client, ip("203.0.113.9"));
    }

    #[test]
    fn the_header_not_configured_is_ignored() {
        let h = headers(&[("forwarded", "for=203.0.113.9")]);
        let p = proxies(ForwardedHeader::XForwardedFor);
        assert_eq!(p.client_of(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        let p = proxies(ForwardedHeader::Forwarded);
        assert_eq!(p.client_of(ip("10.0.0.1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn forwarded_elements_with_ports_quotes_and_ipv6_are_understood() {
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.43, for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.9.9.9:80",
        )]);
        let p = proxies(ForwardedHeader::Forwarded);
        assert_eq!(p.client_of(ip("10.0.0.1"), &h), ip("2001:db8:cafe::17"));
    }

    #[test]
    fn an_unknown_hop_stops_at_the_last_proxy_that_knew() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9, unknown, 10.0.0.2")]);
        let p = proxies(ForwardedHeader::XForwardedFor);
        assert_eq!(p.client_of(ip("10.0.0.1"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        let p = proxies(ForwardedHeader::XForwardedFor);
        assert_eq!(p.client_of(ip("::ffff:10.0.0.1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_slash_64() {
        assert_eq!(
            ClientAddr(ip("2001:db8:1:2:3:4:5:6")).bucket(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(ClientAddr(ip("192.0.2.1")).bucket(), "192.0.2.1");
    }

    #[test]
    fn a_malformed_network_names_the_setting() {
        let err = parse_network("10.0.0.0/33").unwrap_err();
        assert!(err.contains("LAYER_IDP_HTTP__TRUSTED_PROXIES"), "{err}");
        assert!(parse_network("192.0.2.1").is_ok());
    }
}
