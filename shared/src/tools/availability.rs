//! POST /tools/check_availability: open slots for a service, said the way people say times.

use jiff::civil::Date;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use super::{answer, bad, Answer, ToolError};
use crate::booking::calendar::{self, bookable, slots_among, speak, Bookable, Search};
use crate::booking::engine::{DayPart, Occupied};
use crate::booking::rules::ServiceDef;
use crate::deps::Deps;
use crate::spoken::list_words;
use crate::tenant::TenantConfig;

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

pub async fn check_availability(deps: &Deps, req: CheckAvailability) -> Result<Answer, ToolError> {
    let tenant = deps.tenant().await?;
    let Some(b) = bookable(&tenant) else {
        return Ok(bookings_not_offered());
    };
    let asked = match understand(&tenant, &req)? {
        Ok(asked) => asked,
        Err(refusal) => return Ok(refusal),
    };
    let now = deps.now();
    let occupied = calendar::occupied(deps, &b, now).await?;
    Ok(offer(&b, &asked, &occupied, now))
}

/// The answer of every booking tool when the business takes no bookings.
pub fn bookings_not_offered() -> Answer {
    Answer::refusal(
        "bookings_not_offered",
        "I can't book that in directly, but I'll take your details and the team will call you to arrange it.",
    )
}

/// The service asked for, or the answer that names the ones there are.
pub fn service_or_refusal<'a>(
    tenant: &'a TenantConfig,
    asked: &str,
) -> Result<Result<&'a ServiceDef, Answer>, ToolError> {
    super::line("service", Some(asked), 100, "Which service is it for?")?;
    Ok(tenant.find_service(asked).ok_or_else(|| {
        let names: Vec<&str> = tenant.services.iter().map(|s| s.name.as_str()).collect();
        Answer::new(
            "unknown_service",
            json!({
                "ok": false,
                "code": "unknown_service",
                "asked": asked,
                "services": names,
                "say": format!("We don't have that as a bookable job. We can book {}.", list_words(&names)),
            }),
        )
    }))
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
) -> Result<Result<Asked<'a>, Answer>, ToolError> {
    let service = match service_or_refusal(tenant, &req.service)? {
        Ok(service) => service,
        Err(refusal) => return Ok(Err(refusal)),
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
/// next openings from that day on.
pub fn offer(b: &Bookable<'_>, asked: &Asked<'_>, occupied: &[Occupied], now: Timestamp) -> Answer {
    let service = asked.service;
    let on_the_day = Search {
        from: asked.date,
        to: asked.date,
        part: asked.part,
        limit: 3,
    };
    let mut slots = slots_among(b, service, occupied, now, on_the_day);
    let mut on_requested_day = true;
    if slots.is_empty() && (asked.date.is_some() || asked.part != DayPart::Any) {
        // Nothing then: offer the next openings from that day on, any time of day.
        on_requested_day = false;
        let later = Search {
            to: None,
            part: DayPart::Any,
            ..on_the_day
        };
        slots = slots_among(b, service, occupied, now, later);
    }
    let spoken = speak(b, &slots);
    let times: Vec<&str> = spoken.iter().map(|s| s.spoken.as_str()).collect();
    let (outcome, say) = match (spoken.is_empty(), on_requested_day) {
        (true, _) => (
            "none_free",
            format!(
                "I'm sorry, there's nothing free for a {} in the next {} days.",
                service.name, b.rules.max_days_ahead
            ),
        ),
        (false, true) => (
            "offered",
            format!("For a {}, I can do {}.", service.name, list_words(&times)),
        ),
        (false, false) => (
            "offered_later",
            format!(
                "That's fully booked. The next openings for a {} are {}.",
                service.name,
                list_words(&times)
            ),
        ),
    };
    Answer::new(
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
