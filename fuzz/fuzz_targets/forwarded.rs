#![no_main]
use keygate::client_ip::{ClientIpResolver, ForwardingHeader};
use keygate::client_ip::{IpAllowlist, PeerAddr, TrustedProxies};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let proxies = IpAllowlist::parse(["10.0.0.0/8", "::1"]).unwrap();
    let xff = TrustedProxies::new(proxies.clone());
    let rfc7239 = TrustedProxies::new(proxies).header(ForwardingHeader::Forwarded);
    let mut headers = http::HeaderMap::new();
    let mid = data.len() / 2;
    if let Ok(v) = http::HeaderValue::from_bytes(&data[..mid]) {
        headers.append("x-forwarded-for", v);
    }
    if let Ok(v) = http::HeaderValue::from_bytes(&data[mid..]) {
        headers.append(http::header::FORWARDED, v);
    }
    let mut extensions = http::Extensions::new();
    extensions.insert(PeerAddr("10.1.2.3:443".parse().unwrap()));
    let _ = xff.client_ip(&headers, &extensions);
    let _ = rfc7239.client_ip(&headers, &extensions);
});
