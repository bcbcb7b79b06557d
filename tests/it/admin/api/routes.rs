//! Each row of the table: create, list, get, change, revoke, roll.

use super::*;

// ---------------------------------------------------------------------------------------
// POST /v1/api-keys

#[tokio::test]
async fn post_creates_a_key_and_returns_201_with_the_plaintext_once() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let a = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({
                "name": "CI pipeline key",
                "scopes": ["charges:read"],
                "ips": ["203.0.113.0/24"],
                "expires_at": "2030-01-01T00:00:00Z",
                "rate_limit": {"per_second": 5, "burst": 10},
                "metadata": {"team": "ci"},
                "environment": "live"
            }),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let body = a.json();
    assert_record_shape(&body);
    let key = body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk_live_"));
    assert!(key.starts_with(body["start"].as_str().unwrap()));
    assert_eq!(body["name"], "CI pipeline key");
    assert_eq!(body["prefix"], "sk_live_");
    assert_eq!(body["environment"], "live");
    assert_eq!(body["scopes"], json!(["charges:read"]));
    assert_eq!(body["ips"], json!(["203.0.113.0/24"]));
    assert_eq!(body["expires_at"], "2030-01-01T00:00:00.000Z");
    assert_eq!(body["rate_limit"], json!({"per_second": 5, "burst": 10}));
    assert_eq!(body["metadata"], json!({"team": "ci"}));
    assert_eq!(body["last_used_at"], Value::Null);
    assert_eq!(body["revoked_at"], Value::Null);
    assert_eq!(body["created_at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(body["updated_at"], "2023-11-14T22:13:20.000Z");

    let digest = KeyHasher::sha256().digest(&key).to_hex();
    assert!(!a.body.contains(&digest));

    // The key works, and nothing shows it again.
    let who = api.h.gate.verify_key(&key).await.unwrap();
    assert_eq!(who.key_id().as_str(), body["id"].as_str().unwrap());
    assert_eq!(who.account_id(), &AccountId::from("acct_1"));
    let id = body["id"].as_str().unwrap();
    let secret = &key["sk_live_".len()..];
    for path in [key_path(id), "/v1/api-keys".to_owned()] {
        let a = api.get(&path, &admin).await;
        assert_eq!(a.status, 200);
        assert!(!a.body.contains(secret), "plaintext shown again by {path}");
        assert!(!a.body.contains(&digest), "digest shown by {path}");
    }
}

#[tokio::test]
async fn post_without_optional_fields_gives_defaults_and_a_null_rate_limit() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (_, key, body) = api.create(&admin, json!({"name": "minimal"})).await;
    assert_record_shape(&body);
    assert_eq!(body["rate_limit"], Value::Null);
    assert_eq!(body["scopes"], json!([]));
    assert_eq!(body["ips"], json!([]));
    assert_eq!(body["expires_at"], Value::Null);
    assert!(api.h.gate.verify_key(&key).await.is_ok());
}

// ---------------------------------------------------------------------------------------
// GET /v1/api-keys

#[tokio::test]
async fn get_list_returns_data_and_next_cursor_without_plaintext() {
    let api = Api::new().await;
    let (admin_id, admin) = api.h.key("acct_1", &["admin"]).await;
    let mut created = vec![admin_id.as_str().to_owned()];
    let mut secrets = Vec::new();
    for i in 0..24 {
        api.h.time.advance(Duration::from_millis(1));
        let (id, key, _) = api.create(&admin, json!({"name": format!("k{i}")})).await;
        created.push(id);
        secrets.push(key);
    }

    let mut seen = Vec::new();
    let mut path = "/v1/api-keys?limit=10".to_owned();
    let mut pages = 0;
    loop {
        let a = api.get(&path, &admin).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let body = a.json();
        let keys: HashSet<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys, HashSet::from(["data", "next_cursor"]));
        for record in body["data"].as_array().unwrap() {
            assert_record_shape(record);
            assert!(record.get("key").is_none(), "no plaintext in a list");
            seen.push(record["id"].as_str().unwrap().to_owned());
        }
        for secret in &secrets {
            assert!(!a.body.contains(&secret[3..]));
        }
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/api-keys?limit=10&cursor={cursor}"),
            None => {
                assert_eq!(body["next_cursor"], Value::Null);
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every key once, oldest first");

    // Without a limit: the default page of 25 holds all of them.
    let all = api.get("/v1/api-keys", &admin).await.json();
    assert_eq!(all["data"].as_array().unwrap().len(), 25);
    assert_eq!(all["next_cursor"], Value::Null);
}

#[tokio::test]
async fn get_list_with_a_bad_limit_or_cursor_is_400_naming_the_parameter() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    for query in ["limit=abc", "limit=0", "limit=101", "limit=-1", "limit="] {
        let a = api.get(&format!("/v1/api-keys?{query}"), &admin).await;
        assert_invalid(&a, "limit");
    }
    let a = api.get("/v1/api-keys?cursor=%2E%2E%2Fetc", &admin).await;
    assert_invalid(&a, "cursor");
    assert_eq!(api.get("/v1/api-keys?limit=100", &admin).await.status, 200);
}

