//! A website's enquiry form: the same contact and lead as a call or a text, and the instant
//! text a caller gets, within seconds of the submission. The conversation then goes on by text.
//!
//! The site proves itself with an HMAC-SHA256 of the raw body under the tenant's form secret
//! (`X-Frontdesk-Signature: sha256=<hex>`), or, for a plain HTML form that cannot sign, the
//! tenant's form token (`X-Frontdesk-Form-Token`, or a `form_token` field). The number on a
//! form is whatever someone typed, so what the form says only fills gaps on a contact.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::info;

use super::inbound::BadParam;
use super::texts::TextError;
use crate::deps::Deps;
use crate::ids::ConversationId;
use crate::leads::{self, LeadNews};
use crate::outbox::{self, Audience, NewMessage};
use crate::phone::PhoneNumber;
use crate::secrets::Secrets;
use crate::store::contacts::{ContactDetails, LeadInput};
use crate::store::texts::{Direction, ThreadEntry};
use crate::tenant::{render, TenantConfig};

pub const SIGNATURE_HEADER: &str = "x-frontdesk-signature";
pub const TOKEN_HEADER: &str = "x-frontdesk-form-token";
/// A form is a few short fields; anything larger is not one.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebForm {
    pub name: Option<String>,
    pub phone: PhoneNumber,
    pub email: Option<String>,
    pub service: Option<String>,
    pub message: Option<String>,
    /// The token field, if the form sent one (never stored).
    pub token: Option<String>,
}

fn bad(field: &'static str, message: impl Into<String>) -> BadParam {
    BadParam {
        field,
        message: message.into(),
    }
}

/// Reads a JSON object or a form-encoded body (by content type). Unknown fields (a submit
/// button, a honeypot) are ignored; known ones are checked.
pub fn parse(body: &[u8], content_type: &str, default_region: &str) -> Result<WebForm, BadParam> {
    let fields: BTreeMap<String, String> = if content_type.starts_with("application/json") {
        let Entries(entries) =
            serde_json::from_slice(body).map_err(|_| bad("body", "is not a JSON object"))?;
        let mut fields = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for (k, v) in entries {
            if !seen.insert(k.clone()) && KNOWN.contains(&k.as_str()) {
                return Err(bad(field_name(&k), "is given twice"));
            }
            match v {
                Value::String(s) => {
                    fields.insert(k, s);
                }
                Value::Null => {}
                Value::Number(n) => {
                    fields.insert(k, n.to_string());
                }
                _ if KNOWN.contains(&k.as_str()) => {
                    return Err(bad(field_name(&k), "must be text"));
                }
                _ => {}
            }
        }
        fields
    } else if content_type.starts_with("application/x-www-form-urlencoded")
        || content_type.is_empty()
    {
        if std::str::from_utf8(body).is_err() {
            return Err(bad("body", "is not UTF-8"));
        }
        let mut fields = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            if fields.insert(k.to_string(), v.into_owned()).is_some() && KNOWN.contains(&k.as_ref())
            {
                return Err(bad(field_name(&k), "is given twice"));
            }
        }
        fields
    } else {
        return Err(bad(
            "content-type",
            "must be application/json or application/x-www-form-urlencoded",
        ));
    };
    let text = |name: &'static str, max: usize| -> Result<Option<String>, BadParam> {
        let Some(v) = fields.get(name).map(|v| v.trim()) else {
            return Ok(None);
        };
        if v.is_empty() {
            return Ok(None);
        }
        if v.chars().count() > max {
            return Err(bad(name, format!("is over {max} characters")));
        }
        let multiline = name == "message";
        if v.chars()
            .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
        {
            return Err(bad(name, "has control characters"));
        }
        Ok(Some(v.to_string()))
    };
    let phone_raw = text("phone", 40)?.ok_or_else(|| bad("phone", "is required"))?;
    let phone = PhoneNumber::parse(&phone_raw, Some(default_region))
        .map_err(|_| bad("phone", "is not a phone number we can text"))?;
    let email = text("email", 254)?.map(|e| e.to_lowercase());
    if let Some(e) = &email {
        let valid = e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !e.contains(char::is_whitespace)
        });
        if !valid {
            return Err(bad("email", "is not an e-mail address"));
        }
    }
    Ok(WebForm {
        name: text("name", 100)?,
        phone,
        email,
        service: text("service", 100)?,
        message: text("message", 2000)?,
        token: fields.get("form_token").cloned(),
    })
}

const KNOWN: &[&str] = &["name", "phone", "email", "service", "message", "form_token"];

