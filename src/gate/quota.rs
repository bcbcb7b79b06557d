//! The quota fields of a response (see [`crate::ratelimit::QuotaHeaders`]): made only
//! when quota headers are on and the key has quotas.

use std::time::SystemTime;

use super::Keygate;
use crate::cache::entry::ResolvedKey;
use crate::metering::Meters;
use crate::ratelimit::{QuotaFields, RateLimitConfig};

impl Keygate {
    /// What the response to `key`'s request reports of its quotas as of `now`: `None`
    /// when the key has no quota, or neither the IETF fields nor `X-…` quota headers
    /// are on (then nothing is computed).
    #[inline(always)]
    pub(crate) fn quota_fields(
        &self,
        key: &ResolvedKey,
        now: SystemTime,
    ) -> Option<Box<QuotaFields>> {
        if !self.inner.reports_quotas {
            return None;
        }
        let meters = key.metering.as_ref()?;
        Self::report_quotas(meters, self.inner.limits.config(), now)
    }

    /// The fields themselves, out of line: the request path only tests whether any
    /// quota header is on.
    #[inline(never)]
    fn report_quotas(
        meters: &Meters,
        config: &RateLimitConfig,
        now: SystemTime,
    ) -> Option<Box<QuotaFields>> {
        let report = meters.quota_report(now)?;
        Some(Box::new(QuotaFields {
            report,
            ietf: config.ietf_headers,
            names: config.quota_headers.clone(),
        }))
    }
}
