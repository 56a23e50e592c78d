//! POST /tools/update_booking: move a booking to another time, or cancel it.
//!
//! A move is one transaction that takes the new cells before it releases the old ones, so when
//! the new time is gone the customer still has the original. Repeating a request is harmless: a
//! booking already at the asked time, or already cancelled, answers as if just done.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{json, Value};

use super::availability::bookings_not_offered;
use super::booking::{confirmed, effects_of, refused, spoken_start, text_customer, Confirmation};
use super::{answer, bad, Answer, ToolError};
use tracing::warn;

use crate::booking::calendar::{bookable, cells_for, iso_local, occupied_except, Bookable};
use crate::booking::engine::{self, Refusal};
use crate::deps::Deps;
use crate::events::{self, BookingChange, DomainEvent};
use crate::ids::derived_id;
use crate::phone::PhoneNumber;
use crate::store::bookings::{BookingRecord, BookingStatus, Moved};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Reschedule,
    Cancel,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UpdateBooking {
    pub action: Action,
    /// From create_booking or the call's `upcoming_booking_id`; absent means the caller's next
    /// booking.
    #[serde(default)]
    pub booking_id: Option<String>,
    /// For a reschedule: a slot's `start` from check_availability.
    #[serde(default)]
    pub new_start: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub caller_phone: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<String>,
}

/// A move or cancel retries this often when the booking changes under it.
const ATTEMPTS: usize = 3;

pub async fn update_booking(deps: &Deps, req: UpdateBooking) -> Result<Answer, ToolError> {
    let tenant = deps.tenant().await?;
    let Some(b) = bookable(&tenant) else {
        return Ok(bookings_not_offered());
    };
    let phone = super::caller_id(req.caller_phone.as_deref(), &tenant);
    super::conversation(req.conversation_id.as_deref())?;
    super::text(
        "reason",
        req.reason.as_deref(),
        300,
        "Please keep the reason short.",
    )?;
    let new_start = match req.action {
        Action::Cancel => None,
        Action::Reschedule => {
            let raw = req.new_start.as_deref().map(str::trim).unwrap_or("");
            Some(raw.parse::<Timestamp>().map_err(|_| {
                bad(
                    "new_start",
                    "Which time should it move to? Please use one of the times from check_availability.",
                )
            })?)
        }
    };
    let booking_id = match req.booking_id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => {
            if !crate::ids::is_safe_id(id) {
                return Err(bad(
                    "booking_id",
                    "That booking reference doesn't look right.",
                ));
            }
            Some(id.to_string())
        }
        _ => None,
    };
    let now = deps.now();
    let current =
        match (booking_id, &phone) {
            (Some(id), _) => deps.store.get_booking(&id).await?,
            (None, Some(p)) => next_booking_of(deps, p, now).await?,
            (None, None) => return Err(bad(
                "booking_id",
                "Which booking is it? I need the booking reference or the number it was made with.",
            )),
        };
    let Some(current) = current else {
        return Ok(Answer::refusal(
            "booking_not_found",
            "I can't find that booking. Could you tell me the day it was for, or the name it's under?",
        ));
    };
    // Only the customer's own number may change a booking made with one (a withheld number
    // cannot prove it is theirs).
    if let Some(owner) = &current.contact_phone {
        if phone.as_ref().map(PhoneNumber::as_str) != Some(owner.as_str()) {
            return Ok(Answer::refusal(
                "not_callers_booking",
                "I can only change a booking from the number it was made with. I'll ask the team to call you about it.",
            ));
        }
    }
    match new_start {
        None => cancel(deps, &b, current).await,
        Some(start) => reschedule(deps, &b, current, start).await,
    }
}

/// The caller's next booking (from the entries listed under their number).
pub(crate) async fn next_booking_of(
    deps: &Deps,
    phone: &PhoneNumber,
    now: Timestamp,
) -> Result<Option<BookingRecord>, ToolError> {
    let (_, entries) = deps.store.contact_overview(phone).await?;
    let now = now.to_string();
    for entry in entries.iter().filter(|e| e.start > now) {
        if let Some(record) = deps.store.get_booking(&entry.booking_id).await? {
            if record.status != BookingStatus::Cancelled {
                return Ok(Some(record));
            }
        }
    }
    Ok(None)
}