/// A JSON object's entries in order, a key given twice kept twice (a map keeps only the
/// last, so `{"phone": "a", "phone": "b"}` would read as whichever the parser kept).
struct Entries(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(Visitor)
    }
}

fn field_name(k: &str) -> &'static str {
    KNOWN.iter().find(|n| **n == k).copied().unwrap_or("body")
}

/// Why a submission is not from the business's site (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormAuthError {
    #[error("the web form has no secret or token configured")]
    NotConfigured,
    #[error("no signature or token")]
    Missing,
    #[error("signature or token does not match")]
    Mismatch,
}

/// Checks the signature over the raw body, else the token (header, then body field).
pub fn authenticate(
    secrets: &Secrets,
    signature: Option<&str>,
    header_token: Option<&str>,
    body_token: Option<&str>,
    body: &[u8],
) -> Result<(), FormAuthError> {
    if secrets.web_form_secret.is_none() && secrets.web_form_token.is_none() {
        return Err(FormAuthError::NotConfigured);
    }
    if let Some(sig) = signature.map(str::trim).filter(|s| !s.is_empty()) {
        let secret = secrets
            .web_form_secret
            .as_deref()
            .ok_or(FormAuthError::Mismatch)?;
        let hex_sig = sig.strip_prefix("sha256=").unwrap_or(sig);
        let given = hex::decode(hex_sig).map_err(|_| FormAuthError::Mismatch)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(body);
        return mac
            .verify_slice(&given)
            .map_err(|_| FormAuthError::Mismatch);
    }
    let token = header_token
        .or(body_token)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(FormAuthError::Missing)?;
    let expected = secrets
        .web_form_token
        .as_deref()
        .ok_or(FormAuthError::Mismatch)?;
    if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(FormAuthError::Mismatch)
    }
}

/// The HMAC a site sends (for the README's example and `make` targets).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One submission's id: the same form sent twice (a double click, a retried POST) is one.
fn submission_id(form: &WebForm) -> String {
    let mut h = Sha256::new();
    for part in [
        Some(form.phone.as_str()),
        form.name.as_deref(),
        form.email.as_deref(),
        form.service.as_deref(),
        form.message.as_deref(),
    ] {
        h.update(part.unwrap_or("").to_lowercase().as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..10])
}

/// The contact, the lead, the thread entry and the instant text. Returns the lead's id.
pub async fn receive(deps: &Deps, form: &WebForm) -> Result<String, TextError> {
    let tenant = deps.tenant().await?;
    let now = deps.now();
    let id = submission_id(form);
    let conversation = ConversationId::parse(&format!("web_{id}")).expect("hex is a safe id");
    let details = ContactDetails {
        name: form.name.as_deref(),
        email: form.email.as_deref(),
        address: None,
        overwrite: false,
    };
    let contact = deps
        .store
        .save_contact_details(&form.phone, &details, "web_form", &conversation, now)
        .await?;
    let service = form.service.as_deref().map(|s| {
        tenant
            .find_service(s)
            .map(|d| d.id.clone())
            .unwrap_or_else(|| s.to_string())
    });
    let summary = form
        .message
        .as_deref()
        .map(|m| m.chars().take(500).collect::<String>());
    let input = LeadInput {
        conversation: &conversation,
        channel: "web_form",
        name: form.name.as_deref(),
        service: service.as_deref(),
        area: None,
        urgency: None,
        hot: false,
        summary: summary.as_deref(),
        now,
    };
    let lead = deps.store.open_or_merge_lead(&contact, &input).await?;
    let news = LeadNews {
        lead: &lead,
        conversation: &conversation,
        channel: "web_form",
        hot: None,
    };
    leads::announce(deps, &tenant, &news).await?;
    let entry = ThreadEntry {
        at: now.to_string(),
        direction: Direction::In,
        channel: "web_form".into(),
        body: format!(
            "(Website enquiry{}) {}",
            form.service
                .as_deref()
                .map(|s| format!(" about {s}"))
                .unwrap_or_default(),
            form.message.as_deref().unwrap_or("")
        ),
        ref_id: format!("web_{id}"),
    };
    deps.store.add_to_thread(&form.phone, &entry).await?;
    if !textable(&tenant, &form.phone) {
        // A form anyone can post must not make us text the world (SMS pumping): the lead
        // stands and the owner sees it; the instant text goes only to the business's own
        // countries.
        info!(lead_id = %lead.id, outcome = "web_form_number_abroad", "website enquiry from a number outside the business's countries: no instant text");
        return Ok(lead.id.to_string());
    }
    let body = render(&tenant.templates.web_form_reply, &values(&tenant, form));
    // One instant text per number per day, however many forms name it.
    let day = now.to_zoned(tenant.time_zone()).date();
    let reply_id = crate::ids::derived_id("wf", &[form.phone.as_str(), &day.to_string()]);
    outbox::create_and_queue(
        deps,
        NewMessage {
            id: format!("web-form-reply:{reply_id}"),
            purpose: "web_form_reply",
            audience: Audience::Caller,
            to: form.phone.clone(),
            body,
            conversation_id: Some(conversation.to_string()),
            lead_id: Some(lead.id.to_string()),
        },
    )
    .await?;
    info!(lead_id = %lead.id, conversation_id = %conversation, opened = lead.opened_here, outcome = "web_form_lead", "website enquiry recorded");
    Ok(lead.id.to_string())
}

