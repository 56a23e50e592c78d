//! An inbound text (SMS or WhatsApp), from a verified webhook to what it causes: recorded once
//! in the person's thread, keywords honoured (opt-out, opt-in, help), replies to a reminder
//! acted on (C confirms, R offers new times, a number books one), and anything else answered by
//! the receptionist through the LLM, off the webhook's clock (a job on the queue).
//!
//! Every step is idempotent (ids derived from the MessageSid), so a redelivery, or the queue
//! finishing a text whose first run died, does each thing once.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::inbound::{Channel, InboundText, Sender};
use super::keywords::{self, Meaning};
use crate::booking::calendar::bookable;
use crate::deps::{Deps, TenantError};
use crate::error::DependencyError;
use crate::ids::ConversationId;
use crate::jobs::Job;
use crate::outbox::{self, Audience, NewMessage};
use crate::phone::PhoneNumber;
use crate::store::contacts::{Contact, ContactDetails, LeadInput};
use crate::store::texts::{ConsentChange, Direction, InboundClaim, RescheduleOffer, ThreadEntry};
use crate::tenant::{render, TenantConfig};
use crate::tools::{self, availability, booking, booking_change, ToolError};

#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error(transparent)]
    Dependency(#[from] DependencyError),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error("a tool the text needed failed")]
    Tool,
    /// Another run is answering the same text: retried later, when it has.
    #[error("another run is answering this text")]
    Busy,
}

impl From<ToolError> for TextError {
    fn from(_: ToolError) -> Self {
        // The tool logged why; a bad request here is our bug, not the person's.
        Self::Tool
    }
}

/// The conversation id of everything one inbound text causes (leads, bookings, messages).
pub fn conversation_of(message_sid: &str) -> ConversationId {
    ConversationId::parse(&format!("txt_{message_sid}")).expect("a checked SID is a safe id")
}

/// Handles an inbound text. Returns what was done (for the log line).
pub async fn receive(deps: &Deps, text: &InboundText) -> Result<&'static str, TextError> {
    let (claim, received_at) = deps
        .store
        .claim_inbound_text(&text.message_sid, deps.now(), deps.config.bookkeeping_ttl)
        .await?;
    if claim == InboundClaim::Done {
        return Ok("duplicate");
    }
    let outcome = match &text.from {
        Sender::Number(phone) => handle(deps, text, phone, received_at).await?,
        // No number to match, answer or record consent against: the owner answers it in
        // Twilio's console, and hears of it now.
        Sender::WhatsAppUser(_) => {
            tell_owner_of_username(deps, text).await?;
            "sender_without_number"
        }
    };
    deps.store
        .finish_inbound_text(&text.message_sid, outcome, deps.now())
        .await?;
    Ok(outcome)
}

