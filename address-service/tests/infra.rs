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

/// A TCP proxy in front of PostgreSQL that can stop passing bytes (`pause`) while keeping
/// every connection open: a database that accepts but no longer answers.
struct StallingProxy {
    addr: std::net::SocketAddr,
    paused: tokio::sync::watch::Sender<bool>,
}

impl StallingProxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (paused, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, watch.clone()));
                tokio::spawn(pump(sr, cw, watch.clone()));
            }
        });
        StallingProxy { addr, paused }
    }
}

/// Copies `from` to `to`, holding read bytes back while paused.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut paused: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if paused.wait_for(|p| !*p).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn readyz(router: &axum::Router) -> (StatusCode, String) {
    use http_body_util::BodyExt;
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        router.clone().oneshot(request("GET", "/readyz", None)),
    )
    .await
    .expect("readyz answers even when the database hangs")
    .expect("ok");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn readyz_follows_the_database_with_a_timeout_and_a_cache() {
    let url = env_url("WACTL_TEST_DATABASE_URL");
    let config: tokio_postgres::Config = url.parse().expect("WACTL_TEST_DATABASE_URL parses");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        other => panic!("WACTL_TEST_DATABASE_URL needs a TCP host, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let upstream = tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("resolve")
        .next()
        .expect("an address");
    let proxy = StallingProxy::start(upstream).await;
    // The same settings in PostgreSQL's key-value form, pointed at the proxy.
    let user = config.get_user().expect("user in WACTL_TEST_DATABASE_URL");
    let dbname = config
        .get_dbname()
        .expect("database in WACTL_TEST_DATABASE_URL");
    let password = config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let proxied_url = format!(
        "host={} port={} user={user} dbname={dbname} password='{}'",
        proxy.addr.ip(),
        proxy.addr.port(),
        password.replace('\\', "\\\\").replace('\'', "\\'")
    );
    let db = Arc::new(
        Db::connect(&proxied_url)
            .await
            .expect("connect through the proxy"),
    );
    let catalog = Arc::new(Catalog::load().expect("data"));

    // Checks the database on every probe.
    let mut fresh = AppState::new(catalog.clone(), Limits::default());
    fresh.readiness = Arc::new(address_service::Readiness::new(Duration::ZERO));
    fresh.db = Some(db.clone());
    let fresh_readiness = fresh.readiness.clone();
    let fresh = app(fresh);
    // Reuses a check for an hour.
    let mut cached = AppState::new(catalog, Limits::default());
    cached.readiness = Arc::new(address_service::Readiness::new(Duration::from_secs(3600)));
    cached.db = Some(db.clone());
    let cached = app(cached);

    assert_eq!(readyz(&fresh).await.0, StatusCode::OK, "database answers");
    assert_eq!(readyz(&cached).await.0, StatusCode::OK);

    proxy.paused.send_replace(true);
    let (status, body) = readyz(&fresh).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("database_unavailable"), "{body}");
    assert_eq!(
        readyz(&cached).await.0,
        StatusCode::OK,
        "a recent check is reused, not repeated"
    );

    proxy.paused.send_replace(false);
    let mut recovered = false;
    for _ in 0..50 {
        if readyz(&fresh).await.0 == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "ready again once the database answers");

    fresh_readiness.start_shutdown();
    let (status, body) = readyz(&fresh).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("shutting_down"), "{body}");
    assert_eq!(
        status_of(
            fresh
                .clone()
                .oneshot(request("GET", "/healthz", None))
                .await
        ),
        StatusCode::OK,
        "liveness is unaffected"
    );
}

fn status_of(response: Result<axum::response::Response, std::convert::Infallible>) -> StatusCode {
    response.expect("infallible").status()
}

/// A `/v1` request as the service sees it when `peer` connects, with `X-Forwarded-For`.
fn from_peer(peer: &str, forwarded_for: Option<&str>) -> Request<Body> {
    let mut req = request("GET", "/v1/countries", None);
    let addr: std::net::SocketAddr = format!("{peer}:40000").parse().expect("peer");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    if let Some(v) = forwarded_for {
        req.headers_mut().insert(
            "x-forwarded-for",
            header::HeaderValue::from_str(v).expect("header"),
        );
    }
    req
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn per_ip_rate_limit_uses_the_client_behind_trusted_proxies() {
    let url = env_url("WACTL_TEST_REDIS_URL");
    let mut state = AppState::new(Arc::new(Catalog::load().expect("data")), Limits::default());
    state.limiter = Some(Arc::new(
        RateLimiter::connect(&url, 1).await.expect("connect"),
    ));
    state.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")].into();
    let router = app(state);
    let status = |req: Request<Body>| {
        let router = router.clone();
        async move { router.oneshot(req).await.expect("ok").status() }
    };
    // Limits are per wall-clock minute: a run that straddles a minute boundary sees a fresh
    // window mid-way, so it is repeated (with new addresses) at most once.
    for attempt in 0..2 {
        // Addresses of this run only (TEST-NET-2 and TEST-NET-3), so earlier runs' counts in
        // the shared Redis do not interfere.
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            / 1000;
        let (a, b) = (n % 250 + 1, n / 250 % 250 + 1);
        let client_a = format!("198.51.{a}.{b}");
        let client_b = format!("203.0.{a}.{b}");
        let spoof_1 = format!("6.6.{a}.{b}, {client_a}");
        let spoof_2 = format!("7.7.{a}.{b}, {client_a}");
        let untrusted = format!("192.0.2.{}", b);
        let window = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 60);

        let first_a = status(from_peer("127.0.0.1", Some(&spoof_1))).await;
        let second_a = status(from_peer("127.0.0.1", Some(&spoof_2))).await;
        let first_b = status(from_peer("127.0.0.1", Some(&client_b))).await;
        let untrusted_1 = status(from_peer(&untrusted, Some(&client_a))).await;
        let untrusted_2 = status(from_peer(&untrusted, Some(&client_b))).await;
        let same_window = window
            == std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() / 60);
        if !same_window && attempt == 0 {
            continue;
        }
        assert_eq!(first_a, StatusCode::OK, "client A's first request");
        assert_eq!(
            second_a,
            StatusCode::TOO_MANY_REQUESTS,
            "client A again, whatever it wrote left of the proxy's entry"
        );
        assert_eq!(first_b, StatusCode::OK, "client B has its own bucket");
        assert_eq!(
            untrusted_1,
            StatusCode::OK,
            "an untrusted peer is counted by its own address"
        );
        assert_eq!(
            untrusted_2,
            StatusCode::TOO_MANY_REQUESTS,
            "and cannot escape its bucket with X-Forwarded-For"
        );
        return;
    }
    panic!("two runs straddled minute boundaries");
}