/// Numbers of the business's own countries (its own, and its areas').
fn textable(tenant: &TenantConfig, phone: &PhoneNumber) -> bool {
    let Some(region) = phone.region() else {
        return false;
    };
    region.eq_ignore_ascii_case(&tenant.business.country)
        || tenant
            .areas
            .iter()
            .any(|a| a.country.eq_ignore_ascii_case(&region))
}

fn values(tenant: &TenantConfig, form: &WebForm) -> BTreeMap<&'static str, String> {
    let mut values = super::texts::caller_values(tenant, form.name.as_deref());
    if let Some(service) = &form.service {
        values.insert("service", tenant.service_name(service));
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_form_bodies_read_the_same() {
        let json = br#"{"name":"Ann Lee","phone":"07911 123456","email":"Ann@Example.com","service":"leak repair","message":"Dripping tap","submit":"Send"}"#;
        let form = b"name=Ann+Lee&phone=07911+123456&email=Ann%40Example.com&service=leak+repair&message=Dripping+tap&submit=Send";
        let a = parse(json, "application/json", "GB").unwrap();
        let b = parse(form, "application/x-www-form-urlencoded", "GB").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.phone.as_str(), "+447911123456");
        assert_eq!(a.email.as_deref(), Some("ann@example.com"));
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"name=Ann", "application/x-www-form-urlencoded", "phone"),
            (b"phone=hello", "application/x-www-form-urlencoded", "phone"),
            (
                b"phone=07911123456&email=nope",
                "application/x-www-form-urlencoded",
                "email",
            ),
            (
                b"phone=07911123456&name=A%00B",
                "application/x-www-form-urlencoded",
                "name",
            ),
            (
                b"phone=07911123456&phone=07911123457",
                "application/x-www-form-urlencoded",
                "phone",
            ),
            (
                br#"{"phone":"07911123456","name":"A","name":"B"}"#,
                "application/json",
                "name",
            ),
            (b"[1,2]", "application/json", "body"),
            (b"{\"phone\":[1]}", "application/json", "phone"),
            (b"{", "application/json", "body"),
            (b"phone=1", "text/plain", "content-type"),
            (
                b"phone=07911123456&message=\xff",
                "application/x-www-form-urlencoded",
                "body",
            ),
        ];
        for (body, ct, field) in cases {
            let e = parse(body, ct, "GB").unwrap_err();
            assert_eq!(e.field, *field, "{:?}", String::from_utf8_lossy(body));
        }
        let long = format!("phone=07911123456&message={}", "a".repeat(2001));
        assert_eq!(
            parse(long.as_bytes(), "", "GB").unwrap_err().field,
            "message"
        );
    }

    #[test]
    fn a_signed_body_or_the_token_passes_and_nothing_else() {
        let secrets = Secrets::from_lookup(|k| match k {
            "WEB_FORM_SECRET" => Some("form-secret".into()),
            "WEB_FORM_TOKEN" => Some("form-token".into()),
            _ => None,
        });
        let body = b"phone=07911123456";
        let sig = sign(b"form-secret", body);
        assert_eq!(authenticate(&secrets, Some(&sig), None, None, body), Ok(()));
        assert_eq!(
            authenticate(&secrets, Some(&sig), None, None, b"phone=07911123457"),
            Err(FormAuthError::Mismatch)
        );
        assert_eq!(
            authenticate(&secrets, None, Some("form-token"), None, body),
            Ok(())
        );
        assert_eq!(
            authenticate(&secrets, None, None, Some("form-token"), body),
            Ok(())
        );
        assert_eq!(
            authenticate(&secrets, None, Some("guess"), None, body),
            Err(FormAuthError::Mismatch)
        );
        assert_eq!(
            authenticate(&secrets, None, None, None, body),
            Err(FormAuthError::Missing)
        );
        let none = Secrets::default();
        assert_eq!(
            authenticate(&none, Some(&sig), None, None, body),
            Err(FormAuthError::NotConfigured)
        );
    }
}
