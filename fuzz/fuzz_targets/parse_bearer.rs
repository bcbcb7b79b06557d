#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = std::str::from_utf8(data) {
        if let Ok(token) = keygate::check::parse_bearer(value) {
            assert!(!token.is_empty());
            assert!(value.contains(token));
        }
    }
});
