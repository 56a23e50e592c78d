//! The bad-input suite of `make reliability` (issue 12). Not part of `make test`
//! (`test = false` in tests/Cargo.toml); run it with
//!
//! ```sh
//! cargo test -p frontdesk-blackbox --all-features --test bad_input -- --nocapture --test-threads=1
//! ```
//!
//! 1. **Property targets** (`fuzz_*`): every parser and signature check of the product is fed
//!    arbitrary and near-valid input (mutated valid samples: truncations, byte flips, wrong
//!    types, huge numbers, deep nesting, invalid UTF-8) directly, through proptest's
//!    `TestRunner`, until a deadline. Each target asserts that nothing panics (a deployed
//!    function aborts on a panic: `panic = "abort"`), that an input invalid by construction (a
//!    signature over another body, a truncated object...) is an error, and where there is one,
//!    an oracle (the same secret is accepted, a parsed number re-parses to itself). Each target
//!    runs `FRONTDESK_FUZZ_SECS` seconds (default: 180 s over all the targets) and prints how
//!    many inputs it tried.
//! 2. **Malformed-request corpus** (`every_route_...`): for every row of
//!    `frontdesk::http::routes()` (so a route added later is covered), malformed requests of
//!    every kind are sent over HTTP to the real router: each must get exactly the status the
//!    README, ARCHITECTURE.md and `http::error_response` document for it, never a 5xx, never a
//!    crash, and leave moto's state (every table item, every object key, the retry queue, the
//!    dead-letter queue, the events published, the schedules) and the fakes (Twilio, the LLM,
//!    ElevenLabs) exactly as they were. It prints the requests tried per route and in all.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use frontdesk_blackbox::frontdesk;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseResult, TestRunner};
use serde_json::{json, Value};

// =============================================================================================
// Shared: the demo business, the samples, panics counted.

fn workspace_file(path: &str) -> String {
    std::fs::read_to_string(frontdesk_blackbox::workspace().join(path)).unwrap()
}

static DEMO_TOML: LazyLock<String> = LazyLock::new(|| workspace_file("prompts/demo/business.toml"));

static DEMO: LazyLock<frontdesk::tenant::TenantConfig> = LazyLock::new(|| {
    frontdesk::tenant::TenantConfig::from_toml(&DEMO_TOML, "prompts/demo/business.toml")
        .expect("the demo business parses")
});

static DEMO_RULES: LazyLock<frontdesk::quality::RuleSet> = LazyLock::new(|| {
    frontdesk::quality::RuleSet::from_toml(
        &workspace_file("prompts/demo/assertions.toml"),
        "assertions.toml",
    )
    .expect("the demo rules parse")
});

/// The body of a sample API Gateway event in `events/<function>/`.
fn event_body(file: &str) -> Vec<u8> {
    let event: Value = serde_json::from_str(&workspace_file(file)).unwrap();
    event["body"]
        .as_str()
        .unwrap_or_default()
        .as_bytes()
        .to_vec()
}

fn webhook_sample(name: &str) -> Vec<u8> {
    frontdesk_blackbox::sample(name)
}

/// Panics anywhere in this process (a handler's task, a spawned job), counted by a hook that
/// keeps the default report. proptest catches the panics of a target itself; this counts the
/// ones nobody catches.
static PANICS: AtomicU64 = AtomicU64::new(0);

fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

/// Bytes shown as text (lossy), so a failing input can be read.
#[derive(Clone)]
struct Bytes(Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = String::from_utf8_lossy(&self.0);
        if text.len() > 600 {
            write!(
                f,
                "{:?}…({} bytes)",
                text.chars().take(600).collect::<String>(),
                self.0.len()
            )
        } else {
            write!(f, "{text:?}")
        }
    }
}

// =============================================================================================
// 1. Property targets.

/// How many `fuzz_*` targets there are: the default budget is shared among them.
const TARGETS: u32 = 17;

fn budget() -> Duration {
    let secs = std::env::var("FRONTDESK_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(180.0 / f64::from(TARGETS));
    Duration::from_secs_f64(secs.max(0.1))
}

/// Runs `check` on inputs from `strategy` until the deadline, in batches of fresh random
/// seeds; a failure is shrunk by proptest and reported with its minimal input.
fn fuzz<S>(name: &str, strategy: S, check: impl Fn(S::Value) -> TestCaseResult)
where
    S: Strategy,
    S::Value: fmt::Debug,
{
    count_panics();
    let budget = budget();
    let started = Instant::now();
    let tried = AtomicU64::new(0);
    while started.elapsed() < budget {
        let mut runner = TestRunner::new(Config {
            cases: 128,
            failure_persistence: None,
            max_shrink_iters: 4096,
            max_shrink_time: 60_000,
            ..Config::default()
        });
        let result = runner.run(&strategy, |input| {
            tried.fetch_add(1, Ordering::Relaxed);
            check(input)
        });
        if let Err(e) = result {
            panic!("fuzz target {name} failed: {e}");
        }
    }
    println!(
        "fuzz {name}: {} inputs in {:.1}s",
        tried.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
}

macro_rules! must {
    ($cond:expr, $($fmt:tt)+) => {
        prop_assert!($cond, $($fmt)+)
    };
}

// ---- Mutations of valid samples ------------------------------------------------------------

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
    /// An invalid UTF-8 sequence (a lone continuation byte, an overlong form, a surrogate...).
    BadUtf8(usize, usize),
}

const BAD_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\x80",
    b"\xc3",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe2\x82",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        (any::<usize>(), 0..BAD_UTF8.len()).prop_map(|(i, k)| Edit::BadUtf8(i, k)),
    ]
}

fn apply(sample: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = sample.to_vec();
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match e {
            Edit::Truncate(i) => {
                let n = at(*i, out.len());
                out.truncate(n);
            }
            Edit::Flip(i, b) if !out.is_empty() => {
                let n = i % out.len();
                out[n] = *b;
            }
            Edit::Flip(..) => {}
            Edit::Insert(i, bytes) => {
                let n = at(*i, out.len());
                out.splice(n..n, bytes.iter().copied());
            }
            Edit::Delete(i, len) => {
                let n = at(*i, out.len());
                let end = (n + len).min(out.len());
                out.drain(n..end);
            }
            Edit::Duplicate(i, len) => {
                let n = at(*i, out.len());
                let end = (n + len).min(out.len());
                let copy = out[n..end].to_vec();
                out.splice(end..end, copy);
            }
            Edit::BadUtf8(i, k) => {
                let n = at(*i, out.len());
                out.splice(n..n, BAD_UTF8[*k].iter().copied());
            }
        }
    }
    out
}

/// A value put in place of one node of a JSON sample.
#[derive(Debug, Clone)]
enum Swap {
    Int(i64),
    /// A number no Rust integer or float holds (`1e400`, 2^64...), written as text.
    Huge(usize),
    Float(f64),
    Bool(bool),
    Null,
    Text(String),
    /// Text holding a control character other than a line break or tab.
    Control(char),
    Long(usize),
    Array,
    Object,
    /// `[[[...]]]`, this deep, written as text.
    Deep(usize),
}

/// Numbers past every Rust integer, and whether a float cannot hold them either.
const HUGE: &[(bool, &str)] = &[
    (true, "1e400"),
    (true, "-1e400"),
    (false, "123456789012345678901234567890"),
    (false, "18446744073709551616"),
    (false, "-9223372036854775809"),
    (true, "1.7976931348623157e309"),
    (
        false,
        "0.0000000000000000000000000000000000000000000000001e-400",
    ),
];

fn swap() -> impl Strategy<Value = Swap> {
    prop_oneof![
        any::<i64>().prop_map(Swap::Int),
        (0..HUGE.len()).prop_map(Swap::Huge),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Swap::Float),
        any::<bool>().prop_map(Swap::Bool),
        Just(Swap::Null),
        ".{0,40}".prop_map(Swap::Text),
        prop_oneof![
            Just('\u{0}'),
            Just('\u{7}'),
            Just('\u{1b}'),
            Just('\u{7f}'),
            Just('\u{85}'),
            Just('\u{9f}')
        ]
        .prop_map(Swap::Control),
        (1usize..20_000).prop_map(Swap::Long),
        Just(Swap::Array),
        Just(Swap::Object),
        prop_oneof![9usize..200, 200usize..100_000].prop_map(Swap::Deep),
    ]
}

const PLACEHOLDER: &str = "\u{1}frontdesk-placeholder\u{1}";

/// The sample with node `node` (pre-order, the root is 0) replaced; its path, and the bytes.
fn swapped(sample: &Value, node: usize, swap: &Swap) -> (Vec<String>, Vec<u8>) {
    fn count(v: &Value) -> usize {
        1 + match v {
            Value::Array(a) => a.iter().map(count).sum(),
            Value::Object(m) => m.values().map(count).sum(),
            _ => 0,
        }
    }
    fn find<'a>(v: &'a mut Value, mut n: usize, path: &mut Vec<String>) -> Option<&'a mut Value> {
        if n == 0 {
            return Some(v);
        }
        n -= 1;
        let children: Vec<(String, &mut Value)> = match v {
            Value::Array(a) => a
                .iter_mut()
                .enumerate()
                .map(|(i, c)| (i.to_string(), c))
                .collect(),
            Value::Object(m) => m.iter_mut().map(|(k, c)| (k.clone(), c)).collect(),
            _ => return None,
        };
        for (key, child) in children {
            let size = count(child);
            if n < size {
                path.push(key);
                return find(child, n, path);
            }
            n -= size;
        }
        None
    }
    let mut doc = sample.clone();
    let n = node % count(&doc);
    let mut path = Vec::new();
    let target = find(&mut doc, n, &mut path).expect("node in range");
    let mut text_swap = None;
    *target = match swap {
        Swap::Int(i) => json!(i),
        Swap::Huge(k) => {
            text_swap = Some(HUGE[*k].1.to_string());
            json!(PLACEHOLDER)
        }
        Swap::Float(f) => json!(f),
        Swap::Bool(b) => json!(b),
        Swap::Null => Value::Null,
        Swap::Text(t) => json!(t),
        Swap::Control(c) => json!(format!("a{c}b")),
        Swap::Long(n) => json!("x".repeat(*n)),
        Swap::Array => json!([1, "two", null]),
        Swap::Object => json!({"a": {"b": 1}}),
        Swap::Deep(d) => {
            text_swap = Some(format!("{}{}", "[".repeat(*d), "]".repeat(*d)));
            json!(PLACEHOLDER)
        }
    };
    let mut text = serde_json::to_string(&doc).unwrap();
    if let Some(replacement) = text_swap {
        let quoted = serde_json::to_string(PLACEHOLDER).unwrap();
        text = text.replacen(&quoted, &replacement, 1);
    }
    (path, text.into_bytes())
}

/// A sample mutated one of three ways, and whether it is invalid JSON by construction.
#[derive(Debug, Clone)]
enum JsonInput {
    Arbitrary(Bytes),
    Edited {
        sample: usize,
        edits: Vec<Edit>,
    },
    Swapped {
        sample: usize,
        node: usize,
        swap: Swap,
    },
}

/// What a [`JsonInput`] is, once built, and how it is invalid JSON by construction.
#[derive(Default)]
struct Built {
    bytes: Vec<u8>,
    /// A strict prefix of the sample object, or a raw control character (never allowed in
    /// JSON, in a string or out of one), or nothing but spacing: no JSON parser reads it.
    broken: bool,
    /// Invalid UTF-8: refused by a parser that reads every string (serde_json's `Value`), not
    /// necessarily by one that skips the fields it does not know.
    bad_utf8: bool,
    /// Nested past serde_json's limit (128), or a number no float holds (`1e400`): refused
    /// wherever it is read into a `Value`.
    unreadable_value: bool,
    /// The path of the swapped node, and the swap.
    swapped: Option<(Vec<String>, Swap)>,
}

impl Built {
    /// Invalid for a reader of the whole document as a `serde_json::Value`.
    fn invalid_value(&self) -> bool {
        self.broken || self.bad_utf8 || self.unreadable_value
    }
}

fn json_input(samples: usize) -> impl Strategy<Value = JsonInput> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512).prop_map(|b| JsonInput::Arbitrary(Bytes(b))),
        1 => "[\\[\\]{}\":,0-9a-z\\\\. -]{0,200}".prop_map(|s| JsonInput::Arbitrary(Bytes(s.into_bytes()))),
        3 => (0..samples, prop::collection::vec(edit(), 1..5))
            .prop_map(|(sample, edits)| JsonInput::Edited { sample, edits }),
        4 => (0..samples, any::<usize>(), swap())
            .prop_map(|(sample, node, swap)| JsonInput::Swapped { sample, node, swap }),
    ]
}

fn build(input: &JsonInput, samples: &[Value]) -> Built {
    match input {
        JsonInput::Arbitrary(b) => Built {
            bytes: b.0.clone(),
            broken: !b.0.iter().any(|c| !c.is_ascii_whitespace()),
            bad_utf8: std::str::from_utf8(&b.0).is_err(),
            ..Built::default()
        },
        JsonInput::Edited { sample, edits } => {
            let original = serde_json::to_vec_pretty(&samples[*sample]).unwrap();
            let bytes = apply(&original, edits);
            // Invalid by construction: the edits left a strict prefix of the object, or
            // invalid UTF-8, or a raw control character (never allowed in JSON).
            let last_brace = original.iter().rposition(|b| *b == b'}').unwrap();
            let only_truncated = edits.iter().all(|e| matches!(e, Edit::Truncate(_)));
            let truncated = only_truncated && bytes.len() <= last_brace;
            let bad_utf8 = std::str::from_utf8(&bytes).is_err();
            let raw_control = bytes
                .iter()
                .any(|b| *b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | b' '));
            Built {
                broken: truncated || raw_control,
                bad_utf8,
                bytes,
                ..Built::default()
            }
        }
        JsonInput::Swapped { sample, node, swap } => {
            let (path, bytes) = swapped(&samples[*sample], *node, swap);
            let too_deep = matches!(swap, Swap::Deep(d) if *d + path.len() > 128);
            let unrepresentable = matches!(swap, Swap::Huge(k) if HUGE[*k].0);
            Built {
                unreadable_value: too_deep || unrepresentable,
                bytes,
                swapped: Some((path, swap.clone())),
                ..Built::default()
            }
        }
    }
}

fn parse_samples(raw: &[Vec<u8>]) -> Vec<Value> {
    raw.iter()
        .map(|b| serde_json::from_slice(b).expect("sample is JSON"))
        .collect()
}

// ---- The targets ---------------------------------------------------------------------------

const EL_SECRET: &[u8] = b"wsec_test_0123456789abcdef";

fn ts(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(secs).unwrap()
}

/// How an ElevenLabs-Signature case is made.
#[derive(Debug, Clone)]
enum ElCase {
    /// Any header at all, for any body.
    Arbitrary { header: String, body: Bytes },
    /// A real signature of one body, sent with another: never valid.
    OtherBody { body: Bytes, edits: Vec<Edit> },
    /// A real signature under another secret.
    OtherSecret { body: Bytes, secret: Vec<u8> },
    /// A real signature made this many seconds away from now (valid only within 30 minutes
    /// before and 5 after).
    Skewed { body: Bytes, offset: i64 },
    /// A real header, mutated: valid only if it still carries the timestamp and the MAC.
    Mutated { body: Bytes, edits: Vec<Edit> },
}

