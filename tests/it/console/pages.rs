use http::StatusCode;
use keygate::{Environment, NewKey};

use super::{console, grant};
use crate::common::console::{ConsoleClient, Page};

/// The headers every console response must carry.
fn assert_hardened(path: &str, page: &Page) {
    let csp = page
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{path}: no CSP"));
    assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "{path}: {csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"), "{path}");
    assert_eq!(
        page.header("x-content-type-options"),
        Some("nosniff"),
        "{path}"
    );
    assert_eq!(
        page.header("referrer-policy"),
        Some("no-referrer"),
        "{path}"
    );
    if page
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html"))
    {
        assert_eq!(page.header("cache-control"), Some("no-store"), "{path}");
        // Scripts and styles only with this response's nonce, from the console itself.
        let nonce = csp
            .split("script-src 'nonce-")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .unwrap_or_else(|| panic!("{path}: no nonce in {csp}"));
        assert_eq!(
            page.body.matches("<script").count(),
            page.body
                .matches(&format!(
                    "<script src=\"/console/assets/console.js\" nonce=\"{nonce}\""
                ))
                .count(),
            "{path}: a script without the nonce"
        );
        assert!(
            !page.body.contains(" style=\""),
            "{path}: an inline style attribute"
        );
        assert!(
            !page.body.contains("https://"),
            "{path}: a third-party origin"
        );
    }
}

#[tokio::test]
async fn every_console_response_carries_the_security_headers() {
    let (h, console, _) = console();
    let (id, _) = h
        .key_with("acct_1", NewKey::named("k").environment(Environment::Test))
        .await;
    let mut anonymous = ConsoleClient::new(&console);
    for (path, status) in [
        ("/console/keys", StatusCode::UNAUTHORIZED),
        ("/console/login/not-a-token", StatusCode::UNAUTHORIZED),
        ("/console/nowhere", StatusCode::NOT_FOUND),
    ] {
        let page = anonymous.get(path).await;
        assert_eq!(page.status, status, "{path}");
        assert_hardened(path, &page);
    }
    let mut browser = ConsoleClient::signed_in(&console, grant("acct_1")).await;
    let key = format!("/console/keys/{id}");
    for (path, status) in [
        ("/console".to_owned(), StatusCode::SEE_OTHER),
        ("/console/keys".to_owned(), StatusCode::OK),
        ("/console/keys?status=all".to_owned(), StatusCode::OK),
        (key.clone(), StatusCode::OK),
        (format!("{key}/secret"), StatusCode::OK),
        (format!("{key}/usage"), StatusCode::OK),
        (format!("{key}/usage?by=day&outcome=ok"), StatusCode::OK),
        ("/console/keys/ak_missing".to_owned(), StatusCode::NOT_FOUND),
        ("/console/keys/%3Cx%3E".to_owned(), StatusCode::NOT_FOUND),
        ("/console/assets/console.css".to_owned(), StatusCode::OK),
        ("/console/assets/console.js".to_owned(), StatusCode::OK),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, status, "{path}");
        assert_hardened(&path, &page);
    }
    // Refused and accepted posts too.
    let forged = browser.post_raw("/console/keys", &[("name", "x")]).await;
    assert_hardened("forged post", &forged);
    let created = browser
        .post("/console/keys", "/console/keys", &[("name", "y")])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    assert_hardened("create", &created);
}

#[tokio::test]
async fn a_key_name_with_markup_renders_as_text() {
    let (h, console, _) = console();
    let name = "<script>alert(1)</script>\"'&";
    let (id, _) = h
        .key_with(
            "acct_1",
            NewKey::named(name)
                .environment(Environment::Test)
                .scopes(["read"]),
        )
        .await;
    let mut browser = ConsoleClient::signed_in(&console, grant("acct_1")).await;
    for path in [
        "/console/keys".to_owned(),
        format!("/console/keys/{id}"),
        format!("/console/keys/{id}/usage"),
    ] {
        let page = browser.get(&path).await;
        assert!(!page.body.contains("<script>alert"), "{path}");
        assert!(
            page.body
                .contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_pages_are_labelled_for_screen_readers() {
    let (h, console, _) = console();
    let (id, _) = h
        .key_with("acct_1", NewKey::named("k").environment(Environment::Test))
        .await;
    let mut browser = ConsoleClient::signed_in(&console, grant("acct_1")).await;
    let list = browser.get("/console/keys").await.body;
    assert!(list.contains("<html lang=\"en\">"));
    assert!(list.contains("class=\"skip\" href=\"#main\""));
    assert!(list.contains("<caption class=\"sr-only\">"));
    // Every form control has a label.
    for id in ["name", "ips", "expires", "scope-0", "scope-1"] {
        assert!(list.contains(&format!("for=\"{id}\"")), "label for {id}");
    }
    let usage = browser.get(&format!("/console/keys/{id}/usage")).await.body;
    assert!(usage.contains("role=\"img\" aria-labelledby=\"chart-title chart-desc\""));
}
