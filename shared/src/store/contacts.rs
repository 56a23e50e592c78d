//! Contacts (one per person, keyed by E.164 number across phone, SMS and WhatsApp) and leads
//! (one open lead per person: later enquiries merge into it).

use aws_sdk_dynamodb::types::{self as ddb, AttributeValue, Put, TransactWriteItem};
use jiff::Timestamp;
use serde::Deserialize;

use super::{boolean, build_err, keys, s, string, Item, SetClause, Store, Update, Values};
use crate::error::DependencyError;
use crate::ids::{ConversationId, LeadId};
use crate::phone::PhoneNumber;

#[derive(Debug, Clone)]
pub struct Contact {
    pub phone: PhoneNumber,
    pub name: Option<String>,
    pub email: Option<String>,
    pub opted_out: bool,
    pub open_lead_id: Option<LeadId>,
}

/// What a caller tells us about themselves (upsert_contact); absent fields are left as they are.
#[derive(Debug, Clone, Default)]
pub struct ContactDetails<'a> {
    pub name: Option<&'a str>,
    /// Lower-cased.
    pub email: Option<&'a str>,
    pub address: Option<&'a str>,
    /// Replace what is on file. Only for the caller's own (verified) number: details given for
    /// another number or found by e-mail only fill gaps, so nobody can rewrite someone else.
    pub overwrite: bool,
}

/// A booking listed under its customer.
#[derive(Debug, Clone, Deserialize)]
pub struct BookingEntry {
    pub booking_id: String,
    pub service_id: String,
    /// Service start, UTC RFC 3339.
    pub start: String,
}

impl Contact {
    fn from_item(phone: &PhoneNumber, item: &Item) -> Self {
        Self {
            phone: phone.clone(),
            name: string(item, "name"),
            email: string(item, "email"),
            opted_out: boolean(item, "opted_out"),
            open_lead_id: string(item, "open_lead_id").and_then(|id| LeadId::parse(&id).ok()),
        }
    }
}

/// What one contact (a call, a message) adds to a lead.
#[derive(Debug, Clone)]
pub struct LeadInput<'a> {
    pub conversation: &'a ConversationId,
    pub channel: &'a str,
    pub name: Option<&'a str>,
    pub service: Option<&'a str>,
    /// Area id (from the business's areas).
    pub area: Option<&'a str>,
    pub urgency: Option<&'a str>,
    pub hot: bool,
    pub summary: Option<&'a str>,
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadOutcome {
    pub id: LeadId,
    /// This conversation opened the lead (true again on a retry of the same conversation).
    pub opened_here: bool,
    /// The lead is hot after this contact.
    pub hot: bool,
}

const OPEN: &str = "open";

fn string_set(v: &str) -> AttributeValue {
    AttributeValue::Ss(vec![v.to_string()])
}

impl Store {
    /// Records a contact (by number) from a call or message, with the name if one was given.
    pub async fn upsert_contact(
        &self,
        phone: &PhoneNumber,
        name: Option<&str>,
        channel: &str,
        conversation: &ConversationId,
        now: Timestamp,
    ) -> Result<Contact, DependencyError> {
        let details = ContactDetails {
            name,
            overwrite: true,
            ..ContactDetails::default()
        };
        self.save_contact_details(phone, &details, channel, conversation, now)
            .await
    }

    /// Records what the caller told us, and makes the contact findable by e-mail.
    pub async fn save_contact_details(
        &self,
        phone: &PhoneNumber,
        details: &ContactDetails<'_>,
        channel: &str,
        conversation: &ConversationId,
        now: Timestamp,
    ) -> Result<Contact, DependencyError> {
        let (pk, sk) = keys::contact(self.tenant(), phone);
        let mut set = SetClause::default();
        set.set("phone", s(phone.as_str()))
            .set("tenant", s(self.tenant().as_str()))
            .set("last_contact_at", s(now.to_string()))
            .set("last_conversation_id", s(conversation.as_str()))
            .set_if_absent("first_seen_at", s(now.to_string()));
        for (name, value) in [
            ("name", details.name),
            ("email", details.email),
            ("address", details.address),
        ] {
            match (value, details.overwrite) {
                (Some(v), true) => set.set(name, s(v)),
                (Some(v), false) => set.set_if_absent(name, s(v)),
                (None, _) => &mut set,
            };
        }
        let save = Update::set((pk, sk), set)
            .then("ADD channels :channel")
            .value(":channel", string_set(channel))
            .returning_new();
        let saved = self.update(save).await?.unwrap_or_default();
        if let Some(email) = details.email {
            // The first number an address was given with keeps it.
            let (epk, esk) = keys::contact_email(self.tenant(), email);
            let entry = Item::from([
                (keys::PK.to_string(), s(epk)),
                (keys::SK.to_string(), s(esk)),
                ("phone".to_string(), s(phone.as_str())),
            ]);
            let values = Values::from([(":p".to_string(), s(phone.as_str()))]);
            self.put_if(entry, "attribute_not_exists(PK) OR phone = :p", values)
                .await?;
        }
        Ok(Contact::from_item(phone, &saved))
    }

