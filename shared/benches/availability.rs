//! `cargo bench -p frontdesk --bench availability`: the availability search the
//! check_availability tool runs, over 30 days with 100 and 1,000 existing bookings (target
//! < 1 ms).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use frontdesk::booking::engine::*;
use jiff::civil::time;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

fn busy_business(bookings: i64) -> (Schedule, Service, Vec<String>, Vec<Occupied>, Timestamp) {
    let day = vec![
        Opening {
            start: time(8, 0, 0, 0),
            end: time(12, 0, 0, 0),
        },
        Opening {
            start: time(13, 0, 0, 0),
            end: time(18, 0, 0, 0),
        },
    ];
    let schedule = Schedule {
        zone: TimeZone::get("Europe/London").unwrap(),
        week: [
            day.clone(),
            day.clone(),
            day.clone(),
            day.clone(),
            day.clone(),
            day,
            Vec::new(),
        ],
        closed_dates: Vec::new(),
        blackouts: Vec::new(),
        min_notice: SignedDuration::from_hours(2),
        max_days_ahead: 30,
        slot_minutes: 15,
        daily_limit: Some(8),
    };
    let service = Service {
        duration: SignedDuration::from_mins(60),
        buffer_before: SignedDuration::from_mins(15),
        buffer_after: SignedDuration::from_mins(15),
    };
    let resources: Vec<String> = (0..5).map(|i| format!("tech{i}")).collect();
    let now: Timestamp = "2025-10-13T06:00:00Z".parse().unwrap();
    // The bookings spread over the next 30 days and five technicians.
    let occupied = (0..bookings)
        .map(|i: i64| {
            let start = now
                .checked_add(SignedDuration::from_mins(
                    (i * 43 * 1000 / bookings) % (30 * 24 * 60),
                ))
                .unwrap();
            Occupied {
                resource: format!("tech{}", i % 5),
                start,
                blocked: service.blocked_span(start),
            }
        })
        .collect();
    (schedule, service, resources, occupied, now)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("availability over 30 days, 5 technicians");
    for bookings in [100, 1000] {
        let (schedule, service, resources, occupied, now) = busy_business(bookings);
        let all = Query {
            now,
            from: None,
            to: None,
            part: DayPart::Any,
            limit: usize::MAX,
        };
        let first_ten = Query {
            limit: 10,
            ..all.clone()
        };
        let found = available_slots(&schedule, &service, &resources, &occupied, &all).len();
        println!("30 days, {bookings} bookings, 5 technicians: {found} open slots");
        group.bench_with_input(
            BenchmarkId::new("every slot", bookings),
            &bookings,
            |b, _| b.iter(|| available_slots(&schedule, &service, &resources, &occupied, &all)),
        );
        group.bench_with_input(
            BenchmarkId::new("first 10 slots", bookings),
            &bookings,
            |b, _| {
                b.iter(|| available_slots(&schedule, &service, &resources, &occupied, &first_ten))
            },
        );
        let start =
            available_slots(&schedule, &service, &resources, &occupied, &first_ten)[0].start;
        group.bench_with_input(
            BenchmarkId::new("check one start (create_booking)", bookings),
            &bookings,
            |b, _| b.iter(|| check_start(&schedule, &service, &resources, &occupied, start, now)),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