async fn handle(
    deps: &Deps,
    text: &InboundText,
    phone: &PhoneNumber,
    received_at: jiff::Timestamp,
) -> Result<&'static str, TextError> {
    let tenant = deps.tenant().await?;
    let now = received_at;
    let conversation = conversation_of(&text.message_sid);
    let entry = ThreadEntry {
        at: now.to_string(),
        direction: Direction::In,
        channel: text.channel.as_str().into(),
        body: text.body.clone(),
        ref_id: text.message_sid.clone(),
    };
    deps.store.add_to_thread(phone, &entry).await?;
    if text.channel == Channel::WhatsApp {
        deps.store.note_whatsapp_inbound(phone, now).await?;
    }
    let details = ContactDetails {
        name: text.profile_name.as_deref(),
        // A WhatsApp profile name is what they call themselves, not what they told us.
        overwrite: false,
        ..ContactDetails::default()
    };
    let contact = deps
        .store
        .save_contact_details(phone, &details, text.channel.as_str(), &conversation, now)
        .await?;
    let meaning = keywords::meaning(&text.body, text.opt_out_type.as_deref());
    let reply = |purpose: &'static str, suffix: &str, body: String| NewMessage {
        id: format!("{purpose}:{}{suffix}", text.message_sid),
        purpose,
        audience: Audience::Caller,
        to: phone.clone(),
        body,
        conversation_id: Some(conversation.to_string()),
        lead_id: None,
    };
    let values = caller_values(&tenant, contact.name.as_deref());
    match meaning {
        Meaning::OptOut { twilio_replied } => {
            let source = if twilio_replied {
                "twilio_advanced_opt_out"
            } else {
                "keyword"
            };
            opt_out(deps, phone, text, source, now).await?;
            // Twilio answers opt-out keywords itself (and blocks anything we send after).
            Ok("opted_out")
        }
        Meaning::Revocation { .. } => {
            // Twilio saw no keyword, so it neither blocked the number nor answered: the opt-out
            // is ours to record, and the one confirmation ours to send (the only message an
            // opted-out number may get).
            opt_out(deps, phone, text, "revocation_text", now).await?;
            let body = format!(
                "{}: you won't get any more texts from us. Reply START if you change your mind.",
                tenant.business.name
            );
            let confirmation = reply(outbox::OPT_OUT_CONFIRMATION, "", body);
            outbox::reply_on(deps, confirmation, text.channel).await?;
            Ok("opted_out_by_revocation")
        }
        Meaning::OptIn { .. } => {
            opt_in(deps, phone, text, "keyword", now).await?;
            Ok("opted_in")
        }
        Meaning::WeakOptIn if contact.opted_out => {
            opt_in(deps, phone, text, "keyword_yes", now).await?;
            Ok("opted_in")
        }
        Meaning::Help {
            twilio_replied: true,
        } => Ok("help_answered_by_twilio"),
        Meaning::Help { .. } => {
            let body = render(&tenant.templates.text_help, &values);
            outbox::reply_on(deps, reply("text_help", "", body), text.channel).await?;
            Ok("help")
        }
        Meaning::Confirm => match confirm_next_booking(deps, &tenant, phone).await? {
            Some(body) => {
                outbox::reply_on(
                    deps,
                    reply("booking_confirmed_by_reply", "", body),
                    text.channel,
                )
                .await?;
                Ok("booking_confirmed")
            }
            None => answer_later(deps, &tenant, text, phone, &contact).await,
        },
        Meaning::Reschedule => match offer_new_times(deps, &tenant, phone, &text.message_sid)
            .await?
        {
            Some(body) => {
                outbox::reply_on(deps, reply("reschedule_offer", "", body), text.channel).await?;
                Ok("reschedule_offered")
            }
            None => answer_later(deps, &tenant, text, phone, &contact).await,
        },
        Meaning::PossibleRevocation { .. } => {
            let mut owner = BTreeMap::from([
                ("caller_phone", phone.international()),
                ("summary", snippet(&text.body)),
            ]);
            owner.insert("business_name", tenant.business.name.clone());
            outbox::create_and_queue(
                deps,
                NewMessage {
                    id: format!("owner-possible-opt-out:{}", text.message_sid),
                    purpose: "owner_possible_opt_out",
                    audience: Audience::Owner,
                    to: tenant.business.owner_phone.clone(),
                    body: render(&tenant.templates.owner_possible_opt_out, &owner),
                    conversation_id: Some(conversation.to_string()),
                    lead_id: None,
                },
            )
            .await?;
            warn!(message_sid = %text.message_sid, outcome = "possible_opt_out", "a text may ask us to stop; the owner is told");
            answer_later(deps, &tenant, text, phone, &contact).await
        }
        Meaning::WeakOptIn | Meaning::Text => {
            if let Some(outcome) = take_offered_time(deps, &tenant, text, phone).await? {
                return Ok(outcome);
            }
            answer_later(deps, &tenant, text, phone, &contact).await
        }
    }
}

async fn tell_owner_of_username(deps: &Deps, text: &InboundText) -> Result<(), TextError> {
    let tenant = deps.tenant().await?;
    let values = BTreeMap::from([
        ("business_name", tenant.business.name.clone()),
        (
            "caller_name",
            "A WhatsApp user without a number".to_string(),
        ),
        ("caller_phone", "(answer in Twilio's console)".to_string()),
        ("summary", snippet(&text.body)),
    ]);
    outbox::create_and_queue(
        deps,
        NewMessage {
            id: format!("owner-text:{}", text.message_sid),
            purpose: "owner_text",
            audience: Audience::Owner,
            to: tenant.business.owner_phone.clone(),
            body: render(&tenant.templates.owner_text, &values),
            conversation_id: Some(conversation_of(&text.message_sid).to_string()),
            lead_id: None,
        },
    )
    .await?;
    Ok(())
}

/// Placeholders of a caller template for this person (by the name on their contact).
pub(super) fn caller_values(
    tenant: &TenantConfig,
    name: Option<&str>,
) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("business_name", tenant.business.name.clone()),
        (
            "first_name",
            name.map(tools::first_name)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "there".into()),
        ),
        ("business_phone", tenant.business.phone.international()),
        ("service", "your enquiry".into()),
        ("booking_time", String::new()),
        ("options", String::new()),
    ])
}

