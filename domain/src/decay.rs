//! Exponential decay in integer arithmetic, so every score is identical to
//! the bit on every machine. Weights are Q16 fixed point: `ONE` is 1.0.

use crate::time::{MILLIS_PER_DAY, Timestamp};

/// 1.0 in Q16.
pub const ONE: u64 = 1 << 16;

/// 2^(-1/256) in Q32, rounded: the step between adjacent table entries.
const STEP_Q32: u64 = 4_283_353_945;

/// `TABLE[i]` = 2^(-i/256) in Q32, built by repeated multiplication with
/// rounding: integer arithmetic only, so it is the same everywhere.
const TABLE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut value: u64 = 1 << 32;
    let mut i = 0;
    while i < 256 {
        table[i] = value;
        value = (value * STEP_Q32 + (1 << 31)) >> 32;
        i += 1;
    }
    table
};

/// 2^(-elapsed / half_life) in Q16. Elapsed time at or below zero (an event
/// in the evaluation's future) weighs fully; past 48 half-lives, nothing.
/// Never increases as `elapsed_millis` grows.
pub fn weight_q16(elapsed_millis: i64, half_life_millis: i64) -> u64 {
    if elapsed_millis <= 0 {
        return ONE;
    }
    let half_life = i128::from(half_life_millis.max(1));
    // Elapsed time in 1/256ths of a half-life.
    let steps = (i128::from(elapsed_millis) * 256) / half_life;
    let whole = steps >> 8;
    if whole >= 48 {
        return 0;
    }
    let fraction = (steps & 0xff) as usize;
    (TABLE[fraction] >> 16) >> whole
}

pub fn half_life_millis(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// Weeks since the epoch, the unit of `DecayingCount`'s buckets.
const WEEK_MILLIS: i64 = 7 * MILLIS_PER_DAY;

fn week_of(at: Timestamp) -> i32 {
    // Years 1..=9999 span about ±420,000 weeks: always in range.
    at.as_millis().div_euclid(WEEK_MILLIS) as i32
}

fn week_middle(week: i32) -> i64 {
    i64::from(week) * WEEK_MILLIS + WEEK_MILLIS / 2
}

/// A count of events that decays with any half-life chosen at evaluation
/// time: counts per week for the `WEEKS` newest weeks, and every older
/// event folded into one aggregate dated by the newest week it holds.
///
/// Dating the aggregate by its newest week over-weights old events a
/// little (generous to the contact), and guarantees that adding an event
/// never lowers the value and that the value never grows as `at` advances.
/// Buckets saturate at 255 events a week.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DecayingCount<const WEEKS: usize> {
    newest_week: i32,
    older_week: i32,
    older_count: u16,
    #[serde(with = "weekly_buckets")]
    buckets: [u8; WEEKS],
}

/// Serde implements arrays only up to 32 elements and for no length
/// parameter, so the buckets travel as a tuple of the exact length (no
/// allocation on load, which a snapshot does a million times over).
mod weekly_buckets {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::ser::SerializeTuple;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer, const WEEKS: usize>(
        buckets: &[u8; WEEKS],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(WEEKS)?;
        for bucket in buckets {
            tuple.serialize_element(bucket)?;
        }
        tuple.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const WEEKS: usize>(
        deserializer: D,
    ) -> Result<[u8; WEEKS], D::Error> {
        struct Buckets<const WEEKS: usize>;
        impl<'de, const WEEKS: usize> Visitor<'de> for Buckets<WEEKS> {
            type Value = [u8; WEEKS];
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(formatter, "{WEEKS} weekly counts")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut counts: A) -> Result<[u8; WEEKS], A::Error> {
                let mut buckets = [0; WEEKS];
                for (week, bucket) in buckets.iter_mut().enumerate() {
                    *bucket = counts
                        .next_element()?
                        .ok_or_else(|| A::Error::invalid_length(week, &self))?;
                }
                Ok(buckets)
            }
        }
        deserializer.deserialize_tuple(WEEKS, Buckets::<WEEKS>)
    }
}

