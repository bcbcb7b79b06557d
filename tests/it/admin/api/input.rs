//! The active-key cap and malformed input.

use super::*;

// ---------------------------------------------------------------------------------------
// Bytekit: the active-key cap

#[tokio::test]
async fn the_51st_key_is_409_api_key_limit_reached_and_revoked_keys_do_not_count() {
    let api = Api::new().await;
    // The admin key is itself the account's first active key.
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let mut ids = Vec::new();
    for i in 0..49 {
        let (id, _, _) = api.create(&admin, json!({"name": format!("k{i}")})).await;
        ids.push(id);
    }
    let a = api
        .post("/v1/api-keys", &admin, json!({"name": "51st"}))
        .await;
    assert_error(&a, 409, "api_key_limit_reached");
    assert!(a.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("50"));

    assert_eq!(api.delete(&key_path(&ids[0]), &admin).await.status, 204);
    assert_eq!(
        api.post("/v1/api-keys", &admin, json!({"name": "replacement"}))
            .await
            .status,
        201
    );
    let a = api
        .post("/v1/api-keys", &admin, json!({"name": "52nd"}))
        .await;
    assert_error(&a, 409, "api_key_limit_reached");

    // Revoked keys are not counted, and not listed by default (the status filter).
    let mut listed = 0;
    let mut path = "/v1/api-keys?limit=100".to_owned();
    loop {
        let body = api.get(&path, &admin).await.json();
        listed += body["data"].as_array().unwrap().len();
        match body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/api-keys?limit=100&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(listed, 50);
}

// ---------------------------------------------------------------------------------------
// Malformed input

#[tokio::test]
async fn malformed_create_bodies_are_400_invalid_request_naming_the_field() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let raw = |body: &'static str| {
        let api = &api;
        let admin = admin.clone();
        async move {
            api.call(Method::POST, "/v1/api-keys", Some(&admin), body)
                .await
        }
    };
    assert_invalid(&raw("{\"name\": ").await, "body");
    assert_invalid(&raw("not json").await, "body");
    assert_invalid(&raw("").await, "body");
    assert_invalid(&raw("[]").await, "body");
    assert_bad_type(&raw("{\"name\": 5}").await, "name");
    assert_bad_type(
        &raw("{\"name\": \"x\", \"rate_limit\": {\"per_second\": \"fast\", \"burst\": 1}}").await,
        "rate_limit.per_second",
    );
    assert_invalid(&raw("{}").await, "name");
    assert_invalid(
        &raw("{\"name\": \"k\", \"colour\": \"red\"}").await,
        "colour",
    );
    assert_invalid(
        &raw("{\"name\": \"k\", \"digest\": \"00\"}").await,
        "digest",
    );

    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(51)}), "name"),
        (json!({"name": "k", "ips": ["10.0.0.0/33"]}), "ips"),
        (json!({"name": "k", "ips": ["not-an-ip"]}), "ips"),
        (json!({"name": "k", "scopes": ["bad scope"]}), "scopes"),
        (json!({"name": "k", "expires_at": "tomorrow"}), "expires_at"),
        (
            json!({"name": "k", "rate_limit": {"per_second": 0, "burst": 1}}),
            "rate_limit",
        ),
        (
            json!({"name": "k", "rate_limit": {"per_second": 1, "burst": 1, "x": 1}}),
            "x",
        ),
        (json!({"name": "k", "environment": "staging"}), "staging"),
        (json!({"name": "k", "prefix": "zz_"}), "prefix"),
    ];
    for (body, field) in cases {
        let a = api.post("/v1/api-keys", &admin, body.clone()).await;
        assert_invalid(&a, field);
    }
    // Exactly 50 characters is fine; nothing above was created.
    api.create(&admin, json!({"name": "x".repeat(50)})).await;
    let listed = api.get("/v1/api-keys", &admin).await.json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn malformed_patch_bodies_are_400_and_change_nothing() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, _, before) = api.create(&admin, json!({"name": "stable"})).await;
    let path = key_path(&id);
    let cases = [
        (json!({"name": "x".repeat(51)}), "name"),
        (json!({"ips": ["1.2.3.4/99"]}), "ips"),
        (json!({"scopes": ["no spaces allowed"]}), "scopes"),
        (json!({"nickname": "x"}), "nickname"),
        (json!({"rate_limit": {"per_second": 1}}), "burst"),
    ];
    for (body, field) in cases {
        assert_invalid(&api.patch(&path, &admin, body).await, field);
    }
    let a = api
        .call(Method::PATCH, &path, Some(&admin), "{\"name\":")
        .await;
    assert_invalid(&a, "body");
    assert_bad_type(
        &api.patch(&path, &admin, json!({"expires_at": 12})).await,
        "expires_at",
    );
    let after = api.get(&path, &admin).await.json();
    assert_eq!(after["name"], before["name"]);
    assert_eq!(after["updated_at"], before["updated_at"]);
}

#[tokio::test]
async fn unknown_scopes_are_400_when_the_deployment_restricts_scopes() {
    let h = Harness::with(|b| {
        b.manager_config(
            ManagerConfig::default()
                .allowed_scopes(Some(ScopeSet::parse(["admin", "charges:read"]).unwrap())),
        )
    });
    let manager = h.manager.clone();
    let addr = serve(keygate::admin::router(manager)).await;
    let api = Api { h, addr };
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let a = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({"name": "k", "scopes": ["charges:read", "charges:refund"]}),
        )
        .await;
    assert_invalid(&a, "scopes");
    assert!(a.body.contains("charges:refund"));
    api.create(&admin, json!({"name": "k", "scopes": ["charges:read"]}))
        .await;
}
