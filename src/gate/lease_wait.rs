//! The request path's one wait besides the store lookup: a request that passed every
//! check but found a meter's cell dry awaits the lease in flight (see
//! [`crate::metering`]), then spends again. The layer's future holds an
//! [`AwaitingLease`] in a state of its own.

use std::sync::Arc;

use tokio::time::Instant;

use super::{Admission, Keygate};
use crate::cache::entry::ResolvedKey;
use crate::check::usage;
use crate::error::AuthError;
use crate::metering::{DryCell, LeaseWait, Waited};
use crate::ratelimit::RateLimitStatus;
use crate::refusal::RefusalAnswer;

/// A request waiting for a dry cell's lease, having passed every other check.
pub(crate) struct AwaitingLease {
    key: Arc<ResolvedKey>,
    status: Option<RateLimitStatus>,
    cost: u64,
    /// The store timeout after the cell was first found dry: the wait's bound.
    deadline: Instant,
    wait: Option<LeaseWait>,
}

impl AwaitingLease {
    pub(super) fn new(
        key: Arc<ResolvedKey>,
        status: Option<RateLimitStatus>,
        dry: DryCell,
        cost: u64,
    ) -> Self {
        let metering = key
            .metering
            .as_ref()
            .expect("only a metered key finds a cell dry")
            .metering
            .clone();
        let deadline = dry.deadline(&metering);
        Self {
            wait: Some(dry.wait(metering, deadline)),
            key,
            status,
            cost,
            deadline,
        }
    }

    /// The wait, to poll; taken once.
    pub(crate) fn take_wait(&mut self) -> LeaseWait {
        self.wait.take().expect("the lease wait is taken once")
    }
}

impl Keygate {
    /// After the wait of an [`Admission::AwaitLease`]: spends again, all meters or none.
    /// Admitted; refused (`usage_exceeded`: the ledger had nothing left); awaiting
    /// again (another request took the units, before the deadline); or failed closed
    /// (`store_unavailable`: the lease failed or did not come in time).
    pub(crate) fn resume<B>(
        &self,
        mut awaiting: Box<AwaitingLease>,
        waited: Waited,
        req: &mut http::Request<B>,
        answer: &RefusalAnswer,
    ) -> Admission {
        let now = self.inner.clock.read();
        let (key, status, cost) = (awaiting.key.clone(), awaiting.status, awaiting.cost);
        let checked = match waited {
            Waited::Failed | Waited::TimedOut => Err((AuthError::StoreUnavailable, status)),
            Waited::Finished => match usage::spend(&key, cost, now) {
                Ok(None) => Ok((status, None)),
                Ok(Some(dry)) if Instant::now() < awaiting.deadline => {
                    let metering = key.metering.as_ref().map(|m| m.metering.clone());
                    let metering = metering.expect("only a metered key finds a cell dry");
                    awaiting.wait = Some(dry.wait(metering, awaiting.deadline));
                    return Admission::AwaitLease(awaiting);
                }
                Ok(Some(_)) => Err((AuthError::StoreUnavailable, status)),
                Err(refused) => Err((refused, status)),
            },
        };
        if matches!(checked, Err((AuthError::StoreUnavailable, _))) {
            tracing::error!(target: "keygate", ?waited, "no usage lease within the store timeout; refusing the request");
        }
        self.conclude(key, checked, req, answer, now, cost)
    }
}
