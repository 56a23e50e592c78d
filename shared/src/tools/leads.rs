//! capture_lead (an enquiry, with its urgency: the owner hears of a hot one at once) and
//! dispatch_lead (pass the lead to exactly one partner provider).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;

use super::caller::email;
use super::{bad, Answer, ToolError};
use crate::deps::Deps;
use crate::dispatch::{candidates, find_area, Area, Provider};
use crate::events::{self, DomainEvent, LeadDispatched};
use crate::ids::LeadId;
use crate::leads::{self, HotLead, LeadNews};
use crate::outbox::{self, Audience, NewMessage, WhatsAppTemplate};
use crate::phone::PhoneNumber;
use crate::spoken::list_words;
use crate::store::contacts::{ContactDetails, LeadInput};
use crate::store::dispatch::Claim;
use crate::store::{string, Item};
use crate::tenant::{render, TenantConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Low,
    Normal,
    Urgent,
    Emergency,
}

impl Urgency {
    fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::Urgent => "urgent",
            Self::Emergency => "emergency",
        }
    }
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CaptureLead {
    /// The service id or its name as said.
    pub service: String,
    pub urgency: Urgency,
    /// One or two sentences: what the job is.
    pub summary: String,
    /// Where the job is: an area, postcode district or neighbourhood the business covers.
    #[serde(default)]
    pub area: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// The number the caller gave, if not the one they are calling from.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub caller_phone: Option<String>,
    pub conversation_id: String,
}

fn area_list(tenant: &TenantConfig) -> String {
    let names: Vec<&str> = tenant.areas.iter().map(|a| a.name.as_str()).collect();
    list_words(&names)
}

/// `POST /tools/capture_lead`: the enquiry, on the person's one open lead.
pub async fn capture_lead(deps: &Deps, req: CaptureLead) -> Result<Answer, ToolError> {
    let tenant = deps.tenant().await?;
    let conversation = super::conversation(Some(&req.conversation_id))?
        .ok_or_else(|| bad("conversation_id", "The conversation id is missing."))?;
    let Some(service) = tenant.find_service(&req.service) else {
        return Err(bad(
            "service",
            format!(
                "That isn't one of our services. We do {}.",
                tenant.service_names()
            ),
        ));
    };
    let area = match super::line(
        "area",
        req.area.as_deref(),
        100,
        "Which area is the job in?",
    )? {
        None => None,
        // The business lists no areas: nothing to check against or route by.
        Some(_) if tenant.areas.is_empty() => None,
        Some(said) => Some(find_area(&tenant.areas, &said).ok_or_else(|| {
            bad(
                "area",
                format!(
                    "We don't cover that area. We work in {}.",
                    area_list(&tenant)
                ),
            )
        })?),
    };
    let summary = super::text(
        "summary",
        Some(&req.summary),
        500,
        "Please sum the job up in a sentence or two.",
    )?
    .ok_or_else(|| bad("summary", "What is the job, in a sentence?"))?;
    let name = super::line(
        "name",
        req.name.as_deref(),
        100,
        "Could you tell me your name again?",
    )?;
    let email = email(req.email.as_deref())?;
    let stated = super::phone("phone", req.phone.as_deref(), &tenant)?;
    let caller = super::caller_id(req.caller_phone.as_deref(), &tenant);
    let Some(phone) = stated.or(caller.clone()) else {
        return Err(bad("phone", "What's the best number to reach you on?"));
    };
    let urgency = req.urgency.as_str();
    let hot = tenant
        .post_call
        .hot_values
        .iter()
        .any(|h| h.eq_ignore_ascii_case(urgency));
    let now = deps.now();
    let details = ContactDetails {
        name: name.as_deref(),
        email: email.as_deref(),
        address: None,
        overwrite: caller.as_ref() == Some(&phone),
    };
    let contact = deps
        .store
        .save_contact_details(&phone, &details, "phone", &conversation, now)
        .await?;
    let input = LeadInput {
        conversation: &conversation,
        channel: "phone",
        name: name.as_deref(),
        service: Some(&service.id),
        area: area.map(|a| a.id.as_str()),
        urgency: Some(urgency),
        hot,
        summary: Some(&summary),
        now,
    };
    let lead = deps.store.open_or_merge_lead(&contact, &input).await?;
    let news = LeadNews {
        lead: &lead,
        conversation: &conversation,
        channel: "phone",
        hot: hot.then(|| HotLead {
            caller_name: name.clone().or(contact.name.clone()),
            phone: Some(phone.clone()),
            service: Some(service.name.clone()),
            urgency: Some(urgency.to_string()),
            summary: Some(summary.clone()),
            area: area.map(|a| a.name.clone()),
            booking_time: None,
        }),
    };
    if let Some(owner_text) = leads::announce(deps, &tenant, &news).await? {
        // Queued, so the agent is not kept waiting for Twilio.
        outbox::queue_send(deps, &owner_text).await?;
    }
    let say = if hot {
        "I've marked this as urgent and let the team know straight away."
    } else {
        "I've noted that down and the team will be in touch."
    };
    Ok(Answer::new(
        if hot { "captured_hot" } else { "captured" },
        json!({
            "ok": true,
            "lead_id": lead.id.as_str(),
            "hot": lead.hot,
            "service": service.id,
            "area": area.map(|a| a.name.as_str()),
            "say": say,
        }),
    ))
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DispatchLead {
    /// From capture_lead; absent means the caller's open lead.
    #[serde(default)]
    pub lead_id: Option<String>,
    #[serde(default)]
    pub caller_phone: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<String>,
}

/// A lead as dispatch needs it.
struct Lead {
    id: LeadId,
    item: Item,
}

impl Lead {
    fn field(&self, name: &str) -> Option<String> {
        string(&self.item, name)
    }
}

fn provider_named<'a>(tenant: &'a TenantConfig, id: &str) -> Option<&'a Provider> {
    tenant.providers.iter().find(|p| p.id == id)
}

