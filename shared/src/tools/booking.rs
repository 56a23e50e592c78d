//! POST /tools/create_booking: books a slot on a free resource. The database decides (cell
//! locks in one transaction); a retried call with the same key, or the same conversation and
//! arguments, returns the first result.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use super::availability::{
    bookable, find_service, iso_local, list_words, next_slots, occupied, speak, unknown_service,
    Bookable,
};
use super::{answer, bad, ToolError};
use crate::booking::engine::{self, DayPart, Refusal};
use crate::booking::rules::ServiceDef;
use crate::deps::Deps;
use crate::ids::{derived_id, ConversationId};
use crate::jobs::Job;
use crate::outbox::{self, Audience, NewMessage};
use crate::phone::PhoneNumber;
use crate::spoken::spoken_datetime;
use crate::store::bookings::{Booked, BookingRecord};
use crate::tenant::render;

/// Idempotency records are kept this long.
const KEY_TTL: Duration = Duration::from_secs(7 * 86_400);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBooking {
    pub service: String,
    /// A slot's `start` from check_availability: ISO-8601 with offset.
    pub start: String,
    pub customer_name: String,
    #[serde(default)]
    pub caller_phone: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

struct Valid<'a> {
    service: &'a ServiceDef,
    start: Timestamp,
    name: String,
    phone: Option<PhoneNumber>,
    conversation: Option<ConversationId>,
    key: String,
}

pub async fn create_booking(
    State(deps): State<Arc<Deps>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    super::run(deps, "create_booking", headers, body, handle).await
}

fn validate<'a>(
    b: &'a Bookable<'_>,
    req: &CreateBooking,
) -> Result<Result<Valid<'a>, serde_json::Value>, ToolError> {
    let Some(service) = find_service(b.tenant, &req.service) else {
        return Ok(Err(unknown_service(b.tenant, &req.service)));
    };
    let start: Timestamp = req.start.trim().parse().map_err(|_| {
        bad(
            "start",
            "Please use one of the times from check_availability, with its date and offset.",
        )
    })?;
    let name = req.customer_name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(bad(
            "customer_name",
            "What name should the booking be under?",
        ));
    }
    let phone = match req
        .caller_phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(p) => Some(
            PhoneNumber::parse(p, Some(&b.tenant.business.country)).map_err(|_| {
                bad(
                    "caller_phone",
                    "That phone number doesn't look right. Could you say it again?",
                )
            })?,
        ),
    };
    let conversation = match req.conversation_id.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            ConversationId::parse(c)
                .map_err(|_| bad("conversation_id", "The conversation id is malformed."))?,
        ),
    };
    if req
        .notes
        .as_deref()
        .is_some_and(|n| n.chars().count() > 500)
    {
        return Err(bad("notes", "Please keep the notes short."));
    }
    let key = match req
        .idempotency_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        Some(k) if k.len() <= 200 => derived_id("key", &[k]),
        Some(_) => return Err(bad("idempotency_key", "The idempotency key is too long.")),
        // The same conversation asking for the same booking twice is one booking.
        None => derived_id(
            "args",
            &[
                conversation
                    .as_ref()
                    .map(ConversationId::as_str)
                    .unwrap_or("-"),
                &service.id,
                &start.to_string(),
                &name.to_lowercase(),
                phone.as_ref().map(PhoneNumber::as_str).unwrap_or("-"),
            ],
        ),
    };
    Ok(Ok(Valid {
        service,
        start,
        name: name.to_string(),
        phone,
        conversation,
        key,
    }))
}

async fn handle(
    deps: Arc<Deps>,
    req: CreateBooking,
) -> Result<(String, serde_json::Value, Option<String>), ToolError> {
    let conversation_log = req.conversation_id.clone();
    let tenant = deps.tenant().await?;
    let b = match bookable(&tenant) {
        Ok(b) => b,
        Err(answer) => return Ok(("bookings_not_offered".into(), answer, conversation_log)),
    };
    let v = match validate(&b, &req)? {
        Ok(v) => v,
        Err(answer) => return Ok(("unknown_service".into(), answer, conversation_log)),
    };
    let booking_id = derived_id("bk", &[deps.config.tenant.as_str(), &v.key]);
    if let Some(first) = deps.store.get_booking(&booking_id).await? {
        return Ok((
            "already_booked".into(),
            confirmed(&b, &first),
            conversation_log,
        ));
    }
    let now = deps.now();
    let occupied = occupied(&deps, &b, now).await?;
    let engine_service = v.service.as_engine();
    let resources = b.rules.resources_for(&v.service.id);
    let free = match engine::check_start(
        &b.schedule,
        &engine_service,
        &resources,
        &occupied,
        v.start,
        now,
    ) {
        Ok(free) => free,
        Err(refusal) => {
            return refused(&deps, &b, v.service, v.start, refusal, conversation_log).await
        }
    };
    let cells: Vec<String> =
        engine::cell_starts(&engine_service.blocked_span(v.start), b.rules.slot_minutes)
            .iter()
            .map(Timestamp::to_string)
            .collect();
    for resource in free {
        let record = BookingRecord {
            booking_id: booking_id.clone(),
            tenant: deps.config.tenant.to_string(),
            service_id: v.service.id.clone(),
            resource,
            start: v.start.to_string(),
            end: engine_service.service_span(v.start).end.to_string(),
            cells: cells.clone(),
            status: "confirmed".into(),
            contact_phone: v.phone.as_ref().map(|p| p.to_string()),
            customer_name: Some(v.name.clone()),
            conversation_id: v.conversation.as_ref().map(|c| c.to_string()),
            version: 1,
            created_at: now.to_string(),
            updated_at: now.to_string(),
        };
        match deps
            .store
            .create_booking(&record, &v.key, now, KEY_TTL)
            .await?
        {
            Booked::Created => {
                after_booking(&deps, &b, &record, &v).await?;
                return Ok(("booked".into(), confirmed(&b, &record), conversation_log));
            }
            Booked::AlreadyDone { booking_id } => {
                if let Some(first) = deps.store.get_booking(&booking_id).await? {
                    return Ok((
                        "already_booked".into(),
                        confirmed(&b, &first),
                        conversation_log,
                    ));
                }
            }
            // Someone took this resource a moment ago: try the next free one.
            Booked::Conflict => {}
        }
    }
    refused(
        &deps,
        &b,
        v.service,
        v.start,
        Refusal::Taken,
        conversation_log,
    )
    .await
}

