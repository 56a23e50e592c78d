//! POST /tools/check_availability: open slots for a service, said the way people say times.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{answer, bad, ToolError};
use crate::booking::engine::{self, DayPart, Occupied, Query, Slot, Span};
use crate::booking::rules::{BookingRules, ServiceDef};
use crate::deps::Deps;
use crate::spoken::spoken_datetime;
use crate::store::bookings::BookingRecord;
use crate::tenant::TenantConfig;

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckAvailability {
    /// The service id or its name as said ("boiler service").
    pub service: String,
    /// A local date, YYYY-MM-DD; absent means the next openings.
    #[serde(default)]
    pub date: Option<String>,
    /// morning, afternoon, evening or any.
    #[serde(default)]
    pub time_of_day: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub caller_phone: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SpokenSlot {
    /// ISO-8601 with the business's offset: pass it back as create_booking's `start`.
    pub start: String,
    pub spoken: String,
    pub technician: String,
}

/// What a booking tool needs from the business, or the answer to give when it takes none.
pub struct Bookable<'a> {
    pub tenant: &'a TenantConfig,
    pub rules: &'a BookingRules,
    pub schedule: engine::Schedule,
}

pub fn bookable(tenant: &TenantConfig) -> Result<Bookable<'_>, serde_json::Value> {
    match &tenant.booking {
        Some(rules) => Ok(Bookable {
            tenant,
            rules,
            schedule: rules.schedule(&tenant.time_zone()),
        }),
        None => Err(json!({
            "ok": false,
            "code": "bookings_not_offered",
            "say": "I can't book that in directly, but I'll take your details and the team will call you to arrange it.",
        })),
    }
}

/// Finds a service by id or by name, forgiving case, spacing and a plural "s".
pub fn find_service<'a>(tenant: &'a TenantConfig, asked: &str) -> Option<&'a ServiceDef> {
    let norm = |s: &str| {
        s.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| w.trim_end_matches('s').to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let wanted = norm(asked);
    tenant
        .services
        .iter()
        .find(|s| norm(&s.id) == wanted || norm(&s.name) == wanted)
        .or_else(|| {
            tenant
                .services
                .iter()
                .find(|s| !wanted.is_empty() && norm(&s.name).contains(&wanted))
        })
}

pub fn unknown_service(tenant: &TenantConfig, asked: &str) -> serde_json::Value {
    let names: Vec<&str> = tenant.services.iter().map(|s| s.name.as_str()).collect();
    json!({
        "ok": false,
        "code": "unknown_service",
        "asked": asked,
        "services": names,
        "say": format!("We don't have that as a bookable job. We can book {}.", list_words(&names)),
    })
}

