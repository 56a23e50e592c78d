//! Keywords in inbound texts: opting out and back in, help, and the replies a booking reminder
//! invites (C to confirm, R to reschedule); and the revocations people write in their own words,
//! which must never be silently ignored.
//!
//! Twilio's own handling (its default opt-out list, and `OptOutType` when Advanced Opt-Out
//! is on) always wins: when Twilio says a text was an opt-out, it is one, and Twilio has replied.

use std::sync::LazyLock;

use crate::quality::phrases::{first_match, words, Phrase};

/// Twilio's default opt-out keywords for long codes (a whole message, any case).
pub const OPT_OUT: &[&str] = &[
    "stop",
    "stopall",
    "unsubscribe",
    "end",
    "quit",
    "revoke",
    "optout",
    "cancel",
];
/// Opt back in. `yes` only counts for a number that is opted out (Twilio's own rule for long
/// codes; toll-free numbers take only START and UNSTOP).
pub const OPT_IN: &[&str] = &["start", "unstop"];
pub const WEAK_OPT_IN: &[&str] = &["yes"];
pub const HELP: &[&str] = &["help", "info"];

/// Revocations in people's own words, honoured as an opt-out.
const REVOCATIONS: &[&str] = &[
    "stop texting",
    "stop messaging",
    "stop sending",
    "stop contacting",
    "stop the texts",
    "stop these texts",
    "stop these messages",
    "dont text me",
    "do not text me",
    "dont message me",
    "do not message me",
    "dont contact me",
    "do not contact me",
    "no more texts",
    "no more messages",
    "unsubscribe me",
    "remove me",
    "take me off",
    "opt me out",
    "opt out",
    "leave me alone",
    "wrong number stop",
    "stop all messages",
    // French
    "arrête",
    "arrêtez",
    "arreter",
    "arrêter",
    "arretez",
    "désabonner",
    "desabonner",
    "désinscrire",
    "ne plus recevoir",
    "plus de messages",
    "stop svp",
    "stop merci",
    // Spanish
    "no más mensajes",
    "no mas mensajes",
    "no me escriba",
    "no me escriban",
    "no me envíe",
    "no me envie",
    "darme de baja",
    "dar de baja",
    "baja por favor",
    "no quiero mensajes",
    // German, Italian, Portuguese
    "abmelden",
    "keine nachrichten",
    "keine sms",
    "non scrivermi",
    "basta messaggi",
    "cancelar inscrição",
    "parar mensagens",
];

/// Words that, inside a longer text, may be a revocation: the owner is told, the same day.
const MAYBE_REVOCATION: &[&str] = &[
    "stop",
    "unsubscribe",
    "optout",
    "spam",
    "quit",
    "revoke",
    "baja",
    "arrête",
    "arrete",
    "basta",
];

/// What an inbound text is, as far as keywords go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meaning {
    /// Opt out. `twilio_replied`: Twilio already answered (Advanced Opt-Out): we stay silent.
    OptOut {
        twilio_replied: bool,
    },
    /// In the person's own words ("please stop texting me"): honoured as an opt-out, and we
    /// confirm it, since Twilio did not see a keyword.
    Revocation {
        phrase: String,
    },
    OptIn {
        twilio_replied: bool,
    },
    /// `YES`: an opt-in only for a number that is opted out; otherwise just text.
    WeakOptIn,
    Help {
        twilio_replied: bool,
    },
    /// A bare `C`: confirms the booking a reminder asked about.
    Confirm,
    /// A bare `R`: asks to move the booking a reminder asked about.
    Reschedule,
    /// Free text that may be a revocation ("stop" in a sentence): answered as text, and the
    /// owner is told so a person decides.
    PossibleRevocation {
        word: String,
    },
    /// Free text for the receptionist.
    Text,
}

/// What `body` means; `opt_out_type` is Twilio's `OptOutType` parameter, when present.
pub fn meaning(body: &str, opt_out_type: Option<&str>) -> Meaning {
    match opt_out_type
        .map(|t| t.trim().to_ascii_uppercase())
        .as_deref()
    {
        Some("STOP") => {
            return Meaning::OptOut {
                twilio_replied: true,
            }
        }
        Some("START") => {
            return Meaning::OptIn {
                twilio_replied: true,
            }
        }
        Some("HELP") => {
            return Meaning::Help {
                twilio_replied: true,
            }
        }
        _ => {}
    }
    let text = words(body);
    // A keyword is the whole message (Twilio: single-word messages), whatever the case and
    // punctuation around it; "STOP ALL" and "stop." count.
    let whole = text.join(" ");
    let is = |list: &[&str]| {
        list.contains(&whole.as_str()) || list.contains(&whole.replace(' ', "").as_str())
    };
    if is(OPT_OUT) {
        return Meaning::OptOut {
            twilio_replied: false,
        };
    }
    if is(OPT_IN) {
        return Meaning::OptIn {
            twilio_replied: false,
        };
    }
    if is(HELP) {
        return Meaning::Help {
            twilio_replied: false,
        };
    }
    if is(WEAK_OPT_IN) {
        return Meaning::WeakOptIn;
    }
    match whole.as_str() {
        "c" => return Meaning::Confirm,
        "r" => return Meaning::Reschedule,
        _ => {}
    }
    // Compiled once: every inbound text is checked against them.
    static COMPILED: LazyLock<Vec<Phrase>> = LazyLock::new(|| {
        REVOCATIONS
            .iter()
            .map(|p| Phrase::parse(p).expect("every revocation has a word"))
            .collect()
    });
    if let Some(p) = first_match(&COMPILED, &text) {
        return Meaning::Revocation {
            phrase: p.as_str().to_string(),
        };
    }
    if let Some(w) = text.iter().find(|w| MAYBE_REVOCATION.contains(&w.as_str())) {
        return Meaning::PossibleRevocation { word: w.clone() };
    }
    Meaning::Text
}

