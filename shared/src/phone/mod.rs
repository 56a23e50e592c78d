//! Phone numbers in E.164, parsed once at the edge with libphonenumber's rules.

mod metadata;

use std::fmt;
use std::sync::Arc;

use phonenumber::country;
use phonenumber::metadata::Database;
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
        let region = default_region.map(region_id).transpose()?;
        let (db, parsed) = parse_with_metadata(region, trimmed)?;
        if !parsed.is_valid_with(&db) {
            return Err(PhoneError::Invalid);
        }
        // E.164 is the code and the national number; phonenumber's own formatter would load
        // its full database (it evaluates `unwrap_or(&DATABASE)` eagerly).
        Ok(Self(format!(
            "+{}{}",
            parsed.code().value(),
            parsed.national()
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// International format for people to read: "+44 20 7946 0000".
    pub fn international(&self) -> String {
        parse_with_metadata(None, &self.0)
            .ok()
            .and_then(|(db, p)| international_format(&db, &p))
            .unwrap_or_else(|| self.0.clone())
    }

    /// ISO 3166 region of the number ("GB"), when libphonenumber knows it.
    pub fn region(&self) -> Option<String> {
        let (db, parsed) = parse_with_metadata(None, &self.0).ok()?;
        let id = parsed.metadata(&db)?.id().parse::<country::Id>().ok()?;
        Some(format!("{id:?}"))
    }

    /// A stable, non-reversible tag for logs, where the number itself must never appear.
    pub fn log_tag(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        format!("ph_{}", &hex::encode(digest)[..12])
    }
}

/// The region of an ISO 3166 alpha-2 code ("GB"), as a default for national numbers.
fn region_id(code: &str) -> Result<country::Id, PhoneError> {
    code.parse::<country::Id>()
        .map_err(|_| PhoneError::UnknownRegion(code.to_string()))
}

/// Whether national numbers can be read in this region (ISO 3166 alpha-2, like GB or US).
pub fn check_region(code: &str) -> Result<(), PhoneError> {
    region_id(code).map(|_| ())
}

/// libphonenumber's international format ("+44 20 7946 0123"), as phonenumber's formatter
/// makes it, with the database given (its own would load every territory's metadata).
fn international_format(db: &Database, number: &phonenumber::PhoneNumber) -> Option<String> {
    let code = number.code().value();
    let meta = db.by_code(&code)?.into_iter().next()?;
    let national = number.national().to_string();
    let formats = if meta.international_formats().is_empty() {
        meta.formats()
    } else {
        meta.international_formats()
    };
    // The first format whose leading digits start the number and whose pattern covers it all.
    let format = formats.iter().find(|f| {
        f.leading_digits().is_empty()
            || f.leading_digits()
                .last()
                .and_then(|l| l.find(&national))
                .is_some_and(|m| m.start() == 0)
                && f.pattern()
                    .find(&national)
                    .is_some_and(|m| m.start() == 0 && m.end() == national.len())
    });
    let mut out = format!("+{code} ");
    match format {
        Some(f) => out.push_str(&f.pattern().replace(&national, f.format())),
        None => out.push_str(&national),
    }
    if let Some(ext) = number.extension() {
        out.push_str(meta.preferred_extension_prefix().unwrap_or(" ext. "));
        out.push_str(ext.as_ref());
    }
    Some(out)
}

/// Parses with the metadata of the number's own calling code (the international prefix it
/// starts with, else the default region's), and with all of libphonenumber's metadata only
/// when the number names another calling code (dialled from the region to abroad, "00 33…")
/// or no calling code can be told from it.
fn parse_with_metadata(
    region: Option<country::Id>,
    text: &str,
) -> Result<(Arc<Database>, phonenumber::PhoneNumber), PhoneError> {
    let region_code = region.and_then(|r| metadata::code_of_region(r.as_ref()));
    let code = if text.starts_with('+') {
        metadata::leading_code(text)
    } else {
        region_code
    };
    if let Some(db) = code.and_then(metadata::for_code) {
        // The default region only means something to the database that holds it.
        let region = region.filter(|_| region_code == code);
        match phonenumber::parse_with(&db, region, text) {
            Ok(parsed) if Some(parsed.code().value()) == code => return Ok((db, parsed)),
            // Not a number ("anonymous", a withheld caller id) or too short: that does not
            // depend on the territory, so the full database would refuse it too.
            Err(e) if !matches!(e, phonenumber::ParseError::InvalidCountryCode) => {
                return Err(PhoneError::Invalid)
            }
            // Another calling code than the one loaded (dialled abroad, "00 33…").
            _ => {}
        }
    }
    let all = metadata::all().ok_or(PhoneError::Invalid)?;
    let parsed = phonenumber::parse_with(&all, region, text).map_err(|_| PhoneError::Invalid)?;
    Ok((all, parsed))
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
    use phonenumber::Mode;

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
        assert!(matches!(
            check_region("XX"),
            Err(PhoneError::UnknownRegion(_))
        ));
        assert_eq!(check_region("GB"), Ok(()));
    }

    /// Every example number of every territory in libphonenumber's metadata, parsed
    /// internationally and nationally, gives the answer phonenumber's full database gives.
    #[test]
    fn one_calling_codes_metadata_answers_as_the_full_database_does() {
        let all = &phonenumber::metadata::DATABASE;
        let mut checked = 0;
        for code in 1..1000u16 {
            for meta in all.by_code(&code).into_iter().flatten() {
                let d = meta.descriptors();
                let examples = [
                    Some(d.general()),
                    d.fixed_line(),
                    d.mobile(),
                    d.toll_free(),
                    d.premium_rate(),
                    d.voip(),
                ];
                for example in examples.into_iter().flatten().filter_map(|d| d.example()) {
                    let national = example.to_string();
                    let international = format!("+{code} {example}");
                    // "001" holds the non-geographic codes (+800…): no national form.
                    let region = Some(meta.id().to_string()).filter(|id| id != "001");
                    for (text, region) in
                        [(international.as_str(), None), (national.as_str(), region)]
                    {
                        let expected = phonenumber::parse(
                            region.as_deref().and_then(|r| r.parse().ok()),
                            text,
                        )
                        .ok()
                        .filter(|p| p.is_valid())
                        .map(|p| p.format().mode(Mode::E164).to_string());
                        let got = PhoneNumber::parse(text, region.as_deref()).ok();
                        assert_eq!(
                            got.as_ref().map(|p| p.as_str().to_string()),
                            expected,
                            "{text} in {region:?}"
                        );
                        if let Some(p) = got {
                            let full = phonenumber::parse(None, p.as_str()).unwrap();
                            assert_eq!(
                                p.international(),
                                full.format().mode(Mode::International).to_string()
                            );
                            assert_eq!(p.region(), full.country().id().map(|id| format!("{id:?}")));
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1500, "only {checked} numbers checked");
    }

    #[test]
    fn numbers_dialled_abroad_from_the_default_region_still_parse() {
        let paris = PhoneNumber::parse("00 33 1 42 68 53 00", Some("GB")).unwrap();
        assert_eq!(paris.as_str(), "+33142685300");
        assert_eq!(paris.region().as_deref(), Some("FR"));
        assert_eq!(paris.international(), "+33 1 42 68 53 00");
    }

    #[test]
    fn debug_output_hides_the_number() {
        let p = PhoneNumber::parse("+442079460123", None).unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("79460123"), "{shown}");
        assert!(shown.starts_with("PhoneNumber(ph_"));
    }
}
