//! Passing a lead to a provider, with the database as the referee: one transaction marks the
//! lead dispatched (only if it is not yet) and counts it against the provider's day (only if
//! there is room). Two dispatches of one lead cannot both commit.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use jiff::Timestamp;

use super::{build_err, failed_at, keys, n, number, s, string, Store};
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
        let wanted = providers.iter().flat_map(|p| {
            [
                keys::provider_day(self.tenant(), p, day),
                keys::provider_last(self.tenant(), p),
            ]
        });
        for item in self.get_many(wanted).await? {
            let Some(provider) = string(&item, "provider") else {
                continue;
            };
            let load = loads.entry(provider).or_default();
            match string(&item, keys::SK).as_deref() {
                Some("LAST") => load.last_at = string(&item, "last_at"),
                _ => load.today = number(&item, "dispatched").unwrap_or(0) as u32,
            }
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
        let items = [mark, count, last]
            .into_iter()
            .map(|u| TransactWriteItem::builder().update(u).build())
            .collect();
        Ok(match self.transact(items).await? {
            Ok(()) => Claim::Claimed,
            Err(reasons) if failed_at(&reasons, 0) => Claim::LeadTaken,
            Err(reasons) if failed_at(&reasons, 1) => Claim::ProviderFull,
            // Cancelled because another transaction was in flight: the lead may or may not be
            // taken now, so the caller looks again.
            Err(_) => Claim::Conflict,
        })
    }
}
