//! Optional Redis (`REDIS_URL`): a fixed-window rate limit per API key (or client IP),
//! shared by every replica.
//!
//! Each client gets `limit` requests per wall-clock minute, counted with `INCR` on
//! `wactl:ratelimit:{who}:{minute}`. When Redis does not answer within 100 ms the request goes
//! through (fail open) and a warning is logged at most every 30 s. After a failure Redis is
//! left alone for [`RETRY_AFTER_FAILURE`], so requests during an outage pay no timeout.
//! Until Redis first answers (see [`crate::dependency`]) requests go through unlimited too.
//!
//! `rediss://` speaks TLS and checks the certificate against the system store (which honours
//! `SSL_CERT_FILE`) and the host name.

use crate::dependency::ConnectError;
use redis::aio::ConnectionManager;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const WINDOW_SECS: u64 = 60;
const REDIS_TIMEOUT: Duration = Duration::from_millis(100);
/// How long requests skip Redis after it failed (one request then tries it again).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

pub struct RateLimiter {
    client: redis::Client,
    /// For `rediss://`: the TLS settings and address the connection manager will use, to
    /// learn why a handshake fails (the manager reports it only as text).
    tls: Option<(Arc<rustls::ClientConfig>, String, u16)>,
    /// Set once Redis first answers.
    redis: OnceLock<ConnectionManager>,
    limit: u64,
    last_warning: Mutex<Option<Instant>>,
    /// Until when requests fail open without asking Redis.
    skip_until: Mutex<Option<Instant>>,
    /// When Redis last failed: only a call that started later proves it is back.
    failed_at: Mutex<Option<Instant>>,
    /// Whether the last call reached Redis (`address_service_dependency_up`).
    available: std::sync::atomic::AtomicBool,
}

/// The verdict for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Over the limit; retry after this many seconds (the end of the window).
    Deny {
        retry_after: u64,
    },
}

impl RateLimiter {
    /// Reads `REDIS_URL` without connecting.
    pub fn configure(url: &str, limit_per_minute: u64) -> Result<Self, ConnectError> {
        let configuration = |reason: String| ConnectError::Configuration {
            setting: "REDIS_URL",
            reason,
        };
        crate::tls::install_default_provider();
        let client = redis::Client::open(url)
            .map_err(|e| configuration(format!("not a Redis URL ({:?})", e.kind())))?;
        let tls = match client.get_connection_info().addr() {
            redis::ConnectionAddr::TcpTls { host, port, .. } => {
                let roots = crate::tls::roots(None).map_err(|e| configuration(e.to_string()))?;
                let config =
                    crate::tls::client_config(crate::tls::Verification::ChainAndHostName, roots)
                        .map_err(|e| configuration(e.to_string()))?;
                Some((Arc::new(config), host.clone(), *port))
            }
            _ => None,
        };
        Ok(RateLimiter {
            client,
            tls,
            redis: OnceLock::new(),
            limit: limit_per_minute,
            last_warning: Mutex::new(None),
            skip_until: Mutex::new(None),
            failed_at: Mutex::new(None),
            available: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Connects; afterwards requests are counted.
    pub async fn establish(&self) -> Result<(), ConnectError> {
        if self.redis.get().is_some() {
            return Ok(());
        }
        if let Some((config, host, port)) = &self.tls {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            crate::tls::handshake(config.clone(), host, *port)
                .await
                .map_err(|e| match e {
                    crate::tls::HandshakeError::Configuration { reason } => {
                        ConnectError::Configuration {
                            setting: "REDIS_URL",
                            reason: format!("the server's TLS certificate was refused: {reason}"),
                        }
                    }
                    crate::tls::HandshakeError::Unreachable(why) => ConnectError::Unreachable(why),
                })?;
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let manager = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| ConnectError::Unreachable("connecting to Redis timed out".into()))?
        .map_err(|e| match e.kind() {
            redis::ErrorKind::AuthenticationFailed | redis::ErrorKind::InvalidClientConfig => {
                ConnectError::Configuration {
                    setting: "REDIS_URL",
                    reason: format!("Redis refused: {e}"),
                }
            }
            _ => ConnectError::Unreachable(format!("Redis: {e}")),
        })?;
        let _ = self.redis.set(manager);
        self.available
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Connects to Redis now, or fails.
    pub async fn connect(url: &str, limit_per_minute: u64) -> anyhow::Result<Self> {
        let limiter = RateLimiter::configure(url, limit_per_minute)?;
        limiter.establish().await?;
        Ok(limiter)
    }

    /// Counts one request by `who` (a key prefix or an IP address).
    pub async fn check(&self, who: &str) -> Decision {
        let Some(redis) = self.redis.get() else {
            return Decision::Allow;
        };
        let started = Instant::now();
        {
            let mut skip = lock(&self.skip_until);
            match *skip {
                Some(until) if Instant::now() < until => return Decision::Allow,
                // This request probes Redis; the others keep failing open until it answers.
                Some(_) => *skip = Some(Instant::now() + REDIS_TIMEOUT),
                None => {}
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let window = now / WINDOW_SECS;
        let key = format!("wactl:ratelimit:{who}:{window}");
        let mut conn = redis.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .incr(&key, 1u64)
            .expire(&key, (WINDOW_SECS * 2) as i64)
            .ignore();
        let count: Result<Result<(u64,), redis::RedisError>, _> =
            tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async(&mut conn)).await;
        let reached = matches!(count, Ok(Ok(_)));
        self.available
            .store(reached, std::sync::atomic::Ordering::Relaxed);
        match count {
            Ok(Ok((n,))) if n > self.limit => {
                self.recovered(started);
                Decision::Deny {
                    retry_after: WINDOW_SECS - now % WINDOW_SECS,
                }
            }
            Ok(Ok(_)) => {
                self.recovered(started);
                Decision::Allow
            }
            Ok(Err(e)) => self.fail_open(&e.to_string()),
            Err(_) => self.fail_open("timed out"),
        }
    }

    /// Whether Redis answered the last rate-limit call.
    pub fn is_available(&self) -> bool {
        self.available.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn recovered(&self, started: Instant) {
        let failed_at = *lock(&self.failed_at);
        if failed_at.is_some_and(|failed| started < failed) {
            // An answer to a call sent before the failure says nothing about now.
            return;
        }
        if lock(&self.skip_until).take().is_some() {
            tracing::info!("Redis answers again; rate limiting is back on");
            *lock(&self.last_warning) = None;
        }
    }

    fn fail_open(&self, why: &str) -> Decision {
        *lock(&self.failed_at) = Some(Instant::now());
        *lock(&self.skip_until) = Some(Instant::now() + RETRY_AFTER_FAILURE);
        let mut last = lock(&self.last_warning);
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
            tracing::warn!(
                error = why,
                "Redis unavailable; rate limiting is off until it answers"
            );
            *last = Some(Instant::now());
        }
        Decision::Allow
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
