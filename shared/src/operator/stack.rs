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
    // SAM reads a setting from the command's table, then the environment's `global`, then
    // `default`'s.
    let fallbacks = [
        Some(params),
        doc.get(tenant)
            .and_then(|t| t.get("global"))
            .and_then(|g| g.get("parameters")),
        doc.get("default")
            .and_then(|t| t.get("deploy"))
            .and_then(|g| g.get("parameters")),
        doc.get("default")
            .and_then(|t| t.get("global"))
            .and_then(|g| g.get("parameters")),
    ];
    let text_of = |k: &str| {
        fallbacks
            .iter()
            .flatten()
            .find_map(|p| p.get(k).and_then(|v| v.as_str()).map(str::to_string))
    };
    let overrides: Vec<String> = match params.get("parameter_overrides") {
        Some(toml::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(toml::Value::String(s)) => split_overrides(s),
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

/// `Name=value Other="with spaces"` as SAM writes parameter overrides in one string.
fn split_overrides(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let (mut current, mut quoted) = (String::new(), false);
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    items.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        items.push(current);
    }
    items
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deploy_environment_reads_as_sam_reads_it() {
        let dir = std::env::temp_dir().join(format!("frontdesk-stack-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("samconfig.toml");
        std::fs::write(
            &file,
            "version = 0.1\n[default.global.parameters]\nregion = \"eu-west-1\"\n[acme.deploy.parameters]\nstack_name = \"frontdesk-acme\"\nparameter_overrides = \"TenantId=acme AlarmEmail=\\\"ops team@example.com\\\" RecordingRetentionDays=90\"\n",
        )
        .unwrap();
        let env = deploy_env(&file, "acme").unwrap().unwrap();
        assert_eq!(env.stack_name.as_deref(), Some("frontdesk-acme"));
        assert_eq!(
            env.region.as_deref(),
            Some("eu-west-1"),
            "from [default.global.parameters]"
        );
        assert_eq!(env.parameters["TenantId"], "acme");
        assert_eq!(env.parameters["AlarmEmail"], "ops team@example.com");
        assert_eq!(env.parameters["RecordingRetentionDays"], "90");
        assert!(deploy_env(&file, "other").unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
