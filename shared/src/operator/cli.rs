//! The `frontdesk` command line: what an engineer runs to provision and operate a business.
//! Each command reads the tenant folder, and where it must, the stack (samconfig.toml and its
//! outputs) and ElevenLabs (`ELEVENLABS_API_KEY`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand};

use super::api::ManagementApi;
use super::folder::{self, Folder};
use super::gate::{self, Waiting};
use super::push;
use super::stack::{self, Outputs};
use crate::agent::{render_agent, RenderedAgent, StackUrls};

/// Exit codes: 0 done, 1 failed, 2 bad usage (clap's), 3 refused (a gate failed or not passed).
pub const REFUSED: i32 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "frontdesk",
    about = "Provision and operate Frontdesk businesses: tenant folders, the ElevenLabs agent, the stack's configuration",
    long_about = "Provision and operate Frontdesk businesses.\n\nA tenant is a folder: prompts/<tenant>/ (or any path). The stack comes from samconfig.toml's [<tenant>.deploy.parameters] and its outputs (`sam list stack-outputs`); FRONTDESK_API_URL, FRONTDESK_TABLE, FRONTDESK_BUCKET, FRONTDESK_RETRY_QUEUE_URL and FRONTDESK_EVENT_BUS override them. ElevenLabs: ELEVENLABS_API_KEY (and ELEVENLABS_API_BASE_URL for another region)."
)]
pub struct Cli {
    /// Where tenant folders are, and samconfig.toml beside it.
    #[arg(long, global = true, default_value = "prompts")]
    pub prompts: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every file of a tenant folder; each problem is printed with its file and field.
    Validate {
        /// A folder name under --prompts, or a path to a folder.
        tenant: String,
    },
    /// Print the ElevenLabs agent configuration the folder makes (prompt, tools, webhook,
    /// data collection, evaluation criteria) for the stack's URL.
    Render {
        tenant: String,
        /// The stack's base URL (its ApiUrl output, or the public domain in front of it).
        #[arg(long, env = "FRONTDESK_API_URL")]
        api_url: Option<String>,
    },
    /// Create or update the agent's tools, the agent and the conversation-initiation webhook in
    /// ElevenLabs. Refuses a version whose gate has not passed.
    Push {
        tenant: String,
        #[arg(long, env = "FRONTDESK_API_URL")]
        api_url: Option<String>,
        /// Print what would change, as a diff, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run the folder's scenarios as ElevenLabs agent tests (tools mocked) and the quality
    /// rules over their transcripts; writes gate.json, which push requires.
    Gate {
        tenant: String,
        #[arg(long, env = "FRONTDESK_API_URL")]
        api_url: Option<String>,
        /// Seconds between looks at the running tests.
        #[arg(long, default_value_t = 5)]
        poll_secs: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 1200)]
        timeout_secs: u64,
    },
    /// Upload the validated business facts, rules, prompt and tools to the stack's table, where
    /// the deployed functions read them.
    SyncConfig {
        tenant: String,
        /// The stack's table (its TableName output).
        #[arg(long, env = "FRONTDESK_TABLE")]
        table: Option<String>,
    },
    /// Process the calls since a time that have no record (their webhook never arrived), as
    /// the stack's reconcile function does every 15 minutes.
    Backfill {
        tenant: String,
        /// An RFC 3339 time (2026-11-30T00:00:00Z) or an age (36h, 7d).
        #[arg(long)]
        since: String,
    },
}

type Failure = (i32, String);

fn failed(message: impl std::fmt::Display) -> Failure {
    (1, message.to_string())
}