/// "a, b or c".
pub fn list_words(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Active bookings as the engine sees them: each blocks the cells it holds.
pub async fn occupied(
    deps: &Deps,
    b: &Bookable<'_>,
    now: Timestamp,
) -> Result<Vec<Occupied>, ToolError> {
    occupied_except(deps, b, now, None).await
}

/// The same, leaving out one booking (the one being moved does not block itself).
pub async fn occupied_except(
    deps: &Deps,
    b: &Bookable<'_>,
    now: Timestamp,
    except: Option<&str>,
) -> Result<Vec<Occupied>, ToolError> {
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

pub fn iso_local(z: &Zoned) -> String {
    z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

pub fn speak(b: &Bookable<'_>, slots: &[Slot]) -> Vec<SpokenSlot> {
    slots
        .iter()
        .map(|s| {
            let local = s.start.to_zoned(b.schedule.zone.clone());
            let who = s.resources.first().cloned().unwrap_or_default();
            let technician = b
                .rules
                .resources
                .iter()
                .find(|r| r.id == who)
                .map(|r| r.name.clone())
                .unwrap_or(who);
            SpokenSlot {
                start: iso_local(&local),
                spoken: spoken_datetime(&local),
                technician,
            }
        })
        .collect()
}

fn day_part(raw: Option<&str>) -> Result<DayPart, ToolError> {
    Ok(match raw.map(|s| s.trim().to_lowercase()).as_deref() {
        None | Some("") | Some("any") | Some("anytime") => DayPart::Any,
        Some("morning") => DayPart::Morning,
        Some("afternoon") => DayPart::Afternoon,
        Some("evening") => DayPart::Evening,
        Some(_) => {
            return Err(bad(
                "time_of_day",
                "Please say morning, afternoon or evening.",
            ))
        }
    })
}

/// The next few open slots for `service` (from `from`, in `part` of the day).
pub async fn next_slots(
    deps: &Deps,
    b: &Bookable<'_>,
    service: &ServiceDef,
    from: Option<Date>,
    to: Option<Date>,
    part: DayPart,
    limit: usize,
) -> Result<Vec<Slot>, ToolError> {
    let now = deps.now();
    let occupied = occupied(deps, b, now).await?;
    Ok(slots_among(
        b, service, &occupied, now, from, to, part, limit,
    ))
}

/// The same, with the bookings already read.
#[allow(clippy::too_many_arguments)]
fn slots_among(
    b: &Bookable<'_>,
    service: &ServiceDef,
    occupied: &[Occupied],
    now: Timestamp,
    from: Option<Date>,
    to: Option<Date>,
    part: DayPart,
    limit: usize,
) -> Vec<Slot> {
    let query = Query {
        now,
        from,
        to,
        part,
        limit,
    };
    engine::available_slots(
        &b.schedule,
        &service.as_engine(),
        &b.rules.resources_for(&service.id),
        occupied,
        &query,
    )
}

/// A check_availability request, understood.
pub struct Asked<'a> {
    pub service: &'a ServiceDef,
    pub date: Option<Date>,
    pub part: DayPart,
}

/// Validates a request against the business: `Ok(Err(answer))` is a business refusal
/// (an unknown service) to say as it is.
pub fn understand<'a>(
    tenant: &'a TenantConfig,
    req: &CheckAvailability,
) -> Result<Result<Asked<'a>, serde_json::Value>, ToolError> {
    let Some(service) = find_service(tenant, &req.service) else {
        return Ok(Err(unknown_service(tenant, &req.service)));
    };
    let part = day_part(req.time_of_day.as_deref())?;
    let date = match req.date.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => Some(
            d.parse::<Date>()
                .map_err(|_| bad("date", "Please give the date as year, month and day."))?,
        ),
    };
    Ok(Ok(Asked {
        service,
        date,
        part,
    }))
}

/// The answer, from the bookings already read: up to three slots on the day asked, else the
/// next openings from that day on. Returns the outcome for the log line and the answer.
pub fn offer(
    b: &Bookable<'_>,
    asked: &Asked<'_>,
    occupied: &[Occupied],
    now: Timestamp,
) -> (&'static str, serde_json::Value) {
    let service = asked.service;
    let mut slots = slots_among(
        b, service, occupied, now, asked.date, asked.date, asked.part, 3,
    );
    let mut on_requested_day = true;
    if slots.is_empty() && (asked.date.is_some() || asked.part != DayPart::Any) {
        // Nothing then: offer the next openings from that day on, any time of day.
        on_requested_day = false;
        slots = slots_among(b, service, occupied, now, asked.date, None, DayPart::Any, 3);
    }
    let spoken = speak(b, &slots);
    let times: Vec<&str> = spoken.iter().map(|s| s.spoken.as_str()).collect();
    let say = match (spoken.is_empty(), on_requested_day) {
        (true, _) => format!(
            "I'm sorry, there's nothing free for a {} in the next {} days.",
            service.name, b.rules.max_days_ahead
        ),
        (false, true) => format!("For a {}, I can do {}.", service.name, list_words(&times)),
        (false, false) => format!(
            "That's fully booked. The next openings for a {} are {}.",
            service.name,
            list_words(&times)
        ),
    };
    let outcome = if spoken.is_empty() {
        "none_free"
    } else if on_requested_day {
        "offered"
    } else {
        "offered_later"
    };
    (
        outcome,
        answer(&json!({
            "ok": true,
            "available": !spoken.is_empty() && on_requested_day,
            "service": service.id,
            "slots": spoken,
            "say": say,
        })),
    )
}

pub async fn check_availability(
    State(deps): State<Arc<Deps>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    super::run(deps, "check_availability", headers, body, handle).await
}

async fn handle(deps: Arc<Deps>, req: CheckAvailability) -> Result<super::Reply, ToolError> {
    let conversation = req.conversation_id.clone();
    let tenant = deps.tenant().await?;
    let b = match bookable(&tenant) {
        Ok(b) => b,
        Err(answer) => return Ok(("bookings_not_offered".into(), answer, conversation)),
    };
    let asked = match understand(&tenant, &req)? {
        Ok(asked) => asked,
        Err(answer) => return Ok(("unknown_service".into(), answer, conversation)),
    };
    let now = deps.now();
    let occupied = occupied(&deps, &b, now).await?;
    let (outcome, answer) = offer(&b, &asked, &occupied, now);
    Ok((outcome.into(), answer, conversation))
}
