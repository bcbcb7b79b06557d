//! `GET /v1/api-logs`: filters, paging newest first, bad input and confinement, over HTTP.

use std::collections::HashSet;
use std::time::Duration;

use axum::routing::get;
use http::Method;
use keygate::ScopeRequirement;

use super::logged;
use crate::common::{bearer, http, serve, Answer, T0};

fn at(offset: u64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(T0 + offset);
    humantime::format_rfc3339_seconds(t).to_string()
}

async fn logs(addr: std::net::SocketAddr, key: &str, query: &str) -> Answer {
    let auth = bearer(key);
    http(
        addr,
        Method::GET,
        &format!("/v1/api-logs?{query}"),
        &[("authorization", auth.as_str())],
        "",
    )
    .await
}

#[tokio::test]
async fn the_api_log_is_filtered_and_paged_newest_first_through_http() {
    let (h, _log) = logged(|c| c.accepted_sample_rate(1.0));
    let (_, admin) = h.key("acct_a", &["admin"]).await;
    let (reader_id, reader) = h.key("acct_a", &["read"]).await;
    let (revoked_id, revoked) = h.key("acct_a", &["read"]).await;
    let (other_id, other_admin) = h.key("acct_b", &["admin"]).await;
    let things = axum::Router::new()
        .route("/v1/things", get(|| async { "things" }))
        .layer(h.gate.layer().require(ScopeRequirement::scope("write")));
    let addr = serve(keygate::admin::router(h.manager.clone()).merge(things)).await;
    let call = |key: String| async move {
        let auth = bearer(&key);
        http(
            addr,
            Method::GET,
            "/v1/things?secret=1",
            &[("authorization", auth.as_str())],
            "",
        )
        .await
        .status
    };
    for _ in 0..3 {
        assert_eq!(call(reader.clone()).await, 403);
    }
    h.time.advance(Duration::from_secs(10));
    h.manager
        .revoke(&"acct_a".into(), &revoked_id)
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(call(revoked.clone()).await, 401);
    }
    h.time.advance(Duration::from_secs(10));
    for _ in 0..2 {
        assert_eq!(call(admin.clone()).await, 200);
    }
    h.time.advance(Duration::from_secs(10));
    h.gate.api_log().unwrap().flush().await;

    let scope = logs(addr, &admin, "outcome=insufficient_scope").await;
    assert_eq!(scope.status, 200, "{}", scope.body);
    let data = scope.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 3);
    for e in &data {
        assert_eq!(e["key_id"], reader_id.as_str());
        assert_eq!(e["account_id"], "acct_a");
        assert_eq!(e["outcome"], "insufficient_scope");
        assert_eq!(e["method"], "GET");
        assert_eq!(e["path"], "/v1/things");
        assert_eq!(e["client_ip"], "127.0.0.1");
        assert_eq!(e["status"], 403);
        assert_eq!(e["time"], "2023-11-14T22:13:20.000Z");
    }
    assert!(scope.json()["next_cursor"].is_null());

    let by_key = logs(addr, &admin, &format!("key_id={revoked_id}"))
        .await
        .json();
    assert_eq!(by_key["data"].as_array().unwrap().len(), 2);
    assert!(by_key["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["outcome"] == "revoked_api_key" && e["status"] == 401));

    let window = logs(addr, &admin, &format!("from={}&to={}", at(10), at(20)))
        .await
        .json();
    let window = window["data"].as_array().unwrap();
    assert_eq!(window.len(), 2);
    assert!(window.iter().all(|e| e["outcome"] == "revoked_api_key"));

    let accepted = logs(addr, &admin, &format!("outcome=accepted&to={}", at(21)))
        .await
        .json();
    let accepted = accepted["data"].as_array().unwrap();
    assert_eq!(accepted.len(), 2);
    assert!(accepted
        .iter()
        .all(|e| e["status"] == 200 && e["path"] == "/v1/things"));

    // Paging: 7 events before t0+21, two a page, newest first, each once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = logs(
            addr,
            &admin,
            &format!("limit=2&to={}&cursor={cursor}", at(21)),
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        pages += 1;
        seen.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen.len(), 7);
    let outcomes: Vec<&str> = seen
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "accepted",
            "accepted",
            "revoked_api_key",
            "revoked_api_key",
            "insufficient_scope",
            "insufficient_scope",
            "insufficient_scope"
        ]
    );
    let times: Vec<&str> = seen.iter().map(|e| e["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // Bad filters: a clear 400 naming the parameter; another account's key is absent.
    for (query, field) in [
        ("outcome=bogus", "outcome"),
        ("cursor=not-a-cursor", "cursor"),
        ("limit=0", "limit"),
        ("from=yesterday", "from"),
        ("key_id=a-b", "key_id"),
    ] {
        let bad = logs(addr, &admin, query).await;
        assert_eq!(bad.status, 400, "{query}: {}", bad.body);
        assert_eq!(bad.code(), "invalid_request", "{query}");
        let message = bad.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with(field), "{query}: {message}");
    }
    // A window that ends before it starts selects nothing; it is not an error.
    let empty = logs(addr, &admin, &format!("from={}&to={}", at(20), at(10))).await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(empty.json()["data"].as_array().unwrap().is_empty());
    let foreign = logs(addr, &admin, &format!("key_id={other_id}")).await;
    assert_eq!(
        (foreign.status.as_u16(), foreign.code().as_str()),
        (404, "not_found")
    );

    // Another account's admin sees none of these.
    let theirs = logs(addr, &other_admin, "").await.json();
    let ids: HashSet<&str> = theirs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["account_id"].as_str().unwrap())
        .collect();
    assert!(ids.iter().all(|a| *a == "acct_b"), "{ids:?}");
    // A key without a reading scope is refused by the layer, and that refusal is logged.
    let refused = logs(addr, &reader, "").await;
    assert_eq!(refused.status, 403);
}

#[tokio::test]
async fn an_actor_of_one_environment_sees_only_that_environments_keys_events() {
    use keygate::{Environment, NewKey};
    let (h, _log) = logged(|c| c);
    let (_, live_admin) = h
        .key_with(
            "acct_a",
            NewKey::named("live")
                .scopes(["admin"])
                .environment(Environment::Live),
        )
        .await;
    let (test_id, test_key) = h
        .key_with(
            "acct_a",
            NewKey::named("test").environment(Environment::Test),
        )
        .await;
    let (live_id, live_key) = h
        .key_with(
            "acct_a",
            NewKey::named("live2").environment(Environment::Live),
        )
        .await;
    h.manager.revoke(&"acct_a".into(), &test_id).await.unwrap();
    h.manager.revoke(&"acct_a".into(), &live_id).await.unwrap();
    let mut svc = h.service();
    crate::common::send(&mut svc, crate::common::get("/x", Some(&test_key))).await;
    crate::common::send(&mut svc, crate::common::get("/x", Some(&live_key))).await;
    h.gate.api_log().unwrap().flush().await;
    assert_eq!(super::all_events(&h.manager, "acct_a").await.len(), 2);
    let addr = serve(keygate::admin::router(h.manager.clone())).await;
    let seen = logs(addr, &live_admin, "").await.json();
    let keys: Vec<&str> = seen["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [live_id.as_str()]);
    let hidden = logs(addr, &live_admin, &format!("key_id={test_id}")).await;
    assert_eq!(hidden.status, 404);
}
