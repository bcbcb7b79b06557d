//! IP allowlists: addresses, CIDRs, IPv6, IPv4-mapped, unknown clients, invalid entries.

use crate::authz::support::*;
use crate::common::*;
use keygate::store::AccountId;
use keygate::NewKey;

// ---------------------------------------------------------------- IP allowlists

#[tokio::test]
async fn ipv4_address_entry_allows_only_that_address() {
    let h = Harness::new();
    let key = key_with_ips(&h, &["203.0.113.7"]).await;
    let mut svc = h.service();
    let ok = send(&mut svc, from(get("/", Some(&key)), "203.0.113.7")).await;
    assert_eq!(ok.status, 200);
    let refused = send(&mut svc, from(get("/", Some(&key)), "203.0.113.8")).await;
    assert_refused(&refused, 403, "ip_not_allowed");
    assert_eq!(
        message(&refused),
        "This API key cannot be used from this IP address"
    );
}

#[tokio::test]
async fn ipv4_cidr_entry_allows_the_network() {
    let h = Harness::new();
    let key = key_with_ips(&h, &["10.0.0.0/8", "192.168.1.0/24"]).await;
    let mut svc = h.service();
    for ip in ["10.0.0.1", "10.255.255.254", "192.168.1.200"] {
        let answer = send(&mut svc, from(get("/", Some(&key)), ip)).await;
        assert_eq!(answer.status, 200, "{ip}");
    }
    for ip in ["11.0.0.1", "192.168.2.1", "9.255.255.255"] {
        let answer = send(&mut svc, from(get("/", Some(&key)), ip)).await;
        assert_refused(&answer, 403, "ip_not_allowed");
    }
}

#[tokio::test]
async fn ipv6_address_and_cidr_entries() {
    let h = Harness::new();
    let key = key_with_ips(&h, &["2001:db8::/32", "2a00:1450::1"]).await;
    let mut svc = h.service();
    for ip in ["2001:db8::1", "2001:db8:ffff::42", "2a00:1450::1"] {
        let answer = send(&mut svc, from(get("/", Some(&key)), ip)).await;
        assert_eq!(answer.status, 200, "{ip}");
    }
    for ip in ["2001:db9::1", "2a00:1450::2", "::1", "10.0.0.1"] {
        let answer = send(&mut svc, from(get("/", Some(&key)), ip)).await;
        assert_refused(&answer, 403, "ip_not_allowed");
    }
}

#[tokio::test]
async fn ipv4_mapped_ipv6_peer_matches_an_ipv4_entry() {
    let h = Harness::new();
    let key = key_with_ips(&h, &["203.0.113.7", "10.0.0.0/8"]).await;
    let mut svc = h.service();
    for ip in ["::ffff:203.0.113.7", "::ffff:10.20.30.40"] {
        let answer = send(&mut svc, from(get("/", Some(&key)), ip)).await;
        assert_eq!(answer.status, 200, "{ip}: {answer:?}");
    }
    let refused = send(&mut svc, from(get("/", Some(&key)), "::ffff:203.0.113.8")).await;
    assert_refused(&refused, 403, "ip_not_allowed");
}

#[tokio::test]
async fn ipv4_mapped_entry_matches_a_plain_ipv4_peer() {
    let h = Harness::new();
    let key = key_with_ips(&h, &["::ffff:192.0.2.0/120"]).await;
    let mut svc = h.service();
    assert_eq!(
        send(&mut svc, from(get("/", Some(&key)), "192.0.2.44"))
            .await
            .status,
        200
    );
    assert_refused(
        &send(&mut svc, from(get("/", Some(&key)), "192.0.3.44")).await,
        403,
        "ip_not_allowed",
    );
}

#[tokio::test]
async fn unknown_client_ip_with_an_allowlist_fails_closed() {
    let h = Harness::new();
    let key = key_with_ips(&h, &["0.0.0.0/0", "::/0"]).await;
    let answer = send(&mut h.service(), get("/", Some(&key))).await;
    assert_refused(&answer, 403, "ip_not_allowed");
}

#[tokio::test]
async fn empty_allowlist_allows_any_address_even_an_unknown_one() {
    let h = Harness::new();
    let key = key_with_ips(&h, &[]).await;
    let mut svc = h.service();
    for ip in ["203.0.113.7", "2001:db8::1", "127.0.0.1"] {
        assert_eq!(
            send(&mut svc, from(get("/", Some(&key)), ip)).await.status,
            200
        );
    }
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
}

#[tokio::test]
async fn invalid_allowlist_entries_are_refused_at_creation() {
    let h = Harness::new();
    for bad in ["300.1.1.1", "10.0.0.0/33", "example.com"] {
        let result = h
            .manager
            .create(AccountId::from(ACCOUNT), NewKey::named("bad ip").ips([bad]))
            .await;
        assert!(result.is_err(), "{bad} accepted");
    }
}
