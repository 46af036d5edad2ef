//! Instants as integer milliseconds since the Unix epoch (UTC).
//!
//! Integers keep every computation deterministic and cheap; conversion to and
//! from RFC 3339 text happens only at the edges.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One instant, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

pub const MILLIS_PER_SECOND: i64 = 1_000;
pub const MILLIS_PER_MINUTE: i64 = 60 * MILLIS_PER_SECOND;
pub const MILLIS_PER_HOUR: i64 = 60 * MILLIS_PER_MINUTE;
pub const MILLIS_PER_DAY: i64 = 24 * MILLIS_PER_HOUR;

/// Instants outside 0001-01-01 .. 9999-12-31 are refused: they are typing
/// mistakes, and RFC 3339 cannot write them.
const MILLIS_MIN: i64 = -62_135_596_800_000;
const MILLIS_MAX: i64 = 253_402_300_799_999;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("'{0}' is not an RFC 3339 date-time such as 2026-11-21T09:30:00Z")]
    NotRfc3339(String),
    #[error("{0} ms since the epoch is outside the years 1 to 9999")]
    OutOfRange(i64),
}

impl Timestamp {
    pub const fn from_millis_unchecked(millis: i64) -> Self {
        Timestamp(millis)
    }

    pub fn from_millis(millis: i64) -> Result<Self, TimestampError> {
        if (MILLIS_MIN..=MILLIS_MAX).contains(&millis) {
            Ok(Timestamp(millis))
        } else {
            Err(TimestampError::OutOfRange(millis))
        }
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// `self + millis`, saturating at the representable range.
    pub fn plus_millis(self, millis: i64) -> Self {
        Timestamp(self.0.saturating_add(millis).clamp(MILLIS_MIN, MILLIS_MAX))
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        // In range by construction; the fallback is only reached through
        // `from_millis_unchecked` misuse and maps to the epoch.
        DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }

    pub fn from_datetime(at: DateTime<Utc>) -> Result<Self, TimestampError> {
        Self::from_millis(at.timestamp_millis())
    }

    pub fn to_rfc3339(self) -> String {
        self.to_datetime().to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = DateTime::parse_from_rfc3339(text.trim())
            .map_err(|_| TimestampError::NotRfc3339(text.chars().take(64).collect()))?;
        Self::from_millis(parsed.timestamp_millis())
    }
}

/// Where "now" comes from. Nothing in the domain reads a clock: decisions
/// are handed `now`, and the layers above pass one clock everywhere (the
/// system's in production, a manual one in tests).
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// RFC 3339 text in human-readable formats (JSON); milliseconds in binary
/// ones (the read-model snapshot), where text would be slow and large.
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_rfc3339())
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            Timestamp::from_millis(i64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_with_millisecond_precision() {
        let at: Timestamp = "2026-03-29T01:30:00.250+08:00".parse().expect("valid");
        assert_eq!(at.to_rfc3339(), "2026-03-28T17:30:00.250Z");
        assert_eq!(at.to_rfc3339().parse::<Timestamp>(), Ok(at));
    }

    #[test]
    fn nonsense_and_out_of_range_instants_are_refused() {
        assert!(matches!(
            "yesterday".parse::<Timestamp>(),
            Err(TimestampError::NotRfc3339(_))
        ));
        assert_eq!(
            Timestamp::from_millis(i64::MAX),
            Err(TimestampError::OutOfRange(i64::MAX))
        );
    }
}
