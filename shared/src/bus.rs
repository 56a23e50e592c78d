//! EventBridge adapter: domain events (`call.completed`, `lead.created`, `lead.hot`, ...) on the
//! stack's bus, for later issues' rules and for anyone who subscribes.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

use crate::error::DependencyError;

pub const SOURCE: &str = "frontdesk";

#[derive(Clone, Debug)]
pub struct Bus {
    client: Client,
    name: String,
}

impl Bus {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Publishes one event. `detail` carries an `event_id` so consumers can drop duplicates.
    pub async fn publish(
        &self,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> Result<(), DependencyError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.name)
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| DependencyError::aws("eventbridge", "PutEvents", &e))?;
        if out.failed_entry_count > 0 {
            let code = out
                .entries()
                .iter()
                .find_map(|e| e.error_code())
                .unwrap_or("FailedEntry")
                .to_string();
            let message = out
                .entries()
                .iter()
                .find_map(|e| e.error_message())
                .unwrap_or("")
                .to_string();
            return Err(DependencyError::new(
                "eventbridge",
                "PutEvents",
                &code,
                message,
            ));
        }
        Ok(())
    }
}
