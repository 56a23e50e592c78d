//! `cargo bench -p frontdesk --bench tools`: what a tool call costs us beyond its I/O (the
//! DynamoDB reads and writes, measured elsewhere): the secret check, reading and validating the
//! body, turning the stored bookings into the engine's terms, deciding, and writing the
//! answer; at 100 and 1,000 stored bookings, step by step, and for every tool the p50 and p99
//! of 5,000 calls timed one by one (criterion reports means). Target: p99 < 1 ms per call.

use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use frontdesk::booking::calendar::{as_occupied, bookable};
use frontdesk::http::{authorize_tool, read_tool_body, TOOL_SECRET_HEADER};
use frontdesk::ids::derived_id;
use frontdesk::store::bookings::{BookingRecord, BookingStatus};
use frontdesk::tenant::TenantConfig;
use frontdesk::tools::availability::{self, CheckAvailability};
use frontdesk::tools::booking::{self, CreateBooking};
use frontdesk::tools::booking_change::UpdateBooking;
use frontdesk::tools::caller::{ConversationInit, UpsertContact};
use frontdesk::tools::calls::LogCall;
use frontdesk::tools::escalation::EscalationTarget;
use frontdesk::tools::leads::{CaptureLead, DispatchLead};
use jiff::{SignedDuration, Timestamp};
use serde::de::DeserializeOwned;

const SECRET: &str = "bench-tool-secret-0123456789";

fn demo() -> TenantConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../prompts/demo/business.toml");
    TenantConfig::from_toml(&std::fs::read_to_string(path).unwrap(), path).unwrap()
}

/// `n` stored bookings over the next 30 days, on both technicians.
fn stored_bookings(now: Timestamp, n: i64) -> Vec<BookingRecord> {
    (0..n)
        .map(|i: i64| {
            let start = now
                .checked_add(SignedDuration::from_mins(
                    ((i * 43 * 1000 / n) % (30 * 24 * 60)) / 30 * 30,
                ))
                .unwrap();
            let cells = (0..3)
                .map(|c| {
                    start
                        .checked_add(SignedDuration::from_mins(30 * c))
                        .unwrap()
                        .to_string()
                })
                .collect();
            BookingRecord {
                booking_id: format!("bk_{i}"),
                tenant: "demo".into(),
                service_id: "boiler_service".into(),
                resource: if i % 2 == 0 { "dave" } else { "priya" }.into(),
                start: start.to_string(),
                end: start
                    .checked_add(SignedDuration::from_mins(60))
                    .unwrap()
                    .to_string(),
                cells,
                status: BookingStatus::Confirmed,
                contact_phone: Some("+447911123456".into()),
                customer_name: Some("Maria Lopez".into()),
                conversation_id: None,
                notes: None,
                previous_start: None,
                customer_confirmed_at: None,
                version: 1,
                created_at: now.to_string(),
                updated_at: now.to_string(),
            }
        })
        .collect()
}

