//! Issue 3, authorization: scopes, implications, read-only keys, policy tables, IP
//! allowlists, client-IP resolution and the order of checks.

mod common;
use common::*;

use std::net::SocketAddr;

use axum::routing::get as get_route;
use axum::Router;
use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;
use keygate::scope::Unmatched;
use keygate::{
    AccountId, Environment, ForwardingHeader, Identity, IpAllowlist, Keygate, KeygateLayer, NewKey,
    PeerAddr, RateLimit, ScopeImplications, ScopePolicy, ScopeRequirement, ScopeSet,
    TrustedProxies,
};

const ACCOUNT: &str = "acct_1";

/// `layer` over [`echo`].
fn service(
    layer: KeygateLayer,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<keygate::layer::ResponseBody<Full<Bytes>>>,
    Error = std::convert::Infallible,
> + Clone {
    tower::ServiceBuilder::new().layer(layer).service_fn(echo)
}

/// `req` as if it came from a connection whose peer is `ip`.
fn from(mut req: Request<Full<Bytes>>, ip: &str) -> Request<Full<Bytes>> {
    let addr = SocketAddr::new(ip.parse().unwrap(), 40_000);
    req.extensions_mut().insert(PeerAddr(addr));
    req
}

fn with_header(
    mut req: Request<Full<Bytes>>,
    name: &'static str,
    value: &str,
) -> Request<Full<Bytes>> {
    req.headers_mut()
        .append(name, http::HeaderValue::from_str(value).unwrap());
    req
}

async fn scoped_key(h: &Harness, scopes: &[&str]) -> String {
    h.key(ACCOUNT, scopes).await.1
}

async fn key_with_ips(h: &Harness, ips: &[&str]) -> String {
    h.key_with(ACCOUNT, NewKey::named("ip key").ips(ips.iter().copied()))
        .await
        .1
}

fn assert_refused(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.code(), code, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
}

fn message(answer: &Answer) -> String {
    answer.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

// ---------------------------------------------------------------- route requirements

#[tokio::test]
async fn any_of_requirement_passes_with_any_one_listed_scope() {
    let h = Harness::new();
    let req = ScopeRequirement::any_of(["invoices:read", "invoices:write"]);
    let mut svc = service(h.gate.layer().require(req));
    for scopes in [
        &["invoices:read"][..],
        &["invoices:write"],
        &["x", "invoices:read"],
    ] {
        let key = scoped_key(&h, scopes).await;
        let answer = send(&mut svc, get("/", Some(&key))).await;
        assert_eq!(answer.status, 200, "{scopes:?}: {answer:?}");
    }
    for scopes in [&[][..], &["charges:read"], &["invoices"]] {
        let key = scoped_key(&h, scopes).await;
        let answer = send(&mut svc, get("/", Some(&key))).await;
        assert_refused(&answer, 403, "insufficient_scope");
        assert_eq!(
            message(&answer),
            "This endpoint requires 'invoices:read' or 'invoices:write' scope"
        );
    }
}

#[tokio::test]
async fn all_of_requirement_needs_every_listed_scope() {
    let h = Harness::new();
    let mut svc = service(
        h.gate
            .layer()
            .require(ScopeRequirement::all_of(["charges:read", "refunds:write"])),
    );
    let both = scoped_key(&h, &["refunds:write", "charges:read"]).await;
    assert_eq!(send(&mut svc, get("/", Some(&both))).await.status, 200);
    for scopes in [&["charges:read"][..], &["refunds:write"], &[]] {
        let key = scoped_key(&h, scopes).await;
        let answer = send(&mut svc, get("/", Some(&key))).await;
        assert_refused(&answer, 403, "insufficient_scope");
        assert_eq!(
            message(&answer),
            "This endpoint requires 'charges:read' and 'refunds:write' scopes"
        );
    }
}

#[tokio::test]
async fn require_any_and_require_all_shorthands_behave_like_require() {
    let h = Harness::new();
    let one = scoped_key(&h, &["a"]).await;
    let mut any = service(h.gate.layer().require_any(["a", "b"]));
    let mut all = service(h.gate.layer().require_all(["a", "b"]));
    assert_eq!(send(&mut any, get("/", Some(&one))).await.status, 200);
    assert_refused(
        &send(&mut all, get("/", Some(&one))).await,
        403,
        "insufficient_scope",
    );
}

#[tokio::test]
async fn insufficient_scope_carries_an_rfc6750_challenge_naming_the_scopes() {
    let h = Harness::new();
    let key = scoped_key(&h, &["read-only"]).await;
    let mut svc = service(h.gate.layer().require_any(["authorizer", "admin"]));
    let answer = send(&mut svc, get("/v1/revocations/srl", Some(&key))).await;
    assert_refused(&answer, 403, "insufficient_scope");
    assert_eq!(
        answer.header("www-authenticate"),
        Some(
            "Bearer realm=\"api\", error=\"insufficient_scope\", \
             error_description=\"This endpoint requires 'authorizer' or 'admin' scope\", \
             scope=\"authorizer admin\""
        )
    );
}

#[tokio::test]
async fn scope_refusal_is_a_403_not_a_401() {
    let h = Harness::new();
    let key = scoped_key(&h, &["a"]).await;
    let answer = send(
        &mut service(h.gate.layer().require_any(["b"])),
        get("/", Some(&key)),
    )
    .await;
    assert_eq!(answer.status, 403);
    assert!(!answer
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
}

// ---------------------------------------------------------------- implications

#[tokio::test]
async fn admin_grants_every_scope_by_default() {
    let h = Harness::new();
    let admin = scoped_key(&h, &["admin"]).await;
    let mut svc = service(
        h.gate
            .layer()
            .require_all(["anything:at-all", "charges:write"]),
    );
    assert_eq!(send(&mut svc, get("/", Some(&admin))).await.status, 200);
}

fn stripe_like() -> ScopeImplications {
    ScopeImplications::new()
        .grants_all("admin")
        .write_implies_read()
        .implies("billing", ["invoices:read", "charges:read"])
        .implies("ops", ["charges:write"])
}

#[tokio::test]
async fn write_implies_read_when_configured() {
    let h = Harness::with(|b| b.scope_implications(stripe_like()));
    let writer = scoped_key(&h, &["charges:write"]).await;
    let reader = scoped_key(&h, &["charges:read"]).await;
    let mut read_route = service(h.gate.layer().require_any(["charges:read"]));
    let mut write_route = service(h.gate.layer().require_any(["charges:write"]));
    assert_eq!(
        send(&mut read_route, get("/", Some(&writer))).await.status,
        200
    );
    assert_eq!(
        send(&mut read_route, get("/", Some(&reader))).await.status,
        200
    );
    assert_eq!(
        send(&mut write_route, get("/", Some(&writer))).await.status,
        200
    );
    assert_refused(
        &send(&mut write_route, get("/", Some(&reader))).await,
        403,
        "insufficient_scope",
    );
    // write:read only pairs the same resource.
    let mut other = service(h.gate.layer().require_any(["refunds:read"]));
    assert_refused(
        &send(&mut other, get("/", Some(&writer))).await,
        403,
        "insufficient_scope",
    );
}

#[tokio::test]
async fn named_implications_apply_transitively() {
    let h = Harness::with(|b| b.scope_implications(stripe_like()));
    let billing = scoped_key(&h, &["billing"]).await;
    let ops = scoped_key(&h, &["ops"]).await;
    let admin = scoped_key(&h, &["admin"]).await;
    let mut invoices = service(
        h.gate
            .layer()
            .require_all(["invoices:read", "charges:read"]),
    );
    let mut charges_read = service(h.gate.layer().require_any(["charges:read"]));
    let mut invoices_write = service(h.gate.layer().require_any(["invoices:write"]));

    assert_eq!(
        send(&mut invoices, get("/", Some(&billing))).await.status,
        200
    );
    assert_refused(
        &send(&mut invoices_write, get("/", Some(&billing))).await,
        403,
        "insufficient_scope",
    );
    // ops → charges:write → charges:read.
    assert_eq!(
        send(&mut charges_read, get("/", Some(&ops))).await.status,
        200
    );
    assert_refused(
        &send(&mut invoices, get("/", Some(&ops))).await,
        403,
        "insufficient_scope",
    );
    for svc in [&mut invoices, &mut charges_read, &mut invoices_write] {
        assert_eq!(send(svc, get("/", Some(&admin))).await.status, 200);
    }

    let identity: Identity = h.gate.verify_key(&ops).await.unwrap();
    assert!(identity.has_scope("charges:read"));
    assert!(!identity.has_scope("invoices:read"));
    assert_eq!(
        identity.scopes(),
        &ScopeSet::parse(["ops"]).unwrap(),
        "the key's own scopes are unchanged"
    );
}

#[tokio::test]
async fn implications_are_configured_not_hard_coded() {
    let h = Harness::with(|b| b.scope_implications(ScopeImplications::new()));
    let admin = scoped_key(&h, &["admin"]).await;
    let writer = scoped_key(&h, &["charges:write"]).await;
    let mut svc = service(h.gate.layer().require_any(["charges:read"]));
    assert_refused(
        &send(&mut svc, get("/", Some(&admin))).await,
        403,
        "insufficient_scope",
    );
    assert_refused(
        &send(&mut svc, get("/", Some(&writer))).await,
        403,
        "insufficient_scope",
    );

    let custom =
        Harness::with(|b| b.scope_implications(ScopeImplications::new().grants_all("root")));
    let root = scoped_key(&custom, &["root"]).await;
    let admin = scoped_key(&custom, &["admin"]).await;
    let mut svc = service(custom.gate.layer().require_any(["charges:read"]));
    assert_eq!(send(&mut svc, get("/", Some(&root))).await.status, 200);
    assert_refused(
        &send(&mut svc, get("/", Some(&admin))).await,
        403,
        "insufficient_scope",
    );
}

// ---------------------------------------------------------------- read-only keys

const SAFE: [Method; 3] = [Method::GET, Method::HEAD, Method::OPTIONS];
const UNSAFE: [Method; 4] = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

#[tokio::test]
async fn read_only_key_may_use_only_safe_methods() {
    let h = Harness::new();
    let key = scoped_key(&h, &["read-only"]).await;
    let mut svc = service(h.gate.layer());
    for method in SAFE {
        let answer = send(&mut svc, request(method.clone(), "/v1/keys", Some(&key))).await;
        assert_eq!(answer.status, 200, "{method}: {answer:?}");
    }
    for method in UNSAFE {
        let answer = send(&mut svc, request(method.clone(), "/v1/keys", Some(&key))).await;
        assert_refused(&answer, 403, "insufficient_scope");
        assert!(
            message(&answer).contains("read-only"),
            "{method}: {answer:?}"
        );
        assert!(answer
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"insufficient_scope\""));
    }
}

#[tokio::test]
async fn read_only_scope_restricts_even_a_key_that_also_holds_admin() {
    let h = Harness::new();
    let key = scoped_key(&h, &["admin", "read-only"]).await;
    let mut svc = service(h.gate.layer());
    assert_eq!(
        send(&mut svc, request(Method::GET, "/", Some(&key)))
            .await
            .status,
        200
    );
    assert_refused(
        &send(&mut svc, request(Method::DELETE, "/", Some(&key))).await,
        403,
        "insufficient_scope",
    );
}

#[tokio::test]
async fn read_only_key_hears_the_missing_route_scope_before_the_read_only_rule() {
    let h = Harness::new();
    let key = scoped_key(&h, &["read-only"]).await;
    let mut admin_route = service(h.gate.layer().require_any(["admin"]));
    let answer = send(&mut admin_route, request(Method::POST, "/", Some(&key))).await;
    assert_refused(&answer, 403, "insufficient_scope");
    assert_eq!(message(&answer), "This endpoint requires 'admin' scope");

    // Where the key holds the route's scope, the read-only rule is what refuses it.
    let mut readable = service(h.gate.layer().require_any(["admin", "read-only"]));
    assert_eq!(send(&mut readable, get("/", Some(&key))).await.status, 200);
    let answer = send(&mut readable, request(Method::POST, "/", Some(&key))).await;
    assert_refused(&answer, 403, "insufficient_scope");
    assert_eq!(
        message(&answer),
        "This API key is read-only and can only be used with GET, HEAD and OPTIONS"
    );
}

#[tokio::test]
async fn other_keys_may_use_every_method() {
    let h = Harness::new();
    let key = scoped_key(&h, &["writer"]).await;
    let mut svc = service(h.gate.layer());
    for method in SAFE.into_iter().chain(UNSAFE) {
        let answer = send(&mut svc, request(method.clone(), "/", Some(&key))).await;
        assert_eq!(answer.status, 200, "{method}: {answer:?}");
    }
}

#[tokio::test]
async fn read_only_scopes_are_configurable_vidbeo_fetch() {
    let h = Harness::with(|b| b.read_only_scopes(ScopeSet::parse(["fetch"]).unwrap()));
    let fetch = scoped_key(&h, &["fetch"]).await;
    let tenuo_style = scoped_key(&h, &["read-only"]).await;
    let mut svc = service(h.gate.layer());
    for method in SAFE {
        let answer = send(&mut svc, request(method.clone(), "/videos", Some(&fetch))).await;
        assert_eq!(answer.status, 200, "{method}");
    }
    for method in UNSAFE {
        let answer = send(&mut svc, request(method.clone(), "/videos", Some(&fetch))).await;
        assert_refused(&answer, 403, "insufficient_scope");
        // `read-only` is just a scope name on this deployment.
        let answer = send(
            &mut svc,
            request(method.clone(), "/videos", Some(&tenuo_style)),
        )
        .await;
        assert_eq!(answer.status, 200, "{method}");
    }
    assert!(h.gate.verify_key(&fetch).await.unwrap().is_read_only());
    assert!(!h
        .gate
        .verify_key(&tenuo_style)
        .await
        .unwrap()
        .is_read_only());
}

// ---------------------------------------------------------------- policy table

fn tenuo_policy() -> ScopePolicy {
    ScopePolicy::new()
        .route(
            Method::GET,
            "/v1/keys",
            ScopeRequirement::any_of(["admin", "read-only"]),
        )
        .route(Method::POST, "/v1/keys", ScopeRequirement::scope("admin"))
        .route(
            Method::DELETE,
            "/v1/keys/{id}",
            ScopeRequirement::scope("admin"),
        )
        .route(
            Method::GET,
            "/v1/revocations/srl",
            ScopeRequirement::any_of(["authorizer", "admin"]),
        )
        .route(
            Method::POST,
            "/v1/revocations",
            ScopeRequirement::scope("admin"),
        )
        .any_method("/internal/*", ScopeRequirement::scope("ops"))
}

#[tokio::test]
async fn policy_table_maps_method_and_path_to_requirements() {
    let h = Harness::new();
    let authorizer = scoped_key(&h, &["authorizer"]).await;
    let ops = scoped_key(&h, &["ops"]).await;
    let mut svc = service(h.gate.layer().policy(tenuo_policy()));

    let srl = send(&mut svc, get("/v1/revocations/srl", Some(&authorizer))).await;
    assert_eq!(srl.status, 200);
    let keys = send(&mut svc, get("/v1/keys", Some(&authorizer))).await;
    assert_refused(&keys, 403, "insufficient_scope");
    assert_eq!(
        message(&keys),
        "This endpoint requires 'admin' or 'read-only' scope"
    );
    let delete = send(
        &mut svc,
        request(Method::DELETE, "/v1/keys/ak_123", Some(&authorizer)),
    )
    .await;
    assert_eq!(message(&delete), "This endpoint requires 'admin' scope");
    assert!(delete
        .header("www-authenticate")
        .unwrap()
        .ends_with("scope=\"admin\""));

    // `*` covers the rest of the path, for every method.
    for method in [Method::GET, Method::POST] {
        let answer = send(
            &mut svc,
            request(method.clone(), "/internal/a/b", Some(&ops)),
        )
        .await;
        assert_eq!(answer.status, 200, "{method}");
        let answer = send(
            &mut svc,
            request(method, "/internal/a/b", Some(&authorizer)),
        )
        .await;
        assert_refused(&answer, 403, "insufficient_scope");
    }

    // Unmatched requests are allowed by default.
    let unmatched = send(&mut svc, get("/v1/health", Some(&authorizer))).await;
    assert_eq!(unmatched.status, 200);
}

#[tokio::test]
async fn policy_with_unmatched_deny_refuses_unlisted_routes() {
    let h = Harness::new();
    let admin_like = scoped_key(&h, &["authorizer"]).await;
    let admin = scoped_key(&h, &["admin"]).await;
    let mut svc = service(
        h.gate
            .layer()
            .policy(tenuo_policy().unmatched(Unmatched::Deny)),
    );
    assert_eq!(
        send(&mut svc, get("/v1/revocations/srl", Some(&admin_like)))
            .await
            .status,
        200
    );
    for (method, path) in [
        (Method::GET, "/v1/unknown"),
        (Method::PUT, "/v1/keys"),
        (Method::GET, "/v1/revocations/srl/extra"),
    ] {
        let answer = send(&mut svc, request(method.clone(), path, Some(&admin_like))).await;
        assert_refused(&answer, 403, "insufficient_scope");
        // Deny by default holds even for admin keys.
        let answer = send(&mut svc, request(method, path, Some(&admin))).await;
        assert_refused(&answer, 403, "insufficient_scope");
    }
}

#[tokio::test]
async fn policy_first_matching_row_wins() {
    let h = Harness::new();
    let a = scoped_key(&h, &["a"]).await;
    let policy = ScopePolicy::new()
        .route(Method::GET, "/things/special", ScopeRequirement::scope("a"))
        .route(Method::GET, "/things/{id}", ScopeRequirement::scope("b"));
    let mut svc = service(h.gate.layer().policy(policy));
    assert_eq!(
        send(&mut svc, get("/things/special", Some(&a)))
            .await
            .status,
        200
    );
    assert_refused(
        &send(&mut svc, get("/things/other", Some(&a))).await,
        403,
        "insufficient_scope",
    );
}

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
