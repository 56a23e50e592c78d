//! Operating a business: calls whose webhook never came are back-filled from the ElevenLabs
//! API (the scheduled reconciliation and `frontdesk backfill`), personal data is masked where
//! the business asks and records expire with its retention, and a full run logs no personal
//! data.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use frontdesk_blackbox::*;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

const RECORDED: &str = "conv_0201k7bq9w5hf3srd1y7a4mzq6ke";
const MISSED: &str = "conv_7701k9missedwebhook00000000ab";
const RUNNING: &str = "conv_8801k9stillrunning000000000cd";

/// A conversation as `GET /v1/convai/conversations/{id}` returns it: the webhook's `data`.
fn conversation(id: &str, caller: &str, name: &str) -> Value {
    let mut v: Value = serde_json::from_slice(&sample("post_call_transcription.json")).unwrap();
    let mut data = v["data"].take();
    data["conversation_id"] = json!(id);
    data["metadata"]["phone_call"]["external_number"] = json!(caller);
    data["analysis"]["data_collection_results"]["caller_name"]["value"] = json!(name);
    data
}

fn summary(id: &str, status: &str, ended_secs_ago: i64, now: jiff::Timestamp) -> Value {
    json!({
        "agent_id": "agent_4501k7bq2xm9fexv0c3hjz8r6tne", "conversation_id": id,
        "start_time_unix_secs": now.as_second() - ended_secs_ago - 120, "call_duration_secs": 120,
        "message_count": 12, "status": status, "call_successful": "success", "direction": "inbound",
    })
}

/// ElevenLabs lists three calls of the last hours: one recorded, one whose webhook never came,
/// one still running; it serves the missing one's conversation exactly once.
async fn elevenlabs_lists_three_calls(app: &TestApp) {
    let now = app.now();
    Mock::given(method("GET"))
        .and(path("/v1/convai/conversations"))
        .and(header("xi-api-key", "xi-test-key"))
        .and(query_param("page_size", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "conversations": [
                summary(RUNNING, "in-progress", -60, now),
                summary(MISSED, "done", 1800, now),
                summary(RECORDED, "done", 3600, now),
            ],
            "next_cursor": null, "has_more": false,
        })))
        .mount(&app.elevenlabs)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/convai/conversations/{MISSED}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(conversation(
            MISSED,
            "+447400123404",
            "Ingrid Vasquez",
        )))
        .expect(1)
        .mount(&app.elevenlabs)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/convai/conversations/{RECORDED}")))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&app.elevenlabs)
        .await;
}

/// A stack with an API key that recorded the sample call by webhook; ElevenLabs lists it with
/// a call whose webhook never came and one still running.
async fn one_call_recorded_and_three_listed() -> TestApp {
    let app = spawn_app_with(with_elevenlabs_key()).await;
    app.mount_twilio(twilio_ok()).await;
    let delivered = app.deliver(&sample("post_call_transcription.json")).await;
    assert_eq!(delivered.status(), 200);
    app.drain_queue().await;
    elevenlabs_lists_three_calls(&app).await;
    app
}

fn with_elevenlabs_key() -> Options {
    Options {
        elevenlabs_api_key: true,
        ..Options::default()
    }
}

/// Every item of the table, sorted, as text: to see that nothing was written.
async fn table_dump(app: &TestApp) -> Vec<String> {
    let mut items: Vec<String> = app
        .items()
        .await
        .into_iter()
        .map(|i| canonical(&AttributeValue::M(i)))
        .collect();
    items.sort();
    items
}

