//! Pod logs of a workload: every container of every pod its selector picks, merged into one
//! stream of lines, each tagged with the pod (and container, when a pod has several).

use super::{ClusterError, api_message};
use futures_util::{AsyncBufReadExt, Stream, StreamExt, stream};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ListParams, LogParams};
use kube::{Api, Client, ResourceExt};

/// Which lines to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOptions {
    /// Keep streaming new lines (of the pods running when the stream starts).
    pub follow: bool,
    /// Only the last N lines of each container.
    pub tail: Option<usize>,
}

/// One log line and where it came from: `pod` or `pod/container`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub source: String,
    pub line: String,
}

/// The workload in `namespace` that `name` names: a Deployment or StatefulSet called `name`,
/// else `{app}-{name}` (so `postgres` finds `address-service-postgres`); its pod selector.
async fn selector(
    client: &Client,
    namespace: &str,
    app: &str,
    name: &str,
) -> Result<(String, String), ClusterError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let read_failed = |what: &str, e: kube::Error| ClusterError::Api {
        action: "read",
        object: format!("{what} in namespace {namespace}"),
        message: api_message(&e),
    };
    for candidate in [name.to_owned(), format!("{app}-{name}")] {
        let found = match deployments
            .get_opt(&candidate)
            .await
            .map_err(|e| read_failed(&format!("Deployment {candidate}"), e))?
        {
            Some(d) => d.spec.map(|s| s.selector),
            None => statefulsets
                .get_opt(&candidate)
                .await
                .map_err(|e| read_failed(&format!("StatefulSet {candidate}"), e))?
                .and_then(|s| s.spec.map(|s| s.selector)),
        };
        if let Some(selector) = found {
            return Ok((candidate, label_query(&selector)));
        }
    }
    let mut known: Vec<String> = Vec::new();
    let all = ListParams::default();
    for d in deployments
        .list(&all)
        .await
        .map_err(|e| read_failed("Deployments", e))?
    {
        known.push(d.name_any());
    }
    for s in statefulsets
        .list(&all)
        .await
        .map_err(|e| read_failed("StatefulSets", e))?
    {
        known.push(s.name_any());
    }
    known.sort();
    Err(ClusterError::UnknownWorkload {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        known: if known.is_empty() {
            "none: deploy the environment first".to_owned()
        } else {
            known.join(", ")
        },
    })
}

/// `key=value,…` of a selector's `matchLabels` (wactl's workloads select by labels only).
fn label_query(selector: &LabelSelector) -> String {
    selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Streams the logs of every pod of workload `name` (see [`selector`]) in `namespace`.
/// The stream ends when every container's log ends (at once without `follow`).
pub async fn workload_logs(
    client: &Client,
    namespace: &str,
    app: &str,
    name: &str,
    options: LogOptions,
) -> Result<
    (
        String,
        impl Stream<Item = Result<LogLine, ClusterError>> + use<>,
    ),
    ClusterError,
> {
    let (workload, labels) = selector(client, namespace, app, name).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut listed = pods
        .list(&ListParams::default().labels(&labels))
        .await
        .map_err(|e| ClusterError::Api {
            action: "list",
            object: format!("Pods of {workload} in namespace {namespace}"),
            message: api_message(&e),
        })?
        .items;
    listed.sort_by_key(ResourceExt::name_any);
    let mut sources = Vec::new();
    for pod in &listed {
        let containers: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
            .collect();
        let several = containers.len() > 1;
        for container in containers {
            let source = if several {
                format!("{}/{container}", pod.name_any())
            } else {
                pod.name_any()
            };
            sources.push((pod.name_any(), container, source));
        }
    }
    let mut streams = Vec::new();
    for (pod, container, source) in sources {
        let params = LogParams {
            container: Some(container),
            follow: options.follow,
            tail_lines: options.tail.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            ..LogParams::default()
        };
        let reader = pods
            .log_stream(&pod, &params)
            .await
            .map_err(|e| ClusterError::Api {
                action: "read the log of",
                object: format!("Pod {namespace}/{source}"),
                message: api_message(&e),
            })?;
        let object = format!("Pod {namespace}/{source}");
        streams.push(
            reader
                .lines()
                .map(move |line| match line {
                    Ok(line) => Ok(LogLine {
                        source: source.clone(),
                        line,
                    }),
                    Err(e) => Err(ClusterError::Api {
                        action: "read the log of",
                        object: object.clone(),
                        message: e.to_string(),
                    }),
                })
                .boxed(),
        );
    }
    Ok((workload, stream::select_all(streams)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_selector_becomes_a_label_query() {
        let selector = LabelSelector {
            match_labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/name".to_owned(),
                    "address-service".to_owned(),
                ),
                ("app.kubernetes.io/instance".to_owned(), "dev".to_owned()),
            ])),
            ..LabelSelector::default()
        };
        assert_eq!(
            label_query(&selector),
            "app.kubernetes.io/instance=dev,app.kubernetes.io/name=address-service"
        );
    }
}
