//! The secret-scanning partner endpoint and leaked keys: alerts signed by a P-256 key
//! made in the test, a leaked key refused on its next request (here and on another
//! instance), the leak policies, idempotence, refusals that change nothing, the public
//! keys from a URL, and a batch of 1,000 tokens.

mod endpoint;
mod key_url;
mod postgres;
mod race;
mod refusals;
pub(crate) mod support;
