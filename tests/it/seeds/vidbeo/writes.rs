//! Vidbeo: `PATCH /keys/:id`, `DELETE /keys/:id`, the required parameters,
//! `permissions`, `ips`, and the layer's refusals.

use http::Method;
use serde_json::{json, Value};

use super::{assert_key_format, ok, refused, Vidbeo};

#[tokio::test]
async fn patch_keys_id_updates_the_attributes_given_and_records_who() {
    let v = Vidbeo::new().await;
    let created = v
        .create(json!({"type": "api", "name": "Example", "permissions": [], "ips": []}))
        .await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/v2/keys/{id}");
    // Another read-write key makes the change.
    let other = v
        .create(json!({"type": "api", "name": "Other", "permissions": [], "ips": []}))
        .await;
    let other_key = other["value"].as_str().unwrap();

    // The seed's example request, verbatim.
    let a = v
        .client
        .call(
            Method::PATCH,
            &path,
            Some(other_key),
            r#"{"name":"New name"}"#,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let key = ok(&a, Value::Null);
    assert_key_format(&key);
    assert_eq!(key["name"], "New name");
    assert_eq!(key["created_by"], v.first_id.as_str(), "the creator stays");
    assert_eq!(key["updated_by"], other["id"]);
    assert_eq!(key["created_time"], created["created_time"]);
    assert_eq!(v.client.get(&path, &v.first).await.json()["result"], key);

    // Several attributes at once.
    let a = v
        .client
        .patch(
            &path,
            &v.first,
            json!({"permissions": ["fetch"], "ips": ["10.0.0.0/8"]}),
        )
        .await;
    let key = ok(&a, Value::Null);
    assert_eq!(key["permissions"], json!(["fetch"]));
    assert_eq!(key["ips"], json!(["10.0.0.0/8"]));
    assert_eq!(key["name"], "New name");
    assert_eq!(key["updated_by"], v.first_id.as_str());

    for (body, field, code) in [
        (json!({"name": ""}), "name", "invalid_request"),
        (json!({"name": "x".repeat(51)}), "name", "invalid_request"),
        (json!({"type": "user"}), "type", "invalid_request"),
        (json!({"ips": ["999.1.1.1"]}), "ips", "invalid_request"),
        // Who created a key is the server's record, never the client's.
        (json!({"created_by": "me"}), "created_by", "read_only_field"),
        (json!({"scopes": []}), "scopes", "invalid_request"),
    ] {
        let message = refused(&v.client.patch(&path, &v.first, body).await, 400, code);
        assert!(message.starts_with(field), "{message}");
    }
    let a = v
        .client
        .patch("/v2/keys/nosuchkey", &v.first, json!({"name": "x"}))
        .await;
    refused(&a, 404, "not_found");
}

#[tokio::test]
async fn post_keys_requires_type_name_permissions_and_ips() {
    let v = Vidbeo::new().await;
    let full = json!({"type": "api", "name": "Example", "permissions": [], "ips": []});
    // The seed's "Required parameters" table lists all four (its prose calls an empty
    // `ips` "the default"; the test follows the table).
    for field in ["type", "name", "permissions", "ips"] {
        let mut body = full.clone();
        body.as_object_mut().unwrap().remove(field);
        let a = v.client.post("/v2/keys", &v.first, body).await;
        let message = refused(&a, 400, "invalid_request");
        assert!(message.starts_with(field), "{message}");
    }
    let cases = [
        // "we currently only support \"api\""
        (json!({"type": "user"}), "type"),
        // "The name of the key (1-50 characters)"
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(51)}), "name"),
        (json!({"ips": ["not-an-ip"]}), "ips"),
        (json!({"permissions": "fetch"}), "permissions"),
        (json!({"value": "sk_live_chosen"}), "value"),
        (json!({"colour": "red"}), "colour"),
    ];
    for (change, field) in cases {
        let mut body = full.clone();
        body.as_object_mut()
            .unwrap()
            .extend(change.as_object().unwrap().clone());
        let a = v.client.post("/v2/keys", &v.first, body).await;
        let message = refused(&a, 400, "invalid_request");
        assert!(message.starts_with(field), "{message}");
    }
    // Exactly 50 characters is fine.
    let mut body = full.clone();
    body["name"] = json!("x".repeat(50));
    v.create(body).await;
    // "[] for read/write or [\"fetch\"] for read-only": no key holds any other
    // permission, so none can give one.
    let mut body = full.clone();
    body["permissions"] = json!(["upload"]);
    let a = v.client.post("/v2/keys", &v.first, body).await;
    refused(&a, 403, "insufficient_scope");
    let a = v.client.get("/v2/keys", &v.first).await;
    assert_eq!(
        ok(&a, json!({})).as_array().unwrap().len(),
        2,
        "nothing else made"
    );
}

