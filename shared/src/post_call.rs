//! The post-call pipeline: durable intake of a verified webhook, then processing that can run
//! any number of times (inline, from the retry queue, concurrently) with one result.
//!
//! Intake: raw body to S3, an intake record claimed in DynamoDB, a re-check queued. Processing:
//! call record, transcript and audio in S3, contact, lead, texts, events. Every write is keyed by
//! the conversation, every text and event has a derived id, so a redelivery changes nothing.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tracing::{info, warn};

use crate::blobs;
use crate::deps::{Deps, TenantError};
use crate::elevenlabs::client::ElevenLabsError;
use crate::elevenlabs::webhook::{
    self, Audio, InitiationFailure, PayloadError, PostCallEvent, Transcription,
};
use crate::error::DependencyError;
use crate::ids::ConversationId;
use crate::jobs::Job;
use crate::outbox::{self, Audience, NewMessage};
use crate::phone::PhoneNumber;
use crate::redact::redact_contact_details;
use crate::spoken::spoken_datetime;
use crate::store::calls::{CallRecord, Evaluation, ToolCallRecord};
use crate::store::contacts::{Contact, LeadInput, LeadOutcome};
use crate::store::inbox::{Claim, Lease};
use crate::store::messages::EventClaim;
use crate::tenant::{render, TenantConfig};

/// How long one processing run may hold an event before another may take over.
const LEASE_SECS: i64 = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// Stored and processed (or queued for processing).
    Accepted,
    /// Seen and processed before: nothing done.
    Duplicate,
    /// A type we do not handle: acknowledged, nothing stored.
    Ignored,
}

