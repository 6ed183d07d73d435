//! Router tests: the whole service through `oneshot`, no socket (except the shutdown test).

use address_service::{AppState, Limits, app, data::Catalog};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tower::ServiceExt;

static CATALOG: LazyLock<Arc<Catalog>> =
    LazyLock::new(|| Arc::new(Catalog::load().expect("data loads")));

fn state() -> AppState {
    AppState::new(
        CATALOG.clone(),
        Limits {
            request_timeout: Duration::from_secs(5),
            body_limit_bytes: 65536,
        },
    )
}

fn router() -> Router {
    app(state())
}

async fn send(router: Router, req: Request<Body>) -> (StatusCode, Vec<u8>, axum::http::HeaderMap) {
    let response = router.oneshot(req).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, body, headers)
}

async fn get(router: Router, path: &str) -> (StatusCode, Value) {
    let (status, body, _) = send(
        router,
        Request::get(path).body(Body::empty()).expect("request"),
    )
    .await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn post_raw(
    router: Router,
    path: &str,
    content_type: &str,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .expect("request");
    let (status, body, headers) = send(router, req).await;
    let value: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("non-JSON body: {:?}", String::from_utf8_lossy(&body)));
    if !status.is_success() {
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/json",
            "error bodies are JSON"
        );
    }
    (status, value)
}

async fn post(router: Router, path: &str, body: Value) -> (StatusCode, Value) {
    post_raw(router, path, "application/json", body.to_string()).await
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {v}"))
}

fn google() -> Value {
    json!({
        "country_code": "us", "country_area": "California", "city": "Mountain View",
        "street_address": "1600 Amphitheatre Pkwy", "postal_code": "94043", "name": "Jane Doe"
    })
}

#[tokio::test]
async fn lists_and_describes_countries() {
    let (status, list) = get(router(), "/v1/countries").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["countries"].as_array().map(Vec::len), Some(252));
    let (status, us) = get(router(), "/v1/countries/us").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(us["code"], "US");
    assert_eq!(us["labels"]["country_area"], "state");
    assert!(
        us["required"]
            .as_array()
            .expect("list")
            .contains(&json!("postal_code"))
    );
    assert_eq!(us["subdivisions"][8]["key"], "CA");
    let (status, err) = get(router(), "/v1/countries/XX").await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::NOT_FOUND, "unknown_country")
    );
}

