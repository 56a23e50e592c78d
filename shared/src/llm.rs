//! A thin client for the LLM that answers texts: the Anthropic Messages API
//! (`POST {base}/v1/messages`, `x-api-key`, `anthropic-version`), with tool use. One request per
//! model turn; the conversation loop and the tools are in [`crate::messaging::conversation`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The API version the request and response shapes below follow.
const API_VERSION: &str = "2023-06-01";

#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    model: String,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// A tool the model may call: its name, what it does, and its input as a JSON Schema.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// One content block of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
    /// Anything newer (thinking, citations...): kept out of what is sent back.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub role: Role,
    pub content: Vec<Block>,
}

impl Turn {
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: vec![Block::Text { text: text.into() }],
        }
    }
}

/// What the model answered.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelReply {
    #[serde(default)]
    pub content: Vec<Block>,
    #[serde(default)]
    pub stop_reason: Option<String>,
}

impl ModelReply {
    /// The text blocks, joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                Block::Text { text } => Some(text.trim()),
                _ => None,
            })
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn tool_uses(&self) -> Vec<(&str, &str, &Value)> {
        self.content
            .iter()
            .filter_map(|b| match b {
                Block::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// Rate limited, overloaded, unavailable, timed out: worth another try later.
    #[error("the LLM is unavailable for now: {0}")]
    Transient(String),
    /// Will fail the same way again (bad key, bad request).
    #[error("the LLM refused the request: {0}")]
    Permanent(String),
}

impl LlmClient {
    pub fn new(base_url: &str, api_key: &str, model: &str) -> Result<Self, LlmError> {
        let http = crate::https::client_builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| LlmError::Permanent(e.to_string()))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key: api_key.to_string(),
            model: model.to_string(),
        })
    }

    /// One model turn.
    pub async fn create(
        &self,
        system: &str,
        messages: &[Turn],
        tools: &[ToolSpec],
        max_tokens: u32,
    ) -> Result<ModelReply, LlmError> {
        let messages: Vec<Turn> = messages
            .iter()
            .map(|t| Turn {
                role: t.role,
                content: t
                    .content
                    .iter()
                    .filter(|b| !matches!(b, Block::Other))
                    .cloned()
                    .collect(),
            })
            .collect();
        let mut body = json!({
            "model": self.model,
            "max_tokens": max_tokens,
            "system": system,
            "messages": messages,
        });
        if !tools.is_empty() {
            body["tools"] = json!(tools);
        }
        let response = self
            .http
            .post(format!("{}/v1/messages", self.base_url))
            .header("x-api-key", &self.api_key)
            .header("anthropic-version", API_VERSION)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                LlmError::Transient(if e.is_timeout() {
                    "timed out".into()
                } else {
                    "connection failed".into()
                })
            })?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|_| LlmError::Transient("connection interrupted".into()))?;
        match status {
            200..=299 => serde_json::from_slice(&bytes)
                .map_err(|e| LlmError::Transient(format!("unreadable answer: {e}"))),
            // 529 is Anthropic's "overloaded".
            408 | 409 | 429 | 500..=599 => Err(LlmError::Transient(format!("HTTP {status}"))),
            _ => Err(LlmError::Permanent(format!(
                "HTTP {status}: {}",
                error_type(&bytes)
            ))),
        }
    }
}

/// The error's type from an error body (`{"type":"error","error":{"type":"...","message":...}}`);
/// never its message, which may quote the request.
fn error_type(bytes: &[u8]) -> String {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| v["error"]["type"].as_str().map(str::to_string))
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_with_text_and_a_tool_call_reads_as_both() {
        let reply: ModelReply = serde_json::from_value(json!({
            "id": "msg_1", "type": "message", "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "check_availability", "input": {"service": "leak repair"}},
                {"type": "thinking", "thinking": "...", "signature": "x"}
            ],
            "stop_reason": "tool_use"
        }))
        .unwrap();
        assert_eq!(reply.text(), "Let me check.");
        assert_eq!(reply.tool_uses()[0].1, "check_availability");
        assert_eq!(reply.content[2], Block::Other);
    }

    #[test]
    fn tool_results_are_written_as_the_api_reads_them() {
        let block = Block::ToolResult {
            tool_use_id: "toolu_1".into(),
            content: "{\"ok\":true}".into(),
            is_error: false,
        };
        assert_eq!(
            serde_json::to_value(&block).unwrap(),
            json!({"type": "tool_result", "tool_use_id": "toolu_1", "content": "{\"ok\":true}"})
        );
    }
}
