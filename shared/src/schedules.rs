//! EventBridge Scheduler: one one-time `at()` schedule per timed message, in the business's time
//! zone, deleted after it fires, named after what it is for (so putting it again moves it, and
//! a repeat is harmless). Its target is the retry queue with a [`Job`]; delivery is
//! at-least-once, and the job is idempotent.

use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, Target,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::error::DependencyError;
use crate::jobs::Job;

#[derive(Clone, Debug)]
pub struct Schedules {
    client: aws_sdk_scheduler::Client,
    group: String,
    target_arn: String,
    role_arn: String,
    /// [`Schedules::list`]'s reads, by name and last modification: a long local run lists
    /// hundreds of schedules every tick, and reads only the new or changed ones.
    listed: Arc<Mutex<HashMap<String, Listed>>>,
}

/// A schedule as last read, and when it was last modified then (seconds, nanoseconds).
type Listed = (i64, u32, Scheduled);

/// A schedule as stored: when it fires (as the instant its local time means) and its job.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    pub name: String,
    /// The `at(...)` expression and its time zone, as given to the Scheduler.
    pub expression: String,
    pub time_zone: String,
    pub at: Timestamp,
    pub job: Job,
}

fn build_err(e: impl std::fmt::Display) -> DependencyError {
    DependencyError::new("scheduler", "CreateSchedule", "Build", e.to_string())
}

/// `at(2026-03-29T17:00:00)`: the instant's wall-clock time in `zone`.
pub fn at_expression(at: Timestamp, zone: &TimeZone) -> String {
    format!(
        "at({})",
        at.to_zoned(zone.clone()).strftime("%Y-%m-%dT%H:%M:%S")
    )
}

/// The instant an `at()` expression in `zone` names.
pub fn instant_of(expression: &str, zone: &TimeZone) -> Option<Timestamp> {
    let inner = expression.strip_prefix("at(")?.strip_suffix(')')?;
    let local: jiff::civil::DateTime = inner.parse().ok()?;
    zone.to_ambiguous_zoned(local)
        .compatible()
        .ok()
        .map(|z| z.timestamp())
}

impl Schedules {
    pub fn new(
        client: aws_sdk_scheduler::Client,
        group: impl Into<String>,
        target_arn: impl Into<String>,
        role_arn: impl Into<String>,
    ) -> Self {
        Self {
            client,
            group: group.into(),
            target_arn: target_arn.into(),
            role_arn: role_arn.into(),
            listed: Arc::default(),
        }
    }

    /// Creates the schedule, or moves it if one with its name exists.
    pub async fn put(
        &self,
        name: &str,
        at: Timestamp,
        zone: &TimeZone,
        job: &Job,
    ) -> Result<(), DependencyError> {
        let input = serde_json::to_string(job).map_err(build_err)?;
        let target = Target::builder()
            .arn(&self.target_arn)
            .role_arn(&self.role_arn)
            .input(input)
            .build()
            .map_err(build_err)?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(build_err)?;
        let expression = at_expression(at, zone);
        let zone_name = zone.iana_name().unwrap_or("UTC").to_string();
        let created = self
            .client
            .create_schedule()
            .name(name)
            .group_name(&self.group)
            .schedule_expression(&expression)
            .schedule_expression_timezone(&zone_name)
            .flexible_time_window(window.clone())
            .target(target.clone())
            .action_after_completion(ActionAfterCompletion::Delete)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) =>
            {
                self.client
                    .update_schedule()
                    .name(name)
                    .group_name(&self.group)
                    .schedule_expression(&expression)
                    .schedule_expression_timezone(&zone_name)
                    .flexible_time_window(window)
                    .target(target)
                    .action_after_completion(ActionAfterCompletion::Delete)
                    .send()
                    .await
                    .map_err(|e| DependencyError::aws("scheduler", "UpdateSchedule", &e))?;
                Ok(())
            }
            Err(e) => Err(DependencyError::aws("scheduler", "CreateSchedule", &e)),
        }
    }

    /// Deletes the schedule; one that is gone (fired, or never made) is fine.
    pub async fn delete(&self, name: &str) -> Result<(), DependencyError> {
        match self
            .client
            .delete_schedule()
            .name(name)
            .group_name(&self.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(DependencyError::aws("scheduler", "DeleteSchedule", &e)),
        }
    }

    /// Every schedule of the group (local runs and tests: moto stores schedules, never fires
    /// them).
    pub async fn list(&self) -> Result<Vec<Scheduled>, DependencyError> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_schedules()
                .group_name(&self.group)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| DependencyError::aws("scheduler", "ListSchedules", &e))?;
            names.extend(out.schedules().iter().filter_map(|s| {
                let modified = s.last_modification_date();
                s.name().map(|n| {
                    (
                        n.to_string(),
                        modified.map_or(0, |d| d.secs()),
                        modified.map_or(0, |d| d.subsec_nanos()),
                    )
                })
            }));
            match out.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        let mut found = Vec::new();
        for (name, secs, nanos) in names {
            let known = self.listed.lock().ok().and_then(|l| {
                l.get(&name)
                    .filter(|(s, n, _)| (*s, *n) == (secs, nanos))
                    .map(|(_, _, known)| known.clone())
            });
            if let Some(known) = known {
                found.push(known);
                continue;
            }
            let out = self
                .client
                .get_schedule()
                .name(&name)
                .group_name(&self.group)
                .send()
                .await
                .map_err(|e| DependencyError::aws("scheduler", "GetSchedule", &e))?;
            let expression = out.schedule_expression().unwrap_or_default().to_string();
            let time_zone = out
                .schedule_expression_timezone()
                .unwrap_or("UTC")
                .to_string();
            let zone = TimeZone::get(&time_zone).unwrap_or(TimeZone::UTC);
            let job = out
                .target()
                .and_then(|t| t.input())
                .and_then(|i| serde_json::from_str::<Job>(i).ok());
            if let (Some(at), Some(job)) = (instant_of(&expression, &zone), job) {
                let scheduled = Scheduled {
                    name: name.clone(),
                    expression,
                    time_zone,
                    at,
                    job,
                };
                if let Ok(mut listed) = self.listed.lock() {
                    listed.insert(name, (secs, nanos, scheduled.clone()));
                }
                found.push(scheduled);
            }
        }
        found.sort_by_key(|s| s.at);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_expressions_are_local_wall_clock_times_both_ways_across_dst() {
        let london = TimeZone::get("Europe/London").unwrap();
        // 17:00 BST on the first day of summer time is 16:00 UTC.
        let at: Timestamp = "2026-03-29T16:00:00Z".parse().unwrap();
        assert_eq!(at_expression(at, &london), "at(2026-03-29T17:00:00)");
        assert_eq!(instant_of("at(2026-03-29T17:00:00)", &london), Some(at));
        let ny = TimeZone::get("America/New_York").unwrap();
        let at: Timestamp = "2026-11-08T22:00:00Z".parse().unwrap();
        assert_eq!(at_expression(at, &ny), "at(2026-11-08T17:00:00)");
        assert_eq!(instant_of("cron(0 17 * * ? *)", &ny), None);
    }
}
