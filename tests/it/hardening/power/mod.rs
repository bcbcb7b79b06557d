//! The property: no key ever ends up with more power than the key that made it, or
//! than the external principal (a verified JWT) that made it.

use crate::common::*;
use crate::hardening::support::*;
use keygate::manage::Revoked;
use keygate::manage::{KeyUpdate, ManagerConfig};
use keygate::ratelimit::RateLimitConfig;
use keygate::scope::GrantedScopes;
use keygate::scope::{ScopeImplications, ScopeSet};
use keygate::store::{KeyId, KeyRecord, RateLimit};
use keygate::{Environment, Identity, KeyStoreWrite, ManageError, NewKey};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

mod principal;
mod run_case;

use run_case::run_case;

pub(super) const CASES: u32 = 512;

const SCOPES: [&str; 7] = [
    "admin",
    "billing",
    "charges:read",
    "charges:write",
    "keys:write",
    "read-only",
    "fetch",
];
const NETS: [&str; 5] = [
    "203.0.113.7",
    "203.0.113.0/24",
    "10.0.0.0/8",
    "2001:db8::/32",
    "0.0.0.0/0",
];
/// Addresses that tell the nets apart.
const PROBES: [&str; 8] = [
    "203.0.113.7",
    "203.0.113.8",
    "10.1.2.3",
    "8.8.8.8",
    "2001:db8::1",
    "2001:db9::1",
    "::ffff:203.0.113.7",
    "::1",
];
const QUOTAS: [u32; 5] = [1, 2, 100, 1000, u32::MAX];
const DEFAULT_QUOTA: RateLimit = RateLimit::new(100, 200);

fn implications() -> ScopeImplications {
    ScopeImplications::new()
        .grants_all("admin")
        .implies("billing", ["charges:read", "charges:write"])
        .write_implies_read()
}

fn read_only_scopes() -> ScopeSet {
    ScopeSet::parse(["read-only", "fetch"]).unwrap()
}

/// Restrictions a key may be given: the same shape serves actors, targets, creates
/// and updates.
#[derive(Clone, Debug)]
pub(super) struct Shape {
    scopes: Vec<&'static str>,
    ips: Vec<&'static str>,
    /// Hours from the start, or none.
    expires_in_hours: Option<u64>,
    rate_limit: Option<(u32, u32)>,
    environment: Option<Environment>,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        proptest::sample::subsequence(SCOPES.to_vec(), 0..=3),
        prop_oneof![
            2 => Just(Vec::new()),
            3 => proptest::sample::subsequence(NETS.to_vec(), 1..=2),
        ],
        proptest::option::of(prop_oneof![
            Just(1u64),
            Just(24),
            Just(24 * 30),
            Just(24 * 365)
        ]),
        proptest::option::of((
            proptest::sample::select(QUOTAS.to_vec()),
            proptest::sample::select(QUOTAS.to_vec()),
        )),
        prop_oneof![
            Just(None),
            Just(Some(Environment::Test)),
            Just(Some(Environment::Live)),
        ],
    )
        .prop_map(
            |(scopes, ips, expires_in_hours, rate_limit, environment)| Shape {
                scopes,
                ips,
                expires_in_hours,
                rate_limit,
                environment,
            },
        )
}

impl Shape {
    fn new_key(&self, name: &str) -> NewKey {
        let mut new = NewKey::named(name)
            .scopes(self.scopes.iter().copied())
            .ips(self.ips.iter().copied());
        new.expires_at = self.expires_at();
        new.rate_limit = self.rate();
        new.environment = self.environment;
        new
    }

    fn expires_at(&self) -> Option<SystemTime> {
        self.expires_in_hours
            .map(|h| t0() + Duration::from_secs(h * 3600))
    }

    fn rate(&self) -> Option<RateLimit> {
        self.rate_limit.map(|(p, b)| RateLimit::new(p, b))
    }

    /// This shape's scopes that the actor holds directly, plus the actor's read-only
    /// ones.
    fn narrowed_scopes(&self, actor: &KeyRecord) -> Vec<String> {
        let restricting = read_only_scopes();
        self.scopes
            .iter()
            .copied()
            .filter(|s| actor.scopes.contains(s))
            .chain(
                actor
                    .scopes
                    .iter()
                    .map(|s| s.as_str())
                    .filter(|s| restricting.contains(s)),
            )
            .map(str::to_owned)
            .collect()
    }
}

#[derive(Clone, Debug)]
pub(super) enum Op {
    /// A create from the shape; when `narrow`, cut down to the actor's own scopes,
    /// leaving the other restrictions open (inherited).
    Create {
        shape: Shape,
        narrow: bool,
    },
    /// Which fields to set, from a shape; `target` indexes the keys known so far.
    /// When `narrow`, the restrictions set are the actor's own.
    Update {
        target: usize,
        from: Shape,
        fields: [bool; 4],
        clear_expiry: bool,
        clear_rate: bool,
        narrow: bool,
    },
    Roll(usize),
    Revoke(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (shape(), any::<bool>()).prop_map(|(shape, narrow)| Op::Create { shape, narrow }),
        3 => (
            any::<usize>(),
            shape(),
            any::<[bool; 4]>(),
            any::<(bool, bool, bool)>(),
        )
            .prop_map(|(target, from, fields, (clear_expiry, clear_rate, narrow))| {
                Op::Update { target, from, fields, clear_expiry, clear_rate, narrow }
            }),
        1 => any::<usize>().prop_map(Op::Roll),
        1 => any::<usize>().prop_map(Op::Revoke),
    ]
}