impl Intake {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{0}")]
    BadPayload(#[from] PayloadError),
    /// Nothing durable yet: the sender should retry.
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("another worker is processing this event")]
    Busy,
    #[error("processing took longer than the inline budget; the queued re-check finishes it")]
    TimedOut,
    #[error("stored webhook {0} is missing")]
    MissingRaw(String),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

/// Takes a verified body: stores it durably, then tries to process it at once.
pub async fn intake(
    deps: &Deps,
    raw: &[u8],
) -> Result<(Intake, Option<PostCallEvent>), IntakeError> {
    let event = webhook::parse(raw)?;
    let Some(conversation) = event.conversation_id().cloned() else {
        info!(
            event_type = event.kind(),
            outcome = "ignored",
            "webhook type not handled"
        );
        return Ok((Intake::Ignored, Some(event)));
    };
    let kind = event.kind().to_string();
    let tenant = &deps.config.tenant;
    // A redelivery of finished work changes nothing, not even the stored copy.
    if deps.store.inbox_done(&conversation, &kind).await? {
        return Ok((Intake::Duplicate, Some(event)));
    }
    let raw_key = blobs::keys::raw_webhook(tenant, &conversation, &kind);
    deps.blobs
        .put(&raw_key, raw.to_vec(), "application/json")
        .await?;
    let claim = deps
        .store
        .claim_inbox(
            &conversation,
            &kind,
            &raw_key,
            deps.now(),
            deps.config.bookkeeping_ttl,
        )
        .await?;
    if claim == Claim::Done {
        return Ok((Intake::Duplicate, Some(event)));
    }
    // A second look later, in case this run dies part-way: processing is idempotent.
    let recheck = Job::ProcessWebhook {
        tenant: tenant.to_string(),
        conversation_id: conversation.to_string(),
        event_type: kind.clone(),
    };
    let queued = deps
        .queue
        .enqueue(&recheck, deps.config.intake_recheck_delay)
        .await;
    // Bounded, so ElevenLabs gets its 200 quickly; whatever is left, the queued re-check does.
    let inline = tokio::time::timeout(deps.config.inline_budget, process(deps, &event, raw))
        .await
        .unwrap_or(Err(ProcessError::TimedOut));
    match (inline, queued) {
        (Ok(_), _) => Ok((Intake::Accepted, Some(event))),
        (Err(ProcessError::Busy), Ok(())) => Ok((Intake::Accepted, Some(event))),
        (Err(e), Ok(())) => {
            warn!(conversation_id = %conversation, event_type = %kind, error = %e, outcome = "queued", "processing failed after intake; retry queued");
            Ok((Intake::Accepted, Some(event)))
        }
        // Not processed and no retry queued: make the sender try again.
        (Err(_), Err(queue_error)) => Err(IntakeError::Dependency(queue_error)),
    }
}

/// Processes a stored webhook again (the retry queue's job).
pub async fn process_stored(
    deps: &Deps,
    conversation: &ConversationId,
    event_type: &str,
) -> Result<Processed, ProcessError> {
    let key = blobs::keys::raw_webhook(&deps.config.tenant, conversation, event_type);
    let raw = deps
        .blobs
        .get(&key)
        .await?
        .ok_or_else(|| ProcessError::MissingRaw(key.clone()))?;
    match webhook::parse(&raw) {
        Ok(event) => process(deps, &event, &raw).await,
        Err(e) => {
            // It was verified and parsed at intake; if it no longer parses, retrying won't help.
            warn!(conversation_id = %conversation, event_type, error = %e, "stored webhook no longer parses");
            deps.store
                .finish_inbox(conversation, event_type, "unparseable", deps.now())
                .await?;
            Ok(Processed::Skipped("unparseable"))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    Done(&'static str),
    AlreadyDone,
    Skipped(&'static str),
}

/// Runs the event's effects under the intake record's lease, then marks it done.
/// `raw` is the verified body the event was parsed from (the transcript is stored from it).
pub async fn process(
    deps: &Deps,
    event: &PostCallEvent,
    raw: &[u8],
) -> Result<Processed, ProcessError> {
    let (Some(conversation), kind) = (event.conversation_id(), event.kind()) else {
        return Ok(Processed::Skipped("unhandled type"));
    };
    match deps
        .store
        .lease_inbox(conversation, kind, deps.now(), LEASE_SECS)
        .await?
    {
        Lease::Acquired => {}
        Lease::Done => return Ok(Processed::AlreadyDone),
        Lease::Busy => return Err(ProcessError::Busy),
        Lease::Missing => {
            return Err(ProcessError::MissingRaw(format!(
                "intake record of {conversation}/{kind}"
            )))
        }
    }
    let result = async {
        let tenant = deps.tenant().await?;
        if let Some(agent) = event.agent_id() {
            if !tenant.serves_agent(agent.as_str()) {
                info!(conversation_id = %conversation, event_type = kind, outcome = "other_agent", "event is for an agent of another business; ignored");
                return Ok("other_agent");
            }
        }
        match event {
            PostCallEvent::Transcription(t) => on_transcription(deps, &tenant, t, raw).await,
            PostCallEvent::Audio(a) => on_audio(deps, a).await,
            PostCallEvent::InitiationFailure(f) => on_initiation_failure(deps, &tenant, f).await,
            PostCallEvent::TranscriptionOtel(r) => on_otel_transcription(deps, &tenant, &r.conversation_id).await,
            PostCallEvent::Other { .. } => Ok("ignored"),
        }
    }
    .await;
    match result {
        Ok(outcome) => {
            deps.store
                .finish_inbox(conversation, kind, outcome, deps.now())
                .await?;
            info!(conversation_id = %conversation, event_type = kind, outcome, "webhook processed");
            Ok(Processed::Done(outcome))
        }
        Err(e) => {
            if let Err(release) = deps.store.release_inbox(conversation, kind).await {
                warn!(conversation_id = %conversation, error = %release, "could not release the processing lease");
            }
            Err(e)
        }
    }
}

/// What the analysis says about the call, read through the tenant's field names.
struct CallFacts {
    name: Option<String>,
    service: Option<String>,
    urgency: Option<String>,
    hot: bool,
    disposition: String,
    booking_id: Option<String>,
    booking_time: Option<jiff::Timestamp>,
    wants_lead: bool,
}

fn read_facts(tenant: &TenantConfig, t: &Transcription) -> CallFacts {
    let rules = &tenant.post_call;
    let tool_calls = t.tool_calls();
    // A booking made through our create_booking tool during the call counts as booked.
    let booking_result: Option<Value> = tool_calls
        .iter()
        .filter(|c| c.tool_name == "create_booking" && c.is_error != Some(true))
        .filter_map(|c| serde_json::from_str::<Value>(c.result_value.as_deref()?).ok())
        .find(|v| v.get("booking_id").and_then(Value::as_str).is_some());
    let booking_id = t.data_text(&rules.booking_id_field).or_else(|| {
        booking_result
            .as_ref()?
            .get("booking_id")?
            .as_str()
            .map(str::to_string)
    });
    let booking_time = t
        .data_text(&rules.booking_time_field)
        .or_else(|| {
            booking_result
                .as_ref()?
                .get("start")?
                .as_str()
                .map(str::to_string)
        })
        .and_then(|s| s.parse::<jiff::Timestamp>().ok());
    let urgency = t.data_text(&rules.urgency_field).map(|u| u.to_lowercase());
    let hot = urgency
        .as_deref()
        .is_some_and(|u| rules.hot_values.iter().any(|h| h.eq_ignore_ascii_case(u)));
    let successful = t
        .analysis
        .as_ref()
        .and_then(|a| a.call_successful.as_deref())
        == Some("success");
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
    }
}

async fn on_transcription(
    deps: &Deps,
    tenant: &TenantConfig,
    t: &Transcription,
    raw: &[u8],
) -> Result<&'static str, ProcessError> {
    let now = deps.now();
    let conv = &t.conversation_id;
    let facts = read_facts(tenant, t);
    let caller = t
        .external_number()
        .and_then(|n| PhoneNumber::parse(n, Some(&tenant.business.country)).ok());
    let zone = tenant.time_zone();

    let transcript_key = store_transcript(deps, tenant, t, raw).await?;

    let mut contact: Option<Contact> = None;
    let mut lead: Option<LeadOutcome> = None;
    if let Some(phone) = &caller {
        let c = deps
            .store
            .upsert_contact(phone, facts.name.as_deref(), "phone", conv, now)
            .await?;
        if facts.wants_lead {
            let summary = t
                .analysis
                .as_ref()
                .and_then(|a| a.transcript_summary.as_deref());
            let input = LeadInput {
                area: None,
                conversation: conv,
                channel: "phone",
                name: facts.name.as_deref(),
                service: facts.service.as_deref(),
                urgency: facts.urgency.as_deref(),
                hot: facts.hot,
                summary,
                now,
            };
            lead = Some(deps.store.open_or_merge_lead(&c, &input).await?);
        }
        contact = Some(c);
    }

    let analysis = t.analysis.as_ref();
    let started = t
        .metadata
        .start_time_unix_secs
        .and_then(|s| jiff::Timestamp::from_second(s).ok());
    let ended = match (started, t.metadata.call_duration_secs) {
        (Some(s), Some(d)) => s
            // Any number is valid JSON: out-of-range durations fall back to now, never panic.
            .checked_add(jiff::SignedDuration::try_from_secs_f64(d.max(0.0)).unwrap_or_default())
            .unwrap_or(now),
        _ => now,
    };
    let record = CallRecord {
        tenant: deps.config.tenant.to_string(),
        conversation_id: conv.to_string(),
        agent_id: Some(t.agent_id.to_string()),
        status: "completed".into(),
        caller: caller.as_ref().map(|p| p.to_string()),
        call_sid: t
            .metadata
            .phone_call
            .as_ref()
            .and_then(|p| p.call_sid.clone()),
        direction: t
            .metadata
            .phone_call
            .as_ref()
            .and_then(|p| p.direction.clone()),
        started_at: started.map(|s| s.to_string()),
        ended_at: ended.to_string(),
        duration_secs: t.metadata.call_duration_secs,
        cost_credits: t.metadata.cost,
        termination_reason: t.metadata.termination_reason.clone(),
        summary: analysis.and_then(|a| a.transcript_summary.clone()),
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
        lead_id: lead.as_ref().map(|l| l.id.to_string()),
        transcript_key: Some(transcript_key),
        failure_reason: None,
        updated_at: now.to_string(),
    };
    deps.store.save_call(&record).await?;

    let mut messages: Vec<String> = Vec::new();
    if let (Some(phone), Some(lead)) = (&caller, &lead) {
        let first_name = facts
            .name
            .as_deref()
            .or(contact.as_ref().and_then(|c| c.name.as_deref()))
            .and_then(|n| n.split_whitespace().next())
            .map(str::to_string);
        let booking_time = facts
            .booking_time
            .map(|b| spoken_datetime(&b.to_zoned(zone.clone())));
        // The owner hears about this call when this call is urgent, not every time a hot lead rings again.
        if facts.hot {
            let summary: Option<String> = analysis
                .and_then(|a| a.transcript_summary.as_deref())
                .map(|s| s.chars().take(400).collect());
            let values = owner_values(
                tenant,
                facts.name.as_deref(),
                phone,
                &facts,
                summary,
                booking_time.clone(),
            );
            messages.push(
                outbox::create(
                    deps,
                    NewMessage {
                        id: format!("owner-hot-lead:{conv}"),
                        purpose: "owner_hot_lead",
                        audience: Audience::Owner,
                        to: tenant.business.owner_phone.clone(),
                        body: render(&tenant.templates.owner_hot_lead, &values),
                        conversation_id: Some(conv.to_string()),
                        lead_id: Some(lead.id.to_string()),
                    },
                )
                .await?,
            );
        }
        let values = caller_values(
            tenant,
            first_name,
            facts.service.clone(),
            booking_time.clone(),
        );
        let successful = analysis.and_then(|a| a.call_successful.as_deref()) == Some("success");
        let follow_up = !successful
            || tenant
                .post_call
                .follow_up_dispositions
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&facts.disposition));
        let (id, purpose, template) = match (&facts.booking_id, &booking_time) {
            // Keyed by the booking, so the booking tool's own confirmation and this one are one text.
            (Some(booking), Some(_)) => (
                // The booking id is model-collected text: hashed, so keys and logs stay safe.
                format!(
                    "booking-confirmed:{}",
                    crate::ids::derived_id("bk", &[booking])
                ),
                "booking_confirmed",
                &tenant.templates.booking_confirmed,
            ),
            _ if follow_up => (
                format!("call-follow-up:{conv}"),
                "follow_up_needed",
                &tenant.templates.follow_up_needed,
            ),
            _ => (
                format!("call-recap:{conv}"),
                "info_recap",
                &tenant.templates.info_recap,
            ),
        };
        messages.push(
            outbox::create(
                deps,
                NewMessage {
                    id,
                    purpose,
                    audience: Audience::Caller,
                    to: phone.clone(),
                    body: render(template, &values),
                    conversation_id: Some(conv.to_string()),
                    lead_id: Some(lead.id.to_string()),
                },
            )
            .await?,
        );
    }
    for id in &messages {
        outbox::dispatch(deps, tenant, id).await?;
    }

    let lead_id = lead.as_ref().map(|l| l.id.to_string());
    emit(
        deps,
        &format!("call.completed:{conv}"),
        "call.completed",
        json!({
            "conversation_id": conv.as_str(),
            "agent_id": t.agent_id.as_str(),
            "ended_at": record.ended_at,
            "disposition": facts.disposition,
            "call_successful": record.call_successful,
            "lead_id": lead_id,
            "booking_id": facts.booking_id,
            "hot": facts.hot,
        }),
    )
    .await?;
    if let Some(lead) = &lead {
        if lead.opened_here {
            emit(deps, &format!("lead.created:{}", lead.id), "lead.created", json!({
                "lead_id": lead.id.as_str(), "conversation_id": conv.as_str(), "channel": "phone", "hot": lead.hot,
            }))
            .await?;
        }
        if facts.hot {
            emit(deps, &format!("lead.hot:{}:{conv}", lead.id), "lead.hot", json!({
                "lead_id": lead.id.as_str(), "conversation_id": conv.as_str(), "urgency": facts.urgency,
            }))
            .await?;
        }
    }

    if t.has_audio == Some(true)
        && deps.elevenlabs.is_some()
        && !deps.store.call_has_audio(conv).await?
    {
        let job = Job::FetchAudio {
            tenant: deps.config.tenant.to_string(),
            conversation_id: conv.to_string(),
        };
        deps.queue
            .enqueue(&job, deps.config.audio_fetch_delay)
            .await?;
    }
    Ok("completed")
}

fn caller_values(
    tenant: &TenantConfig,
    first_name: Option<String>,
    service: Option<String>,
    booking_time: Option<String>,
) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("business_name", tenant.business.name.clone()),
        ("first_name", first_name.unwrap_or_else(|| "there".into())),
        ("service", service.unwrap_or_else(|| "your enquiry".into())),
        ("booking_time", booking_time.unwrap_or_default()),
        ("business_phone", tenant.business.phone.international()),
    ])
}

