//! A tenant's quality rules: data in `prompts/<tenant>/assertions.toml`, validated at load with
//! errors that name the file, the rule and the field.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::phrases::Phrase;

pub const ASSERTIONS_FILE: &str = "assertions.toml";

/// The tools that put a caller through to a person (ours and ElevenLabs' system transfers).
const ESCALATION_TOOLS: &[&str] = &[
    "escalation_target",
    "transfer_to_number",
    "transfer_to_agent",
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// Unknown fields are refused by the kind's own fields (serde cannot deny them here, beside a
/// flattened enum).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Lower-case letters, digits, `_` and `-`: part of the flag's id.
    pub id: String,
    pub severity: Severity,
    /// What the rule protects, for the reviewer.
    pub description: String,
    #[serde(flatten)]
    pub kind: RuleKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Low, Self::Medium, Self::High, Self::Critical]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// What the agent said that a rule looks for besides phrases: facts of the business or shapes
/// of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// Any partner provider's address (its first line, or its postcode).
    ProviderAddress,
    /// Any partner provider's phone number, however it is written.
    ProviderPhone,
    /// Any run of seven or more digits.
    PhoneNumber,
    /// An e-mail address.
    Email,
    /// An amount of money: "£80", "$95.50", "eighty pounds", "95 dollars".
    Price,
}

/// A condition on the whole call, from the agent's data collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataCondition {
    /// A data-collection field of the agent's analysis.
    pub field: String,
    /// Values (compared case-insensitively) for which the condition holds.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleKind {
    /// One of `tools` must have been called when the condition holds (the caller said one of
    /// `when_caller_says`, or a data-collection value matches `when_data`; with neither, on
    /// every call).
    RequiredTool {
        tools: Vec<String>,
        #[serde(default)]
        when_caller_says: Vec<Phrase>,
        #[serde(default)]
        when_data: Option<DataCondition>,
    },
    /// The agent must never ask this.
    ForbiddenQuestion { phrases: Vec<Phrase> },
    /// The agent must not say this before `tool` has succeeded.
    DisclosureBeforeTool {
        tool: String,
        #[serde(default)]
        phrases: Vec<Phrase>,
        #[serde(default)]
        detect: Vec<Detector>,
    },
    /// The agent must never say this.
    ForbiddenDisclosure {
        #[serde(default)]
        phrases: Vec<Phrase>,
        #[serde(default)]
        detect: Vec<Detector>,
    },
    /// The agent must not promise a time ("you're booked", "see you at {n}") unless one of
    /// `tools` succeeded earlier in the call.
    UnbookedPromise {
        phrases: Vec<Phrase>,
        #[serde(default = "booking_tools")]
        tools: Vec<String>,
    },
    /// The agent must say one of `phrases` within its first `within_agent_turns` turns (AI
    /// disclosure, recording consent).
    OpeningMustSay {
        phrases: Vec<Phrase>,
        #[serde(default = "one")]
        within_agent_turns: usize,
    },
    /// When the caller says one of `caller_phrases` (a complaint, asking for a person), one of
    /// `tools` must be called after it.
    EscalationRequired {
        caller_phrases: Vec<Phrase>,
        #[serde(default = "escalation_tools")]
        tools: Vec<String>,
    },
    /// ElevenLabs' evaluation of the call failed (any criterion, or only these).
    EvaluationFailed {
        #[serde(default)]
        criteria: Vec<String>,
    },
    /// The caller's sentiment, as a data-collection field, is one of `values`.
    NegativeSentiment { field: String, values: Vec<String> },
}

fn booking_tools() -> Vec<String> {
    vec!["create_booking".into(), "update_booking".into()]
}

fn escalation_tools() -> Vec<String> {
    ESCALATION_TOOLS.iter().map(|t| t.to_string()).collect()
}

fn one() -> usize {
    1
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::RequiredTool { .. } => "required_tool",
            Self::ForbiddenQuestion { .. } => "forbidden_question",
            Self::DisclosureBeforeTool { .. } => "disclosure_before_tool",
            Self::ForbiddenDisclosure { .. } => "forbidden_disclosure",
            Self::UnbookedPromise { .. } => "unbooked_promise",
            Self::OpeningMustSay { .. } => "opening_must_say",
            Self::EscalationRequired { .. } => "escalation_required",
            Self::EvaluationFailed { .. } => "evaluation_failed",
            Self::NegativeSentiment { .. } => "negative_sentiment",
        }
    }
}