/// The confirmation text (queued, so the agent is not kept waiting for Twilio) and the event.
async fn after_booking(
    deps: &Deps,
    b: &Bookable<'_>,
    record: &BookingRecord,
    v: &Valid<'_>,
) -> Result<(), ToolError> {
    let local = v.start.to_zoned(b.schedule.zone.clone());
    if let Some(phone) = &v.phone {
        let conv = v
            .conversation
            .clone()
            .unwrap_or_else(|| ConversationId::parse("tool").expect("valid id"));
        let contact = deps
            .store
            .upsert_contact(phone, Some(&v.name), "phone", &conv, deps.now())
            .await?;
        let first_name = v
            .name
            .split_whitespace()
            .next()
            .unwrap_or("there")
            .to_string();
        let values = std::collections::BTreeMap::from([
            ("business_name", b.tenant.business.name.clone()),
            ("first_name", first_name),
            ("service", v.service.name.clone()),
            ("booking_time", spoken_datetime(&local)),
            ("business_phone", b.tenant.business.phone.international()),
        ]);
        let id = outbox::create(
            deps,
            NewMessage {
                id: outbox::booking_confirmation_id(&record.booking_id),
                purpose: "booking_confirmed",
                audience: Audience::Caller,
                to: phone.clone(),
                body: render(&b.tenant.templates.booking_confirmed, &values),
                conversation_id: record.conversation_id.clone(),
                lead_id: contact.open_lead_id.map(|l| l.to_string()),
            },
        )
        .await?;
        let job = Job::SendMessage {
            tenant: deps.config.tenant.to_string(),
            message_id: id,
        };
        deps.queue.enqueue(&job, Duration::ZERO).await?;
    }
    crate::post_call::emit(
        deps,
        &format!("booking.created:{}", record.booking_id),
        "booking.created",
        json!({
            "booking_id": record.booking_id,
            "service_id": record.service_id,
            "resource": record.resource,
            "start": record.start,
            "end": record.end,
            "conversation_id": record.conversation_id,
        }),
    )
    .await?;
    Ok(())
}

fn confirmed(b: &Bookable<'_>, record: &BookingRecord) -> serde_json::Value {
    let start: Timestamp = record.start.parse().unwrap_or_default();
    let local = start.to_zoned(b.schedule.zone.clone());
    let technician = b
        .rules
        .resources
        .iter()
        .find(|r| r.id == record.resource)
        .map(|r| r.name.clone())
        .unwrap_or_else(|| record.resource.clone());
    let service = b
        .tenant
        .service(&record.service_id)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| record.service_id.clone());
    let spoken = spoken_datetime(&local);
    answer(&json!({
        "ok": true,
        "booked": true,
        "booking_id": record.booking_id,
        "service": record.service_id,
        "start": iso_local(&local),
        "spoken": spoken,
        "technician": technician,
        "say": format!("You're booked in for a {service} on {spoken} with {technician}. We'll text you a confirmation."),
    }))
}

async fn refused(
    deps: &Deps,
    b: &Bookable<'_>,
    service: &ServiceDef,
    start: Timestamp,
    refusal: Refusal,
    conversation: Option<String>,
) -> Result<(String, serde_json::Value, Option<String>), ToolError> {
    let day = start.to_zoned(b.schedule.zone.clone()).date();
    let from = match &refusal {
        Refusal::TooSoon { .. } | Refusal::TooFarAhead => None,
        _ => Some(day),
    };
    let alternatives = speak(
        b,
        &next_slots(deps, b, service, from, None, DayPart::Any, 3).await?,
    );
    let times: Vec<&str> = alternatives.iter().map(|s| s.spoken.as_str()).collect();
    let offer = if times.is_empty() {
        "I can't see anything free soon.".to_string()
    } else {
        format!("I can do {}.", list_words(&times))
    };
    let (code, say) = match refusal {
        Refusal::Taken => (
            "slot_taken",
            format!("Sorry, that time has just been taken. {offer}"),
        ),
        Refusal::TooSoon { .. } => (
            "too_soon",
            format!("That's a bit too soon for us to get there. {offer}"),
        ),
        Refusal::TooFarAhead => (
            "too_far_ahead",
            format!("We're not taking bookings that far ahead yet. {offer}"),
        ),
        Refusal::NotOffered => (
            "outside_hours",
            format!("We're not open for that then. {offer}"),
        ),
    };
    Ok((
        code.into(),
        answer(
            &json!({"ok": false, "booked": false, "code": code, "say": say, "alternatives": alternatives}),
        ),
        conversation,
    ))
}
