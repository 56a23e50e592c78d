//! Phone numbers in E.164, parsed once at the edge with libphonenumber's rules.

use std::fmt;

use phonenumber::{country, Mode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A valid phone number, always held in E.164 (`+447700900123`).
///
/// `whatsapp:+44…` and `+44…` are the same person, so the channel prefix is dropped here.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("no phone number given")]
    Empty,
    #[error("not a valid phone number")]
    Invalid,
    #[error("unknown country code {0:?} (expected ISO 3166 alpha-2, like GB or US)")]
    UnknownRegion(String),
}

impl PhoneNumber {
    /// Parses international numbers as they are and national ones in `default_region`
    /// (ISO 3166 alpha-2, e.g. "GB").
    pub fn parse(raw: &str, default_region: Option<&str>) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        let trimmed = trimmed
            .strip_prefix("whatsapp:")
            .or_else(|| trimmed.strip_prefix("tel:"))
            .unwrap_or(trimmed)
            .trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        let region = match default_region {
            Some(r) => Some(
                r.parse::<country::Id>()
                    .map_err(|_| PhoneError::UnknownRegion(r.to_string()))?,
            ),
            None => None,
        };
        let parsed = phonenumber::parse(region, trimmed).map_err(|_| PhoneError::Invalid)?;
        if !parsed.is_valid() {
            return Err(PhoneError::Invalid);
        }
        Ok(Self(parsed.format().mode(Mode::E164).to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// International format for people to read: "+44 20 7946 0000".
    pub fn international(&self) -> String {
        phonenumber::parse(None, &self.0)
            .map(|p| p.format().mode(Mode::International).to_string())
            .unwrap_or_else(|_| self.0.clone())
    }

    /// ISO 3166 region of the number ("GB"), when libphonenumber knows it.
    pub fn region(&self) -> Option<String> {
        let parsed = phonenumber::parse(None, &self.0).ok()?;
        parsed.country().id().map(|id| format!("{id:?}"))
    }

    /// A stable, non-reversible tag for logs, where the number itself must never appear.
    pub fn log_tag(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        format!("ph_{}", &hex::encode(digest)[..12])
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value, None)
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> Self {
        p.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Debug never prints the number, so a stray `{:?}` cannot leak it into a log.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.log_tag())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_numbers_are_normalised_to_e164() {
        let p = PhoneNumber::parse("+44 20 7946 0123", None).unwrap();
        assert_eq!(p.as_str(), "+442079460123");
    }

    #[test]
    fn national_numbers_use_the_default_region() {
        let p = PhoneNumber::parse("020 7946 0123", Some("GB")).unwrap();
        assert_eq!(p.as_str(), "+442079460123");
        let us = PhoneNumber::parse("(415) 555-0123", Some("US")).unwrap();
        assert_eq!(us.as_str(), "+14155550123");
    }

    #[test]
    fn whatsapp_and_sms_addresses_are_the_same_person() {
        let a = PhoneNumber::parse("whatsapp:+442079460123", None).unwrap();
        let b = PhoneNumber::parse("+442079460123", None).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn garbage_and_empty_are_rejected() {
        assert_eq!(PhoneNumber::parse("  ", None), Err(PhoneError::Empty));
        assert_eq!(
            PhoneNumber::parse("anonymous", None),
            Err(PhoneError::Invalid)
        );
        assert_eq!(PhoneNumber::parse("+1 000", None), Err(PhoneError::Invalid));
        assert!(matches!(
            PhoneNumber::parse("0123", Some("XX")),
            Err(PhoneError::UnknownRegion(_))
        ));
    }

    #[test]
    fn debug_output_hides_the_number() {
        let p = PhoneNumber::parse("+442079460123", None).unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("79460123"), "{shown}");
        assert!(shown.starts_with("PhoneNumber(ph_"));
    }
}
