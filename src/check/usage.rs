//! Step 7, the last: usage. The key's quotas, then its credits, then its account's
//! (see [`crate::metering`]), reached only when every other check passed, the rate
//! limit included, so a request refused earlier spends nothing. All or nothing: a
//! request refused by one meter spends nothing from the others.

use crate::cache::entry::ResolvedKey;
use crate::clock::Now;
use crate::error::AuthError;
use crate::metering::{DryCell, Short};

/// What a request spent, in its identity, so that an inner layer of the same gate with
/// another cost spends or refunds only the difference. 0 for a key nothing meters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Spent(pub(crate) u64);

/// Spends `cost` from every meter of `key`. Free when nothing is metered. `Ok(Some)`:
/// nothing was spent, as a meter's cell is dry and its lease is on its way; the request
/// awaits it, then spends again (see [`crate::metering`]).
#[inline]
pub(crate) fn spend(key: &ResolvedKey, cost: u64, now: Now) -> Result<Option<DryCell>, AuthError> {
    match &key.metering {
        None => Ok(None),
        Some(meters) => match meters.spend(cost, now) {
            Ok(()) => Ok(None),
            Err(Short::Dry(dry)) => Ok(Some(dry)),
            Err(Short::Refused(retry_after)) => Err(AuthError::UsageExceeded { retry_after }),
        },
    }
}

/// For an inner layer whose cost is `cost` on a request its outer layer admitted
/// having spent `spent`: spends the difference, or refunds it.
pub(crate) fn respend(key: &ResolvedKey, spent: u64, cost: u64, now: Now) -> Result<(), AuthError> {
    let Some(meters) = &key.metering else {
        return Ok(());
    };
    if cost > spent {
        // An inner layer's extra cost does not wait for a lease: with its cell dry, the
        // request is refused at once, to be retried.
        match spend(key, cost - spent, now)? {
            None => Ok(()),
            Some(_) => Err(AuthError::UsageExceeded {
                retry_after: Some(std::time::Duration::from_secs(1)),
            }),
        }
    } else {
        meters.give_back(spent - cost);
        Ok(())
    }
}
