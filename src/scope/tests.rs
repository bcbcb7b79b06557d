//! Unit tests.
use super::*;

fn set(names: &[&str]) -> ScopeSet {
    ScopeSet::parse(names).unwrap()
}

#[test]
fn implications_are_transitive_and_configured() {
    let rules = ScopeImplications::new()
        .write_implies_read()
        .implies("billing", ["charges:write"]);
    let granted = rules.expand(&set(&["billing"]));
    assert!(granted.has("charges:write"));
    assert!(granted.has("charges:read"));
    assert!(!granted.has("admin"));
    assert!(!ScopeImplications::new()
        .expand(&set(&["charges:write"]))
        .has("charges:read"));
}

#[test]
fn grants_all_covers_unknown_scopes() {
    let rules = ScopeImplications::new().grants_all("admin");
    assert!(rules.expand(&set(&["admin"])).has("anything:at-all"));
    assert!(!rules.expand(&set(&["read-only"])).has("admin"));
}

#[test]
fn grants_all_applies_when_implied() {
    let rules = ScopeImplications::new()
        .grants_all("admin")
        .implies("owner", ["admin"]);
    let granted = rules.expand(&set(&["owner"]));
    assert!(granted.has_all());
    assert!(granted.has("anything:at-all"));
}

#[test]
fn descriptions_name_the_required_scopes() {
    assert_eq!(
        ScopeRequirement::scope("admin").describe(),
        "This endpoint requires 'admin' scope"
    );
    assert_eq!(
        ScopeRequirement::any_of(["admin", "read-only"]).describe(),
        "This endpoint requires 'admin' or 'read-only' scope"
    );
    assert_eq!(
        ScopeRequirement::all_of(["a", "b", "c"]).describe(),
        "This endpoint requires 'a', 'b' and 'c' scopes"
    );
}

#[test]
fn scope_names_are_validated() {
    assert!(Scope::new("charges:write").is_ok());
    assert!(Scope::new("").is_err());
    assert!(Scope::new("has space").is_err());
    assert!(Scope::new(&"x".repeat(65)).is_err());
    assert!(serde_json::from_str::<Scope>("\"bad scope\"").is_err());
}

/// The requirement's answer by its precompiled bits, when they can tell.
fn by_bits(
    rules: &ScopeImplications,
    requirement: &ScopeRequirement,
    granted: &GrantedScopes,
) -> Option<bool> {
    rules.bits.compile(requirement)?.is_met_by(granted)
}

#[test]
fn bits_answer_as_names_do_for_keys_resolved_after_the_route() {
    let rules = ScopeImplications::new().grants_all("admin");
    let requirements = [
        ScopeRequirement::any_of(["charges:read", "billing"]),
        ScopeRequirement::all_of(["charges:read", "billing"]),
        ScopeRequirement::AnyOf(vec![]),
        ScopeRequirement::AllOf(vec![]),
    ];
    for r in &requirements {
        rules.bits.compile(r);
    }
    for held in [
        &[][..],
        &["charges:read"],
        &["billing", "charges:read"],
        &["admin"],
        &["other"],
    ] {
        let granted = rules.expand(&set(held));
        for r in &requirements {
            assert_eq!(
                by_bits(&rules, r, &granted),
                Some(r.is_met_by(&granted)),
                "{held:?} {r:?}"
            );
        }
    }
}

#[test]
fn bits_defer_to_names_for_keys_resolved_before_the_route_or_in_another_table() {
    let rules = ScopeImplications::new();
    let early = rules.expand(&set(&["late:scope"]));
    let late = ScopeRequirement::scope("late:scope");
    assert_eq!(
        by_bits(&rules, &late, &early),
        None,
        "numbered after the key"
    );
    assert!(late.is_met_by(&early));
    let now = rules.expand(&set(&["late:scope"]));
    assert_eq!(by_bits(&rules, &late, &now), Some(true));
    let other = ScopeImplications::new().expand(&set(&["late:scope"]));
    assert_eq!(
        by_bits(&rules, &late, &other),
        None,
        "another deployment's table"
    );
}

#[test]
fn names_beyond_sixty_four_bits_are_checked_by_name() {
    let rules = ScopeImplications::new();
    for i in 0..64 {
        assert!(rules
            .bits
            .compile(&ScopeRequirement::scope(&format!("s{i}")))
            .is_some());
    }
    assert!(rules
        .bits
        .compile(&ScopeRequirement::scope("s64"))
        .is_none());
    let granted = rules.expand(&set(&["s63", "s64"]));
    assert_eq!(
        by_bits(&rules, &ScopeRequirement::scope("s63"), &granted),
        Some(true)
    );
    assert_eq!(
        by_bits(&rules, &ScopeRequirement::scope("s0"), &granted),
        Some(false)
    );
}

proptest::proptest! {
    #[test]
    fn bits_and_names_agree(
        held in proptest::collection::vec(0usize..8, 0..6),
        wanted in proptest::collection::vec(0usize..8, 0..4),
        all in proptest::prelude::any::<bool>(),
        admin in proptest::prelude::any::<bool>(),
    ) {
        let name = |i: &usize| format!("scope:{i}");
        let rules = ScopeImplications::new().grants_all("admin").write_implies_read();
        let wanted: Vec<String> = wanted.iter().map(name).collect();
        let requirement = if all {
            ScopeRequirement::all_of(&wanted)
        } else {
            ScopeRequirement::any_of(&wanted)
        };
        rules.bits.compile(&requirement);
        let mut held: Vec<String> = held.iter().map(name).collect();
        if admin {
            held.push("admin".into());
        }
        let granted = rules.expand(&ScopeSet::parse(&held).unwrap());
        proptest::prop_assert_eq!(
            by_bits(&rules, &requirement, &granted),
            Some(requirement.is_met_by(&granted))
        );
    }
}
