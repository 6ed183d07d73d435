//! The evidence for a failure: the pod's (or workload's) latest events and the container's
//! last log lines, each read with a bounded wait.

use super::assess::Sighting;
use super::{FailureReason, ObjectRef, RolloutFailure};
use crate::cluster::api_message;
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};
use std::time::Duration;

/// Adds the pod's (or workload's) events and, for a crash loop, the container's last logs.
pub async fn diagnose(
    client: &Client,
    namespace: &str,
    workload: &ObjectRef,
    sighting: Sighting,
) -> RolloutFailure {
    let Sighting {
        reason,
        pod,
        container,
        message,
    } = sighting;
    let subject = pod.clone().unwrap_or_else(|| workload.name.clone());
    let events = recent_events(client, namespace, &subject).await;
    let (logs, logs_note) = match (&pod, reason) {
        (
            Some(pod),
            FailureReason::CrashLoop
            | FailureReason::JobFailed
            | FailureReason::ReadinessTimeout
            | FailureReason::ProgressDeadlineExceeded,
        ) => {
            last_logs(
                client,
                namespace,
                pod,
                container.as_deref(),
                reason == FailureReason::CrashLoop,
            )
            .await
        }
        _ => (Vec::new(), None),
    };
    RolloutFailure {
        reason,
        workload: workload.to_string(),
        pod,
        container,
        message,
        events,
        logs,
        logs_note,
    }
}

/// The last events about `name`, oldest first, as "Warning BackOff: message".
pub async fn recent_events(client: &Client, namespace: &str, name: &str) -> Vec<String> {
    let api: Api<KubeEvent> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
    let Ok(Ok(list)) = tokio::time::timeout(Duration::from_secs(5), api.list(&params)).await else {
        return Vec::new();
    };
    let mut events = list.items;
    events.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
    });
    let skip = events.len().saturating_sub(8);
    events
        .iter()
        .skip(skip)
        .map(|e| {
            format!(
                "{} {}: {}{}",
                e.type_.as_deref().unwrap_or("Normal"),
                e.reason.as_deref().unwrap_or_default(),
                e.message.as_deref().unwrap_or_default().trim(),
                e.count
                    .filter(|c| *c > 1)
                    .map(|c| format!(" (x{c})"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

async fn last_logs(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    previous: bool,
) -> (Vec<String>, Option<String>) {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = |previous| LogParams {
        container: container.map(str::to_owned),
        previous,
        tail_lines: Some(20),
        ..LogParams::default()
    };
    let mut result =
        tokio::time::timeout(Duration::from_secs(5), api.logs(pod, &params(previous))).await;
    if previous && !matches!(result, Ok(Ok(_))) {
        result = tokio::time::timeout(Duration::from_secs(5), api.logs(pod, &params(false))).await;
    }
    match result {
        Ok(Ok(text)) if !text.trim().is_empty() => {
            (text.lines().map(str::to_owned).collect(), None)
        }
        Ok(Ok(_)) => (
            Vec::new(),
            Some("the container wrote no log lines".to_owned()),
        ),
        Ok(Err(e)) => (
            Vec::new(),
            Some(format!(
                "not retrievable ({}); simulated (kwok) nodes run no containers",
                api_message(&e)
            )),
        ),
        Err(_) => (
            Vec::new(),
            Some("not retrievable: the kubelet did not answer within 5 s".to_owned()),
        ),
    }
}
