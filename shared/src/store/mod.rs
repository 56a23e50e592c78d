//! DynamoDB adapter: the system of record. One table; key formats live in [`keys`].

pub mod bookings;
pub mod calls;
pub mod contacts;
pub mod dispatch;
pub mod flags;
pub mod inbox;
pub mod keys;
pub mod messages;
pub mod tasks;
pub mod texts;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, KeysAndAttributes, ReturnValue, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::DependencyError;
use crate::ids::TenantId;
use crate::tenant::TenantConfig;

pub type Item = HashMap<String, AttributeValue>;
/// Values for an expression's `:placeholders`.
pub type Values = HashMap<String, AttributeValue>;

/// What a put-if-absent found.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    New,
    /// An item with that key was there: as it is now (`None` if it went meanwhile).
    Existing(Option<Item>),
}

/// One UpdateItem: an expression, an optional condition, and their placeholders.
#[derive(Debug, Clone)]
pub struct Update {
    key: (String, String),
    expression: String,
    condition: Option<String>,
    names: HashMap<String, String>,
    values: Values,
    return_new: bool,
}

impl Update {
    pub fn new(key: (String, String), expression: impl Into<String>) -> Self {
        Self {
            key,
            expression: expression.into(),
            condition: None,
            names: HashMap::new(),
            values: HashMap::new(),
            return_new: false,
        }
    }

    /// A `SET …` built from name/value pairs.
    pub fn set(key: (String, String), set: SetClause) -> Self {
        let (expression, names, values) = set.into_parts();
        Self {
            names,
            values,
            ..Self::new(key, expression)
        }
    }

    /// Adds a clause (`ADD …`, `REMOVE …`) after the expression so far.
    pub fn then(mut self, clause: &str) -> Self {
        self.expression = format!("{} {clause}", self.expression);
        self
    }

    pub fn only_if(mut self, condition: impl Into<String>) -> Self {
        self.condition = Some(condition.into());
        self
    }

    pub fn name(mut self, placeholder: &str, name: &str) -> Self {
        self.names.insert(placeholder.into(), name.into());
        self
    }

    pub fn value(mut self, placeholder: &str, v: AttributeValue) -> Self {
        self.values.insert(placeholder.into(), v);
        self
    }

