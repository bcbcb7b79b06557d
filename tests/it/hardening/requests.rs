//! Requests: HEAD is checked as GET; a client-sent `Forwarded` header cannot pass an
//! IP allowlist.

use crate::common::*;
use crate::hardening::support::*;
use axum::routing::get as get_route;
use http::Method;
use keygate::client_ip::{ForwardingHeader, IpAllowlist, TrustedProxies};
use keygate::{NewKey, ScopePolicy, ScopeRequirement};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

// ---------------------------------------------------------------------------------------
// Defect 5: HEAD bypassing a GET-only ScopePolicy row.

#[tokio::test]
async fn head_is_checked_as_get_by_a_scope_policy() {
    let h = Harness::new();
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let handler = move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            ([("x-secret-report", "quarterly")], "the report")
        }
    };
    let policy = ScopePolicy::new().route(
        Method::GET,
        "/reports/{id}",
        ScopeRequirement::scope("reports:read"),
    );
    let app = axum::Router::new()
        .route("/reports/{id}", get_route(handler))
        .layer(h.gate.layer().policy(policy));
    let addr = serve(app).await;
    let (_, none) = h.key("acct_1", &[]).await;
    let (_, reader) = h.key("acct_1", &["reports:read"]).await;

    for method in [Method::GET, Method::HEAD] {
        let auth = bearer(&none);
        let a = http(
            addr,
            method.clone(),
            "/reports/1",
            &[("authorization", &auth)],
            "",
        )
        .await;
        assert_eq!(a.status, 403, "{method}");
        assert!(a.header("x-secret-report").is_none(), "{method}");
        if method == Method::GET {
            assert_eq!(a.code(), "insufficient_scope");
        }
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the handler never ran");

    for method in [Method::GET, Method::HEAD] {
        let auth = bearer(&reader);
        let a = http(
            addr,
            method.clone(),
            "/reports/1",
            &[("authorization", &auth)],
            "",
        )
        .await;
        assert_eq!(a.status, 200, "{method}");
        assert_eq!(a.header("x-secret-report"), Some("quarterly"));
    }
    assert_eq!(ran.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------------------------------
// Defect 6: a client-sent Forwarded header beating the proxy's X-Forwarded-For.

#[tokio::test]
async fn forwarding_a_client_sent_forwarded_header_cannot_pass_an_ip_allowlist() {
    // The proxy on 127.0.0.1 appends the real client, 203.0.113.9, to X-Forwarded-For and
    // passes the client's own Forwarded header through untouched.
    let h = behind_loopback_proxy();
    let (_, key) = h
        .key_with("acct_1", NewKey::named("office only").ips(["198.51.100.7"]))
        .await;
    let app = axum::Router::new()
        .route("/", get_route(|| async { "ok" }))
        .layer(h.gate.layer());
    let addr = serve(app).await;
    let auth = bearer(&key);
    let spoofed = http(
        addr,
        Method::GET,
        "/",
        &[
            ("authorization", &auth),
            ("forwarded", "for=198.51.100.7"),
            ("x-forwarded-for", "203.0.113.9"),
        ],
        "",
    )
    .await;
    assert_eq!(spoofed.status, 403, "{}", spoofed.body);
    assert_eq!(spoofed.code(), "ip_not_allowed");
    // The real office address passes.
    let office = http(
        addr,
        Method::GET,
        "/",
        &[
            ("authorization", &auth),
            ("x-forwarded-for", "198.51.100.7"),
        ],
        "",
    )
    .await;
    assert_eq!(office.status, 200, "{}", office.body);

    // An operator whose proxy writes Forwarded chooses it, and X-Forwarded-For is ignored.
    let proxy = IpAllowlist::parse(["127.0.0.1"]).unwrap();
    let h = Harness::with(|b| {
        b.client_ip(TrustedProxies::new(proxy).header(ForwardingHeader::Forwarded))
    });
    let (_, key) = h
        .key_with("acct_1", NewKey::named("office only").ips(["198.51.100.7"]))
        .await;
    let app = axum::Router::new()
        .route("/", get_route(|| async { "ok" }))
        .layer(h.gate.layer());
    let addr = serve(app).await;
    let auth = bearer(&key);
    let spoofed = http(
        addr,
        Method::GET,
        "/",
        &[
            ("authorization", &auth),
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=203.0.113.9"),
        ],
        "",
    )
    .await;
    assert_eq!(spoofed.code(), "ip_not_allowed");
}
