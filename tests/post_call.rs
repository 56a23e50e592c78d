//! POST /webhooks/elevenlabs/post-call, black-box: real handlers over HTTP, moto as AWS,
//! wiremock as Twilio and ElevenLabs.

use frontdesk_blackbox::frontdesk::http::routes;
use frontdesk_blackbox::frontdesk::local::template::Template;
use frontdesk_blackbox::frontdesk::outbox::{self, Audience, Dispatch, NewMessage};
use frontdesk_blackbox::frontdesk::phone::PhoneNumber;
use frontdesk_blackbox::frontdesk::store::messages::MessageState;
use frontdesk_blackbox::*;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

const CALLER: &str = "+14155550123";
const CONVERSATION: &str = "conv_0201k7bq9w5hf3srd1y7a4mzq6ke";

/// The documented sample call, with the urgency the test wants (only "urgent" is hot).
fn call_with_urgency(urgency: &str) -> Vec<u8> {
    sample_with("post_call_transcription.json", |v| {
        v["data"]["analysis"]["data_collection_results"]["urgency"]["value"] = json!(urgency);
    })
}

fn call_from(conversation: &str, caller: &str, urgency: &str) -> Vec<u8> {
    sample_with("post_call_transcription.json", |v| {
        v["data"]["conversation_id"] = json!(conversation);
        v["data"]["metadata"]["phone_call"]["external_number"] = json!(caller);
        v["data"]["analysis"]["data_collection_results"]["urgency"]["value"] = json!(urgency);
    })
}

async fn assert_no_trace(app: &TestApp) {
    assert!(
        app.records().await.is_empty(),
        "records written: {:?}",
        app.records().await
    );
    assert!(
        app.object_keys().await.is_empty(),
        "objects written: {:?}",
        app.object_keys().await
    );
    assert_eq!(app.queued().await, 0, "jobs queued");
    assert!(app.texts_sent().await.is_empty(), "texts sent");
}

#[tokio::test]
async fn the_official_test_vector_is_accepted_with_the_clock_at_its_time() {
    let app = spawn_app().await;
    app.clock
        .set(jiff::Timestamp::from_second(1_760_000_060).unwrap());
    let body = br#"{"type":"post_call_audio","event_timestamp":1760000000,"data":{"agent_id":"agent_01","conversation_id":"conv_01","full_audio":"SUQzBAAAAAAAAP/jGMA="}}"#;
    let header = "t=1760000000,v0=84c24442037b5490664d21b21b45368c7133fba0fae6ee402159463b4b2c09aa";

    let response = app.post_webhook(body, Some(header)).await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "accepted"
    );
    let audio = app.object("audio/demo/conv_01.mp3").await;
    assert_eq!(&audio[..3], b"ID3", "the decoded MP3 is stored");
    let calls = app.records_of("CALL").await;
    assert_eq!(calls.len(), 1);
    assert_eq!(
        attr(&calls[0], "audio_key").as_deref(),
        Some("audio/demo/conv_01.mp3")
    );
}

#[tokio::test]
async fn bad_signatures_get_401_and_leave_no_trace() {
    let app = spawn_app().await;
    app.mount_twilio(twilio_ok()).await;
    let body = call_with_urgency("normal");
    let now = app.now().as_second();
    let sign_at = |secret: &[u8], at: i64| {
        frontdesk_blackbox::frontdesk::elevenlabs::signature::sign(
            &body,
            secret,
            jiff::Timestamp::from_second(at).unwrap(),
        )
    };
    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'M').unwrap(); // "Maria" -> "Naria"
    tampered[at] = b'N';
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        (
            "tampered body",
            tampered,
            Some(sign_at(WEBHOOK_SECRET.as_bytes(), now)),
        ),
        (
            "wrong secret",
            body.clone(),
            Some(sign_at(b"wsec_someone_else", now)),
        ),
        (
            "stale (31 minutes)",
            body.clone(),
            Some(sign_at(WEBHOOK_SECRET.as_bytes(), now - 31 * 60)),
        ),
        (
            "future (10 minutes)",
            body.clone(),
            Some(sign_at(WEBHOOK_SECRET.as_bytes(), now + 10 * 60)),
        ),
        ("missing header", body.clone(), None),
        ("malformed header", body.clone(), Some("v0=deadbeef".into())),
        ("empty header", body.clone(), Some(String::new())),
    ];
    for (case, body, sig) in cases {
        let response = app.post_webhook(&body, sig.as_deref()).await;
        assert_eq!(response.status(), 401, "{case}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"], "invalid_signature", "{case}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}: a short reason"
        );
    }
    assert_no_trace(&app).await;
}

