//! Pull-request previews: a copy of a base environment in a namespace of its own
//! (`<namespace>-pr-<N>`), labelled as that pull request's preview and annotated with when
//! it expires, so that `down` and `gc` can find it, and can tell it from any namespace that
//! is not a preview's, which they never touch.

use crate::cluster::{ClusterError, api_message};
use crate::config::Environment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

/// `"true"` on every preview namespace.
pub const PREVIEW_LABEL: &str = "wactl.dev/preview";
/// The base environment a preview was made from.
pub const PREVIEW_OF_LABEL: &str = "wactl.dev/preview-of";
/// The pull request number.
pub const PULL_REQUEST_LABEL: &str = "wactl.dev/pull-request";
/// RFC 3339 time after which `gc` removes the preview.
pub const EXPIRES_AT_ANNOTATION: &str = "wactl.dev/expires-at";
/// Field manager of the preview's labels and annotation (wactl's own apply leaves them).
const FIELD_MANAGER: &str = "wactl-preview";
/// The longest namespace name Kubernetes accepts (an RFC 1123 label).
const NAMESPACE_LIMIT: usize = 63;

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(
        "the preview of {environment} for pull request {pr} would live in namespace {namespace}, {length} characters long; Kubernetes allows {NAMESPACE_LIMIT} (shorten cluster.namespace of {environment})"
    )]
    NamespaceTooLong {
        environment: String,
        pr: u64,
        namespace: String,
        length: usize,
    },
    #[error(
        "namespace {namespace} exists and is not wactl's preview of {environment} for pull request {pr} (its labels: {labels}); a preview never touches a namespace that is not a preview's"
    )]
    NotAPreview {
        namespace: String,
        environment: String,
        pr: u64,
        labels: String,
    },
    #[error(transparent)]
    Cluster(Box<ClusterError>),
}

impl From<ClusterError> for PreviewError {
    fn from(error: ClusterError) -> Self {
        Self::Cluster(Box::new(error))
    }
}

impl PreviewError {
    /// The request itself is refused (exit 2), rather than the cluster failing.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::NamespaceTooLong { .. } | Self::NotAPreview { .. }
        )
    }
}

/// `<namespace>-pr-<N>`, checked against Kubernetes' length limit.
pub fn namespace_for(base: &Environment, pr: u64) -> Result<String, PreviewError> {
    let namespace = format!("{}-pr-{pr}", base.cluster.namespace);
    if namespace.len() > NAMESPACE_LIMIT {
        return Err(PreviewError::NamespaceTooLong {
            environment: base.name.clone(),
            pr,
            length: namespace.len(),
            namespace,
        });
    }
    Ok(namespace)
}

/// The URL a preview answers on: its own host (`pr-<N>.<host>`) when the base environment
/// has an Ingress host.
pub fn url(env: &Environment) -> Option<String> {
    let host = env.ingress.host.as_ref().filter(|_| env.ingress.enabled)?;
    let scheme = if env.ingress.tls.is_some() {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}/"))
}

/// The preview of `base` for pull request `pr`: named `<env>-pr-<N>`, in its own namespace,
/// with its own GitHub environment and host, never protected (it is thrown away), and
/// smoke-tested at its own URL only (never the base environment's).
pub fn derive(base: &Environment, pr: u64) -> Result<Environment, PreviewError> {
    let mut env = base.clone();
    env.name = format!("{}-pr-{pr}", base.name);
    env.cluster.namespace = namespace_for(base, pr)?;
    env.github.environment = format!("{}-pr-{pr}", base.github.environment);
    env.protected = false;
    env.ingress.host = base.ingress.host.as_ref().map(|h| format!("pr-{pr}.{h}"));
    // A TLS secret names the base host's certificate: the preview's host is another.
    if let Some(tls) = &mut env.ingress.tls {
        tls.secret_name = format!("{}-pr-{pr}", tls.secret_name);
    }
    env.smoke.url = url(&env);
    Ok(env)
}

/// True when `labels` mark the preview of `environment` for pull request `pr`.
pub fn is_preview_of(labels: &BTreeMap<String, String>, environment: &str, pr: u64) -> bool {
    labels.get(PREVIEW_LABEL).map(String::as_str) == Some("true")
        && labels.get(PREVIEW_OF_LABEL).map(String::as_str) == Some(environment)
        && labels.get(PULL_REQUEST_LABEL) == Some(&pr.to_string())
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "none".to_owned();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A namespace read, or `None` when it does not exist.
async fn read(api: &Api<Namespace>, name: &str) -> Result<Option<Namespace>, ClusterError> {
    api.get_opt(name).await.map_err(|e| ClusterError::Api {
        action: "read",
        object: format!("Namespace {name}"),
        message: api_message(&e),
    })
}

/// Refuses a namespace that exists and is not this preview's.
fn check_ours(
    namespace: &Namespace,
    base: &Environment,
    pr: u64,
    name: &str,
) -> Result<(), PreviewError> {
    let labels = namespace.metadata.labels.clone().unwrap_or_default();
    if is_preview_of(&labels, &base.name, pr) {
        return Ok(());
    }
    Err(PreviewError::NotAPreview {
        namespace: name.to_owned(),
        environment: base.name.clone(),
        pr,
        labels: labels_text(&labels),
    })
}

/// Creates (or re-labels) the preview's namespace with its labels and expiry; refuses a
/// namespace of that name that is not this preview's.
pub async fn claim(
    client: &Client,
    base: &Environment,
    pr: u64,
    expires_at: Timestamp,
) -> Result<String, PreviewError> {
    let name = namespace_for(base, pr)?;
    let api: Api<Namespace> = Api::all(client.clone());
    if let Some(existing) = read(&api, &name).await? {
        check_ours(&existing, base, pr, &name)?;
    }
    let namespace = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                PREVIEW_LABEL: "true",
                PREVIEW_OF_LABEL: base.name,
                PULL_REQUEST_LABEL: pr.to_string(),
            },
            "annotations": { EXPIRES_AT_ANNOTATION: expires_at.to_string() },
        }
    });
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&namespace),
    )
    .await
    .map_err(|e| ClusterError::Api {
        action: "apply",
        object: format!("Namespace {name}"),
        message: api_message(&e),
    })?;
    Ok(name)
}