fn owner_values(
    tenant: &TenantConfig,
    name: Option<&str>,
    phone: &PhoneNumber,
    facts: &CallFacts,
    summary: Option<String>,
    booking_time: Option<String>,
) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("business_name", tenant.business.name.clone()),
        ("caller_name", name.unwrap_or("Unknown caller").to_string()),
        ("caller_phone", phone.international()),
        (
            "service",
            facts.service.clone().unwrap_or_else(|| "an enquiry".into()),
        ),
        ("urgency", facts.urgency.clone().unwrap_or_default()),
        ("summary", summary.unwrap_or_default()),
        ("booking_time", booking_time.unwrap_or_default()),
    ])
}

/// Stores the transcript exactly as ElevenLabs sent it (masked if the tenant asks).
async fn store_transcript(
    deps: &Deps,
    tenant: &TenantConfig,
    t: &Transcription,
    raw: &[u8],
) -> Result<String, DependencyError> {
    let key = blobs::keys::transcript(&deps.config.tenant, &t.conversation_id);
    // Parsed again as plain JSON so every field ElevenLabs sent is kept, typed or not.
    let mut turns = serde_json::from_slice::<Value>(raw)
        .ok()
        .and_then(|mut v| {
            v.get_mut("data")
                .and_then(|d| d.get_mut("transcript"))
                .map(Value::take)
        })
        .unwrap_or(Value::Array(Vec::new()));
    let redacted = tenant.post_call.redact_transcripts;
    if redacted {
        redact_texts(&mut turns);
    }
    let doc = json!({
        "conversation_id": t.conversation_id.as_str(),
        "agent_id": t.agent_id.as_str(),
        "redacted": redacted,
        "transcript": turns,
    });
    deps.blobs
        .put(&key, doc.to_string().into_bytes(), "application/json")
        .await?;
    Ok(key)
}