fn has_passed(record: &BookingRecord, now: Timestamp) -> bool {
    record.start.parse::<Timestamp>().is_ok_and(|s| s <= now)
}

async fn cancel(
    deps: &Deps,
    b: &Bookable<'_>,
    mut current: BookingRecord,
) -> Result<Answer, ToolError> {
    let now = deps.now();
    for _ in 0..ATTEMPTS {
        let when = spoken_start(b, &current);
        if current.status == BookingStatus::Cancelled {
            cancelled_side_effects(deps, b, &current).await?;
            return Ok(Answer::new(
                "already_cancelled",
                json!({"ok": true, "cancelled": true, "booking_id": current.booking_id, "say": format!("That booking on {when} is cancelled.")}),
            ));
        }
        if has_passed(&current, now) {
            return Ok(Answer::refusal(
                "in_the_past",
                format!("That booking on {when} has already passed."),
            ));
        }
        let mut cancelled = current.clone();
        cancelled.status = BookingStatus::Cancelled;
        cancelled.version += 1;
        let effects = effects_of(
            deps,
            b,
            &cancelled,
            &cancellation(b, &cancelled),
            &DomainEvent::BookingCancelled(BookingChange::of(&cancelled)),
        )?;
        if deps
            .store
            .cancel_booking_with(&current, now, effects)
            .await?
        {
            if cancelled_side_effects(deps, b, &cancelled).await.is_err() {
                warn!(booking_id = %cancelled.booking_id, outcome = "effects_left_to_sweep", "cancelled; text and event left to the outbox sweep");
            }
            return Ok(Answer::new(
                "cancelled",
                json!({"ok": true, "cancelled": true, "booking_id": cancelled.booking_id, "say": format!("That's cancelled: your booking on {when}. We'll text you to confirm.")}),
            ));
        }
        // It changed meanwhile (moved, or cancelled by a retry): look again.
        match deps.store.get_booking(&current.booking_id).await? {
            Some(fresh) => current = fresh,
            None => break,
        }
    }
    Err(ToolError::Unavailable)
}

fn cancellation<'a>(b: &'a Bookable<'_>, cancelled: &BookingRecord) -> Confirmation<'a> {
    Confirmation {
        purpose: "booking_cancelled",
        message_id: format!(
            "booking-cancelled:{}",
            derived_id("bk", &[&cancelled.booking_id])
        ),
        template: &b.tenant.templates.booking_cancelled,
    }
}

fn move_notice<'a>(b: &'a Bookable<'_>, moved: &BookingRecord) -> Confirmation<'a> {
    Confirmation {
        purpose: "booking_moved",
        message_id: format!(
            "booking-moved:{}",
            derived_id("bk", &[&moved.booking_id, &moved.version.to_string()])
        ),
        template: &b.tenant.templates.booking_moved,
    }
}

/// The cancellation text and event; idempotent, so a repeated cancel finishes a failed one.
async fn cancelled_side_effects(
    deps: &Deps,
    b: &Bookable<'_>,
    cancelled: &BookingRecord,
) -> Result<(), ToolError> {
    let text = cancellation(b, cancelled);
    text_customer(
        deps,
        b,
        cancelled,
        text.purpose,
        text.message_id,
        text.template,
    )
    .await?;
    crate::sequences::booking_changed(deps, b.tenant, cancelled).await?;
    let event = DomainEvent::BookingCancelled(BookingChange::of(cancelled));
    events::publish(deps, &event).await?;
    Ok(())
}

/// The text and event of a move; idempotent (ids carry the booking's version), and the event
/// says where the booking was, from the record, however often it is made.
async fn moved_side_effects(
    deps: &Deps,
    b: &Bookable<'_>,
    moved: &BookingRecord,
) -> Result<(), ToolError> {
    let text = move_notice(b, moved);
    text_customer(deps, b, moved, text.purpose, text.message_id, text.template).await?;
    crate::sequences::booking_changed(deps, b.tenant, moved).await?;
    let event = DomainEvent::BookingRescheduled(BookingChange::moved(moved));
    events::publish(deps, &event).await?;
    Ok(())
}

