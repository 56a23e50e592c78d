//! `make reliability` (issue 12): the load and the fault suites, black-box, against the real
//! router on a loopback port, moto as AWS and stateful fakes of Twilio, the LLM and ElevenLabs.
//!
//! Not part of `make test` (`test = false` in Cargo.toml). Run with
//! `cargo test -p frontdesk-blackbox --all-features --test reliability -- --nocapture --test-threads=1`.
//!
//! Load (`load_*`): bounded bursts of concurrent requests (counts scaled by
//! `FRONTDESK_LOAD_SCALE`, concurrency `FRONTDESK_LOAD_CONCURRENCY`), then: no 5xx, no
//! duplicates, nothing lost; a table of requests, throughput and latency per kind.
//!
//! Faults (`faults_*`): Twilio, the LLM, ElevenLabs, DynamoDB and SQS failing for a while, then
//! recovering; the retry queue drained as the retry worker would; every message counted at the
//! fake (exactly once), every record counted in the table (exactly once), the dead-letter
//! queue and the alarms as template.yaml designs them.
//!
//! Nothing here prints a phone number, a name or a text: only counts and timings.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frontdesk_blackbox::frontdesk::local::template::Template;
use frontdesk_blackbox::*;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

// ---------------------------------------------------------------------------------------------
// Bounds.

/// Multiplies every load count (`FRONTDESK_LOAD_SCALE`, 0.05 to 10; default 1).
fn scale() -> f64 {
    std::env::var("FRONTDESK_LOAD_SCALE")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .unwrap_or(1.0)
        .clamp(0.05, 10.0)
}

fn scaled(n: usize) -> usize {
    ((n as f64 * scale()).round() as usize).max(2)
}

/// Requests in flight at once (`FRONTDESK_LOAD_CONCURRENCY`, 1 to 64; default 16).
fn concurrency() -> usize {
    std::env::var("FRONTDESK_LOAD_CONCURRENCY")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(16)
        .clamp(1, 64)
}

/// Monday 23 November 2026, 7am in London: the week ahead is open.
const MONDAY_MORNING: &str = "2026-11-23T07:00:00Z";
const OWNER: &str = "+442079460001";
/// Retry workers running at once in the load tests.
const WORKERS: usize = 4;
/// Callers racing for one slot (SPEC §5: 50 concurrent create_booking calls for one slot).
const RACERS_PER_SLOT: usize = 50;

/// A UK mobile number per index (never printed).
fn phone(series: u32, i: usize) -> String {
    // 0740x xxxxxx: mobile numbers for any series below 100.
    format!("+44740{series:02}{i:05}")
}

// ---------------------------------------------------------------------------------------------
// Measuring.

#[derive(Clone)]
struct Outcome {
    index: usize,
    status: u16,
    body: Value,
    latency: Duration,
}

