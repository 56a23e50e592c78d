//! The post-call pipeline: durable intake of a verified webhook, then processing that can run
//! any number of times (inline, from the retry queue, concurrently) with one result.
//!
//! Intake: raw body to S3, an intake record claimed in DynamoDB, a re-check queued. Processing:
//! call record, transcript and audio in S3, contact, lead, texts, events. Every write is keyed by
//! the conversation, every text and event has a derived id, so a redelivery changes nothing.

pub mod call;

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tracing::{info, warn};

pub use call::{caller_text, owner_alert, read_facts, CallFacts, CallerText};

use crate::blobs;
use crate::deps::{Deps, TenantError};
use crate::elevenlabs::client::ElevenLabsError;
use crate::elevenlabs::webhook::{
    self, Audio, InitiationFailure, PayloadError, PostCallEvent, Transcription,
};
use crate::error::DependencyError;
use crate::events::{self, CallCompleted, CallMissed, DomainEvent};
use crate::ids::ConversationId;
use crate::jobs::Job;
use crate::leads::{self, LeadNews};
use crate::outbox::{self, Audience, NewMessage};
use crate::phone::PhoneNumber;
use crate::redact::redact_personal_data;
use crate::store::calls::{CallRecord, CallStatus};
use crate::store::contacts::{Contact, LeadInput, LeadOutcome};
use crate::store::inbox::{Claim, Lease};
use crate::store::texts::{Direction, ThreadEntry};
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

/// A call's transcript, as the SPEC's steps: store the transcript, the contact and the lead,
/// the call record; text the owner if it is urgent and the caller in any case; announce it.
async fn on_transcription(
    deps: &Deps,
    tenant: &TenantConfig,
    t: &Transcription,
    raw: &[u8],
) -> Result<&'static str, ProcessError> {
    let now = deps.now();
    let conversation = &t.conversation_id;
    let facts = read_facts(tenant, t);
    let caller = call::caller_number(tenant, t);

    let transcript_key = store_transcript(deps, tenant, t, raw).await?;
    let (contact, lead) = match &caller {
        Some(phone) => record_caller(deps, t, &facts, phone).await?,
        None => (None, None),
    };
    let links = call::Links {
        caller: caller.clone(),
        lead_id: lead.as_ref().map(|l| l.id.to_string()),
        transcript_key,
    };
    let mut record = call::call_record(deps.config.tenant.as_str(), t, &facts, links, now);
    record.expires_at = Some(tenant.compliance.expires_at(now));
    deps.store.save_call(&record).await?;
    if let Some(phone) = &caller {
        let summary = facts
            .summary
            .clone()
            .unwrap_or_else(|| "(no summary)".into());
        let entry = call_in_thread(
            conversation,
            &record.ended_at,
            now,
            format!("Call ({}): {summary}", facts.disposition),
        );
        deps.store.add_to_thread(phone, &entry).await?;
    }
    // In the quality scan's order from now: a late transcript is still scanned.
    deps.store.queue_call_for_scan(conversation, now).await?;

    let mut texts = Vec::new();
    if let (Some(phone), Some(lead)) = (&caller, &lead) {
        let news = LeadNews {
            lead,
            conversation,
            channel: "phone",
            hot: owner_alert(tenant, &facts, phone),
        };
        texts.extend(leads::announce(deps, tenant, &news).await?);
        let first_name = facts
            .name
            .as_deref()
            .or(contact.as_ref().and_then(|c| c.name.as_deref()))
            .and_then(|n| n.split_whitespace().next());
        let text = caller_text(tenant, conversation, &facts, first_name);
        let message = NewMessage {
            id: text.id,
            purpose: text.purpose,
            audience: Audience::Caller,
            to: phone.clone(),
            body: text.body,
            conversation_id: Some(conversation.to_string()),
            lead_id: Some(lead.id.to_string()),
        };
        texts.push(outbox::create(deps, message).await?);
    }
    // Sent inline (the webhook's budget allows it); whatever fails is retried from the queue.
    for id in &texts {
        outbox::dispatch(deps, tenant, id).await?;
    }

    let completed = CallCompleted {
        conversation_id: conversation.to_string(),
        agent_id: t.agent_id.to_string(),
        ended_at: record.ended_at.clone(),
        disposition: facts.disposition.clone(),
        call_successful: record.call_successful.clone(),
        lead_id: record.lead_id.clone(),
        booking_id: facts.booking_id.clone(),
        hot: facts.hot,
    };
    events::publish(deps, &DomainEvent::CallCompleted(completed)).await?;

    if t.has_audio == Some(true)
        && deps.elevenlabs.is_some()
        && !deps.store.call_has_audio(conversation).await?
    {
        let job = Job::FetchAudio {
            tenant: deps.config.tenant.to_string(),
            conversation_id: conversation.to_string(),
        };
        deps.queue
            .enqueue(&job, deps.config.audio_fetch_delay)
            .await?;
    }
    Ok("completed")
}