#[tokio::test]
async fn validates_normalises_and_formats() {
    let (status, v) = post(router(), "/v1/addresses/validate", google()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["valid"], true);
    assert_eq!(v["normalized"]["country_area"], "CA");
    assert_eq!(v["normalized"]["city"], "MOUNTAIN VIEW");

    let mut bad = google();
    bad["postal_code"] = json!("10001");
    bad["city"] = json!(null);
    let (status, v) = post(router(), "/v1/addresses/validate", bad.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["valid"], false);
    assert_eq!(
        v["errors"],
        json!({"city": "required", "postal_code": "invalid"})
    );
    assert_eq!(v["normalized"], Value::Null);

    let (status, n) = post(router(), "/v1/addresses/normalize", google()).await;
    assert_eq!(
        (status, n["country_code"].as_str()),
        (StatusCode::OK, Some("US"))
    );
    let (status, e) = post(router(), "/v1/addresses/normalize", bad).await;
    assert_eq!(
        (status, error_code(&e)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_address")
    );
    assert_eq!(e["error"]["fields"]["city"], "required");

    let (status, f) = post(
        router(),
        "/v1/addresses/format",
        json!({"address": google()}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        f["lines"],
        json!([
            "Jane Doe",
            "1600 Amphitheatre Pkwy",
            "MOUNTAIN VIEW, CA 94043",
            "UNITED STATES"
        ])
    );

    let kr = json!({"address": {"country_code": "KR", "country_area": "서울", "city": "강남구",
        "street_address": "테헤란로 1", "postal_code": "06236"}, "latin": true});
    let (status, f) = post(router(), "/v1/addresses/format", kr).await;
    assert_eq!(status, StatusCode::OK, "{f}");
    assert_eq!(
        f["lines"],
        json!(["테헤란로 1", "Gangnam-gu", "Seoul", "06236", "SOUTH KOREA"])
    );
}

#[tokio::test]
async fn bad_input_gets_a_4xx_with_a_stable_body() {
    let cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "malformed",
            "application/json",
            "{\"country_code\": ".into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "trailing",
            "application/json",
            "{} []".into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "wrong type",
            "text/plain",
            "{}".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "invalid utf-8",
            "application/json",
            b"{\"city\": \"\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "deep",
            "application/json",
            "[".repeat(10_000).into(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "oversized",
            "application/json",
            vec![b' '; 70_000],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "not an object",
            "application/json",
            "[1,2]".into(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "unknown field",
            "application/json",
            "{\"planet\": \"Mars\"}".into(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "number",
            "application/json",
            "{\"city\": 12}".into(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "huge field",
            "application/json",
            json!({"country_code": "US", "city": "x".repeat(5000)})
                .to_string()
                .into(),
            StatusCode::BAD_REQUEST,
            "field_too_long",
        ),
    ];
    for (name, content_type, body, status, code) in cases {
        for path in ["/v1/addresses/validate", "/v1/addresses/normalize"] {
            let (got, v) = post_raw(router(), path, content_type, body.clone()).await;
            assert_eq!(
                (got, error_code(&v)),
                (status, code),
                "{name} on {path}: {v}"
            );
        }
    }
    let (status, v) = post(
        router(),
        "/v1/addresses/validate",
        json!({"country_code": "XX"}),
    )
    .await;
    assert_eq!(
        (status, &v["errors"]),
        (StatusCode::OK, &json!({"country_code": "invalid"}))
    );
    let (status, v) = post(
        router(),
        "/v1/addresses/format",
        json!({"address": {"country_code": "XX"}}),
    )
    .await;
    assert_eq!(
        (status, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_address")
    );
    let (status, v) = post(
        router(),
        "/v1/addresses/format",
        json!({"country_code": "US"}),
    )
    .await;
    assert_eq!(
        (status, error_code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_body")
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let (status, v) = get(router(), "/nope").await;
    assert_eq!(
        (status, error_code(&v)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, body, headers) = send(
        router(),
        Request::delete("/v1/countries")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(error_code(&v), "method_not_allowed");
}

#[tokio::test]
async fn ops_endpoints() {
    let state = state();
    let (status, v) = get(app(state.clone()), "/healthz").await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, _) = get(app(state.clone()), "/readyz").await;
    assert_eq!(status, StatusCode::OK);

    let _ = post(app(state.clone()), "/v1/addresses/validate", google()).await;
    let _ = post(
        app(state.clone()),
        "/v1/addresses/validate",
        json!({"country_code": "US"}),
    )
    .await;
    let (status, body, _) = send(
        app(state.clone()),
        Request::get("/metrics")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).expect("utf-8");
    for needle in [
        "http_requests_total{method=\"POST\",route=\"/v1/addresses/validate\",status=\"200\"} 2",
        "http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1",
        "http_request_duration_seconds_bucket{route=\"/v1/addresses/validate\",le=\"+Inf\"} 2",
        "address_validations_total{country=\"US\",result=\"valid\"} 1",
        "address_validations_total{country=\"US\",result=\"invalid\"} 1",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }

    let (status, doc) = get(app(state.clone()), "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/countries",
        "/v1/countries/{code}",
        "/v1/addresses/validate",
        "/v1/addresses/normalize",
        "/v1/addresses/format",
        "/readyz",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }

    state.readiness.start_shutdown();
    let (status, v) = get(app(state), "/readyz").await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("shutting_down"))
    );
}

/// Random bodies, mostly near-valid JSON, at every POST route: never a 5xx, never a panic.
#[tokio::test]
async fn random_bodies_never_get_a_server_error() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let fields = [
        "country_code",
        "country_area",
        "city",
        "city_area",
        "postal_code",
        "street_address",
        "name",
        "latin",
        "address",
        "x",
    ];
    let values = [
        "\"US\"",
        "\"kr\"",
        "null",
        "1",
        "[]",
        "{}",
        "\"\\u0000\"",
        "\"\u{1F600}\"",
        "\"ß\"",
        "\"  \"",
        "true",
        "\"\\ud800\"",
        "1e999",
    ];
    let routes = [
        "/v1/addresses/validate",
        "/v1/addresses/normalize",
        "/v1/addresses/format",
    ];
    let router = router();
    for i in 0..3000 {
        let body: Vec<u8> = if i % 4 == 0 {
            (0..(next() % 64)).map(|_| (next() % 256) as u8).collect()
        } else {
            let n = next() % 5;
            let pairs: Vec<String> = (0..n)
                .map(|_| {
                    let f = fields[(next() % fields.len() as u64) as usize];
                    let v = values[(next() % values.len() as u64) as usize];
                    let v = if f == "address" && next() % 2 == 0 {
                        "{\"country_code\": \"CN\", \"country_area\": \"北京市\"}"
                    } else {
                        v
                    };
                    format!("\"{f}\": {v}")
                })
                .collect();
            let mut bytes = format!("{{{}}}", pairs.join(", ")).into_bytes();
            if next() % 10 == 0 {
                bytes.truncate((next() % (bytes.len() as u64 + 1)) as usize);
            }
            bytes
        };
        let route = routes[(next() % routes.len() as u64) as usize];
        let req = Request::post(route)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.clone()))
            .expect("request");
        let response = router.clone().oneshot(req).await.expect("infallible");
        assert!(
            response.status().is_success() || response.status().is_client_error(),
            "{} for {route} with {:?}",
            response.status(),
            String::from_utf8_lossy(&body)
        );
    }
}

#[tokio::test]
async fn every_route_has_its_own_metric_series() {
    // The metric series are resolved from a fixed list; a route missing from it would be
    // counted as `unmatched`.
    let (status, doc) = get(router(), "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 9, "{paths:?}");
    for path in paths.keys() {
        assert!(
            address_service::metrics::ROUTES.contains(&path.as_str()),
            "{path} is missing from metrics::ROUTES"
        );
    }
    // A request shows up under its route's label, an unknown path under `unmatched`.
    let state = state();
    let router = app(state.clone());
    assert_eq!(
        get(router.clone(), "/v1/countries/US").await.0,
        StatusCode::OK
    );
    assert_eq!(get(router, "/nowhere").await.0, StatusCode::NOT_FOUND);
    let text = state.metrics.render();
    for needle in [
        "http_requests_total{method=\"GET\",route=\"/v1/countries/{code}\",status=\"200\"} 1",
        "http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}