/// Masks contact details in what people said and in tool arguments and results.
fn redact_texts(v: &mut Value) {
    const TEXT_FIELDS: &[&str] = &[
        "message",
        "original_message",
        "params_as_json",
        "body",
        "result_value",
    ];
    match v {
        Value::Array(items) => items.iter_mut().for_each(redact_texts),
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                match child {
                    Value::String(s) if TEXT_FIELDS.contains(&k.as_str()) => {
                        *s = redact_contact_details(s)
                    }
                    _ => redact_texts(child),
                }
            }
        }
        _ => {}
    }
}

async fn on_audio(deps: &Deps, a: &Audio) -> Result<&'static str, ProcessError> {
    let bytes = a
        .decode()
        .map_err(|e| DependencyError::new("webhook", "decode", "BadAudio", e.0))?;
    let key = blobs::keys::audio(&deps.config.tenant, &a.conversation_id);
    let len = bytes.len();
    deps.blobs.put(&key, bytes, "audio/mpeg").await?;
    deps.store
        .set_call_audio(&a.conversation_id, &key, len, deps.now())
        .await?;
    Ok("audio_stored")
}

async fn on_initiation_failure(
    deps: &Deps,
    tenant: &TenantConfig,
    f: &InitiationFailure,
) -> Result<&'static str, ProcessError> {
    let now = deps.now();
    let conv = &f.conversation_id;
    let caller = f
        .external_number()
        .and_then(|n| PhoneNumber::parse(&n, Some(&tenant.business.country)).ok())
        // Our own number is never "the caller".
        .filter(|p| p != &tenant.business.phone);
    let mut lead: Option<LeadOutcome> = None;
    if let Some(phone) = &caller {
        let contact = deps
            .store
            .upsert_contact(phone, None, "phone", conv, now)
            .await?;
        let input = LeadInput {
            area: None,
            conversation: conv,
            channel: "phone",
            name: None,
            service: None,
            urgency: None,
            hot: false,
            summary: None,
            now,
        };
        lead = Some(deps.store.open_or_merge_lead(&contact, &input).await?);
    }
    let record = CallRecord {
        tenant: deps.config.tenant.to_string(),
        conversation_id: conv.to_string(),
        agent_id: Some(f.agent_id.to_string()),
        status: "initiation_failed".into(),
        caller: caller.as_ref().map(|p| p.to_string()),
        ended_at: now.to_string(),
        disposition: "missed".into(),
        failure_reason: Some(f.failure_reason.clone().unwrap_or_else(|| "unknown".into())),
        lead_id: lead.as_ref().map(|l| l.id.to_string()),
        updated_at: now.to_string(),
        ..CallRecord::default()
    };
    deps.store.save_call(&record).await?;
    if let (Some(phone), Some(lead)) = (&caller, &lead) {
        let values = caller_values(tenant, None, None, None);
        let owner = BTreeMap::from([
            ("business_name", tenant.business.name.clone()),
            ("caller_phone", phone.international()),
        ]);
        let ids = [
            outbox::create(
                deps,
                NewMessage {
                    id: format!("missed-call:{conv}"),
                    purpose: "missed_call",
                    audience: Audience::Caller,
                    to: phone.clone(),
                    body: render(&tenant.templates.missed_call, &values),
                    conversation_id: Some(conv.to_string()),
                    lead_id: Some(lead.id.to_string()),
                },
            )
            .await?,
            outbox::create(
                deps,
                NewMessage {
                    id: format!("owner-missed-call:{conv}"),
                    purpose: "owner_missed_call",
                    audience: Audience::Owner,
                    to: tenant.business.owner_phone.clone(),
                    body: render(&tenant.templates.owner_missed_call, &owner),
                    conversation_id: Some(conv.to_string()),
                    lead_id: Some(lead.id.to_string()),
                },
            )
            .await?,
        ];
        for id in &ids {
            outbox::dispatch(deps, tenant, id).await?;
        }
    }
    emit(
        deps,
        &format!("call.missed:{conv}"),
        "call.missed",
        json!({
            "conversation_id": conv.as_str(),
            "failure_reason": record.failure_reason,
            "lead_id": record.lead_id,
        }),
    )
    .await?;
    if let Some(lead) = lead.filter(|l| l.opened_here) {
        emit(deps, &format!("lead.created:{}", lead.id), "lead.created", json!({
            "lead_id": lead.id.as_str(), "conversation_id": conv.as_str(), "channel": "phone", "hot": false,
        }))
        .await?;
    }
    Ok("missed_call")
}

