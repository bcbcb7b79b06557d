//! Issue 2, keygate core: reading the key, checking it, caching it and answering.
//!
//! Most tests go through the tower stack with `send`; the `over_tcp_*` tests go over a
//! real loopback connection with a real HTTP client.

mod common;
use common::*;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get as get_route;
use axum::{Json, Router};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Response};
use http_body_util::Full;
use keygate::manage::Revoked;
use keygate::{
    AccountId, AuthError, CacheConfig, Environment, Identity, KeyFormat, KeyHasher, KeyStoreWrite,
    KeyUpdate, Keygate, MemoryStore, NewKey, Rejection,
};

const ACCOUNT: &str = "acct_1";

fn account() -> AccountId {
    AccountId::from(ACCOUNT)
}

/// `key` with one character of its random part changed: the checksum no longer matches.
fn typo(key: &str) -> String {
    let mut bytes = key.as_bytes().to_vec();
    let i = key.len() - 12;
    bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
    String::from_utf8(bytes).unwrap()
}

/// A well-formed key (valid checksum) that no store holds.
fn unknown_key(prefix: &str) -> String {
    let format = KeyFormat::default();
    format
        .generate(format.prefix(prefix).unwrap())
        .unwrap()
        .expose_secret()
        .to_owned()
}

fn with_header(mut req: Request<Full<Bytes>>, name: &str, value: &str) -> Request<Full<Bytes>> {
    req.headers_mut().append(
        HeaderName::from_bytes(name.as_bytes()).unwrap(),
        HeaderValue::from_str(value).unwrap(),
    );
    req
}

fn with_authorization(value: &str) -> Request<Full<Bytes>> {
    with_header(get("/", None), "authorization", value)
}

/// The layer of `gate` over [`echo`].
fn service_for(
    gate: &Keygate,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<keygate::layer::ResponseBody<Full<Bytes>>>,
    Error = std::convert::Infallible,
> + Clone {
    tower::ServiceBuilder::new()
        .layer(gate.layer())
        .service_fn(echo)
}

fn assert_json_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.code(), code, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
}

// ---------------------------------------------------------------- extraction

#[tokio::test]
async fn missing_header_is_401_unauthorized_with_a_bare_bearer_challenge() {
    let h = Harness::new();
    let answer = send(&mut h.service(), get("/", None)).await;
    assert_json_error(&answer, 401, "unauthorized");
    assert_eq!(
        answer.json()["error"]["message"],
        "Authorization header is required"
    );
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );
    assert_eq!(h.store.lookups(), 0);
}

#[tokio::test]
async fn realm_is_configurable() {
    let h = Harness::with(|b| b.realm("payments"));
    let answer = send(&mut h.service(), get("/", None)).await;
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"payments\"")
    );
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive_and_extra_whitespace_is_tolerated() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    for value in [
        format!("Bearer {key}"),
        format!("bearer {key}"),
        format!("BEARER {key}"),
        format!("bEaReR    {key}"),
        format!("Bearer\t{key}"),
        format!("  Bearer  {key}  "),
    ] {
        let answer = send(&mut svc, with_authorization(&value)).await;
        assert_eq!(answer.status, 200, "{value:?}: {answer:?}");
        assert_eq!(answer.json()["id"], id.as_str());
    }
}

#[tokio::test]
async fn two_authorization_headers_are_400_invalid_request() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let req = with_header(get("/", Some(&key)), "authorization", &bearer(&key));
    let answer = send(&mut h.service(), req).await;
    assert_json_error(&answer, 400, "invalid_request");
    let challenge = answer.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer realm=\"api\""), "{challenge}");
    assert!(
        challenge.contains("error=\"invalid_request\""),
        "{challenge}"
    );
    assert_eq!(h.store.lookups(), 0);
}

