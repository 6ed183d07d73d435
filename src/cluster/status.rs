//! Live state of an environment: its latest revision, its objects, workloads and pods.

use super::prometheus::{Alert, PrometheusService};
use super::revision::{self, Revision};
use super::{ClusterError, MANAGED_BY, ObjectRef, Resolver, api_message};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadSummary {
    pub object: ObjectRef,
    pub desired: i32,
    pub ready: i32,
    pub updated: i32,
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodSummary {
    pub name: String,
    pub phase: String,
    pub ready: bool,
    pub restarts: i32,
    pub node: Option<String>,
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LiveStatus {
    pub environment: String,
    pub namespace: String,
    /// The newest revision, whatever its status.
    pub latest: Option<RevisionLine>,
    /// The revision whose objects are live (the newest that succeeded).
    pub current: Option<RevisionLine>,
    /// Every object of the current revision and whether it exists.
    pub objects: Vec<ObjectState>,
    pub workloads: Vec<WorkloadSummary>,
    pub pods: Vec<PodSummary>,
    /// The bundled Prometheus' alerts; `None` when the environment has no bundled Prometheus.
    pub alerts: Option<AlertReport>,
}

/// One object of the current revision and whether it exists in the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectState {
    pub object: ObjectRef,
    pub present: bool,
}

/// What the bundled Prometheus says, or why it could not be asked.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AlertReport {
    /// Every pending and firing alert (empty: all quiet).
    Read { alerts: Vec<Alert> },
    /// Prometheus did not answer; the rest of the status still stands.
    Unavailable { reason: String },
}

/// A revision without its objects, as `history` and `status` print it.
#[derive(Debug, Clone, Serialize)]
pub struct RevisionLine {
    pub number: u32,
    pub status: &'static str,
    pub image: String,
    pub git_commit: Option<String>,
    pub user: String,
    pub host: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub message: Option<String>,
    pub rollback_of: Option<u32>,
    pub objects: usize,
    /// A canary's steps with their evidence, when the revision ran one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<super::evidence::CanaryReport>,
}

impl From<&Revision> for RevisionLine {
    fn from(r: &Revision) -> Self {
        Self {
            number: r.number,
            status: r.status.as_str(),
            image: r.image.clone(),
            git_commit: r.git_commit.clone(),
            user: r.user.clone(),
            host: r.host.clone(),
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
            message: r.message.clone(),
            rollback_of: r.rollback_of,
            objects: r.inventory.len(),
            canary: r.canary.clone(),
        }
    }
}

fn images(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Vec<String> {
    spec.map(|s| {
        s.containers
            .iter()
            .filter_map(|c| c.image.clone())
            .collect()
    })
    .unwrap_or_default()
}

/// Reads the live state of `environment` in `namespace`, with the alerts of `prometheus`
/// (read through the API server's service proxy) when it has one.
pub async fn live_status(
    client: &Client,
    namespace: &str,
    environment: &str,
    prometheus: Option<&PrometheusService>,
) -> Result<LiveStatus, ClusterError> {
    let revisions = revision::list(client, namespace, environment).await?;
    let current = revisions
        .iter()
        .rev()
        .find(|r| r.status == super::RevisionStatus::Succeeded);
    let resolver = Resolver::new(client.clone());
    let mut objects = Vec::new();
    if let Some(current) = current {
        resolver.prefetch(&current.inventory).await?;
        for o in &current.inventory {
            let api = resolver.api(o).await?;
            let exists = api
                .get_metadata_opt(&o.name)
                .await
                .map_err(|e| ClusterError::Api {
                    action: "read",
                    object: o.to_string(),
                    message: api_message(&e),
                })?
                .is_some();
            objects.push(ObjectState {
                object: o.clone(),
                present: exists,
            });
        }
    }
    let owned = ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
    let list_failed = |what: &str, e: kube::Error| ClusterError::Api {
        action: "list",
        object: format!("{what} in namespace {namespace}"),
        message: api_message(&e),
    };
    let mut workloads = Vec::new();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    for d in deployments
        .list(&owned)
        .await
        .map_err(|e| list_failed("Deployments", e))?
    {
        let status = d.status.clone().unwrap_or_default();
        workloads.push(WorkloadSummary {
            object: ObjectRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some(namespace.to_owned()),
                name: d.name_any(),
            },
            desired: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            images: images(d.spec.as_ref().and_then(|s| s.template.spec.as_ref())),
        });
    }
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    for s in statefulsets
        .list(&owned)
        .await
        .map_err(|e| list_failed("StatefulSets", e))?
    {
        let status = s.status.clone().unwrap_or_default();
        workloads.push(WorkloadSummary {
            object: ObjectRef {
                api_version: "apps/v1".into(),
                kind: "StatefulSet".into(),
                namespace: Some(namespace.to_owned()),
                name: s.name_any(),
            },
            desired: s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            images: images(s.spec.as_ref().and_then(|s| s.template.spec.as_ref())),
        });
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut pod_lines = Vec::new();
    for p in pods
        .list(&ListParams::default())
        .await
        .map_err(|e| list_failed("Pods", e))?
    {
        let status = p.status.clone().unwrap_or_default();
        pod_lines.push(PodSummary {
            name: p.name_any(),
            phase: status.phase.clone().unwrap_or_default(),
            ready: status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True"),
            restarts: status
                .container_statuses
                .iter()
                .flatten()
                .map(|c| c.restart_count)
                .sum(),
            node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
            images: images(p.spec.as_ref()),
        });
    }
    pod_lines.sort_by(|a, b| a.name.cmp(&b.name));
    let alerts = match prometheus {
        None => None,
        Some(service) => Some(match super::prometheus::alerts(client, service).await {
            Ok(mut alerts) => {
                alerts.sort_by(|a, b| (a.name(), &a.labels).cmp(&(b.name(), &b.labels)));
                AlertReport::Read { alerts }
            }
            Err(e) => AlertReport::Unavailable {
                reason: e.to_string(),
            },
        }),
    };
    Ok(LiveStatus {
        environment: environment.to_owned(),
        namespace: namespace.to_owned(),
        latest: revisions.last().map(RevisionLine::from),
        current: current.map(RevisionLine::from),
        objects,
        workloads,
        pods: pod_lines,
        alerts,
    })
}
