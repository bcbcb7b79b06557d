use std::time::{Duration, SystemTime};

use http::StatusCode;
use keygate::console::usage::LogEntry;
use keygate::{Environment, NewKey};

use super::{console, grant};
use crate::common::console::ConsoleClient;

/// Creates a key through the form; returns its id and the secret page's path.
async fn create(browser: &mut ConsoleClient, fields: &[(&str, &str)]) -> (String, String) {
    let page = browser.post("/console/keys", "/console/keys", fields).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let secret_page = page.location().to_owned();
    assert!(secret_page.ends_with("/secret"), "{secret_page}");
    let id = secret_page.split('/').nth(3).unwrap().to_owned();
    (id, secret_page)
}

#[tokio::test]
async fn a_new_keys_plaintext_is_shown_exactly_once_and_never_in_a_url() {
    let (h, console, _) = console();
    let mut browser = ConsoleClient::signed_in(&console, grant("acct_1")).await;
    let (id, secret_page) = create(
        &mut browser,
        &[("name", "CI"), ("scopes", "read"), ("expires_in", "30")],
    )
    .await;
    let page = browser.get(&secret_page).await;
    let secret = page.secret().expect("the secret, this once");
    assert!(secret.starts_with("sk_test_"), "{secret}");
    assert!(!secret_page.contains(&secret));
    assert!(page.body.contains("shown only this once"));
    assert!(page.body.contains("data-copy=\"secret\""));
    let identity = h
        .gate
        .verify_key(&secret)
        .await
        .expect("the shown key works");
    assert_eq!(identity.key_id().as_str(), id);
    assert!(identity.has_scope("read") && !identity.has_scope("write"));

    let reload = browser.get(&secret_page).await;
    assert_eq!(reload.status, StatusCode::OK);
    assert!(reload.secret().is_none());
    assert!(!reload.body.contains(&secret));
    assert!(reload.body.contains("shown once and cannot be shown again"));
    for path in ["/console/keys".to_owned(), format!("/console/keys/{id}")] {
        assert!(!browser.get(&path).await.body.contains(&secret), "{path}");
    }
    let view = h
        .manager
        .get(&"acct_1".into(), &id.as_str().into())
        .await
        .unwrap();
    assert_eq!(
        view.expires_at.as_deref().map(|t| &t[..10]),
        Some(
            humantime::format_rfc3339(h.time.now() + Duration::from_secs(30 * 86_400)).to_string()
                [..10]
                .as_ref()
        )
    );
}

#[tokio::test]
async fn a_form_post_without_the_sessions_token_changes_nothing() {
    let (h, console, _) = console();
    let (id, key) = h
        .key_with(
            "acct_1",
            NewKey::named("keep me").environment(Environment::Test),
        )
        .await;
    let mut browser = ConsoleClient::signed_in(&console, grant("acct_1")).await;
    let other = ConsoleClient::signed_in(&console, grant("acct_1")).await;
    let mut other = other;
    let foreign_token = other.get("/console/keys").await.csrf();
    let path = format!("/console/keys/{id}");
    for token in [None, Some(""), Some("forged"), Some(foreign_token.as_str())] {
        for (action, fields) in [
            ("/console/keys".to_owned(), vec![("name", "forged key")]),
            (format!("{path}/revoke"), vec![]),
            (format!("{path}/roll"), vec![("grace", "0")]),
            (format!("{path}/delete"), vec![]),
            (path.clone(), vec![("name", "renamed")]),
            ("/console/logout".to_owned(), vec![]),
        ] {
            let mut all = fields.clone();
            if let Some(t) = token {
                all.push(("csrf", t));
            }
            let page = browser.post_raw(&action, &all).await;
            assert_eq!(
                page.status,
                StatusCode::FORBIDDEN,
                "{action} with {token:?}"
            );
            assert!(page.body.contains("nothing was changed"));
        }
    }
    // A cross-site post is refused even with the right token.
    let token = browser.get("/console/keys").await.csrf();
    let req = http::Request::post(format!("{path}/revoke"))
        .header("cookie", browser.cookie.clone().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(axum::body::Body::from(format!("csrf={token}")))
        .unwrap();
    assert_eq!(browser.send(req).await.status, StatusCode::FORBIDDEN);

    let view = h.manager.get(&"acct_1".into(), &id).await.unwrap();
    assert_eq!(view.name, "keep me");
    assert!(view.revoked_at.is_none());
    assert!(h.gate.verify_key(&key).await.is_ok());
    let page = h
        .manager
        .list(&"acct_1".into(), &Default::default())
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1, "no key was created");
    assert_eq!(
        browser.get("/console/keys").await.status,
        StatusCode::OK,
        "still signed in"
    );
}

