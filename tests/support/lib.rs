//! Black-box test support: the real handlers on a random port, moto (from the project's venv)
//! as AWS, wiremock servers as Twilio and ElevenLabs, and a clock the test controls.

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use frontdesk::clock::ManualClock;
use frontdesk::config::AppConfig;
use frontdesk::deps::Deps;
use frontdesk::elevenlabs::signature;
use frontdesk::local::{self, resources, resources::LocalResources, template::Template};
use frontdesk::secrets::Secrets;
use frontdesk::store::bookings::BookingRecord;
use frontdesk::tenant::TenantConfig;
use wiremock::matchers::{basic_auth, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub use frontdesk;
pub use futures::future::join_all;

/// The webhook secret of ElevenLabs' official test vector.
pub const WEBHOOK_SECRET: &str = "wsec_test_0123456789abcdef";
pub const TWILIO_SID: &str = "ACtest0000000000000000000000000000";
pub const TWILIO_TOKEN: &str = "test-auth-token";
pub const TOOL_SECRET: &str = "tool-test-secret-0123456789";
pub const WEB_FORM_SECRET: &str = "form-test-secret";
pub const WEB_FORM_TOKEN: &str = "form-test-token";
/// Attempts at one text answer before the fallback, in tests.
pub const LLM_ATTEMPTS: u64 = 3;

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

// ---------------------------------------------------------------------------------------------
// moto: one server per test binary, stopped when the binary exits.

struct Moto {
    endpoint: String,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

fn moto() -> &'static Moto {
    MOTO.get_or_init(|| {
        let python = std::env::var("FRONTDESK_MOTO_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace().join(".venv/bin/python"));
        assert!(
            python.exists(),
            "{} not found: run `make test`, which installs moto",
            python.display()
        );
        let server = workspace().join("tests/moto_server.py");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // moto lives as long as our stdin pipe: when this process ends, `read` returns and the
        // wrapper stops it, so no server outlives the tests.
        let script = format!(
            "'{}' '{}' 127.0.0.1 {port} >/dev/null 2>&1 & m=$!; read _; kill $m",
            python.display(),
            server.display()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        // Keep the pipe open for the life of the process.
        std::mem::forget(child);
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { endpoint }
    })
}

pub async fn sdk_config() -> SdkConfig {
    sdk_config_at(&moto().endpoint).await
}

/// moto's endpoint (`http://127.0.0.1:<port>`), e.g. for a proxy in front of it.
pub fn moto_endpoint() -> String {
    moto().endpoint.clone()
}

/// The SDK configuration of the tests, against another endpoint (a proxy in front of moto).
pub async fn sdk_config_at(endpoint: &str) -> SdkConfig {
    frontdesk::https::aws_config()
        .endpoint_url(endpoint)
        .region(Region::new("eu-west-2"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await
}

fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}{:x}{:x}{}",
        std::process::id(),
        nanos & 0xffffff,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------------------------
// Logs: every line the handlers write, kept so tests can check what never appears in them.

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<LogBuffer> = OnceLock::new();

fn capture_logs() {
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        let writer = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,aws=warn,hyper=warn",
            ))
            .with_writer(move || writer.clone())
            .try_init();
        buffer
    });
}

/// Everything logged so far by every test in this binary.
pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.get().expect("logs captured").0.lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The app.