/// An attribute as text with its maps' keys in order (DynamoDB's maps have none).
fn canonical(v: &AttributeValue) -> String {
    match v {
        AttributeValue::M(m) => {
            let mut pairs: Vec<(&String, String)> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            pairs.sort();
            format!("{pairs:?}")
        }
        AttributeValue::L(l) => format!("{:?}", l.iter().map(canonical).collect::<Vec<_>>()),
        AttributeValue::Ss(s) => {
            let mut s = s.clone();
            s.sort();
            format!("Ss{s:?}")
        }
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn a_call_whose_webhook_never_came_is_processed_once_and_the_rest_are_skipped() {
    let app = one_call_recorded_and_three_listed().await;
    let since = app.now() - jiff::SignedDuration::from_hours(6);
    // Its audio webhook came (the transcript's did not): the audio alone is not a record.
    let audio = sample_with("post_call_audio.json", |v| {
        v["data"]["conversation_id"] = json!(MISSED);
    });
    assert_eq!(app.deliver(&audio).await.status(), 200);

    let report = frontdesk::reconcile::run(&app.deps, since, None)
        .await
        .unwrap();
    assert_eq!(report.listed, 3);
    assert_eq!(report.processed, vec![MISSED.to_string()]);
    assert_eq!(report.already_recorded, 1, "{report:?}");
    assert_eq!(
        report.not_ready, 1,
        "the running call waits for its webhook"
    );
    app.drain_queue().await;
    let calls = call_records(&app, MISSED).await;
    assert_eq!(calls.len(), 1, "the missed call now has its record");
    assert_eq!(attr(&calls[0], "caller").as_deref(), Some("+447400123404"));
    let texted: Vec<String> = app
        .texts_sent()
        .await
        .into_iter()
        .map(|t| t["To"].clone())
        .collect();
    assert!(
        texted.contains(&"+447400123404".to_string()),
        "the caller got their text: {texted:?}"
    );

    // The next run finds everything recorded: it reads, and writes nothing at all.
    let before = table_dump(&app).await;
    let objects = app.object_keys().await;
    let again = frontdesk::reconcile::run(&app.deps, since, None)
        .await
        .unwrap();
    assert!(again.processed.is_empty(), "{again:?}");
    assert_eq!(again.already_recorded, 2);
    let after = table_dump(&app).await;
    let changed: Vec<String> = after
        .iter()
        .filter(|i| !before.contains(i))
        .map(|i| i.chars().take(400).collect())
        .collect();
    assert!(
        changed.is_empty() && after.len() == before.len(),
        "a skipped call writes nothing: {changed:?}"
    );
    assert_eq!(app.object_keys().await, objects);
    assert_eq!(app.queued().await, 0);
    app.elevenlabs.verify().await;
}

#[tokio::test]
async fn reconciliation_without_an_api_key_says_so_and_touches_nothing() {
    let app = spawn_app().await;
    let before = table_dump(&app).await;
    let report = frontdesk::reconcile::run(&app.deps, app.now(), None)
        .await
        .unwrap();
    assert_eq!(report.skipped, Some("no_api_key"));
    assert_eq!(table_dump(&app).await, before);
}

#[tokio::test]
async fn the_backfill_command_runs_the_same_reconciliation_against_the_stack() {
    let app = one_call_recorded_and_three_listed().await;
    let r = &app.resources;
    let endpoint = app.sdk.endpoint_url().unwrap().to_string();
    // The demo folder alone (no samconfig.toml beside it): the stack is the environment's.
    let prompts = copy_of_demo();
    let run = || {
        std::process::Command::new(frontdesk_binary())
            .args([
                "--prompts",
                prompts.to_str().unwrap(),
                "backfill",
                "demo",
                "--since",
                "6h",
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs([
                ("AWS_ENDPOINT_URL", endpoint.as_str()),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_REGION", "eu-west-2"),
                ("FRONTDESK_TABLE", r.table.as_str()),
                ("FRONTDESK_BUCKET", r.bucket.as_str()),
                ("FRONTDESK_RETRY_QUEUE_URL", r.retry_queue_url.as_str()),
                ("FRONTDESK_EVENT_BUS", r.event_bus.as_str()),
                ("FRONTDESK_SCHEDULE_GROUP", r.schedule_group.as_str()),
                ("FRONTDESK_SCHEDULE_TARGET_ARN", r.retry_queue_arn.as_str()),
                (
                    "FRONTDESK_SCHEDULER_ROLE_ARN",
                    r.scheduler_role_arn.as_str(),
                ),
                ("ELEVENLABS_API_KEY", "xi-test-key"),
                ("ELEVENLABS_API_BASE_URL", &app.elevenlabs.uri()),
                ("TWILIO_API_BASE_URL", &app.twilio.uri()),
                ("TWILIO_ACCOUNT_SID", TWILIO_SID),
                ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
            ])
            .output()
            .expect("run frontdesk")
    };
    let first = run();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains("3 listed, 1 processed, 1 already recorded, 1 not finished, 0 failed"),
        "{stdout}"
    );
    assert!(stdout.contains(MISSED), "{stdout}");
    let second = run();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        stdout.contains("0 processed, 2 already recorded"),
        "{stdout}"
    );
    assert_eq!(call_records(&app, MISSED).await.len(), 1);
    app.elevenlabs.verify().await;
}

/// A prompts folder in a fresh temporary directory holding a copy of prompts/demo.
fn copy_of_demo() -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!(
        "frontdesk-operating-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    ));
    let target = root.join("prompts/demo");
    copy_dir(&workspace().join("prompts/demo"), &target);
    root.join("prompts")
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

/// target/debug/frontdesk, built by `make test`'s build step.
fn frontdesk_binary() -> std::path::PathBuf {
    let bin = workspace().join("target/debug/frontdesk");
    assert!(
        bin.exists(),
        "run make test (it builds target/debug/frontdesk)"
    );
    bin
}

/// The call record of a conversation (none, or one).
async fn call_records(app: &TestApp, conversation: &str) -> Vec<HashMap<String, AttributeValue>> {
    app.records_of("CALL")
        .await
        .into_iter()
        .filter(|i| attr(i, "conversation_id").as_deref() == Some(conversation))
        .collect()
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

const PERSONAL: &str = "Sure. My date of birth is 12/03/1985, card 4111 1111 1111 1111, email maria@example.com, mobile 07911 123456.";

#[tokio::test]
async fn reviewers_see_personal_data_masked_when_the_business_asks_and_records_expire() {
    let app = spawn_app_with(Options {
        business_toml: Some(Box::new(|t| {
            t.replace("redact = false", "redact = true")
                .replace("retention_days = 365", "retention_days = 90")
        })),
        ..Options::default()
    })
    .await;
    app.mount_twilio(twilio_ok()).await;
    let conversation = "conv_5501k9privacy0000000000000001";
    let body = transcript_call(
        conversation,
        &[
            ("agent", OPENING),
            ("user", "I need a boiler service."),
            ("agent", "Can I take your date of birth?"),
            ("user", PERSONAL),
            ("agent", "tool:capture_lead"),
            ("agent", "ok:capture_lead"),
            ("agent", "ClearFlow Drains are on 020 7946 0010, ring them."),
        ],
        "follow_up",
        &[],
    );
    assert_eq!(app.deliver(&body).await.status(), 200);
    app.drain_queue().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let scan = frontdesk::quality::scan::run(&app.deps, deadline, None)
        .await
        .unwrap();
    let raised: Vec<&str> = scan
        .flags_raised
        .iter()
        .map(|f| f.rule_id.as_str())
        .collect();
    assert!(raised.contains(&"asked-date-of-birth"), "{raised:?}");
    // The stored transcript is masked; the rules still read what was said.
    assert!(
        raised.contains(&"partner-details-before-dispatch"),
        "a partner's number given out is found under redaction too: {raised:?}"
    );
    for flag in &scan.flags_raised {
        assert!(
            !flag.excerpt.contains("7946 0010") && !flag.excerpt.contains("1985"),
            "{}",
            flag.excerpt
        );
    }

    let (status, view) = app
        .qa(
            "GET",
            &format!("/qa/calls/{conversation}"),
            Some(&app.reviewer_token()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{view}");
    let said = view["transcript"][3]["message"].as_str().unwrap();
    assert_eq!(
        said,
        "Sure. My date of birth is [date of birth], card [card], email [email], mobile [phone]."
    );
    assert_eq!(view["transcript_redacted"], true);
    assert_eq!(view["call"]["caller"], "[phone]");
    let text = view.to_string();
    for secret in ["1985", "4111", "maria@example.com", "07911", "+14155550123"] {
        assert!(
            !text.contains(secret),
            "the reviewer sees {secret:?}: {text}"
        );
    }
    let (_, queue) = app
        .qa("GET", "/qa/flags", Some(&app.reviewer_token()), None)
        .await;
    assert!(!queue.to_string().contains("1985"), "{queue}");
    let flag_id = queue["flags"][0]["flag_id"].as_str().unwrap().to_string();
    let (status, resolved) = app
        .qa(
            "POST",
            &format!("/qa/flags/{flag_id}"),
            Some(&app.reviewer_token()),
            Some(&json!({"status": "confirmed", "note": "coaching"})),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    let shown = resolved.to_string();
    assert!(
        !shown.contains("1985") && !shown.contains("7946 0010"),
        "{shown}"
    );

    // Retention: the call, its messages and its flags expire 90 days on (DynamoDB's TTL).
    let in_90_days = app.now().as_second() + 90 * 86_400;
    let call = &call_records(&app, conversation).await[0];
    let expires = number(call, "expires_at").expect("the call record has a TTL");
    assert!(
        (in_90_days - 60..=in_90_days + 60).contains(&expires),
        "{expires} vs {in_90_days}"
    );
    let items = app.items().await;
    let messages: Vec<_> = items
        .iter()
        .filter(|i| attr(i, "SK").is_some_and(|sk| sk == "MSG"))
        .collect();
    assert!(!messages.is_empty());
    for m in &messages {
        let e = number(m, "expires_at").expect("every message has a TTL");
        assert!(e >= in_90_days - 60, "{e}");
    }
    let flags: Vec<_> = items
        .iter()
        .filter(|i| attr(i, "SK").is_some_and(|sk| sk.starts_with("FLAG#")))
        .collect();
    assert!(!flags.is_empty());
    for f in &flags {
        assert_eq!(
            number(f, "expires_at"),
            Some(expires),
            "a flag lives as long as its call"
        );
    }
}

#[tokio::test]
async fn without_redaction_reviewers_see_what_was_said() {
    let app = spawn_app().await;
    app.mount_twilio(twilio_ok()).await;
    let conversation = "conv_5501k9privacy0000000000000002";
    let body = transcript_call(
        conversation,
        &[("agent", OPENING), ("user", PERSONAL)],
        "follow_up",
        &[],
    );
    app.deliver(&body).await;
    app.drain_queue().await;
    let (_, view) = app
        .qa(
            "GET",
            &format!("/qa/calls/{conversation}"),
            Some(&app.reviewer_token()),
            None,
        )
        .await;
    assert_eq!(view["transcript"][1]["message"], PERSONAL);
    assert_eq!(view["transcript_redacted"], false);
}

#[tokio::test]
async fn a_full_run_logs_no_phone_number_name_or_words_of_a_caller() {
    let app = spawn_app_with(with_elevenlabs_key()).await;
    app.mount_twilio(twilio_ok()).await;
    app.clock.set("2026-11-23T09:00:00Z".parse().unwrap());
    // A call by webhook, a missed call, and one only the reconciliation finds.
    app.deliver(&sample("post_call_transcription.json")).await;
    app.deliver(&sample("call_initiation_failure.json")).await;
    elevenlabs_lists_three_calls(&app).await;
    // The agent's tools during a call.
    let caller = "+447400123401";
    let (status, init) = app
        .post_with_secret(
            "/webhooks/elevenlabs/conversation-init",
            &app.tool_secret,
            &json!({"caller_id": caller, "agent_id": "agent_4501k7bq2xm9fexv0c3hjz8r6tne", "called_number": "+442079460000", "call_sid": "CA5f0d6c2a9e8b4c71a3d2e1f0b9c8a7d6"}),
        )
        .await;
    assert_eq!(status, 200, "{init}");
    let slot = app.first_slot("boiler service", "2026-11-25").await;
    let conv = "conv_6601k9fullrun000000000000000a";
    for (tool, body) in [
        (
            "create_booking",
            json!({"service": "boiler service", "start": slot["start"], "customer_name": "Zara Quigley", "caller_phone": caller, "conversation_id": conv, "notes": "Side gate code is 4521, dog called Biscuit"}),
        ),
        (
            "upsert_contact",
            json!({"caller_phone": caller, "name": "Zara Quigley", "email": "zara.quigley@example.com", "address": "17 Lonsdale Square"}),
        ),
        (
            "capture_lead",
            json!({"service": "leak repair", "urgency": "urgent", "summary": "Water through the ceiling above Zara's kitchen", "area": "N7 6AB", "caller_phone": caller, "conversation_id": conv}),
        ),
        (
            "dispatch_lead",
            json!({"caller_phone": caller, "conversation_id": conv}),
        ),
        (
            "escalation_target",
            json!({"caller_phone": caller, "conversation_id": conv, "reason": "Zara is upset about the leak"}),
        ),
        (
            "log_call",
            json!({"outcome": "booked", "summary": "Zara Quigley booked a boiler service", "conversation_id": conv, "caller_phone": caller}),
        ),
    ] {
        let (status, answer) = app.tool(tool, &body).await;
        assert!(status < 500, "{tool}: {answer}");
    }
    // A text answered by the LLM, and a website enquiry.
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
            "content": [{"type": "text", "text": "Hi Olwen, we can look at the dripping tap on Wednesday."}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 10},
        })))
        .mount(&app.llm)
        .await;
    assert_eq!(
        app.text(
            &sid(1),
            "+447400123402",
            "Hi, it's Olwen Pritchard, my tap is dripping"
        )
        .await,
        200
    );
    let form = "name=Desmond+Achterberg&phone=07400+123403&email=desmond%40example.com&message=Radiator+cold+in+the+nursery";
    let signature =
        frontdesk::messaging::web_form::sign(WEB_FORM_SECRET.as_bytes(), form.as_bytes());
    let response = app
        .http
        .post(format!("{}/webhooks/web-form", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-frontdesk-signature", signature)
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app.drain_queue().await;
    // The scheduled work: reminders fired, the scan, the reconciliation, the sweep.
    app.clock.set("2026-11-24T17:00:00Z".parse().unwrap());
    app.fire_due_schedules().await;
    app.drain_queue().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    frontdesk::quality::scan::run(&app.deps, deadline, None)
        .await
        .unwrap();
    frontdesk::reconcile::run(
        &app.deps,
        app.now() - jiff::SignedDuration::from_hours(48),
        None,
    )
    .await
    .unwrap();
    frontdesk::outbox::sweep(&app.deps).await.unwrap();
    app.drain_queue().await;
    // What a reviewer opens.
    let token = app.reviewer_token();
    app.qa("GET", "/qa/flags", Some(&token), None).await;
    app.qa(
        "GET",
        "/qa/calls/conv_0201k7bq9w5hf3srd1y7a4mzq6ke",
        Some(&token),
        None,
    )
    .await;

    let logs = logs();
    assert!(
        logs.contains("reconciliation finished") && logs.contains("webhook processed"),
        "logging works"
    );
    for personal in [
        // The sample call's caller and the owner.
        "+14155550123",
        "4155550123",
        "Maria",
        "Lopez",
        "+442079460001",
        // The tools' caller.
        "+447400123401",
        "7400123401",
        "7400 123401",
        "Zara",
        "Quigley",
        "zara.quigley",
        "Lonsdale",
        "Biscuit",
        "4521",
        "ceiling above",
        // The texter, the website's visitor, the back-filled caller.
        "+447400123402",
        "7400123402",
        "Olwen",
        "Pritchard",
        "dripping",
        "+447400123403",
        "7400 123403",
        "Desmond",
        "Achterberg",
        "desmond@",
        "nursery",
        "+447400123404",
        "7400123404",
        "Ingrid",
        "Vasquez",
        // Secrets.
        WEBHOOK_SECRET,
        TWILIO_TOKEN,
        TOOL_SECRET,
        "xi-test-key",
        "sk-test-llm",
    ] {
        assert!(!logs.contains(personal), "the logs contain {personal:?}");
    }
}