/// The start of a text, for the owner (never logged).
fn snippet(body: &str) -> String {
    let mut s: String = body.chars().take(200).collect();
    if body.chars().count() > 200 {
        s.push('…');
    }
    s
}

async fn opt_out(
    deps: &Deps,
    phone: &PhoneNumber,
    text: &InboundText,
    source: &str,
    at: jiff::Timestamp,
) -> Result<(), TextError> {
    let change = ConsentChange::opt_out(text.channel.as_str(), source, &text.message_sid, at);
    outbox::record_opt_out(deps, phone, &change).await?;
    info!(message_sid = %text.message_sid, source, outcome = "opted_out", "opt-out recorded");
    Ok(())
}

async fn opt_in(
    deps: &Deps,
    phone: &PhoneNumber,
    text: &InboundText,
    source: &str,
    at: jiff::Timestamp,
) -> Result<(), TextError> {
    let change = ConsentChange::opt_in(text.channel.as_str(), source, &text.message_sid, at);
    Ok(deps.store.change_consent(phone, &change).await?)
}

/// C: the person's next booking is confirmed. The answer to send, or `None` if they have none.
async fn confirm_next_booking(
    deps: &Deps,
    tenant: &TenantConfig,
    phone: &PhoneNumber,
) -> Result<Option<String>, TextError> {
    let Some(b) = bookable(tenant) else {
        return Ok(None);
    };
    let Some(next) = booking_change::next_booking_of(deps, phone, deps.now()).await? else {
        return Ok(None);
    };
    let Some(record) = deps
        .store
        .confirm_by_customer(&next.booking_id, deps.now())
        .await?
    else {
        return Ok(None);
    };
    let mut values = booking_values(tenant, &record);
    values.insert("booking_time", booking::spoken_start(&b, &record));
    Ok(Some(render(
        &tenant.templates.booking_confirmed_by_reply,
        &values,
    )))
}

fn booking_values(
    tenant: &TenantConfig,
    record: &crate::store::bookings::BookingRecord,
) -> BTreeMap<&'static str, String> {
    let mut values = caller_values(tenant, record.customer_name.as_deref());
    values.insert("service", tenant.service_name(&record.service_id));
    values
}

/// R: new times for the person's next booking, from the booking engine, numbered. The offer is
/// kept so a reply with a number books it. `None` if they have no booking to move.
async fn offer_new_times(
    deps: &Deps,
    tenant: &TenantConfig,
    phone: &PhoneNumber,
    message_sid: &str,
) -> Result<Option<String>, TextError> {
    if bookable(tenant).is_none() {
        return Ok(None);
    }
    let Some(next) = booking_change::next_booking_of(deps, phone, deps.now()).await? else {
        return Ok(None);
    };
    let mut values = booking_values(tenant, &next);
    // This R handled before (a redelivery, a retry): the times it offered, not new ones the
    // person never saw.
    if let Some(offer) = deps.store.reschedule_offer(phone, deps.now()).await? {
        if offer.message_sid == message_sid {
            values.insert("options", numbered(&offer.spoken));
            return Ok(Some(render(&tenant.templates.reschedule_offer, &values)));
        }
    }
    let answer = availability::check_availability(
        deps,
        availability::CheckAvailability {
            service: next.service_id.clone(),
            date: None,
            time_of_day: None,
            conversation_id: None,
            caller_phone: Some(phone.to_string()),
        },
    )
    .await?;
    let slots: Vec<(String, String)> = answer.body["slots"]
        .as_array()
        .map(|slots| {
            slots
                .iter()
                .filter_map(|s| {
                    Some((
                        s["start"].as_str()?.to_string(),
                        s["spoken"].as_str()?.to_string(),
                    ))
                })
                .filter(|(start, _)| {
                    // Not the time it is already at.
                    start.parse::<jiff::Timestamp>().ok() != next.start.parse().ok()
                })
                .collect()
        })
        .unwrap_or_default();
    if slots.is_empty() {
        let body = format!(
            "Sorry {}, there's nothing free to move your {} to just now. Call us on {} and we'll sort it out.",
            values["first_name"], values["service"], values["business_phone"]
        );
        return Ok(Some(body));
    }
    let (starts, spoken): (Vec<String>, Vec<String>) = slots.into_iter().unzip();
    values.insert("options", numbered(&spoken));
    let offer = RescheduleOffer {
        booking_id: next.booking_id.clone(),
        starts,
        spoken,
        message_sid: message_sid.to_string(),
        offered_at: deps.now().to_string(),
    };
    deps.store.save_reschedule_offer(phone, &offer).await?;
    Ok(Some(render(&tenant.templates.reschedule_offer, &values)))
}