pub struct Options {
    pub twilio_credentials: bool,
    pub elevenlabs_api_key: bool,
    /// An LLM key, so texts are answered by the LLM fake (`TestApp::llm`).
    pub llm_api_key: bool,
    /// The demo's quiet hours. Off by default: most tests run at wall-clock time, which may be
    /// anyone's night; the timed tests turn them on and set the clock.
    pub quiet_hours: bool,
    pub create_event_bus: bool,
    pub max_body_bytes: Option<usize>,
    /// Edits the demo tenant's business.toml before it is loaded.
    pub business_toml: Option<Box<dyn Fn(String) -> String + Send>>,
    /// Another business (its own id and tool secret)...
    pub tenant_id: Option<String>,
    pub tool_secret: Option<String>,
    /// ...in the same table, bucket and queues as an app already running.
    pub share_resources_with: Option<LocalResources>,
    /// The app's DynamoDB client goes to this endpoint instead of moto (a failing proxy in front
    /// of it); the test's own helpers (`items`, `records`...) still read moto directly.
    pub dynamodb_endpoint: Option<String>,
    /// The same for the app's SQS client (the retry queue, also as the retry worker reads it).
    pub sqs_endpoint: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            twilio_credentials: true,
            elevenlabs_api_key: false,
            llm_api_key: true,
            quiet_hours: false,
            create_event_bus: true,
            max_body_bytes: None,
            business_toml: None,
            tenant_id: None,
            tool_secret: None,
            share_resources_with: None,
            dynamodb_endpoint: None,
            sqs_endpoint: None,
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub deps: Arc<Deps>,
    pub clock: ManualClock,
    pub twilio: MockServer,
    pub elevenlabs: MockServer,
    /// The LLM's API (Anthropic Messages).
    pub llm: MockServer,
    pub resources: LocalResources,
    pub sdk: SdkConfig,
    pub http: reqwest::Client,
    /// The secret this app's tools accept.
    pub tool_secret: String,
    /// A queue subscribed to every event on the bus, to see what was published.
    event_tap: Mutex<Option<String>>,
    /// Events read from the tap so far (reading takes them off the queue).
    events_seen: Mutex<Vec<serde_json::Value>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    capture_logs();
    let sdk = sdk_config().await;
    let template = Template::load(&workspace().join("template.yaml")).expect("template.yaml loads");
    let made = match options.share_resources_with.clone() {
        Some(shared) => shared,
        None => resources::create(&sdk, &template, &unique("t"))
            .await
            .expect("local resources"),
    };
    let event_tap = if options.create_event_bus {
        Some(tap_events(&sdk, &made.event_bus).await)
    } else {
        aws_sdk_eventbridge::Client::new(&sdk)
            .delete_event_bus()
            .name(&made.event_bus)
            .send()
            .await
            .expect("delete bus");
        None
    };
    let twilio = MockServer::start().await;
    let elevenlabs = MockServer::start().await;
    let llm = MockServer::start().await;

