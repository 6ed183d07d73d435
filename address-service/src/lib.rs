//! World Address: validates, normalises and formats postal addresses for every country.
//!
//! [`app`] builds the whole HTTP service from an [`AppState`]; `main` only adds a socket,
//! signals and optional PostgreSQL / Redis connections.

pub mod address;
pub mod api;
pub mod client;
pub mod config;
pub mod data;
pub mod database_url;
pub mod db;
pub mod dependency;
pub mod error;
pub mod healthcheck;
pub mod metrics;
pub mod ops;
pub mod ratelimit;
pub mod schema;
pub mod server;
pub mod tls;

use crate::error::AppError;
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
    /// PostgreSQL, when `DATABASE_URL` is set.
    pub db: Option<Arc<db::Db>>,
    pub audit: Option<db::AuditLog>,
    /// Redis rate limiting, when `REDIS_URL` is set.
    pub limiter: Option<Arc<ratelimit::RateLimiter>>,
    /// `/v1` needs a valid API key (`--require-api-key`).
    pub require_api_key: bool,
    /// Peers whose `X-Forwarded-For` names the client (`--trusted-proxies`).
    pub trusted_proxies: Arc<[client::Cidr]>,
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

/// Handlers' extractors (the JSON body) read the limits from the state.
impl axum::extract::FromRef<AppState> for Limits {
    fn from_ref(state: &AppState) -> Self {
        state.limits
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
            db: None,
            audit: None,
            limiter: None,
            require_api_key: false,
            trusted_proxies: Arc::new([]),
        }
    }
}

/// Whether the service should get traffic: false once shutdown starts, while a configured
/// dependency has not answered yet, and while the configured database does not answer.
#[derive(Debug)]
pub struct Readiness {
    shutting_down: AtomicBool,
    /// Configured dependencies that have not answered since start-up.
    waiting: std::sync::Mutex<std::collections::BTreeSet<dependency::Dependency>>,
    /// How long a database check is reused: probes from every kubelet and load balancer
    /// then cost the database at most one `SELECT 1` per period.
    database_ttl: Duration,
    /// The last database check: when, and whether it answered.
    database: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

/// A database check gives up after this long: a probe must answer quickly even when the
/// database hangs.
pub const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_millis(500);

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new(Duration::from_secs(2))
    }
}

impl Readiness {
    /// Database checks are reused for `database_ttl`.
    pub fn new(database_ttl: Duration) -> Self {
        Readiness {
            shutting_down: AtomicBool::new(false),
            waiting: std::sync::Mutex::default(),
            database_ttl,
            database: tokio::sync::Mutex::new(None),
        }
    }
    pub fn start_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// `dependency` is configured: not ready until it answers.
    pub fn expect(&self, dependency: dependency::Dependency) {
        self.waiting().insert(dependency);
    }
    /// `dependency` answered.
    pub fn connected(&self, dependency: dependency::Dependency) {
        self.waiting().remove(&dependency);
    }
    /// Configured dependencies that have not answered yet, in a stable order.
    pub fn waiting_for(&self) -> Vec<dependency::Dependency> {
        self.waiting().iter().copied().collect()
    }
    fn waiting(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<dependency::Dependency>> {
        // A set of enum values cannot be left half-changed by a panic.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `db` answers `SELECT 1` within [`DATABASE_CHECK_TIMEOUT`], asked at most once
    /// per TTL; concurrent callers wait for the one check in flight.
    pub async fn database_answers(&self, db: &db::Db) -> bool {
        let mut last = self.database.lock().await;
        if let Some((at, up)) = *last
            && at.elapsed() < self.database_ttl
        {
            return up;
        }
        let up = tokio::time::timeout(DATABASE_CHECK_TIMEOUT, db.ping())
            .await
            .unwrap_or(false);
        *last = Some((Instant::now(), up));
        up
    }
}

/// The whole service as a router: tests call it with `oneshot`, `main` serves it.
pub fn app(state: AppState) -> Router {
    let limits = state.limits;
    let mut v1 = Router::new()
        .route("/v1/countries", get(api::list_countries))
        .route("/v1/countries/{code}", get(api::get_country))
        .route("/v1/addresses/validate", post(api::validate))
        .route("/v1/addresses/normalize", post(api::normalize_address))
        .route("/v1/addresses/format", post(api::format_address));
    // Without keys, rate limit or audit the guard has nothing to do: leave the layer out.
    if state.require_api_key || state.limiter.is_some() || state.audit.is_some() {
        v1 = v1.route_layer(middleware::from_fn_with_state(state.clone(), guard));
    }
    let ops = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi));
    v1.merge(ops)
        .fallback(|req: Request| async move { AppError::NotFound(req.uri().path().to_owned()) })
        // One `layer` call for the whole stack: each call boxes every route once more, and
        // every request then clones each box.
        .layer(
            tower::ServiceBuilder::new()
                .layer(middleware::from_fn_with_state(state.clone(), outermost))
                .layer(TraceLayer::new_for_http())
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    limits.request_timeout,
                ))
                .layer(DefaultBodyLimit::max(limits.body_limit_bytes)),
        )
        .with_state(state)
}

