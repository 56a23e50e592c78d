//! The quality scan, black-box: calls delivered as signed post-call webhooks to the real
//! handlers, the scan run as its schedule would run it, flags read back from the store.

use std::time::{Duration, Instant};

use frontdesk_blackbox::frontdesk::ids::ConversationId;
use frontdesk_blackbox::frontdesk::quality::scan::{self, ScanReport};
use frontdesk_blackbox::frontdesk::store::flags::FlagStatus;
use frontdesk_blackbox::*;
use serde_json::json;

async fn deliver(app: &TestApp, body: &[u8]) {
    let response = app.deliver(body).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

async fn scan_now(app: &TestApp) -> ScanReport {
    scan::run(&app.deps, Instant::now() + Duration::from_secs(60), None)
        .await
        .expect("scan")
}

/// The flags of a call: (rule, turn).
async fn flags_of(app: &TestApp, conversation: &str) -> Vec<(String, Option<u32>)> {
    let conversation = ConversationId::parse(conversation).unwrap();
    let mut flags: Vec<_> = app
        .deps
        .store
        .flags_of_call(&conversation)
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.rule_id, f.turn))
        .collect();
    flags.sort();
    flags
}

/// A well-run booking call: nothing in it breaks a rule.
fn clean_booking() -> Vec<(&'static str, &'static str)> {
    vec![
        ("agent", OPENING),
        (
            "user",
            "My boiler needs a service. The doberman will be in the garden.",
        ),
        ("agent", "tool:check_availability"),
        ("agent", "ok:check_availability"),
        ("agent", "I can do Wednesday at 8am. Shall I book that?"),
        ("user", "Yes please."),
        ("agent", "tool:create_booking"),
        ("agent", "ok:create_booking"),
        ("agent", "You're booked for Wednesday at 8am. See you at 8."),
    ]
}

/// A call to deliver and what the scan must find in it: (conversation, turns, disposition,
/// extra analysis values, the one flag expected as (rule, turn)).
type Case = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static str,
    Vec<(&'static str, &'static str)>,
    Option<(&'static str, Option<u32>)>,
);