/// The OpenTelemetry form carries the same call in another shape: fetch the JSON form from the
/// API and process that, under the transcription's own key, so both forms give one result.
async fn on_otel_transcription(
    deps: &Deps,
    tenant: &TenantConfig,
    conversation: &ConversationId,
) -> Result<&'static str, ProcessError> {
    let Some(client) = &deps.elevenlabs else {
        warn!(conversation_id = %conversation, outcome = "otel_without_api_key", "OpenTelemetry transcript received but no ELEVENLABS_API_KEY to fetch the JSON form; set the workspace transcript format to JSON");
        return Ok("otel_without_api_key");
    };
    let fetched = client.conversation(conversation).await.map_err(|e| {
        DependencyError::new(
            "elevenlabs",
            "GetConversation",
            "Unavailable",
            e.to_string(),
        )
    })?;
    let body = webhook::transcription_body(&fetched)
        .map_err(|e| DependencyError::new("elevenlabs", "GetConversation", "BadBody", e.0))?;
    let PostCallEvent::Transcription(t) = webhook::parse(&body)
        .map_err(|e| DependencyError::new("elevenlabs", "GetConversation", "BadBody", e.0))?
    else {
        return Ok("otel_unusable");
    };
    if &t.conversation_id != conversation {
        return Err(DependencyError::new(
            "elevenlabs",
            "GetConversation",
            "WrongConversation",
            "the API answered with another conversation",
        )
        .into());
    }
    let key = blobs::keys::raw_webhook(&deps.config.tenant, conversation, webhook::TRANSCRIPTION);
    deps.blobs
        .put(&key, body.clone(), "application/json")
        .await?;
    on_transcription(deps, tenant, &t, &body).await
}

