//! The address a request came from, as the identity provider's rules see it (throttling, fair
//! hash queues, security logs).
//!
//! Today this is the socket's peer. It is an extractor of its own so that every rule asks one
//! place: when the service runs behind a proxy, only this module decides which forwarding
//! header to believe.

use std::future::{Ready, ready};
use std::net::{IpAddr, Ipv4Addr};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use super::error::IdpError;

/// The client's IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    pub fn of(req: &HttpRequest) -> Self {
        // A request on a TCP listener always has a peer; the unspecified address stands in for
        // the test harness's synthetic requests, which have none.
        ClientAddr(
            req.peer_addr()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.ip()),
        )
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
