//! What a function needs, built once per cold start and shared by every invocation.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::SdkConfig;

use crate::blobs::Blobs;
use crate::bus::Bus;
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::config::{AppConfig, EnvError};
use crate::elevenlabs::client::ElevenLabsClient;
use crate::error::DependencyError;
use crate::llm::LlmClient;
use crate::queue::Queue;
use crate::schedules::Schedules;
use crate::secrets::{Secrets, SecretsError};
use crate::store::Store;
use crate::tenant::TenantConfig;
use crate::twilio::TwilioClient;

/// Cheap to clone: the clients share their connections, the tenant cache is shared.
#[derive(Clone)]
pub struct Deps {
    pub config: AppConfig,
    pub clock: Arc<dyn Clock>,
    pub store: Store,
    pub blobs: Blobs,
    pub queue: Queue,
    pub bus: Bus,
    /// `None` without credentials: messages are then recorded in the outbox, not sent.
    pub twilio: Option<TwilioClient>,
    /// `None` without an API key: audio is then only what the audio webhook delivers.
    pub elevenlabs: Option<ElevenLabsClient>,
    /// `None` without an API key: texts are then acknowledged and the owner told.
    pub llm: Option<LlmClient>,
    /// `None` without a schedule group: no reminders or follow-ups are scheduled.
    pub schedules: Option<Schedules>,
    pub secrets: Secrets,
    tenant_cache: Arc<Mutex<Option<CachedTenant>>>,
}

/// On Lambda with the role's credentials in the environment, as Lambda sets them.
fn lambda_credentials_in_env(is_set: impl Fn(&str) -> bool) -> bool {
    [
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ]
    .iter()
    .all(|name| is_set(name))
}

/// The tenant's configuration and when it was read.
type CachedTenant = (Instant, Arc<TenantConfig>);

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] EnvError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("{0}")]
    Client(String),
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("tenant {0} has no configuration item: load prompts/{0}/ first")]
    NotConfigured(String),
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

/// For work that only runs on a configured stack: a missing configuration is a failure of the
/// store like any other (retried, then reported).
impl From<TenantError> for DependencyError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::Dependency(d) => d,
            other => {
                DependencyError::new("dynamodb", "GetItem", "NotConfigured", other.to_string())
            }
        }
    }
}

impl Deps {
    /// Lambda wiring: configuration and secrets from the environment / Secrets Manager.
    pub async fn from_env() -> Result<Arc<Self>, InitError> {
        let config = AppConfig::from_env()?;
        let mut loader = crate::https::aws_config();
        // Lambda hands a function its role's credentials in the environment: reading them
        // there skips building the default chain (profile files, SSO, STS, IMDS) at every
        // cold start. Elsewhere (a laptop, container credentials) the default chain decides.
        if lambda_credentials_in_env(|name| std::env::var_os(name).is_some()) {
            loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
        }
        let sdk = loader.load().await;
        let secrets = match &config.secrets_arn {
            Some(arn) => {
                Secrets::from_secrets_manager(&aws_sdk_secretsmanager::Client::new(&sdk), arn)
                    .await?
            }
            None => Secrets::from_env(),
        };
        Ok(Arc::new(Self::build(
            config,
            &sdk,
            secrets,
            Arc::new(SystemClock),
        )?))
    }

    pub fn build(
        config: AppConfig,
        sdk: &SdkConfig,
        secrets: Secrets,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, InitError> {
        // Local emulators (moto) need path-style bucket addressing.
        let path_style = sdk.endpoint_url().is_some();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(path_style)
                .build(),
        );
        let twilio = match (&secrets.twilio_account_sid, &secrets.twilio_auth_token) {
            (Some(sid), Some(token)) => Some(
                TwilioClient::new(&config.twilio_base_url, sid, token)
                    .map_err(|e| InitError::Client(e.to_string()))?,
            ),
            _ => None,
        };
        let elevenlabs = match &secrets.elevenlabs_api_key {
            Some(key) => Some(
                ElevenLabsClient::new(&config.elevenlabs_base_url, key)
                    .map_err(|e| InitError::Client(e.to_string()))?,
            ),
            None => None,
        };
        let llm = match &secrets.llm_api_key {
            Some(key) => Some(
                LlmClient::new(&config.llm_base_url, key, &config.llm_model)
                    .map_err(|e| InitError::Client(e.to_string()))?,
            ),
            None => None,
        };
        let schedules = match (
            &config.schedule_group,
            &config.schedule_target_arn,
            &config.scheduler_role_arn,
        ) {
            (Some(group), Some(target), Some(role)) => Some(Schedules::new(
                aws_sdk_scheduler::Client::new(sdk),
                group,
                target,
                role,
            )),
            _ => None,
        };
        Ok(Self {
            llm,
            schedules,
            store: Store::new(
                aws_sdk_dynamodb::Client::new(sdk),
                &config.table,
                config.tenant.clone(),
            ),
            blobs: Blobs::new(s3, &config.bucket),
            queue: Queue::new(aws_sdk_sqs::Client::new(sdk), &config.retry_queue_url),
            bus: Bus::new(aws_sdk_eventbridge::Client::new(sdk), &config.event_bus),
            twilio,
            elevenlabs,
            secrets,
            clock,
            config,
            tenant_cache: Arc::new(Mutex::new(None)),
        })
    }

    /// The tenant's configuration, cached for `tenant_cache_ttl`.
    pub async fn tenant(&self) -> Result<Arc<TenantConfig>, TenantError> {
        if let Some((at, cfg)) = self
            .tenant_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            if at.elapsed() < self.config.tenant_cache_ttl {
                return Ok(cfg.clone());
            }
        }
        let cfg = self
            .store
            .get_tenant_config()
            .await?
            .ok_or_else(|| TenantError::NotConfigured(self.config.tenant.to_string()))?;
        let cfg = Arc::new(cfg);
        *self.tenant_cache.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), cfg.clone()));
        Ok(cfg)
    }

    pub fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    /// The same dependencies with the clock standing at `at` (a replayed request, local only).
    pub fn at(&self, at: jiff::Timestamp) -> Self {
        Self {
            clock: Arc::new(ManualClock::at(at)),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_environment_only_on_lambda_with_keys_there() {
        let with = |names: &[&str]| lambda_credentials_in_env(|n| names.contains(&n));
        assert!(with(&[
            "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY"
        ]));
        // A Lambda without keys in its environment: the default chain.
        assert!(!with(&["AWS_LAMBDA_FUNCTION_NAME"]));
        // A laptop with keys: the default chain too (its profile may say otherwise).
        assert!(!with(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]));
    }
}
