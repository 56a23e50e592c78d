//! The pure part of processing a call: what its analysis says, the call record, which text the
//! caller gets and what the owner is told. No I/O: [`super`] does the storing and sending.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::elevenlabs::webhook::Transcription;
use crate::ids::ConversationId;
use crate::leads::HotLead;
use crate::outbox::booking_confirmation_id;
use crate::phone::PhoneNumber;
use crate::spoken::spoken_datetime;
use crate::store::calls::{CallRecord, CallStatus, Evaluation, ToolCallRecord};
use crate::tenant::TenantConfig;

/// What the analysis says about the call, read through the tenant's field names.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFacts {
    pub name: Option<String>,
    pub service: Option<String>,
    pub urgency: Option<String>,
    pub hot: bool,
    pub disposition: String,
    pub booking_id: Option<String>,
    pub booking_time: Option<Timestamp>,
    /// Whether the call is an enquiry at all (not spam, not a wrong number).
    pub wants_lead: bool,
    pub successful: bool,
    pub summary: Option<String>,
}

pub fn read_facts(tenant: &TenantConfig, t: &Transcription) -> CallFacts {
    let rules = &tenant.post_call;
    // A booking made through our create_booking tool during the call counts as booked.
    let booking_result: Option<Value> = t
        .tool_calls()
        .iter()
        .filter(|c| c.tool_name == "create_booking" && c.is_error != Some(true))
        .filter_map(|c| serde_json::from_str::<Value>(c.result_value.as_deref()?).ok())
        .find(|v| v.get("booking_id").and_then(Value::as_str).is_some());
    let from_booking = |field: &str| {
        booking_result
            .as_ref()?
            .get(field)?
            .as_str()
            .map(str::to_string)
    };
    let booking_id = t
        .data_text(&rules.booking_id_field)
        .or_else(|| from_booking("booking_id"));
    let booking_time = t
        .data_text(&rules.booking_time_field)
        .or_else(|| from_booking("start"))
        .and_then(|s| s.parse::<Timestamp>().ok());
    let urgency = t.data_text(&rules.urgency_field).map(|u| u.to_lowercase());
    let hot = urgency
        .as_deref()
        .is_some_and(|u| rules.hot_values.iter().any(|h| h.eq_ignore_ascii_case(u)));
    let analysis = t.analysis.as_ref();
    let successful = analysis.and_then(|a| a.call_successful.as_deref()) == Some("success");
    let disposition = t
        .data_text(&rules.disposition_field)
        .map(|d| d.to_lowercase().replace([' ', '-'], "_"))
        .unwrap_or_else(|| {
            if booking_id.is_some() {
                "booked".into()
            } else if successful {
                "info_given".into()
            } else {
                "follow_up".into()
            }
        });
    let wants_lead = !rules
        .no_lead_dispositions
        .iter()
        .any(|d| d.eq_ignore_ascii_case(&disposition));
    CallFacts {
        name: t.data_text(&rules.name_field),
        service: t.data_text(&rules.service_field),
        urgency,
        hot,
        disposition,
        booking_id,
        booking_time,
        wants_lead,
        successful,
        summary: analysis.and_then(|a| a.transcript_summary.clone()),
    }
}

/// The caller's number, if ElevenLabs gave a valid one.
pub fn caller_number(tenant: &TenantConfig, t: &Transcription) -> Option<PhoneNumber> {
    t.external_number()
        .and_then(|n| PhoneNumber::parse(n, Some(&tenant.business.country)).ok())
}

/// What the call record links to, found while processing.
pub struct Links {
    pub caller: Option<PhoneNumber>,
    pub lead_id: Option<String>,
    pub transcript_key: String,
}

