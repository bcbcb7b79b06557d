//! Security hardening: each defect the adversarial review found, shown fixed
//! over HTTP where it is an HTTP behaviour (the admin router on loopback TCP), plus a
//! property test that no management request ever yields a key with more power than the
//! key that made it, and a create+revoke flood that shows the store's memory levels off.

mod environment;
mod memory;
mod power;
mod requests;
mod support;
mod validation;
mod widening;
