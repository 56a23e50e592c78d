//! Twilio's inbound message and status callback parameters, read into what we use. Pure.
//! Twilio adds parameters without notice: unknown ones are ignored (they were signed all the
//! same).

use crate::phone::PhoneNumber;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sms,
    WhatsApp,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::WhatsApp => "whatsapp",
        }
    }
}

/// Who wrote: a number, or a WhatsApp user known only by a business-scoped id (Meta's
/// usernames, 2026), whom we can answer but not match to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    Number(PhoneNumber),
    WhatsAppUser(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundText {
    pub message_sid: String,
    pub channel: Channel,
    pub from: Sender,
    pub body: String,
    /// Present when Twilio's Advanced Opt-Out matched a keyword (and already replied).
    pub opt_out_type: Option<String>,
    /// WhatsApp's profile name.
    pub profile_name: Option<String>,
    pub media: u32,
}

/// A parameter that is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadParam {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> BadParam {
    BadParam {
        field,
        message: message.into(),
    }
}

/// WhatsApp allows 4,096 characters, SMS 1,600: anything longer is not from Twilio.
const MAX_BODY_CHARS: usize = 4096;

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A Twilio SID: two letters and 32 hex digits (it ends up in our keys).
pub fn is_sid(v: &str, prefixes: &[&str]) -> bool {
    v.len() == 34
        && prefixes.iter().any(|p| v.starts_with(p))
        && v[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn parse_inbound(
    params: &[(String, String)],
    default_region: &str,
) -> Result<InboundText, BadParam> {
    let sid = param(params, "MessageSid")
        .or_else(|| param(params, "SmsMessageSid"))
        .ok_or_else(|| bad("MessageSid", "is required"))?;
    if !is_sid(sid, &["SM", "MM"]) {
        return Err(bad("MessageSid", "is not a message SID (SM/MM + 32 hex)"));
    }
    let from = param(params, "From").ok_or_else(|| bad("From", "is required"))?;
    let channel = if from.starts_with("whatsapp:") {
        Channel::WhatsApp
    } else {
        Channel::Sms
    };
    let sender = match PhoneNumber::parse(from, Some(default_region)) {
        Ok(p) => Sender::Number(p),
        Err(_) => {
            let user = from.strip_prefix("whatsapp:").unwrap_or_default().trim();
            let plausible = channel == Channel::WhatsApp
                && !user.is_empty()
                && user.len() <= 128
                && user
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !plausible {
                return Err(bad("From", "is not a phone number or WhatsApp address"));
            }
            Sender::WhatsAppUser(user.to_string())
        }
    };
    let body = param(params, "Body").unwrap_or_default();
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(bad("Body", format!("is over {MAX_BODY_CHARS} characters")));
    }
    if body
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(bad("Body", "has control characters"));
    }
    let media = match param(params, "NumMedia") {
        None | Some("") => 0,
        Some(n) => n.parse().map_err(|_| bad("NumMedia", "is not a number"))?,
    };
    Ok(InboundText {
        message_sid: sid.to_string(),
        channel,
        from: sender,
        body: body.to_string(),
        opt_out_type: param(params, "OptOutType")
            .map(str::to_string)
            .filter(|v| !v.is_empty()),
        profile_name: param(params, "ProfileName")
            .map(|n| n.chars().take(100).collect::<String>())
            .filter(|n| !n.trim().is_empty()),
        media,
    })
}

/// A delivery status callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub message_sid: String,
    pub status: DeliveryStatus,
    pub error_code: Option<u32>,
}

/// Twilio's message statuses in the order a message moves through them. A status only moves
/// forward: a late `sent` after `delivered` changes nothing. `failed`/`undelivered` end it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeliveryStatus {
    Accepted,
    Scheduled,
    Queued,
    Sending,
    Sent,
    Delivered,
    Read,
    Undelivered,
    Failed,
    Canceled,
}

