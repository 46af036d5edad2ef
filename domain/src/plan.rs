//! A send plan: when each allowed contact of a campaign gets the message.
//! Each delivery falls inside the contact's own active hours, at their best
//! reply hour when one is still ahead today, and the deliveries go out in
//! waves — at most the channel's sends a minute in each, with the policy's
//! pause between two — so that no platform sees a blast.

use std::collections::HashMap;

use chrono::Datelike;
use chrono_tz::Tz;

use crate::hours::{HourSet, Window};
use crate::ids::ContactId;
use crate::time::{MILLIS_PER_MINUTE, Timestamp};

/// Openings of their window a delivery may be pushed across by full waves.
const REOPENINGS_MAX: usize = 366;

/// Someone the plan is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub contact_id: ContactId,
    pub zone: Tz,
    pub best_hours: HourSet,
}

/// When one recipient gets the message, and in which wave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    pub contact_id: ContactId,
    pub at: Timestamp,
    /// Waves are numbered from 0, the one that starts at once.
    pub wave: u32,
}

/// The pacing of one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    pub sends_per_minute: u32,
    pub pause_secs: u64,
}

impl Pace {
    /// A wave lasts a minute; the next starts after the pause.
    fn wave_millis(self) -> i64 {
        MILLIS_PER_MINUTE + i64::try_from(self.pause_secs.saturating_mul(1_000)).unwrap_or(i64::MAX / 4)
    }
}

/// Waves that are full, with a jump to the next that may have room
/// (path-halving keeps a long run of full waves cheap to skip).
#[derive(Default)]
struct Waves {
    taken: HashMap<u64, u32>,
    next: HashMap<u64, u64>,
}

impl Waves {
    fn first_with_room(&mut self, mut wave: u64) -> u64 {
        while let Some(&further) = self.next.get(&wave) {
            if let Some(&beyond) = self.next.get(&further) {
                self.next.insert(wave, beyond);
            }
            wave = further;
        }
        wave
    }

    fn take(&mut self, wave: u64, capacity: u32) {
        let taken = self.taken.entry(wave).or_insert(0);
        *taken += 1;
        if *taken >= capacity {
            self.next.insert(wave, wave + 1);
        }
    }
}

/// Plans every recipient from `now`, in their window, by `pace`. The
/// recipients were allowed at `now`, so `now` is inside each one's window.
pub fn plan(recipients: &[Recipient], window: Window, now: Timestamp, pace: Pace) -> Vec<Planned> {
    let capacity = pace.sends_per_minute.max(1);
    let wave_millis = pace.wave_millis();
    let wave_start = |wave: u64| now.plus_millis(i64::try_from(wave).unwrap_or(i64::MAX / 4) * wave_millis);
    let wave_of = |at: Timestamp| {
        let after = (at.as_millis() - now.as_millis()).max(0);
        // The first wave starting at or after `at`.
        u64::try_from((after + wave_millis - 1) / wave_millis).unwrap_or(0)
    };
    let mut wanted: Vec<(Timestamp, Recipient)> = recipients
        .iter()
        .map(|recipient| (preferred_moment(recipient, window, now), *recipient))
        .collect();
    wanted.sort_unstable_by_key(|(at, recipient)| (*at, recipient.contact_id));
    let mut waves = Waves::default();
    let mut planned: Vec<Planned> = wanted
        .into_iter()
        .map(|(preferred, recipient)| {
            let mut wave = waves.first_with_room(wave_of(preferred));
            // Full waves may push a delivery past their window: then the
            // next opening, and the first wave with room from there, day
            // after day (a year of openings at most).
            for _ in 0..REOPENINGS_MAX {
                let at = wave_start(wave).max(preferred);
                if window.contains(recipient.zone, at) {
                    break;
                }
                let reopens = window.next_open(recipient.zone, at, 0);
                wave = waves.first_with_room(wave_of(reopens));
            }
            waves.take(wave, capacity);
            Planned {
                contact_id: recipient.contact_id,
                at: wave_start(wave).max(preferred),
                wave: u32::try_from(wave).unwrap_or(u32::MAX),
            }
        })
        .collect();
    planned.sort_unstable_by_key(|planned| planned.contact_id);
    planned
}

/// Their best reply hour if one is still ahead today (their day), else now.
fn preferred_moment(recipient: &Recipient, window: Window, now: Timestamp) -> Timestamp {
    if recipient.best_hours == 0 {
        return now;
    }
    let best = window.next_open(recipient.zone, now, recipient.best_hours);
    let day = |at: Timestamp| at.to_datetime().with_timezone(&recipient.zone).num_days_from_ce();
    if day(best) == day(now) { best } else { now }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    const WINDOW: Window = Window {
        start_minute: 8 * 60,
        end_minute: 21 * 60,
    };

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    fn recipients(count: u128, best_hours: HourSet) -> Vec<Recipient> {
        (1..=count)
            .map(|n| Recipient {
                contact_id: ContactId(Uuid::from_u128(n)),
                zone: chrono_tz::Asia::Shanghai,
                best_hours,
            })
            .collect()
    }

    #[test]
    fn no_wave_holds_more_than_the_channels_sends_a_minute_and_waves_are_apart_by_the_pause() {
        let now = at("2026-11-11T10:00:00+08:00");
        let pace = Pace {
            sends_per_minute: 3,
            pause_secs: 30,
        };
        let planned = plan(&recipients(7, 0), WINDOW, now, pace);
        let mut per_wave: HashMap<u32, usize> = HashMap::new();
        for delivery in &planned {
            *per_wave.entry(delivery.wave).or_default() += 1;
            assert_eq!(delivery.at, now.plus_millis(i64::from(delivery.wave) * 90_000));
        }
        assert_eq!(per_wave, HashMap::from([(0, 3), (1, 3), (2, 1)]));
    }

    #[test]
    fn a_contact_who_replies_in_the_evening_gets_it_then_and_one_whose_hour_has_passed_gets_it_now() {
        let now = at("2026-11-11T10:00:00+08:00");
        let pace = Pace {
            sends_per_minute: 100,
            pause_secs: 30,
        };
        let evening = plan(&recipients(1, 1 << 20), WINDOW, now, pace);
        assert_eq!(evening[0].at, at("2026-11-11T20:00:00+08:00"));
        let morning = plan(&recipients(1, 1 << 8), WINDOW, now, pace);
        assert_eq!(morning[0].at, now, "not tomorrow morning: the gate allowed today");
    }

    #[test]
    fn waves_that_run_past_the_window_carry_on_the_next_morning() {
        let now = at("2026-11-11T20:58:00+08:00");
        let pace = Pace {
            sends_per_minute: 1,
            pause_secs: 0,
        };
        let planned = plan(&recipients(3, 0), WINDOW, now, pace);
        let times: Vec<Timestamp> = planned.iter().map(|delivery| delivery.at).collect();
        assert_eq!(
            times,
            [now, at("2026-11-11T20:59:00+08:00"), at("2026-11-12T08:00:00+08:00")]
        );
    }
}
