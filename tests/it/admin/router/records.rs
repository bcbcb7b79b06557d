//! Field mapping, offset pagination, status filter and delete mode of the configured router.

use crate::admin::router::support::*;
use http::Method;
use keygate::admin::{DeleteMode, KeyFields, Pagination};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn fields_are_renamed_hidden_and_read_back_through_the_same_mapping() {
    let fields = KeyFields::default()
        .only(["id", "name", "scopes", "expires_at"])
        .rename("scopes", "grants")
        .rename("expires_at", "valid_until")
        .rename("key", "secret")
        .constant("kind", "service")
        .required(["kind"]);
    let s = Served::new(|b| b.fields(fields)).await;
    let a = s
        .admin(
            Method::POST,
            "/v1/api-keys",
            json!({"kind": "service", "name": "n", "grants": ["a"], "valid_until": "2030-01-01T00:00:00+02:00"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let body = a.json();
    let mut names: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["grants", "id", "kind", "name", "secret", "valid_until"]
    );
    assert_eq!(body["grants"], json!(["a"]));
    assert_eq!(body["valid_until"], "2029-12-31T22:00:00.000Z");
    assert_eq!(body["kind"], "service");
    let secret = body["secret"].as_str().unwrap();
    assert!(s.h.gate.verify_key(secret).await.is_ok());

    let create = |body: Value| s.admin(Method::POST, "/v1/api-keys", body);
    // keygate's own names are unknown once renamed; hidden fields are unknown too.
    let cases = [
        (
            json!({"kind": "service", "name": "n", "scopes": []}),
            "scopes",
        ),
        (json!({"kind": "service", "name": "n", "ips": []}), "ips"),
        (
            json!({"kind": "service", "name": "n", "metadata": {}}),
            "metadata",
        ),
        (json!({"kind": "user", "name": "n"}), "kind"),
        (json!({"name": "n"}), "kind"),
        (json!({"kind": "service"}), "name"),
        (
            json!({"kind": "service", "name": "n", "grants": "a"}),
            "grants",
        ),
        (
            json!({"kind": "service", "name": "n", "grants": ["a b"]}),
            "grants",
        ),
        (
            json!({"kind": "service", "name": "n", "valid_until": "soon"}),
            "valid_until",
        ),
        (
            json!({"kind": "service", "name": "n", "secret": "x"}),
            "secret",
        ),
    ];
    for (body, field) in cases {
        assert_invalid(&create(body).await, field);
    }
    let id = body["id"].as_str().unwrap();
    let path = format!("/v1/api-keys/{id}");
    let a = s
        .admin(
            Method::PATCH,
            &path,
            json!({"grants": ["b"], "kind": "service"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["grants"], json!(["b"]));
    assert!(a.json().get("secret").is_none());
    assert_invalid(
        &s.admin(Method::PATCH, &path, json!({"disabled": true}))
            .await,
        "disabled",
    );
}

#[tokio::test]
async fn offset_pagination_pages_by_number() {
    let s =
        Served::new(|b| b.pagination(Pagination::offset().default_limit(2).max_limit(10))).await;
    for i in 0..4 {
        s.h.time.advance(Duration::from_millis(1));
        let a = s
            .admin(
                Method::POST,
                "/v1/api-keys",
                json!({"name": format!("k{i}")}),
            )
            .await;
        assert_eq!(a.status, 201);
    }
    // Five keys with the admin key: pages of 2, 2 and 1.
    let page = |q: &'static str| s.admin(Method::GET, q, Value::Null);
    let first = page("/v1/api-keys").await.json();
    assert_eq!(first["page"], 1);
    assert_eq!(first["next_page"], 2);
    let names = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&first), ["test key", "k0"]);
    let second = page("/v1/api-keys?page=2").await.json();
    assert_eq!(names(&second), ["k1", "k2"]);
    let third = page("/v1/api-keys?page=3&limit=2").await.json();
    assert_eq!(names(&third), ["k3"]);
    assert_eq!(third["next_page"], Value::Null);
    let past = page("/v1/api-keys?page=4").await.json();
    assert_eq!(past["data"], json!([]));
    let big = page("/v1/api-keys?limit=10").await.json();
    assert_eq!(big["data"].as_array().unwrap().len(), 5);

    for (query, field) in [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=two", "page"),
        ("page=", "page"),
        ("page=4294967296", "page"),
        ("page=1002&limit=10", "page"),
        ("limit=11", "limit"),
        ("limit=0", "limit"),
    ] {
        let a = s
            .admin(Method::GET, &format!("/v1/api-keys?{query}"), Value::Null)
            .await;
        assert_invalid(&a, field);
    }
}

#[tokio::test]
async fn delete_mode_delete_removes_the_key_and_a_second_delete_is_404() {
    let s = Served::new(|b| b.delete(DeleteMode::Delete)).await;
    let a = s
        .admin(Method::POST, "/v1/api-keys", json!({"name": "doomed"}))
        .await;
    let body = a.json();
    let (id, key) = (body["id"].as_str().unwrap(), body["key"].as_str().unwrap());
    let path = format!("/v1/api-keys/{id}");
    let a = s.admin(Method::DELETE, &path, Value::Null).await;
    assert_eq!(a.status, 204);
    assert_eq!(a.body, "");
    assert!(s.h.gate.verify_key(key).await.is_err());
    assert_eq!(
        s.admin(Method::GET, &path, Value::Null).await.code(),
        "not_found"
    );
    let a = s.admin(Method::DELETE, &path, Value::Null).await;
    assert_eq!(a.status, 404);
    let all = s
        .admin(Method::GET, "/v1/api-keys?status=all", Value::Null)
        .await;
    assert_eq!(all.json()["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_status_parameter_picks_active_revoked_or_all_keys() {
    let s = Served::new(|b| b).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let a = s
            .admin(
                Method::POST,
                "/v1/api-keys",
                json!({"name": format!("k{i}")}),
            )
            .await;
        ids.push(a.json()["id"].as_str().unwrap().to_owned());
    }
    for id in &ids[..2] {
        let a = s
            .admin(Method::DELETE, &format!("/v1/api-keys/{id}"), Value::Null)
            .await;
        assert_eq!(a.status, 204);
    }
    let mut counts = Vec::new();
    for q in ["", "?status=active", "?status=revoked", "?status=all"] {
        let a = s
            .admin(Method::GET, &format!("/v1/api-keys{q}"), Value::Null)
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        counts.push(a.json()["data"].as_array().unwrap().len());
    }
    // Active: the admin key and k2.
    assert_eq!(counts, [2, 2, 2, 4]);
    // Cursor paging within a filter.
    let a = s
        .admin(Method::GET, "/v1/api-keys?status=all&limit=1", Value::Null)
        .await;
    let next = a.json()["next_cursor"].as_str().unwrap().to_owned();
    let a = s
        .admin(
            Method::GET,
            &format!("/v1/api-keys?status=all&limit=3&cursor={next}"),
            Value::Null,
        )
        .await;
    assert_eq!(a.json()["data"].as_array().unwrap().len(), 3);
    for bad in ["status=deleted", "status=", "status=ALL"] {
        let a = s
            .admin(Method::GET, &format!("/v1/api-keys?{bad}"), Value::Null)
            .await;
        assert_invalid(&a, "status");
    }
}
