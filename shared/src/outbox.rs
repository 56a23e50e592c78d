//! Every outbound text goes through here: created once under an id derived from what it is
//! about, then dispatched. Dispatch checks consent, takes the message (so only one worker sends
//! it), calls Twilio, and records the outcome. Transient failures are re-queued with back-off;
//! permanent ones are recorded, and an unsubscribed recipient is marked opted out.

use tracing::{error, info, warn};

use crate::deps::Deps;
use crate::error::DependencyError;
use crate::jobs::Job;
use crate::metrics;
use crate::phone::PhoneNumber;
use crate::store::messages::{MessageState, OutboundMessage, SendOutcome};
use crate::tenant::TenantConfig;
use crate::twilio::{OurMessage, OutgoingSms, Retry, TwilioError, OPTED_OUT};

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
    fn as_str(self) -> &'static str {
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
    create_on(deps, msg, None).await
}

/// Records a WhatsApp template message unless it exists (`body` is kept as its readable text).
pub async fn create_whatsapp(
    deps: &Deps,
    msg: NewMessage,
    template: WhatsAppTemplate,
) -> Result<String, DependencyError> {
    create_on(deps, msg, Some(template)).await
}

async fn create_on(
    deps: &Deps,
    msg: NewMessage,
    template: Option<WhatsAppTemplate>,
) -> Result<String, DependencyError> {
    let now = deps.now().to_string();
    let body: String = msg.body.chars().take(MAX_BODY_CHARS).collect();
    let item = OutboundMessage {
        message_id: msg.id.clone(),
        tenant: deps.config.tenant.to_string(),
        purpose: msg.purpose.to_string(),
        audience: msg.audience.as_str().to_string(),
        channel: if template.is_some() {
            "whatsapp"
        } else {
            "sms"
        }
        .into(),
        to: msg.to.to_string(),
        body,
        content_variables: template.as_ref().map(|t| {
            let vars: serde_json::Map<String, serde_json::Value> = t
                .variables
                .iter()
                .enumerate()
                .map(|(i, v)| ((i + 1).to_string(), serde_json::Value::String(v.clone())))
                .collect();
            serde_json::Value::Object(vars).to_string()
        }),
        content_sid: template.map(|t| t.content_sid),
        state: MessageState::Pending,
        attempts: 0,
        conversation_id: msg.conversation_id,
        lead_id: msg.lead_id,
        twilio_sid: None,
        needs_check: false,
        error_code: None,
        error_detail: None,
        created_at: now.clone(),
        updated_at: now,
    };
    deps.store.create_message(&item).await?;
    Ok(msg.id)
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
    /// Nothing to do: already settled.
    AlreadySettled(MessageState),
    Missing,
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
        MessageState::Pending | MessageState::Retrying => {}
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
    if caller {
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
    let whatsapp = msg.channel == "whatsapp";
    let to_address = if whatsapp {
        format!("whatsapp:{}", msg.to)
    } else {
        msg.to.clone()
    };
    if msg.needs_check {
        match twilio.find_recent(&to_address, &recognised_by(&msg)).await {
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
    let sms = if whatsapp {
        OutgoingSms {
            to: &to_address,
            from: whatsapp_from.as_deref(),
            messaging_service_sid: None,
            body: &msg.body,
            content_sid: msg.content_sid.as_deref(),
            content_variables: msg.content_variables.as_deref(),
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
        }
    };
    match twilio.send_sms(&sms).await {
        Ok(sent) => {
            let outcome = SendOutcome {
                twilio_sid: sent.sid.clone(),
                needs_check: Some(false),
                ..Default::default()
            };
            deps.store
                .settle_message(id, MessageState::Sent, &outcome, deps.now())
                .await?;
            info!(message_id = id, purpose = %msg.purpose, twilio_sid = sent.sid.as_deref().unwrap_or("-"), attempts = msg.attempts, outcome = "sent", "message sent");
            metrics::count("MessagesSent", 1, deps.config.tenant.as_str());
            Ok(Dispatch::Sent)
        }
        Err(e) if e.retry() == Retry::Never => {
            // Record the opt-out before settling: if this fails, the retry still sees it due.
            if e.code() == Some(OPTED_OUT) && caller {
                if let Some(p) = &to {
                    deps.store
                        .mark_opted_out(p, "twilio_21610", deps.now())
                        .await?;
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
fn recognised_by(msg: &OutboundMessage) -> OurMessage<'_> {
    if msg.content_sid.is_none() {
        return OurMessage::Text(&msg.body);
    }
    let variables: Vec<String> = msg
        .content_variables
        .as_deref()
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
