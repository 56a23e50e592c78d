//! A business's configuration: `prompts/<tenant>/business.toml` is the source; a stack reads it
//! from its DynamoDB config item (written by the CLI or `make dev`), validated on load.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::booking::engine::Schedule;
use crate::booking::rules::{BookingRules, ServiceDef, WeeklyHours};
use crate::dispatch::{Area, Provider};
use crate::phone::PhoneNumber;

pub const BUSINESS_FILE: &str = "business.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub business: Business,
    pub messaging: Messaging,
    #[serde(default)]
    pub post_call: PostCallRules,
    pub templates: Templates,
    /// Hours, resources and rules for taking bookings; without it the business takes none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking: Option<BookingRules>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceDef>,
    /// Where the business works: leads name one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub areas: Vec<Area>,
    /// Partners leads can be passed to (dispatch_lead).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<Provider>,
    /// Live transfers to a person (escalation_target); without it, callers get a callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
    /// The quality rules, from `assertions.toml` beside `business.toml` (not written in it).
    #[serde(default, skip_serializing_if = "crate::quality::RuleSet::is_empty")]
    pub quality: crate::quality::RuleSet,
    /// When texts may reach people (the recipient's local time).
    #[serde(default)]
    pub quiet_hours: QuietHours,
    /// The owner's morning summary.
    #[serde(default)]
    pub digest: Digest,
    /// Recording disclosure, redaction of personal data, how long records are kept.
    #[serde(default)]
    pub compliance: Compliance,
    /// The agent's prompt (`agent.md` beside `business.toml`): the text channel answers with it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agent_prompt: String,
    /// The agent's tools (`tools/*.json`): the text channel offers the same ones to its LLM.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_tools: Vec<AgentTool>,
}

/// Quiet hours: the local times messages may be sent, in the recipient's zone (from their
/// number, else the business's). A message due outside waits for the next allowed minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuietHours {
    /// Customers (every caller-facing text): 08:00–21:00 unless stricter rules apply (e.g.
    /// 08:00–20:00 for Florida numbers).
    pub customers: crate::quiet::Window,
    /// The owner and partners: 07:00–22:00 by default.
    pub staff: crate::quiet::Window,
    /// Hot-lead alerts reach the owner at any hour (an emergency plumber wants them).
    pub hot_leads_any_time: bool,
}

impl Default for QuietHours {
    fn default() -> Self {
        Self {
            customers: crate::quiet::Window::CUSTOMERS,
            staff: crate::quiet::Window::STAFF,
            hot_leads_any_time: false,
        }
    }
}

/// The owner's daily digest: yesterday's calls, bookings, hot leads, missed calls, failed
/// messages and open QA flags, by text at this local time (the business's zone); none on a day
/// with nothing to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Digest {
    pub enabled: bool,
    pub at: jiff::civil::Time,
}

impl Default for Digest {
    fn default() -> Self {
        Self {
            enabled: true,
            at: jiff::civil::Time::constant(7, 30, 0, 0),
        }
    }
}

/// What the law or the business asks of the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Compliance {
    /// The agent says calls are recorded in its opening (and the prompt tells it to).
    pub recording_disclosure: bool,
    /// Mask phone numbers, e-mail addresses, card numbers and dates of birth in stored
    /// transcripts, the QA views and replay output (contacts and leads keep what the business
    /// needs to call back).
    pub redact: bool,
    /// Days call records, messages and flags are kept (DynamoDB TTL); the stack's S3 lifecycle
    /// keeps transcripts and audio as long (its `RecordingRetentionDays`, set from this).
    pub retention_days: u32,
}

impl Default for Compliance {
    fn default() -> Self {
        Self {
            recording_disclosure: true,
            redact: false,
            retention_days: 365,
        }
    }
}

/// Shortest and longest retention a business may set: timed messages wait up to a month.
pub const RETENTION_DAYS: std::ops::RangeInclusive<u32> = 60..=3650;

impl Compliance {
    /// When a record made at `from` expires (the table's TTL attribute: epoch seconds).
    pub fn expires_at(&self, from: jiff::Timestamp) -> i64 {
        from.as_second() + i64::from(self.retention_days) * 86_400
    }
}

/// One of the agent's tools as the LLM sees it: the ElevenLabs definition's name, description
/// and request body schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentTool {
    pub name: String,
    pub description: String,
    pub input_schema: serde_json::Value,
}

