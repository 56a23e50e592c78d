//! The booking section of a business's configuration (`[booking]`, `[[booking.resources]]`
//! and `[[services]]` in business.toml), validated and turned into the engine's terms.

use serde::{Deserialize, Serialize};

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::SignedDuration;

use super::engine::{Opening, Schedule, Service, Span};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingRules {
    /// Start-time step and lock-cell size; must divide 60.
    #[serde(default = "default_slot")]
    pub slot_minutes: i32,
    #[serde(default)]
    pub min_notice_minutes: i64,
    #[serde(default = "default_days")]
    pub max_days_ahead: i32,
    /// Most jobs one resource takes in a day.
    #[serde(default)]
    pub daily_limit: Option<u32>,
    /// Local dates the business is closed ("2025-12-25").
    #[serde(default)]
    pub holidays: Vec<Date>,
    /// Closed stretches in local time.
    #[serde(default)]
    pub blackouts: Vec<Blackout>,
    pub hours: WeeklyHours,
    pub resources: Vec<Resource>,
}

fn default_slot() -> i32 {
    30
}

fn default_days() -> i32 {
    30
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blackout {
    pub start: DateTime,
    pub end: DateTime,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Openings per weekday as "HH:MM-HH:MM" strings; a missing day is closed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyHours {
    #[serde(default)]
    pub monday: Vec<String>,
    #[serde(default)]
    pub tuesday: Vec<String>,
    #[serde(default)]
    pub wednesday: Vec<String>,
    #[serde(default)]
    pub thursday: Vec<String>,
    #[serde(default)]
    pub friday: Vec<String>,
    #[serde(default)]
    pub saturday: Vec<String>,
    #[serde(default)]
    pub sunday: Vec<String>,
}

/// Someone (or something) a job needs: a technician, a chair, a bay.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub id: String,
    pub name: String,
    /// Service ids this resource does; empty means every service.
    #[serde(default)]
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    pub id: String,
    /// As the agent and the texts say it ("boiler service").
    pub name: String,
    pub duration_minutes: i64,
    #[serde(default)]
    pub buffer_before_minutes: i64,
    #[serde(default)]
    pub buffer_after_minutes: i64,
    /// For routing leads to providers (dispatch).
    #[serde(default)]
    pub category: Option<String>,
}

impl ServiceDef {
    pub fn as_engine(&self) -> Service {
        Service {
            duration: SignedDuration::from_mins(self.duration_minutes),
            buffer_before: SignedDuration::from_mins(self.buffer_before_minutes),
            buffer_after: SignedDuration::from_mins(self.buffer_after_minutes),
        }
    }
}

/// Most lock cells one booking may hold, so a move (old and new cells, the booking and its
/// customer entry) fits one DynamoDB transaction of 100 items.
pub const MAX_CELLS_PER_BOOKING: i64 = 48;

/// A problem with one field; the caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn fail(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Parses "08:00-12:30".
pub fn parse_opening(text: &str) -> Result<Opening, String> {
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| format!("{text:?} is not HH:MM-HH:MM"))?;
    let parse = |t: &str| -> Result<Time, String> {
        t.trim()
            .parse::<Time>()
            .map_err(|_| format!("{t:?} is not a time like 08:30"))
    };
    let (start, end) = (parse(a)?, parse(b)?);
    if start >= end {
        return Err(format!("{text:?} ends before it starts"));
    }
    Ok(Opening { start, end })
}

