//! Who may scrape: a client address allowlist (addresses and CIDR blocks,
//! loopback unless configured) and an optional bearer token.

use std::net::IpAddr;

use crate::Error;

/// One allowlist entry: an address and how many leading bits must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `fd00::/8`, or a single address.
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let refuse = |reason: &str| Error::Allowlist { entry: text.to_owned(), reason: reason.to_owned() };
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| refuse("not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => {
                prefix.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| refuse("bad prefix length"))?
            }
            None => max,
        };
        Ok(Self { network, prefix })
    }

    fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 client seen on an IPv6 socket (`::ffff:10.0.0.1`) as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// The clients that may connect.
#[derive(Debug, Clone, Default)]
pub(crate) enum Allowlist {
    /// Loopback addresses only (the default).
    #[default]
    Loopback,
    /// These blocks, exactly (list loopback too if local clients should scrape).
    Blocks(Vec<Cidr>),
    /// Anyone who can reach the port.
    Any,
}

impl Allowlist {
    pub(crate) fn allows(&self, client: IpAddr) -> bool {
        let client = canonical(client);
        match self {
            Self::Any => true,
            Self::Loopback => client.is_loopback(),
            Self::Blocks(blocks) => blocks.iter().any(|block| block.contains(client)),
        }
    }
}

/// A bearer token, compared in constant time.
#[derive(Clone)]
pub(crate) struct Token(Box<[u8]>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A token of visible ASCII (what an `Authorization` header can carry).
    pub(crate) fn new(token: &str) -> Result<Self, Error> {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Token);
        }
        Ok(Self(token.as_bytes().into()))
    }

    /// Whether an `Authorization` header value carries this token. The time
    /// taken depends on the lengths only, never on where the bytes differ.
    pub(crate) fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let presented = authorization.and_then(|value| strip_bearer(value)).unwrap_or_default();
        constant_time_eq(presented, &self.0)
    }
}

fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| value.get(7..)).flatten().map(<[u8]>::trim_ascii)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied().unwrap_or(0), b.get(i).copied().unwrap_or(0));
        difference |= usize::from(std::hint::black_box(x ^ y));
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn cidr_blocks_match_their_addresses() {
        let block = Cidr::parse("10.1.0.0/16").expect("valid");
        assert!(block.contains(ip("10.1.200.3")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(block.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped clients count as IPv4");
        assert!(Cidr::parse("0.0.0.0/0").expect("valid").contains(ip("203.0.113.9")));
        assert!(Cidr::parse("fd00::/8").expect("valid").contains(ip("fd12::1")));
        assert!(Cidr::parse("192.0.2.7").expect("valid").contains(ip("192.0.2.7")));
        assert!(!Cidr::parse("192.0.2.7").expect("valid").contains(ip("192.0.2.8")));
        for bad in ["10.0.0.0/33", "10.0.0/8", "example.com", "::/129", "10.0.0.0/x"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_by_default() {
        assert!(Allowlist::default().allows(ip("127.0.0.1")));
        assert!(Allowlist::default().allows(ip("::1")));
        assert!(!Allowlist::default().allows(ip("10.0.0.1")));
        let blocks = Allowlist::Blocks(vec![Cidr::parse("10.0.0.0/8").expect("valid")]);
        assert!(blocks.allows(ip("10.9.9.9")) && !blocks.allows(ip("11.0.0.1")));
        assert!(!blocks.allows(ip("127.0.0.1")), "a list is exact: loopback is not implied");
    }

    #[test]
    fn tokens_compare_whole() {
        let token = Token::new("s3cret-token").expect("valid");
        assert!(token.accepts(Some(b"Bearer s3cret-token")));
        assert!(token.accepts(Some(b"bearer s3cret-token ")));
        for wrong in [&b"Bearer s3cret-toke"[..], b"Bearer s3cret-token2", b"Basic s3cret-token", b"s3cret-token", b""]
        {
            assert!(!token.accepts(Some(wrong)), "{:?}", String::from_utf8_lossy(wrong));
        }
        assert!(!token.accepts(None));
        assert!(Token::new("").is_err() && Token::new("has space").is_err());
    }
}
