//! The configurable management router (`keygate::admin::builder`, feature `admin`):
//! base path, access per action, field mapping, pagination by cursor or offset, and
//! bad input answered with clear 400s, all over real loopback TCP.

mod common;
use common::*;

use std::net::SocketAddr;
use std::time::Duration;

use http::Method;
use keygate::admin::{self, Access, Action, DeleteMode, KeyFields, Pagination, RouterBuilder};
use keygate::{NewKey, RateLimit};
use serde_json::{json, Value};

/// A harness with a configured router served on loopback, and an admin key.
struct Served {
    h: Harness,
    addr: SocketAddr,
    admin: String,
}

impl Served {
    async fn new(configure: impl FnOnce(RouterBuilder) -> RouterBuilder) -> Self {
        let h = Harness::new();
        let (_, admin) = h.key("acct_1", &["admin"]).await;
        let addr = serve(configure(admin::builder(h.manager.clone())).build()).await;
        Self { h, addr, admin }
    }

    async fn call(&self, method: Method, path: &str, key: Option<&str>, body: &str) -> Answer {
        let auth = key.map(bearer);
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        http(self.addr, method, path, &headers, body).await
    }

    async fn admin(&self, method: Method, path: &str, body: Value) -> Answer {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        self.call(method, path, Some(&self.admin), &body).await
    }
}

/// A 400 `invalid_request` (default envelope) whose message starts with `field`.
fn assert_invalid(a: &Answer, field: &str) {
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.code(), "invalid_request");
    let message = a.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with(field),
        "should name '{field}': {message}"
    );
}

#[tokio::test]
async fn the_base_path_moves_every_route() {
    let s = Served::new(|b| b.base_path("/api/v3/credentials")).await;
    let a = s
        .admin(Method::POST, "/api/v3/credentials", json!({"name": "k"}))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_owned();
    let one = format!("/api/v3/credentials/{id}");
    assert_eq!(s.admin(Method::GET, &one, Value::Null).await.status, 200);
    let roll = format!("{one}/roll");
    assert_eq!(s.admin(Method::POST, &roll, json!({})).await.status, 200);
    let listed = s
        .admin(Method::GET, "/api/v3/credentials", Value::Null)
        .await;
    assert_eq!(listed.json()["data"].as_array().unwrap().len(), 2);
    // Nothing is left at the default path.
    let a = s.admin(Method::GET, "/v1/api-keys", Value::Null).await;
    assert_eq!(a.status, 404);
}

#[test]
#[should_panic(expected = "base path")]
fn a_base_path_without_a_leading_slash_is_refused_at_build_time() {
    let h = Harness::new();
    let _ = admin::builder(h.manager.clone()).base_path("v1/keys");
}

#[tokio::test]
async fn access_is_set_per_action_and_actions_can_be_turned_off() {
    let s = Served::new(|b| {
        b.access(Action::List, Access::AnyKey)
            .access(Action::Create, Access::any_of(["keys:write"]))
            .access(Action::Delete, Access::Off)
            .access(Action::Roll, Access::Off)
    })
    .await;
    let (_, plain) = s.h.key("acct_1", &[]).await;
    let (_, writer) = s.h.key("acct_1", &["keys:write"]).await;
    // Any key of the account lists; only `keys:write` creates (the admin key too, as
    // `admin` grants every scope).
    let a = s.call(Method::GET, "/v1/api-keys", Some(&plain), "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let body = json!({"name": "k"}).to_string();
    let a = s
        .call(Method::POST, "/v1/api-keys", Some(&plain), &body)
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.code(), "insufficient_scope");
    let challenge = a.header("www-authenticate").unwrap();
    assert!(challenge.contains("scope=\"keys:write\""), "{challenge}");
    let a = s
        .call(Method::POST, "/v1/api-keys", Some(&writer), &body)
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_owned();
    // `get` kept its default: `admin` or `read-only`.
    let one = format!("/v1/api-keys/{id}");
    let a = s.call(Method::GET, &one, Some(&writer), "").await;
    assert_eq!(a.code(), "insufficient_scope");
    // Delete is off: 405 naming what is allowed; roll is off: no route at all.
    let a = s.admin(Method::DELETE, &one, Value::Null).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.code(), "method_not_allowed");
    assert_eq!(a.header("allow"), Some("GET, PATCH"));
    assert_eq!(a.header("content-type"), Some("application/json"));
    let a = s
        .admin(Method::POST, &format!("{one}/roll"), json!({}))
        .await;
    assert_eq!(a.status, 404);
    let view = s.admin(Method::GET, &one, Value::Null).await.json();
    assert_eq!(view["revoked_at"], Value::Null);
}

#[tokio::test]
async fn any_key_still_keeps_read_only_keys_to_reads() {
    let s = Served::new(RouterBuilder::any_key).await;
    let (_, reader) = s.h.key("acct_1", &["read-only"]).await;
    assert_eq!(
        s.call(Method::GET, "/v1/api-keys", Some(&reader), "")
            .await
            .status,
        200
    );
    let body = json!({"name": "k", "scopes": ["read-only"]}).to_string();
    let a = s
        .call(Method::POST, "/v1/api-keys", Some(&reader), &body)
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.code(), "insufficient_scope");
}

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
async fn a_body_over_the_configured_limit_is_413_and_creates_nothing() {
    let s = Served::new(|b| b.max_body_bytes(1024)).await;
    let body = json!({"name": "big", "metadata": {"blob": "x".repeat(2000)}});
    let a = s.admin(Method::POST, "/v1/api-keys", body).await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(a.code(), "body_too_large");
    assert!(a.body.contains("1024"));
    let listed = s
        .admin(Method::GET, "/v1/api-keys", Value::Null)
        .await
        .json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_per_key_quota_is_enforced_on_the_management_routes() {
    let s = Served::new(RouterBuilder::any_key).await;
    let (_, key) =
        s.h.key_with(
            "acct_1",
            NewKey::named("slow").rate_limit(RateLimit::new(1, 1)),
        )
        .await;
    let first = s.call(Method::GET, "/v1/api-keys", Some(&key), "").await;
    assert_eq!(first.status, 200);
    let second = s.call(Method::GET, "/v1/api-keys", Some(&key), "").await;
    assert_eq!(second.status, 429);
    assert_eq!(second.code(), "rate_limited");
    assert_eq!(second.header("retry-after"), Some("1"));
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
