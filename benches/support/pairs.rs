//! `floor` and `keygate_hot` measured in pairs: every criterion sample of either one also
//! times the other on as many requests, in alternating chunks of [`CHUNK`] requests
//! (tens of microseconds each), so that the two figures of a pair ran under the same
//! load. The hot/floor ratio of each pair is kept, and their median is printed (and
//! written to `target/criterion/verify/hot_over_floor.txt`) when the group ends: on a
//! shared machine the times of two ids taken seconds apart move by more than the gap
//! between them, while the ratio of a pair moves much less.

use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Requests per timed chunk: short enough that both stacks of a pair see the same load,
/// long enough (about 50 µs) to hide the clock reads.
pub const CHUNK: u64 = 64;

/// Times `iters` calls of `a` and `iters` calls of `b` on fresh requests from `make`, in
/// alternating chunks (`a` first); building the requests and dropping the responses stay
/// outside the timed loops.
pub fn timed_pair<Req, A, B>(
    iters: u64,
    make: &mut dyn FnMut() -> Req,
    a: &mut dyn FnMut(Req) -> A,
    b: &mut dyn FnMut(Req) -> B,
) -> (Duration, Duration) {
    let (mut ta, mut tb) = (Duration::ZERO, Duration::ZERO);
    let (mut out_a, mut out_b) = (
        Vec::with_capacity(CHUNK as usize),
        Vec::with_capacity(CHUNK as usize),
    );
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        ta += chunk(n, make, a, &mut out_a);
        tb += chunk(n, make, b, &mut out_b);
        left -= n;
    }
    (ta, tb)
}

/// Times `n` calls of `call` on requests built beforehand; the responses are dropped
/// after the clock stops.
fn chunk<Req, Res>(
    n: u64,
    make: &mut dyn FnMut() -> Req,
    call: &mut dyn FnMut(Req) -> Res,
    out: &mut Vec<Res>,
) -> Duration {
    let requests: Vec<Req> = (0..n).map(|_| make()).collect();
    let start = Instant::now();
    for req in requests {
        out.push(call(req));
    }
    let took = start.elapsed();
    out.clear();
    took
}

/// The pairs taken so far: (floor, hot) per sample.
#[derive(Default)]
pub struct Pairs(RefCell<Vec<(Duration, Duration)>>);

impl Pairs {
    pub fn push(&self, floor: Duration, hot: Duration) {
        self.0.borrow_mut().push((floor, hot));
    }

    /// `median p25 p75 pairs` of the per-pair hot/floor ratios, if any pair was taken.
    pub fn summary(&self) -> Option<String> {
        let mut ratios: Vec<f64> = self
            .0
            .borrow()
            .iter()
            .filter(|(f, _)| !f.is_zero())
            .map(|(f, h)| h.as_secs_f64() / f.as_secs_f64())
            .collect();
        if ratios.is_empty() {
            return None;
        }
        ratios.sort_by(f64::total_cmp);
        let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
        Some(format!(
            "hot/floor median {:.3} p25 {:.3} p75 {:.3} pairs {}",
            at(0.5),
            at(0.25),
            at(0.75),
            ratios.len()
        ))
    }
}
