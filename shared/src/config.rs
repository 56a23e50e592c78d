//! Process configuration, read once at start from the environment (set by template.yaml on
//! Lambda and by the Makefile locally). Secrets are not here: see [`crate::secrets`].

use std::env;
use std::time::Duration;

use crate::ids::TenantId;

#[derive(Debug, Clone)]
pub struct AppConfig {
    pub tenant: TenantId,
    pub table: String,
    pub bucket: String,
    pub retry_queue_url: String,
    pub event_bus: String,
    /// Where secrets come from in AWS; unset means the environment (local runs).
    pub secrets_arn: Option<String>,
    pub twilio_base_url: String,
    pub elevenlabs_base_url: String,
    /// Largest webhook body accepted (Lambda's synchronous payload limit is 6 MB).
    pub max_body_bytes: usize,
    /// A webhook is queued for a second look this long after intake, in case processing dies.
    pub intake_recheck_delay: Duration,
    /// First back-off step for queued retries; doubles per attempt, capped at SQS's 15 minutes.
    pub retry_base_delay: Duration,
    /// Sends attempted before a message is marked failed.
    pub max_send_attempts: u32,
    /// How long bookkeeping records (inbox, emitted events) are kept before DynamoDB's TTL.
    pub bookkeeping_ttl: Duration,
    /// How long the tenant configuration is cached in memory.
    pub tenant_cache_ttl: Duration,
    /// When a message is found mid-send, look again this much later (by then that send has
    /// either settled or died).
    pub send_check_delay: Duration,
    /// How long a webhook request may spend processing before it answers (the rest is queued).
    pub inline_budget: Duration,
    /// Wait before fetching a call's audio from the ElevenLabs API when no audio webhook came.
    pub audio_fetch_delay: Duration,
    /// The quality scan leaves calls stored less than this long ago to its next run: the index
    /// it reads them through is eventually consistent (moto's is not, so local runs use 0).
    pub scan_settle: Duration,
    /// The token claim that names a QA reviewer's tenant (a Cognito custom attribute by default).
    pub qa_tenant_claim: String,
    /// The URL Twilio is configured to call, up to the path (`https://api.example.com`): what
    /// Twilio signed. Unset: the request's own host, as API Gateway gives it.
    pub public_base_url: Option<String>,
    /// The LLM that answers texts: an Anthropic Messages API endpoint and model.
    pub llm_base_url: String,
    pub llm_model: String,
    /// Attempts at one text reply before the fallback (acknowledge, owner told).
    pub llm_attempts: u32,
    /// How many earlier messages of the person's thread the LLM sees.
    pub text_history: usize,
    /// EventBridge Scheduler: the group timed messages' schedules go in, the queue they send
    /// their job to, and the role the Scheduler sends it with. Unset: no timed messages.
    pub schedule_group: Option<String>,
    pub schedule_target_arn: Option<String>,
    pub scheduler_role_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name}: {problem}")]
pub struct EnvError {
    pub name: &'static str,
    pub problem: String,
}

