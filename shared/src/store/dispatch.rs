//! Passing a lead to a provider, with the database as the referee: one transaction marks the
//! lead dispatched (only if it is not yet) and counts it against the provider's day (only if
//! there is room). Two dispatches of one lead cannot both commit.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{KeysAndAttributes, TransactWriteItem, Update};
use jiff::Timestamp;

use super::{keys, n, number, s, string, Store};
use crate::dispatch::Load;
use crate::error::DependencyError;
use crate::ids::LeadId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Claimed,
    /// The lead was dispatched (or closed) meanwhile.
    LeadTaken,
    /// The provider filled up meanwhile: try the next one.
    ProviderFull,
    /// Another transaction was touching the same items: look at the lead again.
    Conflict,
}

/// Day counters are kept a few days (TTL), long enough for any local day to be over.
const DAY_COUNTER_SECS: i64 = 3 * 86_400;

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> DependencyError {
    DependencyError::new("dynamodb", "TransactWriteItems", "Build", e.to_string())
}

impl Store {
    /// Today's load of each provider (`day` is the local date), in one BatchGetItem.
    pub async fn provider_loads(
        &self,
        providers: &[&str],
        day: &str,
    ) -> Result<HashMap<String, Load>, DependencyError> {
        let mut loads: HashMap<String, Load> = providers
            .iter()
            .map(|p| (p.to_string(), Load::default()))
            .collect();
        if providers.is_empty() {
            return Ok(loads);
        }
        // BatchGetItem takes 100 keys: two per provider.
        for chunk in providers.chunks(50) {
            self.provider_loads_of(chunk, day, &mut loads).await?;
        }
        Ok(loads)
    }

    async fn provider_loads_of(
        &self,
        providers: &[&str],
        day: &str,
        loads: &mut HashMap<String, Load>,
    ) -> Result<(), DependencyError> {
        let mut wanted = KeysAndAttributes::builder().consistent_read(true);
        for p in providers {
            for (pk, sk) in [
                keys::provider_day(self.tenant(), p, day),
                keys::provider_last(self.tenant(), p),
            ] {
                wanted = wanted.keys(HashMap::from([
                    (keys::PK.to_string(), s(pk)),
                    (keys::SK.to_string(), s(sk)),
                ]));
            }
        }
        let mut request = Some(HashMap::from([(
            self.table().to_string(),
            wanted.build().map_err(build_err)?,
        )]));
        // A few providers: one round, plus a retry of anything DynamoDB left unprocessed.
        for _ in 0..3 {
            let Some(items) = request.take().filter(|r| !r.is_empty()) else {
                break;
            };
            let out = self
                .client()
                .batch_get_item()
                .set_request_items(Some(items))
                .send()
                .await
                .map_err(|e| DependencyError::aws("dynamodb", "BatchGetItem", &e))?;
            for item in out
                .responses
                .unwrap_or_default()
                .remove(self.table())
                .unwrap_or_default()
            {
                let Some(provider) = string(&item, "provider") else {
                    continue;
                };
                let load = loads.entry(provider).or_default();
                match string(&item, keys::SK).as_deref() {
                    Some("LAST") => load.last_at = string(&item, "last_at"),
                    _ => load.today = number(&item, "dispatched").unwrap_or(0) as u32,
                }
            }
            request = out.unprocessed_keys;
        }
        Ok(())
    }

    /// Marks the lead dispatched to `provider` and counts it in the provider's day, atomically.
    pub async fn claim_lead(
        &self,
        lead: &LeadId,
        provider: &str,
        capacity: u32,
        day: &str,
        now: Timestamp,
    ) -> Result<Claim, DependencyError> {
        let (pk, sk) = keys::lead(self.tenant(), lead);
        let mark = Update::builder()
            .table_name(self.table())
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .update_expression("SET dispatched_to = :p, dispatched_at = :now, updated_at = :now")
            .condition_expression(
                "attribute_exists(PK) AND attribute_not_exists(dispatched_to) AND lead_status = :open",
            )
            .expression_attribute_values(":p", s(provider))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":open", s("open"))
            .build()
            .map_err(build_err)?;
        let (dpk, dsk) = keys::provider_day(self.tenant(), provider, day);
        let count = Update::builder()
            .table_name(self.table())
            .key(keys::PK, s(dpk))
            .key(keys::SK, s(dsk))
            .update_expression("SET provider = :p, #ttl = :ttl ADD dispatched :one")
            .condition_expression("attribute_not_exists(dispatched) OR dispatched < :cap")
            .expression_attribute_names("#ttl", keys::TTL_ATTRIBUTE)
            .expression_attribute_values(":p", s(provider))
            .expression_attribute_values(":ttl", n(now.as_second() + DAY_COUNTER_SECS))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(capacity))
            .build()
            .map_err(build_err)?;
        let (lpk, lsk) = keys::provider_last(self.tenant(), provider);
        let last = Update::builder()
            .table_name(self.table())
            .key(keys::PK, s(lpk))
            .key(keys::SK, s(lsk))
            .update_expression("SET provider = :p, last_at = :now")
            .expression_attribute_values(":p", s(provider))
            .expression_attribute_values(":now", s(now.to_string()))
            .build()
            .map_err(build_err)?;
        let result = self
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(mark).build())
            .transact_items(TransactWriteItem::builder().update(count).build())
            .transact_items(TransactWriteItem::builder().update(last).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed),
            Err(e) => match super::bookings::cancellation_reasons(&e) {
                Some(reasons) if super::bookings::failed_at(&reasons, 0) => Ok(Claim::LeadTaken),
                Some(reasons) if super::bookings::failed_at(&reasons, 1) => Ok(Claim::ProviderFull),
                // Cancelled because another transaction was in flight: the lead may or may not
                // be taken now, so the caller looks again.
                Some(_) => Ok(Claim::Conflict),
                None => Err(DependencyError::aws("dynamodb", "TransactWriteItems", &e)),
            },
        }
    }
}
