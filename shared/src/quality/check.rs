//! Applying a tenant's rules to one call: pure, so the scan, replay and the tests run the same
//! code. Each rule reports at most one finding per call, at the FIRST turn that breaks it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::phrases::{first_match, words, Phrase};
use super::rules::{Detector, Rule, RuleKind, RuleSet, Severity};
use crate::elevenlabs::webhook::Turn as ElevenLabsTurn;
use crate::redact::redact_contact_details;
use crate::tenant::TenantConfig;

/// The longest excerpt a flag keeps: the offending turn, cut around what broke the rule.
pub const EXCERPT_CHARS: usize = 240;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Agent,
    Caller,
}

/// One turn, as the rules see it.
#[derive(Debug, Clone)]
pub struct Turn {
    pub role: Role,
    pub text: String,
    pub words: Vec<String>,
    /// Tools the agent called in this turn.
    pub called: Vec<String>,
    /// Tools whose results came back in this turn and succeeded (no error, and not `ok: false`).
    pub succeeded: Vec<String>,
}

/// Everything about a call the rules read.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub turns: Vec<Turn>,
    /// Evaluation criterion id → result (`success` / `failure` / `unknown`) and rationale.
    pub evaluation: BTreeMap<String, (String, Option<String>)>,
    /// Data-collection field → value.
    pub data: BTreeMap<String, Value>,
}

impl Evidence {
    pub fn from_transcript(turns: &[ElevenLabsTurn]) -> Self {
        let turns = turns
            .iter()
            .map(|t| {
                let text = t.message.clone().unwrap_or_default();
                Turn {
                    role: if t.role == "agent" {
                        Role::Agent
                    } else {
                        Role::Caller
                    },
                    words: words(&text),
                    text,
                    called: t.tool_calls.iter().map(|c| c.tool_name.clone()).collect(),
                    succeeded: t
                        .tool_results
                        .iter()
                        .filter(|r| {
                            r.is_error != Some(true) && !answered_not_ok(r.result_value.as_deref())
                        })
                        .map(|r| r.tool_name.clone())
                        .collect(),
                }
            })
            .collect();
        Self {
            turns,
            ..Self::default()
        }
    }
}

/// Our tools answer business refusals with 200 and `ok: false`: not a success.
fn answered_not_ok(result: Option<&str>) -> bool {
    result
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
        .and_then(|v| v.get("ok").and_then(Value::as_bool))
        == Some(false)
}

/// A rule the call broke, where, and the evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule_id: String,
    pub severity: Severity,
    /// The offending turn's index in the transcript; `None` for what concerns the whole call
    /// (an evaluation, the sentiment).
    pub turn: Option<usize>,
    /// The offending turn (contact details masked), or what the call-level finding rests on.
    pub excerpt: String,
}

/// The business facts some detectors look for, prepared once per scan.
#[derive(Debug, Clone, Default)]
pub struct BusinessFacts {
    provider_phones: Vec<String>,
    provider_addresses: Vec<Phrase>,
}

impl BusinessFacts {
    pub fn of(tenant: &TenantConfig) -> Self {
        let mut facts = Self::default();
        for p in &tenant.providers {
            let digits: String = p
                .phone
                .as_str()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            // The national part: how it is said with a leading 0 or with the country code.
            let tail = digits.len().saturating_sub(9);
            facts.provider_phones.push(digits[tail..].to_string());
            if let Some(address) = &p.address {
                let parts: Vec<&str> = address.split(',').map(str::trim).collect();
                // Every part but the town and postcode: "Unit 4", "Vale Road".
                for part in &parts[..parts.len().saturating_sub(1)] {
                    if words(part).len() >= 2 {
                        if let Ok(phrase) = Phrase::parse(part) {
                            facts.provider_addresses.push(phrase);
                        }
                    }
                }
            }
        }
        facts
    }
}

/// Every finding of `rules` on this call, in rule order.
pub fn check(rules: &RuleSet, facts: &BusinessFacts, call: &Evidence) -> Vec<Finding> {
    rules
        .rules
        .iter()
        .filter_map(|rule| check_rule(rule, facts, call))
        .collect()
}

