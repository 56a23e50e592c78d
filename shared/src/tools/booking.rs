//! POST /tools/create_booking: books a slot on a free resource. The database decides (cell
//! locks in one transaction); a retried call with the same key, or the same conversation and
//! arguments, returns the first result.

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use super::availability::{bookings_not_offered, service_or_refusal};
use super::{answer, bad, Answer, ToolError};
use tracing::warn;

use crate::booking::calendar::{
    self, bookable, cells_for, iso_local, next_slots, speak, technician_name, Bookable, Search,
};
use crate::booking::engine::{self, DayPart, Occupied, Refusal};
use crate::booking::rules::ServiceDef;
use crate::deps::Deps;
use crate::events::{self, BookingChange, DomainEvent};
use crate::ids::{derived_id, ConversationId};
use crate::outbox::{self, Audience, NewMessage};
use crate::phone::PhoneNumber;
use crate::spoken::{list_words, spoken_datetime};
use crate::store::bookings::{Booked, BookingRecord, BookingStatus};
use crate::tenant::render;

/// Idempotency records are kept this long.
const KEY_TTL: Duration = Duration::from_secs(7 * 86_400);

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

pub async fn create_booking(deps: &Deps, req: CreateBooking) -> Result<Answer, ToolError> {
    let tenant = deps.tenant().await?;
    let Some(b) = bookable(&tenant) else {
        return Ok(bookings_not_offered());
    };
    let mut v = match validate(&b, &req)? {
        Ok(v) => v,
        Err(refusal) => return Ok(refusal),
    };
    let mut booking_id = derived_id("bk", &[deps.config.tenant.as_str(), &v.key]);
    // The same request again: the first result. If that booking was cancelled since, this is
    // a new booking (the caller changed their mind back), under a key derived from the old.
    for _ in 0..5 {
        match deps.store.get_booking(&booking_id).await? {
            Some(first) if first.status == BookingStatus::Cancelled => {
                v.key = derived_id("rebook", &[&v.key]);
                booking_id = derived_id("bk", &[deps.config.tenant.as_str(), &v.key]);
            }
            Some(first) => return already_booked(deps, &b, &first, &v).await,
            None => break,
        }
    }
    let now = deps.now();
    let occupied = calendar::occupied(deps, &b, now).await?;
    let tenant_id = deps.config.tenant.as_str();
    let candidates = match plan(&b, &v, &occupied, now, &booking_id, tenant_id) {
        Ok(candidates) => candidates,
        Err(refusal) => return refused(deps, &b, v.service, v.start, refusal).await,
    };
    for record in candidates {
        let effects = effects_of(
            deps,
            &b,
            &record,
            &Confirmation::created(&b, &record),
            &DomainEvent::BookingCreated(BookingChange::of(&record)),
        )?;
        match deps
            .store
            .create_booking_with(&record, &v.key, now, KEY_TTL, effects)
            .await?
        {
            Booked::Created => {
                if after_booking(deps, &b, &record, &v).await.is_err() {
                    // The booking stands with its text and event in the outbox: the sweep
                    // sends them on, so the caller hears it is booked.
                    warn!(booking_id = %record.booking_id, outcome = "effects_left_to_sweep", "booked; confirmation and event left to the outbox sweep");
                }
                return Ok(Answer::new("booked", confirmed(&b, &record)));
            }
            Booked::AlreadyDone { booking_id } => {
                if let Some(first) = deps.store.get_booking(&booking_id).await? {
                    return already_booked(deps, &b, &first, &v).await;
                }
            }
            // Someone took this resource a moment ago: try the next free one.
            Booked::Conflict => {}
        }
    }
    refused(deps, &b, v.service, v.start, Refusal::Taken).await
}

pub fn validate<'a>(
    b: &'a Bookable<'_>,
    req: &CreateBooking,
) -> Result<Result<Valid<'a>, Answer>, ToolError> {
    let service = match service_or_refusal(b.tenant, &req.service)? {
        Ok(service) => service,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let start: Timestamp = req.start.trim().parse().map_err(|_| {
        bad(
            "start",
            "Please use one of the times from check_availability, with its date and offset.",
        )
    })?;
    let name = super::line(
        "customer_name",
        Some(&req.customer_name),
        100,
        "What name should the booking be under?",
    )?
    .ok_or_else(|| bad("customer_name", "What name should the booking be under?"))?;
    let phone = super::caller_id(req.caller_phone.as_deref(), b.tenant);
    let conversation = super::conversation(req.conversation_id.as_deref())?;
    let notes = super::text(
        "notes",
        req.notes.as_deref(),
        500,
        "Please keep the notes short.",
    )?;
    let key = match super::line(
        "idempotency_key",
        req.idempotency_key.as_deref(),
        200,
        "The idempotency key is too long.",
    )? {
        Some(k) => derived_id("key", &[&k]),
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
        name,
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
    let cells = cells_for(b, v.service, v.start);
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
            status: BookingStatus::Confirmed,
            contact_phone: v.phone.as_ref().map(|p| p.to_string()),
            customer_name: Some(v.name.clone()),
            conversation_id: v.conversation.as_ref().map(|c| c.to_string()),
            notes: v.notes.clone(),
            previous_start: None,
            customer_confirmed_at: None,
            version: 1,
            created_at: now.to_string(),
            updated_at: now.to_string(),
        })
        .collect())
}

