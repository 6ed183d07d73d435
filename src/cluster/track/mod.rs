//! Rollout tracking by watching: Deployments through their new ReplicaSet, StatefulSets
//! through their update revision, Jobs through their conditions, and the Pods of all three. The first sign of a failure a
//! person would act on ends the wait with its reason, the pod's events and logs.

use super::{ObjectRef, api_message};
use futures_util::{StreamExt, stream};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Event as KubeEvent, Pod};
use kube::api::{ListParams, LogParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    ImagePull,
    CrashLoop,
    ConfigError,
    Unschedulable,
    ReadinessTimeout,
    ProgressDeadlineExceeded,
    /// A Job gave up: its backoff limit or active deadline was reached.
    JobFailed,
}

impl FailureReason {
    /// Stable code for `--output json` and scripts.
    pub fn code(self) -> &'static str {
        match self {
            Self::ImagePull => "image_pull",
            Self::CrashLoop => "crash_loop",
            Self::ConfigError => "config_error",
            Self::Unschedulable => "unschedulable",
            Self::ReadinessTimeout => "readiness_timeout",
            Self::ProgressDeadlineExceeded => "progress_deadline_exceeded",
            Self::JobFailed => "job_failed",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::ImagePull => "image cannot be pulled",
            Self::CrashLoop => "container is crash-looping",
            Self::ConfigError => "container configuration is invalid",
            Self::Unschedulable => "pod cannot be scheduled",
            Self::ReadinessTimeout => "pods never became ready",
            Self::ProgressDeadlineExceeded => "progress deadline exceeded",
            Self::JobFailed => "job failed",
        }
    }
}

/// What is wrong with one pod, read from its status alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    pub reason: FailureReason,
    pub container: Option<String>,
    pub message: String,
}

/// Why a rollout failed, with the evidence.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutFailure {
    pub reason: FailureReason,
    pub workload: String,
    pub pod: Option<String>,
    pub container: Option<String>,
    pub message: String,
    /// The pod's (or workload's) latest events, oldest first.
    pub events: Vec<String>,
    /// The container's last log lines, when any could be read.
    pub logs: Vec<String>,
    /// Why there are no logs, when there are none.
    pub logs_note: Option<String>,
}

impl fmt::Display for RolloutFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.workload, self.reason.describe())?;
        if let Some(pod) = &self.pod {
            write!(f, " (pod {pod}")?;
            if let Some(c) = &self.container {
                write!(f, ", container {c}")?;
            }
            write!(f, ")")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.events.is_empty() {
            write!(f, "\n  events:")?;
            for e in &self.events {
                write!(f, "\n    {e}")?;
            }
        }
        if !self.logs.is_empty() {
            write!(f, "\n  last log lines:")?;
            for l in &self.logs {
                write!(f, "\n    {l}")?;
            }
        } else if let Some(note) = &self.logs_note {
            write!(f, "\n  logs: {note}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RolloutFailure {}

/// One progress line for a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackEvent {
    pub workload: String,
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub done: bool,
    pub note: String,
}

impl fmt::Display for TrackEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}/{} updated, {}/{} ready",
            self.workload, self.updated, self.desired, self.ready, self.desired
        )?;
        if !self.note.is_empty() {
            write!(f, " ({})", self.note)?;
        }
        Ok(())
    }
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

fn container_problem(status: &ContainerStatus) -> Option<PodProblem> {
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
    let crashed = last.is_some_and(|t| t.exit_code != 0);
    // A container that crashed while a dependency started and now serves (ready) is not
    // crash-looping; a real node shows that often, kwok never.
    if reason == "CrashLoopBackOff" || (status.restart_count >= 2 && crashed && !status.ready) {
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
        return problem(
            FailureReason::CrashLoop,
            format!("restarted {} times{exit}", status.restart_count),
        );
    }
    None
}

