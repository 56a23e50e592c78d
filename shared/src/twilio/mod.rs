//! A thin Twilio REST client: Messages create, the one call Frontdesk makes, over reqwest.
//!
//! Twilio's create is not idempotent and has no idempotency key; the outbox ([`crate::outbox`])
//! makes sure each message is attempted by one worker at a time. [`signature`] checks the
//! webhooks Twilio sends us.

pub mod signature;

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;

#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    base_url: String,
    account_sid: String,
    auth_token: String,
}

impl std::fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct OutgoingSms<'a> {
    pub to: &'a str,
    pub from: Option<&'a str>,
    pub messaging_service_sid: Option<&'a str>,
    pub body: &'a str,
    /// An approved template (WhatsApp outside the 24-hour window): sent instead of `body`.
    pub content_sid: Option<&'a str>,
    pub content_variables: Option<&'a str>,
    /// Where Twilio reports the message's delivery status.
    pub status_callback: Option<&'a str>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SentMessage {
    /// `None` when Twilio said 2xx but the body was unreadable: accepted all the same.
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Not processed by Twilio (rate limit, unavailable, no connection): safe to send again.
    Later,
    /// Twilio may have sent it (500, no answer after the request went out): look before
    /// sending again, or the person gets it twice.
    CheckFirst,
    /// Will fail the same way every time.
    Never,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with an error status (and usually a Twilio error code).
    #[error("Twilio answered HTTP {status} (code {code:?})")]
    Refused {
        status: u16,
        code: Option<u32>,
        message: String,
    },
    /// The request never reached Twilio (connection refused, DNS, TLS).
    #[error("Twilio could not be reached: {0}")]
    NotSent(String),
    /// The request went out but no answer came back (timeout, cut connection).
    #[error("Twilio did not answer: {0}")]
    NoAnswer(String),
}

/// Errors that mean the recipient cannot be texted: never retried.
pub const OPTED_OUT: u32 = 21610;
/// A free-form WhatsApp message outside the person's 24-hour window.
pub const OUTSIDE_WHATSAPP_WINDOW: u32 = 63016;
const PERMANENT_RECIPIENT_ERRORS: &[u32] = &[
    21610, // replied STOP: unsubscribed until START
    21211, // invalid To number
    21614, // To is not a mobile number
    21635, // To is a landline
    21612, // To cannot be reached from this From
    21408, // region not enabled for this account
    63014, // WhatsApp user blocked the business
    63016, // WhatsApp outside the 24-hour window without a template
];

impl TwilioError {
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Refused { code, .. } => *code,
            Self::NotSent(_) | Self::NoAnswer(_) => None,
        }
    }

    pub fn retry(&self) -> Retry {
        match self {
            Self::NotSent(_) => Retry::Later,
            Self::NoAnswer(_) => Retry::CheckFirst,
            Self::Refused { status, code, .. } => {
                if code.is_some_and(|c| PERMANENT_RECIPIENT_ERRORS.contains(&c)) {
                    Retry::Never
                } else if *status == 429 || code == &Some(20429) || matches!(status, 502..=504) {
                    // "Requests that receive 429 responses aren't processed"; 502-504 come from
                    // in front of the API when it is unavailable.
                    Retry::Later
                } else if *status >= 500 {
                    // Twilio: retrying a 500 on a send "can result in multiple messages".
                    Retry::CheckFirst
                } else if *status == 401 || *status == 403 {
                    // Credentials are being fixed or rotated: retry until the attempts run out.
                    Retry::Later
                } else {
                    Retry::Never
                }
            }
        }
    }

    /// A short description safe for records and logs (no recipient, no body).
    pub fn detail(&self) -> String {
        match self {
            Self::Refused {
                status,
                code,
                message,
            } => {
                let code = code.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
                format!("HTTP {status}, Twilio error {code}: {}", scrub(message))
            }
            Self::NotSent(m) | Self::NoAnswer(m) => m.clone(),
        }
    }
}

