//! Masks phone numbers and e-mail addresses in text (stored transcripts when a tenant asks).

/// Replaces runs of 7+ digits (allowing spaces, dots, dashes, brackets and a leading '+') with
/// `[phone]`, and anything shaped like an e-mail address with `[email]`.
pub fn redact_contact_details(text: &str) -> String {
    let words: Vec<String> = text.split(' ').map(redact_email).collect();
    redact_phones(&words.join(" "))
}

fn redact_email(word: &str) -> String {
    let core = word.trim_matches(|c: char| !c.is_alphanumeric());
    match core.split_once('@') {
        Some((user, domain))
            if !user.is_empty() && domain.contains('.') && !domain.starts_with('.') =>
        {
            word.replace(core, "[email]")
        }
        _ => word.to_string(),
    }
}

fn redact_phones(text: &str) -> String {
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
        // Extend over digits and the separators people write inside numbers.
        let (mut j, mut digits, mut last_digit) = (i, 0, i);
        while j < chars.len() {
            let c = chars[j];
            if c.is_ascii_digit() {
                digits += 1;
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
        if digits >= 7 {
            out.push_str("[phone]");
            i = last_digit + 1;
        } else {
            out.extend(&chars[i..=last_digit]);
            i = last_digit + 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_and_emails_are_masked() {
        assert_eq!(
            redact_contact_details("Call me on +44 7700 900123 or maria@example.com, thanks."),
            "Call me on [phone] or [email], thanks."
        );
        assert_eq!(
            redact_contact_details("It's (415) 555-0123."),
            "It's [phone]."
        );
    }

    #[test]
    fn short_numbers_and_times_stay() {
        let s = "Tuesday the 14th at 2 30, flat 12, 3 radiators";
        assert_eq!(redact_contact_details(s), s);
    }
}