/// The call record, from the payload and what processing found.
pub fn call_record(
    tenant_id: &str,
    t: &Transcription,
    facts: &CallFacts,
    links: Links,
    now: Timestamp,
) -> CallRecord {
    let analysis = t.analysis.as_ref();
    let started = Timestamp::from_second(t.metadata.start_time_unix_secs).ok();
    // Any number is valid JSON: out-of-range times and durations fall back to now, never panic.
    let ended = started
        .and_then(|s| {
            let took = SignedDuration::try_from_secs_f64(t.metadata.call_duration_secs.max(0.0));
            s.checked_add(took.unwrap_or_default()).ok()
        })
        .unwrap_or(now);
    let phone_call = t.metadata.phone_call.as_ref();
    CallRecord {
        tenant: tenant_id.to_string(),
        conversation_id: t.conversation_id.to_string(),
        agent_id: Some(t.agent_id.to_string()),
        status: CallStatus::Completed,
        caller: links.caller.as_ref().map(|p| p.to_string()),
        call_sid: phone_call.and_then(|p| p.call_sid.clone()),
        direction: phone_call.and_then(|p| p.direction.clone()),
        started_at: started.map(|s| s.to_string()),
        ended_at: ended.to_string(),
        duration_secs: Some(t.metadata.call_duration_secs),
        cost_credits: t.metadata.cost,
        termination_reason: t.metadata.termination_reason.clone(),
        summary: facts.summary.clone(),
        summary_title: analysis.and_then(|a| a.call_summary_title.clone()),
        call_successful: analysis.and_then(|a| a.call_successful.clone()),
        data_collection: analysis
            .map(|a| {
                a.data_collection_results
                    .iter()
                    .map(|(k, v)| (k.clone(), v.value.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        evaluation: analysis
            .map(|a| {
                a.evaluation_criteria_results
                    .iter()
                    .map(|(k, v)| {
                        let e = Evaluation {
                            result: v.result.clone().unwrap_or_else(|| "unknown".into()),
                            rationale: v.rationale.clone(),
                        };
                        (k.clone(), e)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        tool_calls: t
            .tool_calls()
            .into_iter()
            .map(|c| ToolCallRecord {
                tool: c.tool_name,
                request_id: c.request_id,
                turn: c.turn_index as u32,
                is_error: c.is_error,
            })
            .collect(),
        disposition: facts.disposition.clone(),
        urgency: facts.urgency.clone(),
        hot: facts.hot,
        booking_id: facts.booking_id.clone(),
        booking_time: facts.booking_time.map(|b| b.to_string()),
        lead_id: links.lead_id,
        transcript_key: Some(links.transcript_key),
        failure_reason: None,
        updated_at: now.to_string(),
        // The business's retention, set by whoever stores it.
        expires_at: None,
    }
}

/// The one text a caller gets after a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerText {
    pub id: String,
    pub purpose: &'static str,
    pub body: String,
}

/// Which text the caller gets: the booking's confirmation when the call made one, a follow-up
/// promise when it was not successful or its disposition asks for one, else a recap.
pub fn caller_text(
    tenant: &TenantConfig,
    conversation: &ConversationId,
    facts: &CallFacts,
    first_name: Option<&str>,
) -> CallerText {
    let booking_time = spoken_booking_time(tenant, facts);
    let values = caller_values(
        tenant,
        first_name,
        facts.service.as_deref(),
        booking_time.as_deref(),
    );
    let follow_up = !facts.successful
        || tenant
            .post_call
            .follow_up_dispositions
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&facts.disposition));
    let templates = &tenant.templates;
    let (id, purpose, template) = match (&facts.booking_id, &booking_time) {
        // Keyed by the booking, so the booking tool's own confirmation and this one are one
        // text. The booking id is model-collected text: hashed, so keys and logs stay safe.
        (Some(booking), Some(_)) => (
            booking_confirmation_id(booking),
            "booking_confirmed",
            &templates.booking_confirmed,
        ),
        _ if follow_up => (
            format!("call-follow-up:{conversation}"),
            "follow_up_needed",
            &templates.follow_up_needed,
        ),
        _ => (
            format!("call-recap:{conversation}"),
            "info_recap",
            &templates.info_recap,
        ),
    };
    CallerText {
        id,
        purpose,
        body: crate::tenant::render(template, &values),
    }
}

/// What the owner is told about an urgent call (`None` when the call is not urgent: the owner
/// hears about this call, not every time a hot lead rings again).
pub fn owner_alert(
    tenant: &TenantConfig,
    facts: &CallFacts,
    caller: &PhoneNumber,
) -> Option<HotLead> {
    facts.hot.then(|| HotLead {
        caller_name: facts.name.clone(),
        phone: Some(caller.clone()),
        service: facts.service.clone(),
        urgency: facts.urgency.clone(),
        summary: facts
            .summary
            .as_ref()
            .map(|s| s.chars().take(400).collect()),
        area: None,
        booking_time: spoken_booking_time(tenant, facts),
    })
}

fn spoken_booking_time(tenant: &TenantConfig, facts: &CallFacts) -> Option<String> {
    facts
        .booking_time
        .map(|b| spoken_datetime(&b.to_zoned(tenant.time_zone())))
}

/// The caller templates' placeholders.
pub fn caller_values(
    tenant: &TenantConfig,
    first_name: Option<&str>,
    service: Option<&str>,
    booking_time: Option<&str>,
) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("business_name", tenant.business.name.clone()),
        ("first_name", first_name.unwrap_or("there").to_string()),
        ("service", service.unwrap_or("your enquiry").to_string()),
        ("booking_time", booking_time.unwrap_or_default().to_string()),
        ("business_phone", tenant.business.phone.international()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elevenlabs::webhook::{self, PostCallEvent};

    fn demo() -> TenantConfig {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../prompts/demo/business.toml");
        TenantConfig::from_toml(&std::fs::read_to_string(path).unwrap(), path).unwrap()
    }

    /// The sample transcription, with its analysis replaced.
    fn call_with(analysis: serde_json::Value) -> Transcription {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/webhooks/post_call_transcription.json"
        );
        let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        v["data"]["analysis"] = analysis;
        let PostCallEvent::Transcription(t) = webhook::parse(v.to_string().as_bytes()).unwrap()
        else {
            panic!("a transcription")
        };
        *t
    }

    fn collected(fields: &[(&str, &str)], success: &str) -> serde_json::Value {
        let results: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!({ "value": v })))
            .collect();
        serde_json::json!({
            "call_successful": success,
            "transcript_summary": "Boiler lost pressure; wants someone today.",
            "data_collection_results": results,
        })
    }

    #[test]
    fn an_urgent_call_alerts_the_owner_and_a_calm_one_does_not() {
        let tenant = demo();
        let urgent = call_with(collected(&[("urgency", "Emergency")], "success"));
        let facts = read_facts(&tenant, &urgent);
        assert!(facts.hot);
        let caller = PhoneNumber::parse("+447911123456", None).unwrap();
        let alert = owner_alert(&tenant, &facts, &caller).unwrap();
        assert_eq!(alert.urgency.as_deref(), Some("emergency"));
        assert_eq!(alert.phone.as_ref(), Some(&caller));
        let calm = call_with(collected(&[("urgency", "low")], "success"));
        assert!(owner_alert(&tenant, &read_facts(&tenant, &calm), &caller).is_none());
    }

    #[test]
    fn the_caller_gets_a_confirmation_a_follow_up_or_a_recap() {
        let tenant = demo();
        let conversation = ConversationId::parse("conv_1").unwrap();
        let text_for = |analysis| {
            let t = call_with(analysis);
            caller_text(
                &tenant,
                &conversation,
                &read_facts(&tenant, &t),
                Some("Maria"),
            )
        };
        let booked = text_for(collected(
            &[
                ("booking_id", "bk_42"),
                ("booking_time", "2026-11-24T10:00:00Z"),
            ],
            "success",
        ));
        assert_eq!(booked.purpose, "booking_confirmed");
        assert_eq!(booked.id, booking_confirmation_id("bk_42"));
        assert!(
            booked.body.contains("Tuesday 24 November at 10am"),
            "{}",
            booked.body
        );
        let failed = text_for(collected(&[], "failure"));
        assert_eq!(failed.purpose, "follow_up_needed");
        assert_eq!(failed.id, "call-follow-up:conv_1");
        let informed = text_for(collected(&[], "success"));
        assert_eq!(informed.purpose, "info_recap");
        assert!(informed.body.contains("Maria"), "{}", informed.body);
    }

    #[test]
    fn spam_is_no_lead_and_the_record_keeps_the_calls_times() {
        let tenant = demo();
        let spam = call_with(collected(&[("disposition", "Spam")], "success"));
        let facts = read_facts(&tenant, &spam);
        assert_eq!(facts.disposition, "spam");
        assert!(!facts.wants_lead);
        let links = Links {
            caller: None,
            lead_id: None,
            transcript_key: "t/key".into(),
        };
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let record = call_record("demo", &spam, &facts, links, now);
        let started = Timestamp::from_second(spam.metadata.start_time_unix_secs).unwrap();
        assert_eq!(record.started_at, Some(started.to_string()));
        assert!(record.ended_at > started.to_string());
        assert_eq!(record.status, CallStatus::Completed);
        assert_eq!(record.transcript_key.as_deref(), Some("t/key"));
    }
}