impl AgentTool {
    /// Reads an ElevenLabs webhook tool definition (`tool_config.name`, `.description`,
    /// `.api_schema.request_body_schema`).
    pub fn load(path: &Path) -> Result<Self, TenantConfigError> {
        let file = path.display().to_string();
        let fail = |field: &str, message: String| TenantConfigError {
            file: file.clone(),
            field: field.into(),
            message,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| fail("-", format!("cannot read: {e}")))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| fail("-", format!("not JSON: {e}")))?;
        let config = &v["tool_config"];
        let name = config["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| fail("tool_config.name", "a tool name is required".into()))?;
        let schema = config["api_schema"]["request_body_schema"].clone();
        if !schema.is_object() {
            return Err(fail(
                "tool_config.api_schema.request_body_schema",
                "an object schema is required".into(),
            ));
        }
        Ok(Self {
            name: name.to_string(),
            description: config["description"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            input_schema: schema,
        })
    }
}

/// The agent's prompt and tool files of a tenant folder.
pub const AGENT_PROMPT_FILE: &str = "agent.md";
pub const AGENT_TOOLS_DIR: &str = "tools";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Where the agent warm-transfers a caller while someone is working.
    pub transfer_number: PhoneNumber,
    /// When someone can take a transfer; by default the booking hours. Holidays and blackouts
    /// of `[booking]` apply either way.
    #[serde(default)]
    pub hours: Option<WeeklyHours>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Business {
    pub name: String,
    /// IANA zone, e.g. "Europe/London": every local time is computed in it.
    pub time_zone: String,
    /// ISO 3166 alpha-2 region for numbers written without a country code.
    pub country: String,
    /// The number callers ring (the Twilio number bridged to the agent).
    pub phone: PhoneNumber,
    /// Who gets hot leads and missed-call alerts.
    pub owner_phone: PhoneNumber,
    /// The ElevenLabs agents that answer for this business. Webhooks are workspace-wide, so
    /// events from other agents are acknowledged and ignored. Empty: accept every agent.
    #[serde(default)]
    pub agent_ids: Vec<String>,
    /// Where happy customers leave a review (the review request after a job); none: no
    /// review requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_link: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Messaging {
    /// Sender number for SMS (E.164); or leave empty and set `messaging_service_sid`.
    #[serde(default)]
    pub sms_from: Option<PhoneNumber>,
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// WhatsApp sender (a number enabled for WhatsApp on Twilio), for providers who want job
    /// notices there.
    #[serde(default)]
    pub whatsapp_from: Option<PhoneNumber>,
    /// Approved WhatsApp template (Content SID, HX...) for job notices: a business may only
    /// start a WhatsApp conversation with a template. Variables: 1 service, 2 area, 3 caller
    /// name, 4 caller number, 5 summary.
    #[serde(default)]
    pub whatsapp_job_template_sid: Option<String>,
    /// Approved WhatsApp template (HX...) for answering someone whose 24-hour window has closed
    /// (a reply that came late, a confirmation days later). Variables: 1 first name, 2 business
    /// name. Without it such messages go by SMS.
    #[serde(default)]
    pub whatsapp_reply_template_sid: Option<String>,
}

/// How the analysis ElevenLabs returns is read: which data-collection fields hold what.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostCallRules {
    /// Before `[compliance] redact`: still read (a stored configuration or a folder may have
    /// it), never written. `true` redacts as `compliance.redact` does.
    #[serde(default, skip_serializing)]
    pub redact_transcripts: Option<bool>,
    pub name_field: String,
    pub service_field: String,
    pub urgency_field: String,
    /// Urgency values (case-insensitive) that make a lead hot: the owner is texted at once.
    pub hot_values: Vec<String>,
    pub disposition_field: String,
    /// Dispositions after which the caller is told someone will follow up.
    pub follow_up_dispositions: Vec<String>,
    /// Dispositions that are not an enquiry at all: no lead, no text.
    pub no_lead_dispositions: Vec<String>,
    pub booking_id_field: String,
    pub booking_time_field: String,
}

impl Default for PostCallRules {
    fn default() -> Self {
        Self {
            redact_transcripts: None,
            name_field: "caller_name".into(),
            service_field: "service".into(),
            urgency_field: "urgency".into(),
            hot_values: vec!["hot".into(), "urgent".into(), "emergency".into()],
            disposition_field: "disposition".into(),
            follow_up_dispositions: vec![
                "follow_up".into(),
                "callback".into(),
                "quote_requested".into(),
            ],
            no_lead_dispositions: vec!["spam".into(), "wrong_number".into()],
            booking_id_field: "booking_id".into(),
            booking_time_field: "booking_time".into(),
        }
    }
}

