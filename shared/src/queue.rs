//! SQS adapter: the retry queue (with a dead-letter queue behind it, see template.yaml).

use std::time::Duration;

use aws_sdk_sqs::Client;

use crate::error::DependencyError;
use crate::jobs::Job;

#[derive(Clone, Debug)]
pub struct Queue {
    client: Client,
    url: String,
}

impl Queue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Queues a job, visible after `delay` (SQS allows at most 15 minutes).
    pub async fn enqueue(&self, job: &Job, delay: Duration) -> Result<(), DependencyError> {
        let body = serde_json::to_string(job)
            .map_err(|e| DependencyError::new("sqs", "SendMessage", "Encode", e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay.as_secs().min(900) as i32)
            .send()
            .await
            .map_err(|e| DependencyError::aws("sqs", "SendMessage", &e))?;
        Ok(())
    }

    /// Hides a received message for `delay` before it is delivered again (back-off).
    pub async fn retry_after(
        &self,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<(), DependencyError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(delay.as_secs().min(43_200) as i32)
            .send()
            .await
            .map_err(|e| DependencyError::aws("sqs", "ChangeMessageVisibility", &e))?;
        Ok(())
    }
}
