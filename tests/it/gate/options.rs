//! Layer options: the `X-API-Key` header, anonymous access and exempt paths.

use crate::common::*;
use crate::gate::support::*;
use http::header::HeaderName;

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
