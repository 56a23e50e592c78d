//! Every outbound text goes through here: created once under an id derived from what it is
//! about, then dispatched. Dispatch checks consent, takes the message (so only one worker sends
//! it), calls Twilio, and records the outcome. Transient failures are re-queued with back-off;
//! permanent ones are recorded, and an unsubscribed recipient is marked opted out.

use tracing::{error, info, warn};

use crate::deps::Deps;
use crate::error::DependencyError;
use crate::jobs::Job;
use crate::messaging::inbound::Channel;
use crate::metrics;
use crate::phone::PhoneNumber;
use crate::schedules::Schedules;
use crate::store::messages::{MessageState, OutboundMessage, SendOutcome, TimedMessage};
use crate::store::texts::{ConsentChange, Direction, ThreadEntry};
use crate::tenant::{Compliance, TenantConfig};
use crate::twilio::{
    OurMessage, OutgoingSms, Retry, TwilioError, OPTED_OUT, OUTSIDE_WHATSAPP_WINDOW,
};

/// The one confirmation of an opt-out in the person's own words: the only message that goes to
/// an opted-out number (Twilio did not see a keyword, so it sent none).
pub const OPT_OUT_CONFIRMATION: &str = "opt_out_confirmation";

/// Where Twilio reports delivery (a route of [`crate::http::routes`]).
pub const STATUS_PATH: &str = "/webhooks/twilio/status";

/// Twilio's limit for one message body.
const MAX_BODY_CHARS: usize = 1600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The person who called or wrote: consent rules apply.
    Caller,
    /// The business owner or staff: operational alerts.
    Owner,
    /// A partner the business passes jobs to.
    Provider,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Caller => "caller",
            Self::Owner => "owner",
            Self::Provider => "provider",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Deterministic: `<purpose>:<subject>`, e.g. `missed-call:conv_123`.
    pub id: String,
    pub purpose: &'static str,
    pub audience: Audience,
    pub to: PhoneNumber,
    pub body: String,
    pub conversation_id: Option<String>,
    pub lead_id: Option<String>,
}

/// The one confirmation text of a booking, whoever sends it (the booking tool, or the post-call
/// pipeline when the call's analysis reports a booking): the same id, so it goes once.
pub fn booking_confirmation_id(booking_id: &str) -> String {
    format!(
        "booking-confirmed:{}",
        crate::ids::derived_id("bk", &[booking_id])
    )
}

/// Records the message and queues its sending (so nobody waits for Twilio). Returns its id.
pub async fn create_and_queue(deps: &Deps, msg: NewMessage) -> Result<String, DependencyError> {
    let id = create(deps, msg).await?;
    queue_send(deps, &id).await?;
    Ok(id)
}

/// Queues the sending of a recorded message.
pub async fn queue_send(deps: &Deps, id: &str) -> Result<(), DependencyError> {
    let job = Job::SendMessage {
        tenant: deps.config.tenant.to_string(),
        message_id: id.to_string(),
    };
    deps.queue.enqueue(&job, std::time::Duration::ZERO).await
}

/// An approved WhatsApp template and its numbered variables.
#[derive(Debug, Clone)]
pub struct WhatsAppTemplate {
    pub content_sid: String,
    pub variables: Vec<String>,
}

/// Records the message unless it exists. Returns its id either way.
pub async fn create(deps: &Deps, msg: NewMessage) -> Result<String, DependencyError> {
    create_on(deps, msg, Channel::Sms, None).await
}

/// Records a WhatsApp template message unless it exists (`body` is kept as its readable text).
pub async fn create_whatsapp(
    deps: &Deps,
    msg: NewMessage,
    template: WhatsAppTemplate,
) -> Result<String, DependencyError> {
    create_on(deps, msg, Channel::WhatsApp, Some(template)).await
}

