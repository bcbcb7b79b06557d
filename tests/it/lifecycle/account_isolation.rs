//! Account isolation: no key sees or changes another account's keys.

use crate::common::*;
use crate::lifecycle::support::*;
use keygate::manage::KeyUpdate;
use keygate::ManageError;
use std::collections::BTreeSet;

// ---------------------------------------------------------------------------------------
// Account isolation

#[tokio::test]
async fn a_key_cannot_see_or_change_another_accounts_keys() {
    let h = Harness::new();
    let (_, a_key) = h.key("acct_a", &["admin"]).await;
    let (a_other, _) = h.key("acct_a", &[]).await;
    let (b_id, b_key) = h.key("acct_b", &["admin"]).await;
    let actor = identity(&h, &a_key).await;
    let acting = h.manager.acting_as(&actor);

    assert!(matches!(
        acting.get(&b_id).await,
        Err(ManageError::NotFound)
    ));
    assert!(matches!(
        acting
            .update(&b_id, KeyUpdate::default().name("pwned"))
            .await,
        Err(ManageError::NotFound)
    ));
    assert!(matches!(
        acting.revoke(&b_id).await,
        Err(ManageError::NotFound)
    ));
    assert!(matches!(
        acting.roll(&b_id, None).await,
        Err(ManageError::NotFound)
    ));

    let page = acting.list(&page_query(Some(100), None)).await.unwrap();
    let ids: BTreeSet<&str> = page.data.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(a_other.as_str()));
    assert!(!ids.contains(b_id.as_str()));
    assert!(page.data.iter().all(|v| v.account_id == acct("acct_a")));

    // B's key is untouched.
    let b = h.manager.get(&acct("acct_b"), &b_id).await.unwrap();
    assert_eq!(b.name, "test key");
    assert_eq!(b.revoked_at, None);
    assert!(h.gate.verify_key(&b_key).await.is_ok());

    // The plain manager enforces the same boundary by account.
    assert!(matches!(
        h.manager.get(&acct("acct_a"), &b_id).await,
        Err(ManageError::NotFound)
    ));
    assert!(matches!(
        h.manager.revoke(&acct("acct_a"), &b_id).await,
        Err(ManageError::NotFound)
    ));
}
