//! Local time: whether an instant falls in a contact's active hours, and
//! the next instant that does. Works in the contact's IANA zone, so
//! daylight-saving changes move the window with the local clock.

use chrono::{Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use chrono_tz::Tz;

use crate::time::Timestamp;

/// A daily window of local minutes, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start_minute: u16,
    pub end_minute: u16,
}

/// A set of local hours of day, bit `h` for hour `h`.
pub type HourSet = u32;

/// How far ahead `next_open` looks; a window exists every day, so this is
/// only reached with preferred hours outside the window.
const SEARCH_DAYS: i64 = 8;

fn local(zone: Tz, at: Timestamp) -> NaiveDateTime {
    zone.from_utc_datetime(&at.to_datetime().naive_utc()).naive_local()
}

/// Minutes east of UTC at `at`.
pub fn utc_offset_minutes(zone: Tz, at: Timestamp) -> i32 {
    zone.offset_from_utc_datetime(&at.to_datetime().naive_utc())
        .fix()
        .local_minus_utc()
        / 60
}

/// The local calendar day `at` falls on.
pub fn local_date(zone: Tz, at: Timestamp) -> NaiveDate {
    local(zone, at).date()
}

pub fn local_minute_of_day(zone: Tz, at: Timestamp) -> u16 {
    let time = local(zone, at);
    (time.hour() * 60 + time.minute()) as u16
}

impl Window {
    pub fn contains(self, zone: Tz, at: Timestamp) -> bool {
        let minute = local_minute_of_day(zone, at);
        (self.start_minute..self.end_minute).contains(&minute)
    }

    fn contains_minute(self, minute: u32) -> bool {
        (u32::from(self.start_minute)..u32::from(self.end_minute)).contains(&minute)
    }

    /// The earliest instant at or after `from` inside the window, and inside
    /// `preferred` hours when any preferred hour overlaps the window.
    pub fn next_open(self, zone: Tz, from: Timestamp, preferred: HourSet) -> Timestamp {
        let preferred = preferred & self.hours();
        if preferred != 0
            && let Some(found) = self.search(zone, from, preferred)
        {
            return found;
        }
        self.search(zone, from, self.hours()).unwrap_or(from)
    }

    /// Hours of day that overlap the window.
    fn hours(self) -> HourSet {
        (0..24u32)
            .filter(|hour| {
                let first = hour * 60;
                first < u32::from(self.end_minute) && first + 60 > u32::from(self.start_minute)
            })
            .fold(0, |set, hour| set | (1 << hour))
    }

    /// Checks `from` itself, then each local hour boundary (and the window
    /// start) after it in order, day by day.
    fn search(self, zone: Tz, from: Timestamp, hours: HourSet) -> Option<Timestamp> {
        let acceptable = |at: Timestamp| {
            let time = local(zone, at);
            self.contains_minute(time.hour() * 60 + time.minute()) && hours & (1 << time.hour()) != 0
        };
        if acceptable(from) {
            return Some(from);
        }
        let first_day = local(zone, from).date();
        for day in 0..SEARCH_DAYS {
            let date = first_day + Duration::days(day);
            for hour in 0..24u32 {
                if hours & (1 << hour) == 0 {
                    continue;
                }
                let minute = (hour * 60).max(u32::from(self.start_minute));
                let Some(candidate) = instant_of(zone, date, minute) else {
                    continue;
                };
                if candidate > from && acceptable(candidate) {
                    return Some(candidate);
                }
            }
        }
        None
    }
}

/// The instant a local wall-clock minute denotes. A minute skipped by a
/// daylight-saving jump maps to the first instant after the jump; a
/// repeated one to its first occurrence.
pub fn instant_of(zone: Tz, date: NaiveDate, minute_of_day: u32) -> Option<Timestamp> {
    let wall = date.and_hms_opt(minute_of_day / 60, minute_of_day % 60, 0)?;
    for shift_minutes in [0, 30, 60, 90, 120] {
        let shifted = wall + Duration::minutes(shift_minutes);
        match zone.from_local_datetime(&shifted) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => {
                return Timestamp::from_millis(at.timestamp_millis()).ok();
            }
            LocalResult::None => {}
        }
    }
    // Real zones never skip more than two hours.
    None
}

/// Shifts a histogram of UTC hours to local hours with the offset at `at`.
pub fn local_hours_histogram(utc: &[u8; 24], zone: Tz, at: Timestamp) -> [u32; 24] {
    let offset = utc_offset_minutes(zone, at);
    let mut local = [0u32; 24];
    for (utc_hour, count) in utc.iter().enumerate() {
        let local_minute = (utc_hour as i32 * 60 + offset).rem_euclid(24 * 60);
        local[(local_minute / 60) as usize] += u32::from(*count);
    }
    local
}

/// The hours of day (0 to 23) in a set of hours kept as bits (bit h = hour h).
pub fn hours_in(set: u32) -> Vec<u8> {
    (0..24).filter(|hour| set & (1 << hour) != 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_WINDOW: Window = Window {
        start_minute: 8 * 60,
        end_minute: 21 * 60,
    };

    fn t(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    #[test]
    fn the_window_follows_the_local_clock_across_daylight_saving() {
        let berlin: Tz = "Europe/Berlin".parse().expect("zone");
        // 07:30 UTC is 08:30 local in winter (CET) but 09:30 in summer (CEST).
        assert!(DAY_WINDOW.contains(berlin, t("2026-01-15T07:30:00Z")));
        // 06:30 UTC: 07:30 CET (closed) in winter, 08:30 CEST (open) in summer.
        assert!(!DAY_WINDOW.contains(berlin, t("2026-01-15T06:30:00Z")));
        assert!(DAY_WINDOW.contains(berlin, t("2026-07-15T06:30:00Z")));
    }

    #[test]
    fn the_next_opening_after_a_daylight_saving_jump_is_local_eight_oclock() {
        let new_york: Tz = "America/New_York".parse().expect("zone");
        // Saturday 2026-03-07 23:00 EST; clocks jump forward on Sunday 8 March.
        let next = DAY_WINDOW.next_open(new_york, t("2026-03-08T04:00:00Z"), 0);
        // Sunday 08:00 EDT = 12:00 UTC (not 13:00 as it would be in EST).
        assert_eq!(next, t("2026-03-08T12:00:00Z"));
    }

    #[test]
    fn preferred_hours_are_chosen_when_they_overlap_the_window() {
        let shanghai: Tz = "Asia/Shanghai".parse().expect("zone");
        let evening = 1 << 20; // 20:00-21:00 local
        let next = DAY_WINDOW.next_open(shanghai, t("2026-05-01T14:00:00Z"), evening); // 22:00 local
        assert_eq!(next, t("2026-05-02T12:00:00Z")); // 20:00 local next day
        let outside = 1 << 23; // 23:00 local: outside the window, ignored
        let next = DAY_WINDOW.next_open(shanghai, t("2026-05-01T14:00:00Z"), outside);
        assert_eq!(next, t("2026-05-02T00:00:00Z")); // 08:00 local
    }
}