struct Row {
    kind: String,
    /// Requests in flight at once (workers, for a queue phase).
    in_flight: usize,
    requests: usize,
    statuses: BTreeMap<u16, usize>,
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Row {
    fn percentile(&self, p: f64) -> f64 {
        let mut v: Vec<f64> = self
            .latencies
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        if v.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }

    fn server_errors(&self) -> usize {
        self.statuses
            .iter()
            .filter(|(s, _)| **s >= 500)
            .map(|(_, n)| n)
            .sum()
    }
}

fn print_table(title: &str, rows: &[Row]) {
    println!();
    println!(
        "{title} (FRONTDESK_LOAD_SCALE {}, FRONTDESK_LOAD_CONCURRENCY {})",
        scale(),
        concurrency()
    );
    println!(
        "| {:<40} | {:>4} | {:>8} | {:>11} | {:>8} | {:>9} | {:>8} | {:>8} | {:>8} |",
        "kind", "conc", "requests", "statuses", "wall s", "req/s", "p50 ms", "p99 ms", "max ms"
    );
    println!(
        "|{:-<42}|{:->6}|{:->10}|{:->13}|{:->10}|{:->11}|{:->10}|{:->10}|{:->10}|",
        "", "", "", "", "", "", "", "", ""
    );
    for r in rows {
        let statuses: Vec<String> = r.statuses.iter().map(|(s, n)| format!("{s}x{n}")).collect();
        if r.latencies.is_empty() {
            println!(
                "| {:<40} | {:>4} | {:>8} | {:>11} | {:>8.2} | {:>9.1} | {:>8} | {:>8} | {:>8} |",
                r.kind,
                r.in_flight,
                r.requests,
                "-",
                r.wall.as_secs_f64(),
                r.requests as f64 / r.wall.as_secs_f64().max(1e-9),
                "-",
                "-",
                "-",
            );
            continue;
        }
        println!(
            "| {:<40} | {:>4} | {:>8} | {:>11} | {:>8.2} | {:>9.1} | {:>8.1} | {:>8.1} | {:>8.1} |",
            r.kind,
            r.in_flight,
            r.requests,
            statuses.join(" "),
            r.wall.as_secs_f64(),
            r.requests as f64 / r.wall.as_secs_f64().max(1e-9),
            r.percentile(50.0),
            r.percentile(99.0),
            r.percentile(100.0),
        );
    }
    println!();
}

/// Runs `n` requests, at most `concurrency()` at once; each returns (status, body).
async fn burst<F, Fut>(kind: &str, n: usize, request: F) -> (Row, Vec<Outcome>)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = (u16, Value)>,
{
    burst_at(kind, n, concurrency(), request).await
}

/// The same with its own bound on requests in flight.
async fn burst_at<F, Fut>(kind: &str, n: usize, in_flight: usize, request: F) -> (Row, Vec<Outcome>)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = (u16, Value)>,
{
    let started = Instant::now();
    let request = &request;
    let mut outcomes: Vec<Outcome> = stream::iter(0..n)
        .map(|index| async move {
            let t = Instant::now();
            let (status, body) = request(index).await;
            Outcome {
                index,
                status,
                body,
                latency: t.elapsed(),
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let wall = started.elapsed();
    outcomes.sort_by_key(|o| o.index);
    let mut statuses = BTreeMap::new();
    for o in &outcomes {
        *statuses.entry(o.status).or_insert(0) += 1;
    }
    let row = Row {
        kind: kind.to_string(),
        in_flight,
        requests: n,
        statuses,
        wall,
        latencies: outcomes.iter().map(|o| o.latency).collect(),
    };
    (row, outcomes)
}

/// A timed phase that is not a request burst (draining the queue), as a table row.
fn phase_row(kind: &str, workers: usize, handled: usize, wall: Duration) -> Row {
    Row {
        kind: kind.to_string(),
        in_flight: workers,
        requests: handled,
        statuses: BTreeMap::new(),
        wall,
        latencies: Vec::new(),
    }
}

async fn webhook(app: &TestApp, body: &[u8]) -> (u16, Value) {
    let response = app.deliver(body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn inbound(app: &TestApp, message_sid: &str, from: &str, body: &str) -> (u16, Value) {
    (app.text(message_sid, from, body).await, Value::Null)
}

/// Duplicates (a key seen more than once: the extra ones) and the keys seen.
fn tally(keys: impl IntoIterator<Item = String>) -> (usize, HashMap<String, usize>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for k in keys {
        *seen.entry(k).or_insert(0) += 1;
    }
    (seen.values().map(|n| n.saturating_sub(1)).sum(), seen)
}

/// Expected keys never seen.
fn missing(expected: &[String], seen: &HashMap<String, usize>) -> usize {
    expected.iter().filter(|k| !seen.contains_key(*k)).count()
}

/// Indices 0..n, every fourth twice in a row (so the two deliveries race).
fn with_redeliveries(n: usize) -> Vec<usize> {
    (0..n)
        .flat_map(|i| if i % 4 == 0 { vec![i, i] } else { vec![i] })
        .collect()
}

/// Retry workers run side by side (Lambda runs several batches of one queue at once) until
/// the queue stays empty, then a last single drain. Returns the jobs handled.
/// While `busy` (requests still coming), an empty queue does not stop them.
async fn drain_with_workers(app: &TestApp, workers: usize, busy: &AtomicBool) -> usize {
    let deadline = Instant::now() + Duration::from_secs(300);
    let runs = (0..workers).map(|_| async {
        let (mut handled, mut empty) = (0, 0);
        while Instant::now() < deadline {
            let n = app.poll_queue_once().await;
            handled += n;
            if n > 0 {
                empty = 0;
                continue;
            }
            if busy.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            empty += 1;
            if empty >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        handled
    });
    let handled: usize = join_all(runs).await.into_iter().sum();
    handled + drain_all(app).await
}

/// Runs the retry queue until it is empty (bounded), as Lambda's event source would.
async fn drain_all(app: &TestApp) -> usize {
    let mut handled = 0;
    for _ in 0..20 {
        handled += app.drain_queue().await;
        if app.queued().await == 0 {
            break;
        }
    }
    handled
}

// ---------------------------------------------------------------------------------------------
// Twilio: a stateful fake. Messages it accepts go in its ledger (with a SID), its list API
// answers from that ledger (so the product's "check before sending again" finds what an
// unclear answer did send), and a fault can be switched on for a while.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TwilioFault {
    None,
    /// An error status; the message was not created.
    Refuse(u16),
    /// 429 with Retry-After; not created.
    RateLimited,
    /// A 500 after the message was created (Twilio warns a retried 500 may send twice).
    ErrorAfterCreating,
    /// Created, but the answer comes after the client's 10 s timeout.
    AnswerTooLate,
    /// Created, and the answer is slow but within the client's timeout.
    SlowAnswer,
}

impl TwilioFault {
    fn name(self) -> String {
        match self {
            Self::None => "none".into(),
            Self::Refuse(s) => format!("HTTP {s} (not created)"),
            Self::RateLimited => "429 + Retry-After".into(),
            Self::ErrorAfterCreating => "500 after creating".into(),
            Self::AnswerTooLate => "answer after the 10 s timeout".into(),
            Self::SlowAnswer => "slow answer (3 s)".into(),
        }
    }
}

struct Sent {
    sid: String,
    to: String,
    body: String,
}

#[derive(Default)]
struct TwilioLedger {
    sent: Vec<Sent>,
    /// Message creates received, by (To, Body).
    posts: HashMap<(String, String), usize>,
    lists: usize,
    injected: usize,
    /// Messages (To, Body) whose create met the fault at least once.
    faulted: HashSet<(String, String)>,
}

#[derive(Clone)]
struct TwilioFake {
    fault: Arc<Mutex<TwilioFault>>,
    /// Numbers Twilio refuses for good (503 on every attempt).
    doomed: Arc<Mutex<HashSet<String>>>,
    ledger: Arc<Mutex<TwilioLedger>>,
}

impl TwilioFake {
    async fn mount(app: &TestApp) -> Self {
        let fake = Self {
            fault: Arc::new(Mutex::new(TwilioFault::None)),
            doomed: Arc::default(),
            ledger: Arc::default(),
        };
        Mock::given(path(messages_path()))
            .respond_with(fake.clone())
            .mount(&app.twilio)
            .await;
        fake
    }

    fn set(&self, fault: TwilioFault) {
        *self.fault.lock().unwrap() = fault;
    }

    fn error(status: u16, code: u32) -> ResponseTemplate {
        twilio_refuses(status, code)
    }

    fn create(&self, to: &str, body: &str) -> String {
        let mut ledger = self.ledger.lock().unwrap();
        let sid = format!("SM{:032x}", ledger.sent.len() + 1);
        ledger.sent.push(Sent {
            sid: sid.clone(),
            to: to.to_string(),
            body: body.to_string(),
        });
        sid
    }

    fn created(sid: &str) -> ResponseTemplate {
        ResponseTemplate::new(201).set_body_json(json!({"sid": sid, "status": "queued"}))
    }

    /// Messages accepted so far (each created at Twilio once).
    fn sent(&self) -> Vec<(String, String, String)> {
        self.ledger
            .lock()
            .unwrap()
            .sent
            .iter()
            .map(|s| (s.sid.clone(), s.to.clone(), s.body.clone()))
            .collect()
    }

    fn injected(&self) -> usize {
        self.ledger.lock().unwrap().injected
    }

    fn posts(&self) -> usize {
        self.ledger.lock().unwrap().posts.values().sum()
    }

    fn lists(&self) -> usize {
        self.ledger.lock().unwrap().lists
    }

    fn faulted(&self) -> usize {
        self.ledger.lock().unwrap().faulted.len()
    }
}

impl Respond for TwilioFake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let fault = *self.fault.lock().unwrap();
        if request.method.as_str() == "GET" {
            let to: String = request
                .url
                .query_pairs()
                .find(|(k, _)| k == "To")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let mut ledger = self.ledger.lock().unwrap();
            ledger.lists += 1;
            let failing = match fault {
                TwilioFault::None | TwilioFault::SlowAnswer => None,
                TwilioFault::Refuse(s) => Some(Self::error(s, 20003)),
                TwilioFault::RateLimited => {
                    Some(Self::error(429, 20429).insert_header("Retry-After", "1"))
                }
                TwilioFault::ErrorAfterCreating => Some(Self::error(500, 20500)),
                TwilioFault::AnswerTooLate => Some(
                    ResponseTemplate::new(200)
                        .set_body_json(json!({"messages": [], "page": 0}))
                        .set_delay(Duration::from_secs(11)),
                ),
            };
            if let Some(answer) = failing {
                ledger.injected += 1;
                return answer;
            }
            // Newest first, as Twilio lists them.
            let messages: Vec<Value> = ledger
                .sent
                .iter()
                .rev()
                .filter(|s| s.to == to)
                .map(|s| {
                    json!({"sid": s.sid, "to": s.to, "body": s.body, "status": "sent",
                                 "date_created": "Mon, 23 Nov 2026 07:00:00 +0000"})
                })
                .collect();
            return ResponseTemplate::new(200)
                .set_body_json(json!({"messages": messages, "page": 0}));
        }
        let form = form_fields(&request.body);
        let to = form.get("To").cloned().unwrap_or_default();
        let body = form.get("Body").cloned().unwrap_or_default();
        *self
            .ledger
            .lock()
            .unwrap()
            .posts
            .entry((to.clone(), body.clone()))
            .or_insert(0) += 1;
        if self.doomed.lock().unwrap().contains(&to) {
            self.ledger.lock().unwrap().injected += 1;
            return Self::error(503, 20503);
        }
        let answer = match fault {
            TwilioFault::None => return Self::created(&self.create(&to, &body)),
            TwilioFault::Refuse(s) => Self::error(s, if s == 500 { 20500 } else { 20503 }),
            TwilioFault::RateLimited => Self::error(429, 20429).insert_header("Retry-After", "1"),
            TwilioFault::ErrorAfterCreating => {
                self.create(&to, &body);
                Self::error(500, 20500)
            }
            TwilioFault::AnswerTooLate => {
                Self::created(&self.create(&to, &body)).set_delay(Duration::from_secs(11))
            }
            TwilioFault::SlowAnswer => {
                Self::created(&self.create(&to, &body)).set_delay(Duration::from_secs(3))
            }
        };
        let mut ledger = self.ledger.lock().unwrap();
        ledger.injected += 1;
        ledger.faulted.insert((to, body));
        answer
    }
}

/// The outbox against Twilio's ledger: every message sent, each created at Twilio exactly once
/// (its SID in the ledger once), nothing at Twilio that is not one of ours. Returns
/// (messages, duplicates, lost).
async fn check_outbox_against_twilio(app: &TestApp, twilio: &TwilioFake) -> (usize, usize, usize) {
    // Timed messages (reminders, review requests) wait for their day: not due, not counted.
    let messages: Vec<_> = app
        .records_of("MSG")
        .await
        .into_iter()
        .filter(|m| {
            !(attr(m, "scheduled").as_deref() == Some("true")
                && attr(m, "state").as_deref() == Some("deferred"))
        })
        .collect();
    let sent = twilio.sent();
    let mut by_content: HashMap<(String, String), usize> = HashMap::new();
    for (_, to, body) in &sent {
        *by_content.entry((to.clone(), body.clone())).or_insert(0) += 1;
    }
    let duplicates: usize = by_content.values().map(|n| n - 1).sum();
    let ledger_sids: HashSet<&str> = sent.iter().map(|(sid, _, _)| sid.as_str()).collect();
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    let mut lost = 0;
    let mut our_sids = HashSet::new();
    for m in &messages {
        let state = attr(m, "state").unwrap_or_default();
        *states.entry(state.clone()).or_insert(0) += 1;
        match attr(m, "twilio_sid") {
            Some(sid) if state == "sent" && ledger_sids.contains(sid.as_str()) => {
                assert!(our_sids.insert(sid), "two messages claim one Twilio SID");
            }
            _ => lost += 1,
        }
    }
    assert_eq!(duplicates, 0, "a message was created at Twilio twice");
    assert_eq!(lost, 0, "messages not sent (states {states:?})");
    assert_eq!(
        sent.len(),
        messages.len(),
        "Twilio has messages the outbox does not know, or the reverse (states {states:?})"
    );
    (messages.len(), duplicates, lost)
}

// ---------------------------------------------------------------------------------------------
// The LLM (Anthropic Messages API) and ElevenLabs: fakes that fail on demand.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ApiFault {
    None,
    Status(u16),
    /// The next request answers after the client's timeout, the others `Status(status)`.
    OneTimeout {
        status: u16,
        after: Duration,
    },
}

#[derive(Clone)]
struct FlakyApi {
    fault: Arc<Mutex<ApiFault>>,
    timeout_used: Arc<AtomicBool>,
    requests: Arc<Mutex<HashMap<String, usize>>>,
    injected: Arc<AtomicU64>,
    ok: fn(&Request) -> ResponseTemplate,
}

impl FlakyApi {
    fn new(ok: fn(&Request) -> ResponseTemplate) -> Self {
        Self {
            fault: Arc::new(Mutex::new(ApiFault::None)),
            timeout_used: Arc::default(),
            requests: Arc::default(),
            injected: Arc::default(),
            ok,
        }
    }

    fn set(&self, fault: ApiFault) {
        *self.fault.lock().unwrap() = fault;
    }

    fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    fn total(&self) -> usize {
        self.requests.lock().unwrap().values().sum()
    }

    fn by_path(&self) -> HashMap<String, usize> {
        self.requests.lock().unwrap().clone()
    }
}

fn api_error(status: u16) -> ResponseTemplate {
    let kind = match status {
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    let mut answer = ResponseTemplate::new(status)
        .set_body_json(json!({"type": "error", "error": {"type": kind, "message": "injected"}}));
    if status == 429 {
        answer = answer.insert_header("retry-after", "1");
    }
    answer
}

impl Respond for FlakyApi {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        *self
            .requests
            .lock()
            .unwrap()
            .entry(request.url.path().to_string())
            .or_insert(0) += 1;
        match *self.fault.lock().unwrap() {
            ApiFault::None => (self.ok)(request),
            ApiFault::Status(s) => {
                self.injected.fetch_add(1, Ordering::SeqCst);
                api_error(s)
            }
            ApiFault::OneTimeout { status, after } => {
                self.injected.fetch_add(1, Ordering::SeqCst);
                if !self.timeout_used.swap(true, Ordering::SeqCst) {
                    (self.ok)(request).set_delay(after)
                } else {
                    api_error(status)
                }
            }
        }
    }
}

const LLM_REPLY: &str = "Thanks for getting in touch. We can help with that: what day suits you?";

fn llm_ok(_: &Request) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [{"type": "text", "text": LLM_REPLY}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 10},
    }))
}

