//! Which IP addresses a webhook may be delivered to: only those reachable on the public
//! Internet, so that a subscription cannot make Gridroll call into its own network (SSRF).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 ranges that are not globally reachable (IANA special-purpose registry), as
/// (network, prefix length).
const IPV4_NOT_PUBLIC: [(u32, u32); 15] = [
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0a00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 carrier-grade NAT
    (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
    (0xa9fe_0000, 16), // 169.254.0.0/16 link-local, where cloud metadata lives
    (0xac10_0000, 12), // 172.16.0.0/12 private
    (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2.0/24 documentation
    (0xc058_6300, 24), // 192.88.99.0/24 6to4 relay anycast (deprecated)
    (0xc0a8_0000, 16), // 192.168.0.0/16 private
    (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xc633_6400, 24), // 198.51.100.0/24 documentation
    (0xcb00_7100, 24), // 203.0.113.0/24 documentation
    (0xe000_0000, 4),  // 224.0.0.0/4 multicast
    (0xf000_0000, 4),  // 240.0.0.0/4 reserved, with 255.255.255.255 broadcast
];

/// IPv6 ranges that are never globally reachable, whatever they carry. Those outside
/// 2000::/3 are refused by that rule already; they are listed so that the table reads as
/// the registry does.
const IPV6_NOT_PUBLIC: [(u128, u32); 9] = [
    (0x0100_0000_0000_0000 << 64, 64), // 100::/64 discard-only
    (0x2001_0000 << 96, 23),           // 2001::/23 IETF protocol assignments
    (0x2001_0db8 << 96, 32),           // 2001:db8::/32 documentation
    (0x3fff_0000 << 96, 20),           // 3fff::/20 documentation (RFC 9637)
    (0x0064_ff9b_0001 << 80, 48),      // 64:ff9b:1::/48 local-use NAT64
    (0xfc00 << 112, 7),                // fc00::/7 unique local
    (0xfe80 << 112, 10),               // fe80::/10 link-local
    (0xfec0 << 112, 10),               // fec0::/10 site-local (deprecated)
    (0xff00 << 112, 8),                // ff00::/8 multicast
];

/// The /96 prefixes whose last 32 bits are an IPv4 address.
const CARRY_V4_IN_LOW_BITS: [u128; 3] = [
    0,                 // ::/96 IPv4-compatible (deprecated)
    0xffff << 32,      // ::ffff:0:0/96 IPv4-mapped
    0x0064_ff9b << 96, // 64:ff9b::/96 NAT64 well-known prefix
];

/// Whether `ip` is reachable on the public Internet. False for every special-purpose range
/// that is not globally reachable; an IPv6 address that carries an IPv4 address
/// (IPv4-mapped, IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4) is judged by the IPv4 address
/// it leads to, since that is where the packets end up.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !IPV4_NOT_PUBLIC
        .iter()
        .any(|&(network, prefix)| bits & mask_v4(prefix) == network)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    if let Some(v4) = embedded_v4(bits) {
        return is_public_v4(v4);
    }
    // IANA has allocated only 2000::/3 for global unicast: nothing elsewhere (`::`, `::1`
    // and the ranges below aside) is reachable, so it is refused rather than trusted.
    in_v6(bits, 0x2000 << 112, 3)
        && !IPV6_NOT_PUBLIC
            .iter()
            .any(|&(network, prefix)| in_v6(bits, network, prefix))
}

/// The IPv4 address an IPv6 address leads to, for the forms that carry one. `::` and `::1`
/// fall in `::/96` and so are judged as 0.0.0.0 and 0.0.0.1, both "this network".
fn embedded_v4(bits: u128) -> Option<Ipv4Addr> {
    // Each cast keeps only the 32 bits of the IPv4 address, masked out just before.
    if CARRY_V4_IN_LOW_BITS
        .iter()
        .any(|&network| in_v6(bits, network, 96))
    {
        return Some(Ipv4Addr::from((bits & 0xffff_ffff) as u32));
    }
    if in_v6(bits, 0x2002 << 112, 16) {
        // 6to4 carries the IPv4 address in the 32 bits after the prefix.
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

fn mask_v4(prefix: u32) -> u32 {
    u32::MAX.checked_shl(32 - prefix).unwrap_or(0)
}

fn in_v6(bits: u128, network: u128, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    bits & mask == network
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Each range's first and last address, and the addresses just outside it when those
    /// are public.
    const NOT_PUBLIC: &[&str] = &[
        "0.0.0.0",
        "0.255.255.255",
        "10.0.0.0",
        "10.255.255.255",
        "100.64.0.0",
        "100.127.255.255",
        "127.0.0.0",
        "127.0.0.1",
        "127.255.255.255",
        "169.254.0.0",
        "169.254.169.254",
        "169.254.255.255",
        "172.16.0.0",
        "172.31.255.255",
        "192.0.0.0",
        "192.0.0.255",
        "192.0.2.0",
        "192.0.2.255",
        "192.88.99.0",
        "192.88.99.255",
        "192.168.0.0",
        "192.168.255.255",
        "198.18.0.0",
        "198.19.255.255",
        "198.51.100.0",
        "198.51.100.255",
        "203.0.113.0",
        "203.0.113.255",
        "224.0.0.0",
        "239.255.255.255",
        "240.0.0.0",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:0.0.0.0",
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "::192.168.0.1",
        "64:ff9b::10.0.0.1",
        "64:ff9b::127.0.0.1",
        "64:ff9b:1::",
        "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
        "64:ff9b:1::808:808",
        "100::",
        "100::ffff:ffff:ffff:ffff",
        "2001::",
        "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db8::",
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        "2002:0a00:0001::",
        "2002:7f00:0001::1",
        "2002:c0a8:0101:ffff:ffff:ffff:ffff:ffff",
        "3fff::",
        "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fc00::",
        "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fe80::",
        "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fec0::",
        "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "ff00::",
        "ff02::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];

    const PUBLIC: &[&str] = &[
        "8.8.8.8",
        "1.1.1.1",
        "1.0.0.0",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.0",
        "192.0.3.0",
        "192.88.98.255",
        "192.88.100.0",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "198.51.99.255",
        "198.51.101.0",
        "203.0.112.255",
        "203.0.114.0",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "2001:200::",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::",
        "::ffff:8.8.8.8",
        "::8.8.8.8",
        "64:ff9b::8.8.8.8",
        "2002:0808:0808::1",
        "2003::",
        "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];

    #[test]
    fn every_non_global_range_is_refused_to_its_edges() {
        for text in NOT_PUBLIC {
            let ip: IpAddr = text.parse().expect("test address");
            assert!(!is_public(ip), "{text} should not be public");
        }
    }

    #[test]
    fn addresses_outside_the_global_unicast_block_are_not_public() {
        for text in ["4000::", "4000::1", "1::", "8000::", "e000::"] {
            let ip: IpAddr = text.parse().expect("test address");
            assert!(!is_public(ip), "{text} should not be public");
        }
    }

    #[test]
    fn public_addresses_and_the_neighbours_of_each_range_are_accepted() {
        for text in PUBLIC {
            let ip: IpAddr = text.parse().expect("test address");
            assert!(is_public(ip), "{text} should be public");
        }
    }

    proptest! {
        #[test]
        fn an_ipv4_mapped_address_is_judged_as_its_ipv4_address(bits in any::<u32>()) {
            let v4 = Ipv4Addr::from(bits);
            prop_assert_eq!(
                is_public(IpAddr::V6(v4.to_ipv6_mapped())),
                is_public(IpAddr::V4(v4))
            );
            let nat64 = Ipv6Addr::from((0x0064_ff9b_u128 << 96) | u128::from(bits));
            prop_assert_eq!(is_public(IpAddr::V6(nat64)), is_public(IpAddr::V4(v4)));
            let six_to_four = Ipv6Addr::from((0x2002_u128 << 112) | (u128::from(bits) << 80));
            prop_assert_eq!(is_public(IpAddr::V6(six_to_four)), is_public(IpAddr::V4(v4)));
        }
    }
}
