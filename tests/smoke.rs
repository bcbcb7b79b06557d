mod common;
use common::*;

#[tokio::test]
async fn a_created_key_is_accepted_and_a_missing_one_is_refused() {
    let h = Harness::new();
    let (id, key) = h.key("acct_1", &["admin"]).await;
    let mut svc = h.service();
    let ok = send(&mut svc, get("/", Some(&key))).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["id"], id.as_str());
    let missing = send(&mut svc, get("/", None)).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.code(), "unauthorized");
}
