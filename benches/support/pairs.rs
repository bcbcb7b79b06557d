//! `floor` and `keygate_hot` measured in pairs: every criterion sample of either one also
//! times the other on as many requests right after it, so that the two figures of a pair
//! ran under the same load. The hot/floor ratio of each pair is kept, and their median is
//! printed (and written to `target/criterion/verify/hot_over_floor.txt`) when the group
//! ends: on a shared machine the times of two ids taken minutes apart move by more than
//! the gap between them, while the ratio of a pair does not.

use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Requests built per timed chunk: few enough to stay in cache, enough to hide the clock.
const CHUNK: u64 = 256;

/// Times `iters` calls of `call` on fresh requests from `make`; building the requests and
/// dropping the responses stay outside the timed loops.
pub fn timed<Req, Res>(
    iters: u64,
    make: &mut dyn FnMut() -> Req,
    call: &mut dyn FnMut(Req) -> Res,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    let mut out: Vec<Res> = Vec::with_capacity(CHUNK as usize);
    while left > 0 {
        let n = left.min(CHUNK);
        let requests: Vec<Req> = (0..n).map(|_| make()).collect();
        let start = Instant::now();
        for req in requests {
            out.push(call(req));
        }
        total += start.elapsed();
        out.clear();
        left -= n;
    }
    total
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
