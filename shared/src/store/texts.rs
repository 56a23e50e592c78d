//! The text channel's records: each inbound text once (by Twilio's MessageSid), a person's
//! thread (calls, texts and WhatsApp messages in time order), the consent ledger, the times
//! offered to someone rescheduling by text, and Twilio's SID of each message we sent.

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{
    from_value, keys, n, s, string, AttributeMap, Created, Item, SetClause, Store, Update,
};
use crate::error::DependencyError;
use crate::phone::PhoneNumber;

/// How far an inbound text got, so a redelivery resumes it or does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundClaim {
    New,
    /// Seen before, not finished (the first delivery died): handle it again (every step is
    /// idempotent).
    Unfinished,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the person.
    In,
    /// From us.
    Out,
    /// A call with the voice agent.
    Call,
}

/// One entry of a person's thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadEntry {
    pub at: String,
    pub direction: Direction,
    /// `sms`, `whatsapp`, `phone`, `web_form`.
    pub channel: String,
    /// The text (a call's summary).
    pub body: String,
    /// Twilio's MessageSid, our message id, or the conversation id.
    pub ref_id: String,
}

/// A consent change: an opt-out or an opt-in, where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentChange {
    /// `opt_out` or `opt_in`.
    pub action: String,
    pub channel: String,
    /// `keyword`, `twilio_advanced_opt_out`, `revocation_text`, `twilio_21610`, ...
    pub source: String,
    /// What caused it (a MessageSid, a message id).
    pub ref_id: String,
    pub at: String,
}

impl ConsentChange {
    pub fn opt_out(channel: &str, source: &str, ref_id: &str, at: Timestamp) -> Self {
        Self::new("opt_out", channel, source, ref_id, at)
    }

    pub fn opt_in(channel: &str, source: &str, ref_id: &str, at: Timestamp) -> Self {
        Self::new("opt_in", channel, source, ref_id, at)
    }

    fn new(action: &str, channel: &str, source: &str, ref_id: &str, at: Timestamp) -> Self {
        Self {
            action: action.into(),
            channel: channel.into(),
            source: source.into(),
            ref_id: ref_id.into(),
            at: at.to_string(),
        }
    }
}

/// Times offered to someone who replied R, in the order offered (they answer with a number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescheduleOffer {
    pub booking_id: String,
    /// Slot starts, UTC RFC 3339.
    pub starts: Vec<String>,
    /// The same times as the person read them.
    #[serde(default)]
    pub spoken: Vec<String>,
    /// The R this answered.
    #[serde(default)]
    pub message_sid: String,
    pub offered_at: String,
}

/// An offer is answered within this long, or forgotten.
const OFFER_HOURS: i64 = 48;

impl Store {
    /// Claims an inbound text by its MessageSid. Returns the claim and when the text first
    /// arrived (what its thread entry and any consent change are dated: a redelivery or a
    /// queued retry writes the same entries, and consent changes keep the person's order).
    pub async fn claim_inbound_text(
        &self,
        message_sid: &str,
        now: Timestamp,
        ttl: std::time::Duration,
    ) -> Result<(InboundClaim, Timestamp), DependencyError> {
        let (pk, sk) = keys::inbound_text(self.tenant(), message_sid);
        let item = Item::from([
            (keys::PK.to_string(), s(pk)),
            (keys::SK.to_string(), s(sk)),
            ("state".to_string(), s("received")),
            ("received_at".to_string(), s(now.to_string())),
            (
                keys::TTL_ATTRIBUTE.to_string(),
                n(now.as_second() + ttl.as_secs() as i64),
            ),
        ]);
        Ok(match self.put_new_or_read(item).await? {
            Created::New => (InboundClaim::New, now),
            Created::Existing(found) => {
                let item = found.unwrap_or_default();
                let first = string(&item, "received_at")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(now);
                let claim = if string(&item, "state").as_deref() == Some("done") {
                    InboundClaim::Done
                } else {
                    InboundClaim::Unfinished
                };
                (claim, first)
            }
        })
    }

    /// Marks an inbound text handled, with what was done (for the log of a redelivery).
    pub async fn finish_inbound_text(
        &self,
        message_sid: &str,
        outcome: &str,
        now: Timestamp,
    ) -> Result<(), DependencyError> {
        let mut set = SetClause::default();
        set.set("state", s("done"))
            .set("outcome", s(outcome))
            .set("done_at", s(now.to_string()));
        self.apply_set(keys::inbound_text(self.tenant(), message_sid), set)
            .await
    }

