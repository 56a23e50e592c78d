//! Who is calling: the conversation-initiation webhook (the agent greets a known caller by name
//! and knows their next booking and open enquiry) and upsert_contact.

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tracing::warn;

use super::{answer, bad, Answer, ToolError};
use crate::booking::calendar::iso_local;
use crate::deps::Deps;
use crate::error::DependencyError;
use crate::phone::PhoneNumber;
use crate::spoken::spoken_datetime;
use crate::store::contacts::ContactDetails;
use crate::tenant::TenantConfig;

/// What ElevenLabs posts when a Twilio call comes in: these fields, typed; others the platform
/// adds are ignored.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ConversationInit {
    #[serde(default)]
    pub caller_id: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub called_number: Option<String>,
    #[serde(default)]
    pub call_sid: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<String>,
}

/// Every dynamic variable the answer carries, always all of them: a conversation fails to
/// start when the prompt references one the webhook did not send.
pub const INIT_VARIABLES: &[&str] = &[
    "business_name",
    "caller_known",
    "caller_name",
    "caller_first_name",
    "upcoming_booking",
    "upcoming_booking_id",
    "upcoming_booking_start",
    "upcoming_bookings",
    "open_lead",
    "open_lead_service",
];

/// The caller lookup gets this long; after it the call starts as if the caller were new.
const LOOKUP_BUDGET: Duration = Duration::from_millis(1500);

struct Known {
    name: Option<String>,
    /// (booking id, service name, start) of upcoming bookings, earliest first.
    bookings: Vec<(String, String, Timestamp)>,
    open_lead_service: Option<String>,
}

/// `POST /webhooks/elevenlabs/conversation-init`: who is calling, before the call connects.
pub async fn conversation_init(deps: &Deps, req: ConversationInit) -> Result<Answer, ToolError> {
    let tenant = deps.tenant().await?;
    // A withheld or odd caller id is a new caller, never an error: the call must start.
    let phone = super::caller_id(req.caller_id.as_deref(), &tenant);
    let (outcome, known) = match &phone {
        None => ("no_caller_id", None),
        Some(p) => match tokio::time::timeout(LOOKUP_BUDGET, look_up(deps, &tenant, p)).await {
            Ok(Ok(Some(known))) => ("known_caller", Some(known)),
            Ok(Ok(None)) => ("new_caller", None),
            Ok(Err(e)) => {
                warn!(error = %e, "caller lookup failed; starting the call as a new caller");
                ("lookup_failed", None)
            }
            Err(_) => {
                warn!("caller lookup too slow; starting the call as a new caller");
                ("lookup_timeout", None)
            }
        },
    };
    let zone = tenant.time_zone();
    let mut vars = Map::new();
    vars.insert("business_name".into(), json!(tenant.business.name));
    vars.insert("caller_known".into(), json!(known.is_some()));
    let name = known
        .as_ref()
        .and_then(|k| k.name.clone())
        .unwrap_or_default();
    vars.insert(
        "caller_first_name".into(),
        json!(name.split_whitespace().next().unwrap_or("")),
    );
    vars.insert("caller_name".into(), json!(name));
    let bookings = known.as_ref().map(|k| k.bookings.as_slice()).unwrap_or(&[]);
    let next = bookings.first();
    vars.insert(
        "upcoming_booking".into(),
        json!(next
            .map(|(_, service, start)| format!(
                "{service} on {}",
                spoken_datetime(&start.to_zoned(zone.clone()))
            ))
            .unwrap_or_default()),
    );
    vars.insert(
        "upcoming_booking_id".into(),
        json!(next.map(|(id, _, _)| id.clone()).unwrap_or_default()),
    );
    vars.insert(
        "upcoming_booking_start".into(),
        json!(next
            .map(|(_, _, start)| iso_local(&start.to_zoned(zone.clone())))
            .unwrap_or_default()),
    );
    vars.insert("upcoming_bookings".into(), json!(bookings.len()));
    let lead_service = known.as_ref().and_then(|k| k.open_lead_service.clone());
    vars.insert("open_lead".into(), json!(lead_service.is_some()));
    vars.insert(
        "open_lead_service".into(),
        json!(lead_service.unwrap_or_default()),
    );
    Ok(Answer::new(
        outcome,
        answer(&json!({
            "type": "conversation_initiation_client_data",
            "dynamic_variables": Value::Object(vars),
        })),
    ))
}

