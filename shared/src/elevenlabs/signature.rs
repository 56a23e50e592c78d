//! The `ElevenLabs-Signature` header: `t=<unix seconds>,v0=<hex HMAC-SHA256("t.body")>`.
//!
//! Stricter than the official SDKs: the compare is constant-time, and a timestamp from the
//! future is refused as well as one older than the tolerance.

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use sha2::Sha256;

pub const HEADER: &str = "elevenlabs-signature";
/// How old a signature may be (the official SDKs use 30 minutes).
pub const MAX_AGE_SECS: i64 = 30 * 60;
/// How far ahead of our clock a signature may be (clock skew).
pub const MAX_SKEW_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing ElevenLabs-Signature header")]
    Missing,
    #[error("malformed ElevenLabs-Signature header")]
    Malformed,
    #[error("signature timestamp is too old")]
    Stale,
    #[error("signature timestamp is in the future")]
    Future,
    #[error("signature does not match")]
    Mismatch,
}

/// Checks `header` against the exact raw body bytes. Never re-serialise the body first.
pub fn verify(
    raw_body: &[u8],
    header: Option<&str>,
    secret: &[u8],
    now: Timestamp,
) -> Result<(), SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let mut timestamp: Option<&str> = None;
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let part = part.trim();
        if let Some(t) = part.strip_prefix("t=") {
            timestamp = Some(t);
        } else if let Some(sig) = part.strip_prefix("v0=") {
            // Several v0 values may be present while a secret is rotated; any may match.
            candidates.push(hex::decode(sig).map_err(|_| SignatureError::Malformed)?);
        }
    }
    let t_text = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() || t_text.is_empty() || !t_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed);
    }
    let t: i64 = t_text.parse().map_err(|_| SignatureError::Malformed)?;
    let now_secs = now.as_second();
    if t < now_secs - MAX_AGE_SECS {
        return Err(SignatureError::Stale);
    }
    if t > now_secs + MAX_SKEW_SECS {
        return Err(SignatureError::Future);
    }
    let mac = signed_mac(secret, t_text, raw_body);
    let matched = candidates
        .iter()
        .any(|candidate| mac.clone().verify_slice(candidate).is_ok());
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn signed_mac(secret: &[u8], timestamp: &str, raw_body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(raw_body);
    mac
}

/// Builds a header the way ElevenLabs does: for the local sender and for tests.
pub fn sign(raw_body: &[u8], secret: &[u8], at: Timestamp) -> String {
    let t = at.as_second().to_string();
    let digest = signed_mac(secret, &t, raw_body).finalize().into_bytes();
    format!("t={t},v0={}", hex::encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked vector from ElevenLabs' protocol notes (Python hmac, openssl and Node agree).
    const SECRET: &[u8] = b"wsec_test_0123456789abcdef";
    const BODY: &str = r#"{"type":"post_call_audio","event_timestamp":1760000000,"data":{"agent_id":"agent_01","conversation_id":"conv_01","full_audio":"SUQzBAAAAAAAAP/jGMA="}}"#;
    const HEADER_VALUE: &str =
        "t=1760000000,v0=84c24442037b5490664d21b21b45368c7133fba0fae6ee402159463b4b2c09aa";

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn official_vector_is_accepted_a_minute_later() {
        assert_eq!(BODY.len(), 150);
        assert_eq!(
            verify(
                BODY.as_bytes(),
                Some(HEADER_VALUE),
                SECRET,
                at(1_760_000_060)
            ),
            Ok(())
        );
    }

    #[test]
    fn signing_reproduces_the_official_vector() {
        assert_eq!(
            sign(BODY.as_bytes(), SECRET, at(1_760_000_000)),
            HEADER_VALUE
        );
    }

    #[test]
    fn order_of_parts_does_not_matter() {
        let swapped =
            "v0=84c24442037b5490664d21b21b45368c7133fba0fae6ee402159463b4b2c09aa,t=1760000000";
        assert_eq!(
            verify(BODY.as_bytes(), Some(swapped), SECRET, at(1_760_000_060)),
            Ok(())
        );
    }

    #[test]
    fn tampering_wrong_secret_and_time_are_refused() {
        let now = at(1_760_000_060);
        let tampered = BODY.replace("conv_01", "conv_02");
        assert_eq!(
            verify(tampered.as_bytes(), Some(HEADER_VALUE), SECRET, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(BODY.as_bytes(), Some(HEADER_VALUE), b"other", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                BODY.as_bytes(),
                Some(HEADER_VALUE),
                SECRET,
                at(1_760_000_000 + 31 * 60)
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(
                BODY.as_bytes(),
                Some(HEADER_VALUE),
                SECRET,
                at(1_760_000_000 - 6 * 60)
            ),
            Err(SignatureError::Future)
        );
    }

    #[test]
    fn the_edges_of_the_window_are_accepted() {
        assert_eq!(
            verify(
                BODY.as_bytes(),
                Some(HEADER_VALUE),
                SECRET,
                at(1_760_000_000 + 30 * 60)
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                BODY.as_bytes(),
                Some(HEADER_VALUE),
                SECRET,
                at(1_760_000_000 - 5 * 60)
            ),
            Ok(())
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_refused() {
        let now = at(1_760_000_060);
        assert_eq!(
            verify(BODY.as_bytes(), None, SECRET, now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(BODY.as_bytes(), Some(""), SECRET, now),
            Err(SignatureError::Missing)
        );
        for bad in [
            "t=1760000000",
            "v0=84c24442037b5490664d21b21b45368c7133fba0fae6ee402159463b4b2c09aa",
            "t=abc,v0=84c24442037b5490664d21b21b45368c7133fba0fae6ee402159463b4b2c09aa",
            "t=1760000000,v0=zz",
            "t=-1760000000,v0=84c24442037b5490664d21b21b45368c7133fba0fae6ee402159463b4b2c09aa",
            "t=1760000000,v1=84c24442037b5490664d21b21b45368c7133fba0fae6ee402159463b4b2c09aa",
            "t=99999999999999999999999,v0=84c24442037b5490664d21b21b45368c7133fba0fae6ee402159463b4b2c09aa",
        ] {
            assert_eq!(verify(BODY.as_bytes(), Some(bad), SECRET, now), Err(SignatureError::Malformed), "{bad}");
        }
    }
}
