//! The key console in headless Chromium: what a customer does with their keys, and
//! what an attacker's page and another account's session cannot do.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, Locator};
use keygate_browser_tests::{browser, Host};

/// Where the screenshots go: the repository's docs/, which the README shows.
fn docs(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(name)
}

async fn text(client: &Client, css: &str) -> String {
    let wait = client.wait().at_most(std::time::Duration::from_secs(10));
    match wait.for_element(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap(),
        Err(e) => {
            let url = client.current_url().await.map(|u| u.to_string());
            let source = client.source().await.unwrap_or_default();
            panic!("{css}: {e}\nat {url:?}:\n{source}")
        }
    }
}

async fn fill(client: &Client, css: &str, value: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Creates a key through the form and returns its plaintext from the page.
async fn create(client: &Client, host: &Host, name: &str, scopes: &[&str]) -> String {
    client.goto(&host.url("/console/keys")).await.unwrap();
    fill(client, "#name", name).await;
    for scope in scopes {
        click(client, &format!("input[name=scopes][value={scope}]")).await;
    }
    click(client, "form[action='/console/keys'] button[type=submit]").await;
    let secret = text(client, "#secret").await;
    assert!(secret.starts_with("sk_test_"), "{secret}");
    secret
}

/// Opens the first key of the list; returns its page's path.
async fn open_first_key(client: &Client) -> String {
    click(client, "#keys tbody tr:first-child td a").await;
    text(client, "#details-heading").await;
    key_path(client.current_url().await.unwrap().as_str())
}

/// `/console/keys/<id>` from a URL under it.
fn key_path(url: &str) -> String {
    let at = url.find("/console/keys/").expect("a key page");
    url[at..].split('/').take(4).collect::<Vec<_>>().join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_creates_uses_rolls_and_revokes_a_key_in_the_browser() {
    let host = Host::start().await;
    let (_driver, client) = browser().await;

    // Log in through the one-time URL: it redirects to the keys page.
    client.goto(&host.login_url("acct_shop")).await.unwrap();
    assert!(client
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/keys"));
    assert_eq!(text(&client, "h1").await, "API keys");

    // Create a key and read its plaintext once.
    let secret = create(&client, &host, "Checkout service", &["read", "write"]).await;
    let secret_url = client.current_url().await.unwrap();
    assert!(
        !secret_url.as_str().contains(&secret),
        "no secret in the URL"
    );
    assert!(text(&client, "[role=alert]")
        .await
        .contains("shown only this once"));
    // With the script running, the copy button is offered.
    assert!(client
        .find(Locator::Css("button[data-copy]"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());
    client.refresh().await.unwrap();
    assert!(
        client.find(Locator::Css("#secret")).await.is_err(),
        "reload shows it again"
    );
    assert!(text(&client, "#secret-gone")
        .await
        .contains("cannot be shown again"));
    assert!(!client.source().await.unwrap().contains(&secret));
    client.back().await.unwrap();
    assert!(
        !client.source().await.unwrap().contains(&secret),
        "back shows it again"
    );

    // Use the key against the protected route.
    assert_eq!(host.call("/v1/orders", &secret).await, 200);

    // More keys for the list, and some history for the chart of the first.
    create(&client, &host, "Analytics export", &["read"]).await;
    create(&client, &host, "Partner <script>alert(1)</script>", &[]).await;
    client.goto(&host.url("/console/keys")).await.unwrap();
    let rows = client
        .find_all(Locator::Css("#keys tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(text(&client, "#keys")
        .await
        .contains("Partner <script>alert(1)</script>"));
    assert!(
        client.find(Locator::Css("#keys script")).await.is_err(),
        "the name is text"
    );
    client
        .screenshot()
        .await
        .map(|png| std::fs::write(docs("console-keys.png"), png).unwrap())
        .unwrap();

    // The request shows in the usage view.
    let key_page = open_first_key(&client).await;
    // Real traffic over the last hours: the gate counts each request by outcome
    // (`/v1/admin` needs a scope this key lacks: refused).
    for (calls, refused) in [
        (12, 0),
        (0, 0),
        (25, 2),
        (18, 0),
        (40, 5),
        (0, 0),
        (30, 1),
        (22, 0),
    ] {
        for _ in 0..calls {
            assert_eq!(host.call("/v1/orders", &secret).await, 200);
        }
        for _ in 0..refused {
            assert_eq!(host.call("/v1/admin", &secret).await, 403);
        }
        // Counts are dated when flushed: flush before the clock moves on.
        host.gate.flush_usage().await.unwrap();
        host.time.advance(Duration::from_secs(3600));
    }
    assert_eq!(host.call("/v1/orders", &secret).await, 200);
    click(&client, "a[href$='/usage']").await;
    let chart = client.find(Locator::Css("figure.chart svg")).await.unwrap();
    assert!(chart.is_displayed().await.unwrap());
    assert!(text(&client, "#api-log tbody tr:first-child")
        .await
        .contains("GET /v1/orders"));
    let chart = text(&client, "figure.chart").await;
    assert!(chart.contains("Succeeded"), "{chart}");
    client
        .screenshot()
        .await
        .map(|png| std::fs::write(docs("console-usage.png"), png).unwrap())
        .unwrap();
    let desc = client
        .find(Locator::Css("#chart-desc"))
        .await
        .unwrap()
        .html(true)
        .await
        .unwrap();
    assert!(desc.contains("157 requests in 24 hours"), "{desc}");

    // Roll with a grace period of an hour: the old secret works until it ends.
    client.goto(&host.url(&key_page)).await.unwrap();
    click(&client, "#roll button").await;
    let rolled = text(&client, "#secret").await;
    assert_ne!(rolled, secret);
    assert_eq!(
        host.call("/v1/orders", &secret).await,
        200,
        "within the grace period"
    );
    assert_eq!(host.call("/v1/orders", &rolled).await, 200);
    host.time.advance(Duration::from_secs(3601));
    assert_eq!(
        host.call("/v1/orders", &secret).await,
        401,
        "after the grace period"
    );
    assert_eq!(host.call("/v1/orders", &rolled).await, 200);

    // Revoke: refused at once.
    client.goto(&host.url(&key_page)).await.unwrap();
    click(&client, "#revoke button").await;
    assert_eq!(text(&client, "h1 .status-revoked").await, "revoked");
    assert_eq!(host.call("/v1/orders", &rolled).await, 401);

    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_form_post_is_refused_and_changes_nothing() {
    let host = Host::start().await;
    let (_driver, client) = browser().await;
    client.goto(&host.login_url("acct_shop")).await.unwrap();
    let secret = create(&client, &host, "Keep me", &["read"]).await;
    client.goto(&host.url("/console/keys")).await.unwrap();
    let key_page = open_first_key(&client).await;

    // The revoke form without its token, from the console's own page.
    client
        .execute(
            "document.querySelector('#revoke input[name=csrf]').remove();",
            vec![],
        )
        .await
        .unwrap();
    click(&client, "#revoke button").await;
    assert!(text(&client, "[role=alert]")
        .await
        .contains("nothing was changed"));
    // A forged token.
    client.goto(&host.url(&key_page)).await.unwrap();
    client
        .execute(
            "document.querySelector('#revoke input[name=csrf]').value = 'forged';",
            vec![],
        )
        .await
        .unwrap();
    click(&client, "#revoke button").await;
    assert!(text(&client, "[role=alert]")
        .await
        .contains("nothing was changed"));

    // A page on another site posting the form: the strict cookie does not go with it.
    let attacker = attacker_page(&host.url(&format!("{key_page}/revoke"))).await;
    client.goto(&attacker).await.unwrap();
    click(&client, "button").await;
    // Refused as not signed in: the strict cookie stays behind, and stays set.
    assert_eq!(text(&client, "h1").await, "Signed out");

    assert_eq!(
        host.call("/v1/orders", &secret).await,
        200,
        "the key still works"
    );
    client.goto(&host.url(&key_page)).await.unwrap();
    assert!(text(&client, "h1").await.contains("active"));
    client.close().await.unwrap();
}

/// A page on another site (`localhost` rather than `127.0.0.1`) with a form that
/// posts to `target`.
async fn attacker_page(target: &str) -> String {
    let page = format!(
        "<!doctype html><form method=post action='{target}'><input type=hidden name=csrf value=x><button>Win a prize</button></form>"
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://localhost:{port}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_for_another_account_sees_none_of_the_keys() {
    let host = Host::start().await;
    let (_driver, client) = browser().await;
    client.goto(&host.login_url("acct_shop")).await.unwrap();
    create(&client, &host, "Shop key", &["read"]).await;
    client.goto(&host.url("/console/keys")).await.unwrap();
    let key_page = open_first_key(&client).await;

    // The same browser, signed in to another account.
    client.goto(&host.login_url("acct_other")).await.unwrap();
    assert!(text(&client, "main").await.contains("No keys here yet"));
    assert!(!client.source().await.unwrap().contains("Shop key"));
    client.goto(&host.url(&key_page)).await.unwrap();
    assert_eq!(text(&client, "h1").await, "Key not found");
    client.close().await.unwrap();
}
