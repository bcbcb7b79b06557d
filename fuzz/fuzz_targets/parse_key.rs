#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let format = keygate::key::KeyFormat::default();
        if let Ok(parsed) = format.parse(text) {
            // Anything that parses has the exact shape of a generated key.
            assert_eq!(
                text.len(),
                parsed.prefix().as_str().len() + keygate::key::SECRET_LEN + keygate::key::CHECKSUM_LEN
            );
        }
    }
});