/// Message texts with `{placeholders}`. Caller-facing ones must read like a person wrote them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Templates {
    pub booking_confirmed: String,
    pub info_recap: String,
    pub follow_up_needed: String,
    pub missed_call: String,
    pub owner_hot_lead: String,
    pub owner_missed_call: String,
    #[serde(default = "default_booking_moved")]
    pub booking_moved: String,
    #[serde(default = "default_booking_cancelled")]
    pub booking_cancelled: String,
    /// To a provider a lead is passed to.
    #[serde(default = "default_provider_job")]
    pub provider_job: String,
    /// To the owner when a caller was promised a callback out of hours.
    #[serde(default = "default_owner_callback")]
    pub owner_callback: String,
    /// The answer to HELP.
    #[serde(default = "default_text_help")]
    pub text_help: String,
    /// A text we could not answer automatically (no LLM, or it stayed down): the person hears
    /// we have it, and the owner is told (`owner_text`).
    #[serde(default = "default_text_received")]
    pub text_received: String,
    #[serde(default = "default_owner_text")]
    pub owner_text: String,
    /// A text that may ask us to stop: the owner checks it the same day.
    #[serde(default = "default_owner_possible_opt_out")]
    pub owner_possible_opt_out: String,
    /// C to a reminder.
    #[serde(default = "default_booking_confirmed_by_reply")]
    pub booking_confirmed_by_reply: String,
    /// R to a reminder: the times on offer, numbered (`{options}`).
    #[serde(default = "default_reschedule_offer")]
    pub reschedule_offer: String,
    /// The instant answer to a website enquiry.
    #[serde(default = "default_web_form_reply")]
    pub web_form_reply: String,
    /// The day before a booking (C confirms, R rearranges; never an opt-out word).
    #[serde(default = "default_booking_reminder")]
    pub booking_reminder: String,
    /// After the job, with `{review_link}`.
    #[serde(default = "default_review_request")]
    pub review_request: String,
    /// A month after the job.
    #[serde(default = "default_re_engagement")]
    pub re_engagement: String,
    /// A quote's follow-ups when the LLM cannot write them: three days on, then seven.
    #[serde(default = "default_quote_check_in")]
    pub quote_check_in: String,
    #[serde(default = "default_quote_reminder")]
    pub quote_reminder: String,
    /// To the owner: a quote with no answer after fourteen days.
    #[serde(default = "default_owner_quote_unanswered")]
    pub owner_quote_unanswered: String,
    /// To the owner: someone answered while their quote was being followed up.
    #[serde(default = "default_owner_quote_reply")]
    pub owner_quote_reply: String,
}

fn default_quote_check_in() -> String {
    "Hi {first_name}, it's {business_name}. Just checking you got our quote for {service}. Any questions, reply here or call {business_phone}.".into()
}

fn default_quote_reminder() -> String {
    "Hi {first_name}, {business_name} here. Our quote for {service} still stands: reply here when you'd like to go ahead and we'll find a time.".into()
}

fn default_owner_quote_unanswered() -> String {
    "No answer in 14 days to the quote for {service} ({quote}): {caller_name} {caller_phone}. Worth a call?".into()
}

fn default_owner_quote_reply() -> String {
    "{caller_name} {caller_phone} replied about the quote for {service}: {summary}".into()
}

fn default_booking_reminder() -> String {
    "Hi {first_name}, a reminder from {business_name}: your {service} is {booking_time}. Reply C to confirm or R to rearrange.".into()
}

fn default_review_request() -> String {
    "Thanks for choosing {business_name}, {first_name}. If we did a good job, a quick review helps a lot: {review_link}".into()
}

fn default_re_engagement() -> String {
    "Hi {first_name}, it's {business_name}. It's been a month since your {service}: is everything still working well? Reply here if you need us.".into()
}

fn default_text_help() -> String {
    "{business_name}: reply here with your question, or call {business_phone}. Reply STOP to stop texts.".into()
}

fn default_text_received() -> String {
    "Thanks for your message to {business_name}. One of the team will get back to you shortly."
        .into()
}

fn default_owner_text() -> String {
    "Text from {caller_name} {caller_phone} needs a reply: {summary}".into()
}

