//! Revisions: what each deploy applied, recorded in the cluster as one ConfigMap per
//! revision in the environment's namespace (objects gzip-compressed in `binaryData`).

use super::{ClusterError, ENVIRONMENT_LABEL, FIELD_MANAGER, MANAGED_BY, ObjectRef, api_message};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};

const REVISION_LABEL: &str = "wactl.dev/revision";
const STATUS_LABEL: &str = "wactl.dev/status";
const SUMMARY_KEY: &str = "revision.json";
const OBJECTS_KEY: &str = "objects.json.gz";
/// Revisions kept per environment; older ones are deleted after each deploy.
pub const KEEP: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevisionStatus {
    Pending,
    Succeeded,
    Failed,
    RolledBack,
    Interrupted,
}

impl RevisionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::RolledBack => "rolled-back",
            Self::Interrupted => "interrupted",
        }
    }
}

/// One applied object with the rendered file it came from (which gives its apply order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedObject {
    pub file: String,
    pub object: Value,
}

/// One deploy (or rollback) of an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    pub number: u32,
    pub environment: String,
    pub status: RevisionStatus,
    /// The service image reference deployed.
    pub image: String,
    /// Image reference → digest, for every image the objects use that has one.
    #[serde(default)]
    pub digests: BTreeMap<String, String>,
    pub git_commit: Option<String>,
    /// Who deployed, as users name them: `GITHUB_ACTOR` in GitHub Actions, else the git
    /// user of the checkout (`Name <email>`), else `$USER@host` (see `deploy::identity`).
    pub user: String,
    /// The machine the deploy ran on.
    pub host: String,
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Why it failed, when it did.
    pub message: Option<String>,
    /// Set when this revision re-applied an earlier one.
    pub rollback_of: Option<u32>,
    /// Kind, namespace and name of every object (also in `objects`, but readable without
    /// decompressing).
    pub inventory: Vec<ObjectRef>,
    /// `strategy: canary`: each step's evidence (absent in revisions recorded before, and
    /// in rolling ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<super::evidence::CanaryReport>,
    #[serde(skip)]
    pub objects: Vec<RecordedObject>,
}

impl Revision {
    pub fn config_map_name(environment: &str, number: u32) -> String {
        format!("wactl-{environment}-rev-{number:05}")
    }
}

fn bad(namespace: &str, name: &str, message: impl ToString) -> ClusterError {
    ClusterError::BadRevision {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        message: message.to_string(),
    }
}

/// The ConfigMap that records `revision` in `namespace`.
pub fn encode(revision: &Revision, namespace: &str) -> Result<ConfigMap, ClusterError> {
    let name = Revision::config_map_name(&revision.environment, revision.number);
    let summary = serde_json::to_string_pretty(revision).map_err(|e| bad(namespace, &name, e))?;
    let objects = serde_json::to_vec(&revision.objects).map_err(|e| bad(namespace, &name, e))?;
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&objects)
        .map_err(|e| bad(namespace, &name, e))?;
    let compressed = gz.finish().map_err(|e| bad(namespace, &name, e))?;
    let labels = BTreeMap::from([
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        (ENVIRONMENT_LABEL.to_owned(), revision.environment.clone()),
        (REVISION_LABEL.to_owned(), revision.number.to_string()),
        (STATUS_LABEL.to_owned(), revision.status.as_str().to_owned()),
    ]);
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(SUMMARY_KEY.to_owned(), summary)])),
        binary_data: Some(BTreeMap::from([(
            OBJECTS_KEY.to_owned(),
            ByteString(compressed),
        )])),
        ..Default::default()
    })
}

/// Reads a revision back from its ConfigMap.
pub fn decode(config_map: &ConfigMap) -> Result<Revision, ClusterError> {
    let namespace = config_map.metadata.namespace.as_deref().unwrap_or_default();
    let name = config_map.metadata.name.as_deref().unwrap_or_default();
    let summary = config_map
        .data
        .as_ref()
        .and_then(|d| d.get(SUMMARY_KEY))
        .ok_or_else(|| bad(namespace, name, format!("no {SUMMARY_KEY}")))?;
    let mut revision: Revision =
        serde_json::from_str(summary).map_err(|e| bad(namespace, name, e))?;
    let compressed = config_map
        .binary_data
        .as_ref()
        .and_then(|d| d.get(OBJECTS_KEY))
        .ok_or_else(|| bad(namespace, name, format!("no {OBJECTS_KEY}")))?;
    let mut json = Vec::new();
    GzDecoder::new(compressed.0.as_slice())
        .read_to_end(&mut json)
        .map_err(|e| bad(namespace, name, e))?;
    revision.objects = serde_json::from_slice(&json).map_err(|e| bad(namespace, name, e))?;
    Ok(revision)
}

