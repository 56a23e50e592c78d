//! The text channel, black-box: signed Twilio webhooks into the real router, moto as AWS,
//! wiremock as Twilio and as the LLM (Anthropic Messages API), every send counted.

use frontdesk_blackbox::*;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

const CALLER: &str = "+447400123456";

async fn app_at_monday_morning() -> TestApp {
    let app = spawn_app().await;
    app.clock.set("2026-11-23T07:00:00Z".parse().unwrap());
    app
}

/// An LLM answer, as the Messages API writes one.
fn llm_says(content: Value, stop_reason: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
        "content": content, "stop_reason": stop_reason,
        "usage": {"input_tokens": 10, "output_tokens": 10},
    }))
}

async fn llm_replies(app: &TestApp, text: &str, expect: u64) {
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(llm_says(
            json!([{"type": "text", "text": text}]),
            "end_turn",
        ))
        .expect(expect)
        .mount(&app.llm)
        .await;
}

async fn book_boiler_service(app: &TestApp) -> Value {
    let slot = app.first_slot("boiler_service", "2026-11-24").await;
    let (status, booked) = app
        .tool(
            "create_booking",
            &json!({
                "service": "boiler_service", "start": slot["start"], "customer_name": "Maria Lopez",
                "caller_phone": CALLER, "conversation_id": "conv_booking_1",
            }),
        )
        .await;
    assert_eq!(status, 200, "{booked}");
    assert_eq!(booked["booked"], true, "{booked}");
    booked
}

#[tokio::test]
async fn signed_texts_are_accepted_and_tampered_or_unsigned_ones_refused_with_nothing_written() {
    let app = app_at_monday_morning().await;
    let params = inbound_text(&sid(1), CALLER, "Hi, is Friday free?", &[]);
    let sig = app.twilio_signature("/webhooks/twilio/messaging", &params);
    let mut tampered = params.clone();
    tampered.iter_mut().find(|(k, _)| k == "Body").unwrap().1 = "Hi, is Saturday free?".into();
    let before = app.records().await.len();
    for (params, signature) in [
        (&tampered, Some(sig.as_str())),
        (&params, None),
        (&params, Some("bm90IGEgc2lnbmF0dXJl")),
    ] {
        let (status, content_type, _) = app
            .post_twilio("/webhooks/twilio/messaging", params, signature)
            .await;
        assert_eq!(status, 403);
        assert!(content_type.starts_with("text/xml"));
    }
    let (status, _, _) = app
        .post_twilio("/webhooks/twilio/status", &params, Some(&sig))
        .await;
    assert_eq!(status, 403, "signed for another URL");
    assert_eq!(app.records().await.len(), before, "nothing written");
    assert_eq!(app.queued().await, 0);

    llm_replies(&app, "Friday at 10am works.", 1).await;
    app.twilio_accepts(Some(1)).await;
    let (status, content_type, answer) = app
        .post_twilio("/webhooks/twilio/messaging", &params, Some(&sig))
        .await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/xml"));
    assert_eq!(
        answer,
        r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
    );
    app.drain_queue().await;
    assert_eq!(app.texts_sent().await[0]["Body"], "Friday at 10am works.");
}

#[tokio::test]
async fn malformed_twilio_parameters_are_400_and_nothing_is_written() {
    let app = app_at_monday_morning().await;
    let before = app.records().await.len();
    for params in [
        inbound_text("SM123", CALLER, "hi", &[]),
        inbound_text(&sid(2), "not a number", "hi", &[]),
        inbound_text(&sid(3), CALLER, &"x".repeat(5000), &[]),
        inbound_text(&sid(4), CALLER, "nul\u{0}byte", &[]),
    ] {
        let sig = app.twilio_signature("/webhooks/twilio/messaging", &params);
        let (status, _, _) = app
            .post_twilio("/webhooks/twilio/messaging", &params, Some(&sig))
            .await;
        assert_eq!(status, 400);
    }
    assert_eq!(app.records().await.len(), before);
}