impl WeeklyHours {
    pub fn days(&self) -> [(&'static str, &Vec<String>); 7] {
        [
            ("monday", &self.monday),
            ("tuesday", &self.tuesday),
            ("wednesday", &self.wednesday),
            ("thursday", &self.thursday),
            ("friday", &self.friday),
            ("saturday", &self.saturday),
            ("sunday", &self.sunday),
        ]
    }

    /// Openings per weekday, Monday first, checked: well formed, in order, not overlapping.
    pub fn openings(&self) -> Result<[Vec<Opening>; 7], FieldError> {
        let mut week: [Vec<Opening>; 7] = Default::default();
        for (i, (day, texts)) in self.days().into_iter().enumerate() {
            for (j, text) in texts.iter().enumerate() {
                let field = format!("booking.hours.{day}[{j}]");
                let opening = parse_opening(text).map_err(|m| fail(&field, m))?;
                if let Some(prev) = week[i].last() {
                    if opening.start < prev.end {
                        return Err(fail(field, "overlaps or comes before the previous opening"));
                    }
                }
                week[i].push(opening);
            }
        }
        Ok(week)
    }
}

impl BookingRules {
    pub fn validate(&self, services: &[ServiceDef]) -> Result<(), FieldError> {
        if !(1..=60).contains(&self.slot_minutes) || 60 % self.slot_minutes != 0 {
            return Err(fail(
                "booking.slot_minutes",
                "must divide 60 (5, 10, 15, 20, 30 or 60)",
            ));
        }
        if self.min_notice_minutes < 0 {
            return Err(fail("booking.min_notice_minutes", "must not be negative"));
        }
        if !(1..=366).contains(&self.max_days_ahead) {
            return Err(fail("booking.max_days_ahead", "must be 1 to 366"));
        }
        if self.daily_limit == Some(0) {
            return Err(fail(
                "booking.daily_limit",
                "0 would take no bookings; leave it out for no limit",
            ));
        }
        self.hours.openings()?;
        for (i, b) in self.blackouts.iter().enumerate() {
            if b.start >= b.end {
                return Err(fail(
                    format!("booking.blackouts[{i}]"),
                    "ends before it starts",
                ));
            }
        }
        if self.resources.is_empty() {
            return Err(fail(
                "booking.resources",
                "at least one resource (technician) is needed",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, r) in self.resources.iter().enumerate() {
            let field = format!("booking.resources[{i}]");
            if !crate::ids::is_safe_id(&r.id) {
                return Err(fail(
                    format!("{field}.id"),
                    "1 to 64 letters, digits, '-' or '_'",
                ));
            }
            if !seen.insert(&r.id) {
                return Err(fail(
                    format!("{field}.id"),
                    format!("{:?} is listed twice", r.id),
                ));
            }
            for (j, s) in r.services.iter().enumerate() {
                if !services.iter().any(|d| &d.id == s) {
                    return Err(fail(
                        format!("{field}.services[{j}]"),
                        format!("no service with id {s:?}"),
                    ));
                }
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, s) in services.iter().enumerate() {
            let field = format!("services[{i}]");
            if !crate::ids::is_safe_id(&s.id) {
                return Err(fail(
                    format!("{field}.id"),
                    "1 to 64 letters, digits, '-' or '_'",
                ));
            }
            if !ids.insert(&s.id) {
                return Err(fail(
                    format!("{field}.id"),
                    format!("{:?} is listed twice", s.id),
                ));
            }
            if !(1..=24 * 60).contains(&s.duration_minutes) {
                return Err(fail(
                    format!("{field}.duration_minutes"),
                    "must be 1 to 1440",
                ));
            }
            if !(0..=24 * 60).contains(&s.buffer_before_minutes)
                || !(0..=24 * 60).contains(&s.buffer_after_minutes)
            {
                return Err(fail(
                    format!("{field}.buffer_*_minutes"),
                    "must be 0 to 1440",
                ));
            }
            // A booking locks one item per cell in one DynamoDB transaction (at most 100
            // items), and a move holds the old and the new cells at once.
            let blocked = s.buffer_before_minutes + s.duration_minutes + s.buffer_after_minutes;
            let slot = i64::from(self.slot_minutes);
            let cells = (blocked + slot - 1) / slot + 1;
            if cells > MAX_CELLS_PER_BOOKING {
                return Err(fail(
                    format!("{field}.duration_minutes"),
                    format!(
                        "with its buffers it blocks {cells} slots of {} minutes; at most {MAX_CELLS_PER_BOOKING} (raise booking.slot_minutes)",
                        self.slot_minutes
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The engine's schedule in `zone` (validated rules only).
    pub fn schedule(&self, zone: &TimeZone) -> Schedule {
        let blackouts = self
            .blackouts
            .iter()
            .filter_map(|b| {
                let s = b.start.to_zoned(zone.clone()).ok()?.timestamp();
                let e = b.end.to_zoned(zone.clone()).ok()?.timestamp();
                Some(Span::new(s, e))
            })
            .collect();
        Schedule {
            zone: zone.clone(),
            week: self.hours.openings().unwrap_or_default(),
            closed_dates: self.holidays.clone(),
            blackouts,
            min_notice: SignedDuration::from_mins(self.min_notice_minutes),
            max_days_ahead: self.max_days_ahead,
            slot_minutes: self.slot_minutes,
            daily_limit: self.daily_limit,
        }
    }

    /// The resources that do `service`, in configured order.
    pub fn resources_for(&self, service: &str) -> Vec<String> {
        self.resources
            .iter()
            .filter(|r| r.services.is_empty() || r.services.iter().any(|s| s == service))
            .map(|r| r.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> (BookingRules, Vec<ServiceDef>) {
        #[derive(Deserialize)]
        struct Doc {
            booking: BookingRules,
            services: Vec<ServiceDef>,
        }
        let d: Doc = toml::from_str(text).unwrap();
        (d.booking, d.services)
    }

    const BASE: &str = r#"
        [booking]
        slot_minutes = 30
        min_notice_minutes = 120
        holidays = ["2025-12-25"]
        blackouts = [{ start = "2025-12-24T13:00", end = "2025-12-24T18:00", reason = "party" }]
        [booking.hours]
        monday = ["08:00-12:00", "13:00-17:00"]
        saturday = ["09:00-12:00"]
        [[booking.resources]]
        id = "dave"
        name = "Dave"
        services = ["boiler_service"]
        [[booking.resources]]
        id = "sam"
        name = "Sam"
        [[services]]
        id = "boiler_service"
        name = "boiler service"
        duration_minutes = 60
        buffer_after_minutes = 30
        [[services]]
        id = "leak_repair"
        name = "leak repair"
        duration_minutes = 90
    "#;

    #[test]
    fn a_well_formed_section_becomes_a_schedule() {
        let (r, s) = rules(BASE);
        r.validate(&s).unwrap();
        let schedule = r.schedule(&TimeZone::get("Europe/London").unwrap());
        assert_eq!(schedule.week[0].len(), 2);
        assert_eq!(schedule.week[5].len(), 1);
        assert!(schedule.week[6].is_empty());
        assert_eq!(schedule.blackouts.len(), 1);
        assert_eq!(r.resources_for("boiler_service"), ["dave", "sam"]);
        assert_eq!(r.resources_for("leak_repair"), ["sam"]);
    }

    #[test]
    fn mistakes_name_the_field() {
        let cases = [
            (
                BASE.replace("slot_minutes = 30", "slot_minutes = 45"),
                "booking.slot_minutes",
            ),
            (
                BASE.replace("\"13:00-17:00\"", "\"11:00-17:00\""),
                "booking.hours.monday[1]",
            ),
            (
                BASE.replace("\"09:00-12:00\"", "\"12:00-09:00\""),
                "booking.hours.saturday[0]",
            ),
            (
                BASE.replace("services = [\"boiler_service\"]", "services = [\"boiler\"]"),
                "booking.resources[0].services[0]",
            ),
            (
                BASE.replace("id = \"sam\"", "id = \"dave\""),
                "booking.resources[1].id",
            ),
            (
                BASE.replace("duration_minutes = 90", "duration_minutes = 0"),
                "services[1].duration_minutes",
            ),
        ];
        for (text, field) in cases {
            let (r, s) = rules(&text);
            assert_eq!(r.validate(&s).unwrap_err().field, field);
        }
    }
}