#[tokio::test]
async fn malformed_authorization_values_are_400_invalid_request_without_lookups() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    let cases = [
        format!("Basic {key}"),
        format!("Token {key}"),
        format!("Bearer{key}"),
        "Bearer".to_owned(),
        "Bearer    ".to_owned(),
        format!("Bearer {key} extra"),
        format!("Bearer {key}%"),
        "Bearer sk_test_ab\"cd".to_owned(),
        "Bearer sk_test_{abc}".to_owned(),
    ];
    for value in &cases {
        let answer = send(&mut svc, with_authorization(value)).await;
        assert_json_error(&answer, 400, "invalid_request");
        assert!(answer
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_request\""));
        assert!(!answer.body.contains(&key), "the key is echoed: {answer:?}");
    }
    assert_eq!(h.store.lookups(), 0);
}

#[tokio::test]
async fn non_ascii_authorization_value_is_400_invalid_request() {
    let h = Harness::new();
    let mut req = get("/", None);
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_bytes(b"Bearer sk_test_\xff\xfe").unwrap(),
    );
    let answer = send(&mut h.service(), req).await;
    assert_json_error(&answer, 400, "invalid_request");
}

#[tokio::test]
async fn over_long_authorization_value_is_400_invalid_request() {
    let h = Harness::new();
    let long = format!(
        "Bearer sk_test_{}",
        "a".repeat(keygate::verify::MAX_CREDENTIAL_LEN)
    );
    let answer = send(&mut h.service(), with_authorization(&long)).await;
    assert_json_error(&answer, 400, "invalid_request");
    assert_eq!(h.store.lookups(), 0);
}

// ---------------------------------------------------------------- verification

#[tokio::test]
async fn bad_checksum_is_401_invalid_api_key_without_any_store_lookup() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    for bad in [
        typo(&key),
        format!("{key}0"),
        key[..key.len() - 1].to_owned(),
        "sk_live_notakey".to_owned(),
        "nope_0123456789".to_owned(),
    ] {
        let answer = send(&mut svc, get("/", Some(&bad))).await;
        assert_json_error(&answer, 401, "invalid_api_key");
        assert_eq!(
            answer.header("www-authenticate"),
            Some(
                "Bearer realm=\"api\", error=\"invalid_token\", \
                 error_description=\"The provided API key is invalid\""
            )
        );
    }
    assert_eq!(
        h.store.lookups(),
        0,
        "malformed keys must not reach the store"
    );
    assert_eq!(h.gate.stats().cached_entries, 0);
}

#[tokio::test]
async fn unknown_well_formed_key_is_401_and_negatively_cached() {
    let h = Harness::new();
    let stranger = unknown_key("sk_test_");
    let mut svc = h.service();
    let first = send(&mut svc, get("/", Some(&stranger))).await;
    assert_json_error(&first, 401, "invalid_api_key");
    assert_eq!(h.store.lookups(), 1);
    let second = send(&mut svc, get("/", Some(&stranger))).await;
    assert_json_error(&second, 401, "invalid_api_key");
    assert_eq!(h.store.lookups(), 1, "the miss was not cached");
}

#[tokio::test]
async fn valid_key_is_cached_after_one_lookup() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    for _ in 0..5 {
        assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    }
    assert_eq!(h.store.lookups(), 1);
}

/// A store with one key per prefix, created by an unrestricted core.
async fn keys_of_every_environment() -> (Arc<FaultyStore>, String, String, String) {
    let store = Arc::new(FaultyStore::default());
    let (_open, manager) = Keygate::managed(store.clone()).build();
    let mut keys = Vec::new();
    for prefix in ["sk_live_", "sk_test_", "tc_"] {
        let created = manager
            .create(account(), NewKey::named(prefix).prefix(prefix))
            .await
            .unwrap();
        keys.push(created.key.expose_secret().to_owned());
    }
    let tc = keys.pop().unwrap();
    let test = keys.pop().unwrap();
    let live = keys.pop().unwrap();
    (store, live, test, tc)
}

#[tokio::test]
async fn live_gate_refuses_test_keys_naming_the_key_environment() {
    let (store, live, test, _) = keys_of_every_environment().await;
    let gate = Keygate::builder(store)
        .environment(Environment::Live)
        .build();
    let mut svc = service_for(&gate);
    let refused = send(&mut svc, get("/", Some(&test))).await;
    assert_json_error(&refused, 401, "wrong_environment");
    assert_eq!(
        refused.json()["error"]["message"],
        "This is a test API key; this endpoint only accepts live keys"
    );
    assert!(refused
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));
    assert_eq!(send(&mut svc, get("/", Some(&live))).await.status, 200);
}

