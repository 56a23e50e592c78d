//! Timed work, black-box, with the movable clock: quiet hours in the recipient's zone.

use frontdesk::outbox::{self, Audience, NewMessage};
use frontdesk::phone::PhoneNumber;
use frontdesk::store::messages::MessageState;
use frontdesk_blackbox::*;
use serde_json::json;

async fn app_at(time: &str) -> TestApp {
    let app = spawn_app_with(Options {
        quiet_hours: true,
        ..Options::default()
    })
    .await;
    app.clock.set(time.parse().unwrap());
    app
}

fn at(time: &str) -> jiff::Timestamp {
    time.parse().unwrap()
}

/// Moves the clock and runs what the schedules would: the outbox sweep, then the queue.
async fn wait_until(app: &TestApp, time: &str) {
    app.clock.set(at(time));
    outbox::sweep(&app.deps).await.unwrap();
    app.drain_queue().await;
}

fn from_london_caller(v: &mut serde_json::Value) {
    v["data"]["metadata"]["phone_call"]["external_number"] = json!("+447400123456");
    v["data"]["conversation_initiation_client_data"]["dynamic_variables"]["system__caller_id"] =
        json!("+447400123456");
}

#[tokio::test]
async fn a_post_call_text_at_two_in_the_morning_waits_for_eight_and_the_hot_lead_does_not() {
    let app = app_at("2026-12-02T02:00:00Z").await; // 02:00 in London
    app.twilio_accepts(None).await;
    let response = app
        .deliver(&sample_with(
            "post_call_transcription.json",
            from_london_caller,
        ))
        .await;
    assert_eq!(response.status(), 200);
    app.drain_queue().await;
    let sent = app.texts_sent().await;
    assert_eq!(sent.len(), 1, "only the owner's hot-lead alert: {sent:?}");
    assert_eq!(sent[0]["To"], "+442079460001");
    let waiting = app.deps.store.list_messages(50).await.unwrap();
    let caller_text = waiting.iter().find(|m| m.audience == "caller").unwrap();
    assert_eq!(caller_text.state, MessageState::Deferred);
    assert_eq!(
        caller_text.not_before.as_deref(),
        Some("2026-12-02T08:00:00Z")
    );
    wait_until(&app, "2026-12-02T07:59:00Z").await;
    assert_eq!(app.texts_sent().await.len(), 1, "not a minute early");
    wait_until(&app, "2026-12-02T08:00:00Z").await;
    let sent = app.texts_sent().await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["To"], "+447400123456");
    wait_until(&app, "2026-12-02T08:10:00Z").await;
    assert_eq!(app.texts_sent().await.len(), 2, "once");
}

#[tokio::test]
async fn a_us_pacific_caller_of_a_london_business_is_texted_in_their_own_morning() {
    // 12:00 in London is 04:00 in San Francisco.
    let app = app_at("2026-12-02T12:00:00Z").await;
    app.twilio_accepts(None).await;
    app.deliver(&sample("post_call_transcription.json")).await;
    app.drain_queue().await;
    let messages = app.deps.store.list_messages(50).await.unwrap();
    let caller_text = messages.iter().find(|m| m.audience == "caller").unwrap();
    // 08:00 PST.
    assert_eq!(
        caller_text.not_before.as_deref(),
        Some("2026-12-02T16:00:00Z")
    );
    wait_until(&app, "2026-12-02T16:00:00Z").await;
    assert!(app
        .texts_sent()
        .await
        .iter()
        .any(|t| t["To"] == "+14155550123"));
}

#[tokio::test]
async fn a_text_due_at_eleven_at_night_goes_at_eight_and_stop_meanwhile_stops_it() {
    let app = app_at("2026-12-02T23:00:00Z").await;
    app.twilio_accepts(Some(1)).await;
    let message = |id: &str, to: &str| NewMessage {
        id: id.into(),
        purpose: "info_recap",
        audience: Audience::Caller,
        to: PhoneNumber::parse(to, None).unwrap(),
        body: "Thanks for calling Northside.".into(),
        conversation_id: None,
        lead_id: None,
    };
    outbox::create_and_queue(&app.deps, message("recap:conv_late_1", "+447400123456"))
        .await
        .unwrap();
    outbox::create_and_queue(&app.deps, message("recap:conv_late_2", "+447400123457"))
        .await
        .unwrap();
    app.drain_queue().await;
    assert!(app.texts_sent().await.is_empty());
    // The second person says STOP before the morning.
    app.clock.set(at("2026-12-03T06:30:00Z"));
    assert_eq!(app.text(&sid(1), "+447400123457", "STOP").await, 200);
    wait_until(&app, "2026-12-03T08:00:00Z").await;
    let sent = app.texts_sent().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["To"], "+447400123456");
    let second = app
        .deps
        .store
        .get_message("recap:conv_late_2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.state, MessageState::Suppressed);
}

