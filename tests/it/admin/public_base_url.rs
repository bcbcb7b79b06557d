//! `RouterBuilder::public_base_url`: absolute links to the next page.

use crate::common::*;

use axum::body::Bytes;
use http::{Method, Response, StatusCode};
use keygate::admin::{self, JsonEnvelope, Reply};
use serde_json::json;

/// Shows the next page's link, as an envelope with `links.next` does.
fn with_links(reply: Reply<'_>) -> Response<Bytes> {
    use keygate::admin::Envelope as _;
    match reply {
        Reply::Page { keys, next, .. } => admin::json_response(
            StatusCode::OK,
            &json!({ "result": keys, "links": { "next": next.map(|n| n.url) } }),
        ),
        other => JsonEnvelope.render(other),
    }
}

async fn next_link(builder: admin::RouterBuilder, key: &str) -> String {
    let addr = serve(builder.envelope(with_links).build()).await;
    let auth = bearer(key);
    let a = http(
        addr,
        Method::GET,
        "/v1/api-keys?limit=1",
        &[("authorization", auth.as_str())],
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()["links"]["next"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn links_to_the_next_page_are_absolute_after_a_public_base_url() {
    let h = Harness::new();
    let (_, admin_key) = h.key("acct_links", &["admin"]).await;
    h.key("acct_links", &[]).await;

    let relative = next_link(admin::builder(h.manager.clone()), &admin_key).await;
    assert!(
        relative.starts_with("/v1/api-keys?limit=1&cursor="),
        "{relative}"
    );

    let absolute = next_link(
        admin::builder(h.manager.clone()).public_base_url("https://api.example.com/edge"),
        &admin_key,
    )
    .await;
    assert_eq!(absolute, format!("https://api.example.com/edge{relative}"));

    // The link's path and query fetch the next page.
    let addr = serve(admin::router(h.manager.clone())).await;
    let auth = bearer(&admin_key);
    let a = http(
        addr,
        Method::GET,
        &relative,
        &[("authorization", auth.as_str())],
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["data"].as_array().unwrap().len(), 1);
}

#[test]
fn a_public_base_url_that_is_not_an_absolute_url_is_refused_when_the_router_is_built() {
    let (_, manager) = keygate::Keygate::managed(keygate::MemoryStore::new()).build();
    for bad in [
        "api.example.com",
        "/v1",
        "https://",
        "https://api.example.com/",
        "https://api.example.com?x=1",
        "https://api.example.com#top",
        "https://user@api.example.com",
        "ftp://api.example.com",
        "https://api example.com",
    ] {
        let m = manager.clone();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _ = admin::builder(m).public_base_url(bad);
        }));
        assert!(result.is_err(), "{bad} was accepted");
    }
    let _ = admin::builder(manager).public_base_url("http://127.0.0.1:8080");
}