fn selector(environment: &str) -> String {
    format!(
        "{}={},{ENVIRONMENT_LABEL}={environment}",
        MANAGED_BY.0, MANAGED_BY.1
    )
}

/// Every recorded revision of `environment`, oldest first. None when the namespace is gone.
pub async fn list(
    client: &Client,
    namespace: &str,
    environment: &str,
) -> Result<Vec<Revision>, ClusterError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let found = match api
        .list(&ListParams::default().labels(&selector(environment)))
        .await
    {
        Ok(list) => list.items,
        Err(e) if super::is_not_found(&e) => Vec::new(),
        Err(e) => {
            return Err(ClusterError::Api {
                action: "list revisions in",
                object: format!("namespace {namespace}"),
                message: api_message(&e),
            });
        }
    };
    let mut revisions = found.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    revisions.sort_by_key(|r| r.number);
    Ok(revisions)
}

/// Records a new revision.
pub async fn create(
    client: &Client,
    namespace: &str,
    revision: &Revision,
) -> Result<(), ClusterError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let config_map = encode(revision, namespace)?;
    api.create(&PostParams::default(), &config_map)
        .await
        .map_err(|e| ClusterError::Api {
            action: "record revision",
            object: format!(
                "ConfigMap {namespace}/{}",
                Revision::config_map_name(&revision.environment, revision.number)
            ),
            message: api_message(&e),
        })?;
    Ok(())
}

/// Rewrites a recorded revision (its status changed).
pub async fn update(
    client: &Client,
    namespace: &str,
    revision: &Revision,
) -> Result<(), ClusterError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let config_map = encode(revision, namespace)?;
    let name = Revision::config_map_name(&revision.environment, revision.number);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&config_map),
    )
    .await
    .map_err(|e| ClusterError::Api {
        action: "update revision",
        object: format!("ConfigMap {namespace}/{name}"),
        message: api_message(&e),
    })?;
    Ok(())
}

/// Deletes all but the newest [`KEEP`] revisions.
pub async fn trim(
    client: &Client,
    namespace: &str,
    revisions: &[Revision],
) -> Result<(), ClusterError> {
    let excess = revisions.len().saturating_sub(KEEP);
    delete(client, namespace, &revisions[..excess]).await
}

/// Deletes the recorded `revisions` (one ConfigMap each); one already gone is fine.
pub async fn delete(
    client: &Client,
    namespace: &str,
    revisions: &[Revision],
) -> Result<(), ClusterError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for old in revisions {
        let name = Revision::config_map_name(&old.environment, old.number);
        if let Err(e) = api.delete(&name, &DeleteParams::default()).await
            && !super::is_not_found(&e)
        {
            return Err(ClusterError::Api {
                action: "delete revision",
                object: format!("ConfigMap {namespace}/{name}"),
                message: api_message(&e),
            });
        }
    }
    Ok(())
}

