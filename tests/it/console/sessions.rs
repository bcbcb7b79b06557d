use std::time::Duration;

use http::StatusCode;
use keygate::console::{Permission, SessionGrant};
use keygate::{Environment, NewKey};

use super::{console, grant};
use crate::common::console::ConsoleClient;

#[tokio::test]
async fn a_login_link_works_once_and_sets_a_strict_http_only_secure_cookie() {
    let (_h, console, _) = console();
    let link = console.session(grant("acct_1"));
    let mut browser = ConsoleClient::new(&console);
    let page = browser.get(link.expose_path()).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/console/keys");
    let cookie = page.header("set-cookie").unwrap();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/console",
        "Max-Age=900",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert_eq!(browser.get("/console/keys").await.status, StatusCode::OK);

    let mut other = ConsoleClient::new(&console);
    let again = other.get(link.expose_path()).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again
        .header("set-cookie")
        .is_none_or(|c| c.contains("Max-Age=0")));
    assert_eq!(
        other.get("/console/keys").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn secure_cookies_can_be_turned_off_for_plain_http_development() {
    let h = crate::common::Harness::new();
    let console = keygate::console::Console::builder(h.manager.clone())
        .secure_cookies(false)
        .build();
    let mut browser = ConsoleClient::new(&console);
    let page = browser
        .get(console.session(grant("acct_1")).expose_path())
        .await;
    let cookie = page.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(!cookie.contains("Secure"));
}

#[tokio::test]
async fn a_session_expires_at_its_ttl() {
    let (h, console, _) = console();
    let mut browser =
        ConsoleClient::signed_in(&console, grant("acct_1").ttl(Duration::from_secs(600))).await;
    h.time.advance(Duration::from_secs(599));
    assert_eq!(browser.get("/console/keys").await.status, StatusCode::OK);
    h.time.advance(Duration::from_secs(1));
    let page = browser.get("/console/keys").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("session has ended"));
}

#[tokio::test]
async fn an_unused_login_link_expires_after_five_minutes() {
    let (h, console, _) = console();
    let link = console.session(grant("acct_1"));
    h.time.advance(Duration::from_secs(300));
    let mut browser = ConsoleClient::new(&console);
    assert_eq!(
        browser.get(link.expose_path()).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_revoked_session_is_signed_out_at_once() {
    let (_h, console, _) = console();
    let link = console.session(grant("acct_1"));
    let mut browser = ConsoleClient::new(&console);
    browser.get(link.expose_path()).await;
    assert_eq!(browser.get("/console/keys").await.status, StatusCode::OK);
    assert!(console.revoke_session(&link.session));
    assert_eq!(
        browser.get("/console/keys").await.status,
        StatusCode::UNAUTHORIZED
    );

    // Every session of an account at once, unused links included.
    let mut a = ConsoleClient::signed_in(&console, grant("acct_1")).await;
    let unused = console.session(grant("acct_1"));
    let mut b = ConsoleClient::signed_in(&console, grant("acct_2")).await;
    assert_eq!(console.revoke_sessions_of(&"acct_1".into()), 2);
    assert_eq!(
        a.get("/console/keys").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ConsoleClient::new(&console)
            .get(unused.expose_path())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(b.get("/console/keys").await.status, StatusCode::OK);
}

#[tokio::test]
async fn signing_out_ends_the_session_and_clears_the_cookie() {
    let (_h, console, _) = console();
    let mut browser = ConsoleClient::signed_in(&console, grant("acct_1")).await;
    let cookie = browser.cookie.clone();
    let page = browser.post("/console/keys", "/console/logout", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header("set-cookie").unwrap().contains("Max-Age=0"));
    browser.cookie = cookie;
    assert_eq!(
        browser.get("/console/keys").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_session_for_another_account_sees_none_of_the_keys() {
    let (h, console, _) = console();
    let (id, _) = h
        .key_with(
            "acct_1",
            NewKey::named("payments backend").environment(Environment::Test),
        )
        .await;
    let mut mine = ConsoleClient::signed_in(&console, grant("acct_1")).await;
    assert!(mine
        .get("/console/keys")
        .await
        .body
        .contains("payments backend"));

    let mut theirs = ConsoleClient::signed_in(&console, grant("acct_2")).await;
    let list = theirs.get("/console/keys?status=all").await;
    assert!(!list.body.contains("payments backend"));
    assert!(list.body.contains("No keys here yet"));
    let path = format!("/console/keys/{id}");
    assert_eq!(theirs.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        theirs.get(&format!("{path}/usage")).await.status,
        StatusCode::NOT_FOUND
    );
    for action in ["revoke", "roll", "delete"] {
        let page = theirs
            .post("/console/keys", &format!("{path}/{action}"), &[])
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{action}");
    }
    let kept = h.manager.get(&"acct_1".into(), &id).await.unwrap();
    assert!(kept.revoked_at.is_none());
}

#[tokio::test]
async fn a_session_of_one_environment_sees_none_of_the_other() {
    let (h, console, _) = console();
    h.key_with(
        "acct_1",
        NewKey::named("live key").environment(Environment::Live),
    )
    .await;
    h.key_with(
        "acct_1",
        NewKey::named("test key").environment(Environment::Test),
    )
    .await;
    let mut test = ConsoleClient::signed_in(&console, grant("acct_1")).await;
    let body = test.get("/console/keys").await.body;
    assert!(body.contains("test key") && !body.contains("live key"));

    // Both, when the host says so; the create form then offers the environment.
    let both = SessionGrant::new("acct_1".into(), None).permit(Permission::ALL);
    let mut all = ConsoleClient::signed_in(&console, both).await;
    let body = all.get("/console/keys").await.body;
    assert!(body.contains("test key") && body.contains("live key"));
    assert!(body.contains("name=\"environment\""));
}

#[tokio::test]
async fn the_pages_offer_and_the_server_allows_only_the_sessions_permissions() {
    let (h, console, _) = console();
    let (id, _) = h
        .key_with("acct_1", NewKey::named("k").environment(Environment::Test))
        .await;
    let read_only =
        SessionGrant::new("acct_1".into(), Some(Environment::Test)).permit([Permission::ReadKeys]);
    let mut browser = ConsoleClient::signed_in(&console, read_only).await;
    let list = browser.get("/console/keys").await;
    assert!(!list.body.contains("Create key"));
    let detail = browser.get(&format!("/console/keys/{id}")).await;
    for absent in [
        "Roll key",
        "Revoke key",
        "Delete key",
        "Save changes",
        "View usage",
    ] {
        assert!(!detail.body.contains(absent), "{absent}");
    }
    let from = format!("/console/keys/{id}");
    for (path, permission) in [
        ("/console/keys".to_owned(), "keys:create"),
        (format!("{from}/revoke"), "keys:revoke"),
        (format!("{from}/roll"), "keys:roll"),
        (format!("{from}/delete"), "keys:delete"),
        (from.clone(), "keys:update"),
    ] {
        let page = browser.post(&from, &path, &[("name", "x")]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.body.contains(permission), "{path}");
    }
    assert_eq!(
        browser.get(&format!("{from}/usage")).await.status,
        StatusCode::FORBIDDEN
    );
    let kept = h.manager.get(&"acct_1".into(), &id).await.unwrap();
    assert!(kept.revoked_at.is_none());
    assert_eq!(kept.name, "k");
}
