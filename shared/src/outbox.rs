//! Every outbound text goes through here: created once under an id derived from what it is
//! about, then dispatched. Dispatch checks consent, takes the message (so only one worker sends
//! it), calls Twilio, and records the outcome. Transient failures are re-queued with back-off;
//! permanent ones are recorded, and an unsubscribed recipient is marked opted out.

use tracing::{error, info, warn};

use crate::deps::Deps;
use crate::error::DependencyError;
use crate::jobs::Job;
use crate::phone::PhoneNumber;
use crate::store::messages::{MessageState, OutboundMessage, SendOutcome};
use crate::tenant::TenantConfig;
use crate::twilio::{OutgoingSms, Retry, OPTED_OUT};

/// Twilio's limit for one message body.
const MAX_BODY_CHARS: usize = 1600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The person who called or wrote: consent rules apply.
    Caller,
    /// The business owner or staff: operational alerts.
    Owner,
}

impl Audience {
    fn as_str(self) -> &'static str {
        match self {
            Self::Caller => "caller",
            Self::Owner => "owner",
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

/// Records the message unless it exists. Returns its id either way.
pub async fn create(deps: &Deps, msg: NewMessage) -> Result<String, DependencyError> {
    let now = deps.now().to_string();
    let body: String = msg.body.chars().take(MAX_BODY_CHARS).collect();
    let item = OutboundMessage {
        message_id: msg.id.clone(),
        tenant: deps.config.tenant.to_string(),
        purpose: msg.purpose.to_string(),
        audience: msg.audience.as_str().to_string(),
        channel: "sms".into(),
        to: msg.to.to_string(),
        body,
        state: MessageState::Pending,
        attempts: 0,
        conversation_id: msg.conversation_id,
        lead_id: msg.lead_id,
        twilio_sid: None,
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
    Recorded,
    Suppressed,
    RetryQueued,
    Failed,
    /// Nothing to do: already settled or being sent by someone else.
    AlreadySettled(MessageState),
    Missing,
}

/// Sends a message now if it is still due. Safe to call any number of times.
pub async fn dispatch(
    deps: &Deps,
    tenant: &TenantConfig,
    id: &str,
) -> Result<Dispatch, DependencyError> {
    let Some(msg) = deps.store.get_message(id).await? else {
        warn!(message_id = id, "message to dispatch does not exist");
        return Ok(Dispatch::Missing);
    };
    if !matches!(msg.state, MessageState::Pending | MessageState::Retrying) {
        return Ok(Dispatch::AlreadySettled(msg.state));
    }
    let to = PhoneNumber::parse(&msg.to, None).ok();
    if msg.audience == Audience::Caller.as_str() {
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
        return Ok(Dispatch::AlreadySettled(MessageState::Sending));
    };
    let sms = OutgoingSms {
        to: &msg.to,
        from: tenant.messaging.sms_from.as_ref().map(PhoneNumber::as_str),
        messaging_service_sid: tenant
            .messaging
            .messaging_service_sid
            .as_deref()
            .filter(|s| !s.is_empty()),
        body: &msg.body,
    };
    match twilio.send_sms(&sms).await {
        Ok(sent) => {
            let outcome = SendOutcome {
                twilio_sid: Some(sent.sid.clone()),
                ..Default::default()
            };
            deps.store
                .settle_message(id, MessageState::Sent, &outcome, deps.now())
                .await?;
            info!(message_id = id, purpose = %msg.purpose, twilio_sid = %sent.sid, attempts = msg.attempts, outcome = "sent", "message sent");
            Ok(Dispatch::Sent)
        }
        Err(e) => {
            let outcome = SendOutcome {
                error_code: e.code().map(|c| c.to_string()),
                error_detail: Some(e.detail()),
                ..Default::default()
            };
            let give_up =
                e.retry() == Retry::Never || msg.attempts >= deps.config.max_send_attempts;
            if give_up {
                deps.store
                    .settle_message(id, MessageState::Failed, &outcome, deps.now())
                    .await?;
                if e.code() == Some(OPTED_OUT) {
                    if let Some(p) = &to {
                        deps.store
                            .mark_opted_out(p, "twilio_21610", deps.now())
                            .await?;
                    }
                }
                error!(message_id = id, purpose = %msg.purpose, code = ?e.code(), attempts = msg.attempts, outcome = "failed", "message failed permanently");
                return Ok(Dispatch::Failed);
            }
            deps.store
                .settle_message(id, MessageState::Retrying, &outcome, deps.now())
                .await?;
            let delay = deps.config.backoff(msg.attempts);
            let job = Job::SendMessage {
                tenant: deps.config.tenant.to_string(),
                message_id: id.to_string(),
            };
            deps.queue.enqueue(&job, delay).await?;
            warn!(message_id = id, purpose = %msg.purpose, code = ?e.code(), attempts = msg.attempts, retry_in_secs = delay.as_secs(), outcome = "retry_queued", "message send failed; retry queued");
            Ok(Dispatch::RetryQueued)
        }
    }
}
