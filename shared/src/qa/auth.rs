//! Who a QA request comes from: a reviewer of one tenant, from a verified JWT.
//!
//! In AWS the HTTP API's JWT authorizer verifies the token (signature against the issuer's
//! keys, issuer, audience, expiry) before the function runs, and hands over its claims in the
//! request context; the handler only reads them. Locally there is no authorizer, so the local
//! server verifies the same things itself, for tokens signed with a local key (HS256), which
//! `make dev` prints. Either way the token's tenant claim must be the stack's tenant.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

/// A reviewer, as the token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewer {
    /// The token's subject: the reviewer's stable id.
    pub id: String,
    /// What the console shows and a resolution records: the e-mail, else the subject.
    pub name: String,
    pub tenant: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("token is not valid: {0}")]
    Invalid(&'static str),
    #[error("token has expired")]
    Expired,
    /// A good token, for another business: 403, not 401.
    #[error("token is for another tenant")]
    OtherTenant,
}

/// How this deployment learns who the reviewer is.
#[derive(Clone)]
pub enum ReviewerAuth {
    /// Lambda behind the HTTP API's JWT authorizer: the verified claims are in the request
    /// context. A bearer token the authorizer did not verify is never trusted.
    Authorizer { tenant_claim: String },
    /// The local server: tokens signed with this key, checked here.
    LocalKey {
        key: Vec<u8>,
        issuer: String,
        audience: String,
        tenant_claim: String,
    },
}

impl std::fmt::Debug for ReviewerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Authorizer { tenant_claim } => f
                .debug_struct("Authorizer")
                .field("tenant_claim", tenant_claim)
                .finish(),
            Self::LocalKey { issuer, .. } => f
                .debug_struct("LocalKey")
                .field("issuer", issuer)
                .finish_non_exhaustive(),
        }
    }
}

/// The claim Cognito user pools put a custom `tenant` attribute in.
pub const DEFAULT_TENANT_CLAIM: &str = "custom:tenant";
pub const LOCAL_ISSUER: &str = "frontdesk-local";
pub const LOCAL_AUDIENCE: &str = "frontdesk-qa";

/// The reviewer from claims already verified (by the authorizer, or by [`verify_local`]).
pub fn reviewer_from_claims(
    claims: &std::collections::HashMap<String, String>,
    tenant_claim: &str,
    stack_tenant: &str,
) -> Result<Reviewer, AuthError> {
    let id = claims
        .get("sub")
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::Invalid("no subject"))?;
    let tenant = claims
        .get(tenant_claim)
        .ok_or(AuthError::Invalid("no tenant claim"))?;
    if tenant != stack_tenant {
        return Err(AuthError::OtherTenant);
    }
    let name = claims
        .get("email")
        .filter(|e| !e.is_empty())
        .unwrap_or(id)
        .clone();
    Ok(Reviewer {
        id: id.clone(),
        name,
        tenant: tenant.clone(),
    })
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// Verifies an HS256 token as the authorizer would verify its own: the signature, then the
/// issuer, the audience, and the expiry and not-before times (with a minute's leeway). Returns
/// its claims as strings, as API Gateway passes them.
pub fn verify_local(
    token: &str,
    key: &[u8],
    issuer: &str,
    audience: &str,
    now_secs: i64,
) -> Result<std::collections::HashMap<String, String>, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Invalid("not a JWT"));
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| AuthError::Invalid("not base64url"))
    };
    let header: Header =
        serde_json::from_slice(&decode(header)?).map_err(|_| AuthError::Invalid("bad header"))?;
    // Only the one algorithm: a token cannot choose how it is checked ("none", RS/HS swaps).
    if header.alg != "HS256" {
        return Err(AuthError::Invalid("algorithm not allowed"));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(&token.as_bytes()[..token.len() - signature.len() - 1]);
    mac.verify_slice(&decode(signature)?)
        .map_err(|_| AuthError::Invalid("bad signature"))?;
    let claims: serde_json::Map<String, Value> =
        serde_json::from_slice(&decode(payload)?).map_err(|_| AuthError::Invalid("bad claims"))?;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(AuthError::Invalid("wrong issuer"));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(AuthError::Invalid("wrong audience"));
    }
    const LEEWAY: i64 = 60;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(AuthError::Invalid("no expiry"))?;
    if now_secs > exp + LEEWAY {
        return Err(AuthError::Expired);
    }
    if claims
        .get("nbf")
        .and_then(Value::as_i64)
        .is_some_and(|nbf| now_secs + LEEWAY < nbf)
    {
        return Err(AuthError::Invalid("not valid yet"));
    }
    Ok(claims
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect())
}

/// Signs an HS256 token (the local reviewer token `make dev` prints, and tests).
pub fn sign_local(claims: &Value, key: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

/// A local reviewer's token for `tenant`, valid for `hours`.
pub fn local_reviewer_token(key: &[u8], tenant: &str, now_secs: i64, hours: i64) -> String {
    sign_local(
        &serde_json::json!({
            "iss": LOCAL_ISSUER,
            "aud": LOCAL_AUDIENCE,
            "sub": "local-reviewer",
            "email": "reviewer@localhost",
            DEFAULT_TENANT_CLAIM: tenant,
            "iat": now_secs,
            "exp": now_secs + hours * 3600,
        }),
        key,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"local-key";
    const NOW: i64 = 1_790_000_000;

    fn token(claims: Value) -> String {
        sign_local(&claims, KEY)
    }

    fn verify(t: &str) -> Result<Reviewer, AuthError> {
        let claims = verify_local(t, KEY, LOCAL_ISSUER, LOCAL_AUDIENCE, NOW)?;
        reviewer_from_claims(&claims, DEFAULT_TENANT_CLAIM, "demo")
    }

    #[test]
    fn a_good_token_names_the_reviewer() {
        let r = verify(&local_reviewer_token(KEY, "demo", NOW, 8)).unwrap();
        assert_eq!(
            (r.id.as_str(), r.name.as_str()),
            ("local-reviewer", "reviewer@localhost")
        );
    }

    #[test]
    fn bad_tokens_are_refused_for_the_right_reason() {
        let good = serde_json::json!({"iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "sub": "r1", "custom:tenant": "demo", "exp": NOW + 60});
        let with = |k: &str, v: Value| {
            let mut c = good.clone();
            c[k] = v;
            token(c)
        };
        assert_eq!(
            verify(&with("exp", (NOW - 3600).into())),
            Err(AuthError::Expired)
        );
        assert_eq!(
            verify(&with("iss", "someone".into())),
            Err(AuthError::Invalid("wrong issuer"))
        );
        assert_eq!(
            verify(&with("aud", "other".into())),
            Err(AuthError::Invalid("wrong audience"))
        );
        assert_eq!(
            verify(&with("custom:tenant", "acme".into())),
            Err(AuthError::OtherTenant)
        );
        assert!(verify(&with("aud", serde_json::json!(["x", LOCAL_AUDIENCE]))).is_ok());
        let forged = sign_local(&good, b"another key");
        assert_eq!(verify(&forged), Err(AuthError::Invalid("bad signature")));
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(good.to_string())
        );
        assert_eq!(
            verify(&none),
            Err(AuthError::Invalid("algorithm not allowed"))
        );
        assert_eq!(verify("abc"), Err(AuthError::Invalid("not a JWT")));
    }
}
