//! Masks personal data in free text (stored transcripts, QA views and replay output when a
//! tenant asks): e-mail addresses, dates of birth, card numbers and phone numbers.
//!
//! Dates of birth are told from other dates by their year: one at least [`MIN_AGE_YEARS`]
//! before today is a birth date (or old enough not to matter); bookings are in the future.

/// A date this many years back or more is taken for a date of birth.
pub const MIN_AGE_YEARS: i16 = 5;

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Masks e-mail addresses (`[email]`), dates of birth (`[date of birth]`), card-like numbers
/// (13 to 19 digits passing the Luhn check: `[card]`) and other runs of 7+ digits (`[phone]`).
pub fn redact_personal_data(text: &str, today: jiff::civil::Date) -> String {
    let latest_birth_year = today.year() - MIN_AGE_YEARS;
    let text = redact_emails(text);
    let words: Vec<String> = text.split(' ').map(str::to_string).collect();
    let text = redact_written_dates(&words, latest_birth_year);
    let text = redact_numeric_dates(&text, latest_birth_year);
    redact_numbers(&text)
}

/// E-mail addresses, card numbers and phone numbers only: what excerpts and error messages
/// never show, whatever the tenant's settings.
pub fn redact_contact_details(text: &str) -> String {
    redact_numbers(&redact_emails(text))
}

/// E-mail addresses anywhere, also inside JSON without spaces (`{"email":"a@b.com"}`).
fn redact_emails(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let local = |c: char| c.is_alphanumeric() || "._%+-".contains(c);
    let domain = |c: char| c.is_alphanumeric() || c == '.' || c == '-';
    let mut out = String::with_capacity(text.len());
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '@' {
            i += 1;
            continue;
        }
        let mut from = i;
        while from > start && local(chars[from - 1]) {
            from -= 1;
        }
        let mut to = i + 1;
        while to < chars.len() && domain(chars[to]) {
            to += 1;
        }
        // A domain ends in a letter-led label: "example.com", not "x." or "3.5".
        while to > i + 1 && !chars[to - 1].is_alphanumeric() {
            to -= 1;
        }
        let host: String = chars[i + 1..to].iter().collect();
        let is_address = from < i
            && host.contains('.')
            && !host.starts_with('.')
            && host
                .rsplit('.')
                .next()
                .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(char::is_alphabetic));
        if is_address {
            out.extend(&chars[start..from]);
            out.push_str("[email]");
            start = to;
            i = to;
        } else {
            i += 1;
        }
    }
    out.extend(&chars[start..]);
    out
}

fn month(word: &str) -> bool {
    let w = word
        .trim_matches(|c: char| !c.is_alphabetic())
        .to_lowercase();
    w.len() >= 3
        && MONTHS
            .iter()
            .any(|m| *m == w || (w.len() == 3 && m.starts_with(&w)))
}

fn day(word: &str) -> bool {
    let w = word.trim_end_matches([',', '.']).to_lowercase();
    let digits = w.trim_end_matches(|c: char| c.is_alphabetic());
    let suffix = &w[digits.len()..];
    matches!(suffix, "" | "st" | "nd" | "rd" | "th")
        && digits.parse::<u8>().is_ok_and(|d| (1..=31).contains(&d))
}

fn birth_year(word: &str, latest: i16) -> bool {
    let w = word.trim_end_matches(|c: char| !c.is_ascii_digit());
    w.len() == 4 && w.parse::<i16>().is_ok_and(|y| (1900..=latest).contains(&y))
}

/// "12 March 1985", "12th of March, 1985", "March 12, 1985".
fn redact_written_dates(words: &[String], latest: i16) -> String {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let w = |k: usize| words.get(i + k).map(String::as_str).unwrap_or("");
        let span = if day(w(0)) && w(1).eq_ignore_ascii_case("of") && month(w(2)) {
            birth_year(w(3), latest).then_some(4)
        } else if (day(w(0)) && month(w(1))) || (month(w(0)) && day(w(1))) {
            birth_year(w(2), latest).then_some(3)
        } else {
            None
        };
        match span {
            Some(n) => {
                let last = w(n - 1);
                let trailing = &last[last.trim_end_matches(|c: char| !c.is_alphanumeric()).len()..];
                out.push(format!("[date of birth]{trailing}"));
                i += n;
            }
            None => {
                out.push(words[i].clone());
                i += 1;
            }
        }
    }
    out.join(" ")
}

