//! Availability: which start times a service can be booked at, on which resources (technicians,
//! chairs, bays). Pure: no clock, no I/O; the caller passes `now` and the existing bookings.
//!
//! Conflicts are judged on the same grid the database locks (one cell per `slot_minutes`,
//! aligned to the Unix epoch; see [`cells`]), so a slot offered here is never refused there for
//! a reason this module did not see, and the database can never hold two overlapping bookings.

use std::collections::HashMap;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

/// A half-open span of absolute time, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Span {
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        Self { start, end }
    }

    pub fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn contains(&self, other: &Span) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    pub fn length(&self) -> SignedDuration {
        self.end.duration_since(self.start)
    }
}

/// Opening hours within one day, local wall-clock time, `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opening {
    pub start: Time,
    pub end: Time,
}

/// The business's booking rules.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub zone: TimeZone,
    /// Openings per weekday, Monday first. Several per day (a lunch break is two openings).
    pub week: [Vec<Opening>; 7],
    /// Whole days closed (holidays), local dates.
    pub closed_dates: Vec<Date>,
    /// Closed spans of absolute time (a training afternoon, a week away).
    pub blackouts: Vec<Span>,
    pub min_notice: SignedDuration,
    /// Bookable up to this many local days after today.
    pub max_days_ahead: i32,
    /// Start-time step and the size of a database lock cell. Must divide 60.
    pub slot_minutes: i32,
    /// Most bookings one resource takes on one local day.
    pub daily_limit: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub duration: SignedDuration,
    pub buffer_before: SignedDuration,
    pub buffer_after: SignedDuration,
}

impl Service {
    /// The service itself, from `start`.
    pub fn service_span(&self, start: Timestamp) -> Span {
        Span::new(start, start.saturating_add(self.duration).unwrap_or(start))
    }

    /// What a booking at `start` keeps its resource from: the service and its buffers.
    pub fn blocked_span(&self, start: Timestamp) -> Span {
        let s = start.saturating_sub(self.buffer_before).unwrap_or(start);
        let e = start
            .saturating_add(self.duration)
            .and_then(|t| t.saturating_add(self.buffer_after))
            .unwrap_or(start);
        Span::new(s, e)
    }
}

/// A booking (confirmed, held or pending: all count as busy) that occupies a resource.
#[derive(Debug, Clone)]
pub struct Occupied {
    pub resource: String,
    /// The service start (its local date counts towards the daily limit).
    pub start: Timestamp,
    /// The service with its buffers.
    pub blocked: Span,
}

/// Which part of the day the caller prefers (local time of the start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DayPart {
    #[default]
    Any,
    /// Before noon.
    Morning,
    /// Noon to 5pm.
    Afternoon,
    /// From 5pm.
    Evening,
}

