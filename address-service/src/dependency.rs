//! PostgreSQL and Redis at start-up: in Kubernetes and compose they start in any order, so
//! the service serves at once and reaches them in the background.
//!
//! Until a configured dependency has answered, `/readyz` says 503 and names it. Attempts are
//! retried with a bounded back-off (200 ms doubling to 5 s), logged once when the outage
//! starts and once when it ends. A configuration error (wrong password, a certificate that
//! does not verify) is not retried: it stops the service with a message naming the setting.

use std::future::Future;
use std::time::{Duration, Instant};

/// A service the address service reaches over the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dependency {
    Postgres,
    Redis,
}

impl Dependency {
    /// The label in `/readyz` and the metrics.
    pub fn label(self) -> &'static str {
        match self {
            Dependency::Postgres => "postgres",
            Dependency::Redis => "redis",
        }
    }
    /// The setting that points at it.
    pub fn setting(self) -> &'static str {
        match self {
            Dependency::Postgres => "DATABASE_URL",
            Dependency::Redis => "REDIS_URL",
        }
    }
}

/// Why one attempt to reach a dependency failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Not there yet (refused, no such host yet, timed out, starting up): retried.
    #[error("{0}")]
    Unreachable(String),
    /// A setting is wrong: retrying cannot help.
    #[error("{setting}: {reason}")]
    Configuration {
        setting: &'static str,
        reason: String,
    },
}

/// The first wait after a failed attempt.
pub const FIRST_RETRY: Duration = Duration::from_millis(200);
/// The longest wait between attempts.
pub const MAX_RETRY: Duration = Duration::from_secs(5);

/// Exponential back-off from [`FIRST_RETRY`], doubling up to [`MAX_RETRY`].
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST_RETRY }
    }
}

impl Backoff {
    /// The wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_RETRY);
        delay
    }
}

/// One dependency's outage: decides which failures and recoveries are logged.
#[derive(Debug, Default)]
pub struct Outage {
    since: Option<Instant>,
    attempts: u32,
}

/// How an outage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    pub duration: Duration,
    pub failed_attempts: u32,
}

impl Outage {
    /// Records a failed attempt; true for the first of an outage (the one to log).
    pub fn failed(&mut self) -> bool {
        self.attempts += 1;
        if self.since.is_none() {
            self.since = Some(Instant::now());
            true
        } else {
            false
        }
    }
    /// Records a success; `Some` when it ends an outage (to log once).
    pub fn recovered(&mut self) -> Option<Recovery> {
        let since = self.since.take()?;
        let failed_attempts = std::mem::take(&mut self.attempts);
        Some(Recovery {
            duration: since.elapsed(),
            failed_attempts,
        })
    }
}

/// Calls `attempt` until it succeeds, then marks `dependency` connected in `readiness`.
/// Returns the first configuration error instead of retrying it.
pub async fn wait_for<F, Fut>(
    dependency: Dependency,
    readiness: &crate::Readiness,
    mut attempt: F,
) -> Result<(), ConnectError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), ConnectError>>,
{
    let mut backoff = Backoff::default();
    let mut outage = Outage::default();
    loop {
        match attempt().await {
            Ok(()) => {
                readiness.connected(dependency);
                match outage.recovered() {
                    Some(r) => tracing::info!(
                        dependency = dependency.label(),
                        waited_ms = r.duration.as_millis() as u64,
                        failed_attempts = r.failed_attempts,
                        "{} answers; ready for it now",
                        dependency.label()
                    ),
                    None => tracing::info!(
                        dependency = dependency.label(),
                        "connected to {}",
                        dependency.label()
                    ),
                }
                return Ok(());
            }
            Err(e @ ConnectError::Configuration { .. }) => return Err(e),
            Err(ConnectError::Unreachable(why)) => {
                let delay = backoff.next_delay();
                if outage.failed() {
                    tracing::warn!(
                        dependency = dependency.label(),
                        setting = dependency.setting(),
                        error = why,
                        "{} not reachable yet; /readyz reports not ready and the service retries \
                         (every {} s at most) without logging each attempt",
                        dependency.label(),
                        MAX_RETRY.as_secs()
                    );
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_doubles_up_to_the_bound() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }

    #[test]
    fn an_outage_is_logged_once_and_its_end_once() {
        let mut outage = Outage::default();
        assert_eq!(outage.recovered(), None, "no outage, nothing to report");
        let logged: Vec<bool> = (0..5).map(|_| outage.failed()).collect();
        assert_eq!(logged, [true, false, false, false, false]);
        let recovery = outage.recovered().expect("the outage ended");
        assert_eq!(recovery.failed_attempts, 5);
        assert_eq!(outage.recovered(), None, "reported once");
        assert!(outage.failed(), "a new outage is logged again");
    }

    #[tokio::test]
    async fn waits_until_the_dependency_answers_then_is_ready() {
        let readiness = crate::Readiness::default();
        readiness.expect(Dependency::Postgres);
        readiness.expect(Dependency::Redis);
        assert_eq!(
            readiness.waiting_for(),
            [Dependency::Postgres, Dependency::Redis]
        );
        let attempts = AtomicU32::new(0);
        wait_for(Dependency::Postgres, &readiness, || async {
            if attempts.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(ConnectError::Unreachable("connection refused".into()))
            } else {
                Ok(())
            }
        })
        .await
        .expect("connects on the fourth attempt");
        assert_eq!(attempts.load(Ordering::SeqCst), 4);
        assert_eq!(readiness.waiting_for(), [Dependency::Redis]);
        readiness.connected(Dependency::Redis);
        assert!(readiness.waiting_for().is_empty());
    }

    #[tokio::test]
    async fn a_configuration_error_is_not_retried() {
        let readiness = crate::Readiness::default();
        readiness.expect(Dependency::Postgres);
        let attempts = AtomicU32::new(0);
        let err = wait_for(Dependency::Postgres, &readiness, || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err(ConnectError::Configuration {
                setting: "DATABASE_URL",
                reason: "password authentication failed".into(),
            })
        })
        .await
        .expect_err("stops");
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        assert_eq!(
            err.to_string(),
            "DATABASE_URL: password authentication failed"
        );
        assert_eq!(readiness.waiting_for(), [Dependency::Postgres]);
    }
}
