//! No widening through usage: a metered key acting through management cannot create a
//! key that draws from a new balance, nor change any key's credits.

use super::support::*;
use keygate::manage::KeyUpdate;
use keygate::metering::{Credits, UsageLimits};
use keygate::store::AccountId;
use keygate::{ManageError, NewKey};

#[tokio::test]
async fn a_key_with_its_own_credits_cannot_mint_a_key_with_a_new_balance() {
    let m = Metered::at(crate::common::t0());
    let (_, actor) = m
        .key(
            "acct_1",
            NewKey::named("actor")
                .scopes(["admin"])
                .credits(Credits::new(5)),
        )
        .await;
    let identity = m.gate.verify_key(&actor).await.unwrap();
    let acting = m.manager.acting_as(&identity);
    for new in [
        NewKey::named("free"),
        NewKey::named("rich").credits(Credits::new(1000)),
    ] {
        let err = acting.create(new).await.unwrap_err();
        assert!(matches!(err, ManageError::Widening(_)), "{err:?}");
        assert_eq!(err.code(), "widening_refused");
        assert_eq!(err.status(), http::StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn with_shared_account_credits_a_minted_key_draws_from_the_same_balance() {
    let m = Metered::at(crate::common::t0());
    let account = AccountId::from("acct_1");
    let mut shared = UsageLimits::default();
    shared.credits = Some(Credits::new(3));
    m.manager
        .set_account_limits(&account, shared)
        .await
        .unwrap();
    let (id, actor) = m
        .key(
            "acct_1",
            NewKey::named("actor")
                .scopes(["admin"])
                .credits(Credits::new(100)),
        )
        .await;
    let identity = m.gate.verify_key(&actor).await.unwrap();
    let acting = m.manager.acting_as(&identity);
    let minted = acting.create(NewKey::named("minted")).await.unwrap();
    let minted = minted.key.expose_secret().to_owned();
    assert_eq!(m.send(&minted).await.status, 200);
    assert_eq!(m.send(&minted).await.status, 200);
    assert_eq!(m.send(&actor).await.status, 200);
    assert_usage_exceeded(&m.send(&actor).await, None);
    assert_usage_exceeded(&m.send(&minted).await, None);
    // Nor can the metered actor give any key more credits.
    let err = acting
        .update(
            &id,
            KeyUpdate::default().credits(Some(Credits::new(1_000_000))),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ManageError::Widening(_)), "{err:?}");
}
