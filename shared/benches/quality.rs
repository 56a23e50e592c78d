//! `cargo bench -p frontdesk --bench quality`: the quality rules (the demo's full rule set) over
//! batches of calls, from the stored transcript's JSON to the findings, at 500 calls (a busy
//! tenant's 15-minute batch; target < 5 s of CPU) and 10,000. Prints calls per second and the
//! time of the 500-call batch.

use std::path::Path;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use frontdesk::quality::scan::stored_turns;
use frontdesk::quality::{check, BusinessFacts, Evidence, RuleSet};
use frontdesk::tenant::TenantConfig;
use serde_json::json;

/// A stored transcript document of `turns` turns: a booking call, some breaking a rule.
fn transcript(i: usize, turns: usize) -> Vec<u8> {
    let mut list = vec![
        json!({"role": "agent", "message": "Hi, you're through to Northside Plumbing, I'm Ava, the virtual receptionist. Calls are recorded for quality.", "time_in_call_secs": 0}),
    ];
    for t in 1..turns {
        let turn = match (t % 6, i % 10) {
            (1, _) => {
                json!({"role": "user", "message": "My boiler has stopped working and there's water on the kitchen floor, can someone come out today?", "time_in_call_secs": t})
            }
            (2, _) => {
                json!({"role": "agent", "message": null, "tool_calls": [{"tool_name": "check_availability", "request_id": format!("r{t}"), "params_as_json": "{}"}], "time_in_call_secs": t})
            }
            (3, _) => {
                json!({"role": "agent", "message": null, "tool_results": [{"tool_name": "check_availability", "request_id": format!("r{t}"), "is_error": false, "result_value": "{\"ok\": true, \"slots\": []}"}], "time_in_call_secs": t})
            }
            (4, 0) if t == 4 => {
                json!({"role": "agent", "message": "Before I book, can I take your date of birth?", "time_in_call_secs": t})
            }
            (4, 1) if t == 4 => {
                json!({"role": "agent", "message": "That's usually about £80 plus parts.", "time_in_call_secs": t})
            }
            (4, _) => {
                json!({"role": "agent", "message": "I can do Wednesday at 8am or 8:30am with Dave. Which would suit you better?", "time_in_call_secs": t})
            }
            _ => {
                json!({"role": "user", "message": "Wednesday at eight is fine, my name is Sam Patel and I'm at 12 Holloway Road, N7.", "time_in_call_secs": t})
            }
        };
        list.push(turn);
    }
    json!({"conversation_id": format!("conv_{i}"), "redacted": false, "transcript": list})
        .to_string()
        .into_bytes()
}

fn demo() -> (RuleSet, BusinessFacts) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../prompts/demo");
    let tenant = TenantConfig::load_dir(&dir).unwrap();
    let facts = BusinessFacts::of(&tenant);
    (tenant.quality, facts)
}

/// What the scan does per call, without I/O: read the stored JSON, build the evidence, check.
fn scan_batch(rules: &RuleSet, facts: &BusinessFacts, docs: &[Vec<u8>]) -> usize {
    docs.iter()
        .map(|doc| {
            let turns = stored_turns(doc).expect("transcript");
            check(rules, facts, &Evidence::from_transcript(&turns)).len()
        })
        .sum()
}

fn rules_over_batches(c: &mut Criterion) {
    let (rules, facts) = demo();
    for calls in [500usize, 10_000] {
        // A typical call is 20 to 60 turns.
        let docs: Vec<Vec<u8>> = (0..calls).map(|i| transcript(i, 20 + i % 41)).collect();
        let started = Instant::now();
        let findings = scan_batch(&rules, &facts, &docs);
        let took = started.elapsed();
        println!(
            "quality rules: {calls} calls ({} rules) in {:.1} ms = {:.0} calls/s, {findings} findings",
            rules.rules.len(),
            took.as_secs_f64() * 1000.0,
            calls as f64 / took.as_secs_f64()
        );
        c.bench_function(&format!("quality rules over {calls} calls"), |b| {
            b.iter_batched(
                || (),
                |_| scan_batch(&rules, &facts, &docs),
                BatchSize::SmallInput,
            )
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = rules_over_batches
}
criterion_main!(benches);
