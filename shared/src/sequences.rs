//! The timed messages of a booking: a reminder the day before (C confirms, R rearranges), a
//! review request after the job, and a check-in a month later. Each is an outbox message
//! waiting for its time (`deferred`, `not_before`) and one EventBridge Scheduler schedule named
//! after the booking and the step: a move puts the schedules again (same names, new times, new
//! message versions) and a cancellation deletes them. Consent and quiet hours are checked when
//! a message goes, not here.

use std::collections::BTreeMap;

use jiff::civil::Time;
use jiff::{SignedDuration, Timestamp, ToSpan};
use tracing::info;

use crate::booking::calendar::bookable;
use crate::deps::Deps;
use crate::error::DependencyError;
use crate::outbox::{self, Audience, NewMessage};
use crate::phone::PhoneNumber;
use crate::quiet;
use crate::store::bookings::{BookingRecord, BookingStatus};
use crate::tenant::{render, TenantConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Reminder,
    Review,
    ReEngagement,
}

pub const STEPS: [Step; 3] = [Step::Reminder, Step::Review, Step::ReEngagement];

/// The reminder goes the day before at this local hour.
const REMINDER_AT: Time = Time::constant(17, 0, 0, 0);
/// The review request this long after the job ends.
const REVIEW_AFTER: SignedDuration = SignedDuration::from_hours(2);
/// The check-in this many days after the job, at this local hour.
const RE_ENGAGE_DAYS: i64 = 30;
const RE_ENGAGE_AT: Time = Time::constant(10, 0, 0, 0);
/// A late reminder is pointless this close to the booking.
const REMINDER_CUTOFF: SignedDuration = SignedDuration::from_hours(2);

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reminder => "reminder",
            Self::Review => "review",
            Self::ReEngagement => "re-engagement",
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            Self::Reminder => "booking_reminder",
            Self::Review => "review_request",
            Self::ReEngagement => "re_engagement",
        }
    }

    fn template(self, tenant: &TenantConfig) -> &str {
        match self {
            Self::Reminder => &tenant.templates.booking_reminder,
            Self::Review => &tenant.templates.review_request,
            Self::ReEngagement => &tenant.templates.re_engagement,
        }
    }
}

/// The schedule of a step of a booking (Scheduler names: letters, digits, `-_.`, ≤ 64).
pub fn schedule_name(step: Step, booking_id: &str) -> String {
    format!("{}-{booking_id}", step.as_str())
}

/// The step's message for one version of the booking (a move makes a new one).
pub fn message_id(step: Step, booking_id: &str, version: u32) -> String {
    format!("{}:{booking_id}:v{version}", step.as_str())
}

/// When the step's message is due, or `None` when it has no point (a reminder after the
/// booking, a review request without a review link). A reminder whose time has passed (booked
/// tonight for tomorrow morning) goes at once if the person's quiet hours allow it now and the
/// booking is still more than two hours away.
pub fn due(
    step: Step,
    record: &BookingRecord,
    tenant: &TenantConfig,
    phone: &PhoneNumber,
    now: Timestamp,
) -> Option<Timestamp> {
    let zone = tenant.time_zone();
    let start = record.start.parse::<Timestamp>().ok()?;
    let end = record.end.parse::<Timestamp>().unwrap_or(start);
    let local_at = |instant: Timestamp, days: i64, time: Time| {
        let date = instant
            .to_zoned(zone.clone())
            .date()
            .checked_add(days.days())
            .ok()?;
        zone.to_ambiguous_zoned(date.to_datetime(time))
            .compatible()
            .ok()
            .map(|z| z.timestamp())
    };
    match step {
        Step::Reminder => {
            let due = local_at(start, -1, REMINDER_AT)?;
            if due > now {
                return Some(due);
            }
            let mut zones = quiet::zones_of(phone, now);
            if zones.is_empty() {
                zones.push(zone.clone());
            }
            let can_go_now = quiet::next_allowed(now, &zones, tenant.quiet_hours.customers) == now;
            (can_go_now && start.duration_since(now) > REMINDER_CUTOFF).then_some(now)
        }
        Step::Review => {
            tenant.business.review_link.as_ref()?;
            let due = end.checked_add(REVIEW_AFTER).ok()?;
            (due > now).then_some(due)
        }
        Step::ReEngagement => local_at(start, RE_ENGAGE_DAYS, RE_ENGAGE_AT).filter(|d| *d > now),
    }
}

/// Brings a booking's timed messages in line with the booking as it now stands.
pub async fn booking_changed(
    deps: &Deps,
    tenant: &TenantConfig,
    record: &BookingRecord,
) -> Result<(), DependencyError> {
    let Some(schedules) = &deps.schedules else {
        return Ok(());
    };
    let Some(phone) = record
        .contact_phone
        .as_deref()
        .and_then(|p| PhoneNumber::parse(p, None).ok())
    else {
        return Ok(());
    };
    if record.status == BookingStatus::Confirmed {
        // A booking answers any quote we were chasing them about.
        crate::quotes::stop_follow_ups(deps, tenant, &phone, None).await?;
    }
    let now = deps.now();
    let zone = tenant.time_zone();
    for step in STEPS {
        let name = schedule_name(step, &record.booking_id);
        if record.version > 1 {
            // The message of the booking as it was before this change is void.
            let old = message_id(step, &record.booking_id, record.version - 1);
            deps.store
                .suppress_if_waiting(&old, "the booking changed", now)
                .await?;
        }
        let due = match record.status {
            BookingStatus::Cancelled => None,
            BookingStatus::Confirmed => due(step, record, tenant, &phone, now),
        };
        let Some(due) = due else {
            schedules.delete(&name).await?;
            continue;
        };
        let id = message_id(step, &record.booking_id, record.version);
        let message = NewMessage {
            id: id.clone(),
            purpose: step.purpose(),
            audience: Audience::Caller,
            to: phone.clone(),
            body: render(step.template(tenant), &values(tenant, record)),
            conversation_id: record.conversation_id.clone(),
            lead_id: None,
        };
        outbox::schedule(deps, schedules, &phone, message, due, &name, &zone).await?;
    }
    info!(booking_id = %record.booking_id, version = record.version, status = record.status.as_str(), outcome = "sequence_scheduled", "booking's timed messages in line");
    Ok(())
}

fn values(tenant: &TenantConfig, record: &BookingRecord) -> BTreeMap<&'static str, String> {
    let when = bookable(tenant)
        .map(|b| crate::tools::booking::spoken_start(&b, record))
        .unwrap_or_default();
    BTreeMap::from([
        ("business_name", tenant.business.name.clone()),
        (
            "first_name",
            Some(crate::tools::first_name(
                record.customer_name.as_deref().unwrap_or(""),
            ))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "there".into()),
        ),
        ("service", tenant.service_name(&record.service_id)),
        ("booking_time", when),
        ("business_phone", tenant.business.phone.international()),
        ("options", String::new()),
        (
            "review_link",
            tenant.business.review_link.clone().unwrap_or_default(),
        ),
    ])
}
