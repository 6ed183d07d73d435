//! The smoke engine against small axum servers on 127.0.0.1: a service double that answers
//! what address-service answers, and a proxy double that behaves like the rendered nginx
//! (security headers, 429 past the burst, `/metrics` hidden). No infrastructure needed.

use axum::Router;
use axum::extract::{Json, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use wactl::config::Environment;
use wactl::config::model::SmokeCheck;
use wactl::smoke::{Outcome, SmokeOptions, SmokeReport};

fn env_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("environments")
}

fn environment(name: &str) -> Environment {
    wactl::config::load(&env_dir(), name).expect("environment loads")
}

#[derive(Clone, Default)]
struct Double {
    /// `/readyz` answers 503 this many times before it answers 200.
    unready_for: usize,
    readyz_calls: Arc<AtomicUsize>,
    /// Answer `validate` for DE as invalid (a regression the suite must catch).
    break_de: bool,
    /// Requests through the proxy double; past `burst` they get 429.
    proxied: Arc<AtomicUsize>,
    burst: usize,
}

async fn readyz(State(d): State<Double>) -> Response {
    if d.readyz_calls.fetch_add(1, Ordering::SeqCst) < d.unready_for {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "starting"})),
        )
            .into_response()
    } else {
        Json(json!({"status": "ok"})).into_response()
    }
}

async fn validate(State(d): State<Double>, Json(a): Json<Value>) -> Json<Value> {
    let country = a["country_code"].as_str().unwrap_or("").to_uppercase();
    Json(match country.as_str() {
        "US" if a["city"].is_string() => json!({"valid": true, "errors": {},
            "normalized": {"country_code": "US", "country_area": "CA", "city": "MOUNTAIN VIEW"}}),
        "US" => {
            json!({"valid": false, "errors": {"city": "required", "postal_code": "invalid"}, "normalized": null})
        }
        "DE" if !d.break_de => {
            json!({"valid": true, "errors": {}, "normalized": {"country_code": "DE", "city": "Berlin", "postal_code": "10117"}})
        }
        _ => json!({"valid": false, "errors": {"postal_code": "invalid"}, "normalized": null}),
    })
}

async fn format(Json(r): Json<Value>) -> Json<Value> {
    Json(if r["address"]["country_code"] == "KR" {
        json!({"lines": ["테헤란로 1", "Gangnam-gu", "Seoul", "06236", "SOUTH KOREA"]})
    } else {
        json!({"lines": ["Jane Doe", "1600 Amphitheatre Pkwy", "MOUNTAIN VIEW, CA 94043", "UNITED STATES"]})
    })
}

async fn metrics() -> &'static str {
    "# TYPE http_requests_total counter\n\
     http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1\n\
     http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 1\n\
     address_validations_total{country=\"US\",result=\"valid\"} 1\n\
     process_resident_memory_bytes 1000\n\
     process_start_time_seconds 1700000000\n"
}

fn service(double: Double) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/v1/countries/{code}",
            get(|| async { Json(json!({"code": "US"})) }),
        )
        .route("/v1/addresses/validate", post(validate))
        .route("/v1/addresses/format", post(format))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "late"
            }),
        )
        .with_state(double)
}

/// What the rendered nginx does in front of the service.
async fn proxy(State(d): State<Double>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/metrics" {
        return StatusCode::NOT_FOUND.into_response();
    }
    if request.uri().path() != "/healthz" && d.proxied.fetch_add(1, Ordering::SeqCst) >= d.burst {
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in wactl::smoke::suite::SECURITY_HEADERS {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    response
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn options(deadline: Duration) -> SmokeOptions {
    SmokeOptions {
        deadline,
        request_timeout: Duration::from_millis(500),
        through_nginx: false,
        metrics_url: None,
    }
}

fn result<'a>(report: &'a SmokeReport, name: &str) -> &'a wactl::smoke::CheckResult {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#?}"))
}

#[tokio::test]
async fn a_healthy_service_passes_directly() {
    let url = serve(service(Double::default())).await;
    let report =
        wactl::smoke::run(&environment("dev"), &url, &options(Duration::from_secs(5))).await;
    assert!(report.passed, "{report:#?}");
    assert_eq!(result(&report, "metrics").outcome, Outcome::Passed);
    assert!(report.checks.iter().all(|c| c.name != "rate-limit"));
}

#[tokio::test]
async fn through_the_proxy_headers_and_rate_limit_are_checked() {
    let env = environment("local");
    let double = Double {
        burst: 30,
        ..Double::default()
    };
    let direct = serve(service(double.clone())).await;
    let proxied =
        serve(service(double.clone()).layer(middleware::from_fn_with_state(double.clone(), proxy)))
            .await;
    let mut options = options(Duration::from_secs(5));
    options.through_nginx = true;
    options.metrics_url = Some(direct.clone());
    let report = wactl::smoke::run(&env, &proxied, &options).await;
    assert!(report.passed, "{report:#?}");
    for name in [
        "security-headers",
        "metrics-hidden",
        "rate-limit",
        "metrics",
    ] {
        assert_eq!(result(&report, name).outcome, Outcome::Passed, "{name}");
    }
    assert!(
        result(&report, "metrics")
            .request
            .starts_with(&format!("GET {direct}"))
    );
    assert_eq!(result(&report, "rate-limit").status, Some(429));

    // The same suite against the bare service: no headers, no 429.
    let report = wactl::smoke::run(&env, &direct, &options).await;
    assert!(!report.passed);
    let failed: Vec<&str> = report.failed().map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["security-headers", "metrics-hidden", "rate-limit"]);
    let headers = result(&report, "security-headers")
        .failure
        .as_ref()
        .expect("failure");
    assert_eq!(headers.reason, "header x-content-type-options is missing");
}

