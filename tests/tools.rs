//! The agent's booking tools over HTTP, black-box: auth, validation, speakable answers, DST,
//! and the database deciding under 50 concurrent bookings.

use frontdesk_blackbox::*;
use serde_json::{json, Value};

/// A Monday morning in London, so the week ahead is open.
fn monday_morning(app: &TestApp) {
    app.clock.set("2026-11-23T07:00:00Z".parse().unwrap());
}

#[tokio::test]
async fn tools_refuse_a_wrong_or_missing_secret_and_write_nothing() {
    let app = spawn_app().await;
    let url = format!("{}/tools/create_booking", app.address);
    let body = json!({"service": "boiler_service", "start": "2026-11-24T10:00:00Z", "customer_name": "Maria"});
    for secret in [None, Some("wrong"), Some("")] {
        let mut req = app.http.post(&url).json(&body);
        if let Some(s) = secret {
            req = req.header("x-frontdesk-tool-secret", s);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 401, "{secret:?}");
    }
    assert!(app.records().await.is_empty());
}

#[tokio::test]
async fn availability_is_spoken_in_the_business_zone() {
    let app = spawn_app().await;
    monday_morning(&app);
    let (status, answer) = app
        .tool("check_availability", &json!({"service": "Boiler Services", "date": "2026-11-24", "time_of_day": "afternoon"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["available"], true);
    let slot = &answer["slots"][0];
    assert_eq!(slot["start"], "2026-11-24T13:30:00+00:00");
    assert_eq!(slot["spoken"], "Tuesday 24 November at 1:30pm");
    assert_eq!(slot["technician"], "Dave");
    assert!(answer["say"]
        .as_str()
        .unwrap()
        .starts_with("For a boiler service, I can do Tuesday 24 November at 1:30pm"));
}

#[tokio::test]
async fn dst_weeks_give_the_right_local_slots() {
    // London: clocks went forward on Sunday 29 March 2026. The first Monday slot is 08:00 BST.
    let app = spawn_app().await;
    app.clock.set("2026-03-27T12:00:00Z".parse().unwrap());
    let slot = app.first_slot("boiler_service", "2026-03-30").await;
    assert_eq!(slot["start"], "2026-03-30T08:00:00+01:00");
    assert_eq!(slot["spoken"], "Monday 30 March at 8am");
    // The Friday before was still GMT.
    let (_, before) = app
        .tool(
            "check_availability",
            &json!({"service": "boiler_service", "date": "2026-03-27"}),
        )
        .await;
    assert!(
        before["slots"][0]["start"]
            .as_str()
            .unwrap()
            .ends_with("+00:00"),
        "{before}"
    );

    // New York: clocks go back on Sunday 1 November 2026. 8am is EST (-05:00) from then.
    let ny = spawn_app_with(Options {
        business_toml: Some(Box::new(|t| t.replace("Europe/London", "America/New_York"))),
        ..Options::default()
    })
    .await;
    ny.clock.set("2026-10-29T12:00:00Z".parse().unwrap());
    let friday = ny.first_slot("boiler_service", "2026-10-30").await;
    assert_eq!(friday["start"], "2026-10-30T08:00:00-04:00");
    let monday = ny.first_slot("boiler_service", "2026-11-02").await;
    assert_eq!(monday["start"], "2026-11-02T08:00:00-05:00");
    assert_eq!(monday["spoken"], "Monday 2 November at 8am");
}

#[tokio::test]
async fn fifty_concurrent_bookings_for_one_slot_with_two_technicians_make_two() {
    let app = spawn_app().await;
    monday_morning(&app);
    app.twilio_accepts(None).await;
    let slot = app.first_slot("boiler_service", "2026-11-25").await;
    let calls = (0..50).map(|i| {
        let body = json!({
            "service": "boiler_service",
            "start": slot["start"],
            "customer_name": format!("Caller {i}"),
            "conversation_id": format!("conv_race_{i}"),
        });
        let app = &app;
        async move { app.tool("create_booking", &body).await }
    });
    let answers = join_all(calls).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let booked: Vec<&Value> = answers
        .iter()
        .map(|(_, a)| a)
        .filter(|a| a["booked"] == true)
        .collect();
    assert_eq!(booked.len(), 2, "one per technician");
    let mut techs: Vec<&str> = booked
        .iter()
        .map(|a| a["technician"].as_str().unwrap())
        .collect();
    techs.sort();
    assert_eq!(techs, ["Dave", "Priya"]);
    let refused: Vec<&Value> = answers
        .iter()
        .map(|(_, a)| a)
        .filter(|a| a["booked"] == false)
        .collect();
    assert_eq!(refused.len(), 48);
    for r in refused {
        assert_eq!(r["code"], "slot_taken");
        let alternatives = r["alternatives"].as_array().unwrap();
        assert!(
            !alternatives.is_empty() && alternatives.iter().all(|a| a["start"] != slot["start"]),
            "{r}"
        );
    }
    assert_eq!(app.records_of("BOOKING").await.len(), 2);
}

#[tokio::test]
async fn the_same_idempotency_key_twice_is_one_booking_and_one_text() {
    let app = spawn_app().await;
    monday_morning(&app);
    app.twilio_accepts(Some(2)).await;
    let slot = app.first_slot("leak repair", "2026-11-26").await;
    let body = json!({
        "service": "leak_repair",
        "start": slot["start"],
        "customer_name": "Maria Lopez",
        "caller_phone": "+14155550123",
        "conversation_id": "conv_idem_1",
        "idempotency_key": "conv_idem_1-leak",
    });
    let (_, first) = app.tool("create_booking", &body).await;
    let (_, second) = app.tool("create_booking", &body).await;
    assert_eq!(first["booked"], true, "{first}");
    assert_eq!(first["booking_id"], second["booking_id"]);
    // Without a key, the same conversation and arguments are the same booking too.
    let mut no_key = body.clone();
    no_key.as_object_mut().unwrap().remove("idempotency_key");
    let (_, third) = app.tool("create_booking", &no_key).await;
    let (_, fourth) = app.tool("create_booking", &no_key).await;
    assert_eq!(third["booking_id"], fourth["booking_id"]);
    assert_ne!(
        third["booking_id"], first["booking_id"],
        "a different key is a different request"
    );
    app.drain_queue().await;
    // Two bookings (one per key), each confirmed once, however often it was asked for.
    assert_eq!(app.records_of("BOOKING").await.len(), 2);
    let texts = app.texts_sent().await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[0]["Body"].contains("You're booked in for leak repair on Thursday 26 November"),
        "{}",
        texts[0]["Body"]
    );
}

#[tokio::test]
async fn malformed_tool_calls_are_400_with_a_sentence_and_write_nothing() {
    let app = spawn_app().await;
    monday_morning(&app);
    for (tool, body, field) in [
        (
            "create_booking",
            json!({"service": "boiler_service"}),
            "body",
        ),
        (
            "create_booking",
            json!({"service": "boiler_service", "start": "tomorrow at ten", "customer_name": "M"}),
            "start",
        ),
        (
            "create_booking",
            json!({"service": "boiler_service", "start": "2026-11-25T10:00:00Z", "customer_name": "  "}),
            "customer_name",
        ),
        (
            "create_booking",
            json!({"service": "boiler_service", "start": "2026-11-25T10:00:00Z", "customer_name": "M", "caller_phone": 12}),
            "caller_phone",
        ),
        (
            "create_booking",
            json!({"service": "boiler_service", "start": "2026-11-25T10:00:00Z", "customer_name": "M", "conversation_id": "a/b"}),
            "conversation_id",
        ),
        (
            "create_booking",
            json!({"service": 5, "start": "2026-11-25T10:00:00Z", "customer_name": "M"}),
            "service",
        ),
        (
            "create_booking",
            json!({"service": "boiler_service", "start": "2026-11-25T10:00:00Z", "customer_name": "Bob\u{0}Smith"}),
            "customer_name",
        ),
        (
            "create_booking",
            json!({"service": "boiler_service", "start": "2026-11-25T10:00:00Z", "customer_name": "Bob\nSmith"}),
            "customer_name",
        ),
        (
            "create_booking",
            json!({"service": "boiler_service", "start": "2026-11-25T10:00:00Z", "customer_name": "M", "notes": "ring\u{7}bell"}),
            "notes",
        ),
        (
            "check_availability",
            json!({"service": "boiler_service", "date": "next week"}),
            "date",
        ),
        (
            "check_availability",
            json!({"service": "boiler_service", "time_of_day": "midnight"}),
            "time_of_day",
        ),
        ("check_availability", json!([]), "body"),
    ] {
        let (status, answer) = app.tool(tool, &body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["field"], field, "{body} -> {answer}");
        assert!(answer["say"].as_str().is_some_and(|s| !s.is_empty()));
    }
    assert!(app.records().await.is_empty(), "{:?}", app.records().await);
}

#[tokio::test]
async fn business_refusals_are_200_with_alternatives() {
    let app = spawn_app().await;
    monday_morning(&app);
    let (status, unknown) = app
        .tool("check_availability", &json!({"service": "roof repair"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(unknown["code"], "unknown_service");
    assert!(unknown["say"].as_str().unwrap().contains("boiler service"));
    for (start, code) in [
        ("2026-11-23T08:00:00Z", "too_soon"),
        ("2026-11-24T12:45:00Z", "outside_hours"),
        ("2027-03-01T10:00:00Z", "too_far_ahead"),
    ] {
        let (status, answer) = app
            .tool(
                "create_booking",
                &json!({"service": "boiler_service", "start": start, "customer_name": "Maria"}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(answer["code"], code, "{answer}");
        assert!(!answer["alternatives"].as_array().unwrap().is_empty());
    }
    assert!(app.records_of("BOOKING").await.is_empty());
}
