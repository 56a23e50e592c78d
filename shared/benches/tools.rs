//! `cargo bench -p frontdesk --bench tools`: what a tool call costs us beyond its I/O (the
//! DynamoDB reads and writes, measured elsewhere): the secret check, reading and validating the
//! body, turning 1,000 stored bookings into the engine's terms, deciding, and writing the
//! answer. Target: < 1 ms per call.

use axum::http::{HeaderMap, HeaderValue};
use criterion::{criterion_group, criterion_main, Criterion};
use frontdesk::booking::calendar::{as_occupied, bookable};
use frontdesk::http::{authorize_tool, read_tool_body, TOOL_SECRET_HEADER};
use frontdesk::ids::derived_id;
use frontdesk::store::bookings::{BookingRecord, BookingStatus};
use frontdesk::tenant::TenantConfig;
use frontdesk::tools::availability::{self, CheckAvailability};
use frontdesk::tools::booking::{self, CreateBooking};
use jiff::{SignedDuration, Timestamp};

const SECRET: &str = "bench-tool-secret-0123456789";

fn demo() -> TenantConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../prompts/demo/business.toml");
    TenantConfig::from_toml(&std::fs::read_to_string(path).unwrap(), path).unwrap()
}

/// 1,000 stored bookings over the next 30 days, on both technicians.
fn stored_bookings(now: Timestamp) -> Vec<BookingRecord> {
    (0..1000)
        .map(|i: i64| {
            let start = now
                .checked_add(SignedDuration::from_mins(
                    ((i * 43) % (30 * 24 * 60)) / 30 * 30,
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

fn bench(c: &mut Criterion) {
    let tenant = demo();
    let now: Timestamp = "2026-11-23T07:00:00Z".parse().unwrap();
    let records = stored_bookings(now);
    let mut headers = HeaderMap::new();
    headers.insert(TOOL_SECRET_HEADER, HeaderValue::from_static(SECRET));
    let check_body = br#"{"service": "boiler service", "date": "2026-12-02", "time_of_day": "afternoon", "caller_phone": "+447911123456", "conversation_id": "conv_0201k7bq9w5hf3srd1y7a4mzq6ke"}"#;

    let check_availability = || {
        authorize_tool(Some(SECRET), &headers).unwrap();
        let req = read_tool_body::<CheckAvailability>(check_body)
            .unwrap()
            .request;
        let b = bookable(&tenant).unwrap();
        let asked = availability::understand(&tenant, &req).unwrap().unwrap();
        let occupied: Vec<_> = records
            .iter()
            .filter_map(|r| as_occupied(r, b.rules.slot_minutes))
            .collect();
        let answer = availability::offer(&b, &asked, &occupied, now);
        serde_json::to_vec(&answer.body).unwrap()
    };
    let answer: serde_json::Value = serde_json::from_slice(&check_availability()).unwrap();
    println!("check_availability answers: {}", answer["say"]);
    let start = answer["slots"][0]["start"].as_str().unwrap().to_string();
    let create_body = format!(
        r#"{{"service": "boiler_service", "start": "{start}", "customer_name": "Maria Lopez", "caller_phone": "+447911123456", "conversation_id": "conv_0201k7bq9w5hf3srd1y7a4mzq6ke"}}"#
    );

    let create_booking = || {
        authorize_tool(Some(SECRET), &headers).unwrap();
        let req = read_tool_body::<CreateBooking>(create_body.as_bytes())
            .unwrap()
            .request;
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
    let answer: serde_json::Value = serde_json::from_slice(&create_booking()).unwrap();
    println!("create_booking answers: {}", answer["say"]);

    c.bench_function(
        "check_availability handler without I/O (1,000 bookings, 30 days)",
        |b| b.iter(check_availability),
    );
    c.bench_function("create_booking handler without I/O (1,000 bookings)", |b| {
        b.iter(create_booking)
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