    /// Asks for the item's attributes after the update.
    pub fn returning_new(mut self) -> Self {
        self.return_new = true;
        self
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
    tenant: TenantId,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>, tenant: TenantId) -> Self {
        Self {
            client,
            table: table.into(),
            tenant,
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub async fn get(
        &self,
        key: (String, String),
        op: &'static str,
    ) -> Result<Option<Item>, DependencyError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, s(key.0))
            .key(keys::SK, s(key.1))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DependencyError::aws("dynamodb", op, &e))?;
        Ok(out.item)
    }

    /// Reads several items by key with strongly consistent reads (BatchGetItem, 100 keys a
    /// request), in no particular order; missing ones are simply absent. Keys DynamoDB leaves
    /// unprocessed are asked for again, twice at most.
    pub async fn get_many(
        &self,
        wanted: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Vec<Item>, DependencyError> {
        let wanted: Vec<Item> = wanted
            .into_iter()
            .map(|(pk, sk)| {
                HashMap::from([(keys::PK.to_string(), s(pk)), (keys::SK.to_string(), s(sk))])
            })
            .collect();
        let mut found = Vec::new();
        for chunk in wanted.chunks(100) {
            let keys_and_attributes = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .map_err(|e| {
                    DependencyError::new("dynamodb", "BatchGetItem", "Build", e.to_string())
                })?;
            let mut request = Some(HashMap::from([(self.table.clone(), keys_and_attributes)]));
            for _ in 0..3 {
                let Some(items) = request.take().filter(|r| !r.is_empty()) else {
                    break;
                };
                let out = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                    .map_err(|e| DependencyError::aws("dynamodb", "BatchGetItem", &e))?;
                found.extend(
                    out.responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                request = out.unprocessed_keys;
            }
        }
        Ok(found)
    }

    /// Every page of a query (as `query` sets it up), up to `max_items` items.
    pub async fn query_pages(
        &self,
        query: impl Fn(
            aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        max_items: usize,
    ) -> Result<Vec<Item>, DependencyError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = query(self.client.query().table_name(&self.table))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| DependencyError::aws("dynamodb", "Query", &e))?;
            found.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && found.len() < max_items => start = Some(k),
                _ => break,
            }
        }
        Ok(found)
    }

    /// Puts an item, replacing any with its key (for items whose key says all they are).
    pub async fn put(&self, item: Item) -> Result<(), DependencyError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| DependencyError::aws("dynamodb", "PutItem", &e))?;
        Ok(())
    }

    /// Puts an item unless one with its key exists. Returns whether it was put.
    pub async fn put_if_absent(&self, item: Item) -> Result<bool, DependencyError> {
        self.put_if(item, "attribute_not_exists(PK)", Values::new())
            .await
    }

    /// Puts an item if `condition` holds (with `values` for its placeholders). Returns whether
    /// it was put.
    pub async fn put_if(
        &self,
        item: Item,
        condition: &str,
        values: Values,
    ) -> Result<bool, DependencyError> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(DependencyError::aws("dynamodb", "PutItem", &e)),
        }
    }

    /// Puts an item unless one with its key exists; if one does, reads it back, so the caller
    /// learns the state that stood in its way (a repeat finds the first one's outcome).
    pub async fn put_new_or_read(&self, item: Item) -> Result<Created, DependencyError> {
        let key = (
            string(&item, keys::PK).unwrap_or_default(),
            string(&item, keys::SK).unwrap_or_default(),
        );
        if self.put_if_absent(item).await? {
            return Ok(Created::New);
        }
        Ok(Created::Existing(self.get(key, "GetItem").await?))
    }

    /// Runs an UpdateItem. `None` when its condition did not hold (nothing was written);
    /// otherwise the item's attributes after the update, if the update asked for them.
    pub async fn update(&self, update: Update) -> Result<Option<Item>, DependencyError> {
        let Update {
            key,
            expression,
            condition,
            names,
            values,
            return_new,
        } = update;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(key.0))
            .key(keys::SK, s(key.1))
            .update_expression(expression)
            .set_condition_expression(condition)
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .set_return_values(return_new.then_some(ReturnValue::AllNew))
            .send()
            .await;
        match out {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
            Err(e) if is_condition_failed(&e) => Ok(None),
            Err(e) => Err(DependencyError::aws("dynamodb", "UpdateItem", &e)),
        }
    }

    /// Runs a TransactWriteItems. `Ok(Err(reasons))` when DynamoDB cancelled it (a condition
    /// failed, or another transaction was on the same items): one reason per item, in order.
    pub async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Vec<CancellationReason>>, DependencyError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match out {
            Ok(_) => Ok(Ok(())),
            Err(e) => match e.as_service_error() {
                Some(E::TransactionCanceledException(t)) => {
                    Ok(Err(t.cancellation_reasons().to_vec()))
                }
                _ => Err(DependencyError::aws("dynamodb", "TransactWriteItems", &e)),
            },
        }
    }

    /// Applies an unconditional `SET …` to one item (creating it if absent).
    pub async fn apply_set(
        &self,
        key: (String, String),
        set: SetClause,
    ) -> Result<(), DependencyError> {
        self.update(Update::set(key, set)).await.map(|_| ())
    }

    /// Writes the tenant's configuration (from `prompts/<tenant>/`).
    pub async fn put_tenant_config(
        &self,
        config: &TenantConfig,
        source: &str,
        now: jiff::Timestamp,
    ) -> Result<(), DependencyError> {
        let (pk, sk) = keys::tenant_config(&self.tenant);
        let json = serde_json::to_string(config).map_err(|e| corrupt("tenant config", e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(keys::PK, s(pk))
            .item(keys::SK, s(sk))
            .item("config_json", s(json))
            .item("source", s(source))
            .item("updated_at", s(now.to_string()))
            .send()
            .await
            .map_err(|e| DependencyError::aws("dynamodb", "PutItem", &e))?;
        Ok(())
    }

    pub async fn get_tenant_config(&self) -> Result<Option<TenantConfig>, DependencyError> {
        let Some(item) = self
            .get(keys::tenant_config(&self.tenant), "GetItem")
            .await?
        else {
            return Ok(None);
        };
        let json = string(&item, "config_json")
            .ok_or_else(|| corrupt("tenant config", "no config_json"))?;
        let config = serde_json::from_str::<TenantConfig>(&json)
            .map_err(|e| corrupt("tenant config", e))?
            .upgraded();
        config
            .validate("tenant config item")
            .map_err(|e| corrupt("tenant config", e))?;
        Ok(Some(config))
    }
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

pub fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    }
}

