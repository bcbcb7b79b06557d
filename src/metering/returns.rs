//! Units going back to the ledger: on shutdown, from cells no cached key holds any
//! more, for one meter, and when a gate goes away.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::cell::{Cold, MeterCell, Metering};
use super::Meter;

impl Metering {
    /// Returns every cell's units to the ledger (shutdown).
    pub(crate) async fn flush(&self) {
        let cells: Vec<Arc<MeterCell>> = self.cells.iter().map(|c| c.value().clone()).collect();
        for cell in cells {
            self.settle(&cell).await;
        }
    }

    /// Returns the units of cells no cache entry holds any more, and forgets them.
    pub(crate) async fn return_unheld(&self) {
        let unheld: Vec<Arc<MeterCell>> = self
            .cells
            .iter()
            .filter(|c| Arc::strong_count(c.value()) == 1)
            .map(|c| c.value().clone())
            .collect();
        for cell in unheld {
            self.settle(&cell).await;
            self.cells.remove_if(&cell.meter, |_, c| {
                Arc::strong_count(c) <= 2 && c.held() == 0
            });
        }
    }

    /// Returns the units this instance holds of `meter`, if any.
    pub(crate) async fn settle_meter(&self, meter: &Meter) {
        let cell = self.cells.get(meter).map(|c| c.value().clone());
        if let Some(cell) = cell {
            self.settle(&cell).await;
        }
    }

    /// Moves a cell's units (or debt) back to the ledger; the next spend leases again.
    pub(super) async fn settle(&self, cell: &MeterCell) {
        let Some(ledger) = &self.ledger else { return };
        if let Some(local) = ledger.local() {
            let cold = cell.cold();
            cell.until.store(0, Ordering::Release);
            let units = cell.leased.swap(0, Ordering::AcqRel);
            if units > 0 {
                local.release_now(&cell.meter, cold.period, units.unsigned_abs());
                cell.note_returned(units);
            } else if units < 0 {
                local.adjust_now(&cell.meter, &cold.policy, units, self.clock.now());
            }
            return;
        }
        if cell.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let Cold { policy, period, .. } = *cell.cold();
        cell.until.store(0, Ordering::Release);
        let units = cell.leased.swap(0, Ordering::AcqRel);
        let now = self.clock.now();
        let returned = if units > 0 {
            ledger
                .release(&cell.meter, period, units.unsigned_abs())
                .await
        } else if units < 0 {
            ledger
                .adjust(&cell.meter, &policy, units, now)
                .await
                .map(drop)
        } else {
            Ok(())
        };
        if returned.is_ok() && units > 0 {
            cell.note_returned(units);
        }
        if let Err(error) = returned {
            // The outcome is unknown (the ledger may have applied it before failing to
            // answer): keeping the units could spend them twice, so they are dropped.
            tracing::warn!(meter = ?cell.meter, units, %error, "returning leased units failed; they are not returned");
        }
        cell.busy.store(false, Ordering::Release);
        // Requests that found the cell dry meanwhile look again (and ask for a lease).
        cell.lease.finish(false);
    }
}

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
