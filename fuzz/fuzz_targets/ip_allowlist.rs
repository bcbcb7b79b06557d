#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(list) = keygate::client_ip::IpAllowlist::parse(text.split(',')) {
            // Whatever parses serialises and parses back to the same list.
            let json = serde_json::to_string(&list).unwrap();
            let back: keygate::client_ip::IpAllowlist = serde_json::from_str(&json).unwrap();
            assert_eq!(back, list);
            let _ = list.allows("127.0.0.1".parse().unwrap());
        }
        let _ = serde_json::from_str::<keygate::client_ip::IpAllowlist>(text);
    }
});
