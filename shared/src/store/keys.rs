//! Every key format of the single table, in one place. Keys start with the tenant so tenants
//! stay apart even in a shared table.

use crate::ids::{ConversationId, LeadId, TenantId};
use crate::phone::PhoneNumber;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
/// DynamoDB deletes items whose `expires_at` (epoch seconds) has passed.
pub const TTL_ATTRIBUTE: &str = "expires_at";

pub fn tenant_config(t: &TenantId) -> (String, String) {
    (format!("T#{t}"), "CONFIG".into())
}

pub fn call(t: &TenantId, c: &ConversationId) -> (String, String) {
    (format!("T#{t}#CALL#{c}"), "CALL".into())
}

/// The intake record of one webhook type for one conversation, beside the call record.
pub fn inbox(t: &TenantId, c: &ConversationId, event_type: &str) -> (String, String) {
    (format!("T#{t}#CALL#{c}"), format!("INBOX#{event_type}"))
}

/// Calls of a tenant in end-time order (quality scans read from a watermark).
pub fn calls_index(t: &TenantId) -> String {
    format!("T#{t}#CALLS")
}

pub fn contact(t: &TenantId, phone: &PhoneNumber) -> (String, String) {
    (format!("T#{t}#CONTACT#{phone}"), "CONTACT".into())
}

pub fn lead(t: &TenantId, id: &LeadId) -> (String, String) {
    (format!("T#{t}#LEAD#{id}"), "LEAD".into())
}

/// Leads of a tenant by status and time.
pub fn leads_index(t: &TenantId, status: &str) -> String {
    format!("T#{t}#LEADS#{status}")
}

pub fn message(t: &TenantId, id: &str) -> (String, String) {
    (format!("T#{t}#MSG#{id}"), "MSG".into())
}

/// Outbound messages of a tenant in creation order.
pub fn messages_index(t: &TenantId) -> String {
    format!("T#{t}#MSGS")
}

pub fn emitted_event(t: &TenantId, id: &str) -> (String, String) {
    (format!("T#{t}#EVT#{id}"), "EVT".into())
}

pub fn booking(t: &TenantId, id: &str) -> (String, String) {
    (format!("T#{t}#BOOKING#{id}"), "BOOKING".into())
}

/// Active bookings of a tenant by start time (availability reads a range of it).
pub fn bookings_index(t: &TenantId) -> String {
    format!("T#{t}#BOOKINGS")
}

/// The first result of an idempotent request, by its key.
pub fn idempotency(t: &TenantId, key: &str) -> (String, String) {
    (format!("T#{t}#IDEM#{key}"), "IDEM".into())
}

/// A booking listed under its customer (beside the contact item), so one Query of the contact's
/// partition finds the person and their bookings when they ring.
pub fn contact_booking(t: &TenantId, phone: &str, booking_id: &str) -> (String, String) {
    (
        format!("T#{t}#CONTACT#{phone}"),
        format!("BOOKING#{booking_id}"),
    )
}

/// The partition of one contact: the contact item and its booking entries.
pub fn contact_partition(t: &TenantId, phone: &PhoneNumber) -> String {
    format!("T#{t}#CONTACT#{phone}")
}

/// Finds a contact by e-mail address (lower-cased): points at the phone number.
pub fn contact_email(t: &TenantId, email: &str) -> (String, String) {
    (format!("T#{t}#EMAIL#{email}"), "EMAIL".into())
}

/// Today's count of leads passed to a provider (local date).
pub fn provider_day(t: &TenantId, provider: &str, day: &str) -> (String, String) {
    (format!("T#{t}#PROVIDER#{provider}"), format!("DAY#{day}"))
}

/// When a provider was last passed a lead (rotation among equals).
pub fn provider_last(t: &TenantId, provider: &str) -> (String, String) {
    (format!("T#{t}#PROVIDER#{provider}"), "LAST".into())
}

pub fn task(t: &TenantId, id: &str) -> (String, String) {
    (format!("T#{t}#TASK#{id}"), "TASK".into())
}

/// Open tasks for the owner (callbacks), by due time.
pub fn tasks_index(t: &TenantId, status: &str) -> String {
    format!("T#{t}#TASKS#{status}")
}

