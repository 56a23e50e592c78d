//! The news of a lead, whichever path brings it (the post-call pipeline, capture_lead, later
//! the text channel): `lead.created` when this conversation opened it, and for a hot contact
//! `lead.hot` and one text to the owner within seconds.

use std::collections::BTreeMap;

use crate::deps::Deps;
use crate::error::DependencyError;
use crate::events::{self, DomainEvent, LeadCreated, LeadHot};
use crate::ids::ConversationId;
use crate::outbox::{self, Audience, NewMessage};
use crate::phone::PhoneNumber;
use crate::store::contacts::LeadOutcome;
use crate::tenant::{render, TenantConfig};

/// What one contact did to a lead.
pub struct LeadNews<'a> {
    pub lead: &'a LeadOutcome,
    pub conversation: &'a ConversationId,
    /// `phone`, `sms` or `whatsapp`.
    pub channel: &'static str,
    /// Set when this contact is urgent: what the owner is told.
    pub hot: Option<HotLead>,
}

/// The owner's hot-lead text, as the `owner_hot_lead` template's placeholders.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HotLead {
    pub caller_name: Option<String>,
    pub phone: Option<PhoneNumber>,
    pub service: Option<String>,
    pub urgency: Option<String>,
    pub summary: Option<String>,
    pub area: Option<String>,
    pub booking_time: Option<String>,
}

impl HotLead {
    pub fn values(&self, tenant: &TenantConfig) -> BTreeMap<&'static str, String> {
        let or = |v: &Option<String>, default: &str| v.clone().unwrap_or_else(|| default.into());
        BTreeMap::from([
            ("business_name", tenant.business.name.clone()),
            ("caller_name", or(&self.caller_name, "Unknown caller")),
            (
                "caller_phone",
                self.phone
                    .as_ref()
                    .map(PhoneNumber::international)
                    .unwrap_or_default(),
            ),
            ("service", or(&self.service, "an enquiry")),
            ("urgency", or(&self.urgency, "")),
            ("summary", or(&self.summary, "")),
            ("area", or(&self.area, "")),
            ("booking_time", or(&self.booking_time, "")),
        ])
    }
}

/// The one id of a conversation's hot-lead text: a call that is urgent in capture_lead and in
/// its analysis texts the owner once, whichever path is first.
pub fn owner_alert_id(conversation: &ConversationId) -> String {
    format!("owner-hot-lead:{conversation}")
}

/// Records the owner's text (if hot) and publishes the lead's events. Returns the text's id:
/// the caller sends it now or queues it.
pub async fn announce(
    deps: &Deps,
    tenant: &TenantConfig,
    news: &LeadNews<'_>,
) -> Result<Option<String>, DependencyError> {
    let lead_id = news.lead.id.to_string();
    let conversation_id = news.conversation.to_string();
    let owner_text = match &news.hot {
        None => None,
        Some(hot) => Some(
            outbox::create(
                deps,
                NewMessage {
                    id: owner_alert_id(news.conversation),
                    purpose: "owner_hot_lead",
                    audience: Audience::Owner,
                    to: tenant.business.owner_phone.clone(),
                    body: render(&tenant.templates.owner_hot_lead, &hot.values(tenant)),
                    conversation_id: Some(conversation_id.clone()),
                    lead_id: Some(lead_id.clone()),
                },
            )
            .await?,
        ),
    };
    if news.lead.opened_here {
        let created = LeadCreated {
            lead_id: lead_id.clone(),
            conversation_id: conversation_id.clone(),
            channel: news.channel.to_string(),
            hot: news.lead.hot,
        };
        events::publish(deps, &DomainEvent::LeadCreated(created)).await?;
    }
    if let Some(hot) = &news.hot {
        let event = LeadHot {
            lead_id,
            conversation_id,
            urgency: hot.urgency.clone(),
        };
        events::publish(deps, &DomainEvent::LeadHot(event)).await?;
    }
    Ok(owner_text)
}
