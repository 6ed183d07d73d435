//! Naming Kubernetes objects and ordering them for apply.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Which object: enough to find it again through discovery.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// Reads `apiVersion`, `kind`, `metadata.name` and `metadata.namespace` of an object.
    pub fn of(object: &Value) -> Option<Self> {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let metadata = object.get("metadata");
        Some(Self {
            api_version: text(object.get("apiVersion"))?,
            kind: text(object.get("kind"))?,
            namespace: text(metadata.and_then(|m| m.get("namespace"))),
            name: text(metadata.and_then(|m| m.get("name")))?,
        })
    }

    /// `(group, version)` of the object's `apiVersion`; the core group is `""`.
    pub fn group_version(&self) -> (&str, &str) {
        match self.api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", self.api_version.as_str()),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Apply group of a rendered file `k8s/NN-kind-name.yaml`: its tens digit, so namespace (0x),
/// service accounts and RBAC (1x), config (2x), services (3x), stateful workloads (4x),
/// workloads (5x), and HPA, PDB, network policies and ingress (6x) go in that order.
/// Files without a number go last.
pub fn apply_group(file: &str) -> u8 {
    let name = file.rsplit('/').next().unwrap_or(file);
    name.split_once('-')
        .and_then(|(nn, _)| nn.parse::<u8>().ok())
        .map_or(u8::MAX, |nn| nn / 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_follow_the_file_prefix() {
        let files = [
            "k8s/00-namespace-world.yaml",
            "k8s/10-serviceaccount-a.yaml",
            "k8s/12-rolebinding-a.yaml",
            "k8s/20-configmap-a.yaml",
            "k8s/31-service-postgres.yaml",
            "k8s/40-statefulset-postgres.yaml",
            "k8s/50-deployment-a.yaml",
            "k8s/60-horizontalpodautoscaler-a.yaml",
            "k8s/63-ingress-a.yaml",
            "k8s/custom.yaml",
        ];
        let groups: Vec<u8> = files.iter().map(|f| apply_group(f)).collect();
        assert_eq!(groups, [0, 1, 1, 2, 3, 4, 5, 6, 6, u8::MAX]);
    }

    #[test]
    fn object_ref_reads_identity_and_group() {
        let o = ObjectRef::of(&json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "a", "namespace": "ns" }
        }))
        .expect("complete object");
        assert_eq!(o.group_version(), ("apps", "v1"));
        assert_eq!(o.to_string(), "Deployment ns/a");
        let ns = ObjectRef::of(
            &json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "ns" } }),
        )
        .expect("complete object");
        assert_eq!(ns.group_version(), ("", "v1"));
        assert_eq!(ns.to_string(), "Namespace ns");
        assert!(ObjectRef::of(&json!({ "kind": "X" })).is_none());
    }
}