fn default_owner_possible_opt_out() -> String {
    "Check today: {caller_phone} may be asking us to stop texting them: {summary}".into()
}

fn default_booking_confirmed_by_reply() -> String {
    "Thanks {first_name}, you're confirmed for {service} on {booking_time}.".into()
}

fn default_reschedule_offer() -> String {
    "No problem {first_name}. Reply with the number of the time that suits you: {options}".into()
}

fn default_web_form_reply() -> String {
    "Hi {first_name}, this is {business_name}: thanks for your enquiry about {service}. Reply here and we'll sort it out, or call {business_phone}.".into()
}

fn default_booking_moved() -> String {
    "Hi {first_name}, this is {business_name}. Your {service} has moved to {booking_time}. Reply here if anything changes.".into()
}

fn default_booking_cancelled() -> String {
    "Hi {first_name}, this is {business_name}. Your {service} on {booking_time} is cancelled. Reply here or call {business_phone} to book again.".into()
}

fn default_provider_job() -> String {
    "New job from {business_name}: {service} in {area} for {caller_name}, {caller_phone}. {summary}"
        .into()
}

fn default_owner_callback() -> String {
    "Callback promised by {callback_time}: {caller_name} {caller_phone}. {summary}".into()
}

/// The demo business (`prompts/demo/business.toml`), for unit tests.
#[cfg(test)]
pub(crate) fn demo() -> TenantConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../prompts/demo/business.toml");
    TenantConfig::from_toml(&std::fs::read_to_string(path).unwrap(), path).unwrap()
}

