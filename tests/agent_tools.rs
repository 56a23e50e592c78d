//! The agent's other tools over HTTP, black-box: moving and cancelling bookings (also under
//! contention), recognising callers, leads and their dispatch, escalation, call notes, tenant
//! isolation, and 400s that write nothing.

use frontdesk_blackbox::frontdesk::store::bookings::BookingStatus;
use frontdesk_blackbox::frontdesk::tools::caller::INIT_VARIABLES;
use frontdesk_blackbox::*;
use serde_json::{json, Value};

const CALLER: &str = "+447911123456";
const OTHER_CALLER: &str = "+14155550199";

/// Monday 23 November 2026, 7am in London: the week ahead is open.
fn monday_morning(app: &TestApp) {
    app.clock.set("2026-11-23T07:00:00Z".parse().unwrap());
}

async fn book(app: &TestApp, start: &Value, name: &str, phone: &str, conv: &str) -> Value {
    let (status, answer) = app
        .tool(
            "create_booking",
            &json!({"service": "boiler_service", "start": start, "customer_name": name,
                    "caller_phone": phone, "conversation_id": conv}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// A Wednesday booking for the caller, and the update_booking request that moves it to the
/// first Thursday slot: (booking id, Wednesday's slot, the request).
async fn wednesday_booking_and_move_to_thursday(
    app: &TestApp,
    booked_in: &str,
    moved_in: &str,
) -> (String, Value, Value) {
    monday_morning(app);
    app.twilio_accepts(None).await;
    let wednesday = app.first_slot("boiler_service", "2026-11-25").await;
    let booked = book(app, &wednesday["start"], "Maria Lopez", CALLER, booked_in).await;
    let id = booked["booking_id"].as_str().unwrap().to_string();
    let thursday = app.first_slot("boiler_service", "2026-11-26").await;
    let request = json!({"action": "reschedule", "booking_id": id, "new_start": thursday["start"],
                         "caller_phone": CALLER, "conversation_id": moved_in});
    (id, wednesday, request)
}

fn bodies_to<'a>(texts: &'a [std::collections::HashMap<String, String>], to: &str) -> Vec<&'a str> {
    texts
        .iter()
        .filter(|t| t["To"] == to)
        .map(|t| t.get("Body").map(String::as_str).unwrap_or(""))
        .collect()
}

#[tokio::test]
async fn a_booking_moves_with_one_text_and_one_event_however_often_it_is_asked() {
    let app = spawn_app().await;
    let (id, wednesday, request) =
        wednesday_booking_and_move_to_thursday(&app, "conv_move_1", "conv_move_2").await;
    let id = id.as_str();
    let (status, moved) = app.tool("update_booking", &request).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["rescheduled"], true, "{moved}");
    assert_eq!(moved["booking_id"], id);
    assert_eq!(moved["spoken"], "Thursday 26 November at 8am");
    assert!(moved["say"]
        .as_str()
        .unwrap()
        .contains("Thursday 26 November at 8am"));
    // Asked again (a retried tool call): the same answer, nothing new.
    let (_, again) = app.tool("update_booking", &request).await;
    assert_eq!(again["rescheduled"], true, "{again}");
    let record = app.booking(id).await;
    assert_eq!(record.start, "2026-11-26T08:00:00Z");
    assert_eq!(
        record.previous_start.as_deref(),
        Some("2026-11-25T08:00:00Z")
    );
    // Wednesday's cells are free again; Thursday's are held.
    assert_eq!(record.cells.len(), 3, "60 minutes and a 30-minute buffer");
    assert_eq!(app.cells_held(id).await, 3);
    let freed = app.first_slot("boiler_service", "2026-11-25").await;
    assert_eq!(freed["start"], wednesday["start"]);
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    let to_caller = bodies_to(&texts, CALLER);
    assert_eq!(
        to_caller.len(),
        2,
        "confirmation and one change: {to_caller:?}"
    );
    assert!(to_caller
        .iter()
        .any(|b| b.contains("has moved to Thursday 26 November at 8am")));
    let moves = app.events_of("booking.rescheduled").await;
    assert_eq!(moves.len(), 1, "{:?}", app.event_kinds().await);
    assert_eq!(moves[0]["previous_start"], "2026-11-25T08:00:00Z");
    assert_eq!(moves[0]["start"], "2026-11-26T08:00:00Z");
}

