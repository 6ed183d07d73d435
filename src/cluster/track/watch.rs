//! The watch loop: one watch per kind in the namespace feeds the cache; after each change
//! every workload is assessed, until all are done, one fails, or the time is up.

use super::assess::{Cache, Sighting, assess, line};
use super::classify::ready_message;
use super::diagnose::diagnose;
use super::{FailureReason, ObjectRef, RolloutFailure, TrackEvent, is_tracked};
use futures_util::{StreamExt, stream};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

/// The objects of one kind that a watch has seen, by name.
pub struct Watched<K> {
    objects: HashMap<String, K>,
    /// The initial list as it arrives: it replaces `objects` whole once complete, so that
    /// objects deleted while the watch was down disappear.
    initial: Option<HashMap<String, K>>,
    listed: bool,
}

impl<K> Default for Watched<K> {
    fn default() -> Self {
        Self {
            objects: HashMap::new(),
            initial: None,
            listed: false,
        }
    }
}

impl<K: kube::Resource> Watched<K> {
    pub fn get(&self, name: &str) -> Option<&K> {
        self.objects.get(name)
    }

    pub fn values(&self) -> impl Iterator<Item = &K> {
        self.objects.values()
    }

    /// The initial list has been delivered at least once.
    pub fn listed(&self) -> bool {
        self.listed
    }

    /// Adds or replaces an object, as a watch event does.
    pub fn insert(&mut self, object: K) {
        self.objects.insert(object.name_any(), object);
    }

    #[cfg(test)]
    pub fn clear(&mut self) {
        self.objects.clear();
    }

    /// Applies one watch event.
    fn absorb(&mut self, event: Event<K>) {
        match event {
            Event::Init => self.initial = Some(HashMap::new()),
            Event::InitApply(o) => {
                if let Some(initial) = self.initial.as_mut() {
                    initial.insert(o.name_any(), o);
                }
            }
            Event::InitDone => {
                if let Some(initial) = self.initial.take() {
                    self.objects = initial;
                }
                self.listed = true;
            }
            Event::Apply(o) => self.insert(o),
            Event::Delete(o) => {
                self.objects.remove(&o.name_any());
            }
        }
    }
}

enum Update {
    Deployment(Event<Deployment>),
    StatefulSet(Event<StatefulSet>),
    ReplicaSet(Event<ReplicaSet>),
    Job(Event<Job>),
    Pod(Event<Pod>),
    WatchFailed(String),
}

impl Cache {
    fn absorb(&mut self, update: Update) {
        match update {
            Update::Deployment(e) => self.deployments.absorb(e),
            Update::StatefulSet(e) => self.statefulsets.absorb(e),
            Update::ReplicaSet(e) => self.replicasets.absorb(e),
            Update::Job(e) => self.jobs.absorb(e),
            Update::Pod(e) => self.pods.absorb(e),
            Update::WatchFailed(_) => {}
        }
    }
}

fn watch<K>(
    client: &Client,
    namespace: &str,
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
    watcher::watcher(
        Api::<K>::namespaced(client.clone(), namespace),
        watcher::Config::default(),
    )
    .default_backoff()
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
    let failed = |e: watcher::Error| Update::WatchFailed(e.to_string());
    let mut updates = stream::select_all([
        watch::<Deployment>(client, namespace)
            .map(move |e| e.map_or_else(failed, Update::Deployment))
            .boxed(),
        watch::<StatefulSet>(client, namespace)
            .map(move |e| e.map_or_else(failed, Update::StatefulSet))
            .boxed(),
        watch::<ReplicaSet>(client, namespace)
            .map(move |e| e.map_or_else(failed, Update::ReplicaSet))
            .boxed(),
        watch::<Job>(client, namespace)
            .map(move |e| e.map_or_else(failed, Update::Job))
            .boxed(),
        watch::<Pod>(client, namespace)
            .map(move |e| e.map_or_else(failed, Update::Pod))
            .boxed(),
    ]);
    let mut cache = Cache::default();
    let mut last: BTreeMap<String, TrackEvent> = BTreeMap::new();
    let mut last_watch_error = None;
    // Said once per outage: the watches retry with backoff and resume by themselves.
    let mut watch_lost = false;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let update = match tokio::time::timeout_at(deadline, updates.next()).await {
            Ok(Some(update)) => update,
            Ok(None) | Err(_) => break,
        };
        if let Update::WatchFailed(message) = &update {
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
            last_watch_error = Some(message.clone());
            continue;
        }
        cache.absorb(update);
        watch_lost = false;
        if !cache.listed() {
            continue;
        }
        let mut all_done = true;
        for workload in &workloads {
            let assessment = assess(workload, &cache);
            if let Some(sighting) = assessment.failure {
                return Err(diagnose(client, namespace, workload, sighting).await);
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
    let (workload, sighting) = timed_out(&workloads, &cache, timeout, last_watch_error);
    Err(diagnose(client, namespace, workload, sighting).await)
}

/// The deadline passed: which workload is not done, and why — a crash loop among its pods
/// (whatever failures it tolerated while there was time), the pod that never became ready,
/// or the watch that failed.
fn timed_out<'a>(
    workloads: &[&'a ObjectRef],
    cache: &Cache,
    timeout: Duration,
    last_watch_error: Option<String>,
) -> (&'a ObjectRef, Sighting) {
    let after = format!("not ready after {} s", timeout.as_secs());
    for workload in workloads {
        let assessment = assess(workload, cache);
        if assessment.line.done {
            continue;
        }
        let (crash, stuck) = assessment.at_deadline();
        let sighting = match (crash, stuck, &last_watch_error) {
            (Some(crash), _, _) => Sighting {
                message: format!("{}; {after}", crash.message),
                ..crash
            },
            (None, Some(p), _) => Sighting {
                reason: FailureReason::ReadinessTimeout,
                pod: Some(p.name_any()),
                container: None,
                message: format!("{after}; pod {}: {}", p.name_any(), ready_message(p)),
            },
            (None, None, Some(e)) => Sighting {
                reason: FailureReason::ReadinessTimeout,
                pod: None,
                container: None,
                message: format!("{after}; watching failed: {e}"),
            },
            (None, None, None) => Sighting {
                reason: FailureReason::ReadinessTimeout,
                pod: None,
                container: None,
                message: format!("{after} ({})", assessment.line),
            },
        };
        return (workload, sighting);
    }
    // Every workload was done by the cache's last word, but not before the deadline.
    (
        workloads[0],
        Sighting {
            reason: FailureReason::ReadinessTimeout,
            pod: None,
            container: None,
            message: after,
        },
    )
}
