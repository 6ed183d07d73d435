//! Judging one workload from everything the watches have seen (no I/O): its progress line,
//! the pods of its new revision, and the failure they show, if any.

use super::classify::{
    CrashTolerance, FAILURES_ALLOWED_ANNOTATION, MAX_FAILURES_ALLOWED, classify_pod, is_ready,
    ready_message,
};
use super::watch::Watched;
use super::{FailureReason, ObjectRef, TrackEvent};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

/// Everything the watches have seen in the namespace.
#[derive(Default)]
pub struct Cache {
    pub deployments: Watched<Deployment>,
    pub statefulsets: Watched<StatefulSet>,
    pub replicasets: Watched<ReplicaSet>,
    pub jobs: Watched<Job>,
    pub pods: Watched<Pod>,
}

impl Cache {
    /// Every watch has delivered its initial list: until then an absent object may exist.
    pub fn listed(&self) -> bool {
        self.deployments.listed()
            && self.statefulsets.listed()
            && self.replicasets.listed()
            && self.jobs.listed()
            && self.pods.listed()
    }
}

/// A failure seen in the cache, before its evidence is gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub reason: FailureReason,
    pub pod: Option<String>,
    pub container: Option<String>,
    pub message: String,
}

/// What the cache says of one workload.
pub struct Assessment {
    pub line: TrackEvent,
    /// Pods of the new revision, for diagnosis.
    pub pods: Vec<Pod>,
    pub failure: Option<Sighting>,
}

impl Assessment {
    fn waiting_for_the_object(workload: &ObjectRef) -> Self {
        Self {
            line: line(workload, 0, 0, 0, false, "waiting for the object"),
            pods: vec![],
            failure: None,
        }
    }

    /// Why the workload is still not done once the rollout's time is up: a crash loop among
    /// its pods, whatever its tolerance, or else the first pod that is not ready.
    pub fn at_deadline(&self) -> (Option<Sighting>, Option<&Pod>) {
        let crash = pod_failure(&self.pods, CrashTolerance::Exhausted)
            .filter(|s| s.reason == FailureReason::CrashLoop);
        (crash, self.pods.iter().find(|p| !is_ready(p)))
    }
}

/// One progress line.
pub fn line(
    workload: &ObjectRef,
    desired: i32,
    updated: i32,
    ready: i32,
    done: bool,
    note: &str,
) -> TrackEvent {
    TrackEvent {
        workload: workload.to_string(),
        desired,
        updated,
        ready,
        done,
        note: note.to_owned(),
    }
}

/// The crash tolerance the workload's [`FAILURES_ALLOWED_ANNOTATION`] sets, or the default.
pub fn tolerance(meta: &ObjectMeta) -> Result<CrashTolerance, Sighting> {
    let Some(value) = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(FAILURES_ALLOWED_ANNOTATION))
    else {
        return Ok(CrashTolerance::default());
    };
    match value.trim().parse::<u32>() {
        Ok(allowed) if allowed <= MAX_FAILURES_ALLOWED => Ok(CrashTolerance::Allowed(allowed)),
        _ => Err(Sighting {
            reason: FailureReason::ConfigError,
            pod: None,
            container: None,
            message: format!(
                "annotation {FAILURES_ALLOWED_ANNOTATION}: `{value}` is not a whole number \
                 from 0 to {MAX_FAILURES_ALLOWED}"
            ),
        }),
    }
}

fn owned_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references.iter().flatten().any(|o| o.uid == uid)
}

fn owned_pods(cache: &Cache, uid: &str) -> Vec<Pod> {
    cache
        .pods
        .values()
        .filter(|p| owned_by(&p.metadata, uid))
        .cloned()
        .collect()
}

fn pod_failure(pods: &[Pod], tolerance: CrashTolerance) -> Option<Sighting> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .find_map(|p| {
            classify_pod(p, tolerance).map(|problem| Sighting {
                reason: problem.reason,
                pod: Some(p.name_any()),
                container: problem.container,
                message: problem.message,
            })
        })
}