impl DayPart {
    fn admits(self, hour: i8) -> bool {
        match self {
            Self::Any => true,
            Self::Morning => hour < 12,
            Self::Afternoon => (12..17).contains(&hour),
            Self::Evening => hour >= 17,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Query {
    pub now: Timestamp,
    /// First and last local dates to look at (inclusive); clipped to today..today+max_days_ahead.
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub part: DayPart,
    /// At most this many slots.
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub start: Timestamp,
    pub end: Timestamp,
    /// Free resources for this start, in the order given.
    pub resources: Vec<String>,
}

/// Why a start time cannot be booked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Sooner than the minimum notice; the earliest allowed start is given.
    TooSoon { earliest: Timestamp },
    /// Further ahead than bookings are taken.
    TooFarAhead,
    /// Not a start time the business offers (closed, outside hours, off the slot grid).
    NotOffered,
    /// Every resource is busy at that time.
    Taken,
}

/// The lock cells a span occupies: epoch-aligned, `cell_minutes` long, covering it entirely.
pub fn cells(span: &Span, cell_minutes: i32) -> Span {
    let size = i64::from(cell_minutes.max(1)) * 60;
    let start = span.start.as_second().div_euclid(size) * size;
    let end_secs = span.end.as_second() + i64::from(span.end.subsec_nanosecond() > 0);
    let end = (end_secs + size - 1).div_euclid(size) * size;
    Span::new(
        Timestamp::from_second(start).unwrap_or(span.start),
        Timestamp::from_second(end).unwrap_or(span.end),
    )
}

/// The cell starts a span covers (what the database locks).
pub fn cell_starts(span: &Span, cell_minutes: i32) -> Vec<Timestamp> {
    let covered = cells(span, cell_minutes);
    let size = i64::from(cell_minutes.max(1)) * 60;
    (covered.start.as_second()..covered.end.as_second())
        .step_by(size as usize)
        .filter_map(|s| Timestamp::from_second(s).ok())
        .collect()
}

/// Cell bounds in epoch seconds, `[start, end)`.
fn cell_bounds(span: &Span, cell_minutes: i32) -> (i64, i64) {
    let c = cells(span, cell_minutes);
    (c.start.as_second(), c.end.as_second())
}

/// The busy cells of the resources asked about, sorted, for quick overlap checks.
struct Calendar<'a> {
    schedule: &'a Schedule,
    resources: &'a [String],
    /// Per resource (same order as `resources`): busy cell bounds sorted by start, and the
    /// longest one (only spans starting within that reach of a query can overlap it).
    busy: Vec<(Vec<(i64, i64)>, i64)>,
    per_day: HashMap<(usize, Date), u32>,
}

impl<'a> Calendar<'a> {
    fn new(schedule: &'a Schedule, resources: &'a [String], occupied: &[Occupied]) -> Self {
        let mut busy: Vec<(Vec<(i64, i64)>, i64)> = vec![(Vec::new(), 0); resources.len()];
        let mut per_day: HashMap<(usize, Date), u32> = HashMap::new();
        for o in occupied {
            // A handful of resources: a linear search beats hashing.
            let Some(i) = resources.iter().position(|r| *r == o.resource) else {
                continue;
            };
            busy[i]
                .0
                .push(cell_bounds(&o.blocked, schedule.slot_minutes));
            if schedule.daily_limit.is_some() {
                let day = schedule.zone.to_datetime(o.start).date();
                *per_day.entry((i, day)).or_default() += 1;
            }
        }
        for (spans, longest) in &mut busy {
            spans.sort_unstable();
            *longest = spans.iter().map(|(s, e)| e - s).max().unwrap_or(0);
        }
        Self {
            schedule,
            resources,
            busy,
            per_day,
        }
    }

    fn is_free(&self, index: usize, wanted: (i64, i64), day: Date) -> bool {
        if let Some(limit) = self.schedule.daily_limit {
            if self.per_day.get(&(index, day)).copied().unwrap_or(0) >= limit {
                return false;
            }
        }
        let (spans, longest) = &self.busy[index];
        let first = spans.partition_point(|(s, _)| *s < wanted.0 - longest);
        spans[first..]
            .iter()
            .take_while(|(s, _)| *s < wanted.1)
            .all(|(s, e)| !(*s < wanted.1 && wanted.0 < *e))
    }

    /// The resources free for a booking that blocks `blocked`, in the order asked.
    fn free(&self, blocked: &Span, day: Date) -> Vec<String> {
        let wanted = cell_bounds(blocked, self.schedule.slot_minutes);
        (0..self.resources.len())
            .filter(|i| self.is_free(*i, wanted, day))
            .map(|i| self.resources[i].clone())
            .collect()
    }
}

impl Schedule {
    fn today(&self, now: Timestamp) -> Date {
        self.zone.to_datetime(now).date()
    }

    fn last_bookable_day(&self, now: Timestamp) -> Date {
        self.today(now)
            .checked_add(i64::from(self.max_days_ahead.max(0)).days())
            .unwrap_or(Date::MAX)
    }