/// Twilio's messages quote the number ("The 'To' number +1415... is not valid"): mask digits.
fn scrub(message: &str) -> String {
    crate::redact::redact_contact_details(message)
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<u32>,
    #[serde(default)]
    message: Option<String>,
    // RFC 9457 shape used by newer Twilio services.
    #[serde(default)]
    detail: Option<String>,
}

impl TwilioClient {
    pub fn new(base_url: &str, account_sid: &str, auth_token: &str) -> Result<Self, TwilioError> {
        let http = crate::https::client_builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| TwilioError::NotSent(e.to_string()))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            account_sid: account_sid.to_string(),
            auth_token: auth_token.to_string(),
        })
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded, HTTP Basic auth.
    pub async fn send_sms(&self, sms: &OutgoingSms<'_>) -> Result<SentMessage, TwilioError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base_url, self.account_sid
        );
        let mut form: Vec<(&str, &str)> = vec![("To", sms.to)];
        match sms.content_sid {
            Some(sid) => {
                form.push(("ContentSid", sid));
                if let Some(vars) = sms.content_variables {
                    form.push(("ContentVariables", vars));
                }
            }
            None => form.push(("Body", sms.body)),
        }
        match (sms.messaging_service_sid, sms.from) {
            (Some(sid), _) => form.push(("MessagingServiceSid", sid)),
            (None, Some(from)) => form.push(("From", from)),
            (None, None) => {}
        }
        if let Some(url) = sms.status_callback {
            form.push(("StatusCallback", url));
        }
        let response = self
            .http
            .post(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = response.status();
        let body = response.bytes().await;
        if status.is_success() {
            // Accepted: whatever the body says, sending again would send twice.
            let sent = body
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or(SentMessage {
                    sid: None,
                    status: None,
                });
            return Ok(sent);
        }
        let body = body.map_err(|e| transport_error(&e))?;
        let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        Err(TwilioError::Refused {
            status: status.as_u16(),
            code: parsed.as_ref().and_then(|b| b.code),
            message: parsed
                .and_then(|b| b.message.or(b.detail))
                .unwrap_or_default(),
        })
    }

    /// The most recent messages to `to` (newest first): the SID of one that is `ours`, if Twilio
    /// has it. Used before re-sending after an answer that left it unclear.
    pub async fn find_recent(
        &self,
        to: &str,
        ours: &OurMessage<'_>,
    ) -> Result<Option<String>, TwilioError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            messages: Vec<Listed>,
        }
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base_url, self.account_sid
        );
        let response = self
            .http
            .get(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .query(&[("To", to), ("PageSize", "20")])
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| transport_error(&e))?;
        if !status.is_success() {
            let parsed: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            return Err(TwilioError::Refused {
                status: status.as_u16(),
                code: parsed.as_ref().and_then(|b| b.code),
                message: parsed
                    .and_then(|b| b.message.or(b.detail))
                    .unwrap_or_default(),
            });
        }
        let page: Page = serde_json::from_slice(&bytes)
            .map_err(|_| TwilioError::NoAnswer("unreadable message list".into()))?;
        Ok(page
            .messages
            .into_iter()
            .find(|m| m.to.as_deref().is_none_or(|t| t == to) && ours.is(m))
            .map(|m| m.sid))
    }
}

/// One message in Twilio's list.
#[derive(Debug, Clone, Deserialize)]
pub struct Listed {
    pub sid: String,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// RFC 2822, as Twilio writes dates.
    #[serde(default)]
    pub date_created: Option<String>,
}

/// How to recognise a message we may already have sent among Twilio's recent ones.
#[derive(Debug, Clone)]
pub enum OurMessage<'a> {
    /// A plain text: the same body.
    Text(&'a str),
    /// An approved template: Twilio keeps the text it rendered, which we never saw. Ours when
    /// every value we filled in is in it and it is no older than our first attempt; when Twilio
    /// shows no text, its age alone decides (a text is better missed than sent twice).
    Template {
        variables: Vec<String>,
        not_before: Timestamp,
    },
}