#[tokio::test]
async fn a_caller_who_then_texts_on_whatsapp_lands_on_the_same_lead_and_thread() {
    let app = app_at_monday_morning().await;
    app.twilio_accepts(None).await;
    let (status, captured) = app
        .tool(
            "capture_lead",
            &json!({"service": "leak repair", "urgency": "normal", "summary": "Dripping tap",
                    "caller_phone": CALLER, "conversation_id": "conv_call_1"}),
        )
        .await;
    assert_eq!(status, 200, "{captured}");
    let lead_of_call = captured["lead_id"].as_str().unwrap().to_string();
    // Two texts in a row: one answer, which reads both.
    llm_replies(&app, "Thanks, noted.", 1).await;
    // The same person, spelled two other ways.
    assert_eq!(
        app.text(&sid(10), "whatsapp:+447400123456", "It's the kitchen tap",)
            .await,
        200
    );
    assert_eq!(
        app.text(&sid(11), "07400 123456", "Any time Thursday?")
            .await,
        200
    );
    app.drain_queue().await;
    let phone = frontdesk::phone::PhoneNumber::parse(CALLER, None).unwrap();
    let contact = app.deps.store.get_contact(&phone).await.unwrap().unwrap();
    assert_eq!(contact.open_lead_id.unwrap().to_string(), lead_of_call);
    let thread = app.deps.store.thread(&phone, 50).await.unwrap();
    let bodies: Vec<&str> = thread.iter().map(|e| e.body.as_str()).collect();
    let kitchen = bodies
        .iter()
        .position(|b| *b == "It's the kitchen tap")
        .unwrap();
    let thursday = bodies
        .iter()
        .position(|b| *b == "Any time Thursday?")
        .unwrap();
    assert!(kitchen < thursday, "{bodies:?}");
    assert_eq!(thread[kitchen].channel, "whatsapp");
    assert_eq!(thread[thursday].channel, "sms");
}

#[tokio::test]
async fn stop_cancels_what_was_waiting_and_nothing_is_sent_after() {
    let app = app_at_monday_morning().await;
    // Twilio is not asked to send anything to the caller.
    app.twilio_accepts(Some(0)).await;
    book_boiler_service(&app).await; // its confirmation is queued, not yet sent
    assert_eq!(app.text(&sid(20), CALLER, "STOP").await, 200);
    app.drain_queue().await;
    let phone = frontdesk::phone::PhoneNumber::parse(CALLER, None).unwrap();
    let contact = app.deps.store.get_contact(&phone).await.unwrap().unwrap();
    assert!(contact.opted_out);
    let ledger = app.deps.store.consent_ledger(&phone).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        (
            ledger[0].action.as_str(),
            ledger[0].source.as_str(),
            ledger[0].channel.as_str()
        ),
        ("opt_out", "keyword", "sms")
    );
    let messages = app.deps.store.list_messages(50).await.unwrap();
    let confirmation = messages
        .iter()
        .find(|m| m.purpose == "booking_confirmed")
        .unwrap();
    assert_eq!(
        confirmation.state,
        frontdesk::store::messages::MessageState::Suppressed
    );
    // A later message is stopped at send time too.
    app.tool(
        "update_booking",
        &json!({"action": "cancel", "caller_phone": CALLER}),
    )
    .await;
    app.drain_queue().await;
    assert!(app.texts_sent().await.is_empty());
}