impl DeliveryStatus {
    pub fn parse(v: &str) -> Option<Self> {
        Some(match v {
            "accepted" => Self::Accepted,
            "scheduled" => Self::Scheduled,
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "undelivered" => Self::Undelivered,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    /// Its place in the order: a callback applies only if it moves the message forward. The
    /// endings outrank everything (a failure after `sent` is news; `sent` after it is not).
    pub fn rank(self) -> u8 {
        match self {
            Self::Accepted | Self::Scheduled => 1,
            Self::Queued => 2,
            Self::Sending => 3,
            Self::Sent => 4,
            Self::Delivered => 5,
            Self::Read => 6,
            Self::Undelivered | Self::Failed | Self::Canceled => 7,
        }
    }

    pub fn failed(self) -> bool {
        matches!(self, Self::Undelivered | Self::Failed)
    }
}

pub fn parse_status(params: &[(String, String)]) -> Result<StatusUpdate, BadParam> {
    let sid = param(params, "MessageSid")
        .or_else(|| param(params, "SmsSid"))
        .ok_or_else(|| bad("MessageSid", "is required"))?;
    if !is_sid(sid, &["SM", "MM"]) {
        return Err(bad("MessageSid", "is not a message SID (SM/MM + 32 hex)"));
    }
    let raw = param(params, "MessageStatus")
        .or_else(|| param(params, "SmsStatus"))
        .ok_or_else(|| bad("MessageStatus", "is required"))?;
    let status = DeliveryStatus::parse(raw)
        .ok_or_else(|| bad("MessageStatus", format!("{raw:?} is not a message status")))?;
    let error_code = match param(params, "ErrorCode") {
        None | Some("") => None,
        Some(c) => Some(c.parse().map_err(|_| bad("ErrorCode", "is not a number"))?),
    };
    Ok(StatusUpdate {
        message_sid: sid.to_string(),
        status,
        error_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const SID: &str = "SM3f6b0c2e9a8d4f1b7c5e2a9d0b4c6e81";

    #[test]
    fn whatsapp_and_sms_spellings_are_the_same_number() {
        let sms = parse_inbound(
            &params(&[("MessageSid", SID), ("From", "+447911123456")]),
            "GB",
        )
        .unwrap();
        let wa = parse_inbound(
            &params(&[("MessageSid", SID), ("From", "whatsapp:+447911123456")]),
            "GB",
        )
        .unwrap();
        assert_eq!(sms.from, wa.from);
        assert_eq!(wa.channel, Channel::WhatsApp);
        let national = parse_inbound(
            &params(&[("MessageSid", SID), ("From", "07911 123456")]),
            "GB",
        )
        .unwrap();
        assert_eq!(national.from, sms.from);
    }

    #[test]
    fn a_whatsapp_username_is_kept_and_anything_else_refused() {
        let user = parse_inbound(
            &params(&[
                ("MessageSid", SID),
                ("From", "whatsapp:US.13491208655302741918"),
            ]),
            "GB",
        )
        .unwrap();
        assert_eq!(
            user.from,
            Sender::WhatsAppUser("US.13491208655302741918".into())
        );
        for from in ["", "hello", "whatsapp:", "+44 7700 ABC"] {
            let e =
                parse_inbound(&params(&[("MessageSid", SID), ("From", from)]), "GB").unwrap_err();
            assert_eq!(e.field, "From", "{from:?}");
        }
    }

    #[test]
    fn sids_are_checked_because_they_become_keys() {
        for sid in [
            "",
            "SM1",
            "XX3f6b0c2e9a8d4f1b7c5e2a9d0b4c6e81",
            "SM3f6b0c2e9a8d4f1b7c5e2a9d0b4c6e8#",
        ] {
            let e = parse_inbound(
                &params(&[("MessageSid", sid), ("From", "+447911123456")]),
                "GB",
            )
            .unwrap_err();
            assert_eq!(e.field, "MessageSid", "{sid:?}");
        }
    }

    #[test]
    fn statuses_only_move_forward_and_failures_end_them() {
        use DeliveryStatus::*;
        assert!(Delivered.rank() > Sent.rank());
        assert!(Failed.rank() > Delivered.rank());
        assert!(Read.rank() > Delivered.rank());
        let s = parse_status(&params(&[
            ("MessageSid", SID),
            ("MessageStatus", "failed"),
            ("ErrorCode", "21610"),
        ]))
        .unwrap();
        assert_eq!(s.error_code, Some(21610));
        assert!(s.status.failed());
        assert!(parse_status(&params(&[("MessageSid", SID), ("MessageStatus", "lost")])).is_err());
    }
}
