//! The embedded World Address YAML (`data/<CC>.yaml`), parsed and compiled once at start-up.
//!
//! The schema is documented in `data/README.md`. Loading resolves the raw files into a
//! [`Catalog`]: every postal-code pattern compiled (identical patterns share one regex), every
//! name lower-cased once for matching, and the fields each format uses worked out.

use crate::address::{Field, FieldSet};
use include_dir::{Dir, include_dir};
use regex_automata::meta::Regex;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

static DATA: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/data");

/// Why the embedded data could not be loaded; a build with bad data must not start.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data/{file}: {source}")]
    Parse {
        file: String,
        source: Box<serde_saphyr::Error>,
    },
    #[error("data/{file}: postal-code pattern {pattern:?} does not compile: {source}")]
    Pattern {
        file: String,
        pattern: String,
        source: Box<regex_automata::meta::BuildError>,
    },
    #[error("data/{file}: unknown language {language:?} in `languages` (no translation given)")]
    Language { file: String, language: String },
    #[error("data/{file}: the file holds country {code:?}")]
    Code { file: String, code: String },
    #[error("data/ZZ.yaml (the defaults) is missing")]
    NoDefaults,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountryFile {
    code: String,
    name: Option<String>,
    language: Option<String>,
    languages: Vec<String>,
    format: String,
    latin_format: String,
    required: Vec<Field>,
    upper: Vec<Field>,
    labels: Labels,
    postal_code: PostalCodeFile,
    subdivisions: Vec<SubdivisionFile>,
    #[serde(default)]
    translations: BTreeMap<String, Vec<SubdivisionFile>>,
}

