//! Units still held when a gate goes away go back to the ledger.

use std::sync::atomic::Ordering;

use super::cell::Metering;

impl Drop for Metering {
    /// Starts returning every unit still held, on the current runtime if there is one
    /// (best effort: call [`crate::Keygate::return_leases`] before shutting down to wait
    /// for it).
    fn drop(&mut self) {
        let Some(ledger) = self.ledger.clone() else {
            return;
        };
        if ledger.local().is_some() {
            // In process: the ledger goes with the gate, or is shared and outlives it.
            for cell in self.cells.iter() {
                let units = cell.leased.swap(0, Ordering::AcqRel);
                let cold = cell.cold();
                if let Some(local) = ledger.local() {
                    if units > 0 {
                        local.release_now(&cell.meter, cold.period, units.unsigned_abs());
                    } else if units < 0 {
                        local.adjust_now(&cell.meter, &cold.policy, units, self.clock.now());
                    }
                }
            }
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let now = self.clock.now();
        let held: Vec<_> = self
            .cells
            .iter()
            .filter_map(|cell| {
                let units = cell.leased.swap(0, Ordering::AcqRel);
                let cold = cell.cold();
                (units != 0).then(|| (cell.meter.clone(), cold.policy, cold.period, units))
            })
            .collect();
        if held.is_empty() {
            return;
        }
        runtime.spawn(async move {
            for (meter, policy, period, units) in held {
                let _ = if units > 0 {
                    ledger.release(&meter, period, units.unsigned_abs()).await
                } else {
                    ledger.adjust(&meter, &policy, units, now).await.map(drop)
                };
            }
        });
    }
}