#[tokio::test]
async fn test_gate_refuses_live_keys_naming_the_key_environment() {
    let (store, live, test, _) = keys_of_every_environment().await;
    let gate = Keygate::builder(store)
        .environment(Environment::Test)
        .build();
    let mut svc = service_for(&gate);
    let refused = send(&mut svc, get("/", Some(&live))).await;
    assert_json_error(&refused, 401, "wrong_environment");
    assert_eq!(
        refused.json()["error"]["message"],
        "This is a live API key; this endpoint only accepts test keys"
    );
    assert_eq!(send(&mut svc, get("/", Some(&test))).await.status, 200);
}

#[tokio::test]
async fn tc_keys_are_accepted_by_an_environment_restricted_gate_only_when_configured() {
    let (store, _, _, tc) = keys_of_every_environment().await;
    for env in [Environment::Live, Environment::Test] {
        // Not configured: refused before any lookup, as a key this deployment never
        // issues.
        let gate = Keygate::builder(store.clone()).environment(env).build();
        let before = store.lookups();
        let answer = send(&mut service_for(&gate), get("/", Some(&tc))).await;
        assert_json_error(&answer, 401, "invalid_api_key");
        assert_eq!(store.lookups(), before, "{env}: refused without a lookup");

        let gate = Keygate::builder(store.clone())
            .environment(env)
            .accept_environment_neutral_keys(true)
            .build();
        let answer = send(&mut service_for(&gate), get("/", Some(&tc))).await;
        assert_eq!(answer.status, 200, "{env}: {answer:?}");
        assert_eq!(answer.json()["environment"], serde_json::Value::Null);
    }
    // A gate of any environment accepts them without being told.
    let gate = Keygate::builder(store.clone()).build();
    assert!(gate.accepts_environment_neutral_keys());
    assert_eq!(
        send(&mut service_for(&gate), get("/", Some(&tc)))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn expired_key_is_refused_even_while_cached() {
    let h =
        Harness::with(|b| b.cache(CacheConfig::default().positive_ttl(Duration::from_secs(3600))));
    let expires = t0() + Duration::from_secs(60);
    let (_, key) = h
        .key_with(ACCOUNT, NewKey::named("short lived").expires_at(expires))
        .await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    h.time.advance(Duration::from_secs(59));
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    h.time.advance(Duration::from_secs(1));
    let answer = send(&mut svc, get("/", Some(&key))).await;
    assert_json_error(&answer, 401, "expired_api_key");
    assert_eq!(h.store.lookups(), 1, "refused from the cached copy");
}

#[tokio::test]
async fn revoked_key_is_rejected_even_when_cached() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    assert_eq!(h.store.lookups(), 1);
    assert_eq!(
        h.manager.revoke(&account(), &id).await.unwrap(),
        Revoked::Now
    );
    let answer = send(&mut svc, get("/", Some(&key))).await;
    assert_json_error(&answer, 401, "revoked_api_key");
    let again = send(&mut svc, get("/", Some(&key))).await;
    assert_json_error(&again, 401, "revoked_api_key");
}

#[tokio::test]
async fn key_revoked_behind_the_cache_is_rejected_once_invalidated() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);

    // Another process revokes the key straight in the store.
    let mut record = h.store.inner.get(&id).await.unwrap().unwrap();
    record.revoked_at = Some(h.clock.now());
    h.store.inner.replace(record.clone()).await.unwrap();
    assert_eq!(
        send(&mut svc, get("/", Some(&key))).await.status,
        200,
        "served from the cache until invalidated"
    );

    h.gate.invalidate(&record);
    let answer = send(&mut svc, get("/", Some(&key))).await;
    assert_json_error(&answer, 401, "revoked_api_key");
    assert_eq!(h.store.lookups(), 2);
}

