//! Vidbeo: `POST /keys`, `GET /keys`, `GET /keys/:id`.

use http::Method;
use keygate::store::AccountId;
use keygate::NewKey;
use serde_json::{json, Value};

use super::{assert_key_format, ok, refused, Vidbeo};
use crate::seeds::client::field_names;

#[tokio::test]
async fn post_keys_creates_a_key_and_reveals_its_value_this_once() {
    let v = Vidbeo::new().await;
    // The seed's example request, verbatim.
    let body = r#"{"type":"api", "name": "Example", "permissions": [], "ips": ["1.2.3.4"]}"#;
    let a = v
        .client
        .call(Method::POST, "/v2/keys", Some(&v.first), body)
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let key = ok(&a, Value::Null);
    assert_key_format(&key);
    assert_eq!(key["name"], "Example");
    assert_eq!(key["permissions"], json!([]));
    assert_eq!(key["ips"], json!(["1.2.3.4"]));
    assert_eq!(key["created_by"], v.first_id.as_str());
    assert_eq!(key["updated_by"], v.first_id.as_str());
    assert_eq!(key["created_time"], key["updated_time"]);
    let value = key["value"].as_str().unwrap().to_owned();
    let id = key["id"].as_str().unwrap();

    // The value is a working key (here refused only for its IP allowlist).
    let a = v.client.get("/v2/keys", &value).await;
    refused(&a, 403, "ip_not_allowed");

    // Never revealed again: not by GET /keys/:id, not by GET /keys.
    for path in [format!("/v2/keys/{id}"), "/v2/keys".to_owned()] {
        let a = v.client.get(&path, &v.first).await;
        assert_eq!(a.status, 200);
        assert!(!a.body.contains(&value[8..]), "value shown again by {path}");
        assert!(!a.body.contains("\"value\""), "{}", a.body);
    }
}

#[tokio::test]
async fn get_keys_lists_every_key_of_the_account_with_links_empty() {
    let v = Vidbeo::new().await;
    let created = v
        .create(json!({"type": "api", "name": "Example key", "permissions": [], "ips": []}))
        .await;
    let a = v.client.get("/v2/keys", &v.first).await;
    let keys = ok(&a, json!({}));
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert_key_format(key);
        assert!(key.get("value").is_none());
    }
    // The dashboard's key was created by no key: `created_by` is not known.
    assert_eq!(keys[0]["id"], v.first_id.as_str());
    assert_eq!(keys[0]["created_by"], Value::Null);
    let mut shown = created.clone();
    shown.as_object_mut().unwrap().remove("value");
    assert_eq!(keys[1], shown);

    // Keys of another account are not listed.
    v.manager
        .create(AccountId::from("acct_2"), NewKey::named("elsewhere"))
        .await
        .unwrap();
    let a = v.client.get("/v2/keys", &v.first).await;
    assert_eq!(ok(&a, json!({})).as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn limit_defaults_to_25_and_the_next_page_is_the_links_next_url() {
    let v = Vidbeo::new().await;
    for i in 0..29 {
        v.create(json!({"type": "api", "name": format!("k{i}"), "permissions": [], "ips": []}))
            .await;
    }
    // 30 keys: 25, then 5.
    let a = v.client.get("/v2/keys", &v.first).await;
    let body = a.json();
    let first_page = ok(&a, body["links"].clone());
    assert_eq!(first_page.as_array().unwrap().len(), 25);
    let next = body["links"]["next"].as_str().unwrap().to_owned();
    assert!(next.starts_with("/v2/keys?"), "{next}");
    assert!(next.contains("cursor="), "{next}");
    assert_eq!(field_names(&body["links"]), ["next"]);

    let a = v.client.get(&next, &v.first).await;
    let second_page = ok(&a, json!({}));
    assert_eq!(second_page.as_array().unwrap().len(), 5);
    let mut ids: Vec<&str> = first_page
        .as_array()
        .unwrap()
        .iter()
        .chain(second_page.as_array().unwrap())
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30, "every key once");

    // `limit` and `cursor` by hand; an empty cursor is the first page.
    let a = v.client.get("/v2/keys?limit=10&cursor=", &v.first).await;
    let body = a.json();
    assert_eq!(ok(&a, body["links"].clone()).as_array().unwrap().len(), 10);
    assert!(body["links"]["next"].as_str().unwrap().contains("limit=10"));
    for bad in ["limit=0", "limit=abc", "limit=101", "cursor=nonsense!"] {
        let a = v.client.get(&format!("/v2/keys?{bad}"), &v.first).await;
        let message = refused(&a, 400, "invalid_request");
        assert!(
            message.starts_with(&bad[..bad.find('=').unwrap()]),
            "{message}"
        );
    }
}

#[tokio::test]
async fn get_keys_id_returns_one_key_with_links_null_or_404() {
    let v = Vidbeo::new().await;
    let created = v
        .create(json!({"type": "api", "name": "Example key", "permissions": ["fetch"], "ips": []}))
        .await;
    let id = created["id"].as_str().unwrap();
    let a = v.client.get(&format!("/v2/keys/{id}"), &v.first).await;
    assert_eq!(a.status, 200);
    let key = ok(&a, Value::Null);
    assert_key_format(&key);
    assert_eq!(key["permissions"], json!(["fetch"]));
    assert!(key.get("value").is_none());

    let a = v
        .client
        .get("/v2/keys/abcde12345abcde12345a", &v.first)
        .await;
    refused(&a, 404, "not_found");
}