impl OurMessage<'_> {
    pub fn is(&self, listed: &Listed) -> bool {
        match self {
            Self::Text(body) => listed.body.as_deref() == Some(*body),
            Self::Template {
                variables,
                not_before,
            } => {
                let recent = listed
                    .date_created
                    .as_deref()
                    .and_then(|d| jiff::fmt::rfc2822::parse(d).ok())
                    .is_none_or(|created| created.timestamp() >= *not_before);
                let rendered = match listed.body.as_deref().map(str::trim) {
                    None | Some("") => true,
                    Some(text) => variables
                        .iter()
                        .filter(|v| !v.trim().is_empty() && v.as_str() != "-")
                        .all(|v| text.contains(v.as_str())),
                };
                recent && rendered
            }
        }
    }
}

fn transport_error(e: &reqwest::Error) -> TwilioError {
    if e.is_connect() {
        TwilioError::NotSent("connection failed".into())
    } else if e.is_builder() || e.is_request() && !e.is_timeout() && !e.is_body() {
        TwilioError::NotSent("request failed before it was sent".into())
    } else if e.is_timeout() {
        TwilioError::NoAnswer("timed out".into())
    } else {
        TwilioError::NoAnswer("connection interrupted".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, code: Option<u32>) -> TwilioError {
        TwilioError::Refused {
            status,
            code,
            message: String::new(),
        }
    }

    #[test]
    fn rate_limits_and_outages_are_retried() {
        assert_eq!(refused(429, Some(20429)).retry(), Retry::Later);
        assert_eq!(refused(503, None).retry(), Retry::Later);
        assert_eq!(TwilioError::NotSent("x".into()).retry(), Retry::Later);
        assert_eq!(refused(502, None).retry(), Retry::Later);
    }

    #[test]
    fn answers_that_may_have_sent_are_checked_before_sending_again() {
        assert_eq!(refused(500, Some(20500)).retry(), Retry::CheckFirst);
        assert_eq!(
            TwilioError::NoAnswer("timed out".into()).retry(),
            Retry::CheckFirst
        );
    }

    #[test]
    fn unsubscribed_and_invalid_recipients_are_not() {
        for code in [21610, 21211, 21614] {
            assert_eq!(refused(400, Some(code)).retry(), Retry::Never, "{code}");
        }
        assert_eq!(refused(400, Some(21999)).retry(), Retry::Never);
    }

    fn listed(body: Option<&str>, date_created: Option<&str>) -> Listed {
        Listed {
            sid: "SM1".into(),
            to: None,
            body: body.map(str::to_string),
            date_created: date_created.map(str::to_string),
        }
    }

    #[test]
    fn a_text_is_recognised_by_its_body() {
        let ours = OurMessage::Text("See you at 10am");
        assert!(ours.is(&listed(Some("See you at 10am"), None)));
        assert!(!ours.is(&listed(Some("Something else"), None)));
    }

    #[test]
    fn a_template_is_recognised_by_what_we_filled_in_and_its_age() {
        let ours = OurMessage::Template {
            variables: vec!["Boiler repair".into(), "Islington".into(), "-".into()],
            not_before: "2023-08-24T05:00:00Z".parse().unwrap(),
        };
        let rendered = "New job: Boiler repair in Islington. Reply to accept.";
        assert!(ours.is(&listed(
            Some(rendered),
            Some("Thu, 24 Aug 2023 05:01:45 +0000")
        )));
        assert!(!ours.is(&listed(
            Some(rendered),
            Some("Thu, 24 Aug 2023 04:01:45 +0000")
        )));
        assert!(!ours.is(&listed(Some("New job: Leak in Camden."), None)));
        assert!(ours.is(&listed(None, Some("Thu, 24 Aug 2023 05:01:45 +0000"))));
    }

    #[test]
    fn details_never_carry_the_number() {
        let e = TwilioError::Refused {
            status: 400,
            code: Some(21211),
            message: "The 'To' number +14155550123 is not a valid phone number.".into(),
        };
        assert!(!e.detail().contains("4155550123"), "{}", e.detail());
    }
}
