//! Operational endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document.

use crate::AppState;
use crate::api;
use crate::dependency::Dependency;
use crate::error::{ErrorBody, ErrorDetail};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::LazyLock;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "World Address", description = "Validates, normalises and formats postal addresses for every country."),
    paths(
        api::list_countries, api::get_country, api::validate, api::normalize_address, api::format_address,
        healthz, readyz, metrics, openapi
    ),
    components(schemas(ErrorBody, ErrorDetail, crate::address::Address, crate::address::Field, crate::address::Problem)),
    tags((name = "countries"), (name = "addresses"), (name = "operations"))
)]
pub struct ApiDoc;

static OPENAPI_JSON: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
});

#[derive(Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok`, `shutting_down`, `no_data`, `database_unavailable` or `redis_unavailable`.
    pub status: &'static str,
    /// Configured dependencies that have not answered since start-up (`postgres`, `redis`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<&'static str>,
}

impl Status {
    fn of(status: &'static str) -> Self {
        Status {
            status,
            waiting_for: Vec::new(),
        }
    }
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Status)))]
pub async fn healthz() -> Json<Status> {
    Json(Status::of("ok"))
}

/// Readiness: data loaded, not shutting down, every configured dependency has answered since
/// start-up (`waiting_for` names those that have not), and the database (if configured)
/// answers within 500 ms (checked at most every 2 s, whatever the probe rate).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Status), (status = 503, body = Status)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let not_ready =
        |status| (StatusCode::SERVICE_UNAVAILABLE, Json(Status::of(status))).into_response();
    if state.readiness.is_shutting_down() {
        return not_ready("shutting_down");
    }
    if state.catalog.countries().next().is_none() {
        return not_ready("no_data");
    }
    let waiting = state.readiness.waiting_for();
    if let Some(first) = waiting.first() {
        let status = match first {
            Dependency::Postgres => "database_unavailable",
            Dependency::Redis => "redis_unavailable",
        };
        let body = Status {
            status,
            waiting_for: waiting.iter().map(|d| d.label()).collect(),
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    if let Some(db) = &state.db
        && !state.readiness.database_answers(db).await
    {
        return not_ready("database_unavailable");
    }
    Json(Status::of("ok")).into_response()
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = state.metrics.render();
    // The alert rules watch the configured dependencies through this gauge.
    if state.db.is_some() || state.limiter.is_some() {
        body.push_str("# HELP address_service_dependency_up Whether a configured dependency answers (1) or not (0).\n# TYPE address_service_dependency_up gauge\n");
    }
    if let Some(db) = &state.db {
        let up = u8::from(state.readiness.database_answers(db).await);
        body.push_str(&format!(
            "address_service_dependency_up{{dependency=\"postgres\"}} {up}\n"
        ));
    }
    if let Some(limiter) = &state.limiter {
        let up = u8::from(limiter.is_available());
        body.push_str(&format!(
            "address_service_dependency_up{{dependency=\"redis\"}} {up}\n"
        ));
    }
    if let Some(audit) = &state.audit {
        let c = audit.counters();
        body.push_str(&format!(
            "# HELP address_service_audit_records_total Audit records written to PostgreSQL, or dropped at a bound.\n# TYPE address_service_audit_records_total counter\naddress_service_audit_records_total{{outcome=\"written\"}} {}\naddress_service_audit_records_total{{outcome=\"dropped\"}} {}\n# HELP address_service_audit_pending Audit records waiting to be written (retried while PostgreSQL is away).\n# TYPE address_service_audit_pending gauge\naddress_service_audit_pending {}\n",
            c.written(),
            c.dropped(),
            c.pending()
        ));
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI_JSON.as_str(),
    )
        .into_response()
}