/// A call in the person's thread, at the time it ended (texts after it sort after it).
fn call_in_thread(
    conversation: &ConversationId,
    ended_at: &str,
    now: jiff::Timestamp,
    body: String,
) -> ThreadEntry {
    let at = ended_at.parse::<jiff::Timestamp>().unwrap_or(now);
    ThreadEntry {
        at: at.to_string(),
        direction: Direction::Call,
        channel: "phone".into(),
        body,
        ref_id: conversation.to_string(),
    }
}

/// The caller's contact (by number) and, for an enquiry, their one open lead.
async fn record_caller(
    deps: &Deps,
    t: &Transcription,
    facts: &CallFacts,
    phone: &PhoneNumber,
) -> Result<(Option<Contact>, Option<LeadOutcome>), DependencyError> {
    let now = deps.now();
    let conversation = &t.conversation_id;
    let contact = deps
        .store
        .upsert_contact(phone, facts.name.as_deref(), "phone", conversation, now)
        .await?;
    if !facts.wants_lead {
        return Ok((Some(contact), None));
    }
    let input = LeadInput {
        area: None,
        conversation,
        channel: "phone",
        name: facts.name.as_deref(),
        service: facts.service.as_deref(),
        urgency: facts.urgency.as_deref(),
        hot: facts.hot,
        summary: facts.summary.as_deref(),
        now,
    };
    let lead = deps.store.open_or_merge_lead(&contact, &input).await?;
    Ok((Some(contact), Some(lead)))
}

/// Stores the transcript exactly as ElevenLabs sent it (masked if the tenant asks).
async fn store_transcript(
    deps: &Deps,
    tenant: &TenantConfig,
    t: &Transcription,
    raw: &[u8],
) -> Result<String, DependencyError> {
    let key = blobs::keys::transcript(&deps.config.tenant, &t.conversation_id);
    let doc = transcript_document(tenant, t, raw, deps.now());
    deps.blobs.put(&key, doc, "application/json").await?;
    Ok(key)
}

/// The transcript as it is kept in S3: every turn ElevenLabs sent, masked when the business
/// redacts.
pub fn transcript_document(
    tenant: &TenantConfig,
    t: &Transcription,
    raw: &[u8],
    now: jiff::Timestamp,
) -> Vec<u8> {
    // Parsed again as plain JSON so every field ElevenLabs sent is kept, typed or not.
    let mut turns = serde_json::from_slice::<Value>(raw)
        .ok()
        .and_then(|mut v| {
            v.get_mut("data")
                .and_then(|d| d.get_mut("transcript"))
                .map(Value::take)
        })
        .unwrap_or(Value::Array(Vec::new()));
    let redacted = tenant.redacts();
    if redacted {
        redact_texts(&mut turns, now.to_zoned(tenant.time_zone()).date());
    }
    let doc = json!({
        "conversation_id": t.conversation_id.as_str(),
        "agent_id": t.agent_id.as_str(),
        "redacted": redacted,
        "transcript": turns,
    });
    doc.to_string().into_bytes()
}

/// Masks personal data in what people said and in tool arguments and results.
pub fn redact_texts(v: &mut Value, today: jiff::civil::Date) {
    const TEXT_FIELDS: &[&str] = &[
        "message",
        "original_message",
        "params_as_json",
        "body",
        "result_value",
    ];
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| redact_texts(i, today)),
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                match child {
                    Value::String(s) if TEXT_FIELDS.contains(&k.as_str()) => {
                        *s = redact_personal_data(s, today)
                    }
                    _ => redact_texts(child, today),
                }
            }
        }
        _ => {}
    }
}