#[tokio::test]
async fn disabled_key_is_refused_and_works_again_when_enabled() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    let disable = KeyUpdate::default().disabled(true);
    h.manager.update(&account(), &id, disable).await.unwrap();
    let answer = send(&mut svc, get("/", Some(&key))).await;
    assert_json_error(&answer, 401, "disabled_api_key");
    let enable = KeyUpdate::default().disabled(false);
    h.manager.update(&account(), &id, enable).await.unwrap();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
}

#[tokio::test]
async fn store_error_is_503_and_not_cached() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    h.store.set_fault(Fault::Error);
    let answer = send(&mut svc, get("/", Some(&key))).await;
    assert_json_error(&answer, 503, "store_unavailable");
    assert!(
        !answer.body.contains("injected"),
        "store error text leaked: {}",
        answer.body
    );
    assert_eq!(h.store.lookups(), 1);

    h.store.set_fault(Fault::None);
    let answer = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(h.store.lookups(), 2, "the failure was cached");
}

#[tokio::test(start_paused = true)]
async fn store_that_hangs_times_out_with_503() {
    let h = Harness::with(|b| b.store_timeout(Duration::from_secs(1)));
    let (_, key) = h.key(ACCOUNT, &[]).await;
    h.store.set_fault(Fault::Hang);
    let answer = send(&mut h.service(), get("/", Some(&key))).await;
    assert_json_error(&answer, 503, "store_unavailable");
}

#[tokio::test(start_paused = true)]
async fn hundred_concurrent_requests_with_one_uncached_key_make_one_store_call() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    h.store.set_fault(Fault::Delay(Duration::from_millis(200)));
    let svc = h.service();
    let requests = (0..100).map(|_| {
        let mut svc = svc.clone();
        let req = get("/", Some(&key));
        async move { send(&mut svc, req).await }
    });
    let answers = futures_util::future::join_all(requests).await;
    assert_eq!(answers.len(), 100);
    for answer in &answers {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json()["id"], id.as_str());
    }
    assert_eq!(h.store.lookups(), 1);
    assert_eq!(h.gate.stats().inflight_lookups, 0);
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_on_an_unknown_key_make_one_store_call() {
    let h = Harness::new();
    let stranger = unknown_key("sk_live_");
    h.store.set_fault(Fault::Delay(Duration::from_millis(200)));
    let svc = h.service();
    let requests = (0..20).map(|_| {
        let mut svc = svc.clone();
        let req = get("/", Some(&stranger));
        async move { send(&mut svc, req).await }
    });
    for answer in futures_util::future::join_all(requests).await {
        assert_json_error(&answer, 401, "invalid_api_key");
    }
    assert_eq!(h.store.lookups(), 1);
}

// ---------------------------------------------------------------- identity and errors

#[tokio::test]
async fn identity_carries_id_account_name_environment_and_scopes() {
    let h = Harness::new();
    let (id, key) = h
        .key_with(
            "acct_42",
            NewKey::named("CI pipeline key")
                .environment(Environment::Test)
                .scopes(["billing:read", "admin"]),
        )
        .await;
    assert!(key.starts_with("sk_test_"));
    let answer = send(&mut h.service(), get("/", Some(&key))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        serde_json::json!({
            "id": id.as_str(),
            "account_id": "acct_42",
            "name": "CI pipeline key",
            "environment": "test",
            "scopes": ["admin", "billing:read"],
        })
    );
}

#[tokio::test]
async fn error_body_is_exactly_error_code_and_message() {
    let h = Harness::new();
    let answer = send(&mut h.service(), get("/", Some(&unknown_key("tc_")))).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(
        answer.json(),
        serde_json::json!({
            "error": {"code": "invalid_api_key", "message": "The provided API key is invalid"}
        })
    );
}

