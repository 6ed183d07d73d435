//! The embedded World Address YAML (`data/<CC>.yaml`), parsed and compiled once at start-up.
//!
//! The schema is documented in `data/README.md`. Loading resolves the raw files into a
//! [`Catalog`]: every postal-code pattern compiled (identical patterns share one regex), every
//! name lower-cased once for matching, and the fields each format uses worked out.

use crate::address::{Field, FieldSet};
use regex_automata::nfa::thompson::{
    self, BuildError,
    backtrack::{self, BoundedBacktracker},
    pikevm::PikeVM,
};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// `data/*.yaml`, checked against the schema and turned into one JSON map by `build.rs`.
static DATA: &str = include_str!(concat!(env!("OUT_DIR"), "/world-address.json"));

/// Why the embedded data could not be loaded; a build with bad data must not start.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("embedded data: {0}")]
    Parse(String),
    #[error("data/{file}: unknown field name {name:?}")]
    Field { file: String, name: String },
    #[error("data/{file}: postal-code pattern {pattern:?} does not compile: {source}")]
    Pattern {
        file: String,
        pattern: String,
        source: Box<BuildError>,
    },
    #[error("data/{file}: unknown language {language:?} in `languages` (no translation given)")]
    Language { file: String, language: String },
    #[error("data/{file}: the file holds country {code:?}")]
    Code { file: String, code: String },
    #[error("data/ZZ.yaml (the defaults) is missing")]
    NoDefaults,
}

/// What a country calls its areas and its postal code (`state`, `prefecture`, `zip`, …).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Labels {
    pub country_area: String,
    pub city: String,
    pub city_area: String,
    pub postal_code: String,
}

/// A country as embedded: the schema's `CountryFile`, with subdivisions read straight into
/// their final type so loading leaves no intermediate copies behind.
#[derive(Deserialize)]
struct CountryJson {
    code: String,
    name: Option<String>,
    language: Option<String>,
    languages: Vec<String>,
    format: String,
    latin_format: String,
    required: Vec<String>,
    upper: Vec<String>,
    labels: crate::schema::LabelsFile,
    postal_code: crate::schema::PostalCodeFile,
    subdivisions: Vec<Subdivision>,
    #[serde(default)]
    translations: BTreeMap<String, Vec<Subdivision>>,
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
    /// `subdivisions` and each of `translations` by name.
    tree_index: ChoiceIndex,
    translation_index: BTreeMap<String, ChoiceIndex>,
}

/// One list of subdivisions to match an address's value against, with its index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Choices<'c> {
    pub(crate) list: &'c [Subdivision],
    pub(crate) index: &'c ChoiceIndex,
}

/// Where each lower-cased name of a list of subdivisions is found: a validation looks up a
/// value instead of comparing it with every entry (the reference's order of preference is
/// kept by the positions, which ascend).
#[derive(Debug, Default)]
pub(crate) struct ChoiceIndex {
    /// Positions whose lower-cased key or name (the key without a name) is the string.
    names: HashMap<Box<str>, Positions>,
    /// Positions whose lower-cased Latin name is the string.
    latin_names: HashMap<Box<str>, Positions>,
    /// Positions whose lower-cased full Latin name is the string.
    latin_full_names: HashMap<Box<str>, Positions>,
    /// The first position of each key, as it is written.
    keys: HashMap<Box<str>, usize>,
}

/// Ascending positions in a list; nearly every name is found at one only, which then needs
/// no allocation of its own.
#[derive(Debug)]
struct Positions {
    first: usize,
    more: Vec<usize>,
}

impl Positions {
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.first).chain(self.more.iter().copied())
    }
}

