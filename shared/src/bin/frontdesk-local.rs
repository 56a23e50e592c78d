//! The local host: `frontdesk-local serve` runs every route on http://127.0.0.1:3000 against
//! moto (AWS_ENDPOINT_URL), with the retry queue consumed and the quality scan run every 15
//! minutes in-process; `frontdesk-local sign FILE` prints an ElevenLabs-Signature for a body,
//! signed with the local webhook secret; `frontdesk-local scan [--since TIME]` runs one quality
//! scan against the local stack now; `frontdesk-local replay DIR [--rules FILE]` runs the rules
//! over exported transcripts and writes nothing; `frontdesk-local sms FROM BODY` posts a signed
//! inbound text to the running server.
//!
//! Local only, for replaying a business as of a day: `FRONTDESK_NOW` (RFC 3339) starts the
//! server's clock there, and a request's `x-frontdesk-now` header sets its own.
//!
//! `make dev` and `make send` call these; see the README.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_config::Region;
use frontdesk::clock::{Clock, ShiftedClock, SystemClock};
use frontdesk::config::AppConfig;
use frontdesk::deps::Deps;
use frontdesk::elevenlabs::signature;
use frontdesk::local::{self, resources, template::Template};
use frontdesk::secrets::Secrets;
use frontdesk::store::messages::MessageState;
use frontdesk::tenant::TenantConfig;

const SECRETS_FILE: &str = ".local/secrets.env";
/// The key local reviewer tokens are signed with (the HTTP API's authorizer does this in AWS).
const QA_KEY: &str = "QA_LOCAL_SIGNING_KEY";
/// How long the reviewer token `make dev` prints is valid.
const REVIEWER_TOKEN_HOURS: i64 = 12;

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: frontdesk-local [serve] | sign <body-file>
       | scan [--since <RFC 3339 time>] | replay <folder of transcript JSON> [--rules <assertions.toml>]
       | reviewer-token | quoted <lead id> [<quote, e.g. £450>] | stack-env";
/// How often `serve` fires due schedules (moto stores them, never fires them).
const FIRE_SCHEDULES_EVERY: Duration = Duration::from_secs(30);
/// How often `serve` sweeps the outbox (the stack's schedule says every five minutes).
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often `serve` runs the quality scan, as the stack's EventBridge schedule does.
const SCAN_EVERY: Duration = Duration::from_secs(15 * 60);

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") | None => serve().await,
        Some("sign") if args.len() == 2 => sign(Path::new(&args[1])),
        Some("scan") => scan(&args[1..]).await,
        Some("sms") if args.len() == 3 => sms(&args[1], &args[2]).await,
        Some("replay") => replay(&args[1..]),
        Some("reviewer-token") => reviewer_token(),
        Some("stack-env") => stack_env().await,
        Some("quoted") if matches!(args.len(), 2 | 3) => quoted(&args[1], args.get(2)).await,
        _ => Err(USAGE.into()),
    };
    if let Err(e) = result {
        eprintln!("frontdesk-local: {e}");
        std::process::exit(1);
    }
}

