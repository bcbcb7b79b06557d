//! With `record_actors`, `created_by` and `updated_by` are the server's: no request
//! writes or erases them, and every change that leaves a record sets `updated_by`.

use crate::common::*;
use crate::principals::support::*;
use http::Method;
use keygate::admin::KeyFields;
use serde_json::{json, Value};

async fn recording() -> Api {
    Api::new(
        |b| b,
        |r| r.fields(KeyFields::default().record_actors("created_by", "updated_by")),
    )
    .await
}

#[tokio::test]
async fn actor_fields_cannot_be_forged_or_erased_through_a_request() {
    let api = recording().await;
    let (admin_id, admin) = api.h.key("acct_1", &["admin"]).await;
    let created = api
        .call(
            Method::POST,
            "/v1/api-keys",
            &admin,
            Some(json!({"name": "target"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let before = api.call(Method::GET, &key_path(&id), &admin, None).await;
    assert_eq!(before.json()["created_by"], admin_id.as_str());

    let forgeries = [
        json!({"metadata": {"created_by": "ak_somebody_else"}}),
        json!({"metadata": {"created_by": null}}),
        json!({"metadata": {"updated_by": "ak_somebody_else"}}),
        json!({"metadata": {"updated_by": null}, "name": "renamed"}),
        json!({"created_by": "ak_somebody_else"}),
        json!({"updated_by": null}),
    ];
    for body in forgeries {
        let a = api
            .call(Method::PATCH, &key_path(&id), &admin, Some(body.clone()))
            .await;
        assert_error(&a, 400, "read_only_field");
        let after = api.call(Method::GET, &key_path(&id), &admin, None).await;
        assert_eq!(after.json(), before.json(), "{body} changed the key");
    }
    for body in [
        json!({"name": "forged", "metadata": {"created_by": "ak_somebody_else"}}),
        json!({"name": "forged", "created_by": "ak_somebody_else"}),
    ] {
        let a = api
            .call(Method::POST, "/v1/api-keys", &admin, Some(body))
            .await;
        assert_error(&a, 400, "read_only_field");
    }
    let keys = api.call(Method::GET, "/v1/api-keys", &admin, None).await;
    assert_eq!(listed(&keys).len(), 2, "no forged key was created");
    // The metadata shown holds no actor field, so sending it back is accepted.
    let shown = before.json()["metadata"].clone();
    assert!(shown.get("created_by").is_none(), "{shown}");
    let echoed = api
        .call(
            Method::PATCH,
            &key_path(&id),
            &admin,
            Some(json!({"metadata": shown})),
        )
        .await;
    assert_eq!(echoed.status, 200, "{}", echoed.body);
    // Other metadata stays the client's.
    let ok = api
        .call(
            Method::PATCH,
            &key_path(&id),
            &admin,
            Some(json!({"metadata": {"team": "core"}})),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["created_by"], admin_id.as_str());
}

#[tokio::test]
async fn roll_revoke_and_disable_record_who_made_the_change() {
    let api = recording().await;
    let (a_id, a) = api.h.key("acct_1", &["admin"]).await;
    let (b_id, b) = api.h.key("acct_1", &["admin"]).await;
    let (c_id, c) = api.h.key("acct_1", &["admin"]).await;
    let make = |name: &'static str| {
        let api = &api;
        let a = a.clone();
        async move {
            let created = api
                .call(
                    Method::POST,
                    "/v1/api-keys",
                    &a,
                    Some(json!({"name": name})),
                )
                .await;
            created.json()["id"].as_str().unwrap().to_owned()
        }
    };
    let rolled = make("rolled").await;
    let revoked = make("revoked").await;
    let disabled = make("disabled").await;
    let updated_by = |answer: &Answer| answer.json()["updated_by"].clone();

    let roll = api.call(Method::POST, &roll_path(&rolled), &b, None).await;
    assert_eq!(roll.status, 200, "{}", roll.body);
    assert_eq!(updated_by(&roll), b_id.as_str());
    let shown = api.call(Method::GET, &key_path(&rolled), &a, None).await;
    assert_eq!(updated_by(&shown), b_id.as_str());
    assert_eq!(shown.json()["created_by"], a_id.as_str());

    let revoke = api
        .call(Method::DELETE, &key_path(&revoked), &c, None)
        .await;
    assert_eq!(revoke.status, 204, "{}", revoke.body);
    let shown = api.call(Method::GET, &key_path(&revoked), &a, None).await;
    assert!(shown.json()["revoked_at"].is_string(), "{}", shown.body);
    assert_eq!(updated_by(&shown), c_id.as_str());
    assert_eq!(shown.json()["created_by"], a_id.as_str());

    let disable = api
        .call(
            Method::PATCH,
            &key_path(&disabled),
            &b,
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(disable.status, 200, "{}", disable.body);
    assert_eq!(updated_by(&disable), b_id.as_str());
    assert_eq!(disable.json()["created_by"], Value::from(a_id.as_str()));
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_hard_delete_by_a_jwt_leaves_no_record_and_its_audit_event_names_the_actor() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let api = Api::new(
        |b| {
            b.environment(keygate::Environment::Live)
                .credential_verifier(crate::common::jwt_support::verifier())
        },
        |r| {
            r.fields(KeyFields::default().record_actors("created_by", "updated_by"))
                .delete(keygate::admin::DeleteMode::Delete)
        },
    )
    .await;
    let jwt = token("u1", "admin", 3600, json!({}));
    let created = api
        .call(
            Method::POST,
            "/v1/api-keys",
            &jwt,
            Some(json!({"name": "short-lived"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let deleted = api.call(Method::DELETE, &key_path(&id), &jwt, None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_error(
        &api.call(Method::GET, &key_path(&id), &jwt, None).await,
        404,
        "not_found",
    );
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let event = log
        .lines()
        .find(|l| l.contains("api key deleted"))
        .expect("a delete audit event");
    assert!(event.contains(&id), "{event}");
    assert!(event.contains("external:u1"), "{event}");
}
