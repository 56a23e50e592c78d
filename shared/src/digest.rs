//! The owner's morning text: what happened in the day to this morning's digest time (calls,
//! bookings, hot leads, missed calls, failed messages, QA flags), once a day at the tenant's
//! `[digest] at` in the business's zone, and nothing on a day with nothing to say.
//!
//! Run by the outbox sweep's schedule (every five minutes): the first run after the time sends
//! it; the day's marker and the message's own id keep it to one, whichever run is first.

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use tracing::info;

use crate::deps::Deps;
use crate::error::DependencyError;
use crate::outbox::{self, Audience, NewMessage};
use crate::store::flags::FlagStatus;
use crate::tenant::TenantConfig;

/// What the digest counts, over its day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub calls: usize,
    pub missed_calls: usize,
    pub bookings: usize,
    pub cancellations: usize,
    pub hot_leads: usize,
    pub callbacks: usize,
    pub failed_messages: usize,
    pub new_flags: usize,
    /// Standing, whenever raised.
    pub open_flags: usize,
}

impl Counts {
    /// Counts the day's recorded events by kind.
    pub fn add_events<'a>(&mut self, kinds: impl IntoIterator<Item = &'a str>) {
        for kind in kinds {
            match kind {
                "call.completed" => self.calls += 1,
                "call.missed" => self.missed_calls += 1,
                "booking.created" => self.bookings += 1,
                "booking.cancelled" => self.cancellations += 1,
                "lead.hot" => self.hot_leads += 1,
                "callback.requested" => self.callbacks += 1,
                "flag.raised" => self.new_flags += 1,
                _ => {}
            }
        }
    }

    /// Nothing happened in the day (flags left open from before are no news).
    pub fn is_quiet(&self) -> bool {
        Counts {
            open_flags: 0,
            ..self.clone()
        } == Counts::default()
    }
}

/// The text, or `None` on a quiet day.
pub fn compose(tenant: &TenantConfig, day: Date, counts: &Counts) -> Option<String> {
    if counts.is_quiet() {
        return None;
    }
    let n = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    let mut parts = vec![n(counts.calls, "call", "calls")];
    if counts.missed_calls > 0 {
        parts.push(n(counts.missed_calls, "missed call", "missed calls"));
    }
    parts.push(n(counts.bookings, "booking", "bookings"));
    if counts.cancellations > 0 {
        parts.push(n(counts.cancellations, "cancellation", "cancellations"));
    }
    parts.push(n(counts.hot_leads, "hot lead", "hot leads"));
    if counts.callbacks > 0 {
        parts.push(n(
            counts.callbacks,
            "callback promised",
            "callbacks promised",
        ));
    }
    if counts.failed_messages > 0 {
        parts.push(n(
            counts.failed_messages,
            "text not delivered",
            "texts not delivered",
        ));
    }
    let mut text = format!(
        "{} since yesterday morning ({}): {}.",
        tenant.business.name,
        day.strftime("%a %-d %b"),
        parts.join(", ")
    );
    if counts.open_flags > 0 || counts.new_flags > 0 {
        text.push_str(&format!(
            " QA: {} open ({} new).",
            counts.open_flags, counts.new_flags
        ));
    }
    Some(text)
}

pub fn message_id(day: Date) -> String {
    format!("owner-digest:{day}")
}

/// Sends today's digest if its time has come and it is not settled. Returns its message id
/// when one was queued now.
pub async fn send_if_due(deps: &Deps) -> Result<Option<String>, DependencyError> {
    let tenant = deps.tenant().await?;
    if !tenant.digest.enabled {
        return Ok(None);
    }
    let zone = tenant.time_zone();
    let now = deps.now();
    let today = now.to_zoned(zone.clone()).date();
    let at_local = |day: Date| {
        zone.to_ambiguous_zoned(day.to_datetime(tenant.digest.at))
            .compatible()
            .map(|z| z.timestamp())
    };
    let (Ok(until), Ok(from)) = (
        at_local(today),
        at_local(today.checked_sub(1.day()).unwrap_or(today)),
    ) else {
        return Ok(None);
    };
    if now < until || deps.store.digest_day_settled(&today.to_string()).await? {
        return Ok(None);
    }
    let id = message_id(today);
    if deps.store.get_message(&id).await?.is_some() {
        return Ok(None);
    }
    let counts = count(deps, from, until).await?;
    let Some(body) = compose(&tenant, today, &counts) else {
        deps.store
            .settle_digest_day(&today.to_string(), "nothing_to_say", now)
            .await?;
        info!(day = %today, outcome = "digest_skipped", "nothing to tell the owner today");
        return Ok(None);
    };
    outbox::create_and_queue(
        deps,
        NewMessage {
            id: id.clone(),
            purpose: "owner_digest",
            audience: Audience::Owner,
            to: tenant.business.owner_phone.clone(),
            body,
            conversation_id: None,
            lead_id: None,
        },
    )
    .await?;
    deps.store
        .settle_digest_day(&today.to_string(), "sent", now)
        .await?;
    info!(day = %today, calls = counts.calls, bookings = counts.bookings, outcome = "digest_queued", "owner's digest queued");
    Ok(Some(id))
}

/// The day's counts from the recorded events, failed messages and flags.
pub async fn count(
    deps: &Deps,
    from: Timestamp,
    until: Timestamp,
) -> Result<Counts, DependencyError> {
    let mut counts = Counts::default();
    let kinds = deps.store.event_kinds_between(from, until).await?;
    counts.add_events(kinds.iter().map(String::as_str));
    // A message fails up to a day or so after it was created (retries, late callbacks).
    let earliest = from
        .checked_sub(jiff::SignedDuration::from_hours(48))
        .unwrap_or(from);
    counts.failed_messages = deps
        .store
        .failed_messages(earliest, until)
        .await?
        .iter()
        .filter(|m| {
            m.purpose != "owner_digest"
                && m.updated_at
                    .parse::<Timestamp>()
                    .is_ok_and(|t| from <= t && t < until)
        })
        .count();
    counts.open_flags = deps.store.count_flags(FlagStatus::Open).await?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_day_sends_nothing_even_with_old_flags_open() {
        let counts = Counts {
            open_flags: 3,
            ..Counts::default()
        };
        assert_eq!(
            compose(
                &crate::tenant::demo(),
                jiff::civil::date(2026, 12, 3),
                &counts
            ),
            None
        );
    }

    #[test]
    fn the_digest_says_what_happened() {
        let mut counts = Counts::default();
        counts.add_events([
            "call.completed",
            "call.completed",
            "call.missed",
            "booking.created",
            "lead.hot",
            "flag.raised",
            "lead.created",
        ]);
        counts.failed_messages = 1;
        counts.open_flags = 2;
        let text = compose(
            &crate::tenant::demo(),
            jiff::civil::date(2026, 12, 3),
            &counts,
        )
        .unwrap();
        assert!(
            text.ends_with("(Thu 3 Dec): 2 calls, 1 missed call, 1 booking, 1 hot lead, 1 text not delivered. QA: 2 open (1 new)."),
            "{text}"
        );
    }
}
