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
}

impl ElevenLabsClient {
    pub fn new(base_url: &str, api_key: &str) -> Result<Self, ElevenLabsError> {
        let http = reqwest::Client::builder()
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