    let tenant = options.tenant_id.clone().unwrap_or_else(|| "demo".into());
    let tool_secret = options
        .tool_secret
        .clone()
        .unwrap_or_else(|| TOOL_SECRET.to_string());
    let mut env: HashMap<&str, String> = HashMap::from([
        ("FRONTDESK_TENANT_ID", tenant.clone()),
        ("FRONTDESK_TABLE", made.table.clone()),
        ("FRONTDESK_BUCKET", made.bucket.clone()),
        ("FRONTDESK_RETRY_QUEUE_URL", made.retry_queue_url.clone()),
        ("FRONTDESK_EVENT_BUS", made.event_bus.clone()),
        ("FRONTDESK_SCHEDULE_GROUP", made.schedule_group.clone()),
        (
            "FRONTDESK_SCHEDULE_TARGET_ARN",
            made.retry_queue_arn.clone(),
        ),
        (
            "FRONTDESK_SCHEDULER_ROLE_ARN",
            made.scheduler_role_arn.clone(),
        ),
        ("TWILIO_API_BASE_URL", twilio.uri()),
        ("ELEVENLABS_API_BASE_URL", elevenlabs.uri()),
        ("FRONTDESK_LLM_BASE_URL", llm.uri()),
        ("FRONTDESK_LLM_ATTEMPTS", LLM_ATTEMPTS.to_string()),
        // Tests drain the queue themselves: no delays.
        ("FRONTDESK_INTAKE_RECHECK_SECS", "0".to_string()),
        ("FRONTDESK_RETRY_BASE_SECS", "0".to_string()),
        ("FRONTDESK_AUDIO_FETCH_DELAY_SECS", "0".to_string()),
        ("FRONTDESK_SEND_CHECK_DELAY_SECS", "0".to_string()),
        // moto's index is consistent at once; a test moves the clock instead of waiting.
        ("FRONTDESK_SCAN_SETTLE_SECS", "0".to_string()),
    ]);
    if let Some(limit) = options.max_body_bytes {
        env.insert("FRONTDESK_MAX_BODY_BYTES", limit.to_string());
    }
    let config = AppConfig::from_lookup(|k| env.get(k).cloned()).expect("config");
    let mut secrets: HashMap<&str, &str> = HashMap::from([
        ("ELEVENLABS_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("TOOL_SECRET", tool_secret.as_str()),
        ("WEB_FORM_SECRET", WEB_FORM_SECRET),
        ("WEB_FORM_TOKEN", WEB_FORM_TOKEN),
    ]);
    if options.llm_api_key {
        secrets.insert("LLM_API_KEY", "sk-test-llm");
    }
    if options.twilio_credentials {
        secrets.insert("TWILIO_ACCOUNT_SID", TWILIO_SID);
        secrets.insert("TWILIO_AUTH_TOKEN", TWILIO_TOKEN);
    }
    if options.elevenlabs_api_key {
        secrets.insert("ELEVENLABS_API_KEY", "xi-test-key");
    }
    let secrets = Secrets::from_lookup(|k| secrets.get(k).map(|v| v.to_string()));
    let clock = ManualClock::at(jiff::Timestamp::now());
    let mut built = Deps::build(config, &sdk, secrets, Arc::new(clock.clone())).expect("deps");
    if let Some(endpoint) = &options.dynamodb_endpoint {
        built.store = frontdesk::store::Store::new(
            aws_sdk_dynamodb::Client::new(&sdk_config_at(endpoint).await),
            &built.config.table,
            built.config.tenant.clone(),
        );
    }
    if let Some(endpoint) = &options.sqs_endpoint {
        built.queue = frontdesk::queue::Queue::new(
            aws_sdk_sqs::Client::new(&sdk_config_at(endpoint).await),
            &made.retry_queue_url,
        );
    }
    let deps = Arc::new(built);

    let mut toml = std::fs::read_to_string(workspace().join("prompts/demo/business.toml")).unwrap();
    if !options.quiet_hours {
        toml = without_quiet_hours(&toml);
    }
    if let Some(edit) = &options.business_toml {
        toml = edit(toml);
    }
    let mut business =
        TenantConfig::from_toml(&toml, "prompts/demo/business.toml").expect("demo tenant");
    business
        .load_folder(&workspace().join("prompts/demo"))
        .expect("demo rules, prompt and tools");
    deps.store
        .put_tenant_config(&business, "tests", clock_now(&clock))
        .await
        .expect("tenant config");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let router = local::all_routes(deps.clone(), REVIEWER_KEY);
    tokio::spawn(async move { axum_serve(listener, router).await });

    TestApp {
        address,
        deps,
        clock,
        twilio,
        elevenlabs,
        llm,
        resources: made,
        sdk,
        http: frontdesk::https::client_builder()
            .build()
            .expect("an HTTP client"),
        tool_secret,
        event_tap: Mutex::new(event_tap),
        events_seen: Mutex::new(Vec::new()),
    }
}

/// The business's `[quiet_hours]` replaced by windows that allow every hour.
fn without_quiet_hours(toml: &str) -> String {
    let always = "[quiet_hours]\ncustomers = { start = \"00:00\", end = \"23:59:59.999999999\" }\nstaff = { start = \"00:00\", end = \"23:59:59.999999999\" }\nhot_leads_any_time = true\n";
    match toml.find("[quiet_hours]") {
        Some(start) => {
            let end = toml[start + 1..]
                .find("\n[")
                .map(|i| start + 1 + i + 1)
                .unwrap_or(toml.len());
            format!("{}{always}{}", &toml[..start], &toml[end..])
        }
        None => format!("{toml}\n{always}"),
    }
}

fn clock_now(clock: &ManualClock) -> jiff::Timestamp {
    use frontdesk::clock::Clock;
    clock.now()
}

async fn axum_serve(listener: tokio::net::TcpListener, router: axum::Router) {
    axum::serve(listener, router).await.unwrap();
}

/// A rule on the bus that copies every Frontdesk event into a fresh queue.
async fn tap_events(sdk: &SdkConfig, bus: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let url = sqs
        .create_queue()
        .queue_name(unique("tap"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let events = aws_sdk_eventbridge::Client::new(sdk);
    events
        .put_rule()
        .name("tap")
        .event_bus_name(bus)
        .event_pattern(r#"{"source":["frontdesk"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("tap")
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("tap")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    url
}

impl TestApp {
    pub fn now(&self) -> jiff::Timestamp {
        clock_now(&self.clock)
    }

    pub fn sign(&self, body: &[u8]) -> String {
        signature::sign(body, WEBHOOK_SECRET.as_bytes(), self.now())
    }

    pub async fn post_webhook(
        &self,
        body: &[u8],
        signature_header: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/webhooks/elevenlabs/post-call", self.address))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(sig) = signature_header {
            req = req.header("ElevenLabs-Signature", sig);
        }
        req.send().await.expect("request")
    }

    /// Twilio accepting every text (exactly `expect` of them, when given).
    pub async fn twilio_accepts(&self, expect: Option<u64>) {
        match expect {
            Some(n) => self.expect_texts(n, twilio_ok()).await,
            None => self.mount_twilio(twilio_ok()).await,
        }
    }

    /// Twilio answering Messages creates with `response`, exactly `n` of them (wiremock checks
    /// the count when the test ends).
    pub async fn expect_texts(&self, n: u64, response: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path(messages_path()))
            .respond_with(response)
            .expect(n)
            .mount(&self.twilio)
            .await;
    }

    /// The first slot check_availability offers for `service` on `date`.
    pub async fn first_slot(&self, service: &str, date: &str) -> serde_json::Value {
        let (status, answer) = self
            .tool(
                "check_availability",
                &serde_json::json!({"service": service, "date": date}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        answer["slots"][0].clone()
    }

    /// Calls an agent tool as ElevenLabs would: POST, JSON body, the tool secret header.
    pub async fn tool(&self, name: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.post_with_secret(&format!("/tools/{name}"), &self.tool_secret, body)
            .await
    }

    /// Calls a tool as of another time (`x-frontdesk-now`), as a replayed conversation does.
    pub async fn tool_at(
        &self,
        name: &str,
        now: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let request = self
            .http
            .post(format!("{}/tools/{name}", self.address))
            .header("x-frontdesk-tool-secret", &self.tool_secret)
            .header("x-frontdesk-now", now);
        answer_of(request.json(body)).await
    }

    /// POSTs JSON to a path with a given tool secret.
    pub async fn post_with_secret(
        &self,
        path: &str,
        secret: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let request = self
            .http
            .post(format!("{}{path}", self.address))
            .header("x-frontdesk-tool-secret", secret);
        answer_of(request.json(body)).await
    }

    /// Signs with the current clock and posts.
    pub async fn deliver(&self, body: &[u8]) -> reqwest::Response {
        let sig = self.sign(body);
        self.post_webhook(body, Some(&sig)).await
    }

    /// Fires the schedules due by the app's clock (moto never fires them).
    pub async fn fire_due_schedules(&self) -> Vec<frontdesk::schedules::Scheduled> {
        local::scheduler::fire_due(&self.deps)
            .await
            .expect("fire schedules")
    }

    /// The business's schedules, soonest first.
    pub async fn schedules(&self) -> Vec<frontdesk::schedules::Scheduled> {
        self.deps
            .schedules
            .as_ref()
            .expect("schedules configured")
            .list()
            .await
            .expect("list schedules")
    }

    /// One batch from the retry queue, as one Lambda invocation would get it.
    pub async fn poll_queue_once(&self) -> usize {
        local::poller::poll_once(&self.deps, Duration::ZERO)
            .await
            .expect("poll")
    }

    /// Runs the retry queue until it stays empty (as Lambda's event source would).
    pub async fn drain_queue(&self) -> usize {
        let mut handled = 0;
        let mut empty_polls = 0;
        for _ in 0..60 {
            let n = local::poller::poll_once(&self.deps, Duration::ZERO)
                .await
                .expect("poll");
            handled += n;
            if n == 0 {
                empty_polls += 1;
                if empty_polls >= 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            } else {
                empty_polls = 0;
            }
        }
        handled
    }

    /// Every item in the table (tests only; the product never scans).
    pub async fn items(&self) -> Vec<HashMap<String, AttributeValue>> {
        let client = aws_sdk_dynamodb::Client::new(&self.sdk);
        let mut items = Vec::new();
        let mut start = None;
        // Every page: a scan stops at 1 MB.
        loop {
            let out = client
                .scan()
                .table_name(&self.resources.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return items,
            }
        }
    }

    /// Items other than the tenant's configuration.
    pub async fn records(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.items()
            .await
            .into_iter()
            .filter(|i| !matches!(i.get("SK"), Some(AttributeValue::S(s)) if s == "CONFIG"))
            .collect()
    }

    pub async fn records_of(&self, sk: &str) -> Vec<HashMap<String, AttributeValue>> {
        self.records()
            .await
            .into_iter()
            .filter(|i| matches!(i.get("SK"), Some(AttributeValue::S(s)) if s == sk))
            .collect()
    }

    pub async fn object_keys(&self) -> Vec<String> {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk)
                .force_path_style(true)
                .build(),
        );
        let out = s3
            .list_objects_v2()
            .bucket(&self.resources.bucket)
            .send()
            .await
            .unwrap();
        out.contents
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| o.key)
            .collect()
    }

    pub async fn object(&self, key: &str) -> Vec<u8> {
        self.deps
            .blobs
            .get(key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no object {key}"))
    }

    /// Messages waiting in the retry queue, visible or not.
    pub async fn queued(&self) -> usize {
        queue_depth(&self.sdk, &self.resources.retry_queue_url).await
    }

    pub async fn dead_letters(&self) -> usize {
        queue_depth(&self.sdk, &self.resources.dead_letter_queue_url).await
    }

    /// The Twilio Messages requests received so far, as form fields.
    pub async fn texts_sent(&self) -> Vec<HashMap<String, String>> {
        self.twilio
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path().ends_with("/Messages.json"))
            .map(|r| url_decode_form(&r.body))
            .collect()
    }

    /// Every event published on the bus so far, as EventBridge delivered it.
    pub async fn published_events(&self) -> Vec<serde_json::Value> {
        let Some(url) = self.event_tap.lock().unwrap().clone() else {
            return Vec::new();
        };
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let mut fresh = Vec::new();
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                fresh.push(serde_json::from_str(m.body.as_deref().unwrap_or("null")).unwrap());
                sqs.delete_message()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        let mut seen = self.events_seen.lock().unwrap();
        seen.extend(fresh);
        seen.clone()
    }

    /// The event bus goes away (its tap first, as EventBridge wants): publishing fails.
    pub async fn lose_event_bus(&self) {
        let events = aws_sdk_eventbridge::Client::new(&self.sdk);
        let bus = &self.resources.event_bus;
        events
            .remove_targets()
            .rule("tap")
            .event_bus_name(bus)
            .ids("tap")
            .send()
            .await
            .unwrap();
        events
            .delete_rule()
            .name("tap")
            .event_bus_name(bus)
            .send()
            .await
            .unwrap();
        events.delete_event_bus().name(bus).send().await.unwrap();
        self.published_events().await; // keep what the old tap saw
        *self.event_tap.lock().unwrap() = None;
    }

    /// The event bus (deleted by `create_event_bus: false`) is back, with its tap.
    pub async fn restore_event_bus(&self) {
        aws_sdk_eventbridge::Client::new(&self.sdk)
            .create_event_bus()
            .name(&self.resources.event_bus)
            .send()
            .await
            .unwrap();
        let tap = tap_events(&self.sdk, &self.resources.event_bus).await;
        *self.event_tap.lock().unwrap() = Some(tap);
    }

    /// The names (detail types) of the events published so far, in order.
    pub async fn event_kinds(&self) -> Vec<String> {
        self.published_events()
            .await
            .iter()
            .map(|e| e["detail-type"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// How many events of one kind were published.
    pub async fn events_of(&self, kind: &str) -> Vec<serde_json::Value> {
        self.published_events()
            .await
            .into_iter()
            .filter(|e| e["detail-type"] == kind)
            .map(|e| e["detail"].clone())
            .collect()
    }

    /// A booking as the store has it.
    pub async fn booking(&self, id: &str) -> BookingRecord {
        self.deps
            .store
            .get_booking(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no booking {id}"))
    }

    /// How many of a booking's cells are locked by it.
    pub async fn cells_held(&self, id: &str) -> usize {
        let booking = self.booking(id).await;
        self.deps.store.cells_held(&booking).await.unwrap()
    }

    /// Twilio answering every Messages create with `response`.
    pub async fn mount_twilio(&self, response: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path(messages_path()))
            .and(basic_auth(TWILIO_SID, TWILIO_TOKEN))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .respond_with(response)
            .mount(&self.twilio)
            .await;
    }

    /// Twilio's recent-messages list for `to`: these bodies, newest first.
    pub async fn mount_twilio_list(&self, to: &str, bodies: &[&str]) {
        let messages: Vec<serde_json::Value> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| serde_json::json!({"sid": format!("SM{i:032}"), "to": to, "body": b, "status": "delivered"}))
            .collect();
        Mock::given(method("GET"))
            .and(path(messages_path()))
            .and(wiremock::matchers::query_param("To", to))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"messages": messages, "page": 0})),
            )
            .mount(&self.twilio)
            .await;
    }
}

