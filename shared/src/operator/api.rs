//! The ElevenLabs management API the operator's commands use (`xi-api-key`): tools, agents,
//! workspace settings and agent tests. JSON in and out: ElevenLabs adds fields freely, and we
//! only ever read the ones we set.

use std::time::Duration;

use serde_json::{json, Value};

#[derive(Clone)]
pub struct ManagementApi {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("ElevenLabs {method} {path} answered HTTP {status}: {detail}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        detail: String,
    },
    #[error("ElevenLabs {method} {path} failed: {detail}")]
    Transport {
        method: &'static str,
        path: String,
        detail: String,
    },
}

impl ManagementApi {
    pub fn new(base_url: &str, api_key: &str) -> Self {
        Self {
            http: crate::https::client_builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
                .build()
                .expect("an HTTP client"),
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key: api_key.to_string(),
        }
    }

    async fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let url = format!("{}{path}", self.base_url);
        let request = match method {
            "GET" => self.http.get(&url),
            "POST" => self.http.post(&url),
            "PATCH" => self.http.patch(&url),
            "PUT" => self.http.put(&url),
            _ => self.http.delete(&url),
        }
        .header("xi-api-key", &self.api_key);
        let request = match body {
            Some(b) => request.json(b),
            None => request,
        };
        let transport = |detail: String| ApiError::Transport {
            method,
            path: path.to_string(),
            detail,
        };
        let response = request.send().await.map_err(|e| transport(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| transport(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(ApiError::Status {
                method,
                path: path.to_string(),
                status,
                detail: text.chars().take(300).collect(),
            });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| transport(format!("unreadable JSON: {e}")))
    }

    /// Every page of a cursor-paged list (`field`: the list's name in each page).
    async fn all_pages(&self, path: &str, field: &str) -> Result<Vec<Value>, ApiError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let sep = if path.contains('?') { '&' } else { '?' };
        for _ in 0..100 {
            let page_path = match &cursor {
                Some(c) => format!("{path}{sep}page_size=100&cursor={}", encode(c)),
                None => format!("{path}{sep}page_size=100"),
            };
            let page = self.call("GET", &page_path, None).await?;
            items.extend(page[field].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) if page["has_more"] == true && !next.is_empty() => {
                    cursor = Some(next.to_string())
                }
                _ => break,
            }
        }
        Ok(items)
    }

    pub async fn list_tools(&self) -> Result<Vec<Value>, ApiError> {
        self.all_pages("/v1/convai/tools", "tools").await
    }

    pub async fn create_tool(&self, tool: &Value) -> Result<Value, ApiError> {
        self.call("POST", "/v1/convai/tools", Some(tool)).await
    }

    /// Sends the whole definition: the tools API replaces it.
    pub async fn update_tool(&self, id: &str, tool: &Value) -> Result<Value, ApiError> {
        self.call(
            "PATCH",
            &format!("/v1/convai/tools/{}", encode(id)),
            Some(tool),
        )
        .await
    }

    pub async fn get_agent(&self, id: &str) -> Result<Value, ApiError> {
        self.call("GET", &format!("/v1/convai/agents/{}", encode(id)), None)
            .await
    }

    pub async fn create_agent(&self, agent: &Value) -> Result<String, ApiError> {
        let created = self
            .call("POST", "/v1/convai/agents/create", Some(agent))
            .await?;
        created["agent_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ApiError::Transport {
                method: "POST",
                path: "/v1/convai/agents/create".into(),
                detail: "no agent_id in the answer".into(),
            })
    }

    pub async fn update_agent(&self, id: &str, agent: &Value) -> Result<Value, ApiError> {
        self.call(
            "PATCH",
            &format!("/v1/convai/agents/{}", encode(id)),
            Some(agent),
        )
        .await
    }

    /// The workspace's agent settings (the conversation-initiation webhook lives there).
    pub async fn get_settings(&self) -> Result<Value, ApiError> {
        self.call("GET", "/v1/convai/settings", None).await
    }

    pub async fn update_settings(&self, settings: &Value) -> Result<Value, ApiError> {
        self.call("PATCH", "/v1/convai/settings", Some(settings))
            .await
    }

    /// Tests whose name contains `search`.
    pub async fn list_tests(&self, search: &str) -> Result<Vec<Value>, ApiError> {
        self.all_pages(
            &format!("/v1/convai/agent-testing?search={}", encode(search)),
            "tests",
        )
        .await
    }

    pub async fn create_test(&self, test: &Value) -> Result<String, ApiError> {
        let created = self
            .call("POST", "/v1/convai/agent-testing/create", Some(test))
            .await?;
        created["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ApiError::Transport {
                method: "POST",
                path: "/v1/convai/agent-testing/create".into(),
                detail: "no id in the answer".into(),
            })
    }

    /// Replaces the test (same id).
    pub async fn update_test(&self, id: &str, test: &Value) -> Result<Value, ApiError> {
        self.call(
            "PUT",
            &format!("/v1/convai/agent-testing/{}", encode(id)),
            Some(test),
        )
        .await
    }

    /// Runs the tests against the agent with `override_config` in place of its live one.
    pub async fn run_tests(
        &self,
        agent_id: &str,
        test_ids: &[String],
        override_config: &Value,
    ) -> Result<Value, ApiError> {
        let body = json!({
            "tests": test_ids.iter().map(|id| json!({"test_id": id})).collect::<Vec<_>>(),
            "agent_config_override": override_config,
        });
        self.call(
            "POST",
            &format!("/v1/convai/agents/{}/run-tests", encode(agent_id)),
            Some(&body),
        )
        .await
    }

    pub async fn test_invocation(&self, id: &str) -> Result<Value, ApiError> {
        self.call(
            "GET",
            &format!("/v1/convai/test-invocations/{}", encode(id)),
            None,
        )
        .await
    }
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
