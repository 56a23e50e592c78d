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