/// The failure a pod's status shows, if any.
pub fn classify_pod(pod: &Pod) -> Option<PodProblem> {
    let status = pod.status.as_ref()?;
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    if let Some(problem) = containers.filter_map(container_problem).next() {
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

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn ready_message(pod: &Pod) -> String {
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

fn owned_by(
    pod_owner: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
    uid: &str,
) -> bool {
    pod_owner.iter().any(|o| o.uid == uid)
}

/// Everything the watches have seen in the namespace.
#[derive(Default)]
struct Cache {
    deployments: HashMap<String, Deployment>,
    statefulsets: HashMap<String, StatefulSet>,
    replicasets: HashMap<String, ReplicaSet>,
    jobs: HashMap<String, Job>,
    pods: HashMap<String, Pod>,
}

/// A failure seen in the cache: reason, pod, container, message.
type Sighting = (FailureReason, Option<String>, Option<String>, String);

/// Initial-list buffers of the five watches.
type Buffers = (
    Option<HashMap<String, Deployment>>,
    Option<HashMap<String, StatefulSet>>,
    Option<HashMap<String, ReplicaSet>>,
    Option<HashMap<String, Job>>,
    Option<HashMap<String, Pod>>,
);

/// What the cache says of one workload.
struct Assessment {
    line: TrackEvent,
    /// Pods of the new revision, for diagnosis.
    pods: Vec<Pod>,
    failure: Option<Sighting>,
}

fn line(
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

fn pod_failure(pods: &[Pod]) -> Option<Sighting> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .find_map(|p| {
            classify_pod(p).map(|problem| {
                (
                    problem.reason,
                    Some(p.name_any()),
                    problem.container,
                    problem.message,
                )
            })
        })
}

fn assess_deployment(workload: &ObjectRef, cache: &Cache) -> Assessment {
    let Some(d) = cache.deployments.get(&workload.name) else {
        return Assessment {
            line: line(workload, 0, 0, 0, false, "waiting for the object"),
            pods: vec![],
            failure: None,
        };
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
        owned_by(
            rs.metadata.owner_references.as_deref().unwrap_or_default(),
            &uid,
        ) && revision.is_some()
            && rs.annotations().get("deployment.kubernetes.io/revision") == revision.as_ref()
    });
    let pods: Vec<Pod> = new_rs
        .and_then(|rs| rs.metadata.uid.clone())
        .map(|rs_uid| {
            cache
                .pods
                .values()
                .filter(|p| {
                    owned_by(
                        p.metadata.owner_references.as_deref().unwrap_or_default(),
                        &rs_uid,
                    )
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = pods
        .iter()
        .filter(|p| is_ready(p) && p.metadata.deletion_timestamp.is_none())
        .count() as i32;
    let available = status.available_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    // Until the controller has seen the current generation, the revision annotation (and
    // so `pods`) may still name the previous ReplicaSet: a rollback would otherwise be
    // judged by the pods of the deploy it is undoing.
    let mut failure = if observed { pod_failure(&pods) } else { None };
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
        let stuck = pods.iter().find(|p| !is_ready(p));
        failure = Some((
            FailureReason::ProgressDeadlineExceeded,
            stuck.map(ResourceExt::name_any),
            None,
            format!(
                "{}{}",
                c.message.clone().unwrap_or_default(),
                stuck
                    .map(|p| format!("; pod {}: {}", p.name_any(), ready_message(p)))
                    .unwrap_or_default()
            ),
        ));
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
        return Assessment {
            line: line(workload, 0, 0, 0, false, "waiting for the object"),
            pods: vec![],
            failure: None,
        };
    };
    let desired = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = s.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0) >= s.metadata.generation.unwrap_or(0);
    let update_revision = status.update_revision.clone().unwrap_or_default();
    let uid = s.metadata.uid.clone().unwrap_or_default();
    let pods: Vec<Pod> = cache
        .pods
        .values()
        .filter(|p| {
            owned_by(
                p.metadata.owner_references.as_deref().unwrap_or_default(),
                &uid,
            )
        })
        .filter(|p| p.labels().get("controller-revision-hash") == Some(&update_revision))
        .cloned()
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
    Assessment {
        line: line(workload, desired, updated, ready, done, note),
        failure: if observed { pod_failure(&pods) } else { None },
        pods,
    }
}

/// The status condition `type_` of a Job when it is `True`.
fn job_condition<'a>(
    job: &'a Job,
    types: &[&str],
) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
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
        return Assessment {
            line: line(workload, 0, 0, 0, false, "waiting for the object"),
            pods: vec![],
            failure: None,
        };
    };
    let spec = job.spec.clone().unwrap_or_default();
    let status = job.status.clone().unwrap_or_default();
    let desired = spec.completions.unwrap_or(1);
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let mut pods: Vec<Pod> = cache
        .pods
        .values()
        .filter(|p| {
            owned_by(
                p.metadata.owner_references.as_deref().unwrap_or_default(),
                &uid,
            )
        })
        .cloned()
        .collect();
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
    let failure = match job_failure(job) {
        Some(condition) => {
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
            Some((
                FailureReason::JobFailed,
                failed_pod.map(ResourceExt::name_any),
                container,
                message,
            ))
        }
        // A completed Job's pods are history, whatever they show.
        None if done => None,
        None => pod_failure(&pods),
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

fn assess(workload: &ObjectRef, cache: &Cache) -> Assessment {
    match workload.kind.as_str() {
        "StatefulSet" => assess_statefulset(workload, cache),
        "Job" => assess_job(workload, cache),
        _ => assess_deployment(workload, cache),
    }
}

/// Kinds whose rollout [`track`] follows.
pub fn is_tracked(object: &ObjectRef) -> bool {
    matches!(
        (object.api_version.as_str(), object.kind.as_str()),
        ("apps/v1", "Deployment" | "StatefulSet") | ("batch/v1", "Job")
    )
}

enum Update {
    Deployment(Event<Deployment>),
    StatefulSet(Event<StatefulSet>),
    ReplicaSet(Event<ReplicaSet>),
    Job(Event<Job>),
    Pod(Event<Pod>),
    WatchFailed(String),
}

/// Applies one watch event to a name-keyed map; true once the initial list is complete.
fn absorb<K: kube::Resource + Clone>(
    map: &mut HashMap<String, K>,
    buffer: &mut Option<HashMap<String, K>>,
    event: Event<K>,
) -> bool {
    match event {
        Event::Init => {
            *buffer = Some(HashMap::new());
            false
        }
        Event::InitApply(o) => {
            if let Some(b) = buffer.as_mut() {
                b.insert(o.name_any(), o);
            }
            false
        }
        Event::InitDone => {
            if let Some(b) = buffer.take() {
                *map = b;
            }
            true
        }
        Event::Apply(o) => {
            map.insert(o.name_any(), o);
            false
        }
        Event::Delete(o) => {
            map.remove(&o.name_any());
            false
        }
    }
}

/// Waits until every workload in `workloads` (all in `namespace`) has rolled out, or
/// fails with the first real reason, or after `timeout`.
pub async fn track(
    client: &Client,
    namespace: &str,
    workloads: &[ObjectRef],
    timeout: Duration,
    on_progress: &(dyn Fn(&TrackEvent) + Send + Sync),
) -> Result<(), RolloutFailure> {
    let workloads: Vec<&ObjectRef> = workloads.iter().filter(|w| is_tracked(w)).collect();
    if workloads.is_empty() {
        return Ok(());
    }
    let config = watcher::Config::default();
    fn watch<K>(
        client: &Client,
        ns: &str,
        config: &watcher::Config,
    ) -> impl futures_util::Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        watcher::watcher(Api::<K>::namespaced(client.clone(), ns), config.clone()).default_backoff()
    }
    let failed = |e: watcher::Error| Update::WatchFailed(e.to_string());
    let updates = stream::select_all([
        watch::<Deployment>(client, namespace, &config)
            .map(move |e| e.map_or_else(failed, Update::Deployment))
            .boxed(),
        watch::<StatefulSet>(client, namespace, &config)
            .map(move |e| e.map_or_else(failed, Update::StatefulSet))
            .boxed(),
        watch::<ReplicaSet>(client, namespace, &config)
            .map(move |e| e.map_or_else(failed, Update::ReplicaSet))
            .boxed(),
        watch::<Job>(client, namespace, &config)
            .map(move |e| e.map_or_else(failed, Update::Job))
            .boxed(),
        watch::<Pod>(client, namespace, &config)
            .map(move |e| e.map_or_else(failed, Update::Pod))
            .boxed(),
    ]);
    let mut updates = updates;
    let mut cache = Cache::default();
    let mut buffers: Buffers = Default::default();
    let mut listed = [false; 5];
    let mut last: BTreeMap<String, TrackEvent> = BTreeMap::new();
    let mut last_watch_error = None;
    // Said once per outage: the watches retry with backoff and resume by themselves.
    let mut watch_lost = false;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let next = match tokio::time::timeout_at(deadline, updates.next()).await {
            Ok(Some(update)) => update,
            Ok(None) | Err(_) => break,
        };
        match next {
            Update::Deployment(e) => listed[0] |= absorb(&mut cache.deployments, &mut buffers.0, e),
            Update::StatefulSet(e) => {
                listed[1] |= absorb(&mut cache.statefulsets, &mut buffers.1, e)
            }
            Update::ReplicaSet(e) => listed[2] |= absorb(&mut cache.replicasets, &mut buffers.2, e),
            Update::Job(e) => listed[3] |= absorb(&mut cache.jobs, &mut buffers.3, e),
            Update::Pod(e) => listed[4] |= absorb(&mut cache.pods, &mut buffers.4, e),
            Update::WatchFailed(message) => {
                if !watch_lost {
                    watch_lost = true;
                    for workload in &workloads {
                        let name = workload.to_string();
                        let mut seen = last
                            .get(&name)
                            .cloned()
                            .unwrap_or_else(|| line(workload, 0, 0, 0, false, ""));
                        seen.note = format!("lost the watch, retrying: {message}");
                        on_progress(&seen);
                        last.insert(name, seen);
                    }
                }
                last_watch_error = Some(message);
                continue;
            }
        }
        watch_lost = false;
        if !listed.iter().all(|l| *l) {
            continue;
        }
        let mut all_done = true;
        for workload in &workloads {
            let assessment = assess(workload, &cache);
            if let Some((reason, pod, container, message)) = assessment.failure {
                return Err(
                    diagnose(client, namespace, workload, reason, pod, container, message).await,
                );
            }
            all_done &= assessment.line.done;
            if last.get(&assessment.line.workload) != Some(&assessment.line) {
                on_progress(&assessment.line);
                last.insert(assessment.line.workload.clone(), assessment.line);
            }
        }
        if all_done {
            return Ok(());
        }
    }
    // The deadline passed: say which pods never became ready, and why.
    let mut stuck = None;
    for workload in &workloads {
        let assessment = assess(workload, &cache);
        if !assessment.line.done {
            let pod = assessment.pods.iter().find(|p| !is_ready(p));
            let message = match (pod, &last_watch_error) {
                (Some(p), _) => format!(
                    "not ready after {} s; pod {}: {}",
                    timeout.as_secs(),
                    p.name_any(),
                    ready_message(p)
                ),
                (None, Some(e)) => format!(
                    "not ready after {} s; watching failed: {e}",
                    timeout.as_secs()
                ),
                (None, None) => format!(
                    "not ready after {} s ({})",
                    timeout.as_secs(),
                    assessment.line
                ),
            };
            stuck = Some((*workload, pod.map(ResourceExt::name_any), message));
            break;
        }
    }
    let (workload, pod, message) = stuck.unwrap_or((
        workloads[0],
        None,
        format!("not ready after {} s", timeout.as_secs()),
    ));
    Err(diagnose(
        client,
        namespace,
        workload,
        FailureReason::ReadinessTimeout,
        pod,
        None,
        message,
    )
    .await)
}

/// Adds the pod's (or workload's) events and, for a crash loop, the container's last logs.
async fn diagnose(
    client: &Client,
    namespace: &str,
    workload: &ObjectRef,
    reason: FailureReason,
    pod: Option<String>,
    container: Option<String>,
    message: String,
) -> RolloutFailure {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({ "metadata": { "name": "p" }, "status": status }))
            .expect("pod")
    }

    fn waiting(reason: &str, message: &str) -> serde_json::Value {
        json!({ "containerStatuses": [{
            "name": "app", "image": "registry/app:1", "imageID": "", "ready": false, "restartCount": 0,
            "state": { "waiting": { "reason": reason, "message": message } } }] })
    }

    #[test]
    fn image_pull_failures() {
        for reason in ["ErrImagePull", "ImagePullBackOff"] {
            let problem =
                classify_pod(&pod(waiting(reason, "manifest unknown"))).expect("a problem");
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
        let problem = classify_pod(&pod(status)).expect("a problem");
        assert_eq!(problem.reason, FailureReason::CrashLoop);
        assert_eq!(
            problem.message,
            "restarted 4 times, last exit code 101 (Error)"
        );
    }

    #[test]
    fn repeated_crashes_count_even_between_back_offs() {
        let status = json!({ "containerStatuses": [{
            "name": "app", "image": "a", "imageID": "", "ready": false, "restartCount": 2,
            "state": { "running": {} },
            "lastState": { "terminated": { "exitCode": 1 } } }] });
        assert_eq!(
            classify_pod(&pod(status)).map(|p| p.reason),
            Some(FailureReason::CrashLoop)
        );
    }

    #[test]
    fn earlier_crashes_of_a_container_that_is_now_ready_are_not_a_crash_loop() {
        let status = json!({ "containerStatuses": [{
            "name": "app", "image": "a", "imageID": "", "ready": true, "restartCount": 2,
            "state": { "running": {} },
            "lastState": { "terminated": { "exitCode": 1 } } }] });
        assert_eq!(classify_pod(&pod(status)).map(|p| p.reason), None);
    }

    #[test]
    fn config_errors() {
        let problem = classify_pod(&pod(waiting(
            "CreateContainerConfigError",
            "secret \"db\" not found",
        )))
        .expect("a problem");
        assert_eq!(problem.reason, FailureReason::ConfigError);
        assert!(problem.message.contains("secret \"db\" not found"));
    }

    #[test]
    fn unschedulable_pods() {
        let status = json!({ "phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu." }] });
        let problem = classify_pod(&pod(status)).expect("a problem");
        assert_eq!(problem.reason, FailureReason::Unschedulable);
        assert_eq!(
            problem.message,
            "0/3 nodes are available: 3 Insufficient cpu."
        );
    }

    #[test]
    fn healthy_and_starting_pods_are_fine() {
        assert_eq!(classify_pod(&pod(waiting("ContainerCreating", ""))), None);
        let running = json!({ "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }],
            "containerStatuses": [{ "name": "app", "image": "a", "imageID": "", "ready": true, "restartCount": 1,
            "state": { "running": {} }, "lastState": { "terminated": { "exitCode": 0 } } }] });
        let p = pod(running);
        assert_eq!(classify_pod(&p), None);
        assert!(is_ready(&p));
    }

    #[test]
    fn failure_report_names_workload_pod_events_and_missing_logs() {
        let failure = RolloutFailure {
            reason: FailureReason::CrashLoop,
            workload: "Deployment ns/app".into(),
            pod: Some("app-1".into()),
            container: Some("app".into()),
            message: "restarted 3 times".into(),
            events: vec!["Warning BackOff: Back-off restarting failed container".into()],
            logs: vec![],
            logs_note: Some("not retrievable".into()),
        };
        assert_eq!(
            failure.to_string(),
            "Deployment ns/app: container is crash-looping (pod app-1, container app): restarted 3 times\n  events:\n    Warning BackOff: Back-off restarting failed container\n  logs: not retrievable"
        );
        assert_eq!(failure.reason.code(), "crash_loop");
    }

    fn job(status: serde_json::Value) -> Job {
        serde_json::from_value(json!({
            "metadata": { "name": "migrate", "namespace": "ns", "uid": "job-uid" },
            "spec": { "backoffLimit": 1, "activeDeadlineSeconds": 60,
                "template": { "spec": { "containers": [] } } },
            "status": status
        }))
        .expect("job")
    }

    fn job_pod(name: &str, created: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": name, "creationTimestamp": created,
                "ownerReferences": [{ "apiVersion": "batch/v1", "kind": "Job",
                    "name": "migrate", "uid": "job-uid" }] },
            "status": status
        }))
        .expect("pod")
    }

    fn job_ref() -> ObjectRef {
        ObjectRef {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            namespace: Some("ns".into()),
            name: "migrate".into(),
        }
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
        cache.jobs.insert(
            "migrate".into(),
            job(json!({ "failed": 2, "conditions": [{ "type": "Failed", "status": "True",
                "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit" }] })),
        );
        let failed_pod = |exit: i32| {
            json!({ "phase": "Failed", "containerStatuses": [{ "name": "migrate", "image": "a",
                "imageID": "", "ready": false, "restartCount": 0,
                "state": { "terminated": { "exitCode": exit, "reason": "Error" } } }] })
        };
        for (name, created, exit) in [
            ("migrate-a", "2026-11-26T20:00:00Z", 1),
            ("migrate-b", "2026-11-26T20:00:10Z", 2),
        ] {
            cache
                .pods
                .insert(name.into(), job_pod(name, created, failed_pod(exit)));
        }
        let assessment = assess(&job_ref(), &cache);
        let (reason, pod, container, message) = assessment.failure.expect("failed");
        assert_eq!(reason, FailureReason::JobFailed);
        assert_eq!(pod.as_deref(), Some("migrate-b"));
        assert_eq!(container.as_deref(), Some("migrate"));
        assert_eq!(
            message,
            "BackoffLimitExceeded: Job has reached the specified backoff limit (2 failed pods, backoff limit 1, active deadline 60 s); pod migrate-b ended with exit code 2 (Error)"
        );
        assert!(!assessment.line.done);
        assert_eq!(reason.code(), "job_failed");
    }

    #[test]
    fn a_job_is_done_when_complete_and_its_pods_problems_fail_it_early() {
        let mut cache = Cache::default();
        cache
            .jobs
            .insert("migrate".into(), job(json!({ "active": 1 })));
        cache.pods.insert(
            "migrate-a".into(),
            job_pod(
                "migrate-a",
                "2026-11-26T20:00:00Z",
                waiting("ImagePullBackOff", "not found"),
            ),
        );
        let early = assess(&job_ref(), &cache);
        assert_eq!(
            early.failure.map(|f| f.0),
            Some(FailureReason::ImagePull),
            "an image that cannot be pulled fails the Job before its deadline"
        );
        assert_eq!(early.line.note, "1 running");

        cache.pods.clear();
        cache.jobs.insert(
            "migrate".into(),
            job(
                json!({ "succeeded": 1, "conditions": [{ "type": "Complete", "status": "True" }] }),
            ),
        );
        let done = assess(&job_ref(), &cache);
        assert!(done.failure.is_none());
        assert!(done.line.done);
        assert_eq!((done.line.desired, done.line.updated), (1, 1));
        assert!(is_tracked(&job_ref()));
    }
}