fn check_rule(rule: &Rule, facts: &BusinessFacts, call: &Evidence) -> Option<Finding> {
    let at = |turn: usize, around: Option<usize>| Finding {
        rule_id: rule.id.clone(),
        severity: rule.severity,
        turn: Some(turn),
        excerpt: excerpt(&call.turns[turn], around),
    };
    let whole_call = |excerpt: String| Finding {
        rule_id: rule.id.clone(),
        severity: rule.severity,
        turn: None,
        excerpt: cut(&redact_contact_details(&excerpt), 0),
    };
    let agent_turns = || {
        call.turns
            .iter()
            .enumerate()
            .filter(|(_, t)| t.role == Role::Agent && !t.words.is_empty())
    };
    match &rule.kind {
        RuleKind::RequiredTool {
            tools,
            when_caller_says,
            when_data,
        } => {
            let trigger = if when_caller_says.is_empty() {
                Some(None)
            } else {
                caller_says(call, when_caller_says, 0).map(Some)
            };
            let trigger = trigger.filter(|_| {
                when_data
                    .as_ref()
                    .is_none_or(|c| data_is(call, &c.field, &c.values))
            })?;
            let called = call.turns.iter().any(|t| any_of(&t.called, tools));
            if called {
                return None;
            }
            // After the caller said it; with no phrase, the call's end is where it was missed.
            let last = || agent_turns().next_back().map(|(i, _)| i);
            let turn = match trigger {
                Some(said) => reply_after(call, Some(said)).or_else(last),
                None => last(),
            }?;
            Some(at(turn, None))
        }
        RuleKind::ForbiddenQuestion { phrases } => {
            agent_turns().find_map(|(i, t)| phrase_at(phrases, t).map(|w| at(i, Some(w))))
        }
        RuleKind::ForbiddenDisclosure { phrases, detect } => {
            agent_turns().find_map(|(i, t)| says_any(phrases, detect, facts, t).map(|w| at(i, w)))
        }
        RuleKind::DisclosureBeforeTool {
            tool,
            phrases,
            detect,
        } => {
            for (i, t) in call.turns.iter().enumerate() {
                if t.succeeded.iter().any(|s| s == tool) {
                    return None;
                }
                if t.role == Role::Agent {
                    if let Some(w) = says_any(phrases, detect, facts, t) {
                        return Some(at(i, w));
                    }
                }
            }
            None
        }
        RuleKind::UnbookedPromise { phrases, tools } => {
            for (i, t) in call.turns.iter().enumerate() {
                if any_of(&t.succeeded, tools) {
                    return None;
                }
                if t.role == Role::Agent {
                    if let Some(w) = phrase_at(phrases, t) {
                        return Some(at(i, Some(w)));
                    }
                }
            }
            None
        }
        RuleKind::OpeningMustSay {
            phrases,
            within_agent_turns,
        } => {
            let opening: Vec<(usize, &Turn)> = agent_turns().take(*within_agent_turns).collect();
            let first = opening.first()?.0;
            let said = opening.iter().any(|(_, t)| phrase_at(phrases, t).is_some());
            (!said).then(|| at(first, None))
        }
        RuleKind::EscalationRequired {
            caller_phrases,
            tools,
        } => {
            let asked = caller_says(call, caller_phrases, 0)?;
            let escalated = call.turns[asked..].iter().any(|t| any_of(&t.called, tools));
            if escalated {
                return None;
            }
            let turn = reply_after(call, Some(asked)).unwrap_or(asked);
            Some(at(turn, None))
        }
        RuleKind::EvaluationFailed { criteria } => call
            .evaluation
            .iter()
            .find(|(id, (result, _))| {
                result == "failure" && (criteria.is_empty() || criteria.contains(id))
            })
            .map(|(id, (_, rationale))| {
                let why = rationale.as_deref().unwrap_or("no rationale given");
                whole_call(format!("{id}: failure. {why}"))
            }),
        RuleKind::NegativeSentiment { field, values } => data_is(call, field, values)
            .then(|| whole_call(format!("{field}: {}", data_text(call.data.get(field))))),
    }
}

fn any_of(names: &[String], wanted: &[String]) -> bool {
    names.iter().any(|n| wanted.contains(n))
}

/// The first caller turn at or after `from` that says one of `phrases`.
fn caller_says(call: &Evidence, phrases: &[Phrase], from: usize) -> Option<usize> {
    call.turns
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, t)| t.role == Role::Caller && first_match(phrases, &t.words).is_some())
        .map(|(i, _)| i)
}

