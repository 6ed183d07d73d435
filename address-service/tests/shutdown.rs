//! Graceful shutdown over a real socket on 127.0.0.1: readiness flips first, then the
//! listener closes, and the server returns within the grace period.

use address_service::config::{LogFormat, ServeArgs};
use address_service::healthcheck::{self, HealthcheckError};
use address_service::{AppState, Limits, data::Catalog, server};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn probe(url: String) -> Result<(), HealthcheckError> {
    tokio::task::spawn_blocking(move || healthcheck::check(&url, Duration::from_secs(2)))
        .await
        .expect("probe thread")
}

#[tokio::test]
async fn readiness_flips_before_the_listener_closes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let args = ServeArgs {
        listen: addr,
        request_timeout: Duration::from_secs(5),
        body_limit_bytes: 65536,
        shutdown_grace: Duration::from_secs(5),
        shutdown_delay: Duration::from_millis(500),
        log_format: LogFormat::Text,
        database_url: None,
        redis_url: None,
        rate_limit_per_minute: 600,
        require_api_key: false,
        trusted_proxies: Vec::new(),
    };
    let state = AppState::new(Arc::new(Catalog::load().expect("data")), Limits::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        server::serve_until(listener, state, &args, async {
            let _ = rx.await;
        })
        .await
    });
    let readyz = format!("http://{addr}/readyz");
    probe(readyz.clone()).await.expect("ready before shutdown");
    probe(format!("http://{addr}/healthz")).await.expect("live");

    let signalled = Instant::now();
    tx.send(()).expect("signal");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let during = probe(readyz.clone())
        .await
        .expect_err("not ready while shutting down");
    assert!(
        matches!(during, HealthcheckError::Status { ref status_line, .. } if status_line.contains("503")),
        "{during}"
    );

    let result = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops within the grace");
    result.expect("server task").expect("clean shutdown");
    assert!(
        signalled.elapsed() >= Duration::from_millis(500),
        "the listener stayed open for the delay"
    );
    let after = probe(readyz).await.expect_err("listener closed");
    assert!(matches!(after, HealthcheckError::Connect { .. }), "{after}");
}
