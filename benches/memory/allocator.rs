//! The counting global allocator and what it reports.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};

/// Counts live bytes, allocation calls and the high-water mark, and can record the sizes
/// of the allocations made while [`RECORDING`] is set.
pub(crate) struct Counting;

pub(crate) static LIVE: AtomicIsize = AtomicIsize::new(0);
pub(crate) static PEAK: AtomicIsize = AtomicIsize::new(0);
pub(crate) static CALLS: AtomicUsize = AtomicUsize::new(0);
pub(crate) static RECORDING: AtomicBool = AtomicBool::new(false);
pub(crate) static RECORDED: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];
pub(crate) static RECORDED_LEN: AtomicUsize = AtomicUsize::new(0);

impl Counting {
    pub(crate) fn grew(size: usize) {
        CALLS.fetch_add(1, Ordering::Relaxed);
        let live = LIVE.fetch_add(size as isize, Ordering::Relaxed) + size as isize;
        PEAK.fetch_max(live, Ordering::Relaxed);
        if RECORDING.load(Ordering::Relaxed) {
            let i = RECORDED_LEN.fetch_add(1, Ordering::Relaxed);
            if let Some(slot) = RECORDED.get(i) {
                slot.store(size, Ordering::Relaxed);
            }
        }
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are
// plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
            Self::grew(new_size);
        }
        p
    }
}

#[global_allocator]
pub(crate) static ALLOCATOR: Counting = Counting;

pub(crate) fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

pub(crate) fn reset_peak() {
    PEAK.store(live(), Ordering::Relaxed);
}

pub(crate) fn peak() -> isize {
    PEAK.load(Ordering::Relaxed)
}

pub(crate) fn mib(bytes: isize) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}