/// A repeat of a booking already made. Its text and event are made again: if the first call
/// failed after the booking committed, the retry finishes the job (both are idempotent).
async fn already_booked(
    deps: &Deps,
    b: &Bookable<'_>,
    first: &BookingRecord,
    v: &Valid<'_>,
) -> Result<Answer, ToolError> {
    if first.status != BookingStatus::Cancelled {
        after_booking(deps, b, first, v).await?;
    }
    Ok(Answer::new("already_booked", confirmed(b, first)))
}

/// The confirmation text (queued, so the agent is not kept waiting for Twilio) and the event.
async fn after_booking(
    deps: &Deps,
    b: &Bookable<'_>,
    record: &BookingRecord,
    v: &Valid<'_>,
) -> Result<(), ToolError> {
    if let Some(phone) = &v.phone {
        let conv = super::conversation_or_tool(v.conversation.clone());
        deps.store
            .upsert_contact(phone, Some(&v.name), "phone", &conv, deps.now())
            .await?;
    }
    let text = Confirmation::created(b, record);
    text_customer(
        deps,
        b,
        record,
        text.purpose,
        text.message_id,
        text.template,
    )
    .await?;
    crate::sequences::booking_changed(deps, b.tenant, record).await?;
    events::publish(
        deps,
        &DomainEvent::BookingCreated(BookingChange::of(record)),
    )
    .await?;
    Ok(())
}

/// The customer's text about a booking change: which one, under which id.
pub(super) struct Confirmation<'a> {
    pub purpose: &'static str,
    pub message_id: String,
    pub template: &'a str,
}

impl<'a> Confirmation<'a> {
    fn created(b: &'a Bookable<'_>, record: &BookingRecord) -> Self {
        Self {
            purpose: "booking_confirmed",
            message_id: outbox::booking_confirmation_id(&record.booking_id),
            template: &b.tenant.templates.booking_confirmed,
        }
    }
}

/// The outbox entries of a booking change (the customer's text, the event), to commit in the
/// change's own transaction: the change never stands without them.
pub(super) fn effects_of(
    deps: &Deps,
    b: &Bookable<'_>,
    record: &BookingRecord,
    text: &Confirmation<'_>,
    event: &DomainEvent,
) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, ToolError> {
    let mut items = Vec::new();
    if let Some(msg) = customer_message(
        b,
        record,
        text.purpose,
        text.message_id.clone(),
        text.template,
    ) {
        items.push(outbox::in_transaction(deps, b.tenant, &msg)?);
    }
    items.push(events::in_transaction(deps, event)?);
    Ok(items)
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
    if let Some(msg) = customer_message(b, record, purpose, message_id, template) {
        outbox::create_and_queue(deps, msg).await?;
    }
    Ok(())
}

fn customer_message(
    b: &Bookable<'_>,
    record: &BookingRecord,
    purpose: &'static str,
    message_id: String,
    template: &str,
) -> Option<NewMessage> {
    let phone = record
        .contact_phone
        .as_deref()
        .and_then(|p| PhoneNumber::parse(p, None).ok())?;
    let values = std::collections::BTreeMap::from([
        ("business_name", b.tenant.business.name.clone()),
        (
            "first_name",
            super::first_name(record.customer_name.as_deref().unwrap_or("")),
        ),
        ("service", b.tenant.service_name(&record.service_id)),
        ("booking_time", spoken_start(b, record)),
        ("business_phone", b.tenant.business.phone.international()),
    ]);
    Some(NewMessage {
        id: message_id,
        purpose,
        audience: Audience::Caller,
        to: phone,
        body: render(template, &values),
        conversation_id: record.conversation_id.clone(),
        lead_id: None,
    })
}

/// When the booking starts, as the customer would say it.
pub fn spoken_start(b: &Bookable<'_>, record: &BookingRecord) -> String {
    spoken_datetime(&record.start_time().to_zoned(b.schedule.zone.clone()))
}

pub fn confirmed(b: &Bookable<'_>, record: &BookingRecord) -> serde_json::Value {
    let local = record.start_time().to_zoned(b.schedule.zone.clone());
    let technician = technician_name(b, &record.resource);
    let service = b.tenant.service_name(&record.service_id);
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

/// Why a time cannot be booked, with the next free slots instead.
pub(super) async fn refused(
    deps: &Deps,
    b: &Bookable<'_>,
    service: &ServiceDef,
    start: Timestamp,
    refusal: Refusal,
) -> Result<Answer, ToolError> {
    let day = start.to_zoned(b.schedule.zone.clone()).date();
    let from = match &refusal {
        Refusal::TooSoon { .. } | Refusal::TooFarAhead => None,
        _ => Some(day),
    };
    let search = Search {
        from,
        to: None,
        part: DayPart::Any,
        limit: 3,
    };
    let alternatives = speak(b, &next_slots(deps, b, service, search).await?);
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
    Ok(Answer::new(
        code,
        answer(
            &json!({"ok": false, "booked": false, "code": code, "say": say, "alternatives": alternatives}),
        ),
    ))
}