async fn on_audio(deps: &Deps, a: &Audio) -> Result<&'static str, ProcessError> {
    let bytes = a
        .decode()
        .map_err(|e| DependencyError::new("webhook", "decode", "BadAudio", e.to_string()))?;
    let key = blobs::keys::audio(&deps.config.tenant, &a.conversation_id);
    let len = bytes.len();
    deps.blobs.put(&key, bytes, "audio/mpeg").await?;
    deps.store
        .set_call_audio(&a.conversation_id, &key, len, deps.now())
        .await?;
    Ok("audio_stored")
}

/// A call that never reached the agent: the caller is texted back, the owner alerted.
async fn on_initiation_failure(
    deps: &Deps,
    tenant: &TenantConfig,
    f: &InitiationFailure,
) -> Result<&'static str, ProcessError> {
    let now = deps.now();
    let conversation = &f.conversation_id;
    let caller = f
        .external_number()
        .and_then(|n| PhoneNumber::parse(&n, Some(&tenant.business.country)).ok())
        // Our own number is never "the caller".
        .filter(|p| p != &tenant.business.phone);
    let mut lead: Option<LeadOutcome> = None;
    if let Some(phone) = &caller {
        let contact = deps
            .store
            .upsert_contact(phone, None, "phone", conversation, now)
            .await?;
        let entry = call_in_thread(
            conversation,
            "",
            now,
            "Missed call (it never reached the receptionist)".into(),
        );
        deps.store.add_to_thread(phone, &entry).await?;
        let input = LeadInput {
            area: None,
            conversation,
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
        conversation_id: conversation.to_string(),
        agent_id: Some(f.agent_id.to_string()),
        status: CallStatus::InitiationFailed,
        caller: caller.as_ref().map(|p| p.to_string()),
        ended_at: now.to_string(),
        disposition: "missed".into(),
        failure_reason: Some(f.failure_reason.clone().unwrap_or_else(|| "unknown".into())),
        lead_id: lead.as_ref().map(|l| l.id.to_string()),
        updated_at: now.to_string(),
        expires_at: Some(tenant.compliance.expires_at(now)),
        ..CallRecord::default()
    };
    deps.store.save_call(&record).await?;
    if let (Some(phone), Some(lead)) = (&caller, &lead) {
        let values = call::caller_values(tenant, None, None, None);
        let owner = BTreeMap::from([
            ("business_name", tenant.business.name.clone()),
            ("caller_phone", phone.international()),
        ]);
        let texts = [
            (
                format!("missed-call:{conversation}"),
                "missed_call",
                Audience::Caller,
                phone.clone(),
                render(&tenant.templates.missed_call, &values),
            ),
            (
                format!("owner-missed-call:{conversation}"),
                "owner_missed_call",
                Audience::Owner,
                tenant.business.owner_phone.clone(),
                render(&tenant.templates.owner_missed_call, &owner),
            ),
        ];
        for (id, purpose, audience, to, body) in texts {
            let message = NewMessage {
                id,
                purpose,
                audience,
                to,
                body,
                conversation_id: Some(conversation.to_string()),
                lead_id: Some(lead.id.to_string()),
            };
            let id = outbox::create(deps, message).await?;
            outbox::dispatch(deps, tenant, &id).await?;
        }
    }
    let missed = CallMissed {
        conversation_id: conversation.to_string(),
        failure_reason: record.failure_reason.clone(),
        lead_id: record.lead_id.clone(),
    };
    events::publish(deps, &DomainEvent::CallMissed(missed)).await?;
    if let Some(lead) = &lead {
        let news = LeadNews {
            lead,
            conversation,
            channel: "phone",
            hot: None,
        };
        leads::announce(deps, tenant, &news).await?;
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
    let body = fetch_transcription_body(client, conversation).await?;
    let unusable = |e: PayloadError| {
        DependencyError::new("elevenlabs", "GetConversation", "BadBody", e.to_string())
    };
    let PostCallEvent::Transcription(t) = webhook::parse(&body).map_err(unusable)? else {
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

/// A conversation from `GET /v1/convai/conversations/{id}`, as the body of the transcription
/// webhook it stands for.
pub async fn fetch_transcription_body(
    client: &crate::elevenlabs::client::ElevenLabsClient,
    conversation: &ConversationId,
) -> Result<Vec<u8>, DependencyError> {
    let fetched = client.conversation(conversation).await.map_err(|e| {
        DependencyError::new(
            "elevenlabs",
            "GetConversation",
            "Unavailable",
            e.to_string(),
        )
    })?;
    webhook::transcription_body(&fetched).map_err(|e| {
        DependencyError::new("elevenlabs", "GetConversation", "BadBody", e.to_string())
    })
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
