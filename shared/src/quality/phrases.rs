//! Phrase patterns over words: case- and punctuation-insensitive, whole words only ("dob" never
//! fires on "doberman"). In a pattern, `*` stands for any one word and `{n}` for a number
//! ("3", "3pm", "10:30", "three").

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Words of a text, normalised the same way as patterns: lower-case, apostrophes dropped
/// ("you're" is "youre"), every other mark a word break.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c == '\'' || c == '\u{2019}' {
            continue;
        }
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Any,
    Number,
}

/// One pattern, as written in the rule file and as compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    source: String,
    tokens: Vec<Token>,
}

const NUMBER_WORDS: &[&str] = &[
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "noon", "midday", "half", "quarter",
];

fn is_number(word: &str) -> bool {
    let digits = word.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 {
        let rest = &word[digits..];
        return rest.is_empty() || matches!(rest, "am" | "pm" | "st" | "nd" | "rd" | "th");
    }
    NUMBER_WORDS.contains(&word)
}

impl Phrase {
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut tokens = Vec::new();
        for raw in source.split_whitespace() {
            match raw {
                "*" => tokens.push(Token::Any),
                "{n}" => tokens.push(Token::Number),
                _ => tokens.extend(words(raw).into_iter().map(Token::Word)),
            }
        }
        if !tokens.iter().any(|t| matches!(t, Token::Word(_))) {
            return Err(format!("{source:?} has no words to match"));
        }
        Ok(Self {
            source: source.to_string(),
            tokens,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Where the phrase first stands in `words` (the index of its first word).
    pub fn find(&self, words: &[String]) -> Option<usize> {
        let n = self.tokens.len();
        if words.len() < n {
            return None;
        }
        (0..=words.len() - n).find(|&start| {
            self.tokens
                .iter()
                .zip(&words[start..start + n])
                .all(|(t, w)| match t {
                    Token::Word(p) => p == w,
                    Token::Any => true,
                    Token::Number => is_number(w),
                })
        })
    }
}

/// The first of `phrases` found in `words`.
pub fn first_match<'a>(phrases: &'a [Phrase], words: &[String]) -> Option<&'a Phrase> {
    phrases.iter().find(|p| p.find(words).is_some())
}

impl Serialize for Phrase {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Phrase {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        Phrase::parse(&source).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn says(phrase: &str, text: &str) -> bool {
        Phrase::parse(phrase).unwrap().find(&words(text)).is_some()
    }

    #[test]
    fn whole_words_only_and_case_and_punctuation_do_not_matter() {
        assert!(says("dob", "And your DOB, please?"));
        assert!(!says("dob", "Is that the doberman barking?"));
        assert!(says("date of birth", "Could I take your date-of-birth?"));
        assert!(says("you're booked", "Great, YOU'RE BOOKED for Tuesday."));
        assert!(says("you’re booked", "you're booked"));
        assert!(!says("card number", "your cardnumber"));
    }

    #[test]
    fn any_word_and_numbers() {
        assert!(says("see you at {n}", "Lovely, see you at 3pm then."));
        assert!(says("see you at {n}", "see you at three"));
        assert!(says("see you at {n}", "see you at 10:30"));
        assert!(!says("see you at {n}", "see you at the house"));
        assert!(says("booked * for", "you're booked in for Tuesday"));
    }

    #[test]
    fn a_pattern_needs_a_word() {
        assert!(Phrase::parse("* {n}").is_err());
        assert!(Phrase::parse("  ").is_err());
    }
}