/// Everything a key can do, in terms an attacker cares about, compared directly:
/// this does not reuse keygate's rule, it probes the two keys.
fn no_more_powerful(
    key: &KeyRecord,
    actor: &KeyRecord,
    granted_key: &GrantedScopes,
    granted_actor: &GrantedScopes,
) -> Result<(), String> {
    if key.account_id != actor.account_id {
        return Err("another account".into());
    }
    if actor.environment.is_some() && key.environment != actor.environment {
        return Err(format!(
            "environment {:?} from a {:?} actor",
            key.environment, actor.environment
        ));
    }
    let restricting = read_only_scopes();
    if granted_key.has_all() && !granted_actor.has_all() {
        return Err("grants every scope".into());
    }
    let probes = SCOPES
        .iter()
        .copied()
        .chain(["other:thing", "charges:admin"])
        .chain(granted_key.iter().map(|s| s.as_str()));
    for s in probes {
        if granted_key.has(s) && !granted_actor.has(s) && !restricting.contains(s) {
            return Err(format!("scope {s}"));
        }
    }
    let read_only = |r: &KeyRecord| r.scopes.iter().any(|s| restricting.contains(s.as_str()));
    if read_only(actor) && !read_only(key) {
        return Err("read-write from a read-only actor".into());
    }
    for p in PROBES {
        let ip: IpAddr = p.parse().unwrap();
        if key.ips.allows(ip) && !actor.ips.allows(ip) {
            return Err(format!("address {p}"));
        }
    }
    if let Some(limit) = actor.expires_at {
        if key.expires_at.is_none_or(|t| t > limit) {
            return Err(format!("expiry {:?} after {limit:?}", key.expires_at));
        }
    }
    let effective = |r: &KeyRecord| r.rate_limit.or(Some(DEFAULT_QUOTA));
    if let (Some(a), k) = (effective(actor), effective(key)) {
        match k {
            Some(k) if k.per_second <= a.per_second && k.burst <= a.burst => {}
            other => return Err(format!("rate limit {other:?} above {a:?}")),
        }
    }
    Ok(())
}

/// The state of a key that an operation must not have changed, ignoring the
/// coarse `last_used_at`.
fn frozen(r: &Option<KeyRecord>) -> Option<KeyRecord> {
    r.clone().map(|mut r| {
        r.last_used_at = None;
        r
    })
}

#[derive(Default, Debug)]
pub(super) struct Tally {
    pub(super) ok: usize,
    pub(super) refused: usize,
    pub(super) not_found: usize,
    /// Cases whose actor was an external principal, and requests of such actors that
    /// succeeded.
    pub(super) external_cases: usize,
    pub(super) external_ok: usize,
    /// Requests refused because the principal named no environment.
    pub(super) environment_required: usize,
}

/// Who acts in a case: an API key, or an external principal of the actor's shape,
/// on a deployment that lets principals with no environment manage keys or not.
#[derive(Clone, Copy, Debug)]
pub(super) enum ActorKind {
    Key,
    External { neutral_allowed: bool },
}

fn actor_kind() -> impl Strategy<Value = ActorKind> {
    prop_oneof![
        1 => Just(ActorKind::Key),
        1 => any::<bool>().prop_map(|neutral_allowed| ActorKind::External { neutral_allowed }),
    ]
}

#[test]
fn no_key_ever_ends_up_with_more_power_than_the_key_or_principal_that_made_it() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let tally = std::cell::RefCell::new(Tally::default());
    let strategy = (
        actor_kind(),
        shape(),
        proptest::collection::vec(shape(), 1..=4),
        proptest::collection::vec(op(), 1..=12),
    );
    let result = runner.run(&strategy, |(kind, actor, others, ops)| {
        let mut t = tally.borrow_mut();
        rt.block_on(run_case(kind, actor, others, ops, &mut t))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let tally = tally.into_inner();
    println!("{CASES} cases: {tally:?}");
    // Not vacuous: plenty of requests succeeded, and plenty were refused.
    assert!(tally.ok > CASES as usize, "{tally:?}");
    assert!(tally.refused > CASES as usize / 2, "{tally:?}");
    assert!(tally.not_found > 0, "{tally:?}");
    // External principals were drawn, acted, and were refused without an environment.
    assert!(tally.external_cases > CASES as usize / 4, "{tally:?}");
    assert!(tally.external_ok > CASES as usize / 4, "{tally:?}");
    assert!(tally.environment_required > 0, "{tally:?}");
}