#[tokio::test]
async fn fetch_permission_is_read_only_and_empty_permissions_read_write() {
    let v = Vidbeo::new().await;
    let reader = v
        .create(json!({"type": "api", "name": "reader", "permissions": ["fetch"], "ips": []}))
        .await;
    let reader_key = reader["value"].as_str().unwrap();
    let writer = v
        .create(json!({"type": "api", "name": "writer", "permissions": [], "ips": []}))
        .await;
    let writer_key = writer["value"].as_str().unwrap();
    let id = writer["id"].as_str().unwrap();

    // Read-only: reads, never writes.
    assert_eq!(v.client.get("/v2/keys", reader_key).await.status, 200);
    let path = format!("/v2/keys/{id}");
    assert_eq!(v.client.get(&path, reader_key).await.status, 200);
    let body = json!({"type": "api", "name": "k", "permissions": ["fetch"], "ips": []});
    let writes = [
        v.client.post("/v2/keys", reader_key, body.clone()).await,
        v.client
            .patch(&path, reader_key, json!({"name": "x"}))
            .await,
        v.client.delete(&path, reader_key).await,
    ];
    for a in &writes {
        refused(a, 403, "insufficient_scope");
    }
    // Read-write: "API keys are not scoped to a particular user" and any key manages.
    let a = v.client.post("/v2/keys", writer_key, body).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(ok(&a, Value::Null)["created_by"], id);
}

#[tokio::test]
async fn ips_limit_where_a_key_is_accepted_from() {
    let v = Vidbeo::new().await;
    let local = v
        .create(json!({"type": "api", "name": "local", "permissions": [], "ips": ["127.0.0.1"]}))
        .await;
    let remote = v
        .create(json!({"type": "api", "name": "remote", "permissions": [], "ips": ["1.2.3.4"]}))
        .await;
    let anywhere = v
        .create(json!({"type": "api", "name": "any", "permissions": [], "ips": []}))
        .await;
    let key = |k: &Value| k["value"].as_str().unwrap().to_owned();
    assert_eq!(v.client.get("/v2/keys", &key(&local)).await.status, 200);
    assert_eq!(v.client.get("/v2/keys", &key(&anywhere)).await.status, 200);
    refused(
        &v.client.get("/v2/keys", &key(&remote)).await,
        403,
        "ip_not_allowed",
    );
}

#[tokio::test]
async fn refusals_of_the_layer_come_in_the_envelope_too() {
    let v = Vidbeo::new().await;
    let a = v.client.call(Method::GET, "/v2/keys", None, "").await;
    refused(&a, 401, "unauthorized");
    assert_eq!(a.header("www-authenticate"), Some("Bearer realm=\"api\""));
    let a = v.client.get("/v2/keys", "sk_live_not-a-real-key").await;
    refused(&a, 401, "invalid_api_key");
    let a = v
        .client
        .call(Method::PUT, "/v2/keys", Some(&v.first), "")
        .await;
    refused(&a, 405, "method_not_allowed");
    assert_eq!(a.header("allow"), Some("GET, POST"));
}

#[tokio::test]
async fn delete_keys_id_deletes_the_key_for_good() {
    let v = Vidbeo::new().await;
    let created = v
        .create(json!({"type": "api", "name": "doomed", "permissions": [], "ips": []}))
        .await;
    let id = created["id"].as_str().unwrap();
    let value = created["value"].as_str().unwrap();
    // The key is in use, so cached.
    assert_eq!(v.client.get("/v2/keys", value).await.status, 200);

    // The seed's example request, and its example response exactly.
    let path = format!("/v2/keys/{id}");
    let a = v
        .client
        .call(Method::DELETE, &path, Some(&v.first), "")
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json(),
        json!({"success": true, "result": {}, "links": null, "errors": []})
    );
    // Gone: not found, not listed, and the key no longer works, at once.
    refused(&v.client.get(&path, &v.first).await, 404, "not_found");
    let listed = ok(&v.client.get("/v2/keys", &v.first).await, json!({}));
    assert!(listed.as_array().unwrap().iter().all(|k| k["id"] != id));
    refused(
        &v.client.get("/v2/keys", value).await,
        401,
        "invalid_api_key",
    );
    refused(&v.client.delete(&path, &v.first).await, 404, "not_found");
    // Not even as a revoked key.
    let a = v.client.get("/v2/keys?status=all", &v.first).await;
    assert_eq!(ok(&a, json!({})).as_array().unwrap().len(), 1);
}
