//! DynamoDB adapter: the system of record. One table; key formats live in [`keys`].

pub mod bookings;
pub mod calls;
pub mod contacts;
pub mod dispatch;
pub mod inbox;
pub mod keys;
pub mod messages;
pub mod tasks;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::DependencyError;
use crate::ids::TenantId;
use crate::tenant::TenantConfig;

pub type Item = HashMap<String, AttributeValue>;

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

    /// Puts an item unless one with its key exists. Returns whether it was put.
    pub async fn put_if_absent(&self, item: Item) -> Result<bool, DependencyError> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(DependencyError::aws("dynamodb", "PutItem", &e)),
        }
    }

    /// Applies an unconditional `SET …` to one item (creating it if absent).
    pub async fn apply_set(
        &self,
        key: (String, String),
        set: SetClause,
    ) -> Result<(), DependencyError> {
        let (expression, names, values) = set.into_parts();
        self.client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(key.0))
            .key(keys::SK, s(key.1))
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| DependencyError::aws("dynamodb", "UpdateItem", &e))?;
        Ok(())
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
        let config: TenantConfig =
            serde_json::from_str(&json).map_err(|e| corrupt("tenant config", e))?;
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

/// Whether an SDK error is DynamoDB's "condition not met".
pub fn is_condition_failed<E, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}