/// The local webhook secret: from the environment, else `.local/secrets.env` (made on first use).
fn local_secrets() -> Result<BTreeMap<String, String>, Error> {
    let mut values = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(SECRETS_FILE) {
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            if let Some((k, v)) = line.split_once('=') {
                values.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    let missing: Vec<(&str, &str)> = [
        ("ELEVENLABS_WEBHOOK_SECRET", "wsec_local_"),
        ("TOOL_SECRET", "tool_local_"),
        (QA_KEY, "qa_local_"),
        // Checks the signatures `make sms` makes; with no TWILIO_ACCOUNT_SID nothing is sent.
        ("TWILIO_AUTH_TOKEN", "twilio_local_"),
        ("WEB_FORM_SECRET", "form_local_"),
        ("WEB_FORM_TOKEN", "formtoken_local_"),
    ]
    .into_iter()
    .filter(|(name, _)| !values.contains_key(*name))
    .collect();
    if !missing.is_empty() {
        for (name, prefix) in missing {
            let mut bytes = [0u8; 24];
            use std::io::Read;
            std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
            values.insert(name.into(), format!("{prefix}{}", hex(&bytes)));
        }
        std::fs::create_dir_all(".local")?;
        let text: String = values.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(
            SECRETS_FILE,
            format!("# Local-only secrets for make dev (not used in AWS).\n{text}"),
        )?;
    }
    for name in frontdesk::secrets::NAMES {
        if let Ok(v) = std::env::var(name) {
            if !v.trim().is_empty() {
                values.insert(name.to_string(), v);
            }
        }
    }
    Ok(values)
}

/// Where `serve` listens.
fn local_addr() -> String {
    std::env::var("FRONTDESK_LOCAL_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into())
}

/// `make sms FROM=… BODY=…`: an inbound text, signed as Twilio signs it, posted to the local
/// server's messaging webhook.
async fn sms(from: &str, body: &str) -> Result<(), Error> {
    let secrets = local_secrets()?;
    let token = &secrets["TWILIO_AUTH_TOKEN"];
    let base = std::env::var("FRONTDESK_PUBLIC_BASE_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| format!("http://{}", local_addr()));
    let path = frontdesk::http::TWILIO_MESSAGING_PATH;
    let mut bytes = [0u8; 16];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let sid = format!("SM{}", hex(&bytes));
    let to = if from.starts_with("whatsapp:") {
        "whatsapp:+442079460000"
    } else {
        "+442079460000"
    };
    let params: Vec<(String, String)> = [
        ("MessageSid", sid.as_str()),
        ("SmsSid", sid.as_str()),
        ("AccountSid", "AClocal000000000000000000000000000"),
        ("From", from),
        ("To", to),
        ("Body", body),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("SmsStatus", "received"),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let url = format!("{base}{path}");
    let signature = frontdesk::twilio::signature::sign(token.as_bytes(), &url, &params);
    let response = frontdesk::https::client_builder()
        .build()?
        .post(format!("http://{}{path}", local_addr()))
        .header("x-twilio-signature", signature)
        .form(&params)
        .send()
        .await
        .map_err(|e| format!("is make dev running? {e}"))?;
    let status = response.status();
    println!(
        "{sid} -> {status}: {}",
        response.text().await.unwrap_or_default()
    );
    if !status.is_success() {
        return Err(format!("the webhook answered {status}").into());
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sign(file: &Path) -> Result<(), Error> {
    let body = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let secrets = local_secrets()?;
    let secret = &secrets["ELEVENLABS_WEBHOOK_SECRET"];
    // Signed at the time the server runs at, so a server started with FRONTDESK_NOW accepts it.
    let now = local_clock()?.now();
    println!("{}", signature::sign(&body, secret.as_bytes(), now));
    Ok(())
}

/// The wall clock, or with `FRONTDESK_NOW` one that starts at that time and runs on.
fn local_clock() -> Result<Arc<dyn Clock>, Error> {
    match std::env::var("FRONTDESK_NOW")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        None => Ok(Arc::new(SystemClock)),
        Some(raw) => {
            let start: jiff::Timestamp = raw.trim().parse().map_err(|_| {
                format!(
                    "FRONTDESK_NOW={raw:?} is not an RFC 3339 time such as 2026-03-27T08:00:00Z"
                )
            })?;
            Ok(Arc::new(ShiftedClock::starting_at(start)))
        }
    }
}

/// The local stack a command runs against: moto's resources (made from template.yaml if they
/// are not there yet), the tenant folder's configuration loaded, and the deps of every handler.
struct LocalStack {
    deps: Arc<Deps>,
    tenant: String,
    prompts: PathBuf,
    endpoint: String,
    template: Template,
    made: resources::LocalResources,
    business: TenantConfig,
    secrets: Secrets,
    secret_values: BTreeMap<String, String>,
}

async fn local_stack() -> Result<LocalStack, Error> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .map_err(|_| "AWS_ENDPOINT_URL must point at the local AWS (moto); run `make dev`")?;
    // Any tenant folder; its id is the folder's name unless FRONTDESK_TENANT_ID says otherwise.
    let prompts = prompts_dir();
    let tenant = match std::env::var("FRONTDESK_TENANT_ID") {
        Ok(t) if !t.trim().is_empty() => t,
        _ => prompts
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| format!("{} is not a tenant folder", prompts.display()))?,
    };
    frontdesk::ids::TenantId::parse(&tenant)
        .map_err(|e| format!("tenant id {tenant:?} (from {}): {e}", prompts.display()))?;
    let template_path = PathBuf::from(
        std::env::var("FRONTDESK_TEMPLATE").unwrap_or_else(|_| "template.yaml".into()),
    );

    let sdk = frontdesk::https::aws_config()
        .region(Region::new(
            std::env::var("AWS_REGION").unwrap_or_else(|_| "eu-west-2".into()),
        ))
        .load()
        .await;
    let template = Template::load(&template_path)?;
    let made = resources::create(&sdk, &template, &format!("frontdesk-{tenant}")).await?;

    let secret_values = local_secrets()?;
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    env.insert("FRONTDESK_TENANT_ID".into(), tenant.clone());
    env.insert("FRONTDESK_TABLE".into(), made.table.clone());
    env.insert("FRONTDESK_BUCKET".into(), made.bucket.clone());
    env.insert(
        "FRONTDESK_RETRY_QUEUE_URL".into(),
        made.retry_queue_url.clone(),
    );
    env.insert("FRONTDESK_EVENT_BUS".into(), made.event_bus.clone());
    env.insert(
        "FRONTDESK_SCHEDULE_GROUP".into(),
        made.schedule_group.clone(),
    );
    env.insert(
        "FRONTDESK_SCHEDULE_TARGET_ARN".into(),
        made.retry_queue_arn.clone(),
    );
    env.insert(
        "FRONTDESK_SCHEDULER_ROLE_ARN".into(),
        made.scheduler_role_arn.clone(),
    );
    env.remove("FRONTDESK_SECRETS_ARN");
    // What the local Twilio webhooks are checked against (and what `make sms` signs).
    env.entry("FRONTDESK_PUBLIC_BASE_URL".into())
        .or_insert_with(|| format!("http://{}", local_addr()));
    let config = AppConfig::from_lookup(|k| env.get(k).cloned())?;
    let secrets = Secrets::from_lookup(|k| secret_values.get(k).cloned());
    let clock = local_clock()?;
    let deps = Arc::new(Deps::build(config, &sdk, secrets.clone(), clock)?);

    let business = TenantConfig::load_dir(&prompts)?;
    deps.store
        .put_tenant_config(&business, &prompts.display().to_string(), deps.now())
        .await?;
    Ok(LocalStack {
        deps,
        tenant,
        prompts,
        endpoint,
        template,
        made,
        business,
        secrets,
        secret_values,
    })
}

fn prompts_dir() -> PathBuf {
    PathBuf::from(std::env::var("FRONTDESK_PROMPTS").unwrap_or_else(|_| "prompts/demo".into()))
}

async fn serve() -> Result<(), Error> {
    frontdesk::telemetry::init();
    let addr = local_addr();
    let LocalStack {
        deps,
        tenant,
        prompts,
        endpoint,
        template,
        made,
        business,
        secrets,
        secret_values: secrets_map,
    } = local_stack().await?;

    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    print_banner(
        &addr,
        &endpoint,
        &template,
        &made,
        (&tenant, &prompts),
        &business,
        &secrets,
        &secrets_map,
    );

    let worker = deps.clone();
    tokio::spawn(async move { local::poller::run_forever(&worker).await });
    let watcher = deps.clone();
    tokio::spawn(async move { print_recorded_messages(&watcher).await });
    let firer = deps.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(FIRE_SCHEDULES_EVERY).await;
            match local::scheduler::fire_due(&firer).await {
                Ok(fired) => {
                    for s in fired {
                        println!(
                            "[scheduler] fired {} ({} {}): {}",
                            s.name,
                            s.expression,
                            s.time_zone,
                            s.job.name()
                        );
                    }
                }
                Err(e) => eprintln!("[scheduler] failed: {e}"),
            }
        }
    });
    let sweeper = deps.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            if let Err(e) = frontdesk::outbox::sweep(&sweeper).await {
                eprintln!("[outbox sweep] failed: {e}");
            }
            match frontdesk::digest::send_if_due(&sweeper).await {
                Ok(Some(id)) => println!("[digest] the owner's digest queued ({id})"),
                Ok(None) => {}
                Err(e) => eprintln!("[digest] failed: {e}"),
            }
        }
    });
    let scanner = deps.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SCAN_EVERY).await;
            if let Err(e) = scan_and_print(&scanner, None).await {
                eprintln!("[quality scan] failed: {e}");
            }
            // As the stack's reconcile function does, when there is an API key to list with.
            if scanner.elevenlabs.is_some() {
                let since = scanner.now()
                    - jiff::SignedDuration::from_hours(frontdesk::reconcile::LOOKBACK_HOURS);
                match frontdesk::reconcile::run(&scanner, since, None).await {
                    Ok(r) => println!("[reconcile] {}", frontdesk::reconcile::summary(&r)),
                    Err(e) => eprintln!("[reconcile] failed: {e}"),
                }
            }
        }
    });

    let reviewer_key = secrets_map[QA_KEY].as_bytes().to_vec();
    axum::serve(listener, local::all_routes(deps, &reviewer_key))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn print_banner(
    addr: &str,
    endpoint: &str,
    template: &Template,
    made: &resources::LocalResources,
    (tenant, folder): (&str, &Path),
    business: &TenantConfig,
    secrets: &Secrets,
    values: &BTreeMap<String, String>,
) {
    println!(
        "\nFrontdesk is running locally for tenant '{tenant}' ({}), from {}\n",
        business.business.name,
        folder.display()
    );
    println!("Routes (from template.yaml) on http://{addr}:");
    for r in template.routes() {
        println!(
            "  {:<6} http://{addr}{:<40} -> {}",
            r.method, r.path, r.function
        );
    }
    println!("\nNot behind HTTP:\n  retry-worker  consumes {} in-process (as Lambda's SQS event source would)", made.retry_queue_url);
    println!("  quality-scan  runs in-process every 15 minutes (as its EventBridge schedule would); `make scan` runs it now");
    println!("  reconcile     runs with the scan when ELEVENLABS_API_KEY is set: calls whose webhook never came, processed from the API");
    println!("  outbox-sweep  runs in-process every minute (stuck messages re-queued, unpublished events published, the owner's digest at its time)");
    println!("  schedules     in {}: due ones fired in-process every 30 s and printed (moto never fires them)", made.schedule_group);
    println!(
        "\nTwilio webhooks are checked against the base URL {} (FRONTDESK_PUBLIC_BASE_URL),\nsigned with TWILIO_AUTH_TOKEN below; `make sms FROM=+447400123456 BODY=hello` sends one.",
        std::env::var("FRONTDESK_PUBLIC_BASE_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| format!("http://{addr}"))
    );
    println!("\nLocal AWS (moto) at {endpoint}:");
    println!("  table       {}", made.table);
    println!("  bucket      {}", made.bucket);
    println!("  retry queue {}", made.retry_queue_url);
    println!("  dead letter {}", made.dead_letter_queue_url);
    println!("  event bus   {}", made.event_bus);
    println!("\nLocal secrets ({SECRETS_FILE}; never used in AWS):");
    for name in frontdesk::secrets::NAMES {
        match values.get(*name) {
            Some(v) => println!("  {name}={v}"),
            None => println!("  {name} (unset)"),
        }
    }
    if secrets.twilio_account_sid.is_none() || secrets.twilio_auth_token.is_none() {
        println!("\nNo Twilio credentials: texts are RECORDED in the outbox (DynamoDB) and printed here, not sent.");
    } else {
        println!(
            "\nTwilio credentials set: texts are sent to {}",
            std::env::var("TWILIO_API_BASE_URL")
                .unwrap_or_else(|_| "https://api.twilio.com".into())
        );
    }
    if let Some(key) = values.get(QA_KEY) {
        let token = frontdesk::qa::auth::local_reviewer_token(
            key.as_bytes(),
            tenant,
            local_clock()
                .map(|c| c.now())
                .unwrap_or_else(|_| SystemClock.now())
                .as_second(),
            REVIEWER_TOKEN_HOURS,
        );
        println!("\nQA console (signed in as the local reviewer for {REVIEWER_TOKEN_HOURS} h):\n  http://{addr}/qa#token={token}");
        println!("QA API: Authorization: Bearer {token}\n  (`frontdesk-local reviewer-token` makes another)");
    }
    println!(
        "\nClock: {} (FRONTDESK_NOW moves it for the whole server; an x-frontdesk-now header moves it for one request; local only)",
        clock_line()
    );
    println!("\nTry it:  make send EVENT=events/webhooks/post_call_transcription.json\n");
}

fn clock_line() -> String {
    match std::env::var("FRONTDESK_NOW")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(start) => format!("started at {start} and running"),
        None => "the wall clock".into(),
    }
}

