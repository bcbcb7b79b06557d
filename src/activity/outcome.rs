//! [`Outcome`]: what became of a request, by the stable code of its refusal.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::AuthError;

/// Room for outcomes in a key's counters: the outcomes below, and later ones.
pub(crate) const OUTCOME_SLOTS: usize = 16;

/// What became of a request: `accepted`, or the stable `code` of its refusal.
///
/// Outcomes up to [`Outcome::RateLimited`] happen after the key was recognised and are
/// counted for the key and its account; the others come before any key is known and
/// are counted for the deployment only. New refusals (usage limits, say) add variants.
///
/// ```
/// use keygate::activity::Outcome;
///
/// assert_eq!(Outcome::RateLimited.code(), "rate_limited");
/// assert_eq!(Outcome::from_code("accepted"), Some(Outcome::Accepted));
/// assert!(Outcome::IpNotAllowed.is_per_key());
/// assert!(!Outcome::InvalidApiKey.is_per_key());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Every check passed.
    Accepted,
    /// `revoked_api_key`.
    RevokedApiKey,
    /// `disabled_api_key`.
    DisabledApiKey,
    /// `expired_api_key` (also a rolled key's previous secret after its grace period).
    ExpiredApiKey,
    /// `wrong_environment`.
    WrongEnvironment,
    /// `ip_not_allowed`.
    IpNotAllowed,
    /// `insufficient_scope` (also a read-only key on a method that writes).
    InsufficientScope,
    /// `rate_limited`.
    RateLimited,
    /// `unauthorized`: no credentials (per deployment).
    Unauthorized,
    /// `invalid_request`: malformed credentials (per deployment).
    InvalidRequest,
    /// `invalid_api_key`: a bad checksum or an unknown key (per deployment).
    InvalidApiKey,
    /// `store_unavailable`: the key could not be looked up (per deployment).
    StoreUnavailable,
    /// `invalid_token`: a credential verifier refused a bearer (per deployment).
    InvalidToken,
    /// `verifier_unavailable` (per deployment).
    VerifierUnavailable,
}

impl Outcome {
    /// Every outcome, in the order of their slots.
    pub const ALL: [Outcome; 14] = [
        Outcome::Accepted,
        Outcome::RevokedApiKey,
        Outcome::DisabledApiKey,
        Outcome::ExpiredApiKey,
        Outcome::WrongEnvironment,
        Outcome::IpNotAllowed,
        Outcome::InsufficientScope,
        Outcome::RateLimited,
        Outcome::Unauthorized,
        Outcome::InvalidRequest,
        Outcome::InvalidApiKey,
        Outcome::StoreUnavailable,
        Outcome::InvalidToken,
        Outcome::VerifierUnavailable,
    ];

    /// The stable code: `accepted`, or the refusal's `code`.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::RevokedApiKey => "revoked_api_key",
            Outcome::DisabledApiKey => "disabled_api_key",
            Outcome::ExpiredApiKey => "expired_api_key",
            Outcome::WrongEnvironment => "wrong_environment",
            Outcome::IpNotAllowed => "ip_not_allowed",
            Outcome::InsufficientScope => "insufficient_scope",
            Outcome::RateLimited => "rate_limited",
            Outcome::Unauthorized => "unauthorized",
            Outcome::InvalidRequest => "invalid_request",
            Outcome::InvalidApiKey => "invalid_api_key",
            Outcome::StoreUnavailable => "store_unavailable",
            Outcome::InvalidToken => "invalid_token",
            Outcome::VerifierUnavailable => "verifier_unavailable",
        }
    }

    /// The outcome with this code.
    pub fn from_code(code: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.code() == code)
    }

    /// Whether it happens after the key was recognised, and so is counted for the key
    /// and its account (otherwise for the deployment only).
    pub fn is_per_key(self) -> bool {
        (self as usize) <= Outcome::RateLimited as usize
    }

    /// The outcome of a refusal.
    pub(crate) fn of(error: &AuthError) -> Outcome {
        match error {
            AuthError::MissingCredentials => Outcome::Unauthorized,
            AuthError::InvalidRequest(_) => Outcome::InvalidRequest,
            AuthError::InvalidKey => Outcome::InvalidApiKey,
            AuthError::RevokedKey => Outcome::RevokedApiKey,
            AuthError::DisabledKey => Outcome::DisabledApiKey,
            AuthError::ExpiredKey | AuthError::RolledKey => Outcome::ExpiredApiKey,
            AuthError::WrongEnvironment { .. } => Outcome::WrongEnvironment,
            AuthError::IpNotAllowed => Outcome::IpNotAllowed,
            AuthError::InsufficientScope(_) | AuthError::ReadOnlyKey => Outcome::InsufficientScope,
            AuthError::RateLimited { .. } => Outcome::RateLimited,
            AuthError::StoreUnavailable => Outcome::StoreUnavailable,
            AuthError::InvalidToken(_) => Outcome::InvalidToken,
            AuthError::VerifierUnavailable => Outcome::VerifierUnavailable,
        }
    }

    /// Its slot in a counter.
    #[inline]
    pub(crate) const fn slot(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Outcome::from_code(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown outcome '{code}'")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_a_slot_and_its_refusal_code() {
        assert!(Outcome::ALL.len() <= OUTCOME_SLOTS);
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(o.slot(), i);
            assert_eq!(Outcome::from_code(o.code()), Some(*o));
        }
        for error in crate::documented_codes::every_refusal() {
            assert_eq!(Outcome::of(&error).code(), error.code());
        }
    }
}