/// Records a message that waits for its time (`due`) and puts the schedule (`schedule`) that
/// sends it then. It is listed under the person it is about (`person`: its recipient, or the
/// customer an owner's reminder concerns), so an opt-out or a reply can stop it; a customer's
/// joins their thread when it goes. Doing it again is harmless.
pub async fn schedule(
    deps: &Deps,
    schedules: &Schedules,
    person: &PhoneNumber,
    msg: NewMessage,
    due: jiff::Timestamp,
    schedule: &str,
    zone: &jiff::tz::TimeZone,
) -> Result<String, DependencyError> {
    let timed = TimedMessage {
        message_id: msg.id.clone(),
        schedule: schedule.to_string(),
        purpose: msg.purpose.to_string(),
        lead_id: msg.lead_id.clone(),
        due: due.to_string(),
    };
    deps.store.list_timed_message(person, &timed, due).await?;
    let compliance = deps.tenant().await?.compliance;
    let mut item = outbound(deps, &msg, Channel::Sms, None, &compliance);
    // Kept for the retention period after it goes, not after it was planned.
    item.expires_at = Some(compliance.expires_at(due));
    item.state = MessageState::Deferred;
    item.not_before = Some(due.to_string());
    item.scheduled = true;
    deps.store.create_message(&item).await?;
    let job = Job::SendMessage {
        tenant: deps.config.tenant.to_string(),
        message_id: msg.id.clone(),
    };
    schedules.put(schedule, due, zone, &job).await?;
    Ok(msg.id)
}

/// Stops the person's timed messages that have not gone and `which` picks, deleting their
/// schedules. Returns the ones it stopped.
pub async fn cancel_timed(
    deps: &Deps,
    phone: &PhoneNumber,
    reason: &str,
    which: impl Fn(&TimedMessage) -> bool,
) -> Result<Vec<TimedMessage>, DependencyError> {
    let mut cancelled = Vec::new();
    for timed in deps.store.timed_messages(phone).await? {
        if !which(&timed)
            || !deps
                .store
                .suppress_if_waiting(&timed.message_id, reason, deps.now())
                .await?
        {
            continue;
        }
        if let Some(schedules) = &deps.schedules {
            schedules.delete(&timed.schedule).await?;
        }
        cancelled.push(timed);
    }
    Ok(cancelled)
}

/// Records and queues an answer on the channel the person wrote on. A WhatsApp answer is
/// free-form; if their 24-hour window has closed by the time it goes, the tenant's reply
/// template goes instead (see [`dispatch`]).
pub async fn reply_on(
    deps: &Deps,
    msg: NewMessage,
    channel: Channel,
) -> Result<String, DependencyError> {
    let id = create_on(deps, msg, channel, None).await?;
    queue_send(deps, &id).await?;
    Ok(id)
}

/// The message as recorded before any attempt.
fn outbound(
    deps: &Deps,
    msg: &NewMessage,
    channel: Channel,
    template: Option<WhatsAppTemplate>,
    compliance: &Compliance,
) -> OutboundMessage {
    let now = deps.now();
    OutboundMessage {
        message_id: msg.id.clone(),
        tenant: deps.config.tenant.to_string(),
        purpose: msg.purpose.to_string(),
        audience: msg.audience.as_str().to_string(),
        channel: channel.as_str().into(),
        to: msg.to.to_string(),
        body: msg.body.chars().take(MAX_BODY_CHARS).collect(),
        content_variables: template.as_ref().map(|t| variables_json(&t.variables)),
        content_sid: template.map(|t| t.content_sid),
        state: MessageState::Pending,
        attempts: 0,
        conversation_id: msg.conversation_id.clone(),
        lead_id: msg.lead_id.clone(),
        twilio_sid: None,
        needs_check: false,
        error_code: None,
        error_detail: None,
        delivery_status: None,
        not_before: None,
        quiet_deferrals: 0,
        scheduled: false,
        outside_window: false,
        created_at: now.to_string(),
        updated_at: now.to_string(),
        expires_at: Some(compliance.expires_at(now)),
    }
}

/// The message's outbox entry, to commit with the business write it is about (a booking):
/// then it exists whenever the write does, and [`create_and_queue`] afterwards only queues it
/// (or the sweep does, if the run died in between).
pub fn in_transaction(
    deps: &Deps,
    tenant: &TenantConfig,
    msg: &NewMessage,
) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, DependencyError> {
    deps.store
        .message_in_transaction(&outbound(deps, msg, Channel::Sms, None, &tenant.compliance))
}

