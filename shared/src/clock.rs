//! Time is an input: handlers read it from a [`Clock`], so tests and `make dev` can move it.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The wall clock, used on Lambda.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until told to move.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    pub fn at(t: Timestamp) -> Self {
        Self(Arc::new(Mutex::new(t)))
    }

    pub fn set(&self, t: Timestamp) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }

    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now = now.saturating_add(by).unwrap_or(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The wall clock moved to start at another time and run on from there: `make dev` with
/// `FRONTDESK_NOW`, to watch a business as of a given day (a DST week, a support case). Never
/// used by a deployed function.
#[derive(Debug, Clone, Copy)]
pub struct ShiftedClock {
    offset: SignedDuration,
}

impl ShiftedClock {
    /// A clock that reads `start` now.
    pub fn starting_at(start: Timestamp) -> Self {
        Self {
            offset: start.duration_since(Timestamp::now()),
        }
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        let now = Timestamp::now();
        now.checked_add(self.offset).unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_starts_where_it_is_told_and_runs_on() {
        let start: Timestamp = "2026-03-28T23:30:00Z".parse().unwrap();
        let clock = ShiftedClock::starting_at(start);
        let first = clock.now();
        assert!(first.duration_since(start).abs() < SignedDuration::from_secs(5));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(clock.now() > first);
    }
}