fn vidbeo(r: &Rejection<'_>) -> Response<Bytes> {
    let body = serde_json::json!({
        "success": false,
        "result": null,
        "errors": [{"code": r.error.code(), "message": r.error.message()}],
    });
    Response::builder()
        .status(r.error.status())
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn custom_renderer_closure_shapes_the_body_and_keeps_the_challenge() {
    let gate = Keygate::builder(MemoryStore::new())
        .renderer(|r: &Rejection<'_>| vidbeo(r))
        .build();
    let answer = send(&mut service_for(&gate), get("/", None)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.json(),
        serde_json::json!({
            "success": false,
            "result": null,
            "errors": [{"code": "unauthorized", "message": "Authorization header is required"}],
        })
    );
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );

    let answer = send(&mut service_for(&gate), get("/", Some(&unknown_key("tc_")))).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["errors"][0]["code"], "invalid_api_key");
    assert!(answer
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn custom_renderer_keeps_its_own_challenge() {
    let gate = Keygate::builder(MemoryStore::new())
        .renderer(|r: &Rejection<'_>| {
            let mut res = vidbeo(r);
            res.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Key realm=\"custom\""),
            );
            res
        })
        .build();
    let answer = send(&mut service_for(&gate), get("/", None)).await;
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Key realm=\"custom\"")
    );
}

// ---------------------------------------------------------------- options

#[tokio::test]
async fn x_api_key_header_works_when_configured() {
    let h = Harness::with(|b| b.api_key_header(HeaderName::from_static("x-api-key")));
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = h.service();
    let answer = send(&mut svc, with_header(get("/", None), "x-api-key", &key)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["id"], id.as_str());

    let bad = send(
        &mut svc,
        with_header(get("/", None), "x-api-key", &typo(&key)),
    )
    .await;
    assert_json_error(&bad, 401, "invalid_api_key");

    let both = send(
        &mut svc,
        with_header(get("/", Some(&key)), "x-api-key", &key),
    )
    .await;
    assert_json_error(&both, 400, "invalid_request");

    let twice = with_header(
        with_header(get("/", None), "x-api-key", &key),
        "x-api-key",
        &key,
    );
    assert_json_error(&send(&mut svc, twice).await, 400, "invalid_request");

    // Authorization still works alongside.
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
}

#[tokio::test]
async fn x_api_key_header_is_ignored_when_not_configured() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let answer = send(
        &mut h.service(),
        with_header(get("/", None), "x-api-key", &key),
    )
    .await;
    assert_json_error(&answer, 401, "unauthorized");
    assert_eq!(h.store.lookups(), 0);
}

#[tokio::test]
async fn allow_anonymous_passes_requests_without_credentials_but_refuses_bad_ones() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let mut svc = tower::ServiceBuilder::new()
        .layer(h.gate.layer().allow_anonymous())
        .service_fn(echo);

    let anonymous = send(&mut svc, get("/", None)).await;
    assert_eq!(anonymous.status, 200);
    assert_eq!(anonymous.body, "\"anonymous\"");

    let known = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(known.json()["id"], id.as_str());

    assert_json_error(
        &send(&mut svc, get("/", Some(&typo(&key)))).await,
        401,
        "invalid_api_key",
    );
    assert_json_error(
        &send(&mut svc, get("/", Some(&unknown_key("tc_")))).await,
        401,
        "invalid_api_key",
    );
    assert_json_error(
        &send(&mut svc, with_authorization("Basic dXNlcjpwYXNz")).await,
        400,
        "invalid_request",
    );
    h.manager.revoke(&account(), &id).await.unwrap();
    assert_json_error(
        &send(&mut svc, get("/", Some(&key))).await,
        401,
        "revoked_api_key",
    );
}

#[tokio::test]
async fn exempt_paths_bypass_the_layer_entirely() {
    let h = Harness::new();
    let mut svc = tower::ServiceBuilder::new()
        .layer(h.gate.layer().exempt("/health"))
        .service_fn(echo);
    let health = send(&mut svc, get("/health", None)).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "\"anonymous\"");
    let junk = send(
        &mut svc,
        with_header(get("/health/live", None), "authorization", "junk"),
    )
    .await;
    assert_eq!(junk.status, 200);
    assert_json_error(
        &send(&mut svc, get("/v1/keys", None)).await,
        401,
        "unauthorized",
    );
    assert_json_error(&send(&mut svc, get("/", None)).await, 401, "unauthorized");
    assert_json_error(
        &send(&mut svc, get("/healthz", None)).await,
        401,
        "unauthorized",
    );
    assert_json_error(
        &send(&mut svc, get("/health-admin/x", None)).await,
        401,
        "unauthorized",
    );
    assert_eq!(h.store.lookups(), 0);
}

