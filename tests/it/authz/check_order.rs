//! The order of checks, and no rate-limit quota spent by refusals.

use crate::authz::support::*;
use crate::common::*;
use http::Method;
use keygate::store::{AccountId, RateLimit};
use keygate::{Environment, Keygate, NewKey, ScopePolicy, ScopeRequirement};

// ---------------------------------------------------------------- order of checks

#[tokio::test]
async fn refusals_for_ip_scope_or_read_only_consume_no_rate_limit_quota() {
    let h = Harness::new();
    let (_, key) = h
        .key_with(
            ACCOUNT,
            NewKey::named("one per second")
                .scopes(["reader", "read-only"])
                .ips(["10.0.0.0/8"])
                .rate_limit(RateLimit::new(1, 1)),
        )
        .await;
    let policy = ScopePolicy::new().route(Method::GET, "/admin", ScopeRequirement::scope("admin"));
    let mut svc = service(h.gate.layer().policy(policy));

    for _ in 0..5 {
        let wrong_ip = send(&mut svc, from(get("/open", Some(&key)), "192.0.2.1")).await;
        assert_refused(&wrong_ip, 403, "ip_not_allowed");
        // A refusal after the key was recognised reports the bucket, untouched.
        assert_eq!(wrong_ip.header("x-ratelimit-remaining"), Some("1"));
        let no_scope = send(&mut svc, from(get("/admin", Some(&key)), "10.0.0.1")).await;
        assert_refused(&no_scope, 403, "insufficient_scope");
        let unsafe_method = send(
            &mut svc,
            from(request(Method::POST, "/open", Some(&key)), "10.0.0.1"),
        )
        .await;
        assert_refused(&unsafe_method, 403, "insufficient_scope");
    }

    let allowed = send(&mut svc, from(get("/open", Some(&key)), "10.0.0.1")).await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(allowed.header("x-ratelimit-limit"), Some("1"));
    assert_eq!(allowed.header("x-ratelimit-remaining"), Some("0"));

    let limited = send(&mut svc, from(get("/open", Some(&key)), "10.0.0.1")).await;
    assert_refused(&limited, 429, "rate_limited");
}

#[tokio::test]
async fn key_status_is_checked_before_the_ip_allowlist() {
    let h = Harness::new();
    let (id, key) = h
        .key_with(ACCOUNT, NewKey::named("revoked").ips(["10.0.0.0/8"]))
        .await;
    h.manager
        .revoke(&AccountId::from(ACCOUNT), &id)
        .await
        .unwrap();
    let answer = send(&mut h.service(), from(get("/", Some(&key)), "192.0.2.1")).await;
    assert_refused(&answer, 401, "revoked_api_key");
}

#[tokio::test]
async fn environment_is_checked_before_the_ip_allowlist() {
    let h = Harness::new();
    let (_, key) = h
        .key_with(
            ACCOUNT,
            NewKey::named("test key")
                .environment(Environment::Test)
                .ips(["10.0.0.0/8"]),
        )
        .await;
    let live = Keygate::builder(h.store.clone())
        .environment(Environment::Live)
        .build();
    let answer = send(
        &mut service(live.layer()),
        from(get("/", Some(&key)), "192.0.2.1"),
    )
    .await;
    assert_refused(&answer, 401, "wrong_environment");
}

#[tokio::test]
async fn ip_allowlist_is_checked_before_scopes() {
    let h = Harness::new();
    let (_, key) = h
        .key_with(
            ACCOUNT,
            NewKey::named("reader")
                .scopes(["reader"])
                .ips(["10.0.0.0/8"]),
        )
        .await;
    let mut svc = service(h.gate.layer().require_any(["admin"]));
    let answer = send(&mut svc, from(get("/", Some(&key)), "192.0.2.1")).await;
    assert_refused(&answer, 403, "ip_not_allowed");
    let answer = send(&mut svc, from(get("/", Some(&key)), "10.0.0.1")).await;
    assert_refused(&answer, 403, "insufficient_scope");
}