/// Whether a text we send would invite an opt-out by accident ("reply CANCEL to cancel"): an
/// opt-out keyword written in capitals, or right after "reply", "text", "send" or "type".
/// Returns the keyword.
pub fn invites_opt_out(text: &str) -> Option<&'static str> {
    const INVITING: &[&str] = &["reply", "text", "send", "type", "respond", "message"];
    let raw: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    raw.iter().enumerate().find_map(|(i, word)| {
        let keyword = OPT_OUT.iter().find(|k| k.eq_ignore_ascii_case(word))?;
        let shouted = word.chars().all(|c| c.is_ascii_uppercase());
        let invited = i > 0 && INVITING.iter().any(|v| v.eq_ignore_ascii_case(raw[i - 1]));
        (shouted || invited).then_some(*keyword)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilios_keywords_are_the_whole_message_in_any_case() {
        for body in [
            "STOP",
            "stop",
            " Stop. ",
            "STOPALL",
            "stop all",
            "Unsubscribe",
            "CANCEL",
            "end",
            "Quit!",
            "optout",
            "opt-out",
        ] {
            assert_eq!(
                meaning(body, None),
                Meaning::OptOut {
                    twilio_replied: false
                },
                "{body}"
            );
        }
        assert_eq!(
            meaning("START", None),
            Meaning::OptIn {
                twilio_replied: false
            }
        );
        assert_eq!(
            meaning("unstop", None),
            Meaning::OptIn {
                twilio_replied: false
            }
        );
        assert_eq!(meaning("Yes", None), Meaning::WeakOptIn);
        assert_eq!(
            meaning("HELP", None),
            Meaning::Help {
                twilio_replied: false
            }
        );
        assert_eq!(meaning("c", None), Meaning::Confirm);
        assert_eq!(meaning(" R ", None), Meaning::Reschedule);
    }

    #[test]
    fn twilios_advanced_opt_out_wins_and_means_it_already_replied() {
        assert_eq!(
            meaning("Arrêt", Some("STOP")),
            Meaning::OptOut {
                twilio_replied: true
            }
        );
        assert_eq!(
            meaning("whatever", Some("start")),
            Meaning::OptIn {
                twilio_replied: true
            }
        );
        assert_eq!(
            meaning("AIDE", Some("HELP")),
            Meaning::Help {
                twilio_replied: true
            }
        );
    }

    #[test]
    fn revocations_in_peoples_own_words_are_honoured() {
        for body in [
            "please stop texting me",
            "Can you remove me from your list?",
            "Unsubscribe me please",
            "Arrêtez de m'envoyer des messages",
            "No más mensajes, gracias",
            "Bitte abmelden",
            "don't text me again",
        ] {
            assert!(
                matches!(meaning(body, None), Meaning::Revocation { .. }),
                "{body}: {:?}",
                meaning(body, None)
            );
        }
    }

    #[test]
    fn a_stop_word_in_a_sentence_is_flagged_not_ignored_and_ordinary_text_is_text() {
        assert_eq!(
            meaning("Can the engineer stop by after 5?", None),
            Meaning::PossibleRevocation {
                word: "stop".into()
            }
        );
        assert_eq!(meaning("Is Wednesday at 8 still ok?", None), Meaning::Text);
        assert_eq!(
            meaning("I need to cancel my booking", None),
            Meaning::Text,
            "handled as a booking change"
        );
        assert_eq!(meaning("Cancel my booking", None), Meaning::Text);
    }

    #[test]
    fn our_texts_never_invite_an_opt_out() {
        assert_eq!(invites_opt_out("Reply CANCEL to cancel"), Some("cancel"));
        assert_eq!(
            invites_opt_out("Reply C to confirm or R to reschedule"),
            None
        );
        assert_eq!(invites_opt_out("Text STOP to end these"), Some("stop"));
        assert_eq!(
            invites_opt_out("reply cancel and we'll call"),
            Some("cancel")
        );
        assert_eq!(invites_opt_out("Until the end of the day, then."), None);
    }
}
