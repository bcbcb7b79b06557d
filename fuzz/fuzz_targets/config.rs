//! The configuration file: arbitrary TOML read as a `KeygateConfig` with the `toml`
//! crate (what an application's loader does), then applied to a read-only and to a
//! managed builder, and the gate built.
//!
//! Invariants: no panic; a config that parses serialises back to TOML and reads back
//! equal; applying it either fails with a `ConfigError` or builds a gate.
#![no_main]

use keygate::{Keygate, KeygateConfig, MemoryStore};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = toml::from_str::<KeygateConfig>(text) else {
        return;
    };
    let again = toml::to_string(&config).expect("a parsed config serialises to TOML");
    let back: KeygateConfig = toml::from_str(&again)
        .unwrap_or_else(|e| panic!("the serialised config reads back: {e}\n{again}"));
    assert_eq!(
        back, config,
        "the config round-trips through TOML:\n{again}"
    );

    if let Ok(builder) = Keygate::builder(MemoryStore::new()).config(&config) {
        let _ = builder.build();
    }
    if let Ok(builder) = Keygate::managed(MemoryStore::new()).config(&config) {
        let _ = builder.build();
    }
});