fn assess_deployment(workload: &ObjectRef, cache: &Cache) -> Assessment {
    let Some(d) = cache.deployments.get(&workload.name) else {
        return Assessment::waiting_for_the_object(workload);
    };
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0) >= generation;
    let revision = d
        .annotations()
        .get("deployment.kubernetes.io/revision")
        .cloned();
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let new_rs = cache.replicasets.values().find(|rs| {
        owned_by(&rs.metadata, &uid)
            && revision.is_some()
            && rs.annotations().get("deployment.kubernetes.io/revision") == revision.as_ref()
    });
    let pods: Vec<Pod> = new_rs
        .and_then(|rs| rs.metadata.uid.as_deref())
        .map(|rs_uid| owned_pods(cache, rs_uid))
        .unwrap_or_default();
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = pods
        .iter()
        .filter(|p| is_ready(p) && p.metadata.deletion_timestamp.is_none())
        .count();
    let ready = i32::try_from(ready).unwrap_or(i32::MAX);
    let available = status.available_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    // Until the controller has seen the current generation, the revision annotation (and
    // so `pods`) may still name the previous ReplicaSet: a rollback would otherwise be
    // judged by the pods of the deploy it is undoing.
    let mut failure = match (observed, tolerance(&d.metadata)) {
        (_, Err(invalid)) => Some(invalid),
        (true, Ok(tolerance)) => pod_failure(&pods, tolerance),
        (false, Ok(_)) => None,
    };
    // The condition outlives the rollout it was about (a rollback starts under it): count
    // it only when it names the current ReplicaSet.
    let current_rs = new_rs.map(|rs| format!("\"{}\"", rs.name_any()));
    let deadline = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            && current_rs.as_ref().is_some_and(|rs| {
                c.message
                    .as_deref()
                    .is_some_and(|m| m.contains(rs.as_str()))
            })
    });
    if failure.is_none()
        && observed
        && let Some(c) = deadline
    {
        let condition = c.message.clone().unwrap_or_default();
        // Past the deadline, crashing pods are the reason, however many failures they may have.
        failure = Some(match pod_failure(&pods, CrashTolerance::Exhausted) {
            Some(crash) if crash.reason == FailureReason::CrashLoop => Sighting {
                message: format!("{}; {condition}", crash.message),
                ..crash
            },
            _ => {
                let stuck = pods.iter().find(|p| !is_ready(p));
                Sighting {
                    reason: FailureReason::ProgressDeadlineExceeded,
                    pod: stuck.map(ResourceExt::name_any),
                    container: None,
                    message: format!(
                        "{condition}{}",
                        stuck
                            .map(|p| format!("; pod {}: {}", p.name_any(), ready_message(p)))
                            .unwrap_or_default()
                    ),
                }
            }
        });
    }
    let done = observed && updated == desired && total == desired && available == desired;
    let note = if !observed {
        "waiting for the controller".to_owned()
    } else if total > updated {
        format!("{} old pods terminating", total - updated)
    } else if done {
        "ready".to_owned()
    } else {
        String::new()
    };
    Assessment {
        line: line(workload, desired, updated, ready, done, &note),
        pods,
        failure,
    }
}

fn assess_statefulset(workload: &ObjectRef, cache: &Cache) -> Assessment {
    let Some(s) = cache.statefulsets.get(&workload.name) else {
        return Assessment::waiting_for_the_object(workload);
    };
    let desired = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = s.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0) >= s.metadata.generation.unwrap_or(0);
    let update_revision = status.update_revision.clone().unwrap_or_default();
    let uid = s.metadata.uid.clone().unwrap_or_default();
    let pods: Vec<Pod> = owned_pods(cache, &uid)
        .into_iter()
        .filter(|p| p.labels().get("controller-revision-hash") == Some(&update_revision))
        .collect();
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let current = status.current_revision.as_deref() == Some(update_revision.as_str());
    let done = observed && ready == desired && updated == desired && current;
    let note = if !observed {
        "waiting for the controller"
    } else if done {
        "ready"
    } else {
        ""
    };
    let failure = match (observed, tolerance(&s.metadata)) {
        (_, Err(invalid)) => Some(invalid),
        (true, Ok(tolerance)) => pod_failure(&pods, tolerance),
        (false, Ok(_)) => None,
    };
    Assessment {
        line: line(workload, desired, updated, ready, done, note),
        failure,
        pods,
    }
}