async fn create_on(
    deps: &Deps,
    msg: NewMessage,
    channel: Channel,
    template: Option<WhatsAppTemplate>,
) -> Result<String, DependencyError> {
    let compliance = deps.tenant().await?.compliance;
    let mut item = outbound(deps, &msg, channel, template, &compliance);
    if !deps.store.create_message(&item).await? {
        // Recorded before (a repeat, or with its business write): its thread entry is dated
        // as first recorded, so writing it again is a no-op.
        if let Some(first) = deps.store.get_message(&msg.id).await? {
            item = first;
        }
    }
    if msg.audience == Audience::Caller {
        // The person's thread shows what we sent them.
        let entry = ThreadEntry {
            at: item.created_at.clone(),
            direction: Direction::Out,
            channel: item.channel.clone(),
            body: item.body.clone(),
            ref_id: msg.id.clone(),
        };
        deps.store.add_to_thread(&msg.to, &entry).await?;
    }
    Ok(msg.id)
}

/// `{"1": "...", "2": "..."}`, as Twilio's ContentVariables.
fn variables_json(variables: &[String]) -> String {
    let vars: serde_json::Map<String, serde_json::Value> = variables
        .iter()
        .enumerate()
        .map(|(i, v)| ((i + 1).to_string(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(vars).to_string()
}

/// WhatsApp's customer-service window: free-form messages only this long after the person's
/// last message.
const WHATSAPP_WINDOW_SECS: i64 = 24 * 3600;

/// How a message goes out, decided when it is sent (a window open at creation may have closed).
#[derive(Debug, Clone, PartialEq, Eq)]
enum SendAs {
    Sms,
    WhatsAppText,
    WhatsAppTemplate {
        content_sid: String,
        variables: String,
    },
}

/// A free-form WhatsApp answer inside the window goes as it is; outside it, as the tenant's
/// reply template; without one, by SMS (the person's number takes texts too).
fn send_as(
    msg: &OutboundMessage,
    tenant: &TenantConfig,
    last_whatsapp_in: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
    first_name: &str,
) -> SendAs {
    let has_sender = tenant.messaging.whatsapp_from.is_some()
        || tenant
            .messaging
            .messaging_service_sid
            .as_deref()
            .is_some_and(|s| !s.is_empty());
    if msg.channel != Channel::WhatsApp.as_str() || !has_sender {
        // No WhatsApp sender configured: the person's number takes texts too.
        return SendAs::Sms;
    }
    if let (Some(sid), Some(vars)) = (&msg.content_sid, &msg.content_variables) {
        return SendAs::WhatsAppTemplate {
            content_sid: sid.clone(),
            variables: vars.clone(),
        };
    }
    let window_open = !msg.outside_window
        && last_whatsapp_in.is_some_and(|t| now.as_second() - t.as_second() < WHATSAPP_WINDOW_SECS);
    if window_open {
        return SendAs::WhatsAppText;
    }
    match tenant.messaging.whatsapp_reply_template_sid.as_deref() {
        Some(sid) if !sid.is_empty() => SendAs::WhatsAppTemplate {
            content_sid: sid.to_string(),
            variables: variables_json(&[first_name.to_string(), tenant.business.name.clone()]),
        },
        _ => SendAs::Sms,
    }
}

/// What one sweep of the outbox did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub messages_requeued: usize,
    pub events_published: usize,
    pub events_failed: usize,
}

/// How long an entry may sit unsent before the sweep pushes it: a queued send starts within
/// seconds; a retry waits at most SQS's 15-minute delay.
const SWEEP_PENDING_AFTER_SECS: i64 = 120;
const SWEEP_RETRYING_AFTER_SECS: i64 = 960;
/// How far back the sweep looks.
const SWEEP_WINDOW_SECS: i64 = 2 * 86_400;

/// Finds outbox entries that should have gone and did not (their queue message was never
/// sent or was lost, the run that recorded them died) and sends them on: messages back to the
/// queue, events straight to the bus. Scheduled every few minutes; safe at any time, any
/// number of times (sending and publishing are idempotent).
pub async fn sweep(deps: &Deps) -> Result<Swept, DependencyError> {
    let now = deps.now();
    let from = now
        .checked_sub(jiff::SignedDuration::from_secs(SWEEP_WINDOW_SECS))
        .unwrap_or(now);
    let until = now
        .checked_sub(jiff::SignedDuration::from_secs(SWEEP_PENDING_AFTER_SECS))
        .unwrap_or(now);
    let mut swept = Swept::default();
    for msg in deps.store.unsettled_messages(from, until, now).await? {
        let idle = msg
            .updated_at
            .parse::<jiff::Timestamp>()
            .map(|t| now.as_second() - t.as_second())
            .unwrap_or(i64::MAX);
        let due = match msg.state {
            MessageState::Pending => idle >= SWEEP_PENDING_AFTER_SECS,
            // Quiet hours over: its delayed queue message only covers the first 15 minutes.
            MessageState::Deferred => msg
                .not_before
                .as_deref()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_none_or(|t| t <= now),
            MessageState::Retrying => idle >= SWEEP_RETRYING_AFTER_SECS,
            MessageState::Sending => idle >= STALE_SENDING_SECS,
            _ => false,
        };
        if due {
            queue_send(deps, &msg.message_id).await?;
            swept.messages_requeued += 1;
        }
    }
    for event in deps.store.unpublished_events(from, until).await? {
        match crate::events::publish_recorded(deps, &event.id, &event.detail_type, &event.detail)
            .await
        {
            Ok(()) => swept.events_published += 1,
            Err(e) => {
                swept.events_failed += 1;
                warn!(event_id = %event.id, error = %e, "recorded event still not published");
            }
        }
    }
    if swept != Swept::default() {
        info!(
            messages_requeued = swept.messages_requeued,
            events_published = swept.events_published,
            events_failed = swept.events_failed,
            outcome = "swept",
            "outbox sweep sent on what was stuck"
        );
    }
    Ok(swept)
}

/// An opt-out, from whatever said so (a keyword, a revocation, Twilio's 21610): in the ledger
/// and on the contact, and every message still waiting for the person cancelled.
pub async fn record_opt_out(
    deps: &Deps,
    phone: &PhoneNumber,
    change: &ConsentChange,
) -> Result<(), DependencyError> {
    deps.store.change_consent(phone, change).await?;
    cancel_pending(deps, phone, "recipient opted out").await?;
    Ok(())
}

/// Suppresses every message still waiting to go to this person (they opted out), timed ones
/// with their schedules. Returns how many. Their thread and timed list hold what we queued for
/// them; anything else is stopped at send time.
pub async fn cancel_pending(
    deps: &Deps,
    phone: &PhoneNumber,
    reason: &str,
) -> Result<usize, DependencyError> {
    let entries = deps.store.thread(phone, 200).await?;
    let mut cancelled = cancel_timed(deps, phone, reason, |_| true).await?.len();
    for entry in entries.iter().filter(|e| e.direction == Direction::Out) {
        if deps
            .store
            .suppress_if_waiting(&entry.ref_id, reason, deps.now())
            .await?
        {
            cancelled += 1;
        }
    }
    if cancelled > 0 {
        info!(
            cancelled,
            outcome = "pending_cancelled",
            "waiting messages cancelled after an opt-out"
        );
    }
    Ok(cancelled)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatch {
    Sent,
    /// Found already sent when checked after an unclear answer: not sent again.
    FoundSent,
    Recorded,
    Suppressed,
    RetryQueued,
    Failed,
    /// Another run is sending it right now; a check is queued in case that run dies.
    InFlight,
    /// Inside the recipient's quiet hours: it waits.
    Deferred,
    /// Nothing to do: already settled.
    AlreadySettled(MessageState),
    Missing,
}

/// SQS's longest delivery delay.
const MAX_QUEUE_DELAY_SECS: u64 = 900;

/// When the message may go: now, or the next minute its recipient's window allows.
fn quiet_until(
    tenant: &TenantConfig,
    msg: &OutboundMessage,
    to: Option<&PhoneNumber>,
    now: jiff::Timestamp,
) -> jiff::Timestamp {
    let hours = &tenant.quiet_hours;
    let window = if msg.audience == Audience::Caller.as_str() {
        hours.customers
    } else if msg.purpose == "owner_hot_lead" && hours.hot_leads_any_time {
        crate::quiet::Window::ALWAYS
    } else {
        hours.staff
    };
    let mut zones = to
        .map(|p| crate::quiet::zones_of(p, now))
        .unwrap_or_default();
    if zones.is_empty() {
        zones.push(tenant.time_zone());
    }
    let due = not_before(msg).filter(|t| *t > now).unwrap_or(now);
    crate::quiet::next_allowed(due, &zones, window)
}

fn not_before(msg: &OutboundMessage) -> Option<jiff::Timestamp> {
    msg.not_before.as_deref().and_then(|t| t.parse().ok())
}

/// A send that has not settled after this long died with its run (a send takes at most ~10 s).
const STALE_SENDING_SECS: i64 = 120;

/// Sends a message now if it is still due. Safe to call any number of times, concurrently.
pub async fn dispatch(
    deps: &Deps,
    tenant: &TenantConfig,
    id: &str,
) -> Result<Dispatch, DependencyError> {
    let Some(msg) = deps.store.get_message(id).await? else {
        warn!(message_id = id, "message to dispatch does not exist");
        return Ok(Dispatch::Missing);
    };
    match msg.state {
        MessageState::Pending | MessageState::Retrying | MessageState::Deferred => {}
        MessageState::Sending => {
            let since = msg
                .updated_at
                .parse::<jiff::Timestamp>()
                .map(|t| deps.now().as_second() - t.as_second());
            if since.is_ok_and(|s| s < STALE_SENDING_SECS) {
                // Look again once that run must have finished, in case it died mid-send.
                let job = Job::SendMessage {
                    tenant: deps.config.tenant.to_string(),
                    message_id: id.to_string(),
                };
                deps.queue
                    .enqueue(&job, deps.config.send_check_delay)
                    .await?;
                return Ok(Dispatch::InFlight);
            }
            // The run that was sending died: Twilio may or may not have it. Check before resending.
            if !deps
                .store
                .take_over_stale_send(id, &msg.updated_at, deps.now())
                .await?
            {
                return Ok(Dispatch::InFlight);
            }
            warn!(message_id = id, purpose = %msg.purpose, outcome = "stale_send", "a send died mid-way; checking Twilio before sending again");
        }
        settled => return Ok(Dispatch::AlreadySettled(settled)),
    }
    let to = PhoneNumber::parse(&msg.to, None).ok();
    let caller = msg.audience == Audience::Caller.as_str();
    if caller && msg.purpose != OPT_OUT_CONFIRMATION {
        let opted_out = match &to {
            Some(p) => deps
                .store
                .get_contact(p)
                .await?
                .is_some_and(|c| c.opted_out),
            None => false,
        };
        if opted_out {
            let outcome = SendOutcome {
                error_detail: Some("recipient opted out".into()),
                ..Default::default()
            };
            deps.store
                .settle_message(id, MessageState::Suppressed, &outcome, deps.now())
                .await?;
            info!(message_id = id, purpose = %msg.purpose, outcome = "suppressed_opted_out", "message not sent");
            return Ok(Dispatch::Suppressed);
        }
    }
    // Quiet hours, in the recipient's zone, checked now rather than when it was queued.
    let when = quiet_until(tenant, &msg, to.as_ref(), deps.now());
    if when > deps.now() {
        let own_time = not_before(&msg).unwrap_or_else(|| deps.now());
        if deps
            .store
            .defer_message(id, when, deps.now(), when > own_time)
            .await?
        {
            let wait = (when.as_second() - deps.now().as_second()).max(0) as u64;
            let job = Job::SendMessage {
                tenant: deps.config.tenant.to_string(),
                message_id: id.to_string(),
            };
            // SQS waits at most 15 minutes; a longer wait gets a one-time schedule (the sweep
            // also sends recent messages when they are due, as a safety net).
            if wait <= MAX_QUEUE_DELAY_SECS {
                deps.queue
                    .enqueue(&job, std::time::Duration::from_secs(wait))
                    .await?;
            } else if let Some(schedules) = &deps.schedules {
                let name = crate::ids::derived_id("wait", &[id]);
                schedules
                    .put(&name, when, &tenant.time_zone(), &job)
                    .await?;
            }
            info!(message_id = id, purpose = %msg.purpose, not_before = %when, outcome = "deferred_quiet_hours", "message waits for the recipient's morning");
        }
        return Ok(Dispatch::Deferred);
    }
    let Some(twilio) = &deps.twilio else {
        let outcome = SendOutcome {
            error_detail: Some("no Twilio credentials: recorded, not sent".into()),
            ..Default::default()
        };
        deps.store
            .settle_message(id, MessageState::Recorded, &outcome, deps.now())
            .await?;
        info!(
            message_id = id,
            purpose = %msg.purpose,
            chars = msg.body.chars().count(),
            outcome = "recorded",
            "message recorded, not sent: no Twilio credentials (see the outbox)"
        );
        return Ok(Dispatch::Recorded);
    };
    // Take the message: from here on, nobody else sends it.
    let Some(msg) = deps.store.begin_send(id, deps.now()).await? else {
        return Ok(Dispatch::InFlight);
    };
    let (last_whatsapp_in, first_name) = match (&to, msg.channel == Channel::WhatsApp.as_str()) {
        (Some(p), true) => {
            let contact = deps.store.get_contact(p).await?;
            (
                deps.store.last_whatsapp_inbound(p).await?,
                contact
                    .and_then(|c| c.name)
                    .map(|n| crate::tools::first_name(&n))
                    .unwrap_or_else(|| "there".into()),
            )
        }
        _ => (None, String::new()),
    };
    let how = send_as(&msg, tenant, last_whatsapp_in, deps.now(), &first_name);
    let whatsapp = how != SendAs::Sms;
    let to_address = if whatsapp {
        format!("whatsapp:{}", msg.to)
    } else {
        msg.to.clone()
    };
    if msg.needs_check {
        match twilio
            .find_recent(&to_address, &recognised_by(&msg, &how))
            .await
        {
            Ok(Some(sid)) => {
                let outcome = SendOutcome {
                    twilio_sid: Some(sid),
                    needs_check: Some(false),
                    ..Default::default()
                };
                deps.store
                    .settle_message(id, MessageState::Sent, &outcome, deps.now())
                    .await?;
                info!(message_id = id, purpose = %msg.purpose, outcome = "found_sent", "message found at Twilio; not sent again");
                return Ok(Dispatch::FoundSent);
            }
            Ok(None) => {}
            Err(e) => return retry_later(deps, &msg, &e, true).await,
        }
    }
    let whatsapp_from = tenant
        .messaging
        .whatsapp_from
        .as_ref()
        .map(|f| format!("whatsapp:{f}"));
    let status_callback = deps
        .config
        .public_base_url
        .as_ref()
        .map(|base| format!("{base}{STATUS_PATH}"));
    let (content_sid, content_variables) = match &how {
        SendAs::WhatsAppTemplate {
            content_sid,
            variables,
        } => (Some(content_sid.as_str()), Some(variables.as_str())),
        _ => (None, None),
    };
    let sms = if whatsapp {
        OutgoingSms {
            to: &to_address,
            from: whatsapp_from.as_deref(),
            messaging_service_sid: tenant
                .messaging
                .messaging_service_sid
                .as_deref()
                .filter(|s| !s.is_empty() && whatsapp_from.is_none()),
            body: &msg.body,
            content_sid,
            content_variables,
            status_callback: status_callback.as_deref(),
        }
    } else {
        OutgoingSms {
            to: &to_address,
            from: tenant.messaging.sms_from.as_ref().map(PhoneNumber::as_str),
            messaging_service_sid: tenant
                .messaging
                .messaging_service_sid
                .as_deref()
                .filter(|s| !s.is_empty()),
            body: &msg.body,
            content_sid: None,
            content_variables: None,
            status_callback: status_callback.as_deref(),
        }
    };
    match twilio.send_sms(&sms).await {
        Ok(sent) => {
            if let Some(sid) = &sent.sid {
                // Before settling: a status callback may come at once and must find us.
                deps.store.remember_twilio_sid(sid, id).await?;
            }
            let outcome = SendOutcome {
                twilio_sid: sent.sid.clone(),
                needs_check: Some(false),
                ..Default::default()
            };
            deps.store
                .settle_message(id, MessageState::Sent, &outcome, deps.now())
                .await?;
            if let (true, true, Some(p)) = (caller, msg.scheduled, &to) {
                // A timed message joins the thread when it goes, not when it was planned.
                let entry = ThreadEntry {
                    at: deps.now().to_string(),
                    direction: Direction::Out,
                    channel: msg.channel.clone(),
                    body: msg.body.clone(),
                    ref_id: msg.message_id.clone(),
                };
                deps.store.add_to_thread(p, &entry).await?;
            }
            info!(message_id = id, purpose = %msg.purpose, twilio_sid = sent.sid.as_deref().unwrap_or("-"), attempts = msg.attempts, outcome = "sent", "message sent");
            metrics::count("MessagesSent", 1, deps.config.tenant.as_str());
            Ok(Dispatch::Sent)
        }
        Err(e) if e.code() == Some(OUTSIDE_WHATSAPP_WINDOW) && how == SendAs::WhatsAppText => {
            // Twilio knows the window better than we do: go again as the template (or SMS).
            deps.store
                .resend_after_failure(id, true, None, deps.now())
                .await?;
            warn!(message_id = id, purpose = %msg.purpose, outcome = "outside_window", "WhatsApp window closed; sending the template instead");
            queue_send(deps, id).await?;
            Ok(Dispatch::RetryQueued)
        }
        Err(e) if e.retry() == Retry::Never => {
            // Record the opt-out before settling: if this fails, the retry still sees it due.
            if e.code() == Some(OPTED_OUT) && caller {
                if let Some(p) = &to {
                    let change =
                        ConsentChange::opt_out(&msg.channel, "twilio_21610", id, deps.now());
                    record_opt_out(deps, p, &change).await?;
                }
            }
            fail(deps, &msg, &e).await
        }
        Err(e) => {
            let check = e.retry() == Retry::CheckFirst;
            retry_later(deps, &msg, &e, check).await
        }
    }
}

/// How the message would look in Twilio's list if an earlier attempt reached it.
fn recognised_by<'a>(msg: &'a OutboundMessage, how: &'a SendAs) -> OurMessage<'a> {
    let SendAs::WhatsAppTemplate { variables, .. } = how else {
        return OurMessage::Text(&msg.body);
    };
    let variables: Vec<String> = Some(variables.as_str())
        .and_then(|v| serde_json::from_str::<std::collections::BTreeMap<String, String>>(v).ok())
        .map(|vars| vars.into_values().collect())
        .unwrap_or_default();
    // A minute's slack for the clocks of Twilio and this function.
    let not_before = msg
        .created_at
        .parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| t.checked_sub(jiff::SignedDuration::from_mins(1)).ok())
        .unwrap_or(jiff::Timestamp::MIN);
    OurMessage::Template {
        variables,
        not_before,
    }
}

/// Queues another attempt with back-off, or gives up after the last one.
async fn retry_later(
    deps: &Deps,
    msg: &OutboundMessage,
    e: &TwilioError,
    check_first: bool,
) -> Result<Dispatch, DependencyError> {
    if msg.attempts >= deps.config.max_send_attempts {
        return fail(deps, msg, e).await;
    }
    let outcome = SendOutcome {
        error_code: e.code().map(|c| c.to_string()),
        error_detail: Some(e.detail()),
        needs_check: Some(check_first || msg.needs_check),
        ..Default::default()
    };
    deps.store
        .settle_message(
            &msg.message_id,
            MessageState::Retrying,
            &outcome,
            deps.now(),
        )
        .await?;
    let delay = deps.config.backoff(msg.attempts);
    let job = Job::SendMessage {
        tenant: deps.config.tenant.to_string(),
        message_id: msg.message_id.clone(),
    };
    deps.queue.enqueue(&job, delay).await?;
    warn!(message_id = %msg.message_id, purpose = %msg.purpose, code = ?e.code(), attempts = msg.attempts, check_first, retry_in_secs = delay.as_secs(), outcome = "retry_queued", "message send failed; retry queued");
    Ok(Dispatch::RetryQueued)
}

/// Settles a message as failed, counted in the `MessagesFailed` metric (which has an alarm).
async fn fail(
    deps: &Deps,
    msg: &OutboundMessage,
    e: &TwilioError,
) -> Result<Dispatch, DependencyError> {
    let outcome = SendOutcome {
        error_code: e.code().map(|c| c.to_string()),
        error_detail: Some(e.detail()),
        ..Default::default()
    };
    deps.store
        .settle_message(&msg.message_id, MessageState::Failed, &outcome, deps.now())
        .await?;
    metrics::count("MessagesFailed", 1, deps.config.tenant.as_str());
    error!(message_id = %msg.message_id, purpose = %msg.purpose, code = ?e.code(), attempts = msg.attempts, outcome = "failed", "message failed permanently");
    Ok(Dispatch::Failed)
}
