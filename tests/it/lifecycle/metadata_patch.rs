//! Metadata updates as RFC 7396 JSON merge patches: semantics, size limits on the
//! result, and the admin API's PATCH.

use crate::common::*;
use keygate::manage::KeyUpdate;
use keygate::store::AccountId;
use keygate::{KeyStoreWrite, ManageError, NewKey};
use serde_json::{json, Map, Value};

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn acct() -> AccountId {
    AccountId::from("acct_1")
}

#[tokio::test]
async fn a_merge_patch_removes_nulls_merges_objects_and_replaces_the_rest() {
    let h = Harness::new();
    let metadata = json!({"team": "a", "env": {"region": "eu", "zone": 1}, "drop": true});
    let (id, _) = h
        .key_with("acct_1", NewKey::named("k").metadata(object(metadata)))
        .await;
    let patch = json!({"drop": null, "env": {"zone": 2, "region": null}, "tags": [1, 2]});
    let view = h
        .manager
        .update(
            &acct(),
            &id,
            KeyUpdate::default().merge_metadata(object(patch)),
        )
        .await
        .unwrap();
    let expected = json!({"team": "a", "env": {"zone": 2}, "tags": [1, 2]});
    assert_eq!(Value::Object(view.metadata), expected);
    let stored = h.store.inner.get(&id).await.unwrap().unwrap();
    assert_eq!(Value::Object(stored.metadata), expected);
    // Replacing still replaces.
    let view = h
        .manager
        .update(
            &acct(),
            &id,
            KeyUpdate::default().metadata(object(json!({"only": 1}))),
        )
        .await
        .unwrap();
    assert_eq!(Value::Object(view.metadata), json!({"only": 1}));
}

#[tokio::test]
async fn a_patch_whose_result_is_too_large_is_refused_and_changes_nothing() {
    let h = Harness::new();
    let big = "x".repeat(3000);
    let (id, _) = h
        .key_with(
            "acct_1",
            NewKey::named("k").metadata(object(json!({"a": big}))),
        )
        .await;
    // The patch alone is small enough; the result (about 5 KB) is not.
    let patch = object(json!({"b": "y".repeat(2000)}));
    let err = h
        .manager
        .update(&acct(), &id, KeyUpdate::default().merge_metadata(patch))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ManageError::InvalidRequest(m) if m.starts_with("metadata")),
        "{err:?}"
    );
    let stored = h.store.inner.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.metadata.len(), 1);
    assert_eq!(stored.version, 0, "nothing written");
    // A patch that is itself over the limit is refused before any read.
    let huge = object(json!({"c": "z".repeat(5000)}));
    assert!(matches!(
        h.manager
            .update(&acct(), &id, KeyUpdate::default().merge_metadata(huge))
            .await,
        Err(ManageError::InvalidRequest(_))
    ));
    // Removing a member to make room works.
    let patch = object(json!({"a": null, "b": "y".repeat(2000)}));
    let view = h
        .manager
        .update(&acct(), &id, KeyUpdate::default().merge_metadata(patch))
        .await
        .unwrap();
    assert_eq!(view.metadata.keys().collect::<Vec<_>>(), ["b"]);
}

#[cfg(feature = "admin")]
#[tokio::test]
async fn the_admin_patch_merges_metadata_instead_of_replacing_it() {
    let h = Harness::new();
    let (_, admin) = h.key("acct_1", &["admin"]).await;
    let (id, _) = h
        .key_with(
            "acct_1",
            NewKey::named("k").metadata(object(json!({"team": "a", "tier": "gold"}))),
        )
        .await;
    let addr = serve(keygate::admin::router(h.manager.clone())).await;
    let auth = bearer(&admin);
    let body = json!({"metadata": {"tier": null, "owner": "ops"}}).to_string();
    let answer = http(
        addr,
        http::Method::PATCH,
        &format!("/v1/api-keys/{id}"),
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        &body,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.json()["metadata"],
        json!({"team": "a", "owner": "ops"})
    );
}
