//! Timed work, black-box, with the movable clock: quiet hours in the recipient's zone.

use frontdesk::outbox::{self, Audience, NewMessage};
use frontdesk::phone::PhoneNumber;
use frontdesk::store::messages::MessageState;
use frontdesk_blackbox::*;
use serde_json::json;

/// The demo business moved to another time zone, quiet hours on.
async fn business_in(zone: &'static str) -> TestApp {
    spawn_app_with(Options {
        quiet_hours: true,
        business_toml: Some(Box::new(move |toml| {
            toml.replace(
                r#"time_zone = "Europe/London""#,
                &format!(r#"time_zone = "{zone}""#),
            )
        })),
        ..Options::default()
    })
    .await
}

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
    let app = business_in("America/New_York").await;
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

// Quote follow-ups.

async fn llm_writes(app: &TestApp, text: &str) {
    use wiremock::matchers::{method, path};
    wiremock::Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 10, "output_tokens": 10},
        })))
        .mount(&app.llm)
        .await;
}

/// The customer asks by text, so they have an open lead; its id.
async fn lead_from_a_text(app: &TestApp, n: u32) -> String {
    assert_eq!(
        app.text(
            &sid(n),
            CUSTOMER,
            "How much would a new boiler be? I'm Maria."
        )
        .await,
        200
    );
    app.drain_queue().await;
    let phone = PhoneNumber::parse(CUSTOMER, None).unwrap();
    let contact = app.deps.store.get_contact(&phone).await.unwrap().unwrap();
    contact
        .open_lead_id
        .expect("the text opened a lead")
        .to_string()
}

