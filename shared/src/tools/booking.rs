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
use crate::booking::engine::{self, DayPart, Occupied, Refusal};
use crate::booking::rules::ServiceDef;
use crate::deps::Deps;
use crate::ids::{derived_id, ConversationId};
use crate::outbox::{self, Audience, NewMessage};
use crate::phone::PhoneNumber;
use crate::spoken::spoken_datetime;
use crate::store::bookings::{Booked, BookingRecord};
use crate::tenant::render;

/// Idempotency records are kept this long.
const KEY_TTL: Duration = Duration::from_secs(7 * 86_400);

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

/// A create_booking request, understood.
pub struct Valid<'a> {
    pub service: &'a ServiceDef,
    pub start: Timestamp,
    pub name: String,
    pub phone: Option<PhoneNumber>,
    pub conversation: Option<ConversationId>,
    pub key: String,
    /// For the technician: access, parking, the fault.
    pub notes: Option<String>,
}

pub async fn create_booking(
    State(deps): State<Arc<Deps>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    super::run(deps, "create_booking", headers, body, handle).await
}

pub fn validate<'a>(
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
    let phone = super::caller_id(req.caller_phone.as_deref(), b.tenant);
    let conversation = super::conversation(req.conversation_id.as_deref())?;
    let notes = super::text(
        "notes",
        req.notes.as_deref(),
        500,
        "Please keep the notes short.",
    )?;
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
        notes,
    }))
}

/// The booking to try on each free resource, in order, or why the time cannot be booked.
/// Pure: the database still has the last word (another call may take a resource first).
pub fn plan(
    b: &Bookable<'_>,
    v: &Valid<'_>,
    occupied: &[Occupied],
    now: Timestamp,
    booking_id: &str,
    tenant: &str,
) -> Result<Vec<BookingRecord>, Refusal> {
    let engine_service = v.service.as_engine();
    let resources = b.rules.resources_for(&v.service.id);
    let free = engine::check_start(
        &b.schedule,
        &engine_service,
        &resources,
        occupied,
        v.start,
        now,
    )?;
    let cells: Vec<String> =
        engine::cell_starts(&engine_service.blocked_span(v.start), b.rules.slot_minutes)
            .iter()
            .map(Timestamp::to_string)
            .collect();
    Ok(free
        .into_iter()
        .map(|resource| BookingRecord {
            booking_id: booking_id.to_string(),
            tenant: tenant.to_string(),
            service_id: v.service.id.clone(),
            resource,
            start: v.start.to_string(),
            end: engine_service.service_span(v.start).end.to_string(),
            cells: cells.clone(),
            status: "confirmed".into(),
            contact_phone: v.phone.as_ref().map(|p| p.to_string()),
            customer_name: Some(v.name.clone()),
            conversation_id: v.conversation.as_ref().map(|c| c.to_string()),
            notes: v.notes.clone(),
            version: 1,
            created_at: now.to_string(),
            updated_at: now.to_string(),
        })
        .collect())
}