#[tokio::test]
async fn malformed_or_wrongly_typed_json_after_a_valid_signature_is_400_and_leaves_no_trace() {
    let app = spawn_app().await;
    app.mount_twilio(twilio_ok()).await;
    let bodies: Vec<Vec<u8>> = vec![
        b"{not json".to_vec(),
        b"".to_vec(),
        b"[]".to_vec(),
        br#"{"type":"post_call_transcription"}"#.to_vec(),
        br#"{"type":"post_call_transcription","data":{"agent_id":"a","conversation_id":5}}"#.to_vec(),
        br#"{"type":"post_call_transcription","data":{"agent_id":"a","conversation_id":"../../etc"}}"#.to_vec(),
        sample_with("post_call_transcription.json", |v| v["data"]["metadata"]["call_duration_secs"] = json!("long")),
        sample_with("post_call_transcription.json", |v| v["data"]["transcript"] = json!({"role": "agent"})),
        br#"{"type":"post_call_audio","data":{"agent_id":"a","conversation_id":"c","full_audio":"%%%"}}"#.to_vec(),
    ];
    for body in bodies {
        let response = app.deliver(&body).await;
        assert_eq!(response.status(), 400, "{}", String::from_utf8_lossy(&body));
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"], "bad_request");
    }
    assert_no_trace(&app).await;
}

#[tokio::test]
async fn a_signed_transcription_missing_what_the_call_record_needs_is_400_naming_it() {
    let app = spawn_app().await;
    app.mount_twilio(twilio_ok()).await;
    let cases = [
        (
            sample_with("post_call_transcription.json", |v| {
                v["data"].as_object_mut().unwrap().remove("metadata");
            }),
            "data.metadata",
        ),
        (
            sample_with("post_call_transcription.json", |v| {
                v["data"]["metadata"] = Value::Null;
            }),
            "data.metadata",
        ),
        (
            sample_with("post_call_transcription.json", |v| {
                v["data"]["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("start_time_unix_secs");
            }),
            "data.metadata.start_time_unix_secs",
        ),
    ];
    for (body, field) in cases {
        let response = app.deliver(&body).await;
        assert_eq!(response.status(), 400);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["field"], field, "{answer}");
        assert!(answer["message"].as_str().unwrap().starts_with(field));
    }
    // Nothing but (at most) the raw body: no record, contact, lead, text, event or job.
    assert_no_trace(&app).await;
    assert!(app.event_kinds().await.is_empty());
}

#[tokio::test]
async fn an_oversized_body_gets_413_and_leaves_no_trace() {
    let app = spawn_app_with(Options {
        max_body_bytes: Some(64 * 1024),
        ..Options::default()
    })
    .await;
    let body = sample_with("post_call_audio.json", |v| {
        v["data"]["full_audio"] = json!("A".repeat(100 * 1024))
    });
    let response = app.deliver(&body).await;
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "payload_too_large"
    );
    assert_no_trace(&app).await;
}

#[tokio::test]
async fn unknown_event_types_are_acknowledged_and_ignored() {
    let app = spawn_app().await;
    let body =
        br#"{"type":"voice_removal_notice","event_timestamp":1760000000,"data":{"voice_id":"v"}}"#;
    let response = app.deliver(body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "ignored");
    assert_no_trace(&app).await;
}

