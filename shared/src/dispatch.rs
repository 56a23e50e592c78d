//! Passing a lead on to a partner provider: the business's areas and providers (from
//! business.toml) and the choice of one provider per lead. Pure: the store supplies today's
//! counts and the claim is made atomically there (see `store::dispatch`).

use serde::{Deserialize, Serialize};

use crate::booking::rules::{FieldError, ServiceDef};
use crate::phone::PhoneNumber;

/// A place the business (or its providers) works: a borough, a town, a postcode district.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    pub id: String,
    /// As people say it ("Islington").
    pub name: String,
    /// ISO 3166 alpha-2: a lead here only ever goes to a provider in this country.
    pub country: String,
    /// Other ways callers name it: postcode districts, neighbourhoods ("N1", "Highbury").
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// A partner who takes jobs the business passes on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub id: String,
    /// The only thing a caller is ever told about the provider.
    pub name: String,
    pub country: String,
    /// Where job notices go (SMS, and WhatsApp when `whatsapp` is set).
    pub phone: PhoneNumber,
    #[serde(default)]
    pub whatsapp: bool,
    /// Service categories taken (`category` of `[[services]]`).
    pub categories: Vec<String>,
    /// Area ids covered.
    pub areas: Vec<String>,
    /// Most leads passed to this provider per local day.
    pub daily_capacity: u32,
    /// For the business's records and the job notice; never said or sent to a caller.
    #[serde(default)]
    pub address: Option<String>,
}

fn fail(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Forgiving comparison of place names: case, spacing and punctuation do not matter.
fn norm(s: &str) -> String {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The area a caller named: by id, name or alias; by the district of a full postcode
/// ("N7 6AB" is in N7); or by the one area whose name or alias stands in what they said
/// ("Holloway Road" is in Holloway). Two areas named at once is no answer.
pub fn find_area<'a>(areas: &'a [Area], said: &str) -> Option<&'a Area> {
    let wanted = norm(said);
    if wanted.is_empty() {
        return None;
    }
    let names = |a: &'a Area| {
        std::iter::once(&a.id)
            .chain(std::iter::once(&a.name))
            .chain(a.aliases.iter())
            .map(|n| norm(n))
            .filter(|n| !n.is_empty())
    };
    let named = |phrase: &str| areas.iter().find(|a| names(a).any(|n| n == phrase));
    if let Some(area) = named(&wanted) {
        return Some(area);
    }
    if let Some(area) = outward_code(&wanted).and_then(|district| named(&district)) {
        return Some(area);
    }
    let words: Vec<&str> = wanted.split(' ').collect();
    let mut mentioned = areas.iter().filter(|a| {
        names(a).any(|n| {
            let phrase: Vec<&str> = n.split(' ').collect();
            words.windows(phrase.len()).any(|w| w == phrase.as_slice())
        })
    });
    match (mentioned.next(), mentioned.next()) {
        (Some(area), None) => Some(area),
        _ => None,
    }
}

/// The outward code (district) of the first full UK postcode in normalised text: "n7 6ab" and
/// "n76ab" give "n7", "ec1a 1bb" gives "ec1a".
fn outward_code(text: &str) -> Option<String> {
    let outward = |w: &str| {
        let b = w.as_bytes();
        let letters = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        (1..=2).contains(&letters)
            && (letters + 1..=letters + 2).contains(&b.len())
            && b[letters].is_ascii_digit()
            && b[letters + 1..].iter().all(|c| c.is_ascii_alphanumeric())
    };
    let inward = |w: &str| {
        let b = w.as_bytes();
        b.len() == 3 && b[0].is_ascii_digit() && b[1..].iter().all(|c| c.is_ascii_alphabetic())
    };
    let words: Vec<&str> = text.split(' ').collect();
    for (i, w) in words.iter().enumerate() {
        if outward(w) && words.get(i + 1).is_some_and(|next| inward(next)) {
            return Some(w.to_string());
        }
        if w.len() > 3 && w.is_char_boundary(w.len() - 3) {
            let (out, inw) = w.split_at(w.len() - 3);
            if outward(out) && inward(inw) {
                return Some(out.to_string());
            }
        }
    }
    None
}

