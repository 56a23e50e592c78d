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
    let first: Timestamp = r.cells.first()?.parse().ok()?;
    let last: Timestamp = r.cells.last()?.parse().ok()?;
    let end = last
        .checked_add(SignedDuration::from_mins(i64::from(slot_minutes)))
        .ok()?;
    Some(Occupied {
        resource: r.resource.clone(),
        start: r.start.parse().ok()?,
        blocked: Span::new(first, end),
    })
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
