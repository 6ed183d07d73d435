//! Serving: logging set-up, the listener, and graceful shutdown on SIGTERM or Ctrl-C.
//!
//! Shutdown order: readiness flips to 503, the optional delay lets load balancers notice, the
//! listener closes, in-flight requests drain, and the process exits no later than the grace.

use crate::config::{LogFormat, ServeArgs};
use crate::dependency::{self, Dependency};
use crate::{AppState, Limits, app, data};
use anyhow::Context;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

/// Logs go to stderr as JSON lines (or text); `RUST_LOG` filters them (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}

/// Loads the data, binds, serves until a signal, then drains. PostgreSQL and Redis are
/// reached in the background (see [`crate::dependency`]); a configuration error found there
/// stops the service.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    crate::tls::install_default_provider();
    let catalog = Arc::new(data::Catalog::load().context("loading the embedded address data")?);
    let limits = Limits {
        request_timeout: args.request_timeout,
        body_limit_bytes: args.body_limit_bytes,
    };
    let mut state = AppState::new(catalog, limits);
    let mut audit_writer = None;
    let mut dependencies = tokio::task::JoinSet::new();
    if let Some(url) = &args.database_url {
        let db = Arc::new(crate::db::Db::configure(url)?);
        state.readiness.expect(Dependency::Postgres);
        let (audit, writer) = crate::db::AuditLog::start(db.clone(), 10_000);
        let readiness = state.readiness.clone();
        let connecting = db.clone();
        dependencies.spawn(async move {
            dependency::wait_for(Dependency::Postgres, &readiness, || connecting.establish()).await
        });
        state.db = Some(db);
        state.audit = Some(audit);
        audit_writer = Some(writer);
    } else if args.require_api_key {
        anyhow::bail!("--require-api-key needs a database (DATABASE_URL)");
    }
    state.require_api_key = args.require_api_key;
    state.trusted_proxies = args.trusted_proxies.clone().into();
    if let Some(url) = &args.redis_url {
        let limiter = Arc::new(crate::ratelimit::RateLimiter::configure(
            url,
            args.rate_limit_per_minute,
        )?);
        state.readiness.expect(Dependency::Redis);
        let readiness = state.readiness.clone();
        let connecting = limiter.clone();
        dependencies.spawn(async move {
            dependency::wait_for(Dependency::Redis, &readiness, || connecting.establish()).await
        });
        state.limiter = Some(limiter);
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        listen = %args.listen,
        countries = state.catalog.countries().count(),
        startup_ms = started.elapsed().as_millis() as u64,
        database = state.db.is_some(),
        redis = state.limiter.is_some(),
        require_api_key = state.require_api_key,
        trusted_proxies = state.trusted_proxies.len(),
        "address-service serving"
    );
    let configuration_error = async move {
        while let Some(done) = dependencies.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return anyhow::Error::new(e),
                Err(e) => return anyhow::anyhow!("reaching a dependency: {e}"),
            }
        }
        std::future::pending().await
    };
    let result = tokio::select! {
        result = serve(listener, state, &args) => result,
        e = configuration_error => Err(e),
    };
    if let Some(writer) = audit_writer {
        // Every sender went with the router; the writer flushes its last batch and ends.
        if tokio::time::timeout(std::time::Duration::from_secs(5), writer)
            .await
            .is_err()
        {
            tracing::warn!("audit log: last batch not written within 5 s");
        }
    }
    result
}

/// Serves `state` on `listener` until SIGTERM or Ctrl-C, then shuts down gracefully.
pub async fn serve(listener: TcpListener, state: AppState, args: &ServeArgs) -> anyhow::Result<()> {
    serve_until(listener, state, args, shutdown_signal()).await
}

/// Serves until `signal` resolves, then shuts down as described in the module docs.
pub async fn serve_until(
    listener: TcpListener,
    state: AppState,
    args: &ServeArgs,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let readiness = state.readiness.clone();
    let (draining_tx, mut draining_rx) = tokio::sync::watch::channel(false);
    let delay = args.shutdown_delay;
    let router = app(state);
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        signal.await;
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "shutdown signal: readiness now 503"
        );
        readiness.start_shutdown();
        tokio::time::sleep(delay).await;
        tracing::info!("closing the listener and draining in-flight requests");
        let _ = draining_tx.send(true);
    });
    let server = server.into_future();
    tokio::pin!(server);
    let grace = args.shutdown_grace;
    tokio::select! {
        result = &mut server => result.context("serving HTTP")?,
        () = async {
            let _ = draining_rx.wait_for(|draining| *draining).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "drain deadline passed; exiting with requests still in flight");
        }
    }
    tracing::info!("address-service stopped");
    Ok(())
}

/// Resolves on SIGTERM (Kubernetes, Docker) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