/// Images and digests used by `objects`: every container image, with the digest when the
/// reference pins one (`name@sha256:…`).
pub fn images(objects: &[RecordedObject]) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for o in objects {
        for path in [
            "/spec/template/spec/containers",
            "/spec/template/spec/initContainers",
        ] {
            for c in o
                .object
                .pointer(path)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(image) = c.get("image").and_then(Value::as_str) {
                    let digest = image
                        .split_once('@')
                        .map(|(_, d)| d.to_owned())
                        .unwrap_or_default();
                    found.insert(image.to_owned(), digest);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::evidence::{CanaryReport, Measurement, MetricValue, StepReport, Verdict};
    use crate::config::model::Bound;
    use serde_json::json;

    fn revision() -> Revision {
        let objects = vec![RecordedObject {
            file: "k8s/50-deployment-a.yaml".into(),
            object: json!({ "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "a", "namespace": "ns" },
                "spec": { "template": { "spec": { "containers": [
                    { "name": "a", "image": "127.0.0.1:5000/a@sha256:abc" },
                    { "name": "b", "image": "b:1" } ] } } } }),
        }];
        Revision {
            number: 7,
            environment: "dev".into(),
            status: RevisionStatus::Succeeded,
            image: "127.0.0.1:5000/a@sha256:abc".into(),
            digests: images(&objects),
            git_commit: Some("0123abc".into()),
            user: "ci".into(),
            host: "runner".into(),
            started_at: "2026-11-26T20:00:00Z".into(),
            finished_at: Some("2026-11-26T20:00:05Z".into()),
            message: None,
            rollback_of: None,
            canary: None,
            inventory: objects
                .iter()
                .filter_map(|o| ObjectRef::of(&o.object))
                .collect(),
            objects,
        }
    }

    #[test]
    fn a_revision_survives_its_config_map() {
        let original = revision();
        let config_map = encode(&original, "ns").expect("encodes");
        assert_eq!(
            config_map.metadata.name.as_deref(),
            Some("wactl-dev-rev-00007")
        );
        let labels = config_map.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels["wactl.dev/status"], "succeeded");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "wactl");
        assert_eq!(labels["wactl.dev/environment"], "dev");
        // Through JSON, as the API server returns it.
        let wire: ConfigMap =
            serde_json::from_value(serde_json::to_value(&config_map).expect("json")).expect("back");
        assert_eq!(decode(&wire).expect("decodes"), original);
    }

    #[test]
    fn digests_come_from_pinned_references() {
        let digests = revision().digests;
        assert_eq!(digests["127.0.0.1:5000/a@sha256:abc"], "sha256:abc");
        assert_eq!(digests["b:1"], "");
    }

    #[test]
    fn a_damaged_revision_is_a_clear_error() {
        let mut config_map = encode(&revision(), "ns").expect("encodes");
        config_map.binary_data = Some(BTreeMap::from([(
            OBJECTS_KEY.to_owned(),
            ByteString(b"nope".to_vec()),
        )]));
        let error = decode(&config_map).expect_err("damaged");
        assert!(
            error
                .to_string()
                .starts_with("revision wactl-dev-rev-00007 in namespace ns is unreadable"),
            "{error}"
        );
    }

    fn evidence() -> CanaryReport {
        let metric = |verdict, canary| MetricValue {
            name: "success-rate".into(),
            canary,
            stable: Some(1.0),
            bound: Bound::Min(0.95),
            verdict,
            reason: canary
                .is_none()
                .then(|| "no data for the canary".to_owned()),
        };
        let measurement = |elapsed_seconds, verdict, canary| Measurement {
            step: 1,
            elapsed_seconds,
            verdict,
            metrics: vec![metric(verdict, canary)],
            reason: None,
        };
        CanaryReport {
            skipped: None,
            leftover_removed: vec!["Deployment ns/a-canary".into()],
            steps: vec![StepReport {
                step: 1,
                weight: 25,
                canary_replicas: 1,
                stable_replicas: 3,
                verdict: Verdict::Failed,
                measurements: vec![
                    measurement(10, Verdict::Inconclusive, None),
                    measurement(20, Verdict::Failed, Some(0.0)),
                ],
            }],
        }
    }

    #[test]
    fn a_canary_s_evidence_survives_its_config_map() {
        let mut original = revision();
        original.canary = Some(evidence());
        let config_map = encode(&original, "ns").expect("encodes");
        let summary: Value =
            serde_json::from_str(&config_map.data.as_ref().expect("data")[SUMMARY_KEY])
                .expect("json");
        let step = &summary["canary"]["steps"][0];
        assert_eq!(step["weight"], 25);
        assert_eq!(step["verdict"], "failed");
        let metric = &step["measurements"][1]["metrics"][0];
        assert_eq!(metric["name"], "success-rate");
        assert_eq!(metric["canary"], 0.0);
        assert_eq!(metric["stable"], 1.0);
        assert_eq!(metric["bound"], serde_json::json!({ "min": 0.95 }));
        assert_eq!(metric["verdict"], "failed");
        let wire: ConfigMap =
            serde_json::from_value(serde_json::to_value(&config_map).expect("json")).expect("back");
        assert_eq!(decode(&wire).expect("decodes"), original);
    }

    #[test]
    fn a_revision_recorded_before_canary_evidence_reads_without_it() {
        let mut config_map = encode(&revision(), "ns").expect("encodes");
        let data = config_map.data.as_mut().expect("data");
        let mut summary: Value = serde_json::from_str(&data[SUMMARY_KEY]).expect("json");
        assert!(summary.get("canary").is_none(), "a rolling one writes none");
        // As older wactl wrote it: no `canary`, nor any field added since.
        summary
            .as_object_mut()
            .expect("object")
            .retain(|k, _| k != "canary");
        data.insert(SUMMARY_KEY.to_owned(), summary.to_string());
        assert_eq!(decode(&config_map).expect("decodes").canary, None);
        // And evidence without the optional parts (no leftover, no steps) reads too.
        let sparse: CanaryReport =
            serde_json::from_value(serde_json::json!({ "skipped": "first deploy" }))
                .expect("sparse");
        assert_eq!(sparse.skipped.as_deref(), Some("first deploy"));
        assert!(sparse.steps.is_empty() && sparse.leftover_removed.is_empty());
    }
}
