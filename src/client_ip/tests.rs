//! Unit tests of allowlists and client-IP parsing.

use super::*;

#[test]
fn entries_parse_and_match() {
    let list = IpAllowlist::parse(["203.0.113.7", "10.0.0.0/8", "2001:db8::/32"]).unwrap();
    assert!(list.allows("203.0.113.7".parse().unwrap()));
    assert!(!list.allows("203.0.113.8".parse().unwrap()));
    assert!(list.allows("10.9.8.7".parse().unwrap()));
    assert!(list.allows("2001:db8:1::5".parse().unwrap()));
    assert!(!list.allows("2001:db9::5".parse().unwrap()));
    assert!(list.allows("::ffff:203.0.113.7".parse().unwrap()));
    assert!(list.allows("::ffff:10.1.1.1".parse().unwrap()));
}

#[test]
fn mapped_entries_match_plain_ipv4() {
    let list = IpAllowlist::parse(["::ffff:192.0.2.0/120"]).unwrap();
    assert!(list.allows("192.0.2.44".parse().unwrap()));
    assert!(!list.allows("192.0.3.44".parse().unwrap()));
}

#[test]
fn covers_compares_every_network() {
    let list = |e: &[&str]| IpAllowlist::parse(e).unwrap();
    let office = list(&["203.0.113.0/24", "2001:db8::/32"]);
    assert!(office.covers(&list(&["203.0.113.7"])));
    assert!(office.covers(&list(&["203.0.113.0/25", "2001:db8:1::/48"])));
    assert!(office.covers(&list(&["::ffff:203.0.113.7"])));
    assert!(!office.covers(&list(&["203.0.113.0/23"])));
    assert!(!office.covers(&list(&["203.0.113.7", "198.51.100.1"])));
    assert!(!office.covers(&IpAllowlist::any()), "any address is wider");
    assert!(IpAllowlist::any().covers(&IpAllowlist::any()));
    assert!(IpAllowlist::any().covers(&office));
    // Inside the union but not inside one network: refused (conservative).
    assert!(!list(&["10.0.0.0/25", "10.0.0.128/25"]).covers(&list(&["10.0.0.0/24"])));
}

#[test]
fn bad_entries_are_refused() {
    assert!(IpAllowlist::parse(["300.1.1.1"]).is_err());
    assert!(IpAllowlist::parse(["10.0.0.0/33"]).is_err());
    assert!(IpAllowlist::parse(["example.com"]).is_err());
}

#[test]
fn serde_round_trips() {
    let list = IpAllowlist::parse(["1.2.3.4", "10.0.0.0/8"]).unwrap();
    let json = serde_json::to_string(&list).unwrap();
    assert_eq!(json, r#"["1.2.3.4","10.0.0.0/8"]"#);
    assert_eq!(serde_json::from_str::<IpAllowlist>(&json).unwrap(), list);
}

#[test]
fn forwarded_for_values_parse() {
    assert_eq!(
        parse_forwarded_for("\"[2001:db8::1]:4711\""),
        Some("2001:db8::1".parse().unwrap())
    );
    assert_eq!(
        parse_forwarded_for("192.0.2.60:8080"),
        Some("192.0.2.60".parse().unwrap())
    );
    assert_eq!(parse_forwarded_for("unknown"), None);
}

/// The containment test before the mask arithmetic: `ipnet`'s own.
fn allows_by_ipnet(list: &IpAllowlist, ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    list.is_empty() || list.entries().iter().any(|net| net.contains(&ip))
}

proptest::proptest! {
    /// The mask arithmetic agrees with `ipnet`'s containment test, for IPv4, IPv6 and
    /// IPv4-mapped addresses, and networks of every length.
    #[test]
    fn allows_agrees_with_ipnet(
        net4 in proptest::prelude::any::<u32>(),
        len4 in 0u8..=32,
        ip4 in proptest::prelude::any::<u32>(),
        net6 in proptest::prelude::any::<u128>(),
        len6 in 0u8..=128,
        ip6 in proptest::prelude::any::<u128>(),
        near in proptest::prelude::any::<bool>(),
    ) {
        use std::net::{Ipv4Addr, Ipv6Addr};
        let v4 = ipnet::Ipv4Net::new(Ipv4Addr::from(net4), len4).unwrap().trunc();
        let v6 = ipnet::Ipv6Net::new(Ipv6Addr::from(net6), len6).unwrap().trunc();
        let list = IpAllowlist::parse([v4.to_string(), v6.to_string()]).unwrap();
        // Half the cases pick addresses that share the networks' first bits.
        let ip4 = if near { net4 ^ (ip4 >> len4.min(31)) } else { ip4 };
        let ip6 = if near { net6 ^ (ip6 >> len6.min(127)) } else { ip6 };
        let a4 = Ipv4Addr::from(ip4);
        for ip in [
            IpAddr::V4(a4),
            IpAddr::V6(a4.to_ipv6_mapped()),
            IpAddr::V6(Ipv6Addr::from(ip6)),
        ] {
            proptest::prop_assert_eq!(list.allows(ip), allows_by_ipnet(&list, ip), "{}", ip);
        }
    }
}