/// Every request: JSON bodies for the errors of the router and tower layers, then
/// `http_requests_total` and `http_request_duration_seconds`. One middleware for both, since
/// each layer costs every request a boxed future.
async fn outermost(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = state.metrics.route(
        req.extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let method = req.method().clone();
    let response = json_errors(next.run(req).await);
    state
        .metrics
        .observe_request(&method, route, response.status().as_u16(), start.elapsed());
    response
}

/// `/v1` admission: API key (when required), rate limit (when Redis is configured), and an
/// audit record (when PostgreSQL is configured).
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = req.method().as_str().to_owned();
    let client = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(
            || "unknown".to_owned(),
            |c| client::client_ip(c.0.ip(), req.headers(), &state.trusted_proxies).to_string(),
        );
    let mut key_prefix = None;
    let presented = presented_key(req.headers()).map(str::to_owned);
    let response = match admit(
        &state,
        presented.as_deref(),
        &route,
        &client,
        &mut key_prefix,
    )
    .await
    {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    };
    if let Some(audit) = &state.audit {
        audit.record(db::AuditRecord {
            at: std::time::SystemTime::now(),
            key_prefix,
            client,
            method,
            route,
            status: i32::from(response.status().as_u16()),
            duration_ms: start.elapsed().as_secs_f64() * 1000.0,
        });
    }
    response
}

async fn admit(
    state: &AppState,
    presented: Option<&str>,
    route: &str,
    client: &str,
    key_prefix: &mut Option<String>,
) -> Result<(), AppError> {
    if state.require_api_key {
        let db = state.db.as_ref().ok_or(AppError::NotReady)?;
        let presented = presented.ok_or(AppError::Unauthorized)?;
        let key = db
            .verify_key(presented)
            .await
            .map_err(AppError::Internal)?
            .ok_or(AppError::Unauthorized)?;
        let scope = if route.starts_with("/v1/countries") {
            "countries"
        } else {
            "addresses"
        };
        *key_prefix = Some(key.prefix.clone());
        if !key.allows(scope) {
            return Err(AppError::Forbidden(scope));
        }
    }
    if let Some(limiter) = &state.limiter {
        let who = key_prefix
            .as_ref()
            .map_or_else(|| format!("ip:{client}"), |k| format!("key:{k}"));
        if let ratelimit::Decision::Deny { retry_after } = limiter.check(&who).await {
            return Err(AppError::RateLimited { retry_after });
        }
    }
    Ok(())
}

/// `Authorization: Bearer KEY` or `X-API-Key: KEY`.
fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// Gives the bodyless errors produced by the router and tower layers (405, request
/// timeout) the same JSON error body as handler errors.
fn json_errors(response: Response) -> Response {
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