/// Placeholders every template may use.
pub const CALLER_PLACEHOLDERS: &[&str] = &[
    "business_name",
    "first_name",
    "service",
    "booking_time",
    "business_phone",
    "options",
    "review_link",
    "quote",
];
pub const OWNER_PLACEHOLDERS: &[&str] = &[
    "business_name",
    "caller_name",
    "caller_phone",
    "service",
    "urgency",
    "summary",
    "booking_time",
    "area",
    "callback_time",
    "quote",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct TenantConfigError {
    pub file: String,
    pub field: String,
    pub message: String,
}

impl TenantConfig {
    /// Reads and validates `<dir>/business.toml`.
    pub fn load_dir(dir: &Path) -> Result<Self, TenantConfigError> {
        let path = dir.join(BUSINESS_FILE);
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| TenantConfigError {
            file: file.clone(),
            field: "-".into(),
            message: format!("cannot read: {e}"),
        })?;
        let mut config = Self::from_toml(&text, &file)?;
        config.load_folder(dir)?;
        Ok(config)
    }

    /// What sits beside `business.toml`: the quality rules, the agent's prompt and its tools.
    pub fn load_folder(&mut self, dir: &Path) -> Result<(), TenantConfigError> {
        self.quality = crate::quality::RuleSet::load_dir(dir).map_err(|e| TenantConfigError {
            file: e.file,
            field: format!("{}.{}", e.rule, e.field),
            message: e.message,
        })?;
        let tools = dir.join(AGENT_TOOLS_DIR);
        if tools.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(&tools)
                .and_then(|d| d.collect::<Result<Vec<_>, _>>())
                .map_err(|e| TenantConfigError {
                    file: tools.display().to_string(),
                    field: "-".into(),
                    message: format!("cannot read: {e}"),
                })?
                .into_iter()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            self.agent_tools = files
                .iter()
                .map(|f| AgentTool::load(f))
                .collect::<Result<_, _>>()?;
        }
        let prompt = dir.join(AGENT_PROMPT_FILE);
        if prompt.exists() {
            let read = |path: &Path| {
                std::fs::read_to_string(path).map_err(|e| TenantConfigError {
                    file: path.display().to_string(),
                    field: "-".into(),
                    message: format!("cannot read: {e}"),
                })
            };
            let template = read(&prompt)?;
            // With agent.toml, agent.md's `${...}` are filled from it and the business facts.
            let profile = dir.join(crate::agent::AGENT_FILE);
            self.agent_prompt = if profile.exists() {
                let profile = crate::agent::AgentProfile::from_toml(
                    &read(&profile)?,
                    &profile.display().to_string(),
                )?;
                crate::agent::render_prompt(&template, &profile, self).map_err(|message| {
                    TenantConfigError {
                        file: prompt.display().to_string(),
                        field: "-".into(),
                        message,
                    }
                })?
            } else {
                template
            };
        }
        Ok(())
    }

    pub fn from_toml(text: &str, file: &str) -> Result<Self, TenantConfigError> {
        let config = Self::parse_toml(text, file)?;
        config.validate(file)?;
        Ok(config)
    }

    /// Parsed (and [`upgraded`](Self::upgraded)), not yet validated.
    pub fn parse_toml(text: &str, file: &str) -> Result<Self, TenantConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let field = e
                .span()
                .map(|s| locate(text, s.start))
                .unwrap_or_else(|| "-".into());
            TenantConfigError {
                file: file.into(),
                field,
                message: e.message().to_string(),
            }
        })?;
        Ok(config.upgraded())
    }

    pub fn validate(&self, file: &str) -> Result<(), TenantConfigError> {
        match self.problems(file).into_iter().next() {
            Some(first) => Err(first),
            None => Ok(()),
        }
    }

    /// Every problem with the configuration, each naming its field (`validate` stops at the
    /// first; `frontdesk validate` lists them all).
    pub fn problems(&self, file: &str) -> Vec<TenantConfigError> {
        let mut found = Vec::new();
        let fail = |field: &str, message: String| TenantConfigError {
            file: file.into(),
            field: field.into(),
            message,
        };
        if !RETENTION_DAYS.contains(&self.compliance.retention_days) {
            found.push(fail(
                "compliance.retention_days",
                format!(
                    "must be from {} to {} days (timed messages wait up to a month)",
                    RETENTION_DAYS.start(),
                    RETENTION_DAYS.end()
                ),
            ));
        }
        for (field, window) in [
            ("quiet_hours.customers", self.quiet_hours.customers),
            ("quiet_hours.staff", self.quiet_hours.staff),
        ] {
            if !window.is_valid() {
                found.push(fail(field, "start and end must differ".into()));
            }
        }
        if self.business.name.trim().is_empty() {
            found.push(fail("business.name", "must not be empty".into()));
        }
        if jiff::tz::TimeZone::get(&self.business.time_zone).is_err() {
            found.push(fail(
                "business.time_zone",
                format!("{:?} is not an IANA time zone", self.business.time_zone),
            ));
        }
        if let Err(e) = crate::phone::check_region(&self.business.country) {
            found.push(fail("business.country", e.to_string()));
        }
        for (i, id) in self.business.agent_ids.iter().enumerate() {
            if let Err(e) = crate::ids::AgentId::parse(id) {
                found.push(fail(&format!("business.agent_ids[{i}]"), e.to_string()));
            }
        }
        let service_sid = self
            .messaging
            .messaging_service_sid
            .as_deref()
            .filter(|s| !s.is_empty());
        if self.messaging.sms_from.is_none() && service_sid.is_none() {
            found.push(fail(
                "messaging",
                "set sms_from or messaging_service_sid".into(),
            ));
        }
        if let Some(sid) = service_sid {
            if !(sid.starts_with("MG") && sid.len() == 34) {
                found.push(fail(
                    "messaging.messaging_service_sid",
                    "must look like MG followed by 32 characters".into(),
                ));
            }
        }
        if let Some(rules) = &self.booking {
            if let Err(e) = rules.validate(&self.services) {
                found.push(fail(&e.field, e.message));
            }
        }
        if let Err(e) = crate::dispatch::validate(&self.areas, &self.providers, &self.services) {
            found.push(fail(&e.field, e.message));
        }
        if self.providers.iter().any(|p| p.whatsapp) {
            let sid = self.messaging.whatsapp_job_template_sid.as_deref();
            if self.messaging.whatsapp_from.is_none()
                || !sid.is_some_and(|s| s.starts_with("HX") && s.len() == 34)
            {
                found.push(fail(
                    "messaging",
                    "providers with whatsapp = true need whatsapp_from and whatsapp_job_template_sid (HX followed by 32 characters)".into(),
                ));
            }
        }
        if let Some(hours) = self.escalation.as_ref().and_then(|e| e.hours.as_ref()) {
            if let Err(e) = hours.openings() {
                found.push(fail(
                    &e.field.replacen("booking.", "escalation.", 1),
                    e.message,
                ));
            }
        }
        for (name, text, allowed, caller_facing) in self.templates.all() {
            let field = format!("templates.{name}");
            if text.trim().is_empty() {
                found.push(fail(&field, "must not be empty".into()));
            }
            let names = match placeholders(text) {
                Ok(names) => names,
                Err(m) => {
                    found.push(fail(&field, m));
                    continue;
                }
            };
            for p in names {
                if !allowed.contains(&p) {
                    found.push(fail(
                        &field,
                        format!("unknown placeholder {{{p}}}; use one of {allowed:?}"),
                    ));
                }
            }
            if caller_facing {
                let invited = crate::messaging::keywords::invites_opt_out(text);
                // The answer to HELP must say how to stop (carriers require it): STOP only.
                let deliberate = name == "text_help" && invited == Some("stop");
                if let Some(word) = invited.filter(|_| !deliberate) {
                    found.push(fail(&field, format!(
                        "{:?} is an opt-out keyword to carriers: a caller who replies with it is unsubscribed",
                        word.to_uppercase()
                    )));
                }
            }
        }
        found
    }

    /// Whether personal data is masked (`[compliance] redact`).
    pub fn redacts(&self) -> bool {
        self.compliance.redact || self.post_call.redact_transcripts == Some(true)
    }

    /// Settings of earlier versions carried over to their place now (a folder or a stored
    /// configuration written before them still means what it meant).
    pub fn upgraded(mut self) -> Self {
        if self.post_call.redact_transcripts.take() == Some(true) {
            self.compliance.redact = true;
        }
        self
    }

    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.business.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// When someone is working to take a transfer: the escalation hours (or the booking hours),
    /// with the booking holidays and blackouts. `None` when no hours are configured.
    pub fn staffed_hours(&self) -> Option<Schedule> {
        let hours = self
            .escalation
            .as_ref()
            .and_then(|e| e.hours.as_ref())
            .or(self.booking.as_ref().map(|b| &b.hours))?;
        let zone = self.time_zone();
        let mut schedule = match &self.booking {
            Some(rules) => rules.schedule(&zone),
            None => Schedule {
                zone,
                week: Default::default(),
                closed_dates: Vec::new(),
                blackouts: Vec::new(),
                min_notice: jiff::SignedDuration::ZERO,
                max_days_ahead: 30,
                slot_minutes: 30,
                daily_limit: None,
            },
        };
        schedule.week = hours.openings().ok()?;
        Some(schedule)
    }

    pub fn service(&self, id: &str) -> Option<&ServiceDef> {
        self.services.iter().find(|s| s.id == id)
    }

    /// A service's name for people, or its id when it has been taken off the list since.
    pub fn service_name(&self, id: &str) -> String {
        self.service(id)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| id.to_string())
    }

    /// Finds a service by id or by name as said, forgiving case, spacing and a plural "s".
    pub fn find_service(&self, asked: &str) -> Option<&ServiceDef> {
        let norm = |s: &str| {
            s.to_lowercase()
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| w.trim_end_matches('s').to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let wanted = norm(asked);
        self.services
            .iter()
            .find(|s| norm(&s.id) == wanted || norm(&s.name) == wanted)
            .or_else(|| {
                self.services
                    .iter()
                    .find(|s| !wanted.is_empty() && norm(&s.name).contains(&wanted))
            })
    }

    /// The services' names, as a list to say ("a, b or c").
    pub fn service_names(&self) -> String {
        let names: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
        crate::spoken::list_words(&names)
    }

    /// Whether an event from this agent belongs to this business.
    pub fn serves_agent(&self, agent_id: &str) -> bool {
        self.business.agent_ids.is_empty() || self.business.agent_ids.iter().any(|a| a == agent_id)
    }
}

