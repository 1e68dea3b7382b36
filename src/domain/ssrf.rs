//! The address policy for everything a capture connects to (THREATS SSRF-01, SSRF-06).
//!
//! A target is allowed when its address is public, or when an operator listed it explicitly in
//! `security.ssrf_allow`. The service's own ports on non-public addresses are refused even when
//! listed, so a capture can never call our own API. This module is pure: resolving names and
//! dialing live in `net/`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// Why an address is not public. `None` from [`non_public_reason`] means public.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let reason = match (a, b, c) {
        (0, _, _) => "unspecified/this-network",
        (10, _, _) => "private",
        (100, 64..=127, _) => "carrier-grade NAT",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local (cloud metadata)",
        (172, 16..=31, _) => "private",
        (192, 0, 0) => "IETF protocol assignments",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay anycast",
        (192, 168, _) => "private",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved/broadcast",
        _ => return None,
    };
    Some(reason)
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // Addresses that embed an IPv4 address are judged by that address: `::ffff:127.0.0.1`
    // reaches the loopback interface just like `127.0.0.1`.
    if let Some(v4) = embedded_v4(ip) {
        return v4_reason(v4);
    }
    let seg = ip.segments();
    let reason = match seg[0] {
        0xfc00..=0xfdff => "unique local (private)",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local (deprecated)",
        0xff00..=0xffff => "multicast",
        0x2001 if seg[1] == 0 => "Teredo tunnel",
        0x2001 if seg[1] == 0xdb8 => "documentation",
        0x0100 if seg[1..4] == [0, 0, 0] => "discard-only",
        0x0000 => "reserved",
        _ => return None,
    };
    Some(reason)
}

/// The IPv4 address inside IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::/96`) and 6to4 (`2002:AABB:CCDD::/48`) addresses.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let tail = Ipv4Addr::new(
        (seg[6] >> 8) as u8,
        seg[6] as u8,
        (seg[7] >> 8) as u8,
        seg[7] as u8,
    );
    match seg {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(tail),
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// A set of ports in an allow rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ports {
    Any,
    List(Vec<(u16, u16)>),
}

impl Ports {
    fn contains(&self, port: u16) -> bool {
        match self {
            Ports::Any => true,
            Ports::List(ranges) => ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&port)),
        }
    }
}

/// One `security.ssrf_allow` entry: `IP[/PREFIX]:PORTS`, IPv6 in brackets
/// (`[fd00::]/8:443`), PORTS being `*`, `N`, `N-M` or a comma list of those.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    network: IpAddr,
    prefix: u8,
    ports: Ports,
    source: String,
}

impl AllowRule {
    pub fn matches(&self, addr: SocketAddr) -> bool {
        let ip = addr.ip().to_canonical();
        self.ports.contains(addr.port()) && in_network(ip, self.network, self.prefix)
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

impl FromStr for AllowRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr_part, ports_part) = s
            .rsplit_once(':')
            .filter(|(a, _)| !a.is_empty())
            .ok_or_else(|| format!("'{s}' is not of the form IP[/PREFIX]:PORTS"))?;
        let (ip_part, prefix_part) = match addr_part.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (addr_part, None),
        };
        let ip_text = ip_part
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .unwrap_or(ip_part);
        let network: IpAddr = ip_text
            .parse()
            .map_err(|_| format!("'{ip_text}' in '{s}' is not an IP address"))?;
        let network = network.to_canonical();
        let max_prefix = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_part {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max_prefix)
                .ok_or_else(|| format!("'/{p}' in '{s}' is not a valid prefix length"))?,
            None => max_prefix,
        };
        if prefix == 0 {
            return Err(format!(
                "'{s}' would allow every address and disable SSRF protection"
            ));
        }
        let ports = parse_ports(ports_part).map_err(|e| format!("'{s}': {e}"))?;
        Ok(Self {
            network,
            prefix,
            ports,
            source: s.to_string(),
        })
    }
}

fn parse_ports(text: &str) -> Result<Ports, String> {
    if text == "*" {
        return Ok(Ports::Any);
    }
    let mut ranges = Vec::new();
    for part in text.split(',') {
        let parse = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("'{p}' is not a port"))
        };
        let range = match part.split_once('-') {
            Some((lo, hi)) => (parse(lo)?, parse(hi)?),
            None => {
                let p = parse(part)?;
                (p, p)
            }
        };
        if range.0 > range.1 {
            return Err(format!("port range '{part}' is reversed"));
        }
        ranges.push(range);
    }
    Ok(Ports::List(ranges))
}

/// Why a connection target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{addr} is not reachable for captures: {reason}")]
pub struct Denied {
    pub addr: SocketAddr,
    pub reason: &'static str,
}

/// The complete address policy: what non-public addresses the operator allowed, and which of
/// our own ports are never reachable.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allow: Vec<AllowRule>,
    own_ports: Vec<u16>,
}

impl EgressPolicy {
    pub fn new(allow: Vec<AllowRule>) -> Self {
        Self {
            allow,
            own_ports: Vec::new(),
        }
    }