#[tokio::test]
async fn with_advanced_opt_out_twilio_has_replied_and_we_stay_silent() {
    let app = app_at_monday_morning().await;
    app.twilio_accepts(Some(0)).await;
    llm_replies(&app, "never", 0).await;
    let status = app
        .text_with(&sid(30), CALLER, "Stop", &[("OptOutType", "STOP")])
        .await;
    assert_eq!(status, 200);
    let status = app
        .text_with(&sid(31), CALLER, "HELP", &[("OptOutType", "HELP")])
        .await;
    assert_eq!(status, 200);
    app.drain_queue().await;
    let phone = frontdesk::phone::PhoneNumber::parse(CALLER, None).unwrap();
    let ledger = app.deps.store.consent_ledger(&phone).await.unwrap();
    assert_eq!(ledger[0].source, "twilio_advanced_opt_out");
    // START opts back in; the ledger keeps both.
    assert_eq!(app.text(&sid(32), CALLER, "START").await, 200);
    let contact = app.deps.store.get_contact(&phone).await.unwrap().unwrap();
    assert!(!contact.opted_out);
    assert_eq!(
        app.deps.store.consent_ledger(&phone).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn help_gets_the_tenants_help_text_and_a_revocation_in_words_is_honoured() {
    let app = app_at_monday_morning().await;
    app.twilio_accepts(Some(2)).await;
    assert_eq!(app.text(&sid(40), CALLER, "help").await, 200);
    app.drain_queue().await;
    // (Had the answer to HELP still been waiting, the opt-out would have stopped it.)
    assert_eq!(
        app.text(&sid(41), CALLER, "please stop texting me").await,
        200
    );
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    assert!(
        texts
            .iter()
            .any(|t| t["Body"].contains("Reply STOP to stop texts")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t["Body"].contains("won't get any more texts")),
        "{texts:?}"
    );
    let phone = frontdesk::phone::PhoneNumber::parse(CALLER, None).unwrap();
    assert!(
        app.deps
            .store
            .get_contact(&phone)
            .await
            .unwrap()
            .unwrap()
            .opted_out
    );
    // Only the answer to HELP says how to stop (carriers require it), and only with STOP.
    for t in texts.iter().filter(|t| !t["Body"].contains("Reply STOP")) {
        assert_eq!(
            frontdesk::messaging::keywords::invites_opt_out(&t["Body"]),
            None
        );
    }
}

#[tokio::test]
async fn c_confirms_the_booking() {
    let app = app_at_monday_morning().await;
    app.twilio_accepts(Some(2)).await;
    let booked = book_boiler_service(&app).await;
    assert_eq!(app.text(&sid(50), CALLER, "C").await, 200);
    app.drain_queue().await;
    let booking = app.booking(booked["booking_id"].as_str().unwrap()).await;
    assert!(booking.customer_confirmed_at.is_some());
    let texts = app.texts_sent().await;
    assert!(
        texts
            .iter()
            .any(|t| t["Body"].starts_with("Thanks Maria, you're confirmed for")),
        "{texts:?}"
    );
}

#[tokio::test]
async fn r_offers_times_from_the_booking_engine_and_a_number_books_that_one() {
    let app = app_at_monday_morning().await;
    app.twilio_accepts(Some(3)).await;
    let booked = book_boiler_service(&app).await;
    let id = booked["booking_id"].as_str().unwrap();
    assert_eq!(app.text(&sid(60), CALLER, "R").await, 200);
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    let offer = texts
        .iter()
        .map(|t| t["Body"].clone())
        .find(|b| b.contains("1) "))
        .expect("an offer");
    assert!(offer.contains("1) ") && offer.contains("2) "), "{offer}");
    let phone = frontdesk::phone::PhoneNumber::parse(CALLER, None).unwrap();
    let offered = app
        .deps
        .store
        .reschedule_offer(&phone, app.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.text(&sid(61), CALLER, "2").await, 200);
    app.drain_queue().await;
    let moved = app.booking(id).await;
    assert_eq!(
        moved.start.parse::<jiff::Timestamp>().unwrap(),
        offered.starts[1].parse::<jiff::Timestamp>().unwrap()
    );
    assert!(app
        .texts_sent()
        .await
        .iter()
        .any(|t| t["Body"].contains("has moved to")));
}

#[tokio::test]
async fn free_text_gets_an_llm_reply_that_used_a_real_tool() {
    let app = app_at_monday_morning().await;
    app.twilio_accepts(Some(1)).await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(llm_says(
            json!([{"type": "text", "text": "Let me look."},
                   {"type": "tool_use", "id": "toolu_01", "name": "check_availability",
                    "input": {"service": "boiler service", "date": "2026-11-24"}}]),
            "tool_use",
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&app.llm)
        .await;
    llm_replies(&app, "I can do Tuesday at 9am or 11am. Which suits?", 1).await;
    assert_eq!(
        app.text(&sid(70), CALLER, "Can you service my boiler Tuesday?")
            .await,
        200
    );
    app.drain_queue().await;
    let requests = app.llm.received_requests().await.unwrap();
    let first: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(requests[0].headers["anthropic-version"], "2023-06-01");
    assert_eq!(requests[0].headers["x-api-key"], "sk-test-llm");
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"create_booking") && tools.contains(&"check_availability"),
        "{tools:?}"
    );
    assert!(first["system"].as_str().unwrap().contains("Northside"));
    let second: Value = serde_json::from_slice(&requests[1].body).unwrap();
    let result = &second["messages"].as_array().unwrap().last().unwrap()["content"][0];
    assert_eq!(result["type"], "tool_result");
    assert_eq!(result["tool_use_id"], "toolu_01");
    let tool_answer: Value = serde_json::from_str(result["content"].as_str().unwrap()).unwrap();
    assert_eq!(
        tool_answer["service"], "boiler_service",
        "the real tool ran: {tool_answer}"
    );
    assert!(!tool_answer["slots"].as_array().unwrap().is_empty());
    assert_eq!(
        app.texts_sent().await[0]["Body"],
        "I can do Tuesday at 9am or 11am. Which suits?"
    );
}

#[tokio::test]
async fn llm_failures_are_retried_then_the_person_is_acknowledged_and_the_owner_told() {
    let app = app_at_monday_morning().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(529).set_body_json(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})))
        .expect(LLM_ATTEMPTS)
        .mount(&app.llm)
        .await;
    app.twilio_accepts(Some(2)).await;
    assert_eq!(
        app.text(&sid(80), CALLER, "Do you fix radiators?").await,
        200
    );
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    let to_caller = texts.iter().find(|t| t["To"] == CALLER).unwrap();
    assert!(to_caller["Body"].contains("get back to you shortly"));
    let to_owner = texts.iter().find(|t| t["To"] != CALLER).unwrap();
    assert!(
        to_owner["Body"].contains("Do you fix radiators?"),
        "{to_owner:?}"
    );
    let phone = frontdesk::phone::PhoneNumber::parse(CALLER, None).unwrap();
    assert!(app
        .deps
        .store
        .get_contact(&phone)
        .await
        .unwrap()
        .unwrap()
        .open_lead_id
        .is_some());
    assert_eq!(app.dead_letters().await, 0);
}