/// Runs a parsed command; the exit code and, on failure, what to print.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), Failure> {
    match cli.command {
        Command::Validate { tenant } => {
            let folder = load(&cli.prompts, &tenant)?;
            validate_deploy_env(&cli.prompts, &folder)?;
            writeln!(
                out,
                "{}: valid ({}, {} tools, {} quality rules, {} scenarios)",
                folder.dir.display(),
                folder.config.business.name,
                folder.tool_definitions.len(),
                folder.config.quality.rules.len(),
                folder.scenarios.scenarios.len()
            )
            .map_err(failed)
        }
        Command::Render { tenant, api_url } => {
            let folder = load(&cli.prompts, &tenant)?;
            let rendered = rendered(&cli.prompts, &folder, api_url)?;
            if needs_tool_secret(&folder).is_err() {
                eprintln!("note: agent.toml has no elevenlabs.tool_secret_id: the tools below carry ${{TOOL_SECRET_ID}}, and push and gate refuse until it is set");
            }
            let text = serde_json::to_string_pretty(&rendered).map_err(failed)?;
            writeln!(out, "{text}").map_err(failed)
        }
        Command::Push {
            tenant,
            api_url,
            dry_run,
        } => {
            let mut folder = load(&cli.prompts, &tenant)?;
            let rendered = rendered(&cli.prompts, &folder, api_url)?;
            needs_tool_secret(&folder)?;
            let api = management_api()?;
            match push::push(&api, &mut folder, &rendered, dry_run, out).await {
                Ok(_) => Ok(()),
                Err(push::PushError::Refused(why)) => Err((REFUSED, why)),
                Err(e) => Err(failed(e)),
            }
        }
        Command::Gate {
            tenant,
            api_url,
            poll_secs,
            timeout_secs,
        } => {
            let mut folder = load(&cli.prompts, &tenant)?;
            let rendered = rendered(&cli.prompts, &folder, api_url)?;
            needs_tool_secret(&folder)?;
            let api = management_api()?;
            let waiting = Waiting {
                every: poll_interval(poll_secs),
                at_most: std::time::Duration::from_secs(timeout_secs),
            };
            let record = gate::gate(&api, &mut folder, &rendered, waiting, out)
                .await
                .map_err(failed)?;
            if record.passed {
                Ok(())
            } else {
                Err((
                    REFUSED,
                    format!("the gate failed for version {}", record.version),
                ))
            }
        }
        Command::SyncConfig { tenant, table } => {
            let folder = load(&cli.prompts, &tenant)?;
            validate_deploy_env(&cli.prompts, &folder)?;
            let mut outputs = outputs(&cli.prompts, &folder)?;
            let table = match table {
                Some(t) => t,
                None => outputs.get("TableName").map_err(failed)?,
            };
            let sdk = sdk_config(&outputs).await;
            let tenant_id = crate::ids::TenantId::parse(&folder.name).map_err(failed)?;
            let store =
                crate::store::Store::new(aws_sdk_dynamodb::Client::new(&sdk), &table, tenant_id);
            store
                .put_tenant_config(
                    &folder.config,
                    &format!("frontdesk sync-config {}", folder.dir.display()),
                    jiff::Timestamp::now(),
                )
                .await
                .map_err(failed)?;
            writeln!(
                out,
                "{}: synced to table {table} (tenant {}); the functions read it within a minute",
                folder.dir.display(),
                folder.name
            )
            .map_err(failed)
        }
        Command::Backfill { tenant, since } => {
            let folder = load(&cli.prompts, &tenant)?;
            let since = parse_since(&since).map_err(|e| (2, e))?;
            let outputs = outputs(&cli.prompts, &folder)?;
            let deps = stack_deps(&folder, outputs).await?;
            let report = crate::reconcile::run(&deps, since, None)
                .await
                .map_err(failed)?;
            writeln!(
                out,
                "backfill since {since}: {} listed, {} processed, {} already recorded, {} not finished, {} failed",
                report.listed,
                report.processed.len(),
                report.already_recorded,
                report.not_ready,
                report.failed
            )
            .map_err(failed)?;
            for id in &report.processed {
                writeln!(out, "  processed {id}").map_err(failed)?;
            }
            if let Some(why) = report.skipped {
                return Err(failed(format!("nothing listed: {why}")));
            }
            if report.incomplete {
                return Err(failed(format!(
                    "stopped after the newest {} conversations: run it again with --since after the oldest one processed",
                    report.listed
                )));
            }
            if report.failed > 0 {
                return Err(failed(format!(
                    "{} calls could not be processed; run it again",
                    report.failed
                )));
            }
            Ok(())
        }
    }
}

/// `--poll-secs` (1 to 60); `FRONTDESK_GATE_POLL_MS` overrides it (tests poll fakes quickly).
fn poll_interval(secs: u64) -> std::time::Duration {
    match std::env::var("FRONTDESK_GATE_POLL_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(ms) => std::time::Duration::from_millis(ms),
        None => std::time::Duration::from_secs(secs.clamp(1, 60)),
    }
}

/// The folder a tenant argument names: a path with a '/', else a name under `prompts`.
pub fn tenant_dir(prompts: &Path, tenant: &str) -> PathBuf {
    if tenant.contains('/') {
        PathBuf::from(tenant.trim_end_matches('/'))
    } else {
        prompts.join(tenant)
    }
}