/// "12/03/1985", "12.03.1985", "1985-03-12".
fn redact_numeric_dates(text: &str, latest: i16) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0 || !chars[i - 1].is_ascii_digit();
        match boundary
            .then(|| numeric_date_at(&chars[i..], latest))
            .flatten()
        {
            Some(len) => {
                out.push_str("[date of birth]");
                i += len;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// The length of a numeric date with a birth year starting here.
fn numeric_date_at(chars: &[char], latest: i16) -> Option<usize> {
    let (len, year) = date_shape_at(chars)?;
    birth_year(&year, latest).then_some(len)
}

/// The length and year of a numeric date (`12/03/2026`, `12.03.2026`, `2026-12-14`) starting
/// here, whatever its year.
fn date_shape_at(chars: &[char]) -> Option<(usize, String)> {
    let digits = |from: usize| {
        chars[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let group = |from: usize, len: usize| -> String { chars[from..from + len].iter().collect() };
    let a = digits(0);
    let sep = *chars.get(a)?;
    if a == 0 || !matches!(sep, '/' | '.' | '-') {
        return None;
    }
    let b = digits(a + 1);
    if b == 0 || chars.get(a + 1 + b) != Some(&sep) {
        return None;
    }
    let c = digits(a + 2 + b);
    let len = a + 2 + b + c;
    match (a, c) {
        (4, 1..=2) if b <= 2 => Some((len, group(0, 4))),
        (1..=2, 4) if b <= 2 => Some((len, group(a + 2 + b, 4))),
        _ => None,
    }
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                (d * 2) / 10 + (d * 2) % 10
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// Runs of digits with the separators people write inside numbers: cards and phones.
fn redact_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit()
            || ((chars[i] == '+' || chars[i] == '(')
                && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()));
        if !starts {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A date left by the birth-date pass (a booking's "2026-12-14") is not a number.
        let boundary = i == 0 || !chars[i - 1].is_ascii_digit();
        if let Some((len, _)) = boundary.then(|| date_shape_at(&chars[i..])).flatten() {
            out.extend(&chars[i..i + len]);
            i += len;
            continue;
        }
        let (mut j, mut digits, mut last_digit) = (i, Vec::new(), i);
        while j < chars.len() {
            let c = chars[j];
            if let Some(d) = c.to_digit(10) {
                digits.push(d);
                last_digit = j;
            } else if !(c == ' '
                || c == '-'
                || c == '.'
                || c == '('
                || c == ')'
                || (c == '+' && j == i))
            {
                break;
            }
            j += 1;
        }
        if (13..=19).contains(&digits.len()) && chars[i] != '+' && luhn(&digits) {
            out.push_str("[card]");
        } else if digits.len() >= 7 {
            out.push_str("[phone]");
        } else {
            out.extend(&chars[i..=last_digit]);
        }
        i = last_digit + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(text: &str) -> String {
        redact_personal_data(text, jiff::civil::date(2026, 12, 3))
    }

    #[test]
    fn phones_and_emails_are_masked() {
        assert_eq!(
            redact("Call me on +44 7700 900123 or maria@example.com, thanks."),
            "Call me on [phone] or [email], thanks."
        );
        assert_eq!(redact("It's (415) 555-0123."), "It's [phone].");
    }

    #[test]
    fn card_numbers_are_masked_as_cards() {
        assert_eq!(
            redact("My card is 4111 1111 1111 1111, expiry 09/29."),
            "My card is [card], expiry 09/29."
        );
        assert_eq!(redact("5500-0000-0000-0004"), "[card]");
        // Not a valid card number: still masked, as a number.
        assert_eq!(redact("4111 1111 1111 1112"), "[phone]");
    }

    #[test]
    fn dates_of_birth_are_masked_but_booking_dates_stay() {
        assert_eq!(
            redact("I was born on 12/03/1985, the booking is 14/12/2026."),
            "I was born on [date of birth], the booking is 14/12/2026."
        );
        assert_eq!(redact("DOB 1985-03-12"), "DOB [date of birth]");
        assert_eq!(
            redact("It's the 3rd of May 1990. Come on 4 January 2027."),
            "It's the [date of birth]. Come on 4 January 2027."
        );
        assert_eq!(
            redact("Born March 12, 1985, ok?"),
            "Born [date of birth], ok?"
        );
        assert_eq!(redact("12 may 1979"), "[date of birth]");
    }

    #[test]
    fn booking_dates_and_times_are_not_numbers_to_mask() {
        assert_eq!(
            redact("Booked 2026-12-14 at 10:30"),
            "Booked 2026-12-14 at 10:30"
        );
        assert_eq!(redact("on 14.12.2026"), "on 14.12.2026");
        let slot = r#"{"start":"2026-12-14T10:00:00+00:00","spoken":"Monday at 10am"}"#;
        assert_eq!(redact(slot), slot);
    }

    #[test]
    fn e_mail_addresses_inside_json_are_masked_alone() {
        assert_eq!(
            redact(r#"{"name":"Jo","email":"jo.bloggs@example.co.uk","ok":true}"#),
            r#"{"name":"Jo","email":"[email]","ok":true}"#
        );
        assert_eq!(redact("Write to jo@example.com."), "Write to [email].");
        assert_eq!(redact("price @ 3.5 per metre"), "price @ 3.5 per metre");
    }

    #[test]
    fn short_numbers_times_and_prices_stay() {
        let s = "Tuesday the 14th at 2 30, flat 12, 3 radiators, £450, 10:30";
        assert_eq!(redact(s), s);
        let s = "May I come on the 12th? March is busy.";
        assert_eq!(redact(s), s);
    }
}