/// The status condition `type_` of a Job when it is `True`.
fn job_condition<'a>(job: &'a Job, types: &[&str]) -> Option<&'a JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| types.contains(&c.type_.as_str()) && c.status == "True")
}

/// The Job has finished successfully (`Complete`, or `SuccessCriteriaMet` on its way there).
pub fn is_job_complete(job: &Job) -> bool {
    job_condition(job, &["Complete", "SuccessCriteriaMet"]).is_some()
}

/// Why the Job gave up, when it did: `Failed` (or `FailureTarget`, which precedes it while
/// the controller terminates pods), as "Reason: message".
pub fn job_failure(job: &Job) -> Option<String> {
    let c = job_condition(job, &["Failed", "FailureTarget"])?;
    let reason = c.reason.as_deref().unwrap_or("Failed");
    Some(match c.message.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => format!("{reason}: {m}"),
        None => reason.to_owned(),
    })
}

/// A failed pod's container and how it ended: "exit code 2 (Error)".
fn pod_exit(pod: &Pod) -> (Option<String>, Option<String>) {
    let terminated = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .find_map(|c| {
            let t = c.state.as_ref()?.terminated.as_ref()?;
            (t.exit_code != 0).then(|| (c.name.clone(), t))
        });
    match terminated {
        Some((name, t)) => (
            Some(name),
            Some(format!(
                "exit code {}{}",
                t.exit_code,
                t.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )),
        ),
        None => (None, None),
    }
}

fn assess_job(workload: &ObjectRef, cache: &Cache) -> Assessment {
    let Some(job) = cache.jobs.get(&workload.name) else {
        return Assessment::waiting_for_the_object(workload);
    };
    let spec = job.spec.clone().unwrap_or_default();
    let status = job.status.clone().unwrap_or_default();
    let desired = spec.completions.unwrap_or(1);
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let mut pods = owned_pods(cache, &uid);
    // Newest first: the pod that failed last is the one to explain.
    pods.sort_by(|a, b| {
        b.metadata
            .creation_timestamp
            .cmp(&a.metadata.creation_timestamp)
    });
    let succeeded = status.succeeded.unwrap_or(0);
    let active = status.active.unwrap_or(0);
    let failed = status.failed.unwrap_or(0);
    let done = is_job_complete(job);
    let failure = match (job_failure(job), tolerance(&job.metadata)) {
        (Some(condition), _) => {
            let failed_pod = pods
                .iter()
                .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
                .or_else(|| pods.first());
            let (container, exit) = failed_pod.map(pod_exit).unwrap_or_default();
            let backoff_limit = spec.backoff_limit.unwrap_or(6);
            let mut message =
                format!("{condition} ({failed} failed pods, backoff limit {backoff_limit}");
            if let Some(deadline) = spec.active_deadline_seconds {
                message.push_str(&format!(", active deadline {deadline} s"));
            }
            message.push(')');
            if let (Some(p), Some(exit)) = (failed_pod, exit) {
                message.push_str(&format!("; pod {} ended with {exit}", p.name_any()));
            }
            Some(Sighting {
                reason: FailureReason::JobFailed,
                pod: failed_pod.map(ResourceExt::name_any),
                container,
                message,
            })
        }
        // A completed Job's pods are history, whatever they show.
        (None, _) if done => None,
        (None, Err(invalid)) => Some(invalid),
        (None, Ok(tolerance)) => pod_failure(&pods, tolerance),
    };
    let note = if done {
        "complete".to_owned()
    } else if failed > 0 {
        format!("{active} running, {failed} failed")
    } else {
        format!("{active} running")
    };
    Assessment {
        line: line(workload, desired, succeeded, succeeded, done, &note),
        pods,
        failure,
    }
}

