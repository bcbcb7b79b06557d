//! `keygate::admin::KeyFields` as a parser: any body, however hostile, is a key
//! request or a 400 naming what is wrong, never a panic; and what it renders, it reads
//! back.

use crate::common::*;

use keygate::admin::{AdminError, KeyFields};
use keygate::{Identity, ManageError};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn vidbeo_like() -> KeyFields {
    KeyFields::default()
        .only(["id", "name", "scopes", "ips", "created_at", "updated_at"])
        .rename("scopes", "permissions")
        .rename("key", "value")
        .constant("type", "api")
        .required(["type"])
        .record_actors("created_by", "updated_by")
}

/// An identity to act as.
fn actor() -> Identity {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let h = Harness::new();
        let (_, key) = h.key("acct_1", &[]).await;
        h.gate.verify_key(&key).await.unwrap()
    })
}

/// A 400 `invalid_request` (or `read_only_field`, for a recorded actor field) whose
/// message starts with a field name or `body`.
fn is_clear_refusal(e: &AdminError) -> bool {
    matches!(
        e,
        AdminError::Manage(ManageError::InvalidRequest(m) | ManageError::ReadOnlyField(m))
            if m.contains(": ")
    ) && e.status() == 400
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9 ./:_-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects over the API's own field names and a few others, with any values.
fn body() -> impl Strategy<Value = Map<String, Value>> {
    let names = prop::sample::select(vec![
        "type",
        "name",
        "permissions",
        "scopes",
        "ips",
        "value",
        "key",
        "created_by",
        "metadata",
        "id",
    ]);
    prop::collection::btree_map(names, json_value(), 0..6)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_body_is_a_request_or_a_clear_400(
        fields in body(),
        bytes in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let who = actor_once();
        let mapping = vidbeo_like();
        let text = Value::Object(fields).to_string();
        for raw in [text.as_bytes(), bytes.as_slice()] {
            match mapping.parse_create(raw, who) {
                Ok(new) => {
                    prop_assert_eq!(
                        new.metadata.get("created_by"),
                        Some(&Value::from(who.key_id().as_str()))
                    );
                }
                Err(e) => prop_assert!(is_clear_refusal(&e), "{e:?}"),
            }
            if let Err(e) = mapping.parse_update(raw, who) {
                prop_assert!(is_clear_refusal(&e), "{e:?}");
            }
        }
    }
}

/// One identity for every case of the property.
fn actor_once() -> &'static Identity {
    static ACTOR: std::sync::OnceLock<Identity> = std::sync::OnceLock::new();
    ACTOR.get_or_init(actor)
}

#[test]
fn deeply_nested_bodies_are_a_400_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let body = format!(r#"{{"type":"api","name":"n","permissions":{deep}}}"#);
    let e = vidbeo_like()
        .parse_create(body.as_bytes(), actor_once())
        .unwrap_err();
    assert!(is_clear_refusal(&e), "{e:?}");
    assert!(e.to_string().starts_with("body: "), "{e}");
}

#[tokio::test]
async fn what_is_rendered_is_read_back_the_same() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &[]).await;
    let who = h.gate.verify_key(&key).await.unwrap();
    let mapping = vidbeo_like();
    let body = json!({"type": "api", "name": "round trip", "permissions": ["fetch"], "ips": ["10.0.0.0/8"]});
    let new = mapping
        .parse_create(body.to_string().as_bytes(), &who)
        .unwrap();
    let created = h
        .manager
        .create(who.account_id().clone(), new)
        .await
        .unwrap();
    let shown = mapping.render(&created.view, Some(created.key.expose_secret()));
    assert_eq!(shown["permissions"], json!(["fetch"]));
    assert_eq!(shown["type"], "api");
    assert_eq!(shown["created_by"], who.key_id().as_str());
    assert_eq!(shown["value"], created.key.expose_secret());
    // The writable fields as shown, sent back, are the same request.
    let mut again = Map::new();
    for field in ["type", "name", "permissions", "ips"] {
        again.insert(field.to_owned(), shown[field].clone());
    }
    let reread = mapping
        .parse_create(Value::Object(again).to_string().as_bytes(), &who)
        .unwrap();
    assert_eq!(reread.name, "round trip");
    assert_eq!(reread.scopes, ["fetch"]);
    assert_eq!(reread.ips, ["10.0.0.0/8"]);
}
