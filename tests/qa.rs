//! The QA reviewers' API, black-box: flags raised by a real scan of delivered calls, read and
//! resolved over HTTP with reviewer tokens; every route's refusals; tenants kept apart; and
//! the Lambda path, where API Gateway's authorizer has verified the token.

use std::time::{Duration, Instant};

use frontdesk_blackbox::frontdesk::quality::scan;
use frontdesk_blackbox::*;
use serde_json::{json, Value};

const DOB: &[(&str, &str)] = &[
    ("agent", OPENING),
    ("user", "Hi, my boiler is leaking."),
    ("agent", "Sorry to hear that. What's your date of birth?"),
];

async fn flagged_calls(app: &TestApp, conversations: &[&str]) {
    app.twilio_accepts(None).await;
    for c in conversations {
        let response = app.deliver(&transcript_call(c, DOB, "booked", &[])).await;
        assert_eq!(response.status(), 200);
        // Apart in time, so "newest first" has an order to show.
        app.clock.advance(jiff::SignedDuration::from_secs(1));
        scan::run(&app.deps, Instant::now() + Duration::from_secs(60), None)
            .await
            .unwrap();
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["flag_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_queue_is_newest_first_filtered_and_paged_with_an_opaque_cursor() {
    let app = spawn_app().await;
    flagged_calls(&app, &["conv_q1", "conv_q2", "conv_q3"]).await;
    let token = app.reviewer_token();

    let (status, first) = app.qa("GET", "/qa/flags?limit=2", Some(&token), None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        ids(&first),
        ["conv_q3.asked-date-of-birth", "conv_q2.asked-date-of-birth"]
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .qa(
            "GET",
            &format!("/qa/flags?limit=2&cursor={cursor}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(ids(&second), ["conv_q1.asked-date-of-birth"]);
    assert!(second["next_cursor"].is_null());

    let (_, critical) = app
        .qa("GET", "/qa/flags?severity=critical", Some(&token), None)
        .await;
    assert_eq!(ids(&critical).len(), 3);
    let (_, low) = app
        .qa("GET", "/qa/flags?severity=low", Some(&token), None)
        .await;
    assert!(ids(&low).is_empty());
    for bad in [
        "status=closed",
        "severity=urgent",
        "limit=0",
        "cursor=not-a-cursor",
    ] {
        let (status, answer) = app
            .qa("GET", &format!("/qa/flags?{bad}"), Some(&token), None)
            .await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert_eq!(answer["field"], bad.split('=').next().unwrap());
    }
}

#[tokio::test]
async fn a_call_shows_its_transcript_with_each_flag_at_its_turn_its_tools_and_its_audio() {
    let app = spawn_app().await;
    app.twilio_accepts(None).await;
    let spec = [
        ("agent", OPENING),
        ("user", "Can you come Wednesday?"),
        ("agent", "tool:check_availability"),
        ("agent", "ok:check_availability"),
        (
            "agent",
            "Yes, see you at 3pm on Wednesday. And your date of birth?",
        ),
    ];
    app.deliver(&transcript_call("conv_view", &spec, "booked", &[]))
        .await;
    let audio = sample_with("post_call_audio.json", |v| {
        v["data"]["conversation_id"] = json!("conv_view");
    });
    app.deliver(&audio).await;
    scan::run(&app.deps, Instant::now() + Duration::from_secs(60), None)
        .await
        .unwrap();

    let (status, view) = app
        .qa(
            "GET",
            "/qa/calls/conv_view",
            Some(&app.reviewer_token()),
            None,
        )
        .await;

    assert_eq!(status, 200, "{view}");
    assert_eq!(view["call"]["conversation_id"], "conv_view");
    assert_eq!(view["outcome"]["disposition"], "booked");
    let turns = view["transcript"].as_array().unwrap();
    assert_eq!(turns.len(), 5);
    assert_eq!(
        turns[4]["flags"],
        json!([
            "conv_view.asked-date-of-birth",
            "conv_view.promised-unbooked-slot"
        ])
    );
    assert_eq!(turns[1]["flags"], json!([]));
    assert_eq!(view["flags"].as_array().unwrap().len(), 2);
    let tools: Vec<&str> = view["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tool"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["check_availability", "check_availability"]);
    // The audio is a short-lived presigned link that really reads the object.
    let url = view["audio_url"].as_str().expect("audio link");
    assert!(url.contains("X-Amz-Expires=600"), "{url}");
    let mp3 = reqwest::get(url).await.unwrap();
    assert_eq!(mp3.status(), 200);
    assert!(!mp3.bytes().await.unwrap().is_empty());

    let (status, _) = app
        .qa(
            "GET",
            "/qa/calls/conv_nobody",
            Some(&app.reviewer_token()),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_reviewer_resolves_a_flag_once_and_a_contradiction_is_a_conflict() {
    let app = spawn_app().await;
    flagged_calls(&app, &["conv_r1", "conv_r2"]).await;
    let token = app.reviewer_token();
    let id = "conv_r1.asked-date-of-birth";
    let dismiss = json!({"status": "dismissed", "note": "The caller offered it; the agent repeated it back."});

    let (status, done) = app
        .qa(
            "POST",
            &format!("/qa/flags/{id}"),
            Some(&token),
            Some(&dismiss),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["changed"], true);
    assert_eq!(done["flag"]["status"], "dismissed");
    assert_eq!(done["flag"]["reviewer"], "reviewer@localhost");
    assert_eq!(done["flag"]["note"], dismiss["note"]);
    assert!(done["flag"]["resolved_at"].is_string());

    // The same again (a double click, a retry): nothing changes.
    let (status, again) = app
        .qa(
            "POST",
            &format!("/qa/flags/{id}"),
            Some(&token),
            Some(&dismiss),
        )
        .await;
    assert_eq!((status, again["changed"].clone()), (200, json!(false)));
    // The opposite: refused, and the first decision stands.
    let confirm = json!({"status": "confirmed"});
    let (status, answer) = app
        .qa(
            "POST",
            &format!("/qa/flags/{id}"),
            Some(&token),
            Some(&confirm),
        )
        .await;
    assert_eq!(status, 409, "{answer}");

    let (_, open) = app.qa("GET", "/qa/flags", Some(&token), None).await;
    assert_eq!(ids(&open), ["conv_r2.asked-date-of-birth"]);
    let (_, dismissed) = app
        .qa("GET", "/qa/flags?status=dismissed", Some(&token), None)
        .await;
    assert_eq!(ids(&dismissed), [id]);
    let (_, rules) = app.qa("GET", "/qa/rules", Some(&token), None).await;
    let dob = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == "asked-date-of-birth")
        .unwrap()
        .clone();
    assert_eq!(
        (
            dob["raised"].clone(),
            dob["dismissed"].clone(),
            dob["confirmed"].clone(),
            dob["open"].clone()
        ),
        (json!(2), json!(1), json!(0), json!(1))
    );
    assert_eq!(dob["dismissed_share"], json!(1.0));

    for (body, field) in [
        (json!({"status": "open"}), "status"),
        (json!({"status": "confirmed", "note": "a\u{0}b"}), "note"),
        (json!({"status": "confirmed", "extra": 1}), "body"),
    ] {
        let (status, answer) = app
            .qa(
                "POST",
                "/qa/flags/conv_r2.asked-date-of-birth",
                Some(&token),
                Some(&body),
            )
            .await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (400, Some(field)),
            "{answer}"
        );
    }
    let (status, _) = app
        .qa(
            "POST",
            "/qa/flags/conv_r2.no-such-rule",
            Some(&token),
            Some(&confirm),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn every_qa_route_refuses_a_missing_expired_forged_or_foreign_token_and_writes_nothing() {
    let app = spawn_app().await;
    flagged_calls(&app, &["conv_a1"]).await;
    let expired = frontdesk_blackbox::frontdesk::qa::auth::local_reviewer_token(
        REVIEWER_KEY,
        "demo",
        app.now().as_second() - 3 * 3600,
        1,
    );
    let forged = frontdesk_blackbox::frontdesk::qa::auth::local_reviewer_token(
        b"someone else's key",
        "demo",
        app.now().as_second(),
        1,
    );
    let foreign = app.reviewer_token_for("acme");
    let resolve = json!({"status": "confirmed"});
    let routes: [(&str, &str, Option<&Value>); 4] = [
        ("GET", "/qa/flags", None),
        ("GET", "/qa/calls/conv_a1", None),
        (
            "POST",
            "/qa/flags/conv_a1.asked-date-of-birth",
            Some(&resolve),
        ),
        ("GET", "/qa/rules", None),
    ];
    for (method, path, body) in routes {
        for (token, want) in [
            (None, 401),
            (Some(expired.as_str()), 401),
            (Some(forged.as_str()), 401),
            (Some("not.a.token"), 401),
            (Some(foreign.as_str()), 403),
        ] {
            let (status, answer) = app.qa(method, path, token, body).await;
            assert_eq!(status, want, "{method} {path} with {token:?}: {answer}");
            assert!(answer.get("flags").is_none() && answer.get("call").is_none());
        }
    }
    let (_, open) = app
        .qa("GET", "/qa/flags", Some(&app.reviewer_token()), None)
        .await;
    assert_eq!(
        ids(&open),
        ["conv_a1.asked-date-of-birth"],
        "still open: nothing was resolved"
    );
}

#[tokio::test]
async fn a_reviewer_of_one_business_cannot_read_or_resolve_anothers_calls() {
    let demo = spawn_app().await;
    flagged_calls(&demo, &["conv_demo_call", "conv_demo_call_2"]).await;
    let acme = spawn_app_with(Options {
        tenant_id: Some("acme".into()),
        share_resources_with: Some(demo.resources.clone()),
        ..Options::default()
    })
    .await;
    let acme_token = acme.reviewer_token();

    let (status, list) = acme.qa("GET", "/qa/flags", Some(&acme_token), None).await;
    assert_eq!(status, 200);
    assert!(ids(&list).is_empty(), "{list}");
    let (status, _) = acme
        .qa("GET", "/qa/calls/conv_demo_call", Some(&acme_token), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = acme
        .qa(
            "POST",
            "/qa/flags/conv_demo_call.asked-date-of-birth",
            Some(&acme_token),
            Some(&json!({"status": "dismissed"})),
        )
        .await;
    assert_eq!(status, 404);
    // A cursor of demo's list is not one of acme's.
    let (_, page) = demo
        .qa(
            "GET",
            "/qa/flags?limit=1",
            Some(&demo.reviewer_token()),
            None,
        )
        .await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (status, _) = acme
        .qa(
            "GET",
            &format!("/qa/flags?cursor={cursor}"),
            Some(&acme_token),
            None,
        )
        .await;
    assert_eq!(status, 400);
    // And demo's reviewer on acme's stack is refused outright.
    let (status, _) = acme
        .qa("GET", "/qa/flags", Some(&demo.reviewer_token()), None)
        .await;
    assert_eq!(status, 403);
    let (_, open) = demo
        .qa("GET", "/qa/flags", Some(&demo.reviewer_token()), None)
        .await;
    assert_eq!(ids(&open).len(), 2);
}

#[tokio::test]
async fn on_lambda_only_the_authorizers_claims_count() {
    use lambda_http::tower::ServiceExt;
    let app = spawn_app().await;
    flagged_calls(&app, &["conv_lambda"]).await;
    let raw =
        std::fs::read_to_string(workspace().join("events/qa-api/apigw-qa-flags.json")).unwrap();
    let sample: Value = serde_json::from_str(&raw).unwrap();
    let call = |event: Value| {
        let router = frontdesk_blackbox::frontdesk::http::function_router(
            "qa-api",
            frontdesk_blackbox::frontdesk::http::rows::qa_api,
            app.deps.clone(),
        );
        async move {
            let request = lambda_http::request::from_str(&event.to_string()).unwrap();
            let response = router.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
            )
        }
    };

    let (status, page) = call(sample.clone()).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), ["conv_lambda.asked-date-of-birth"]);

    let mut foreign = sample.clone();
    foreign["requestContext"]["authorizer"]["jwt"]["claims"]["custom:tenant"] = json!("acme");
    assert_eq!(call(foreign).await.0, 403);

    // No authorizer context (a route deployed without it): a token the function could check
    // itself is still not trusted.
    let mut unverified = sample;
    unverified["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    unverified["headers"]["authorization"] = json!(format!("Bearer {}", app.reviewer_token()));
    assert_eq!(call(unverified).await.0, 401);
}

#[tokio::test]
async fn the_console_in_a_real_browser_shows_the_queue_a_flagged_turn_and_dismisses_it() {
    let app = spawn_app().await;
    flagged_calls(&app, &["conv_console_dob"]).await;
    let price = [
        ("agent", OPENING),
        ("user", "How much is a service?"),
        ("agent", "It's usually £80 plus parts."),
    ];
    app.deliver(&transcript_call(
        "conv_console_price",
        &price,
        "booked",
        &[],
    ))
    .await;
    scan::run(&app.deps, Instant::now() + Duration::from_secs(60), None)
        .await
        .unwrap();
    let python = std::env::var("FRONTDESK_MOTO_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".venv/bin/python"));
    let shots = workspace().join(".local");
    std::fs::create_dir_all(&shots).unwrap();
    let address = app.address.clone();
    let token = app.reviewer_token();
    let flag = "conv_console_dob.asked-date-of-birth";

    let run = tokio::process::Command::new(&python)
        .arg(workspace().join("tests/browser/console.py"))
        .args([address.as_str(), token.as_str(), flag, "2"])
        .arg(&shots)
        .output()
        .await
        .expect("python runs");

    assert!(
        run.status.success(),
        "browser test failed (needs Debian's chromium: make test installs it)\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(shots.join("console-call.png").exists());
    // What the browser did reached the store.
    let (_, dismissed) = app
        .qa("GET", "/qa/flags?status=dismissed", Some(&token), None)
        .await;
    assert_eq!(ids(&dismissed), [flag]);
    assert_eq!(
        dismissed["flags"][0]["note"],
        "The caller volunteered it; the agent did not ask."
    );
}