/// The lead is with a provider already. Their notice is made again (it is idempotent): if the
/// call that dispatched it failed before notifying, this finishes the job.
async fn already(deps: &Deps, tenant: &TenantConfig, lead: &Lead) -> Result<Answer, ToolError> {
    let provider = lead
        .field("dispatched_to")
        .and_then(|id| provider_named(tenant, &id));
    let service = lead.field("service").and_then(|s| tenant.service(&s));
    let area = lead
        .field("area")
        .and_then(|a| tenant.areas.iter().find(|x| x.id == a));
    if let (Some(p), Some(service), Some(area)) = (provider, service, area) {
        notify_provider(deps, tenant, p, lead, &service.name, area).await?;
    }
    let name = provider
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "one of our partners".into());
    Ok(Answer::new(
        "already_dispatched",
        json!({
            "ok": false,
            "code": "already_dispatched",
            "provider": name,
            "say": format!("That job is already with {name}. They'll be in touch."),
        }),
    ))
}

fn lead_closed() -> Answer {
    Answer::refusal("lead_closed", "That enquiry has been dealt with already.")
}

/// `POST /tools/dispatch_lead`: the lead to exactly one partner provider.
pub async fn dispatch_lead(deps: &Deps, req: DispatchLead) -> Result<Answer, ToolError> {
    let tenant = deps.tenant().await?;
    super::conversation(req.conversation_id.as_deref())?;
    let phone = super::caller_id(req.caller_phone.as_deref(), &tenant);
    let lead_id = match req
        .lead_id
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        Some(l) => Some(
            LeadId::parse(l)
                .map_err(|_| bad("lead_id", "That lead reference doesn't look right."))?,
        ),
        None => match &phone {
            Some(p) => deps
                .store
                .get_contact(p)
                .await?
                .and_then(|c| c.open_lead_id),
            None => {
                return Err(bad(
                    "lead_id",
                    "Which enquiry is it? I need the lead reference or the caller's number.",
                ))
            }
        },
    };
    let lead = match lead_id {
        Some(id) => deps
            .store
            .get_lead(&id)
            .await?
            .map(|item| Lead { id, item }),
        None => None,
    };
    let Some(lead) = lead else {
        return Ok(Answer::new(
            "no_lead",
            json!({"ok": false, "code": "no_lead", "say": "I need to take the job details first.", "next": "capture_lead"}),
        ));
    };
    if lead.field("dispatched_to").is_some() {
        return already(deps, &tenant, &lead).await;
    }
    if lead.field("lead_status").as_deref() != Some("open") {
        return Ok(lead_closed());
    }
    let service = lead
        .field("service")
        .and_then(|s| tenant.service(&s).cloned());
    let area = lead
        .field("area")
        .and_then(|a| tenant.areas.iter().find(|x| x.id == a));
    let (Some(service), Some(area)) = (service, area) else {
        return Ok(Answer::new(
            "need_details",
            json!({"ok": false, "code": "need_details", "say": "I need the job and the area first.", "next": "capture_lead"}),
        ));
    };
    let Some(category) = service.category.as_deref() else {
        return Ok(no_provider());
    };
    let now = deps.now();
    let day = now.to_zoned(tenant.time_zone()).date().to_string();
    let eligible: Vec<&str> = tenant
        .providers
        .iter()
        .filter(|p| p.country == area.country)
        .map(|p| p.id.as_str())
        .collect();
    let loads = deps.store.provider_loads(&eligible, &day).await?;
    let ranked = candidates(&tenant.providers, area, category, |id| {
        loads.get(id).cloned().unwrap_or_default()
    });
    for provider in ranked {
        for _ in 0..3 {
            match deps
                .store
                .claim_lead(&lead.id, &provider.id, provider.daily_capacity, &day, now)
                .await?
            {
                Claim::Claimed => {
                    notify_provider(deps, &tenant, provider, &lead, &service.name, area).await?;
                    let event = LeadDispatched {
                        lead_id: lead.id.to_string(),
                        provider: provider.id.clone(),
                        area: area.id.clone(),
                        category: category.to_string(),
                    };
                    events::publish(deps, &DomainEvent::LeadDispatched(event)).await?;
                    // The caller hears the provider's name, never their address or number.
                    return Ok(Answer::new(
                        "dispatched",
                        json!({
                            "ok": true,
                            "dispatched": true,
                            "provider": provider.name,
                            "say": format!("I've passed your job to {}. They'll contact you shortly.", provider.name),
                        }),
                    ));
                }
                Claim::ProviderFull => break,
                Claim::LeadTaken | Claim::Conflict => {
                    let fresh = deps.store.get_lead(&lead.id).await?.map(|item| Lead {
                        id: lead.id.clone(),
                        item,
                    });
                    match fresh {
                        Some(f) if f.field("dispatched_to").is_some() => {
                            return already(deps, &tenant, &f).await
                        }
                        Some(f) if f.field("lead_status").as_deref() != Some("open") => {
                            return Ok(lead_closed());
                        }
                        // Still free: the other transaction failed; try again.
                        _ => continue,
                    }
                }
            }
        }
    }
    Ok(no_provider())
}

