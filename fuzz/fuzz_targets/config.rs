//! The configuration file: arbitrary TOML read as a `KeygateConfig` with the `toml`
//! crate (what an application's loader does), then applied to a read-only and to a
//! managed builder; on the managed gate, a key is created and verified twice (a store
//! lookup, then a cached hit) under those settings. The runtime is made once per process.
//!
//! Invariants: no panic; a config that parses serialises back to TOML and reads back
//! equal; applying it either fails with a `ConfigError` or builds a gate; a key the
//! manager has just created is never refused with a 5xx (the store is in memory and
//! cannot fail).
#![no_main]

use std::sync::OnceLock;

use keygate::config::KeygateConfig;
use keygate::store::AccountId;
use keygate::{Keygate, MemoryStore, NewKey};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    })
}

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
    let Ok(builder) = Keygate::managed(MemoryStore::new()).config(&config) else {
        return;
    };
    let (gate, manager) = builder.build();
    runtime().block_on(async {
        let Ok(created) = manager
            .create(AccountId::from("acct_fuzz"), NewKey::named("fuzz"))
            .await
        else {
            return;
        };
        for _ in 0..2 {
            if let Err(e) = gate.verify_key(created.key.expose_secret()).await {
                assert!(
                    !e.status().is_server_error(),
                    "a new key answered {}: {}\n{again}",
                    e.status(),
                    e.message()
                );
            }
        }
    });
});