/// A rule file that cannot be used: which file, which rule, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {rule}: {field}: {message}")]
pub struct RulesError {
    pub file: String,
    /// `rules[3] (ask_dob)`, or `-` for the file as a whole.
    pub rule: String,
    pub field: String,
    pub message: String,
}

impl RuleSet {
    /// Reads `<dir>/assertions.toml`; a tenant without one has no rules.
    pub fn load_dir(dir: &Path) -> Result<Self, RulesError> {
        let path = dir.join(ASSERTIONS_FILE);
        if !path.exists() {
            return Ok(Self::default());
        }
        Self::load_file(&path)
    }

    pub fn load_file(path: &Path) -> Result<Self, RulesError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RulesError {
            file: file.clone(),
            rule: "-".into(),
            field: "-".into(),
            message: format!("cannot read: {e}"),
        })?;
        Self::from_toml(&text, &file)
    }

    pub fn from_toml(text: &str, file: &str) -> Result<Self, RulesError> {
        let fail = |rule: String, field: &str, message: String| RulesError {
            file: file.into(),
            rule,
            field: field.into(),
            message,
        };
        let mut doc: toml::Table = toml::from_str(text)
            .map_err(|e| fail("-".into(), "-", e.message().trim().to_string()))?;
        if let Some(other) = doc.keys().find(|k| *k != "rules") {
            return Err(fail(
                "-".into(),
                other,
                "unknown table; rules go in [[rules]]".into(),
            ));
        }
        let raw = match doc.remove("rules") {
            None => Vec::new(),
            Some(toml::Value::Array(rules)) => rules,
            Some(_) => return Err(fail("-".into(), "rules", "must be [[rules]] tables".into())),
        };
        // One rule at a time, so an error can say which rule (a flattened kind loses the
        // position TOML would give).
        let mut rules = Vec::with_capacity(raw.len());
        for (i, value) in raw.into_iter().enumerate() {
            let id = value
                .get("id")
                .and_then(toml::Value::as_str)
                .unwrap_or("?")
                .to_string();
            let fields = value.as_table().cloned().unwrap_or_default();
            let rule: Rule = serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().to_string();
                let message = e.into_inner().to_string();
                let field = if path != "." && path != "?" {
                    path
                } else {
                    field_named_in(&message, &fields)
                };
                fail(format!("rules[{i}] ({id})"), &field, message)
            })?;
            rules.push(rule);
        }
        let set = Self { rules };
        set.validate(file)?;
        Ok(set)
    }

    pub fn validate(&self, file: &str) -> Result<(), RulesError> {
        let mut seen = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let fail = |field: &str, message: &str| RulesError {
                file: file.into(),
                rule: format!("rules[{i}] ({})", rule.id),
                field: field.into(),
                message: message.into(),
            };
            let id_ok = !rule.id.is_empty()
                && rule.id.len() <= 64
                && rule
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if !id_ok {
                return Err(fail(
                    "id",
                    "must be 1 to 64 lower-case letters, digits, '_' or '-'",
                ));
            }
            if !seen.insert(rule.id.as_str()) {
                return Err(fail("id", "is used by an earlier rule"));
            }
            if rule.description.trim().is_empty() {
                return Err(fail("description", "must say what the rule protects"));
            }
            let none = |list: &[Phrase]| list.is_empty();
            match &rule.kind {
                RuleKind::RequiredTool { tools, .. } if tools.is_empty() => {
                    return Err(fail("tools", "must name at least one tool"))
                }
                RuleKind::ForbiddenQuestion { phrases } if none(phrases) => {
                    return Err(fail("phrases", "must list at least one phrase"))
                }
                RuleKind::DisclosureBeforeTool {
                    tool,
                    phrases,
                    detect,
                } => {
                    if tool.trim().is_empty() {
                        return Err(fail("tool", "must name the tool"));
                    }
                    if none(phrases) && detect.is_empty() {
                        return Err(fail("phrases", "give phrases, detect, or both"));
                    }
                }
                RuleKind::ForbiddenDisclosure { phrases, detect }
                    if none(phrases) && detect.is_empty() =>
                {
                    return Err(fail("phrases", "give phrases, detect, or both"))
                }
                RuleKind::UnbookedPromise { phrases, tools } => {
                    if none(phrases) {
                        return Err(fail("phrases", "must list at least one phrase"));
                    }
                    if tools.is_empty() {
                        return Err(fail("tools", "must name at least one tool"));
                    }
                }
                RuleKind::OpeningMustSay {
                    phrases,
                    within_agent_turns,
                } => {
                    if none(phrases) {
                        return Err(fail("phrases", "must list at least one phrase"));
                    }
                    if *within_agent_turns == 0 {
                        return Err(fail("within_agent_turns", "must be at least 1"));
                    }
                }
                RuleKind::EscalationRequired {
                    caller_phrases,
                    tools,
                } => {
                    if none(caller_phrases) {
                        return Err(fail("caller_phrases", "must list at least one phrase"));
                    }
                    if tools.is_empty() {
                        return Err(fail("tools", "must name at least one tool"));
                    }
                }
                RuleKind::NegativeSentiment { field, values } => {
                    if field.trim().is_empty() {
                        return Err(fail("field", "must name a data-collection field"));
                    }
                    if values.is_empty() {
                        return Err(fail("values", "must list at least one value"));
                    }
                }
                _ => {}
            }
            if let RuleKind::RequiredTool {
                when_data: Some(c), ..
            } = &rule.kind
            {
                if c.field.trim().is_empty() || c.values.is_empty() {
                    return Err(fail("when_data", "needs a field and at least one value"));
                }
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

/// The field a serde message is about: the one it names ("unknown field `phrase`", "missing
/// field `tools`"), or the one holding the value it quotes ("unknown variant `urgent`").
fn field_named_in(message: &str, fields: &toml::Table) -> String {
    let Some(quoted) = message.split('`').nth(1) else {
        return "-".into();
    };
    if message.contains("variant") {
        let holds = |v: &toml::Value| match v {
            toml::Value::String(s) => s == quoted,
            toml::Value::Array(items) => items.iter().any(|i| i.as_str() == Some(quoted)),
            _ => false,
        };
        if let Some((name, _)) = fields.iter().find(|(_, v)| holds(v)) {
            return name.clone();
        }
    }
    quoted.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_rules_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../prompts/demo");
        let set = RuleSet::load_dir(&dir).unwrap();
        let kinds: std::collections::BTreeSet<&str> =
            set.rules.iter().map(|r| r.kind.name()).collect();
        assert_eq!(kinds.len(), 9, "the demo ships every kind: {kinds:?}");
    }

    #[test]
    fn errors_name_the_file_the_rule_and_the_field() {
        let text = r#"
[[rules]]
id = "ask_dob"
kind = "forbidden_question"
severity = "high"
description = "No dates of birth."
phrases = ["date of birth"]

[[rules]]
id = "promise"
kind = "unbooked_promise"
severity = "urgent"
description = "No promises."
phrases = ["you're booked"]
"#;
        let e = RuleSet::from_toml(text, "assertions.toml").unwrap_err();
        assert_eq!(e.file, "assertions.toml");
        assert_eq!(e.rule, "rules[1] (promise)");
        assert_eq!(e.field, "severity");

        let empty = text
            .replace("severity = \"urgent\"", "severity = \"low\"")
            .replace("phrases = [\"you're booked\"]", "phrases = []");
        let e = RuleSet::from_toml(&empty, "assertions.toml").unwrap_err();
        assert_eq!(
            (e.rule.as_str(), e.field.as_str()),
            ("rules[1] (promise)", "phrases")
        );

        let twice = text
            .replace("severity = \"urgent\"", "severity = \"low\"")
            .replace("id = \"promise\"", "id = \"ask_dob\"");
        let e = RuleSet::from_toml(&twice, "assertions.toml").unwrap_err();
        assert_eq!(
            (e.rule.as_str(), e.field.as_str()),
            ("rules[1] (ask_dob)", "id")
        );
    }

    #[test]
    fn an_unknown_kind_or_field_is_refused() {
        let text = "[[rules]]\nid = \"x\"\nkind = \"mind_reading\"\nseverity = \"low\"\ndescription = \"d\"\n";
        let e = RuleSet::from_toml(text, "a.toml").unwrap_err();
        assert_eq!(
            (e.rule.as_str(), e.field.as_str()),
            ("rules[0] (x)", "kind")
        );
        let text = "[[rules]]\nid = \"x\"\nkind = \"forbidden_disclosure\"\nseverity = \"low\"\ndescription = \"d\"\ndetect = [\"horoscope\"]\n";
        let e = RuleSet::from_toml(text, "a.toml").unwrap_err();
        assert_eq!(e.field, "detect", "{e}");
        let text = "[[rules]]\nid = \"x\"\nkind = \"forbidden_question\"\nseverity = \"low\"\ndescription = \"d\"\nphrases = [\"a\"]\nphrase = \"b\"\n";
        let e = RuleSet::from_toml(text, "a.toml").unwrap_err();
        assert_eq!(e.field, "phrase", "{e}");
    }
}
