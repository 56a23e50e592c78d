//! The business's calendar as the booking tools use it: whether it takes bookings, what its
//! stored bookings occupy, the next free slots, and how a slot is said.

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::Serialize;

use super::engine::{self, DayPart, Occupied, Query, Schedule, Slot, Span};
use super::rules::{BookingRules, ServiceDef};
use crate::deps::Deps;
use crate::error::DependencyError;
use crate::spoken::spoken_datetime;
use crate::store::bookings::BookingRecord;
use crate::tenant::TenantConfig;

/// What a booking tool needs from the business.
pub struct Bookable<'a> {
    pub tenant: &'a TenantConfig,
    pub rules: &'a BookingRules,
    pub schedule: Schedule,
}

/// The business's booking rules and schedule; `None` when it takes no bookings.
pub fn bookable(tenant: &TenantConfig) -> Option<Bookable<'_>> {
    tenant.booking.as_ref().map(|rules| Bookable {
        tenant,
        rules,
        schedule: rules.schedule(&tenant.time_zone()),
    })
}

/// A slot as the agent offers it.
#[derive(Debug, Serialize)]
pub struct SpokenSlot {
    /// ISO-8601 with the business's offset: pass it back as create_booking's `start`.
    pub start: String,
    pub spoken: String,
    pub technician: String,
}

/// Active bookings as the engine sees them: each blocks the cells it holds.
pub async fn occupied(
    deps: &Deps,
    b: &Bookable<'_>,
    now: Timestamp,
) -> Result<Vec<Occupied>, DependencyError> {
    occupied_except(deps, b, now, None).await
}

/// The same, leaving out one booking (the one being moved does not block itself).
pub async fn occupied_except(
    deps: &Deps,
    b: &Bookable<'_>,
    now: Timestamp,
    except: Option<&str>,
) -> Result<Vec<Occupied>, DependencyError> {
    let from = now
        .checked_sub(SignedDuration::from_hours(48))
        .unwrap_or(now);
    let to = now
        .checked_add(SignedDuration::from_hours(
            24 * (i64::from(b.rules.max_days_ahead) + 2),
        ))
        .unwrap_or(now);
    let records = deps.store.bookings_between(from, to).await?;
    Ok(records
        .iter()
        .filter(|r| Some(r.booking_id.as_str()) != except)
        .filter_map(|r| as_occupied(r, b.rules.slot_minutes))
        .collect())
}

pub fn as_occupied(r: &BookingRecord, slot_minutes: i32) -> Option<Occupied> {
    let first = stored_time(r.cells.first()?)?;
    let last = stored_time(r.cells.last()?)?;
    let end = last
        .checked_add(SignedDuration::from_mins(i64::from(slot_minutes)))
        .ok()?;
    Some(Occupied {
        resource: r.resource.clone(),
        start: stored_time(&r.start)?,
        blocked: Span::new(first, end),
    })
}

/// A booking's time as the store writes it: `2026-11-23T07:00:00Z`, jiff's form of a whole
/// second in UTC, read directly (an availability check over 1,000 bookings reads 3,000 of them,
/// and jiff's RFC 3339 parser was half of its time); any other form goes to jiff.
fn stored_time(text: &str) -> Option<Timestamp> {
    whole_utc_second(text).or_else(|| text.parse().ok())
}

fn whole_utc_second(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let number = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    // A real date (no 30 February) and time; a leap second (":60") is left to jiff.
    jiff::civil::Date::new(year as i16, month as i8, day as i8).ok()?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Timestamp::from_second(days * 86_400 + hour * 3_600 + minute * 60 + second).ok()
}

/// A local time as ISO-8601 with its offset, the form the agent passes back.
pub fn iso_local(z: &Zoned) -> String {
    z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// Slots as the agent says them: local time, spoken phrase, the technician's name.
pub fn speak(b: &Bookable<'_>, slots: &[Slot]) -> Vec<SpokenSlot> {
    slots
        .iter()
        .map(|s| {
            let local = s.start.to_zoned(b.schedule.zone.clone());
            let who = s.resources.first().cloned().unwrap_or_default();
            SpokenSlot {
                start: iso_local(&local),
                spoken: spoken_datetime(&local),
                technician: technician_name(b, &who),
            }
        })
        .collect()
}

/// A resource's name as customers know it (its id if it has none any more).
pub fn technician_name(b: &Bookable<'_>, resource: &str) -> String {
    b.rules
        .resources
        .iter()
        .find(|r| r.id == resource)
        .map(|r| r.name.clone())
        .unwrap_or_else(|| resource.to_string())
}

/// Which days, which part of the day, and how many slots to look for.
#[derive(Debug, Clone, Copy)]
pub struct Search {
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub part: DayPart,
    pub limit: usize,
}

/// The next open slots for `service`, reading the stored bookings.
pub async fn next_slots(
    deps: &Deps,
    b: &Bookable<'_>,
    service: &ServiceDef,
    search: Search,
) -> Result<Vec<Slot>, DependencyError> {
    let now = deps.now();
    let occupied = occupied(deps, b, now).await?;
    Ok(slots_among(b, service, &occupied, now, search))
}

/// The same, with the bookings already read.
pub fn slots_among(
    b: &Bookable<'_>,
    service: &ServiceDef,
    occupied: &[Occupied],
    now: Timestamp,
    search: Search,
) -> Vec<Slot> {
    let query = Query {
        now,
        from: search.from,
        to: search.to,
        part: search.part,
        limit: search.limit,
    };
    engine::available_slots(
        &b.schedule,
        &service.as_engine(),
        &b.rules.resources_for(&service.id),
        occupied,
        &query,
    )
}

/// The lock cells a service started at `start` blocks (buffers included), as stored.
pub fn cells_for(b: &Bookable<'_>, service: &ServiceDef, start: Timestamp) -> Vec<String> {
    engine::cell_starts(
        &service.as_engine().blocked_span(start),
        b.rules.slot_minutes,
    )
    .iter()
    .map(Timestamp::to_string)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every whole second from year 1 to 9999, as jiff writes it, reads back the same.
        #[test]
        fn stored_times_read_as_jiff_reads_them(second in -62_135_596_800i64..253_402_300_799) {
            let t = Timestamp::from_second(second).unwrap();
            let text = t.to_string();
            prop_assert_eq!(whole_utc_second(&text), Some(t));
            prop_assert_eq!(stored_time(&text), Some(t));
        }

        /// Whatever the text, the direct reading never disagrees with jiff's.
        #[test]
        fn the_direct_reading_agrees_with_jiff_or_stands_aside(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z") {
            if let Some(t) = whole_utc_second(&text) {
                prop_assert_eq!(Some(t), text.parse::<Timestamp>().ok());
            }
        }
    }

    #[test]
    fn other_forms_go_to_jiff() {
        let t: Timestamp = "2026-11-23T07:00:00Z".parse().unwrap();
        assert_eq!(whole_utc_second("2026-11-23T07:00:00+00:00"), None);
        assert_eq!(stored_time("2026-11-23T07:00:00+00:00"), Some(t));
        assert_eq!(stored_time("2026-11-23T07:00:00.000Z"), Some(t));
        assert_eq!(whole_utc_second("2026-02-30T07:00:00Z"), None);
        assert_eq!(stored_time("2026-02-30T07:00:00Z"), None);
        assert_eq!(stored_time("not a time"), None);
    }
}
