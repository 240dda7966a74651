//! Subnets: the unit the seed query spreads its picks over and eviction counts nodes by.
//!
//! A subnet is an IP address cut to a prefix: IPv4 addresses (and IPv4-mapped IPv6 ones,
//! which are the same IP) to `v4` bits, IPv6 addresses to `v6` bits. A prefix of 0 bits is
//! the whole Internet, whatever the family, so that `subnet_bits(0, 0)` puts every node in one
//! subnet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Default prefix of an IPv4 subnet: a /24, as go-ethereum's table limits.
pub const DEFAULT_V4_BITS: u8 = 24;
/// Default prefix of an IPv6 subnet: a /48, the usual allocation to one site.
pub const DEFAULT_V6_BITS: u8 = 48;

/// Bits of the IPv4-mapped prefix `::ffff:0:0/96` in front of an IPv4 address.
const V4_MAPPED_BITS: u8 = 96;

/// An IP subnet: a network address and a prefix length, as in `203.0.113.0/24` or
/// `2001:db8:1::/48`.
///
/// ```
/// use peerlog::Subnet;
/// let subnet = Subnet::of("203.0.113.77".parse().unwrap(), 24, 48);
/// assert_eq!(subnet.to_string(), "203.0.113.0/24");
/// // An IPv4-mapped IPv6 address is the same IP, in the same subnet.
/// assert_eq!(Subnet::of("::ffff:203.0.113.9".parse().unwrap(), 24, 48), subnet);
/// assert_eq!(Subnet::of("2001:db8:1:2::5".parse().unwrap(), 24, 48).to_string(), "2001:db8:1::/48");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    /// The network address in IPv6 form (IPv4 as its mapped form), host bits zero.
    network: u128,
    /// Prefix length in that 128-bit form: an IPv4 /24 is 120. 0 for the whole Internet.
    bits: u8,
}

impl Subnet {
    /// The subnet of every address: what a prefix of 0 bits gives.
    pub const ALL: Subnet = Subnet {
        network: 0,
        bits: 0,
    };

    /// The subnet of `ip` cut to `v4` bits for IPv4 (and IPv4-mapped IPv6) addresses, `v6`
    /// bits for IPv6 ones. Prefixes longer than the address are cut to it (33 bits of an IPv4
    /// address are 32).
    pub fn of(ip: IpAddr, v4: u8, v6: u8) -> Subnet {
        let ip = ip.to_canonical();
        let (word, bits) = match ip {
            IpAddr::V4(v4_ip) => {
                let bits = v4.min(32);
                if bits == 0 {
                    return Subnet::ALL;
                }
                (u128::from(v4_ip.to_ipv6_mapped()), V4_MAPPED_BITS + bits)
            }
            IpAddr::V6(v6_ip) => {
                let bits = v6.min(128);
                if bits == 0 {
                    return Subnet::ALL;
                }
                (u128::from(v6_ip), bits)
            }
        };
        Subnet {
            network: word & mask(bits),
            bits,
        }
    }

    /// The subnet with this stored form, if it is one: a network address (16 bytes, IPv4 in
    /// its mapped form) with no bit set past a prefix of `bits` (in that form).
    pub(crate) fn from_stored(network: [u8; 16], bits: u8) -> Option<Subnet> {
        let network = u128::from_be_bytes(network);
        let valid = bits <= 128 && network & !mask(bits) == 0;
        // An IPv4 prefix is the mapped prefix and more: nothing between 96 and a mapped network.
        let mapped = Ipv6Addr::from(network).to_ipv4_mapped().is_some();
        let v4_shaped = bits > V4_MAPPED_BITS && mapped;
        let v6_shaped = bits != 0 && !(mapped && bits >= V4_MAPPED_BITS);
        (valid && (bits == 0 && network == 0 || v4_shaped || v6_shaped))
            .then_some(Subnet { network, bits })
    }

    /// The stored form: the network address in 16 bytes (IPv4 mapped) and the prefix length
    /// in that form.
    pub(crate) fn stored(self) -> ([u8; 16], u8) {
        (self.network.to_be_bytes(), self.bits)
    }

    /// A 16-byte key that orders as the subnets do, for subnets of at most 120 bits (the
    /// prefix length sits in the low byte, which such a network leaves zero); never zero.
    pub(crate) fn packed(self) -> [u64; 2] {
        debug_assert!(
            self.bits != 0 && self.bits <= 120,
            "a /{} subnet",
            self.bits
        );
        let word = self.network | u128::from(self.bits);
        [(word >> 64) as u64, word as u64]
    }

    /// The inverse of [`Subnet::packed`].
    pub(crate) fn unpacked(key: [u64; 2]) -> Subnet {
        let word = (u128::from(key[0]) << 64) | u128::from(key[1]);
        Subnet {
            network: word & !0xff,
            bits: word as u8,
        }
    }

