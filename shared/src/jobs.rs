//! Work carried by the retry queue. Every job is idempotent: running one twice changes nothing.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// Process (again) a webhook whose verified raw body is in S3.
    ProcessWebhook {
        tenant: String,
        conversation_id: String,
        event_type: String,
    },
    /// Try (again) to send an outbox message.
    SendMessage { tenant: String, message_id: String },
    /// Fetch a call's audio from the ElevenLabs API if no audio webhook stored it.
    FetchAudio {
        tenant: String,
        conversation_id: String,
    },
    /// Handle an inbound text whose webhook could not finish inline (its verified parameters).
    ReceiveText {
        tenant: String,
        params: Vec<(String, String)>,
    },
    /// Answer a person's text with the receptionist (the LLM), or the fallback after the last
    /// attempt.
    AnswerText {
        tenant: String,
        message_sid: String,
        phone: String,
        /// `sms` or `whatsapp`: answered where they wrote.
        channel: String,
        #[serde(default)]
        lead_id: Option<String>,
        attempt: u32,
    },
    /// A delivery status callback that came before its send was recorded, looked at again.
    ApplyStatus {
        tenant: String,
        params: Vec<(String, String)>,
        attempt: u32,
    },
    /// Write and schedule a quoted lead's follow-ups.
    PlanQuoteFollowUps {
        tenant: String,
        lead_id: String,
        attempt: u32,
    },
    /// A website enquiry whose webhook could not finish inline.
    ReceiveWebForm {
        tenant: String,
        body: String,
        content_type: String,
    },
}

impl Job {
    pub fn name(&self) -> &'static str {
        match self {
            Self::ProcessWebhook { .. } => "process_webhook",
            Self::SendMessage { .. } => "send_message",
            Self::FetchAudio { .. } => "fetch_audio",
            Self::ReceiveText { .. } => "receive_text",
            Self::AnswerText { .. } => "answer_text",
            Self::ReceiveWebForm { .. } => "receive_web_form",
            Self::ApplyStatus { .. } => "apply_status",
            Self::PlanQuoteFollowUps { .. } => "plan_quote_follow_ups",
        }
    }

    pub fn tenant(&self) -> &str {
        match self {
            Self::ProcessWebhook { tenant, .. }
            | Self::SendMessage { tenant, .. }
            | Self::FetchAudio { tenant, .. }
            | Self::ReceiveText { tenant, .. }
            | Self::AnswerText { tenant, .. }
            | Self::ReceiveWebForm { tenant, .. }
            | Self::ApplyStatus { tenant, .. }
            | Self::PlanQuoteFollowUps { tenant, .. } => tenant,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_as_tagged_json() {
        let job = Job::SendMessage {
            tenant: "demo".into(),
            message_id: "m1".into(),
        };
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(
            text,
            r#"{"job":"send_message","tenant":"demo","message_id":"m1"}"#
        );
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
    }
}
