//! Bookings, with the database as the referee: a booking is one TransactWriteItems that puts the
//! booking, its idempotency record and one lock item per time cell it blocks on its resource
//! (buffers included), each only if absent. Two bookings that share a cell cannot both commit,
//! however many arrive at once; no read-then-write can beat that.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{
    build_err, failed_at, from_value, in_conflict, keys, n, s, string, AttributeMap, Store,
};
use crate::error::DependencyError;

/// DynamoDB's limit of items in one transaction, less the booking, its idempotency record, its
/// entry under the customer, and its outbox entries (the customer's text and the event).
pub const MAX_CELLS: usize = 95;
/// Outbox entries a booking change may carry in its transaction.
pub const MAX_EFFECTS: usize = 2;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BookingRecord {
    pub booking_id: String,
    pub tenant: String,
    pub service_id: String,
    pub resource: String,
    /// Service start and end (UTC, RFC 3339).
    pub start: String,
    pub end: String,
    /// The lock cells held (UTC cell starts), buffers included.
    pub cells: Vec<String>,
    pub status: BookingStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// For the technician (access, parking, the fault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Where the booking was before its last move (UTC, RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_start: Option<String>,
    /// When the customer confirmed by replying C to a reminder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_confirmed_at: Option<String>,
    pub version: u32,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    /// Holds its cells.
    Confirmed,
    /// Its cells are free again; the record stays for the customer's history.
    Cancelled,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl BookingRecord {
    /// When the service starts.
    pub fn start_time(&self) -> Timestamp {
        self.start.parse().unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Booked {
    Created,
    /// Another booking holds at least one of the cells.
    Conflict,
    /// The idempotency key was used before: the first result.
    AlreadyDone {
        booking_id: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Moved {
    Moved,
    /// The new cells are taken; the booking keeps its original slot.
    Conflict,
    /// The booking changed or was cancelled meanwhile.
    Stale,
}

fn cell_lock(tenant: &crate::ids::TenantId, resource: &str, cell: &str) -> (String, String) {
    (
        format!("T#{tenant}#RES#{resource}#{cell}"),
        "LOCK".to_string(),
    )
}

/// Locks outlive their booking by a day, then DynamoDB's TTL clears them.
fn lock_expiry(booking: &BookingRecord, now: Timestamp) -> i64 {
    let end = booking
        .end
        .parse::<Timestamp>()
        .map(|t| t.as_second())
        .unwrap_or(now.as_second());
    end + 86_400
}

impl Store {
    fn lock_put(
        &self,
        b: &BookingRecord,
        cell: &str,
        expires: i64,
    ) -> Result<TransactWriteItem, DependencyError> {
        let (pk, sk) = cell_lock(self.tenant(), &b.resource, cell);
        let put = Put::builder()
            .table_name(self.table())
            .item(keys::PK, s(pk))
            .item(keys::SK, s(sk))
            .item("booking_id", s(&b.booking_id))
            .item(keys::TTL_ATTRIBUTE, n(expires))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn lock_delete(
        &self,
        resource: &str,
        cell: &str,
        booking_id: &str,
    ) -> Result<TransactWriteItem, DependencyError> {
        let (pk, sk) = cell_lock(self.tenant(), resource, cell);
        let delete = Delete::builder()
            .table_name(self.table())
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .condition_expression("booking_id = :id")
            .expression_attribute_values(":id", s(booking_id))
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The booking's entry under its customer, written in the same transaction as the booking.
    fn customer_entry(
        &self,
        b: &BookingRecord,
    ) -> Result<Option<TransactWriteItem>, DependencyError> {
        let Some(phone) = &b.contact_phone else {
            return Ok(None);
        };
        let (pk, sk) = keys::contact_booking(self.tenant(), phone, &b.booking_id);
        let end = lock_expiry(b, Timestamp::UNIX_EPOCH);
        let put = Put::builder()
            .table_name(self.table())
            .item(keys::PK, s(pk))
            .item(keys::SK, s(sk))
            .item("booking_id", s(&b.booking_id))
            .item("service_id", s(&b.service_id))
            .item("start", s(&b.start))
            .item(keys::TTL_ATTRIBUTE, n(end))
            .build()
            .map_err(build_err)?;
        Ok(Some(TransactWriteItem::builder().put(put).build()))
    }

    /// Creates the booking if its cells are free and the key is new, atomically.
    pub async fn create_booking(
        &self,
        booking: &BookingRecord,
        idempotency_key: &str,
        now: Timestamp,
        ttl: std::time::Duration,
    ) -> Result<Booked, DependencyError> {
        self.create_booking_with(booking, idempotency_key, now, ttl, Vec::new())
            .await
    }

    /// [`Self::create_booking`], with outbox entries (`effects`) committed in the same
    /// transaction: the booking never stands without its confirmation and event recorded.
    pub async fn create_booking_with(
        &self,
        booking: &BookingRecord,
        idempotency_key: &str,
        now: Timestamp,
        ttl: std::time::Duration,
        effects: Vec<TransactWriteItem>,
    ) -> Result<Booked, DependencyError> {
        if booking.cells.is_empty()
            || booking.cells.len() > MAX_CELLS
            || effects.len() > MAX_EFFECTS
        {
            return Err(DependencyError::new(
                "dynamodb",
                "TransactWriteItems",
                "TooManyCells",
                format!("{} cells", booking.cells.len()),
            ));
        }
        let (pk, sk) = keys::booking(self.tenant(), &booking.booking_id);
        let AttributeMap(mut item) = AttributeMap::of(booking)?;
        item.insert(keys::PK.into(), s(pk));
        item.insert(keys::SK.into(), s(sk));
        item.insert(keys::GSI1PK.into(), s(keys::bookings_index(self.tenant())));
        item.insert(
            keys::GSI1SK.into(),
            s(format!("{}#{}", booking.start, booking.booking_id)),
        );
        let put_booking = Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(build_err)?;
        let (ipk, isk) = keys::idempotency(self.tenant(), idempotency_key);
        let put_key = Put::builder()
            .table_name(self.table())
            .item(keys::PK, s(ipk.clone()))
            .item(keys::SK, s(isk.clone()))
            .item("booking_id", s(&booking.booking_id))
            .item(
                keys::TTL_ATTRIBUTE,
                n(now.as_second() + ttl.as_secs() as i64),
            )
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(build_err)?;
        let expires = lock_expiry(booking, now);
        let mut items = vec![
            TransactWriteItem::builder().put(put_booking).build(),
            TransactWriteItem::builder().put(put_key).build(),
        ];
        for cell in &booking.cells {
            items.push(self.lock_put(booking, cell, expires)?);
        }
        if let Some(put) = self.customer_entry(booking)? {
            items.push(put);
        }
        items.extend(effects);
        let Err(reasons) = self.transact(items).await? else {
            return Ok(Booked::Created);
        };
        if failed_at(&reasons, 1) || reasons.is_empty() {
            // The key was used before (or we cannot tell): the first result wins.
            if let Some(item) = self.get((ipk, isk), "GetItem").await? {
                if let Some(id) = string(&item, "booking_id") {
                    return Ok(Booked::AlreadyDone { booking_id: id });
                }
            }
        }
        Ok(Booked::Conflict)
    }

    /// The customer confirmed (C to a reminder). Only a booking that stands; a repeat keeps the
    /// first time. Returns the booking as it is now, or `None` if it is cancelled or gone.
    pub async fn confirm_by_customer(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<BookingRecord>, DependencyError> {
        let confirm = super::Update::new(
            keys::booking(self.tenant(), id),
            "SET customer_confirmed_at = if_not_exists(customer_confirmed_at, :now)",
        )
        .only_if("attribute_exists(PK) AND #status = :confirmed")
        .name("#status", "status")
        .value(":confirmed", s(BookingStatus::Confirmed.as_str()))
        .value(":now", s(now.to_string()))
        .returning_new();
        self.update(confirm)
            .await?
            .map(|item| from_value(AttributeValue::M(item)))
            .transpose()
    }

    pub async fn get_booking(
        &self,
        booking_id: &str,
    ) -> Result<Option<BookingRecord>, DependencyError> {
        let item = self
            .get(keys::booking(self.tenant(), booking_id), "GetItem")
            .await?;
        item.map(|i| from_value(AttributeValue::M(i))).transpose()
    }

    /// Moves a booking to new cells in one transaction: the new cells are taken before the old
    /// ones are released, so a failed move leaves the original slot held.
    pub async fn move_booking(
        &self,
        current: &BookingRecord,
        moved: &BookingRecord,
        now: Timestamp,
    ) -> Result<Moved, DependencyError> {
        self.move_booking_with(current, moved, now, Vec::new())
            .await
    }

    /// [`Self::move_booking`], with outbox entries committed in the same transaction.
    pub async fn move_booking_with(
        &self,
        current: &BookingRecord,
        moved: &BookingRecord,
        now: Timestamp,
        effects: Vec<TransactWriteItem>,
    ) -> Result<Moved, DependencyError> {
        let (pk, sk) = keys::booking(self.tenant(), &current.booking_id);
        let update = Update::builder()
            .table_name(self.table())
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .update_expression(
                "SET #start = :start, #end = :end, cells = :cells, #resource = :resource, previous_start = :previous, version = :next, updated_at = :now, GSI1SK = :sort",
            )
            .condition_expression("version = :seen AND #status <> :cancelled")
            .expression_attribute_names("#start", "start")
            .expression_attribute_names("#end", "end")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#resource", "resource")
            .expression_attribute_values(":start", s(&moved.start))
            .expression_attribute_values(":end", s(&moved.end))
            .expression_attribute_values(":cells", AttributeValue::L(moved.cells.iter().map(s).collect()))
            .expression_attribute_values(":resource", s(&moved.resource))
            .expression_attribute_values(":previous", s(&current.start))
            .expression_attribute_values(":next", n(current.version + 1))
            .expression_attribute_values(":seen", n(current.version))
            .expression_attribute_values(":cancelled", s(BookingStatus::Cancelled.as_str()))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":sort", s(format!("{}#{}", moved.start, current.booking_id)))
            .build()
            .map_err(build_err)?;
        let expires = lock_expiry(moved, now);
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        let keep: Vec<&String> = current
            .cells
            .iter()
            .filter(|c| current.resource == moved.resource && moved.cells.contains(c))
            .collect();
        for cell in moved.cells.iter().filter(|c| !keep.contains(c)) {
            items.push(self.lock_put(moved, cell, expires)?);
        }
        for cell in current.cells.iter().filter(|c| !keep.contains(c)) {
            items.push(self.lock_delete(&current.resource, cell, &current.booking_id)?);
        }
        if let Some(put) = self.customer_entry(moved)? {
            items.push(put);
        }
        items.extend(effects);
        Ok(match self.transact(items).await? {
            Ok(()) => Moved::Moved,
            // A conflicting transaction in flight (another move of this booking) is not a
            // taken slot: read the booking again and decide then.
            Err(reasons) if failed_at(&reasons, 0) || in_conflict(&reasons) => Moved::Stale,
            Err(_) => Moved::Conflict,
        })
    }

    /// Cancels a booking and frees its cells, in one transaction. False if it was already
    /// cancelled or changed meanwhile.
    pub async fn cancel_booking(
        &self,
        current: &BookingRecord,
        now: Timestamp,
    ) -> Result<bool, DependencyError> {
        self.cancel_booking_with(current, now, Vec::new()).await
    }

    /// [`Self::cancel_booking`], with outbox entries committed in the same transaction.
    pub async fn cancel_booking_with(
        &self,
        current: &BookingRecord,
        now: Timestamp,
        effects: Vec<TransactWriteItem>,
    ) -> Result<bool, DependencyError> {
        let (pk, sk) = keys::booking(self.tenant(), &current.booking_id);
        let update = Update::builder()
            .table_name(self.table())
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .update_expression("SET #status = :cancelled, version = :next, updated_at = :now REMOVE GSI1PK, GSI1SK")
            .condition_expression("version = :seen AND #status <> :cancelled")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":cancelled", s(BookingStatus::Cancelled.as_str()))
            .expression_attribute_values(":next", n(current.version + 1))
            .expression_attribute_values(":seen", n(current.version))
            .expression_attribute_values(":now", s(now.to_string()))
            .build()
            .map_err(build_err)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        for cell in &current.cells {
            items.push(self.lock_delete(&current.resource, cell, &current.booking_id)?);
        }
        if let Some(phone) = &current.contact_phone {
            let (pk, sk) = keys::contact_booking(self.tenant(), phone, &current.booking_id);
            let delete = Delete::builder()
                .table_name(self.table())
                .key(keys::PK, s(pk))
                .key(keys::SK, s(sk))
                .build()
                .map_err(build_err)?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        items.extend(effects);
        Ok(self.transact(items).await?.is_ok())
    }

    /// How many of a booking's cells its lock items hold (all of them, for a confirmed booking
    /// whose writes committed; none once it is cancelled). A consistency check, in one
    /// BatchGetItem: a booking has at most [`MAX_CELLS`] cells.
    pub async fn cells_held(&self, booking: &BookingRecord) -> Result<usize, DependencyError> {
        if booking.cells.is_empty() {
            return Ok(0);
        }
        let locks = self
            .get_many(
                booking
                    .cells
                    .iter()
                    .map(|cell| cell_lock(self.tenant(), &booking.resource, cell)),
            )
            .await?;
        let held = locks
            .iter()
            .filter(|lock| string(lock, "booking_id").as_deref() == Some(&booking.booking_id))
            .count();
        Ok(held)
    }

    /// Active bookings starting in `[from, to)`, earliest first (for availability: what they
    /// hold, not who booked them or their notes, which stay out of the read).
    pub async fn bookings_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<BookingRecord>, DependencyError> {
        let mut out = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(keys::GSI1)
                .key_condition_expression("GSI1PK = :pk AND GSI1SK BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(keys::bookings_index(self.tenant())))
                .expression_attribute_values(":from", s(from.to_string()))
                .expression_attribute_values(":to", s(format!("{to}~")))
                .projection_expression(
                    "booking_id, tenant, service_id, #resource, #start, #end, cells, #status, version, created_at, updated_at",
                )
                .expression_attribute_names("#resource", "resource")
                .expression_attribute_names("#start", "start")
                .expression_attribute_names("#end", "end")
                .expression_attribute_names("#status", "status")
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| DependencyError::aws("dynamodb", "Query", &e))?;
            for item in page.items.unwrap_or_default() {
                let b: BookingRecord = from_value(AttributeValue::M(item))?;
                if b.status != BookingStatus::Cancelled {
                    out.push(b);
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start_key = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }
}