/// Prints texts recorded instead of sent, so the flow can be watched. Local only: the Lambda
/// functions never log message bodies or numbers.
async fn print_recorded_messages(deps: &Deps) {
    let mut shown: HashSet<String> = HashSet::new();
    loop {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let Ok(messages) = deps.store.list_messages(500).await else {
            continue;
        };
        for m in messages {
            if m.state == MessageState::Recorded && shown.insert(m.message_id.clone()) {
                println!(
                    "\n[local outbox] {} -> {} ({}, {} chars)\n  {}\n",
                    m.purpose,
                    m.to,
                    m.message_id,
                    m.body.chars().count(),
                    m.body
                );
            }
        }
    }
}

/// One quality scan of the local stack, now.
async fn scan(args: &[String]) -> Result<(), Error> {
    let since = match args {
        [] => None,
        [flag, at] if flag == "--since" => Some(at.parse::<jiff::Timestamp>().map_err(|_| {
            format!("--since {at:?} is not an RFC 3339 time such as 2026-11-23T07:00:00Z")
        })?),
        _ => return Err(USAGE.into()),
    };
    let stack = local_stack().await?;
    scan_and_print(&stack.deps, since).await
}

async fn scan_and_print(deps: &Deps, since: Option<jiff::Timestamp>) -> Result<(), Error> {
    use frontdesk::quality::scan;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let report = scan::run(deps, deadline, since).await?;
    println!(
        "[quality scan] {} calls scanned, {} skipped, {} new flags{}",
        report.calls_scanned,
        report.calls_skipped,
        report.flags_raised.len(),
        if report.stopped_early {
            " (stopped for time; the next run goes on)"
        } else {
            ""
        }
    );
    for f in &report.flags_raised {
        let turn = f
            .turn
            .map(|t| format!("turn {t}"))
            .unwrap_or_else(|| "whole call".into());
        println!(
            "  {:<8} {:<32} {} {turn}: {}",
            f.severity.as_str(),
            f.rule_id,
            f.conversation_id,
            f.excerpt
        );
    }
    Ok(())
}