    /// Takes the hold on answering an inbound text, unless another run holds it (a redelivery
    /// of the text, a re-queued job) and its hold has not expired: two runs at once would both
    /// ask the LLM, and its tools (a booking) would run twice. `false`: someone else holds it.
    pub async fn hold_answer(
        &self,
        message_sid: &str,
        now: Timestamp,
        hold_secs: i64,
    ) -> Result<bool, DependencyError> {
        let hold = Update::new(
            keys::answer_hold(self.tenant(), message_sid),
            "SET held_until = :until, #ttl = :expires",
        )
        .only_if("attribute_not_exists(held_until) OR held_until < :now")
        .name("#ttl", keys::TTL_ATTRIBUTE)
        .value(":until", n(now.as_second() + hold_secs))
        .value(":now", n(now.as_second()))
        // The hold outlives any answer; the table's TTL removes it a day later.
        .value(":expires", n(now.as_second() + 86_400));
        Ok(self.update(hold).await?.is_some())
    }

    /// Gives the hold back: a later run finds the reply (or the next attempt queued).
    pub async fn release_answer(&self, message_sid: &str) -> Result<(), DependencyError> {
        let release = Update::new(
            keys::answer_hold(self.tenant(), message_sid),
            "REMOVE held_until",
        );
        self.update(release).await.map(|_| ())
    }

    /// How an inbound text was handled: `None` if never seen, `Some(None)` while it is being
    /// handled, `Some(Some(outcome))` once done.
    pub async fn inbound_outcome(
        &self,
        message_sid: &str,
    ) -> Result<Option<Option<String>>, DependencyError> {
        let item = self
            .get(keys::inbound_text(self.tenant(), message_sid), "GetItem")
            .await?;
        Ok(item.map(|i| string(&i, "outcome")))
    }

    /// Adds an entry to a person's thread (once per `ref_id` and time).
    pub async fn add_to_thread(
        &self,
        phone: &PhoneNumber,
        entry: &ThreadEntry,
    ) -> Result<(), DependencyError> {
        let at: Timestamp = entry
            .at
            .parse()
            .map_err(|e| super::corrupt("thread entry time", e))?;
        let (pk, sk) = keys::thread_entry(self.tenant(), phone, at, &entry.ref_id);
        let AttributeMap(mut item) = AttributeMap::of(entry)?;
        item.insert(keys::PK.into(), s(pk));
        item.insert(keys::SK.into(), s(sk));
        self.put_if_absent(item).await.map(|_| ())
    }