// ---------------------------------------------------------------- secrets, verify_key, pepper

#[tokio::test]
async fn plaintext_never_appears_in_debug_output() {
    let h = Harness::new();
    let created = h
        .manager
        .create(account(), NewKey::named("debug me").scopes(["admin"]))
        .await
        .unwrap();
    let key = created.key.expose_secret().to_owned();
    let secret = &key[created.key.prefix().len()..];
    let identity = h.gate.verify_key(&key).await.unwrap();
    let record = h.store.inner.get(&created.view.id).await.unwrap().unwrap();
    let digest_hex = record.digest.to_hex();

    let outputs = [
        format!("{created:?}"),
        format!("{created:#?}"),
        format!("{:?}", created.key),
        format!("{}", created.key),
        format!("{identity:?}"),
        format!("{record:?}"),
        format!("{record:#?}"),
        serde_json::to_string(&identity).unwrap(),
        serde_json::to_string(&created.view).unwrap(),
        format!("{:?}", h.gate),
    ];
    for out in &outputs {
        assert!(!out.contains(secret), "secret in {out}");
        assert!(!out.contains(&digest_hex), "digest in {out}");
    }
    assert!(format!("{:?}", created.key).contains("[redacted]"));
    assert_eq!(
        format!("{}", created.key),
        format!("{}[redacted]", created.key.prefix())
    );
}

#[tokio::test]
async fn verify_key_checks_format_store_and_status() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &["admin"]).await;
    let identity = h.gate.verify_key(&key).await.unwrap();
    assert_eq!(identity.key_id(), &id);
    assert_eq!(identity.account_id().as_str(), ACCOUNT);
    assert!(identity.has_scope("admin"));

    assert_eq!(
        h.gate.verify_key(&typo(&key)).await.unwrap_err(),
        AuthError::InvalidKey
    );
    assert_eq!(h.store.lookups(), 1, "a typo never reaches the store");
    assert_eq!(
        h.gate.verify_key(&unknown_key("tc_")).await.unwrap_err(),
        AuthError::InvalidKey
    );
    h.manager.revoke(&account(), &id).await.unwrap();
    assert_eq!(
        h.gate.verify_key(&key).await.unwrap_err(),
        AuthError::RevokedKey
    );
}

#[tokio::test]
async fn peppered_digests_round_trip_and_differ_from_plain_sha256() {
    let pepper = b"server-side pepper, kept outside the database";
    let h = Harness::with(|b| b.hasher(KeyHasher::with_pepper(pepper)));
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let answer = send(&mut h.service(), get("/", Some(&key))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["id"], id.as_str());

    let record = h.store.inner.get(&id).await.unwrap().unwrap();
    assert_eq!(record.digest, KeyHasher::with_pepper(pepper).digest(&key));
    assert_ne!(record.digest, KeyHasher::sha256().digest(&key));

    for hasher in [
        KeyHasher::sha256(),
        KeyHasher::with_pepper(b"another pepper"),
    ] {
        let other = Keygate::builder(h.store.clone()).hasher(hasher).build();
        let refused = send(&mut service_for(&other), get("/", Some(&key))).await;
        assert_json_error(&refused, 401, "invalid_api_key");
    }
}

// ---------------------------------------------------------------- axum

async fn whoami(identity: Identity) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "identity": identity,
        "metadata": identity.metadata(),
        "read_only": identity.is_read_only(),
    }))
}

async fn maybe_whoami(identity: Option<Identity>) -> String {
    identity.map_or_else(|| "anonymous".to_owned(), |i| i.key_id().to_string())
}

