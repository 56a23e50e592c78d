//! Times as people say them, in the business's time zone: "Tuesday 14 October at 2:30pm".

use jiff::civil::Weekday;
use jiff::Zoned;

pub fn spoken_datetime(at: &Zoned) -> String {
    format!(
        "{} {} {} at {}",
        weekday(at.weekday()),
        at.day(),
        month(at.month()),
        spoken_clock(at)
    )
}

/// "a, b or c".
pub fn list_words(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// "2pm", "2:30pm", "12pm" (noon), "12am" (midnight).
pub fn spoken_clock(at: &Zoned) -> String {
    let (h, m) = (at.hour(), at.minute());
    let suffix = if h < 12 { "am" } else { "pm" };
    let h12 = match h % 12 {
        0 => 12,
        x => x,
    };
    if m == 0 {
        format!("{h12}{suffix}")
    } else {
        format!("{h12}:{m:02}{suffix}")
    }
}

fn weekday(w: Weekday) -> &'static str {
    match w {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

fn month(m: i8) -> &'static str {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    NAMES[(m.clamp(1, 12) - 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ts: &str, tz: &str) -> Zoned {
        ts.parse::<jiff::Timestamp>().unwrap().in_tz(tz).unwrap()
    }

    #[test]
    fn times_are_spoken_in_the_business_zone() {
        // 13:00 UTC is 2pm in London in summer (BST) and 1pm in winter (GMT).
        assert_eq!(
            spoken_datetime(&at("2025-10-14T13:00:00Z", "Europe/London")),
            "Tuesday 14 October at 2pm"
        );
        assert_eq!(
            spoken_datetime(&at("2025-11-04T13:30:00Z", "Europe/London")),
            "Tuesday 4 November at 1:30pm"
        );
        assert_eq!(
            spoken_datetime(&at("2025-10-14T21:00:00Z", "America/Los_Angeles")),
            "Tuesday 14 October at 2pm"
        );
    }

    #[test]
    fn noon_and_midnight() {
        assert_eq!(spoken_clock(&at("2025-01-01T12:00:00Z", "UTC")), "12pm");
        assert_eq!(spoken_clock(&at("2025-01-01T00:05:00Z", "UTC")), "12:05am");
    }
}