async fn reschedule(
    deps: &Deps,
    b: &Bookable<'_>,
    mut current: BookingRecord,
    new_start: Timestamp,
) -> Result<Answer, ToolError> {
    let now = deps.now();
    let Some(service) = b.tenant.service(&current.service_id) else {
        // The service was taken off the list since: a person has to arrange it.
        return Ok(Answer::refusal(
            "service_withdrawn",
            "I can't move that one myself. I'll ask the team to call you to rearrange it.",
        ));
    };
    let engine_service = service.as_engine();
    for _ in 0..ATTEMPTS {
        let original = spoken_start(b, &current);
        if current.status == BookingStatus::Cancelled {
            return Ok(Answer::refusal(
                "booking_cancelled",
                "That booking was cancelled. I can make a new one if you like.",
            ));
        }
        if current.start == new_start.to_string() {
            // Already there: a repeat of a move that went through (its text and event are made
            // again in case that call failed after the move), or a move to where it is.
            if current.version > 1 {
                moved_side_effects(deps, b, &current).await?;
            }
            return Ok(Answer::new("rescheduled", moved_answer(b, &current)));
        }
        if has_passed(&current, now) {
            return Ok(Answer::refusal(
                "in_the_past",
                format!("That booking on {original} has already passed."),
            ));
        }
        let occupied = occupied_except(deps, b, now, Some(&current.booking_id)).await?;
        let mut free = match engine::check_start(
            &b.schedule,
            &engine_service,
            &b.rules.resources_for(&service.id),
            &occupied,
            new_start,
            now,
        ) {
            Ok(free) => free,
            Err(refusal) => return kept(deps, b, &current, new_start, refusal).await,
        };
        // The same technician if they are free: fewer surprises for the customer.
        free.sort_by_key(|r| *r != current.resource);
        let cells = cells_for(b, service, new_start);
        let mut stale = false;
        for resource in free {
            let mut moved = current.clone();
            moved.start = new_start.to_string();
            moved.end = engine_service.service_span(new_start).end.to_string();
            moved.cells = cells.clone();
            moved.resource = resource;
            moved.previous_start = Some(current.start.clone());
            moved.version = current.version + 1;
            moved.updated_at = now.to_string();
            let effects = effects_of(
                deps,
                b,
                &moved,
                &move_notice(b, &moved),
                &DomainEvent::BookingRescheduled(BookingChange::moved(&moved)),
            )?;
            match deps
                .store
                .move_booking_with(&current, &moved, now, effects)
                .await?
            {
                Moved::Moved => {
                    if moved_side_effects(deps, b, &moved).await.is_err() {
                        warn!(booking_id = %moved.booking_id, outcome = "effects_left_to_sweep", "moved; text and event left to the outbox sweep");
                    }
                    return Ok(Answer::new("rescheduled", moved_answer(b, &moved)));
                }
                // That technician was taken a moment ago: try the next.
                Moved::Conflict => {}
                Moved::Stale => {
                    stale = true;
                    break;
                }
            }
        }
        if !stale {
            return kept(deps, b, &current, new_start, Refusal::Taken).await;
        }
        match deps.store.get_booking(&current.booking_id).await? {
            Some(fresh) => current = fresh,
            None => break,
        }
    }
    Err(ToolError::Unavailable)
}

fn moved_answer(b: &Bookable<'_>, record: &BookingRecord) -> Value {
    let mut body = confirmed(b, record);
    let spoken = body["spoken"].as_str().unwrap_or_default().to_string();
    let technician = body["technician"].as_str().unwrap_or_default().to_string();
    body["rescheduled"] = json!(true);
    body["say"] = json!(format!(
        "Done: you're now booked for {spoken} with {technician}. We'll text you the new time."
    ));
    answer(&body)
}

/// The new time cannot be had: the answer offers others and says the original still stands.
async fn kept(
    deps: &Deps,
    b: &Bookable<'_>,
    current: &BookingRecord,
    new_start: Timestamp,
    refusal: Refusal,
) -> Result<Answer, ToolError> {
    let service = b
        .tenant
        .service(&current.service_id)
        .ok_or(ToolError::Unavailable)?;
    let mut refused = refused(deps, b, service, new_start, refusal).await?;
    let local = current.start_time().to_zoned(b.schedule.zone.clone());
    let original = spoken_start(b, current);
    let body = &mut refused.body;
    body["kept"] =
        json!({"booking_id": current.booking_id, "start": iso_local(&local), "spoken": original});
    let say = body["say"].as_str().unwrap_or_default().to_string();
    body["say"] = json!(format!(
        "{say} Your booking on {original} is still in place."
    ));
    Ok(refused)
}