#[tokio::test]
async fn without_an_llm_key_the_text_is_acknowledged_and_the_owner_told() {
    let app = spawn_app_with(Options {
        llm_api_key: false,
        ..Options::default()
    })
    .await;
    app.twilio_accepts(Some(2)).await;
    assert_eq!(
        app.text(&sid(81), CALLER, "Quote for a new boiler?").await,
        200
    );
    app.drain_queue().await;
    assert_eq!(app.llm.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn a_whatsapp_answer_after_the_window_closed_goes_as_the_approved_template() {
    let app = spawn_app_with(Options {
        business_toml: Some(Box::new(|t| {
            t.replace(
                "whatsapp_job_template_sid =",
                "whatsapp_reply_template_sid = \"HX11111111111111111111111111111111\"\nwhatsapp_job_template_sid =",
            )
        })),
        ..Options::default()
    })
    .await;
    app.clock.set("2026-11-23T07:00:00Z".parse().unwrap());
    llm_replies(&app, "Yes, we cover Hackney.", 2).await;
    app.twilio_accepts(Some(2)).await;
    assert_eq!(
        app.text(&sid(90), "whatsapp:+447400123456", "Do you cover Hackney?")
            .await,
        200
    );
    app.drain_queue().await;
    // Inside the window: free-form.
    let first = &app.texts_sent().await[0];
    assert_eq!(first["To"], "whatsapp:+447400123456");
    assert_eq!(first["Body"], "Yes, we cover Hackney.");
    // A second text whose answer only goes out a day later (the queue was down).
    assert_eq!(
        app.text(&sid(91), "whatsapp:+447400123456", "And Camden?")
            .await,
        200
    );
    app.clock.set("2026-11-24T08:00:00Z".parse().unwrap());
    app.drain_queue().await;
    let second = &app.texts_sent().await[1];
    assert_eq!(second["ContentSid"], "HX11111111111111111111111111111111");
    assert!(second.get("Body").is_none());
    let vars: Value = serde_json::from_str(&second["ContentVariables"]).unwrap();
    assert_eq!(vars["2"], "Northside Plumbing & Heating");
}

#[tokio::test]
async fn twilio_saying_63016_sends_the_template_instead() {
    let app = spawn_app_with(Options {
        business_toml: Some(Box::new(|t| {
            t.replace(
                "whatsapp_job_template_sid =",
                "whatsapp_reply_template_sid = \"HX11111111111111111111111111111111\"\nwhatsapp_job_template_sid =",
            )
        })),
        ..Options::default()
    })
    .await;
    llm_replies(&app, "Yes we do.", 1).await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(twilio_refuses(400, 63016))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&app.twilio)
        .await;
    app.twilio_accepts(Some(1)).await;
    assert_eq!(
        app.text(&sid(92), "whatsapp:+447400123456", "Open Saturdays?")
            .await,
        200
    );
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    assert!(texts[0].contains_key("Body"));
    assert_eq!(texts[1]["ContentSid"], "HX11111111111111111111111111111111");
}

#[tokio::test]
async fn a_redelivered_message_sid_is_handled_once() {
    let app = app_at_monday_morning().await;
    llm_replies(&app, "Happy to help.", 1).await;
    app.twilio_accepts(Some(1)).await;
    for _ in 0..3 {
        assert_eq!(app.text(&sid(100), CALLER, "Hello?").await, 200);
    }
    app.drain_queue().await;
    assert_eq!(app.text(&sid(100), CALLER, "Hello?").await, 200);
    app.drain_queue().await;
}

/// Twilio redelivering texts while the first deliveries are still being handled queues two
/// answer jobs per text, and one batch of the retry worker runs them at once: each text is
/// still one LLM conversation (so its tools, a booking, run once) and one reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn texts_redelivered_while_being_handled_are_answered_once() {
    let app = app_at_monday_morning().await;
    llm_replies(&app, "Happy to help.", 3).await;
    app.twilio_accepts(Some(3)).await;
    let deliveries = (0..6u32).map(|i| {
        let app = &app;
        let from = format!("+4474001234{:02}", i / 2);
        async move { app.text(&sid(300 + i / 2), &from, "Hello?").await }
    });
    for status in futures::future::join_all(deliveries).await {
        assert_eq!(status, 200);
    }
    app.poll_queue_once().await;
    app.drain_queue().await;
    assert_eq!(app.llm.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn status_callbacks_only_move_forward_and_21610_opts_the_number_out() {
    let app = app_at_monday_morning().await;
    app.twilio_accepts(Some(1)).await;
    let booked = book_boiler_service(&app).await;
    app.drain_queue().await;
    let sent = app
        .deps
        .store
        .get_message(&frontdesk::outbox::booking_confirmation_id(
            booked["booking_id"].as_str().unwrap(),
        ))
        .await
        .unwrap()
        .unwrap();
    let twilio_sid = sent.twilio_sid.clone().unwrap();
    let status = |s: &str, code: Option<&str>| {
        let mut p: Vec<(String, String)> = [
            ("MessageSid", twilio_sid.as_str()),
            ("MessageStatus", s),
            ("SmsStatus", s),
            ("To", CALLER),
            ("AccountSid", TWILIO_SID),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(c) = code {
            p.push(("ErrorCode".into(), c.into()));
        }
        p
    };
    for (s, code) in [
        ("delivered", None),
        ("sent", None),
        ("failed", Some("21610")),
        ("delivered", None),
    ] {
        let params = status(s, code);
        let sig = app.twilio_signature("/webhooks/twilio/status", &params);
        let (code, _, _) = app
            .post_twilio("/webhooks/twilio/status", &params, Some(&sig))
            .await;
        assert_eq!(code, 200);
        if s == "sent" {
            let m = app
                .deps
                .store
                .get_message(&sent.message_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                m.delivery_status.as_deref(),
                Some("delivered"),
                "never delivered → sent"
            );
        }
    }
    let m = app
        .deps
        .store
        .get_message(&sent.message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.delivery_status.as_deref(), Some("failed"));
    assert_eq!(m.state, frontdesk::store::messages::MessageState::Failed);
    let phone = frontdesk::phone::PhoneNumber::parse(CALLER, None).unwrap();
    assert!(
        app.deps
            .store
            .get_contact(&phone)
            .await
            .unwrap()
            .unwrap()
            .opted_out
    );
}

#[tokio::test]
async fn a_booking_made_while_twilio_is_down_is_confirmed_once_when_it_recovers() {
    let app = app_at_monday_morning().await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .with_priority(1)
        .expect(3)
        .mount(&app.twilio)
        .await;
    app.twilio_accepts(Some(1)).await;
    book_boiler_service(&app).await;
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    assert_eq!(texts.len(), 4, "three refused, one delivered");
    assert!(texts[3]["Body"].contains("You're booked in"));
}

fn form_body() -> &'static str {
    "name=Ann+Lee&phone=07400+123457&email=ann%40example.com&service=leak+repair&message=Tap+dripping+all+night"
}

async fn post_form(
    app: &TestApp,
    body: &[u8],
    content_type: &str,
    headers: &[(&str, String)],
) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}/webhooks/web-form", app.address))
        .header("content-type", content_type)
        .body(body.to_vec());
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_signed_web_form_is_one_lead_and_one_instant_text_and_a_resubmission_sends_nothing_more()
{
    let app = app_at_monday_morning().await;
    // The instant text, and later the answer to their reply.
    app.twilio_accepts(Some(2)).await;
    let body = form_body().as_bytes();
    let signature = frontdesk::messaging::web_form::sign(WEB_FORM_SECRET.as_bytes(), body);
    let form = "application/x-www-form-urlencoded";
    let (status, answer) = post_form(
        &app,
        body,
        form,
        &[("x-frontdesk-signature", signature.clone())],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let lead = answer["lead_id"].as_str().unwrap().to_string();
    let (status, again) =
        post_form(&app, body, form, &[("x-frontdesk-signature", signature)]).await;
    assert_eq!(status, 200);
    assert_eq!(again["lead_id"], lead.as_str());
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    assert_eq!(texts[0]["To"], "+447400123457");
    assert!(
        texts[0]["Body"].starts_with("Hi Ann, this is Northside"),
        "{texts:?}"
    );
    assert!(app
        .event_kinds()
        .await
        .contains(&"lead.created".to_string()));
    // The conversation goes on by text from there.
    assert_eq!(texts.len(), 1);
    llm_replies(&app, "Thursday works.", 1).await;
    assert_eq!(
        app.text(&sid(110), "+447400123457", "Can you come Thursday?")
            .await,
        200
    );
    app.drain_queue().await;
    let phone = frontdesk::phone::PhoneNumber::parse("+447400123457", None).unwrap();
    assert_eq!(
        app.deps
            .store
            .get_contact(&phone)
            .await
            .unwrap()
            .unwrap()
            .open_lead_id
            .unwrap()
            .to_string(),
        lead
    );
}

#[tokio::test]
async fn a_web_form_with_the_token_works_and_unsigned_or_bad_ones_write_nothing() {
    let app = app_at_monday_morning().await;
    app.twilio_accepts(Some(1)).await;
    let before = app.records().await.len();
    let json_form = br#"{"name":"Bo","phone":"07400123458","message":"Leak"}"#;
    let unsigned = post_form(&app, json_form, "application/json", &[]).await;
    assert_eq!(unsigned.0, 401);
    let wrong = post_form(
        &app,
        json_form,
        "application/json",
        &[("x-frontdesk-signature", "sha256=00".into())],
    )
    .await;
    assert_eq!(wrong.0, 401);
    let wrong_token = post_form(
        &app,
        json_form,
        "application/json",
        &[("x-frontdesk-form-token", "guess".into())],
    )
    .await;
    assert_eq!(wrong_token.0, 401);
    let token = [("x-frontdesk-form-token", WEB_FORM_TOKEN.to_string())];
    let oversized = format!("phone=07400123458&message={}", "a".repeat(20_000));
    for (body, content_type) in [
        (&b"name=Bo"[..], "application/x-www-form-urlencoded"),
        (b"phone=hello", "application/x-www-form-urlencoded"),
        (b"{\"phone\": 7}", "application/json"),
        (b"[]", "application/json"),
        (b"phone=07400123458", "text/plain"),
        (oversized.as_bytes(), "application/x-www-form-urlencoded"),
    ] {
        let (status, answer) = post_form(&app, body, content_type, &token).await;
        assert!((400..500).contains(&status), "{status} {answer}");
    }
    assert_eq!(app.records().await.len(), before, "nothing written");
    // A plain HTML form puts the token in a hidden field.
    let with_field = format!("phone=07400123458&name=Bo&form_token={WEB_FORM_TOKEN}");
    let (status, answer) = post_form(
        &app,
        with_field.as_bytes(),
        "application/x-www-form-urlencoded",
        &[],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    app.drain_queue().await;
}

/// The auth token the samples in events/ are signed with (the protocol notes' fake token).
const SAMPLE_TOKEN: &str = "9f3c2a7b1d4e6f8091a2b3c4d5e6f708";

#[tokio::test]
async fn on_lambda_the_signed_samples_are_accepted_against_the_url_twilio_called() {
    use lambda_http::tower::ServiceExt;
    let app = app_at_monday_morning().await;
    llm_replies(&app, "Friday works.", 1).await;
    app.twilio_accepts(None).await;
    use frontdesk::http::{rows, Route};
    let call = |function: &'static str,
                rows: fn() -> Vec<Route>,
                event: Value,
                public_base: Option<&str>| {
        let mut deps = (*app.deps).clone();
        deps.secrets.twilio_auth_token = Some(SAMPLE_TOKEN.into());
        deps.config.public_base_url = public_base.map(str::to_string);
        let router = frontdesk::http::function_router(function, rows, std::sync::Arc::new(deps));
        async move {
            let request = lambda_http::request::from_str(&event.to_string()).unwrap();
            let response = router.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let sample = |file: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(workspace().join("events").join(file)).unwrap(),
        )
        .unwrap()
    };
    let inbound = sample("twilio-messaging/apigw-inbound-sms.json");
    let before = app.records().await.len();
    let mut tampered = inbound.clone();
    tampered["body"] = json!(inbound["body"]
        .as_str()
        .unwrap()
        .replace("Friday", "Monday"));
    assert_eq!(
        call("twilio-messaging", rows::twilio_messaging, tampered, None)
            .await
            .0,
        403
    );
    // Twilio was given another URL (a custom domain): the execute-api signature is not it.
    let elsewhere = call(
        "twilio-messaging",
        rows::twilio_messaging,
        inbound.clone(),
        Some("https://api.example.com"),
    )
    .await;
    assert_eq!(elsewhere.0, 403);
    assert_eq!(app.records().await.len(), before, "nothing written");
    // The configured base with the default port, as the official SDKs accept it.
    let with_port = Some("https://abc123.execute-api.eu-west-2.amazonaws.com:443");
    let (status, twiml) = call(
        "twilio-messaging",
        rows::twilio_messaging,
        inbound,
        with_port,
    )
    .await;
    assert_eq!(status, 200, "{twiml}");
    assert!(twiml.ends_with("<Response/>"));
    let (status, _) = call(
        "twilio-status",
        rows::twilio_status,
        sample("twilio-status/apigw-status-delivered.json"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    app.drain_queue().await;
}

#[tokio::test]
async fn a_message_whose_queue_message_was_lost_is_sent_by_the_sweep_once() {
    let app = app_at_monday_morning().await;
    app.twilio_accepts(Some(1)).await;
    let phone = frontdesk::phone::PhoneNumber::parse(CALLER, None).unwrap();
    // Recorded, and the run died before queuing it.
    frontdesk::outbox::create(
        &app.deps,
        frontdesk::outbox::NewMessage {
            id: "missed-call:conv_lost_1".into(),
            purpose: "missed_call",
            audience: frontdesk::outbox::Audience::Caller,
            to: phone,
            body: "Sorry we missed your call.".into(),
            conversation_id: None,
            lead_id: None,
        },
    )
    .await
    .unwrap();
    // Too fresh to push: its own queue message may still be on the way.
    assert_eq!(
        frontdesk::outbox::sweep(&app.deps)
            .await
            .unwrap()
            .messages_requeued,
        0
    );
    app.clock.advance(jiff::SignedDuration::from_secs(180));
    assert_eq!(
        frontdesk::outbox::sweep(&app.deps)
            .await
            .unwrap()
            .messages_requeued,
        1
    );
    app.drain_queue().await;
    assert_eq!(
        frontdesk::outbox::sweep(&app.deps)
            .await
            .unwrap()
            .messages_requeued,
        0
    );
    assert_eq!(app.texts_sent().await.len(), 1);
}

#[tokio::test]
async fn a_booking_and_its_confirmation_and_event_commit_together() {
    let app = app_at_monday_morning().await;
    app.twilio_accepts(Some(1)).await;
    app.lose_event_bus().await;
    let booked = book_boiler_service(&app).await; // booked, though the bus is down
    let id = booked["booking_id"].as_str().unwrap();
    let confirmation = frontdesk::outbox::booking_confirmation_id(id);
    assert!(app
        .deps
        .store
        .get_message(&confirmation)
        .await
        .unwrap()
        .is_some());
    app.restore_event_bus().await;
    app.clock.advance(jiff::SignedDuration::from_secs(180));
    let swept = frontdesk::outbox::sweep(&app.deps).await.unwrap();
    assert_eq!(swept.events_published, 1, "{swept:?}");
    app.drain_queue().await;
    assert_eq!(app.events_of("booking.created").await.len(), 1);
}

#[tokio::test]
async fn no_log_line_carries_a_number_a_name_a_text_or_a_secret() {
    let app = app_at_monday_morning().await;
    llm_replies(&app, "We can fix the radiator on Thursday, Maria.", 1).await;
    app.twilio_accepts(None).await;
    book_boiler_service(&app).await;
    app.text(
        &sid(120),
        "whatsapp:+447400123456",
        "My radiator is cold, Maria here",
    )
    .await;
    app.drain_queue().await;
    app.text(&sid(121), CALLER, "C").await;
    app.text(&sid(122), CALLER, "please stop texting me").await;
    let form = "name=Zed+Quinn&phone=07400+123459&message=Secret+leak+story";
    let sig = frontdesk::messaging::web_form::sign(WEB_FORM_SECRET.as_bytes(), form.as_bytes());
    post_form(
        &app,
        form.as_bytes(),
        "application/x-www-form-urlencoded",
        &[("x-frontdesk-signature", sig)],
    )
    .await;
    app.drain_queue().await;
    let logs = logs();
    assert!(logs.contains("answer_queued"), "logging works");
    for secret in [
        "+447400123456",
        "7400123456",
        "7400 123456",
        "+447400123459",
        "Maria",
        "Lopez",
        "Zed",
        "Quinn",
        "radiator is cold",
        "Secret leak story",
        "stop texting",
        "We can fix the radiator",
        TWILIO_TOKEN,
        WEB_FORM_SECRET,
        "sk-test-llm",
    ] {
        assert!(!logs.contains(secret), "logs contain {secret:?}");
    }
}

#[tokio::test]
async fn a_whatsapp_user_without_a_number_is_passed_to_the_owner() {
    let app = app_at_monday_morning().await;
    llm_replies(&app, "never", 0).await;
    app.twilio_accepts(Some(1)).await;
    let status = app
        .text(
            &sid(130),
            "whatsapp:US.13491208655302741918",
            "Do you do boilers?",
        )
        .await;
    assert_eq!(status, 200);
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    assert_eq!(texts[0]["To"], "+442079460001", "the owner");
    assert!(texts[0]["Body"].contains("Do you do boilers?"));
}

fn twilio_accepts_as(sid: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"sid": sid, "status": "queued"}))
}

async fn status_callback(app: &TestApp, twilio_sid: &str, status: &str, code: Option<&str>) -> u16 {
    let mut params: Vec<(String, String)> = [
        ("MessageSid", twilio_sid),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("To", CALLER),
        ("AccountSid", TWILIO_SID),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(c) = code {
        params.push(("ErrorCode".into(), c.into()));
    }
    let sig = app.twilio_signature("/webhooks/twilio/status", &params);
    app.post_twilio("/webhooks/twilio/status", &params, Some(&sig))
        .await
        .0
}

#[tokio::test]
async fn a_carrier_failure_resends_once_and_the_first_sends_late_callbacks_change_nothing() {
    let app = app_at_monday_morning().await;
    let first = "SMa0000000000000000000000000000001";
    let second = "SMa0000000000000000000000000000002";
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(twilio_accepts_as(first))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&app.twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(twilio_accepts_as(second))
        .expect(1)
        .mount(&app.twilio)
        .await;
    let booked = book_boiler_service(&app).await;
    app.drain_queue().await;
    assert_eq!(
        status_callback(&app, first, "undelivered", Some("30003")).await,
        200
    );
    app.drain_queue().await; // the resend: the second send
                             // The first send's failure again, late and repeated: old news.
    for _ in 0..2 {
        assert_eq!(
            status_callback(&app, first, "undelivered", Some("30003")).await,
            200
        );
        assert_eq!(
            status_callback(&app, first, "failed", Some("30008")).await,
            200
        );
    }
    app.drain_queue().await;
    assert_eq!(status_callback(&app, second, "delivered", None).await, 200);
    let id = frontdesk::outbox::booking_confirmation_id(booked["booking_id"].as_str().unwrap());
    let m = app.deps.store.get_message(&id).await.unwrap().unwrap();
    assert_eq!(m.twilio_sid.as_deref(), Some(second));
    assert_eq!(m.delivery_status.as_deref(), Some("delivered"));
    assert_eq!(m.state, frontdesk::store::messages::MessageState::Sent);
}

#[tokio::test]
async fn a_burst_of_texts_gets_one_answer() {
    let app = app_at_monday_morning().await;
    llm_replies(&app, "Yes, we can look at the leak on Friday.", 1).await;
    app.twilio_accepts(Some(1)).await;
    for (n, body) in [
        (140, "Hi"),
        (141, "can you come Friday?"),
        (142, "it's a leak"),
    ] {
        assert_eq!(app.text(&sid(n), CALLER, body).await, 200);
    }
    app.drain_queue().await;
    let request: Value =
        serde_json::from_slice(&app.llm.received_requests().await.unwrap()[0].body).unwrap();
    let turn = &request["messages"].as_array().unwrap().last().unwrap()["content"];
    assert_eq!(
        turn.as_array().unwrap().len(),
        3,
        "all three texts in one turn: {turn}"
    );
}

#[tokio::test]
async fn twilio_refusing_with_21610_at_send_time_goes_in_the_consent_ledger() {
    let app = app_at_monday_morning().await;
    app.expect_texts(1, twilio_refuses(400, 21610)).await;
    book_boiler_service(&app).await;
    app.drain_queue().await;
    let phone = frontdesk::phone::PhoneNumber::parse(CALLER, None).unwrap();
    let ledger = app.deps.store.consent_ledger(&phone).await.unwrap();
    assert_eq!(
        (ledger.len(), ledger[0].source.as_str()),
        (1, "twilio_21610")
    );
    assert!(
        app.deps
            .store
            .get_contact(&phone)
            .await
            .unwrap()
            .unwrap()
            .opted_out
    );
}

#[tokio::test]
async fn an_older_consent_change_handled_late_does_not_undo_a_newer_one() {
    use frontdesk::store::texts::ConsentChange;
    let app = app_at_monday_morning().await;
    let phone = frontdesk::phone::PhoneNumber::parse(CALLER, None).unwrap();
    let start_at: jiff::Timestamp = "2026-11-23T07:00:00Z".parse().unwrap();
    let stop_at: jiff::Timestamp = "2026-11-23T07:00:05Z".parse().unwrap();
    let stop = ConsentChange::opt_out("sms", "keyword", &sid(150), stop_at);
    let start = ConsentChange::opt_in("sms", "keyword", &sid(149), start_at);
    app.deps.store.change_consent(&phone, &stop).await.unwrap();
    app.deps.store.change_consent(&phone, &start).await.unwrap(); // the START was queued
    assert!(
        app.deps
            .store
            .get_contact(&phone)
            .await
            .unwrap()
            .unwrap()
            .opted_out
    );
    assert_eq!(
        app.deps.store.consent_ledger(&phone).await.unwrap().len(),
        2,
        "both recorded"
    );
}

#[tokio::test]
async fn web_forms_text_a_number_once_a_day_and_never_abroad() {
    let app = app_at_monday_morning().await;
    app.twilio_accepts(Some(1)).await;
    let token = [("x-frontdesk-form-token", WEB_FORM_TOKEN.to_string())];
    let form = "application/x-www-form-urlencoded";
    for body in [
        "phone=07400+123460&message=First",
        "phone=07400+123460&message=Second+one",
        "phone=%2B14155550123&message=From+abroad",
    ] {
        let (status, answer) = post_form(&app, body.as_bytes(), form, &token).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer["lead_id"].is_string());
    }
    app.drain_queue().await;
    assert_eq!(app.texts_sent().await[0]["To"], "+447400123460");
}