/// What a country calls its areas and its postal code (`state`, `prefecture`, `zip`, …).
#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    pub country_area: String,
    pub city: String,
    pub city_area: String,
    pub postal_code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostalCodeFile {
    pattern: Option<String>,
    #[serde(default)]
    examples: Vec<String>,
    prefix: Option<String>,
    lookup_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubdivisionFile {
    key: String,
    name: Option<String>,
    latin_name: Option<String>,
    latin_full_name: Option<String>,
    iso_code: Option<String>,
    postal_code_pattern: Option<String>,
    #[serde(default)]
    postal_code_examples: Vec<String>,
    #[serde(default)]
    subdivisions: Vec<SubdivisionFile>,
}

/// Every country's rules, plus the defaults used when an address names no country.
#[derive(Debug)]
pub struct Catalog {
    countries: BTreeMap<String, Country>,
    defaults: Country,
}

/// One country's address rules.
#[derive(Debug)]
pub struct Country {
    pub code: String,
    pub name: Option<String>,
    pub language: Option<String>,
    pub languages: Vec<String>,
    pub format: String,
    pub latin_format: String,
    pub required: FieldSet,
    pub upper: FieldSet,
    /// The fields `format` mentions; normalisation clears the others.
    pub allowed: FieldSet,
    pub labels: Labels,
    pub postal_code: PostalCode,
    /// First-level subdivisions in the default language.
    pub subdivisions: Vec<Subdivision>,
    /// The same tree named in each other language of `languages`.
    pub translations: BTreeMap<String, Vec<Subdivision>>,
}

#[derive(Debug)]
pub struct PostalCode {
    pub pattern: Option<String>,
    /// `pattern` as the reference matches it: `re.match("^" + pattern + "$")`.
    pub matcher: Option<Arc<Regex>>,
    pub examples: Vec<String>,
    pub prefix: Option<String>,
    pub lookup_url: Option<String>,
}

#[derive(Debug)]
pub struct Subdivision {
    pub key: String,
    pub name: Option<String>,
    pub latin_name: Option<String>,
    pub latin_full_name: Option<String>,
    pub iso_code: Option<String>,
    pub postal_code_pattern: Option<String>,
    /// `postal_code_pattern` as a prefix matcher: `re.match("^" + pattern)`.
    pub postal_code_prefix: Option<Arc<Regex>>,
    pub postal_code_examples: Vec<String>,
    pub subdivisions: Vec<Subdivision>,
    /// Lower-cased key, name (or key) and Latin names, in the order the reference tries them.
    pub(crate) folded: Folded,
}

#[derive(Debug)]
pub(crate) struct Folded {
    pub key: String,
    pub name: String,
    pub latin_name: Option<String>,
    pub latin_full_name: Option<String>,
}

impl Catalog {
    /// Parses and compiles the embedded data.
    pub fn load() -> Result<Self, DataError> {
        let mut patterns = PatternCache::default();
        let mut countries = BTreeMap::new();
        let mut defaults = None;
        for file in DATA.files() {
            let path = file.path().to_string_lossy().into_owned();
            let Some(stem) = path.strip_suffix(".yaml") else {
                continue;
            };
            if stem == "SOURCE" {
                continue;
            }
            let text = file.contents_utf8().unwrap_or_default();
            let raw: CountryFile =
                serde_saphyr::from_str(text).map_err(|source| DataError::Parse {
                    file: path.clone(),
                    source: Box::new(source),
                })?;
            if raw.code != stem {
                return Err(DataError::Code {
                    file: path,
                    code: raw.code,
                });
            }
            let country = Country::resolve(raw, &path, &mut patterns)?;
            if stem == "ZZ" {
                defaults = Some(country);
            } else {
                countries.insert(country.code.clone(), country);
            }
        }
        Ok(Self {
            countries,
            defaults: defaults.ok_or(DataError::NoDefaults)?,
        })
    }

    /// The country for an ISO code as the reference accepts it (upper-cased first).
    pub fn country(&self, code: &str) -> Option<&Country> {
        self.countries.get(code)
    }

    pub fn countries(&self) -> impl Iterator<Item = &Country> {
        self.countries.values()
    }

    /// The rules for an address without a country code.
    pub fn defaults(&self) -> &Country {
        &self.defaults
    }
}

impl Country {
    fn resolve(
        raw: CountryFile,
        file: &str,
        patterns: &mut PatternCache,
    ) -> Result<Self, DataError> {
        let allowed = crate::address::format_fields(&raw.format);
        let matcher = match &raw.postal_code.pattern {
            Some(p) if allowed.contains(Field::PostalCode) => {
                Some(patterns.get(file, &full_match(p))?)
            }
            _ => None,
        };
        for language in &raw.languages {
            if Some(language) != raw.language.as_ref() && !raw.translations.contains_key(language) {
                return Err(DataError::Language {
                    file: file.to_owned(),
                    language: language.clone(),
                });
            }
        }
        let subdivisions = resolve_tree(raw.subdivisions, file, patterns)?;
        let mut translations = BTreeMap::new();
        for (language, tree) in raw.translations {
            translations.insert(language, resolve_tree(tree, file, patterns)?);
        }
        Ok(Self {
            code: raw.code,
            name: raw.name,
            language: raw.language,
            languages: raw.languages,
            format: raw.format,
            latin_format: raw.latin_format,
            required: raw.required.into_iter().collect(),
            upper: raw.upper.into_iter().collect(),
            allowed,
            labels: raw.labels,
            postal_code: PostalCode {
                pattern: raw.postal_code.pattern,
                matcher,
                examples: raw.postal_code.examples,
                prefix: raw.postal_code.prefix,
                lookup_url: raw.postal_code.lookup_url,
            },
            subdivisions,
            translations,
        })
    }

    /// The subdivision tree for one of `languages`; the default tree for the default language.
    pub fn tree(&self, language: Option<&str>) -> &[Subdivision] {
        match language {
            Some(l) if Some(l) != self.language.as_deref() => {
                self.translations.get(l).map_or(&[], Vec::as_slice)
            }
            _ => &self.subdivisions,
        }
    }
}

fn resolve_tree(
    raw: Vec<SubdivisionFile>,
    file: &str,
    patterns: &mut PatternCache,
) -> Result<Vec<Subdivision>, DataError> {
    raw.into_iter()
        .map(|s| {
            let postal_code_prefix = match &s.postal_code_pattern {
                Some(p) => Some(patterns.get(file, &prefix_match(p))?),
                None => None,
            };
            let folded = Folded {
                key: s.key.to_lowercase(),
                name: s.name.as_deref().unwrap_or(&s.key).to_lowercase(),
                latin_name: s.latin_name.as_deref().map(str::to_lowercase),
                latin_full_name: s.latin_full_name.as_deref().map(str::to_lowercase),
            };
            Ok(Subdivision {
                subdivisions: resolve_tree(s.subdivisions, file, patterns)?,
                key: s.key,
                name: s.name,
                latin_name: s.latin_name,
                latin_full_name: s.latin_full_name,
                iso_code: s.iso_code,
                postal_code_pattern: s.postal_code_pattern,
                postal_code_prefix,
                postal_code_examples: s.postal_code_examples,
                folded,
            })
        })
        .collect()
}

/// Compiles each distinct pattern once; many subdivisions share the same prefix pattern.
#[derive(Default)]
struct PatternCache(HashMap<String, Arc<Regex>>);

impl PatternCache {
    fn get(&mut self, file: &str, pattern: &str) -> Result<Arc<Regex>, DataError> {
        if let Some(re) = self.0.get(pattern) {
            return Ok(re.clone());
        }
        let re = compile(pattern).map_err(|source| DataError::Pattern {
            file: file.to_owned(),
            pattern: pattern.to_owned(),
            source,
        })?;
        let re = Arc::new(re);
        self.0.insert(pattern.to_owned(), re.clone());
        Ok(re)
    }
}

/// Compiles a postal-code pattern for `is_match` only.
///
/// Postal codes are a few characters long, so the PikeVM and the bounded backtracker are
/// plenty fast; leaving out the DFA engines keeps ~2,000 compiled patterns in a few MB.
pub(crate) fn compile(pattern: &str) -> Result<Regex, Box<regex_automata::meta::BuildError>> {
    let config = Regex::config()
        .hybrid(false)
        .dfa(false)
        .onepass(false)
        .which_captures(regex_automata::nfa::thompson::WhichCaptures::None);
    Regex::builder().configure(config).build(pattern).map_err(Box::new)
}

/// Python's `re.match("^" + p + "$", s)` as a Rust regex.
///
/// `re.match` anchors at the start only, and Python's `$` also matches before a final newline;
/// the whole expression is wrapped so a top-level alternation in `p` keeps Python's precedence.
pub(crate) fn full_match(p: &str) -> String {
    format!(r"\A(?:^{}{})", python_dollars(p), PY_DOLLAR)
}

/// Python's `re.match("^" + p, s)` as a Rust regex.
pub(crate) fn prefix_match(p: &str) -> String {
    format!(r"\A(?:^{})", python_dollars(p))
}

const PY_DOLLAR: &str = r"(?:\n?\z)";

/// Rewrites each `$` outside a character class to Python's meaning.
fn python_dollars(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut chars = p.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '$' if !in_class => out.push_str(PY_DOLLAR),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_loads_and_every_pattern_compiles() {
        let catalog = Catalog::load().expect("embedded data loads");
        assert_eq!(catalog.countries().count(), 252);
        let us = catalog.country("US").expect("US");
        assert_eq!(us.name.as_deref(), Some("UNITED STATES"));
        assert!(us.required.contains(Field::PostalCode));
        assert_eq!(catalog.country("CA").expect("CA").translations.len(), 1);
        assert!(
            catalog.country("ZZ").is_none(),
            "ZZ is the defaults, not a country"
        );
    }

    #[test]
    fn patterns_follow_python_anchoring() {
        let gb = compile(&full_match("GIR ?0AA|BFPO ?\\d{1,4}")).expect("compiles");
        assert!(
            gb.is_match("GIR 0AA trailing"),
            "first branch is only anchored at the start"
        );
        assert!(
            gb.is_match("BFPO 12\n"),
            "Python's $ matches before a final newline"
        );
        assert!(!gb.is_match("xBFPO 12"));
        let prefix = compile(&prefix_match("9[0-5]|96[01]")).expect("compiles");
        assert!(prefix.is_match("96100") && !prefix.is_match("89610"));
        assert_eq!(
            python_dollars("(?:$|\\b)[$]\\$"),
            "(?:(?:\\n?\\z)|\\b)[$]\\$"
        );
    }
}
