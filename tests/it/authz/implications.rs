//! Scope implications: configured, transitive, never hard-coded.

use crate::authz::support::*;
use crate::common::*;
use keygate::scope::{ScopeImplications, ScopeSet};
use keygate::Identity;

fn stripe_like() -> ScopeImplications {
    ScopeImplications::new()
        .grants_all("admin")
        .write_implies_read()
        .implies("billing", ["invoices:read", "charges:read"])
        .implies("ops", ["charges:write"])
}

#[tokio::test]
async fn write_implies_read_when_configured() {
    let h = Harness::with(|b| b.scope_implications(stripe_like()));
    let writer = scoped_key(&h, &["charges:write"]).await;
    let reader = scoped_key(&h, &["charges:read"]).await;
    let mut read_route = service(h.gate.layer().require_any(["charges:read"]));
    let mut write_route = service(h.gate.layer().require_any(["charges:write"]));
    assert_eq!(
        send(&mut read_route, get("/", Some(&writer))).await.status,
        200
    );
    assert_eq!(
        send(&mut read_route, get("/", Some(&reader))).await.status,
        200
    );
    assert_eq!(
        send(&mut write_route, get("/", Some(&writer))).await.status,
        200
    );
    assert_refused(
        &send(&mut write_route, get("/", Some(&reader))).await,
        403,
        "insufficient_scope",
    );
    // write:read only pairs the same resource.
    let mut other = service(h.gate.layer().require_any(["refunds:read"]));
    assert_refused(
        &send(&mut other, get("/", Some(&writer))).await,
        403,
        "insufficient_scope",
    );
}

#[tokio::test]
async fn named_implications_apply_transitively() {
    let h = Harness::with(|b| b.scope_implications(stripe_like()));
    let billing = scoped_key(&h, &["billing"]).await;
    let ops = scoped_key(&h, &["ops"]).await;
    let admin = scoped_key(&h, &["admin"]).await;
    let mut invoices = service(
        h.gate
            .layer()
            .require_all(["invoices:read", "charges:read"]),
    );
    let mut charges_read = service(h.gate.layer().require_any(["charges:read"]));
    let mut invoices_write = service(h.gate.layer().require_any(["invoices:write"]));

    assert_eq!(
        send(&mut invoices, get("/", Some(&billing))).await.status,
        200
    );
    assert_refused(
        &send(&mut invoices_write, get("/", Some(&billing))).await,
        403,
        "insufficient_scope",
    );
    // ops → charges:write → charges:read.
    assert_eq!(
        send(&mut charges_read, get("/", Some(&ops))).await.status,
        200
    );
    assert_refused(
        &send(&mut invoices, get("/", Some(&ops))).await,
        403,
        "insufficient_scope",
    );
    for svc in [&mut invoices, &mut charges_read, &mut invoices_write] {
        assert_eq!(send(svc, get("/", Some(&admin))).await.status, 200);
    }

    let identity: Identity = h.gate.verify_key(&ops).await.unwrap();
    assert!(identity.has_scope("charges:read"));
    assert!(!identity.has_scope("invoices:read"));
    assert_eq!(
        identity.scopes(),
        &ScopeSet::parse(["ops"]).unwrap(),
        "the key's own scopes are unchanged"
    );
}

#[tokio::test]
async fn implications_are_configured_not_hard_coded() {
    let h = Harness::with(|b| b.scope_implications(ScopeImplications::new()));
    let admin = scoped_key(&h, &["admin"]).await;
    let writer = scoped_key(&h, &["charges:write"]).await;
    let mut svc = service(h.gate.layer().require_any(["charges:read"]));
    assert_refused(
        &send(&mut svc, get("/", Some(&admin))).await,
        403,
        "insufficient_scope",
    );
    assert_refused(
        &send(&mut svc, get("/", Some(&writer))).await,
        403,
        "insufficient_scope",
    );

    let custom =
        Harness::with(|b| b.scope_implications(ScopeImplications::new().grants_all("root")));
    let root = scoped_key(&custom, &["root"]).await;
    let admin = scoped_key(&custom, &["admin"]).await;
    let mut svc = service(custom.gate.layer().require_any(["charges:read"]));
    assert_eq!(send(&mut svc, get("/", Some(&root))).await.status, 200);
    assert_refused(
        &send(&mut svc, get("/", Some(&admin))).await,
        403,
        "insufficient_scope",
    );
}