const MP3: &[u8] = b"ID3\x04\x00\x00\x00\x00\x00\x00fake-mp3-frames";

fn audio_ok(_: &Request) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_bytes(MP3.to_vec())
        .insert_header("content-type", "audio/mpeg")
}

async fn mount_llm(app: &TestApp) -> FlakyApi {
    let llm = FlakyApi::new(llm_ok);
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(llm.clone())
        .mount(&app.llm)
        .await;
    llm
}

// ---------------------------------------------------------------------------------------------
// AWS: a TCP proxy in front of moto that can refuse, cut or answer 5xx for a while.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outage {
    None,
    /// Connections are accepted and closed at once (moto unreachable, connections reset).
    Reset,
    /// Every request is answered with this status (a service error).
    Status(u16),
}

struct Proxy {
    endpoint: String,
    mode: Arc<Mutex<Outage>>,
    /// Bumped on every switch: connections piping to moto are cut, so the next request opens a
    /// new one and meets the new mode (clients keep connections alive).
    generation: tokio::sync::watch::Sender<u64>,
    injected: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(service: &'static str) -> Self {
        let upstream = moto_endpoint().trim_start_matches("http://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(Mutex::new(Outage::None));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let injected = Arc::new(AtomicU64::new(0));
        let proxy = Self {
            endpoint,
            mode: mode.clone(),
            generation: generation.clone(),
            injected: injected.clone(),
        };
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let current = *mode.lock().unwrap();
                match current {
                    Outage::None => {
                        let upstream = upstream.clone();
                        let mut cut = generation.subscribe();
                        tokio::spawn(async move {
                            let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await
                            else {
                                return;
                            };
                            let mut client = client;
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = cut.changed() => {}
                            }
                        });
                    }
                    Outage::Reset => {
                        injected.fetch_add(1, Ordering::SeqCst);
                        drop(client);
                    }
                    Outage::Status(status) => {
                        let injected = injected.clone();
                        tokio::spawn(answer_with_status(client, status, service, injected));
                    }
                }
            }
        });
        proxy
    }

    fn set(&self, outage: Outage) {
        *self.mode.lock().unwrap() = outage;
        self.generation.send_modify(|g| *g += 1);
    }

    fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }
}