#[tokio::test]
async fn owner_alerts_keep_the_owners_hours_unless_the_lead_is_hot() {
    let app = spawn_app_with(Options {
        quiet_hours: true,
        business_toml: Some(Box::new(|t| {
            t.replace("hot_leads_any_time = true", "hot_leads_any_time = false")
        })),
        ..Options::default()
    })
    .await;
    app.clock.set(at("2026-12-02T03:00:00Z"));
    app.twilio_accepts(None).await;
    app.deliver(&sample_with(
        "post_call_transcription.json",
        from_london_caller,
    ))
    .await;
    app.drain_queue().await;
    assert!(app.texts_sent().await.is_empty(), "everyone is asleep");
    // The owner's window opens at 07:00, the caller's at 08:00.
    wait_until(&app, "2026-12-02T07:00:00Z").await;
    let sent = app.texts_sent().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["To"], "+442079460001");
    wait_until(&app, "2026-12-02T08:00:00Z").await;
    assert_eq!(app.texts_sent().await.len(), 2);
}

const CUSTOMER: &str = "+447400123456";

/// A boiler service on the first free slot of `date`, for CUSTOMER.
async fn book(app: &TestApp, date: &str) -> serde_json::Value {
    book_for(app, date, CUSTOMER).await
}

async fn book_for(app: &TestApp, date: &str, phone: &str) -> serde_json::Value {
    let slot = app.first_slot("boiler_service", date).await;
    let (status, booked) = app
        .tool(
            "create_booking",
            &json!({"service": "boiler_service", "start": slot["start"], "customer_name": "Maria Lopez",
                    "caller_phone": phone, "conversation_id": format!("conv_{date}")}),
        )
        .await;
    assert_eq!(status, 200, "{booked}");
    assert_eq!(booked["booked"], true, "{booked}");
    booked
}