/// The agent's first spoken turn after `turn` (after the start, for `None`).
fn reply_after(call: &Evidence, turn: Option<usize>) -> Option<usize> {
    let from = turn.map(|t| t + 1).unwrap_or(0);
    call.turns
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, t)| t.role == Role::Agent && !t.words.is_empty())
        .map(|(i, _)| i)
}

fn data_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Whether the data-collection `field` holds one of `values` (any case).
fn data_is(call: &Evidence, field: &str, values: &[String]) -> bool {
    let value = data_text(call.data.get(field)).trim().to_lowercase();
    !value.is_empty() && values.iter().any(|v| v.to_lowercase() == value)
}

/// Where in the turn's words the first of `phrases` stands.
fn phrase_at(phrases: &[Phrase], t: &Turn) -> Option<usize> {
    phrases.iter().find_map(|p| p.find(&t.words))
}

/// Whether the turn says one of `phrases` or something a detector finds: `Some(word index)`
/// for a phrase, `Some(None)` for a detector (the excerpt starts at the turn's beginning).
fn says_any(
    phrases: &[Phrase],
    detect: &[Detector],
    facts: &BusinessFacts,
    t: &Turn,
) -> Option<Option<usize>> {
    if let Some(w) = phrase_at(phrases, t) {
        return Some(Some(w));
    }
    detect.iter().find_map(|d| detected(*d, facts, t))
}

fn detected(d: Detector, facts: &BusinessFacts, t: &Turn) -> Option<Option<usize>> {
    match d {
        Detector::ProviderAddress => facts
            .provider_addresses
            .iter()
            .find_map(|p| p.find(&t.words))
            .map(Some),
        Detector::ProviderPhone => digit_runs(&t.text)
            .iter()
            .any(|run| {
                facts
                    .provider_phones
                    .iter()
                    .any(|p| run.contains(p.as_str()))
            })
            .then_some(None),
        Detector::PhoneNumber => digit_runs(&t.text)
            .iter()
            .any(|run| run.len() >= 7)
            .then_some(None),
        Detector::Email => redact_contact_details(&t.text)
            .contains("[email]")
            .then_some(None),
        Detector::Price => price_at(t),
    }
}

