//! PostgreSQL and Redis features against real servers (`cargo xtask infra up` starts them and
//! sets `WACTL_TEST_DATABASE_URL` and `WACTL_TEST_REDIS_URL`).

use address_service::db::{AuditLog, Db};
use address_service::ratelimit::{Decision, RateLimiter};
use address_service::{AppState, Limits, app, data::Catalog};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

fn env_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run `cargo xtask infra up` (it starts PostgreSQL and Redis and exports the URLs)")
    })
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{tag}-{}-{nanos}", std::process::id())
}

fn request(method: &str, path: &str, key: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(k) = key {
        builder = builder.header("x-api-key", k);
    }
    let body = if method == "POST" {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
        Body::from(
            r#"{"country_code": "PL", "city": "Warszawa", "street_address": "ul. Długa 5", "postal_code": "00-950"}"#,
        )
    } else {
        Body::empty()
    };
    builder.body(body).expect("request")
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn api_keys_scopes_revocation_and_audit() {
    let url = env_url("WACTL_TEST_DATABASE_URL");
    let db = Arc::new(Db::connect(&url).await.expect("connect and migrate"));
    Db::connect(&url).await.expect("migrations are idempotent");
    assert!(db.ping().await);

    let name = unique("test-key");
    let (key, record) = db
        .create_key(&name, &["addresses".to_owned()])
        .await
        .expect("create");
    assert!(key.starts_with(&format!("wa_{}_", record.prefix)));
    assert!(
        db.create_key("bad", &["root".to_owned()]).await.is_err(),
        "unknown scopes are refused"
    );
    let listed = db.list_keys().await.expect("list");
    assert!(
        listed
            .iter()
            .any(|k| k.prefix == record.prefix && !k.revoked)
    );

    let (audit, writer) = AuditLog::start(db.clone(), 100);
    let mut state = AppState::new(Arc::new(Catalog::load().expect("data")), Limits::default());
    state.db = Some(db.clone());
    state.audit = Some(audit);
    state.require_api_key = true;
    let router = app(state);

    let status = |r: axum::response::Response| r.status();
    assert_eq!(
        status(
            router
                .clone()
                .oneshot(request("POST", "/v1/addresses/validate", None))
                .await
                .expect("ok")
        ),
        StatusCode::UNAUTHORIZED
    );
    let wrong = format!("wa_{}_{}", record.prefix, "0".repeat(48));
    assert_eq!(
        status(
            router
                .clone()
                .oneshot(request("POST", "/v1/addresses/validate", Some(&wrong)))
                .await
                .expect("ok")
        ),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(
            router
                .clone()
                .oneshot(request("POST", "/v1/addresses/validate", Some(&key)))
                .await
                .expect("ok")
        ),
        StatusCode::OK
    );
    let bearer = Request::post("/v1/addresses/validate")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .expect("request");
    assert_eq!(
        status(router.clone().oneshot(bearer).await.expect("ok")),
        StatusCode::OK
    );
    assert_eq!(
        status(
            router
                .clone()
                .oneshot(request("GET", "/v1/countries", Some(&key)))
                .await
                .expect("ok")
        ),
        StatusCode::FORBIDDEN,
        "no countries scope"
    );
    assert_eq!(
        status(
            router
                .clone()
                .oneshot(request("GET", "/healthz", None))
                .await
                .expect("ok")
        ),
        StatusCode::OK,
        "ops endpoints stay open"
    );
    assert_eq!(
        status(
            router
                .clone()
                .oneshot(request("GET", "/readyz", None))
                .await
                .expect("ok")
        ),
        StatusCode::OK
    );

    assert!(db.revoke_key(&record.prefix).await.expect("revoke"));
    assert!(!db.revoke_key(&record.prefix).await.expect("revoke again"));
    assert_eq!(
        status(
            router
                .clone()
                .oneshot(request("POST", "/v1/addresses/validate", Some(&key)))
                .await
                .expect("ok")
        ),
        StatusCode::UNAUTHORIZED
    );

    drop(router);
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("audit flushes on close")
        .expect("writer");
    let client = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(client.1);
    let rows = client
        .0
        .query(
            "SELECT status FROM audit_log WHERE key_prefix = $1 ORDER BY id",
            &[&record.prefix],
        )
        .await
        .expect("query audit");
    let statuses: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(statuses, [200, 200, 403], "audited requests with this key");
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn rate_limit_is_shared_and_answers_429() {
    let url = env_url("WACTL_TEST_REDIS_URL");
    let a = RateLimiter::connect(&url, 2).await.expect("connect");
    let b = RateLimiter::connect(&url, 2).await.expect("connect");
    let who = unique("client");
    assert_eq!(a.check(&who).await, Decision::Allow);
    assert_eq!(
        b.check(&who).await,
        Decision::Allow,
        "replicas share the count"
    );
    match a.check(&who).await {
        Decision::Deny { retry_after } => assert!((1..=60).contains(&retry_after)),
        Decision::Allow => panic!("third request in the window must be denied"),
    }

    let mut state = AppState::new(Arc::new(Catalog::load().expect("data")), Limits::default());
    state.limiter = Some(Arc::new(
        RateLimiter::connect(&url, 0).await.expect("connect"),
    ));
    let response = app(state)
        .oneshot(request("GET", "/v1/countries", None))
        .await
        .expect("ok");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn redis_going_away_fails_open() {
    // A Redis of our own, so stopping it does not disturb the shared one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut redis = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect(
            "redis-server (Debian package redis-server) is installed by `cargo xtask infra up`",
        );
    let url = format!("redis://127.0.0.1:{port}");
    let mut limiter = None;
    for _ in 0..50 {
        if let Ok(l) = RateLimiter::connect(&url, 1).await {
            limiter = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let limiter = limiter.expect("our redis-server started");
    let who = unique("down");
    assert_eq!(limiter.check(&who).await, Decision::Allow);
    assert!(matches!(limiter.check(&who).await, Decision::Deny { .. }));
    assert!(
        limiter.is_available(),
        "address_service_dependency_up reads 1"
    );
    redis.kill().expect("stop redis");
    let _ = redis.wait();
    let started = std::time::Instant::now();
    assert_eq!(limiter.check(&who).await, Decision::Allow, "fail open");
    assert!(started.elapsed() < Duration::from_secs(2), "and quickly");
    assert!(!limiter.is_available(), "the alert's gauge turns 0");
}