async fn handle(deps: Arc<Deps>, req: CreateBooking) -> Result<super::Reply, ToolError> {
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
    let mut v = v;
    let mut booking_id = derived_id("bk", &[deps.config.tenant.as_str(), &v.key]);
    // The same request again: the first result. If that booking was cancelled since, this is
    // a new booking (the caller changed their mind back), under a key derived from the old.
    for _ in 0..5 {
        match deps.store.get_booking(&booking_id).await? {
            Some(first) if first.status == "cancelled" => {
                v.key = derived_id("rebook", &[&v.key]);
                booking_id = derived_id("bk", &[deps.config.tenant.as_str(), &v.key]);
            }
            Some(first) => return already_booked(&deps, &b, &first, &v, conversation_log).await,
            None => break,
        }
    }
    let now = deps.now();
    let occupied = occupied(&deps, &b, now).await?;
    let candidates = match plan(
        &b,
        &v,
        &occupied,
        now,
        &booking_id,
        deps.config.tenant.as_str(),
    ) {
        Ok(candidates) => candidates,
        Err(refusal) => {
            return refused(&deps, &b, v.service, v.start, refusal, conversation_log).await
        }
    };
    for record in candidates {
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
                    return already_booked(&deps, &b, &first, &v, conversation_log).await;
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

/// A repeat of a booking already made. Its text and event are made again: if the first call
/// failed after the booking committed, the retry finishes the job (both are idempotent).
async fn already_booked(
    deps: &Deps,
    b: &Bookable<'_>,
    first: &BookingRecord,
    v: &Valid<'_>,
    conversation: Option<String>,
) -> Result<super::Reply, ToolError> {
    if first.status != "cancelled" {
        after_booking(deps, b, first, v).await?;
    }
    Ok(("already_booked".into(), confirmed(b, first), conversation))
}

/// The confirmation text (queued, so the agent is not kept waiting for Twilio) and the event.
async fn after_booking(
    deps: &Deps,
    b: &Bookable<'_>,
    record: &BookingRecord,
    v: &Valid<'_>,
) -> Result<(), ToolError> {
    if let Some(phone) = &v.phone {
        let conv = super::caller::conversation_or_tool(v.conversation.clone());
        deps.store
            .upsert_contact(phone, Some(&v.name), "phone", &conv, deps.now())
            .await?;
    }
    text_customer(
        deps,
        b,
        record,
        "booking_confirmed",
        outbox::booking_confirmation_id(&record.booking_id),
        &b.tenant.templates.booking_confirmed,
    )
    .await?;
    emit_change(deps, "booking.created", record, None).await
}

/// Texts the booking's customer (if it has a number) from a caller template.
pub(super) async fn text_customer(
    deps: &Deps,
    b: &Bookable<'_>,
    record: &BookingRecord,
    purpose: &'static str,
    message_id: String,
    template: &str,
) -> Result<(), ToolError> {
    let Some(phone) = record
        .contact_phone
        .as_deref()
        .and_then(|p| PhoneNumber::parse(p, None).ok())
    else {
        return Ok(());
    };
    let start: Timestamp = record.start.parse().unwrap_or_default();
    let local = start.to_zoned(b.schedule.zone.clone());
    let service = b
        .tenant
        .service(&record.service_id)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| record.service_id.clone());
    let values = std::collections::BTreeMap::from([
        ("business_name", b.tenant.business.name.clone()),
        (
            "first_name",
            super::first_name(record.customer_name.as_deref().unwrap_or("")),
        ),
        ("service", service),
        ("booking_time", spoken_datetime(&local)),
        ("business_phone", b.tenant.business.phone.international()),
    ]);
    outbox::create_and_queue(
        deps,
        NewMessage {
            id: message_id,
            purpose,
            audience: Audience::Caller,
            to: phone,
            body: render(template, &values),
            conversation_id: record.conversation_id.clone(),
            lead_id: None,
        },
    )
    .await?;
    Ok(())
}

/// Records and publishes a booking event (reminders follow these). Once per change: the
/// event id carries the booking's version.
pub(super) async fn emit_change(
    deps: &Deps,
    kind: &str,
    record: &BookingRecord,
    previous_start: Option<&str>,
) -> Result<(), ToolError> {
    crate::post_call::emit(
        deps,
        &format!("{kind}:{}:{}", record.booking_id, record.version),
        kind,
        json!({
            "booking_id": record.booking_id,
            "service_id": record.service_id,
            "resource": record.resource,
            "start": record.start,
            "end": record.end,
            "previous_start": previous_start,
            "status": record.status,
            "conversation_id": record.conversation_id,
        }),
    )
    .await?;
    Ok(())
}

pub fn confirmed(b: &Bookable<'_>, record: &BookingRecord) -> serde_json::Value {
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

pub(super) async fn refused(
    deps: &Deps,
    b: &Bookable<'_>,
    service: &ServiceDef,
    start: Timestamp,
    refusal: Refusal,
    conversation: Option<String>,
) -> Result<super::Reply, ToolError> {
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
