//! Post-call webhook payloads: `{"type", "event_timestamp", "data"}`.
//!
//! Only the fields Frontdesk uses are typed; ElevenLabs adds fields often, so unknown ones are
//! ignored. A field we use that has the wrong type is a bad request, named by its path.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::ids::{AgentId, ConversationId};

pub const TRANSCRIPTION: &str = "post_call_transcription";
pub const AUDIO: &str = "post_call_audio";
pub const INITIATION_FAILURE: &str = "call_initiation_failure";
/// The transcription in OpenTelemetry form: sent when the workspace's transcript format is
/// (or flips to) "opentelemetry". Frontdesk fetches the JSON form from the API instead.
pub const TRANSCRIPTION_OTEL: &str = "post_call_transcription_otel";

#[derive(Debug)]
pub enum PostCallEvent {
    Transcription(Box<Transcription>),
    Audio(Audio),
    InitiationFailure(InitiationFailure),
    TranscriptionOtel(ConversationRef),
    /// A type we do not handle (the platform adds types): acknowledged and ignored.
    Other {
        kind: String,
    },
}

impl PostCallEvent {
    pub fn kind(&self) -> &str {
        match self {
            Self::Transcription(_) => TRANSCRIPTION,
            Self::Audio(_) => AUDIO,
            Self::InitiationFailure(_) => INITIATION_FAILURE,
            Self::TranscriptionOtel(_) => TRANSCRIPTION_OTEL,
            Self::Other { kind } => kind,
        }
    }

    pub fn conversation_id(&self) -> Option<&ConversationId> {
        match self {
            Self::Transcription(t) => Some(&t.conversation_id),
            Self::Audio(a) => Some(&a.conversation_id),
            Self::InitiationFailure(f) => Some(&f.conversation_id),
            Self::TranscriptionOtel(r) => Some(&r.conversation_id),
            Self::Other { .. } => None,
        }
    }

    pub fn agent_id(&self) -> Option<&AgentId> {
        match self {
            Self::Transcription(t) => Some(&t.agent_id),
            Self::Audio(a) => Some(&a.agent_id),
            Self::InitiationFailure(f) => Some(&f.agent_id),
            Self::TranscriptionOtel(r) => Some(&r.agent_id),
            Self::Other { .. } => None,
        }
    }
}

/// A field of the payload that is missing or wrong, by its path (`data.metadata`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PayloadError {
    pub field: String,
    pub message: String,
}

impl PayloadError {
    fn at(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Option<Value>,
}

/// Parses a verified raw body. Errors say which field is wrong, for a 400 answer.
pub fn parse(raw: &[u8]) -> Result<PostCallEvent, PayloadError> {
    let envelope: Envelope = from_slice(raw, "")?;
    let known = [TRANSCRIPTION, AUDIO, INITIATION_FAILURE, TRANSCRIPTION_OTEL];
    if !known.contains(&envelope.kind.as_str()) {
        return Ok(PostCallEvent::Other {
            kind: envelope.kind,
        });
    }
    let data = envelope
        .data
        .ok_or_else(|| PayloadError::at("data", "missing"))?;
    Ok(match envelope.kind.as_str() {
        TRANSCRIPTION => PostCallEvent::Transcription(Box::new(from_value(data)?)),
        AUDIO => {
            let audio: Audio = from_value(data)?;
            audio.decode()?; // Refuse undecodable audio before anything is stored.
            PostCallEvent::Audio(audio)
        }
        TRANSCRIPTION_OTEL => PostCallEvent::TranscriptionOtel(from_value(data)?),
        _ => PostCallEvent::InitiationFailure(from_value(data)?),
    })
}

/// Wraps a conversation as returned by `GET /v1/convai/conversations/{id}` (the same shape as
/// the transcription webhook's `data`) into a transcription webhook body.
pub fn transcription_body(conversation: &[u8]) -> Result<Vec<u8>, PayloadError> {
    let data: Value = serde_json::from_slice(conversation)
        .map_err(|e| PayloadError::at("conversation", e.to_string()))?;
    Ok(serde_json::json!({ "type": TRANSCRIPTION, "data": data })
        .to_string()
        .into_bytes())
}

fn from_slice<T: for<'de> Deserialize<'de>>(raw: &[u8], prefix: &str) -> Result<T, PayloadError> {
    let de = &mut serde_json::Deserializer::from_slice(raw);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| describe(prefix, e))?;
    // One JSON document and nothing after it ("{...}{...}" or "{...}xyz" is not JSON).
    de.end()
        .map_err(|e| PayloadError::at("body", format!("after the JSON document: {e}")))?;
    Ok(value)
}

