//! Quote follow-ups: once a lead is marked quoted, a check-in three days on, a reminder at
//! seven, and at fourteen a note to the owner that nobody answered. The customer's two texts
//! are written for that enquiry by the LLM (the lead's details, the tenant's prompt), or come
//! from the tenant's templates when it is not configured or stays down. A reply from the
//! customer, or a booking, stops what is left (a reply also pings the owner).
//!
//! Each follow-up is a timed outbox message with its own one-time schedule (see
//! [`crate::outbox::schedule`]); quiet hours and consent are checked when it goes.

use std::collections::BTreeMap;

use jiff::{Timestamp, ToSpan};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::deps::Deps;
use crate::error::DependencyError;
use crate::ids::LeadId;
use crate::jobs::Job;
use crate::llm::{LlmError, Role, Turn};
use crate::messaging::keywords::invites_opt_out;
use crate::outbox::{self, Audience, NewMessage};
use crate::phone::PhoneNumber;
use crate::store::{string, Item};
use crate::tenant::{render, TenantConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteStep {
    CheckIn,
    Reminder,
    OwnerFlag,
}

pub const QUOTE_STEPS: [QuoteStep; 3] = [
    QuoteStep::CheckIn,
    QuoteStep::Reminder,
    QuoteStep::OwnerFlag,
];

/// Every follow-up's purpose starts so: a reply finds them by it.
const PURPOSE_PREFIX: &str = "quote_";
/// Longest quote text a request may carry ("£450 incl. parts").
const MAX_QUOTE: usize = 200;
/// A written follow-up fits two SMS segments; a longer one gets the template instead.
const MAX_WRITTEN: usize = 300;
const MAX_TOKENS: u32 = 300;

impl QuoteStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CheckIn => "quote-check-in",
            Self::Reminder => "quote-reminder",
            Self::OwnerFlag => "quote-owner-flag",
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            Self::CheckIn => "quote_check_in",
            Self::Reminder => "quote_reminder",
            Self::OwnerFlag => "quote_owner_flag",
        }
    }

    /// Days after the quote.
    pub fn days(self) -> i64 {
        match self {
            Self::CheckIn => 3,
            Self::Reminder => 7,
            Self::OwnerFlag => 14,
        }
    }

    /// What the text should do, for the LLM.
    fn brief(self) -> &'static str {
        match self {
            Self::CheckIn => "It is three days since we sent the quote. Check, warmly and briefly, that they received it and invite any questions.",
            Self::Reminder => "It is a week since we sent the quote and they have not answered. Remind them briefly that the quote stands and offer to find a time for the job. No pressure.",
            Self::OwnerFlag => "",
        }
    }
}

pub fn schedule_name(step: QuoteStep, lead: &LeadId) -> String {
    format!("{}-{lead}", step.as_str())
}

pub fn message_id(step: QuoteStep, lead: &LeadId) -> String {
    format!("{}:{lead}", step.as_str())
}

/// When the step is due: the same local time of day, `days` later, in the business's zone.
pub fn due(step: QuoteStep, quoted_at: Timestamp, tenant: &TenantConfig) -> Option<Timestamp> {
    quoted_at
        .to_zoned(tenant.time_zone())
        .checked_add(step.days().days())
        .ok()
        .map(|z| z.timestamp())
}

#[derive(Debug, thiserror::Error)]
pub enum QuoteError {
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    #[error("lead not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

/// `POST /leads/{id}/quoted`: `{"quote": "£450"}`, the quote optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkQuoted {
    #[serde(default)]
    pub quote: Option<String>,
}