/// The status and JSON body (null when not JSON) of a request.
async fn answer_of(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// Twilio's signature of a webhook to this app, as Twilio computes it (test auth token).
impl TestApp {
    pub fn twilio_signature(&self, path: &str, params: &[(String, String)]) -> String {
        frontdesk::twilio::signature::sign(
            TWILIO_TOKEN.as_bytes(),
            &format!("{}{path}", self.address),
            params,
        )
    }

    /// POSTs form parameters to a Twilio webhook path with this signature (none: unsigned).
    pub async fn post_twilio(
        &self,
        path: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> (u16, String, String) {
        let body: String = form_urlencoded_body(params);
        let mut request = self
            .http
            .post(format!("{}{path}", self.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(sig) = signature {
            request = request.header("x-twilio-signature", sig);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (
            status,
            content_type,
            response.text().await.unwrap_or_default(),
        )
    }

    /// An inbound text from `from`, signed as Twilio signs it. Returns the status.
    pub async fn text(&self, sid: &str, from: &str, body: &str) -> u16 {
        self.text_with(sid, from, body, &[]).await
    }

    pub async fn text_with(
        &self,
        sid: &str,
        from: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> u16 {
        let params = inbound_text(sid, from, body, extra);
        let sig = self.twilio_signature("/webhooks/twilio/messaging", &params);
        let (status, content_type, answer) = self
            .post_twilio("/webhooks/twilio/messaging", &params, Some(&sig))
            .await;
        if status == 200 {
            assert!(content_type.starts_with("text/xml"), "{content_type}");
            assert!(answer.contains("<Response/>"), "{answer}");
        }
        status
    }
}

/// Twilio's inbound-message parameters (as in its docs' samples) for a text to the demo number.
pub fn inbound_text(
    sid: &str,
    from: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let to = if from.starts_with("whatsapp:") {
        "whatsapp:+442079460000"
    } else {
        "+442079460000"
    };
    let mut params: Vec<(String, String)> = [
        ("ToCountry", "GB"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("FromZip", ""),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", body),
        ("FromCountry", "GB"),
        ("To", to),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", TWILIO_SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    params
}

pub fn form_urlencoded_body(params: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&enc(k));
        out.push('=');
        out.push_str(&enc(v));
    }
    out
}

fn enc(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A message SID from a number (34 characters: SM + 32 hex).
pub fn sid(n: u32) -> String {
    format!("SM{n:032x}")
}

/// The key the local server checks reviewer tokens with, in tests.
pub const REVIEWER_KEY: &[u8] = b"qa_test_key_0123456789";

impl TestApp {
    /// A reviewer token of this app's tenant, valid for an hour from the app's clock.
    pub fn reviewer_token(&self) -> String {
        self.reviewer_token_for(self.deps.config.tenant.as_str())
    }

    pub fn reviewer_token_for(&self, tenant: &str) -> String {
        frontdesk::qa::auth::local_reviewer_token(REVIEWER_KEY, tenant, self.now().as_second(), 1)
    }

    /// A QA request with this bearer token (none for `None`): its status and JSON body.
    pub async fn qa(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.address);
        let mut request = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url),
        };
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        answer_of(request).await
    }
}

/// Twilio's Messages resource for the test account.
pub fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
}

/// Twilio's 201 to a Messages create.
pub fn twilio_ok() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(serde_json::json!({
        "sid": "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "queued",
    }))
}

/// Twilio refusing with its legacy error body.
pub fn twilio_refuses(status: u16, code: u32) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(serde_json::json!({
        "code": code, "message": "refused", "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status,
    }))
}

async fn queue_depth(sdk: &SdkConfig, url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(A::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes.unwrap_or_default();
    [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
        A::ApproximateNumberOfMessagesDelayed,
    ]
    .iter()
    .map(|a| {
        attrs
            .get(a)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
    })
    .sum()
}

/// Form fields of a request body (`application/x-www-form-urlencoded`).
pub fn form_fields(body: &[u8]) -> HashMap<String, String> {
    url_decode_form(body)
}

fn url_decode_form(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A string attribute of an item.
pub fn attr(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    match item.get(name)? {
        AttributeValue::S(s) => Some(s.clone()),
        AttributeValue::N(n) => Some(n.clone()),
        AttributeValue::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A sample from events/, as bytes.
pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(workspace().join("events/webhooks").join(name)).unwrap()
}

/// A sample with edits applied to its JSON.
pub fn sample_with(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&sample(name)).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

/// The demo agent's opening: it says it is an AI and that calls are recorded.
pub const OPENING: &str = "Hi, you're through to Northside Plumbing, I'm Ava, the virtual receptionist. Calls are recorded for quality.";

/// Turns from (role, text); `tool:<name>` is the agent calling a tool, `ok:<name>` its result.
pub fn turns(spec: &[(&str, &str)]) -> serde_json::Value {
    let turns: Vec<serde_json::Value> = spec
        .iter()
        .enumerate()
        .map(|(i, (role, text))| {
            let at = i as u64 * 4;
            if let Some(tool) = text.strip_prefix("tool:") {
                serde_json::json!({"role": "agent", "message": null, "time_in_call_secs": at, "tool_calls": [{
                    "type": "webhook", "request_id": format!("{tool}_{i:032}"), "tool_name": tool,
                    "params_as_json": "{}", "tool_has_been_called": true}], "tool_results": []})
            } else if let Some(tool) = text.strip_prefix("ok:") {
                serde_json::json!({"role": "agent", "message": null, "time_in_call_secs": at, "tool_calls": [], "tool_results": [{
                    "type": "webhook", "request_id": format!("{tool}_{:032}", i - 1), "tool_name": tool,
                    "result_value": "{\"ok\": true}", "is_error": false, "tool_has_been_called": true}]})
            } else {
                serde_json::json!({"role": role, "message": text, "time_in_call_secs": at, "tool_calls": [], "tool_results": []})
            }
        })
        .collect();
    serde_json::Value::Array(turns)
}

/// A post-call transcription webhook body for `conversation` with these turns, a disposition and (optionally)
/// a failed evaluation or the caller's sentiment.
pub fn transcript_call(
    conversation: &str,
    spec: &[(&str, &str)],
    disposition: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    sample_with("post_call_transcription.json", |v| {
        v["data"]["conversation_id"] = serde_json::json!(conversation);
        v["data"]["transcript"] = turns(spec);
        let analysis = &mut v["data"]["analysis"];
        analysis["data_collection_results"]["disposition"]["value"] =
            serde_json::json!(disposition);
        analysis["data_collection_results"]["urgency"]["value"] = serde_json::json!("normal");
        analysis["evaluation_criteria_results"]["booked_or_routed"]["result"] =
            serde_json::json!("success");
        for (key, value) in extra {
            match *key {
                "evaluation" => {
                    analysis["evaluation_criteria_results"]["booked_or_routed"]["result"] =
                        serde_json::json!(value)
                }
                field => {
                    analysis["data_collection_results"][field] = serde_json::json!({"data_collection_id": field, "value": value, "rationale": "-"})
                }
            }
        }
    })
}