#[tokio::test]
async fn axum_identity_extractor_receives_the_identity() {
    let h = Harness::new();
    let mut metadata = serde_json::Map::new();
    metadata.insert("team".into(), "payments".into());
    let (id, key) = h
        .key_with(
            ACCOUNT,
            NewKey::named("axum")
                .scopes(["read-only"])
                .metadata(metadata),
        )
        .await;
    let mut app = Router::new()
        .route("/v1/whoami", get_route(whoami))
        .layer(h.gate.layer());
    let answer = send(&mut app, get("/v1/whoami", Some(&key))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["identity"]["id"], id.as_str());
    assert_eq!(body["identity"]["scopes"], serde_json::json!(["read-only"]));
    assert_eq!(body["metadata"]["team"], "payments");
    assert_eq!(body["read_only"], true);

    let refused = send(&mut app, get("/v1/whoami", None)).await;
    assert_json_error(&refused, 401, "unauthorized");
}

#[tokio::test]
async fn axum_identity_extractor_without_the_layer_is_a_500_naming_the_layer() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let mut app = Router::new().route("/v1/whoami", get_route(whoami));
    let answer = send(&mut app, get("/v1/whoami", Some(&key))).await;
    assert_json_error(&answer, 500, "keygate_layer_missing");
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("layer"), "{message}");
    assert_eq!(h.store.lookups(), 0);
}

#[tokio::test]
async fn axum_optional_identity_is_none_for_anonymous_callers() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let mut app = Router::new()
        .route("/", get_route(maybe_whoami))
        .layer(h.gate.layer().allow_anonymous());
    assert_eq!(send(&mut app, get("/", None)).await.body, "anonymous");
    assert_eq!(send(&mut app, get("/", Some(&key))).await.body, id.as_str());

    // Without the layer it is simply absent: no 500.
    let mut bare = Router::new().route("/", get_route(maybe_whoami));
    let answer = send(&mut bare, get("/", Some(&key))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "anonymous");
}

// ---------------------------------------------------------------- real loopback TCP

async fn serve_whoami(h: &Harness) -> std::net::SocketAddr {
    serve(
        Router::new()
            .route("/v1/whoami", get_route(whoami))
            .layer(h.gate.layer()),
    )
    .await
}

#[tokio::test]
async fn over_tcp_valid_key_reaches_the_handler_with_its_identity() {
    let h = Harness::new();
    let (id, key) = h
        .key_with(ACCOUNT, NewKey::named("tcp").environment(Environment::Live))
        .await;
    let addr = serve_whoami(&h).await;
    let auth = bearer(&key);
    let answer = http(
        addr,
        Method::GET,
        "/v1/whoami",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["identity"]["id"], id.as_str());
    assert_eq!(answer.json()["identity"]["environment"], "live");
    assert!(!answer.body.contains(&key));

    let lower = format!("bearer   {key}");
    let answer = http(
        addr,
        Method::GET,
        "/v1/whoami",
        &[("authorization", &lower)],
        "",
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn over_tcp_missing_header_is_401_with_bare_challenge() {
    let h = Harness::new();
    let addr = serve_whoami(&h).await;
    let answer = http(addr, Method::GET, "/v1/whoami", &[], "").await;
    assert_json_error(&answer, 401, "unauthorized");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );
}

#[tokio::test]
async fn over_tcp_malformed_credentials_are_refused() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let addr = serve_whoami(&h).await;
    let auth = bearer(&key);

    let twice = [
        ("authorization", auth.as_str()),
        ("authorization", auth.as_str()),
    ];
    let answer = http(addr, Method::GET, "/v1/whoami", &twice, "").await;
    assert_json_error(&answer, 400, "invalid_request");

    let basic = [("authorization", "Basic dXNlcjpwYXNz")];
    let answer = http(addr, Method::GET, "/v1/whoami", &basic, "").await;
    assert_json_error(&answer, 400, "invalid_request");

    let bad = bearer(&typo(&key));
    let answer = http(
        addr,
        Method::GET,
        "/v1/whoami",
        &[("authorization", &bad)],
        "",
    )
    .await;
    assert_json_error(&answer, 401, "invalid_api_key");
    assert_eq!(h.store.lookups(), 0);
}

