//! Small address helpers shared by the command line and the emulator.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// The address to *reach* a server on that listens on `addr`: a server bound to every
/// interface (`0.0.0.0`, `[::]`) is reached on loopback of the same family; any other
/// address is used as it is.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, v4.port()))
        }
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, v6.port()))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_reached_on_loopback_of_their_family() {
        let cases = [
            ("0.0.0.0:8080", "127.0.0.1:8080"),
            ("[::]:8080", "[::1]:8080"),
            ("10.1.2.3:80", "10.1.2.3:80"),
            ("[fe80::1]:80", "[fe80::1]:80"),
        ];
        for (listen, reached) in cases {
            let listen: SocketAddr = listen.parse().unwrap();
            assert_eq!(reachable(listen).to_string(), reached, "{listen}");
        }
    }
}