#[tokio::test]
async fn readiness_is_retried_with_backoff() {
    let double = Double {
        unready_for: 3,
        ..Double::default()
    };
    let url = serve(service(double.clone())).await;
    let report =
        wactl::smoke::run(&environment("dev"), &url, &options(Duration::from_secs(10))).await;
    assert!(report.passed, "{report:#?}");
    assert_eq!(result(&report, "readyz").attempts, 4);
}

#[tokio::test]
async fn a_service_never_ready_fails_by_the_deadline_and_skips_the_rest() {
    let double = Double {
        unready_for: usize::MAX,
        ..Double::default()
    };
    let url = serve(service(double)).await;
    let started = std::time::Instant::now();
    let report =
        wactl::smoke::run(&environment("dev"), &url, &options(Duration::from_secs(1))).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the deadline holds"
    );
    assert!(!report.passed);
    let readyz = result(&report, "readyz");
    assert_eq!(readyz.outcome, Outcome::Failed);
    assert_eq!(readyz.status, Some(503));
    let failure = readyz.failure.as_ref().expect("failure");
    assert!(
        failure.reason.starts_with("not ready after"),
        "{}",
        failure.reason
    );
    assert_eq!(failure.body.as_deref(), Some(r#"{"status":"starting"}"#));
    assert!(
        report.checks.len() > 1,
        "the later checks are listed as skipped"
    );
    assert!(
        report.checks[1..]
            .iter()
            .all(|c| c.outcome == Outcome::Skipped)
    );
}

#[tokio::test]
async fn nothing_listening_fails_readiness_with_the_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let report = wactl::smoke::run(
        &environment("dev"),
        &url,
        &options(Duration::from_millis(300)),
    )
    .await;
    let readyz = result(&report, "readyz");
    assert_eq!(readyz.outcome, Outcome::Failed);
    let reason = &readyz.failure.as_ref().expect("failure").reason;
    assert!(reason.contains("cannot connect"), "{reason}");
}

#[tokio::test]
async fn a_wrong_answer_names_the_check_and_keeps_the_answer() {
    let double = Double {
        break_de: true,
        ..Double::default()
    };
    let url = serve(service(double)).await;
    let report =
        wactl::smoke::run(&environment("dev"), &url, &options(Duration::from_secs(5))).await;
    let failed: Vec<&str> = report.failed().map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["validate-de"]);
    let failure = result(&report, "validate-de")
        .failure
        .as_ref()
        .expect("failure");
    assert_eq!(failure.reason, "/valid: expected true, got false");
    assert!(
        failure
            .body
            .as_deref()
            .is_some_and(|b| b.contains("\"postal_code\":\"invalid\""))
    );
}

#[tokio::test]
async fn custom_checks_judge_status_pointer_latency_and_timeout() {
    let mut env = environment("dev");
    let custom =
        |name: &str, path: &str, status: u16, expect: Value, max: Option<u64>| SmokeCheck {
            name: name.into(),
            method: if path.starts_with("/v1/addresses") {
                "POST"
            } else {
                "GET"
            }
            .into(),
            path: path.into(),
            body: path
                .starts_with("/v1/addresses")
                .then(|| json!({"country_code": "DE"})),
            status,
            expect: serde_json::from_value(expect).expect("pointer map"),
            max_latency_ms: max,
        };
    env.smoke.checks = vec![
        custom(
            "de-ok",
            "/v1/addresses/validate",
            200,
            json!({"/normalized/city": "Berlin"}),
            Some(1_000),
        ),
        custom(
            "de-wrong-city",
            "/v1/addresses/validate",
            200,
            json!({"/normalized/city": "Bonn"}),
            None,
        ),
        custom("not-found", "/nowhere", 404, json!({}), None),
        custom("too-slow", "/slow", 200, json!({}), None),
    ];
    let url = serve(service(Double::default())).await;
    let report = wactl::smoke::run(&env, &url, &options(Duration::from_secs(5))).await;
    assert_eq!(result(&report, "de-ok").outcome, Outcome::Passed);
    assert_eq!(result(&report, "not-found").outcome, Outcome::Passed);
    let wrong = result(&report, "de-wrong-city")
        .failure
        .as_ref()
        .expect("failure");
    assert_eq!(
        wrong.reason,
        r#"/normalized/city: expected "Bonn", got "Berlin""#
    );
    let slow = result(&report, "too-slow");
    assert_eq!(slow.outcome, Outcome::Failed);
    assert!(
        slow.failure
            .as_ref()
            .is_some_and(|f| f.reason.starts_with("timed out")),
        "{slow:?}"
    );
    assert!(slow.latency_ms < 1_500);
}

