//! What one pod's status says is wrong with it, read from the status alone (no I/O).

use super::FailureReason;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Failures (exits, counted per container) each replica may have before wactl calls them a
/// crash loop, unless the workload says otherwise with [`FAILURES_ALLOWED_ANNOTATION`].
///
/// Three, because of what a healthy start on a real node looks like: a service that exits
/// while a dependency deployed with it is still starting is restarted at once, then after
/// the kubelet's back-off of 10 s and 20 s; its fourth failure comes about 30 s after the
/// first, which is when a dependency that never came up is worth reporting. Simulated (kwok)
/// pods fail once every 10–21 s, so there the verdict takes 20–45 s.
pub const FAILURES_ALLOWED_PER_REPLICA: u32 = 3;

/// Workload annotation that sets the failures each replica may have before a crash loop
/// fails the rollout (`"0"`: the first failure does).
pub const FAILURES_ALLOWED_ANNOTATION: &str = "wactl.dev/failures-allowed-per-replica";

/// The highest value [`FAILURES_ALLOWED_ANNOTATION`] accepts: the kubelet's back-off reaches
/// 5 minutes per restart, so more than this outlasts any rollout timeout.
pub const MAX_FAILURES_ALLOWED: u32 = 100;

/// How much crashing a rollout still tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashTolerance {
    /// The rollout still has time: this many failures per replica look like a healthy start.
    Allowed(u32),
    /// The rollout's time is up: any failure of a container that is not ready explains it.
    Exhausted,
}

impl Default for CrashTolerance {
    fn default() -> Self {
        Self::Allowed(FAILURES_ALLOWED_PER_REPLICA)
    }
}

/// What is wrong with one pod, read from its status alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    pub reason: FailureReason,
    pub container: Option<String>,
    pub message: String,
}