#[tokio::test]
async fn a_call_creates_its_record_transcript_contact_lead_text_and_events() {
    let app = spawn_app().await;
    app.mount_twilio(twilio_ok()).await;

    let response = app.deliver(&sample("post_call_transcription.json")).await;
    assert_eq!(response.status(), 200);
    app.drain_queue().await;

    let calls = app.records_of("CALL").await;
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(attr(call, "conversation_id").as_deref(), Some(CONVERSATION));
    assert_eq!(
        attr(call, "agent_id").as_deref(),
        Some("agent_4501k7bq2xm9fexv0c3hjz8r6tne")
    );
    assert_eq!(attr(call, "caller").as_deref(), Some(CALLER));
    assert_eq!(
        attr(call, "call_sid").as_deref(),
        Some("CA5f0d6c2a9e8b4c71a3d2e1f0b9c8a7d6")
    );
    assert_eq!(
        attr(call, "started_at").as_deref(),
        Some("2025-10-09T15:03:21Z")
    );
    assert_eq!(attr(call, "duration_secs").as_deref(), Some("38"));
    assert_eq!(attr(call, "cost_credits").as_deref(), Some("412"));
    assert_eq!(attr(call, "call_successful").as_deref(), Some("success"));
    assert_eq!(attr(call, "disposition").as_deref(), Some("follow_up"));
    assert_eq!(attr(call, "status").as_deref(), Some("completed"));
    assert!(attr(call, "summary")
        .unwrap()
        .starts_with("Maria Lopez called"));
    let data = call["data_collection"].as_m().unwrap();
    assert_eq!(data["caller_name"].as_s().unwrap(), "Maria Lopez");
    let evaluation = call["evaluation"].as_m().unwrap();
    assert_eq!(
        evaluation["booked_or_routed"].as_m().unwrap()["result"]
            .as_s()
            .unwrap(),
        "success"
    );
    let tools: Vec<String> = call["tool_calls"]
        .as_l()
        .unwrap()
        .iter()
        .map(|t| t.as_m().unwrap()["tool"].as_s().unwrap().clone())
        .collect();
    assert_eq!(tools, ["check_availability", "end_call"]);

    let transcript: Value =
        serde_json::from_slice(&app.object(&attr(call, "transcript_key").unwrap()).await).unwrap();
    assert_eq!(transcript["transcript"].as_array().unwrap().len(), 10);

    let contacts = app.records_of("CONTACT").await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(attr(&contacts[0], "name").as_deref(), Some("Maria Lopez"));
    let leads = app.records_of("LEAD").await;
    assert_eq!(leads.len(), 1);
    assert_eq!(attr(&leads[0], "lead_id"), attr(call, "lead_id"));
    assert_eq!(attr(&leads[0], "hot").as_deref(), Some("true"));

    // The caller is told someone will follow up; the owner gets the hot lead.
    let texts = app.texts_sent().await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    let to_caller = texts
        .iter()
        .find(|t| t["To"] == CALLER)
        .expect("caller text");
    assert_eq!(to_caller["From"], "+442079460000");
    assert!(
        to_caller["Body"].starts_with(
            "Hi Maria, thanks for calling Northside Plumbing & Heating about cleaning."
        ),
        "{}",
        to_caller["Body"]
    );
    let to_owner = texts
        .iter()
        .find(|t| t["To"] == "+442079460001")
        .expect("owner text");
    assert!(
        to_owner["Body"].contains("HOT LEAD (urgent): Maria Lopez +1 415-555-0123"),
        "{}",
        to_owner["Body"]
    );

    let mut kinds = app.event_kinds().await;
    kinds.sort();
    assert_eq!(kinds, ["call.completed", "lead.created", "lead.hot"]);
}

#[tokio::test]
async fn ten_deliveries_of_one_event_make_one_record_and_one_text_each() {
    let app = spawn_app().await;
    // A hot lead: one text to the caller, one to the owner, never more.
    app.expect_texts(2, twilio_ok()).await;
    let body = call_with_urgency("urgent");

    // Five at once, then five one after another.
    let concurrent = (0..5).map(|_| app.deliver(&body));
    for response in futures_join(concurrent).await {
        assert_eq!(response.status(), 200);
    }
    for _ in 0..5 {
        let response = app.deliver(&body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.json::<Value>().await.unwrap()["status"],
            "duplicate"
        );
    }
    app.drain_queue().await;

    assert_eq!(app.records_of("CALL").await.len(), 1);
    assert_eq!(app.records_of("LEAD").await.len(), 1);
    assert_eq!(app.records_of("MSG").await.len(), 2);
    let texts = app.texts_sent().await;
    assert_eq!(texts.iter().filter(|t| t["To"] == CALLER).count(), 1);
    assert_eq!(
        texts.iter().filter(|t| t["To"] == "+442079460001").count(),
        1
    );
    assert_eq!(app.events_of("call.completed").await.len(), 1);
    assert_eq!(app.queued().await, 0);
    app.twilio.verify().await;
}

async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    join_all(futures.collect::<Vec<_>>()).await
}