/// Publishes a domain event once: recorded under its id first, marked when published.
pub async fn emit(
    deps: &Deps,
    event_id: &str,
    detail_type: &str,
    mut detail: Value,
) -> Result<(), DependencyError> {
    let claim = deps
        .store
        .claim_event(
            event_id,
            detail_type,
            deps.now(),
            deps.config.bookkeeping_ttl,
        )
        .await?;
    if claim == EventClaim::Published {
        return Ok(());
    }
    if let Value::Object(map) = &mut detail {
        map.insert("event_id".into(), json!(event_id));
        map.insert("tenant".into(), json!(deps.config.tenant.as_str()));
        map.insert("occurred_at".into(), json!(deps.now().to_string()));
    }
    deps.bus.publish(detail_type, &detail).await?;
    deps.store.mark_event_published(event_id, deps.now()).await
}

/// The retry queue's `fetch_audio` job: the robust path for audio too large for a webhook.
pub async fn fetch_audio(
    deps: &Deps,
    conversation: &ConversationId,
) -> Result<&'static str, ProcessError> {
    if deps.store.call_has_audio(conversation).await? {
        return Ok("already_stored");
    }
    let Some(client) = &deps.elevenlabs else {
        return Ok("no_api_key");
    };
    match client.conversation_audio(conversation).await {
        Ok(bytes) => {
            let key = blobs::keys::audio(&deps.config.tenant, conversation);
            let len = bytes.len();
            deps.blobs.put(&key, bytes, "audio/mpeg").await?;
            deps.store
                .set_call_audio(conversation, &key, len, deps.now())
                .await?;
            Ok("audio_fetched")
        }
        Err(ElevenLabsError::NotFound) => Ok("no_audio"),
        Err(e) => Err(DependencyError::new(
            "elevenlabs",
            "GetConversationAudio",
            "Unavailable",
            e.to_string(),
        )
        .into()),
    }
}