impl ChoiceIndex {
    fn new(list: &[Subdivision]) -> Self {
        fn add(map: &mut HashMap<Box<str>, Positions>, name: &str, position: usize) {
            match map.get_mut(name) {
                Some(positions) => {
                    if positions.more.last().copied().unwrap_or(positions.first) != position {
                        positions.more.push(position);
                    }
                }
                None => {
                    map.insert(
                        name.into(),
                        Positions {
                            first: position,
                            more: Vec::new(),
                        },
                    );
                }
            }
        }
        let mut index = Self::default();
        for (position, s) in list.iter().enumerate() {
            add(&mut index.names, s.folded_key(), position);
            add(&mut index.names, s.folded_name(), position);
            if let Some(name) = s.folded_latin_name() {
                add(&mut index.latin_names, name, position);
            }
            if let Some(name) = s.folded_latin_full_name() {
                add(&mut index.latin_full_names, name, position);
            }
            index.keys.entry(s.key.as_str().into()).or_insert(position);
        }
        for map in [
            &mut index.names,
            &mut index.latin_names,
            &mut index.latin_full_names,
        ] {
            map.shrink_to_fit();
        }
        index.keys.shrink_to_fit();
        index
    }

    /// Where `folded` is found as each kind of name, in the reference's order of preference.
    fn found(&self, folded: &str) -> impl Iterator<Item = &Positions> {
        [&self.names, &self.latin_names, &self.latin_full_names]
            .into_iter()
            .filter_map(move |map| map.get(folded))
    }

    /// The first position named `folded` by key or name, else by Latin name, else by full
    /// Latin name (the reference's `_match_choices` over one list).
    pub(crate) fn first_named(&self, folded: &str) -> Option<usize> {
        self.found(folded).next().map(|p| p.first)
    }

    /// Every position named `folded` by any of its names, ascending.
    pub(crate) fn all_named(&self, folded: &str) -> Vec<usize> {
        let mut positions: Vec<usize> = self.found(folded).flat_map(Positions::iter).collect();
        positions.sort_unstable();
        positions.dedup();
        positions
    }

    /// The first position of `key`.
    pub(crate) fn position_of_key(&self, key: &str) -> Option<usize> {
        self.keys.get(key).copied()
    }
}

/// The index of a list that is not there (a language without a translated tree).
static NO_CHOICES: std::sync::LazyLock<ChoiceIndex> =
    std::sync::LazyLock::new(ChoiceIndex::default);

#[derive(Debug)]
pub struct PostalCode {
    pub pattern: Option<String>,
    /// `pattern` as the reference matches it: `re.match("^" + pattern + "$")`.
    pub matcher: Option<Arc<Pattern>>,
    pub examples: Vec<String>,
    pub prefix: Option<String>,
    pub lookup_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Subdivision {
    pub key: String,
    pub name: Option<String>,
    pub latin_name: Option<String>,
    pub latin_full_name: Option<String>,
    pub iso_code: Option<String>,
    pub postal_code_pattern: Option<String>,
    /// `postal_code_pattern` as a prefix matcher: `re.match("^" + pattern)`.
    #[serde(skip)]
    pub postal_code_prefix: Option<Arc<Pattern>>,
    #[serde(default)]
    pub postal_code_examples: Vec<String>,
    #[serde(default)]
    pub subdivisions: Vec<Subdivision>,
    /// Lower-cased key, name (or key) and Latin names, in the order the reference tries them.
    #[serde(skip)]
    pub(crate) folded: Folded,
    /// `subdivisions` by name, for matching an address against them (none without any:
    /// most subdivisions have none, and an empty index still takes room).
    #[serde(skip)]
    children: Option<Box<ChoiceIndex>>,
}

#[derive(Debug, Default)]
pub(crate) struct Folded {
    /// Each lower-cased name, stored only where lower-casing changes it.
    key: Option<Box<str>>,
    name: Option<Box<str>>,
    latin_name: Option<Box<str>>,
    latin_full_name: Option<Box<str>>,
}

impl Subdivision {
    /// The subdivisions below this one, with their index.
    pub(crate) fn children(&self) -> Choices<'_> {
        Choices {
            list: &self.subdivisions,
            index: self.children.as_deref().unwrap_or(&NO_CHOICES),
        }
    }
    /// The key, lower-cased.
    pub(crate) fn folded_key(&self) -> &str {
        self.folded.key.as_deref().unwrap_or(&self.key)
    }
    /// The name (or, without one, the key), lower-cased.
    pub(crate) fn folded_name(&self) -> &str {
        match &self.name {
            Some(n) => self.folded.name.as_deref().unwrap_or(n),
            None => self.folded_key(),
        }
    }
    pub(crate) fn folded_latin_name(&self) -> Option<&str> {
        self.folded
            .latin_name
            .as_deref()
            .or(self.latin_name.as_deref())
    }
    pub(crate) fn folded_latin_full_name(&self) -> Option<&str> {
        self.folded
            .latin_full_name
            .as_deref()
            .or(self.latin_full_name.as_deref())
    }
}