async fn mark_quoted(app: &TestApp, lead: &str, quote: &str) -> serde_json::Value {
    let token = app.reviewer_token();
    let (status, body) = app
        .qa(
            "POST",
            &format!("/leads/{lead}/quoted"),
            Some(&token),
            Some(&json!({ "quote": quote })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.drain_queue().await;
    body
}

/// The quote follow-ups' schedules, by name.
fn quote_schedules(schedules: &[frontdesk::schedules::Scheduled]) -> Vec<String> {
    let mut names: Vec<String> = schedules
        .iter()
        .map(|s| s.name.clone())
        .filter(|n| n.starts_with("quote-"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_quote_is_chased_at_three_and_seven_days_until_the_customer_answers() {
    use frontdesk::ids::LeadId;
    use frontdesk::quotes::{message_id, schedule_name, QuoteStep};
    let app = app_at("2026-11-23T10:00:00Z").await;
    app.twilio_accepts(None).await;
    let written = "Hi Maria, it's Northside Plumbing: did our boiler quote reach you? Happy to answer any questions.";
    llm_writes(&app, written).await;
    let lead = lead_from_a_text(&app, 50).await;
    let marked = mark_quoted(&app, &lead, "£2,400 fitted").await;
    let dues: Vec<&str> = marked["follow_ups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["due"].as_str().unwrap())
        .collect();
    assert_eq!(
        dues,
        [
            "2026-11-26T10:00:00Z",
            "2026-11-30T10:00:00Z",
            "2026-12-07T10:00:00Z"
        ]
    );
    let id = LeadId::parse(&lead).unwrap();
    let expected: Vec<String> = [
        QuoteStep::CheckIn,
        QuoteStep::OwnerFlag,
        QuoteStep::Reminder,
    ]
    .iter()
    .map(|&s| schedule_name(s, &id))
    .collect();
    assert_eq!(quote_schedules(&app.schedules().await), expected);
    // Marked again an hour later: the same dates, nothing doubled.
    app.clock.set(at("2026-11-23T11:00:00Z"));
    let again = mark_quoted(&app, &lead, "£2,400 fitted").await;
    assert_eq!(again["follow_ups"], marked["follow_ups"]);
    assert_eq!(quote_schedules(&app.schedules().await).len(), 3);
    // The LLM wrote the check-in for this enquiry, from the lead's details and the prompt.
    let check_in = app
        .deps
        .store
        .get_message(&message_id(QuoteStep::CheckIn, &id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(check_in.body, written);
    let requests = app.llm.received_requests().await.unwrap();
    let asked = requests
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .find(|b| b.contains("£2,400 fitted"))
        .expect("the quote was in the brief");
    assert!(asked.contains("three days"), "{asked}");
    // Three days on, the check-in goes.
    let before = app.texts_sent().await.len();
    app.clock.set(at("2026-11-26T10:00:00Z"));
    assert_eq!(app.fire_due_schedules().await.len(), 1);
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    assert_eq!(texts.len(), before + 1);
    assert_eq!(
        (texts[before]["To"].as_str(), texts[before]["Body"].as_str()),
        (CUSTOMER, written)
    );
    // She answers: the reminder and the owner's 14-day flag are off, and the owner hears now.
    app.clock.set(at("2026-11-27T09:00:00Z"));
    assert_eq!(
        app.text(&sid(51), CUSTOMER, "Got it, could you do 2,200?")
            .await,
        200
    );
    app.drain_queue().await;
    assert!(quote_schedules(&app.schedules().await).is_empty());
    for step in [QuoteStep::Reminder, QuoteStep::OwnerFlag] {
        let m = app
            .deps
            .store
            .get_message(&message_id(step, &id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.state, MessageState::Suppressed, "{step:?}");
    }
    let texts = app.texts_sent().await;
    let owner = app
        .deps
        .tenant()
        .await
        .unwrap()
        .business
        .owner_phone
        .to_string();
    let pinged: Vec<_> = texts
        .iter()
        .filter(|t| t["To"] == owner && t["Body"].contains("replied about the quote"))
        .collect();
    assert_eq!(pinged.len(), 1, "{texts:?}");
    assert!(pinged[0]["Body"].contains("could you do 2,200?"));
    // A week and two weeks on: nothing more about the quote.
    let count = texts.len();
    for time in ["2026-11-30T10:00:00Z", "2026-12-07T10:00:00Z"] {
        wait_until(&app, time).await;
        app.fire_due_schedules().await;
        app.drain_queue().await;
    }
    assert_eq!(app.texts_sent().await.len(), count);
}

#[tokio::test]
async fn without_the_llm_the_templates_chase_the_quote_and_a_booking_stops_the_rest() {
    use frontdesk::ids::LeadId;
    use frontdesk::quotes::{message_id, QuoteStep};
    let app = spawn_app_with(Options {
        quiet_hours: true,
        llm_api_key: false,
        ..Options::default()
    })
    .await;
    app.clock.set(at("2026-11-23T10:00:00Z"));
    app.twilio_accepts(None).await;
    let lead = lead_from_a_text(&app, 60).await;
    mark_quoted(&app, &lead, "£180").await;
    let id = LeadId::parse(&lead).unwrap();
    let check_in = app
        .deps
        .store
        .get_message(&message_id(QuoteStep::CheckIn, &id))
        .await
        .unwrap()
        .unwrap();
    assert!(
        check_in.body.contains("checking you got our quote"),
        "{}",
        check_in.body
    );
    let flag = app
        .deps
        .store
        .get_message(&message_id(QuoteStep::OwnerFlag, &id))
        .await
        .unwrap()
        .unwrap();
    assert!(flag.body.contains("(£180)"), "{}", flag.body);
    assert_eq!(quote_schedules(&app.schedules().await).len(), 3);
    // She books instead of answering: the quote's follow-ups stop, the booking's own begin.
    book(&app, "2026-11-25").await;
    assert!(quote_schedules(&app.schedules().await).is_empty());
    assert_eq!(
        app.schedules().await.len(),
        3,
        "the booking's reminder, review and check-in"
    );
    let check_in = app
        .deps
        .store
        .get_message(&message_id(QuoteStep::CheckIn, &id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(check_in.state, MessageState::Suppressed);
}

#[tokio::test]
async fn marking_an_unknown_lead_quoted_is_a_404_and_a_bad_body_a_400_with_nothing_written() {
    let app = app_at("2026-11-23T10:00:00Z").await;
    let token = app.reviewer_token();
    let before = app.items().await.len();
    let (status, _) = app
        .qa(
            "POST",
            "/leads/lead_00000000000000000000/quoted",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .qa("POST", "/leads/not%20a%20lead/quoted", Some(&token), None)
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .qa(
            "POST",
            "/leads/lead_00000000000000000000/quoted",
            Some(&token),
            Some(&json!({"quote": 5})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .qa(
            "POST",
            "/leads/lead_00000000000000000000/quoted",
            None,
            None,
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(app.items().await.len(), before);
    assert_eq!(app.queued().await, 0);
}

// The owner's digest.

#[tokio::test]
async fn the_owner_gets_one_digest_at_half_past_seven_and_none_on_a_quiet_day() {
    use frontdesk::digest;
    let app = app_at("2026-11-23T09:00:00Z").await;
    app.twilio_accepts(None).await;
    book(&app, "2026-11-24").await;
    app.drain_queue().await;
    app.clock.set(at("2026-11-24T07:29:00Z"));
    assert_eq!(
        digest::send_if_due(&app.deps).await.unwrap(),
        None,
        "not before its time"
    );
    app.clock.set(at("2026-11-24T07:30:00Z"));
    assert_eq!(
        digest::send_if_due(&app.deps).await.unwrap(),
        Some("owner-digest:2026-11-24".into())
    );
    app.drain_queue().await;
    app.clock.set(at("2026-11-24T07:35:00Z"));
    assert_eq!(
        digest::send_if_due(&app.deps).await.unwrap(),
        None,
        "once a day"
    );
    // The next day nothing happened: no digest.
    for time in ["2026-11-25T07:30:00Z", "2026-11-25T12:00:00Z"] {
        app.clock.set(at(time));
        assert_eq!(digest::send_if_due(&app.deps).await.unwrap(), None);
    }
    let owner = app
        .deps
        .tenant()
        .await
        .unwrap()
        .business
        .owner_phone
        .to_string();
    let digests: Vec<_> = app
        .texts_sent()
        .await
        .into_iter()
        .filter(|t| t["To"] == owner && t["Body"].contains("since yesterday morning"))
        .collect();
    assert_eq!(digests.len(), 1);
    assert!(
        digests[0]["Body"].contains("(Tue 24 Nov): 0 calls, 1 booking, 0 hot leads."),
        "{:?}",
        digests[0]
    );
}

// A simulated week.

/// The same "random" week every run.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

enum Act {
    Book(usize),
    Cancel(usize),
    Ask(usize),
    Quote(usize),
    Reply(usize),
    Stop(usize),
}

#[tokio::test]
async fn a_simulated_week_sends_nothing_at_night_and_nothing_after_stop() {
    use frontdesk::quiet::{zones_of, Window};
    use std::collections::HashMap;
    let app = spawn_app_with(Options {
        quiet_hours: true,
        // Room for 200 bookings in the month ahead.
        business_toml: Some(Box::new(|toml| {
            toml.replace("daily_limit = 6", "daily_limit = 40")
        })),
        ..Options::default()
    })
    .await;
    let start = at("2026-11-23T00:00:00Z"); // a Monday, London on GMT
    app.clock.set(start);
    app.twilio_accepts(None).await;
    llm_writes(&app, "Thanks for getting in touch: we can help with that.").await;
    let tenant = app.deps.tenant().await.unwrap();
    let owner = tenant.business.owner_phone.to_string();
    // A London business's customers: UK, New York and Los Angeles numbers in turn.
    let person = |i: usize| match i % 3 {
        0 => format!("+447400{:06}", 200_000 + i),
        1 => format!("+1212736{:04}", 1000 + i),
        _ => format!("+1415749{:04}", 1000 + i),
    };
    // The clock moves half an hour at a time; schedules fire and the queue runs every tick,
    // the sweep (the safety net) every hour.
    const TICK_MINUTES: i64 = 30;
    let ticks: i64 = 7 * 24 * 60 / TICK_MINUTES;
    let mut dice = Dice(2026);
    // In ticks from Monday 00:00.
    let hours = |h: i64| h * 60 / TICK_MINUTES;
    let mut plan: Vec<(i64, Act)> = Vec::new();
    for k in 0..200 {
        // Bookings around the clock (the agent answers at 3 a.m. too); some say STOP later,
        // some cancel.
        let t = k as i64 * ticks / 200 + dice.roll(2) as i64;
        plan.push((t, Act::Book(k)));
        if k % 10 == 5 {
            plan.push((t + 1 + dice.roll(hours(50) as u64) as i64, Act::Stop(k)));
        }
        if k % 20 == 7 {
            plan.push((t + hours(2), Act::Cancel(k)));
        }
    }
    for q in 0..100 {
        let who = 200 + q;
        // Enquiries over the first four days, quoted an hour later; a quarter answer the
        // three-day check-in, a tenth say STOP.
        let t = q as i64 * hours(4 * 24) / 100 + dice.roll(2) as i64;
        plan.push((t, Act::Ask(who)));
        plan.push((t + hours(1), Act::Quote(who)));
        if q % 4 == 1 {
            plan.push((t + hours(1 + 3 * 24 + 10), Act::Reply(who)));
        }
        if q % 10 == 3 {
            plan.push((
                t + hours(8) + dice.roll(hours(25) as u64) as i64,
                Act::Stop(who),
            ));
        }
    }
    plan.sort_by_key(|(t, _)| *t);
    let mut plan = plan.into_iter().peekable();
    let mut bookings: HashMap<usize, String> = HashMap::new();
    let mut leads: HashMap<usize, String> = HashMap::new();
    let mut stopped: HashMap<String, jiff::Timestamp> = HashMap::new();
    let mut seen = 0;
    let mut sid_n = 10_000;
    let mut night_sends = Vec::new();
    let mut after_stop = Vec::new();
    for tick in 0..=ticks {
        let now = start
            .checked_add(jiff::SignedDuration::from_mins(tick * TICK_MINUTES))
            .unwrap();
        app.clock.set(now);
        while let Some((_, act)) = plan.next_if(|(t, _)| *t <= tick) {
            sid_n += 1;
            match act {
                Act::Book(k) => {
                    let today = now.to_zoned(tenant.time_zone()).date();
                    // Spread over the month ahead, a few a day.
                    for ahead in 1 + (k as i64 % 24)..40 {
                        let date = today
                            .checked_add(jiff::Span::new().days(ahead))
                            .unwrap()
                            .to_string();
                        let slot = app.first_slot("boiler_service", &date).await;
                        if slot.is_null() {
                            continue;
                        }
                        let (status, booked) = app
                            .tool(
                                "create_booking",
                                &json!({"service": "boiler_service", "start": slot["start"], "customer_name": format!("Customer {k}"),
                                        "caller_phone": person(k), "conversation_id": format!("conv_week_{k}")}),
                            )
                            .await;
                        assert_eq!(status, 200, "{booked}");
                        if booked["booked"] == true {
                            bookings.insert(k, booked["booking_id"].as_str().unwrap().to_string());
                            break;
                        }
                    }
                    assert!(bookings.contains_key(&k), "booking {k} found no slot");
                }
                Act::Cancel(k) => {
                    let (status, answer) = app
                        .tool("update_booking", &json!({"action": "cancel", "booking_id": bookings[&k], "caller_phone": person(k)}))
                        .await;
                    assert_eq!(status, 200, "{answer}");
                }
                Act::Ask(who) => {
                    assert_eq!(
                        app.text(
                            &sid(sid_n),
                            &person(who),
                            "Could you quote for a new boiler?"
                        )
                        .await,
                        200
                    );
                }
                Act::Quote(who) => {
                    app.drain_queue().await;
                    let phone = PhoneNumber::parse(&person(who), None).unwrap();
                    let contact = app.deps.store.get_contact(&phone).await.unwrap().unwrap();
                    let lead = contact
                        .open_lead_id
                        .expect("an enquiry opens a lead")
                        .to_string();
                    let (status, body) = app
                        .qa(
                            "POST",
                            &format!("/leads/{lead}/quoted"),
                            Some(&app.reviewer_token()),
                            Some(&json!({"quote": "£2,100"})),
                        )
                        .await;
                    assert_eq!(status, 200, "{body}");
                    leads.insert(who, lead);
                }
                Act::Reply(who) => {
                    assert_eq!(
                        app.text(
                            &sid(sid_n),
                            &person(who),
                            "Thanks, can we talk about the price?"
                        )
                        .await,
                        200
                    );
                }
                Act::Stop(who) => {
                    stopped.insert(person(who), now);
                    assert_eq!(app.text(&sid(sid_n), &person(who), "STOP").await, 200);
                }
            }
        }
        app.fire_due_schedules().await;
        if tick % 2 == 0 {
            outbox::sweep(&app.deps).await.unwrap();
        }
        while app.poll_queue_once().await > 0 {}
        let texts = app.texts_sent().await;
        for text in &texts[seen..] {
            let to = &text["To"];
            let phone = PhoneNumber::parse(to, None).unwrap();
            let window = if *to == owner {
                Window::STAFF
            } else {
                Window::CUSTOMERS
            };
            let mut zones = zones_of(&phone, now);
            if zones.is_empty() {
                zones.push(tenant.time_zone());
            }
            if zones
                .iter()
                .any(|z| !window.allows(now.to_zoned(z.clone()).time()))
            {
                night_sends.push(format!("{now} to {to}: {}", text["Body"]));
            }
            if stopped.get(to).is_some_and(|t| *t <= now) {
                after_stop.push(format!("{now} to {to}: {}", text["Body"]));
            }
        }
        seen = texts.len();
    }
    assert!(
        night_sends.is_empty(),
        "sent in someone's night: {night_sends:#?}"
    );
    assert!(after_stop.is_empty(), "sent after STOP: {after_stop:#?}");
    // What became of every message.
    let messages: Vec<frontdesk::store::messages::OutboundMessage> = app
        .items()
        .await
        .into_iter()
        .filter(|i| attr(i, "SK").as_deref() == Some("MSG"))
        .map(|i| {
            frontdesk::store::from_value(aws_sdk_dynamodb::types::AttributeValue::M(i)).unwrap()
        })
        .collect();
    let end = app.now();
    let count = |f: &dyn Fn(&frontdesk::store::messages::OutboundMessage) -> bool| {
        messages.iter().filter(|m| f(m)).count()
    };
    let sent = count(&|m| m.state == MessageState::Sent);
    let to_owner = count(&|m| m.state == MessageState::Sent && m.audience == "owner");
    let deferred = count(&|m| m.quiet_deferrals > 0);
    let suppressed = count(&|m| m.state == MessageState::Suppressed);
    let opted_out = count(&|m| {
        m.state == MessageState::Suppressed
            && m.error_detail
                .as_deref()
                .is_some_and(|d| d.contains("opted out"))
    });
    let waits_past_the_week = |m: &frontdesk::store::messages::OutboundMessage| {
        m.state == MessageState::Deferred
            && m.not_before
                .as_deref()
                .is_some_and(|t| t.parse::<jiff::Timestamp>().unwrap() > end)
    };
    let later = count(&waits_past_the_week);
    let stuck: Vec<_> = messages
        .iter()
        .filter(|m| {
            !matches!(m.state, MessageState::Sent | MessageState::Suppressed)
                && !waits_past_the_week(m)
        })
        .map(|m| format!("{} {:?} {:?}", m.message_id, m.state, m.not_before))
        .collect();
    let counts = format!(
        "simulated week: 200 bookings, 100 quotes, {} people (UK, US Eastern, US Pacific), {} said STOP: \
         {sent} texts sent ({to_owner} to the owner), {deferred} waited for quiet hours, {suppressed} suppressed \
         ({opted_out} opted out, {} by a change, a reply or a booking), {later} due after the week",
        300,
        stopped.len(),
        suppressed - opted_out,
    );
    println!("{counts}");
    // make test prints it after the totals (cargo keeps a passing test's output to itself).
    let _ = std::fs::create_dir_all(workspace().join(".local"));
    let _ = std::fs::write(
        workspace().join(".local/simulated-week.txt"),
        format!("{counts}\n"),
    );
    assert_eq!(sent, seen, "every sent message reached Twilio once");
    assert!(stuck.is_empty(), "due and not settled: {stuck:#?}");
    assert!(deferred > 0 && opted_out > 0 && suppressed > opted_out && later > 0);
}

#[tokio::test]
async fn a_reminder_due_at_eleven_at_night_for_the_customer_goes_at_eight_their_time() {
    // A Chicago business reminds at 17:00 Chicago time: 23:00 for its customer in London.
    let app = business_in("America/Chicago").await;
    app.clock.set(at("2026-11-23T15:00:00Z")); // Monday 09:00 in Chicago
    app.twilio_accepts(None).await;
    book(&app, "2026-11-25").await;
    app.drain_queue().await;
    let before = app.texts_sent().await.len();
    app.clock.set(at("2026-11-24T23:00:00Z")); // Tuesday 17:00 in Chicago, 23:00 in London
    assert_eq!(app.fire_due_schedules().await.len(), 1);
    app.drain_queue().await;
    assert_eq!(
        app.texts_sent().await.len(),
        before,
        "not at 23:00 in London"
    );
    wait_until(&app, "2026-11-25T07:59:00Z").await;
    app.fire_due_schedules().await;
    app.drain_queue().await;
    assert_eq!(app.texts_sent().await.len(), before);
    wait_until(&app, "2026-11-25T08:00:00Z").await;
    app.fire_due_schedules().await;
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    assert_eq!(texts.len(), before + 1, "{texts:?}");
    assert!(texts[before]["Body"].contains("a reminder from"));
    assert_eq!(texts[before]["To"], CUSTOMER);
}