impl Templates {
    fn all(&self) -> [(&'static str, &str, &'static [&'static str], bool); 24] {
        [
            (
                "booking_confirmed",
                &self.booking_confirmed,
                CALLER_PLACEHOLDERS,
                true,
            ),
            ("info_recap", &self.info_recap, CALLER_PLACEHOLDERS, true),
            (
                "follow_up_needed",
                &self.follow_up_needed,
                CALLER_PLACEHOLDERS,
                true,
            ),
            ("missed_call", &self.missed_call, CALLER_PLACEHOLDERS, true),
            (
                "owner_hot_lead",
                &self.owner_hot_lead,
                OWNER_PLACEHOLDERS,
                false,
            ),
            (
                "owner_missed_call",
                &self.owner_missed_call,
                OWNER_PLACEHOLDERS,
                false,
            ),
            (
                "booking_moved",
                &self.booking_moved,
                CALLER_PLACEHOLDERS,
                true,
            ),
            (
                "booking_cancelled",
                &self.booking_cancelled,
                CALLER_PLACEHOLDERS,
                true,
            ),
            (
                "provider_job",
                &self.provider_job,
                OWNER_PLACEHOLDERS,
                false,
            ),
            (
                "owner_callback",
                &self.owner_callback,
                OWNER_PLACEHOLDERS,
                false,
            ),
            ("text_help", &self.text_help, CALLER_PLACEHOLDERS, true),
            (
                "text_received",
                &self.text_received,
                CALLER_PLACEHOLDERS,
                true,
            ),
            ("owner_text", &self.owner_text, OWNER_PLACEHOLDERS, false),
            (
                "owner_possible_opt_out",
                &self.owner_possible_opt_out,
                OWNER_PLACEHOLDERS,
                false,
            ),
            (
                "booking_confirmed_by_reply",
                &self.booking_confirmed_by_reply,
                CALLER_PLACEHOLDERS,
                true,
            ),
            (
                "reschedule_offer",
                &self.reschedule_offer,
                CALLER_PLACEHOLDERS,
                true,
            ),
            (
                "web_form_reply",
                &self.web_form_reply,
                CALLER_PLACEHOLDERS,
                true,
            ),
            (
                "booking_reminder",
                &self.booking_reminder,
                CALLER_PLACEHOLDERS,
                true,
            ),
            (
                "review_request",
                &self.review_request,
                CALLER_PLACEHOLDERS,
                true,
            ),
            (
                "re_engagement",
                &self.re_engagement,
                CALLER_PLACEHOLDERS,
                true,
            ),
            (
                "quote_check_in",
                &self.quote_check_in,
                CALLER_PLACEHOLDERS,
                true,
            ),
            (
                "quote_reminder",
                &self.quote_reminder,
                CALLER_PLACEHOLDERS,
                true,
            ),
            (
                "owner_quote_unanswered",
                &self.owner_quote_unanswered,
                OWNER_PLACEHOLDERS,
                false,
            ),
            (
                "owner_quote_reply",
                &self.owner_quote_reply,
                OWNER_PLACEHOLDERS,
                false,
            ),
        ]
    }
}

/// The `{names}` in a template; `{{` and `}}` are literal braces.
fn placeholders(text: &str) -> Result<Vec<&str>, String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        let (c, after) = (rest.as_bytes()[i], &rest[i + 1..]);
        if after.as_bytes().first() == Some(&c) {
            rest = &after[1..];
            continue;
        }
        if c == b'}' {
            return Err("unmatched '}' (write '}}' for a literal brace)".into());
        }
        let end = after
            .find('}')
            .ok_or("unclosed '{' (write '{{' for a literal brace)")?;
        found.push(&after[..end]);
        rest = &after[end + 1..];
    }
    Ok(found)
}