/// The body of a tool's sample in events/.
fn sample_body(function: &str) -> Vec<u8> {
    let path = format!(
        "{}/../events/{function}/apigw-{function}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let event: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    event["body"].as_str().unwrap().as_bytes().to_vec()
}

/// The p50 and p99 of `runs` calls, each timed on its own.
fn percentiles(runs: usize, mut call: impl FnMut()) -> (f64, f64) {
    for _ in 0..runs / 10 {
        call();
    }
    let mut took: Vec<f64> = (0..runs)
        .map(|_| {
            let at = Instant::now();
            call();
            at.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    took.sort_by(f64::total_cmp);
    (took[runs / 2], took[runs * 99 / 100])
}

/// The secret check and the body read into the tool's request type (every tool pays this;
/// the tools other than the booking two then only do their reads and writes).
fn checked_body<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> T {
    authorize_tool(Some(SECRET), headers).unwrap();
    read_tool_body::<T>(body).unwrap().request
}

fn bench(c: &mut Criterion) {
    let tenant = demo();
    let now: Timestamp = "2026-11-23T07:00:00Z".parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(TOOL_SECRET_HEADER, HeaderValue::from_static(SECRET));
    let check_body = br#"{"service": "boiler service", "date": "2026-12-02", "time_of_day": "afternoon", "caller_phone": "+447911123456", "conversation_id": "conv_0201k7bq9w5hf3srd1y7a4mzq6ke"}"#;

    let check_availability = |records: &[BookingRecord]| {
        let req: CheckAvailability = checked_body(&headers, check_body);
        let b = bookable(&tenant).unwrap();
        let asked = availability::understand(&tenant, &req).unwrap().unwrap();
        let occupied: Vec<_> = records
            .iter()
            .filter_map(|r| as_occupied(r, b.rules.slot_minutes))
            .collect();
        let answer = availability::offer(&b, &asked, &occupied, now);
        serde_json::to_vec(&answer.body).unwrap()
    };
    let create_booking = |records: &[BookingRecord], body: &[u8]| {
        let req: CreateBooking = checked_body(&headers, body);
        let b = bookable(&tenant).unwrap();
        let v = booking::validate(&b, &req).unwrap().unwrap();
        let id = derived_id("bk", &["demo", &v.key]);
        let occupied: Vec<_> = records
            .iter()
            .filter_map(|r| as_occupied(r, b.rules.slot_minutes))
            .collect();
        let candidates = booking::plan(&b, &v, &occupied, now, &id, "demo").unwrap();
        serde_json::to_vec(&booking::confirmed(&b, &candidates[0])).unwrap()
    };

    let mut table = Vec::new();
    for n in [100, 1000] {
        let records = stored_bookings(now, n);
        let answer: serde_json::Value =
            serde_json::from_slice(&check_availability(&records)).unwrap();
        println!(
            "check_availability with {n} bookings answers: {}",
            answer["say"]
        );
        let start = answer["slots"][0]["start"].as_str().unwrap().to_string();
        let create_body = format!(
            r#"{{"service": "boiler_service", "start": "{start}", "customer_name": "Maria Lopez", "caller_phone": "+447911123456", "conversation_id": "conv_0201k7bq9w5hf3srd1y7a4mzq6ke"}}"#
        );
        let answer: serde_json::Value =
            serde_json::from_slice(&create_booking(&records, create_body.as_bytes())).unwrap();
        println!(
            "create_booking with {n} bookings answers: {}",
            answer["say"]
        );

        let mut group = c.benchmark_group(format!("tool handler without I/O, {n} bookings"));
        group.bench_function("check_availability", |b| {
            b.iter(|| check_availability(&records))
        });
        group.bench_function("create_booking", |b| {
            b.iter(|| create_booking(&records, create_body.as_bytes()))
        });
        group.finish();

        // Where check_availability's time goes.
        let b = bookable(&tenant).unwrap();
        let req: CheckAvailability = checked_body(&headers, check_body);
        let asked = availability::understand(&tenant, &req).unwrap().unwrap();
        let occupied: Vec<_> = records
            .iter()
            .filter_map(|r| as_occupied(r, b.rules.slot_minutes))
            .collect();
        let mut group = c.benchmark_group("check_availability step by step");
        group.bench_with_input(BenchmarkId::new("secret and body", n), &n, |bch, _| {
            bch.iter(|| checked_body::<CheckAvailability>(&headers, check_body))
        });
        group.bench_with_input(BenchmarkId::new("bookings as occupied", n), &n, |bch, _| {
            bch.iter(|| {
                records
                    .iter()
                    .filter_map(|r| as_occupied(r, b.rules.slot_minutes))
                    .count()
            })
        });
        group.bench_with_input(BenchmarkId::new("offer", n), &n, |bch, _| {
            bch.iter(|| availability::offer(&b, &asked, &occupied, now))
        });
        group.finish();

        table.push((
            format!("check_availability, {n} bookings"),
            percentiles(5000, || {
                std::hint::black_box(check_availability(&records));
            }),
        ));
        table.push((
            format!("create_booking, {n} bookings"),
            percentiles(5000, || {
                std::hint::black_box(create_booking(&records, create_body.as_bytes()));
            }),
        ));
    }

    // The other tools: the secret check and their sample body read and validated.
    macro_rules! simple {
        ($($function:literal => $request:ty),* $(,)?) => {$(
            let body = sample_body($function);
            let name = $function.replace('-', "_");
            c.bench_function(&format!("{name}: secret and body"), |b| {
                b.iter(|| checked_body::<$request>(&headers, &body))
            });
            table.push((
                name,
                percentiles(5000, || {
                    std::hint::black_box(checked_body::<$request>(&headers, &body));
                }),
            ));
        )*};
    }
    simple!(
        "conversation-init" => ConversationInit,
        "update-booking" => UpdateBooking,
        "upsert-contact" => UpsertContact,
        "capture-lead" => CaptureLead,
        "dispatch-lead" => DispatchLead,
        "escalation-target" => EscalationTarget,
        "log-call" => LogCall,
    );

    println!(
        "\nTool handler overhead without I/O, 5,000 calls each timed alone (target p99 < 1 ms):"
    );
    println!("{:<40}{:>12}{:>12}", "tool", "p50 µs", "p99 µs");
    for (name, (p50, p99)) in &table {
        let mark = if *p99 < 1000.0 { "" } else { "  MISSES 1 ms" };
        println!("{name:<40}{p50:>12.1}{p99:>12.1}{mark}");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