/// "1) Tuesday at 9am, 2) ...".
fn numbered(times: &[String]) -> String {
    times
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{}) {t}", i + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A number after an R: moves the booking to that time, through the same tool the voice agent
/// uses (which texts the new time). `None` if this text is not an answer to an open offer.
async fn take_offered_time(
    deps: &Deps,
    tenant: &TenantConfig,
    text: &InboundText,
    phone: &PhoneNumber,
) -> Result<Option<&'static str>, TextError> {
    let Ok(choice) = text
        .body
        .trim()
        .trim_end_matches(['.', ')'])
        .parse::<usize>()
    else {
        return Ok(None);
    };
    let Some(offer) = deps.store.reschedule_offer(phone, deps.now()).await? else {
        return Ok(None);
    };
    let Some(start) = choice.checked_sub(1).and_then(|i| offer.starts.get(i)) else {
        let body = format!(
            "Please reply with a number from 1 to {}, or call {}.",
            offer.starts.len(),
            tenant.business.phone.international()
        );
        let msg = NewMessage {
            id: format!("reschedule_unclear:{}", text.message_sid),
            purpose: "reschedule_unclear",
            audience: Audience::Caller,
            to: phone.clone(),
            body,
            conversation_id: Some(conversation_of(&text.message_sid).to_string()),
            lead_id: None,
        };
        outbox::reply_on(deps, msg, text.channel).await?;
        return Ok(Some("reschedule_unclear"));
    };
    let answer = booking_change::update_booking(
        deps,
        booking_change::UpdateBooking {
            action: booking_change::Action::Reschedule,
            booking_id: Some(offer.booking_id.clone()),
            new_start: Some(start.clone()),
            reason: Some("moved by text".into()),
            caller_phone: Some(phone.to_string()),
            conversation_id: Some(conversation_of(&text.message_sid).to_string()),
        },
    )
    .await?;
    deps.store.clear_reschedule_offer(phone).await?;
    if answer.body["ok"].as_bool() == Some(true) {
        // The tool texted the new time (booking_moved).
        return Ok(Some("booking_moved"));
    }
    // Taken meanwhile, or no longer allowed: say what the tool said.
    let say = answer.body["say"]
        .as_str()
        .unwrap_or("Sorry, that time has gone.");
    let msg = NewMessage {
        id: format!("reschedule_failed:{}", text.message_sid),
        purpose: "reschedule_failed",
        audience: Audience::Caller,
        to: phone.clone(),
        body: format!("{say} Reply R for other times."),
        conversation_id: Some(conversation_of(&text.message_sid).to_string()),
        lead_id: None,
    };
    outbox::reply_on(deps, msg, text.channel).await?;
    Ok(Some("reschedule_failed"))
}

/// Free text: the person's lead is opened or added to now (so nothing depends on the LLM), and
/// the answer is queued.
async fn answer_later(
    deps: &Deps,
    tenant: &TenantConfig,
    text: &InboundText,
    phone: &PhoneNumber,
    contact: &Contact,
) -> Result<&'static str, TextError> {
    // They answered: a quote's follow-ups have done their job, and the owner hears of it.
    crate::quotes::stop_follow_ups(deps, tenant, phone, Some(&text.body)).await?;
    let conversation = conversation_of(&text.message_sid);
    let input = LeadInput {
        conversation: &conversation,
        channel: text.channel.as_str(),
        name: None,
        service: None,
        area: None,
        urgency: None,
        hot: false,
        summary: None,
        now: deps.now(),
    };
    let lead = deps.store.open_or_merge_lead(contact, &input).await?;
    let news = crate::leads::LeadNews {
        lead: &lead,
        conversation: &conversation,
        channel: text.channel.as_str(),
        hot: None,
    };
    if let Some(id) = crate::leads::announce(deps, tenant, &news).await? {
        outbox::queue_send(deps, &id).await?;
    }
    let job = Job::AnswerText {
        tenant: deps.config.tenant.to_string(),
        message_sid: text.message_sid.clone(),
        phone: phone.to_string(),
        channel: text.channel.as_str().into(),
        lead_id: Some(lead.id.to_string()),
        attempt: 1,
    };
    deps.queue.enqueue(&job, std::time::Duration::ZERO).await?;
    Ok("answer_queued")
}
