//! Replay: the same rules over past transcripts as ElevenLabs exports them (a post-call webhook
//! body, or a conversation from `GET /v1/convai/conversations/{id}`), writing nothing, so a rule
//! is tried on history before it is switched on.

use std::collections::BTreeMap;

use serde_json::Value;

use super::check::{check, BusinessFacts, Evidence, Finding};
use super::rules::RuleSet;
use crate::elevenlabs::webhook::Turn;

/// One past call, read for the rules: its conversation id and evidence.
pub fn read_export(raw: &[u8]) -> Result<(String, Evidence), String> {
    let mut doc: Value = serde_json::from_slice(raw).map_err(|e| format!("not JSON: {e}"))?;
    // A webhook body wraps the conversation in `data`.
    let mut data = match doc.get_mut("data") {
        Some(d) if d.is_object() => d.take(),
        _ => doc,
    };
    let conversation = data
        .get("conversation_id")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    let turns: Vec<Turn> = match data.get_mut("transcript").map(Value::take) {
        Some(t) => serde_json::from_value(t).map_err(|e| format!("transcript: {e}"))?,
        None => return Err("no transcript".into()),
    };
    let mut evidence = Evidence::from_transcript(&turns);
    let analysis = data.get("analysis");
    let results = |name: &str| {
        analysis
            .and_then(|a| a.get(name))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    evidence.evaluation = results("evaluation_criteria_results")
        .into_iter()
        .map(|(id, r)| {
            let result = r.get("result").and_then(Value::as_str).unwrap_or("unknown");
            let rationale = r
                .get("rationale")
                .and_then(Value::as_str)
                .map(str::to_string);
            (id, (result.to_string(), rationale))
        })
        .collect();
    evidence.data = results("data_collection_results")
        .into_iter()
        .map(|(id, r)| (id, r.get("value").cloned().unwrap_or(Value::Null)))
        .collect();
    Ok((conversation, evidence))
}

/// What a replay found: each call's would-be flags, and per rule how many calls it flagged.
#[derive(Debug, Default)]
pub struct Replay {
    pub calls: usize,
    pub findings: Vec<(String, Finding)>,
    pub per_rule: BTreeMap<String, usize>,
    /// Today, when the business masks personal data: excerpts are masked with it.
    pub masking: Option<jiff::civil::Date>,
}

impl Replay {
    pub fn new(rules: &RuleSet) -> Self {
        Self {
            per_rule: rules.rules.iter().map(|r| (r.id.clone(), 0)).collect(),
            ..Self::default()
        }
    }

    pub fn add(
        &mut self,
        rules: &RuleSet,
        facts: &BusinessFacts,
        conversation: &str,
        call: &Evidence,
    ) {
        self.calls += 1;
        for mut finding in check(rules, facts, call) {
            if let Some(today) = self.masking {
                finding.excerpt = crate::redact::redact_personal_data(&finding.excerpt, today);
            }
            *self.per_rule.entry(finding.rule_id.clone()).or_default() += 1;
            self.findings.push((conversation.to_string(), finding));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_webhook_body_and_a_conversation_from_the_api_read_the_same() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let body =
            std::fs::read(root.join("events/webhooks/post_call_transcription.json")).unwrap();
        let (conversation, from_webhook) = read_export(&body).unwrap();
        assert_eq!(conversation, "conv_0201k7bq9w5hf3srd1y7a4mzq6ke");
        let data: Value = serde_json::from_slice::<Value>(&body).unwrap()["data"].clone();
        let (_, from_api) = read_export(data.to_string().as_bytes()).unwrap();
        assert_eq!(from_webhook.turns.len(), from_api.turns.len());
        assert_eq!(from_webhook.data["disposition"], "follow_up");
        assert_eq!(from_webhook.evaluation["booked_or_routed"].0, "success");
        assert!(read_export(b"{\"data\": {}}").is_err());
        assert!(read_export(b"not json").is_err());

        let tenant = crate::tenant::TenantConfig::load_dir(&root.join("prompts/demo")).unwrap();
        let facts = BusinessFacts::of(&tenant);
        let mut replay = Replay::new(&tenant.quality);
        replay.add(&tenant.quality, &facts, &conversation, &from_webhook);
        assert_eq!(replay.calls, 1);
        assert_eq!(replay.per_rule.len(), tenant.quality.rules.len());
        // The sample (a dental practice's call) promises a slot it never booked, and does not
        // say the agent is an AI or that the call is recorded.
        let found: Vec<&str> = replay
            .findings
            .iter()
            .map(|(_, f)| f.rule_id.as_str())
            .collect();
        assert!(found.contains(&"ai-not-disclosed"), "{found:?}");
    }

    #[test]
    fn excerpts_are_masked_when_the_business_redacts() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let tenant = crate::tenant::TenantConfig::load_dir(&root.join("prompts/demo")).unwrap();
        let facts = BusinessFacts::of(&tenant);
        let call = serde_json::json!({"conversation_id": "conv_1", "transcript": [
            {"role": "agent", "message": "What is your date of birth? Is it 12/03/1985?", "time_in_call_secs": 0},
        ]});
        let (id, evidence) = read_export(call.to_string().as_bytes()).unwrap();
        let mut plain = Replay::new(&tenant.quality);
        plain.add(&tenant.quality, &facts, &id, &evidence);
        let mut masked = Replay::new(&tenant.quality);
        masked.masking = Some(jiff::civil::date(2026, 12, 3));
        masked.add(&tenant.quality, &facts, &id, &evidence);
        let excerpt = |r: &Replay| {
            r.findings
                .iter()
                .find(|(_, f)| f.rule_id == "asked-date-of-birth")
                .map(|(_, f)| f.excerpt.clone())
                .unwrap()
        };
        assert!(
            excerpt(&plain).contains("12/03/1985"),
            "{}",
            excerpt(&plain)
        );
        assert!(
            excerpt(&masked).contains("[date of birth]"),
            "{}",
            excerpt(&masked)
        );
    }
}
