//! A clean stop on SIGINT or SIGTERM: the pending revision marked interrupted, the lock
//! released, and the report of what had happened so far.

use super::{
    DeployError, DeployEvent, DeployOptions, DeployReport, ErrorReport, EventKind, FailureCode,
    Outcome, Stages, close_interrupted, lock_options,
};
use crate::cluster::{self, ClusterError, DeployLock, revision};
use crate::config::Environment;
use kube::Client;
use std::time::Duration;

/// The signal that stopped a deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (a cancelled CI job, a stopping container).
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        }
    }
}

/// Resolves with the signal on SIGINT or SIGTERM when `enabled`; never otherwise.
/// The handlers are installed on first poll and replace the default (killing) action.
pub(super) async fn stop_signal(enabled: bool) -> Signal {
    if !enabled {
        return std::future::pending().await;
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = interrupt.recv() => Signal::Interrupt,
            _ = terminate.recv() => Signal::Terminate,
        }
    }
    #[cfg(not(unix))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Signal::Interrupt,
            Err(_) => std::future::pending().await,
        }
    }
}

/// Runs `work` until it ends, or until a signal comes first (when `enabled`).
pub(super) async fn until_signal<T>(
    enabled: bool,
    work: impl Future<Output = T>,
) -> Result<T, Signal> {
    tokio::select! {
        ended = work => Ok(ended),
        signal = stop_signal(enabled) => Err(signal),
    }
}

/// The one ending of a deploy and a rollback: the lock released and the report returned
/// when the work ended, the clean-up of [`stop`] when a signal stopped it; the observer is
/// told the final report when there is one.
pub(super) async fn finish(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    stopped: Result<Result<(), DeployError>, Signal>,
    stages: Stages<'_>,
    held: Option<DeployLock>,
) -> Result<DeployReport, DeployError> {
    let observer = stages.observer;
    let result = match stopped {
        Ok(result) => {
            if let Some(held) = held {
                held.release().await;
            }
            result.map(|()| stages.report)
        }
        Err(signal) => Err(stop(client, env, options, held, stages, signal).await),
    };
    let report = match &result {
        Ok(report) => Some(report),
        Err(error) => error.report(),
    };
    if let Some(report) = report {
        observer.event(&DeployEvent {
            environment: env.name.clone(),
            cluster: None,
            kind: EventKind::Finished(Box::new(report.clone())),
        });
    }
    result
}

/// Leaves the cluster consistent after a signal: the pending revision (only when this
/// deploy held the lock) marked interrupted, then the lock released. Bounded, so a
/// cluster that does not answer cannot hold the process; what is left undone the next
/// deploy finishes (it closes pending revisions, and the lease expires by itself).
async fn stop(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    held: Option<DeployLock>,
    mut stages: Stages<'_>,
    signal: Signal,
) -> DeployError {
    let namespace = &env.cluster.namespace;
    let name = signal.name();
    let after = stages
        .report
        .stages
        .last()
        .map_or("before the first stage finished".to_owned(), |s| {
            format!("after the {} stage", s.name)
        });
    let mut message = format!("{}: interrupted by {name} {after}", env.name);
    let had_lock = held.is_some();
    let cleanup = async {
        if had_lock {
            let mut revisions = revision::list(client, namespace, &env.name).await?;
            close_interrupted(
                client,
                namespace,
                &mut revisions,
                &format!("interrupted by {name} {after}"),
            )
            .await?;
            if env.rollout.canary.is_some() {
                // Nothing half-promoted: a canary in a step goes with the deploy.
                super::canary::delete(client, env).await?;
            }
        }
        // Also when the lock was being taken as the signal came: the lease is ours by name.
        drop(held);
        cluster::release_lock(client, namespace, &env.name, &lock_options(options).holder).await?;
        Ok::<_, ClusterError>(())
    };
    match tokio::time::timeout(CLEANUP_TIMEOUT, cleanup).await {
        Ok(Ok(())) => {
            if let (true, Some(n)) = (had_lock, stages.report.revision) {
                message.push_str(&format!("; revision {n} is marked interrupted"));
            }
            message.push_str("; the lock is released: run the deploy again to finish it");
        }
        Ok(Err(e)) => message.push_str(&format!(
            "; could not clean up ({e}): the next deploy marks the revision interrupted once the lock expires"
        )),
        Err(_) => message.push_str(&format!(
            "; the clean-up did not finish within {} s: the next deploy marks the revision interrupted once the lock expires",
            CLEANUP_TIMEOUT.as_secs()
        )),
    }
    stages.emit(EventKind::Note(message.clone()));
    stages.report.outcome = Outcome::Failed;
    stages.report.error = Some(ErrorReport {
        code: FailureCode::Interrupted,
        message: message.clone(),
    });
    DeployError::Interrupted {
        signal,
        message,
        report: Box::new(stages.report),
    }
}

/// How long the clean-up after a signal may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_stop_on_signals_no_handler_is_installed() {
        let waited = tokio::time::timeout(Duration::from_millis(20), stop_signal(false)).await;
        assert!(waited.is_err(), "never resolves when disabled");
    }
}