/// Fills a validated template. Values are used as given; missing ones become empty.
pub fn render(template: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let (c, after) = (rest.as_bytes()[i], &rest[i + 1..]);
        if after.as_bytes().first() == Some(&c) {
            out.push(c as char);
            rest = &after[1..];
            continue;
        }
        match after.find('}') {
            Some(end) if c == b'{' => {
                if let Some(v) = values.get(&after[..end]) {
                    out.push_str(v);
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push(c as char);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    // Two spaces left by an empty value read as a typo.
    while out.contains("  ") {
        out = out.replace("  ", " ");
    }
    out.trim().to_string()
}

/// "line 12" style location of a byte offset, with the table.key when it can be found.
pub(crate) fn locate(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let table = before
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[').and_then(|t| t.strip_suffix(']')))
        .unwrap_or("");
    let key = text[before.rfind('\n').map(|i| i + 1).unwrap_or(0)..]
        .split(['=', '\n'])
        .next()
        .unwrap_or("")
        .trim();
    match (table.is_empty(), key.is_empty()) {
        (false, false) => format!("{table}.{key} (line {line})"),
        (false, true) => format!("{table} (line {line})"),
        _ => format!("line {line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../prompts/demo/business.toml"
        ))
        .unwrap()
    }

    #[test]
    fn the_demo_tenant_is_valid() {
        let c = TenantConfig::from_toml(&demo(), "business.toml").unwrap();
        assert!(c.serves_agent("anything") || !c.business.agent_ids.is_empty());
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let bad = demo().replace(
            "time_zone = \"Europe/London\"",
            "time_zone = \"Mars/Olympus\"",
        );
        let e = TenantConfig::from_toml(&bad, "prompts/x/business.toml").unwrap_err();
        assert_eq!(e.file, "prompts/x/business.toml");
        assert_eq!(e.field, "business.time_zone");

        let bad = demo().replacen("owner_phone = \"", "owner_phone = \"12", 1);
        let e = TenantConfig::from_toml(&bad, "b.toml").unwrap_err();
        assert!(e.field.starts_with("business.owner_phone"), "{e}");

        let bad = demo().replacen("{business_name}", "{business}", 1);
        let e = TenantConfig::from_toml(&bad, "b.toml").unwrap_err();
        assert!(e.field.starts_with("templates."), "{e}");
        assert!(e.message.contains("{business}"), "{e}");
    }

    #[test]
    fn the_demo_business_takes_bookings() {
        let c = TenantConfig::from_toml(&demo(), "business.toml").unwrap();
        let rules = c.booking.as_ref().expect("demo has a [booking] section");
        assert!(
            rules.resources.len() >= 2,
            "two technicians: two parallel jobs"
        );
        assert!(c.service("boiler_service").is_some());
        let bad = demo().replacen("slot_minutes = 30", "slot_minutes = 7", 1);
        let e = TenantConfig::from_toml(&bad, "b.toml").unwrap_err();
        assert_eq!(e.field, "booking.slot_minutes");
    }

    #[test]
    fn a_booking_must_fit_one_database_transaction() {
        // 30-minute slots: a 24-hour job with buffers would need 50+ lock cells.
        let bad = demo().replacen("duration_minutes = 60", "duration_minutes = 1440", 1);
        let e = TenantConfig::from_toml(&bad, "b.toml").unwrap_err();
        assert_eq!(e.field, "services[0].duration_minutes", "{e}");
        assert!(e.message.contains("raise booking.slot_minutes"), "{e}");
    }

    #[test]
    fn providers_and_escalation_are_checked() {
        let c = TenantConfig::from_toml(&demo(), "business.toml").unwrap();
        assert!(c.staffed_hours().is_some());
        let bad = demo().replacen(
            "areas = [\"islington\", \"hackney\"]",
            "areas = [\"soho\"]",
            1,
        );
        let e = TenantConfig::from_toml(&bad, "b.toml").unwrap_err();
        assert_eq!(e.field, "providers[1].areas[0]", "{e}");
        let bad = demo().replacen(
            "whatsapp_job_template_sid = \"HX00000000000000000000000000000000\"",
            "",
            1,
        );
        let e = TenantConfig::from_toml(&bad, "b.toml").unwrap_err();
        assert_eq!(e.field, "messaging", "{e}");
        let bad = demo().replacen(
            "transfer_number = \"+442079460002\"",
            "transfer_number = \"+442079460002\"\nhours = { monday = [\"9-5\"] }",
            1,
        );
        let e = TenantConfig::from_toml(&bad, "b.toml").unwrap_err();
        assert!(e.field.starts_with("escalation.hours.monday"), "{e}");
    }

    #[test]
    fn the_older_redaction_switch_still_reads() {
        let old = demo().replacen(
            "[post_call]\n",
            "[post_call]\nredact_transcripts = true\n",
            1,
        );
        let c = TenantConfig::from_toml(&old, "b.toml").unwrap();
        assert!(c.redacts());
        // Stored again, it is the new switch's business only.
        assert!(!serde_json::to_string(&c)
            .unwrap()
            .contains("redact_transcripts"));
        assert!(!TenantConfig::from_toml(&demo(), "b.toml")
            .unwrap()
            .redacts());
    }

    #[test]
    fn caller_texts_never_invite_an_opt_out_keyword() {
        let bad = demo().replacen("Reply here", "Reply CANCEL to cancel or reply here", 1);
        let e = TenantConfig::from_toml(&bad, "b.toml").unwrap_err();
        assert!(e.message.contains("CANCEL"), "{e}");
    }

    #[test]
    fn rendering_fills_placeholders_and_keeps_literal_braces() {
        let mut v = BTreeMap::new();
        v.insert("first_name", "Maria".to_string());
        assert_eq!(render("Hi {first_name}, {{ok}}", &v), "Hi Maria, {ok}");
        assert_eq!(render("Hi {missing} there", &v), "Hi there");
        assert_eq!(placeholders("a {b} {{c}} {d}").unwrap(), vec!["b", "d"]);
        assert!(placeholders("a {b").is_err());
        assert!(placeholders("a } b").is_err());
    }
}