    /// The number of the contact who gave this e-mail address, if any.
    pub async fn phone_for_email(
        &self,
        email: &str,
    ) -> Result<Option<PhoneNumber>, DependencyError> {
        let item = self
            .get(keys::contact_email(self.tenant(), email), "GetItem")
            .await?;
        Ok(item
            .and_then(|i| string(&i, "phone"))
            .and_then(|p| PhoneNumber::parse(&p, None).ok()))
    }

    /// The contact and the bookings listed under them, in one Query (a caller is ringing).
    pub async fn contact_overview(
        &self,
        phone: &PhoneNumber,
    ) -> Result<(Option<Contact>, Vec<BookingEntry>), DependencyError> {
        let mut items = Vec::new();
        let mut start_key = None;
        // Booking entries expire a day after the booking, so a partition stays small; a few
        // pages at most.
        for _ in 0..5 {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(
                    ":pk",
                    s(keys::contact_partition(self.tenant(), phone)),
                )
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| DependencyError::aws("dynamodb", "Query", &e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start_key = Some(k),
                _ => break,
            }
        }
        let mut contact = None;
        let mut bookings = Vec::new();
        for item in items {
            match string(&item, keys::SK).as_deref() {
                Some("CONTACT") => contact = Some(Contact::from_item(phone, &item)),
                Some(sk) if sk.starts_with("BOOKING#") => {
                    if let Ok(entry) = super::from_value::<BookingEntry>(AttributeValue::M(item)) {
                        bookings.push(entry);
                    }
                }
                _ => {}
            }
        }
        bookings.sort_by(|a, b| a.start.cmp(&b.start));
        Ok((contact, bookings))
    }

    pub async fn get_contact(
        &self,
        phone: &PhoneNumber,
    ) -> Result<Option<Contact>, DependencyError> {
        let item = self
            .get(keys::contact(self.tenant(), phone), "GetItem")
            .await?;
        Ok(item.map(|i| Contact::from_item(phone, &i)))
    }

    /// Adds this contact to the person's open lead, or opens one. Two enquiries racing (a call
    /// and a WhatsApp thread) end up in the same lead: opening is one transaction that also
    /// claims the contact's `open_lead_id`.
    pub async fn open_or_merge_lead(
        &self,
        contact: &Contact,
        input: &LeadInput<'_>,
    ) -> Result<LeadOutcome, DependencyError> {
        let mut open = contact.open_lead_id.clone();
        for _ in 0..4 {
            match open.take() {
                Some(id) => match self.merge_into_lead(&id, input).await? {
                    Some(outcome) => return Ok(outcome),
                    None => {
                        // The lead was closed meanwhile: forget it and open a new one.
                        self.clear_open_lead(&contact.phone, &id).await?;
                    }
                },
                None => {
                    if let Some(outcome) = self.open_lead(contact, input).await? {
                        return Ok(outcome);
                    }
                    open = self
                        .get_contact(&contact.phone)
                        .await?
                        .and_then(|c| c.open_lead_id);
                }
            }
        }
        Err(DependencyError::new(
            "dynamodb",
            "TransactWriteItems",
            "Contention",
            "lead kept changing; retry later",
        ))
    }

    async fn merge_into_lead(
        &self,
        id: &LeadId,
        input: &LeadInput<'_>,
    ) -> Result<Option<LeadOutcome>, DependencyError> {
        let (pk, sk) = keys::lead(self.tenant(), id);
        let mut set = SetClause::default();
        set.set("updated_at", s(input.now.to_string()))
            .set("last_conversation_id", s(input.conversation.as_str()))
            .set_opt("name", input.name.map(s))
            .set_opt("service", input.service.map(s))
            .set_opt("area", input.area.map(s))
            .set_opt("urgency", input.urgency.map(s))
            .set_opt("summary", input.summary.map(s));
        if input.hot {
            // A lead never cools down by itself: only a person closes it.
            set.set("hot", AttributeValue::Bool(true));
        }
        let merge = Update::set((pk, sk), set)
            .then("ADD conversations :conv, channels :channel")
            .only_if("attribute_exists(PK) AND #status = :open")
            .name("#status", "lead_status")
            .value(":open", s(OPEN))
            .value(":conv", string_set(input.conversation.as_str()))
            .value(":channel", string_set(input.channel))
            .returning_new();
        Ok(self.update(merge).await?.map(|item| LeadOutcome {
            id: id.clone(),
            opened_here: string(&item, "origin_conversation").as_deref()
                == Some(input.conversation.as_str()),
            hot: boolean(&item, "hot"),
        }))
    }

