//! The checks of a request, in the documented order, one step per file:
//!
//! 1. `credentials.rs`: the credential header, present and well formed
//!    ([`parse_bearer`], [`MAX_CREDENTIAL_LEN`]);
//! 2. `format.rs`: the key's format and checksum, and the environment its prefix names,
//!    with no I/O; then its digest;
//! 3. `lookup.rs`: the cache, then one shared store lookup, and what a found record
//!    becomes in the cache; for a bearer that is not a keygate key, `external.rs`: the
//!    [credential verifier](crate::credential) in place of the lookup;
//! 4. `status.rs`: digest match, revoked, disabled, expired, rolled, the stored key's
//!    environment;
//! 5. `access.rs`: the key's IP allowlist, the route's scopes, read-only keys;
//! 6. `limit.rs`: the rate limit, so a refused request consumes no quota;
//! 7. `usage.rs`: quotas, then credits (see [`crate::metering`]), last, so a request
//!    refused by anything earlier spends nothing.
//!
//! Each step is a function of what it checks and the settings it needs, with no tower
//! types: [`crate::Keygate`] runs them in this order for the layer (see
//! [`crate::layer`] for the error codes of each step).

pub(crate) mod access;
pub(crate) mod credentials;
pub(crate) mod external;
pub(crate) mod format;
pub(crate) mod limit;
pub(crate) mod lookup;
pub(crate) mod status;
pub(crate) mod usage;

pub use credentials::{parse_bearer, MAX_CREDENTIAL_LEN};