/// Reads each request on the connection (head and Content-Length body) and answers `status`
/// with an AWS JSON error, then closes.
async fn answer_with_status(
    mut client: tokio::net::TcpStream,
    status: u16,
    service: &'static str,
    injected: Arc<AtomicU64>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    injected.fetch_add(1, Ordering::SeqCst);
    let (kind, reason) = match status {
        503 => ("ServiceUnavailable", "Service Unavailable"),
        _ => ("InternalServerError", "Internal Server Error"),
    };
    let body = match service {
        "dynamodb" => format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected"}}"#
        ),
        _ => format!(r#"{{"__type":"com.amazonaws.sqs#{kind}","message":"injected"}}"#),
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: injected\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// What the senders send.

/// A post-call transcription for one conversation from one number (every fifth urgent: a hot
/// lead, so the owner is texted too).
fn call_body(conversation: &str, caller: &str, urgent: bool) -> Vec<u8> {
    sample_with("post_call_transcription.json", |v| {
        v["data"]["conversation_id"] = json!(conversation);
        v["data"]["metadata"]["phone_call"]["external_number"] = json!(caller);
        v["data"]["analysis"]["data_collection_results"]["urgency"]["value"] =
            json!(if urgent { "urgent" } else { "normal" });
    })
}

const TEXT_BODY: &str = "Hi, could someone look at my boiler this week?";

/// Free slots of a service over the next days, as check_availability offers them (starts).
async fn free_starts(app: &TestApp, service: &str, days: &[&str]) -> Vec<Value> {
    let mut starts = Vec::new();
    let mut last: Option<jiff::Timestamp> = None;
    for (day, part) in days.iter().flat_map(|d| [(d, "morning"), (d, "afternoon")]) {
        let (status, answer) = app
            .tool(
                "check_availability",
                &json!({"service": service, "date": day, "time_of_day": part}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        // Two hours apart: a job and its buffer never overlap the next (on any technician).
        for slot in answer["slots"].as_array().cloned().unwrap_or_default() {
            let at: jiff::Timestamp = slot["start"].as_str().unwrap().parse().unwrap();
            if last.is_none_or(|l| at.as_second() - l.as_second() >= 7200) {
                starts.push(slot["start"].clone());
                last = Some(at);
            }
        }
    }
    starts
}

fn booking_request(start: &Value, caller: &str, conversation: &str) -> Value {
    json!({"service": "boiler_service", "start": start, "customer_name": "Load Tester",
           "caller_phone": caller, "conversation_id": conversation})
}

// =============================================================================================
// 1. Load.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_agent_tools_with_callers_racing_for_the_same_slots() {
    let started = Instant::now();
    let app = spawn_app().await;
    app.clock.set(MONDAY_MORNING.parse().unwrap());
    let twilio = TwilioFake::mount(&app).await;
    let days = ["2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27"];

    // check_availability: read-only, spread over services and days.
    let services = [
        "boiler_service",
        "leak_repair",
        "blocked_drain",
        "radiator_fitting",
    ];
    let n_checks = scaled(600);
    let (checks, checked) = burst("check_availability", n_checks, |i| {
        let body =
            json!({"service": services[i % services.len()], "date": days[(i / 4) % days.len()]});
        let app = &app;
        async move { app.tool("check_availability", &body).await }
    })
    .await;
    for o in &checked {
        assert_eq!(o.status, 200, "{}", o.body);
        assert!(o.body["slots"].is_array(), "{}", o.body);
    }

    // create_booking: many callers race for a few slots (one slot per day, two technicians).
    let mut slots = Vec::new();
    for day in days {
        slots.push(app.first_slot("boiler_service", day).await["start"].clone());
    }
    let per_slot = scaled(RACERS_PER_SLOT);
    let n_bookings = per_slot * slots.len();
    let racing = per_slot.clamp(1, 64);
    let (bookings, booked) = burst_at("create_booking (racing)", n_bookings, racing, |i| {
        let body = booking_request(
            &slots[i / per_slot],
            &phone(10, i),
            &format!("conv_load_book_{i:05}"),
        );
        let app = &app;
        async move { app.tool("create_booking", &body).await }
    })
    .await;
    let mut winners: HashMap<usize, Vec<&Outcome>> = HashMap::new();
    let mut taken = 0;
    for o in &booked {
        assert_eq!(o.status, 200, "{}", o.body);
        if o.body["booked"] == true {
            winners.entry(o.index / per_slot).or_default().push(o);
        } else {
            assert_eq!(
                o.body["code"], "slot_taken",
                "the documented refusal: {}",
                o.body
            );
            assert!(o.body["say"].as_str().is_some_and(|s| !s.is_empty()));
            taken += 1;
        }
    }
    for slot in 0..slots.len() {
        let n = winners.get(&slot).map_or(0, Vec::len);
        assert_eq!(
            n, 2,
            "slot {slot}: one booking per technician, no more, no fewer"
        );
    }
    // The winners' requests again (the agent retrying): the first result, not a second booking.
    let retried: Vec<&Outcome> = winners.values().flatten().copied().collect();
    let (rebook_row, rebooked) = burst("create_booking (winners retry)", retried.len(), |k| {
        let i = retried[k].index;
        let body = booking_request(
            &slots[i / per_slot],
            &phone(10, i),
            &format!("conv_load_book_{i:05}"),
        );
        let app = &app;
        async move { app.tool("create_booking", &body).await }
    })
    .await;
    for (k, o) in rebooked.iter().enumerate() {
        assert_eq!(o.status, 200, "{}", o.body);
        assert_eq!(
            o.body["booking_id"], retried[k].body["booking_id"],
            "{}",
            o.body
        );
    }

    // upsert_contact: distinct callers, some twice (the same details again).
    let n_contacts = scaled(300);
    let (contacts, upserted) = burst("upsert_contact", n_contacts + n_contacts / 4, |i| {
        let who = if i < n_contacts { i } else { (i - n_contacts) * 4 };
        let body = json!({"name": "Load Tester", "email": format!("load{who}@example.com"),
                          "caller_phone": phone(11, who), "conversation_id": format!("conv_load_contact_{who:05}")});
        let app = &app;
        async move { app.tool("upsert_contact", &body).await }
    })
    .await;
    for o in &upserted {
        assert_eq!(o.status, 200, "{}", o.body);
    }

    let drain_started = Instant::now();
    let handled = drain_with_workers(&app, WORKERS, &AtomicBool::new(false)).await;
    let drain = phase_row(
        "retry queue drained (jobs)",
        WORKERS,
        handled,
        drain_started.elapsed(),
    );

    let rows = [checks, bookings, rebook_row, contacts, drain];
    print_table("load: agent tools", &rows);
    for r in &rows {
        assert_eq!(r.server_errors(), 0, "{}: a 5xx under load", r.kind);
    }

    // The table: at most one booking per technician and time, one per winning caller.
    let records = app.records_of("BOOKING").await;
    let (dup_cells, _) = tally(records.iter().map(|b| {
        format!(
            "{}#{}",
            attr(b, "resource").unwrap_or_default(),
            attr(b, "start").unwrap_or_default()
        )
    }));
    assert_eq!(dup_cells, 0, "two bookings of one technician at one time");
    assert_eq!(records.len(), 2 * slots.len(), "bookings stored");
    let contact_items = app.records_of("CONTACT").await;
    // One contact per booking winner and per upserted caller.
    assert_eq!(contact_items.len(), 2 * slots.len() + n_contacts);
    let (messages, duplicates, lost) = check_outbox_against_twilio(&app, &twilio).await;
    assert_eq!(messages, 2 * slots.len(), "one confirmation per booking");
    println!(
        "load tools: {} slot_taken answers, {} bookings, {} contacts, {} confirmations sent, duplicates={duplicates}, lost={lost}, {:.1}s",
        taken,
        records.len(),
        contact_items.len(),
        messages,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(app.dead_letters().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_post_call_webhooks_some_delivered_twice() {
    let started = Instant::now();
    let app = spawn_app().await;
    let twilio = TwilioFake::mount(&app).await;
    let n = scaled(120);
    // Every fourth conversation is delivered twice (ElevenLabs retrying), the second at once.
    let deliveries = with_redeliveries(n);
    let bodies: Vec<Vec<u8>> = (0..n)
        .map(|i| call_body(&format!("conv_load_call_{i:05}"), &phone(20, i), i % 5 == 0))
        .collect();
    let (row, answered) = burst("post-call webhook", deliveries.len(), |k| {
        let body = &bodies[deliveries[k]];
        let app = &app;
        async move { webhook(app, body).await }
    })
    .await;
    // Runs cut by the inline budget (8 s) hold their lease (120 s) until the queued re-check
    // comes: the workers run after that, as they would with the default re-check delay. (Run
    // during the burst, the harness's zero back-off would spend a re-check's receives on
    // "busy" within seconds: in AWS the back-off spreads them over hours.)
    let over_budget = answered
        .iter()
        .filter(|o| o.latency >= app.deps.config.inline_budget)
        .count();
    app.clock
        .set(app.now() + jiff::SignedDuration::from_secs(180));
    let burst_ended = Instant::now();
    let during = drain_with_workers(&app, WORKERS, &AtomicBool::new(false)).await;
    for o in &answered {
        assert_eq!(o.status, 200, "{}", o.body);
        let status = o.body["status"].as_str().unwrap_or_default();
        assert!(status == "accepted" || status == "duplicate", "{}", o.body);
    }
    let handled = during + drain_all(&app).await;
    let drain = phase_row(
        "retry workers (jobs)",
        WORKERS,
        handled,
        burst_ended.elapsed(),
    );
    let rows = [row, drain];
    print_table("load: post-call webhooks", &rows);
    assert_eq!(rows[0].server_errors(), 0);

    let calls = app.records_of("CALL").await;
    let conversations: Vec<String> = calls
        .iter()
        .map(|c| attr(c, "conversation_id").unwrap_or_default())
        .collect();
    let (duplicates, seen) = tally(conversations.clone());
    let expected: Vec<String> = (0..n).map(|i| format!("conv_load_call_{i:05}")).collect();
    let lost = missing(&expected, &seen);
    assert_eq!(duplicates, 0, "one call record per conversation");
    assert_eq!(lost, 0, "every accepted call has its record");
    let inbox = app.records_of("INBOX#post_call_transcription").await;
    assert!(
        inbox
            .iter()
            .all(|i| attr(i, "state").as_deref() == Some("done")),
        "every intake finished"
    );
    assert_eq!(app.records_of("LEAD").await.len(), n, "one lead per caller");
    let (messages, _, _) = check_outbox_against_twilio(&app, &twilio).await;
    let hot = (0..n).filter(|i| i % 5 == 0).count();
    assert_eq!(
        messages,
        n + hot,
        "one text per caller, one owner alert per hot lead"
    );
    let sent = twilio.sent();
    for i in 0..n {
        let to_caller = sent.iter().filter(|(_, to, _)| *to == phone(20, i)).count();
        assert_eq!(to_caller, 1, "caller {i}: one text");
    }
    let to_owner = sent.iter().filter(|(_, to, _)| to == OWNER).count();
    assert_eq!(to_owner, hot, "one owner alert per hot lead");
    assert_eq!(app.queued().await, 0);
    assert_eq!(app.dead_letters().await, 0);
    println!(
        "load post-call: {} deliveries of {n} conversations, {over_budget} over the inline budget, {} call records, {messages} texts sent, duplicates={duplicates}, lost={lost}, {:.1}s",
        deliveries.len(),
        calls.len(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_inbound_texts_some_message_sids_delivered_twice() {
    let started = Instant::now();
    let app = spawn_app().await;
    app.clock.set(MONDAY_MORNING.parse().unwrap());
    let twilio = TwilioFake::mount(&app).await;
    let llm = mount_llm(&app).await;
    let n = scaled(120);
    // Every fourth MessageSid is delivered twice (Twilio retrying).
    let deliveries = with_redeliveries(n);
    // The retry workers answer while texts still come in.
    let busy = AtomicBool::new(true);
    let webhooks = async {
        let done = burst("inbound text webhook", deliveries.len(), |k| {
            let i = deliveries[k];
            let (message_sid, from) = (sid(30_000 + i as u32), phone(30, i));
            let app = &app;
            async move { inbound(app, &message_sid, &from, TEXT_BODY).await }
        })
        .await;
        busy.store(false, Ordering::SeqCst);
        (done, Instant::now())
    };
    let (((row, answered), burst_ended), during) =
        futures::join!(webhooks, drain_with_workers(&app, WORKERS, &busy));
    for o in &answered {
        assert_eq!(o.status, 200);
    }
    let handled = during + drain_all(&app).await;
    let drain = phase_row(
        "answers and sends (after the burst)",
        WORKERS,
        handled,
        burst_ended.elapsed(),
    );
    let rows = [row, drain];
    print_table("load: inbound texts", &rows);
    assert_eq!(rows[0].server_errors(), 0);

    let inbound_items = app.records_of("INBOUND").await;
    let sids: Vec<String> = inbound_items
        .iter()
        .map(|i| attr(i, "PK").unwrap_or_default())
        .collect();
    let (duplicates, seen) = tally(sids.clone());
    assert_eq!(duplicates, 0);
    assert_eq!(seen.len(), n, "one inbound record per MessageSid");
    assert!(inbound_items
        .iter()
        .all(|i| attr(i, "state").as_deref() == Some("done")));
    // Each text once in its person's thread.
    let thread_entries = app
        .records()
        .await
        .into_iter()
        .filter(|i| attr(i, "PK").is_some_and(|pk| pk.contains("#THREAD#")))
        .filter(|i| attr(i, "direction").as_deref() == Some("in"))
        .count();
    assert_eq!(thread_entries, n, "each text once in its thread");
    let (messages, _, _) = check_outbox_against_twilio(&app, &twilio).await;
    let sent = twilio.sent();
    let mut lost_replies = 0;
    let mut twice = 0;
    for i in 0..n {
        let replies = sent
            .iter()
            .filter(|(_, to, body)| *to == phone(30, i) && body == LLM_REPLY)
            .count();
        match replies {
            0 => lost_replies += 1,
            1 => {}
            _ => twice += 1,
        }
    }
    assert_eq!((lost_replies, twice), (0, 0), "one reply per text");
    assert_eq!(messages, n);
    // Every text answered by the LLM (none fell back). That it is asked exactly once per text
    // is the next test's (it is not, when a redelivery races the first delivery).
    assert!(llm.total() >= n, "every text answered by the LLM");
    assert_eq!(app.dead_letters().await, 0);
    println!(
        "load texts: {} deliveries of {n} MessageSids, {} LLM requests, {messages} replies sent, duplicates={twice}, lost={lost_replies}, {:.1}s",
        deliveries.len(),
        llm.total(),
        started.elapsed().as_secs_f64()
    );
}

/// Twilio redelivering a MessageSid while the first delivery is still being handled (its
/// retry after a slow answer): one text, so one conversation with the LLM (and its tools).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_a_message_sid_redelivered_while_being_handled_is_answered_by_the_llm_once() {
    let app = spawn_app().await;
    app.clock.set(MONDAY_MORNING.parse().unwrap());
    let twilio = TwilioFake::mount(&app).await;
    let llm = mount_llm(&app).await;
    // Few enough that the retry worker gets all their jobs in one batch (it runs a batch's
    // jobs at once, as the Lambda does).
    let k = 4;
    let deliveries = (0..2 * k).map(|j| {
        let i = j / 2;
        let (message_sid, from) = (sid(35_000 + i as u32), phone(35, i));
        let app = &app;
        async move { inbound(app, &message_sid, &from, TEXT_BODY).await }
    });
    for (status, _) in join_all(deliveries).await {
        assert_eq!(status, 200);
    }
    let jobs = app.queued().await;
    // One retry worker, as the queue's event source runs it: one batch, then the rest.
    let first_batch = app.poll_queue_once().await;
    drain_all(&app).await;
    let (messages, duplicates, lost) = check_outbox_against_twilio(&app, &twilio).await;
    println!();
    println!(
        "redelivered while handled: texts={k} deliveries={} answer jobs queued={jobs} (first batch {first_batch}) LLM conversations={} replies sent={messages} duplicates={duplicates} lost={lost}",
        2 * k,
        llm.total()
    );
    assert_eq!(messages, k, "one reply per text");
    assert_eq!(
        llm.total(),
        k,
        "each text answered by one LLM conversation, not one per delivery"
    );
}

/// An LLM that books: its first turn calls create_booking (each conversation with it picks
/// the next of `starts`, as a model may pick another of the times it was offered), its second
/// confirms in words.
#[derive(Clone)]
struct BookingLlm {
    starts: Arc<Vec<Value>>,
    conversations: Arc<AtomicU64>,
}

impl Respond for BookingLlm {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let tool_result_given = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_array())
            .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result"));
        let (content, stop) = if tool_result_given {
            (
                json!([{"type": "text", "text": "You're booked in."}]),
                "end_turn",
            )
        } else {
            let n = self.conversations.fetch_add(1, Ordering::SeqCst) as usize;
            let start = &self.starts[n % self.starts.len()];
            (
                json!([{"type": "tool_use", "id": format!("toolu_{n:04}"), "name": "create_booking",
                        "input": {"service": "boiler_service", "start": start, "customer_name": "Load Tester"}}]),
                "tool_use",
            )
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
            "content": content, "stop_reason": stop,
            "usage": {"input_tokens": 10, "output_tokens": 10},
        }))
    }
}

/// The same race when the model books: one text must not make two bookings.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_a_text_redelivered_while_being_handled_books_once() {
    let app = spawn_app().await;
    app.clock.set(MONDAY_MORNING.parse().unwrap());
    let twilio = TwilioFake::mount(&app).await;
    let starts = free_starts(
        &app,
        "boiler_service",
        &["2026-11-24", "2026-11-25", "2026-11-26"],
    )
    .await;
    let llm = BookingLlm {
        starts: Arc::new(starts),
        conversations: Arc::default(),
    };
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(llm.clone())
        .mount(&app.llm)
        .await;
    let k = 4;
    let deliveries = (0..2 * k).map(|j| {
        let i = j / 2;
        let (message_sid, from) = (sid(36_000 + i as u32), phone(36, i));
        let app = &app;
        async move { inbound(app, &message_sid, &from, "Can you book my boiler service?").await }
    });
    for (status, _) in join_all(deliveries).await {
        assert_eq!(status, 200);
    }
    app.poll_queue_once().await;
    drain_all(&app).await;
    let bookings = app.records_of("BOOKING").await;
    let mut per_person: HashMap<String, usize> = HashMap::new();
    for b in &bookings {
        *per_person
            .entry(attr(b, "conversation_id").unwrap_or_default())
            .or_insert(0) += 1;
    }
    let duplicates: usize = per_person.values().map(|n| n - 1).sum();
    let (messages, _, _) = check_outbox_against_twilio(&app, &twilio).await;
    println!();
    println!(
        "redelivered while handled, the model books: texts={k} LLM conversations={} bookings={} texts sent={messages} duplicate bookings={duplicates}",
        llm.conversations.load(Ordering::SeqCst),
        bookings.len()
    );
    assert_eq!(duplicates, 0, "one text, one booking");
    assert_eq!(bookings.len(), k);
}

// =============================================================================================
// 2. Faults.

/// Calls, bookings and texts that each cause texts: (calls, bookings, texts) made.
async fn make_traffic(app: &TestApp, series: u32, k: usize) -> usize {
    let starts = free_starts(
        app,
        "boiler_service",
        &["2026-11-24", "2026-11-25", "2026-11-26"],
    )
    .await;
    assert!(starts.len() >= k, "enough free slots");
    // Calls and texts twice each, at once (ElevenLabs and Twilio retrying).
    let calls = (0..2 * k).map(|j| {
        let i = j / 2;
        let body = call_body(
            &format!("conv_fault_{series}_{i:04}"),
            &phone(series, i),
            i == 0,
        );
        async move { webhook(app, &body).await }
    });
    let bookings = (0..k).map(|i| {
        let body = booking_request(
            &starts[i],
            &phone(series + 1, i),
            &format!("conv_fault_bk_{series}_{i:04}"),
        );
        async move { app.tool("create_booking", &body).await }
    });
    let texts = (0..2 * k).map(|j| {
        let i = j / 2;
        let (s, from) = (sid(series * 1000 + i as u32), phone(series + 2, i));
        async move { inbound(app, &s, &from, TEXT_BODY).await }
    });
    let (a, b, c) = futures::join!(join_all(calls), join_all(bookings), join_all(texts));
    for (status, body) in a.iter().chain(b.iter()).chain(c.iter()) {
        assert_eq!(*status, 200, "{body}");
    }
    for (_, body) in &b {
        assert_eq!(body["booked"], true, "{body}");
    }
    // A call (+1 owner alert for the first), a confirmation and a reply each.
    3 * k + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_twilio_failing_then_recovering_sends_every_message_exactly_once() {
    let suite = Instant::now();
    let k = 4;
    println!();
    println!(
        "| {:<30} | {:>8} | {:>7} | {:>9} | {:>7} | {:>6} | {:>9} | {:>10} | {:>4} | {:>7} |",
        "Twilio fault",
        "messages",
        "faulted",
        "injected",
        "creates",
        "lists",
        "delivered",
        "duplicates",
        "lost",
        "secs"
    );
    for (n, fault) in [
        TwilioFault::Refuse(503),
        TwilioFault::Refuse(500),
        TwilioFault::RateLimited,
        TwilioFault::ErrorAfterCreating,
        TwilioFault::AnswerTooLate,
        TwilioFault::SlowAnswer,
    ]
    .into_iter()
    .enumerate()
    {
        let started = Instant::now();
        let app = spawn_app().await;
        app.clock.set(MONDAY_MORNING.parse().unwrap());
        let twilio = TwilioFake::mount(&app).await;
        let _llm = mount_llm(&app).await;
        twilio.set(fault);
        let series = 40 + 3 * n as u32;
        let expected = make_traffic(&app, series, k).await;
        // The retry worker runs on while Twilio still fails (fewer runs when each waits out a
        // timeout), well within the outbox's attempts.
        let runs = match fault {
            TwilioFault::AnswerTooLate | TwilioFault::SlowAnswer => 2,
            _ => 6,
        };
        for _ in 0..runs {
            if app.poll_queue_once().await == 0 {
                break;
            }
        }
        twilio.set(TwilioFault::None);
        // A send cut short (the webhook's inline budget, or a run that died) is taken over once
        // it is stale: the retry worker's later runs come after that.
        app.clock
            .set(app.now() + jiff::SignedDuration::from_secs(180));
        drain_all(&app).await;
        let (messages, duplicates, lost) = check_outbox_against_twilio(&app, &twilio).await;
        assert_eq!(messages, expected, "{}", fault.name());
        if runs == 6 {
            assert_eq!(twilio.faulted(), messages, "every message met the fault");
        } else {
            assert!(twilio.faulted() > 0, "the fault was met");
        }
        assert_eq!(app.queued().await, 0);
        assert_eq!(app.dead_letters().await, 0);
        println!(
            "| {:<30} | {:>8} | {:>7} | {:>9} | {:>7} | {:>6} | {:>9} | {:>10} | {:>4} | {:>7.1} |",
            fault.name(),
            messages,
            twilio.faulted(),
            twilio.injected(),
            twilio.posts(),
            twilio.lists(),
            twilio.sent().len(),
            duplicates,
            lost,
            started.elapsed().as_secs_f64()
        );
    }
    println!("twilio faults: {:.1}s", suite.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_llm_failing_then_recovering_answers_every_text_once() {
    let started = Instant::now();
    let app = spawn_app().await;
    app.clock.set(MONDAY_MORNING.parse().unwrap());
    let twilio = TwilioFake::mount(&app).await;
    let llm = mount_llm(&app).await;
    let k = 9;
    let mut retries = 0;
    // Three rounds of texts, each meeting another failure on its first attempt.
    for (round, fault) in [
        ApiFault::Status(429),
        ApiFault::Status(529),
        ApiFault::OneTimeout {
            status: 500,
            after: Duration::from_secs(61),
        },
    ]
    .into_iter()
    .enumerate()
    {
        llm.set(fault);
        for i in 0..k / 3 {
            let n = round * (k / 3) + i;
            assert_eq!(
                app.text(&sid(50_000 + n as u32), &phone(50, n), TEXT_BODY)
                    .await,
                200
            );
        }
        // One run of the retry worker meets the failure (attempt 1 of LLM_ATTEMPTS)...
        let before = llm.injected();
        app.poll_queue_once().await;
        retries += llm.injected() - before;
        // ...and the LLM is back for the next attempt.
        llm.set(ApiFault::None);
        drain_all(&app).await;
    }
    let sent = twilio.sent();
    let mut lost = 0;
    let mut duplicates = 0;
    for n in 0..k {
        let to_them: Vec<_> = sent
            .iter()
            .filter(|(_, to, _)| *to == phone(50, n))
            .collect();
        match to_them.len() {
            0 => lost += 1,
            1 => assert_eq!(
                to_them[0].2, LLM_REPLY,
                "answered by the LLM, not the fallback"
            ),
            m => duplicates += m - 1,
        }
    }
    assert_eq!((duplicates, lost), (0, 0));
    let (messages, _, _) = check_outbox_against_twilio(&app, &twilio).await;
    assert_eq!(messages, k, "a reply per text and nothing to the owner");
    assert_eq!(llm.injected(), k as u64, "each text met one failure");
    assert_eq!(
        llm.total(),
        2 * k,
        "one failed and one good request per text"
    );
    assert_eq!(app.dead_letters().await, 0);
    println!();
    println!(
        "LLM faults (429, 529, a 61 s timeout and 500s): texts={k} injected={} retries={retries} LLM requests={} delivered={} duplicates={duplicates} lost={lost} {:.1}s",
        llm.injected(),
        llm.total(),
        sent.len(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_elevenlabs_audio_fetch_failing_then_recovering_stores_each_audio_once() {
    let started = Instant::now();
    let app = spawn_app_with(Options {
        elevenlabs_api_key: true,
        ..Options::default()
    })
    .await;
    let twilio = TwilioFake::mount(&app).await;
    let elevenlabs = FlakyApi::new(audio_ok);
    Mock::given(method("GET"))
        .and(path_regex(r"^/v1/convai/conversations/[^/]+/audio$"))
        .respond_with(elevenlabs.clone())
        .mount(&app.elevenlabs)
        .await;
    let k = 6;
    let mut failing_polls = 0;
    for (round, status) in [500u16, 503, 429].into_iter().enumerate() {
        elevenlabs.set(ApiFault::Status(status));
        for i in 0..k / 3 {
            let n = round * (k / 3) + i;
            let (code, body) = webhook(
                &app,
                &call_body(&format!("conv_audio_{n:04}"), &phone(60, n), false),
            )
            .await;
            assert_eq!(code, 200, "{body}");
        }
        // Two runs of the worker while ElevenLabs fails.
        for _ in 0..2 {
            app.poll_queue_once().await;
            failing_polls += 1;
        }
        elevenlabs.set(ApiFault::None);
        drain_all(&app).await;
    }
    let calls = app.records_of("CALL").await;
    assert_eq!(calls.len(), k);
    let mut lost = 0;
    for c in &calls {
        let conversation = attr(c, "conversation_id").unwrap();
        match attr(c, "audio_key") {
            Some(key) => assert_eq!(app.object(&key).await, MP3),
            None => lost += 1,
        }
        assert!(conversation.starts_with("conv_audio_"));
    }
    let fetched = elevenlabs.by_path().len();
    let successes = elevenlabs.total() - elevenlabs.injected() as usize;
    let duplicates = successes.saturating_sub(k);
    assert_eq!(lost, 0, "every call's audio stored");
    assert_eq!(fetched, k, "every call's audio asked for");
    // Each audio fetched successfully once: requests = failures + one success per call.
    assert_eq!(
        elevenlabs.total() as u64,
        elevenlabs.injected() + k as u64,
        "no fetch after the audio was stored"
    );
    assert!(
        elevenlabs.injected() >= k as u64,
        "every fetch met a failure first"
    );
    check_outbox_against_twilio(&app, &twilio).await;
    assert_eq!(app.dead_letters().await, 0);
    println!();
    println!(
        "ElevenLabs audio faults (500, 503, 429): calls={k} injected={} worker runs during the outage={failing_polls} fetches={} stored={} duplicates={duplicates} lost={lost} {:.1}s",
        elevenlabs.injected(),
        elevenlabs.total(),
        k - lost,
        started.elapsed().as_secs_f64()
    );
}

/// One request of the AWS fault scenarios, kept to be redelivered.
#[derive(Clone)]
enum Sender {
    Call { conversation: String, body: Vec<u8> },
    Booking { conversation: String, body: Value },
    Text { message_sid: String, from: String },
}

impl Sender {
    async fn send(&self, app: &TestApp) -> (u16, Value) {
        match self {
            Self::Call { body, .. } => webhook(app, body).await,
            Self::Booking { body, .. } => app.tool("create_booking", body).await,
            Self::Text { message_sid, from } => inbound(app, message_sid, from, TEXT_BODY).await,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Call { .. } => "call",
            Self::Booking { .. } => "booking",
            Self::Text { .. } => "text",
        }
    }
}

struct AwsScenario {
    name: &'static str,
    dynamodb: Outage,
    sqs: Outage,
    /// Switched on this long after the burst started (moto going away mid-run), not before it.
    mid_run: Option<u64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_dynamodb_and_sqs_outages_lose_nothing_and_duplicate_nothing() {
    let suite = Instant::now();
    let scenarios = [
        AwsScenario {
            name: "DynamoDB 503",
            dynamodb: Outage::Status(503),
            sqs: Outage::None,
            mid_run: None,
        },
        AwsScenario {
            name: "DynamoDB 500",
            dynamodb: Outage::Status(500),
            sqs: Outage::None,
            mid_run: None,
        },
        AwsScenario {
            name: "DynamoDB connections reset",
            dynamodb: Outage::Reset,
            sqs: Outage::None,
            mid_run: None,
        },
        AwsScenario {
            name: "SQS 503",
            dynamodb: Outage::None,
            sqs: Outage::Status(503),
            mid_run: None,
        },
        AwsScenario {
            name: "SQS connections reset",
            dynamodb: Outage::None,
            sqs: Outage::Reset,
            mid_run: None,
        },
        AwsScenario {
            name: "moto unreachable 40 ms in",
            dynamodb: Outage::Reset,
            sqs: Outage::Reset,
            mid_run: Some(40),
        },
        AwsScenario {
            name: "moto unreachable 150 ms in",
            dynamodb: Outage::Reset,
            sqs: Outage::Reset,
            mid_run: Some(150),
        },
        AwsScenario {
            name: "moto unreachable 400 ms in",
            dynamodb: Outage::Reset,
            sqs: Outage::Reset,
            mid_run: Some(400),
        },
        AwsScenario {
            name: "DynamoDB reset 150 ms in",
            dynamodb: Outage::Reset,
            sqs: Outage::None,
            mid_run: Some(150),
        },
        AwsScenario {
            name: "DynamoDB 503 400 ms in",
            dynamodb: Outage::Status(503),
            sqs: Outage::None,
            mid_run: Some(400),
        },
        AwsScenario {
            name: "SQS reset 150 ms in",
            dynamodb: Outage::None,
            sqs: Outage::Reset,
            mid_run: Some(150),
        },
    ];
    println!();
    println!(
        "| {:<27} | {:>8} | {:>8} | {:>5} | {:>5} | {:>11} | {:>9} | {:>10} | {:>4} | {:>6} |",
        "AWS fault",
        "requests",
        "injected",
        "5xx",
        "2xx",
        "redelivered",
        "delivered",
        "duplicates",
        "lost",
        "secs"
    );
    for (n, scenario) in scenarios.iter().enumerate() {
        let started = Instant::now();
        let dynamodb = Proxy::start("dynamodb").await;
        let sqs = Proxy::start("sqs").await;
        let app = spawn_app_with(Options {
            dynamodb_endpoint: Some(dynamodb.endpoint.clone()),
            sqs_endpoint: Some(sqs.endpoint.clone()),
            ..Options::default()
        })
        .await;
        app.clock.set(MONDAY_MORNING.parse().unwrap());
        let twilio = TwilioFake::mount(&app).await;
        let _llm = mount_llm(&app).await;
        let k = 4;
        let series = 70 + 3 * (n % 8) as u32;
        let starts = free_starts(
            &app,
            "boiler_service",
            &["2026-11-24", "2026-11-25", "2026-11-26"],
        )
        .await;
        assert!(starts.len() >= k, "enough free slots");
        let mut senders = Vec::new();
        for (i, start) in starts.iter().take(k).enumerate() {
            let conversation = format!("conv_aws_{series}_{i:04}");
            senders.push(Sender::Call {
                body: call_body(&conversation, &phone(series, i), false),
                conversation,
            });
            let conversation = format!("conv_aws_bk_{series}_{i:04}");
            senders.push(Sender::Booking {
                body: booking_request(start, &phone(series + 1, i), &conversation),
                conversation,
            });
            senders.push(Sender::Text {
                message_sid: sid(series * 1000 + i as u32),
                from: phone(series + 2, i),
            });
        }
        let switch_on = || {
            dynamodb.set(scenario.dynamodb);
            sqs.set(scenario.sqs);
        };
        if scenario.mid_run.is_none() {
            switch_on();
        }
        let burst_of = senders.iter().map(|s| s.send(&app));
        let answers = if let Some(after) = scenario.mid_run {
            let all = join_all(burst_of);
            let cut = async {
                tokio::time::sleep(Duration::from_millis(after)).await;
                switch_on();
            };
            futures::join!(all, cut).0
        } else {
            join_all(burst_of).await
        };
        dynamodb.set(Outage::None);
        sqs.set(Outage::None);
        let injected = dynamodb.injected() + sqs.injected();
        let failed: Vec<usize> = (0..senders.len())
            .filter(|i| answers[*i].0 >= 500)
            .collect();
        for (i, (status, body)) in answers.iter().enumerate() {
            assert!(
                *status == 200 || *status == 503,
                "{} {}: {status} {body}",
                scenario.name,
                senders[i].kind()
            );
        }
        // What the product accepted must be there without any redelivery: a 2xx never lost data.
        app.clock
            .set(app.now() + jiff::SignedDuration::from_secs(180));
        drain_all(&app).await;
        frontdesk::outbox::sweep(&app.deps).await.expect("sweep");
        drain_all(&app).await;
        let calls = app.records_of("CALL").await;
        let bookings = app.records_of("BOOKING").await;
        let inbounds = app.records_of("INBOUND").await;
        for (i, s) in senders.iter().enumerate() {
            if answers[i].0 != 200 {
                continue;
            }
            let there = match s {
                Sender::Call { conversation, .. } => calls
                    .iter()
                    .any(|c| attr(c, "conversation_id").as_deref() == Some(conversation.as_str())),
                Sender::Booking { conversation, .. } => {
                    answers[i].1["booked"] == true
                        && bookings.iter().any(|b| {
                            attr(b, "conversation_id").as_deref() == Some(conversation.as_str())
                                && attr(b, "booking_id").as_ref().and_then(|id| {
                                    answers[i].1["booking_id"].as_str().map(|a| a == id)
                                }) == Some(true)
                        })
                }
                Sender::Text { message_sid, .. } => inbounds.iter().any(|t| {
                    attr(t, "PK").is_some_and(|pk| pk.ends_with(message_sid.as_str()))
                        && attr(t, "state").as_deref() == Some("done")
                }),
            };
            assert!(
                there,
                "{}: a {} answered 200 during the outage was lost",
                scenario.name,
                s.kind()
            );
        }
        // The senders redeliver what failed (ElevenLabs and Twilio retry a 5xx, the agent asks
        // again), and a retry of one that succeeded, as ElevenLabs' retries may.
        let mut redeliver: Vec<usize> = failed.clone();
        redeliver.extend((0..senders.len()).filter(|i| answers[*i].0 == 200).take(3));
        for i in &redeliver {
            let (status, body) = senders[*i].send(&app).await;
            assert_eq!(
                status,
                200,
                "{} {} redelivered: {body}",
                scenario.name,
                senders[*i].kind()
            );
            if let Sender::Booking { .. } = senders[*i] {
                assert_eq!(body["booked"], true, "{body}");
            }
        }
        drain_all(&app).await;
        // Exactly once: calls, bookings, texts, and every message at Twilio.
        let calls = app.records_of("CALL").await;
        let conversations: Vec<String> = calls
            .iter()
            .filter_map(|c| attr(c, "conversation_id"))
            .collect();
        let bookings = app.records_of("BOOKING").await;
        let booked: Vec<String> = bookings
            .iter()
            .filter_map(|b| attr(b, "conversation_id"))
            .collect();
        let inbounds = app.records_of("INBOUND").await;
        let texts: Vec<String> = inbounds
            .iter()
            .filter(|t| attr(t, "state").as_deref() == Some("done"))
            .filter_map(|t| attr(t, "PK"))
            .collect();
        let mut duplicates = 0;
        let mut lost_count = 0;
        for s in &senders {
            let found = match s {
                Sender::Call { conversation, .. } => {
                    conversations.iter().filter(|c| *c == conversation).count()
                }
                Sender::Booking { conversation, .. } => {
                    booked.iter().filter(|c| *c == conversation).count()
                }
                Sender::Text { message_sid, .. } => texts
                    .iter()
                    .filter(|t| t.ends_with(message_sid.as_str()))
                    .count(),
            };
            match found {
                0 => lost_count += 1,
                1 => {}
                m => duplicates += m - 1,
            }
        }
        let (messages, dup_messages, lost_messages) =
            check_outbox_against_twilio(&app, &twilio).await;
        // A call's text, a booking's confirmation and a text's reply each.
        assert_eq!(messages, 3 * k, "{}", scenario.name);
        println!(
            "| {:<27} | {:>8} | {:>8} | {:>5} | {:>5} | {:>11} | {:>9} | {:>10} | {:>4} | {:>6.1} |",
            scenario.name,
            senders.len(),
            injected,
            failed.len(),
            senders.len() - failed.len(),
            redeliver.len(),
            messages,
            duplicates + dup_messages,
            lost_count + lost_messages,
            started.elapsed().as_secs_f64()
        );
        assert_eq!(duplicates, 0, "{}: a record twice", scenario.name);
        assert_eq!(lost_count, 0, "{}: a record lost", scenario.name);
        assert!(injected > 0, "{}: the outage was met", scenario.name);
        assert_eq!(app.queued().await, 0);
        assert_eq!(app.dead_letters().await, 0, "{}", scenario.name);
    }
    println!("AWS faults: {:.1}s", suite.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_a_job_that_keeps_failing_ends_in_the_dead_letter_queue_and_nothing_else_does() {
    let started = Instant::now();
    let template = Template::load(&workspace().join("template.yaml")).unwrap();
    let redrive =
        &template.resource("RetryQueue").expect("RetryQueue")["Properties"]["RedrivePolicy"];
    let max_receives = redrive["maxReceiveCount"]
        .as_u64()
        .expect("maxReceiveCount") as usize;
    assert_eq!(
        redrive["deadLetterTargetArn"]["Fn::GetAtt"],
        json!(["RetryDeadLetterQueue", "Arn"])
    );

    let app = spawn_app().await;
    app.clock.set(MONDAY_MORNING.parse().unwrap());
    let twilio = TwilioFake::mount(&app).await;
    // One number Twilio refuses on every attempt: the text fails for good (MessagesFailed),
    // through the outbox's own retries, never the dead-letter queue.
    let doomed = phone(80, 0);
    twilio.doomed.lock().unwrap().insert(doomed.clone());
    // A job that can never succeed: a webhook whose stored body is gone.
    let poison = json!({"job": "process_webhook", "tenant": "demo",
                        "conversation_id": "conv_gone_0001", "event_type": "post_call_transcription"})
    .to_string();
    let poison_id = aws_sdk_sqs::Client::new(&app.sdk)
        .send_message()
        .queue_url(&app.resources.retry_queue_url)
        .message_body(&poison)
        .send()
        .await
        .unwrap()
        .message_id
        .unwrap();
    // Good work in the same queue at the same time.
    let k = 6;
    for i in 0..k {
        let (status, body) = webhook(
            &app,
            &call_body(&format!("conv_dlq_{i:04}"), &phone(80, i), false),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let mut runs = 0;
    for _ in 0..40 {
        runs += app.drain_queue().await;
        if app.queued().await == 0 {
            break;
        }
    }
    assert_eq!(app.queued().await, 0);
    assert_eq!(app.dead_letters().await, 1, "the poison job, and only it");
    let dead = aws_sdk_sqs::Client::new(&app.sdk)
        .receive_message()
        .queue_url(&app.resources.dead_letter_queue_url)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body.as_deref(), Some(poison.as_str()));
    let failures = logs()
        .lines()
        .filter(|l| l.contains(&poison_id) && l.contains("\"outcome\":\"failed\""))
        .count();
    assert_eq!(
        failures, max_receives,
        "the worker ran it maxReceiveCount times before SQS moved it"
    );
    // Everything else was done.
    assert_eq!(app.records_of("CALL").await.len(), k);
    let messages = app.records_of("MSG").await;
    let failed: Vec<_> = messages
        .iter()
        .filter(|m| attr(m, "state").as_deref() == Some("failed"))
        .collect();
    assert_eq!(failed.len(), 1, "the doomed text failed for good");
    assert_eq!(
        attr(failed[0], "attempts").and_then(|a| a.parse::<u32>().ok()),
        Some(app.deps.config.max_send_attempts)
    );
    assert_eq!(
        messages
            .iter()
            .filter(|m| attr(m, "state").as_deref() == Some("sent"))
            .count(),
        k - 1
    );
    let failed_id = attr(failed[0], "message_id").expect("message_id");
    assert_eq!(
        logs()
            .lines()
            .filter(|l| l.contains("message failed permanently") && l.contains(&failed_id))
            .count(),
        1,
        "logged (and counted in MessagesFailed) once"
    );

    // The alarms: the dead-letter queue and failed messages each page someone at the first one.
    let alarm =
        |id: &str| template.resource(id).unwrap_or_else(|| panic!("no {id}"))["Properties"].clone();
    let dlq = alarm("DeadLetterAlarm");
    assert_eq!(dlq["Namespace"], "AWS/SQS");
    assert_eq!(dlq["MetricName"], "ApproximateNumberOfMessagesVisible");
    assert_eq!(dlq["Dimensions"][0]["Name"], "QueueName");
    assert_eq!(
        dlq["Dimensions"][0]["Value"]["Fn::GetAtt"],
        json!(["RetryDeadLetterQueue", "QueueName"])
    );
    let failed_messages = alarm("MessagesFailedAlarm");
    assert_eq!(failed_messages["Namespace"], frontdesk::metrics::NAMESPACE);
    assert_eq!(failed_messages["MetricName"], "MessagesFailed");
    assert_eq!(failed_messages["Dimensions"][0]["Name"], "tenant");
    let worker = alarm("RetryWorkerErrorsAlarm");
    assert_eq!(
        worker["Dimensions"][0]["Value"]["Ref"],
        "RetryWorkerFunction"
    );
    for a in [&dlq, &failed_messages, &worker] {
        assert_eq!(a["Threshold"], json!(0), "{a}");
        assert_eq!(a["ComparisonOperator"], "GreaterThanThreshold");
        assert_eq!(a["EvaluationPeriods"], json!(1));
        assert_eq!(a["TreatMissingData"], "notBreaching");
        assert_eq!(a["AlarmActions"][0]["Ref"], "AlarmTopic");
    }
    assert_eq!(dlq["Period"], json!(60), "within a minute");
    println!();
    println!(
        "DLQ: maxReceiveCount={max_receives} poison runs={failures} dead letters=1 other jobs run={} calls={k} texts sent={} failed for good=1 (attempts {}) twilio injected={} duplicates=0 lost=0 {:.1}s",
        runs.saturating_sub(failures),
        twilio.sent().len(),
        app.deps.config.max_send_attempts,
        twilio.injected(),
        started.elapsed().as_secs_f64()
    );
}