    /// Opens a lead for this conversation. `None` if the contact got another open lead first.
    async fn open_lead(
        &self,
        contact: &Contact,
        input: &LeadInput<'_>,
    ) -> Result<Option<LeadOutcome>, DependencyError> {
        let id = LeadId::for_conversation(self.tenant(), input.conversation);
        let (pk, sk) = keys::lead(self.tenant(), &id);
        let now = input.now.to_string();
        let mut lead = Put::builder()
            .table_name(self.table())
            .item(keys::PK, s(pk))
            .item(keys::SK, s(sk))
            .item("lead_id", s(id.as_str()))
            .item("tenant", s(self.tenant().as_str()))
            .item("phone", s(contact.phone.as_str()))
            .item("lead_status", s(OPEN))
            .item("origin_conversation", s(input.conversation.as_str()))
            .item("last_conversation_id", s(input.conversation.as_str()))
            .item("conversations", string_set(input.conversation.as_str()))
            .item("channels", string_set(input.channel))
            .item("hot", AttributeValue::Bool(input.hot))
            .item("created_at", s(&now))
            .item("updated_at", s(&now))
            .item(keys::GSI1PK, s(keys::leads_index(self.tenant(), OPEN)))
            .item(keys::GSI1SK, s(format!("{now}#{id}")))
            .condition_expression("attribute_not_exists(PK)");
        for (name, v) in [
            ("name", input.name),
            ("service", input.service),
            ("area", input.area),
            ("urgency", input.urgency),
            ("summary", input.summary),
        ] {
            if let Some(v) = v {
                lead = lead.item(name, s(v));
            }
        }
        let (cpk, csk) = keys::contact(self.tenant(), &contact.phone);
        let claim = ddb::Update::builder()
            .table_name(self.table())
            .key(keys::PK, s(cpk))
            .key(keys::SK, s(csk))
            .update_expression("SET open_lead_id = :id")
            .condition_expression("attribute_exists(PK) AND (attribute_not_exists(open_lead_id) OR open_lead_id = :id)")
            .expression_attribute_values(":id", s(id.as_str()));
        let items = vec![
            TransactWriteItem::builder()
                .put(lead.build().map_err(build_err)?)
                .build(),
            TransactWriteItem::builder()
                .update(claim.build().map_err(build_err)?)
                .build(),
        ];
        Ok(self.transact(items).await?.ok().map(|()| LeadOutcome {
            id,
            opened_here: true,
            hot: input.hot,
        }))
    }

    async fn clear_open_lead(
        &self,
        phone: &PhoneNumber,
        id: &LeadId,
    ) -> Result<(), DependencyError> {
        let clear = Update::new(keys::contact(self.tenant(), phone), "REMOVE open_lead_id")
            .only_if("open_lead_id = :id")
            .value(":id", s(id.as_str()));
        self.update(clear).await.map(|_| ())
    }

    pub async fn get_lead(&self, id: &LeadId) -> Result<Option<Item>, DependencyError> {
        self.get(keys::lead(self.tenant(), id), "GetItem").await
    }

    /// Marks the lead quoted (the first time only: marking it again keeps the first date, so
    /// its follow-ups keep their times) and returns it as it now stands. `None` if there is no
    /// such lead.
    pub async fn mark_quoted(
        &self,
        id: &LeadId,
        quote: Option<&str>,
        by: &str,
        now: jiff::Timestamp,
    ) -> Result<Option<Item>, DependencyError> {
        let mut expression = String::from(
            "SET quoted_at = if_not_exists(quoted_at, :now), quoted_by = if_not_exists(quoted_by, :by), updated_at = :now",
        );
        if quote.is_some() {
            expression.push_str(", quote = if_not_exists(quote, :quote)");
        }
        let mut mark = Update::new(keys::lead(self.tenant(), id), expression)
            .only_if("attribute_exists(PK)")
            .value(":now", s(now.to_string()))
            .value(":by", s(by))
            .returning_new();
        if let Some(quote) = quote {
            mark = mark.value(":quote", s(quote));
        }
        self.update(mark).await
    }
}