/// Marks the lead quoted (by `by`, a reviewer or the operator) and queues the planning of its
/// follow-ups. Marking it again changes nothing and answers the same.
pub async fn mark_quoted(
    deps: &Deps,
    lead_id: &str,
    request: &MarkQuoted,
    by: &str,
) -> Result<Value, QuoteError> {
    let bad = |field: &str, message: &str| QuoteError::BadRequest {
        field: field.into(),
        message: message.into(),
    };
    let lead_id = LeadId::parse(lead_id).map_err(|_| bad("id", "not a lead id"))?;
    let quote = request
        .quote
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty());
    if quote.is_some_and(|q| q.chars().count() > MAX_QUOTE || q.chars().any(char::is_control)) {
        return Err(bad("quote", "at most 200 characters, one line"));
    }
    // Check first so a closed lead is left as it was.
    let lead = deps
        .store
        .get_lead(&lead_id)
        .await?
        .ok_or(QuoteError::NotFound)?;
    if string(&lead, "lead_status").as_deref() != Some("open") {
        return Err(QuoteError::Conflict("the lead is closed".into()));
    }
    if string(&lead, "phone")
        .and_then(|p| PhoneNumber::parse(&p, None).ok())
        .is_none()
    {
        return Err(QuoteError::Conflict(
            "the lead has no number to follow up".into(),
        ));
    }
    let lead = deps
        .store
        .mark_quoted(&lead_id, quote, by, deps.now())
        .await?
        .ok_or(QuoteError::NotFound)?;
    let quoted_at = string(&lead, "quoted_at")
        .and_then(|t| t.parse::<Timestamp>().ok())
        .unwrap_or_else(|| deps.now());
    // Planning writes the texts (the LLM may be slow): from the queue, not in this request.
    let job = Job::PlanQuoteFollowUps {
        tenant: deps.config.tenant.to_string(),
        lead_id: lead_id.to_string(),
        attempt: 1,
    };
    deps.queue.enqueue(&job, std::time::Duration::ZERO).await?;
    let tenant = deps.tenant().await.map_err(DependencyError::from)?;
    let follow_ups: Vec<Value> = QUOTE_STEPS
        .iter()
        .filter_map(|&step| {
            due(step, quoted_at, &tenant)
                .map(|d| json!({ "step": step.as_str(), "due": d.to_string() }))
        })
        .collect();
    info!(lead_id = %lead_id, outcome = "quoted", "lead marked quoted; follow-ups queued");
    Ok(json!({
        "lead_id": lead_id.to_string(),
        "quoted_at": quoted_at.to_string(),
        "quote": string(&lead, "quote"),
        "follow_ups": follow_ups,
    }))
}