/// A note the agent logged about a call (log_call), beside the call record.
pub fn call_note(t: &TenantId, c: &ConversationId, id: &str) -> (String, String) {
    (format!("T#{t}#CALL#{c}"), format!("NOTE#{id}"))
}

/// Calls in the order their transcripts were stored (the quality scan's order).
pub fn scan_index(t: &TenantId) -> String {
    format!("T#{t}#SCANS")
}

/// Where the quality scan got to.
pub fn scan_watermark(t: &TenantId) -> (String, String) {
    (format!("T#{t}#SCAN"), "WATERMARK".into())
}

/// A quality flag: one per rule per call, beside the call record.
pub fn flag(t: &TenantId, c: &ConversationId, rule_id: &str) -> (String, String) {
    (format!("T#{t}#CALL#{c}"), format!("FLAG#{rule_id}"))
}

/// How many flags a rule raised, and how reviewers resolved them (one partition per tenant).
pub fn rule_counts(t: &TenantId, rule_id: &str) -> (String, String) {
    (format!("T#{t}#QARULES"), format!("RULE#{rule_id}"))
}

/// Flags of a tenant by status, by time raised.
pub fn flags_index(t: &TenantId, status: &str) -> String {
    format!("T#{t}#FLAGS#{status}")
}

/// A time that sorts as text in time order: always six decimals (`jiff` writes none for whole
/// seconds, and "07:00:00.5Z" sorts before "07:00:00Z").
pub fn sortable_time(at: jiff::Timestamp) -> String {
    format!(
        "{}.{:06}Z",
        at.strftime("%Y-%m-%dT%H:%M:%S"),
        at.subsec_microsecond()
    )
}

/// A person's conversation across calls, texts and WhatsApp, in time order.
pub fn thread(t: &TenantId, phone: &PhoneNumber) -> String {
    format!("T#{t}#THREAD#{phone}")
}

pub fn thread_entry(
    t: &TenantId,
    phone: &PhoneNumber,
    at: jiff::Timestamp,
    id: &str,
) -> (String, String) {
    (thread(t, phone), format!("AT#{}#{id}", sortable_time(at)))
}

/// One inbound text by Twilio's MessageSid: a redelivery finds it.
pub fn inbound_text(t: &TenantId, message_sid: &str) -> (String, String) {
    (format!("T#{t}#INBOUND#{message_sid}"), "INBOUND".into())
}

/// The hold on answering one inbound text (one LLM conversation at a time per text).
pub fn answer_hold(t: &TenantId, message_sid: &str) -> (String, String) {
    (format!("T#{t}#INBOUND#{message_sid}"), "ANSWERING".into())
}

/// A person's consent changes (opt-outs and opt-ins), in time order: the ledger.
pub fn consent(
    t: &TenantId,
    phone: &PhoneNumber,
    at: jiff::Timestamp,
    id: &str,
) -> (String, String) {
    (
        format!("T#{t}#CONSENT#{phone}"),
        format!("AT#{}#{id}", sortable_time(at)),
    )
}

/// Twilio's SID of a message we sent, pointing at our message (status callbacks name only it).
pub fn twilio_sid(t: &TenantId, sid: &str) -> (String, String) {
    (format!("T#{t}#TWSID#{sid}"), "TWSID".into())
}

/// Emitted events of a tenant in creation order (the outbox sweep finds unpublished ones).
pub fn events_index(t: &TenantId) -> String {
    format!("T#{t}#EVTS")
}

/// A person's timed messages (reminders, follow-ups) with their schedules: an opt-out or a
/// reply finds them here before their time.
pub fn timed_messages(t: &TenantId, phone: &PhoneNumber) -> String {
    format!("T#{t}#TIMED#{phone}")
}

pub fn timed_message(t: &TenantId, phone: &PhoneNumber, id: &str) -> (String, String) {
    (timed_messages(t, phone), format!("MSG#{id}"))
}

/// That the owner's digest of a local day was settled (sent, or nothing to say).
pub fn digest_day(t: &TenantId, day: &str) -> (String, String) {
    (format!("T#{t}#DIGEST"), format!("DAY#{day}"))
}
