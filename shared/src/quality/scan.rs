//! The quality scan (every 15 minutes): the calls whose transcripts were stored since the
//! watermark, each checked against the tenant's rules, each finding a flag (once), the
//! watermark moved past each call as it is done. A run that nears its deadline stops between
//! calls; the next run goes on from the watermark.

use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::{info, warn};

use super::check::{check, BusinessFacts, Evidence, Finding};
use super::rules::{Rule, RuleSet};
use crate::deps::{Deps, TenantError};
use crate::elevenlabs::webhook::Turn;
use crate::error::DependencyError;
use crate::events::{self, DomainEvent, FlagRaised};
use crate::ids::ConversationId;
use crate::metrics;
use crate::store::calls::CallRecord;
use crate::store::flags::{position_at, Flag, FlagStatus};
use crate::store::{from_value, keys};

/// Left for the last call and the watermark when a run decides whether to start another call.
const MARGIN: Duration = Duration::from_secs(5);
const PAGE: i32 = 50;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ScanReport {
    pub calls_scanned: usize,
    pub flags_raised: Vec<Flag>,
    /// Calls with no transcript or an unreadable one (logged; the watermark moves past them).
    pub calls_skipped: usize,
    /// The run stopped for its deadline; the next one goes on from the watermark.
    pub stopped_early: bool,
    pub watermark: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

/// One run. `since` rescans from that time instead of the watermark (which still only moves
/// forward).
pub async fn run(
    deps: &Deps,
    deadline: Instant,
    since: Option<jiff::Timestamp>,
) -> Result<ScanReport, ScanError> {
    let tenant = deps.tenant().await?;
    let rules = &tenant.quality;
    let facts = BusinessFacts::of(&tenant);
    // A business that masks personal data stores masked transcripts: the rules still read what
    // was said (a partner's number given out is found), and what flags keep is masked.
    let masking = tenant
        .redacts()
        .then(|| deps.now().to_zoned(tenant.time_zone()).date());
    let mut report = ScanReport::default();
    let mut after = match since {
        Some(at) => position_at(at),
        None => deps.store.scan_watermark().await?,
    };
    let until = format!(
        "{}#~",
        // A call stored moments ago may not be in the index yet: passed over unseen, it would
        // never be scanned, so it waits for the next run.
        keys::sortable_time(
            deps.now() - jiff::SignedDuration::from_secs(deps.config.scan_settle.as_secs() as i64)
        )
    );
    'pages: loop {
        let page = deps.store.calls_to_scan(&after, &until, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for ticket in page {
            if Instant::now() + MARGIN >= deadline {
                report.stopped_early = true;
                break 'pages;
            }
            match scan_call(deps, rules, &facts, masking, &ticket.conversation_id).await? {
                Some(flags) => {
                    report.calls_scanned += 1;
                    report.flags_raised.extend(flags);
                }
                None => report.calls_skipped += 1,
            }
            deps.store
                .advance_scan_watermark(&ticket.position, deps.now())
                .await?;
            after = ticket.position;
        }
    }
    report.watermark = after;
    let tenant_id = deps.config.tenant.as_str();
    metrics::count("CallsScanned", report.calls_scanned as u64, tenant_id);
    metrics::count("FlagsRaised", report.flags_raised.len() as u64, tenant_id);
    info!(
        tenant = tenant_id,
        calls_scanned = report.calls_scanned,
        calls_skipped = report.calls_skipped,
        flags_raised = report.flags_raised.len(),
        stopped_early = report.stopped_early,
        outcome = "scanned",
        "quality scan"
    );
    Ok(report)
}

/// The run's deadline as an `Instant`, from the Lambda invocation's deadline.
pub fn deadline_in(at: std::time::SystemTime) -> Instant {
    let left = at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    Instant::now() + left
}

/// What a run returns to whoever invoked it (the Lambda response, the local console).
pub fn summary(report: &ScanReport) -> Value {
    serde_json::json!({
        "calls_scanned": report.calls_scanned,
        "calls_skipped": report.calls_skipped,
        "flags_raised": report.flags_raised.len(),
        "stopped_early": report.stopped_early,
        "watermark": report.watermark,
    })
}

/// Checks one call and raises its flags; the flags it raised that were new. `None` when the
/// call has nothing to check (no record or transcript).
async fn scan_call(
    deps: &Deps,
    rules: &RuleSet,
    facts: &BusinessFacts,
    masking: Option<jiff::civil::Date>,
    conversation: &str,
) -> Result<Option<Vec<Flag>>, DependencyError> {
    let Ok(conversation) = ConversationId::parse(conversation) else {
        warn!(
            outcome = "skipped",
            "scan ticket with a bad conversation id"
        );
        return Ok(None);
    };
    let Some(item) = deps.store.get_call(&conversation).await? else {
        return Ok(None);
    };
    let record: CallRecord = match from_value(aws_sdk_dynamodb::types::AttributeValue::M(item)) {
        Ok(r) => r,
        Err(e) => {
            warn!(conversation_id = %conversation, error = %e, outcome = "skipped", "call record unreadable");
            return Ok(None);
        }
    };
    let Some(key) = record.transcript_key.as_deref() else {
        return Ok(None);
    };
    let unmasked = match masking {
        Some(_) => {
            let raw = crate::blobs::keys::raw_webhook(
                &deps.config.tenant,
                &conversation,
                crate::elevenlabs::webhook::TRANSCRIPTION,
            );
            deps.blobs
                .get(&raw)
                .await?
                .and_then(|body| webhook_turns(&body))
        }
        None => None,
    };
    let stored = match unmasked {
        Some(turns) => Some(turns),
        None => match deps.blobs.get(key).await? {
            Some(doc) => stored_turns(&doc),
            None => {
                warn!(conversation_id = %conversation, outcome = "skipped", "transcript missing from the bucket");
                return Ok(None);
            }
        },
    };
    let Some(turns) = stored else {
        warn!(conversation_id = %conversation, outcome = "skipped", "transcript unreadable");
        return Ok(None);
    };
    let evidence = evidence_of(&record, &turns);
    let mut raised = Vec::new();
    for finding in check(rules, facts, &evidence) {
        let Some(rule) = rules.rule(&finding.rule_id) else {
            continue;
        };
        let mut flag = flag_of(deps, &record, rule, finding);
        if let Some(today) = masking {
            flag.excerpt = crate::redact::redact_personal_data(&flag.excerpt, today);
        }
        if deps.store.raise_flag(&flag).await? {
            raised.push(flag.clone());
        }
        // Published whether or not the flag is new: a run that died between the two publishes
        // it now, and a published event is never published again.
        let event = FlagRaised {
            flag_id: flag.flag_id.clone(),
            conversation_id: flag.conversation_id.clone(),
            rule_id: flag.rule_id.clone(),
            severity: flag.severity.as_str().to_string(),
            turn: flag.turn,
        };
        events::publish(deps, &DomainEvent::FlagRaised(event)).await?;
    }
    Ok(Some(raised))
}

/// The turns of a stored transcript document (`{"transcript": [...]}`).
/// The turns of a post-call webhook body as ElevenLabs sent it (`data.transcript`).
fn webhook_turns(body: &[u8]) -> Option<Vec<Turn>> {
    let mut doc: Value = serde_json::from_slice(body).ok()?;
    let turns = doc.pointer_mut("/data/transcript").map(Value::take)?;
    serde_json::from_value(turns).ok()
}

pub fn stored_turns(doc: &[u8]) -> Option<Vec<Turn>> {
    let mut doc: Value = serde_json::from_slice(doc).ok()?;
    let turns = doc.get_mut("transcript").map(Value::take)?;
    serde_json::from_value(turns).ok()
}

/// What the rules read of a processed call: its turns, evaluation and data collection.
pub fn evidence_of(record: &CallRecord, turns: &[Turn]) -> Evidence {
    let mut evidence = Evidence::from_transcript(turns);
    evidence.evaluation = record
        .evaluation
        .iter()
        .map(|(id, e)| (id.clone(), (e.result.clone(), e.rationale.clone())))
        .collect();
    evidence.data = record.data_collection.clone();
    evidence
}

fn flag_of(deps: &Deps, record: &CallRecord, rule: &Rule, finding: Finding) -> Flag {
    Flag {
        flag_id: Flag::id_of(&record.conversation_id, &rule.id),
        tenant: deps.config.tenant.to_string(),
        conversation_id: record.conversation_id.clone(),
        rule_id: rule.id.clone(),
        rule_kind: rule.kind.name().to_string(),
        severity: finding.severity,
        description: rule.description.clone(),
        turn: finding.turn.map(|t| t as u32),
        excerpt: finding.excerpt,
        status: FlagStatus::Open,
        reviewer: None,
        note: None,
        call_ended_at: record.ended_at.clone(),
        raised_at: keys::sortable_time(deps.now()),
        resolved_at: None,
        expires_at: record.expires_at,
    }
}