/// Writes and schedules the lead's follow-ups (the job [`Job::PlanQuoteFollowUps`]). Steps
/// already written are kept; a transient LLM failure queues another attempt, and after the
/// last one the template is used. Returns the outcome.
pub async fn plan(
    deps: &Deps,
    lead_id: &LeadId,
    attempt: u32,
) -> Result<&'static str, DependencyError> {
    let Some(schedules) = &deps.schedules else {
        warn!(lead_id = %lead_id, outcome = "no_scheduler", "quote follow-ups need the scheduler; none configured");
        return Ok("no_scheduler");
    };
    let tenant = deps.tenant().await?;
    let Some(lead) = deps.store.get_lead(lead_id).await? else {
        return Ok("no_lead");
    };
    let (Some(quoted_at), Some(phone)) = (
        string(&lead, "quoted_at").and_then(|t| t.parse::<Timestamp>().ok()),
        string(&lead, "phone").and_then(|p| PhoneNumber::parse(&p, None).ok()),
    ) else {
        return Ok("not_quoted");
    };
    if string(&lead, "lead_status").as_deref() != Some("open") {
        return Ok("lead_closed");
    }
    let now = deps.now();
    let zone = tenant.time_zone();
    let values = values(&tenant, &lead, &phone);
    for step in QUOTE_STEPS {
        let Some(due) = due(step, quoted_at, &tenant).filter(|d| *d > now) else {
            continue;
        };
        let id = message_id(step, lead_id);
        if deps.store.get_message(&id).await?.is_some() {
            continue;
        }
        let (audience, to, body) = match step {
            QuoteStep::OwnerFlag => (
                Audience::Owner,
                tenant.business.owner_phone.clone(),
                render(&tenant.templates.owner_quote_unanswered, &values),
            ),
            QuoteStep::CheckIn | QuoteStep::Reminder => {
                let body = match write(deps, &tenant, &lead, step).await {
                    Ok(Some(text)) => text,
                    Ok(None) => template(&tenant, step, &values),
                    Err(LlmError::Transient(why)) if attempt < deps.config.llm_attempts => {
                        let delay = deps.config.backoff(attempt);
                        let next = Job::PlanQuoteFollowUps {
                            tenant: deps.config.tenant.to_string(),
                            lead_id: lead_id.to_string(),
                            attempt: attempt + 1,
                        };
                        deps.queue.enqueue(&next, delay).await?;
                        warn!(lead_id = %lead_id, attempt, error = %why, outcome = "llm_retry_queued", "LLM unavailable; follow-ups planned later");
                        return Ok("llm_retry_queued");
                    }
                    Err(e) => {
                        warn!(lead_id = %lead_id, attempt, error = %e, "LLM could not write the follow-up; template used");
                        template(&tenant, step, &values)
                    }
                };
                (Audience::Caller, phone.clone(), body)
            }
        };
        let message = NewMessage {
            id,
            purpose: step.purpose(),
            audience,
            to,
            body,
            conversation_id: string(&lead, "last_conversation_id"),
            lead_id: Some(lead_id.to_string()),
        };
        let name = schedule_name(step, lead_id);
        outbox::schedule(deps, schedules, &phone, message, due, &name, &zone).await?;
    }
    info!(lead_id = %lead_id, attempt, outcome = "quote_follow_ups_planned", "quote follow-ups scheduled");
    Ok("planned")
}

/// The person answered (`their_text`) or booked (`None`): their quote follow-ups stop, and for
/// an answer the owner hears of it, once per quote. Returns how many follow-ups stopped.
pub async fn stop_follow_ups(
    deps: &Deps,
    tenant: &TenantConfig,
    phone: &PhoneNumber,
    their_text: Option<&str>,
) -> Result<usize, DependencyError> {
    let why = if their_text.is_some() {
        "they replied"
    } else {
        "they booked"
    };
    let stopped =
        outbox::cancel_timed(deps, phone, why, |t| t.purpose.starts_with(PURPOSE_PREFIX)).await?;
    let Some(text) = their_text else {
        return Ok(stopped.len());
    };
    let mut leads: Vec<&str> = stopped
        .iter()
        .filter_map(|t| t.lead_id.as_deref())
        .collect();
    leads.dedup();
    for lead_id in leads {
        let Ok(id) = LeadId::parse(lead_id) else {
            continue;
        };
        let Some(lead) = deps.store.get_lead(&id).await? else {
            continue;
        };
        let mut values = values(tenant, &lead, phone);
        values.insert("summary", text.chars().take(300).collect());
        outbox::create_and_queue(
            deps,
            NewMessage {
                id: format!("owner-quote-reply:{lead_id}"),
                purpose: "owner_quote_reply",
                audience: Audience::Owner,
                to: tenant.business.owner_phone.clone(),
                body: render(&tenant.templates.owner_quote_reply, &values),
                conversation_id: string(&lead, "last_conversation_id"),
                lead_id: Some(lead_id.to_string()),
            },
        )
        .await?;
    }
    if !stopped.is_empty() {
        info!(
            stopped = stopped.len(),
            why,
            outcome = "quote_follow_ups_stopped",
            "quote follow-ups stopped"
        );
    }
    Ok(stopped.len())
}

fn template(
    tenant: &TenantConfig,
    step: QuoteStep,
    values: &BTreeMap<&'static str, String>,
) -> String {
    let text = match step {
        QuoteStep::Reminder => &tenant.templates.quote_reminder,
        _ => &tenant.templates.quote_check_in,
    };
    render(text, values)
}