fn wactl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wactl"))
        .arg("--env-dir")
        .arg(env_dir())
        .args(args)
        .output()
        .expect("wactl runs")
}

#[tokio::test]
async fn cli_prints_a_table_exits_1_on_failure_and_2_on_a_bad_url() {
    let good = serve(service(Double::default())).await;
    let bad = serve(service(Double {
        break_de: true,
        ..Double::default()
    }))
    .await;
    let (ok, failed, invalid, json) = tokio::task::spawn_blocking(move || {
        (
            wactl(&["smoke", "dev", "--url", &good]),
            wactl(&["smoke", "dev", "--url", &bad]),
            wactl(&["smoke", "dev", "--url", "127.0.0.1:1"]),
            wactl(&["--output", "json", "smoke", "dev", "--url", &bad]),
        )
    })
    .await
    .expect("join");

    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("CHECK"), "{stdout}");
    assert!(stdout.contains("validate-de"));

    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("validate-de: /valid: expected true, got false"),
        "{stderr}"
    );
    assert!(stderr.contains("smoke failed against"), "{stderr}");

    assert_eq!(invalid.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("invalid URL"));

    assert_eq!(json.status.code(), Some(1));
    // The report, then the error object: two JSON documents.
    let documents: Vec<Value> = serde_json::Deserializer::from_slice(&json.stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("JSON on stdout");
    let report = &documents[0];
    assert_eq!(documents[1]["error"]["code"], "operation_failed");
    assert_eq!(report["passed"], false);
}

/// A proxy double whose budget refills: `burst` requests per second-long window, then 429
/// with `Retry-After: 1`, as a rate limiter a user's own traffic can drain.
async fn refilling_proxy(
    State(limiter): State<Arc<std::sync::Mutex<(std::time::Instant, usize, usize)>>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == "/metrics" {
        return StatusCode::NOT_FOUND.into_response();
    }
    if request.uri().path() != "/healthz" {
        let mut guard = limiter.lock().expect("limiter");
        let (window, used, burst) = &mut *guard;
        if window.elapsed() >= Duration::from_secs(1) {
            *window = std::time::Instant::now();
            *used = 0;
        }
        *used += 1;
        if *used > *burst {
            let mut response = StatusCode::TOO_MANY_REQUESTS.into_response();
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            return response;
        }
    }
    let mut response = next.run(request).await;
    for (name, value) in wactl::smoke::suite::SECURITY_HEADERS {
        response
            .headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    response
}

#[tokio::test]
async fn two_runs_back_to_back_both_pass_waiting_out_the_drained_budget() {
    let env = environment("local");
    let double = Double::default();
    let direct = serve(service(double.clone())).await;
    let limiter = Arc::new(std::sync::Mutex::new((std::time::Instant::now(), 0, 30)));
    let proxied =
        serve(service(double).layer(middleware::from_fn_with_state(limiter, refilling_proxy)))
            .await;
    let mut options = options(Duration::from_secs(5));
    options.through_nginx = true;
    options.metrics_url = Some(direct);

    let first = wactl::smoke::run(&env, &proxied, &options).await;
    assert!(first.passed, "{first:#?}");
    // The first run's rate-limit check spent the budget; the second starts on 429s.
    let second = wactl::smoke::run(&env, &proxied, &options).await;
    assert!(second.passed, "{second:#?}");
    let waits: Vec<(&str, u64)> = second
        .checks
        .iter()
        .filter_map(|c| c.waited_for_rate_limit_ms.map(|w| (c.name.as_str(), w)))
        .collect();
    assert!(
        !waits.is_empty(),
        "the second run never waited: {second:#?}"
    );
    assert!(waits.iter().all(|(_, w)| *w >= 1000), "{waits:?}");
    assert_eq!(result(&second, "rate-limit").status, Some(429));
    let table = wactl::ui::smoke::smoke_table(&second, false);
    assert!(table.contains("waited"), "{table}");
}

#[tokio::test]
async fn a_service_that_always_answers_429_fails_within_the_wait_budget() {
    let env = environment("local");
    let double = Double::default();
    let direct = serve(service(double.clone())).await;
    // A budget of 0: every request past /healthz is refused, forever.
    let limiter = Arc::new(std::sync::Mutex::new((std::time::Instant::now(), 0, 0)));
    let proxied =
        serve(service(double).layer(middleware::from_fn_with_state(limiter, refilling_proxy)))
            .await;
    let mut options = options(Duration::from_secs(2));
    options.through_nginx = true;
    options.metrics_url = Some(direct);
    let report = wactl::smoke::run(&env, &proxied, &options).await;
    assert!(!report.passed);
    let waited: u64 = report
        .checks
        .iter()
        .filter_map(|c| c.waited_for_rate_limit_ms)
        .sum();
    assert!(waited > 0, "{report:#?}");
    assert!(waited <= 30_000, "waited {waited} ms, more than the budget");
}
