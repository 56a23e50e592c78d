//! The outbox (every outbound text is an item before it is sent) and the record of emitted
//! domain events. Both use ids derived from what they are about, so creating one twice is a
//! no-op: that is what makes redelivered webhooks and retried jobs send nothing twice.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
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
    /// Due inside the recipient's quiet hours: waits for `not_before`.
    Deferred,
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
            Self::Deferred => "deferred",
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
    /// What Twilio's status callbacks last said (`delivered`, `failed`...), forward only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_status: Option<String>,
    /// A timed message (a reminder): it joins the person's thread when it goes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scheduled: bool,
    /// How often quiet hours made it wait.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub quiet_deferrals: u32,
    /// Quiet hours, or its time: not before this (UTC RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// Twilio said the WhatsApp window was closed (63016): send the template instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outside_window: bool,
    pub created_at: String,
    pub updated_at: String,
    /// When DynamoDB deletes it (epoch seconds; the business's retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The outcome written when a send attempt ends.
#[derive(Debug, Clone, Default)]
pub struct SendOutcome {
    pub twilio_sid: Option<String>,
    pub needs_check: Option<bool>,
    pub error_code: Option<String>,
    pub error_detail: Option<String>,
}

/// An event as recorded: its id, its detail-type and its detail (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub id: String,
    pub detail_type: String,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClaim {
    New,
    /// Recorded before but not yet confirmed published (a retry).
    Pending,
    Published,
}

impl Store {
    fn message_item(&self, msg: &OutboundMessage) -> Result<Item, DependencyError> {
        let (pk, sk) = keys::message(self.tenant(), &msg.message_id);
        let AttributeMap(mut item) = AttributeMap::of(msg)?;
        item.insert(keys::PK.into(), s(pk));
        item.insert(keys::SK.into(), s(sk));
        item.insert(keys::GSI1PK.into(), s(keys::messages_index(self.tenant())));
        item.insert(
            keys::GSI1SK.into(),
            s(format!("{}#{}", msg.created_at, msg.message_id)),
        );
        Ok(item)
    }

    /// Creates the message unless one with its id exists. Returns whether it was created.
    pub async fn create_message(&self, msg: &OutboundMessage) -> Result<bool, DependencyError> {
        self.put_if_absent(self.message_item(msg)?).await
    }

