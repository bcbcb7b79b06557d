//! Who may call: the caller's scopes, the account boundary, and the layer in front.

use super::*;

// ---------------------------------------------------------------------------------------
// Scopes of the caller

#[tokio::test]
async fn a_read_only_key_can_read_but_not_write() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, _, _) = api.create(&admin, json!({"name": "target"})).await;
    let (_, reader) = api.h.key("acct_1", &["read-only"]).await;

    assert_eq!(api.get("/v1/api-keys", &reader).await.status, 200);
    assert_eq!(api.get(&key_path(&id), &reader).await.status, 200);

    let refused = [
        api.post(
            "/v1/api-keys",
            &reader,
            json!({"name": "k", "scopes": ["read-only"]}),
        )
        .await,
        api.patch(&key_path(&id), &reader, json!({"name": "renamed"}))
            .await,
        api.delete(&key_path(&id), &reader).await,
        api.post(&format!("/v1/api-keys/{id}/roll"), &reader, json!({}))
            .await,
    ];
    for a in &refused {
        assert_error(a, 403, "insufficient_scope");
    }
    let record = api.get(&key_path(&id), &admin).await.json();
    assert_eq!(record["name"], "target");
    assert_eq!(record["revoked_at"], Value::Null);
}

#[tokio::test]
async fn keys_without_admin_or_read_only_and_requests_without_keys_are_refused() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, _, _) = api.create(&admin, json!({"name": "target"})).await;
    let (_, other) = api.h.key("acct_1", &["charges:read", "keys:write"]).await;
    for path in ["/v1/api-keys".to_owned(), key_path(&id)] {
        let a = api.get(&path, &other).await;
        assert_error(&a, 403, "insufficient_scope");
        let challenge = a.header("www-authenticate").unwrap();
        assert!(
            challenge.contains("scope=\"admin read-only\""),
            "{challenge}"
        );
        let a = api.call(Method::GET, &path, None, "").await;
        assert_error(&a, 401, "unauthorized");
    }
    let a = api.post("/v1/api-keys", &other, json!({"name": "k"})).await;
    assert_error(&a, 403, "insufficient_scope");
}

#[tokio::test]
async fn an_admin_key_can_create_admin_keys_over_http() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (_, minted, body) = api
        .create(&admin, json!({"name": "deputy", "scopes": ["admin"]}))
        .await;
    assert_eq!(body["scopes"], json!(["admin"]));
    // The new admin key can itself manage keys.
    let (_, _, grandchild) = api.create(&minted, json!({"name": "grandchild"})).await;
    assert_eq!(grandchild["name"], "grandchild");
}

#[tokio::test]
async fn a_test_admin_key_cannot_create_a_live_key_over_http() {
    let api = Api::new().await;
    let (_, admin) = api
        .h
        .key_with(
            "acct_1",
            NewKey::named("test admin")
                .scopes(["admin"])
                .environment(Environment::Test),
        )
        .await;
    for body in [
        json!({"name": "live", "environment": "live"}),
        json!({"name": "live", "prefix": "sk_live_"}),
    ] {
        let a = api.post("/v1/api-keys", &admin, body).await;
        assert_error(&a, 403, "insufficient_scope");
    }
    let (_, key, body) = api.create(&admin, json!({"name": "test"})).await;
    assert_eq!(body["environment"], "test");
    assert!(key.starts_with("sk_test_"));
}

// ---------------------------------------------------------------------------------------
// Account boundary

#[tokio::test]
async fn a_key_sees_and_changes_only_its_own_accounts_keys() {
    let api = Api::new().await;
    let (_, admin_a) = api.h.key("acct_a", &["admin"]).await;
    let (_, admin_b) = api.h.key("acct_b", &["admin"]).await;
    let (b_id, b_key, _) = api
        .create(
            &admin_b,
            json!({"name": "b's key", "scopes": ["read-only"]}),
        )
        .await;

    assert_error(&api.get(&key_path(&b_id), &admin_a).await, 404, "not_found");
    assert_error(
        &api.patch(&key_path(&b_id), &admin_a, json!({"name": "pwned"}))
            .await,
        404,
        "not_found",
    );
    assert_error(
        &api.delete(&key_path(&b_id), &admin_a).await,
        404,
        "not_found",
    );
    assert_error(
        &api.post(&format!("/v1/api-keys/{b_id}/roll"), &admin_a, json!({}))
            .await,
        404,
        "not_found",
    );

    let listed = api.get("/v1/api-keys", &admin_a).await.json();
    let data = listed["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_ne!(data[0]["id"], b_id.as_str());

    // Untouched: B still sees its key as it was, and the key still works.
    let record = api.get(&key_path(&b_id), &admin_b).await.json();
    assert_eq!(record["name"], "b's key");
    assert_eq!(record["revoked_at"], Value::Null);
    assert_eq!(api.get("/v1/api-keys", &b_key).await.status, 200);
}

// ---------------------------------------------------------------------------------------
// The layer in front of the API

#[tokio::test]
async fn api_responses_carry_rate_limit_headers_and_honour_ip_allowlists() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let a = api.get("/v1/api-keys", &admin).await;
    assert_eq!(a.header("x-ratelimit-limit"), Some("2000"));
    assert_eq!(a.header("x-ratelimit-remaining"), Some("1999"));

    // Served with connect info: the loopback peer is the client IP.
    let (_, local, _) = api
        .create(
            &admin,
            json!({"name": "local", "scopes": ["admin"], "ips": ["127.0.0.1"]}),
        )
        .await;
    assert_eq!(api.get("/v1/api-keys", &local).await.status, 200);
    let (_, remote, _) = api
        .create(
            &admin,
            json!({"name": "remote", "scopes": ["admin"], "ips": ["10.0.0.0/8"]}),
        )
        .await;
    assert_error(
        &api.get("/v1/api-keys", &remote).await,
        403,
        "ip_not_allowed",
    );
}

#[tokio::test]
async fn the_router_works_in_process_with_oneshot() {
    let h = Harness::new();
    let (_, admin) = h.key("acct_1", &["admin"]).await;
    let app = keygate::admin::router(h.manager.clone());
    let req = http::Request::builder()
        .method(Method::POST)
        .uri("/v1/api-keys")
        .header("authorization", bearer(&admin))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(r#"{"name":"in process"}"#))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 201);
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let id = body["id"].as_str().unwrap();

    let req = http::Request::builder()
        .method(Method::DELETE)
        .uri(key_path(id))
        .header("authorization", bearer(&admin))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), 204);
}
