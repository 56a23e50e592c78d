//! The outbox (every outbound text is an item before it is sent) and the record of emitted
//! domain events. Both use ids derived from what they are about, so creating one twice is a
//! no-op: that is what makes redelivered webhooks and retried jobs send nothing twice.

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{
    from_value, keys, n, s, string, AttributeMap, Created, Item, SetClause, Store, Update,
};
use crate::error::DependencyError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Created, not yet attempted.
    Pending,
    /// A send is in flight (or died in flight: then the outcome is unknown).
    Sending,
    /// Twilio accepted it.
    Sent,
    /// No Twilio credentials (local runs): kept here instead of sent.
    Recorded,
    /// A transient failure; a retry is queued.
    Retrying,
    /// Permanently refused (opted out, invalid number, too many attempts).
    Failed,
    /// Not sent on purpose (the person opted out before we tried).
    Suppressed,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Recorded => "recorded",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::Suppressed => "suppressed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub message_id: String,
    pub tenant: String,
    /// What the text is for: `caller_follow_up`, `missed_call`, `owner_hot_lead`, ...
    pub purpose: String,
    /// `caller` or `owner`: opt-outs only ever apply to callers.
    pub audience: String,
    /// `sms` or `whatsapp`.
    pub channel: String,
    pub to: String,
    /// The text; for a WhatsApp template, what it says (for the record).
    pub body: String,
    /// A WhatsApp template (Content SID) and its variables (JSON), sent instead of the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_variables: Option<String>,
    pub state: MessageState,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio_sid: Option<String>,
    /// An earlier attempt may have reached Twilio: look there before sending again.
    #[serde(default)]
    pub needs_check: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The outcome written when a send attempt ends.
#[derive(Debug, Clone, Default)]
pub struct SendOutcome {
    pub twilio_sid: Option<String>,
    pub needs_check: Option<bool>,
    pub error_code: Option<String>,
    pub error_detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClaim {
    New,
    /// Recorded before but not yet confirmed published (a retry).
    Pending,
    Published,
}

impl Store {
    /// Creates the message unless one with its id exists. Returns whether it was created.
    pub async fn create_message(&self, msg: &OutboundMessage) -> Result<bool, DependencyError> {
        let (pk, sk) = keys::message(self.tenant(), &msg.message_id);
        let AttributeMap(mut item) = AttributeMap::of(msg)?;
        item.insert(keys::PK.into(), s(pk));
        item.insert(keys::SK.into(), s(sk));
        item.insert(keys::GSI1PK.into(), s(keys::messages_index(self.tenant())));
        item.insert(
            keys::GSI1SK.into(),
            s(format!("{}#{}", msg.created_at, msg.message_id)),
        );
        self.put_if_absent(item).await
    }

    pub async fn get_message(&self, id: &str) -> Result<Option<OutboundMessage>, DependencyError> {
        let item = self
            .get(keys::message(self.tenant(), id), "GetItem")
            .await?;
        item.map(|i| from_value(AttributeValue::M(i))).transpose()
    }

    /// Moves a pending or retrying message to `sending`, counting the attempt. `None` if it is
    /// in any other state: someone else sent it, or it is settled.
    pub async fn begin_send(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<OutboundMessage>, DependencyError> {
        let begin = Update::new(
            keys::message(self.tenant(), id),
            "SET #state = :sending, updated_at = :now ADD attempts :one",
        )
        .only_if("#state IN (:pending, :retrying)")
        .name("#state", "state")
        .value(":sending", s(MessageState::Sending.as_str()))
        .value(":pending", s(MessageState::Pending.as_str()))
        .value(":retrying", s(MessageState::Retrying.as_str()))
        .value(":now", s(now.to_string()))
        .value(":one", n(1))
        .returning_new();
        self.update(begin)
            .await?
            .map(|item| from_value(AttributeValue::M(item)))
            .transpose()
    }

    pub async fn settle_message(
        &self,
        id: &str,
        state: MessageState,
        outcome: &SendOutcome,
        now: Timestamp,
    ) -> Result<(), DependencyError> {
        let (pk, sk) = keys::message(self.tenant(), id);
        let mut set = SetClause::default();
        set.set("state", s(state.as_str()))
            .set("updated_at", s(now.to_string()))
            .set_opt("twilio_sid", outcome.twilio_sid.clone().map(s))
            .set_opt("needs_check", outcome.needs_check.map(AttributeValue::Bool))
            .set_opt("error_code", outcome.error_code.clone().map(s))
            .set_opt("error_detail", outcome.error_detail.clone().map(s));
        self.apply_set((pk, sk), set).await
    }

    /// Takes over a send that died mid-way (still `sending` with the `updated_at` we saw), marking
    /// it to be checked at Twilio before any resend. False if someone else moved it first.
    pub async fn take_over_stale_send(
        &self,
        id: &str,
        seen_updated_at: &str,
        now: Timestamp,
    ) -> Result<bool, DependencyError> {
        let take_over = Update::new(
            keys::message(self.tenant(), id),
            "SET #state = :retrying, needs_check = :yes, updated_at = :now",
        )
        .only_if("#state = :sending AND updated_at = :seen")
        .name("#state", "state")
        .value(":retrying", s(MessageState::Retrying.as_str()))
        .value(":sending", s(MessageState::Sending.as_str()))
        .value(":yes", AttributeValue::Bool(true))
        .value(":seen", s(seen_updated_at))
        .value(":now", s(now.to_string()));
        Ok(self.update(take_over).await?.is_some())
    }

    /// The tenant's messages, oldest first (for the local viewer and tests).
    pub async fn list_messages(&self, limit: i32) -> Result<Vec<OutboundMessage>, DependencyError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(keys::messages_index(self.tenant())))
            .limit(limit)
            .send()
            .await
            .map_err(|e| DependencyError::aws("dynamodb", "Query", &e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_value(AttributeValue::M(i)))
            .collect()
    }

    pub async fn claim_event(
        &self,
        id: &str,
        detail_type: &str,
        now: Timestamp,
        ttl: std::time::Duration,
    ) -> Result<EventClaim, DependencyError> {
        let (pk, sk) = keys::emitted_event(self.tenant(), id);
        let item = Item::from([
            (keys::PK.to_string(), s(pk)),
            (keys::SK.to_string(), s(sk)),
            ("detail_type".to_string(), s(detail_type)),
            ("state".to_string(), s("pending")),
            ("created_at".to_string(), s(now.to_string())),
            (
                keys::TTL_ATTRIBUTE.to_string(),
                n(now.as_second() + ttl.as_secs() as i64),
            ),
        ]);
        Ok(match self.put_new_or_read(item).await? {
            Created::New => EventClaim::New,
            Created::Existing(Some(i)) if string(&i, "state").as_deref() == Some("published") => {
                EventClaim::Published
            }
            Created::Existing(_) => EventClaim::Pending,
        })
    }

    pub async fn mark_event_published(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<(), DependencyError> {
        let published = Update::new(
            keys::emitted_event(self.tenant(), id),
            "SET #state = :p, published_at = :now",
        )
        .name("#state", "state")
        .value(":p", s("published"))
        .value(":now", s(now.to_string()));
        self.update(published).await.map(|_| ())
    }
}