#[tokio::test]
async fn over_tcp_revoked_key_is_refused_on_the_next_request() {
    let h = Harness::new();
    let (id, key) = h.key(ACCOUNT, &[]).await;
    let addr = serve_whoami(&h).await;
    let auth = bearer(&key);
    let headers = [("authorization", auth.as_str())];
    assert_eq!(
        http(addr, Method::GET, "/v1/whoami", &headers, "")
            .await
            .status,
        200
    );
    h.manager.revoke(&account(), &id).await.unwrap();
    let answer = http(addr, Method::GET, "/v1/whoami", &headers, "").await;
    assert_json_error(&answer, 401, "revoked_api_key");
}

#[tokio::test]
async fn over_tcp_store_failure_is_503_then_recovers() {
    let h = Harness::new();
    let (_, key) = h.key(ACCOUNT, &[]).await;
    let addr = serve_whoami(&h).await;
    let auth = bearer(&key);
    let headers = [("authorization", auth.as_str())];
    h.store.set_fault(Fault::Error);
    let answer = http(addr, Method::GET, "/v1/whoami", &headers, "").await;
    assert_json_error(&answer, 503, "store_unavailable");
    h.store.set_fault(Fault::None);
    assert_eq!(
        http(addr, Method::GET, "/v1/whoami", &headers, "")
            .await
            .status,
        200
    );
}

// ---------------------------------------------------------------- tower semantics

/// An inner service that must be polled ready before every call; a clone starts unready,
/// like a service holding a concurrency permit.
struct MustBeReady {
    ready: bool,
}

impl Clone for MustBeReady {
    fn clone(&self) -> Self {
        Self { ready: false }
    }
}

impl tower::Service<http::Request<http_body_util::Full<bytes::Bytes>>> for MustBeReady {
    type Response = http::Response<http_body_util::Full<bytes::Bytes>>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.ready = true;
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<http_body_util::Full<bytes::Bytes>>) -> Self::Future {
        assert!(
            self.ready,
            "called a service that poll_ready did not prepare"
        );
        self.ready = false;
        std::future::ready(Ok(http::Response::new(http_body_util::Full::default())))
    }
}

#[tokio::test]
async fn the_inner_service_called_is_the_one_poll_ready_prepared() {
    let h = Harness::new();
    let (_, key) = h.key("acct", &[]).await;
    let mut svc = tower::Layer::layer(&h.gate.layer(), MustBeReady { ready: false });
    // A miss (store lookup in the future) and then a hit (called from `call`).
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    assert_eq!(h.store.lookups(), 1);
}

#[tokio::test]
async fn a_key_cached_by_one_keygate_is_unknown_to_another_on_the_same_thread() {
    let a = Harness::new();
    let b = Harness::new();
    let (_, key) = a.key("acct", &[]).await;
    let mut on_a = a.service();
    let mut on_b = b.service();
    for _ in 0..3 {
        assert_eq!(send(&mut on_a, get("/", Some(&key))).await.status, 200);
        let res = send(&mut on_b, get("/", Some(&key))).await;
        assert_eq!(res.status, 401);
        assert_eq!(res.code(), "invalid_api_key");
    }
}

#[tokio::test]
async fn repeated_refusals_are_identical_and_custom_renderers_run_every_time() {
    let h = Harness::new();
    let mut svc = h.service();
    let first = send(&mut svc, get("/", Some("sk_test_junk"))).await;
    for _ in 0..3 {
        let again = send(&mut svc, get("/", Some("sk_test_junk"))).await;
        assert_eq!(again.status, first.status);
        assert_eq!(again.headers, first.headers);
        assert_eq!(again.body, first.body);
        assert_eq!(again.code(), "invalid_api_key");
    }

    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let h = Harness::with(move |b| {
        b.renderer(move |r: &keygate::Rejection<'_>| {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            http::Response::builder()
                .status(r.error.status())
                .body(bytes::Bytes::from(format!("refusal #{n}")))
                .unwrap()
        })
    });
    let mut svc = h.service();
    for i in 0..3 {
        let res = send(&mut svc, get("/", None)).await;
        assert_eq!(res.body, format!("refusal #{i}"));
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
}
