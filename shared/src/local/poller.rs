//! Stands in for Lambda's SQS event source locally: receives batches from the retry queue,
//! hands them to the retry worker, deletes what succeeded and leaves failures to reappear.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageSystemAttributeName;

use crate::deps::Deps;
use crate::error::DependencyError;
use crate::retry_worker;

/// Receives one batch (waiting up to `wait`) and runs it. Returns how many messages it got.
pub async fn poll_once(deps: &Deps, wait: Duration) -> Result<usize, DependencyError> {
    let client = deps.queue.client();
    let out = client
        .receive_message()
        .queue_url(deps.queue.url())
        .max_number_of_messages(10)
        .wait_time_seconds(wait.as_secs() as i32)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .map_err(|e| DependencyError::aws("sqs", "ReceiveMessage", &e))?;
    let messages = out.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(0);
    }
    let mut event = SqsEvent::default();
    for m in &messages {
        let mut record = SqsMessage::default();
        record.message_id = m.message_id.clone();
        record.receipt_handle = m.receipt_handle.clone();
        record.body = m.body.clone();
        for (k, v) in m.attributes.clone().unwrap_or_default() {
            record.attributes.insert(k.as_str().to_string(), v);
        }
        record.event_source = Some("aws:sqs".into());
        event.records.push(record);
    }
    let response = retry_worker::handle(deps, event).await;
    for m in &messages {
        let failed = response
            .batch_item_failures
            .iter()
            .any(|f| Some(&f.item_identifier) == m.message_id.as_ref());
        if !failed {
            if let Some(receipt) = &m.receipt_handle {
                client
                    .delete_message()
                    .queue_url(deps.queue.url())
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(|e| DependencyError::aws("sqs", "DeleteMessage", &e))?;
            }
        }
    }
    Ok(messages.len())
}

/// Runs the queue until the process ends.
pub async fn run_forever(deps: &Deps) {
    loop {
        if let Err(e) = poll_once(deps, Duration::from_secs(1)).await {
            tracing::warn!(error = %e, "local queue poll failed");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}
