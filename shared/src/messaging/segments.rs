//! SMS segments: a long reply is sent as several messages, each cut where a segment ends (at a
//! word), so no message wastes a part-filled segment and none is cut mid-word.
//!
//! GSM-7 text fits 160 characters in one segment and 153 per segment once split (the rest is the
//! concatenation header); anything outside GSM-7 goes as UCS-2: 70, then 67 (Twilio counts the
//! same way). GSM-7's extension characters (`{}[]~\|^€` and form feed) take two.

/// GSM 03.38 basic character set.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

/// How many GSM-7 units a character takes, or `None` if it needs UCS-2.
fn gsm7_units(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| gsm7_units(c).is_some())
}

/// Units of `text` in its encoding (GSM-7 septets, or UTF-16 code units).
fn units(text: &str, gsm7: bool) -> usize {
    if gsm7 {
        text.chars().filter_map(gsm7_units).sum()
    } else {
        text.encode_utf16().count()
    }
}

/// How many segments Twilio bills `text` as.
pub fn segments(text: &str) -> usize {
    let gsm7 = is_gsm7(text);
    let (single, part) = if gsm7 { (160, 153) } else { (70, 67) };
    let n = units(text, gsm7);
    if n <= single {
        1
    } else {
        n.div_ceil(part)
    }
}

/// Splits `text` into messages of at most `max_segments` segments each, cutting at the last
/// space that fits (mid-word only for a word longer than a whole message).
pub fn split(text: &str, max_segments: usize) -> Vec<String> {
    let text = text.trim();
    if text.is_empty() {
        return Vec::new();
    }
    let gsm7 = is_gsm7(text);
    let (single, part) = if gsm7 { (160, 153) } else { (70, 67) };
    let max_segments = max_segments.max(1);
    let capacity = if max_segments == 1 {
        single
    } else {
        part * max_segments
    };
    if units(text, gsm7) <= capacity.max(single) {
        return vec![text.to_string()];
    }
    let mut messages = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if units(rest, gsm7) <= capacity {
            messages.push(rest.to_string());
            break;
        }
        // The longest prefix that fits, then back to the last space in it.
        let mut used = 0;
        let mut fit_end = 0;
        for (i, c) in rest.char_indices() {
            let u = if gsm7 {
                gsm7_units(c).unwrap_or(1)
            } else {
                c.len_utf16()
            };
            if used + u > capacity {
                break;
            }
            used += u;
            fit_end = i + c.len_utf8();
        }
        let cut = rest[..fit_end]
            .rfind(char::is_whitespace)
            .filter(|&i| i > 0)
            .unwrap_or(fit_end);
        messages.push(rest[..cut].trim_end().to_string());
        rest = rest[cut..].trim_start();
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_counts_160_then_153_per_segment() {
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
    }

    #[test]
    fn extension_characters_take_two_and_emoji_switch_to_ucs2() {
        assert!(is_gsm7("Price: €50 [approx]"));
        assert_eq!(segments(&"€".repeat(80)), 1);
        assert_eq!(segments(&"€".repeat(81)), 2);
        assert!(!is_gsm7("See you soon 🙂"));
        assert_eq!(segments(&"é".repeat(160)), 1, "é is in GSM-7");
        assert_eq!(segments(&"ê".repeat(70)), 1, "ê is not: UCS-2");
        assert_eq!(segments(&"ê".repeat(71)), 2);
    }

    #[test]
    fn a_long_reply_is_cut_at_words_where_segments_end() {
        let words = "word ".repeat(200);
        let parts = split(&words, 2);
        assert!(parts.len() > 1);
        for p in &parts {
            assert!(segments(p) <= 2, "{} segments", segments(p));
            assert!(p.ends_with("word"), "cut mid-word: {p:?}");
        }
        assert_eq!(parts.join(" "), words.trim());
    }

    #[test]
    fn a_short_reply_is_one_message_and_nothing_is_empty() {
        assert_eq!(split("  Thanks!  ", 3), vec!["Thanks!"]);
        assert!(split("   ", 3).is_empty());
        let unbroken = "x".repeat(400);
        let parts = split(&unbroken, 1);
        assert_eq!(parts.concat(), unbroken);
        assert!(parts.iter().all(|p| segments(p) == 1));
    }
}
