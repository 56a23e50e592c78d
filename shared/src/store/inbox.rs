//! Intake records: one per (conversation, webhook type). They make redeliveries no-ops and
//! let only one worker process an event at a time.

use jiff::Timestamp;

use super::{keys, n, s, string, Created, Item, Store, Update};
use crate::error::DependencyError;
use crate::ids::ConversationId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First delivery of this event.
    New,
    /// Seen before and not yet fully processed.
    Pending,
    /// Already processed: nothing to do.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    Acquired,
    /// Someone else is processing it right now.
    Busy,
    Done,
    /// No intake record (should not happen: intake writes it before queuing).
    Missing,
}

const DONE: &str = "done";
const RECEIVED: &str = "received";

impl Store {
    pub async fn claim_inbox(
        &self,
        conversation: &ConversationId,
        event_type: &str,
        raw_key: &str,
        now: Timestamp,
        ttl: std::time::Duration,
    ) -> Result<Claim, DependencyError> {
        let (pk, sk) = keys::inbox(self.tenant(), conversation, event_type);
        let item = Item::from([
            (keys::PK.to_string(), s(pk)),
            (keys::SK.to_string(), s(sk)),
            ("state".to_string(), s(RECEIVED)),
            ("raw_key".to_string(), s(raw_key)),
            ("received_at".to_string(), s(now.to_string())),
            (
                keys::TTL_ATTRIBUTE.to_string(),
                n(now.as_second() + ttl.as_secs() as i64),
            ),
        ]);
        Ok(match self.put_new_or_read(item).await? {
            Created::New => Claim::New,
            Created::Existing(item) if is_done(item.as_ref()) => Claim::Done,
            Created::Existing(_) => Claim::Pending,
        })
    }

    /// Takes the processing lease for `lease_secs`, unless it is held or the work is done.
    pub async fn lease_inbox(
        &self,
        conversation: &ConversationId,
        event_type: &str,
        now: Timestamp,
        lease_secs: i64,
    ) -> Result<Lease, DependencyError> {
        let key = keys::inbox(self.tenant(), conversation, event_type);
        let lease = Update::new(key.clone(), "SET lease_until = :until ADD attempts :one")
            .only_if("attribute_exists(PK) AND #state <> :done AND (attribute_not_exists(lease_until) OR lease_until < :now)")
            .name("#state", "state")
            .value(":until", n(now.as_second() + lease_secs))
            .value(":now", n(now.as_second()))
            .value(":done", s(DONE))
            .value(":one", n(1));
        if self.update(lease).await?.is_some() {
            return Ok(Lease::Acquired);
        }
        Ok(match self.get(key, "GetItem").await? {
            None => Lease::Missing,
            Some(i) if is_done(Some(&i)) => Lease::Done,
            Some(_) => Lease::Busy,
        })
    }

    /// Gives the lease back after a failure, so a retry need not wait for it to expire.
    pub async fn release_inbox(
        &self,
        conversation: &ConversationId,
        event_type: &str,
    ) -> Result<(), DependencyError> {
        let key = keys::inbox(self.tenant(), conversation, event_type);
        let release = Update::new(key, "REMOVE lease_until").only_if("attribute_exists(PK)");
        self.update(release).await.map(|_| ())
    }

    pub async fn finish_inbox(
        &self,
        conversation: &ConversationId,
        event_type: &str,
        outcome: &str,
        now: Timestamp,
    ) -> Result<(), DependencyError> {
        let key = keys::inbox(self.tenant(), conversation, event_type);
        let finish = Update::new(
            key,
            "SET #state = :done, outcome = :outcome, done_at = :now REMOVE lease_until",
        )
        .name("#state", "state")
        .value(":done", s(DONE))
        .value(":outcome", s(outcome))
        .value(":now", s(now.to_string()));
        self.update(finish).await.map(|_| ())
    }

    /// Whether this event was already processed to the end.
    pub async fn inbox_done(
        &self,
        conversation: &ConversationId,
        event_type: &str,
    ) -> Result<bool, DependencyError> {
        let item = self.inbox_item(conversation, event_type).await?;
        Ok(is_done(item.as_ref()))
    }

    /// Where the raw body of an intake record is stored.
    pub async fn inbox_raw_key(
        &self,
        conversation: &ConversationId,
        event_type: &str,
    ) -> Result<Option<String>, DependencyError> {
        let item = self.inbox_item(conversation, event_type).await?;
        Ok(item.and_then(|i| string(&i, "raw_key")))
    }

    async fn inbox_item(
        &self,
        conversation: &ConversationId,
        event_type: &str,
    ) -> Result<Option<Item>, DependencyError> {
        self.get(
            keys::inbox(self.tenant(), conversation, event_type),
            "GetItem",
        )
        .await
    }
}

fn is_done(item: Option<&Item>) -> bool {
    item.and_then(|i| string(i, "state")).as_deref() == Some(DONE)
}