fn values(
    tenant: &TenantConfig,
    lead: &Item,
    phone: &PhoneNumber,
) -> BTreeMap<&'static str, String> {
    let name = string(lead, "name");
    let service = string(lead, "service")
        .map(|s| tenant.service_name(&s))
        .unwrap_or_else(|| "the job".into());
    BTreeMap::from([
        ("business_name", tenant.business.name.clone()),
        (
            "first_name",
            name.as_deref()
                .map(crate::tools::first_name)
                .unwrap_or_else(|| "there".into()),
        ),
        ("caller_name", name.unwrap_or_else(|| "A customer".into())),
        ("caller_phone", phone.international()),
        ("service", service),
        (
            "quote",
            string(lead, "quote").unwrap_or_else(|| "no amount given".into()),
        ),
        ("business_phone", tenant.business.phone.international()),
        ("summary", string(lead, "summary").unwrap_or_default()),
        ("area", string(lead, "area").unwrap_or_default()),
    ])
}

/// The LLM's text for this step, or `None` when it is not configured or wrote something we
/// will not send (empty, too long, an opt-out word, a placeholder left in).
async fn write(
    deps: &Deps,
    tenant: &TenantConfig,
    lead: &Item,
    step: QuoteStep,
) -> Result<Option<String>, LlmError> {
    let Some(llm) = &deps.llm else {
        return Ok(None);
    };
    let prompt =
        crate::messaging::conversation::fill_variables(&tenant.agent_prompt, &BTreeMap::new());
    let system = format!(
        "{prompt}\n\n## Writing one follow-up text message\n\
         You are writing a single SMS from {business} to a customer about a quote we gave them. \
         Plain text, one or two short sentences, under 280 characters, in the customer's first \
         name if known, signed as {business}. Mention the job, not the price unless it is given. \
         Never ask them to reply with STOP, CANCEL or any other single word; never invent prices, \
         dates or discounts. Answer with the message only.",
        business = tenant.business.name,
    );
    let field = |name: &str| string(lead, name).unwrap_or_else(|| "unknown".into());
    let facts = format!(
        "{brief}\n\nThe enquiry:\n- customer's name: {name}\n- service: {service}\n- area: {area}\n\
         - what they asked about: {summary}\n- the quote: {quote}\n- quoted on: {quoted}",
        brief = step.brief(),
        name = field("name"),
        service = string(lead, "service").map(|s| tenant.service_name(&s)).unwrap_or_else(|| "unknown".into()),
        area = field("area"),
        summary = field("summary"),
        quote = field("quote"),
        quoted = field("quoted_at"),
    );
    let reply = llm
        .create(&system, &[Turn::text(Role::User, facts)], &[], MAX_TOKENS)
        .await?;
    let text = reply.text().trim().trim_matches('"').trim().to_string();
    let usable = !text.is_empty()
        && text.chars().count() <= MAX_WRITTEN
        && invites_opt_out(&text).is_none()
        && !text.contains('{');
    if !usable {
        warn!(
            step = step.as_str(),
            outcome = "llm_text_refused",
            "the LLM's follow-up was not usable; template used"
        );
    }
    Ok(usable.then_some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_ups_keep_the_local_time_across_the_clock_change() {
        let tenant = crate::tenant::demo();
        // Quoted at 10:00 GMT on Tuesday 24 March 2026; the clocks go forward on the 29th.
        let quoted: Timestamp = "2026-03-24T10:00:00Z".parse().unwrap();
        assert_eq!(
            due(QuoteStep::CheckIn, quoted, &tenant)
                .unwrap()
                .to_string(),
            "2026-03-27T10:00:00Z"
        );
        assert_eq!(
            due(QuoteStep::Reminder, quoted, &tenant)
                .unwrap()
                .to_string(),
            "2026-03-31T09:00:00Z"
        );
        assert_eq!(
            due(QuoteStep::OwnerFlag, quoted, &tenant)
                .unwrap()
                .to_string(),
            "2026-04-07T09:00:00Z"
        );
    }
}
