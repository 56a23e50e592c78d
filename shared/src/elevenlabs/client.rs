//! A thin ElevenLabs REST client (`xi-api-key` auth): the calls the post-call pipeline needs.

use std::time::Duration;

use crate::ids::ConversationId;

#[derive(Clone)]
pub struct ElevenLabsClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
}

impl std::fmt::Debug for ElevenLabsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElevenLabsClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ElevenLabsError {
    #[error("ElevenLabs has no such conversation or audio")]
    NotFound,
    #[error("ElevenLabs answered HTTP {0}")]
    Status(u16),
    #[error("ElevenLabs could not be reached: {0}")]
    Unreachable(String),
    #[error("ElevenLabs answered with a body we cannot read")]
    BadBody,
}

/// A page of `GET /v1/convai/conversations`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ConversationPage {
    #[serde(default)]
    pub conversations: Vec<ConversationSummary>,
    #[serde(default)]
    pub next_cursor: Option<String>,
    #[serde(default)]
    pub has_more: bool,
}

/// What the list says of one conversation (fields we use; ElevenLabs sends more).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ConversationSummary {
    pub conversation_id: String,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub start_time_unix_secs: Option<i64>,
    #[serde(default)]
    pub call_duration_secs: Option<i64>,
    /// `initiated`, `in-progress`, `processing`, `done` or `failed`.
    #[serde(default)]
    pub status: String,
}

impl ElevenLabsClient {
    pub fn new(base_url: &str, api_key: &str) -> Result<Self, ElevenLabsError> {
        let http = crate::https::client_builder()
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| ElevenLabsError::Unreachable(e.to_string()))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key: api_key.to_string(),
        })
    }

    /// `GET /v1/convai/conversations/{id}/audio`: the call's MP3.
    pub async fn conversation_audio(
        &self,
        id: &ConversationId,
    ) -> Result<Vec<u8>, ElevenLabsError> {
        // A long call's MP3 is tens of megabytes.
        self.get_bytes(
            &format!("/v1/convai/conversations/{id}/audio"),
            Duration::from_secs(120),
        )
        .await
    }

    /// `GET /v1/convai/conversations/{id}`: the same shape as the transcription webhook's `data`.
    pub async fn conversation(&self, id: &ConversationId) -> Result<Vec<u8>, ElevenLabsError> {
        self.get_bytes(
            &format!("/v1/convai/conversations/{id}"),
            Duration::from_secs(20),
        )
        .await
    }

    /// `GET /v1/convai/conversations`: one page of the workspace's conversations that started
    /// after `after` (newest first), optionally of one agent.
    pub async fn list_conversations(
        &self,
        after: jiff::Timestamp,
        agent_id: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<ConversationPage, ElevenLabsError> {
        let mut query = vec![
            ("call_start_after_unix", after.as_second().to_string()),
            ("page_size", "100".to_string()),
            ("summary_mode", "exclude".to_string()),
        ];
        if let Some(agent) = agent_id {
            query.push(("agent_id", agent.to_string()));
        }
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_string()));
        }
        let path = format!(
            "/v1/convai/conversations?{}",
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&query)
                .finish()
        );
        let body = self.get_bytes(&path, Duration::from_secs(20)).await?;
        serde_json::from_slice(&body).map_err(|_| ElevenLabsError::BadBody)
    }

    async fn get_bytes(&self, path: &str, timeout: Duration) -> Result<Vec<u8>, ElevenLabsError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base_url))
            .timeout(timeout)
            .header("xi-api-key", &self.api_key)
            .send()
            .await
            .map_err(|e| {
                ElevenLabsError::Unreachable(if e.is_timeout() {
                    "timed out".into()
                } else {
                    "connection failed".into()
                })
            })?;
        match response.status().as_u16() {
            200..=299 => Ok(response
                .bytes()
                .await
                .map_err(|_| ElevenLabsError::Unreachable("body interrupted".into()))?
                .to_vec()),
            404 => Err(ElevenLabsError::NotFound),
            s => Err(ElevenLabsError::Status(s)),
        }
    }
}