/// What `down` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Removal {
    /// The namespace, and everything in it, is being deleted.
    Removed { namespace: String },
    /// There was no preview to remove.
    Absent { namespace: String },
}

/// Deletes the preview's namespace (and so everything in it: objects, revisions, lock);
/// refuses a namespace of that name that is not this preview's.
pub async fn remove(client: &Client, base: &Environment, pr: u64) -> Result<Removal, PreviewError> {
    let name = namespace_for(base, pr)?;
    let api: Api<Namespace> = Api::all(client.clone());
    let Some(existing) = read(&api, &name).await? else {
        return Ok(Removal::Absent { namespace: name });
    };
    check_ours(&existing, base, pr, &name)?;
    match api.delete(&name, &DeleteParams::background()).await {
        Ok(_) => Ok(Removal::Removed { namespace: name }),
        Err(e) if crate::cluster::is_not_found(&e) => Ok(Removal::Absent { namespace: name }),
        Err(e) => Err(ClusterError::Api {
            action: "delete",
            object: format!("Namespace {name}"),
            message: api_message(&e),
        }
        .into()),
    }
}

/// A preview found in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    pub namespace: String,
    pub pr: u64,
    /// The expiry annotation as written (`None`: missing).
    pub expires_at: Option<String>,
}

impl Preview {
    /// Whether it expired at `now`; `None` when its expiry is missing or unreadable.
    pub fn expired(&self, now: Timestamp) -> Option<bool> {
        let expires: Timestamp = self.expires_at.as_deref()?.parse().ok()?;
        Some(expires <= now)
    }
}

/// The previews of `base`: namespaces labelled as its previews whose name is the one a
/// preview of theirs would have (a label copied onto another namespace is not enough).
pub async fn list(client: &Client, base: &Environment) -> Result<Vec<Preview>, PreviewError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let selector = format!("{PREVIEW_LABEL}=true,{PREVIEW_OF_LABEL}={}", base.name);
    let found = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| ClusterError::Api {
            action: "list",
            object: format!("Namespaces labelled {selector}"),
            message: api_message(&e),
        })?;
    let mut previews = Vec::new();
    for namespace in found.items {
        let name = namespace.metadata.name.clone().unwrap_or_default();
        let labels = namespace.metadata.labels.clone().unwrap_or_default();
        let Some(pr) = labels
            .get(PULL_REQUEST_LABEL)
            .and_then(|p| p.parse::<u64>().ok())
        else {
            continue;
        };
        if namespace_for(base, pr).ok().as_deref() != Some(name.as_str())
            || namespace.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        previews.push(Preview {
            namespace: name,
            pr,
            expires_at: namespace
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(EXPIRES_AT_ANNOTATION))
                .cloned(),
        });
    }
    previews.sort_by_key(|p| p.pr);
    Ok(previews)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn only_the_matching_preview_labels_are_ours() {
        let ours = labels(&[
            (PREVIEW_LABEL, "true"),
            (PREVIEW_OF_LABEL, "staging"),
            (PULL_REQUEST_LABEL, "7"),
        ]);
        assert!(is_preview_of(&ours, "staging", 7));
        assert!(!is_preview_of(&ours, "staging", 8), "another pull request");
        assert!(!is_preview_of(&ours, "production", 7), "another base");
        let mut not_preview = ours.clone();
        not_preview.insert(PREVIEW_LABEL.into(), "false".into());
        assert!(!is_preview_of(&not_preview, "staging", 7));
        assert!(!is_preview_of(&BTreeMap::new(), "staging", 7));
    }

    #[test]
    fn expiry_is_read_and_a_missing_one_is_not_guessed() {
        let now: Timestamp = "2026-11-30T12:00:00Z".parse().expect("time");
        let at = |t: Option<&str>| Preview {
            namespace: "ns-pr-1".into(),
            pr: 1,
            expires_at: t.map(str::to_owned),
        };
        assert_eq!(at(Some("2026-11-30T11:59:59Z")).expired(now), Some(true));
        assert_eq!(at(Some("2026-12-03T12:00:00Z")).expired(now), Some(false));
        assert_eq!(at(Some("soon")).expired(now), None);
        assert_eq!(at(None).expired(now), None);
    }
}