#[tokio::test]
async fn a_booking_has_its_three_schedules_a_move_moves_them_and_a_cancel_deletes_them() {
    use frontdesk::sequences::{message_id, schedule_name, Step};
    let app = app_at("2026-11-23T09:00:00Z").await; // Monday
    app.twilio_accepts(None).await;
    let booked = book(&app, "2026-11-24").await;
    let id = booked["booking_id"].as_str().unwrap().to_string();
    let schedules = app.schedules().await;
    let names: Vec<&str> = schedules.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            schedule_name(Step::Reminder, &id),
            schedule_name(Step::Review, &id),
            schedule_name(Step::ReEngagement, &id)
        ]
    );
    assert_eq!(schedules[0].expression, "at(2026-11-23T17:00:00)");
    assert_eq!(schedules[0].time_zone, "Europe/London");
    assert_eq!(schedules[2].expression, "at(2026-12-24T10:00:00)");
    // Moved to Thursday: the same three names, later.
    let thursday = app.first_slot("boiler_service", "2026-11-26").await;
    let (status, moved) = app
        .tool(
            "update_booking",
            &json!({"action": "reschedule", "booking_id": id, "new_start": thursday["start"], "caller_phone": CUSTOMER}),
        )
        .await;
    assert_eq!(
        (status, moved["rescheduled"].clone()),
        (200, json!(true)),
        "{moved}"
    );
    let schedules = app.schedules().await;
    assert_eq!(schedules.len(), 3);
    assert_eq!(schedules[0].name, schedule_name(Step::Reminder, &id));
    assert_eq!(schedules[0].expression, "at(2026-11-25T17:00:00)");
    let first_reminder = app
        .deps
        .store
        .get_message(&message_id(Step::Reminder, &id, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first_reminder.state,
        MessageState::Suppressed,
        "the old time's reminder is void"
    );
    // Cancelled: none left, and nothing waiting.
    let (status, _) = app
        .tool(
            "update_booking",
            &json!({"action": "cancel", "booking_id": id, "caller_phone": CUSTOMER}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(app.schedules().await.is_empty());
    let second_reminder = app
        .deps
        .store
        .get_message(&message_id(Step::Reminder, &id, 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second_reminder.state, MessageState::Suppressed);
}

#[tokio::test]
async fn the_reminder_goes_the_day_before_at_five_once_however_often_it_fires() {
    let app = app_at("2026-11-23T09:00:00Z").await;
    app.twilio_accepts(None).await;
    book(&app, "2026-11-24").await;
    app.drain_queue().await; // the confirmation
    app.clock.set(at("2026-11-23T16:59:00Z"));
    assert!(app.fire_due_schedules().await.is_empty());
    app.clock.set(at("2026-11-23T17:00:00Z"));
    let fired = app.fire_due_schedules().await;
    assert_eq!(fired.len(), 1);
    // At-least-once delivery: the same job twice.
    app.deps
        .queue
        .enqueue(&fired[0].job, std::time::Duration::ZERO)
        .await
        .unwrap();
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    let reminders: Vec<_> = texts
        .iter()
        .filter(|t| t["Body"].contains("a reminder from"))
        .collect();
    assert_eq!(reminders.len(), 1, "{texts:?}");
    let body = &reminders[0]["Body"];
    assert!(
        body.contains("Reply C to confirm or R to rearrange"),
        "{body}"
    );
    assert_eq!(frontdesk::messaging::keywords::invites_opt_out(body), None);
    assert!(
        app.schedules()
            .await
            .iter()
            .all(|s| !s.name.starts_with("reminder-")),
        "deleted after firing"
    );
}

#[tokio::test]
async fn a_reminder_across_the_clock_change_keeps_its_local_hour() {
    // Booked on Friday for Monday 30 March 2026; the clocks go forward on Sunday the 29th.
    let app = app_at("2026-03-27T10:00:00Z").await;
    app.twilio_accepts(None).await;
    book(&app, "2026-03-30").await;
    let reminder = app.schedules().await.into_iter().next().unwrap();
    assert_eq!(reminder.expression, "at(2026-03-29T17:00:00)");
    assert_eq!(reminder.at, at("2026-03-29T16:00:00Z"), "17:00 BST");
}

#[tokio::test]
async fn a_reminder_already_past_at_night_is_skipped_not_sent_at_dawn() {
    // Booked at 21:30 on Monday for Tuesday morning: the reminder's 17:00 has gone, and the
    // quiet hours would hold it until 08:00, too close to the visit.
    let app = app_at("2026-11-23T21:30:00Z").await;
    app.twilio_accepts(None).await;
    let booked = book(&app, "2026-11-24").await;
    let id = booked["booking_id"].as_str().unwrap();
    let names: Vec<String> = app.schedules().await.into_iter().map(|s| s.name).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("reminder-")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with(id)));
}

#[tokio::test]
async fn stop_before_the_reminder_deletes_its_schedules_and_nothing_is_sent() {
    let app = app_at("2026-11-23T09:00:00Z").await;
    app.twilio_accepts(None).await;
    book(&app, "2026-11-24").await;
    app.drain_queue().await; // the confirmation
    assert_eq!(app.schedules().await.len(), 3);
    app.clock.set(at("2026-11-23T12:00:00Z"));
    assert_eq!(app.text(&sid(1), CUSTOMER, "STOP").await, 200);
    app.drain_queue().await;
    assert!(
        app.schedules().await.is_empty(),
        "an opt-out deletes the person's schedules"
    );
    // Even a schedule that fired anyway (it was already on its way) sends nothing.
    let before = app.texts_sent().await.len();
    app.clock.set(at("2026-11-23T17:00:00Z"));
    let booking_id = app
        .items()
        .await
        .iter()
        .find_map(|i| attr(i, "booking_id"))
        .unwrap();
    let reminder =
        frontdesk::sequences::message_id(frontdesk::sequences::Step::Reminder, &booking_id, 1);
    let job = frontdesk::jobs::Job::SendMessage {
        tenant: app.deps.config.tenant.to_string(),
        message_id: reminder.clone(),
    };
    app.deps
        .queue
        .enqueue(&job, std::time::Duration::ZERO)
        .await
        .unwrap();
    outbox::sweep(&app.deps).await.unwrap();
    app.drain_queue().await;
    assert_eq!(app.texts_sent().await.len(), before);
    let reminder = app
        .deps
        .store
        .get_message(&reminder)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reminder.state, MessageState::Suppressed);
}

#[tokio::test]
async fn a_new_york_business_reminds_at_five_local_across_the_fall_back() {
    // Booked on Friday 30 October 2026 for Monday 2 November; New York's clocks go back on
    // Sunday 1 November (EDT, UTC-4, to EST, UTC-5).
    let app = spawn_app_with(Options {
        quiet_hours: true,
        business_toml: Some(Box::new(|toml| {
            toml.replace(
                r#"time_zone = "Europe/London""#,
                r#"time_zone = "America/New_York""#,
            )
        })),
        ..Options::default()
    })
    .await;
    app.clock.set(at("2026-10-30T14:00:00Z"));
    app.twilio_accepts(None).await;
    book_for(&app, "2026-11-02", "+12125550143").await;
    app.drain_queue().await;
    let reminder = app.schedules().await.into_iter().next().unwrap();
    assert_eq!(
        (reminder.expression.as_str(), reminder.time_zone.as_str()),
        ("at(2026-11-01T17:00:00)", "America/New_York")
    );
    assert_eq!(reminder.at, at("2026-11-01T22:00:00Z"), "17:00 EST");
    let before = app.texts_sent().await.len();
    app.clock.set(at("2026-11-01T21:00:00Z")); // 17:00 had the clocks not gone back
    assert!(app.fire_due_schedules().await.is_empty());
    app.clock.set(at("2026-11-01T22:00:00Z"));
    assert_eq!(app.fire_due_schedules().await.len(), 1);
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    assert_eq!(texts.len(), before + 1, "{texts:?}");
    assert!(
        texts[before]["Body"].contains("a reminder from"),
        "{texts:?}"
    );
    assert_eq!(texts[before]["To"], "+12125550143");
}
