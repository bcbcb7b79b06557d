//! Usage limits: credits with refills, quotas per calendar period, plans, costs and
//! after-the-fact charges, all on a manual clock.

mod calendar;
mod credits;
mod deleted_keys;
mod plans;
mod quota_headers;
mod support;
mod widening;
