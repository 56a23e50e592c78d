//! `X-Twilio-Signature`: Base64(HMAC-SHA1(auth token, URL + sorted params)), as Twilio's
//! security page and official SDKs define it.
//!
//! - The URL is the one Twilio was given, from configuration (API Gateway never sees the
//!   public URL): scheme, host, path and the query exactly as sent, never re-encoded.
//! - Form bodies: every parameter (blank values and repeats kept), names in byte order, each
//!   name's distinct values in byte order, appended as `name + value`.
//! - JSON bodies: no parameters; the query's `bodySHA256` must be the hex SHA-256 of the raw
//!   body.
//! - Twilio keeps the port in some signatures and drops it in others, so the URL with and
//!   without the default port (`:443`, `:80`) are both accepted, as the SDKs do.
//! - The comparison is constant-time.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "x-twilio-signature";

/// What was signed besides the URL.
#[derive(Debug, Clone, Copy)]
pub enum Signed<'a> {
    /// A form-encoded body (messaging and status webhooks), as raw bytes.
    Form(&'a [u8]),
    /// A JSON body, whose hash the URL carries as `bodySHA256`.
    Json(&'a [u8]),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Twilio-Signature header")]
    Missing,
    #[error("X-Twilio-Signature does not match")]
    Mismatch,
    #[error("bodySHA256 missing or not the body's hash")]
    BodyHash,
}

/// The decoded form parameters of a body, blank values and repeats kept, in body order.
pub fn form_params(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The string Twilio signs: the URL, then each name and value, sorted.
pub fn signed_string(url: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut out = String::from(url);
    for (k, v) in pairs {
        out.push_str(k);
        out.push_str(v);
    }
    out
}

fn mac(token: &[u8], data: &str) -> Hmac<Sha1> {
    let mut mac = Hmac::<Sha1>::new_from_slice(token).expect("any key length");
    mac.update(data.as_bytes());
    mac
}

/// The signature Twilio would send for this URL and these params.
pub fn sign(token: &[u8], url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(
        mac(token, &signed_string(url, params))
            .finalize()
            .into_bytes(),
    )
}

/// Checks a webhook's signature against the URL Twilio was given.
pub fn verify(
    token: &[u8],
    url: &str,
    signed: Signed<'_>,
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let given = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let given = STANDARD
        .decode(given)
        .map_err(|_| SignatureError::Mismatch)?;
    let params = match signed {
        Signed::Form(body) => form_params(body),
        Signed::Json(body) => {
            let wanted = query_value(url, "bodySHA256").ok_or(SignatureError::BodyHash)?;
            if !hex::encode(Sha256::digest(body)).eq_ignore_ascii_case(&wanted) {
                return Err(SignatureError::BodyHash);
            }
            Vec::new()
        }
    };
    let matches = url_variants(url).iter().any(|candidate| {
        mac(token, &signed_string(candidate, &params))
            .verify_slice(&given)
            .is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The URL as given, without its default port, and with it.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let default_port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    // A port is what follows the last ':' outside an IPv6 literal's brackets.
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') && p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
        _ => (hostport, None),
    };
    let without = format!("{scheme}://{userinfo}{host}{tail}");
    let with = format!("{scheme}://{userinfo}{host}:{default_port}{tail}");
    match port {
        // A non-default port: Twilio may still drop it (the SDKs try without it too).
        Some(p) if p != default_port => out.push(without),
        _ => {
            out.push(without);
            out.push(with);
        }
    }
    out.dedup();
    out
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    //! Every official vector from twilio-python's and twilio-node's unit tests and Twilio's
    //! security page (token 12345), and the ways a signature must fail.
    use super::*;

    const TOKEN: &[u8] = b"12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const BODY: &[u8] = br#"{"property": "value", "boolean": true}"#;
    const BODY_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";

    /// The SDKs' fixture params, form-encoded as Twilio posts them.
    fn fixture() -> Vec<u8> {
        b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212".to_vec()
    }

    fn ok(url: &str, body: &[u8], sig: &str) -> bool {
        verify(TOKEN, url, Signed::Form(body), Some(sig)).is_ok()
    }

    #[test]
    fn the_sdk_vectors_for_form_bodies_verify() {
        let f = fixture();
        assert_eq!(
            sign(TOKEN, URL, &form_params(&f)),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(ok(URL, &f, "RSOYDt4T1cUTdK1PDd93/VVr8B8="), "1 basic");
        assert!(
            ok(
                "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
                &f,
                "RSOYDt4T1cUTdK1PDd93/VVr8B8="
            ),
            "2 https with a port, signed without it"
        );
        assert!(
            ok(
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                &f,
                "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
            ),
            "3 http with a port"
        );
        assert!(
            ok(URL, &f, "kvajT1Ptam85bY51eRf/AJRuM3w="),
            "4 signed with :443 added"
        );
        assert!(
            ok(
                "http://mycompany.com/myapp.php?foo=1&bar=2",
                &f,
                "0ZXoZLH/DfblKGATFgpif+LLRf4="
            ),
            "5 signed with :80 added"
        );
        let repeated = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234";
        assert!(
            ok(URL, repeated, "IK+Dwps556ElfBT0I3Rgjkr1wJU="),
            "6 repeated values"
        );
        assert!(
            ok(
                "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
                &f,
                "CukzLTc1tT5dXEDIHm/tKBanW10="
            ),
            "10 credentials in the URL"
        );
        assert!(
            ok(
                "https://user@mycompany.com/myapp.php?foo=1&bar=2",
                &f,
                "2YRLlVAflCqxaNicjMpJcSTgzSs="
            ),
            "11 a user name in the URL"
        );
        assert!(
            ok(
                "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
                &f,
                "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI="
            ),
            "12 credentials and :443"
        );
        assert!(
            ok(
                "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It%27s+amazing",
                &f,
                "TfZzewPq8wqrGlMfyAud8+/IvJ0="
            ),
            "13 the query exactly as Twilio requested it"
        );
        let array =
            b"MessagingBinding.Address=%2B1325xxxxxxx&MessagingBinding.Address=%2B1415xxxxxxx";
        let reversed =
            b"MessagingBinding.Address=%2B1415xxxxxxx&MessagingBinding.Address=%2B1325xxxxxxx";
        assert!(
            ok(URL, array, "83O6e2vORAoJHUNzJjDWN1jz+BA="),
            "14 an array param"
        );
        assert!(
            ok(URL, reversed, "83O6e2vORAoJHUNzJjDWN1jz+BA="),
            "14 in either order"
        );
        let docs = b"Digits=1234&To=%2B18005551212&From=%2B14158675310&Caller=%2B14158675310&CallSid=CA1234567890ABCDE";
        assert!(
            ok(
                "https://example.com/myapp.php?foo=1&bar=2",
                docs,
                "L/OH5YylLD5NRKLltdqwSvS0BnU="
            ),
            "15 the security page's worked example"
        );
    }

    #[test]
    fn the_sdk_vectors_for_json_bodies_verify() {
        let url = format!("{URL}&bodySHA256={BODY_HASH}");
        assert!(
            verify(
                TOKEN,
                &url,
                Signed::Json(BODY),
                Some("a9nBmqA0ju/hNViExpshrM61xv4=")
            )
            .is_ok(),
            "7"
        );
        let empty = format!(
            "{URL}&bodySHA256=44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert!(
            verify(
                TOKEN,
                &empty,
                Signed::Json(b"{}"),
                Some("Ldidvp12m26NI7eqEvxnEpkd9Hc=")
            )
            .is_ok(),
            "8"
        );
        let only = format!("https://mycompany.com/myapp.php?bodySHA256={BODY_HASH}");
        assert!(
            verify(
                TOKEN,
                &only,
                Signed::Json(BODY),
                Some("y77kIzt2vzLz71DgmJGsen2scGs=")
            )
            .is_ok(),
            "9"
        );
        assert_eq!(
            hex::encode(Sha256::digest(
                br#"{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}"#
            )),
            "5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9",
            "16 the security page's body hash"
        );
        // A tampered body fails on its hash even though the URL's signature holds.
        let tampered = br#"{"property": "other", "boolean": true}"#;
        assert_eq!(
            verify(
                TOKEN,
                &url,
                Signed::Json(tampered),
                Some("a9nBmqA0ju/hNViExpshrM61xv4=")
            ),
            Err(SignatureError::BodyHash)
        );
        assert_eq!(
            verify(
                TOKEN,
                URL,
                Signed::Json(BODY),
                Some("a9nBmqA0ju/hNViExpshrM61xv4=")
            ),
            Err(SignatureError::BodyHash)
        );
    }

    #[test]
    fn anything_else_fails() {
        let f = fixture();
        let sig = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(
            !ok("https://mycompany.com/myapp.php/?foo=1&bar=2", &f, sig),
            "a trailing slash"
        );
        assert!(
            !ok("http://mycompany.com/myapp.php?foo=1&bar=2", &f, sig),
            "http for https"
        );
        assert!(
            !ok("https://mycompany.com/myapp.php?foo=1&bar=3", &f, sig),
            "another query"
        );
        let missing =
            b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309";
        assert!(!ok(URL, missing, sig), "a param left out");
        let blank = [f.as_slice(), b"&FromZip="].concat();
        assert!(!ok(URL, &blank, sig), "a blank param counts");
        assert!(
            verify(b"54321", URL, Signed::Form(&f), Some(sig)).is_err(),
            "another token"
        );
        assert_eq!(
            verify(TOKEN, URL, Signed::Form(&f), None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(TOKEN, URL, Signed::Form(&f), Some(" ")),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(TOKEN, URL, Signed::Form(&f), Some("not base64!")),
            Err(SignatureError::Mismatch)
        );
    }
}
