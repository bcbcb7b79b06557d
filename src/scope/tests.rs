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