/// One Query finds the contact and their bookings; a second read only for an open lead.
async fn look_up(
    deps: &Deps,
    tenant: &TenantConfig,
    phone: &PhoneNumber,
) -> Result<Option<Known>, DependencyError> {
    let (contact, entries) = deps.store.contact_overview(phone).await?;
    let Some(contact) = contact else {
        return Ok(None);
    };
    let now = deps.now();
    let bookings = entries
        .into_iter()
        .filter_map(|e| {
            let start: Timestamp = e.start.parse().ok()?;
            let service = tenant.service_name(&e.service_id);
            (start > now).then_some((e.booking_id, service, start))
        })
        .collect();
    let open_lead_service = match &contact.open_lead_id {
        None => None,
        Some(id) => deps.store.get_lead(id).await?.and_then(|lead| {
            let open = crate::store::string(&lead, "lead_status").as_deref() == Some("open");
            let service = crate::store::string(&lead, "service")
                .map(|s| tenant.service(&s).map(|d| d.name.clone()).unwrap_or(s))
                .unwrap_or_else(|| "an enquiry".into());
            open.then_some(service)
        }),
    };
    Ok(Some(Known {
        name: contact.name,
        bookings,
        open_lead_service,
    }))
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UpsertContact {
    /// The number the caller gave, if they want to be reached on another one.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub caller_phone: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<String>,
}

/// A plausible e-mail address, lower-cased; the agent spells these out, so be strict.
pub fn email(raw: Option<&str>) -> Result<Option<String>, ToolError> {
    let Some(e) = raw.map(str::trim).filter(|e| !e.is_empty()) else {
        return Ok(None);
    };
    let e = e.to_lowercase();
    let valid = e.len() <= 254
        && !e.contains(|c: char| c.is_whitespace() || c.is_control())
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(Some(e))
    } else {
        Err(bad(
            "email",
            "That email address doesn't look right. Could you spell it again?",
        ))
    }
}

/// `POST /tools/upsert_contact`: what the caller tells us about themselves.
pub async fn upsert_contact(deps: &Deps, req: UpsertContact) -> Result<Answer, ToolError> {
    let tenant = deps.tenant().await?;
    let conversation =
        super::conversation_or_tool(super::conversation(req.conversation_id.as_deref())?);
    let stated = super::phone("phone", req.phone.as_deref(), &tenant)?;
    let caller = super::caller_id(req.caller_phone.as_deref(), &tenant);
    let name = super::line(
        "name",
        req.name.as_deref(),
        100,
        "Could you tell me your name again?",
    )?;
    let email = email(req.email.as_deref())?;
    let address = super::text(
        "address",
        req.address.as_deref(),
        300,
        "Could you give me a shorter version of the address?",
    )?;
    if name.is_none() && email.is_none() && address.is_none() && stated.is_none() {
        return Err(bad(
            "name",
            "There's nothing to save yet: I need at least a name, a number or an email address.",
        ));
    }
    // Recognised by number first (across phone, SMS and WhatsApp), then by e-mail.
    let phone = match stated.or(caller.clone()) {
        Some(p) => Some(p),
        None => match &email {
            Some(e) => deps.store.phone_for_email(e).await?,
            None => None,
        },
    };
    let Some(phone) = phone else {
        return Ok(Answer::refusal(
            "need_phone",
            "What's the best number to reach you on?",
        ));
    };
    let details = ContactDetails {
        name: name.as_deref(),
        email: email.as_deref(),
        address: address.as_deref(),
        overwrite: caller.as_ref() == Some(&phone),
    };
    deps.store
        .save_contact_details(&phone, &details, "phone", &conversation, deps.now())
        .await?;
    // Only what the caller just said is said back: the answer never reveals what is on file
    // for a number or address someone names.
    let first = name
        .as_deref()
        .map(super::first_name)
        .map(|n| format!(", {n}"))
        .unwrap_or_default();
    Ok(Answer::new(
        "saved",
        json!({
            "ok": true,
            "saved": true,
            "say": format!("Thanks{first}, I've saved your details."),
        }),
    ))
}
