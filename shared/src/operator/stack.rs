//! Where a tenant's stack is: its deploy environment in samconfig.toml (stack name, region,
//! parameters) and the stack's outputs (`sam list stack-outputs`), each overridable from the
//! environment (the names the functions themselves read), which is how tests and `make dev`
//! point the CLI at local fakes.

use std::collections::BTreeMap;
use std::path::Path;

/// A deploy environment of samconfig.toml.
#[derive(Debug, Clone, Default)]
pub struct DeployEnv {
    pub stack_name: Option<String>,
    pub region: Option<String>,
    /// `parameter_overrides`, as `Name=value`.
    pub parameters: BTreeMap<String, String>,
}

/// `[<tenant>.deploy.parameters]` of samconfig.toml; `None` when it has no such environment.
pub fn deploy_env(samconfig: &Path, tenant: &str) -> Result<Option<DeployEnv>, String> {
    let Ok(text) = std::fs::read_to_string(samconfig) else {
        return Ok(None);
    };
    let doc: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", samconfig.display()))?;
    let Some(params) = doc
        .get(tenant)
        .and_then(|t| t.get("deploy"))
        .and_then(|d| d.get("parameters"))
    else {
        return Ok(None);
    };
    let text_of = |k: &str| params.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let overrides: Vec<String> = match params.get("parameter_overrides") {
        Some(toml::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(toml::Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    };
    let parameters = overrides
        .iter()
        .filter_map(|o| o.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect();
    Ok(Some(DeployEnv {
        stack_name: text_of("stack_name"),
        region: text_of("region"),
        parameters,
    }))
}

/// The stack's outputs by name, from the environment's overrides first, else from
/// `sam list stack-outputs` (AWS credentials needed).
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    values: BTreeMap<String, String>,
    deploy: Option<DeployEnv>,
    fetched: bool,
}

/// Environment variables that stand in for outputs (the functions' own names).
pub const OVERRIDES: &[(&str, &str)] = &[
    ("ApiUrl", "FRONTDESK_API_URL"),
    ("TableName", "FRONTDESK_TABLE"),
    ("BucketName", "FRONTDESK_BUCKET"),
    ("RetryQueueUrl", "FRONTDESK_RETRY_QUEUE_URL"),
    ("EventBusName", "FRONTDESK_EVENT_BUS"),
    ("ScheduleGroupName", "FRONTDESK_SCHEDULE_GROUP"),
    ("RetryQueueArn", "FRONTDESK_SCHEDULE_TARGET_ARN"),
    ("SchedulerRoleArn", "FRONTDESK_SCHEDULER_ROLE_ARN"),
];

impl Outputs {
    pub fn new(deploy: Option<DeployEnv>) -> Self {
        let values = OVERRIDES
            .iter()
            .filter_map(|(output, var)| {
                let v = std::env::var(var).ok().filter(|v| !v.trim().is_empty())?;
                Some((output.to_string(), v))
            })
            .collect();
        Self {
            values,
            deploy,
            fetched: false,
        }
    }

    pub fn deploy(&self) -> Option<&DeployEnv> {
        self.deploy.as_ref()
    }

    /// One output; asks the stack (once) when the environment does not say.
    pub fn get(&mut self, name: &str) -> Result<String, String> {
        if let Some(v) = self.values.get(name) {
            return Ok(v.clone());
        }
        if !self.fetched {
            self.fetched = true;
            self.fetch()?;
        }
        self.values.get(name).cloned().ok_or_else(|| {
            let var = OVERRIDES
                .iter()
                .find(|(o, _)| *o == name)
                .map(|(_, v)| *v)
                .unwrap_or("?");
            format!("the stack has no output {name} (set {var} to give it)")
        })
    }

    fn fetch(&mut self) -> Result<(), String> {
        let Some(stack) = self.deploy.as_ref().and_then(|d| d.stack_name.clone()) else {
            return Err("no deploy environment for this tenant in samconfig.toml (and no FRONTDESK_* overrides): copy the [demo.*] tables".into());
        };
        let mut command = std::process::Command::new("sam");
        command.args([
            "list",
            "stack-outputs",
            "--stack-name",
            &stack,
            "--output",
            "json",
        ]);
        if let Some(region) = self.deploy.as_ref().and_then(|d| d.region.as_deref()) {
            command.args(["--region", region]);
        }
        let output = command
            .output()
            .map_err(|e| format!("`sam list stack-outputs` could not run ({e}): install the SAM CLI, or set the FRONTDESK_* variables"))?;
        if !output.status.success() {
            return Err(format!(
                "`sam list stack-outputs --stack-name {stack}` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let list: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("`sam list stack-outputs` printed no JSON list: {e}"))?;
        for o in list {
            if let (Some(k), Some(v)) = (o["OutputKey"].as_str(), o["OutputValue"].as_str()) {
                self.values
                    .entry(k.to_string())
                    .or_insert_with(|| v.to_string());
            }
        }
        Ok(())
    }
}