impl Catalog {
    /// Parses and compiles the embedded data.
    pub fn load() -> Result<Self, DataError> {
        let files: BTreeMap<String, CountryJson> =
            serde_json::from_str(DATA).map_err(|e| DataError::Parse(e.to_string()))?;
        let mut patterns = PatternCache::default();
        let mut countries = BTreeMap::new();
        let mut defaults = None;
        for (stem, raw) in files {
            let path = format!("{stem}.yaml");
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
        mut raw: CountryJson,
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
        raw.subdivisions.shrink_to_fit();
        let tree_index = prepare_tree(&mut raw.subdivisions, file, patterns)?;
        let mut translation_index = BTreeMap::new();
        for (language, tree) in &mut raw.translations {
            translation_index.insert(language.clone(), prepare_tree(tree, file, patterns)?);
        }
        Ok(Self {
            code: raw.code,
            name: raw.name,
            language: raw.language,
            languages: raw.languages,
            format: raw.format,
            latin_format: raw.latin_format,
            required: fields(&raw.required, file)?,
            upper: fields(&raw.upper, file)?,
            allowed,
            labels: Labels {
                country_area: raw.labels.country_area,
                city: raw.labels.city,
                city_area: raw.labels.city_area,
                postal_code: raw.labels.postal_code,
            },
            postal_code: PostalCode {
                pattern: raw.postal_code.pattern,
                matcher,
                examples: raw.postal_code.examples,
                prefix: raw.postal_code.prefix,
                lookup_url: raw.postal_code.lookup_url,
            },
            subdivisions: raw.subdivisions,
            translations: raw.translations,
            tree_index,
            translation_index,
        })
    }

    /// The subdivision tree for one of `languages`; the default tree for the default language.
    pub fn tree(&self, language: Option<&str>) -> &[Subdivision] {
        self.choices(language).list
    }

    /// [`Self::tree`] with its index.
    pub(crate) fn choices(&self, language: Option<&str>) -> Choices<'_> {
        match language {
            Some(l) if Some(l) != self.language.as_deref() => {
                match (self.translations.get(l), self.translation_index.get(l)) {
                    (Some(list), Some(index)) => Choices { list, index },
                    _ => Choices {
                        list: &[],
                        index: &NO_CHOICES,
                    },
                }
            }
            _ => Choices {
                list: &self.subdivisions,
                index: &self.tree_index,
            },
        }
    }
}

fn fields(names: &[String], file: &str) -> Result<FieldSet, DataError> {
    names
        .iter()
        .map(|n| {
            Field::from_name(n).ok_or_else(|| DataError::Field {
                file: file.to_owned(),
                name: n.clone(),
            })
        })
        .collect()
}

/// Compiles each subdivision's postal prefix and folds its names for matching, in place;
/// returns the tree's index.
fn prepare_tree(
    tree: &mut [Subdivision],
    file: &str,
    patterns: &mut PatternCache,
) -> Result<ChoiceIndex, DataError> {
    fn fold(s: &str) -> Option<Box<str>> {
        let lower = s.to_lowercase();
        (lower != s).then(|| lower.into_boxed_str())
    }
    for s in tree.iter_mut() {
        if let Some(p) = &s.postal_code_pattern {
            s.postal_code_prefix = Some(patterns.get(file, &prefix_match(p))?);
        }
        s.folded = Folded {
            key: fold(&s.key),
            name: s.name.as_deref().and_then(fold),
            latin_name: s.latin_name.as_deref().and_then(fold),
            latin_full_name: s.latin_full_name.as_deref().and_then(fold),
        };
        s.subdivisions.shrink_to_fit();
        s.postal_code_examples.shrink_to_fit();
        let children = prepare_tree(&mut s.subdivisions, file, patterns)?;
        s.children = (!s.subdivisions.is_empty()).then(|| Box::new(children));
    }
    Ok(ChoiceIndex::new(tree))
}