/// Checks areas and providers against each other and the services. A provider may only cover
/// areas in its own country, so no configuration can send a lead abroad.
pub fn validate(
    areas: &[Area],
    providers: &[Provider],
    services: &[ServiceDef],
) -> Result<(), FieldError> {
    let mut ids = std::collections::BTreeSet::new();
    for (i, a) in areas.iter().enumerate() {
        let field = format!("areas[{i}]");
        if !crate::ids::is_safe_id(&a.id) || !ids.insert(a.id.as_str()) {
            return Err(fail(
                format!("{field}.id"),
                "must be unique: 1 to 64 letters, digits, '-' or '_'",
            ));
        }
        if a.name.trim().is_empty() {
            return Err(fail(format!("{field}.name"), "must not be empty"));
        }
        if !is_country(&a.country) {
            return Err(fail(
                format!("{field}.country"),
                "must be an ISO 3166 alpha-2 code such as \"GB\"",
            ));
        }
    }
    let categories: Vec<&str> = services
        .iter()
        .filter_map(|s| s.category.as_deref())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for (i, p) in providers.iter().enumerate() {
        let field = format!("providers[{i}]");
        if !crate::ids::is_safe_id(&p.id) || !seen.insert(p.id.as_str()) {
            return Err(fail(
                format!("{field}.id"),
                "must be unique: 1 to 64 letters, digits, '-' or '_'",
            ));
        }
        if p.name.trim().is_empty() {
            return Err(fail(format!("{field}.name"), "must not be empty"));
        }
        if !is_country(&p.country) {
            return Err(fail(
                format!("{field}.country"),
                "must be an ISO 3166 alpha-2 code such as \"GB\"",
            ));
        }
        if p.phone.region().as_deref() != Some(p.country.as_str()) {
            return Err(fail(
                format!("{field}.phone"),
                format!("is not a number in {}", p.country),
            ));
        }
        if p.daily_capacity == 0 {
            return Err(fail(
                format!("{field}.daily_capacity"),
                "0 takes no leads; remove the provider instead",
            ));
        }
        if p.categories.is_empty() {
            return Err(fail(format!("{field}.categories"), "list at least one"));
        }
        for (j, c) in p.categories.iter().enumerate() {
            if !categories.contains(&c.as_str()) {
                return Err(fail(
                    format!("{field}.categories[{j}]"),
                    format!("no service has category {c:?}"),
                ));
            }
        }
        if p.areas.is_empty() {
            return Err(fail(format!("{field}.areas"), "list at least one"));
        }
        for (j, id) in p.areas.iter().enumerate() {
            let Some(area) = areas.iter().find(|a| &a.id == id) else {
                return Err(fail(
                    format!("{field}.areas[{j}]"),
                    format!("no area with id {id:?}"),
                ));
            };
            if area.country != p.country {
                return Err(fail(
                    format!("{field}.areas[{j}]"),
                    format!(
                        "{id:?} is in {} but the provider is in {}: leads never cross countries",
                        area.country, p.country
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn is_country(c: &str) -> bool {
    c.len() == 2
        && c.bytes().all(|b| b.is_ascii_uppercase())
        && crate::phone::check_region(c).is_ok()
}

/// What the store knows about a provider today.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Load {
    /// Leads passed today (local day).
    pub today: u32,
    /// When the last lead was passed (RFC 3339), for rotation; `None` if never.
    pub last_at: Option<String>,
}

/// Providers that may take a lead of `category` in `area`, best first: same country as the area,
/// covering it, taking the category, with capacity left today; then fewest leads today, longest
/// since the last one, and id (a stable tie-break), so equals take turns.
pub fn candidates<'a>(
    providers: &'a [Provider],
    area: &Area,
    category: &str,
    load: impl Fn(&str) -> Load,
) -> Vec<&'a Provider> {
    let mut eligible: Vec<(&Provider, Load)> = providers
        .iter()
        .filter(|p| {
            p.country == area.country
                && p.areas.iter().any(|a| a == &area.id)
                && p.categories.iter().any(|c| c == category)
        })
        .map(|p| (p, load(&p.id)))
        .filter(|(p, l)| l.today < p.daily_capacity)
        .collect();
    eligible.sort_by(|(a, la), (b, lb)| {
        la.today
            .cmp(&lb.today)
            // Never dispatched sorts first ("" < any timestamp).
            .then_with(|| {
                la.last_at
                    .as_deref()
                    .unwrap_or("")
                    .cmp(lb.last_at.as_deref().unwrap_or(""))
            })
            .then_with(|| a.id.cmp(&b.id))
    });
    eligible.into_iter().map(|(p, _)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn area(id: &str, country: &str) -> Area {
        Area {
            id: id.into(),
            name: id.to_uppercase(),
            country: country.into(),
            aliases: vec![format!("{id}-alias")],
        }
    }

    fn provider(id: &str, country: &str, phone: &str, areas: &[&str], cap: u32) -> Provider {
        Provider {
            id: id.into(),
            name: format!("{id} Ltd"),
            country: country.into(),
            phone: PhoneNumber::parse(phone, None).unwrap(),
            whatsapp: false,
            categories: vec!["drainage".into()],
            areas: areas.iter().map(|a| a.to_string()).collect(),
            daily_capacity: cap,
            address: None,
        }
    }

    fn service() -> ServiceDef {
        ServiceDef {
            id: "blocked_drain".into(),
            name: "blocked drain".into(),
            duration_minutes: 60,
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            category: Some("drainage".into()),
        }
    }

    #[test]
    fn areas_are_found_by_id_name_or_alias() {
        let areas = [area("islington", "GB"), area("camden", "GB")];
        assert_eq!(find_area(&areas, "Islington").unwrap().id, "islington");
        assert_eq!(find_area(&areas, " CAMDEN-alias ").unwrap().id, "camden");
        assert!(find_area(&areas, "Paris").is_none());
        assert!(find_area(&areas, "  ").is_none());
    }

    fn london() -> Vec<Area> {
        let area = |id: &str, name: &str, aliases: &[&str]| Area {
            id: id.into(),
            name: name.into(),
            country: "GB".into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
        };
        vec![
            area(
                "islington",
                "Islington",
                &["N1", "N7", "Highbury", "Holloway"],
            ),
            area("camden", "Camden", &["NW1", "NW5", "Kentish Town"]),
            area("city", "City", &["EC1A"]),
        ]
    }

    #[test]
    fn a_full_postcode_is_in_its_district() {
        let areas = london();
        for said in ["N7 6AB", "n76ab", "N7  6AB", "nw5 1tl", "EC1A 1BB"] {
            assert!(find_area(&areas, said).is_some(), "{said}");
        }
        assert_eq!(find_area(&areas, "N7 6AB").unwrap().id, "islington");
        assert_eq!(find_area(&areas, "NW5 1TL").unwrap().id, "camden");
        // A district we do not cover, or one that only starts like ours, is not ours.
        assert!(find_area(&areas, "N17 6AB").is_none());
        assert!(find_area(&areas, "NW10 2AB").is_none());
    }

    #[test]
    fn a_place_named_in_an_address_is_found_unless_two_are() {
        let areas = london();
        assert_eq!(
            find_area(&areas, "12 Holloway Road").unwrap().id,
            "islington"
        );
        assert_eq!(
            find_area(&areas, "flat 2, Kentish Town").unwrap().id,
            "camden"
        );
        assert!(find_area(&areas, "between Camden and Islington").is_none());
        assert!(find_area(&areas, "Hollowayish").is_none());
    }

    #[test]
    fn a_provider_cannot_cover_an_area_abroad() {
        let areas = [area("islington", "GB"), area("dublin", "IE")];
        let ok = [provider("a", "GB", "+442079460010", &["islington"], 2)];
        assert!(validate(&areas, &ok, &[service()]).is_ok());
        let abroad = [provider("a", "GB", "+442079460010", &["dublin"], 2)];
        let e = validate(&areas, &abroad, &[service()]).unwrap_err();
        assert_eq!(e.field, "providers[0].areas[0]");
        let wrong_phone = [provider("a", "IE", "+442079460010", &["dublin"], 2)];
        let e = validate(&areas, &wrong_phone, &[service()]).unwrap_err();
        assert_eq!(e.field, "providers[0].phone");
    }

    #[test]
    fn equals_take_turns_and_full_providers_are_skipped() {
        let areas = [area("islington", "GB")];
        let providers = [
            provider("a", "GB", "+442079460010", &["islington"], 2),
            provider("b", "GB", "+442079460011", &["islington"], 2),
            provider("c", "GB", "+442079460012", &["camden"], 2),
        ];
        let mut loads: HashMap<&str, Load> = HashMap::new();
        let mut order = Vec::new();
        for i in 0..4 {
            let picked = candidates(&providers, &areas[0], "drainage", |id| {
                loads.get(id).cloned().unwrap_or_default()
            })
            .first()
            .map(|p| p.id.clone())
            .unwrap();
            let l = loads
                .entry(if picked == "a" { "a" } else { "b" })
                .or_default();
            l.today += 1;
            l.last_at = Some(format!("2026-11-23T10:0{i}:00Z"));
            order.push(picked);
        }
        assert_eq!(order, ["a", "b", "a", "b"]);
        // Both full: nobody is offered.
        assert!(candidates(&providers, &areas[0], "drainage", |id| {
            loads.get(id).cloned().unwrap_or_default()
        })
        .is_empty());
        // Wrong category: nobody.
        assert!(candidates(&providers, &areas[0], "heating", |_| Load::default()).is_empty());
    }

    #[test]
    fn a_lead_never_goes_to_a_provider_in_another_country() {
        // Even a provider misconfigured to list a foreign area id is never chosen.
        let dublin = area("dublin", "IE");
        let providers = [provider("gb", "GB", "+442079460010", &["dublin"], 5)];
        assert!(candidates(&providers, &dublin, "drainage", |_| Load::default()).is_empty());
    }
}
