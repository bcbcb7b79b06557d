//! Client-IP resolution: forwarding headers, trusted proxies, and the real peer over TCP.

use crate::authz::support::*;
use crate::common::*;
use axum::routing::get as get_route;
use axum::Router;
use http::Method;
use keygate::client_ip::{ForwardingHeader, IpAllowlist, TrustedProxies};

#[tokio::test]
async fn default_resolver_ignores_forwarding_headers() {
    let h = Harness::new();
    let key = key_with_ips(&h, &["198.51.100.7"]).await;
    let mut svc = h.service();
    let spoofed = with_header(get("/", Some(&key)), "x-forwarded-for", "198.51.100.7");
    let spoofed = with_header(spoofed, "forwarded", "for=198.51.100.7");
    let answer = send(&mut svc, from(spoofed, "203.0.113.9")).await;
    assert_refused(&answer, 403, "ip_not_allowed");
    // No peer address and only a header: still unknown.
    let header_only = with_header(get("/", Some(&key)), "x-forwarded-for", "198.51.100.7");
    assert_refused(&send(&mut svc, header_only).await, 403, "ip_not_allowed");
}

// ---------------------------------------------------------------- trusted proxies

fn behind_proxies() -> Harness {
    let proxies = IpAllowlist::parse(["10.0.0.0/8", "fd00::/8"]).unwrap();
    Harness::with(|b| b.client_ip(TrustedProxies::new(proxies)))
}

/// Behind proxies that append to `Forwarded` (RFC 7239) rather than `X-Forwarded-For`.
fn behind_rfc7239_proxies() -> Harness {
    let proxies = IpAllowlist::parse(["10.0.0.0/8", "fd00::/8"]).unwrap();
    Harness::with(|b| b.client_ip(TrustedProxies::new(proxies).header(ForwardingHeader::Forwarded)))
}

#[tokio::test]
async fn spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let h = behind_proxies();
    let victim_ip_key = key_with_ips(&h, &["198.51.100.7"]).await;
    let attacker_ip_key = key_with_ips(&h, &["203.0.113.9"]).await;
    let mut svc = h.service();

    let spoofed = with_header(
        get("/", Some(&victim_ip_key)),
        "x-forwarded-for",
        "198.51.100.7",
    );
    let answer = send(&mut svc, from(spoofed, "203.0.113.9")).await;
    assert_refused(&answer, 403, "ip_not_allowed");

    // The untrusted peer itself is the client.
    let spoofed = with_header(
        get("/", Some(&attacker_ip_key)),
        "x-forwarded-for",
        "198.51.100.7",
    );
    assert_eq!(
        send(&mut svc, from(spoofed, "203.0.113.9")).await.status,
        200
    );
}

#[tokio::test]
async fn x_forwarded_for_chain_is_walked_right_to_left_to_the_first_untrusted_hop() {
    let h = behind_proxies();
    let client_key = key_with_ips(&h, &["198.51.100.7"]).await;
    let spoofed_key = key_with_ips(&h, &["6.6.6.6"]).await;
    let proxy_key = key_with_ips(&h, &["10.0.0.0/8"]).await;
    let mut svc = h.service();
    // The client prepended 6.6.6.6 itself; 198.51.100.7 connected to our edge proxy
    // 10.0.0.1, which forwarded to 10.0.0.2, our direct peer.
    let chain = "6.6.6.6, 198.51.100.7, 10.0.0.1";
    let req = |key: &str| {
        from(
            with_header(get("/", Some(key)), "x-forwarded-for", chain),
            "10.0.0.2",
        )
    };

    assert_eq!(send(&mut svc, req(&client_key)).await.status, 200);
    assert_refused(
        &send(&mut svc, req(&spoofed_key)).await,
        403,
        "ip_not_allowed",
    );
    assert_refused(
        &send(&mut svc, req(&proxy_key)).await,
        403,
        "ip_not_allowed",
    );

    // Several header lines form one list.
    let split = with_header(
        with_header(
            get("/", Some(&client_key)),
            "x-forwarded-for",
            "6.6.6.6, 198.51.100.7",
        ),
        "x-forwarded-for",
        "10.0.0.1",
    );
    assert_eq!(send(&mut svc, from(split, "10.0.0.2")).await.status, 200);
}

#[tokio::test]
async fn forwarded_for_is_honoured_from_a_trusted_peer_when_configured() {
    let h = behind_rfc7239_proxies();
    let v4_key = key_with_ips(&h, &["198.51.100.7"]).await;
    let v6_key = key_with_ips(&h, &["2001:db8::/32"]).await;
    let mut svc = h.service();

    let forwarded = "for=6.6.6.6, for=198.51.100.7;proto=https, for=10.0.0.1";
    let req = with_header(get("/", Some(&v4_key)), "forwarded", forwarded);
    assert_eq!(send(&mut svc, from(req, "10.0.0.2")).await.status, 200);

    let forwarded = "for=\"[2001:db8::17]:4711\";proto=https";
    let req = with_header(get("/", Some(&v6_key)), "forwarded", forwarded);
    assert_eq!(send(&mut svc, from(req, "fd00::2")).await.status, 200);

    // From an untrusted peer the header means nothing.
    let req = with_header(get("/", Some(&v4_key)), "forwarded", "for=198.51.100.7");
    assert_refused(
        &send(&mut svc, from(req, "203.0.113.9")).await,
        403,
        "ip_not_allowed",
    );
}