impl AppConfig {
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_lookup(|k| env::var(k).ok())
    }

    /// Reads from any key-value source, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let required = |name: &'static str| {
            get(name).filter(|v| !v.trim().is_empty()).ok_or(EnvError {
                name,
                problem: "is required".into(),
            })
        };
        let number = |name: &'static str, default: u64| -> Result<u64, EnvError> {
            match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| EnvError {
                    name,
                    problem: format!("{v:?} is not a whole number"),
                }),
            }
        };
        let url = |name: &'static str, default: &str| -> Result<String, EnvError> {
            let v = get(name)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.into());
            if !(v.starts_with("https://") || v.starts_with("http://")) {
                return Err(EnvError {
                    name,
                    problem: format!("{v:?} is not an http(s) URL"),
                });
            }
            Ok(v.trim_end_matches('/').to_string())
        };
        let tenant_raw = required("FRONTDESK_TENANT_ID")?;
        let tenant = TenantId::parse(&tenant_raw).map_err(|e| EnvError {
            name: "FRONTDESK_TENANT_ID",
            problem: e.to_string(),
        })?;
        Ok(Self {
            tenant,
            table: required("FRONTDESK_TABLE")?,
            bucket: required("FRONTDESK_BUCKET")?,
            retry_queue_url: required("FRONTDESK_RETRY_QUEUE_URL")?,
            event_bus: required("FRONTDESK_EVENT_BUS")?,
            secrets_arn: get("FRONTDESK_SECRETS_ARN").filter(|v| !v.trim().is_empty()),
            twilio_base_url: url("TWILIO_API_BASE_URL", "https://api.twilio.com")?,
            elevenlabs_base_url: url("ELEVENLABS_API_BASE_URL", "https://api.elevenlabs.io")?,
            max_body_bytes: number("FRONTDESK_MAX_BODY_BYTES", 6_000_000)? as usize,
            intake_recheck_delay: Duration::from_secs(
                number("FRONTDESK_INTAKE_RECHECK_SECS", 120)?.min(900),
            ),
            retry_base_delay: Duration::from_secs(
                number("FRONTDESK_RETRY_BASE_SECS", 20)?.min(900),
            ),
            max_send_attempts: number("FRONTDESK_MAX_SEND_ATTEMPTS", 12)?.clamp(1, 50) as u32,
            bookkeeping_ttl: Duration::from_secs(
                86_400 * number("FRONTDESK_BOOKKEEPING_TTL_DAYS", 35)?,
            ),
            tenant_cache_ttl: Duration::from_secs(number("FRONTDESK_TENANT_CACHE_SECS", 60)?),
            send_check_delay: Duration::from_secs(
                number("FRONTDESK_SEND_CHECK_DELAY_SECS", 150)?.min(900),
            ),
            inline_budget: Duration::from_millis(number("FRONTDESK_INLINE_BUDGET_MS", 8000)?),
            audio_fetch_delay: Duration::from_secs(
                number("FRONTDESK_AUDIO_FETCH_DELAY_SECS", 600)?.min(900),
            ),
            scan_settle: Duration::from_secs(number("FRONTDESK_SCAN_SETTLE_SECS", 60)?),
            qa_tenant_claim: get("FRONTDESK_QA_TENANT_CLAIM")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| crate::qa::auth::DEFAULT_TENANT_CLAIM.to_string()),
            public_base_url: match get("FRONTDESK_PUBLIC_BASE_URL").filter(|v| !v.trim().is_empty())
            {
                Some(_) => Some(url("FRONTDESK_PUBLIC_BASE_URL", "")?),
                None => None,
            },
            llm_base_url: url("FRONTDESK_LLM_BASE_URL", "https://api.anthropic.com")?,
            llm_model: get("FRONTDESK_LLM_MODEL")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| "claude-sonnet-4-5".to_string()),
            llm_attempts: number("FRONTDESK_LLM_ATTEMPTS", 4)?.clamp(1, 10) as u32,
            text_history: number("FRONTDESK_TEXT_HISTORY", 20)?.clamp(1, 100) as usize,
            schedule_group: get("FRONTDESK_SCHEDULE_GROUP").filter(|v| !v.trim().is_empty()),
            schedule_target_arn: get("FRONTDESK_SCHEDULE_TARGET_ARN")
                .filter(|v| !v.trim().is_empty()),
            scheduler_role_arn: get("FRONTDESK_SCHEDULER_ROLE_ARN")
                .filter(|v| !v.trim().is_empty()),
        })
    }

    /// Exponential back-off for the n-th retry (1-based), capped at SQS's 15-minute delay.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.saturating_sub(1).min(16);
        Duration::from_secs((self.retry_base_delay.as_secs() * factor).min(900))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            ("FRONTDESK_TENANT_ID", "demo".to_string()),
            ("FRONTDESK_TABLE", "t".to_string()),
            ("FRONTDESK_BUCKET", "b".to_string()),
            ("FRONTDESK_RETRY_QUEUE_URL", "http://q".to_string()),
            ("FRONTDESK_EVENT_BUS", "bus".to_string()),
        ])
    }

    #[test]
    fn defaults_point_at_the_real_apis() {
        let env = base();
        let c = AppConfig::from_lookup(|k| env.get(k).cloned()).unwrap();
        assert_eq!(c.twilio_base_url, "https://api.twilio.com");
        assert_eq!(c.elevenlabs_base_url, "https://api.elevenlabs.io");
        assert_eq!(c.max_body_bytes, 6_000_000);
    }

    #[test]
    fn missing_and_bad_values_name_the_variable() {
        let mut env = base();
        env.remove("FRONTDESK_TABLE");
        let e = AppConfig::from_lookup(|k| env.get(k).cloned()).unwrap_err();
        assert_eq!(e.name, "FRONTDESK_TABLE");
        let mut env = base();
        env.insert("FRONTDESK_MAX_BODY_BYTES", "lots".into());
        let e = AppConfig::from_lookup(|k| env.get(k).cloned()).unwrap_err();
        assert_eq!(e.name, "FRONTDESK_MAX_BODY_BYTES");
        let mut env = base();
        env.insert("TWILIO_API_BASE_URL", "ftp://x".into());
        assert_eq!(
            AppConfig::from_lookup(|k| env.get(k).cloned())
                .unwrap_err()
                .name,
            "TWILIO_API_BASE_URL"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let env = base();
        let c = AppConfig::from_lookup(|k| env.get(k).cloned()).unwrap();
        assert_eq!(c.backoff(1).as_secs(), 20);
        assert_eq!(c.backoff(2).as_secs(), 40);
        assert_eq!(c.backoff(30).as_secs(), 900);
    }
}