// ---------------------------------------------------------------------------------------
// GET /v1/api-keys/{id}

#[tokio::test]
async fn get_one_returns_200_or_404_not_found() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, _, created) = api.create(&admin, json!({"name": "one"})).await;
    let a = api.get(&key_path(&id), &admin).await;
    assert_eq!(a.status, 200);
    let body = a.json();
    assert_record_shape(&body);
    assert!(body.get("key").is_none());
    let mut without_key = created.clone();
    without_key.as_object_mut().unwrap().remove("key");
    assert_eq!(body, without_key, "the same record, minus the plaintext");

    for missing in ["ak_0000000000000000000000", "no-such-id!", "x"] {
        let a = api.get(&key_path(missing), &admin).await;
        assert_error(&a, 404, "not_found");
    }
}

// ---------------------------------------------------------------------------------------
// PATCH /v1/api-keys/{id}

#[tokio::test]
async fn patch_updates_the_named_fields_and_returns_200_or_404() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, _, _) = api
        .create(
            &admin,
            json!({
                "name": "before",
                "scopes": ["a"],
                "expires_at": "2030-01-01T00:00:00Z",
                "rate_limit": {"per_second": 1, "burst": 1}
            }),
        )
        .await;
    api.h.time.advance(Duration::from_secs(1));
    let a = api
        .patch(
            &key_path(&id),
            &admin,
            json!({
                "name": "after",
                "scopes": ["b", "c"],
                "ips": ["10.0.0.1", "2001:db8::/32"],
                "metadata": {"k": "v"},
                "rate_limit": {"per_second": 7, "burst": 9}
            }),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let body = a.json();
    assert_record_shape(&body);
    assert_eq!(body["name"], "after");
    assert_eq!(body["scopes"], json!(["b", "c"]));
    assert_eq!(body["ips"], json!(["10.0.0.1", "2001:db8::/32"]));
    assert_eq!(body["metadata"], json!({"k": "v"}));
    assert_eq!(body["rate_limit"], json!({"per_second": 7, "burst": 9}));
    assert_eq!(body["expires_at"], "2030-01-01T00:00:00.000Z", "untouched");
    assert_eq!(body["updated_at"], "2023-11-14T22:13:21.000Z");
    assert_eq!(body["created_at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(api.get(&key_path(&id), &admin).await.json(), body);

    // `null` returns a field to its default.
    let body = api
        .patch(
            &key_path(&id),
            &admin,
            json!({"expires_at": null, "rate_limit": null}),
        )
        .await
        .json();
    assert_eq!(body["expires_at"], Value::Null);
    assert_eq!(body["rate_limit"], Value::Null);
    assert_eq!(body["name"], "after");

    let a = api
        .patch(&key_path("ak_missing"), &admin, json!({"name": "x"}))
        .await;
    assert_error(&a, 404, "not_found");
}

// ---------------------------------------------------------------------------------------
// DELETE /v1/api-keys/{id}

#[tokio::test]
async fn delete_is_204_twice_and_404_for_a_key_that_never_existed() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, key, _) = api.create(&admin, json!({"name": "doomed"})).await;

    let first = api.delete(&key_path(&id), &admin).await;
    assert_eq!(first.status, 204);
    assert_eq!(first.body, "");
    let second = api.delete(&key_path(&id), &admin).await;
    assert_eq!(second.status, 204, "already revoked is still 204");

    let record = api.get(&key_path(&id), &admin).await.json();
    assert_eq!(record["revoked_at"], "2023-11-14T22:13:20.000Z");
    assert!(api.h.gate.verify_key(&key).await.is_err());

    let a = api.delete(&key_path("ak_neverexisted"), &admin).await;
    assert_error(&a, 404, "not_found");
}