    /// The network address (its host bits zero); `0.0.0.0` for [`Subnet::ALL`].
    pub fn network(&self) -> IpAddr {
        match self.v4_bits() {
            Some(_) => IpAddr::V4(
                Ipv6Addr::from(self.network)
                    .to_ipv4_mapped()
                    .unwrap_or(Ipv4Addr::UNSPECIFIED),
            ),
            None => IpAddr::V6(Ipv6Addr::from(self.network)),
        }
    }

    /// The prefix length, in bits of the network's family (24 for `203.0.113.0/24`).
    pub fn prefix_len(&self) -> u8 {
        self.v4_bits().unwrap_or(self.bits)
    }

    /// Whether `ip` is in the subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let word = match ip.to_canonical() {
            IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
            IpAddr::V6(v6) => u128::from(v6),
        };
        word & mask(self.bits) == self.network
    }

    /// The IPv4 prefix length, for an IPv4 subnet (and [`Subnet::ALL`], shown as `0.0.0.0/0`).
    fn v4_bits(&self) -> Option<u8> {
        if self.bits == 0 {
            return Some(0);
        }
        let mapped = Ipv6Addr::from(self.network).to_ipv4_mapped().is_some();
        (mapped && self.bits > V4_MAPPED_BITS).then(|| self.bits - V4_MAPPED_BITS)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix_len())
    }
}

/// The mask of a prefix of `bits` bits of a 128-bit address.
fn mask(bits: u8) -> u128 {
    match bits {
        0 => 0,
        b => u128::MAX << (128 - u32::from(b.min(128))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(ip: &str, v4: u8, v6: u8) -> Subnet {
        Subnet::of(ip.parse().unwrap(), v4, v6)
    }

    #[test]
    fn prefixes_cut_each_family_to_its_own_length() {
        assert_eq!(subnet("203.0.113.77", 24, 48).to_string(), "203.0.113.0/24");
        assert_eq!(subnet("203.0.113.77", 16, 48).to_string(), "203.0.0.0/16");
        assert_eq!(
            subnet("203.0.113.77", 32, 48).to_string(),
            "203.0.113.77/32"
        );
        assert_eq!(
            subnet("203.0.113.77", 40, 48).to_string(),
            "203.0.113.77/32"
        );
        assert_eq!(
            subnet("2001:db8:1:2::5", 24, 48).to_string(),
            "2001:db8:1::/48"
        );
        assert_eq!(
            subnet("2001:db8:1:2::5", 24, 64).to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            subnet("2001:db8:1:2::5", 24, 200).to_string(),
            "2001:db8:1:2::5/128"
        );
        assert_eq!(
            subnet("::ffff:203.0.113.9", 24, 48),
            subnet("203.0.113.1", 24, 48)
        );
        assert_ne!(subnet("203.0.113.1", 24, 48), subnet("203.0.112.1", 24, 48));
    }

    #[test]
    fn a_zero_prefix_is_one_subnet_for_both_families() {
        assert_eq!(subnet("203.0.113.1", 0, 0), Subnet::ALL);
        assert_eq!(subnet("2001:db8::1", 0, 0), Subnet::ALL);
        assert_eq!(subnet("2001:db8::1", 0, 48).prefix_len(), 48);
        assert_eq!(Subnet::ALL.to_string(), "0.0.0.0/0");
        assert!(Subnet::ALL.contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn contains_follows_the_prefix() {
        let s = subnet("203.0.113.77", 24, 48);
        assert!(s.contains("203.0.113.1".parse().unwrap()));
        assert!(s.contains("::ffff:203.0.113.1".parse().unwrap()));
        assert!(!s.contains("203.0.114.1".parse().unwrap()));
        assert!(!s.contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn the_stored_form_round_trips_and_refuses_host_bits() {
        for s in [
            subnet("203.0.113.77", 24, 48),
            subnet("203.0.113.77", 32, 48),
            subnet("203.0.113.77", 1, 48),
            subnet("2001:db8:1:2::5", 24, 48),
            subnet("2001:db8:1:2::5", 24, 1),
            subnet("2001:db8:1:2::5", 24, 128),
            Subnet::ALL,
        ] {
            let (network, bits) = s.stored();
            assert_eq!(Subnet::from_stored(network, bits), Some(s), "{s}");
        }
        let (mut network, bits) = subnet("203.0.113.77", 24, 48).stored();
        network[15] = 1;
        assert_eq!(Subnet::from_stored(network, bits), None);
        assert_eq!(Subnet::from_stored([0; 16], 129), None);
        assert_eq!(Subnet::from_stored([0xff; 16], 0), None);
    }
}