#[tokio::test]
async fn every_rule_kind_flags_the_call_that_breaks_it_at_the_turn_and_not_the_one_that_does_not() {
    let app = spawn_app().await;
    app.twilio_accepts(None).await;
    let cases: Vec<Case> = vec![
        (
            "conv_clean_booking",
            clean_booking(),
            "booked",
            vec![],
            None,
        ),
        (
            "conv_required_tool",
            vec![
                ("agent", OPENING),
                ("user", "Can you quote for a new bathroom?"),
                ("agent", "Someone will call you back."),
            ],
            "quote_requested",
            vec![],
            Some(("enquiry-not-captured", Some(2))),
        ),
        (
            "conv_required_tool_ok",
            vec![
                ("agent", OPENING),
                ("user", "Can you quote for a new bathroom?"),
                ("agent", "tool:capture_lead"),
                ("agent", "ok:capture_lead"),
                ("agent", "Someone will call you back."),
            ],
            "quote_requested",
            vec![],
            None,
        ),
        (
            "conv_forbidden_question",
            vec![
                ("agent", OPENING),
                ("user", "It's for a leak."),
                ("agent", "Thanks. Can I take your date of birth?"),
            ],
            "booked",
            vec![],
            Some(("asked-date-of-birth", Some(2))),
        ),
        (
            "conv_disclosure_before_tool",
            vec![
                ("agent", OPENING),
                ("user", "My drain is blocked."),
                (
                    "agent",
                    "ClearFlow are at Unit 4, Vale Road, they'll sort it.",
                ),
                ("agent", "tool:dispatch_lead"),
                ("agent", "ok:dispatch_lead"),
            ],
            "booked",
            vec![],
            Some(("partner-details-before-dispatch", Some(2))),
        ),
        (
            "conv_disclosure_after_tool",
            vec![
                ("agent", OPENING),
                ("user", "My drain is blocked."),
                ("agent", "tool:dispatch_lead"),
                ("agent", "ok:dispatch_lead"),
                ("agent", "ClearFlow Drains will ring you within the hour."),
            ],
            "booked",
            vec![],
            None,
        ),
        (
            "conv_forbidden_disclosure",
            vec![
                ("agent", OPENING),
                ("user", "How much is a service?"),
                ("agent", "It's usually £80 plus parts."),
            ],
            "booked",
            vec![],
            Some(("price-quoted", Some(2))),
        ),
        (
            "conv_unbooked_promise",
            vec![
                ("agent", OPENING),
                ("user", "Can you come Wednesday?"),
                ("agent", "Yes, see you at 3pm on Wednesday."),
            ],
            "booked",
            vec![],
            Some(("promised-unbooked-slot", Some(2))),
        ),
        (
            "conv_opening",
            vec![
                (
                    "agent",
                    "Northside Plumbing, calls are recorded, Ava speaking.",
                ),
                ("user", "Hi."),
                ("agent", "How can I help?"),
            ],
            "booked",
            vec![],
            Some(("ai-not-disclosed", Some(0))),
        ),
        (
            "conv_escalation",
            vec![
                ("agent", OPENING),
                ("user", "This is ridiculous, I want to speak to a human."),
                ("agent", "I can help you with that."),
            ],
            "booked",
            vec![],
            Some(("complaint-not-escalated", Some(2))),
        ),
        (
            "conv_escalation_ok",
            vec![
                ("agent", OPENING),
                ("user", "Can I speak to a person please?"),
                ("agent", "tool:escalation_target"),
                ("agent", "ok:escalation_target"),
                ("agent", "Putting you through now."),
            ],
            "booked",
            vec![],
            None,
        ),
        (
            "conv_evaluation",
            clean_booking(),
            "booked",
            vec![("evaluation", "failure")],
            Some(("evaluation-failed", None)),
        ),
        (
            "conv_sentiment",
            clean_booking(),
            "booked",
            vec![("caller_sentiment", "negative")],
            Some(("caller-unhappy", None)),
        ),
        (
            "conv_sentiment_ok",
            clean_booking(),
            "booked",
            vec![("caller_sentiment", "positive")],
            None,
        ),
    ];
    for (conversation, spec, disposition, extra, _) in &cases {
        deliver(
            &app,
            &transcript_call(conversation, spec, disposition, extra),
        )
        .await;
    }

    let report = scan_now(&app).await;

    assert_eq!(report.calls_scanned, cases.len());
    for (conversation, _, _, _, expected) in &cases {
        let want: Vec<(String, Option<u32>)> = expected
            .iter()
            .map(|(rule, turn)| (rule.to_string(), *turn))
            .collect();
        assert_eq!(flags_of(&app, conversation).await, want, "{conversation}");
    }
    let raised = app.events_of("flag.raised").await;
    assert_eq!(
        raised.len(),
        cases.iter().filter(|c| c.4.is_some()).count(),
        "{raised:?}"
    );
    let price = app
        .deps
        .store
        .flags_of_call(&ConversationId::parse("conv_forbidden_disclosure").unwrap())
        .await
        .unwrap();
    assert_eq!(price[0].status, FlagStatus::Open);
    assert_eq!(price[0].excerpt, "It's usually £80 plus parts.");
    assert_eq!(price[0].severity.as_str(), "medium");
}

#[tokio::test]
async fn a_clean_call_of_1500_turns_gives_no_flag() {
    let app = spawn_app().await;
    app.twilio_accepts(None).await;
    let mut spec = clean_booking();
    for _ in 0..(1500 - spec.len()) / 2 {
        spec.push((
            "user",
            "And the radiator in the back bedroom, is that the same visit?",
        ));
        spec.push((
            "agent",
            "Yes, the engineer can look at that on Wednesday too.",
        ));
    }
    assert!(spec.len() >= 1499);
    deliver(
        &app,
        &transcript_call("conv_long_clean", &spec, "booked", &[]),
    )
    .await;

    let report = scan_now(&app).await;

    assert_eq!(report.calls_scanned, 1);
    assert!(report.flags_raised.is_empty(), "{:?}", report.flags_raised);
}

