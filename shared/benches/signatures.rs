//! `cargo bench -p frontdesk --bench signatures`: the checks every request passes before
//! anything else: ElevenLabs' HMAC-SHA256 over the raw webhook body (a short call's and a
//! two-hour call's), Twilio's HMAC-SHA1 over the URL and the form (an inbound text's ~20
//! parameters and a 100-parameter form), and the tool secret's constant-time comparison.

use axum::http::{HeaderMap, HeaderValue};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use frontdesk::elevenlabs::signature as elevenlabs;
use frontdesk::http::{authorize_tool, TOOL_SECRET_HEADER};
use frontdesk::twilio::signature::{self as twilio, Signed};
use jiff::Timestamp;

const URL: &str = "https://abc123.execute-api.eu-west-2.amazonaws.com/twilio/messaging";
const TOKEN: &[u8] = b"twilio-bench-auth-token-0123456";

/// A form like Twilio's inbound-message webhook, padded with further parameters to `n`.
fn twilio_form(n: usize) -> Vec<u8> {
    let mut params: Vec<(String, String)> = [
        ("ToCountry", "GB"),
        ("SmsMessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("NumMedia", "0"),
        ("ToCity", ""),
        ("FromZip", ""),
        ("SmsSid", "SM0123456789abcdef0123456789abcdef"),
        ("FromState", ""),
        ("SmsStatus", "received"),
        ("FromCity", ""),
        (
            "Body",
            "Hi, can someone come and look at my boiler tomorrow morning?",
        ),
        ("FromCountry", "GB"),
        ("To", "+447700900123"),
        ("ToZip", ""),
        ("NumSegments", "1"),
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("AccountSid", "AC11111111111111111111111111111111"),
        ("From", "+447700900456"),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for i in params.len()..n {
        params.push((format!("Extra{i}"), format!("value {i}")));
    }
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish()
        .into_bytes()
}

fn bench(c: &mut Criterion) {
    let now = Timestamp::now();
    let secret = b"wsec_bench_0123456789abcdef";
    let mut group = c.benchmark_group("ElevenLabs webhook signature");
    // A ten-minute call's webhook is ~0.05 MB, a two-hour call's ~0.5 MB (benches/post_call.rs);
    // 1.2 MB stands for a long call heavy with tool calls.
    for size in [4_000usize, 100_000, 1_200_000] {
        let body = vec![b'x'; size];
        let header = elevenlabs::sign(&body, secret, now);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{size} bytes")),
            &body,
            |b, body| b.iter(|| elevenlabs::verify(body, Some(&header), secret, now).unwrap()),
        );
    }
    group.finish();

    let mut group = c.benchmark_group("Twilio request signature");
    for n in [18usize, 100] {
        let body = twilio_form(n);
        let header = twilio::sign(TOKEN, URL, &twilio::form_params(&body));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{n} parameters")),
            &body,
            |b, body| {
                b.iter(|| twilio::verify(TOKEN, URL, Signed::Form(body), Some(&header)).unwrap())
            },
        );
    }
    group.finish();

    let mut headers = HeaderMap::new();
    headers.insert(
        TOOL_SECRET_HEADER,
        HeaderValue::from_static("bench-tool-secret-0123456789"),
    );
    c.bench_function("tool secret check", |b| {
        b.iter(|| authorize_tool(Some("bench-tool-secret-0123456789"), &headers).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