    /// The message as part of a business write's transaction (its id is derived from what that
    /// write creates, so it is new whenever the write is).
    pub fn message_in_transaction(
        &self,
        msg: &OutboundMessage,
    ) -> Result<TransactWriteItem, DependencyError> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(self.message_item(msg)?))
            .build()
            .map_err(super::build_err)?;
        Ok(TransactWriteItem::builder().put(put).build())
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
        .only_if("#state IN (:pending, :retrying, :deferred)")
        .name("#state", "state")
        .value(":sending", s(MessageState::Sending.as_str()))
        .value(":pending", s(MessageState::Pending.as_str()))
        .value(":retrying", s(MessageState::Retrying.as_str()))
        .value(":deferred", s(MessageState::Deferred.as_str()))
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

    /// The message waits until `until` (only if nobody took it meanwhile); `quiet` when quiet
    /// hours moved it past its own time (counted, so the owner can see what waited).
    pub async fn defer_message(
        &self,
        id: &str,
        until: Timestamp,
        now: Timestamp,
        quiet: bool,
    ) -> Result<bool, DependencyError> {
        let mut expression =
            String::from("SET #state = :deferred, not_before = :until, updated_at = :now");
        if quiet {
            expression.push_str(" ADD quiet_deferrals :one");
        }
        let mut defer = Update::new(keys::message(self.tenant(), id), expression)
            .only_if("#state IN (:pending, :retrying, :deferred)")
            .name("#state", "state")
            .value(":deferred", s(MessageState::Deferred.as_str()))
            .value(":pending", s(MessageState::Pending.as_str()))
            .value(":retrying", s(MessageState::Retrying.as_str()))
            .value(":until", s(until.to_string()))
            .value(":now", s(now.to_string()));
        if quiet {
            defer = defer.value(":one", n(1));
        }
        Ok(self.update(defer).await?.is_some())
    }

    /// Stops a message that has not gone yet (the person opted out). False if it is in flight
    /// or settled.
    pub async fn suppress_if_waiting(
        &self,
        id: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool, DependencyError> {
        let stop = Update::new(
            keys::message(self.tenant(), id),
            "SET #state = :suppressed, error_detail = :why, updated_at = :now",
        )
        .only_if("#state IN (:pending, :retrying, :deferred)")
        .name("#state", "state")
        .value(":suppressed", s(MessageState::Suppressed.as_str()))
        .value(":pending", s(MessageState::Pending.as_str()))
        .value(":retrying", s(MessageState::Retrying.as_str()))
        .value(":deferred", s(MessageState::Deferred.as_str()))
        .value(":why", s(reason))
        .value(":now", s(now.to_string()));
        Ok(self.update(stop).await?.is_some())
    }

    /// Twilio refused or failed a message in a way worth another go (as the template when
    /// `outside_window`, after a 63016): due again, its delivery status cleared for the new
    /// attempt.
    ///
    /// `failed_send`: the Twilio SID of the send that failed, when a status callback said so;
    /// the resend happens only while that send is still the message's current one and it
    /// stands as sent (a repeated callback finds it resent already and changes nothing).
    /// Returns whether it is due again.
    pub async fn resend_after_failure(
        &self,
        id: &str,
        outside_window: bool,
        failed_send: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, DependencyError> {
        let mut resend = Update::new(
            keys::message(self.tenant(), id),
            "SET #state = :retrying, outside_window = :outside, updated_at = :now REMOVE delivery_rank, delivery_status",
        )
        .name("#state", "state")
        .value(":retrying", s(MessageState::Retrying.as_str()))
        .value(":outside", AttributeValue::Bool(outside_window))
        .value(":now", s(now.to_string()));
        resend = match failed_send {
            Some(sid) => resend
                .only_if("#state = :sent AND twilio_sid = :sid")
                .value(":sent", s(MessageState::Sent.as_str()))
                .value(":sid", s(sid)),
            None => resend
                .only_if("#state = :sending")
                .value(":sending", s(MessageState::Sending.as_str())),
        };
        Ok(self.update(resend).await?.is_some())
    }

    /// Twilio could not deliver the message's current send (`twilio_sid`), for good: failed,
    /// with the code for the owner's digest. False if it was resent or settled meanwhile.
    pub async fn fail_delivered_send(
        &self,
        id: &str,
        twilio_sid: &str,
        outcome: &SendOutcome,
        now: Timestamp,
    ) -> Result<bool, DependencyError> {
        let (pk, sk) = keys::message(self.tenant(), id);
        let mut set = SetClause::default();
        set.set("state", s(MessageState::Failed.as_str()))
            .set("updated_at", s(now.to_string()))
            .set_opt("error_code", outcome.error_code.clone().map(s))
            .set_opt("error_detail", outcome.error_detail.clone().map(s));
        let fail = Update::set((pk, sk), set)
            .only_if("#state_now = :sent AND twilio_sid = :sid")
            .name("#state_now", "state")
            .value(":sent", s(MessageState::Sent.as_str()))
            .value(":sid", s(twilio_sid));
        Ok(self.update(fail).await?.is_some())
    }

    /// Records a delivery status if it moves the message forward (`rank` higher than the one
    /// recorded). Returns the message after the change, or `None` if it changed nothing.
    pub async fn advance_delivery(
        &self,
        id: &str,
        twilio_sid: &str,
        status: &str,
        rank: u8,
        error_code: Option<u32>,
        now: Timestamp,
    ) -> Result<Option<OutboundMessage>, DependencyError> {
        let mut expression =
            "SET delivery_status = :status, delivery_rank = :rank, delivered_at = :now".to_string();
        if error_code.is_some() {
            expression.push_str(", delivery_error = :code");
        }
        let mut advance = Update::new(keys::message(self.tenant(), id), expression)
            // Only the current send's callbacks count: an earlier send's (a resend followed it)
            // say nothing about this one.
            .only_if("attribute_exists(PK) AND twilio_sid = :sid AND (attribute_not_exists(delivery_rank) OR delivery_rank < :rank)")
            .value(":sid", s(twilio_sid))
            .value(":status", s(status))
            .value(":rank", n(rank))
            .value(":now", s(now.to_string()))
            .returning_new();
        if let Some(code) = error_code {
            advance = advance.value(":code", s(code.to_string()));
        }
        self.update(advance)
            .await?
            .map(|item| from_value(AttributeValue::M(item)))
            .transpose()
    }

    /// Messages created in `[from, to)` that have not settled (pending, retrying, or stuck
    /// sending) or whose wait is over by `now` (deferred): the outbox sweep gives each another
    /// push. One that waits for later is left out of the read.
    pub async fn unsettled_messages(
        &self,
        from: Timestamp,
        to: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<OutboundMessage>, DependencyError> {
        let pk = keys::messages_index(self.tenant());
        let items = self
            .query_pages(
                |q| {
                    q.index_name(keys::GSI1)
                        .key_condition_expression("GSI1PK = :pk AND GSI1SK BETWEEN :from AND :to")
                        .filter_expression(
                            "#state IN (:pending, :retrying, :sending) OR (#state = :deferred AND (attribute_not_exists(not_before) OR not_before <= :now))",
                        )
                        .expression_attribute_values(":now", s(now.to_string()))
                        .expression_attribute_names("#state", "state")
                        .expression_attribute_values(":pk", s(&pk))
                        .expression_attribute_values(":from", s(from.to_string()))
                        .expression_attribute_values(":to", s(to.to_string()))
                        .expression_attribute_values(":pending", s(MessageState::Pending.as_str()))
                        .expression_attribute_values(
                            ":retrying",
                            s(MessageState::Retrying.as_str()),
                        )
                        .expression_attribute_values(":sending", s(MessageState::Sending.as_str()))
                        .expression_attribute_values(
                            ":deferred",
                            s(MessageState::Deferred.as_str()),
                        )
                },
                1000,
            )
            .await?;
        items
            .into_iter()
            .map(|i| from_value(AttributeValue::M(i)))
            .collect()
    }

    /// Messages created in `[from, to)` that failed for good (the owner's digest).
    pub async fn failed_messages(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<OutboundMessage>, DependencyError> {
        let pk = keys::messages_index(self.tenant());
        self.query_pages(
            |q| {
                q.index_name(keys::GSI1)
                    .key_condition_expression("GSI1PK = :pk AND GSI1SK BETWEEN :from AND :to")
                    .filter_expression("#state = :failed")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":pk", s(&pk))
                    .expression_attribute_values(":from", s(from.to_string()))
                    .expression_attribute_values(":to", s(to.to_string()))
                    .expression_attribute_values(":failed", s(MessageState::Failed.as_str()))
            },
            1000,
        )
        .await?
        .into_iter()
        .map(|i| from_value(AttributeValue::M(i)))
        .collect()
    }

    /// The kinds of the events recorded in `[from, to)`, published or not (the owner's digest).
    pub async fn event_kinds_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<String>, DependencyError> {
        let pk = keys::events_index(self.tenant());
        Ok(self
            .query_pages(
                |q| {
                    q.index_name(keys::GSI1)
                        .key_condition_expression("GSI1PK = :pk AND GSI1SK BETWEEN :from AND :to")
                        .projection_expression("detail_type")
                        .expression_attribute_values(":pk", s(&pk))
                        .expression_attribute_values(":from", s(keys::sortable_time(from)))
                        .expression_attribute_values(":to", s(keys::sortable_time(to)))
                },
                100_000,
            )
            .await?
            .iter()
            .filter_map(|i| string(i, "detail_type"))
            .collect())
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

    /// An event to publish, recorded with what it says so the outbox sweep can publish it if
    /// the run that recorded it dies first.
    fn event_item(&self, event: &PendingEvent, now: Timestamp, ttl: std::time::Duration) -> Item {
        let (pk, sk) = keys::emitted_event(self.tenant(), &event.id);
        Item::from([
            (keys::PK.to_string(), s(pk)),
            (keys::SK.to_string(), s(sk)),
            (
                keys::GSI1PK.to_string(),
                s(keys::events_index(self.tenant())),
            ),
            (
                keys::GSI1SK.to_string(),
                s(format!("{}#{}", keys::sortable_time(now), event.id)),
            ),
            ("event_id".to_string(), s(&event.id)),
            ("detail_type".to_string(), s(&event.detail_type)),
            ("detail".to_string(), s(&event.detail)),
            ("state".to_string(), s("pending")),
            ("created_at".to_string(), s(now.to_string())),
            (
                keys::TTL_ATTRIBUTE.to_string(),
                n(now.as_second() + ttl.as_secs() as i64),
            ),
        ])
    }

    /// Records the event unless it is recorded. Returns what stood: new, pending (with the
    /// detail recorded first) or published.
    pub async fn claim_event(
        &self,
        event: &PendingEvent,
        now: Timestamp,
        ttl: std::time::Duration,
    ) -> Result<(EventClaim, Option<String>), DependencyError> {
        Ok(
            match self
                .put_new_or_read(self.event_item(event, now, ttl))
                .await?
            {
                Created::New => (EventClaim::New, None),
                Created::Existing(Some(i))
                    if string(&i, "state").as_deref() == Some("published") =>
                {
                    (EventClaim::Published, None)
                }
                Created::Existing(i) => (EventClaim::Pending, i.and_then(|i| string(&i, "detail"))),
            },
        )
    }

    /// The event as part of a business write's transaction.
    pub fn event_in_transaction(
        &self,
        event: &PendingEvent,
        now: Timestamp,
        ttl: std::time::Duration,
    ) -> Result<TransactWriteItem, DependencyError> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(self.event_item(event, now, ttl)))
            .build()
            .map_err(super::build_err)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Events recorded in `[from, to)` and not yet published.
    pub async fn unpublished_events(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<PendingEvent>, DependencyError> {
        let pk = keys::events_index(self.tenant());
        let items = self
            .query_pages(
                |q| {
                    q.index_name(keys::GSI1)
                        .key_condition_expression("GSI1PK = :pk AND GSI1SK BETWEEN :from AND :to")
                        .filter_expression("#state = :pending")
                        .expression_attribute_names("#state", "state")
                        .expression_attribute_values(":pk", s(&pk))
                        .expression_attribute_values(":from", s(keys::sortable_time(from)))
                        .expression_attribute_values(":to", s(keys::sortable_time(to)))
                        .expression_attribute_values(":pending", s("pending"))
                },
                1000,
            )
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                Some(PendingEvent {
                    id: string(item, "event_id")?,
                    detail_type: string(item, "detail_type")?,
                    detail: string(item, "detail")?,
                })
            })
            .collect())
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

/// A timed message listed under its person: which schedule sends it and what it is for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimedMessage {
    pub message_id: String,
    pub schedule: String,
    pub purpose: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<String>,
    pub due: String,
}

/// How long a timed message stays listed after its time (it has gone or been stopped by then).
const TIMED_KEPT_AFTER_DUE_SECS: i64 = 7 * 86_400;

impl Store {
    /// Lists a timed message under its person (before the message itself is written, so an
    /// opt-out can never miss one; a listing whose message was never written stops nothing).
    pub async fn list_timed_message(
        &self,
        phone: &crate::phone::PhoneNumber,
        timed: &TimedMessage,
        due: Timestamp,
    ) -> Result<(), DependencyError> {
        let (pk, sk) = keys::timed_message(self.tenant(), phone, &timed.message_id);
        let AttributeMap(mut item) = AttributeMap::of(timed)?;
        item.insert(keys::PK.into(), s(pk));
        item.insert(keys::SK.into(), s(sk));
        item.insert(
            keys::TTL_ATTRIBUTE.into(),
            n(due.as_second() + TIMED_KEPT_AFTER_DUE_SECS),
        );
        self.put(item).await
    }

    /// The person's timed messages, whatever their state (the messages say that).
    pub async fn timed_messages(
        &self,
        phone: &crate::phone::PhoneNumber,
    ) -> Result<Vec<TimedMessage>, DependencyError> {
        let pk = keys::timed_messages(self.tenant(), phone);
        self.query_pages(
            |q| {
                q.key_condition_expression("PK = :pk")
                    .expression_attribute_values(":pk", s(&pk))
            },
            1_000,
        )
        .await?
        .into_iter()
        .map(|i| from_value(AttributeValue::M(i)))
        .collect()
    }
}

/// How long a digest day's marker is kept.
const DIGEST_DAY_KEPT_SECS: i64 = 35 * 86_400;

impl Store {
    /// Whether the owner's digest of this local day (`2026-11-24`) was settled.
    pub async fn digest_day_settled(&self, day: &str) -> Result<bool, DependencyError> {
        Ok(self
            .get(keys::digest_day(self.tenant(), day), "GetItem")
            .await?
            .is_some())
    }

    /// Records that the day's digest was sent, or had nothing to say (`outcome`).
    pub async fn settle_digest_day(
        &self,
        day: &str,
        outcome: &str,
        now: Timestamp,
    ) -> Result<(), DependencyError> {
        let (pk, sk) = keys::digest_day(self.tenant(), day);
        let item: Item = [
            (keys::PK.to_string(), s(pk)),
            (keys::SK.to_string(), s(sk)),
            ("outcome".to_string(), s(outcome)),
            ("at".to_string(), s(now.to_string())),
            (
                keys::TTL_ATTRIBUTE.to_string(),
                n(now.as_second() + DIGEST_DAY_KEPT_SECS),
            ),
        ]
        .into_iter()
        .collect();
        self.put(item).await
    }
}
