//! Reconciliation: ElevenLabs sends each post-call webhook once unless retries are on, never
//! retries audio, and switches a failing webhook off; our own 503 can strand one too. So the
//! recent conversations are listed through the API, and any finished one without a record here
//! goes through the webhook's own intake, so a lost webhook costs minutes, not a lead.
//!
//! Already-processed calls cost one read each and write nothing.

use std::time::Instant;

use serde::Serialize;
use tracing::{info, warn};

use crate::deps::Deps;
use crate::elevenlabs::client::{ConversationSummary, ElevenLabsError};
use crate::elevenlabs::webhook::TRANSCRIPTION;
use crate::error::DependencyError;
use crate::ids::ConversationId;
use crate::post_call::{self, Intake};
use crate::redact::redact_contact_details;

/// A call that ended less than this long ago may still have its webhook on the way.
pub const SETTLE_SECS: i64 = 300;
/// The scheduled run looks this far back (it runs every 15 minutes: a missed webhook is
/// seen by several runs, and a run that failed is covered by the next ones).
pub const LOOKBACK_HOURS: i64 = 6;
/// At most this many pages (of 100, newest first) per run: the report says `incomplete`, and a
/// backfill over more than that is run again with a later `since`.
const MAX_PAGES: usize = 50;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Conversations ElevenLabs listed.
    pub listed: usize,
    /// Finished conversations that had no record: processed now.
    pub processed: Vec<String>,
    /// Finished conversations we already had: read, nothing written.
    pub already_recorded: usize,
    /// Still running, being analysed, failed to connect, or ended too recently.
    pub not_ready: usize,
    /// Ones we could not process (fetch or store failed): the next run tries again.
    pub failed: usize,
    /// Why nothing ran, when nothing could (no API key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<&'static str>,
    /// The run stopped before the end of the list (its deadline or the page cap).
    pub incomplete: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("ElevenLabs conversations could not be listed: {0}")]
    List(ElevenLabsError),
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

/// Finds and processes the conversations since `since` that have no record, until `deadline`.
pub async fn run(
    deps: &Deps,
    since: jiff::Timestamp,
    deadline: Option<Instant>,
) -> Result<ReconcileReport, ReconcileError> {
    let mut report = ReconcileReport::default();
    let Some(client) = deps.elevenlabs.clone() else {
        warn!(
            outcome = "no_api_key",
            "reconciliation needs ELEVENLABS_API_KEY; nothing listed"
        );
        report.skipped = Some("no_api_key");
        return Ok(report);
    };
    let tenant = deps.tenant().await.map_err(DependencyError::from)?;
    // Webhooks are workspace-wide; the listing can ask for this business's agents only.
    let agents: Vec<Option<&str>> = if tenant.business.agent_ids.is_empty() {
        vec![None]
    } else {
        tenant
            .business
            .agent_ids
            .iter()
            .map(|a| Some(a.as_str()))
            .collect()
    };
    let mut pages = 0;
    'agents: for agent in agents {
        let mut cursor: Option<String> = None;
        loop {
            if pages >= MAX_PAGES || deadline.is_some_and(|d| Instant::now() >= d) {
                report.incomplete = true;
                break 'agents;
            }
            pages += 1;
            let page = client
                .list_conversations(since, agent, cursor.as_deref())
                .await
                .map_err(ReconcileError::List)?;
            for summary in &page.conversations {
                // Each call may take seconds (a fetch and a whole intake): stop between calls.
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    report.incomplete = true;
                    break 'agents;
                }
                report.listed += 1;
                reconcile_one(deps, &client, summary, &mut report).await;
            }
            match page.next_cursor.filter(|c| page.has_more && !c.is_empty()) {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    info!(
        incomplete = report.incomplete,
        listed = report.listed,
        processed = report.processed.len(),
        already_recorded = report.already_recorded,
        not_ready = report.not_ready,
        failed = report.failed,
        outcome = "reconciled",
        "reconciliation finished"
    );
    Ok(report)
}

async fn reconcile_one(
    deps: &Deps,
    client: &crate::elevenlabs::client::ElevenLabsClient,
    summary: &ConversationSummary,
    report: &mut ReconcileReport,
) {
    let Ok(conversation) = ConversationId::parse(&summary.conversation_id) else {
        report.failed += 1;
        return;
    };
    if !is_finished(summary, deps.now()) {
        report.not_ready += 1;
        return;
    }
    match already_recorded(deps, &conversation).await {
        Ok(true) => {
            report.already_recorded += 1;
            return;
        }
        Ok(false) => {}
        Err(e) => {
            warn!(conversation_id = %conversation, error = %redact_contact_details(&e.to_string()), outcome = "failed", "reconciliation could not read the call");
            report.failed += 1;
            return;
        }
    }
    let outcome = async {
        let body = post_call::fetch_transcription_body(client, &conversation).await?;
        post_call::intake(deps, &body).await.map_err(|e| match e {
            post_call::IntakeError::Dependency(d) => d,
            post_call::IntakeError::BadPayload(p) => {
                DependencyError::new("elevenlabs", "GetConversation", "BadBody", p.to_string())
            }
        })
    }
    .await;
    match outcome {
        Ok((Intake::Accepted, _)) => {
            info!(conversation_id = %conversation, outcome = "backfilled", "call without a webhook processed from the API");
            report.processed.push(conversation.to_string());
        }
        Ok(_) => report.already_recorded += 1,
        Err(e) => {
            // A payload error may quote a value of the call: no number reaches the logs.
            warn!(conversation_id = %conversation, error = %redact_contact_details(&e.to_string()), outcome = "failed", "reconciliation could not process the call");
            report.failed += 1;
        }
    }
}

/// Analysis done, and ended long enough ago that its webhook would have arrived.
fn is_finished(summary: &ConversationSummary, now: jiff::Timestamp) -> bool {
    if summary.status != "done" {
        return false;
    }
    let ended = summary.start_time_unix_secs.unwrap_or(0) + summary.call_duration_secs.unwrap_or(0);
    ended <= now.as_second() - SETTLE_SECS
}

/// A call record, or a finished transcription intake (a call for another agent leaves no
/// record). An item holding only audio (its audio webhook came, its transcript did not) is not
/// a record.
async fn already_recorded(
    deps: &Deps,
    conversation: &ConversationId,
) -> Result<bool, DependencyError> {
    let recorded = deps
        .store
        .get_call(conversation)
        .await?
        .is_some_and(|item| item.contains_key("status"));
    Ok(recorded || deps.store.inbox_done(conversation, TRANSCRIPTION).await?)
}

/// What a run returns to whoever invoked it (the Lambda response, the CLI).
pub fn summary(report: &ReconcileReport) -> serde_json::Value {
    serde_json::to_value(report).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(status: &str, start: i64, duration: i64) -> ConversationSummary {
        ConversationSummary {
            conversation_id: "conv_1".into(),
            agent_id: None,
            start_time_unix_secs: Some(start),
            call_duration_secs: Some(duration),
            status: status.into(),
        }
    }

    #[test]
    fn only_analysed_calls_that_ended_a_while_ago_are_taken() {
        let now = jiff::Timestamp::from_second(10_000).unwrap();
        assert!(is_finished(&summary("done", 9_000, 60), now));
        assert!(
            !is_finished(&summary("done", 9_600, 200), now),
            "ended 200 s ago"
        );
        assert!(!is_finished(&summary("processing", 1_000, 60), now));
        assert!(!is_finished(&summary("in-progress", 1_000, 60), now));
        assert!(!is_finished(&summary("failed", 1_000, 60), now));
    }
}
