//! Property tests: whatever the hours, holidays, blackouts, bookings, zone and clock, no offered
//! slot ever overlaps a booking or its buffers, falls outside hours, on a holiday or blackout,
//! or before the notice, and every offered slot is one `check_start` accepts.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::engine::*;

const ZONES: &[&str] = &[
    "Europe/London",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "UTC",
];

fn opening() -> impl Strategy<Value = Vec<Opening>> {
    // Up to two openings in whole hours, possibly across midnight's DST changes.
    prop::collection::vec((0i8..23, 1i8..8), 0..=2).prop_map(|v| {
        v.into_iter()
            .map(|(start, len)| Opening {
                start: Time::new(start, 0, 0, 0).unwrap(),
                end: Time::new((start + len).min(23), 59, 0, 0).unwrap(),
            })
            .collect()
    })
}

#[derive(Debug, Clone)]
struct World {
    schedule: Schedule,
    service: Service,
    resources: Vec<String>,
    occupied: Vec<Occupied>,
    now: Timestamp,
}

fn world() -> impl Strategy<Value = World> {
    let week = prop::array::uniform7(opening());
    (
        (
            week,
            0usize..ZONES.len(),
            prop::sample::select(vec![15i32, 30, 60]),
        ),
        // "now": any hour of 2025, DST changes included.
        (0i64..(365 * 24), 0i64..48),
        (1i64..5, 0i64..3, 0i64..3, 1usize..4),
        prop::collection::vec((0usize..3, 0i64..(14 * 24 * 4), 0i64..3), 0..40),
        prop::collection::vec(0i64..14, 0..3),
        prop::collection::vec((0i64..(14 * 24), 1i64..12), 0..2),
        prop::option::of(1u32..4),
    )
        .prop_map(
            |(
                (week, zone, slot),
                (hour, notice_h),
                (dur, before, after, people),
                bookings,
                closed,
                blackouts,
                limit,
            )| {
                let zone = TimeZone::get(ZONES[zone]).unwrap();
                let now = Timestamp::from_second(1_735_689_600 + hour * 3600).unwrap();
                let cell = SignedDuration::from_mins(i64::from(slot));
                let service = Service {
                    duration: cell * dur as i32,
                    buffer_before: cell * before as i32,
                    buffer_after: cell * after as i32,
                };
                let today: Date = now.to_zoned(zone.clone()).date();
                let resources: Vec<String> = (0..people).map(|i| format!("tech{i}")).collect();
                let occupied = bookings
                    .into_iter()
                    .map(|(who, quarter, len)| {
                        let start = now
                            .checked_add(SignedDuration::from_mins(15 * quarter))
                            .unwrap();
                        let other = Service {
                            duration: cell * (len as i32 + 1),
                            ..service.clone()
                        };
                        Occupied {
                            resource: format!("tech{who}"),
                            start,
                            blocked: other.blocked_span(start),
                        }
                    })
                    .collect();
                let schedule = Schedule {
                    zone,
                    week,
                    closed_dates: closed
                        .into_iter()
                        .map(|d| today.checked_add(jiff::ToSpan::days(d)).unwrap())
                        .collect(),
                    blackouts: blackouts
                        .into_iter()
                        .map(|(h, len)| {
                            let s = now.checked_add(SignedDuration::from_hours(h)).unwrap();
                            Span::new(s, s.checked_add(SignedDuration::from_hours(len)).unwrap())
                        })
                        .collect(),
                    min_notice: SignedDuration::from_hours(notice_h),
                    max_days_ahead: 10,
                    slot_minutes: slot,
                    daily_limit: limit,
                };
                World {
                    schedule,
                    service,
                    resources,
                    occupied,
                    now,
                }
            },
        )
}

/// The service span lies inside one opening of its own local day (computed independently).
fn inside_hours(s: &Schedule, span: &Span) -> bool {
    let local = span.start.to_zoned(s.zone.clone());
    let day = local.date();
    s.week[day.weekday().to_monday_zero_offset() as usize]
        .iter()
        .any(|o| {
            let open = day
                .to_datetime(o.start)
                .to_zoned(s.zone.clone())
                .unwrap()
                .timestamp();
            let close = day
                .to_datetime(o.end)
                .to_zoned(s.zone.clone())
                .unwrap()
                .timestamp();
            open <= span.start && span.end <= close
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn offered_slots_are_always_bookable_and_never_collide(w in world()) {
        let q = Query { now: w.now, from: None, to: None, part: DayPart::Any, limit: 2000 };
        let slots = available_slots(&w.schedule, &w.service, &w.resources, &w.occupied, &q);
        let cell = w.schedule.slot_minutes;
        for slot in &slots {
            let service_span = Span::new(slot.start, slot.end);
            prop_assert!(slot.start >= w.now.checked_add(w.schedule.min_notice).unwrap(), "before notice");
            prop_assert!(inside_hours(&w.schedule, &service_span), "outside hours: {slot:?}");
            let day = slot.start.to_zoned(w.schedule.zone.clone()).date();
            prop_assert!(!w.schedule.closed_dates.contains(&day), "on a holiday");
            prop_assert!(w.schedule.blackouts.iter().all(|b| !b.overlaps(&service_span)), "in a blackout");
            prop_assert!(!slot.resources.is_empty());
            let wanted = cells(&w.service.blocked_span(slot.start), cell);
            for r in &slot.resources {
                for o in w.occupied.iter().filter(|o| &o.resource == r) {
                    prop_assert!(!cells(&o.blocked, cell).overlaps(&wanted), "{r} double-booked at {slot:?} by {o:?}");
                }
                if let Some(limit) = w.schedule.daily_limit {
                    let that_day = w.occupied.iter().filter(|o| &o.resource == r && o.start.to_zoned(w.schedule.zone.clone()).date() == day).count();
                    prop_assert!((that_day as u32) < limit, "over the daily limit");
                }
            }
            let checked = check_start(&w.schedule, &w.service, &w.resources, &w.occupied, slot.start, w.now);
            prop_assert_eq!(checked, Ok(slot.resources.clone()));
        }
        // Earliest first, each start once.
        prop_assert!(slots.windows(2).all(|p| p[0].start < p[1].start));
    }

    #[test]
    fn a_booked_slot_is_never_offered_again_on_the_same_resource(w in world()) {
        let q = Query { now: w.now, from: None, to: None, part: DayPart::Any, limit: 2000 };
        let slots = available_slots(&w.schedule, &w.service, &w.resources, &w.occupied, &q);
        if let Some(slot) = slots.first() {
            let who = slot.resources[0].clone();
            let mut occupied = w.occupied.clone();
            occupied.push(Occupied { resource: who.clone(), start: slot.start, blocked: w.service.blocked_span(slot.start) });
            let again = available_slots(&w.schedule, &w.service, &w.resources, &occupied, &q);
            for s in again.iter().filter(|s| s.resources.contains(&who)) {
                let a = cells(&w.service.blocked_span(s.start), w.schedule.slot_minutes);
                let b = cells(&w.service.blocked_span(slot.start), w.schedule.slot_minutes);
                prop_assert!(!a.overlaps(&b));
            }
        }
    }
}
