#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(set) = keygate::scope::ScopeSet::parse(text.split(' ')) {
            let granted = keygate::scope::ScopeImplications::new()
                .grants_all("admin")
                .write_implies_read()
                .expand(&set);
            for scope in set.iter() {
                assert!(granted.has(scope.as_str()));
            }
        }
        let _ = serde_json::from_str::<keygate::scope::ScopeSet>(text);
    }
});
