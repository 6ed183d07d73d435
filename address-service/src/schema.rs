//! The World Address YAML schema (version 1) as raw serde types; `data/README.md` documents it.
//!
//! Shared with `build.rs`, which checks every `data/*.yaml` against these types at compile
//! time and embeds them as JSON; `data` resolves them into the catalog the service uses.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountryFile {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub languages: Vec<String>,
    pub format: String,
    pub latin_format: String,
    /// Field names, e.g. `postal_code`.
    pub required: Vec<String>,
    pub upper: Vec<String>,
    pub labels: LabelsFile,
    pub postal_code: PostalCodeFile,
    pub subdivisions: Vec<SubdivisionFile>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub translations: BTreeMap<String, Vec<SubdivisionFile>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsFile {
    pub country_area: String,
    pub city: String,
    pub city_area: String,
    pub postal_code: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostalCodeFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_url: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubdivisionFile {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latin_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latin_full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code_pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub postal_code_examples: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subdivisions: Vec<SubdivisionFile>,
}
