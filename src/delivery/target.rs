//! Target safety, checked on the addresses a name resolves to at send time (so DNS
//! tricks do not get past it), for IP literals too.
//!
//! - Always refused: link-local and cloud-metadata addresses (169.254.0.0/16,
//!   fe80::/10, fd00:ec2::254): never a legitimate webhook target.
//! - `HTTPHOOKS_TARGET_POLICY=strict`, for deployments where untrusted parties define
//!   hooks: public addresses only, plus the networks in `HTTPHOOKS_ALLOW_NETWORKS`
//!   (comma-separated CIDRs).
//!
//! A refused send fails its callback with the reason and is not retried.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    strict: bool,
    allowed: Vec<IpNet>,
}

impl Policy {
    /// Reads the policy from the environment; a wrong value is an error naming it.
    pub fn from_env() -> Result<Policy, String> {
        let strict = match std::env::var("HTTPHOOKS_TARGET_POLICY").as_deref() {
            Err(_) | Ok("") | Ok("default") => false,
            Ok("strict") => true,
            Ok(other) => {
                return Err(format!(
                    "HTTPHOOKS_TARGET_POLICY={other:?} is not default or strict; fix it"
                ))
            }
        };
        let allowed = std::env::var("HTTPHOOKS_ALLOW_NETWORKS").unwrap_or_default();
        let allowed = allowed
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                n.parse::<IpNet>()
                    .or_else(|_| n.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("HTTPHOOKS_ALLOW_NETWORKS holds {n:?}, which is not a CIDR network; fix it"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Policy { strict, allowed })
    }

    /// Why `address` may not be sent to, if it may not.
    pub fn refusal(&self, address: IpAddr) -> Option<String> {
        let address = canonical(address);
        if is_link_local_or_metadata(address) {
            return Some(format!(
                "{address} is a link-local or cloud-metadata address, never a webhook target"
            ));
        }
        if self.strict
            && !is_public(address)
            && !self.allowed.iter().any(|net| net.contains(&address))
        {
            return Some(format!(
                "{address} is not a public address, and HTTPHOOKS_TARGET_POLICY=strict allows only public ones \
                 (add its network to HTTPHOOKS_ALLOW_NETWORKS to allow it)"
            ));
        }
        None
    }
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn is_link_local_or_metadata(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)) // documentation
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_unspecified()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn strict(allowed: Vec<IpNet>) -> Policy {
        Policy {
            strict: true,
            allowed,
        }
    }

    #[test]
    fn metadata_and_link_local_are_always_refused() {
        let policy = Policy::default();
        for address in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(policy.refusal(ip(address)).is_some(), "{address}");
        }
        for address in ["127.0.0.1", "10.0.0.1", "93.184.216.34", "::1"] {
            assert!(policy.refusal(ip(address)).is_none(), "{address}");
        }
    }

    #[test]
    fn strict_allows_public_addresses_and_the_allow_list() {
        let policy = strict(vec!["10.1.0.0/16".parse().unwrap()]);
        for address in ["93.184.216.34", "2606:2800:220:1::1", "10.1.2.3"] {
            assert!(policy.refusal(ip(address)).is_none(), "{address}");
        }
        for address in [
            "127.0.0.1",
            "10.2.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "100.64.0.1",
            "::1",
            "fc00::1",
            "0.0.0.0",
        ] {
            assert!(policy.refusal(ip(address)).is_some(), "{address}");
        }
    }
}
