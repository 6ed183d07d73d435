//! World Address: validates, normalises and formats postal addresses for every country.
//!
//! [`app`] builds the whole HTTP service from an [`AppState`]; `main` only adds a socket,
//! signals and optional PostgreSQL / Redis connections.

pub mod address;
pub mod api;
pub mod config;
pub mod data;
pub mod error;
pub mod healthcheck;
pub mod metrics;
pub mod ops;
pub mod schema;
pub mod server;

use crate::error::{AppError, BodyLimit};
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Everything a request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<data::Catalog>,
    pub metrics: Arc<metrics::Metrics>,
    pub readiness: Arc<Readiness>,
    pub limits: Limits,
}

/// Per-request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(10),
            body_limit_bytes: 65536,
        }
    }
}

impl AppState {
    /// A state with no database and no rate limiter.
    pub fn new(catalog: Arc<data::Catalog>, limits: Limits) -> Self {
        AppState {
            catalog,
            metrics: Arc::new(metrics::Metrics::new()),
            readiness: Arc::new(Readiness::default()),
            limits,
        }
    }
}

/// Whether the service should get traffic: false once shutdown starts.
#[derive(Debug, Default)]
pub struct Readiness {
    shutting_down: AtomicBool,
}

impl Readiness {
    pub fn start_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// The whole service as a router: tests call it with `oneshot`, `main` serves it.
pub fn app(state: AppState) -> Router {
    let limits = state.limits;
    let v1 = Router::new()
        .route("/v1/countries", get(api::list_countries))
        .route("/v1/countries/{code}", get(api::get_country))
        .route("/v1/addresses/validate", post(api::validate))
        .route("/v1/addresses/normalize", post(api::normalize_address))
        .route("/v1/addresses/format", post(api::format_address));
    let ops = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi));
    v1.merge(ops)
        .fallback(|req: Request| async move { AppError::NotFound(req.uri().path().to_owned()) })
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes))
        .layer(axum::Extension(BodyLimit(limits.body_limit_bytes)))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), track_metrics))
        .with_state(state)
}

/// Records `http_requests_total` and `http_request_duration_seconds` for every request.
async fn track_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    state
        .metrics
        .observe_request(&method, &route, response.status().as_u16(), start.elapsed());
    response
}

/// Gives the bodyless errors produced by the router and tower layers (405, request
/// timeout) the same JSON error body as handler errors.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => AppError::MethodNotAllowed,
        StatusCode::SERVICE_UNAVAILABLE => AppError::Timeout,
        StatusCode::NOT_FOUND => AppError::NotFound(String::new()),
        _ => return response,
    };
    let mut replaced = error.into_response();
    // Keep headers the layer set (e.g. `Allow` on 405).
    for (name, value) in response.headers() {
        replaced.headers_mut().entry(name).or_insert(value.clone());
    }
    replaced
}
