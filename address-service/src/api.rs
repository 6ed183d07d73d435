//! The `/v1` API: countries, and validate / normalise / format an address.

use crate::AppState;
use crate::address::{self, Address, Field, Problem, Problems};
use crate::data::{Country, Labels, Subdivision};
use crate::error::{ApiJson, AppError, ErrorBody, check_field_lengths};
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A country in the list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CountrySummary {
    #[schema(example = "US")]
    pub code: String,
    #[schema(example = "UNITED STATES")]
    pub name: Option<String>,
    pub languages: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CountryList {
    pub countries: Vec<CountrySummary>,
}

/// A country's address rules.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CountryDetail {
    pub code: String,
    pub name: Option<String>,
    /// Default language of the subdivision names.
    pub language: Option<String>,
    pub languages: Vec<String>,
    /// `%N` name, `%O` company, `%A` street, `%D` city area, `%C` city, `%S` country area,
    /// `%Z` postal code, `%X` sorting code, `%n` new line.
    #[schema(example = "%N%n%O%n%A%n%C, %S %Z")]
    pub format: String,
    pub latin_format: String,
    /// The fields the format uses.
    pub fields: Vec<Field>,
    pub required: Vec<Field>,
    pub upper: Vec<Field>,
    pub labels: Labels,
    pub postal_code: PostalCodeView,
    pub subdivisions: Vec<SubdivisionView>,
    /// The subdivision tree in each other language.
    pub translations: BTreeMap<String, Vec<SubdivisionView>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PostalCodeView {
    pub pattern: Option<String>,
    pub examples: Vec<String>,
    pub prefix: Option<String>,
    pub lookup_url: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SubdivisionView {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latin_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latin_full_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iso_code: Option<String>,
    /// Postal codes here start with a match of this pattern.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code_pattern: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub postal_code_examples: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub subdivisions: Vec<SubdivisionView>,
}

impl SubdivisionView {
    fn of(s: &Subdivision) -> Self {
        SubdivisionView {
            key: s.key.clone(),
            name: s.name.clone(),
            latin_name: s.latin_name.clone(),
            latin_full_name: s.latin_full_name.clone(),
            iso_code: s.iso_code.clone(),
            postal_code_pattern: s.postal_code_pattern.clone(),
            postal_code_examples: s.postal_code_examples.clone(),
            subdivisions: s.subdivisions.iter().map(SubdivisionView::of).collect(),
        }
    }
}

impl CountryDetail {
    fn of(c: &Country) -> Self {
        let tree = |t: &[Subdivision]| t.iter().map(SubdivisionView::of).collect();
        CountryDetail {
            code: c.code.clone(),
            name: c.name.clone(),
            language: c.language.clone(),
            languages: c.languages.clone(),
            format: c.format.clone(),
            latin_format: c.latin_format.clone(),
            fields: c.allowed.iter().collect(),
            required: c.required.iter().collect(),
            upper: c.upper.iter().collect(),
            labels: c.labels.clone(),
            postal_code: PostalCodeView {
                pattern: c.postal_code.pattern.clone(),
                examples: c.postal_code.examples.clone(),
                prefix: c.postal_code.prefix.clone(),
                lookup_url: c.postal_code.lookup_url.clone(),
            },
            subdivisions: tree(&c.subdivisions),
            translations: c
                .translations
                .iter()
                .map(|(l, t)| (l.clone(), tree(t)))
                .collect(),
        }
    }
}

/// The outcome of validating an address.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct Validation {
    pub valid: bool,
    /// What is wrong, by field: `required` or `invalid`.
    #[schema(value_type = BTreeMap<String, Problem>)]
    pub errors: Problems,
    /// The normalised address, when valid.
    pub normalized: Option<Address>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormatRequest {
    pub address: Address,
    /// Use the country's Latin-script format and subdivision names.
    #[serde(default)]
    pub latin: bool,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct FormatResponse {
    /// The label, one entry per line, the country's name last.
    pub lines: Vec<String>,
}

/// Every country the service knows.
#[utoipa::path(get, path = "/v1/countries", tag = "countries",
    responses((status = 200, body = CountryList)))]
pub async fn list_countries(State(state): State<AppState>) -> Json<CountryList> {
    let countries = state
        .catalog
        .countries()
        .map(|c| CountrySummary {
            code: c.code.clone(),
            name: c.name.clone(),
            languages: c.languages.clone(),
        })
        .collect();
    Json(CountryList { countries })
}

/// One country's formats, required fields and subdivisions.
#[utoipa::path(get, path = "/v1/countries/{code}", tag = "countries",
    params(("code" = String, Path, description = "ISO 3166-1 alpha-2 code, any case")),
    responses((status = 200, body = CountryDetail), (status = 404, body = ErrorBody)))]
pub async fn get_country(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<CountryDetail>, AppError> {
    let country = state
        .catalog
        .country(&code.to_uppercase())
        .ok_or(AppError::UnknownCountry(code))?;
    Ok(Json(CountryDetail::of(country)))
}

/// Validates an address and returns it normalised when it is valid.
#[utoipa::path(post, path = "/v1/addresses/validate", tag = "addresses", request_body = Address,
    responses((status = 200, body = Validation), (status = 400, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn validate(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<Address>,
) -> Result<Json<Validation>, AppError> {
    check_field_lengths(&input)?;
    let result = normalize(&state, &input);
    Ok(Json(match result {
        Ok(normalized) => Validation {
            valid: true,
            errors: Problems::new(),
            normalized: Some(normalized),
        },
        Err(errors) => Validation {
            valid: false,
            errors,
            normalized: None,
        },
    }))
}

/// Normalises an address: subdivision names to keys, upper-case fields, unused fields cleared.
#[utoipa::path(post, path = "/v1/addresses/normalize", tag = "addresses", request_body = Address,
    responses((status = 200, body = Address), (status = 422, body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn normalize_address(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<Address>,
) -> Result<Json<Address>, AppError> {
    check_field_lengths(&input)?;
    normalize(&state, &input)
        .map(Json)
        .map_err(AppError::InvalidAddress)
}

/// Formats an address as the lines of a postal label (normalising it first).
#[utoipa::path(post, path = "/v1/addresses/format", tag = "addresses", request_body = FormatRequest,
    responses((status = 200, body = FormatResponse), (status = 422, body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn format_address(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<FormatRequest>,
) -> Result<Json<FormatResponse>, AppError> {
    check_field_lengths(&input.address)?;
    let normalized = normalize(&state, &input.address).map_err(AppError::InvalidAddress)?;
    let address = if input.latin {
        address::latinize(&state.catalog, &normalized)
    } else {
        normalized
    };
    let lines = address::format(&state.catalog, &address, input.latin)
        .map_err(|e| AppError::UnknownCountry(e.0))?;
    Ok(Json(FormatResponse { lines }))
}

/// Normalises and counts the outcome in `address_validations_total`.
fn normalize(state: &AppState, input: &Address) -> Result<Address, Problems> {
    let result = address::normalize(&state.catalog, input);
    // Any known code is two ASCII letters; an invalid country code is the only way to be
    // rejected for the country itself.
    let unknown = match &result {
        Ok(_) => false,
        Err(problems) => problems.get(&address::Field::CountryCode) == Some(&Problem::Invalid),
    };
    let country =
        (!unknown && !input.country_code.is_empty()).then_some(input.country_code.as_str());
    state.metrics.observe_validation(country, result.is_ok());
    result
}