#[tokio::test]
async fn only_the_configured_forwarding_header_is_read() {
    // X-Forwarded-For by default: a Forwarded header, which proxies pass through
    // untouched, is ignored whatever it says.
    let h = behind_proxies();
    let key = key_with_ips(&h, &["198.51.100.7"]).await;
    let mut svc = h.service();
    let req = with_header(get("/", Some(&key)), "forwarded", "for=198.51.100.7");
    let req = with_header(req, "x-forwarded-for", "6.6.6.6");
    assert_refused(
        &send(&mut svc, from(req, "10.0.0.2")).await,
        403,
        "ip_not_allowed",
    );
    let req = with_header(get("/", Some(&key)), "forwarded", "for=6.6.6.6");
    let req = with_header(req, "x-forwarded-for", "198.51.100.7");
    assert_eq!(send(&mut svc, from(req, "10.0.0.2")).await.status, 200);

    // Forwarded when configured: then X-Forwarded-For is the one ignored.
    let h = behind_rfc7239_proxies();
    let key = key_with_ips(&h, &["198.51.100.7"]).await;
    let mut svc = h.service();
    let req = with_header(get("/", Some(&key)), "forwarded", "for=198.51.100.7");
    let req = with_header(req, "x-forwarded-for", "6.6.6.6");
    assert_eq!(send(&mut svc, from(req, "10.0.0.2")).await.status, 200);
    let req = with_header(get("/", Some(&key)), "forwarded", "for=6.6.6.6");
    let req = with_header(req, "x-forwarded-for", "198.51.100.7");
    assert_refused(
        &send(&mut svc, from(req, "10.0.0.2")).await,
        403,
        "ip_not_allowed",
    );
}

#[tokio::test]
async fn malformed_forwarding_hop_makes_the_client_unknown() {
    let h = behind_proxies();
    let key = key_with_ips(&h, &["0.0.0.0/0"]).await;
    let mut svc = h.service();
    let req = with_header(
        get("/", Some(&key)),
        "x-forwarded-for",
        "198.51.100.7, garbage",
    );
    assert_refused(
        &send(&mut svc, from(req, "10.0.0.2")).await,
        403,
        "ip_not_allowed",
    );
}

#[tokio::test]
async fn trusted_peer_without_forwarding_headers_is_the_client() {
    let h = behind_proxies();
    let key = key_with_ips(&h, &["10.0.0.2"]).await;
    let answer = send(&mut h.service(), from(get("/", Some(&key)), "10.0.0.2")).await;
    assert_eq!(answer.status, 200);
}

// ---------------------------------------------------------------- real loopback TCP

async fn ok_handler() -> &'static str {
    "ok"
}

#[tokio::test]
async fn over_tcp_the_real_peer_address_is_checked() {
    let h = Harness::new();
    let loopback = key_with_ips(&h, &["127.0.0.0/8"]).await;
    let private = key_with_ips(&h, &["10.0.0.0/8"]).await;
    let addr = serve(
        Router::new()
            .route("/", get_route(ok_handler))
            .layer(h.gate.layer()),
    )
    .await;

    let auth = bearer(&loopback);
    let answer = http(addr, Method::GET, "/", &[("authorization", &auth)], "").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, "ok");

    let auth = bearer(&private);
    let answer = http(addr, Method::GET, "/", &[("authorization", &auth)], "").await;
    assert_refused(&answer, 403, "ip_not_allowed");

    // A spoofed X-Forwarded-For changes nothing with the default resolver.
    let headers = [
        ("authorization", auth.as_str()),
        ("x-forwarded-for", "10.1.2.3"),
    ];
    let answer = http(addr, Method::GET, "/", &headers, "").await;
    assert_refused(&answer, 403, "ip_not_allowed");
}

#[tokio::test]
async fn over_tcp_behind_a_trusted_loopback_proxy_the_forwarded_client_is_checked() {
    let proxies = IpAllowlist::parse(["127.0.0.1"]).unwrap();
    let h = Harness::with(|b| b.client_ip(TrustedProxies::new(proxies)));
    let private = key_with_ips(&h, &["10.0.0.0/8"]).await;
    let addr = serve(
        Router::new()
            .route("/", get_route(ok_handler))
            .layer(h.gate.layer()),
    )
    .await;
    let auth = bearer(&private);

    let headers = [
        ("authorization", auth.as_str()),
        ("x-forwarded-for", "10.1.2.3"),
    ];
    assert_eq!(http(addr, Method::GET, "/", &headers, "").await.status, 200);

    let headers = [
        ("authorization", auth.as_str()),
        ("x-forwarded-for", "198.51.100.7"),
    ];
    let answer = http(addr, Method::GET, "/", &headers, "").await;
    assert_refused(&answer, 403, "ip_not_allowed");
}