#[tokio::test]
async fn twilio_rate_limit_then_outage_then_success_delivers_once_through_the_retry_queue() {
    let app = spawn_app().await;
    for (priority, response) in [
        (1u8, twilio_refuses(429, 20429)),
        (2, twilio_refuses(503, 20503)),
    ] {
        Mock::given(method("POST"))
            .and(path(messages_path()))
            .respond_with(response)
            .up_to_n_times(1)
            .with_priority(priority)
            .mount(&app.twilio)
            .await;
    }
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(twilio_ok())
        .with_priority(3)
        .mount(&app.twilio)
        .await;

    let response = app.deliver(&call_with_urgency("normal")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.texts_sent().await.len(), 1, "first attempt made inline");
    app.drain_queue().await;

    let texts = app.texts_sent().await;
    assert_eq!(texts.len(), 3, "429, 503, then 201");
    assert!(texts
        .iter()
        .all(|t| t["To"] == CALLER && t["Body"] == texts[0]["Body"]));
    let messages = app.records_of("MSG").await;
    assert_eq!(messages.len(), 1);
    assert_eq!(attr(&messages[0], "state").as_deref(), Some("sent"));
    assert_eq!(attr(&messages[0], "attempts").as_deref(), Some("3"));
    assert_eq!(
        attr(&messages[0], "twilio_sid").as_deref(),
        Some("SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    );
    assert_eq!(app.queued().await, 0);
    assert_eq!(app.dead_letters().await, 0);
}

#[tokio::test]
async fn an_unsubscribed_caller_is_not_retried_and_is_marked_opted_out() {
    let app = spawn_app().await;
    app.mount_twilio(twilio_refuses(400, 21610)).await;

    app.deliver(&call_with_urgency("normal")).await;
    app.drain_queue().await;

    assert_eq!(app.texts_sent().await.len(), 1, "21610 is never retried");
    let message = &app.records_of("MSG").await[0];
    assert_eq!(attr(message, "state").as_deref(), Some("failed"));
    assert_eq!(attr(message, "error_code").as_deref(), Some("21610"));
    let contact = &app.records_of("CONTACT").await[0];
    assert_eq!(attr(contact, "opted_out").as_deref(), Some("true"));

    // Their next call is not followed by a text at all.
    app.deliver(&call_from("conv_second_call_0001", CALLER, "normal"))
        .await;
    app.drain_queue().await;
    assert_eq!(app.texts_sent().await.len(), 1);
    let suppressed = app
        .records_of("MSG")
        .await
        .into_iter()
        .find(|m| attr(m, "conversation_id").as_deref() == Some("conv_second_call_0001"))
        .unwrap();
    assert_eq!(attr(&suppressed, "state").as_deref(), Some("suppressed"));
}

#[tokio::test]
async fn permanent_twilio_errors_are_recorded_not_retried() {
    for code in [21211u32, 21614] {
        let app = spawn_app().await;
        app.mount_twilio(twilio_refuses(400, code)).await;
        app.deliver(&call_with_urgency("normal")).await;
        app.drain_queue().await;
        assert_eq!(app.texts_sent().await.len(), 1, "{code}");
        let message = &app.records_of("MSG").await[0];
        assert_eq!(attr(message, "state").as_deref(), Some("failed"));
        assert_eq!(attr(message, "error_code"), Some(code.to_string()));
    }
}

#[tokio::test]
async fn a_dependency_failing_after_intake_is_processed_later_and_nothing_is_lost() {
    // No event bus yet: processing fails after the body is durable.
    let app = spawn_app_with(Options {
        create_event_bus: false,
        ..Options::default()
    })
    .await;
    app.mount_twilio(twilio_ok()).await;

    let response = app.deliver(&call_with_urgency("normal")).await;
    assert_eq!(response.status(), 200, "accepted once durable");
    assert!(app
        .object_keys()
        .await
        .iter()
        .any(|k| k.starts_with("raw/demo/")));
    assert!(app.queued().await >= 1, "a retry is queued");
    app.poll_queue_once().await; // still failing
    let inbox = app.records_of("INBOX#post_call_transcription").await;
    assert_ne!(attr(&inbox[0], "state").as_deref(), Some("done"));

    // The bus comes back.
    app.restore_event_bus().await;
    app.drain_queue().await;

    let inbox = app.records_of("INBOX#post_call_transcription").await;
    assert_eq!(attr(&inbox[0], "state").as_deref(), Some("done"));
    assert_eq!(attr(&inbox[0], "outcome").as_deref(), Some("completed"));
    assert_eq!(app.records_of("CALL").await.len(), 1);
    assert_eq!(
        app.texts_sent().await.len(),
        1,
        "the text went once, before the failure"
    );
    let mut published = app.event_kinds().await;
    published.sort();
    assert_eq!(published, ["call.completed", "lead.created"]);
    assert_eq!(app.queued().await, 0);
}

#[tokio::test]
async fn a_missed_call_texts_the_caller_back_and_alerts_the_owner() {
    let app = spawn_app().await;
    app.mount_twilio(twilio_ok()).await;

    let response = app.deliver(&sample("call_initiation_failure.json")).await;
    assert_eq!(response.status(), 200);
    app.drain_queue().await;

    let call = &app.records_of("CALL").await[0];
    assert_eq!(attr(call, "status").as_deref(), Some("initiation_failed"));
    assert_eq!(attr(call, "failure_reason").as_deref(), Some("no-answer"));
    let texts = app.texts_sent().await;
    assert_eq!(texts.len(), 2);
    let caller = texts.iter().find(|t| t["To"] == CALLER).unwrap();
    assert!(
        caller["Body"].starts_with("Sorry we missed your call to Northside Plumbing & Heating"),
        "{}",
        caller["Body"]
    );
    assert!(caller["Body"].contains("+44 20 7946 0000"));
    let owner = texts.iter().find(|t| t["To"] == "+442079460001").unwrap();
    assert!(owner["Body"].contains("+1 415-555-0123"));
    let kinds = app.event_kinds().await;
    assert!(
        kinds.iter().any(|k| k == "call.missed") && kinds.iter().any(|k| k == "lead.created"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_second_call_from_the_same_person_joins_their_open_lead() {
    let app = spawn_app().await;
    app.mount_twilio(twilio_ok()).await;
    app.deliver(&call_from("conv_first_call_00001", CALLER, "normal"))
        .await;
    // The same number written another way is the same person.
    app.deliver(&call_from(
        "conv_second_call_0002",
        "+1 (415) 555-0123",
        "emergency",
    ))
    .await;
    app.drain_queue().await;

    let leads = app.records_of("LEAD").await;
    assert_eq!(leads.len(), 1, "one open lead per person");
    let conversations = leads[0]["conversations"].as_ss().unwrap();
    assert_eq!(conversations.len(), 2);
    assert_eq!(
        attr(&leads[0], "hot").as_deref(),
        Some("true"),
        "the emergency made it hot"
    );
    assert_eq!(app.events_of("lead.created").await.len(), 1);
    assert_eq!(app.events_of("lead.hot").await.len(), 1);

    // A routine call from someone whose lead is hot does not alarm the owner again.
    app.deliver(&call_from("conv_third_call_00003", CALLER, "normal"))
        .await;
    app.drain_queue().await;
    let to_owner = app
        .texts_sent()
        .await
        .into_iter()
        .filter(|t| t["To"] == "+442079460001")
        .count();
    assert_eq!(to_owner, 1);
}

#[tokio::test]
async fn without_twilio_credentials_texts_are_recorded_not_sent() {
    let app = spawn_app_with(Options {
        twilio_credentials: false,
        ..Options::default()
    })
    .await;
    let response = app.deliver(&call_with_urgency("normal")).await;
    assert_eq!(response.status(), 200);
    app.drain_queue().await;
    let messages = app.records_of("MSG").await;
    assert_eq!(messages.len(), 1);
    assert_eq!(attr(&messages[0], "state").as_deref(), Some("recorded"));
    assert!(attr(&messages[0], "body").unwrap().starts_with("Hi Maria"));
    assert!(app.twilio.received_requests().await.unwrap().is_empty());
    assert!(logs().contains("message recorded, not sent: no Twilio credentials"));
}

#[tokio::test]
async fn audio_too_large_for_a_webhook_is_fetched_from_the_elevenlabs_api() {
    let app = spawn_app_with(Options {
        elevenlabs_api_key: true,
        ..Options::default()
    })
    .await;
    app.mount_twilio(twilio_ok()).await;
    let mp3 = b"ID3\x04\x00\x00\x00\x00\x00\x00fake-mp3-frames".to_vec();
    Mock::given(method("GET"))
        .and(path(format!(
            "/v1/convai/conversations/{CONVERSATION}/audio"
        )))
        .and(header("xi-api-key", "xi-test-key"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(mp3.clone())
                .insert_header("content-type", "audio/mpeg"),
        )
        .expect(1)
        .mount(&app.elevenlabs)
        .await;

    app.deliver(&call_with_urgency("normal")).await;
    app.drain_queue().await;

    assert_eq!(
        app.object(&format!("audio/demo/{CONVERSATION}.mp3")).await,
        mp3
    );
    let call = &app.records_of("CALL").await[0];
    assert_eq!(
        attr(call, "audio_key"),
        Some(format!("audio/demo/{CONVERSATION}.mp3"))
    );
    app.elevenlabs.verify().await;
}

#[tokio::test]
async fn transcripts_are_redacted_when_the_business_asks() {
    let app = spawn_app_with(Options {
        business_toml: Some(Box::new(|t| t.replace("redact = false", "redact = true"))),
        ..Options::default()
    })
    .await;
    app.mount_twilio(twilio_ok()).await;
    let body = sample_with("post_call_transcription.json", |v| {
        v["data"]["transcript"][5]["message"] =
            json!("Two o'clock is great. Call me on 07911 123456 or maria@example.com. I was born 12/03/1985, card 4111 1111 1111 1111.");
    });
    app.deliver(&body).await;
    let transcript = String::from_utf8(
        app.object(&format!("transcripts/demo/{CONVERSATION}.json"))
            .await,
    )
    .unwrap();
    assert!(
        transcript
            .contains("Call me on [phone] or [email]. I was born [date of birth], card [card]."),
        "{transcript}"
    );
    assert!(
        !transcript.contains("07911") && !transcript.contains("+14155550123"),
        "{transcript}"
    );
}

#[tokio::test]
async fn events_for_another_businesss_agent_are_ignored() {
    let app = spawn_app_with(Options {
        business_toml: Some(Box::new(|t| {
            t.replace("agent_ids = []", "agent_ids = [\"agent_ours\"]")
        })),
        ..Options::default()
    })
    .await;
    app.mount_twilio(twilio_ok()).await;
    assert_eq!(
        app.deliver(&call_with_urgency("urgent")).await.status(),
        200
    );
    app.drain_queue().await;
    assert!(app.records_of("CALL").await.is_empty());
    assert!(app.texts_sent().await.is_empty());
    let inbox = &app.records_of("INBOX#post_call_transcription").await[0];
    assert_eq!(attr(inbox, "outcome").as_deref(), Some("other_agent"));
}

#[tokio::test]
async fn an_unreadable_job_ends_in_the_dead_letter_queue() {
    let app = spawn_app().await;
    aws_sdk_sqs::Client::new(&app.sdk)
        .send_message()
        .queue_url(&app.resources.retry_queue_url)
        .message_body("{\"job\":\"reticulate_splines\"}")
        .send()
        .await
        .unwrap();
    for _ in 0..12 {
        app.drain_queue().await;
    }
    assert_eq!(app.queued().await, 0);
    assert_eq!(
        app.dead_letters().await,
        1,
        "after maxReceiveCount from template.yaml"
    );
}

#[tokio::test]
async fn logs_never_carry_phone_numbers_names_or_transcript_text() {
    let app = spawn_app().await;
    let refusal = ResponseTemplate::new(400).set_body_json(json!({
        "code": 21211, "status": 400,
        "message": "The 'To' number +14155550123 is not a valid phone number.",
    }));
    app.mount_twilio(refusal).await;
    app.deliver(&sample("post_call_transcription.json")).await;
    app.deliver(&sample("call_initiation_failure.json")).await;
    app.drain_queue().await;
    let logs = logs();
    assert!(logs.contains("webhook processed"), "logging works");
    for secret in [
        "+14155550123",
        "4155550123",
        "415-555-0123",
        "+442079460001",
        "7946 0001",
        "Maria",
        "Lopez",
        "cleaning next Tuesday",
        "Two o'clock",
        "Dr. Patel",
        WEBHOOK_SECRET,
        TWILIO_TOKEN,
    ] {
        assert!(!logs.contains(secret), "logs contain {secret:?}");
    }
}

#[test]
fn every_route_in_template_yaml_is_served_and_no_other() {
    let template = Template::load(&workspace().join("template.yaml")).unwrap();
    let mut from_template: Vec<(String, String, String)> = template
        .routes()
        .into_iter()
        .map(|r| (r.method, r.path, r.function))
        .collect();
    let mut served: Vec<(String, String, String)> = routes()
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                r.path.to_string(),
                r.function.to_string(),
            )
        })
        .collect();
    from_template.sort();
    served.sort();
    assert_eq!(from_template, served);
}

#[test]
fn every_function_in_template_yaml_has_a_sample_event() {
    let template = Template::load(&workspace().join("template.yaml")).unwrap();
    for (_, f) in template.of_type("AWS::Serverless::Function") {
        let binary = f
            .pointer("/Metadata/BuildProperties/Binary")
            .and_then(Value::as_str)
            .unwrap();
        let dir = workspace().join("events").join(binary);
        let samples = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert!(samples > 0, "no sample event in {}", dir.display());
    }
}

#[test]
fn every_http_function_has_a_crate_that_serves_its_routes() {
    for route in routes() {
        let main = workspace()
            .join("functions")
            .join(route.function)
            .join("src/main.rs");
        let source =
            std::fs::read_to_string(&main).unwrap_or_else(|e| panic!("{}: {e}", main.display()));
        // Its own rows only, so that its artefact carries no other function's handlers.
        let own_rows = format!(
            "function_router(env!(\"CARGO_PKG_NAME\"),http::rows::{},",
            route.function.replace('-', "_")
        );
        let code: String = source.split_whitespace().collect();
        assert!(
            code.contains(&own_rows),
            "{} must serve its own rows: {own_rows}",
            main.display()
        );
        let manifest =
            std::fs::read_to_string(main.parent().unwrap().join("../Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("name = \"{}\"", route.function)),
            "functions/{}/Cargo.toml names the package after the function",
            route.function
        );
    }
}

#[tokio::test]
async fn the_retry_worker_reports_only_the_failed_records_of_a_batch() {
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    use frontdesk_blackbox::frontdesk::retry_worker;
    let app = spawn_app().await;
    app.expect_texts(1, twilio_ok()).await;
    let pending = outbox::create(
        &app.deps,
        NewMessage {
            id: "call-recap:conv_batch".into(),
            purpose: "info_recap",
            audience: Audience::Caller,
            to: PhoneNumber::parse(CALLER, None).unwrap(),
            body: "Thanks for calling.".into(),
            conversation_id: None,
            lead_id: None,
        },
    )
    .await
    .unwrap();
    let record = |id: &str, body: &str| {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.to_string());
        m.body = Some(body.to_string());
        m
    };
    let mut event = SqsEvent::default();
    event.records = vec![
        record(
            "good",
            &json!({"job": "send_message", "tenant": "demo", "message_id": pending}).to_string(),
        ),
        record("garbage", "not a job"),
        record(
            "other-tenant",
            r#"{"job":"send_message","tenant":"someone-else","message_id":"m"}"#,
        ),
        record(
            "good-too",
            r#"{"job":"fetch_audio","tenant":"demo","conversation_id":"conv_without_audio"}"#,
        ),
    ];
    let response = retry_worker::handle(&app.deps, event).await;
    let mut failed: Vec<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    failed.sort();
    assert_eq!(failed, ["garbage", "other-tenant"]);
    let sent = app.deps.store.get_message(&pending).await.unwrap().unwrap();
    assert_eq!(sent.state, MessageState::Sent, "the good job did its work");
    app.twilio.verify().await;
}

#[tokio::test]
async fn an_opentelemetry_transcript_is_processed_from_the_json_conversation() {
    let app = spawn_app_with(Options {
        elevenlabs_api_key: true,
        ..Options::default()
    })
    .await;
    app.mount_twilio(twilio_ok()).await;
    let conversation: Value = serde_json::from_slice(&call_with_urgency("normal")).unwrap();
    Mock::given(method("GET"))
        .and(path(format!("/v1/convai/conversations/{CONVERSATION}")))
        .and(header("xi-api-key", "xi-test-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(conversation["data"].clone()))
        .expect(1)
        .mount(&app.elevenlabs)
        .await;
    let otel = json!({
        "type": "post_call_transcription_otel",
        "event_timestamp": 1760022262,
        "data": {
            "agent_id": "agent_4501k7bq2xm9fexv0c3hjz8r6tne",
            "conversation_id": CONVERSATION,
            "otlp_traces": {"resourceSpans": []},
        },
    });

    let response = app.deliver(&serde_json::to_vec(&otel).unwrap()).await;
    assert_eq!(response.status(), 200);
    app.drain_queue().await;

    let call = &app.records_of("CALL").await[0];
    assert_eq!(attr(call, "caller").as_deref(), Some(CALLER));
    assert_eq!(app.texts_sent().await.len(), 1);
    assert!(app
        .object_keys()
        .await
        .contains(&format!("transcripts/demo/{CONVERSATION}.json")));
    app.elevenlabs.verify().await;
}

#[tokio::test]
async fn a_run_that_dies_mid_processing_is_finished_once_its_lease_expires() {
    let app = spawn_app().await;
    app.mount_twilio(twilio_ok()).await;
    let conversation =
        frontdesk_blackbox::frontdesk::ids::ConversationId::parse(CONVERSATION).unwrap();
    // Another run took the event and died holding it.
    let body = call_with_urgency("normal");
    app.deliver(&sample_with("post_call_audio.json", |_| {}))
        .await; // unrelated event, same conversation
    app.deps
        .store
        .claim_inbox(
            &conversation,
            "post_call_transcription",
            "raw/x",
            app.now(),
            std::time::Duration::from_secs(3600),
        )
        .await
        .unwrap();
    app.deps
        .store
        .lease_inbox(&conversation, "post_call_transcription", app.now(), 120)
        .await
        .unwrap();

    let response = app.deliver(&body).await;
    assert_eq!(response.status(), 200, "durable, so accepted");
    app.poll_queue_once().await; // the re-check finds it still held
    assert!(
        app.records_of("CALL")
            .await
            .iter()
            .all(|c| attr(c, "status").is_none()),
        "not processed while held"
    );

    app.clock.advance(jiff::SignedDuration::from_mins(3));
    app.drain_queue().await;
    let call = &app.records_of("CALL").await[0];
    assert_eq!(attr(call, "status").as_deref(), Some("completed"));
    assert!(
        attr(call, "audio_key").is_some(),
        "the audio stored first is kept"
    );
    assert_eq!(app.texts_sent().await.len(), 1);
}

async fn message_stuck_in_sending(app: &TestApp) -> String {
    let id = outbox::create(
        &app.deps,
        NewMessage {
            id: "call-recap:conv_stuck".into(),
            purpose: "info_recap",
            audience: Audience::Caller,
            to: PhoneNumber::parse(CALLER, None).unwrap(),
            body: "Thanks for calling Northside.".into(),
            conversation_id: None,
            lead_id: None,
        },
    )
    .await
    .unwrap();
    // A run took it and died before it could record what Twilio said.
    app.deps
        .store
        .begin_send(&id, app.now())
        .await
        .unwrap()
        .unwrap();
    id
}

#[tokio::test]
async fn a_send_that_died_after_reaching_twilio_is_not_sent_again() {
    let app = spawn_app().await;
    let id = message_stuck_in_sending(&app).await;
    app.mount_twilio_list(CALLER, &["Something else", "Thanks for calling Northside."])
        .await;
    app.expect_texts(0, twilio_ok()).await;
    let tenant = app.deps.tenant().await.unwrap();

    // Still within the window a send may take: left alone, and looked at again later.
    assert_eq!(
        outbox::dispatch(&app.deps, &tenant, &id).await.unwrap(),
        Dispatch::InFlight
    );
    app.clock.advance(jiff::SignedDuration::from_mins(3));
    app.drain_queue().await;

    let msg = app.deps.store.get_message(&id).await.unwrap().unwrap();
    assert_eq!(msg.state, MessageState::Sent);
    assert_eq!(
        msg.twilio_sid.as_deref(),
        Some("SM00000000000000000000000000000001")
    );
    app.twilio.verify().await;
}

#[tokio::test]
async fn a_send_that_died_before_reaching_twilio_is_sent_after_checking() {
    let app = spawn_app().await;
    let id = message_stuck_in_sending(&app).await;
    app.mount_twilio_list(CALLER, &["Something else"]).await;
    app.expect_texts(1, twilio_ok()).await;
    let tenant = app.deps.tenant().await.unwrap();

    app.clock.advance(jiff::SignedDuration::from_mins(3));
    assert_eq!(
        outbox::dispatch(&app.deps, &tenant, &id).await.unwrap(),
        Dispatch::Sent
    );
    assert_eq!(
        app.deps
            .store
            .get_message(&id)
            .await
            .unwrap()
            .unwrap()
            .state,
        MessageState::Sent
    );
    app.twilio.verify().await;
}

#[tokio::test]
async fn after_a_twilio_500_the_retry_checks_before_sending_again() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(twilio_refuses(500, 20500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(twilio_ok())
        .with_priority(2)
        .mount(&app.twilio)
        .await;
    app.mount_twilio_list(CALLER, &[]).await;

    app.deliver(&call_with_urgency("normal")).await;
    app.drain_queue().await;

    let requests = app.twilio.received_requests().await.unwrap();
    let kinds: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        kinds,
        ["POST", "GET", "POST"],
        "send, look, send again only because Twilio had nothing"
    );
    let message = &app.records_of("MSG").await[0];
    assert_eq!(attr(message, "state").as_deref(), Some("sent"));
}

#[tokio::test]
async fn an_accepted_send_with_an_unreadable_answer_is_not_sent_again() {
    let app = spawn_app().await;
    app.expect_texts(
        1,
        ResponseTemplate::new(201).set_body_string("<html>oops</html>"),
    )
    .await;
    app.deliver(&call_with_urgency("normal")).await;
    app.drain_queue().await;
    let message = &app.records_of("MSG").await[0];
    assert_eq!(attr(message, "state").as_deref(), Some("sent"));
    app.twilio.verify().await;
}

/// The same router as deployed: an API Gateway (HTTP API 2.0) event, as the post-call Lambda
/// receives it, goes through lambda_http with its raw body intact, so the signature verifies.
#[tokio::test]
async fn the_api_gateway_sample_event_is_handled_by_the_lambda_router() {
    use lambda_http::tower::ServiceExt;
    let app = spawn_app().await;
    app.mount_twilio(twilio_ok()).await;
    let raw = std::fs::read_to_string(
        workspace().join("events/post-call/apigw-post-call-transcription.json"),
    )
    .unwrap();
    let mut event: Value = serde_json::from_str(&raw).unwrap();
    let body = event["body"].as_str().unwrap().to_string();
    let router = || {
        use frontdesk_blackbox::frontdesk::http;
        http::function_router("post-call", http::rows::post_call, app.deps.clone())
    };

    // As stored, its signature is long expired.
    let stale = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = router().oneshot(stale).await.unwrap();
    assert_eq!(response.status(), 401);

    event["headers"]["elevenlabs-signature"] = json!(app.sign(body.as_bytes()));
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.records_of("CALL").await.len(), 1);
}
