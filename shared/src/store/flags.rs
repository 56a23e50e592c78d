//! Quality flags and the scan's bookkeeping.
//!
//! A flag sits in its call's partition (`FLAG#<rule>`), so a call's drill-down is one Query, and
//! is listed by status, newest first, through GSI1. Its key is derived from the call and the
//! rule: a re-scan finds the flag there and writes nothing.
//!
//! The scan reads calls in the order their transcripts were stored (a `SCAN` ticket per call,
//! rewritten whenever a transcript is stored), not the order they ended: a transcript that
//! arrives hours late is still after the watermark.

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{from_value, keys, s, string, AttributeMap, Item, Store, Update};
use crate::error::DependencyError;
use crate::ids::ConversationId;
use crate::quality::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagStatus {
    Open,
    Confirmed,
    Dismissed,
}

impl FlagStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Confirmed => "confirmed",
            Self::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Confirmed, Self::Dismissed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    /// `<conversation>.<rule>`: one flag per rule per call.
    pub flag_id: String,
    pub tenant: String,
    pub conversation_id: String,
    pub rule_id: String,
    pub rule_kind: String,
    pub severity: Severity,
    /// The rule's description, as it read when the flag was raised.
    pub description: String,
    /// The offending turn's index in the transcript; absent for whole-call findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    pub excerpt: String,
    pub status: FlagStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When the call ended (UTC, RFC 3339).
    pub call_ended_at: String,
    pub raised_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
}

impl Flag {
    pub fn id_of(conversation: &str, rule_id: &str) -> String {
        format!("{conversation}.{rule_id}")
    }
}

/// A call waiting for the scan: its conversation and its place in the scan order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanTicket {
    pub conversation_id: String,
    /// `<stored at>#<conversation>`: the watermark moves over these.
    pub position: String,
}

/// The position just before anything stored at `at` (for `scan --since`).
pub fn position_at(at: Timestamp) -> String {
    format!("{}#", keys::sortable_time(at))
}

/// Sorts before every position (`<time>#<conversation>`, and times start with a digit).
pub const BEFORE_EVERY_CALL: &str = "0";

impl Store {
    /// Puts the call in the scan order as of `now` (again, when a transcript is stored again).
    pub async fn queue_call_for_scan(
        &self,
        conversation: &ConversationId,
        now: Timestamp,
    ) -> Result<(), DependencyError> {
        let (pk, _) = keys::call(self.tenant(), conversation);
        let item = Item::from([
            (keys::PK.to_string(), s(pk)),
            (keys::SK.to_string(), s("SCAN")),
            (keys::GSI1PK.to_string(), s(keys::scan_index(self.tenant()))),
            (
                keys::GSI1SK.to_string(),
                s(format!("{}#{conversation}", keys::sortable_time(now))),
            ),
            ("conversation_id".to_string(), s(conversation.as_str())),
        ]);
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| DependencyError::aws("dynamodb", "PutItem", &e))?;
        Ok(())
    }

    /// Calls whose place in the scan order is after `after` and not after `until`, in order;
    /// one page of at most `limit`.
    pub async fn calls_to_scan(
        &self,
        after: &str,
        until: &str,
        limit: i32,
    ) -> Result<Vec<ScanTicket>, DependencyError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK BETWEEN :after AND :until")
            .expression_attribute_values(":pk", s(keys::scan_index(self.tenant())))
            .expression_attribute_values(":after", s(after))
            .expression_attribute_values(":until", s(until))
            .limit(limit)
            .send()
            .await
            .map_err(|e| DependencyError::aws("dynamodb", "Query", &e))?;
        Ok(out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|i| {
                Some(ScanTicket {
                    conversation_id: string(i, "conversation_id")?,
                    position: string(i, keys::GSI1SK)?,
                })
            })
            // BETWEEN is inclusive; the watermark itself was scanned.
            .filter(|t| t.position.as_str() > after)
            .collect())
    }

    /// Where the last scan got to; before the first, a position before every call (DynamoDB
    /// refuses an empty key value).
    pub async fn scan_watermark(&self) -> Result<String, DependencyError> {
        let item = self
            .get(keys::scan_watermark(self.tenant()), "GetItem")
            .await?;
        Ok(item
            .and_then(|i| string(&i, "through"))
            .unwrap_or_else(|| BEFORE_EVERY_CALL.to_string()))
    }

    /// Moves the watermark forward to `position`, never back (two overlapping runs cannot undo
    /// each other's progress).
    pub async fn advance_scan_watermark(
        &self,
        position: &str,
        now: Timestamp,
    ) -> Result<(), DependencyError> {
        let update = Update::new(
            keys::scan_watermark(self.tenant()),
            "SET through = :p, updated_at = :now",
        )
        .only_if("attribute_not_exists(through) OR through < :p")
        .value(":p", s(position))
        .value(":now", s(now.to_string()));
        self.update(update).await.map(|_| ())
    }

    /// Writes a flag unless the call already has one for its rule. Returns whether it is new.
    pub async fn raise_flag(&self, flag: &Flag) -> Result<bool, DependencyError> {
        let conversation =
            ConversationId::parse(&flag.conversation_id).map_err(|e| super::corrupt("flag", e))?;
        let AttributeMap(mut item) = AttributeMap::of(flag)?;
        let (pk, sk) = keys::flag(self.tenant(), &conversation, &flag.rule_id);
        item.insert(keys::PK.into(), s(pk));
        item.insert(keys::SK.into(), s(sk));
        item.insert(
            keys::GSI1PK.into(),
            s(keys::flags_index(self.tenant(), flag.status.as_str())),
        );
        item.insert(
            keys::GSI1SK.into(),
            s(format!("{}#{}", flag.raised_at, flag.flag_id)),
        );
        self.put_if_absent(item).await
    }

    /// The flags of one call, in rule order of their ids.
    pub async fn flags_of_call(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<Flag>, DependencyError> {
        let (pk, _) = keys::call(self.tenant(), conversation);
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("PK = :pk AND begins_with(SK, :flag)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":flag", s("FLAG#"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DependencyError::aws("dynamodb", "Query", &e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_value(AttributeValue::M(i)))
            .collect()
    }
}
