//! Bookings in DynamoDB (moto): the database refuses overlapping bookings under concurrency,
//! idempotency keys return the first result, reschedules never lose the original slot.

use std::time::Duration;

use frontdesk_blackbox::frontdesk::booking::engine::{cell_starts, Service};
use frontdesk_blackbox::frontdesk::store::bookings::{Booked, BookingRecord, BookingStatus, Moved};
use frontdesk_blackbox::*;
use jiff::{SignedDuration, Timestamp};

const DAY: Duration = Duration::from_secs(86_400);

fn boiler_service() -> Service {
    Service {
        duration: SignedDuration::from_mins(60),
        buffer_before: SignedDuration::ZERO,
        buffer_after: SignedDuration::from_mins(30),
    }
}

fn booking(id: &str, resource: &str, start: &str) -> BookingRecord {
    let start: Timestamp = start.parse().unwrap();
    let service = boiler_service();
    let cells = cell_starts(&service.blocked_span(start), 30)
        .iter()
        .map(|c| c.to_string())
        .collect();
    BookingRecord {
        booking_id: id.into(),
        tenant: "demo".into(),
        service_id: "boiler_service".into(),
        resource: resource.into(),
        start: start.to_string(),
        end: service.service_span(start).end.to_string(),
        cells,
        status: BookingStatus::Confirmed,
        contact_phone: None,
        customer_name: None,
        conversation_id: None,
        notes: None,
        previous_start: None,
        customer_confirmed_at: None,
        version: 1,
        created_at: "2026-11-21T10:00:00Z".into(),
        updated_at: "2026-11-21T10:00:00Z".into(),
    }
}

#[tokio::test]
async fn fifty_concurrent_bookings_of_one_slot_with_two_technicians_make_exactly_two() {
    let app = spawn_app().await;
    let store = &app.deps.store;
    let now = app.now();
    let attempts = (0..50).map(|i| async move {
        // As the tool does: try each free technician in turn.
        for who in ["dave", "priya"] {
            let b = booking(&format!("bk_{i}_{who}"), who, "2026-12-01T10:00:00Z");
            match store
                .create_booking(&b, &format!("key-{i}"), now, DAY)
                .await
                .unwrap()
            {
                Booked::Created => return Some(who),
                Booked::Conflict => continue,
                Booked::AlreadyDone { .. } => unreachable!("keys are distinct"),
            }
        }
        None
    });
    let results = join_all(attempts).await;
    let mut made: Vec<&str> = results.iter().flatten().copied().collect();
    made.sort();
    assert_eq!(
        made,
        ["dave", "priya"],
        "exactly one booking per technician"
    );
    assert_eq!(results.iter().filter(|r| r.is_none()).count(), 48);
    let active = store
        .bookings_between(
            "2026-12-01T00:00:00Z".parse().unwrap(),
            "2026-12-02T00:00:00Z".parse().unwrap(),
        )
        .await
        .unwrap();
    let ids: Vec<(&str, &str)> = active
        .iter()
        .map(|b| (b.booking_id.as_str(), b.resource.as_str()))
        .collect();
    assert_eq!(active.len(), 2, "{ids:?}");
}

#[tokio::test]
async fn a_buffer_overlap_is_a_conflict_and_touching_is_not() {
    let app = spawn_app().await;
    let store = &app.deps.store;
    let first = booking("bk_a", "dave", "2026-12-01T10:00:00Z"); // blocks 10:00-11:30
    assert_eq!(
        store
            .create_booking(&first, "a", app.now(), DAY)
            .await
            .unwrap(),
        Booked::Created
    );
    let overlapping = booking("bk_b", "dave", "2026-12-01T11:00:00Z");
    assert_eq!(
        store
            .create_booking(&overlapping, "b", app.now(), DAY)
            .await
            .unwrap(),
        Booked::Conflict
    );
    let touching = booking("bk_c", "dave", "2026-12-01T11:30:00Z");
    assert_eq!(
        store
            .create_booking(&touching, "c", app.now(), DAY)
            .await
            .unwrap(),
        Booked::Created
    );
    // The refused booking left nothing behind: not the booking, not its key.
    assert!(store.get_booking("bk_b").await.unwrap().is_none());
    let retry = booking("bk_b2", "dave", "2026-12-01T13:00:00Z");
    assert_eq!(
        store
            .create_booking(&retry, "b", app.now(), DAY)
            .await
            .unwrap(),
        Booked::Created
    );
}