    /// Adds a port of this service (API listener, egress guard) that captures must never reach.
    pub fn deny_own_port(&mut self, port: u16) {
        if !self.own_ports.contains(&port) {
            self.own_ports.push(port);
        }
    }

    /// The same policy (this service's own ports refused) with another allow-list: a
    /// webhook's, which opens addresses to that webhook only, never to captures.
    pub fn with_allow(&self, allow: Vec<AllowRule>) -> Self {
        Self {
            allow,
            own_ports: self.own_ports.clone(),
        }
    }

    pub fn allow_rules(&self) -> &[AllowRule] {
        &self.allow
    }

    pub fn check(&self, addr: SocketAddr) -> Result<(), Denied> {
        let ip = addr.ip().to_canonical();
        let Some(reason) = non_public_reason(ip) else {
            return Ok(());
        };
        // Our own ports on a non-public address are refused even when allow-listed: the
        // allow-list exists for sources, never for calling ourselves.
        if self.own_ports.contains(&addr.port()) {
            return Err(Denied {
                addr,
                reason: "this is the service's own port",
            });
        }
        let canonical = SocketAddr::new(ip, addr.port());
        if self.allow.iter().any(|rule| rule.matches(canonical)) {
            return Ok(());
        }
        Err(Denied { addr, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_public_addresses_in_every_notation_are_refused() {
        let policy = EgressPolicy::default();
        for addr in [
            "127.0.0.1:80",
            "127.1.2.3:80",
            "0.0.0.0:80",
            "10.1.2.3:80",
            "100.64.0.1:80",
            "169.254.169.254:80",
            "172.16.0.1:80",
            "172.31.255.255:80",
            "192.168.1.1:80",
            "192.0.0.170:80",
            "198.18.0.1:80",
            "224.0.0.1:80",
            "255.255.255.255:80",
            "[::1]:80",
            "[::]:80",
            "[::ffff:127.0.0.1]:80",
            "[::ffff:169.254.169.254]:80",
            "[::127.0.0.1]:80",
            "[64:ff9b::7f00:1]:80",
            "[2002:7f00:1::]:80",
            "[fd00::1]:80",
            "[fc00::1]:80",
            "[fe80::1]:80",
            "[ff02::1]:80",
            "[2001:0:4136:e378::1]:80",
            "[2001:db8::1]:80",
        ] {
            assert!(policy.check(sa(addr)).is_err(), "{addr} should be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let policy = EgressPolicy::default();
        for addr in [
            "93.184.216.34:443",
            "8.8.8.8:53",
            "172.32.0.1:80",
            "100.128.0.1:80",
            "[2606:4700::1111]:443",
            "[::ffff:8.8.8.8]:443",
            "[2002:0808:0808::]:80",
        ] {
            assert!(policy.check(sa(addr)).is_ok(), "{addr} should pass");
        }
    }

    #[test]
    fn allow_rules_open_exactly_what_they_name() {
        let rules: Vec<AllowRule> = ["127.0.0.1:8081", "192.168.0.0/16:80,443,9000-9010"]
            .iter()
            .map(|r| r.parse().unwrap())
            .collect();
        let policy = EgressPolicy::new(rules);
        assert!(policy.check(sa("127.0.0.1:8081")).is_ok());
        assert!(policy.check(sa("[::ffff:127.0.0.1]:8081")).is_ok());
        assert!(policy.check(sa("127.0.0.1:8082")).is_err());
        assert!(policy.check(sa("127.0.0.2:8081")).is_err());
        assert!(policy.check(sa("192.168.4.5:443")).is_ok());
        assert!(policy.check(sa("192.168.4.5:9005")).is_ok());
        assert!(policy.check(sa("192.168.4.5:22")).is_err());
        assert!(policy.check(sa("10.0.0.1:80")).is_err());
    }

    #[test]
    fn own_ports_stay_closed_even_when_allowed() {
        let mut policy = EgressPolicy::new(vec!["127.0.0.1:*".parse().unwrap()]);
        policy.deny_own_port(8080);
        assert!(policy.check(sa("127.0.0.1:8080")).is_err());
        assert!(policy.check(sa("127.0.0.1:8081")).is_ok());
    }

    #[test]
    fn allow_rule_syntax() {
        for ok in [
            "127.0.0.1:80",
            "10.0.0.0/8:*",
            "[::1]:8080",
            "[fd00::]/8:443",
            "192.168.1.0/24:1-1024",
        ] {
            assert!(ok.parse::<AllowRule>().is_ok(), "{ok}");
        }
        for bad in [
            "0.0.0.0/0:*",
            "[::]/0:80",
            "127.0.0.1",
            "127.0.0.1:",
            "localhost:80",
            "10.0.0.0/33:80",
            "10.0.0.1:70000",
            "10.0.0.1:90-80",
            ":80",
        ] {
            assert!(bad.parse::<AllowRule>().is_err(), "{bad} should be refused");
        }
    }
}