/// What the cache says of `workload` (a kind [`super::is_tracked`] accepts).
pub fn assess(workload: &ObjectRef, cache: &Cache) -> Assessment {
    match workload.kind.as_str() {
        "StatefulSet" => assess_statefulset(workload, cache),
        "Job" => assess_job(workload, cache),
        _ => assess_deployment(workload, cache),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::track::classify::tests::{crashed, waiting};
    use serde_json::{Value, json};

    fn reference(kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: if kind == "Job" { "batch/v1" } else { "apps/v1" }.into(),
            kind: kind.into(),
            namespace: Some("ns".into()),
            name: name.into(),
        }
    }

    fn ready_pod() -> Value {
        json!({ "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }],
            "containerStatuses": [{ "name": "app", "image": "a", "imageID": "", "ready": true,
                "restartCount": 0, "state": { "running": {} } }] })
    }

    fn owned_pod(name: &str, owner_uid: &str, labels: Value, status: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": name, "namespace": "ns", "labels": labels,
                "creationTimestamp": "2026-11-26T20:00:00Z",
                "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "owner", "uid": owner_uid }] },
            "status": status
        }))
        .expect("pod")
    }

    /// Deployment `app` (uid `d-uid`) at `generation`, whose revision annotation names
    /// `revision`, with `status` and `annotations` of its own.
    fn deployment(
        generation: i64,
        revision: &str,
        status: Value,
        annotations: Value,
    ) -> Deployment {
        let mut all = json!({ "deployment.kubernetes.io/revision": revision });
        if let (Some(all), Some(extra)) = (all.as_object_mut(), annotations.as_object()) {
            all.extend(extra.clone());
        }
        serde_json::from_value(json!({
            "metadata": { "name": "app", "namespace": "ns", "uid": "d-uid",
                "generation": generation, "annotations": all },
            "spec": { "replicas": 2, "selector": {}, "template": {} },
            "status": status
        }))
        .expect("deployment")
    }

    /// ReplicaSet `app-<revision>` of the Deployment, uid `rs-<revision>`.
    fn replicaset(revision: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": { "name": format!("app-{revision}"), "namespace": "ns",
                "uid": format!("rs-{revision}"),
                "annotations": { "deployment.kubernetes.io/revision": revision },
                "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "Deployment",
                    "name": "app", "uid": "d-uid" }] },
            "spec": { "selector": {} }
        }))
        .expect("replicaset")
    }

    /// `count` pods of ReplicaSet `app-<revision>`, each with `status`.
    fn replicaset_pods(cache: &mut Cache, revision: &str, count: usize, status: &Value) {
        for i in 0..count {
            cache.pods.insert(owned_pod(
                &format!("app-{revision}-{i}"),
                &format!("rs-{revision}"),
                json!({}),
                status.clone(),
            ));
        }
    }

    fn rolled_out(generation: i64) -> Value {
        json!({ "observedGeneration": generation, "replicas": 2, "updatedReplicas": 2,
            "readyReplicas": 2, "availableReplicas": 2 })
    }

    fn deadline_exceeded(replicaset: &str) -> Value {
        json!({ "observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
            "conditions": [{ "type": "Progressing", "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": format!("ReplicaSet \"{replicaset}\" has timed out progressing.") }] })
    }

    #[test]
    fn a_missing_workload_is_waited_for() {
        let cache = Cache::default();
        for kind in ["Deployment", "StatefulSet", "Job"] {
            let assessment = assess(&reference(kind, "app"), &cache);
            assert_eq!(assessment.line.note, "waiting for the object", "{kind}");
            assert!(
                !assessment.line.done && assessment.failure.is_none(),
                "{kind}"
            );
        }
    }

    #[test]
    fn a_deployment_is_done_once_observed_and_every_replica_is_available() {
        let mut cache = Cache::default();
        cache.replicasets.insert(replicaset("1"));
        cache.replicasets.insert(replicaset("2"));
        replicaset_pods(&mut cache, "2", 2, &ready_pod());
        cache
            .deployments
            .insert(deployment(2, "2", rolled_out(2), json!({})));
        let done = assess(&reference("Deployment", "app"), &cache);
        assert!(done.failure.is_none());
        assert_eq!(
            (done.line.desired, done.line.updated, done.line.ready),
            (2, 2, 2)
        );
        assert!(done.line.done);
        assert_eq!(done.line.note, "ready");
        assert_eq!(done.pods.len(), 2, "the new ReplicaSet's pods");

        // One replica not yet available: not done, nothing wrong.
        let mut status = rolled_out(2);
        status["availableReplicas"] = json!(1);
        cache
            .deployments
            .insert(deployment(2, "2", status, json!({})));
        let pending = assess(&reference("Deployment", "app"), &cache);
        assert!(!pending.line.done && pending.failure.is_none());
        assert_eq!(pending.line.note, "");

        // Three replicas, two of them updated: one old pod is still terminating.
        let mut status = rolled_out(2);
        status["replicas"] = json!(3);
        cache
            .deployments
            .insert(deployment(2, "2", status, json!({})));
        let terminating = assess(&reference("Deployment", "app"), &cache);
        assert!(!terminating.line.done);
        assert_eq!(terminating.line.note, "1 old pods terminating");
    }

    #[test]
    fn only_the_pods_of_the_new_replica_set_are_judged() {
        let mut cache = Cache::default();
        cache.replicasets.insert(replicaset("1"));
        cache.replicasets.insert(replicaset("2"));
        // The old revision's pods crash (a rolling update away from them); the new ones serve.
        replicaset_pods(&mut cache, "1", 2, &crashed(9, true));
        replicaset_pods(&mut cache, "2", 2, &ready_pod());
        let mut status = rolled_out(2);
        status["availableReplicas"] = json!(1);
        cache
            .deployments
            .insert(deployment(2, "2", status, json!({})));
        let assessment = assess(&reference("Deployment", "app"), &cache);
        assert!(assessment.failure.is_none(), "{:?}", assessment.failure);
        let names: Vec<String> = assessment.pods.iter().map(ResourceExt::name_any).collect();
        assert_eq!(names.len(), 2);
        assert!(names.iter().all(|n| n.starts_with("app-2-")), "{names:?}");

        // The same pods as the new revision's fail it.
        cache
            .deployments
            .insert(deployment(2, "1", rolled_out(2), json!({})));
        let failure = assess(&reference("Deployment", "app"), &cache)
            .failure
            .expect("the new revision's pods crash-loop");
        assert_eq!(failure.reason, FailureReason::CrashLoop);
        assert!(
            failure
                .pod
                .as_deref()
                .is_some_and(|p| p.starts_with("app-1-")),
            "{failure:?}"
        );
    }

    /// A rollback re-applies the previous template: generation 3, but until the controller
    /// has observed it the revision annotation still names the crash-looping ReplicaSet of
    /// the deploy being undone. Those pods must not fail the rollback.
    #[test]
    fn a_rollback_is_not_judged_by_the_pods_it_undoes_until_the_controller_sees_it() {
        let mut cache = Cache::default();
        cache.replicasets.insert(replicaset("1"));
        cache.replicasets.insert(replicaset("2"));
        replicaset_pods(&mut cache, "2", 2, &crashed(9, true));
        let mut unobserved = rolled_out(2);
        unobserved["availableReplicas"] = json!(0);
        cache
            .deployments
            .insert(deployment(3, "2", unobserved, json!({})));
        let waiting = assess(&reference("Deployment", "app"), &cache);
        assert!(waiting.failure.is_none(), "{:?}", waiting.failure);
        assert!(!waiting.line.done);
        assert_eq!(waiting.line.note, "waiting for the controller");

        // Observed: the controller moved the first ReplicaSet up to revision 3.
        let mut rolled_back = replicaset("1");
        rolled_back.metadata.annotations = Some(
            [(
                "deployment.kubernetes.io/revision".to_owned(),
                "3".to_owned(),
            )]
            .into(),
        );
        cache.replicasets.insert(rolled_back);
        replicaset_pods(&mut cache, "1", 2, &ready_pod());
        cache
            .deployments
            .insert(deployment(3, "3", rolled_out(3), json!({})));
        let done = assess(&reference("Deployment", "app"), &cache);
        assert!(done.failure.is_none(), "{:?}", done.failure);
        assert!(done.line.done);
        assert!(
            done.pods.iter().all(|p| p.name_any().starts_with("app-1-")),
            "judged by the ReplicaSet it rolled back to"
        );
    }

    #[test]
    fn a_progress_deadline_counts_only_when_it_names_the_current_replica_set() {
        let mut cache = Cache::default();
        cache.replicasets.insert(replicaset("2"));
        cache.replicasets.insert(replicaset("3"));
        replicaset_pods(&mut cache, "3", 1, &waiting("ContainerCreating", ""));
        // Left over from the rollout of revision 2, which this one replaces.
        cache
            .deployments
            .insert(deployment(2, "3", deadline_exceeded("app-2"), json!({})));
        let stale = assess(&reference("Deployment", "app"), &cache);
        assert!(stale.failure.is_none(), "{:?}", stale.failure);

        cache
            .deployments
            .insert(deployment(2, "3", deadline_exceeded("app-3"), json!({})));
        let failure = assess(&reference("Deployment", "app"), &cache)
            .failure
            .expect("the deadline passed");
        assert_eq!(failure.reason, FailureReason::ProgressDeadlineExceeded);
        assert_eq!(failure.pod.as_deref(), Some("app-3-0"));
        assert_eq!(
            failure.message,
            "ReplicaSet \"app-3\" has timed out progressing.; pod app-3-0: Pending, not ready"
        );
    }

    #[test]
    fn past_the_progress_deadline_a_tolerated_crash_is_the_reason() {
        let mut cache = Cache::default();
        cache.replicasets.insert(replicaset("3"));
        // One failure, tolerated while there is time.
        replicaset_pods(&mut cache, "3", 1, &crashed(1, false));
        let mut status = deadline_exceeded("app-3");
        status["conditions"][0]["status"] = json!("True");
        status["conditions"][0]["reason"] = json!("ReplicaSetUpdated");
        cache
            .deployments
            .insert(deployment(2, "3", status, json!({})));
        assert!(
            assess(&reference("Deployment", "app"), &cache)
                .failure
                .is_none()
        );
        cache
            .deployments
            .insert(deployment(2, "3", deadline_exceeded("app-3"), json!({})));
        let failure = assess(&reference("Deployment", "app"), &cache)
            .failure
            .expect("the deadline passed");
        assert_eq!(failure.reason, FailureReason::CrashLoop);
        assert_eq!(failure.container.as_deref(), Some("app"));
        assert_eq!(
            failure.message,
            "restarted 1 times, last exit code 1 (Error); still not ready; ReplicaSet \"app-3\" has timed out progressing."
        );
    }

    #[test]
    fn the_workload_annotation_sets_the_failures_allowed_per_replica() {
        let judged = |annotation: Value| {
            let mut cache = Cache::default();
            cache.replicasets.insert(replicaset("2"));
            // Two failures: the second exit, backing off.
            replicaset_pods(&mut cache, "2", 2, &crashed(1, true));
            cache
                .deployments
                .insert(deployment(2, "2", rolled_out(2), annotation));
            assess(&reference("Deployment", "app"), &cache).failure
        };
        assert_eq!(
            judged(json!({})),
            None,
            "the default tolerates two failures"
        );
        let key = FAILURES_ALLOWED_ANNOTATION;
        assert_eq!(judged(json!({ key: "2" })), None);
        let strict = judged(json!({ key: "1" })).expect("one failure allowed");
        assert_eq!(strict.reason, FailureReason::CrashLoop);
        assert!(
            strict
                .message
                .ends_with("2 failures, more than the 1 allowed per replica"),
            "{}",
            strict.message
        );
        let mut tried = 0;
        for bad in ["many", "-1", "1.5", "101", ""] {
            let invalid = judged(json!({ key: bad })).expect("an invalid annotation");
            assert_eq!(invalid.reason, FailureReason::ConfigError, "{bad:?}");
            assert_eq!(
                invalid.message,
                format!(
                    "annotation wactl.dev/failures-allowed-per-replica: `{bad}` is not a whole number from 0 to 100"
                )
            );
            tried += 1;
        }
        assert_eq!(tried, 5);
    }

    /// StatefulSet `db` (uid `s-uid`) at generation 2 with `status` and `annotations`.
    fn statefulset(status: Value, annotations: Value) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": { "name": "db", "namespace": "ns", "uid": "s-uid", "generation": 2,
                "annotations": annotations },
            "spec": { "replicas": 2, "selector": {}, "template": {}, "serviceName": "db" },
            "status": status
        }))
        .expect("statefulset")
    }

    fn statefulset_pod(cache: &mut Cache, ordinal: usize, revision: &str, status: Value) {
        cache.pods.insert(owned_pod(
            &format!("db-{ordinal}"),
            "s-uid",
            json!({ "controller-revision-hash": revision }),
            status,
        ));
    }

    fn statefulset_status(observed: i64, ready: i32, updated: i32, current: &str) -> Value {
        json!({ "observedGeneration": observed, "replicas": 2, "readyReplicas": ready,
            "updatedReplicas": updated, "currentRevision": current, "updateRevision": "db-new" })
    }

    #[test]
    fn a_statefulset_is_done_when_every_replica_runs_the_update_revision() {
        let mut cache = Cache::default();
        statefulset_pod(&mut cache, 0, "db-new", ready_pod());
        statefulset_pod(&mut cache, 1, "db-new", ready_pod());
        cache.statefulsets.insert(statefulset(
            statefulset_status(2, 2, 2, "db-new"),
            json!({}),
        ));
        let done = assess(&reference("StatefulSet", "db"), &cache);
        assert!(done.line.done && done.failure.is_none());
        assert_eq!(done.line.note, "ready");
        assert_eq!(done.pods.len(), 2);

        // Mid-update: the controller still counts the old revision as current.
        cache.statefulsets.insert(statefulset(
            statefulset_status(2, 2, 2, "db-old"),
            json!({}),
        ));
        assert!(!assess(&reference("StatefulSet", "db"), &cache).line.done);
        cache.statefulsets.insert(statefulset(
            statefulset_status(2, 1, 2, "db-new"),
            json!({}),
        ));
        assert!(!assess(&reference("StatefulSet", "db"), &cache).line.done);
    }

    #[test]
    fn a_statefulset_is_judged_by_the_pods_of_its_update_revision_once_observed() {
        let mut cache = Cache::default();
        // Ordinal 1 still runs (and crashes in) the old revision; ordinal 0 is updated.
        statefulset_pod(&mut cache, 0, "db-new", ready_pod());
        statefulset_pod(&mut cache, 1, "db-old", crashed(9, true));
        cache.statefulsets.insert(statefulset(
            statefulset_status(2, 1, 1, "db-old"),
            json!({}),
        ));
        let updating = assess(&reference("StatefulSet", "db"), &cache);
        assert!(updating.failure.is_none(), "{:?}", updating.failure);
        assert_eq!(updating.pods.len(), 1, "only the update revision's pods");

        // The update revision crash-loops too; before the controller observed the
        // generation nothing is judged, after it the crash loop fails it.
        statefulset_pod(&mut cache, 1, "db-new", crashed(4, true));
        cache.statefulsets.insert(statefulset(
            statefulset_status(1, 1, 1, "db-old"),
            json!({}),
        ));
        let unobserved = assess(&reference("StatefulSet", "db"), &cache);
        assert!(unobserved.failure.is_none());
        assert_eq!(unobserved.line.note, "waiting for the controller");
        cache.statefulsets.insert(statefulset(
            statefulset_status(2, 1, 2, "db-old"),
            json!({}),
        ));
        let failure = assess(&reference("StatefulSet", "db"), &cache)
            .failure
            .expect("crash loop");
        assert_eq!(failure.reason, FailureReason::CrashLoop);
        assert_eq!(failure.pod.as_deref(), Some("db-1"));

        // A StatefulSet that allows more failures per replica waits longer.
        cache.statefulsets.insert(statefulset(
            statefulset_status(2, 1, 2, "db-old"),
            json!({ FAILURES_ALLOWED_ANNOTATION: "5" }),
        ));
        assert!(
            assess(&reference("StatefulSet", "db"), &cache)
                .failure
                .is_none()
        );
    }

    fn job(status: Value) -> Job {
        serde_json::from_value(json!({
            "metadata": { "name": "migrate", "namespace": "ns", "uid": "job-uid" },
            "spec": { "backoffLimit": 1, "activeDeadlineSeconds": 60,
                "template": { "spec": { "containers": [] } } },
            "status": status
        }))
        .expect("job")
    }

    fn job_pod(name: &str, created: &str, status: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": name, "creationTimestamp": created,
                "ownerReferences": [{ "apiVersion": "batch/v1", "kind": "Job",
                    "name": "migrate", "uid": "job-uid" }] },
            "status": status
        }))
        .expect("pod")
    }

    #[test]
    fn job_conditions() {
        let complete = job(json!({ "succeeded": 1, "conditions": [
            { "type": "SuccessCriteriaMet", "status": "True" },
            { "type": "Complete", "status": "True" }] }));
        assert!(is_job_complete(&complete));
        assert_eq!(job_failure(&complete), None);

        let running = job(json!({ "active": 1, "conditions": [
            { "type": "Complete", "status": "False" }] }));
        assert!(!is_job_complete(&running));
        assert_eq!(job_failure(&running), None);

        let failed = job(
            json!({ "failed": 2, "conditions": [{ "type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit" }] }),
        );
        assert!(!is_job_complete(&failed));
        assert_eq!(
            job_failure(&failed).as_deref(),
            Some("BackoffLimitExceeded: Job has reached the specified backoff limit")
        );
        // FailureTarget comes first, while the controller is still stopping pods.
        let target = job(
            json!({ "conditions": [{ "type": "FailureTarget", "status": "True",
            "reason": "DeadlineExceeded", "message": "" }] }),
        );
        assert_eq!(job_failure(&target).as_deref(), Some("DeadlineExceeded"));
    }

    #[test]
    fn a_failed_job_names_its_last_failed_pod_and_exit_code() {
        let mut cache = Cache::default();
        cache.jobs.insert(job(
            json!({ "failed": 2, "conditions": [{ "type": "Failed", "status": "True",
                "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit" }] }),
        ));
        let failed_pod = |exit: i32| {
            json!({ "phase": "Failed", "containerStatuses": [{ "name": "migrate", "image": "a",
                "imageID": "", "ready": false, "restartCount": 0,
                "state": { "terminated": { "exitCode": exit, "reason": "Error" } } }] })
        };
        for (name, created, exit) in [
            ("migrate-a", "2026-11-26T20:00:00Z", 1),
            ("migrate-b", "2026-11-26T20:00:10Z", 2),
        ] {
            cache.pods.insert(job_pod(name, created, failed_pod(exit)));
        }
        let assessment = assess(&reference("Job", "migrate"), &cache);
        let failure = assessment.failure.expect("failed");
        assert_eq!(failure.reason, FailureReason::JobFailed);
        assert_eq!(failure.pod.as_deref(), Some("migrate-b"));
        assert_eq!(failure.container.as_deref(), Some("migrate"));
        assert_eq!(
            failure.message,
            "BackoffLimitExceeded: Job has reached the specified backoff limit (2 failed pods, backoff limit 1, active deadline 60 s); pod migrate-b ended with exit code 2 (Error)"
        );
        assert!(!assessment.line.done);
        assert_eq!(failure.reason.code(), "job_failed");
    }

    #[test]
    fn a_job_is_done_when_complete_and_its_pods_problems_fail_it_early() {
        let mut cache = Cache::default();
        cache.jobs.insert(job(json!({ "active": 1 })));
        cache.pods.insert(job_pod(
            "migrate-a",
            "2026-11-26T20:00:00Z",
            waiting("ImagePullBackOff", "not found"),
        ));
        let early = assess(&reference("Job", "migrate"), &cache);
        assert_eq!(
            early.failure.map(|f| f.reason),
            Some(FailureReason::ImagePull),
            "an image that cannot be pulled fails the Job before its deadline"
        );
        assert_eq!(early.line.note, "1 running");

        cache.pods.clear();
        cache.jobs.insert(job(
            json!({ "succeeded": 1, "conditions": [{ "type": "Complete", "status": "True" }] }),
        ));
        let done = assess(&reference("Job", "migrate"), &cache);
        assert!(done.failure.is_none());
        assert!(done.line.done);
        assert_eq!((done.line.desired, done.line.updated), (1, 1));
        assert!(crate::cluster::track::is_tracked(&reference(
            "Job", "migrate"
        )));
    }
}