/// Digits of each number as written, joined over the separators people use inside phone
/// numbers ("020 7946 0010" is one run).
fn digit_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut run = String::new();
    let mut gap = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
            gap = 0;
        } else if !run.is_empty() && matches!(c, ' ' | '-' | '.' | '(' | ')') && gap == 0 {
            gap += 1;
        } else if !run.is_empty() {
            runs.push(std::mem::take(&mut run));
            gap = 0;
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

const MONEY_WORDS: &[&str] = &[
    "pounds", "pound", "quid", "dollars", "dollar", "bucks", "euros", "euro",
];

fn price_at(t: &Turn) -> Option<Option<usize>> {
    let symbol = t.text.char_indices().any(|(i, c)| {
        matches!(c, '£' | '$' | '€')
            && t.text[i + c.len_utf8()..]
                .chars()
                .next()
                .is_some_and(|n| n.is_ascii_digit())
    });
    if symbol {
        return Some(None);
    }
    t.words
        .windows(2)
        .position(|w| {
            MONEY_WORDS.contains(&w[1].as_str())
                && (w[0].chars().all(|c| c.is_ascii_digit())
                    || NUMBER_WORDS_FOR_MONEY.contains(&w[0].as_str()))
        })
        .map(Some)
}

const NUMBER_WORDS_FOR_MONEY: &[&str] = &[
    "ten", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred",
    "thousand",
];

/// The turn's text with contact details masked, cut to [`EXCERPT_CHARS`] around word `around`.
fn excerpt(t: &Turn, around: Option<usize>) -> String {
    let masked = redact_contact_details(&t.text);
    // Where the matched word is, roughly, in the masked text.
    let start = around
        .and_then(|w| t.words.get(w))
        .and_then(|w| masked.to_lowercase().find(w.as_str()))
        .filter(|&i| masked.is_char_boundary(i))
        .unwrap_or(0);
    cut(&masked, start)
}

fn cut(text: &str, around: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= EXCERPT_CHARS {
        return text.to_string();
    }
    let at = text[..around.min(text.len())].chars().count();
    let from = at.saturating_sub(EXCERPT_CHARS / 3);
    let to = (from + EXCERPT_CHARS - 2).min(chars.len());
    let mut out = String::new();
    if from > 0 {
        out.push('…');
    }
    out.extend(&chars[from..to]);
    if to < chars.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn demo() -> (RuleSet, BusinessFacts) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../prompts/demo");
        let tenant = TenantConfig::load_dir(&dir).unwrap();
        let facts = BusinessFacts::of(&tenant);
        (tenant.quality, facts)
    }

    const OPENING: &str = "Hi, you're through to Northside Plumbing, I'm Ava, the virtual receptionist. Calls are recorded for quality.";

    /// A call from (role, text) pairs; a text of `tool:<name>` is a call of that tool, and
    /// `ok:<name>` / `refused:<name>` its result.
    fn call(turns: &[(&str, &str)]) -> Evidence {
        let turns: Vec<Value> = turns
            .iter()
            .map(|(role, text)| {
                if let Some(tool) = text.strip_prefix("tool:") {
                    json!({"role": "agent", "message": null, "tool_calls": [{"tool_name": tool, "request_id": "r"}]})
                } else if let Some(tool) = text.strip_prefix("ok:") {
                    json!({"role": "agent", "message": null, "tool_results": [{"tool_name": tool, "request_id": "r", "is_error": false, "result_value": "{\"ok\": true}"}]})
                } else if let Some(tool) = text.strip_prefix("refused:") {
                    json!({"role": "agent", "message": null, "tool_results": [{"tool_name": tool, "request_id": "r", "is_error": false, "result_value": "{\"ok\": false, \"code\": \"slot_taken\"}"}]})
                } else {
                    json!({"role": role, "message": text})
                }
            })
            .collect();
        let turns: Vec<ElevenLabsTurn> = serde_json::from_value(Value::Array(turns)).unwrap();
        Evidence::from_transcript(&turns)
    }

    fn flags(call: &Evidence) -> Vec<(String, Option<usize>)> {
        let (rules, facts) = demo();
        check(&rules, &facts, call)
            .into_iter()
            .map(|f| (f.rule_id, f.turn))
            .collect()
    }

    fn flagged(call: &Evidence, rule: &str) -> Option<Option<usize>> {
        flags(call)
            .into_iter()
            .find(|(id, _)| id == rule)
            .map(|(_, t)| t)
    }

    #[test]
    fn a_clean_call_raises_nothing() {
        let c = call(&[
            ("agent", OPENING),
            ("user", "My boiler needs a service, I'm in N7."),
            ("agent", "Let me check what we have."),
            ("agent", "tool:check_availability"),
            ("agent", "ok:check_availability"),
            ("agent", "I can do Wednesday at 8am. Shall I book that?"),
            (
                "user",
                "Yes please, it's Sam, the doberman will be in the garden.",
            ),
            ("agent", "tool:create_booking"),
            ("agent", "ok:create_booking"),
            ("agent", "You're booked for Wednesday at 8am, see you at 8."),
        ]);
        assert_eq!(flags(&c), vec![]);
    }

    #[test]
    fn a_forbidden_question_is_flagged_at_the_first_turn_that_asks_it() {
        let c = call(&[
            ("agent", OPENING),
            ("user", "Hi."),
            ("agent", "Can I take your D.O.B.? Sorry, your DOB."),
            ("agent", "And your date of birth again?"),
        ]);
        assert_eq!(flagged(&c, "asked-date-of-birth"), Some(Some(2)));
        let card = call(&[
            ("agent", OPENING),
            ("agent", "What's the long number on the card?"),
        ]);
        assert_eq!(flagged(&card, "asked-card-details"), Some(Some(1)));
    }

    #[test]
    fn a_partners_details_before_dispatch_are_flagged_but_not_its_name_after() {
        let early = call(&[
            ("agent", OPENING),
            ("user", "My drain is blocked."),
            (
                "agent",
                "ClearFlow Drains will sort it, they're at Unit 4, Vale Road.",
            ),
            ("agent", "tool:dispatch_lead"),
            ("agent", "ok:dispatch_lead"),
        ]);
        assert_eq!(
            flagged(&early, "partner-details-before-dispatch"),
            Some(Some(2))
        );
        let after = call(&[
            ("agent", OPENING),
            ("agent", "tool:dispatch_lead"),
            ("agent", "ok:dispatch_lead"),
            ("agent", "ClearFlow Drains will call you within the hour."),
        ]);
        assert_eq!(flagged(&after, "partner-details-before-dispatch"), None);
    }

    #[test]
    fn a_price_is_flagged_wherever_it_is_said() {
        let c = call(&[
            ("agent", OPENING),
            ("user", "How much is a service?"),
            ("agent", "Usually about £80 plus parts."),
        ]);
        assert_eq!(flagged(&c, "price-quoted"), Some(Some(2)));
        let words = call(&[("agent", OPENING), ("agent", "It's around eighty pounds.")]);
        assert_eq!(flagged(&words, "price-quoted"), Some(Some(1)));
        let hours = call(&[
            ("agent", OPENING),
            ("agent", "We open at 8, 5 days a week."),
        ]);
        assert_eq!(flagged(&hours, "price-quoted"), None);
    }

    #[test]
    fn a_promise_without_a_booking_is_flagged_and_a_refused_booking_is_no_booking() {
        let c = call(&[
            ("agent", OPENING),
            ("agent", "tool:create_booking"),
            ("agent", "refused:create_booking"),
            ("agent", "Lovely, see you at 3pm then."),
        ]);
        assert_eq!(flagged(&c, "promised-unbooked-slot"), Some(Some(3)));
    }

    #[test]
    fn the_opening_must_disclose_the_ai_and_the_recording() {
        let c = call(&[
            ("agent", "Northside Plumbing, Ava speaking."),
            ("user", "Hi."),
            ("agent", "This call is recorded, by the way."),
        ]);
        assert_eq!(flagged(&c, "ai-not-disclosed"), Some(Some(0)));
        assert_eq!(
            flagged(&c, "recording-consent-not-asked"),
            None,
            "within two agent turns"
        );
    }

    #[test]
    fn a_request_for_a_person_must_reach_the_escalation_tool() {
        let c = call(&[
            ("agent", OPENING),
            ("user", "This is ridiculous, I want to speak to a human."),
            ("agent", "I can help you with that booking."),
        ]);
        assert_eq!(flagged(&c, "complaint-not-escalated"), Some(Some(2)));
        let escalated = call(&[
            ("agent", OPENING),
            ("user", "Can I speak to a person?"),
            ("agent", "tool:escalation_target"),
        ]);
        assert_eq!(flagged(&escalated, "complaint-not-escalated"), None);
    }

    #[test]
    fn an_enquiry_needs_a_lead_and_the_evaluation_and_sentiment_count() {
        let mut c = call(&[
            ("agent", OPENING),
            ("user", "Can you quote for a bathroom?"),
            ("agent", "Someone will call you back."),
        ]);
        c.data
            .insert("disposition".into(), json!("quote_requested"));
        c.data.insert("caller_sentiment".into(), json!("Negative"));
        c.evaluation.insert(
            "booked_or_routed".into(),
            ("failure".into(), Some("No lead was taken.".into())),
        );
        assert_eq!(flagged(&c, "enquiry-not-captured"), Some(Some(2)));
        assert_eq!(flagged(&c, "evaluation-failed"), Some(None));
        assert_eq!(flagged(&c, "caller-unhappy"), Some(None));
        c.data.insert("disposition".into(), json!("spam"));
        assert_eq!(flagged(&c, "enquiry-not-captured"), None);
    }

    #[test]
    fn an_excerpt_is_masked_and_short() {
        let long = format!(
            "{} Call me on 07911 123456, and what's your date of birth? {}",
            "word ".repeat(100),
            "more ".repeat(100)
        );
        let c = call(&[("agent", OPENING), ("agent", &long)]);
        let (rules, facts) = demo();
        let found = check(&rules, &facts, &c);
        let dob = found
            .iter()
            .find(|f| f.rule_id == "asked-date-of-birth")
            .unwrap();
        assert!(
            dob.excerpt.chars().count() <= EXCERPT_CHARS,
            "{}",
            dob.excerpt
        );
        assert!(dob.excerpt.contains("date of birth"), "{}", dob.excerpt);
        assert!(!dob.excerpt.contains("07911"), "{}", dob.excerpt);
    }

    #[test]
    fn a_long_clean_call_raises_nothing() {
        let mut turns = vec![("agent", OPENING)];
        for _ in 0..750 {
            turns.push(("user", "And what about the radiator in the back bedroom?"));
            turns.push(("agent", "That one we can look at on the same visit."));
        }
        assert_eq!(flags(&call(&turns)), vec![]);
    }
}
