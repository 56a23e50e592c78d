//! `cargo bench -p frontdesk --bench post_call`: what a post-call webhook costs before its I/O
//! (the signature checked over the raw body, the payload parsed, the facts read, the call
//! record and its DynamoDB item made, the transcript document made for S3), for a ten-minute
//! and a two-hour call; and the peak heap of that work for the two-hour call, which must fit a
//! 128 MB function with the runtime's own ~20 MB (BENCHMARKS.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use frontdesk::elevenlabs::signature;
use frontdesk::elevenlabs::webhook::{self, PostCallEvent};
use frontdesk::post_call::call::{self, Links};
use frontdesk::post_call::transcript_document;
use frontdesk::tenant::TenantConfig;
use jiff::Timestamp;
use serde_json::{json, Value};

/// Counts live heap bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let live = LIVE.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SECRET: &[u8] = b"wsec_bench_0123456789abcdef";

fn demo() -> TenantConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../prompts/demo/business.toml");
    TenantConfig::from_toml(&std::fs::read_to_string(path).unwrap(), path).unwrap()
}

/// The sample webhook of events/, its ten turns repeated into a call of `minutes`: about one
/// turn every five seconds, a tool call in every fifth repetition, as long calls go.
fn webhook_of(minutes: u32) -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/webhooks/post_call_transcription.json"
    );
    let mut sample: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let turns = sample["data"]["transcript"].as_array().unwrap().clone();
    let secs = minutes * 60;
    let count = (secs / 5) as usize;
    let long: Vec<Value> = (0..count)
        .map(|i| {
            let mut turn = turns[i % turns.len()].clone();
            turn["time_in_call_secs"] = json!(i * 5);
            if (i / turns.len()) % 5 != 0 {
                turn["tool_calls"] = json!([]);
                turn["tool_results"] = json!([]);
            }
            turn
        })
        .collect();
    sample["data"]["transcript"] = Value::Array(long);
    sample["data"]["metadata"]["call_duration_secs"] = json!(secs);
    serde_json::to_vec(&sample).unwrap()
}

/// Everything the post-call function does with a webhook before it writes.
fn prepare(tenant: &TenantConfig, raw: &[u8], header: &str, now: Timestamp) -> usize {
    signature::verify(raw, Some(header), SECRET, now).unwrap();
    let PostCallEvent::Transcription(t) = webhook::parse(raw).unwrap() else {
        panic!("not a transcription")
    };
    let facts = call::read_facts(tenant, &t);
    let caller = call::caller_number(tenant, &t);
    let document = transcript_document(tenant, &t, raw, now);
    let links = Links {
        caller,
        lead_id: None,
        transcript_key: "transcripts/demo/conv.json".into(),
    };
    let record = call::call_record("demo", &t, &facts, links, now);
    let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
        serde_dynamo::to_item(&record).unwrap();
    document.len() + item.len()
}

fn bench(c: &mut Criterion) {
    let tenant = demo();
    let now = Timestamp::now();
    let mut group = c.benchmark_group("post-call webhook before I/O");
    for minutes in [10, 120] {
        let raw = webhook_of(minutes);
        let header = signature::sign(&raw, SECRET, now);

        // Peak heap of one preparation, over what is live already (the raw body in hand).
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        std::hint::black_box(prepare(&tenant, &raw, &header, now));
        let peak = PEAK.load(Ordering::Relaxed) - before;
        println!(
            "{minutes}-minute call: webhook {:.2} MB, peak heap of its preparation {:.2} MB ({:.1}x the body)",
            raw.len() as f64 / 1e6,
            peak as f64 / 1e6,
            peak as f64 / raw.len() as f64
        );

        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_with_input(
            BenchmarkId::new(
                "verify, parse, record, transcript",
                format!("{minutes} min"),
            ),
            &raw,
            |b, raw| b.iter(|| prepare(&tenant, raw, &header, now)),
        );
        group.bench_with_input(
            BenchmarkId::new("signature check alone", format!("{minutes} min")),
            &raw,
            |b, raw| b.iter(|| signature::verify(raw, Some(&header), SECRET, now).unwrap()),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