impl<const WEEKS: usize> Default for DecayingCount<WEEKS> {
    fn default() -> Self {
        DecayingCount {
            newest_week: i32::MIN,
            older_week: i32::MIN,
            older_count: 0,
            buckets: [0; WEEKS],
        }
    }
}

impl<const WEEKS: usize> DecayingCount<WEEKS> {
    fn slot(week: i32) -> usize {
        week.rem_euclid(WEEKS as i32) as usize
    }

    fn move_to_older(&mut self, week: i32, count: u16) {
        if count > 0 {
            self.older_count = self.older_count.saturating_add(count);
            self.older_week = self.older_week.max(week);
        }
    }

    pub fn add(&mut self, at: Timestamp) {
        let week = week_of(at);
        if self.newest_week == i32::MIN {
            self.newest_week = week;
        }
        if week > self.newest_week {
            // Weeks leaving the window move into the aggregate, oldest first.
            let window_start = self.newest_week - (WEEKS as i32 - 1);
            let leaving_end = (week - WEEKS as i32).min(self.newest_week);
            for leaving in window_start..=leaving_end {
                let slot = Self::slot(leaving);
                let count = u16::from(std::mem::take(&mut self.buckets[slot]));
                self.move_to_older(leaving, count);
            }
            self.newest_week = week;
        }
        if week > self.newest_week - WEEKS as i32 {
            let slot = Self::slot(week);
            self.buckets[slot] = self.buckets[slot].saturating_add(1);
        } else {
            self.move_to_older(week, 1);
        }
    }

    /// The decayed count at `at`, in Q16.
    pub fn value_q16(&self, at: Timestamp, half_life_millis: i64) -> u64 {
        if self.newest_week == i32::MIN {
            return 0;
        }
        let at = at.as_millis();
        let mut total = u64::from(self.older_count) * weight_q16(at - week_middle(self.older_week), half_life_millis);
        for offset in 0..WEEKS as i32 {
            let week = self.newest_week - offset;
            let count = self.buckets[Self::slot(week)];
            if count > 0 {
                total += u64::from(count) * weight_q16(at - week_middle(week), half_life_millis);
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = MILLIS_PER_DAY;

    #[test]
    fn one_half_life_halves_the_weight() {
        assert_eq!(weight_q16(0, DAY), ONE);
        assert_eq!(weight_q16(DAY, DAY), ONE / 2);
        assert_eq!(weight_q16(3 * DAY, DAY), ONE / 8);
        let quarter = weight_q16(DAY / 4, DAY);
        // 2^-0.25 = 0.8409
        assert!((55_100..55_120).contains(&quarter), "{quarter}");
    }

    #[test]
    fn weight_never_increases_with_elapsed_time() {
        let mut previous = ONE;
        for elapsed in (0..40 * DAY).step_by((DAY / 97) as usize) {
            let weight = weight_q16(elapsed, 3 * DAY);
            assert!(weight <= previous, "weight rose at {elapsed}");
            previous = weight;
        }
        assert_eq!(weight_q16(200 * DAY, DAY), 0);
    }

    #[test]
    fn a_decaying_count_moves_old_weeks_into_its_aggregate() {
        let mut count = DecayingCount::<4>::default();
        let start = Timestamp::from_millis_unchecked(100 * 7 * DAY);
        count.add(start);
        count.add(start.plus_millis(70 * DAY));
        let now = start.plus_millis(70 * DAY);
        // Both events count; the old one decays from its own week.
        let value = count.value_q16(now, 365 * DAY);
        assert!(value > ONE && value < 2 * ONE, "{value}");
        assert_eq!(count.older_count, 1);
        let late = start.plus_millis(-30 * DAY);
        count.add(late);
        assert_eq!(count.older_count, 2);
    }
}