fn load(prompts: &Path, tenant: &str) -> Result<Folder, Failure> {
    let dir = tenant_dir(prompts, tenant);
    if !dir.is_dir() {
        return Err(failed(format!(
            "{}: no such tenant folder (copy prompts/_template/ to start one)",
            dir.display()
        )));
    }
    folder::check(&dir).map_err(|problems| {
        let count = match problems.len() {
            1 => "1 problem".to_string(),
            n => format!("{n} problems"),
        };
        let mut text = format!("{}: {count}\n", dir.display());
        for p in &problems {
            // One line a problem: parsers' messages may run over several.
            let message = p.message.split_whitespace().collect::<Vec<_>>().join(" ");
            text.push_str(&format!("  {}: {}: {message}\n", p.file, p.field));
        }
        (1, text.trim_end().to_string())
    })
}

fn samconfig(prompts: &Path) -> PathBuf {
    prompts
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("samconfig.toml")
}

/// The deploy environment must deploy this tenant with the folder's retention.
fn validate_deploy_env(prompts: &Path, folder: &Folder) -> Result<(), Failure> {
    let file = samconfig(prompts);
    let Some(env) = stack::deploy_env(&file, &folder.name).map_err(failed)? else {
        return Ok(());
    };
    let mut problems = Vec::new();
    let field = format!("{}.deploy.parameters.parameter_overrides", folder.name);
    match env.parameters.get("TenantId") {
        Some(t) if t == &folder.name => {}
        other => problems.push(format!(
            "{}: {field}: TenantId must be {:?} (the folder's name), not {other:?}",
            file.display(),
            folder.name
        )),
    }
    let days = folder.config.compliance.retention_days.to_string();
    let deployed = env
        .parameters
        .get("RecordingRetentionDays")
        .cloned()
        .unwrap_or_else(|| "365".into());
    if deployed != days {
        problems.push(format!(
            "{}: {field}: RecordingRetentionDays is {deployed}, but business.toml compliance.retention_days is {days}: set RecordingRetentionDays={days} so transcripts and audio go with the records",
            file.display()
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err((1, problems.join("\n")))
    }
}

fn outputs(prompts: &Path, folder: &Folder) -> Result<Outputs, Failure> {
    let env = stack::deploy_env(&samconfig(prompts), &folder.name).map_err(failed)?;
    Ok(Outputs::new(env))
}

fn rendered(
    prompts: &Path,
    folder: &Folder,
    api_url: Option<String>,
) -> Result<RenderedAgent, Failure> {
    let mut outputs = outputs(prompts, folder)?;
    let api_url = match api_url {
        Some(url) => url,
        None => {
            let public = outputs
                .deploy()
                .and_then(|d| d.parameters.get("PublicBaseUrl"))
                .filter(|u| !u.is_empty())
                .cloned();
            match public {
                Some(url) => url,
                None => outputs
                    .get("ApiUrl")
                    .map_err(|e| failed(format!("{e}; or pass --api-url <the stack's ApiUrl>")))?,
            }
        }
    };
    if !api_url.starts_with("https://") && !api_url.starts_with("http://") {
        return Err((2, format!("--api-url {api_url:?} is not an http(s) URL")));
    }
    let tool_secret_id = folder.profile.elevenlabs.tool_secret_id.clone();
    let stack = StackUrls {
        api_url,
        tool_secret_id: if tool_secret_id.is_empty() {
            "${TOOL_SECRET_ID}".into()
        } else {
            tool_secret_id
        },
    };
    let gated: Vec<&str> = folder.gated_text.iter().map(String::as_str).collect();
    Ok(render_agent(
        &folder.config,
        &folder.profile,
        &folder.tool_definitions,
        &folder.conversation_init,
        &stack,
        &gated,
    ))
}

/// Tools sent without the secret's id would carry the placeholder: every call refused.
fn needs_tool_secret(folder: &Folder) -> Result<(), Failure> {
    if folder.profile.elevenlabs.tool_secret_id.trim().is_empty() {
        return Err(failed(format!(
            "{}: elevenlabs.tool_secret_id is empty: create the workspace secret holding the stack's TOOL_SECRET (POST /v1/convai/secrets) and put its id there; the tools send it on every call",
            folder.dir.join(crate::agent::AGENT_FILE).display()
        )));
    }
    Ok(())
}

fn management_api() -> Result<ManagementApi, Failure> {
    let key = std::env::var("ELEVENLABS_API_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| {
            failed("ELEVENLABS_API_KEY is required (an ElevenLabs API key with agents access)")
        })?;
    let base = std::env::var("ELEVENLABS_API_BASE_URL")
        .ok()
        .filter(|k| !k.trim().is_empty())
        .unwrap_or_else(|| "https://api.elevenlabs.io".into());
    Ok(ManagementApi::new(&base, &key))
}

async fn sdk_config(outputs: &Outputs) -> aws_config::SdkConfig {
    let mut loader = crate::https::aws_config();
    if std::env::var("AWS_REGION").is_err() {
        if let Some(region) = outputs.deploy().and_then(|d| d.region.clone()) {
            loader = loader.region(aws_config::Region::new(region));
        }
    }
    loader.load().await
}

/// What the stack's functions run with, from the operator's machine: the stack's resources
/// and its secret (samconfig's SecretsArn), or the environment's.
async fn stack_deps(
    folder: &Folder,
    mut outputs: Outputs,
) -> Result<Arc<crate::deps::Deps>, Failure> {
    let mut values = std::collections::HashMap::new();
    values.insert("FRONTDESK_TENANT_ID".to_string(), folder.name.clone());
    for (output, var) in stack::OVERRIDES {
        if *output == "ApiUrl" {
            continue;
        }
        let required = matches!(
            *output,
            "TableName" | "BucketName" | "RetryQueueUrl" | "EventBusName"
        );
        match outputs.get(output) {
            Ok(v) => {
                values.insert(var.to_string(), v);
            }
            Err(e) if required => return Err(failed(e)),
            Err(_) => {}
        }
    }
    for (k, v) in std::env::vars() {
        if k.starts_with("FRONTDESK_") || k.ends_with("_BASE_URL") {
            values.entry(k).or_insert(v);
        }
    }
    let secrets_arn = std::env::var("FRONTDESK_SECRETS_ARN")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| {
            outputs
                .deploy()
                .and_then(|d| d.parameters.get("SecretsArn").cloned())
        });
    let config =
        crate::config::AppConfig::from_lookup(|k| values.get(k).cloned()).map_err(failed)?;
    let sdk = sdk_config(&outputs).await;
    let secrets = match &secrets_arn {
        Some(arn) => crate::secrets::Secrets::from_secrets_manager(
            &aws_sdk_secretsmanager::Client::new(&sdk),
            arn,
        )
        .await
        .map_err(failed)?,
        None => crate::secrets::Secrets::from_env(),
    };
    let deps = crate::deps::Deps::build(config, &sdk, secrets, Arc::new(crate::clock::SystemClock))
        .map_err(failed)?;
    Ok(Arc::new(deps))
}