/// `list` made ready for matching, with its index, as the catalog prepares each tree.
#[cfg(test)]
pub(crate) fn prepared(mut list: Vec<Subdivision>) -> (Vec<Subdivision>, ChoiceIndex) {
    let index =
        prepare_tree(&mut list, "test", &mut PatternCache::default()).expect("a plain list");
    (list, index)
}

/// Compiles each distinct pattern once; many subdivisions share the same prefix pattern.
#[derive(Default)]
struct PatternCache(HashMap<String, Arc<Pattern>>);

impl PatternCache {
    fn get(&mut self, file: &str, pattern: &str) -> Result<Arc<Pattern>, DataError> {
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

/// A compiled postal-code pattern, for `is_match` only.
///
/// Postal codes are a few characters long, so NFA engines (no DFAs, no prefilters) are fast
/// enough and keep ~2,000 compiled patterns in about 2 MB instead of the 9 MB of full regexes.
///
/// Matching runs a bounded backtracker over the same NFA (faster than the PikeVM on inputs this
/// short); the PikeVM takes inputs too long for the backtracker's bound. Search caches are
/// reused rather than allocated per call: a pattern keeps the few that concurrent requests
/// needed (at most [`KEPT_CACHES`]); an unused pattern holds none.
#[derive(Debug)]
pub struct Pattern {
    vm: PikeVM,
    backtracker: BoundedBacktracker,
    caches: Mutex<Vec<backtrack::Cache>>,
}

/// Search caches a pattern keeps for reuse; more concurrent searches allocate their own.
const KEPT_CACHES: usize = 4;

impl Pattern {
    pub fn is_match(&self, haystack: &str) -> bool {
        let reused = lock(&self.caches).pop();
        let mut cache = reused.unwrap_or_else(|| self.backtracker.create_cache());
        let matched = self.backtracker.try_is_match(&mut cache, haystack);
        let mut caches = lock(&self.caches);
        if caches.len() < KEPT_CACHES {
            caches.push(cache);
        }
        drop(caches);
        // Err: longer than the backtracker's bound.
        matched.unwrap_or_else(|_| self.vm.is_match(&mut self.vm.create_cache(), haystack))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A cache left behind by a panicking search is reset by the next search.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn compile(pattern: &str) -> Result<Pattern, Box<BuildError>> {
    let config = thompson::Config::new().which_captures(thompson::WhichCaptures::None);
    let nfa = thompson::Compiler::new()
        .configure(config)
        .build(pattern)
        .map_err(Box::new)?;
    let vm = PikeVM::new_from_nfa(nfa.clone()).map_err(Box::new)?;
    let backtracker = BoundedBacktracker::new_from_nfa(nfa).map_err(Box::new)?;
    Ok(Pattern {
        vm,
        backtracker,
        caches: Mutex::default(),
    })
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
    #[test]
    fn inputs_beyond_the_backtrackers_bound_are_matched_too() {
        let prefix = compile(&prefix_match("9[0-5]|96[01]")).expect("compiles");
        let exact = compile(&full_match("\\d{5}")).expect("compiles");
        // Far longer than the backtracker takes for these NFAs: the PikeVM answers.
        let long = format!("90{}", "9".repeat(4 << 20));
        assert!(
            prefix.backtracker.max_haystack_len() < long.len(),
            "the input exercises the fallback"
        );
        assert!(prefix.is_match(&long));
        assert!(!exact.is_match(&long));
        assert!(!prefix.is_match(&format!("8{long}")));
        // And the reused caches still answer short inputs right afterwards.
        assert!(exact.is_match("12345") && !exact.is_match("1234"));
    }
}
