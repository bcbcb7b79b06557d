//! Scope names interned as bits, so that the request path checks a route's requirement
//! against a key's scopes with one AND instead of string comparisons.
//!
//! Each deployment's [`ScopeImplications`](super::ScopeImplications) carries a table
//! that numbers the scope names routes require, up to 64, as their layers are built
//! (never the names keys hold: those are the store's data, unbounded). A key's granted
//! set records, when it is resolved, the bits of the names it holds and how many names
//! the table had then; a requirement is precompiled into a mask. A requirement with a
//! name numbered after the key was resolved, or beyond the 64th, or from another table,
//! is checked by name as before: the bits are a shortcut with the same answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use super::{GrantedScopes, Scope, ScopeRequirement};

/// Names numbered per table.
const MAX_BITS: usize = 64;

static NEXT_TABLE: AtomicU64 = AtomicU64::new(1);

/// One deployment's numbering of required scope names.
#[derive(Debug)]
pub(crate) struct ScopeBits {
    id: u64,
    names: RwLock<HashMap<Scope, u8>>,
}

impl Default for ScopeBits {
    fn default() -> Self {
        Self {
            id: NEXT_TABLE.fetch_add(1, Ordering::Relaxed),
            names: RwLock::new(HashMap::new()),
        }
    }
}

/// A key's scopes as bits of one table: `bits` of the first `known` names.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeldBits {
    table: u64,
    bits: u64,
    known: u8,
}

/// A requirement precompiled against one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScopeMask {
    table: u64,
    bits: u64,
    /// One more than the highest bit used: the key must have been resolved when the
    /// table knew this many names.
    need: u8,
    any: bool,
}

impl ScopeBits {
    /// Numbers every name of `requirement` (those not numbered yet) and returns its mask,
    /// or `None` when a name finds no bit left.
    pub(crate) fn compile(&self, requirement: &ScopeRequirement) -> Option<ScopeMask> {
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        let (mut bits, mut need) = (0u64, 0u8);
        for scope in requirement.scopes() {
            let next = names.len();
            let bit = match names.get(scope) {
                Some(&bit) => bit,
                None if next < MAX_BITS => {
                    let bit = next as u8;
                    names.insert(scope.clone(), bit);
                    bit
                }
                None => return None,
            };
            bits |= 1 << bit;
            need = need.max(bit + 1);
        }
        Some(ScopeMask {
            table: self.id,
            bits,
            need,
            any: matches!(requirement, ScopeRequirement::AnyOf(_)),
        })
    }

    /// The bits of `held` (sorted names), with how many names the table knows now.
    pub(crate) fn held(&self, held: &[Scope]) -> HeldBits {
        let names = self.names.read().unwrap_or_else(|e| e.into_inner());
        let bits = held
            .iter()
            .filter_map(|s| names.get(s))
            .fold(0u64, |acc, &bit| acc | 1 << bit);
        HeldBits {
            table: self.id,
            bits,
            known: names.len() as u8,
        }
    }
}

impl ScopeMask {
    /// Whether `granted` meets the requirement, as [`ScopeRequirement::is_met_by`]
    /// answers; `None` when the bits cannot tell (then ask by name).
    #[inline]
    pub(crate) fn is_met_by(&self, granted: &GrantedScopes) -> Option<bool> {
        let held = &granted.bits;
        if held.table != self.table || held.known < self.need {
            return None;
        }
        Some(if self.any {
            // "Any of none" is never met, even for a key that holds every scope.
            self.bits != 0 && (granted.all || held.bits & self.bits != 0)
        } else {
            granted.all || held.bits & self.bits == self.bits
        })
    }
}