#[tokio::test]
async fn scanning_the_same_window_twice_raises_no_duplicate() {
    let app = spawn_app().await;
    app.twilio_accepts(None).await;
    let breaking = [("agent", OPENING), ("agent", "And your DOB?")];
    deliver(
        &app,
        &transcript_call("conv_twice", &breaking, "booked", &[]),
    )
    .await;
    let first = scan_now(&app).await;
    assert_eq!(first.flags_raised.len(), 1);

    // From the watermark: nothing new to read. From before the call: read again, nothing new.
    let again = scan_now(&app).await;
    assert_eq!((again.calls_scanned, again.flags_raised.len()), (0, 0));
    let since = app.now() - jiff::SignedDuration::from_hours(1);
    let rescan = scan::run(
        &app.deps,
        Instant::now() + Duration::from_secs(60),
        Some(since),
    )
    .await
    .unwrap();
    assert_eq!((rescan.calls_scanned, rescan.flags_raised.len()), (1, 0));
    // The same webhook delivered again (a redelivery) changes nothing either.
    deliver(
        &app,
        &transcript_call("conv_twice", &breaking, "booked", &[]),
    )
    .await;
    assert_eq!(scan_now(&app).await.flags_raised.len(), 0);

    assert_eq!(flags_of(&app, "conv_twice").await.len(), 1);
    assert_eq!(app.events_of("flag.raised").await.len(), 1);
}

#[tokio::test]
async fn a_transcript_that_arrives_after_the_scan_passed_is_still_scanned() {
    let app = spawn_app().await;
    app.twilio_accepts(None).await;
    deliver(
        &app,
        &transcript_call("conv_on_time", &clean_booking(), "booked", &[]),
    )
    .await;
    assert_eq!(scan_now(&app).await.calls_scanned, 1);

    // Twenty minutes later the transcript of a call that ended hours ago arrives (a delayed
    // webhook, a back-fill): its call ended long before the watermark.
    app.clock.advance(jiff::SignedDuration::from_mins(20));
    let late = sample_with("post_call_transcription.json", |v| {
        v["data"]["conversation_id"] = json!("conv_late");
        v["data"]["transcript"] =
            turns(&[("agent", OPENING), ("agent", "What's your date of birth?")]);
        v["data"]["metadata"]["start_time_unix_secs"] = json!(app.now().as_second() - 3 * 3600);
    });
    deliver(&app, &late).await;

    let report = scan_now(&app).await;

    assert_eq!(report.calls_scanned, 1);
    // The sample's disposition is a follow-up with no capture_lead: that breaks a rule too.
    assert_eq!(
        flags_of(&app, "conv_late").await,
        vec![
            ("asked-date-of-birth".to_string(), Some(1)),
            ("enquiry-not-captured".to_string(), Some(1)),
        ]
    );
}

#[tokio::test]
async fn a_scan_out_of_time_stops_cleanly_and_the_next_goes_on_from_the_watermark() {
    let app = spawn_app().await;
    app.twilio_accepts(None).await;
    for i in 0..3 {
        let conversation = format!("conv_batch_{i}");
        deliver(
            &app,
            &transcript_call(
                &conversation,
                &[("agent", OPENING), ("agent", "Your DOB?")],
                "booked",
                &[],
            ),
        )
        .await;
        app.clock.advance(jiff::SignedDuration::from_secs(1));
    }
    let before = app.deps.store.scan_watermark().await.unwrap();

    let out_of_time = scan::run(&app.deps, Instant::now(), None).await.unwrap();

    assert!(out_of_time.stopped_early);
    assert_eq!(out_of_time.calls_scanned, 0);
    assert_eq!(app.deps.store.scan_watermark().await.unwrap(), before);
    let next = scan_now(&app).await;
    assert!(!next.stopped_early);
    assert_eq!((next.calls_scanned, next.flags_raised.len()), (3, 3));
}