fn from_value<T: for<'de> Deserialize<'de>>(data: Value) -> Result<T, PayloadError> {
    serde_path_to_error::deserialize(data).map_err(|e| describe("data", e))
}

fn describe<E: std::fmt::Display>(prefix: &str, e: serde_path_to_error::Error<E>) -> PayloadError {
    let path = e.path().to_string();
    // A top-level key that is empty text has an empty path: name the body, not "".
    let root = path == "." || path == "?" || path.is_empty();
    let at = match (prefix.is_empty(), path.as_str()) {
        (true, _) if root => "body".to_string(),
        (true, p) => p.to_string(),
        (false, _) if root => prefix.to_string(),
        (false, p) => format!("{prefix}.{p}"),
    };
    let message = e.into_inner().to_string();
    // Serde reports a missing field at its parent: name the field itself.
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    match missing {
        Some(name) if at == "body" => PayloadError::at(name, message.clone()),
        Some(name) => PayloadError::at(&format!("{at}.{name}"), message.clone()),
        None => PayloadError::at(&at, message),
    }
}

/// `null` and absent both mean empty.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Deserialize)]
pub struct Transcription {
    pub agent_id: AgentId,
    pub conversation_id: ConversationId,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub transcript: Vec<Turn>,
    /// When the call started and how long it took: the call record needs both.
    pub metadata: Metadata,
    #[serde(default)]
    pub analysis: Option<Analysis>,
    #[serde(default)]
    pub conversation_initiation_client_data: Option<InitiationData>,
    #[serde(default)]
    pub has_audio: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct Turn {
    pub role: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub time_in_call_secs: Option<f64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tool_results: Vec<ToolResult>,
}

#[derive(Debug, Deserialize)]
pub struct ToolCall {
    #[serde(default)]
    pub request_id: Option<String>,
    pub tool_name: String,
    #[serde(rename = "type", default)]
    pub tool_type: Option<String>,
    #[serde(default)]
    pub params_as_json: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ToolResult {
    #[serde(default)]
    pub request_id: Option<String>,
    pub tool_name: String,
    #[serde(default)]
    pub result_value: Option<String>,
    #[serde(default)]
    pub is_error: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct Metadata {
    pub start_time_unix_secs: i64,
    pub call_duration_secs: f64,
    /// Credits, not money.
    #[serde(default)]
    pub cost: Option<f64>,
    #[serde(default)]
    pub phone_call: Option<PhoneCall>,
    #[serde(default)]
    pub termination_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PhoneCall {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub agent_number: Option<String>,
    /// The caller on inbound calls, the callee on outbound ones.
    #[serde(default)]
    pub external_number: Option<String>,
    #[serde(default)]
    pub call_sid: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Analysis {
    #[serde(default)]
    pub call_successful: Option<String>,
    #[serde(default)]
    pub transcript_summary: Option<String>,
    #[serde(default)]
    pub call_summary_title: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub evaluation_criteria_results: BTreeMap<String, EvaluationResult>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub data_collection_results: BTreeMap<String, DataCollectionResult>,
}

#[derive(Debug, Deserialize)]
pub struct EvaluationResult {
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub rationale: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DataCollectionResult {
    /// The collected value (`null` when the agent did not find one).
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Deserialize)]
pub struct InitiationData {
    #[serde(default, deserialize_with = "null_as_default")]
    pub dynamic_variables: BTreeMap<String, Value>,
}

/// Just which conversation an event is about.
#[derive(Debug, Deserialize)]
pub struct ConversationRef {
    pub agent_id: AgentId,
    pub conversation_id: ConversationId,
}

#[derive(Debug, Deserialize)]
pub struct Audio {
    pub agent_id: AgentId,
    pub conversation_id: ConversationId,
    /// Base64 of the whole call as MP3.
    pub full_audio: String,
}

impl Audio {
    pub fn decode(&self) -> Result<Vec<u8>, PayloadError> {
        base64::engine::general_purpose::STANDARD
            .decode(self.full_audio.trim())
            .map_err(|_| PayloadError::at("data.full_audio", "not valid base64"))
    }
}

#[derive(Debug, Deserialize)]
pub struct InitiationFailure {
    pub agent_id: AgentId,
    pub conversation_id: ConversationId,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub metadata: Option<FailureMetadata>,
}

#[derive(Debug, Deserialize)]
pub struct FailureMetadata {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub body: Value,
}

impl Transcription {
    /// The other party's number as ElevenLabs reported it (not yet validated).
    pub fn external_number(&self) -> Option<&str> {
        self.metadata
            .phone_call
            .as_ref()
            .and_then(|p| p.external_number.as_deref())
            .or_else(|| {
                self.conversation_initiation_client_data
                    .as_ref()?
                    .dynamic_variables
                    .get("system__caller_id")?
                    .as_str()
            })
            .filter(|s| !s.trim().is_empty())
    }

    pub fn data_value(&self, field: &str) -> Option<&Value> {
        self.analysis
            .as_ref()?
            .data_collection_results
            .get(field)
            .map(|d| &d.value)
            .filter(|v| !v.is_null())
    }

    /// A data-collection value as text, if the agent collected one.
    pub fn data_text(&self, field: &str) -> Option<String> {
        match self.data_value(field)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Every tool call the agent made, with whether its result was an error.
    pub fn tool_calls(&self) -> Vec<ToolCallMade> {
        let mut made: Vec<ToolCallMade> = Vec::new();
        for (turn_index, turn) in self.transcript.iter().enumerate() {
            for call in &turn.tool_calls {
                made.push(ToolCallMade {
                    tool_name: call.tool_name.clone(),
                    request_id: call.request_id.clone(),
                    turn_index,
                    is_error: None,
                    result_value: None,
                });
            }
            for result in &turn.tool_results {
                let slot = made.iter_mut().find(|m| {
                    m.result_value.is_none()
                        && m.tool_name == result.tool_name
                        && (result.request_id.is_none() || m.request_id == result.request_id)
                });
                if let Some(m) = slot {
                    m.is_error = result.is_error;
                    m.result_value = result.result_value.clone();
                }
            }
        }
        made
    }
}

#[derive(Debug, Clone)]
pub struct ToolCallMade {
    pub tool_name: String,
    pub request_id: Option<String>,
    pub turn_index: usize,
    pub is_error: Option<bool>,
    /// The raw body our tool answered with (JSON text).
    pub result_value: Option<String>,
}

impl InitiationFailure {
    /// The number we tried to reach (or that tried to reach us), from the carrier's report.
    pub fn external_number(&self) -> Option<String> {
        let meta = self.metadata.as_ref()?;
        let body = &meta.body;
        let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
        let outbound = |dir: Option<String>| dir.map(|d| d.starts_with("outbound")).unwrap_or(true);
        match meta.kind.as_deref() {
            Some("sip") => {
                if outbound(field("direction")) {
                    field("to_number")
                } else {
                    field("from_number")
                }
            }
            _ => {
                if outbound(field("Direction")) {
                    field("To")
                } else {
                    field("From")
                }
            }
        }
        .filter(|s| !s.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_are_recognised_without_data() {
        let e = parse(br#"{"type":"voice_removal_notice","event_timestamp":1}"#).unwrap();
        assert!(matches!(e, PostCallEvent::Other { ref kind } if kind == "voice_removal_notice"));
    }

    #[test]
    fn anything_after_the_json_document_is_refused() {
        let one = br#"{"type":"voice_removal_notice","event_timestamp":1}"#;
        assert!(parse(&[&one[..], b"\n"].concat()).is_ok());
        for tail in [&b"xyz"[..], one, b"]"] {
            let err = parse(&[&one[..], tail].concat()).unwrap_err();
            assert_eq!(err.field, "body");
        }
        assert_eq!(parse(br#"{"": [}"#).unwrap_err().field, "body");
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse(br#"{"type":"post_call_transcription","data":{"agent_id":"a","conversation_id":"c","metadata":{"call_duration_secs":"long"}}}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("data.metadata.call_duration_secs"),
            "{err}"
        );
        let err =
            parse(br#"{"type":"post_call_transcription","data":{"agent_id":"a"}}"#).unwrap_err();
        assert!(err.to_string().contains("conversation_id"), "{err}");
        let err = parse(b"{not json").unwrap_err();
        assert_eq!(err.field, "body", "{err}");
        let err = parse(br#"{"type":"post_call_audio","data":{"agent_id":"a","conversation_id":"c","full_audio":"***"}}"#).unwrap_err();
        assert_eq!(err.field, "data.full_audio", "{err}");
        let err = parse(br#"{"type":"post_call_audio","data":{"agent_id":"a","conversation_id":"bad/id","full_audio":""}}"#).unwrap_err();
        assert!(err.to_string().contains("conversation_id"), "{err}");
    }

    #[test]
    fn a_transcription_without_the_metadata_the_call_record_needs_names_it() {
        let err = parse(br#"{"type":"post_call_transcription","data":{"agent_id":"a","conversation_id":"c","transcript":[]}}"#).unwrap_err();
        assert_eq!(err.field, "data.metadata", "{err}");
        let err = parse(br#"{"type":"post_call_transcription","data":{"agent_id":"a","conversation_id":"c","metadata":null}}"#).unwrap_err();
        assert_eq!(err.field, "data.metadata", "{err}");
        let err = parse(br#"{"type":"post_call_transcription","data":{"agent_id":"a","conversation_id":"c","metadata":{"call_duration_secs":30}}}"#).unwrap_err();
        assert_eq!(err.field, "data.metadata.start_time_unix_secs", "{err}");
    }

    #[test]
    fn nulls_where_lists_are_expected_are_empty_lists() {
        let e = parse(br#"{"type":"post_call_transcription","data":{"agent_id":"a","conversation_id":"c","transcript":[{"role":"agent","message":null,"tool_calls":null,"tool_results":null}],"metadata":{"start_time_unix_secs":1,"call_duration_secs":2},"analysis":{"data_collection_results":null,"evaluation_criteria_results":null}}}"#).unwrap();
        let PostCallEvent::Transcription(t) = e else {
            panic!()
        };
        assert_eq!(t.transcript.len(), 1);
        assert!(t.tool_calls().is_empty());
    }

    #[test]
    fn sip_and_twilio_failures_give_the_external_number() {
        let sip = parse(br#"{"type":"call_initiation_failure","data":{"agent_id":"a","conversation_id":"c","failure_reason":"busy","metadata":{"type":"sip","body":{"from_number":"+441111111111","to_number":"+14155550123"}}}}"#).unwrap();
        let PostCallEvent::InitiationFailure(f) = sip else {
            panic!()
        };
        assert_eq!(f.external_number().as_deref(), Some("+14155550123"));
        let tw = parse(br#"{"type":"call_initiation_failure","data":{"agent_id":"a","conversation_id":"c","metadata":{"type":"twilio","body":{"From":"+14155550100","To":"+14155550123","Direction":"outbound-api"}}}}"#).unwrap();
        let PostCallEvent::InitiationFailure(f) = tw else {
            panic!()
        };
        assert_eq!(f.external_number().as_deref(), Some("+14155550123"));
    }
}