#[tokio::test]
async fn keys_made_through_a_session_stay_within_its_grant_not_its_login() {
    let (h, console, _) = console();
    let bounded = grant("acct_1")
        .ttl(Duration::from_secs(600))
        .max_key_lifetime(Duration::from_secs(90 * 86_400))
        .key_ips(keygate::client_ip::IpAllowlist::parse(["10.0.0.0/8"]).unwrap());
    let mut browser = ConsoleClient::signed_in(&console, bounded).await;
    // A scope the session may not grant: refused before anything is made.
    let page = browser
        .post(
            "/console/keys",
            "/console/keys",
            &[("name", "x"), ("scopes", "admin")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    // Left open, the key gets the grant's bounds; its expiry is the grant's longest
    // lifetime, not the ten-minute login.
    let (id, _) = create(&mut browser, &[("name", "open")]).await;
    let view = h
        .manager
        .get(&"acct_1".into(), &id.as_str().into())
        .await
        .unwrap();
    let expires = humantime::parse_rfc3339(view.expires_at.as_deref().unwrap()).unwrap();
    assert_eq!(expires, h.time.now() + Duration::from_secs(90 * 86_400));
    assert_eq!(view.ips.entries().len(), 1);
    // Wider than the grant: refused with the management API's refusal.
    for fields in [
        vec![("name", "wide"), ("ips", "0.0.0.0/0")],
        vec![("name", "long"), ("expires_in", "365")],
    ] {
        let page = browser
            .post("/console/keys", "/console/keys", &fields)
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{fields:?}");
    }
    assert_eq!(
        h.manager
            .list(&"acct_1".into(), &Default::default())
            .await
            .unwrap()
            .data
            .len(),
        1
    );
}

#[tokio::test]
async fn editing_changes_name_scopes_ips_and_expiry() {
    let (h, console, _) = console();
    let mut browser = ConsoleClient::signed_in(&console, grant("acct_1")).await;
    let (id, _) = create(&mut browser, &[("name", "before"), ("scopes", "read")]).await;
    let path = format!("/console/keys/{id}");
    let page = browser
        .post(
            &path,
            &path,
            &[
                ("name", "after"),
                ("scopes", "read"),
                ("scopes", "write"),
                ("ips", "192.168.0.0/16\n10.1.2.3"),
                ("expires_in", "date"),
                ("expires_on", "2099-01-31"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let view = h
        .manager
        .get(&"acct_1".into(), &id.as_str().into())
        .await
        .unwrap();
    assert_eq!(view.name, "after");
    assert_eq!(view.scopes.len(), 2);
    assert_eq!(view.ips.entries().len(), 2);
    assert_eq!(view.expires_at.as_deref(), Some("2099-01-31T23:59:59.000Z"));
    let detail = browser.get(&path).await.body;
    assert!(detail.contains("192.168.0.0/16") && detail.contains("2099-01-31 23:59 UTC"));
    // A bad entry is the management API's clear refusal, and nothing changes.
    let page = browser
        .post(
            &path,
            &path,
            &[("name", "x"), ("ips", "not-an-ip"), ("expires_in", "keep")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        h.manager
            .get(&"acct_1".into(), &id.as_str().into())
            .await
            .unwrap()
            .name,
        "after"
    );
}

#[tokio::test]
async fn roll_keeps_the_old_secret_for_the_grace_period_then_revoke_and_delete_end_the_key() {
    let (h, console, _) = console();
    let mut browser =
        ConsoleClient::signed_in(&console, grant("acct_1").ttl(Duration::from_secs(7200))).await;
    let (id, secret_page) = create(&mut browser, &[("name", "rolling")]).await;
    let old = browser.get(&secret_page).await.secret().unwrap();
    let path = format!("/console/keys/{id}");
    let page = browser
        .post(&path, &format!("{path}/roll"), &[("grace", "3600")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let new = browser
        .get(page.location())
        .await
        .secret()
        .expect("the new secret, once");
    assert_ne!(old, new);
    assert!(
        h.gate.verify_key(&old).await.is_ok(),
        "within the grace period"
    );
    h.time.advance(Duration::from_secs(3601));
    assert!(
        h.gate.verify_key(&old).await.is_err(),
        "after the grace period"
    );
    assert!(h.gate.verify_key(&new).await.is_ok());

    let page = browser.post(&path, &format!("{path}/revoke"), &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let err = h.gate.verify_key(&new).await.unwrap_err();
    assert_eq!(err.code(), "revoked_api_key");
    let list = browser.get("/console/keys?status=revoked").await.body;
    assert!(list.contains("rolling") && list.contains("status-revoked"));

    let page = browser.post(&path, &format!("{path}/delete"), &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/console/keys");
    assert_eq!(browser.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.gate.verify_key(&new).await.unwrap_err().code(),
        "invalid_api_key"
    );
}

#[tokio::test]
async fn the_usage_view_charts_the_keys_counted_requests_by_outcome_and_lists_its_log() {
    // Over a store that keeps usage, the gate counts every request of a known key.
    let (clock, time) = keygate::clock::Clock::manual(crate::common::t0());
    let (gate, manager) = keygate::Keygate::managed(keygate::MemoryStore::new())
        .clock(clock)
        .build();
    let usage = std::sync::Arc::new(keygate::console::usage::MemoryUsage::default());
    let console = keygate::console::Console::builder(manager)
        .usage_shared(usage.clone())
        .build();
    let mut browser =
        ConsoleClient::signed_in(&console, grant("acct_1").ttl(Duration::from_secs(7200))).await;
    let (id, secret_page) = create(&mut browser, &[("name", "charted")]).await;
    let secret = browser.get(&secret_page).await.secret().unwrap();
    let mut api = tower::Layer::layer(&gate.layer(), crate::common::Echo);
    for _ in 0..2 {
        let answer =
            crate::common::send(&mut api, crate::common::get("/v1/orders", Some(&secret))).await;
        assert_eq!(answer.status, 200);
    }
    // Counts are dated when flushed: flush them before the clock moves on.
    gate.flush_usage().await.unwrap();
    time.advance(Duration::from_secs(3600));
    let path = format!("/console/keys/{id}");
    browser.post(&path, &format!("{path}/revoke"), &[]).await;
    let answer =
        crate::common::send(&mut api, crate::common::get("/v1/orders", Some(&secret))).await;
    assert_eq!(answer.status, 401);
    let now: SystemTime = time.now();
    for (outcome, status, path, account) in [
        ("ok", 200, "/v1/orders", "acct_1"),
        ("ok", 200, "/v1/orders", "acct_1"),
        ("revoked_api_key", 401, "/v1/orders", "acct_1"),
        ("ok", 200, "/v1/elsewhere", "acct_2"),
    ] {
        usage.record(LogEntry {
            at: now,
            key: id.as_str().into(),
            account: account.into(),
            outcome: outcome.into(),
            method: "GET".into(),
            path: path.into(),
            status,
        });
    }
    let page = browser.get(&format!("/console/keys/{id}/usage")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<svg"));
    assert!(
        page.body.contains("3 requests in 24 hours"),
        "{}",
        page.body
    );
    assert!(page.body.contains("class=\"s-ok\"") && page.body.contains("class=\"s-refused\""));
    let bars: Vec<&str> = page
        .body
        .split("<title>")
        .filter_map(|t| t.split('<').next())
        .filter(|t| {
            t.contains("succeeded") && !t.contains(" 0 succeeded, 0 rate limited, 0 refused")
        })
        .collect();
    assert_eq!(bars.len(), 2, "{bars:?}");
    assert!(
        bars[0].ends_with(": 2 succeeded, 0 rate limited, 0 refused"),
        "{bars:?}"
    );
    assert!(
        bars[1].ends_with(": 0 succeeded, 0 rate limited, 1 refused"),
        "{bars:?}"
    );
    assert_eq!(page.body.matches("/v1/orders").count(), 3);
    assert!(
        !page.body.contains("/v1/elsewhere"),
        "another account's log"
    );
    let filtered = browser
        .get(&format!(
            "/console/keys/{id}/usage?outcome=revoked_api_key&by=day"
        ))
        .await;
    assert_eq!(filtered.body.matches("/v1/orders").count(), 1);
    assert!(filtered.body.contains("3 requests in 30 days"));
}