/// An RFC 3339 time, or an age back from now: `36h`, `7d`, `90m` (at most ten years).
pub fn parse_since(text: &str) -> Result<jiff::Timestamp, String> {
    let text = text.trim();
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let usage = || {
        format!(
            "--since {text:?}: an RFC 3339 time (2026-11-30T00:00:00Z) or an age such as 36h or 7d"
        )
    };
    let unit = text.chars().last().ok_or_else(usage)?;
    let number = &text[..text.len() - unit.len_utf8()];
    let n: i64 = number.parse().ok().filter(|n| *n > 0).ok_or_else(usage)?;
    let per = match unit {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("--since {text:?}: the age's unit is m, h or d")),
    };
    let secs = n
        .checked_mul(per)
        .filter(|s| *s <= 10 * 366 * 86_400)
        .ok_or_else(|| format!("--since {text:?}: at most ten years back"))?;
    Ok(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_an_age() {
        assert_eq!(
            parse_since("2026-11-30T00:00:00Z").unwrap().to_string(),
            "2026-11-30T00:00:00Z"
        );
        let a = parse_since("36h").unwrap();
        let age = jiff::Timestamp::now().duration_since(a).as_secs();
        assert!((36 * 3600 - 5..=36 * 3600 + 5).contains(&age));
        assert!(parse_since("yesterday").is_err());
        assert!(parse_since("3w").is_err());
        assert!(parse_since("7д").is_err(), "no panic on a multi-byte unit");
        assert!(parse_since("-5d").is_err());
        assert!(parse_since("99999999999999d").is_err());
        assert!(parse_since("").is_err());
    }
}
