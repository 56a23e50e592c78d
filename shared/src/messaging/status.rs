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

/// How often a callback that came while its send was still being recorded is looked at again.
const DEFER_ATTEMPTS: u32 = 5;
const DEFER_DELAY: std::time::Duration = std::time::Duration::from_secs(10);

/// Applies a callback. `attempt` counts how often it was deferred (1 for the webhook itself).
pub async fn record(
    deps: &Deps,
    update: &StatusUpdate,
    params: &[(String, String)],
    attempt: u32,
) -> Result<&'static str, TextError> {
    let Some(id) = deps
        .store
        .message_of_twilio_sid(&update.message_sid)
        .await?
    else {
        // Not ours (another app on the account).
        return Ok("unknown_message");
    };
    let Some(current) = deps.store.get_message(&id).await? else {
        return Ok("unknown_message");
    };
    if current.twilio_sid.as_deref() != Some(update.message_sid.as_str()) {
        if current.state == MessageState::Sending && attempt < DEFER_ATTEMPTS {
            // Twilio answered this send and called back before we recorded its answer: look
            // again once it is recorded.
            let job = Job::ApplyStatus {
                tenant: deps.config.tenant.to_string(),
                params: params.to_vec(),
                attempt: attempt + 1,
            };
            deps.queue.enqueue(&job, DEFER_DELAY).await?;
            return Ok("deferred");
        }
        // An earlier send of a message that was sent again since: its news is old.
        return Ok("earlier_send");
    }
    let status = update.status;
    let Some(msg) = deps
        .store
        .advance_delivery(
            &id,
            &update.message_sid,
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
            let change = ConsentChange::opt_out(&msg.channel, "twilio_21610", &id, deps.now());
            crate::outbox::record_opt_out(deps, p, &change).await?;
        }
    }
    let failed_send = Some(update.message_sid.as_str());
    if code == Some(OUTSIDE_WHATSAPP_WINDOW) && msg.content_sid.is_none() && !msg.outside_window {
        if !deps
            .store
            .resend_after_failure(&id, true, failed_send, deps.now())
            .await?
        {
            return Ok("already_resent");
        }
        queue(deps, &id, std::time::Duration::ZERO).await?;
        warn!(message_id = %id, outcome = "outside_window", "WhatsApp window closed; sending the template instead");
        return Ok("template_fallback");
    }
    if code.is_some_and(|c| TRANSIENT.contains(&c)) && msg.attempts < deps.config.max_send_attempts
    {
        if !deps
            .store
            .resend_after_failure(&id, false, failed_send, deps.now())
            .await?
        {
            return Ok("already_resent");
        }
        queue(deps, &id, deps.config.backoff(msg.attempts)).await?;
        warn!(message_id = %id, code, attempts = msg.attempts, outcome = "resend_queued", "carrier failure; sending again later");
        return Ok("resend_queued");
    }
    let outcome = SendOutcome {
        error_code: code.map(|c| c.to_string()),
        error_detail: Some(format!("Twilio reported {}", status.as_str())),
        ..Default::default()
    };
    if !deps
        .store
        .fail_delivered_send(&id, &update.message_sid, &outcome, deps.now())
        .await?
    {
        return Ok("already_settled");
    }
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