#[tokio::test]
async fn a_key_deleted_through_the_api_is_refused_on_its_very_next_request() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, second, _) = api
        .create(&admin, json!({"name": "second admin", "scopes": ["admin"]}))
        .await;
    // The second key is used, so it is cached.
    for _ in 0..3 {
        assert_eq!(api.get("/v1/api-keys", &second).await.status, 200);
    }
    let lookups = api.h.store.lookups();

    assert_eq!(api.delete(&key_path(&id), &admin).await.status, 204);
    let a = api.get("/v1/api-keys", &second).await;
    assert_error(&a, 401, "revoked_api_key");
    assert_eq!(api.h.store.lookups(), lookups + 1);
}

// ---------------------------------------------------------------------------------------
// POST /v1/api-keys/{id}/roll

#[tokio::test]
async fn roll_with_grace_seconds_returns_a_new_plaintext_and_keeps_the_old_one_until_then() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, old, _) = api
        .create(&admin, json!({"name": "rolling", "scopes": ["admin"]}))
        .await;
    assert_eq!(api.get("/v1/api-keys", &old).await.status, 200);

    let a = api
        .post(
            &format!("/v1/api-keys/{id}/roll"),
            &admin,
            json!({"grace_seconds": 60}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let body = a.json();
    assert_record_shape(&body);
    assert_eq!(body["id"], id.as_str(), "the id survives the roll");
    let new = body["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(new.starts_with(body["start"].as_str().unwrap()));
    assert!(!a.body.contains(&old[3..]));

    assert_eq!(api.get("/v1/api-keys", &old).await.status, 200);
    assert_eq!(api.get("/v1/api-keys", &new).await.status, 200);
    api.h.time.advance(Duration::from_secs(59));
    assert_eq!(api.get("/v1/api-keys", &old).await.status, 200);
    api.h.time.advance(Duration::from_secs(1));
    assert_error(&api.get("/v1/api-keys", &old).await, 401, "expired_api_key");
    assert_eq!(api.get("/v1/api-keys", &new).await.status, 200);

    // The plaintext is not shown again.
    let shown = api.get(&key_path(&id), &admin).await;
    assert!(shown.json().get("key").is_none());
    assert!(!shown.body.contains(&new[3..]));
}

#[tokio::test]
async fn roll_without_a_body_ends_the_old_secret_at_once() {
    let api = Api::new().await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let (id, old, _) = api
        .create(&admin, json!({"name": "rolling", "scopes": ["read-only"]}))
        .await;
    assert_eq!(api.get("/v1/api-keys", &old).await.status, 200);
    let a = api
        .call(
            Method::POST,
            &format!("/v1/api-keys/{id}/roll"),
            Some(&admin),
            "",
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let new = a.json()["key"].as_str().unwrap().to_owned();
    assert_error(&api.get("/v1/api-keys", &old).await, 401, "invalid_api_key");
    assert_eq!(api.get("/v1/api-keys", &new).await.status, 200);

    let a = api
        .post("/v1/api-keys/ak_nothere/roll", &admin, json!({}))
        .await;
    assert_error(&a, 404, "not_found");
    let a = api
        .post(
            &format!("/v1/api-keys/{id}/roll"),
            &admin,
            json!({"grace_seconds": 31 * 24 * 3600}),
        )
        .await;
    assert_invalid(&a, "grace_seconds");
    let a = api
        .post(
            &format!("/v1/api-keys/{id}/roll"),
            &admin,
            json!({"grace_seconds": -1}),
        )
        .await;
    assert_bad_type(&a, "grace_seconds");
    let a = api
        .post(
            &format!("/v1/api-keys/{id}/roll"),
            &admin,
            json!({"grace": 10}),
        )
        .await;
    assert_invalid(&a, "grace");
    // An array is not a roll body, whatever serde would make of it.
    let a = api
        .post(&format!("/v1/api-keys/{id}/roll"), &admin, json!([]))
        .await;
    assert_error(&a, 400, "invalid_request");
    // A quota's limit beyond what the API documents (a signed 64-bit count) is refused.
    let a = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({"name": "huge", "quotas": [{"limit": 9_223_372_036_854_775_808u64, "period": "day"}]}),
        )
        .await;
    assert_error(&a, 400, "invalid_request");

    // Rolling a revoked key is a conflict.
    assert_eq!(api.delete(&key_path(&id), &admin).await.status, 204);
    let a = api
        .post(&format!("/v1/api-keys/{id}/roll"), &admin, json!({}))
        .await;
    assert_error(&a, 409, "api_key_revoked");
}