/// The rules over a folder of exported transcripts: each would-be flag, then a per-rule count.
/// Reads files only; writes nothing anywhere.
fn replay(args: &[String]) -> Result<(), Error> {
    use frontdesk::quality::{
        replay::{read_export, Replay},
        BusinessFacts, RuleSet,
    };
    let (folder, rules_file) = match args {
        [folder] => (folder, None),
        [folder, flag, file] if flag == "--rules" => (folder, Some(file)),
        _ => return Err(USAGE.into()),
    };
    let prompts = prompts_dir();
    let business = TenantConfig::load_dir(&prompts)?;
    let rules = match rules_file {
        Some(file) => RuleSet::load_file(Path::new(file))?,
        None => business.quality.clone(),
    };
    let facts = BusinessFacts::of(&business);
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|e| format!("{folder}: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut replay = Replay::new(&rules);
    replay.masking = business.redacts().then(|| {
        jiff::Zoned::now()
            .with_time_zone(business.time_zone())
            .date()
    });
    let mut unreadable = 0;
    for file in &files {
        let raw = std::fs::read(file)?;
        match read_export(&raw) {
            Ok((conversation, call)) => replay.add(&rules, &facts, &conversation, &call),
            Err(e) => {
                unreadable += 1;
                eprintln!("skipped {}: {e}", file.display());
            }
        }
    }
    for (conversation, f) in &replay.findings {
        let turn = f
            .turn
            .map(|t| format!("turn {t}"))
            .unwrap_or_else(|| "whole call".into());
        println!(
            "{conversation}  {:<32} {:<8} {turn}: {}",
            f.rule_id,
            f.severity.as_str(),
            f.excerpt
        );
    }
    println!(
        "\n{} calls replayed ({unreadable} unreadable) with {} rules; nothing was written.",
        replay.calls,
        rules.rules.len()
    );
    println!("{:<32} calls flagged", "rule");
    for (rule, count) in &replay.per_rule {
        println!("{rule:<32} {count}");
    }
    Ok(())
}

/// `stack-env`: the local stack made (resources from template.yaml, the tenant loaded) and the
/// environment a function runs with printed as KEY=VALUE lines, local secrets included (make
/// bench starts functions with it, as Lambda would start them with the stack's).
async fn stack_env() -> Result<(), Error> {
    let stack = local_stack().await?;
    let c = &stack.deps.config;
    let mut lines = vec![
        ("FRONTDESK_TENANT_ID", c.tenant.to_string()),
        ("FRONTDESK_TABLE", c.table.clone()),
        ("FRONTDESK_BUCKET", c.bucket.clone()),
        ("FRONTDESK_RETRY_QUEUE_URL", c.retry_queue_url.clone()),
        ("FRONTDESK_EVENT_BUS", c.event_bus.clone()),
        (
            "FRONTDESK_SCHEDULE_GROUP",
            stack.made.schedule_group.clone(),
        ),
        (
            "FRONTDESK_SCHEDULE_TARGET_ARN",
            stack.made.retry_queue_arn.clone(),
        ),
        (
            "FRONTDESK_SCHEDULER_ROLE_ARN",
            stack.made.scheduler_role_arn.clone(),
        ),
    ];
    if let Some(base) = &c.public_base_url {
        lines.push(("FRONTDESK_PUBLIC_BASE_URL", base.clone()));
    }
    for (k, v) in &lines {
        println!("{k}={v}");
    }
    for (k, v) in &stack.secret_values {
        if frontdesk::secrets::NAMES.contains(&k.as_str()) {
            println!("{k}={v}");
        }
    }
    Ok(())
}

/// Prints a fresh local reviewer token for the tenant folder (as `make dev` does at start).
fn reviewer_token() -> Result<(), Error> {
    println!("{}", local_reviewer_token()?);
    Ok(())
}

/// Marks a lead quoted on the running make dev, as the owner would from the API.
async fn quoted(lead_id: &str, quote: Option<&String>) -> Result<(), Error> {
    let token = local_reviewer_token()?;
    let body = match quote {
        Some(q) => serde_json::json!({ "quote": q }),
        None => serde_json::json!({}),
    };
    let response = frontdesk::https::client_builder()
        .build()?
        .post(format!("http://{}/leads/{lead_id}/quoted", local_addr()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("is make dev running? {e}"))?;
    let status = response.status();
    println!("{status}: {}", response.text().await.unwrap_or_default());
    if !status.is_success() {
        return Err(format!("the lead was not marked quoted ({status})").into());
    }
    Ok(())
}

fn local_reviewer_token() -> Result<String, Error> {
    let secrets = local_secrets()?;
    let tenant = match std::env::var("FRONTDESK_TENANT_ID") {
        Ok(t) if !t.trim().is_empty() => t,
        _ => prompts_dir()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "demo".into()),
    };
    let now = local_clock()?.now().as_second();
    Ok(frontdesk::qa::auth::local_reviewer_token(
        secrets[QA_KEY].as_bytes(),
        &tenant,
        now,
        REVIEWER_TOKEN_HOURS,
    ))
}
