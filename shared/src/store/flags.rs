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

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::{
    build_err, failed_at, from_value, keys, n, number, s, string, AttributeMap, Item, Store, Update,
};
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
    /// As long as its call is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl Flag {
    pub fn id_of(conversation: &str, rule_id: &str) -> String {
        format!("{conversation}.{rule_id}")
    }
}

/// A reviewer's decision on a flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub status: FlagStatus,
    pub reviewer: String,
    pub note: Option<String>,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    Now,
    /// Someone resolved it first (or it was never open): read it to see how.
    WasNotOpen,
}

/// How a rule has fared with reviewers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCounts {
    pub rule_id: String,
    pub raised: u64,
    pub confirmed: u64,
    pub dismissed: u64,
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

    /// Writes a flag unless the call already has one for its rule, and counts it as raised for
    /// its rule, in one transaction. Returns whether it is new.
    pub async fn raise_flag(&self, flag: &Flag) -> Result<bool, DependencyError> {
        let AttributeMap(item) = self.flag_item(flag)?;
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(build_err)?;
        let count = self.count_update(&flag.rule_id, "raised")?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(true),
            Err(reasons) if failed_at(&reasons, 0) => Ok(false),
            Err(_) => Err(DependencyError::new(
                "dynamodb",
                "TransactWriteItems",
                "TransactionCanceled",
                "raising a flag was cancelled by a concurrent write; the next scan retries",
            )),
        }
    }

    fn flag_item(&self, flag: &Flag) -> Result<AttributeMap, DependencyError> {
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
        Ok(AttributeMap(item))
    }

    /// Adds one to a rule's `raised`, `confirmed` or `dismissed` count.
    fn count_update(
        &self,
        rule_id: &str,
        counter: &str,
    ) -> Result<aws_sdk_dynamodb::types::Update, DependencyError> {
        let (pk, sk) = keys::rule_counts(self.tenant(), rule_id);
        aws_sdk_dynamodb::types::Update::builder()
            .table_name(self.table())
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .update_expression("SET rule_id = :rule ADD #counter :one")
            .expression_attribute_names("#counter", counter)
            .expression_attribute_values(":rule", s(rule_id))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(build_err)
    }

    pub async fn get_flag(
        &self,
        conversation: &ConversationId,
        rule_id: &str,
    ) -> Result<Option<Flag>, DependencyError> {
        let item = self
            .get(keys::flag(self.tenant(), conversation, rule_id), "GetItem")
            .await?;
        item.map(|i| from_value(AttributeValue::M(i))).transpose()
    }

    /// Resolves an open flag (status, reviewer, note, time) and counts it for its rule, in one
    /// transaction; the flag moves to its new status's list.
    pub async fn resolve_flag(
        &self,
        flag: &Flag,
        resolution: &Resolution,
    ) -> Result<Resolved, DependencyError> {
        let conversation =
            ConversationId::parse(&flag.conversation_id).map_err(|e| super::corrupt("flag", e))?;
        let (pk, sk) = keys::flag(self.tenant(), &conversation, &flag.rule_id);
        let status = resolution.status.as_str();
        // A resolution without a note clears any earlier one rather than keeping it.
        let note = match &resolution.note {
            Some(_) => ", note = :note",
            None => " REMOVE note",
        };
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(self.table())
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .update_expression(format!(
                "SET #status = :status, reviewer = :reviewer, resolved_at = :now, GSI1PK = :list{note}"
            ))
            .condition_expression("#status = :open")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status))
            .expression_attribute_values(":open", s(FlagStatus::Open.as_str()))
            .expression_attribute_values(":reviewer", s(&resolution.reviewer))
            .expression_attribute_values(":now", s(resolution.at.to_string()))
            .expression_attribute_values(":list", s(keys::flags_index(self.tenant(), status)));
        let update = match &resolution.note {
            Some(text) => update.expression_attribute_values(":note", s(text)),
            None => update,
        };
        let count = self.count_update(&flag.rule_id, status)?;
        let items = vec![
            TransactWriteItem::builder()
                .update(update.build().map_err(build_err)?)
                .build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(Resolved::Now),
            Err(reasons) if failed_at(&reasons, 0) => Ok(Resolved::WasNotOpen),
            Err(_) => Err(DependencyError::new(
                "dynamodb",
                "TransactWriteItems",
                "TransactionCanceled",
                "resolving a flag was cancelled by a concurrent write; retry",
            )),
        }
    }

    /// One page of a status's flags, newest first, optionally of one severity; and where the
    /// next page starts (`None` at the end).
    pub async fn list_flags(
        &self,
        status: FlagStatus,
        severity: Option<Severity>,
        start: Option<Item>,
        limit: i32,
    ) -> Result<(Vec<Flag>, Option<Item>), DependencyError> {
        let mut query = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :list")
            .expression_attribute_values(
                ":list",
                s(keys::flags_index(self.tenant(), status.as_str())),
            )
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start);
        if let Some(severity) = severity {
            query = query
                .filter_expression("severity = :severity")
                .expression_attribute_values(":severity", s(severity.as_str()));
        }
        let out = query
            .send()
            .await
            .map_err(|e| DependencyError::aws("dynamodb", "Query", &e))?;
        let flags = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_value(AttributeValue::M(i)))
            .collect::<Result<Vec<Flag>, _>>()?;
        Ok((flags, out.last_evaluated_key))
    }

    /// How many flags stand in a status (the owner's digest counts the open ones).
    pub async fn count_flags(&self, status: FlagStatus) -> Result<usize, DependencyError> {
        let mut count = 0;
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(keys::GSI1)
                .key_condition_expression("GSI1PK = :list")
                .expression_attribute_values(
                    ":list",
                    s(keys::flags_index(self.tenant(), status.as_str())),
                )
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| DependencyError::aws("dynamodb", "Query", &e))?;
            count += out.count as usize;
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(count),
            }
        }
    }

    /// Per rule: how many flags were raised, confirmed and dismissed.
    pub async fn rule_counts(&self) -> Result<Vec<RuleCounts>, DependencyError> {
        let (pk, _) = keys::rule_counts(self.tenant(), "");
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(pk))
            .send()
            .await
            .map_err(|e| DependencyError::aws("dynamodb", "Query", &e))?;
        Ok(out
            .items
            .unwrap_or_default()
            .iter()
            .map(|i| RuleCounts {
                rule_id: string(i, "rule_id").unwrap_or_default(),
                raised: number(i, "raised").unwrap_or(0) as u64,
                confirmed: number(i, "confirmed").unwrap_or(0) as u64,
                dismissed: number(i, "dismissed").unwrap_or(0) as u64,
            })
            .collect())
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