    fn is_closed(&self, day: Date) -> bool {
        self.closed_dates.contains(&day)
    }

    fn local(&self, day: Date, time: Time) -> Option<Timestamp> {
        // In a DST gap the wall-clock time does not exist: "compatible" moves it forward, as
        // people do; in a fold it takes the first occurrence.
        self.zone
            .to_ambiguous_timestamp(day.to_datetime(time))
            .compatible()
            .ok()
    }

    /// Every start the business offers on `day` for `service`, ignoring bookings and notice.
    fn starts_on(&self, day: Date, service: &Service) -> Vec<Timestamp> {
        let mut out = Vec::new();
        if self.is_closed(day) {
            return out;
        }
        let step = SignedDuration::from_mins(i64::from(self.slot_minutes.max(1)));
        for opening in &self.week[day.weekday().to_monday_zero_offset() as usize] {
            let (Some(open), Some(close)) =
                (self.local(day, opening.start), self.local(day, opening.end))
            else {
                continue;
            };
            let open_span = Span::new(open, close);
            let mut start = open;
            while let Ok(end) = start.checked_add(service.duration) {
                if end > open_span.end {
                    break;
                }
                let service_span = Span::new(start, end);
                if !self.blackouts.iter().any(|b| b.overlaps(&service_span)) {
                    out.push(start);
                }
                match start.checked_add(step) {
                    Ok(next) => start = next,
                    Err(_) => break,
                }
            }
        }
        // Openings may be listed in any order, or overlap: each start once, earliest first.
        out.sort();
        out.dedup();
        out
    }
}

/// The spans the business is open on `day` (hours less blackouts), earliest first.
fn open_spans(schedule: &Schedule, day: Date) -> Vec<Span> {
    let mut out = Vec::new();
    if schedule.is_closed(day) {
        return out;
    }
    for opening in &schedule.week[day.weekday().to_monday_zero_offset() as usize] {
        let (Some(open), Some(close)) = (
            schedule.local(day, opening.start),
            schedule.local(day, opening.end),
        ) else {
            continue;
        };
        let mut pieces = vec![Span::new(open, close)];
        for b in &schedule.blackouts {
            pieces = pieces
                .into_iter()
                .flat_map(|p| {
                    if !p.overlaps(b) {
                        return vec![p];
                    }
                    [Span::new(p.start, b.start), Span::new(b.end, p.end)]
                        .into_iter()
                        .filter(|s| s.start < s.end)
                        .collect()
                })
                .collect();
        }
        out.extend(pieces);
    }
    out.sort();
    out
}

/// Whether someone is working at `t`: inside the hours, not on a holiday or blackout.
pub fn is_open(schedule: &Schedule, t: Timestamp) -> bool {
    let day = schedule.today(t);
    open_spans(schedule, day)
        .iter()
        .any(|s| s.start <= t && t < s.end)
}

/// The next time the business opens after `t` (within `days` days), for a callback promise.
pub fn next_opening(schedule: &Schedule, t: Timestamp, days: i32) -> Option<Timestamp> {
    let mut day = schedule.today(t);
    for _ in 0..=days.max(0) {
        if let Some(s) = open_spans(schedule, day).iter().find(|s| s.start > t) {
            return Some(s.start);
        }
        day = day.tomorrow().ok()?;
    }
    None
}

/// Open slots for `service` on `resources`, earliest first.
pub fn available_slots(
    schedule: &Schedule,
    service: &Service,
    resources: &[String],
    occupied: &[Occupied],
    query: &Query,
) -> Vec<Slot> {
    let calendar = Calendar::new(schedule, resources, occupied);
    let earliest = query
        .now
        .saturating_add(schedule.min_notice)
        .unwrap_or(query.now);
    let today = schedule.today(query.now);
    let first = query.from.map_or(today, |f| f.max(today));
    let last = query.to.map_or(schedule.last_bookable_day(query.now), |t| {
        t.min(schedule.last_bookable_day(query.now))
    });
    let mut slots = Vec::new();
    let mut day = first;
    while day <= last && slots.len() < query.limit {
        for start in schedule.starts_on(day, service) {
            if start < earliest || !query.part.admits(schedule.zone.to_datetime(start).hour()) {
                continue;
            }
            let free = calendar.free(&service.blocked_span(start), day);
            if !free.is_empty() {
                slots.push(Slot {
                    start,
                    end: service.service_span(start).end,
                    resources: free,
                });
                if slots.len() >= query.limit {
                    break;
                }
            }
        }
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    slots
}

/// Whether `start` can be booked now, and on which resources.
pub fn check_start(
    schedule: &Schedule,
    service: &Service,
    resources: &[String],
    occupied: &[Occupied],
    start: Timestamp,
    now: Timestamp,
) -> Result<Vec<String>, Refusal> {
    let earliest = now.saturating_add(schedule.min_notice).unwrap_or(now);
    if start < earliest {
        return Err(Refusal::TooSoon { earliest });
    }
    let day = schedule.zone.to_datetime(start).date();
    if day > schedule.last_bookable_day(now) {
        return Err(Refusal::TooFarAhead);
    }
    if !schedule.starts_on(day, service).contains(&start) {
        return Err(Refusal::NotOffered);
    }
    let free = Calendar::new(schedule, resources, occupied).free(&service.blocked_span(start), day);
    if free.is_empty() {
        Err(Refusal::Taken)
    } else {
        Ok(free)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn weekdays(openings: &[(Time, Time)]) -> [Vec<Opening>; 7] {
        let day: Vec<Opening> = openings
            .iter()
            .map(|(s, e)| Opening { start: *s, end: *e })
            .collect();
        [
            day.clone(),
            day.clone(),
            day.clone(),
            day.clone(),
            day.clone(),
            Vec::new(),
            Vec::new(),
        ]
    }

    fn schedule(zone: &str) -> Schedule {
        Schedule {
            zone: TimeZone::get(zone).unwrap(),
            week: weekdays(&[
                (time(8, 0, 0, 0), time(12, 0, 0, 0)),
                (time(13, 0, 0, 0), time(17, 0, 0, 0)),
            ]),
            closed_dates: Vec::new(),
            blackouts: Vec::new(),
            min_notice: SignedDuration::from_hours(2),
            max_days_ahead: 30,
            slot_minutes: 30,
            daily_limit: None,
        }
    }

    fn service(mins: i64, before: i64, after: i64) -> Service {
        Service {
            duration: SignedDuration::from_mins(mins),
            buffer_before: SignedDuration::from_mins(before),
            buffer_after: SignedDuration::from_mins(after),
        }
    }

    fn query(now: &str) -> Query {
        Query {
            now: ts(now),
            from: None,
            to: None,
            part: DayPart::Any,
            limit: 500,
        }
    }

    fn local_times(schedule: &Schedule, slots: &[Slot], day: Date) -> Vec<String> {
        slots
            .iter()
            .map(|s| s.start.to_zoned(schedule.zone.clone()))
            .filter(|z| z.date() == day)
            .map(|z| z.strftime("%H:%M").to_string())
            .collect()
    }

    #[test]
    fn a_lunch_break_splits_the_day() {
        let s = schedule("Europe/London");
        let slots = available_slots(
            &s,
            &service(60, 0, 0),
            &["ann".into()],
            &[],
            &query("2025-10-13T00:00:00Z"),
        );
        let tuesday = local_times(&s, &slots, date(2025, 10, 14));
        assert_eq!(
            tuesday,
            [
                "08:00", "08:30", "09:00", "09:30", "10:00", "10:30", "11:00", "13:00", "13:30",
                "14:00", "14:30", "15:00", "15:30", "16:00"
            ]
        );
    }

    #[test]
    fn buffers_keep_the_technician_free_for_travel() {
        let s = schedule("Europe/London");
        let job = service(60, 30, 30);
        // Ann has a 10:00-11:00 job (BST: 09:00Z) with 30 minutes either side.
        let start = ts("2025-10-14T09:00:00Z");
        let booked = [Occupied {
            resource: "ann".into(),
            start,
            blocked: job.blocked_span(start),
        }];
        let slots = available_slots(
            &s,
            &job,
            &["ann".into()],
            &booked,
            &query("2025-10-13T00:00:00Z"),
        );
        let tuesday = local_times(&s, &slots, date(2025, 10, 14));
        // 08:00 would end at 09:00 + 30 min buffer = 09:30, touching the 09:30 buffer: allowed.
        assert!(tuesday.contains(&"08:00".to_string()));
        assert!(
            !tuesday.contains(&"08:30".to_string()),
            "its buffer runs into the booking's"
        );
        assert!(
            !tuesday.contains(&"11:00".to_string()),
            "its buffer from 10:30 meets the booking's until 11:30"
        );
        assert!(tuesday.contains(&"13:00".to_string()));
    }

    #[test]
    fn two_technicians_give_two_parallel_jobs() {
        let s = schedule("Europe/London");
        let job = service(60, 0, 0);
        let start = ts("2025-10-14T07:00:00Z"); // 08:00 BST
        let booked = [Occupied {
            resource: "ann".into(),
            start,
            blocked: job.blocked_span(start),
        }];
        let people = ["ann".to_string(), "bob".to_string()];
        let slots = available_slots(&s, &job, &people, &booked, &query("2025-10-13T00:00:00Z"));
        let eight = slots.iter().find(|s| s.start == start).unwrap();
        assert_eq!(eight.resources, ["bob"]);
        assert_eq!(
            check_start(
                &s,
                &job,
                &people,
                &booked,
                start,
                ts("2025-10-13T00:00:00Z")
            ),
            Ok(vec!["bob".to_string()])
        );
        let both = [
            booked[0].clone(),
            Occupied {
                resource: "bob".into(),
                start,
                blocked: job.blocked_span(start),
            },
        ];
        assert_eq!(
            check_start(&s, &job, &people, &both, start, ts("2025-10-13T00:00:00Z")),
            Err(Refusal::Taken)
        );
    }

    #[test]
    fn notice_horizon_holidays_and_blackouts_are_respected() {
        let mut s = schedule("Europe/London");
        s.closed_dates = vec![date(2025, 10, 15)];
        s.blackouts = vec![Span::new(
            ts("2025-10-16T12:00:00Z"),
            ts("2025-10-16T16:00:00Z"),
        )];
        s.max_days_ahead = 5;
        let job = service(60, 0, 0);
        let now = "2025-10-14T08:10:00Z"; // 09:10 BST: nothing before 11:10
        let slots = available_slots(&s, &job, &["ann".into()], &[], &query(now));
        // 11:30 would run past the 12:00 lunch break.
        assert_eq!(local_times(&s, &slots, date(2025, 10, 14))[0], "13:00");
        assert!(
            local_times(&s, &slots, date(2025, 10, 15)).is_empty(),
            "holiday"
        );
        let thursday = local_times(&s, &slots, date(2025, 10, 16));
        // The blackout covers 13:00-17:00 BST: only the morning is left.
        assert_eq!(thursday.last().unwrap(), "11:00");
        assert!(slots
            .iter()
            .all(|sl| sl.start.to_zoned(s.zone.clone()).date() <= date(2025, 10, 19)));
        assert_eq!(
            check_start(
                &s,
                &job,
                &["ann".into()],
                &[],
                ts("2025-10-14T08:30:00Z"),
                ts(now)
            ),
            Err(Refusal::TooSoon {
                earliest: ts("2025-10-14T10:10:00Z")
            })
        );
        assert_eq!(
            check_start(
                &s,
                &job,
                &["ann".into()],
                &[],
                ts("2025-10-14T08:45:00Z"),
                ts("2025-10-13T00:00:00Z")
            ),
            Err(Refusal::NotOffered),
            "off the grid"
        );
        assert_eq!(
            check_start(
                &s,
                &job,
                &["ann".into()],
                &[],
                ts("2025-11-14T09:00:00Z"),
                ts(now)
            ),
            Err(Refusal::TooFarAhead)
        );
    }

    #[test]
    fn the_daily_limit_caps_one_technicians_day() {
        let mut s = schedule("Europe/London");
        s.daily_limit = Some(1);
        let job = service(60, 0, 0);
        let start = ts("2025-10-14T07:00:00Z");
        let booked = [Occupied {
            resource: "ann".into(),
            start,
            blocked: job.blocked_span(start),
        }];
        let slots = available_slots(
            &s,
            &job,
            &["ann".into()],
            &booked,
            &query("2025-10-13T00:00:00Z"),
        );
        assert!(local_times(&s, &slots, date(2025, 10, 14)).is_empty());
        assert!(!local_times(&s, &slots, date(2025, 10, 15)).is_empty());
    }

    #[test]
    fn time_of_day_preference() {
        let s = schedule("America/New_York");
        let q = Query {
            part: DayPart::Afternoon,
            ..query("2025-10-13T00:00:00Z")
        };
        let slots = available_slots(&s, &service(60, 0, 0), &["ann".into()], &[], &q);
        assert!(slots
            .iter()
            .all(|sl| (12..17).contains(&sl.start.to_zoned(s.zone.clone()).hour())));
        assert!(!slots.is_empty());
    }

    #[test]
    fn london_slots_keep_their_wall_clock_times_across_both_dst_changes() {
        let s = schedule("Europe/London");
        let job = service(60, 0, 0);
        // Clocks go forward on Sunday 30 March 2025 and back on Sunday 26 October 2025.
        for (now, monday, first_utc) in [
            (
                "2025-03-27T00:00:00Z",
                date(2025, 3, 28),
                "2025-03-28T08:00:00Z",
            ), // Friday, GMT
            (
                "2025-03-27T00:00:00Z",
                date(2025, 3, 31),
                "2025-03-31T07:00:00Z",
            ), // Monday, BST
            (
                "2025-10-23T00:00:00Z",
                date(2025, 10, 24),
                "2025-10-24T07:00:00Z",
            ), // Friday, BST
            (
                "2025-10-23T00:00:00Z",
                date(2025, 10, 27),
                "2025-10-27T08:00:00Z",
            ), // Monday, GMT
        ] {
            let slots = available_slots(&s, &job, &["ann".into()], &[], &query(now));
            let day: Vec<&Slot> = slots
                .iter()
                .filter(|sl| sl.start.to_zoned(s.zone.clone()).date() == monday)
                .collect();
            assert_eq!(day[0].start, ts(first_utc), "{monday}");
            assert_eq!(local_times(&s, &slots, monday)[0], "08:00");
            assert_eq!(local_times(&s, &slots, monday).last().unwrap(), "16:00");
        }
    }

    #[test]
    fn new_york_slots_keep_their_wall_clock_times_across_both_dst_changes() {
        let s = schedule("America/New_York");
        let job = service(30, 0, 0);
        // Forward on Sunday 9 March 2025, back on Sunday 2 November 2025.
        for (now, day, first_utc) in [
            (
                "2025-03-06T00:00:00Z",
                date(2025, 3, 7),
                "2025-03-07T13:00:00Z",
            ), // EST
            (
                "2025-03-06T00:00:00Z",
                date(2025, 3, 10),
                "2025-03-10T12:00:00Z",
            ), // EDT
            (
                "2025-10-30T00:00:00Z",
                date(2025, 10, 31),
                "2025-10-31T12:00:00Z",
            ), // EDT
            (
                "2025-10-30T00:00:00Z",
                date(2025, 11, 3),
                "2025-11-03T13:00:00Z",
            ), // EST
        ] {
            let slots = available_slots(&s, &job, &["ann".into()], &[], &query(now));
            let first = slots
                .iter()
                .find(|sl| sl.start.to_zoned(s.zone.clone()).date() == day)
                .unwrap();
            assert_eq!(first.start, ts(first_utc), "{day}");
        }
    }

    #[test]
    fn an_opening_across_the_spring_gap_offers_only_real_hours() {
        let mut s = schedule("Europe/London");
        let night = vec![Opening {
            start: time(0, 0, 0, 0),
            end: time(4, 0, 0, 0),
        }];
        s.week = [
            night.clone(),
            night.clone(),
            night.clone(),
            night.clone(),
            night.clone(),
            night.clone(),
            night,
        ];
        s.slot_minutes = 60;
        s.min_notice = SignedDuration::ZERO;
        let slots = available_slots(
            &s,
            &service(60, 0, 0),
            &["ann".into()],
            &[],
            &query("2025-03-29T12:00:00Z"),
        );
        // 00:00 GMT to 04:00 BST is three real hours: 00:00, 02:00 and 03:00 local.
        assert_eq!(
            local_times(&s, &slots, date(2025, 3, 30)),
            ["00:00", "02:00", "03:00"]
        );
        // In autumn the same wall-clock opening is five real hours long.
        let autumn = available_slots(
            &s,
            &service(60, 0, 0),
            &["ann".into()],
            &[],
            &query("2025-10-25T12:00:00Z"),
        );
        assert_eq!(
            autumn
                .iter()
                .filter(|sl| sl.start.to_zoned(s.zone.clone()).date() == date(2025, 10, 26))
                .count(),
            5
        );
    }

    #[test]
    fn open_hours_and_the_next_opening_follow_the_local_clock() {
        let mut s = schedule("Europe/London");
        s.closed_dates = vec![date(2026, 12, 25)];
        s.blackouts = vec![Span::new(
            ts("2026-12-24T13:00:00Z"),
            ts("2026-12-24T18:00:00Z"),
        )];
        // Thursday 24 Dec, 10:00 GMT: open. 14:00: blacked out. Friday 25th: holiday.
        assert!(is_open(&s, ts("2026-12-24T10:00:00Z")));
        assert!(!is_open(&s, ts("2026-12-24T14:00:00Z")));
        assert!(!is_open(&s, ts("2026-12-25T10:00:00Z")));
        let next = next_opening(&s, ts("2026-12-24T14:00:00Z"), 14).unwrap();
        assert_eq!(
            next,
            ts("2026-12-28T08:00:00Z"),
            "after Christmas and the weekend"
        );
        // Summer time: 8am local is 07:00 UTC.
        assert!(is_open(&s, ts("2026-07-01T07:30:00Z")));
        assert!(!is_open(&s, ts("2026-07-01T06:30:00Z")));
        assert_eq!(
            next_opening(&s, ts("2026-07-01T06:30:00Z"), 14).unwrap(),
            ts("2026-07-01T07:00:00Z")
        );
    }

    #[test]
    fn cells_round_outwards_to_the_grid() {
        let span = Span::new(ts("2025-10-14T09:10:00Z"), ts("2025-10-14T10:05:00Z"));
        assert_eq!(
            cells(&span, 30),
            Span::new(ts("2025-10-14T09:00:00Z"), ts("2025-10-14T10:30:00Z"))
        );
        assert_eq!(cell_starts(&span, 30).len(), 3);
        let exact = Span::new(ts("2025-10-14T09:00:00Z"), ts("2025-10-14T10:00:00Z"));
        assert_eq!(cells(&exact, 30), exact);
    }
}