#[test]
fn fuzz_elevenlabs_webhook_signature() {
    use frontdesk::elevenlabs::signature::{sign, verify, SignatureError};
    let now = ts(1_760_000_000);
    let body = || prop::collection::vec(any::<u8>(), 0..300).prop_map(Bytes);
    let strategy = prop_oneof![
        (".{0,120}", body()).prop_map(|(header, body)| ElCase::Arbitrary { header, body }),
        (
            "t=[0-9]{0,12},v0=[0-9a-fA-F]{0,70}(,v0=[0-9a-f]{0,64})?",
            body()
        )
            .prop_map(|(header, body)| ElCase::Arbitrary { header, body }),
        (body(), prop::collection::vec(edit(), 1..4))
            .prop_map(|(body, edits)| ElCase::OtherBody { body, edits }),
        (body(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(body, secret)| ElCase::OtherSecret { body, secret }),
        (body(), -100_000i64..100_000).prop_map(|(body, offset)| ElCase::Skewed { body, offset }),
        (body(), prop::collection::vec(edit(), 1..4))
            .prop_map(|(body, edits)| ElCase::Mutated { body, edits }),
    ];
    fuzz("elevenlabs_webhook_signature", strategy, |case| {
        match case {
            ElCase::Arbitrary { header, body } => {
                let result = verify(&body.0, Some(&header), EL_SECRET, now);
                must!(result.is_err(), "an arbitrary header verified: {header:?}");
            }
            ElCase::OtherBody { body, edits } => {
                let other = apply(&body.0, &edits);
                if other != body.0 {
                    let header = sign(&body.0, EL_SECRET, now);
                    must!(
                        verify(&other, Some(&header), EL_SECRET, now)
                            == Err(SignatureError::Mismatch),
                        "a signature of another body verified"
                    );
                }
            }
            ElCase::OtherSecret { body, secret } => {
                if secret != EL_SECRET {
                    let header = sign(&body.0, &secret, now);
                    must!(
                        verify(&body.0, Some(&header), EL_SECRET, now)
                            == Err(SignatureError::Mismatch),
                        "a signature under another secret verified"
                    );
                }
            }
            ElCase::Skewed { body, offset } => {
                let header = sign(&body.0, EL_SECRET, ts(now.as_second() + offset));
                let result = verify(&body.0, Some(&header), EL_SECRET, now);
                let expected = if offset < -30 * 60 {
                    Err(SignatureError::Stale)
                } else if offset > 5 * 60 {
                    Err(SignatureError::Future)
                } else {
                    Ok(())
                };
                must!(result == expected, "offset {offset}: {result:?}");
            }
            ElCase::Mutated { body, edits } => {
                let header = sign(&body.0, EL_SECRET, now);
                let mutated = apply(header.as_bytes(), &edits);
                let Ok(mutated) = String::from_utf8(mutated) else {
                    return Ok(()); // a header value is text; bytes are the HTTP test's
                };
                if verify(&body.0, Some(&mutated), EL_SECRET, now).is_ok() {
                    // Only spacing, case or extra parts may change: the timestamp and the MAC
                    // must still be there, exactly.
                    let (t, mac) = header.split_once(',').unwrap();
                    let parts: Vec<String> = mutated
                        .split(',')
                        .map(|p| p.trim().to_ascii_lowercase())
                        .collect();
                    must!(
                        parts.iter().any(|p| p == t) && parts.iter().any(|p| p == mac),
                        "a mutated header verified: {mutated:?}"
                    );
                }
            }
        }
        Ok(())
    });
}

/// How an X-Twilio-Signature case is made.
#[derive(Debug, Clone)]
enum TwilioCase {
    Arbitrary {
        header: String,
        body: Bytes,
    },
    /// A real signature of these parameters, sent with a mutated body.
    OtherBody {
        edits: Vec<Edit>,
    },
    /// A real signature for another URL.
    OtherUrl {
        url: String,
    },
    /// A JSON body whose `bodySHA256` is not its hash.
    JsonHash {
        body: Bytes,
        edits: Vec<Edit>,
    },
    /// A real signature, mutated.
    Mutated {
        edits: Vec<Edit>,
    },
}

#[test]
fn fuzz_twilio_request_signature() {
    use frontdesk::twilio::signature::{
        form_params, sign, signed_string, verify, SignatureError, Signed,
    };
    const TOKEN: &[u8] = b"test-auth-token";
    const URL: &str = "https://frontdesk.example.com/webhooks/twilio/messaging";
    let body = event_body("events/twilio-messaging/apigw-inbound-sms.json");
    let params = form_params(&body);
    let good = sign(TOKEN, URL, &params);
    assert_eq!(verify(TOKEN, URL, Signed::Form(&body), Some(&good)), Ok(()));
    let strategy = prop_oneof![
        (
            "[A-Za-z0-9+/=]{0,40}|.{0,40}",
            prop::collection::vec(any::<u8>(), 0..200).prop_map(Bytes)
        )
            .prop_map(|(header, body)| TwilioCase::Arbitrary { header, body }),
        prop::collection::vec(edit(), 1..5).prop_map(|edits| TwilioCase::OtherBody { edits }),
        "https?://[a-z.:0-9]{1,30}/[a-z/?=&]{0,30}".prop_map(|url| TwilioCase::OtherUrl { url }),
        (
            prop::collection::vec(any::<u8>(), 0..200).prop_map(Bytes),
            prop::collection::vec(edit(), 1..3)
        )
            .prop_map(|(body, edits)| TwilioCase::JsonHash { body, edits }),
        prop::collection::vec(edit(), 1..4).prop_map(|edits| TwilioCase::Mutated { edits }),
    ];
    fuzz("twilio_request_signature", strategy, |case| {
        match case {
            TwilioCase::Arbitrary { header, body } => {
                must!(
                    verify(TOKEN, URL, Signed::Form(&body.0), Some(&header)).is_err(),
                    "an arbitrary signature verified"
                );
                let _ = verify(TOKEN, URL, Signed::Json(&body.0), Some(&header));
            }
            TwilioCase::OtherBody { edits } => {
                let other = apply(&body, &edits);
                let result = verify(TOKEN, URL, Signed::Form(&other), Some(&good));
                // What Twilio signs is the URL and the sorted parameters: a body that reads
                // as other parameters must not verify.
                if signed_string(URL, &form_params(&other)) != signed_string(URL, &params) {
                    must!(
                        result == Err(SignatureError::Mismatch),
                        "a signature of other parameters verified: {result:?}"
                    );
                }
            }
            TwilioCase::OtherUrl { url } => {
                let strip = |u: &str| u.replace(":443", "").replace(":80", "");
                if strip(&url) != strip(URL) {
                    let signed_elsewhere = sign(TOKEN, &url, &params);
                    must!(
                        verify(TOKEN, URL, Signed::Form(&body), Some(&signed_elsewhere)).is_err(),
                        "a signature for {url} verified"
                    );
                }
            }
            TwilioCase::JsonHash { body, edits } => {
                use sha2::Digest;
                let hash = hex::encode(sha2::Sha256::digest(&body.0));
                let url = format!("{URL}?bodySHA256={hash}");
                let header = sign(TOKEN, &url, &[]);
                must!(
                    verify(TOKEN, &url, Signed::Json(&body.0), Some(&header)) == Ok(()),
                    "a signed JSON body was refused"
                );
                let other = apply(&body.0, &edits);
                if other != body.0 {
                    must!(
                        verify(TOKEN, &url, Signed::Json(&other), Some(&header))
                            == Err(SignatureError::BodyHash),
                        "a JSON body that is not the one hashed verified"
                    );
                }
            }
            TwilioCase::Mutated { edits } => {
                let Ok(mutated) = String::from_utf8(apply(good.as_bytes(), &edits)) else {
                    return Ok(());
                };
                if mutated.trim() != good {
                    must!(
                        verify(TOKEN, URL, Signed::Form(&body), Some(&mutated)).is_err(),
                        "a mutated signature verified: {mutated:?}"
                    );
                }
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_tool_secret() {
    use axum::http::{HeaderMap, HeaderValue};
    use frontdesk::http::{authorize_tool, TOOL_SECRET_HEADER};
    const SECRET: &str = "tool-test-secret-0123456789";
    // Header values: visible ASCII, spaces, tabs and obs-text (what HTTP lets through).
    let value = prop::collection::vec(prop_oneof![0x20u8..0x7f, Just(b'\t'), 0x80u8..=0xff], 0..60);
    let near =
        (prop::collection::vec(edit(), 1..4)).prop_map(|edits| apply(SECRET.as_bytes(), &edits));
    let strategy = (prop_oneof![value, near], any::<bool>());
    fuzz("tool_secret", strategy, |(given, configured)| {
        let Ok(header) = HeaderValue::from_bytes(&given) else {
            return Ok(());
        };
        let mut headers = HeaderMap::new();
        headers.insert(TOOL_SECRET_HEADER, header);
        let expected = configured.then_some(SECRET);
        let result = authorize_tool(expected, &headers);
        let same = configured && given == SECRET.as_bytes();
        must!(
            result.is_ok() == same,
            "secret {:?} (configured: {configured}) -> {result:?}",
            Bytes(given.clone())
        );
        // Missing header: always refused.
        must!(
            authorize_tool(expected, &HeaderMap::new()).is_err(),
            "no header accepted"
        );
        Ok(())
    });
}

#[derive(Debug, Clone)]
enum TokenCase {
    Arbitrary(String),
    /// A token of this key, mutated.
    Mutated(Vec<Edit>),
    /// A token with these claims (some of them wrong), signed with the key or another one.
    Claims {
        issuer: bool,
        audience: bool,
        tenant: Option<String>,
        exp_offset: i64,
        alg: &'static str,
        right_key: bool,
        subject: bool,
    },
}

/// Base64url without padding (a JWT's parts).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[test]
fn fuzz_reviewer_token() {
    use frontdesk::qa::auth::{
        local_reviewer_token, reviewer_from_claims, sign_local, verify_local, AuthError,
        DEFAULT_TENANT_CLAIM, LOCAL_AUDIENCE, LOCAL_ISSUER,
    };
    use std::collections::HashMap;
    const KEY: &[u8] = b"qa_test_key_0123456789";
    let now = 1_760_000_000;
    let good = local_reviewer_token(KEY, "demo", now, 1);
    let check = |token: &str| -> Result<frontdesk::qa::Reviewer, AuthError> {
        let claims: HashMap<String, String> =
            verify_local(token, KEY, LOCAL_ISSUER, LOCAL_AUDIENCE, now)?;
        reviewer_from_claims(&claims, DEFAULT_TENANT_CLAIM, "demo")
    };
    assert!(check(&good).is_ok());
    let strategy = prop_oneof![
        ".{0,200}".prop_map(TokenCase::Arbitrary),
        "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,44}"
            .prop_map(TokenCase::Arbitrary),
        prop::collection::vec(edit(), 1..4).prop_map(TokenCase::Mutated),
        (
            any::<bool>(),
            any::<bool>(),
            prop::option::of(prop_oneof![Just("demo".to_string()), "[a-z]{1,8}"]),
            -20_000i64..20_000,
            prop_oneof![
                Just("HS256"),
                Just("none"),
                Just("RS256"),
                Just("HS512"),
                Just("hs256")
            ],
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(issuer, audience, tenant, exp_offset, alg, right_key, subject)| {
                    TokenCase::Claims {
                        issuer,
                        audience,
                        tenant,
                        exp_offset,
                        alg,
                        right_key,
                        subject,
                    }
                }
            ),
    ];
    fuzz("reviewer_token", strategy, |case| {
        match case {
            TokenCase::Arbitrary(token) => {
                must!(
                    check(&token).is_err(),
                    "an arbitrary token verified: {token:?}"
                );
            }
            TokenCase::Mutated(edits) => {
                let Ok(token) = String::from_utf8(apply(good.as_bytes(), &edits)) else {
                    return Ok(());
                };
                if token != good {
                    must!(
                        check(&token).is_err(),
                        "a mutated token verified: {token:?}"
                    );
                }
            }
            TokenCase::Claims {
                issuer,
                audience,
                tenant,
                exp_offset,
                alg,
                right_key,
                subject,
            } => {
                let mut claims = json!({
                    "iss": if issuer { LOCAL_ISSUER } else { "someone-else" },
                    "aud": if audience { LOCAL_AUDIENCE } else { "other-api" },
                    "exp": now + exp_offset,
                });
                if subject {
                    claims["sub"] = json!("reviewer-1");
                }
                if let Some(t) = &tenant {
                    claims[DEFAULT_TENANT_CLAIM] = json!(t);
                }
                let key: &[u8] = if right_key { KEY } else { b"another key" };
                let mut token = sign_local(&claims, key);
                if alg != "HS256" {
                    // The same claims under another header: the header is signed too.
                    let header = base64url(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
                    let rest = token.split_once('.').unwrap().1.to_string();
                    token = format!("{header}.{rest}");
                }
                let result = check(&token);
                let valid = issuer
                    && audience
                    && tenant.as_deref() == Some("demo")
                    && exp_offset >= -60
                    && alg == "HS256"
                    && right_key
                    && subject;
                must!(
                    result.is_ok() == valid,
                    "{claims} ({alg}, right key {right_key}) -> {result:?}"
                );
                if !valid
                    && right_key
                    && alg == "HS256"
                    && issuer
                    && audience
                    && exp_offset >= -60
                    && subject
                {
                    // Only the tenant is wrong: 403, not 401.
                    let expected = if tenant.is_some() {
                        AuthError::OtherTenant
                    } else {
                        AuthError::Invalid("no tenant claim")
                    };
                    must!(result == Err(expected), "{result:?}");
                }
            }
        }
        Ok(())
    });
}

#[derive(Debug, Clone)]
enum FormAuthCase {
    Arbitrary {
        signature: Option<String>,
        header_token: Option<String>,
        body_token: Option<String>,
        body: Bytes,
    },
    /// The signature of one body, sent with another.
    OtherBody { edits: Vec<Edit> },
    /// The token, mutated.
    Token { edits: Vec<Edit>, in_body: bool },
}

#[test]
fn fuzz_web_form_signature_and_token() {
    use frontdesk::messaging::web_form::{authenticate, sign};
    use frontdesk::secrets::Secrets;
    const SECRET: &str = "form-test-secret";
    const TOKEN: &str = "form-test-token";
    let secrets = Secrets::from_lookup(|k| match k {
        "WEB_FORM_SECRET" => Some(SECRET.into()),
        "WEB_FORM_TOKEN" => Some(TOKEN.into()),
        _ => None,
    });
    let body = event_body("events/web-form/apigw-web-form.json");
    let good = sign(SECRET.as_bytes(), &body);
    assert_eq!(
        authenticate(&secrets, Some(&good), None, None, &body),
        Ok(())
    );
    let text = || prop::option::of(".{0,80}");
    let strategy = prop_oneof![
        (
            text(),
            text(),
            text(),
            prop::collection::vec(any::<u8>(), 0..100).prop_map(Bytes)
        )
            .prop_map(|(signature, header_token, body_token, body)| {
                FormAuthCase::Arbitrary {
                    signature,
                    header_token,
                    body_token,
                    body,
                }
            }),
        prop::collection::vec(edit(), 1..4).prop_map(|edits| FormAuthCase::OtherBody { edits }),
        (prop::collection::vec(edit(), 1..4), any::<bool>())
            .prop_map(|(edits, in_body)| FormAuthCase::Token { edits, in_body }),
    ];
    fuzz("web_form_signature_and_token", strategy, |case| {
        match case {
            FormAuthCase::Arbitrary {
                signature,
                header_token,
                body_token,
                body,
            } => {
                let result = authenticate(
                    &secrets,
                    signature.as_deref(),
                    header_token.as_deref(),
                    body_token.as_deref(),
                    &body.0,
                );
                // A signature, when there is one, decides; else the header's token, when there
                // is a header (a blank one is no token: the body's is not looked at), else the
                // body's.
                let signed = signature.as_deref().is_some_and(|s| !s.trim().is_empty());
                let by_token = !signed
                    && header_token
                        .as_ref()
                        .or(body_token.as_ref())
                        .map(|t| t.trim())
                        == Some(TOKEN);
                must!(
                    result.is_ok() == by_token,
                    "signature {signature:?} header {header_token:?} body {body_token:?} -> {result:?}"
                );
            }
            FormAuthCase::OtherBody { edits } => {
                let other = apply(&body, &edits);
                if other != body {
                    must!(
                        authenticate(&secrets, Some(&good), None, None, &other).is_err(),
                        "the signature of another body verified"
                    );
                }
            }
            FormAuthCase::Token { edits, in_body } => {
                let Ok(token) = String::from_utf8(apply(TOKEN.as_bytes(), &edits)) else {
                    return Ok(());
                };
                let result = if in_body {
                    authenticate(&secrets, None, None, Some(&token), &body)
                } else {
                    authenticate(&secrets, None, Some(&token), None, &body)
                };
                must!(
                    result.is_ok() == (token.trim() == TOKEN),
                    "token {token:?} -> {result:?}"
                );
            }
        }
        Ok(())
    });
}

static WEBHOOK_SAMPLES: LazyLock<Vec<Value>> = LazyLock::new(|| {
    parse_samples(&[
        webhook_sample("post_call_transcription.json"),
        webhook_sample("post_call_audio.json"),
        webhook_sample("call_initiation_failure.json"),
    ])
});

#[test]
fn fuzz_post_call_payload_and_its_processing() {
    use frontdesk::elevenlabs::webhook::{parse, PostCallEvent};
    use frontdesk::post_call::call;
    use frontdesk::quality::{check, replay, BusinessFacts};
    let samples = &*WEBHOOK_SAMPLES;
    let facts_of_business = BusinessFacts::of(&DEMO);
    let now: jiff::Timestamp = "2026-11-23T07:00:00Z".parse().unwrap();
    fuzz("post_call_payload", json_input(samples.len()), |input| {
        let built = build(&input, samples);
        let parsed = parse(&built.bytes);
        // The envelope's unknown fields are skipped unread (serde_json does not look inside
        // them): only what no parser can read must be refused.
        if built.broken {
            must!(
                parsed.is_err(),
                "invalid JSON parsed: {:?}",
                Bytes(built.bytes.clone())
            );
        }
        if let Some((path, swap)) = &built.swapped {
            if built.unreadable_value && path.first().map(String::as_str) == Some("data") {
                must!(parsed.is_err(), "{swap:?} at {path:?} parsed");
            }
            let wrong_type = !matches!(swap, Swap::Text(_) | Swap::Control(_) | Swap::Long(_));
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            // Fields every known type needs, given a value that is not text: refused.
            if wrong_type
                && (p == ["type"]
                    || p.is_empty()
                    || p == ["data", "conversation_id"]
                    || p == ["data", "agent_id"])
            {
                must!(parsed.is_err(), "{path:?} = {swap:?} parsed");
            }
            if matches!(swap, Swap::Control(_) | Swap::Text(_)) && p == ["data", "conversation_id"]
            {
                // An id must be letters, digits, '-' and '_' (it ends up in keys).
                if let Swap::Text(t) = swap {
                    let safe = !t.is_empty()
                        && t.len() <= 128
                        && t.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                    must!(
                        parsed.is_ok() == safe,
                        "conversation id {t:?} -> {:?}",
                        parsed.as_ref().err()
                    );
                } else {
                    must!(
                        parsed.is_err(),
                        "a conversation id with a control character parsed"
                    );
                }
            }
        }
        if let Err(e) = &parsed {
            must!(!e.field.is_empty(), "an error without a field");
        }
        // What processing does without I/O, on whatever parsed: never a panic.
        if let Ok(PostCallEvent::Transcription(t)) = &parsed {
            let facts = call::read_facts(&DEMO, t);
            let caller = call::caller_number(&DEMO, t);
            let links = call::Links {
                caller: caller.clone(),
                lead_id: Some("lead_x".into()),
                transcript_key: "transcripts/demo/x.json".into(),
            };
            let _record = call::call_record("demo", t, &facts, links, now);
            let _text = call::caller_text(&DEMO, &t.conversation_id, &facts, facts.name.as_deref());
            if let Some(caller) = &caller {
                let _alert = call::owner_alert(&DEMO, &facts, caller);
            }
        }
        if let Ok((_, evidence)) = replay::read_export(&built.bytes) {
            let _findings = check(&DEMO_RULES, &facts_of_business, &evidence);
        }
        Ok(())
    });
}

/// Twilio's parameters: from a sample body, mutated, or made up.
#[derive(Debug, Clone)]
enum ParamsCase {
    Edited {
        sample: usize,
        edits: Vec<Edit>,
    },
    /// One parameter of a sample set to this value (or removed), or added twice.
    Set {
        sample: usize,
        name: usize,
        value: Option<String>,
        twice: bool,
    },
    Arbitrary(Vec<(String, String)>),
}

static TWILIO_SAMPLES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    vec![
        event_body("events/twilio-messaging/apigw-inbound-sms.json"),
        event_body("events/twilio-status/apigw-status-delivered.json"),
    ]
});

const TWILIO_NAMES: &[&str] = &[
    "MessageSid",
    "SmsMessageSid",
    "SmsSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "MessageStatus",
    "SmsStatus",
    "ErrorCode",
    "OptOutType",
    "ProfileName",
];

fn twilio_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "(SM|MM|sm|XX)[0-9a-fA-Fg]{30,34}",
        "(whatsapp:)?\\+?[0-9 ()-]{0,20}",
        "[0-9]{1,25}",
        (4090usize..4200).prop_map(|n| "é".repeat(n)),
        Just("\u{0}".to_string()),
        Just(String::new()),
    ]
}

fn params_case() -> impl Strategy<Value = ParamsCase> {
    prop_oneof![
        (0..2usize, prop::collection::vec(edit(), 1..5))
            .prop_map(|(sample, edits)| ParamsCase::Edited { sample, edits }),
        (
            0..2usize,
            0..TWILIO_NAMES.len(),
            prop::option::of(twilio_value()),
            any::<bool>()
        )
            .prop_map(|(sample, name, value, twice)| ParamsCase::Set {
                sample,
                name,
                value,
                twice
            }),
        prop::collection::vec(
            (
                prop_oneof![
                    (0..TWILIO_NAMES.len()).prop_map(|i| TWILIO_NAMES[i].to_string()),
                    ".{0,10}"
                ],
                twilio_value()
            ),
            0..12
        )
        .prop_map(ParamsCase::Arbitrary),
    ]
}

fn params_of(case: &ParamsCase) -> Vec<(String, String)> {
    use frontdesk::twilio::signature::form_params;
    match case {
        ParamsCase::Edited { sample, edits } => {
            form_params(&apply(&TWILIO_SAMPLES[*sample], edits))
        }
        ParamsCase::Set {
            sample,
            name,
            value,
            twice,
        } => {
            let mut params = form_params(&TWILIO_SAMPLES[*sample]);
            let name = TWILIO_NAMES[*name];
            match value {
                Some(v) if *twice => params.push((name.to_string(), v.clone())),
                Some(v) => {
                    params.retain(|(k, _)| k != name);
                    params.insert(0, (name.to_string(), v.clone()));
                }
                None => params.retain(|(k, _)| k != name),
            }
            params
        }
        ParamsCase::Arbitrary(p) => p.clone(),
    }
}

fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn is_sid(v: &str) -> bool {
    v.len() == 34
        && (v.starts_with("SM") || v.starts_with("MM"))
        && v[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn fuzz_twilio_messaging_parameters() {
    use frontdesk::messaging::{inbound::parse_inbound, keywords};
    fuzz("twilio_messaging_parameters", params_case(), |case| {
        let params = params_of(&case);
        let result = parse_inbound(&params, "GB");
        let sid = first(&params, "MessageSid").or_else(|| first(&params, "SmsMessageSid"));
        let body = first(&params, "Body").unwrap_or_default();
        let invalid = !sid.is_some_and(is_sid)
            || first(&params, "From").is_none()
            || body.chars().count() > 4096
            || body
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            || first(&params, "NumMedia")
                .is_some_and(|n| !n.is_empty() && n.parse::<u32>().is_err());
        if invalid {
            must!(result.is_err(), "invalid parameters parsed: {params:?}");
        }
        if let Ok(text) = &result {
            must!(is_sid(&text.message_sid), "kept a bad SID");
            let _ = keywords::meaning(&text.body, text.opt_out_type.as_deref());
            let _ = keywords::invites_opt_out(&text.body);
        }
        Ok(())
    });
}

#[test]
fn fuzz_twilio_status_parameters() {
    use frontdesk::messaging::inbound::{parse_status, DeliveryStatus};
    fuzz("twilio_status_parameters", params_case(), |case| {
        let params = params_of(&case);
        let result = parse_status(&params);
        let sid = first(&params, "MessageSid").or_else(|| first(&params, "SmsSid"));
        let status = first(&params, "MessageStatus").or_else(|| first(&params, "SmsStatus"));
        let invalid = !sid.is_some_and(is_sid)
            || status.is_none_or(|s| DeliveryStatus::parse(s).is_none())
            || first(&params, "ErrorCode")
                .is_some_and(|c| !c.is_empty() && c.parse::<u32>().is_err());
        must!(result.is_ok() != invalid, "{params:?} -> {result:?}");
        Ok(())
    });
}

/// The sample bodies of every tool route (`events/<function>/apigw-*.json`).
static TOOL_SAMPLES: LazyLock<Vec<(String, Value)>> = LazyLock::new(|| {
    frontdesk::http::routes()
        .iter()
        .filter(|r| r.caller == frontdesk::http::Caller::Agent)
        .map(|r| {
            let dir = frontdesk_blackbox::workspace()
                .join("events")
                .join(r.function);
            let file = std::fs::read_dir(&dir)
                .unwrap_or_else(|_| panic!("no sample event for {}", r.function))
                .next()
                .unwrap()
                .unwrap()
                .path();
            let event: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
            let body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
            (r.path.to_string(), body)
        })
        .collect()
});

/// Reads `raw` as the request type of the tool at `path`, and runs the pure validation the
/// tools have (availability and booking): `Err(field)` for a 400.
fn read_tool(path: &str, raw: &[u8]) -> Result<(), String> {
    use frontdesk::http::{read_tool_body, HttpError};
    use frontdesk::tools::{
        availability, booking, booking_change, caller, calls, escalation, leads,
    };
    fn field<T>(r: Result<T, HttpError>) -> Result<T, String> {
        r.map_err(|e| match e {
            HttpError::BadRequest { field, .. } => field,
            other => panic!("a tool body gave {other:?}, not a 400"),
        })
    }
    let tool_field = |e: frontdesk::tools::ToolError| match e {
        frontdesk::tools::ToolError::BadRequest { field, .. } => field,
        other => panic!("{other:?}"),
    };
    let b = frontdesk::booking::calendar::bookable(&DEMO).unwrap();
    match path.rsplit('/').next().unwrap() {
        "conversation-init" => field(read_tool_body::<caller::ConversationInit>(raw)).map(drop),
        "check_availability" => {
            let req = field(read_tool_body::<availability::CheckAvailability>(raw))?.request;
            availability::understand(&DEMO, &req)
                .map_err(tool_field)
                .map(drop)
        }
        "create_booking" => {
            let req = field(read_tool_body::<booking::CreateBooking>(raw))?.request;
            booking::validate(&b, &req).map_err(tool_field).map(drop)
        }
        "update_booking" => field(read_tool_body::<booking_change::UpdateBooking>(raw)).map(drop),
        "upsert_contact" => {
            let req = field(read_tool_body::<caller::UpsertContact>(raw))?.request;
            caller::email(req.email.as_deref())
                .map_err(tool_field)
                .map(drop)
        }
        "capture_lead" => field(read_tool_body::<leads::CaptureLead>(raw)).map(drop),
        "dispatch_lead" => field(read_tool_body::<leads::DispatchLead>(raw)).map(drop),
        "escalation_target" => field(read_tool_body::<escalation::EscalationTarget>(raw)).map(drop),
        "log_call" => field(read_tool_body::<calls::LogCall>(raw)).map(drop),
        other => panic!("no reader for the tool at {other}: add it here"),
    }
}

#[test]
fn fuzz_tool_bodies() {
    let samples: Vec<Value> = TOOL_SAMPLES.iter().map(|(_, v)| v.clone()).collect();
    for (path, body) in TOOL_SAMPLES.iter() {
        assert_eq!(
            read_tool(path, body.to_string().as_bytes()),
            Ok(()),
            "the sample of {path}"
        );
    }
    let strategy = (0..TOOL_SAMPLES.len(), json_input(samples.len()));
    fuzz("tool_bodies", strategy, |(tool, input)| {
        let path = &TOOL_SAMPLES[tool].0;
        let built = build(&input, &samples);
        let result = read_tool(path, &built.bytes);
        let not_object = built.bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{');
        if built.invalid_value() || not_object {
            must!(
                result == Err("body".into()),
                "{path}: {:?} -> {result:?}",
                Bytes(built.bytes.clone())
            );
        }
        if let Some((field_path, swap)) = &built.swapped {
            // Nested past 8, or a control character anywhere: refused (by its top field).
            if matches!(swap, Swap::Deep(_)) {
                must!(
                    result == Err("body".into()),
                    "{path}: nested {swap:?} at {field_path:?} -> {result:?}"
                );
            }
            if let (Swap::Control(_), Some(top)) = (swap, field_path.first()) {
                must!(
                    result == Err(top.clone()),
                    "{path}: control character at {field_path:?} -> {result:?}"
                );
            }
            if field_path.is_empty() && !matches!(swap, Swap::Object) {
                must!(
                    result == Err("body".into()),
                    "{path}: a body of {swap:?} -> {result:?}"
                );
            }
        }
        Ok(())
    });
}

#[derive(Debug, Clone)]
enum FormCase {
    Edited {
        json: bool,
        edits: Vec<Edit>,
    },
    Set {
        json: bool,
        field: usize,
        value: Option<String>,
        twice: bool,
    },
    ContentType(String),
    Arbitrary(Bytes, String),
}

const FORM_FIELDS: &[&str] = &[
    "name",
    "phone",
    "email",
    "service",
    "message",
    "form_token",
    "submit",
];

#[test]
fn fuzz_web_form_body() {
    use frontdesk::messaging::web_form::parse;
    let form = event_body("events/web-form/apigw-web-form.json");
    let fields: Vec<(String, String)> = frontdesk::twilio::signature::form_params(&form);
    let as_json = |fields: &[(String, String)]| -> Vec<u8> {
        let mut out = String::from("{");
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("{}:{}", json!(k), json!(v)));
        }
        out.push('}');
        out.into_bytes()
    };
    let as_form =
        |fields: &[(String, String)]| frontdesk_blackbox::form_urlencoded_body(fields).into_bytes();
    assert!(parse(&form, "application/x-www-form-urlencoded", "GB").is_ok());
    assert!(parse(&as_json(&fields), "application/json", "GB").is_ok());
    let value = prop_oneof![
        ".{0,30}",
        "[0-9 +()-]{0,20}",
        "[a-z]{1,8}@[a-z]{1,8}(\\.[a-z]{2,3})?",
        (90usize..2100).prop_map(|n| "y".repeat(n)),
        Just("Ann\u{0}Lee".to_string()),
        Just("line\nbreak".to_string()),
    ];
    let strategy = prop_oneof![
        (any::<bool>(), prop::collection::vec(edit(), 1..5))
            .prop_map(|(json, edits)| FormCase::Edited { json, edits }),
        (
            any::<bool>(),
            0..FORM_FIELDS.len(),
            prop::option::of(value),
            any::<bool>()
        )
            .prop_map(|(json, field, value, twice)| FormCase::Set {
                json,
                field,
                value,
                twice
            }),
        ".{0,40}".prop_map(FormCase::ContentType),
        (
            prop::collection::vec(any::<u8>(), 0..300).prop_map(Bytes),
            prop_oneof![
                Just("application/json".to_string()),
                Just("application/x-www-form-urlencoded".to_string()),
                Just(String::new())
            ]
        )
            .prop_map(|(b, c)| FormCase::Arbitrary(b, c)),
    ];
    fuzz("web_form_body", strategy, |case| {
        match case {
            FormCase::Edited { json, edits } => {
                let original = if json { as_json(&fields) } else { form.clone() };
                let bytes = apply(&original, &edits);
                let ct = if json {
                    "application/json"
                } else {
                    "application/x-www-form-urlencoded"
                };
                let result = parse(&bytes, ct, "GB");
                if std::str::from_utf8(&bytes).is_err() {
                    must!(
                        result.as_ref().err().map(|e| e.field) == Some("body"),
                        "invalid UTF-8 -> {result:?}"
                    );
                }
            }
            FormCase::Set {
                json,
                field,
                value,
                twice,
            } => {
                let name = FORM_FIELDS[field];
                let mut f = fields.clone();
                match &value {
                    Some(v) if twice => f.push((name.into(), v.clone())),
                    Some(v) => {
                        f.retain(|(k, _)| k != name);
                        f.push((name.into(), v.clone()));
                    }
                    None => f.retain(|(k, _)| k != name),
                }
                let (bytes, ct) = if json {
                    (as_json(&f), "application/json")
                } else {
                    (as_form(&f), "application/x-www-form-urlencoded")
                };
                let result = parse(&bytes, ct, "GB");
                let known = name != "submit";
                let present = fields.iter().any(|(k, _)| k == name);
                // A known field given twice is refused, in a form and in JSON alike.
                let form_twice = twice && present && value.is_some();
                let given = value.as_deref().map(str::trim);
                let control = given.is_some_and(|v| {
                    v.chars().any(|c| {
                        c.is_control() && !(name == "message" && matches!(c, '\n' | '\r' | '\t'))
                    })
                });
                let max = match name {
                    "phone" => 40,
                    "email" => 254,
                    "message" => 2000,
                    _ => 100,
                };
                let long = given.is_some_and(|v| v.chars().count() > max);
                let checked = known && name != "form_token";
                let expect_field = if form_twice && known {
                    Some(name)
                } else if form_twice {
                    None
                } else if name == "phone" && given.is_none_or(str::is_empty) {
                    Some("phone")
                } else if checked && (control || long) {
                    Some(name)
                } else {
                    None
                };
                if let Some(expected) = expect_field {
                    must!(
                        result.as_ref().err().map(|e| e.field) == Some(expected),
                        "{name} = {value:?} (twice {twice}, json {json}) -> {result:?}"
                    );
                }
            }
            FormCase::ContentType(ct) => {
                let result = parse(&form, &ct, "GB");
                if !ct.is_empty()
                    && !ct.starts_with("application/json")
                    && !ct.starts_with("application/x-www-form-urlencoded")
                {
                    must!(
                        result.as_ref().err().map(|e| e.field) == Some("content-type"),
                        "{ct:?} -> {result:?}"
                    );
                }
            }
            FormCase::Arbitrary(bytes, ct) => {
                let result = parse(&bytes.0, &ct, "GB");
                if std::str::from_utf8(&bytes.0).is_err() {
                    must!(result.is_err(), "invalid UTF-8 parsed");
                }
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_phone_numbers() {
    use frontdesk::phone::{PhoneError, PhoneNumber};
    let samples = [
        "+447700900123",
        "07700 900123",
        "whatsapp:+447700900123",
        "tel:+14155550123",
        "(415) 555-0123",
        "00 33 1 42 68 53 00",
        "+1 000",
        "+44 20 7946 0123",
        "+800 1234 5678",
    ];
    let raw = prop_oneof![
        ".{0,40}",
        "[0-9 +()./-]{0,30}",
        "(whatsapp:|tel:)?\\+[0-9]{1,20}",
        (0..samples.len(), prop::collection::vec(edit(), 1..4)).prop_map(move |(i, e)| {
            String::from_utf8_lossy(&apply(samples[i].as_bytes(), &e)).into_owned()
        }),
        "[0-9]{100,2000}",
    ];
    let region = prop_oneof![
        Just(None),
        Just(Some("GB".to_string())),
        Just(Some("US".to_string())),
        Just(Some("FR".to_string())),
        "[A-Za-z]{0,4}".prop_map(Some),
        ".{0,5}".prop_map(Some),
    ];
    fuzz("phone_numbers", (raw, region), |(raw, region)| {
        let result = PhoneNumber::parse(&raw, region.as_deref());
        // Nothing that is or stands for a digit (letters spell digits on a keypad): refused.
        if !raw.chars().any(|c| c.is_numeric() || c.is_alphabetic()) && !raw.trim().is_empty() {
            must!(result.is_err(), "{raw:?} without a digit parsed");
        }
        if raw.trim().is_empty() {
            must!(result == Err(PhoneError::Empty), "{raw:?} -> {result:?}");
        }
        if let Ok(p) = &result {
            let e164 = p.as_str();
            // libphonenumber's longest: a 3-digit calling code and 17 national digits.
            must!(
                e164.starts_with('+')
                    && e164.len() <= 21
                    && e164[1..].bytes().all(|b| b.is_ascii_digit()),
                "{raw:?} -> {e164}"
            );
            // E.164 parses to itself, in any region.
            must!(
                PhoneNumber::parse(e164, None).as_ref() == Ok(p),
                "{e164} does not re-parse"
            );
            let _ = (p.international(), p.region(), p.log_tag());
        }
        Ok(())
    });
}

#[derive(Debug, Clone)]
struct WhenCase {
    date: Option<String>,
    time_of_day: Option<String>,
    start: String,
    now: i64,
}

#[test]
fn fuzz_tool_dates_and_times() {
    use frontdesk::booking::calendar::bookable;
    use frontdesk::booking::rules::parse_opening;
    use frontdesk::tools::availability::{offer, understand, CheckAvailability};
    use frontdesk::tools::booking::{plan, validate, CreateBooking};
    let b = bookable(&DEMO).unwrap();
    let date = prop_oneof![
        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        "(19|20|99|00)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])",
        "[-+]?[0-9]{4,6}-[0-9]{1,2}-[0-9]{1,2}",
        Just("9999-12-31".to_string()),
        Just("-009999-01-01".to_string()),
        Just("0000-01-01".to_string()),
        ".{0,20}",
    ];
    let start = prop_oneof![
        "20[0-9]{2}-(0[1-9]|1[0-2])-[0-2][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](Z|[+-][01][0-9]:[0-5][0-9])",
        "[-+]?[0-9]{4,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,12})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?(\\[[A-Za-z/_]{1,20}\\])?",
        Just("9999-12-31T23:59:59Z".to_string()), Just("-009999-01-01T00:00:00Z".to_string()),
        Just("9999-12-31T23:59:59.999999999-25:59".to_string()),
        ".{0,30}",
    ];
    let part = prop_oneof![
        Just("morning".to_string()),
        Just("ANY".to_string()),
        ".{0,12}"
    ];
    let now = prop_oneof![
        0i64..4_102_444_800,
        Just(jiff::Timestamp::MIN.as_second()),
        Just(jiff::Timestamp::MAX.as_second()),
        (jiff::Timestamp::MAX.as_second() - 40 * 86_400)..=jiff::Timestamp::MAX.as_second(),
        jiff::Timestamp::MIN.as_second()..=(jiff::Timestamp::MIN.as_second() + 40 * 86_400),
    ];
    let strategy = (prop::option::of(date), prop::option::of(part), start, now).prop_map(
        |(date, time_of_day, start, now)| WhenCase {
            date,
            time_of_day,
            start,
            now,
        },
    );
    fuzz("tool_dates_and_times", strategy, |case| {
        let now = jiff::Timestamp::from_second(case.now).unwrap();
        let asked = CheckAvailability {
            service: "boiler service".into(),
            date: case.date.clone(),
            time_of_day: case.time_of_day.clone(),
            conversation_id: None,
            caller_phone: None,
        };
        match understand(&DEMO, &asked) {
            Ok(Ok(understood)) => {
                if let Some(d) = case
                    .date
                    .as_deref()
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                {
                    must!(
                        d.parse::<jiff::civil::Date>().is_ok(),
                        "date {d:?} accepted"
                    );
                }
                let _ = offer(&b, &understood, &[], now);
            }
            Ok(Err(_refusal)) => must!(false, "the demo's boiler service refused"),
            Err(frontdesk::tools::ToolError::BadRequest { field, .. }) => {
                must!(field == "date" || field == "time_of_day", "{field}");
            }
            Err(e) => must!(false, "{e:?}"),
        }
        let req = CreateBooking {
            service: "boiler_service".into(),
            start: case.start.clone(),
            customer_name: "Sam Sample".into(),
            caller_phone: None,
            conversation_id: Some("conv_fuzz".into()),
            idempotency_key: None,
            notes: None,
        };
        match validate(&b, &req) {
            Ok(Ok(v)) => {
                must!(
                    case.start.trim().parse::<jiff::Timestamp>().is_ok(),
                    "start {:?} accepted",
                    case.start
                );
                let _ = plan(&b, &v, &[], now, "bk_fuzz", "demo");
            }
            Ok(Err(_)) => must!(false, "the demo's boiler service refused"),
            Err(frontdesk::tools::ToolError::BadRequest { field, .. }) => {
                must!(field == "start", "{field}");
                must!(
                    case.start.trim().parse::<jiff::Timestamp>().is_err(),
                    "a parseable start refused"
                );
            }
            Err(e) => must!(false, "{e:?}"),
        }
        let _ = parse_opening(&case.start);
        if let Some(d) = &case.date {
            let _ = parse_opening(d);
        }
        Ok(())
    });
}

#[derive(Debug, Clone)]
enum TomlCase {
    Edited(Vec<Edit>),
    /// One line of the file deleted.
    DropLine(usize),
    /// One value replaced (after the first `=` on a line).
    Value(usize, &'static str),
    Arbitrary(String),
}

fn toml_case() -> impl Strategy<Value = TomlCase> {
    prop_oneof![
        prop::collection::vec(edit(), 1..5).prop_map(TomlCase::Edited),
        any::<usize>().prop_map(TomlCase::DropLine),
        (
            any::<usize>(),
            prop_oneof![
                Just("5"),
                Just("\"\""),
                Just("[]"),
                Just("{}"),
                Just("true"),
                Just("-1"),
                Just("99999999999999999999"),
                Just("1e400"),
                Just("\"not a zone/Nowhere\""),
                Just("\"25:99-26:00\""),
                Just("\"\u{0}\""),
                Just("[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]"),
                Just("{ a = { b = { c = { d = 1 } } } }"),
                Just("\"+44\""),
                Just("1979-05-27T07:32:00Z"),
            ]
        )
            .prop_map(|(i, v)| TomlCase::Value(i, v)),
        ".{0,200}".prop_map(TomlCase::Arbitrary),
        "(\\[[a-z._]{0,12}\\]\n|[a-z_]{1,10} = (\"[^\"\n]{0,10}\"|[0-9]{1,5}|\\[\\])\n){0,12}"
            .prop_map(TomlCase::Arbitrary),
    ]
}

fn toml_text(case: &TomlCase, original: &str) -> String {
    let lines: Vec<&str> = original.lines().collect();
    match case {
        TomlCase::Edited(edits) => {
            String::from_utf8_lossy(&apply(original.as_bytes(), edits)).into_owned()
        }
        TomlCase::DropLine(i) => {
            let n = i % lines.len();
            lines
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != n)
                .map(|(_, l)| *l)
                .collect::<Vec<_>>()
                .join("\n")
        }
        TomlCase::Value(i, v) => {
            let assignments: Vec<usize> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| l.contains('=') && !l.trim_start().starts_with('#'))
                .map(|(j, _)| j)
                .collect();
            let n = assignments[i % assignments.len()];
            lines
                .iter()
                .enumerate()
                .map(|(j, l)| {
                    if j == n {
                        format!("{} = {v}", l.split_once('=').unwrap().0)
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        TomlCase::Arbitrary(s) => s.clone(),
    }
}

#[test]
fn fuzz_business_toml() {
    use frontdesk::tenant::TenantConfig;
    let original = &*DEMO_TOML;
    fuzz("business_toml", toml_case(), |case| {
        let text = toml_text(&case, original);
        let result = TenantConfig::from_toml(&text, "business.toml");
        match (&case, &result) {
            (TomlCase::Value(_, v), Ok(_)) if v.contains('\u{0}') => {
                must!(false, "a NUL in a value was accepted")
            }
            (TomlCase::Arbitrary(s), Ok(_)) if !s.contains("[business]") => {
                must!(false, "a file without [business] was accepted")
            }
            _ => {}
        }
        if let Err(e) = &result {
            must!(!e.message.is_empty(), "an error without a message");
        }
        Ok(())
    });
}

#[test]
fn fuzz_rules_agent_and_scenarios_toml() {
    use frontdesk::agent::{AgentProfile, Scenarios};
    use frontdesk::quality::RuleSet;
    let files = [
        workspace_file("prompts/demo/assertions.toml"),
        workspace_file("prompts/demo/agent.toml"),
        workspace_file("prompts/demo/scenarios.toml"),
    ];
    assert!(RuleSet::from_toml(&files[0], "a").is_ok());
    assert!(AgentProfile::from_toml(&files[1], "a").is_ok());
    assert!(Scenarios::from_toml(&files[2], "a").is_ok());
    fuzz(
        "rules_agent_and_scenarios_toml",
        (0..3usize, toml_case()),
        |(file, case)| {
            let text = toml_text(&case, &files[file]);
            match file {
                0 => {
                    if let Ok(rules) = RuleSet::from_toml(&text, "assertions.toml") {
                        let _ = rules.is_empty();
                    }
                }
                1 => {
                    if let Ok(profile) = AgentProfile::from_toml(&text, "agent.toml") {
                        let _ = profile.problems("agent.toml", &DEMO);
                    }
                }
                _ => {
                    if let Ok(scenarios) = Scenarios::from_toml(&text, "scenarios.toml") {
                        let _ = scenarios.problems("scenarios.toml", &DEMO);
                    }
                }
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_ids() {
    use frontdesk::ids::{is_safe_id, AgentId, ConversationId, LeadId, TenantId};
    let raw = prop_oneof![
        ".{0,140}",
        "[A-Za-z0-9_-]{0,140}",
        "[A-Za-z0-9_./#%-]{0,70}"
    ];
    fuzz("ids", raw, |raw| {
        let safe = |max: usize| {
            !raw.is_empty()
                && raw.len() <= max
                && raw
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        must!(
            ConversationId::parse(&raw).is_ok() == safe(128),
            "conversation {raw:?}"
        );
        must!(AgentId::parse(&raw).is_ok() == safe(128), "agent {raw:?}");
        must!(LeadId::parse(&raw).is_ok() == safe(64), "lead {raw:?}");
        must!(TenantId::parse(&raw).is_ok() == safe(64), "tenant {raw:?}");
        must!(is_safe_id(&raw) == safe(64), "safe {raw:?}");
        // Through serde too (ids arrive in JSON).
        let parsed: Result<ConversationId, _> = serde_json::from_value(json!(raw));
        must!(parsed.is_ok() == safe(128), "serde {raw:?}");
        Ok(())
    });
}

#[test]
fn fuzz_queue_jobs() {
    use frontdesk::jobs::Job;
    let samples = parse_samples(&[
        br#"{"job":"process_webhook","tenant":"demo","conversation_id":"conv_1","event_type":"post_call_transcription"}"#.to_vec(),
        br#"{"job":"send_message","tenant":"demo","message_id":"m1"}"#.to_vec(),
        br#"{"job":"answer_text","tenant":"demo","message_sid":"SM1","phone":"+447700900123","channel":"sms","lead_id":null,"attempt":1}"#.to_vec(),
        br#"{"job":"receive_text","tenant":"demo","params":[["From","+447700900123"],["Body","hi"]]}"#.to_vec(),
        br#"{"job":"receive_web_form","tenant":"demo","body":"phone=1","content_type":"application/x-www-form-urlencoded"}"#.to_vec(),
    ]);
    for s in &samples {
        serde_json::from_value::<Job>(s.clone()).expect("a sample job");
    }
    fuzz("queue_jobs", json_input(samples.len()), |input| {
        let built = build(&input, &samples);
        let job = serde_json::from_slice::<Job>(&built.bytes);
        if built.broken {
            must!(job.is_err(), "invalid JSON read as a job");
        }
        if let Ok(job) = job {
            let _ = (job.name(), job.tenant());
            // What is read is what would be written again.
            let again: Job = serde_json::from_slice(&serde_json::to_vec(&job).unwrap()).unwrap();
            must!(again == job, "a job does not round-trip");
        }
        Ok(())
    });
}

#[test]
fn fuzz_redaction_and_segments() {
    use frontdesk::messaging::segments::{segments, split};
    use frontdesk::redact::{redact_contact_details, redact_personal_data};
    let text = prop_oneof![
        ".{0,400}",
        "([a-z]{1,8}|[0-9]{1,20}|[ @.+/-]|é|€|\\{|😀){0,120}",
        "(call me on |born |my card is )?[0-9 ]{5,40}",
    ];
    let today = jiff::civil::date(2026, 11, 23);
    let seven_digits = |s: &str| {
        let mut run = 0;
        s.bytes().any(|b| {
            run = if b.is_ascii_digit() { run + 1 } else { 0 };
            run >= 7
        })
    };
    fuzz(
        "redaction_and_segments",
        (text, 1usize..5),
        |(text, max)| {
            let masked = redact_personal_data(&text, today);
            must!(
                !seven_digits(&masked),
                "{text:?} -> {masked:?} keeps 7 digits in a row"
            );
            let masked = redact_contact_details(&text);
            must!(
                !seven_digits(&masked),
                "{text:?} -> {masked:?} keeps 7 digits in a row"
            );
            let parts = split(&text, max);
            for p in &parts {
                must!(
                    !p.is_empty() && segments(p) <= max,
                    "{text:?} split into {parts:?}"
                );
            }
            let squeeze = |s: &str| s.split_whitespace().collect::<String>();
            must!(
                squeeze(&parts.concat()) == squeeze(&text),
                "{text:?} split into {parts:?} loses text"
            );
            Ok(())
        },
    );
}

// =============================================================================================
// 2. The malformed-request corpus, over HTTP, for every route.

mod corpus {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;
    use frontdesk::http::{routes, Caller, Route, EMPTY_TWIML};
    use frontdesk::messaging::web_form;
    use frontdesk::qa::auth::{sign_local, DEFAULT_TENANT_CLAIM, LOCAL_AUDIENCE, LOCAL_ISSUER};
    use frontdesk_blackbox::{
        form_urlencoded_body, inbound_text, sid, spawn_app_with, transcript_call, Options, TestApp,
        OPENING, REVIEWER_KEY, TOOL_SECRET, TWILIO_TOKEN, WEBHOOK_SECRET, WEB_FORM_SECRET,
        WEB_FORM_TOKEN,
    };

    /// The people of the fixture and the corpus (the test numbers the other suites use), who
    /// must never appear in a log line.
    const CALLER: &str = "+447400123456";
    const OTHER_NUMBER: &str = "+447400123999";
    const NAME: &str = "Wilhelmina Quartz";
    /// Tool bodies and Twilio's are capped at 64 KiB (`MAX_TOOL_BODY`, `MAX_TWILIO_BODY` in
    /// http.rs); the web form at `web_form::MAX_FORM_BYTES`; webhooks at
    /// `FRONTDESK_MAX_BODY_BYTES` (set small here, so an oversized body is quick to send).
    const SMALL_BODY_LIMIT: usize = 64 * 1024;
    const WEBHOOK_LIMIT: usize = 256 * 1024;
    const DOB: &[(&str, &str)] = &[
        ("agent", OPENING),
        ("user", "Hi, my boiler is leaking."),
        ("agent", "Sorry to hear that. What's your date of birth?"),
    ];
    const FLAG: &str = "conv_badinput1.asked-date-of-birth";

    /// What a request must get.
    #[derive(Debug, Clone)]
    enum Want {
        /// The route's error, worded for its caller (`http::error_response`), with this
        /// status and (for a 400) this field, when it is known.
        Error(u16, Option<String>),
        /// axum's answer to a method the path does not take.
        MethodNotAllowed,
        /// The router's JSON 404 for a path no route has.
        NoSuchRoute,
        /// A documented 200 (an ignored event type, a no-op, a business refusal, the
        /// console page), whose JSON has these values at these pointers.
        Ok(Vec<(&'static str, Value)>),
    }

    fn bad(field: &str) -> Want {
        Want::Error(400, Some(field.to_string()))
    }

    #[derive(Debug, Clone)]
    struct Req {
        label: String,
        method: String,
        /// Path and query, as sent.
        target: String,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
        /// Broken HTTP framing, sent over a raw socket: the bytes after the headers.
        raw_tail: Option<Vec<u8>>,
        want: Want,
    }

    impl Req {
        fn new(label: impl Into<String>, method: &str, target: &str, want: Want) -> Self {
            Self {
                label: label.into(),
                method: method.into(),
                target: target.into(),
                headers: Vec::new(),
                body: Vec::new(),
                raw_tail: None,
                want,
            }
        }
        fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
            self.headers
                .push((name.to_string(), value.as_ref().to_vec()));
            self
        }
        fn headers(mut self, headers: &[(String, Vec<u8>)]) -> Self {
            self.headers.extend(headers.iter().cloned());
            self
        }
        fn without(mut self, name: &str) -> Self {
            self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            self
        }
        fn body(mut self, body: impl AsRef<[u8]>) -> Self {
            self.body = body.as_ref().to_vec();
            self
        }
    }

    // ---- Moto's state and the fakes', before and after ------------------------------------

    #[derive(Debug, PartialEq)]
    struct State {
        items: Vec<String>,
        objects: Vec<String>,
        queued: usize,
        dead_letters: usize,
        events: usize,
        schedules: Vec<String>,
        twilio_requests: usize,
        llm_requests: usize,
        elevenlabs_requests: usize,
    }

    /// An attribute value in one spelling whatever the order of its maps.
    fn canonical(v: &AttributeValue) -> String {
        match v {
            AttributeValue::M(m) => {
                let sorted: BTreeMap<&String, String> =
                    m.iter().map(|(k, v)| (k, canonical(v))).collect();
                format!("M{sorted:?}")
            }
            AttributeValue::L(l) => format!("L{:?}", l.iter().map(canonical).collect::<Vec<_>>()),
            AttributeValue::Ss(s) | AttributeValue::Ns(s) => {
                let mut s = s.clone();
                s.sort();
                format!("S{s:?}")
            }
            other => format!("{other:?}"),
        }
    }

    async fn state(app: &TestApp) -> State {
        let mut items: Vec<String> = app
            .items()
            .await
            .iter()
            .map(|item| {
                let sorted: BTreeMap<&String, String> =
                    item.iter().map(|(k, v)| (k, canonical(v))).collect();
                format!("{sorted:?}")
            })
            .collect();
        items.sort();
        let mut objects = app.object_keys().await;
        objects.sort();
        let mut schedules: Vec<String> = app
            .schedules()
            .await
            .iter()
            .map(|s| format!("{} {} {:?}", s.name, s.expression, s.job))
            .collect();
        schedules.sort();
        let count = |r: Option<Vec<wiremock::Request>>| r.map(|r| r.len()).unwrap_or(0);
        State {
            items,
            objects,
            queued: app.queued().await,
            dead_letters: app.dead_letters().await,
            events: app.published_events().await.len(),
            schedules,
            twilio_requests: count(app.twilio.received_requests().await),
            llm_requests: count(app.llm.received_requests().await),
            elevenlabs_requests: count(app.elevenlabs.received_requests().await),
        }
    }

    fn differences(before: &State, after: &State) -> String {
        let mut out = Vec::new();
        let added: Vec<&String> = after
            .items
            .iter()
            .filter(|i| !before.items.contains(i))
            .collect();
        let removed: Vec<&String> = before
            .items
            .iter()
            .filter(|i| !after.items.contains(i))
            .collect();
        if !added.is_empty() || !removed.is_empty() {
            // What an item holds is shown with its numbers and addresses masked.
            out.push(frontdesk::redact::redact_contact_details(&format!(
                "items added {added:#?}, removed {removed:#?}"
            )));
        }
        if before.objects != after.objects {
            out.push(format!(
                "objects {:?} -> {:?}",
                before.objects, after.objects
            ));
        }
        for (what, b, a) in [
            ("queued", before.queued, after.queued),
            ("dead letters", before.dead_letters, after.dead_letters),
            ("events", before.events, after.events),
            (
                "Twilio requests",
                before.twilio_requests,
                after.twilio_requests,
            ),
            ("LLM requests", before.llm_requests, after.llm_requests),
            (
                "ElevenLabs requests",
                before.elevenlabs_requests,
                after.elevenlabs_requests,
            ),
        ] {
            if a != b {
                out.push(format!("{what} {b} -> {a}"));
            }
        }
        if before.schedules != after.schedules {
            out.push(format!(
                "schedules {:?} -> {:?}",
                before.schedules, after.schedules
            ));
        }
        out.join("; ")
    }

    // ---- Sending ------------------------------------------------------------------------

    struct Answer {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    }

    async fn send(app: &TestApp, req: &Req) -> Result<Answer, String> {
        if let Some(tail) = &req.raw_tail {
            return send_raw(app, req, tail).await;
        }
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
        let mut request = app
            .http
            .request(method, format!("{}{}", app.address, req.target))
            .timeout(Duration::from_secs(60));
        for (name, value) in &req.headers {
            let value = reqwest::header::HeaderValue::from_bytes(value)
                .map_err(|e| format!("header {name}: {e}"))?;
            request = request.header(name.as_str(), value);
        }
        let response = request
            .body(req.body.clone())
            .send()
            .await
            .map_err(|e| format!("no answer (did the server crash?): {e}"))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response.bytes().await.map_err(|e| e.to_string())?.to_vec();
        Ok(Answer {
            status,
            content_type,
            body,
        })
    }

    /// A request whose body is framed wrongly (a bad chunk size, fewer bytes than its
    /// Content-Length): written to a socket as is.
    async fn send_raw(app: &TestApp, req: &Req, tail: &[u8]) -> Result<Answer, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = app.address.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(host)
            .await
            .map_err(|e| e.to_string())?;
        let mut head = format!(
            "{} {} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n",
            req.method, req.target
        )
        .into_bytes();
        for (name, value) in &req.headers {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        head.extend_from_slice(tail);
        stream.write_all(&head).await.map_err(|e| e.to_string())?;
        stream.shutdown().await.map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
            .await
            .map_err(|_| "no answer in 30 s".to_string())?
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&answer);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status line in {text:?}"))?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let content_type = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-type: ")
                    .map(str::to_string)
            })
            .unwrap_or_default();
        // A chunked answer's framing is not the body; the JSON inside is what is checked.
        let body = body
            .find('{')
            .map(|i| body[i..body.rfind('}').map(|j| j + 1).unwrap_or(body.len())].to_string())
            .unwrap_or_else(|| body.to_string());
        Ok(Answer {
            status,
            content_type,
            body: body.into_bytes(),
        })
    }

    /// The answer is the one `want` says, worded for `caller`.
    fn check(caller: Caller, req: &Req, answer: &Answer) -> Result<(), String> {
        let json: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let fail = |why: String| {
            Err(format!(
                "{why}; got {} {:?} {}",
                answer.status,
                answer.content_type,
                String::from_utf8_lossy(&answer.body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ))
        };
        if answer.status >= 500 {
            return fail("a 5xx".into());
        }
        match &req.want {
            Want::MethodNotAllowed => {
                if answer.status != 405 {
                    return fail("expected 405".into());
                }
            }
            Want::NoSuchRoute => {
                if answer.status != 404
                    || json != json!({"error": "not_found", "message": "no such route"})
                {
                    return fail("expected the router's 404".into());
                }
            }
            Want::Ok(values) => {
                if answer.status != 200 {
                    return fail("expected 200".into());
                }
                for (pointer, value) in values {
                    if json.pointer(pointer) != Some(value) {
                        return fail(format!("expected {pointer} = {value}"));
                    }
                }
            }
            Want::Error(status, field) => {
                if answer.status != *status {
                    return fail(format!("expected {status}"));
                }
                match caller {
                    Caller::Twilio => {
                        if !answer.content_type.starts_with("text/xml")
                            || answer.body != EMPTY_TWIML.as_bytes()
                        {
                            return fail("expected an empty TwiML document".into());
                        }
                    }
                    Caller::Agent => {
                        let code = match status {
                            401 => "unauthorized",
                            400 => "bad_request",
                            _ => return fail("no such agent error".into()),
                        };
                        let said = json["say"].as_str().is_some_and(|s| !s.is_empty());
                        if json["ok"] != false || json["code"] != code || !said {
                            return fail(format!("expected ok false, code {code} and a sentence"));
                        }
                    }
                    Caller::Webhook => {
                        let error = match status {
                            401 => "invalid_signature",
                            400 => "bad_request",
                            413 => "payload_too_large",
                            _ => return fail("no such webhook error".into()),
                        };
                        if json["error"] != error || !json["message"].is_string() {
                            return fail(format!("expected error {error} with a message"));
                        }
                    }
                    Caller::Reviewer | Caller::Page => {
                        let error = match status {
                            401 => "unauthorized",
                            403 => "forbidden",
                            400 => "bad_request",
                            404 => "not_found",
                            409 => "conflict",
                            413 => "payload_too_large",
                            _ => return fail("no such reviewer error".into()),
                        };
                        if json["error"] != error || !json["message"].is_string() {
                            return fail(format!("expected error {error} with a message"));
                        }
                    }
                }
                if *status == 400 && caller != Caller::Twilio {
                    let named = json["field"].as_str().unwrap_or_default();
                    if named.is_empty() {
                        return fail("a 400 names its field".into());
                    }
                    if let Some(field) = field {
                        if named != field {
                            return fail(format!("expected field {field}"));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    // ---- The fixture: a business with a flag, a booking and a lead --------------------------

    struct Fixture {
        booking_id: String,
        lead_id: String,
    }

    async fn fixture(app: &TestApp) -> Fixture {
        use frontdesk::quality::scan;
        app.clock.set("2026-11-23T07:00:00Z".parse().unwrap());
        app.twilio_accepts(None).await;
        let call = transcript_call("conv_badinput1", DOB, "booked", &[]);
        assert_eq!(app.deliver(&call).await.status(), 200);
        scan::run(&app.deps, Instant::now() + Duration::from_secs(60), None)
            .await
            .unwrap();
        let token = app.reviewer_token();
        let (status, answer) = app
            .qa(
                "POST",
                &format!("/qa/flags/{FLAG}"),
                Some(&token),
                Some(&json!({"status": "confirmed"})),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        let slot = app.first_slot("boiler_service", "2026-11-24").await;
        let (status, booked) = app
            .tool("create_booking", &json!({"service": "boiler_service", "start": slot["start"], "customer_name": NAME, "caller_phone": CALLER, "conversation_id": "conv_badinput2"}))
            .await;
        assert_eq!(status, 200, "{booked}");
        let (status, lead) = app
            .tool("capture_lead", &json!({"service": "leak repair", "urgency": "normal", "summary": "Tap dripping.", "caller_phone": CALLER, "conversation_id": "conv_badinput3"}))
            .await;
        assert_eq!(status, 200, "{lead}");
        app.drain_queue().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.drain_queue().await;
        Fixture {
            booking_id: booked["booking_id"].as_str().unwrap().to_string(),
            lead_id: lead["lead_id"].as_str().unwrap().to_string(),
        }
    }

    // ---- What a valid request of each route looks like --------------------------------------

    /// A request of `route` that would be accepted: its target, headers and body. The corpus
    /// breaks one thing of it at a time.
    struct Valid {
        target: String,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    }

    fn h(name: &str, value: impl AsRef<[u8]>) -> (String, Vec<u8>) {
        (name.to_string(), value.as_ref().to_vec())
    }

    fn sample_event_body(route: &Route) -> Option<Vec<u8>> {
        let dir = frontdesk_blackbox::workspace()
            .join("events")
            .join(route.function);
        let pattern: Vec<&str> = route.path.split('/').collect();
        std::fs::read_dir(dir).ok()?.find_map(|f| {
            let event: Value = serde_json::from_slice(&std::fs::read(f.ok()?.path()).ok()?).ok()?;
            let path: Vec<&str> = event["rawPath"].as_str()?.split('/').collect();
            let matches = path.len() == pattern.len()
                && pattern
                    .iter()
                    .zip(&path)
                    .all(|(p, s)| p.starts_with('{') || p == s);
            matches.then(|| {
                event["body"]
                    .as_str()
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec()
            })
        })
    }

    fn twilio_params(route: &Route) -> Vec<(String, String)> {
        if route.path == frontdesk::http::TWILIO_MESSAGING_PATH {
            inbound_text(&sid(9001), CALLER, "Can you come on Friday?", &[])
        } else {
            frontdesk::twilio::signature::form_params(
                &sample_event_body(route).expect("a status sample"),
            )
        }
    }

    fn twilio_sign(app: &TestApp, target: &str, params: &[(String, String)]) -> String {
        frontdesk::twilio::signature::sign(
            TWILIO_TOKEN.as_bytes(),
            &format!("{}{target}", app.address),
            params,
        )
    }

    fn concrete(route: &Route, fx: &Fixture) -> String {
        route
            .path
            .split('/')
            .map(|s| match s {
                "{conversation_id}" => "conv_badinput1".to_string(),
                "{id}" if route.path.starts_with("/leads") => fx.lead_id.clone(),
                "{id}" => FLAG.to_string(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn valid(app: &TestApp, route: &Route, fx: &Fixture) -> Valid {
        let target = concrete(route, fx);
        match route.caller {
            Caller::Agent => Valid {
                target,
                headers: vec![
                    h("content-type", "application/json"),
                    h("x-frontdesk-tool-secret", TOOL_SECRET),
                ],
                body: sample_event_body(route).expect("every tool has a sample event"),
            },
            Caller::Webhook if route.path == frontdesk::http::WEB_FORM_PATH => {
                let body =
                    b"name=Wilhelmina+Quartz&phone=07400+123457&service=leak+repair&message=Drip"
                        .to_vec();
                Valid {
                    target,
                    headers: vec![
                        h("content-type", "application/x-www-form-urlencoded"),
                        h(
                            web_form::SIGNATURE_HEADER,
                            web_form::sign(WEB_FORM_SECRET.as_bytes(), &body),
                        ),
                    ],
                    body,
                }
            }
            Caller::Webhook => {
                let body = transcript_call("conv_badinput9", DOB, "booked", &[]);
                Valid {
                    target,
                    headers: vec![
                        h("content-type", "application/json"),
                        h("elevenlabs-signature", app.sign(&body)),
                    ],
                    body,
                }
            }
            Caller::Twilio => {
                let params = twilio_params(route);
                Valid {
                    headers: vec![
                        h("content-type", "application/x-www-form-urlencoded"),
                        h("x-twilio-signature", twilio_sign(app, &target, &params)),
                    ],
                    body: form_urlencoded_body(&params).into_bytes(),
                    target,
                }
            }
            Caller::Reviewer => {
                let body: &[u8] = if route.path.starts_with("/leads") {
                    br#"{"quote": "450 pounds"}"#
                } else if route.method == "POST" {
                    br#"{"status": "confirmed"}"#
                } else {
                    b""
                };
                Valid {
                    target,
                    headers: vec![
                        h("content-type", "application/json"),
                        h("authorization", format!("Bearer {}", app.reviewer_token())),
                    ],
                    body: body.to_vec(),
                }
            }
            Caller::Page => Valid {
                target,
                headers: Vec::new(),
                body: Vec::new(),
            },
        }
    }

    fn limit(app: &TestApp, route: &Route) -> usize {
        match route.caller {
            Caller::Webhook if route.path == frontdesk::http::WEB_FORM_PATH => {
                web_form::MAX_FORM_BYTES
            }
            Caller::Webhook => app.deps.config.max_body_bytes,
            _ => SMALL_BODY_LIMIT,
        }
    }

    /// Does `path` match the pattern of a route (`{x}` is any non-empty segment)?
    fn matches(pattern: &str, path: &str) -> bool {
        let path = path.split('?').next().unwrap();
        let (p, s): (Vec<&str>, Vec<&str>) =
            (pattern.split('/').collect(), path.split('/').collect());
        let last = p.len().saturating_sub(1);
        // A parameter matches any segment, an empty one too, except at the end.
        p.len() == s.len()
            && p.iter().zip(&s).enumerate().all(|(i, (p, s))| {
                if p.starts_with('{') {
                    i < last || !s.is_empty()
                } else {
                    p == s
                }
            })
    }

    /// What the router answers a method and path with, from the route table alone.
    fn routing(method: &str, path: &str) -> Option<Want> {
        let same_path: Vec<&Route> = routes().iter().filter(|r| matches(r.path, path)).collect();
        if same_path.is_empty() {
            return Some(Want::NoSuchRoute);
        }
        // GET routes answer HEAD too (axum); anything else a path does not take is a 405.
        let takes = |r: &&Route| r.method == method || (r.method == "GET" && method == "HEAD");
        if same_path.iter().any(takes) {
            None
        } else {
            Some(Want::MethodNotAllowed)
        }
    }

    // ---- The corpus, by what every route has, then by its caller and path -------------------

    fn common(app: &TestApp, route: &Route, v: &Valid) -> Vec<Req> {
        let mut out = Vec::new();
        let base = |label: &str, method: &str, target: &str, want: Want| {
            Req::new(label, method, target, want)
                .headers(&v.headers)
                .body(&v.body)
        };
        for method in [
            "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE",
        ] {
            if let Some(want) = routing(method, &v.target) {
                out.push(base(&format!("method {method}"), method, &v.target, want));
            }
        }
        let path = v.target.split('?').next().unwrap().to_string();
        let mut wrong_paths = vec![
            format!("{path}/"),
            format!("{path}/x"),
            format!("{path}x"),
            path.to_uppercase(),
            path.replacen('/', "//", 1),
            format!("/v1{path}"),
            path.replace('_', "-"),
        ];
        if route.path.contains('{') {
            // The path without its parameter, or with it empty: at the end that is another
            // path (a 404 or a 405); inside the path the router still takes it for this route,
            // with an empty parameter, which the handler refuses as a bad id.
            wrong_paths.push(
                route
                    .path
                    .split('/')
                    .filter(|s| !s.starts_with('{'))
                    .collect::<Vec<_>>()
                    .join("/"),
            );
            let segments: Vec<&str> = route.path.split('/').collect();
            let empty = segments
                .iter()
                .map(|s| if s.starts_with('{') { "" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            match segments.iter().position(|s| s.starts_with('{')) {
                Some(i) if i + 1 < segments.len() => {
                    let name = segments[i].trim_matches(['{', '}']);
                    out.push(base(
                        &format!("an empty {name}"),
                        route.method,
                        &empty,
                        bad(name),
                    ));
                }
                _ => wrong_paths.push(empty),
            }
        }
        for p in wrong_paths {
            if p == path {
                continue;
            }
            if let Some(want) = routing(route.method, &p) {
                out.push(base(&format!("path {p}"), route.method, &p, want));
            }
        }
        // The local clock header, when it is not a time: refused before anything else.
        for now in [
            &b"tomorrow"[..],
            b"2026-11-23 07:00",
            b"2026-11-23T07:00:00",
            b"1764000000",
            b"",
            b"\xff\xfe",
        ] {
            out.push(
                base(
                    &format!("x-frontdesk-now {:?}", Bytes(now.to_vec())),
                    route.method,
                    &v.target,
                    bad("x-frontdesk-now"),
                )
                .header("x-frontdesk-now", now),
            );
        }
        // Over the route's limit, by a byte and by a lot: refused before it is read further.
        let over = |n: usize| {
            let mut body = v.body.clone();
            body.resize(n, b' ');
            body
        };
        let too_large = if route.caller == Caller::Agent {
            bad("body")
        } else {
            Want::Error(413, None)
        };
        for n in [limit(app, route) + 1, limit(app, route) * 3] {
            out.push(
                base(
                    &format!("{n} bytes"),
                    route.method,
                    &v.target,
                    too_large.clone(),
                )
                .body(over(n)),
            );
        }
        // Framing the server cannot read a body from.
        let unreadable = bad("body");
        out.push(Req {
            raw_tail: Some(b"zz\r\nabc\r\n0\r\n\r\n".to_vec()),
            ..base(
                "a chunk size that is not hex",
                route.method,
                &v.target,
                unreadable.clone(),
            )
            .without("content-length")
            .header("transfer-encoding", "chunked")
        });
        let mut short = b"content-length: 4000\r\n".to_vec();
        short.truncate(short.len() - 2);
        out.push(Req {
            raw_tail: Some(v.body.iter().take(10).copied().collect()),
            ..base(
                "fewer bytes than its content-length",
                route.method,
                &v.target,
                unreadable,
            )
            .header("content-length", format!("{}", v.body.len().max(20) + 100))
        });
        out
    }

    fn json_of(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap_or(json!({}))
    }

    fn with(body: &Value, key: &str, value: Value) -> Vec<u8> {
        let mut b = body.clone();
        b[key] = value;
        serde_json::to_vec(&b).unwrap()
    }

    fn without_key(body: &Value, key: &str) -> Vec<u8> {
        let mut b = body.clone();
        b.as_object_mut().unwrap().remove(key);
        serde_json::to_vec(&b).unwrap()
    }

    /// Bodies no JSON reader accepts, from a valid one: for every JSON route. What a reader
    /// of `Value`s refuses (nesting past 128, a number past f64) goes in `inside`, the object
    /// the route reads whole (a webhook skips the top-level fields it does not know unread).
    fn broken_json(valid: &[u8], inside: Option<&str>) -> Vec<(String, Vec<u8>)> {
        let v = json_of(valid);
        let text = serde_json::to_string(&v).unwrap();
        let placed = |name: &str, raw: &str| -> Vec<u8> {
            let mut doc = v.clone();
            let target = match inside {
                Some(key) => &mut doc[key],
                None => &mut doc,
            };
            target[name] = json!(PLACEHOLDER);
            let quoted = serde_json::to_string(PLACEHOLDER).unwrap();
            serde_json::to_string(&doc)
                .unwrap()
                .replacen(&quoted, raw, 1)
                .into_bytes()
        };
        let nested = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
        let mut bad_utf8 = text.clone().into_bytes();
        let first_string = text.find(":\"").map(|i| i + 3).unwrap_or(1);
        bad_utf8.splice(first_string..first_string, [0xff, 0xfe]);
        let mut raw_nul = text.clone().into_bytes();
        raw_nul.splice(first_string..first_string, [0x00]);

        vec![
            ("empty".into(), Vec::new()),
            ("spaces".into(), b"   \n".to_vec()),
            ("{".into(), b"{".to_vec()),
            ("}".into(), b"}".to_vec()),
            ("half".into(), text.as_bytes()[..text.len() / 2].to_vec()),
            (
                "all but the last byte".into(),
                text.as_bytes()[..text.len() - 1].to_vec(),
            ),
            ("two objects".into(), format!("{text}{text}").into_bytes()),
            ("trailing garbage".into(), format!("{text}xyz").into_bytes()),
            ("invalid UTF-8 in a string".into(), bad_utf8),
            ("a raw NUL".into(), raw_nul),
            (
                "a byte-order mark".into(),
                [&b"\xef\xbb\xbf"[..], text.as_bytes()].concat(),
            ),
            ("single quotes".into(), text.replace('"', "'").into_bytes()),
            ("nested 200 deep".into(), placed("zz_nested", &nested(200))),
            // 60 KB: under every route's limit but the webhook's own.
            (
                "nested 30000 deep".into(),
                placed("zz_nested", &nested(30_000)),
            ),
            ("a number past f64".into(), placed("zz_number", "1e400")),
        ]
    }

    fn agent_cases(app: &TestApp, route: &Route, v: &Valid, fx: &Fixture) -> Vec<Req> {
        let post = |label: &str, want: Want| {
            Req::new(label, "POST", &v.target, want)
                .headers(&v.headers)
                .body(&v.body)
        };
        let mut out = Vec::new();
        // The secret: missing, wrong, nearly right, elsewhere.
        let unauthorized = Want::Error(401, None);
        let wrong: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("wrong", b"wrong".to_vec()),
            (
                "one character short",
                TOOL_SECRET.as_bytes()[..TOOL_SECRET.len() - 1].to_vec(),
            ),
            ("one character more", format!("{TOOL_SECRET}x").into_bytes()),
            ("upper case", TOOL_SECRET.to_uppercase().into_bytes()),
            ("not UTF-8", [TOOL_SECRET.as_bytes(), b"\xff"].concat()),
            ("bearer", format!("Bearer {TOOL_SECRET}").into_bytes()),
        ];
        out.push(post("no secret", unauthorized.clone()).without("x-frontdesk-tool-secret"));
        for (label, secret) in wrong {
            out.push(
                post(&format!("secret {label}"), unauthorized.clone())
                    .without("x-frontdesk-tool-secret")
                    .header("x-frontdesk-tool-secret", secret),
            );
        }
        out.push(
            post("secret as a bearer token", unauthorized.clone())
                .without("x-frontdesk-tool-secret")
                .header("authorization", format!("Bearer {TOOL_SECRET}")),
        );
        out.push(Req {
            target: format!("{}?x-frontdesk-tool-secret={TOOL_SECRET}", v.target),
            ..post("secret in the query", unauthorized.clone()).without("x-frontdesk-tool-secret")
        });
        out.push(
            post("a wrong secret, then the right one", unauthorized.clone())
                .without("x-frontdesk-tool-secret")
                .header("x-frontdesk-tool-secret", "wrong")
                .header("x-frontdesk-tool-secret", TOOL_SECRET),
        );
        out.push(
            post("no secret, bad body", unauthorized)
                .without("x-frontdesk-tool-secret")
                .body(b"[]"),
        );
        // Bodies that are not a flat JSON object of the tool's type.
        for (label, body) in broken_json(&v.body, None) {
            out.push(post(&label, bad("body")).body(body));
        }
        for (label, body) in [
            ("null", "null"),
            ("array", "[]"),
            ("array of the body", ""),
            ("text", "\"hi\""),
            ("number", "5"),
            ("true", "true"),
        ] {
            let body = if label == "array of the body" {
                format!("[{}]", String::from_utf8_lossy(&v.body))
            } else {
                body.to_string()
            };
            out.push(post(&format!("a body of {label}"), bad("body")).body(body));
        }
        let sample = json_of(&v.body);
        let deep9 = with(&sample, "zz_nested", json!([[[[[[[[["nine"]]]]]]]]]));
        out.push(post("nested 9 deep", bad("body")).body(deep9));
        out.push(post("a control character in a key", bad("body")).body(with(
            &sample,
            "zz\u{0}",
            json!(1),
        )));
        // Each field of the sample with a control character, or of a wrong type.
        for key in sample.as_object().unwrap().keys() {
            for (label, value) in [
                ("a NUL", json!("a\u{0}b")),
                ("an escape", json!("a\u{1b}[31mb")),
                ("a C1 control", json!("a\u{85}b")),
            ] {
                out.push(
                    post(&format!("{key} with {label}"), bad(key)).body(with(&sample, key, value)),
                );
            }
            let known = read_tool(route.path, &with(&sample, key, json!(5))).is_err();
            if known {
                for (label, value) in [
                    ("number", json!(5)),
                    ("array", json!(["x"])),
                    ("object", json!({"a": "b"})),
                    ("bool", json!(true)),
                    ("huge number", json!(1e300)),
                ] {
                    out.push(
                        post(&format!("{key} as a {label}"), bad(key))
                            .body(with(&sample, key, value)),
                    );
                }
            }
            // A field removed: refused when the tool needs it (as its reader says).
            if let Err(field) = read_tool(route.path, &without_key(&sample, key)) {
                out.push(post(&format!("no {key}"), bad(&field)).body(without_key(&sample, key)));
            }
        }
        // The content type is not what the tool reads: a bad body is still a 400.
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
        ] {
            out.push(
                post(&format!("content type {ct}"), bad("body"))
                    .without("content-type")
                    .header("content-type", ct)
                    .body(b"service=x"),
            );
        }
        out.push(
            post("no content type", bad("body"))
                .without("content-type")
                .body(b"[1]"),
        );
        // Near-valid: well-formed, with values the tool refuses, field by field.
        let s = |v: Value| serde_json::to_vec(&v).unwrap();
        let long = |n: usize| "x".repeat(n);
        let tool = route.path.rsplit('/').next().unwrap();
        let near: Vec<(&str, Vec<u8>, Want)> = match tool {
            "check_availability" => vec![
                (
                    "an impossible date",
                    s(json!({"service": "boiler service", "date": "2026-13-45"})),
                    bad("date"),
                ),
                (
                    "a date in words",
                    s(json!({"service": "boiler service", "date": "next week"})),
                    bad("date"),
                ),
                (
                    "a time of day",
                    s(json!({"service": "boiler service", "time_of_day": "midnight"})),
                    bad("time_of_day"),
                ),
                (
                    "a service on two lines",
                    s(json!({"service": "boiler\nservice"})),
                    bad("service"),
                ),
                (
                    "a long service",
                    s(json!({"service": long(101)})),
                    bad("service"),
                ),
                (
                    "the last day there is",
                    s(json!({"service": "boiler service", "date": "9999-12-31"})),
                    Want::Ok(vec![("/ok", json!(true))]),
                ),
                (
                    "a date long past",
                    s(json!({"service": "boiler service", "date": "1900-01-01"})),
                    Want::Ok(vec![("/ok", json!(true))]),
                ),
                (
                    "an unknown service",
                    s(json!({"service": "roof repair"})),
                    Want::Ok(vec![("/code", json!("unknown_service"))]),
                ),
            ],
            "create_booking" => {
                let b = |start: &str, name: Value| {
                    s(
                        json!({"service": "boiler_service", "start": start, "customer_name": name, "conversation_id": "conv_badinput5"}),
                    )
                };
                vec![
                    (
                        "a start in words",
                        b("tomorrow at ten", json!("M")),
                        bad("start"),
                    ),
                    (
                        "a start without an offset",
                        b("2026-11-24T10:00:00", json!("M")),
                        bad("start"),
                    ),
                    ("an empty start", b("", json!("M")), bad("start")),
                    (
                        "a blank name",
                        b("2026-11-24T10:00:00Z", json!("  ")),
                        bad("customer_name"),
                    ),
                    (
                        "a name on two lines",
                        b("2026-11-24T10:00:00Z", json!("Bob\nSmith")),
                        bad("customer_name"),
                    ),
                    (
                        "a long name",
                        b("2026-11-24T10:00:00Z", json!(long(101))),
                        bad("customer_name"),
                    ),
                    (
                        "long notes",
                        with(
                            &json_of(&b("2026-11-24T10:00:00Z", json!("M"))),
                            "notes",
                            json!(long(501)),
                        ),
                        bad("notes"),
                    ),
                    (
                        "a long key",
                        with(
                            &json_of(&b("2026-11-24T10:00:00Z", json!("M"))),
                            "idempotency_key",
                            json!(long(201)),
                        ),
                        bad("idempotency_key"),
                    ),
                    (
                        "a conversation id with a slash",
                        with(
                            &json_of(&b("2026-11-24T10:00:00Z", json!("M"))),
                            "conversation_id",
                            json!("a/b"),
                        ),
                        bad("conversation_id"),
                    ),
                    (
                        "past the end of time",
                        b("9999-12-31T23:00:00Z", json!("M")),
                        bad("start"),
                    ),
                    (
                        "past the start of time",
                        b("-009999-01-01T00:00:00Z", json!("M")),
                        bad("start"),
                    ),
                    (
                        "the end of time",
                        b("9999-12-30T21:00:00Z", json!("M")),
                        Want::Ok(vec![("/code", json!("too_far_ahead"))]),
                    ),
                    (
                        "the start of time",
                        b("-009999-01-02T02:00:00Z", json!("M")),
                        Want::Ok(vec![("/code", json!("too_soon"))]),
                    ),
                    (
                        "an hour ago",
                        b("2026-11-23T06:00:00Z", json!("M")),
                        Want::Ok(vec![("/code", json!("too_soon"))]),
                    ),
                ]
            }
            "update_booking" => vec![
                (
                    "an unknown action",
                    s(json!({"action": "explode", "booking_id": fx.booking_id})),
                    bad("action"),
                ),
                (
                    "a move without a time",
                    s(
                        json!({"action": "reschedule", "booking_id": fx.booking_id, "caller_phone": CALLER}),
                    ),
                    bad("new_start"),
                ),
                (
                    "a move to a time in words",
                    s(
                        json!({"action": "reschedule", "booking_id": fx.booking_id, "new_start": "soon", "caller_phone": CALLER}),
                    ),
                    bad("new_start"),
                ),
                (
                    "a booking id with dots",
                    s(json!({"action": "cancel", "booking_id": "../etc"})),
                    bad("booking_id"),
                ),
                (
                    "a long reason",
                    s(
                        json!({"action": "cancel", "booking_id": fx.booking_id, "reason": long(301)}),
                    ),
                    bad("reason"),
                ),
                (
                    "no booking and no number",
                    s(json!({"action": "cancel"})),
                    bad("booking_id"),
                ),
                (
                    "a bad conversation id",
                    s(
                        json!({"action": "cancel", "booking_id": fx.booking_id, "conversation_id": "a b"}),
                    ),
                    bad("conversation_id"),
                ),
                (
                    "someone else's booking",
                    s(
                        json!({"action": "cancel", "booking_id": fx.booking_id, "caller_phone": OTHER_NUMBER}),
                    ),
                    Want::Ok(vec![("/code", json!("not_callers_booking"))]),
                ),
                (
                    "a withheld number's attempt",
                    s(json!({"action": "cancel", "booking_id": fx.booking_id})),
                    Want::Ok(vec![("/code", json!("not_callers_booking"))]),
                ),
                (
                    "a booking that does not exist",
                    s(json!({"action": "cancel", "booking_id": "bk_doesnotexist"})),
                    Want::Ok(vec![("/code", json!("booking_not_found"))]),
                ),
                (
                    "a move past the end of time",
                    s(
                        json!({"action": "reschedule", "booking_id": fx.booking_id, "new_start": "9999-12-31T23:00:00Z", "caller_phone": CALLER}),
                    ),
                    bad("new_start"),
                ),
                (
                    "a move to the end of time",
                    s(
                        json!({"action": "reschedule", "booking_id": fx.booking_id, "new_start": "9999-12-30T21:00:00Z", "caller_phone": CALLER}),
                    ),
                    Want::Ok(vec![("/ok", json!(false))]),
                ),
                (
                    "a move to the start of time",
                    s(
                        json!({"action": "reschedule", "booking_id": fx.booking_id, "new_start": "-009999-01-02T02:00:00Z", "caller_phone": CALLER}),
                    ),
                    Want::Ok(vec![("/ok", json!(false))]),
                ),
            ],
            "upsert_contact" => vec![
                (
                    "an empty phone",
                    s(json!({"phone": "", "name": "M"})),
                    bad("phone"),
                ),
                (
                    "a phone with a letter",
                    s(json!({"phone": "07911 12345a"})),
                    bad("phone"),
                ),
                (
                    "a bad e-mail",
                    s(json!({"email": "not-an-email"})),
                    bad("email"),
                ),
                (
                    "an e-mail with two @",
                    s(json!({"email": "a@b@example.com"})),
                    bad("email"),
                ),
                ("a long name", s(json!({"name": long(101)})), bad("name")),
                (
                    "nothing to save",
                    s(json!({"caller_phone": CALLER})),
                    bad("name"),
                ),
                (
                    "a bad conversation id",
                    s(json!({"name": "M", "conversation_id": "x/y"})),
                    bad("conversation_id"),
                ),
            ],
            "capture_lead" => {
                let lead = json!({"service": "leak repair", "urgency": "normal", "summary": "Drip.", "caller_phone": CALLER, "conversation_id": "conv_badinput6"});
                vec![
                    (
                        "an unknown urgency",
                        with(&lead, "urgency", json!("whenever")),
                        bad("urgency"),
                    ),
                    (
                        "an unknown service",
                        with(&lead, "service", json!("roof repair")),
                        bad("service"),
                    ),
                    (
                        "an empty summary",
                        with(&lead, "summary", json!("  ")),
                        bad("summary"),
                    ),
                    (
                        "a long summary",
                        with(&lead, "summary", json!(long(501))),
                        bad("summary"),
                    ),
                    (
                        "an area not covered",
                        with(&lead, "area", json!("Mars")),
                        bad("area"),
                    ),
                    (
                        "no number at all",
                        without_key(&lead, "caller_phone"),
                        bad("phone"),
                    ),
                    (
                        "a bad e-mail",
                        with(&lead, "email", json!("no")),
                        bad("email"),
                    ),
                    (
                        "an empty conversation id",
                        with(&lead, "conversation_id", json!("")),
                        bad("conversation_id"),
                    ),
                    (
                        "a name on two lines",
                        with(&lead, "name", json!("A\nB")),
                        bad("name"),
                    ),
                    (
                        "a stated phone in words",
                        with(&lead, "phone", json!("call me")),
                        bad("phone"),
                    ),
                ]
            }
            "dispatch_lead" => vec![
                (
                    "a lead id with dots",
                    s(json!({"lead_id": "../x"})),
                    bad("lead_id"),
                ),
                (
                    "a long lead id",
                    s(json!({"lead_id": long(65)})),
                    bad("lead_id"),
                ),
                ("no lead and no number", s(json!({})), bad("lead_id")),
                (
                    "a bad conversation id",
                    s(json!({"lead_id": fx.lead_id, "conversation_id": "a/b"})),
                    bad("conversation_id"),
                ),
                (
                    "a lead that does not exist",
                    s(json!({"lead_id": "lead_doesnotexist"})),
                    Want::Ok(vec![("/code", json!("no_lead"))]),
                ),
            ],
            "escalation_target" => vec![
                (
                    "a phone in words",
                    s(json!({"phone": "call me", "caller_phone": CALLER})),
                    bad("phone"),
                ),
                (
                    "a long reason",
                    s(json!({"reason": long(301), "caller_phone": CALLER})),
                    bad("reason"),
                ),
                (
                    "a name on two lines",
                    s(json!({"caller_name": "A\nB", "caller_phone": CALLER})),
                    bad("caller_name"),
                ),
                (
                    "a bad conversation id",
                    s(json!({"conversation_id": "a/b", "caller_phone": CALLER})),
                    bad("conversation_id"),
                ),
            ],
            "log_call" => {
                let note = json!({"outcome": "information", "summary": "Asked about prices.", "conversation_id": "conv_badinput7"});
                vec![
                    (
                        "an unknown outcome",
                        with(&note, "outcome", json!("great")),
                        bad("outcome"),
                    ),
                    (
                        "an empty summary",
                        with(&note, "summary", json!("")),
                        bad("summary"),
                    ),
                    (
                        "a long summary",
                        with(&note, "summary", json!(long(1001))),
                        bad("summary"),
                    ),
                    (
                        "an unknown service",
                        with(&note, "service", json!("roof repair")),
                        bad("service"),
                    ),
                    (
                        "an empty conversation id",
                        with(&note, "conversation_id", json!("")),
                        bad("conversation_id"),
                    ),
                    (
                        "a long caller name",
                        with(&note, "caller_name", json!(long(101))),
                        bad("caller_name"),
                    ),
                ]
            }
            "conversation-init" => vec![
                (
                    "a withheld caller",
                    s(
                        json!({"caller_id": "anonymous", "agent_id": "agent_1", "conversation_id": "conv_badinput8"}),
                    ),
                    Want::Ok(vec![(
                        "/type",
                        json!("conversation_initiation_client_data"),
                    )]),
                ),
                (
                    "an empty object",
                    s(json!({})),
                    Want::Ok(vec![(
                        "/type",
                        json!("conversation_initiation_client_data"),
                    )]),
                ),
            ],
            _ => Vec::new(),
        };
        for (label, body, want) in near {
            out.push(post(label, want).body(body));
        }
        // A local time at the end of what a clock can say: a deployed function never sees it,
        // but the local server must not fall over.
        if tool == "check_availability" {
            // The last and first instants jiff has (a zone's offset can reach 25:59).
            out.push(
                post(
                    "the clock at the end of time",
                    Want::Ok(vec![("/ok", json!(true))]),
                )
                .header("x-frontdesk-now", "9999-12-30T22:00:00Z"),
            );
            out.push(
                post(
                    "the clock at the start of time",
                    Want::Ok(vec![("/ok", json!(true))]),
                )
                .header("x-frontdesk-now", "-009999-01-02T02:00:00Z"),
            );
            out.push(
                post("the clock past the end of time", bad("x-frontdesk-now"))
                    .header("x-frontdesk-now", "9999-12-31T23:00:00Z"),
            );
        }
        let _ = app;
        out
    }

    fn post_call_cases(app: &TestApp, v: &Valid) -> Vec<Req> {
        let signed = |label: &str, body: Vec<u8>, want: Want| {
            let sig = app.sign(&body);
            Req::new(label, "POST", &v.target, want)
                .header("content-type", "application/json")
                .header("elevenlabs-signature", sig)
                .body(body)
        };
        let unsigned = |label: &str, sig: Option<Vec<u8>>| {
            let r = Req::new(label, "POST", &v.target, Want::Error(401, None))
                .header("content-type", "application/json")
                .body(&v.body);
            match sig {
                Some(s) => r.header("elevenlabs-signature", s),
                None => r,
            }
        };
        let now = app.now().as_second();
        let sign_at = |body: &[u8], secret: &[u8], at: i64| {
            frontdesk::elevenlabs::signature::sign(body, secret, ts(at)).into_bytes()
        };
        let mut other = v.body.clone();
        let i = other.iter().position(|b| *b == b'H').unwrap();
        other[i] = b'J';
        let mut out = vec![
            unsigned("no signature", None),
            unsigned("an empty signature", Some(Vec::new())),
            unsigned("only a MAC", Some(b"v0=deadbeef".to_vec())),
            unsigned("only a time", Some(format!("t={now}").into_bytes())),
            unsigned("a time in words", Some(b"t=now,v0=00".to_vec())),
            unsigned(
                "a MAC that is not hex",
                Some(format!("t={now},v0=zz").into_bytes()),
            ),
            unsigned(
                "a MAC of zeros",
                Some(format!("t={now},v0={}", "0".repeat(64)).into_bytes()),
            ),
            unsigned(
                "another secret",
                Some(sign_at(&v.body, b"wsec_someone_else", now)),
            ),
            unsigned(
                "31 minutes old",
                Some(sign_at(&v.body, WEBHOOK_SECRET.as_bytes(), now - 31 * 60)),
            ),
            unsigned(
                "10 minutes ahead",
                Some(sign_at(&v.body, WEBHOOK_SECRET.as_bytes(), now + 10 * 60)),
            ),
            unsigned(
                "a negative time",
                Some(sign_at(&v.body, WEBHOOK_SECRET.as_bytes(), -1)),
            ),
            unsigned(
                "a time past i64",
                Some(format!("t=99999999999999999999,v0={}", "0".repeat(64)).into_bytes()),
            ),
            unsigned(
                "not UTF-8",
                Some(
                    [
                        &sign_at(&v.body, WEBHOOK_SECRET.as_bytes(), now)[..],
                        b"\xff",
                    ]
                    .concat(),
                ),
            ),
            unsigned(
                "another body's signature",
                Some(sign_at(&other, WEBHOOK_SECRET.as_bytes(), now)),
            ),
            unsigned(
                "a wrong signature, then the right one",
                Some(b"t=1,v0=00".to_vec()),
            )
            .header(
                "elevenlabs-signature",
                sign_at(&v.body, WEBHOOK_SECRET.as_bytes(), now),
            ),
            unsigned("a Twilio signature instead", None).header("x-twilio-signature", "abc="),
        ];
        let sample = json_of(&v.body);
        for (label, body) in broken_json(&v.body, Some("data")) {
            out.push(signed(&label, body, Want::Error(400, None)));
        }
        let data = |f: &dyn Fn(&mut Value)| {
            let mut b = sample.clone();
            f(&mut b["data"]);
            serde_json::to_vec(&b).unwrap()
        };
        let near: Vec<(&str, Vec<u8>, Want)> = vec![
            ("a body of null", b"null".to_vec(), bad("body")),
            // A key that is empty text, its value broken: the 400 still names a field.
            (
                "a broken value under an empty key",
                b"{\"\": [}".to_vec(),
                bad("body"),
            ),
            ("an array", b"[]".to_vec(), bad("body")),
            ("no type", without_key(&sample, "type"), bad("type")),
            (
                "a type that is a number",
                with(&sample, "type", json!(5)),
                bad("type"),
            ),
            ("no data", without_key(&sample, "data"), bad("data")),
            (
                "data that is text",
                with(&sample, "data", json!("x")),
                bad("data"),
            ),
            (
                "a conversation id that is a number",
                data(&|d| d["conversation_id"] = json!(5)),
                bad("data.conversation_id"),
            ),
            (
                "a conversation id with dots",
                data(&|d| d["conversation_id"] = json!("../../etc")),
                bad("data.conversation_id"),
            ),
            (
                "a conversation id too long",
                data(&|d| d["conversation_id"] = json!("c".repeat(129))),
                bad("data.conversation_id"),
            ),
            (
                "an agent id with a NUL",
                data(&|d| d["agent_id"] = json!("a\u{0}b")),
                bad("data.agent_id"),
            ),
            (
                "no metadata",
                data(&|d| {
                    d.as_object_mut().unwrap().remove("metadata");
                }),
                bad("data.metadata"),
            ),
            (
                "no start time",
                data(&|d| {
                    d["metadata"]
                        .as_object_mut()
                        .unwrap()
                        .remove("start_time_unix_secs");
                }),
                bad("data.metadata.start_time_unix_secs"),
            ),
            (
                "a start time past i64",
                data(&|d| d["metadata"]["start_time_unix_secs"] = json!(1e20)),
                bad("data.metadata.start_time_unix_secs"),
            ),
            (
                "a duration in words",
                data(&|d| d["metadata"]["call_duration_secs"] = json!("long")),
                bad("data.metadata.call_duration_secs"),
            ),
            (
                "a transcript that is an object",
                data(&|d| d["transcript"] = json!({"role": "agent"})),
                bad("data.transcript"),
            ),
            (
                "a turn without a role",
                data(&|d| d["transcript"] = json!([{"message": "hi"}])),
                bad("data.transcript[0].role"),
            ),
            (
                "an audio that is not base64",
                with(
                    &json!({"type": "post_call_audio", "data": {"agent_id": "a", "conversation_id": "conv_badinputa"}}),
                    "data",
                    json!({"agent_id": "a", "conversation_id": "conv_badinputa", "full_audio": "%%%"}),
                ),
                bad("data.full_audio"),
            ),
            (
                "an event type we do not handle",
                s(
                    json!({"type": "voice_removal_notice", "event_timestamp": 1, "data": {"conversation_id": "conv_badinputb"}}),
                ),
                Want::Ok(vec![("/status", json!("ignored"))]),
            ),
        ];
        for (label, body, want) in near {
            out.push(signed(label, body, want));
        }
        // A content type that is not JSON: the signature and the body decide, as ElevenLabs'
        // own requests always say JSON.
        out.push(
            signed(
                "text/plain, not JSON",
                b"type=post_call_transcription".to_vec(),
                Want::Error(400, None),
            )
            .without("content-type")
            .header("content-type", "text/plain"),
        );
        out.push(
            unsigned("text/plain, unsigned", None)
                .without("content-type")
                .header("content-type", "text/plain"),
        );
        out
    }

    fn s(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn web_form_cases(v: &Valid) -> Vec<Req> {
        let form = "application/x-www-form-urlencoded";
        let signed = |label: &str, ct: &str, body: &[u8], want: Want| {
            Req::new(label, "POST", &v.target, want)
                .header("content-type", ct)
                .header(
                    web_form::SIGNATURE_HEADER,
                    web_form::sign(WEB_FORM_SECRET.as_bytes(), body),
                )
                .body(body)
        };
        let with_token = |label: &str, ct: &str, body: &[u8], want: Want| {
            Req::new(label, "POST", &v.target, want)
                .header("content-type", ct)
                .header(web_form::TOKEN_HEADER, WEB_FORM_TOKEN)
                .body(body)
        };
        let refused = |label: &str| {
            Req::new(label, "POST", &v.target, Want::Error(401, None))
                .header("content-type", form)
                .body(&v.body)
        };
        let mut other = v.body.clone();
        other.push(b'x');
        let mut out = vec![
            refused("neither signed nor a token"),
            refused("a signature of zeros").header(
                web_form::SIGNATURE_HEADER,
                format!("sha256={}", "0".repeat(64)),
            ),
            refused("a signature that is not hex").header(web_form::SIGNATURE_HEADER, "sha256=zz"),
            refused("another body's signature").header(
                web_form::SIGNATURE_HEADER,
                web_form::sign(WEB_FORM_SECRET.as_bytes(), &other),
            ),
            refused("another secret's signature").header(
                web_form::SIGNATURE_HEADER,
                web_form::sign(b"someone else", &v.body),
            ),
            refused("a signature that is not UTF-8")
                .header(web_form::SIGNATURE_HEADER, b"sha256=\xff"),
            refused("a wrong token").header(web_form::TOKEN_HEADER, "guess"),
            refused("the token with a character more")
                .header(web_form::TOKEN_HEADER, format!("{WEB_FORM_TOKEN}x")),
            refused("a wrong signature and the right token")
                .header(web_form::SIGNATURE_HEADER, "sha256=00")
                .header(web_form::TOKEN_HEADER, WEB_FORM_TOKEN),
            Req::new(
                "a wrong token field",
                "POST",
                &v.target,
                Want::Error(401, None),
            )
            .header("content-type", form)
            .body([&v.body[..], b"&form_token=guess"].concat()),
            Req::new(
                "the token field twice",
                "POST",
                &v.target,
                Want::Error(401, None),
            )
            .header("content-type", form)
            .body(
                [
                    &v.body[..],
                    format!("&form_token={WEB_FORM_TOKEN}&form_token={WEB_FORM_TOKEN}").as_bytes(),
                ]
                .concat(),
            ),
            Req::new(
                "a JSON token that is a number",
                "POST",
                &v.target,
                Want::Error(401, None),
            )
            .header("content-type", "application/json")
            .body(br#"{"phone": "07400123457", "form_token": 5}"#),
        ];
        let field = |b: &str| b.as_bytes().to_vec();
        let near: Vec<(&str, &str, Vec<u8>, Want)> = vec![
            ("an empty form", form, Vec::new(), bad("phone")),
            ("no phone", form, field("name=Bo"), bad("phone")),
            ("a phone in words", form, field("phone=hello"), bad("phone")),
            ("a long phone", form, field(&format!("phone={}", "1".repeat(41))), bad("phone")),
            ("not UTF-8", form, [&b"phone=07400123457&name=B"[..], b"\xff\xfe"].concat(), bad("body")),
            ("a name given twice", form, field("phone=07400123457&name=A&name=B"), bad("name")),
            ("a phone given twice", form, field("phone=07400123457&phone=07400123458"), bad("phone")),
            ("a name with a NUL", form, field("phone=07400123457&name=Ann%00Lee"), bad("name")),
            ("a name on two lines", form, field("phone=07400123457&name=Ann%0ALee"), bad("name")),
            ("a long name", form, field(&format!("phone=07400123457&name={}", "n".repeat(101))), bad("name")),
            ("a bad e-mail", form, field("phone=07400123457&email=nobody"), bad("email")),
            ("an e-mail with a space", form, field("phone=07400123457&email=a+b%40example.com"), bad("email")),
            ("a long message", form, field(&format!("phone=07400123457&message={}", "m".repeat(2001))), bad("message")),
            ("a message with an escape", form, field("phone=07400123457&message=a%1Bb"), bad("message")),
            ("text/plain", "text/plain", v.body.clone(), bad("content-type")),
            ("XML", "application/xml", field("<form><phone>07400123457</phone></form>"), bad("content-type")),
            ("multipart", "multipart/form-data; boundary=x", field("--x\r\nContent-Disposition: form-data; name=\"phone\"\r\n\r\n07400123457\r\n--x--"), bad("content-type")),
            ("JSON, an array", "application/json", field("[]"), bad("body")),
            ("JSON, truncated", "application/json", field("{\"phone\": \"0740"), bad("body")),
            ("JSON, a phone that is an object", "application/json", field(r#"{"phone": {"a": 1}}"#), bad("phone")),
            ("JSON, a phone that is a number", "application/json", field(r#"{"phone": 7}"#), bad("phone")),
            ("JSON, a name that is a list", "application/json", field(r#"{"phone": "07400123457", "name": ["a"]}"#), bad("name")),
            ("JSON, nested 200 deep", "application/json", format!("{{\"phone\": \"07400123457\", \"x\": {}{}}}", "[".repeat(200), "]".repeat(200)).into_bytes(), bad("body")),
            ("JSON, trailing garbage", "application/json", field(r#"{"phone": "07400123457"} x"#), bad("body")),
            // The README: "a field given twice ... 400 with field". In JSON too.
            ("JSON, a name given twice", "application/json", field(r#"{"phone": "07400123457", "name": "A", "name": "B"}"#), bad("name")),
        ];
        for (label, ct, body, want) in near {
            out.push(signed(&format!("signed, {label}"), ct, &body, want.clone()));
            out.push(with_token(&format!("token, {label}"), ct, &body, want));
        }
        out.push(with_token(
            "the token field twice, with the header",
            form,
            b"phone=07400123457&form_token=a&form_token=b",
            bad("form_token"),
        ));
        out
    }

    fn twilio_cases(app: &TestApp, route: &Route, v: &Valid) -> Vec<Req> {
        let form = "application/x-www-form-urlencoded";
        let params = twilio_params(route);
        let forbidden = |label: &str| {
            Req::new(label, "POST", &v.target, Want::Error(403, None))
                .header("content-type", form)
                .body(&v.body)
        };
        let good = twilio_sign(app, &v.target, &params);
        let mut tampered = params.clone();
        tampered.push(("Body".into(), "tampered".into()));
        let other_path = if route.path == frontdesk::http::TWILIO_MESSAGING_PATH {
            frontdesk::outbox::STATUS_PATH
        } else {
            frontdesk::http::TWILIO_MESSAGING_PATH
        };
        let mut out = vec![
            forbidden("no signature"),
            forbidden("an empty signature").header("x-twilio-signature", ""),
            forbidden("not base64").header("x-twilio-signature", "not base64!!"),
            forbidden("base64 of nothing useful")
                .header("x-twilio-signature", "bm90IGEgc2lnbmF0dXJl"),
            forbidden("not UTF-8")
                .header("x-twilio-signature", [good.as_bytes(), b"\xff"].concat()),
            forbidden("signed for the other webhook")
                .header("x-twilio-signature", twilio_sign(app, other_path, &params)),
            forbidden("signed for https").header(
                "x-twilio-signature",
                frontdesk::twilio::signature::sign(
                    TWILIO_TOKEN.as_bytes(),
                    &format!(
                        "https://{}{}",
                        app.address.trim_start_matches("http://"),
                        v.target
                    ),
                    &params,
                ),
            ),
            forbidden("signed with another token").header(
                "x-twilio-signature",
                frontdesk::twilio::signature::sign(
                    b"another token",
                    &format!("{}{}", app.address, v.target),
                    &params,
                ),
            ),
            forbidden("signed over other parameters")
                .header("x-twilio-signature", twilio_sign(app, &v.target, &tampered)),
            forbidden("a wrong signature, then the right one")
                .header("x-twilio-signature", "AAAA")
                .header("x-twilio-signature", &good),
            forbidden("the form as JSON, without bodySHA256")
                .without("content-type")
                .header("content-type", "application/json")
                .header("x-twilio-signature", &good),
            forbidden("a signature the case changed")
                .header("x-twilio-signature", good.to_lowercase()),
        ];
        {
            // JSON with a bodySHA256 that is not the body's.
            let target = format!("{}?bodySHA256={}", v.target, "0".repeat(64));
            let sig = twilio_sign(app, &target, &[]);
            out.push(Req {
                target,
                ..forbidden("a JSON body whose hash is wrong")
                    .without("content-type")
                    .header("content-type", "application/json")
                    .header("x-twilio-signature", sig)
                    .body(b"{}")
            });
        }
        let signed = |label: &str, params: Vec<(String, String)>, want: Want| {
            let sig = twilio_sign(app, &v.target, &params);
            Req::new(label, "POST", &v.target, want)
                .header("content-type", form)
                .header("x-twilio-signature", sig)
                .body(form_urlencoded_body(&params))
        };
        let set = |name: &str, value: Option<&str>| {
            let mut p = params.clone();
            p.retain(|(k, _)| {
                k != name
                    && !(name == "MessageSid" && (k == "SmsMessageSid" || k == "SmsSid"))
                    && !(name == "MessageStatus" && k == "SmsStatus")
            });
            if let Some(value) = value {
                p.insert(0, (name.to_string(), value.to_string()));
            }
            p
        };
        let refused = Want::Error(400, None);
        let mut near: Vec<(&str, Vec<(String, String)>)> = vec![
            ("no parameters", Vec::new()),
            ("a short SID", set("MessageSid", Some("SM123"))),
            (
                "a SID that is not hex",
                set("MessageSid", Some(&format!("SM{}", "g".repeat(32)))),
            ),
            (
                "a call SID",
                set("MessageSid", Some(&format!("CA{}", "a".repeat(32)))),
            ),
            (
                "a SID with a slash",
                set("MessageSid", Some(&format!("SM{}/", "a".repeat(31)))),
            ),
            ("no SID", set("MessageSid", None)),
            (
                "a bad SID, then a good one",
                [
                    set("MessageSid", Some("SMbad")),
                    vec![("MessageSid".into(), sid(9002))],
                ]
                .concat(),
            ),
        ];
        let body_params = |body: &str| set("Body", Some(body));
        let long_body = "é".repeat(4097);
        if route.path == frontdesk::http::TWILIO_MESSAGING_PATH {
            near.extend([
                ("From not a number", set("From", Some("not a number"))),
                ("From missing", set("From", None)),
                (
                    "From a WhatsApp name with spaces",
                    set("From", Some("whatsapp:a b")),
                ),
                ("a body over 4096 characters", body_params(&long_body)),
                ("a body with a NUL", body_params("nul\u{0}byte")),
                ("a body with an escape", body_params("esc\u{1b}[2J")),
                ("NumMedia in words", set("NumMedia", Some("two"))),
                ("NumMedia past u32", set("NumMedia", Some("99999999999"))),
                (
                    "a SID of invalid UTF-8, decoded",
                    set("MessageSid", Some("SM\u{fffd}\u{fffd}")),
                ),
            ]);
        } else {
            near.extend([
                ("an unknown status", set("MessageStatus", Some("exploded"))),
                ("no status", set("MessageStatus", None)),
                (
                    "an error code in words",
                    [params.clone(), vec![("ErrorCode".into(), "abc".into())]].concat(),
                ),
                (
                    "an error code past u32",
                    [
                        params.clone(),
                        vec![("ErrorCode".into(), "99999999999".into())],
                    ]
                    .concat(),
                ),
            ]);
        }
        for (label, params) in near {
            out.push(signed(label, params, refused.clone()));
        }
        {
            // A signed JSON body (bodySHA256 right): there are no parameters to read.
            use sha2::Digest;
            let body = br#"{"MessageSid": "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;
            let target = format!(
                "{}?bodySHA256={}",
                v.target,
                hex::encode(sha2::Sha256::digest(body))
            );
            let sig = twilio_sign(app, &target, &[]);
            out.push(
                Req::new("a signed JSON body", "POST", &target, refused.clone())
                    .header("content-type", "application/json")
                    .header("x-twilio-signature", sig)
                    .body(body),
            );
        }
        {
            // Invalid UTF-8 in the raw form (Twilio's form decoder is lossy: the SID is not one).
            let mut body = form_urlencoded_body(&set("MessageSid", None)).into_bytes();
            body.extend_from_slice(b"&MessageSid=SM\xff\xfe");
            let decoded = frontdesk::twilio::signature::form_params(&body);
            let sig = twilio_sign(app, &v.target, &decoded);
            out.push(
                Req::new("a raw SID of invalid UTF-8", "POST", &v.target, refused)
                    .header("content-type", form)
                    .header("x-twilio-signature", sig)
                    .body(body),
            );
        }
        out
    }

    fn token(app: &TestApp, edit: impl FnOnce(&mut Value)) -> String {
        let now = app.now().as_second();
        let mut claims = json!({
            "iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "sub": "local-reviewer", "email": "reviewer@localhost",
            DEFAULT_TENANT_CLAIM: "demo", "iat": now, "exp": now + 3600,
        });
        edit(&mut claims);
        sign_local(&claims, REVIEWER_KEY)
    }

    fn reviewer_cases(app: &TestApp, route: &Route, v: &Valid, fx: &Fixture) -> Vec<Req> {
        let auth = |label: &str, value: Option<Vec<u8>>, want: Want| {
            let r = Req::new(label, route.method, &v.target, want)
                .header("content-type", "application/json")
                .body(&v.body);
            match value {
                Some(value) => r.header("authorization", value),
                None => r,
            }
        };
        let bearer = |t: &str| Some(format!("Bearer {t}").into_bytes());
        let unauthorized = Want::Error(401, None);
        let good = app.reviewer_token();
        let none_alg = {
            let rest = good.split_once('.').unwrap().1;
            format!("{}.{rest}", base64url(br#"{"alg":"none","typ":"JWT"}"#))
        };
        let unsigned = format!("{}.", good.rsplit_once('.').unwrap().0);
        let mut out = vec![
            auth("no token", None, unauthorized.clone()),
            auth(
                "Bearer and nothing",
                Some(b"Bearer".to_vec()),
                unauthorized.clone(),
            ),
            auth(
                "Bearer and a space",
                Some(b"Bearer ".to_vec()),
                unauthorized.clone(),
            ),
            auth(
                "basic auth",
                Some(b"Basic cmV2aWV3ZXI6cGFzcw==".to_vec()),
                unauthorized.clone(),
            ),
            auth(
                "bearer in lower case",
                Some(format!("bearer {good}").into_bytes()),
                unauthorized.clone(),
            ),
            auth(
                "the token alone",
                Some(good.clone().into_bytes()),
                unauthorized.clone(),
            ),
            auth("not a token", bearer("not.a.token"), unauthorized.clone()),
            auth("garbage", bearer("%%%"), unauthorized.clone()),
            auth(
                "four parts",
                bearer(&format!("{good}.x")),
                unauthorized.clone(),
            ),
            auth("no signature", bearer(&unsigned), unauthorized.clone()),
            auth("alg none", bearer(&none_alg), unauthorized.clone()),
            auth(
                "not UTF-8",
                Some([format!("Bearer {good}").as_bytes(), b"\xff"].concat()),
                unauthorized.clone(),
            ),
            auth(
                "another key",
                bearer(&frontdesk::qa::auth::local_reviewer_token(
                    b"someone else's key",
                    "demo",
                    app.now().as_second(),
                    1,
                )),
                unauthorized.clone(),
            ),
            auth(
                "expired",
                bearer(&token(app, |c| {
                    c["exp"] = json!(app.now().as_second() - 3600)
                })),
                unauthorized.clone(),
            ),
            auth(
                "no expiry",
                bearer(&token(app, |c| {
                    c.as_object_mut().unwrap().remove("exp");
                })),
                unauthorized.clone(),
            ),
            auth(
                "an expiry in words",
                bearer(&token(app, |c| c["exp"] = json!("tomorrow"))),
                unauthorized.clone(),
            ),
            auth(
                "not valid yet",
                bearer(&token(app, |c| {
                    c["nbf"] = json!(app.now().as_second() + 3600)
                })),
                unauthorized.clone(),
            ),
            auth(
                "another issuer",
                bearer(&token(app, |c| {
                    c["iss"] = json!("https://evil.example.com")
                })),
                unauthorized.clone(),
            ),
            auth(
                "another audience",
                bearer(&token(app, |c| c["aud"] = json!("another-api"))),
                unauthorized.clone(),
            ),
            auth(
                "no subject",
                bearer(&token(app, |c| {
                    c.as_object_mut().unwrap().remove("sub");
                })),
                unauthorized.clone(),
            ),
            auth(
                "no tenant",
                bearer(&token(app, |c| {
                    c.as_object_mut().unwrap().remove(DEFAULT_TENANT_CLAIM);
                })),
                unauthorized.clone(),
            ),
            auth(
                "a wrong token, then the right one",
                bearer("x.y.z"),
                unauthorized.clone(),
            )
            .header("authorization", format!("Bearer {good}")),
            auth(
                "another business",
                bearer(&app.reviewer_token_for("acme")),
                Want::Error(403, None),
            ),
            auth(
                "another business, in a list",
                bearer(&token(app, |c| c[DEFAULT_TENANT_CLAIM] = json!(["demo"]))),
                Want::Error(403, None),
            ),
        ];
        let authed = |label: &str, method: &str, target: &str, body: &[u8], want: Want| {
            Req::new(label, method, target, want)
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {good}"))
                .body(body)
        };
        let cursor = |plain: Value| base64url(plain.to_string().as_bytes());
        let list = |status: &str| format!("demo#FLAGS#{status}");
        let _ = list;
        match (route.method, route.path) {
            ("GET", "/qa/flags") => {
                let index = frontdesk::store::keys::flags_index(
                    &frontdesk::ids::TenantId::parse("demo").unwrap(),
                    "open",
                );
                let other_index = frontdesk::store::keys::flags_index(
                    &frontdesk::ids::TenantId::parse("demo").unwrap(),
                    "dismissed",
                );
                let queries: Vec<(String, Want)> = vec![
                    ("status=bogus".into(), bad("status")),
                    ("status=OPEN".into(), bad("status")),
                    ("status=open&status=bogus".into(), bad("status")),
                    ("status=%FF".into(), bad("status")),
                    ("severity=urgent".into(), bad("severity")),
                    ("limit=0".into(), bad("limit")),
                    ("limit=101".into(), bad("limit")),
                    ("limit=-1".into(), bad("limit")),
                    ("limit=ten".into(), bad("limit")),
                    ("limit=1.5".into(), bad("limit")),
                    ("limit=99999999999999999999".into(), bad("limit")),
                    ("cursor=garbage!".into(), bad("cursor")),
                    (format!("cursor={}", cursor(json!({}))), bad("cursor")),
                    (format!("cursor={}", cursor(json!([1, 2]))), bad("cursor")),
                    (
                        format!(
                            "cursor={}",
                            cursor(
                                json!({"PK": "a", "SK": "b", "GSI1PK": other_index, "GSI1SK": "c"})
                            )
                        ),
                        bad("cursor"),
                    ),
                    (
                        format!(
                            "cursor={}",
                            cursor(
                                json!({"PK": "a", "SK": "b", "GSI1PK": index, "GSI1SK": "c", "extra": "d"})
                            )
                        ),
                        bad("cursor"),
                    ),
                    (
                        format!(
                            "cursor={}",
                            cursor(json!({"PK": 1, "SK": "b", "GSI1PK": index, "GSI1SK": "c"}))
                        ),
                        bad("cursor"),
                    ),
                    (format!("cursor={}", base64url(b"\xff\xfe")), bad("cursor")),
                    // A forged position inside this tenant's own list: a page from there.
                    (
                        format!(
                            "cursor={}",
                            cursor(
                                json!({"PK": "elsewhere", "SK": "x", "GSI1PK": index, "GSI1SK": "zzzz"})
                            )
                        ),
                        Want::Ok(vec![("/status", json!("open"))]),
                    ),
                    (
                        "unknown=1&status=".into(),
                        Want::Ok(vec![("/status", json!("open"))]),
                    ),
                ];
                for (query, want) in queries {
                    out.push(authed(
                        &format!("?{query}"),
                        "GET",
                        &format!("/qa/flags?{query}"),
                        b"",
                        want,
                    ));
                }
            }
            ("GET", "/qa/calls/{conversation_id}") => {
                for (id, want) in [
                    ("..%2F..%2Fetc".to_string(), bad("conversation_id")),
                    ("a%00b".into(), bad("conversation_id")),
                    ("%FF".into(), bad("conversation_id")),
                    ("a%20b".into(), bad("conversation_id")),
                    ("c".repeat(129), bad("conversation_id")),
                    ("conv_unknown".into(), Want::Error(404, None)),
                ] {
                    out.push(authed(
                        &format!("call {}", &id[..id.len().min(20)]),
                        "GET",
                        &format!("/qa/calls/{id}"),
                        b"",
                        want,
                    ));
                }
            }
            ("POST", "/qa/flags/{id}") => {
                let target = format!("/qa/flags/{FLAG}");
                for (label, body) in broken_json(br#"{"status": "confirmed", "note": "ok"}"#, None)
                {
                    out.push(authed(&label, "POST", &target, &body, bad("body")));
                }
                for (label, body, want) in [
                    ("status open", s(json!({"status": "open"})), bad("status")),
                    (
                        "status in capitals",
                        s(json!({"status": "CONFIRMED"})),
                        bad("status"),
                    ),
                    ("status a number", s(json!({"status": 5})), bad("body")),
                    ("no status", s(json!({"note": "x"})), bad("body")),
                    (
                        "an unknown field",
                        s(json!({"status": "confirmed", "extra": 1})),
                        bad("body"),
                    ),
                    (
                        "a note with a NUL",
                        s(json!({"status": "confirmed", "note": "a\u{0}b"})),
                        bad("note"),
                    ),
                    (
                        "a long note",
                        s(json!({"status": "confirmed", "note": "n".repeat(2001)})),
                        bad("note"),
                    ),
                    ("an array", s(json!([])), bad("body")),
                    (
                        "an array of the fields",
                        s(json!(["dismissed", "read as the status"])),
                        bad("body"),
                    ),
                    (
                        "the opposite decision",
                        s(json!({"status": "dismissed"})),
                        Want::Error(409, None),
                    ),
                    (
                        "the same decision again",
                        s(json!({"status": "confirmed"})),
                        Want::Ok(vec![("/changed", json!(false))]),
                    ),
                ] {
                    out.push(authed(label, "POST", &target, &body, want));
                }
                let confirm = s(json!({"status": "confirmed"}));
                for (id, want) in [
                    ("noperiod", bad("id")),
                    ("a%2Fb.rule", bad("id")),
                    (".rule", bad("id")),
                    ("conv_badinput1.no-such-rule", Want::Error(404, None)),
                    ("conv_nobody.asked-date-of-birth", Want::Error(404, None)),
                ] {
                    out.push(authed(
                        &format!("flag {id}"),
                        "POST",
                        &format!("/qa/flags/{id}"),
                        &confirm,
                        want,
                    ));
                }
            }
            ("POST", "/leads/{id}/quoted") => {
                let target = format!("/leads/{}/quoted", fx.lead_id);
                for (label, body) in broken_json(br#"{"quote": "450 pounds"}"#, None) {
                    if !label.starts_with("empty") && !label.starts_with("spaces") {
                        out.push(authed(&label, "POST", &target, &body, bad("body")));
                    }
                }
                for (label, body, want) in [
                    (
                        "a quote that is a number",
                        s(json!({"quote": 450})),
                        bad("body"),
                    ),
                    ("an unknown field", s(json!({"price": "450"})), bad("body")),
                    ("an array", s(json!([])), bad("body")),
                    (
                        "an array of the fields",
                        s(json!(["450 pounds"])),
                        bad("body"),
                    ),
                    (
                        "a long quote",
                        s(json!({"quote": "q".repeat(201)})),
                        bad("quote"),
                    ),
                    (
                        "a quote on two lines",
                        s(json!({"quote": "450\npounds"})),
                        bad("quote"),
                    ),
                ] {
                    out.push(authed(label, "POST", &target, &body, want));
                }
                for (id, want) in [
                    ("..%2Fx", bad("id")),
                    ("a%20b", bad("id")),
                    (&"l".repeat(65)[..], bad("id")),
                    ("lead_doesnotexist", Want::Error(404, None)),
                ] {
                    out.push(authed(
                        &format!("lead {}", &id[..id.len().min(20)]),
                        "POST",
                        &format!("/leads/{id}/quoted"),
                        b"",
                        want,
                    ));
                }
            }
            _ => {
                out.push(authed(
                    "an unknown query",
                    route.method,
                    &format!("{}?x=%FF&limit=-1", v.target),
                    b"",
                    Want::Ok(Vec::new()),
                ));
            }
        }
        out
    }

    fn page_cases(v: &Valid) -> Vec<Req> {
        ["?x=%FF", "?token=abc", "?%00=1"]
            .iter()
            .map(|q| {
                Req::new(
                    format!("query {q}"),
                    "GET",
                    &format!("{}{q}", v.target),
                    Want::Ok(Vec::new()),
                )
            })
            .collect()
    }

    // ---- Random mutations, invalid by construction ------------------------------------------

    /// A small deterministic generator (seeded, printed), so a failing request can be made
    /// again with `FRONTDESK_FUZZ_SEED`.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    const RANDOM_PER_ROUTE: usize = 16;

    fn random_cases(app: &TestApp, route: &Route, v: &Valid, rng: &mut Rng) -> Vec<Req> {
        let mut out = Vec::new();
        let json_body = route.caller == Caller::Agent
            || (route.caller == Caller::Webhook && route.path != frontdesk::http::WEB_FORM_PATH)
            || (route.caller == Caller::Reviewer && route.method == "POST");
        for n in 0..RANDOM_PER_ROUTE {
            // A valid JSON body broken one way no JSON reader accepts: cut short, a raw
            // control character or an invalid UTF-8 byte inside it.
            if json_body {
                let valid = if v.body.is_empty() {
                    b"{\"status\": \"confirmed\"}".to_vec()
                } else {
                    v.body.clone()
                };
                let last = valid.iter().rposition(|b| *b == b'}').unwrap();
                let mut body = valid.clone();
                let how = rng.below(3);
                let at = rng.below(last);
                match how {
                    0 => body.truncate(at.max(1)),
                    1 => body.insert(at, [0u8, 1, 7, 8, 0x0b, 0x0c, 0x1b, 0x1f][rng.below(8)]),
                    _ => body
                        .splice(at..at, BAD_UTF8[rng.below(BAD_UTF8.len())].iter().copied())
                        .for_each(drop),
                }
                let field = match route.caller {
                    Caller::Webhook => None, // the webhook names where its reading stopped
                    _ => Some("body".to_string()),
                };
                let (target, body, want) =
                    if route.caller == Caller::Reviewer && route.path.starts_with("/qa/flags") {
                        (format!("/qa/flags/{FLAG}"), body, Want::Error(400, field))
                    } else {
                        (v.target.clone(), body, Want::Error(400, field))
                    };
                let mut req = Req::new(
                    format!(
                        "random #{n}: {}",
                        ["cut short", "a raw control character", "invalid UTF-8"][how]
                    ),
                    route.method,
                    &target,
                    want,
                )
                .headers(&v.headers)
                .body(&body);
                if route.caller == Caller::Webhook {
                    req = req
                        .without("elevenlabs-signature")
                        .header("elevenlabs-signature", app.sign(&body));
                }
                out.push(req);
            } else if route.caller == Caller::Twilio {
                // Unsigned mutations: refused. Signed ones with a SID that is not one: 400.
                let mut body = v.body.clone();
                let at = rng.below(body.len());
                body[at] = (rng.next() & 0xff) as u8;
                if body != v.body {
                    out.push(
                        Req::new(
                            format!("random #{n}: a byte changed, signature kept"),
                            "POST",
                            &v.target,
                            Want::Error(403, None),
                        )
                        .headers(&v.headers)
                        .body(&body),
                    );
                }
                let mut params = twilio_params(route);
                params.retain(|(k, _)| !k.contains("Sid"));
                let garbage: String = (0..rng.below(40))
                    .map(|_| char::from(b"SMabcdefg0123456789/.%# "[rng.below(24)]))
                    .collect();
                params.insert(0, ("MessageSid".into(), garbage));
                let sig = twilio_sign(app, &v.target, &params);
                out.push(
                    Req::new(
                        format!("random #{n}: a SID that is not one"),
                        "POST",
                        &v.target,
                        Want::Error(400, None),
                    )
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("x-twilio-signature", sig)
                    .body(form_urlencoded_body(&params)),
                );
            } else if route.path == frontdesk::http::WEB_FORM_PATH {
                let mut body = v.body.clone();
                let at = rng.below(body.len());
                body.splice(at..at, BAD_UTF8[rng.below(BAD_UTF8.len())].iter().copied());
                out.push(
                    Req::new(
                        format!("random #{n}: invalid UTF-8"),
                        "POST",
                        &v.target,
                        bad("body"),
                    )
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header(
                        web_form::SIGNATURE_HEADER,
                        web_form::sign(WEB_FORM_SECRET.as_bytes(), &body),
                    )
                    .body(&body),
                );
            } else if route.caller == Caller::Reviewer {
                let garbage: String = (0..rng.below(300))
                    .map(|_| char::from(32 + rng.below(95) as u8))
                    .collect();
                out.push(
                    Req::new(
                        format!("random #{n}: a token of noise"),
                        route.method,
                        &v.target,
                        Want::Error(401, None),
                    )
                    .header("authorization", format!("Bearer {garbage}"))
                    .body(&v.body),
                );
                if route.path == "/qa/flags" {
                    let limit = if rng.below(2) == 0 {
                        -(rng.below(1_000_000) as i64)
                    } else {
                        101 + rng.below(1_000_000) as i64
                    };
                    out.push(
                        Req::new(
                            format!("random #{n}: limit out of range"),
                            "GET",
                            &format!("/qa/flags?limit={limit}"),
                            bad("limit"),
                        )
                        .headers(&v.headers),
                    );
                }
            } else {
                let q: String = (0..rng.below(60))
                    .map(|_| char::from(b"abc=&%FF0x"[rng.below(10)]))
                    .collect();
                out.push(Req::new(
                    format!("random #{n}: query noise"),
                    "GET",
                    &format!("{}?{q}", v.target),
                    Want::Ok(Vec::new()),
                ));
            }
        }
        out
    }

    // ---- The run ------------------------------------------------------------------------------

    #[tokio::test]
    async fn every_route_answers_malformed_requests_with_its_documented_status_and_writes_nothing()
    {
        count_panics();
        let started = Instant::now();
        let app = spawn_app_with(Options {
            max_body_bytes: Some(WEBHOOK_LIMIT),
            ..Options::default()
        })
        .await;
        let fx = fixture(&app).await;
        let seed = std::env::var("FRONTDESK_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        println!("corpus: random seed {seed} (FRONTDESK_FUZZ_SEED={seed} makes the same requests)");
        let mut rng = Rng(seed);
        let mut before = state(&app).await;
        let panics_before = PANICS.load(Ordering::SeqCst);
        let mut failures = Vec::new();
        let mut total = 0;
        for route in routes() {
            let v = valid(&app, route, &fx);
            let mut cases = common(&app, route, &v);
            cases.extend(match route.caller {
                Caller::Agent => agent_cases(&app, route, &v, &fx),
                Caller::Webhook if route.path == frontdesk::http::WEB_FORM_PATH => {
                    web_form_cases(&v)
                }
                Caller::Webhook => post_call_cases(&app, &v),
                Caller::Twilio => twilio_cases(&app, route, &v),
                Caller::Reviewer => reviewer_cases(&app, route, &v, &fx),
                Caller::Page => page_cases(&v),
            });
            cases.extend(random_cases(&app, route, &v, &mut rng));
            let route_started = Instant::now();
            // Refusals at the door (credentials, method, path) are many and cheap: the state is
            // compared after a few of them at a time, and after every other request, so a
            // write is pinned to its request (or to the few refused at the door with it).
            let mut unchecked: Vec<String> = Vec::new();
            for (i, req) in cases.iter().enumerate() {
                let outcome = match send(&app, req).await {
                    Ok(answer) => check(route.caller, req, &answer),
                    Err(e) => Err(e),
                };
                let at_the_door = matches!(
                    req.want,
                    Want::Error(401 | 403, _) | Want::MethodNotAllowed | Want::NoSuchRoute
                );
                unchecked.push(req.label.clone());
                let mut problems = Vec::new();
                if let Err(e) = outcome {
                    problems.push(e);
                }
                if !at_the_door || unchecked.len() >= 6 || i + 1 == cases.len() {
                    let after = state(&app).await;
                    let written = differences(&before, &after);
                    if !written.is_empty() {
                        problems.push(format!("written by one of {unchecked:?}: {written}"));
                    }
                    before = after;
                    unchecked.clear();
                }
                let panicked = PANICS.load(Ordering::SeqCst) - panics_before;
                if panicked > 0 {
                    problems.push(format!("{panicked} panic(s) so far"));
                }
                if !problems.is_empty() {
                    let line = format!(
                        "{} {} [{}] {}: {}",
                        route.method,
                        route.path,
                        req.method,
                        req.label,
                        problems.join("; ")
                    );
                    println!("FAIL {line}");
                    failures.push(line);
                }
            }
            // Still answering.
            let alive = app
                .http
                .get(format!("{}/qa", app.address))
                .send()
                .await
                .map(|r| r.status().as_u16());
            assert_eq!(
                alive.ok(),
                Some(200),
                "the server stopped answering after {}",
                route.path
            );
            println!(
                "corpus {:<6} {:<40} {:>4} requests in {:.1}s",
                route.method,
                route.path,
                cases.len(),
                route_started.elapsed().as_secs_f64()
            );
            total += cases.len();
        }
        // Work left to the queue or a spawned task would show up here.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let settled = state(&app).await;
        let late = differences(&before, &settled);
        println!(
            "corpus: {total} requests over {} routes in {:.1}s",
            routes().len(),
            started.elapsed().as_secs_f64()
        );
        let logs = frontdesk_blackbox::logs();
        for secret in [
            &CALLER[3..],
            &OTHER_NUMBER[3..],
            NAME,
            "07400 123457",
            "07400123457",
            TOOL_SECRET,
            WEB_FORM_TOKEN,
        ] {
            if logs.contains(secret) {
                failures.push(format!("the logs carry {secret:?}"));
            }
        }
        assert!(late.is_empty(), "written after the corpus: {late}");
        assert!(
            failures.is_empty(),
            "{} of {total} requests were answered wrongly:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}