const IMAGE_PULL: [&str; 4] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];
const CONFIG: [&str; 3] = [
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

fn container_problem(status: &ContainerStatus, tolerance: CrashTolerance) -> Option<PodProblem> {
    let waiting = status.state.as_ref().and_then(|s| s.waiting.as_ref());
    let reason = waiting
        .and_then(|w| w.reason.as_deref())
        .unwrap_or_default();
    let message = waiting.and_then(|w| w.message.clone()).unwrap_or_default();
    let problem = |r: FailureReason, m: String| {
        Some(PodProblem {
            reason: r,
            container: Some(status.name.clone()),
            message: m,
        })
    };
    if IMAGE_PULL.contains(&reason) {
        return problem(
            FailureReason::ImagePull,
            format!("{reason} for image {}: {message}", status.image),
        );
    }
    if CONFIG.contains(&reason) {
        return problem(FailureReason::ConfigError, format!("{reason}: {message}"));
    }
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    let backing_off = reason == "CrashLoopBackOff";
    // A container that crashed while a dependency started and now serves (ready) is not
    // crash-looping; a real node shows that often, kwok never.
    if status.ready || !(backing_off || last.is_some_and(|t| t.exit_code != 0)) {
        return None;
    }
    // The kubelet restarts a container at once after its first exit and shows
    // CrashLoopBackOff from the second on: the exit it backs off from is not a restart yet.
    let restarts = u32::try_from(status.restart_count).unwrap_or(0);
    let failures = restarts.saturating_add(u32::from(backing_off));
    let verdict = match tolerance {
        CrashTolerance::Allowed(allowed) if failures <= allowed => return None,
        CrashTolerance::Allowed(allowed) => {
            format!("{failures} failures, more than the {allowed} allowed per replica")
        }
        CrashTolerance::Exhausted => "still not ready".to_owned(),
    };
    let exit = last
        .map(|t| {
            format!(
                ", last exit code {}{}",
                t.exit_code,
                t.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_default();
    problem(
        FailureReason::CrashLoop,
        format!("restarted {restarts} times{exit}; {verdict}"),
    )
}

/// The failure a pod's status shows, if any, with crashes judged by `tolerance`.
pub fn classify_pod(pod: &Pod, tolerance: CrashTolerance) -> Option<PodProblem> {
    let status = pod.status.as_ref()?;
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    if let Some(problem) = containers
        .filter_map(|c| container_problem(c, tolerance))
        .next()
    {
        return Some(problem);
    }
    // Volumes still being provisioned are not a failure yet: the deadline covers them.
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
            && !c
                .message
                .as_deref()
                .is_some_and(|m| m.contains("PersistentVolumeClaim"))
    });
    unschedulable.map(|c| PodProblem {
        reason: FailureReason::Unschedulable,
        container: None,
        message: c
            .message
            .clone()
            .unwrap_or_else(|| "Unschedulable".to_owned()),
    })
}

/// The pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Why the pod is not ready, as its phase and `Ready` (or `ContainersReady`) condition say.
pub fn ready_message(pod: &Pod) -> String {
    let status = pod.status.as_ref();
    let phase = status
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".to_owned());
    let condition = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.type_ == "Ready" || c.type_ == "ContainersReady")
        })
        .and_then(|c| c.message.clone().or_else(|| c.reason.clone()));
    match condition {
        Some(c) => format!("{phase}, not ready: {c}"),
        None => format!("{phase}, not ready"),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    pub(in crate::cluster::track) fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({ "metadata": { "name": "p" }, "status": status }))
            .expect("pod")
    }

    pub(in crate::cluster::track) fn waiting(reason: &str, message: &str) -> serde_json::Value {
        json!({ "containerStatuses": [{
            "name": "app", "image": "registry/app:1", "imageID": "", "ready": false, "restartCount": 0,
            "state": { "waiting": { "reason": reason, "message": message } } }] })
    }

    /// A container that exited with code 1 and has been restarted `restarts` times, now
    /// backing off (`CrashLoopBackOff`) or running again, not ready.
    pub(in crate::cluster::track) fn crashed(
        restarts: i32,
        backing_off: bool,
    ) -> serde_json::Value {
        let state = if backing_off {
            json!({ "waiting": { "reason": "CrashLoopBackOff", "message": "back-off 10s" } })
        } else {
            json!({ "running": {} })
        };
        json!({ "phase": "Running", "containerStatuses": [{
            "name": "app", "image": "a", "imageID": "", "ready": false, "restartCount": restarts,
            "state": state, "lastState": { "terminated": { "exitCode": 1, "reason": "Error" } } }] })
    }

    fn reason(status: serde_json::Value, tolerance: CrashTolerance) -> Option<FailureReason> {
        classify_pod(&pod(status), tolerance).map(|p| p.reason)
    }

    #[test]
    fn image_pull_failures() {
        for reason in ["ErrImagePull", "ImagePullBackOff"] {
            let problem = classify_pod(
                &pod(waiting(reason, "manifest unknown")),
                CrashTolerance::default(),
            )
            .expect("a problem");
            assert_eq!(problem.reason, FailureReason::ImagePull);
            assert_eq!(problem.container.as_deref(), Some("app"));
            assert!(
                problem.message.contains("registry/app:1"),
                "{}",
                problem.message
            );
            assert!(problem.message.contains("manifest unknown"));
        }
    }

    #[test]
    fn crash_loops_with_exit_code() {
        let status = json!({ "containerStatuses": [{
            "name": "app", "image": "a", "imageID": "", "ready": false, "restartCount": 4,
            "state": { "waiting": { "reason": "CrashLoopBackOff", "message": "back-off 40s" } },
            "lastState": { "terminated": { "exitCode": 101, "reason": "Error" } } }] });
        let problem = classify_pod(&pod(status), CrashTolerance::default()).expect("a problem");
        assert_eq!(problem.reason, FailureReason::CrashLoop);
        assert_eq!(
            problem.message,
            "restarted 4 times, last exit code 101 (Error); 5 failures, more than the 3 allowed per replica"
        );
    }

    /// The kubelet's sequence for a container that exits at once every time: exit 1, an
    /// immediate restart, exit 2 and CrashLoopBackOff (restartCount 1), a restart after
    /// 10 s, exit 3 (restartCount 2), after 20 s exit 4 (restartCount 3) … Each step is
    /// judged with the default tolerance and with none.
    #[test]
    fn a_crash_loop_is_called_after_more_failures_than_allowed_per_replica() {
        // (restartCount, backing off, failures so far)
        let sequence = [
            (1, false, 1),
            (1, true, 2),
            (2, false, 2),
            (2, true, 3),
            (3, false, 3),
            (3, true, 4),
            (4, false, 4),
            (4, true, 5),
        ];
        let mut called = 0;
        for (restarts, backing_off, failures) in sequence {
            let status = crashed(restarts, backing_off);
            let default = reason(status.clone(), CrashTolerance::default());
            let expected =
                (failures > FAILURES_ALLOWED_PER_REPLICA).then_some(FailureReason::CrashLoop);
            assert_eq!(
                default, expected,
                "restartCount {restarts}, backing off {backing_off}"
            );
            called += usize::from(default.is_some());
            for allowed in [0, 1, 2, 5] {
                assert_eq!(
                    reason(status.clone(), CrashTolerance::Allowed(allowed)),
                    (failures > allowed).then_some(FailureReason::CrashLoop),
                    "{allowed} allowed, restartCount {restarts}, backing off {backing_off}"
                );
            }
            // Once the rollout's time is up, any crash explains it.
            assert_eq!(
                reason(status, CrashTolerance::Exhausted),
                Some(FailureReason::CrashLoop)
            );
        }
        assert_eq!(called, 3, "the fourth failure and later are a crash loop");
    }

    #[test]
    fn a_single_exit_while_a_dependency_starts_is_a_healthy_start() {
        // Exactly what the kubelet shows about 2 s into a start whose database is not up yet.
        assert_eq!(reason(crashed(1, true), CrashTolerance::default()), None);
        // The tolerance is per workload: zero makes the first back-off a crash loop.
        assert_eq!(
            reason(crashed(1, true), CrashTolerance::Allowed(0)),
            Some(FailureReason::CrashLoop)
        );
    }

    #[test]
    fn clean_exits_count_only_while_backing_off() {
        let status = |state: serde_json::Value| {
            json!({ "containerStatuses": [{
                "name": "app", "image": "a", "imageID": "", "ready": false, "restartCount": 6,
                "state": state, "lastState": { "terminated": { "exitCode": 0, "reason": "Completed" } } }] })
        };
        assert_eq!(
            reason(status(json!({ "running": {} })), CrashTolerance::default()),
            None
        );
        assert_eq!(
            reason(
                status(json!({ "waiting": { "reason": "CrashLoopBackOff" } })),
                CrashTolerance::default()
            ),
            Some(FailureReason::CrashLoop)
        );
    }

    #[test]
    fn earlier_crashes_of_a_container_that_is_now_ready_are_not_a_crash_loop() {
        let status = json!({ "containerStatuses": [{
            "name": "app", "image": "a", "imageID": "", "ready": true, "restartCount": 9,
            "state": { "running": {} },
            "lastState": { "terminated": { "exitCode": 1 } } }] });
        assert_eq!(reason(status.clone(), CrashTolerance::Allowed(0)), None);
        assert_eq!(reason(status, CrashTolerance::Exhausted), None);
    }

    #[test]
    fn config_errors() {
        let problem = classify_pod(
            &pod(waiting(
                "CreateContainerConfigError",
                "secret \"db\" not found",
            )),
            CrashTolerance::default(),
        )
        .expect("a problem");
        assert_eq!(problem.reason, FailureReason::ConfigError);
        assert!(problem.message.contains("secret \"db\" not found"));
    }

    #[test]
    fn unschedulable_pods() {
        let status = json!({ "phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu." }] });
        let problem = classify_pod(&pod(status), CrashTolerance::default()).expect("a problem");
        assert_eq!(problem.reason, FailureReason::Unschedulable);
        assert_eq!(
            problem.message,
            "0/3 nodes are available: 3 Insufficient cpu."
        );
        let waiting_for_a_volume = json!({ "phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims." }] });
        assert_eq!(
            reason(waiting_for_a_volume, CrashTolerance::Exhausted),
            None
        );
    }

    #[test]
    fn healthy_and_starting_pods_are_fine() {
        assert_eq!(
            classify_pod(
                &pod(waiting("ContainerCreating", "")),
                CrashTolerance::Exhausted
            ),
            None
        );
        let running = json!({ "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }],
            "containerStatuses": [{ "name": "app", "image": "a", "imageID": "", "ready": true, "restartCount": 1,
            "state": { "running": {} }, "lastState": { "terminated": { "exitCode": 0 } } }] });
        let p = pod(running);
        assert_eq!(classify_pod(&p, CrashTolerance::Exhausted), None);
        assert!(is_ready(&p));
        assert!(!is_ready(&pod(waiting("ContainerCreating", ""))));
    }
}
