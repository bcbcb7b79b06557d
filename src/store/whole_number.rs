//! Whole numbers from JSON as JSON Schema counts them: `3` and `3.0` alike.
//!
//! JSON Schema's `integer` is any number with a zero fractional part, so a client that
//! follows the OpenAPI document may send `3.0` where a count is asked for. serde's
//! integers refuse it; these accept it, and still refuse `3.5`, negatives and text.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Unexpected, Visitor};

/// Deserializes an unsigned integer, accepting floats without a fractional part.
pub(crate) fn whole<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    deserializer.deserialize_any(Whole(PhantomData))
}

/// Like [`whole`], for an optional field (`null` is `None`).
#[cfg_attr(not(feature = "admin"), allow(dead_code))]
pub(crate) fn whole_opt<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    deserializer.deserialize_option(Optional(PhantomData))
}

struct Whole<T>(PhantomData<T>);

impl<T: TryFrom<u64>> Whole<T> {
    fn fit<E: de::Error>(&self, n: u64) -> Result<T, E> {
        T::try_from(n).map_err(|_| E::invalid_value(Unexpected::Unsigned(n), self))
    }
}

impl<'de, T: TryFrom<u64>> Visitor<'de> for Whole<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number, not negative and not too large")
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        self.fit(n)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        let n = u64::try_from(n).map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))?;
        self.fit(n)
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<T, E> {
        // Exactly representable whole numbers only: below 2^64, with no fraction.
        if n.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&n) {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            return self.fit(n as u64);
        }
        Err(E::invalid_value(Unexpected::Float(n), &self))
    }
}

struct Optional<T>(PhantomData<T>);

impl<'de, T: TryFrom<u64>> Visitor<'de> for Optional<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Whole::<T>(PhantomData).expecting(f)?;
        f.write_str(" or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        whole(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Counts {
        #[serde(deserialize_with = "super::whole")]
        small: u32,
        #[serde(default, deserialize_with = "super::whole_opt")]
        big: Option<u64>,
    }

    fn parse(json: &str) -> Result<Counts, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_floats_are_whole_numbers() {
        let c = parse(r#"{"small": 3.0, "big": 1993.0}"#).unwrap();
        assert_eq!((c.small, c.big), (3, Some(1993)));
        let c = parse(r#"{"small": 4294967295, "big": null}"#).unwrap();
        assert_eq!((c.small, c.big), (u32::MAX, None));
        assert_eq!(parse(r#"{"small": 0}"#).unwrap().big, None);
    }

    #[test]
    fn fractions_negatives_text_and_overflow_are_refused_saying_what_is_expected() {
        for bad in [
            r#"{"small": 3.5}"#,
            r#"{"small": -1}"#,
            r#"{"small": -1.0}"#,
            r#"{"small": "3"}"#,
            r#"{"small": 4294967296}"#,
            r#"{"small": 1e300}"#,
            r#"{"small": 1, "big": 0.5}"#,
            r#"{"small": 1, "big": "x"}"#,
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("expected a whole number"), "{bad}: {err}");
        }
    }
}