#[tokio::test]
async fn a_failed_move_keeps_the_original_slot() {
    let app = spawn_app().await;
    monday_morning(&app);
    app.twilio_accepts(None).await;
    let wednesday = app.first_slot("boiler_service", "2026-11-25").await;
    let mine = book(
        &app,
        &wednesday["start"],
        "Maria Lopez",
        CALLER,
        "conv_keep_1",
    )
    .await;
    let id = mine["booking_id"].as_str().unwrap().to_string();
    // Thursday 8am: both technicians taken by others.
    let thursday = app.first_slot("boiler_service", "2026-11-26").await;
    for i in 0..2 {
        let b = book(
            &app,
            &thursday["start"],
            &format!("Other {i}"),
            OTHER_CALLER,
            &format!("conv_keep_o{i}"),
        )
        .await;
        assert_eq!(b["booked"], true);
    }
    let (status, refused) = app
        .tool(
            "update_booking",
            &json!({"action": "reschedule", "booking_id": id, "new_start": thursday["start"], "caller_phone": CALLER}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(refused["code"], "slot_taken", "{refused}");
    assert_eq!(refused["kept"]["start"], wednesday["start"]);
    assert!(refused["say"]
        .as_str()
        .unwrap()
        .ends_with("Your booking on Wednesday 25 November at 8am is still in place."));
    assert!(!refused["alternatives"].as_array().unwrap().is_empty());
    assert_eq!(app.booking(&id).await.start, "2026-11-25T08:00:00Z");
    assert_eq!(
        app.cells_held(&id).await,
        3,
        "the original cells are still held"
    );
}

#[tokio::test]
async fn reschedule_under_contention_never_loses_the_customers_original_slot() {
    let app = spawn_app().await;
    monday_morning(&app);
    app.twilio_accepts(None).await;
    // Several rounds: each races one move against six new bookings for the same time.
    let days = ["2026-11-25", "2026-11-26", "2026-11-27"];
    let mut moved_rounds = 0;
    for (round, day) in days.iter().enumerate() {
        let original = app.first_slot("leak_repair", day).await;
        let (_, mine) = app
            .tool("create_booking", &json!({"service": "leak_repair", "start": original["start"],
                  "customer_name": "Maria Lopez", "caller_phone": CALLER, "conversation_id": format!("conv_race_m{round}")}))
            .await;
        let id = mine["booking_id"].as_str().unwrap().to_string();
        let (_, later) = app
            .tool(
                "check_availability",
                &json!({"service": "leak_repair", "date": day, "time_of_day": "afternoon"}),
            )
            .await;
        let target = later["slots"][0]["start"].clone();
        let move_call = {
            let app = &app;
            let body = json!({"action": "reschedule", "booking_id": id, "new_start": target, "caller_phone": CALLER});
            async move { app.tool("update_booking", &body).await }
        };
        let rivals = (0..6).map(|i| {
            let app = &app;
            let body = json!({"service": "leak_repair", "start": target, "customer_name": format!("Rival {i}"),
                              "caller_phone": OTHER_CALLER, "conversation_id": format!("conv_race_{round}_{i}")});
            async move { app.tool("create_booking", &body).await }
        });
        let (moved, rivals) = futures_join(move_call, join_all(rivals)).await;
        assert_eq!(moved.0, 200, "{:?}", moved.1);
        let rivals_booked = rivals.iter().filter(|(_, a)| a["booked"] == true).count();
        let record = app.booking(&id).await;
        let start = record.start.clone();
        if moved.1["rescheduled"] == true {
            moved_rounds += 1;
            assert_eq!(rivals_booked, 1, "two technicians: the move and one rival");
            assert_eq!(
                start,
                target
                    .as_str()
                    .unwrap()
                    .parse::<jiff::Timestamp>()
                    .unwrap()
                    .to_string()
            );
        } else {
            assert_eq!(moved.1["code"], "slot_taken", "{}", moved.1);
            assert_eq!(rivals_booked, 2);
            assert_eq!(
                start,
                original["start"]
                    .as_str()
                    .unwrap()
                    .parse::<jiff::Timestamp>()
                    .unwrap()
                    .to_string(),
                "a failed move leaves the booking where it was"
            );
        }
        assert_eq!(
            app.cells_held(&id).await,
            record.cells.len(),
            "every cell of the booking is locked by it"
        );
    }
    // Never two bookings overlapping on one technician, and each holds all its cells.
    let mut held = std::collections::HashMap::new();
    let week = app
        .now()
        .checked_add(jiff::SignedDuration::from_hours(24 * 7))
        .unwrap();
    for b in app
        .deps
        .store
        .bookings_between(app.now(), week)
        .await
        .unwrap()
    {
        assert_eq!(app.deps.store.cells_held(&b).await.unwrap(), b.cells.len());
        for cell in &b.cells {
            assert!(
                held.insert((b.resource.clone(), cell.clone()), b.booking_id.clone())
                    .is_none(),
                "overlap on {}",
                b.resource
            );
        }
    }
    println!(
        "moves that won their race: {moved_rounds} of {}",
        days.len()
    );
}

/// Both futures at once.
async fn futures_join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}

#[tokio::test]
async fn cancelling_frees_the_slot_once_and_only_for_the_bookings_own_number() {
    let app = spawn_app().await;
    monday_morning(&app);
    app.twilio_accepts(None).await;
    let slot = app.first_slot("boiler_service", "2026-11-25").await;
    let mine = book(&app, &slot["start"], "Maria Lopez", CALLER, "conv_cancel_1").await;
    let id = mine["booking_id"].as_str().unwrap();
    let (_, stranger) = app
        .tool(
            "update_booking",
            &json!({"action": "cancel", "booking_id": id, "caller_phone": OTHER_CALLER}),
        )
        .await;
    assert_eq!(stranger["code"], "not_callers_booking", "{stranger}");
    // A withheld number cannot prove the booking is theirs either.
    let (_, withheld) = app
        .tool(
            "update_booking",
            &json!({"action": "cancel", "booking_id": id, "caller_phone": "anonymous"}),
        )
        .await;
    assert_eq!(withheld["code"], "not_callers_booking", "{withheld}");
    // No booking id: the caller's next booking.
    let (_, cancelled) = app
        .tool(
            "update_booking",
            &json!({"action": "cancel", "caller_phone": CALLER, "reason": "sorted it myself"}),
        )
        .await;
    assert_eq!(cancelled["cancelled"], true, "{cancelled}");
    assert_eq!(cancelled["booking_id"], id);
    let (_, again) = app
        .tool(
            "update_booking",
            &json!({"action": "cancel", "booking_id": id, "caller_phone": CALLER}),
        )
        .await;
    assert_eq!(again["cancelled"], true);
    assert_eq!(app.cells_held(id).await, 0);
    // The caller changes their mind back: the same request books again, as a new booking.
    let rebooked = book(&app, &slot["start"], "Maria Lopez", CALLER, "conv_cancel_1").await;
    assert_eq!(rebooked["booked"], true, "{rebooked}");
    assert_ne!(rebooked["booking_id"], id);
    // And the other technician is free at that time too.
    let other = book(&app, &slot["start"], "Next", OTHER_CALLER, "conv_cancel_n").await;
    assert_eq!(other["booked"], true, "{other}");
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    let to_caller = bodies_to(&texts, CALLER);
    assert_eq!(
        to_caller
            .iter()
            .filter(|b| b.contains("is cancelled"))
            .count(),
        1,
        "{to_caller:?}"
    );
}

#[tokio::test]
async fn a_returning_caller_is_recognised_before_the_call_connects() {
    let app = spawn_app().await;
    monday_morning(&app);
    app.twilio_accepts(None).await;
    let init = |caller: &str| {
        json!({"caller_id": caller, "agent_id": "agent_4501k7bq2xm9fexv0c3hjz8r6tne",
               "called_number": "+442079460000", "call_sid": "CA5f0d6c2a9e8b4c71a3d2e1f0b9c8a7d6"})
    };
    let path = "/webhooks/elevenlabs/conversation-init";
    // Unknown, withheld, and a wrong secret.
    let (status, unknown) = app.post_with_secret(path, TOOL_SECRET, &init(CALLER)).await;
    assert_eq!(status, 200);
    assert_eq!(unknown["type"], "conversation_initiation_client_data");
    let vars = unknown["dynamic_variables"].as_object().unwrap();
    let mut keys: Vec<&str> = vars.keys().map(String::as_str).collect();
    keys.sort();
    let mut expected = INIT_VARIABLES.to_vec();
    expected.sort();
    assert_eq!(keys, expected, "every variable, always");
    assert_eq!(vars["caller_known"], false);
    assert_eq!(vars["business_name"], "Northside Plumbing & Heating");
    let (status, withheld) = app
        .post_with_secret(path, TOOL_SECRET, &init("anonymous"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(withheld["dynamic_variables"]["caller_known"], false);
    let (status, _) = app.post_with_secret(path, "nope", &init(CALLER)).await;
    assert_eq!(status, 401);

    // They book, and leave an enquiry.
    let slot = app.first_slot("radiator fitting", "2026-11-27").await;
    let (_, booked) = app
        .tool("create_booking", &json!({"service": "radiator_fitting", "start": slot["start"],
              "customer_name": "Maria Lopez", "caller_phone": CALLER, "conversation_id": "conv_init_1"}))
        .await;
    let (_, lead) = app
        .tool("capture_lead", &json!({"service": "leak repair", "urgency": "normal", "summary": "Slow leak under the bath.",
              "area": "Holloway", "caller_phone": CALLER, "conversation_id": "conv_init_1"}))
        .await;
    assert_eq!(lead["ok"], true, "{lead}");
    let (_, known) = app.post_with_secret(path, TOOL_SECRET, &init(CALLER)).await;
    let vars = &known["dynamic_variables"];
    assert_eq!(vars["caller_known"], true, "{known}");
    assert_eq!(vars["caller_name"], "Maria Lopez");
    assert_eq!(vars["caller_first_name"], "Maria");
    assert_eq!(
        vars["upcoming_booking"],
        "radiator fitting on Friday 27 November at 8am"
    );
    assert_eq!(vars["upcoming_booking_id"], booked["booking_id"]);
    assert_eq!(vars["upcoming_booking_start"], slot["start"]);
    assert_eq!(vars["upcoming_bookings"], 1);
    assert_eq!(vars["open_lead"], true);
    assert_eq!(vars["open_lead_service"], "leak repair");
    // Written in the national format, the number is the same person.
    let (_, national) = app
        .post_with_secret(path, TOOL_SECRET, &init("07911 123456"))
        .await;
    assert_eq!(national["dynamic_variables"]["caller_known"], true);
    assert!(!logs().contains("Maria"), "no names in logs");
}

#[tokio::test]
async fn contacts_are_recognised_by_number_and_by_email() {
    let app = spawn_app().await;
    let (status, saved) = app
        .tool("upsert_contact", &json!({"name": "Maria Lopez", "email": " Maria@Example.COM ", "caller_phone": CALLER, "conversation_id": "conv_c1"}))
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["say"], "Thanks, Maria, I've saved your details.");
    // From a withheld number, the e-mail finds her.
    let (_, by_email) = app
        .tool("upsert_contact", &json!({"email": "maria@example.com", "address": "12 Holloway Road, N7", "conversation_id": "conv_c2"}))
        .await;
    assert_eq!(
        by_email["say"], "Thanks, I've saved your details.",
        "{by_email}"
    );
    // Naming her number with another name fills no gaps and reveals nothing.
    let (_, stranger) = app
        .tool(
            "upsert_contact",
            &json!({"phone": CALLER, "name": "Mallory", "address": "1 Elsewhere", "caller_phone": OTHER_CALLER}),
        )
        .await;
    assert!(!stranger.to_string().contains("Maria"), "{stranger}");
    let contacts = app.records_of("CONTACT").await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(attr(&contacts[0], "email").unwrap(), "maria@example.com");
    assert_eq!(attr(&contacts[0], "name").unwrap(), "Maria Lopez");
    assert_eq!(
        attr(&contacts[0], "address").unwrap(),
        "12 Holloway Road, N7"
    );
    // An unknown e-mail and no number: ask for one, write nothing.
    let before = app.records().await.len();
    let (status, need) = app
        .tool(
            "upsert_contact",
            &json!({"email": "someone@example.org", "name": "Sam"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(need["code"], "need_phone");
    assert_eq!(app.records().await.len(), before);
}

#[tokio::test]
async fn a_hot_lead_alerts_the_owner_at_once_and_only_once() {
    let app = spawn_app().await;
    monday_morning(&app);
    app.twilio_accepts(None).await;
    let lead = json!({"service": "leak_repair", "urgency": "emergency", "summary": "Water coming through the kitchen ceiling.",
                      "area": "n7", "name": "Maria Lopez", "caller_phone": CALLER, "conversation_id": "conv_hot_1"});
    let (status, first) = app.tool("capture_lead", &lead).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["hot"], true);
    assert_eq!(first["area"], "Islington");
    let (_, second) = app.tool("capture_lead", &lead).await;
    assert_eq!(
        second["lead_id"], first["lead_id"],
        "one open lead per person"
    );
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    let to_owner = bodies_to(&texts, "+442079460001");
    assert_eq!(to_owner.len(), 1, "{to_owner:?}");
    assert!(
        to_owner[0]
            .starts_with("HOT LEAD (emergency): Maria Lopez +44 7911 123456 about leak repair."),
        "{}",
        to_owner[0]
    );
    let leads = app.records_of("LEAD").await;
    assert_eq!(leads.len(), 1);
    assert_eq!(attr(&leads[0], "area").unwrap(), "islington");
    assert_eq!(attr(&leads[0], "urgency").unwrap(), "emergency");
    let events = app.event_kinds().await;
    assert_eq!(
        events.iter().filter(|e| *e == "lead.created").count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "lead.hot").count(),
        1,
        "{events:?}"
    );
}

async fn capture(app: &TestApp, phone: &str, area: &str, conv: &str) -> Value {
    let (status, lead) = app
        .tool("capture_lead", &json!({"service": "blocked drain", "urgency": "normal", "summary": "Outside drain overflowing.",
              "area": area, "name": "Sam Patel", "caller_phone": phone, "conversation_id": conv}))
        .await;
    assert_eq!(status, 200, "{lead}");
    lead
}

#[tokio::test]
async fn two_concurrent_dispatches_of_one_lead_give_one_provider() {
    let app = spawn_app().await;
    monday_morning(&app);
    app.twilio_accepts(None).await;
    let lead = capture(&app, CALLER, "Islington", "conv_disp_1").await;
    let body = json!({"lead_id": lead["lead_id"], "caller_phone": CALLER, "conversation_id": "conv_disp_1"});
    let answers = join_all((0..2).map(|_| app.tool("dispatch_lead", &body))).await;
    let dispatched: Vec<&Value> = answers
        .iter()
        .map(|(_, a)| a)
        .filter(|a| a["dispatched"] == true)
        .collect();
    let refused: Vec<&Value> = answers
        .iter()
        .map(|(_, a)| a)
        .filter(|a| a["code"] == "already_dispatched")
        .collect();
    assert_eq!((dispatched.len(), refused.len()), (1, 1), "{answers:?}");
    assert_eq!(dispatched[0]["provider"], "ClearFlow Drains");
    assert_eq!(refused[0]["provider"], "ClearFlow Drains");
    for (_, a) in &answers {
        let text = a.to_string();
        assert!(
            !text.contains("Vale Road")
                && !text.contains("7946 0010")
                && !text.contains("+442079460010"),
            "the caller gets the provider's name only: {text}"
        );
    }
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    let sms = bodies_to(&texts, "+442079460010");
    assert_eq!(sms.len(), 1, "one job notice: {texts:?}");
    assert!(
        sms[0].contains("blocked drain in Islington for Sam Patel, +44 7911 123456"),
        "{}",
        sms[0]
    );
    let whatsapp: Vec<_> = texts
        .iter()
        .filter(|t| t["To"] == "whatsapp:+442079460010")
        .collect();
    assert_eq!(whatsapp.len(), 1);
    assert_eq!(whatsapp[0]["From"], "whatsapp:+442079460000");
    assert_eq!(
        whatsapp[0]["ContentSid"],
        "HX00000000000000000000000000000000"
    );
    assert!(
        !whatsapp[0].contains_key("Body"),
        "a template, not free text"
    );
    let vars: Value = serde_json::from_str(&whatsapp[0]["ContentVariables"]).unwrap();
    assert_eq!(vars["2"], "Islington");
    let leads = app.records_of("LEAD").await;
    assert_eq!(attr(&leads[0], "dispatched_to").unwrap(), "clearflow");
}

#[tokio::test]
async fn dispatch_takes_turns_respects_capacity_and_never_crosses_a_border() {
    let app = spawn_app_with(Options {
        business_toml: Some(Box::new(|t| {
            t.replace("daily_capacity = 4", "daily_capacity = 2")
                + "\n[[areas]]\nid = \"dublin\"\nname = \"Dublin\"\ncountry = \"IE\"\n"
        })),
        ..Options::default()
    })
    .await;
    monday_morning(&app);
    app.twilio_accepts(None).await;
    let mut providers = Vec::new();
    for i in 0..5 {
        let phone = format!("+4479111000{i:02}");
        capture(&app, &phone, "N1", &format!("conv_turns_{i}")).await;
        let (_, a) = app
            .tool("dispatch_lead", &json!({"caller_phone": phone}))
            .await;
        providers.push(
            a["provider"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| a["code"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(
        providers,
        [
            "ClearFlow Drains",
            "Rapid Rod",
            "ClearFlow Drains",
            "Rapid Rod",
            "no_provider_available"
        ],
        "equals take turns until both are full for the day"
    );
    // The next local day, capacity is back.
    app.clock.set("2026-11-24T07:00:00Z".parse().unwrap());
    let (_, next_day) = app
        .tool("dispatch_lead", &json!({"caller_phone": "+447911100004"}))
        .await;
    assert_eq!(next_day["dispatched"], true, "{next_day}");
    // A job in Dublin: only Irish providers could take it, and there are none.
    capture(&app, "+353861234567", "Dublin", "conv_dublin").await;
    let (_, abroad) = app
        .tool("dispatch_lead", &json!({"caller_phone": "+353861234567"}))
        .await;
    assert_eq!(abroad["code"], "no_provider_available", "{abroad}");
}

#[tokio::test]
async fn escalation_transfers_in_hours_and_promises_a_callback_outside() {
    let app = spawn_app().await;
    app.twilio_accepts(None).await;
    app.clock.set("2026-11-23T10:00:00Z".parse().unwrap());
    let ask = json!({"reason": "Wants to talk about a quote.", "caller_name": "Maria Lopez", "caller_phone": CALLER, "conversation_id": "conv_esc_1"});
    let (_, open) = app.tool("escalation_target", &ask).await;
    assert_eq!(open["action"], "transfer", "{open}");
    assert_eq!(open["transfer_number"], "+442079460002");
    assert!(app.records_of("TASK").await.is_empty());
    // Saturday afternoon: closed until Monday 8am.
    app.clock.set("2026-11-28T15:00:00Z".parse().unwrap());
    let (_, closed) = app.tool("escalation_target", &ask).await;
    assert_eq!(closed["action"], "callback", "{closed}");
    assert_eq!(closed["callback_by"], "2026-11-30T08:00:00+00:00");
    assert!(closed["say"]
        .as_str()
        .unwrap()
        .ends_with("call you back when we open, Monday 30 November at 8am."));
    let (_, again) = app.tool("escalation_target", &ask).await;
    assert_eq!(again["callback_by"], closed["callback_by"]);
    let tasks = app.records_of("TASK").await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(attr(&tasks[0], "due").unwrap(), "2026-11-30T08:00:00Z");
    app.drain_queue().await;
    let texts = app.texts_sent().await;
    let to_owner = bodies_to(&texts, "+442079460001");
    assert_eq!(to_owner, ["Callback promised by Monday 30 November at 8am: Maria Lopez +44 7911 123456. Wants to talk about a quote."]);
    // No number to call back on (a withheld caller id is no number): ask for one first.
    let (status, withheld) = app
        .tool(
            "escalation_target",
            &json!({"reason": "x", "caller_phone": "anonymous"}),
        )
        .await;
    assert_eq!(
        (status, withheld["code"].as_str()),
        (200, Some("need_phone"))
    );
    let (_, need) = app.tool("escalation_target", &json!({"reason": "x"})).await;
    assert_eq!(need["code"], "need_phone");
}

#[tokio::test]
async fn a_call_note_is_logged_once() {
    let app = spawn_app().await;
    let note = json!({"outcome": "quote_requested", "summary": "Two radiators to replace.", "service": "radiator fitting",
                      "caller_phone": CALLER, "conversation_id": "conv_note_1"});
    let (status, first) = app.tool("log_call", &note).await;
    assert_eq!(status, 200, "{first}");
    let (_, second) = app.tool("log_call", &note).await;
    assert_eq!(first["note_id"], second["note_id"]);
    let notes: Vec<_> = app
        .records()
        .await
        .into_iter()
        .filter(|r| attr(r, "SK").is_some_and(|s| s.starts_with("NOTE#")))
        .collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(attr(&notes[0], "service_id").unwrap(), "radiator_fitting");
}

#[tokio::test]
async fn one_businesss_secret_cannot_touch_another_businesss_data() {
    let a = spawn_app().await;
    let b = spawn_app_with(Options {
        tenant_id: Some("riverside".into()),
        tool_secret: Some("riverside-secret-9876543210".into()),
        share_resources_with: Some(a.resources.clone()),
        ..Options::default()
    })
    .await;
    monday_morning(&a);
    monday_morning(&b);
    a.twilio_accepts(None).await;
    b.twilio_accepts(None).await;
    let slot = b.first_slot("boiler_service", "2026-11-25").await;
    let theirs = book(&b, &slot["start"], "Maria Lopez", CALLER, "conv_b_1").await;
    let id = theirs["booking_id"].as_str().unwrap();
    let records_before = a.records().await.len();
    // A's secret on B's routes: refused, whatever the route.
    for route in frontdesk_blackbox::frontdesk::http::routes()
        .iter()
        .filter(|r| r.path.starts_with("/tools/") || r.path.ends_with("conversation-init"))
    {
        let (status, _) = b
            .post_with_secret(route.path, TOOL_SECRET, &json!({}))
            .await;
        assert_eq!(status, 401, "{}", route.path);
    }
    // With A's own routes, B's booking, caller and lead are not there: keys carry the tenant.
    let (_, not_found) = a
        .tool(
            "update_booking",
            &json!({"action": "cancel", "booking_id": id, "caller_phone": CALLER}),
        )
        .await;
    assert_eq!(not_found["code"], "booking_not_found", "{not_found}");
    let (_, init) = a
        .post_with_secret(
            "/webhooks/elevenlabs/conversation-init",
            TOOL_SECRET,
            &json!({"caller_id": CALLER}),
        )
        .await;
    assert_eq!(init["dynamic_variables"]["caller_known"], false);
    // Naming the other tenant in the body is not a way in: the field is no field of ours.
    let (status, refused) = a
        .tool(
            "update_booking",
            &json!({"action": "cancel", "booking_id": id, "caller_phone": CALLER, "tenant": "riverside"}),
        )
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (200, Some("booking_not_found"))
    );
    assert_eq!(a.records().await.len(), records_before, "nothing written");
    assert_eq!(b.booking(id).await.status, BookingStatus::Confirmed);
}

#[tokio::test]
async fn every_malformed_body_is_a_400_with_a_sentence_and_writes_nothing() {
    let app = spawn_app().await;
    monday_morning(&app);
    let cases = [
        ("update_booking", json!({"action": "move"}), "action"),
        (
            "update_booking",
            json!({"action": "reschedule", "booking_id": "bk_1"}),
            "new_start",
        ),
        (
            "update_booking",
            json!({"action": "reschedule", "booking_id": "bk_1", "new_start": "Friday"}),
            "new_start",
        ),
        ("update_booking", json!({"action": "cancel"}), "booking_id"),
        (
            "update_booking",
            json!({"action": "cancel", "booking_id": "../x"}),
            "booking_id",
        ),
        (
            "update_booking",
            json!({"action": "cancel", "booking_id": "bk_1", "caller_phone": 12}),
            "caller_phone",
        ),
        ("upsert_contact", json!({}), "name"),
        (
            "upsert_contact",
            json!({"name": "Sam", "email": "sam at example"}),
            "email",
        ),
        (
            "upsert_contact",
            json!({"name": "x".repeat(101), "caller_phone": CALLER}),
            "name",
        ),
        // Only an absent number means "the one they are calling from".
        (
            "upsert_contact",
            json!({"name": "Sam", "phone": "", "caller_phone": CALLER}),
            "phone",
        ),
        (
            "upsert_contact",
            json!({"name": "Sam", "phone": "07911 12345a", "caller_phone": CALLER}),
            "phone",
        ),
        (
            "upsert_contact",
            json!({"name": "Sam\nSmith", "caller_phone": CALLER}),
            "name",
        ),
        (
            "capture_lead",
            json!({"service": "leak repair", "urgency": "normal", "summary": "x", "name": "Sam\u{0}", "caller_phone": CALLER, "conversation_id": "conv_1"}),
            "name",
        ),
        (
            "capture_lead",
            json!({"service": "leak repair", "urgency": "normal", "summary": "x", "caller_phone": CALLER}),
            "body",
        ),
        (
            "capture_lead",
            json!({"service": "leak repair", "urgency": "soon", "summary": "x", "caller_phone": CALLER, "conversation_id": "conv_1"}),
            "urgency",
        ),
        (
            "capture_lead",
            json!({"service": "roofing", "urgency": "normal", "summary": "x", "caller_phone": CALLER, "conversation_id": "conv_1"}),
            "service",
        ),
        (
            "capture_lead",
            json!({"service": "leak repair", "urgency": "normal", "summary": "x", "area": "Paris", "caller_phone": CALLER, "conversation_id": "conv_1"}),
            "area",
        ),
        (
            "capture_lead",
            json!({"service": "leak repair", "urgency": "normal", "summary": " ", "caller_phone": CALLER, "conversation_id": "conv_1"}),
            "summary",
        ),
        (
            "capture_lead",
            json!({"service": "leak repair", "urgency": "normal", "summary": "x", "conversation_id": "conv_1"}),
            "phone",
        ),
        ("dispatch_lead", json!({}), "lead_id"),
        ("dispatch_lead", json!({"lead_id": "not a lead"}), "lead_id"),
        ("escalation_target", json!({"phone": "abc"}), "phone"),
        ("escalation_target", json!({"reason": 7}), "reason"),
        (
            "log_call",
            json!({"outcome": "booked", "conversation_id": "conv_1"}),
            "body",
        ),
        (
            "log_call",
            json!({"outcome": "great", "summary": "x", "conversation_id": "conv_1"}),
            "outcome",
        ),
        (
            "log_call",
            json!({"outcome": "booked", "summary": "x", "service": "roofing", "conversation_id": "conv_1"}),
            "service",
        ),
        (
            "log_call",
            json!({"outcome": "booked", "summary": "x", "conversation_id": "a b"}),
            "conversation_id",
        ),
    ];
    for (tool, body, field) in cases {
        let (status, answer) = app.tool(tool, &body).await;
        assert_eq!(status, 400, "{tool} {body} -> {answer}");
        assert_eq!(answer["field"], field, "{tool} {body} -> {answer}");
        assert!(
            answer["say"]
                .as_str()
                .is_some_and(|s| s.ends_with('.') || s.ends_with('?')),
            "{answer}"
        );
    }
    let (status, _) = app
        .post_with_secret(
            "/webhooks/elevenlabs/conversation-init",
            TOOL_SECRET,
            &json!(["not", "an", "object"]),
        )
        .await;
    assert_eq!(status, 400);
    assert!(app.records().await.is_empty(), "{:?}", app.records().await);
    let logs = logs();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("\"request\"") && l.contains("\"function\":\"capture-lead\""))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"route\":\"/tools/capture_lead\"")
                && l.contains("\"outcome\":\"bad_request:urgency\"")
                && l.contains("\"status\":400")),
        "one structured line per call: {lines:?}"
    );
}

#[tokio::test]
async fn conversation_init_refuses_a_body_of_another_shape_and_starts_the_call_on_a_failed_lookup()
{
    let app = spawn_app().await;
    let path = "/webhooks/elevenlabs/conversation-init";
    let nested = format!(
        "{{\"caller_id\": \"{CALLER}\", \"extra\": {}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    for body in [
        nested,
        format!("{{\"caller_id\": {{\"number\": \"{CALLER}\"}}}}"),
        "{\"caller_id\": \"+44\\u0000\"}".to_string(),
        "not json".to_string(),
    ] {
        let response = app
            .http
            .post(format!("{}{path}", app.address))
            .header("x-frontdesk-tool-secret", TOOL_SECRET)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{}", &body[..body.len().min(60)]);
    }
    assert!(app.records().await.is_empty());
    // A body of the documented shape whose lookup fails still starts the call, as a new caller.
    let ddb = aws_sdk_dynamodb::Client::new(&app.sdk);
    let broken = spawn_app_with(Options {
        share_resources_with: Some(app.resources.clone()),
        ..Options::default()
    })
    .await;
    broken.deps.tenant().await.unwrap(); // cached: the lookup below is what fails
    ddb.delete_table()
        .table_name(&app.resources.table)
        .send()
        .await
        .unwrap();
    let (status, answer) = broken
        .post_with_secret(
            path,
            TOOL_SECRET,
            &json!({"caller_id": CALLER, "agent_id": "agent_1"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["dynamic_variables"]["caller_known"], false);
}

#[tokio::test]
async fn unknown_fields_are_ignored_named_in_the_log_and_never_fail_the_call() {
    let app = spawn_app().await;
    let (status, saved) = app
        .tool(
            "upsert_contact",
            &json!({"name": "Sam", "caller_phone": CALLER, "vip_level": "Gold Member 07911"}),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["saved"], true);
    let logs = logs();
    let line = logs
        .lines()
        .find(|l| l.contains("unknown_fields_ignored") && l.contains("upsert_contact"))
        .expect("a line naming the fields");
    assert!(line.contains("\"unknown_fields\":\"vip_level\""), "{line}");
    assert!(!line.contains("Gold Member"), "names, never values: {line}");
    // Known fields stay strict.
    let (status, refused) = app
        .tool(
            "upsert_contact",
            &json!({"name": 7, "caller_phone": CALLER, "vip_level": 1}),
        )
        .await;
    assert_eq!((status, refused["field"].as_str()), (400, Some("name")));
}

#[tokio::test]
async fn a_move_whose_event_failed_is_still_a_move_and_the_outbox_publishes_it_once() {
    let app = spawn_app().await;
    let (id, _, request) =
        wednesday_booking_and_move_to_thursday(&app, "conv_rep_1", "conv_rep_2").await;
    let id = id.as_str();
    // The move commits with its event in the outbox; publishing it fails: the move stands and
    // the caller hears it moved.
    app.lose_event_bus().await;
    let (status, moved) = app.tool("update_booking", &request).await;
    assert_eq!(
        (status, moved["rescheduled"].clone()),
        (200, json!(true)),
        "{moved}"
    );
    assert_eq!(app.booking(id).await.start, "2026-11-26T08:00:00Z");
    app.restore_event_bus().await;
    // A repeat of the request changes nothing; the sweep publishes what was recorded, once.
    let (status, _) = app.tool("update_booking", &request).await;
    assert_eq!(status, 200);
    app.clock.advance(jiff::SignedDuration::from_secs(180));
    frontdesk::outbox::sweep(&app.deps).await.unwrap();
    frontdesk::outbox::sweep(&app.deps).await.unwrap();
    let moves = app.events_of("booking.rescheduled").await;
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(moves[0]["previous_start"], "2026-11-25T08:00:00Z");
}

#[tokio::test]
async fn a_whatsapp_job_notice_whose_send_was_unclear_is_not_sent_twice() {
    use wiremock::matchers::{body_string_contains, method, path, query_param};
    use wiremock::{Mock, ResponseTemplate};
    let app = spawn_app().await;
    monday_morning(&app);
    let provider = "whatsapp:+442079460010";
    // The template send gets a 500 (Twilio may have sent it); everything else goes through.
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .and(body_string_contains("ContentSid"))
        .respond_with(twilio_refuses(500, 20500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.twilio)
        .await;
    app.twilio_accepts(None).await;
    // Twilio did send it: its list shows the text it rendered from the approved template.
    let sent_at =
        jiff::fmt::rfc2822::to_string(&app.now().to_zoned(jiff::tz::TimeZone::UTC)).unwrap();
    Mock::given(method("GET"))
        .and(path(messages_path()))
        .and(query_param("To", provider))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"messages": [{
            "sid": "SM0000000000000000000000000000000a", "to": provider, "status": "delivered",
            "date_created": sent_at,
            "body": "Northside has a job for you: blocked drain, Camden. Customer Sam Patel on +44 7911 123456. Outside drain overflowing.",
        }]})))
        .mount(&app.twilio)
        .await;
    // Camden drainage: ClearFlow is the only provider, and takes notices on WhatsApp.
    let lead = capture(&app, CALLER, "Camden", "conv_wa_1").await;
    let (_, dispatched) = app
        .tool(
            "dispatch_lead",
            &json!({"lead_id": lead["lead_id"], "caller_phone": CALLER}),
        )
        .await;
    assert_eq!(dispatched["provider"], "ClearFlow Drains", "{dispatched}");
    app.drain_queue().await;
    let templates = app
        .texts_sent()
        .await
        .into_iter()
        .filter(|t| t.contains_key("ContentSid"))
        .count();
    assert_eq!(
        templates, 1,
        "found at Twilio after the 500, so not sent again"
    );
    let id = format!(
        "provider-job-whatsapp:{}",
        lead["lead_id"].as_str().unwrap()
    );
    let message = app.deps.store.get_message(&id).await.unwrap().unwrap();
    assert_eq!(
        message.twilio_sid.as_deref(),
        Some("SM0000000000000000000000000000000a")
    );
}

#[tokio::test]
async fn a_full_postcode_finds_its_area() {
    let app = spawn_app().await;
    monday_morning(&app);
    app.twilio_accepts(None).await;
    for (said, area) in [("N7 6AB", "Islington"), ("12 Kentish Town Road", "Camden")] {
        let lead = capture(&app, CALLER, said, &format!("conv_pc_{}", area)).await;
        assert_eq!(lead["area"], area, "{said}: {lead}");
    }
    let (status, refused) = app
        .tool(
            "capture_lead",
            &json!({"service": "blocked drain", "urgency": "normal", "summary": "Drain.",
              "area": "N17 6AB", "caller_phone": CALLER, "conversation_id": "conv_pc_x"}),
        )
        .await;
    assert_eq!((status, refused["field"].as_str()), (400, Some("area")));
}

#[tokio::test]
async fn locally_a_request_can_run_as_of_another_time() {
    let app = spawn_app().await;
    // 3am on a Monday: nobody to transfer to.
    app.clock.set("2026-11-23T03:00:00Z".parse().unwrap());
    let ask = json!({"reason": "Wants the owner.", "caller_phone": CALLER});
    let (_, at_night) = app.tool("escalation_target", &ask).await;
    assert_eq!(at_night["action"], "callback", "{at_night}");
    // The same question as of 10am that Monday: a live transfer.
    let (status, in_hours) = app
        .tool_at("escalation_target", "2026-11-23T10:00:00Z", &ask)
        .await;
    assert_eq!(status, 200);
    assert_eq!(in_hours["action"], "transfer", "{in_hours}");
    let (status, bad) = app.tool_at("escalation_target", "ten o'clock", &ask).await;
    assert_eq!(
        (status, bad["field"].as_str()),
        (400, Some("x-frontdesk-now"))
    );
}

#[tokio::test]
async fn a_deployed_function_ignores_a_request_that_sets_its_own_time() {
    use lambda_http::tower::ServiceExt;
    let app = spawn_app().await;
    app.clock.set("2026-11-23T03:00:00Z".parse().unwrap());
    app.twilio_accepts(None).await;
    let raw = std::fs::read_to_string(
        workspace().join("events/escalation-target/apigw-escalation-target.json"),
    )
    .unwrap();
    let mut event: Value = serde_json::from_str(&raw).unwrap();
    event["headers"]["x-frontdesk-tool-secret"] = json!(TOOL_SECRET);
    event["headers"]["x-frontdesk-now"] = json!("2026-11-23T10:00:00Z");
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let router = frontdesk_blackbox::frontdesk::http::function_router(
        "escalation-target",
        frontdesk_blackbox::frontdesk::http::rows::escalation_target,
        app.deps.clone(),
    );
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        answer["action"], "callback",
        "the real clock, 3am: {answer}"
    );
    assert!(logs().contains("clock_header_ignored"));
}
