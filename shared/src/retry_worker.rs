//! The retry queue's consumer (SQS → Lambda with partial batch failures). Each record is one
//! [`Job`]; jobs run concurrently and only the failed ones are reported, so a bad record never
//! re-runs the good ones. A failed record is hidden for a back-off delay, and after the queue's
//! `maxReceiveCount` it moves to the dead-letter queue (which raises an alarm).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::{error, info, warn};

use crate::deps::Deps;
use crate::ids::ConversationId;
use crate::jobs::Job;
use crate::messaging::{self, inbound::Channel};
use crate::outbox;
use crate::phone::PhoneNumber;
use crate::post_call;

#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("not a job: {0}")]
    Unreadable(String),
    #[error("job for tenant {0}, this stack serves another")]
    WrongTenant(String),
    #[error("bad conversation id")]
    BadId,
    #[error(transparent)]
    Process(#[from] post_call::ProcessError),
    #[error(transparent)]
    Dependency(#[from] crate::error::DependencyError),
    #[error(transparent)]
    Tenant(#[from] crate::deps::TenantError),
    #[error(transparent)]
    Text(#[from] crate::messaging::texts::TextError),
    #[error("a queued text or form no longer reads: {0}")]
    BadInput(String),
}

pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let runs = event.records.iter().map(|record| async move {
        let started = std::time::Instant::now();
        let result = run(deps, record).await;
        (record, result, started.elapsed())
    });
    let mut response = SqsBatchResponse::default();
    for (record, result, elapsed) in futures::future::join_all(runs).await {
        let message_id = record.message_id.clone().unwrap_or_default();
        let latency_ms = elapsed.as_millis() as u64;
        match result {
            Ok((job, outcome)) => {
                info!(sqs_message_id = %message_id, job, outcome, latency_ms, "job done")
            }
            Err(e) => {
                let receives: u32 = record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                if matches!(
                    e,
                    JobError::Process(post_call::ProcessError::Busy)
                        | JobError::Text(crate::messaging::texts::TextError::Busy)
                ) {
                    info!(sqs_message_id = %message_id, receives, latency_ms, outcome = "busy", "job deferred: another worker holds it");
                } else {
                    error!(sqs_message_id = %message_id, receives, latency_ms, error = %e, outcome = "failed", "job failed; it will be retried");
                }
                // Back off before the next delivery instead of the queue's fixed visibility timeout.
                if let Some(receipt) = &record.receipt_handle {
                    if let Err(e) = deps
                        .queue
                        .retry_after(receipt, deps.config.backoff(receives))
                        .await
                    {
                        warn!(sqs_message_id = %message_id, error = %e, "could not set the retry delay");
                    }
                }
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message_id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}

async fn run(deps: &Deps, record: &SqsMessage) -> Result<(&'static str, String), JobError> {
    let body = record.body.as_deref().unwrap_or_default();
    let job: Job = serde_json::from_str(body).map_err(|e| JobError::Unreadable(e.to_string()))?;
    if job.tenant() != deps.config.tenant.as_str() {
        return Err(JobError::WrongTenant(job.tenant().to_string()));
    }
    let outcome = match &job {
        Job::ProcessWebhook {
            conversation_id,
            event_type,
            ..
        } => {
            let conv = ConversationId::parse(conversation_id).map_err(|_| JobError::BadId)?;
            format!(
                "{:?}",
                post_call::process_stored(deps, &conv, event_type).await?
            )
        }
        Job::SendMessage { message_id, .. } => {
            let tenant = deps.tenant().await?;
            format!("{:?}", outbox::dispatch(deps, &tenant, message_id).await?)
        }
        Job::FetchAudio {
            conversation_id, ..
        } => {
            let conv = ConversationId::parse(conversation_id).map_err(|_| JobError::BadId)?;
            post_call::fetch_audio(deps, &conv).await?.to_string()
        }
        Job::ReceiveText { params, .. } => {
            let tenant = deps.tenant().await?;
            let text = messaging::inbound::parse_inbound(params, &tenant.business.country)
                .map_err(|e| JobError::BadInput(format!("{}: {}", e.field, e.message)))?;
            messaging::texts::receive(deps, &text).await?.to_string()
        }
        Job::AnswerText {
            message_sid,
            phone,
            channel,
            lead_id,
            attempt,
            ..
        } => {
            let job = messaging::conversation::ToAnswer {
                message_sid: message_sid.clone(),
                phone: PhoneNumber::parse(phone, None)
                    .map_err(|e| JobError::BadInput(e.to_string()))?,
                channel: if channel == "whatsapp" {
                    Channel::WhatsApp
                } else {
                    Channel::Sms
                },
                lead_id: lead_id.clone(),
                attempt: *attempt,
            };
            messaging::conversation::answer(deps, &job)
                .await?
                .to_string()
        }
        Job::ApplyStatus {
            params, attempt, ..
        } => {
            let update = messaging::inbound::parse_status(params)
                .map_err(|e| JobError::BadInput(format!("{}: {}", e.field, e.message)))?;
            messaging::status::record(deps, &update, params, *attempt)
                .await?
                .to_string()
        }
        Job::ReceiveWebForm {
            body, content_type, ..
        } => {
            let tenant = deps.tenant().await?;
            let form =
                messaging::web_form::parse(body.as_bytes(), content_type, &tenant.business.country)
                    .map_err(|e| JobError::BadInput(format!("{}: {}", e.field, e.message)))?;
            messaging::web_form::receive(deps, &form).await?
        }
        Job::PlanQuoteFollowUps {
            lead_id, attempt, ..
        } => {
            let lead = crate::ids::LeadId::parse(lead_id)
                .map_err(|e| JobError::BadInput(format!("lead_id: {e}")))?;
            crate::quotes::plan(deps, &lead, *attempt)
                .await?
                .to_string()
        }
    };
    Ok((job.name(), outcome))
}
