//! Call records: one per conversation, written by the transcription and audio events in either
//! order (each sets only its own attributes).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{keys, s, SetClause, Store};
use crate::error::DependencyError;
use crate::ids::ConversationId;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CallRecord {
    pub tenant: String,
    pub conversation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    pub status: CallStatus,
    /// The other party in E.164, when known and valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    pub ended_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
    /// ElevenLabs credits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_credits: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_successful: Option<String>,
    pub data_collection: BTreeMap<String, serde_json::Value>,
    pub evaluation: BTreeMap<String, Evaluation>,
    pub tool_calls: Vec<ToolCallRecord>,
    pub disposition: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urgency: Option<String>,
    pub hot: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub updated_at: String,
    /// When DynamoDB deletes it (epoch seconds; the business's retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// The agent answered; the transcript was processed.
    #[default]
    Completed,
    /// The call never reached the agent (busy, no answer): a missed call.
    InitiationFailed,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolCallRecord {
    pub tool: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub turn: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
}

impl Store {
    /// Writes every attribute of the record (an upsert: the audio attributes stay).
    pub async fn save_call(&self, record: &CallRecord) -> Result<(), DependencyError> {
        let conversation = ConversationId::parse(&record.conversation_id)
            .map_err(|e| super::corrupt("call record", e))?;
        let (pk, sk) = keys::call(self.tenant(), &conversation);
        let super::AttributeMap(item) = super::AttributeMap::of(record)?;
        let mut set = SetClause::default();
        for (name, v) in item {
            set.set(&name, v);
        }
        set.set(keys::GSI1PK, s(keys::calls_index(self.tenant())));
        set.set(
            keys::GSI1SK,
            s(format!("{}#{}", record.ended_at, record.conversation_id)),
        );
        self.apply_set((pk, sk), set).await
    }

    pub async fn set_call_audio(
        &self,
        conversation: &ConversationId,
        audio_key: &str,
        audio_bytes: usize,
        now: jiff::Timestamp,
    ) -> Result<(), DependencyError> {
        let (pk, sk) = keys::call(self.tenant(), conversation);
        let mut set = SetClause::default();
        set.set("audio_key", s(audio_key))
            .set("audio_bytes", super::n(audio_bytes))
            .set("audio_stored_at", s(now.to_string()))
            .set_if_absent("tenant", s(self.tenant().as_str()))
            .set_if_absent("conversation_id", s(conversation.as_str()));
        self.apply_set((pk, sk), set).await
    }

    pub async fn get_call(
        &self,
        conversation: &ConversationId,
    ) -> Result<Option<super::Item>, DependencyError> {
        self.get(keys::call(self.tenant(), conversation), "GetItem")
            .await
    }

    pub async fn call_has_audio(
        &self,
        conversation: &ConversationId,
    ) -> Result<bool, DependencyError> {
        Ok(self
            .get_call(conversation)
            .await?
            .is_some_and(|i| i.contains_key("audio_key")))
    }
}
