//! The embeddable key console (feature `console`), through its router: sessions and
//! their cookie, the security headers and escaping of every page, form tokens, the
//! keys actions with their confinement and one-time secrets, and the usage view.

mod actions;
mod pages;
mod sessions;

use std::sync::Arc;

use keygate::console::usage::MemoryUsage;
use keygate::console::{Console, Permission, SessionGrant};
use keygate::scope::ScopeSet;
use keygate::Environment;

use crate::common::Harness;

/// A console over a fresh harness (manual clock), mounted at `/console`, with usage
/// kept in memory.
fn console() -> (Harness, Console, Arc<MemoryUsage>) {
    let h = Harness::new();
    let usage = Arc::new(MemoryUsage::default());
    let console = Console::builder(h.manager.clone())
        .mount_path("/console")
        .usage_shared(usage.clone())
        .build();
    (h, console, usage)
}

/// Every permission in `account`'s test environment, granting `read` and `write`.
fn grant(account: &str) -> SessionGrant {
    SessionGrant::new(account.into(), Some(Environment::Test))
        .user("ada@example.com")
        .permit(Permission::ALL)
        .grantable_scopes(ScopeSet::parse(["read", "write"]).unwrap())
}