#[tokio::test]
async fn the_same_idempotency_key_twice_gives_the_first_booking() {
    let app = spawn_app().await;
    let store = &app.deps.store;
    let first = booking("bk_first", "dave", "2026-12-01T10:00:00Z");
    assert_eq!(
        store
            .create_booking(&first, "conv_1:create_booking:x", app.now(), DAY)
            .await
            .unwrap(),
        Booked::Created
    );
    let again = booking("bk_second", "priya", "2026-12-01T10:00:00Z");
    assert_eq!(
        store
            .create_booking(&again, "conv_1:create_booking:x", app.now(), DAY)
            .await
            .unwrap(),
        Booked::AlreadyDone {
            booking_id: "bk_first".into()
        }
    );
    assert!(
        store.get_booking("bk_second").await.unwrap().is_none(),
        "no second booking"
    );
}

#[tokio::test]
async fn a_failed_reschedule_keeps_the_original_slot_and_a_good_one_frees_it() {
    let app = spawn_app().await;
    let store = &app.deps.store;
    let mine = booking("bk_mine", "dave", "2026-12-01T10:00:00Z");
    let theirs = booking("bk_theirs", "dave", "2026-12-01T14:00:00Z");
    store
        .create_booking(&mine, "m", app.now(), DAY)
        .await
        .unwrap();
    store
        .create_booking(&theirs, "t", app.now(), DAY)
        .await
        .unwrap();

    let onto_theirs = BookingRecord {
        ..booking("bk_mine", "dave", "2026-12-01T14:00:00Z")
    };
    assert_eq!(
        store
            .move_booking(&mine, &onto_theirs, app.now())
            .await
            .unwrap(),
        Moved::Conflict
    );
    let still = store.get_booking("bk_mine").await.unwrap().unwrap();
    assert_eq!(still.start, mine.start);
    let intruder = booking("bk_intruder", "dave", "2026-12-01T10:00:00Z");
    assert_eq!(
        store
            .create_booking(&intruder, "i", app.now(), DAY)
            .await
            .unwrap(),
        Booked::Conflict,
        "original slot still held"
    );

    // Half an hour later: shares a cell with the old slot, moves within it.
    let later = booking("bk_mine", "dave", "2026-12-01T10:30:00Z");
    assert_eq!(
        store.move_booking(&still, &later, app.now()).await.unwrap(),
        Moved::Moved
    );
    let moved = store.get_booking("bk_mine").await.unwrap().unwrap();
    assert_eq!(moved.start, later.start);
    assert_eq!(moved.version, 2);
    assert_eq!(
        store.move_booking(&still, &later, app.now()).await.unwrap(),
        Moved::Stale,
        "an outdated copy cannot move it"
    );
    let at_ten = booking("bk_at_ten", "dave", "2026-12-01T09:00:00Z"); // blocks 09:00-10:30
    assert_eq!(
        store
            .create_booking(&at_ten, "ten", app.now(), DAY)
            .await
            .unwrap(),
        Booked::Created,
        "10:00 was released"
    );
}

#[tokio::test]
async fn cancelling_frees_the_cells_once() {
    let app = spawn_app().await;
    let store = &app.deps.store;
    let b = booking("bk_gone", "priya", "2026-12-02T09:00:00Z");
    store.create_booking(&b, "g", app.now(), DAY).await.unwrap();
    assert!(store.cancel_booking(&b, app.now()).await.unwrap());
    assert!(
        !store.cancel_booking(&b, app.now()).await.unwrap(),
        "already cancelled"
    );
    assert_eq!(
        store.get_booking("bk_gone").await.unwrap().unwrap().status,
        BookingStatus::Cancelled
    );
    let replacement = booking("bk_new", "priya", "2026-12-02T09:00:00Z");
    assert_eq!(
        store
            .create_booking(&replacement, "n", app.now(), DAY)
            .await
            .unwrap(),
        Booked::Created
    );
    let active = store
        .bookings_between(
            "2026-12-02T00:00:00Z".parse().unwrap(),
            "2026-12-03T00:00:00Z".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        active
            .iter()
            .map(|b| b.booking_id.as_str())
            .collect::<Vec<_>>(),
        ["bk_new"]
    );
}