fn no_provider() -> Answer {
    Answer::new(
        "no_provider",
        json!({"ok": false, "code": "no_provider_available", "say": "None of our partners can take that on today, so I'll pass it to the team to arrange."}),
    )
}

/// The job notice: SMS always, and a WhatsApp template where the provider wants it.
async fn notify_provider(
    deps: &Deps,
    tenant: &TenantConfig,
    provider: &Provider,
    lead: &Lead,
    service: &str,
    area: &Area,
) -> Result<(), ToolError> {
    let caller_phone = lead
        .field("phone")
        .and_then(|p| PhoneNumber::parse(&p, None).ok())
        .map(|p| p.international())
        .unwrap_or_default();
    let name = lead.field("name").unwrap_or_else(|| "the customer".into());
    let summary = lead.field("summary").unwrap_or_default();
    let values = BTreeMap::from([
        ("business_name", tenant.business.name.clone()),
        ("service", service.to_string()),
        ("area", area.name.clone()),
        ("caller_name", name.clone()),
        ("caller_phone", caller_phone.clone()),
        ("summary", summary.clone()),
        ("urgency", lead.field("urgency").unwrap_or_default()),
    ]);
    let body = render(&tenant.templates.provider_job, &values);
    let message = |id: String| NewMessage {
        id,
        purpose: "provider_job",
        audience: Audience::Provider,
        to: provider.phone.clone(),
        body: body.clone(),
        conversation_id: lead.field("last_conversation_id"),
        lead_id: Some(lead.id.to_string()),
    };
    outbox::create_and_queue(deps, message(format!("provider-job:{}", lead.id))).await?;
    if provider.whatsapp {
        if let Some(sid) = &tenant.messaging.whatsapp_job_template_sid {
            let template = WhatsAppTemplate {
                content_sid: sid.clone(),
                variables: vec![
                    service.to_string(),
                    area.name.clone(),
                    name,
                    caller_phone,
                    summary,
                ],
            };
            let id = outbox::create_whatsapp(
                deps,
                message(format!("provider-job-whatsapp:{}", lead.id)),
                template,
            )
            .await?;
            outbox::queue_send(deps, &id).await?;
        }
    }
    Ok(())
}
