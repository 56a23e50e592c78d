//! Secrets, read once per cold start: from AWS Secrets Manager when `FRONTDESK_SECRETS_ARN` is
//! set (a JSON object), else from the environment (local runs). Never logged: `Debug` redacts.

use std::fmt;

use serde::Deserialize;

use crate::error::DependencyError;

#[derive(Clone, Default, Deserialize)]
pub struct Secrets {
    #[serde(rename = "ELEVENLABS_WEBHOOK_SECRET", default)]
    pub elevenlabs_webhook_secret: Option<String>,
    #[serde(rename = "ELEVENLABS_API_KEY", default)]
    pub elevenlabs_api_key: Option<String>,
    #[serde(rename = "TWILIO_ACCOUNT_SID", default)]
    pub twilio_account_sid: Option<String>,
    #[serde(rename = "TWILIO_AUTH_TOKEN", default)]
    pub twilio_auth_token: Option<String>,
    /// Sent by the agent's tools in the x-frontdesk-tool-secret header.
    #[serde(rename = "TOOL_SECRET", default)]
    pub tool_secret: Option<String>,
    /// The LLM that answers texts (Anthropic Messages API); unset: texts are acknowledged and
    /// the owner told.
    #[serde(rename = "LLM_API_KEY", default)]
    pub llm_api_key: Option<String>,
    /// The website's enquiry form signs its body with this (HMAC-SHA256)...
    #[serde(rename = "WEB_FORM_SECRET", default)]
    pub web_form_secret: Option<String>,
    /// ...or, for a site that cannot sign, sends this token.
    #[serde(rename = "WEB_FORM_TOKEN", default)]
    pub web_form_token: Option<String>,
}

pub const NAMES: &[&str] = &[
    "ELEVENLABS_WEBHOOK_SECRET",
    "ELEVENLABS_API_KEY",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TOOL_SECRET",
    "LLM_API_KEY",
    "WEB_FORM_SECRET",
    "WEB_FORM_TOKEN",
];

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &Option<String>| if v.is_some() { "set" } else { "unset" };
        f.debug_struct("Secrets")
            .field(
                "elevenlabs_webhook_secret",
                &shown(&self.elevenlabs_webhook_secret),
            )
            .field("elevenlabs_api_key", &shown(&self.elevenlabs_api_key))
            .field("twilio_account_sid", &shown(&self.twilio_account_sid))
            .field("twilio_auth_token", &shown(&self.twilio_auth_token))
            .field("tool_secret", &shown(&self.tool_secret))
            .field("llm_api_key", &shown(&self.llm_api_key))
            .field("web_form_secret", &shown(&self.web_form_secret))
            .field("web_form_token", &shown(&self.web_form_token))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    Dependency(#[from] DependencyError),
    #[error("secret {arn} is not a JSON object of {NAMES:?}: {problem}")]
    Shape { arn: String, problem: String },
}

impl Secrets {
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let read = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        Self {
            elevenlabs_webhook_secret: read("ELEVENLABS_WEBHOOK_SECRET"),
            elevenlabs_api_key: read("ELEVENLABS_API_KEY"),
            twilio_account_sid: read("TWILIO_ACCOUNT_SID"),
            twilio_auth_token: read("TWILIO_AUTH_TOKEN"),
            tool_secret: read("TOOL_SECRET"),
            llm_api_key: read("LLM_API_KEY"),
            web_form_secret: read("WEB_FORM_SECRET"),
            web_form_token: read("WEB_FORM_TOKEN"),
        }
        .normalised()
    }

    pub async fn from_secrets_manager(
        client: &aws_sdk_secretsmanager::Client,
        arn: &str,
    ) -> Result<Self, SecretsError> {
        let out = client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| DependencyError::aws("secretsmanager", "GetSecretValue", &e))?;
        let text = out.secret_string().unwrap_or_default();
        let parsed: Self = serde_json::from_str(text).map_err(|e| SecretsError::Shape {
            arn: arn.to_string(),
            // serde's message names the field; it never echoes the secret's values.
            problem: e.to_string(),
        })?;
        Ok(parsed.normalised())
    }

    fn normalised(mut self) -> Self {
        for v in [
            &mut self.elevenlabs_webhook_secret,
            &mut self.elevenlabs_api_key,
            &mut self.twilio_account_sid,
            &mut self.twilio_auth_token,
            &mut self.tool_secret,
            &mut self.llm_api_key,
            &mut self.web_form_secret,
            &mut self.web_form_token,
        ] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *v = None;
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_values() {
        let s = Secrets::from_lookup(|k| {
            (k == "TWILIO_AUTH_TOKEN").then(|| "tok_very_secret".to_string())
        });
        let shown = format!("{s:?}");
        assert!(!shown.contains("tok_very_secret"));
        assert!(shown.contains("twilio_auth_token: \"set\""));
    }

    #[test]
    fn blank_values_count_as_unset() {
        let s = Secrets::from_lookup(|_| Some("  ".to_string()));
        assert!(s.elevenlabs_webhook_secret.is_none());
    }
}
