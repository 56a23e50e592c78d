//! libphonenumber's metadata, loaded one calling code at a time.
//!
//! The phonenumber crate's own database checks the syntax of every pattern of all 254
//! territories the first time any number is parsed: about 150 ms of a function's first
//! invocation (measured, BENCHMARKS.md). A number only ever needs the territories of its own
//! calling code (GB, GG, IM and JE for +44), so only those are loaded, once per code, from the
//! same libphonenumber metadata the crate ships (`shared/data/PhoneNumberMetadata.xml`, copied
//! from phonenumber 0.3.10+9.0.33; a test checks both agree on every example number).

use std::collections::HashMap;
use std::io::Cursor;
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex};

use phonenumber::metadata::{loader, Database};

/// Minified by build.rs from `shared/data/PhoneNumberMetadata.xml`.
const XML: &str = include_str!(concat!(env!("OUT_DIR"), "/PhoneNumberMetadata.xml"));

/// Where each territory sits in the XML, by calling code; and each region's calling code.
struct Index {
    by_code: HashMap<u16, Vec<Range<usize>>>,
    code_of_region: HashMap<String, u16>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| index(XML));

static DATABASES: LazyLock<Mutex<HashMap<u16, Arc<Database>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A scan for the `<territory …>` elements and two of their attributes: well under a
/// millisecond, against the crate's full load.
fn index(xml: &str) -> Index {
    let mut by_code: HashMap<u16, Vec<Range<usize>>> = HashMap::new();
    let mut code_of_region = HashMap::new();
    let mut from = 0;
    while let Some(at) = xml[from..].find("<territory ") {
        let start = from + at;
        let Some(len) = xml[start..].find("</territory>") else {
            break;
        };
        let end = start + len + "</territory>".len();
        let tag = &xml[start..start + xml[start..].find('>').unwrap_or(0)];
        if let (Some(id), Some(code)) = (
            attribute(tag, "id"),
            attribute(tag, "countryCode").and_then(|c| c.parse::<u16>().ok()),
        ) {
            by_code.entry(code).or_default().push(start..end);
            code_of_region.insert(id.to_string(), code);
        }
        from = end;
    }
    Index {
        by_code,
        code_of_region,
    }
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!(" {name}=\"");
    let at = tag.find(&needle)? + needle.len();
    let len = tag[at..].find('"')?;
    Some(&tag[at..at + len])
}

/// The database of one calling code's territories, built on first use.
pub(super) fn for_code(code: u16) -> Option<Arc<Database>> {
    let mut built = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(db) = built.get(&code) {
        return Some(db.clone());
    }
    let ranges = INDEX.by_code.get(&code)?;
    let mut fragment = String::from("<phoneNumberMetadata><territories>");
    for range in ranges {
        fragment.push_str(&XML[range.clone()]);
    }
    fragment.push_str("</territories></phoneNumberMetadata>");
    let db = database(&fragment)?;
    built.insert(code, db.clone());
    Some(db)
}

/// Every territory's database, for a number that names no calling code we can tell. Built
/// from the same XML, so the crate's own copy of the metadata is not linked in as well.
pub(super) fn all() -> Option<Arc<Database>> {
    static ALL: LazyLock<Option<Arc<Database>>> = LazyLock::new(|| database(XML));
    ALL.clone()
}

/// The database of the territories in `xml` (libphonenumber's format).
fn database(xml: &str) -> Option<Arc<Database>> {
    let meta = loader::load(Cursor::new(xml.as_bytes())).ok()?;
    Database::from(meta).ok().map(Arc::new)
}

/// The calling code of a region ("GB" → 44).
pub(super) fn code_of_region(region: &str) -> Option<u16> {
    INDEX.code_of_region.get(region).copied()
}

/// The calling code an international number starts with ("+44 20…" → 44). Calling codes are
/// prefix-free, so the first one to match is the only one.
pub(super) fn leading_code(international: &str) -> Option<u16> {
    let digits: String = international
        .strip_prefix('+')?
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .take_while(char::is_ascii_digit)
        .take(3)
        .collect();
    (1..=digits.len())
        .filter_map(|n| digits[..n].parse::<u16>().ok())
        .find(|code| INDEX.by_code.contains_key(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_territory_of_the_metadata_is_indexed() {
        let indexed: usize = INDEX.by_code.values().map(Vec::len).sum();
        assert_eq!(indexed, XML.matches("<territory ").count());
        assert_eq!(code_of_region("GB"), Some(44));
        assert_eq!(code_of_region("US"), Some(1));
        let mut gb_code: Vec<_> = INDEX
            .code_of_region
            .iter()
            .filter(|(_, c)| **c == 44)
            .collect();
        gb_code.sort();
        assert_eq!(gb_code.len(), 4, "GB, GG, IM and JE share +44: {gb_code:?}");
    }

    #[test]
    fn the_leading_calling_code_is_found_whatever_its_length() {
        assert_eq!(leading_code("+1 415 555 0123"), Some(1));
        assert_eq!(leading_code("+44 20 7946 0123"), Some(44));
        assert_eq!(leading_code("+353 1 234 5678"), Some(353));
        assert_eq!(leading_code("+(44) 20"), Some(44));
        assert_eq!(leading_code("+999 123"), None);
        assert_eq!(leading_code("020 7946 0123"), None);
    }
}
