//! Intake records: one per (conversation, webhook type). They make redeliveries no-ops and
//! let only one worker process an event at a time.

use jiff::Timestamp;

use super::{is_condition_failed, keys, n, s, string, Store};
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
        let put = self
            .client()
            .put_item()
            .table_name(self.table())
            .item(keys::PK, s(&pk))
            .item(keys::SK, s(&sk))
            .item("state", s(RECEIVED))
            .item("raw_key", s(raw_key))
            .item("received_at", s(now.to_string()))
            .item(
                keys::TTL_ATTRIBUTE,
                n(now.as_second() + ttl.as_secs() as i64),
            )
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claim::New),
            Err(e) if is_condition_failed(&e) => {
                let item = self.get((pk, sk), "GetItem").await?;
                Ok(
                    match item.as_ref().and_then(|i| string(i, "state")).as_deref() {
                        Some(DONE) => Claim::Done,
                        _ => Claim::Pending,
                    },
                )
            }
            Err(e) => Err(DependencyError::aws("dynamodb", "PutItem", &e)),
        }
    }

    /// Takes the processing lease for `lease_secs`, unless it is held or the work is done.
    pub async fn lease_inbox(
        &self,
        conversation: &ConversationId,
        event_type: &str,
        now: Timestamp,
        lease_secs: i64,
    ) -> Result<Lease, DependencyError> {
        let (pk, sk) = keys::inbox(self.tenant(), conversation, event_type);
        let update = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, s(&pk))
            .key(keys::SK, s(&sk))
            .update_expression("SET lease_until = :until ADD attempts :one")
            .condition_expression(
                "attribute_exists(PK) AND #state <> :done AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":until", n(now.as_second() + lease_secs))
            .expression_attribute_values(":now", n(now.as_second()))
            .expression_attribute_values(":done", s(DONE))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        match update {
            Ok(_) => Ok(Lease::Acquired),
            Err(e) if is_condition_failed(&e) => {
                let item = self.get((pk, sk), "GetItem").await?;
                Ok(match item {
                    None => Lease::Missing,
                    Some(i) if string(&i, "state").as_deref() == Some(DONE) => Lease::Done,
                    Some(_) => Lease::Busy,
                })
            }
            Err(e) => Err(DependencyError::aws("dynamodb", "UpdateItem", &e)),
        }
    }

    /// Gives the lease back after a failure, so a retry need not wait for it to expire.
    pub async fn release_inbox(
        &self,
        conversation: &ConversationId,
        event_type: &str,
    ) -> Result<(), DependencyError> {
        let (pk, sk) = keys::inbox(self.tenant(), conversation, event_type);
        self.client()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .update_expression("REMOVE lease_until")
            .condition_expression("attribute_exists(PK)")
            .send()
            .await
            .map(|_| ())
            .or_else(|e| {
                if is_condition_failed(&e) {
                    Ok(())
                } else {
                    Err(DependencyError::aws("dynamodb", "UpdateItem", &e))
                }
            })
    }

    pub async fn finish_inbox(
        &self,
        conversation: &ConversationId,
        event_type: &str,
        outcome: &str,
        now: Timestamp,
    ) -> Result<(), DependencyError> {
        let (pk, sk) = keys::inbox(self.tenant(), conversation, event_type);
        self.client()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .update_expression(
                "SET #state = :done, outcome = :outcome, done_at = :now REMOVE lease_until",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":done", s(DONE))
            .expression_attribute_values(":outcome", s(outcome))
            .expression_attribute_values(":now", s(now.to_string()))
            .send()
            .await
            .map_err(|e| DependencyError::aws("dynamodb", "UpdateItem", &e))?;
        Ok(())
    }

    /// Whether this event was already processed to the end.
    pub async fn inbox_done(
        &self,
        conversation: &ConversationId,
        event_type: &str,
    ) -> Result<bool, DependencyError> {
        let item = self
            .get(
                keys::inbox(self.tenant(), conversation, event_type),
                "GetItem",
            )
            .await?;
        Ok(item.is_some_and(|i| string(&i, "state").as_deref() == Some(DONE)))
    }

    /// Where the raw body of an intake record is stored.
    pub async fn inbox_raw_key(
        &self,
        conversation: &ConversationId,
        event_type: &str,
    ) -> Result<Option<String>, DependencyError> {
        let item = self
            .get(
                keys::inbox(self.tenant(), conversation, event_type),
                "GetItem",
            )
            .await?;
        Ok(item.and_then(|i| string(&i, "raw_key")))
    }
}