    /// The last `limit` entries of a person's thread, oldest first.
    pub async fn thread(
        &self,
        phone: &PhoneNumber,
        limit: usize,
    ) -> Result<Vec<ThreadEntry>, DependencyError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("PK = :pk AND begins_with(SK, :at)")
            .expression_attribute_values(":pk", s(keys::thread(self.tenant(), phone)))
            .expression_attribute_values(":at", s("AT#"))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 200) as i32)
            .send()
            .await
            .map_err(|e| DependencyError::aws("dynamodb", "Query", &e))?;
        let mut entries: Vec<ThreadEntry> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_value(AttributeValue::M(i)))
            .collect::<Result<_, _>>()?;
        entries.reverse();
        Ok(entries)
    }

    /// Records a consent change in the ledger, then on the contact unless a later change is
    /// there already (a queued START handled after a STOP it preceded leaves the STOP
    /// standing). The ledger is written first, so the contact never says opted out without
    /// the ledger saying why; a repeat writes the same ledger entry again.
    pub async fn change_consent(
        &self,
        phone: &PhoneNumber,
        change: &ConsentChange,
    ) -> Result<(), DependencyError> {
        let at: Timestamp = change
            .at
            .parse()
            .map_err(|e| super::corrupt("consent time", e))?;
        let (pk, sk) = keys::consent(self.tenant(), phone, at, &change.ref_id);
        let AttributeMap(mut entry) = AttributeMap::of(change)?;
        entry.insert(keys::PK.into(), s(pk));
        entry.insert(keys::SK.into(), s(sk));
        self.put(entry).await?;
        let opted_out = change.action == "opt_out";
        let mut set = SetClause::default();
        set.set("phone", s(phone.as_str()))
            .set("tenant", s(self.tenant().as_str()))
            .set("opted_out", AttributeValue::Bool(opted_out))
            .set("consent_changed_at", s(keys::sortable_time(at)))
            .set("consent_source", s(&change.source))
            .set_if_absent("first_seen_at", s(&change.at));
        if opted_out {
            set.set("opted_out_at", s(&change.at))
                .set("opt_out_reason", s(&change.source));
        }
        let update = Update::set(keys::contact(self.tenant(), phone), set)
            .only_if(
                "attribute_not_exists(consent_changed_at) OR consent_changed_at <= :consent_at",
            )
            .value(":consent_at", s(keys::sortable_time(at)));
        if self.update(update).await?.is_none() {
            tracing::info!(
                outcome = "older_consent_change",
                "a later consent change stands"
            );
        }
        Ok(())
    }

    /// The person's consent changes, oldest first.
    pub async fn consent_ledger(
        &self,
        phone: &PhoneNumber,
    ) -> Result<Vec<ConsentChange>, DependencyError> {
        let pk = format!("T#{}#CONSENT#{}", self.tenant(), phone);
        self.query_pages(
            |q| {
                q.key_condition_expression("PK = :pk")
                    .expression_attribute_values(":pk", s(&pk))
            },
            10_000,
        )
        .await?
        .into_iter()
        .map(|i| from_value(AttributeValue::M(i)))
        .collect()
    }

    /// The person wrote on WhatsApp now: their 24-hour window runs from here.
    pub async fn note_whatsapp_inbound(
        &self,
        phone: &PhoneNumber,
        now: Timestamp,
    ) -> Result<(), DependencyError> {
        let mut set = SetClause::default();
        set.set("last_whatsapp_in_at", s(now.to_string()))
            .set("tenant", s(self.tenant().as_str()))
            .set("phone", s(phone.as_str()));
        self.apply_set(keys::contact(self.tenant(), phone), set)
            .await
    }

    /// When the person last wrote on WhatsApp, if ever.
    pub async fn last_whatsapp_inbound(
        &self,
        phone: &PhoneNumber,
    ) -> Result<Option<Timestamp>, DependencyError> {
        let item = self
            .get(keys::contact(self.tenant(), phone), "GetItem")
            .await?;
        Ok(item
            .and_then(|i| string(&i, "last_whatsapp_in_at"))
            .and_then(|t| t.parse().ok()))
    }

    pub async fn save_reschedule_offer(
        &self,
        phone: &PhoneNumber,
        offer: &RescheduleOffer,
    ) -> Result<(), DependencyError> {
        let json = serde_json::to_string(offer).map_err(|e| super::corrupt("offer", e))?;
        let mut set = SetClause::default();
        set.set("reschedule_offer", s(json));
        self.apply_set(keys::contact(self.tenant(), phone), set)
            .await
    }

    /// The times offered to the person, if an offer is open.
    pub async fn reschedule_offer(
        &self,
        phone: &PhoneNumber,
        now: Timestamp,
    ) -> Result<Option<RescheduleOffer>, DependencyError> {
        let item = self
            .get(keys::contact(self.tenant(), phone), "GetItem")
            .await?;
        let offer: Option<RescheduleOffer> = item
            .and_then(|i| string(&i, "reschedule_offer"))
            .and_then(|j| serde_json::from_str(&j).ok());
        Ok(offer.filter(|o| {
            o.offered_at
                .parse::<Timestamp>()
                .is_ok_and(|at| now.as_second() - at.as_second() < OFFER_HOURS * 3600)
        }))
    }

    pub async fn clear_reschedule_offer(&self, phone: &PhoneNumber) -> Result<(), DependencyError> {
        let clear = Update::new(
            keys::contact(self.tenant(), phone),
            "REMOVE reschedule_offer",
        )
        .only_if("attribute_exists(PK)");
        self.update(clear).await.map(|_| ())
    }

    /// Remembers which of our messages a Twilio SID is.
    pub async fn remember_twilio_sid(
        &self,
        twilio_sid: &str,
        message_id: &str,
    ) -> Result<(), DependencyError> {
        let (pk, sk) = keys::twilio_sid(self.tenant(), twilio_sid);
        let item = Item::from([
            (keys::PK.to_string(), s(pk)),
            (keys::SK.to_string(), s(sk)),
            ("message_id".to_string(), s(message_id)),
        ]);
        self.put_if_absent(item).await.map(|_| ())
    }

    pub async fn message_of_twilio_sid(
        &self,
        twilio_sid: &str,
    ) -> Result<Option<String>, DependencyError> {
        let item = self
            .get(keys::twilio_sid(self.tenant(), twilio_sid), "GetItem")
            .await?;
        Ok(item.and_then(|i| string(&i, "message_id")))
    }
}