pub fn boolean(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

/// Any serialisable value as an attribute (maps, lists, JSON values).
pub fn value<T: Serialize>(v: &T) -> Result<AttributeValue, DependencyError> {
    serde_dynamo::to_attribute_value(v).map_err(|e| corrupt("attribute", e))
}

/// A struct's serialised attributes, by name.
pub struct AttributeMap(pub Item);

impl AttributeMap {
    pub fn of<T: Serialize>(v: &T) -> Result<Self, DependencyError> {
        serde_dynamo::to_item(v)
            .map(AttributeMap)
            .map_err(|e| corrupt("item", e))
    }
}

pub fn from_value<T: DeserializeOwned>(v: AttributeValue) -> Result<T, DependencyError> {
    serde_dynamo::from_attribute_value(v).map_err(|e| corrupt("attribute", e))
}

pub fn corrupt(what: &str, e: impl std::fmt::Display) -> DependencyError {
    DependencyError::new("dynamodb", "decode", "Corrupt", format!("{what}: {e}"))
}

/// An UpdateItem `SET a = :a, b = :b` built from name/value pairs, with placeholders for both
/// (attribute names like `status` are reserved words).
#[derive(Default)]
pub struct SetClause {
    parts: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl SetClause {
    pub fn set(&mut self, name: &str, v: AttributeValue) -> &mut Self {
        let i = self.parts.len();
        self.parts.push(format!("#f{i} = :v{i}"));
        self.names.insert(format!("#f{i}"), name.to_string());
        self.values.insert(format!(":v{i}"), v);
        self
    }

    pub fn set_opt(&mut self, name: &str, v: Option<AttributeValue>) -> &mut Self {
        if let Some(v) = v {
            self.set(name, v);
        }
        self
    }

    /// Keeps an existing value; sets it only when absent.
    pub fn set_if_absent(&mut self, name: &str, v: AttributeValue) -> &mut Self {
        let i = self.parts.len();
        self.parts
            .push(format!("#f{i} = if_not_exists(#f{i}, :v{i})"));
        self.names.insert(format!("#f{i}"), name.to_string());
        self.values.insert(format!(":v{i}"), v);
        self
    }

    pub fn expression(&self) -> String {
        format!("SET {}", self.parts.join(", "))
    }

    pub fn into_parts(
        self,
    ) -> (
        String,
        HashMap<String, String>,
        HashMap<String, AttributeValue>,
    ) {
        let e = format!("SET {}", self.parts.join(", "));
        (e, self.names, self.values)
    }
}

/// Whether the transaction item at `index` was the one whose condition failed.
pub fn failed_at(reasons: &[CancellationReason], index: usize) -> bool {
    reasons
        .get(index)
        .and_then(|r| r.code())
        .is_some_and(|c| c == "ConditionalCheckFailed")
}

/// Whether a transaction was cancelled because another one was touching the same items.
pub fn in_conflict(reasons: &[CancellationReason]) -> bool {
    reasons
        .iter()
        .any(|r| r.code() == Some("TransactionConflict"))
}

/// Builds one transaction item (a builder only fails when a required part is missing).
pub fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> DependencyError {
    DependencyError::new("dynamodb", "TransactWriteItems", "Build", e.to_string())
}

/// Whether an SDK error is DynamoDB's "condition not met".
pub fn is_condition_failed<E, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}
