//! Twilio's delivery status callbacks: in any order, any number of times. Each moves its
//! message's delivery status forward only. A failure is acted on once: 21610 (they replied
//! STOP) records the opt-out, 63016 (WhatsApp window closed) sends the template instead,
//! transient carrier failures send again with back-off, and anything else stays recorded as
//! failed for the owner's digest.

use tracing::{info, warn};

use super::inbound::{DeliveryStatus, StatusUpdate};
use super::texts::TextError;
use crate::deps::Deps;
use crate::jobs::Job;
use crate::metrics;
use crate::outbox::Audience;
use crate::phone::PhoneNumber;
use crate::store::messages::{MessageState, SendOutcome};
use crate::store::texts::ConsentChange;
use crate::twilio::{OPTED_OUT, OUTSIDE_WHATSAPP_WINDOW};

/// Carrier failures that may pass: queue overflow, handset unreachable, unknown error, missing
/// segment (Twilio's 30001, 30003, 30008, 30009).
const TRANSIENT: &[u32] = &[30001, 30003, 30008, 30009];

pub async fn record(deps: &Deps, update: &StatusUpdate) -> Result<&'static str, TextError> {
    let Some(id) = deps
        .store
        .message_of_twilio_sid(&update.message_sid)
        .await?
    else {
        // Not ours (another app on the account), or its send has not been recorded yet.
        return Ok("unknown_message");
    };
    let status = update.status;
    let Some(msg) = deps
        .store
        .advance_delivery(
            &id,
            status.as_str(),
            status.rank(),
            update.error_code,
            deps.now(),
        )
        .await?
    else {
        return Ok("not_forward");
    };
    if !status.failed() {
        return Ok("status_recorded");
    }
    let code = update.error_code;
    let caller = msg.audience == Audience::Caller.as_str();
    let phone = PhoneNumber::parse(&msg.to, None).ok();
    if code == Some(OPTED_OUT) {
        if let (true, Some(p)) = (caller, &phone) {
            let change = ConsentChange {
                action: "opt_out".into(),
                channel: msg.channel.clone(),
                source: "twilio_21610".into(),
                ref_id: id.clone(),
                at: deps.now().to_string(),
            };
            deps.store.change_consent(p, &change).await?;
            crate::outbox::cancel_pending(deps, p, "recipient opted out").await?;
        }
    }
    if code == Some(OUTSIDE_WHATSAPP_WINDOW) && msg.content_sid.is_none() && !msg.outside_window {
        deps.store
            .resend_after_failure(&id, true, deps.now())
            .await?;
        queue(deps, &id, std::time::Duration::ZERO).await?;
        warn!(message_id = %id, outcome = "outside_window", "WhatsApp window closed; sending the template instead");
        return Ok("template_fallback");
    }
    if code.is_some_and(|c| TRANSIENT.contains(&c)) && msg.attempts < deps.config.max_send_attempts
    {
        deps.store
            .resend_after_failure(&id, false, deps.now())
            .await?;
        queue(deps, &id, deps.config.backoff(msg.attempts)).await?;
        warn!(message_id = %id, code, attempts = msg.attempts, outcome = "resend_queued", "carrier failure; sending again later");
        return Ok("resend_queued");
    }
    let outcome = SendOutcome {
        error_code: code.map(|c| c.to_string()),
        error_detail: Some(format!("Twilio reported {}", status.as_str())),
        ..Default::default()
    };
    deps.store
        .settle_message(&id, MessageState::Failed, &outcome, deps.now())
        .await?;
    metrics::count("MessagesFailed", 1, deps.config.tenant.as_str());
    info!(message_id = %id, code, outcome = "delivery_failed", "message not delivered; recorded for the owner's digest");
    Ok(if status == DeliveryStatus::Undelivered {
        "undelivered"
    } else {
        "failed"
    })
}

async fn queue(deps: &Deps, id: &str, delay: std::time::Duration) -> Result<(), TextError> {
    let job = Job::SendMessage {
        tenant: deps.config.tenant.to_string(),
        message_id: id.to_string(),
    };
    Ok(deps.queue.enqueue(&job, delay).await?)
}
