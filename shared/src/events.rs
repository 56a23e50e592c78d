//! Domain events: what happened, published once each on the stack's EventBridge bus (source
//! `frontdesk`, detail-type the event's name) for the reminders, scans and anyone who
//! subscribes. Every event has one JSON shape (its struct below, plus `event_id`, `tenant` and
//! `occurred_at`) and an id derived from what it is about, so a retry publishes it once.

use serde::Serialize;
use serde_json::{json, Value};

use crate::deps::Deps;
use crate::error::DependencyError;
use crate::store::bookings::{BookingRecord, BookingStatus};
use crate::store::messages::{EventClaim, PendingEvent};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DomainEvent {
    /// `call.completed`: a call's transcript was processed.
    CallCompleted(CallCompleted),
    /// `call.missed`: a call never reached the agent (busy, no answer).
    CallMissed(CallMissed),
    /// `lead.created`: a person's first open enquiry.
    LeadCreated(LeadCreated),
    /// `lead.hot`: an urgent contact on a lead (once per conversation).
    LeadHot(LeadHot),
    /// `lead.dispatched`: a lead passed to one provider.
    LeadDispatched(LeadDispatched),
    /// `booking.created`, `booking.rescheduled`, `booking.cancelled`: once per version.
    BookingCreated(BookingChange),
    BookingRescheduled(BookingChange),
    BookingCancelled(BookingChange),
    /// `callback.requested`: a caller asked for a person outside staffed hours.
    CallbackRequested(CallbackRequested),
    /// `flag.raised`: the quality scan found a call breaking a rule (once per rule per call).
    FlagRaised(FlagRaised),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallCompleted {
    pub conversation_id: String,
    pub agent_id: String,
    pub ended_at: String,
    pub disposition: String,
    pub call_successful: Option<String>,
    pub lead_id: Option<String>,
    pub booking_id: Option<String>,
    pub hot: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallMissed {
    pub conversation_id: String,
    pub failure_reason: Option<String>,
    pub lead_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadCreated {
    pub lead_id: String,
    pub conversation_id: String,
    /// `phone`, `sms` or `whatsapp`.
    pub channel: String,
    pub hot: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadHot {
    pub lead_id: String,
    pub conversation_id: String,
    pub urgency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadDispatched {
    pub lead_id: String,
    pub provider: String,
    pub area: String,
    pub category: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BookingChange {
    pub booking_id: String,
    pub service_id: String,
    pub resource: String,
    pub start: String,
    pub end: String,
    /// Where a rescheduled booking was before.
    pub previous_start: Option<String>,
    pub status: BookingStatus,
    pub conversation_id: Option<String>,
    /// Which change of the booking this is (in the event id, not the detail).
    #[serde(skip)]
    pub version: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallbackRequested {
    pub task_id: String,
    pub due: String,
    pub conversation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlagRaised {
    pub flag_id: String,
    pub conversation_id: String,
    pub rule_id: String,
    pub severity: String,
    pub turn: Option<u32>,
}

impl BookingChange {
    /// A booking as it is now.
    pub fn of(record: &BookingRecord) -> Self {
        Self {
            booking_id: record.booking_id.clone(),
            service_id: record.service_id.clone(),
            resource: record.resource.clone(),
            start: record.start.clone(),
            end: record.end.clone(),
            previous_start: None,
            status: record.status,
            conversation_id: record.conversation_id.clone(),
            version: record.version,
        }
    }

    /// A booking just moved: where it is now and, from the record, where it was.
    pub fn moved(record: &BookingRecord) -> Self {
        Self {
            previous_start: record.previous_start.clone(),
            ..Self::of(record)
        }
    }
}

impl DomainEvent {
    /// The EventBridge detail-type.
    pub fn name(&self) -> &'static str {
        match self {
            Self::CallCompleted(_) => "call.completed",
            Self::CallMissed(_) => "call.missed",
            Self::LeadCreated(_) => "lead.created",
            Self::LeadHot(_) => "lead.hot",
            Self::LeadDispatched(_) => "lead.dispatched",
            Self::BookingCreated(_) => "booking.created",
            Self::BookingRescheduled(_) => "booking.rescheduled",
            Self::BookingCancelled(_) => "booking.cancelled",
            Self::CallbackRequested(_) => "callback.requested",
            Self::FlagRaised(_) => "flag.raised",
        }
    }

    /// Derived from what the event is about: the same happening is the same event.
    pub fn id(&self) -> String {
        let name = self.name();
        match self {
            Self::CallCompleted(e) => format!("{name}:{}", e.conversation_id),
            Self::CallMissed(e) => format!("{name}:{}", e.conversation_id),
            Self::LeadCreated(e) => format!("{name}:{}", e.lead_id),
            Self::LeadHot(e) => format!("{name}:{}:{}", e.lead_id, e.conversation_id),
            Self::LeadDispatched(e) => format!("{name}:{}", e.lead_id),
            Self::BookingCreated(e) | Self::BookingRescheduled(e) | Self::BookingCancelled(e) => {
                format!("{name}:{}:{}", e.booking_id, e.version)
            }
            Self::CallbackRequested(e) => format!("{name}:{}", e.task_id),
            Self::FlagRaised(e) => format!("{name}:{}", e.flag_id),
        }
    }

    /// The published detail: the event's own fields and the envelope every event carries.
    pub fn detail(&self, tenant: &str, occurred_at: jiff::Timestamp) -> Value {
        let mut detail = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        if let Value::Object(map) = &mut detail {
            map.insert("event_id".into(), json!(self.id()));
            map.insert("tenant".into(), json!(tenant));
            map.insert("occurred_at".into(), json!(occurred_at.to_string()));
        }
        detail
    }
}

/// Publishes an event once: recorded under its id first, marked when published, so a retry
/// publishes only what was not yet published.
pub async fn publish(deps: &Deps, event: &DomainEvent) -> Result<(), DependencyError> {
    let pending = recorded(deps, event);
    let (claim, first_detail) = deps
        .store
        .claim_event(&pending, deps.now(), deps.config.bookkeeping_ttl)
        .await?;
    if claim == EventClaim::Published {
        return Ok(());
    }
    // As first recorded: a retry publishes what happened when it happened.
    let detail = first_detail.unwrap_or(pending.detail);
    publish_recorded(deps, &pending.id, &pending.detail_type, &detail).await
}

/// The event as the outbox records it.
pub fn recorded(deps: &Deps, event: &DomainEvent) -> PendingEvent {
    PendingEvent {
        id: event.id(),
        detail_type: event.name().to_string(),
        detail: event
            .detail(deps.config.tenant.as_str(), deps.now())
            .to_string(),
    }
}

/// The event's outbox entry, to commit with the business write it is about; [`publish`] (or
/// the outbox sweep) publishes it after.
pub fn in_transaction(
    deps: &Deps,
    event: &DomainEvent,
) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, DependencyError> {
    deps.store.event_in_transaction(
        &recorded(deps, event),
        deps.now(),
        deps.config.bookkeeping_ttl,
    )
}

/// Publishes a recorded event and marks it published.
pub async fn publish_recorded(
    deps: &Deps,
    id: &str,
    detail_type: &str,
    detail: &str,
) -> Result<(), DependencyError> {
    let detail: Value =
        serde_json::from_str(detail).map_err(|e| crate::store::corrupt("recorded event", e))?;
    deps.bus.publish(detail_type, &detail).await?;
    deps.store.mark_event_published(id, deps.now()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_has_its_name_its_id_and_one_shape() {
        let event = DomainEvent::LeadHot(LeadHot {
            lead_id: "ld_1".into(),
            conversation_id: "conv_1".into(),
            urgency: Some("emergency".into()),
        });
        assert_eq!(event.name(), "lead.hot");
        assert_eq!(event.id(), "lead.hot:ld_1:conv_1");
        let at: jiff::Timestamp = "2026-11-23T07:00:00Z".parse().unwrap();
        assert_eq!(
            event.detail("demo", at),
            json!({
                "lead_id": "ld_1",
                "conversation_id": "conv_1",
                "urgency": "emergency",
                "event_id": "lead.hot:ld_1:conv_1",
                "tenant": "demo",
                "occurred_at": "2026-11-23T07:00:00Z",
            })
        );
    }

    #[test]
    fn a_booking_event_is_one_per_version_and_a_move_says_where_it_was() {
        let record = BookingRecord {
            booking_id: "bk_1".into(),
            tenant: "demo".into(),
            service_id: "boiler_service".into(),
            resource: "dave".into(),
            start: "2026-11-24T10:00:00Z".into(),
            end: "2026-11-24T11:00:00Z".into(),
            cells: vec![],
            status: BookingStatus::Confirmed,
            contact_phone: None,
            customer_name: None,
            conversation_id: None,
            notes: None,
            previous_start: Some("2026-11-24T09:00:00Z".into()),
            customer_confirmed_at: None,
            version: 2,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let moved = DomainEvent::BookingRescheduled(BookingChange::moved(&record));
        assert_eq!(moved.id(), "booking.rescheduled:bk_1:2");
        let detail = moved.detail("demo", jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(detail["previous_start"], "2026-11-24T09:00:00Z");
        assert_eq!(detail["status"], "confirmed");
        assert!(detail.get("version").is_none());
        let created = DomainEvent::BookingCreated(BookingChange::of(&record));
        assert_eq!(
            created.detail("demo", jiff::Timestamp::UNIX_EPOCH)["previous_start"],
            Value::Null
        );
    }
}
