//! What a saved plan remembers of each live object (uid, resourceVersion and who had
//! written it), and how a later apply finds out that someone changed it in between.
//!
//! The resourceVersion alone cannot say that: it moves on every status update a
//! controller makes. What a person or tool changes shows in `metadata.managedFields`
//! instead: a manager's entry appears, or its time or fields move. So the check compares
//! those entries, leaving out the status subresource and the control plane (as drift does).

use super::{ClusterError, ObjectRef, Resolver, api_message};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The control plane's own writes (an HPA scaling, the deployment controller's revision
/// annotation): not a change someone made to the environment.
const CONTROL_PLANE_MANAGERS: &[&str] = &[
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-apiserver",
];

/// One manager's write, as `managedFields` records it (the fields by hash only: a
/// Secret's field list names its keys, never its values, but the plan needs no more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Writer {
    pub manager: String,
    pub operation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// sha256 of the `fieldsV1` tree the manager owns.
    pub fields: String,
}

impl Writer {
    /// "kubectl-edit (Update) at 2026-11-30T11:00:00Z"
    pub fn describe(&self) -> String {
        let operation = match &self.subresource {
            Some(sub) => format!("{} ({sub})", self.operation),
            None => self.operation.clone(),
        };
        let time = self
            .time
            .as_deref()
            .map(|t| format!(" at {t}"))
            .unwrap_or_default();
        format!("{} ({operation}){time}", self.manager)
    }

    /// The same manager's same write (its fields may have shrunk since, taken over).
    fn same_write(&self, other: &Self) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && self.time == other.time
    }

    fn counts(&self) -> bool {
        self.subresource.as_deref() != Some("status")
            && !CONTROL_PLANE_MANAGERS.contains(&self.manager.as_str())
    }
}

/// A live object as a plan saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveState {
    pub uid: String,
    pub resource_version: String,
    /// Every manager's entry but the status subresource's and the control plane's.
    pub writers: Vec<Writer>,
}

impl LiveState {
    /// Reads the state of a live object (as the API server returned it).
    pub fn of(live: &Value) -> Self {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let writers = live
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| Writer {
                        manager: text(e.get("manager")).unwrap_or_else(|| "(unknown)".into()),
                        operation: text(e.get("operation")).unwrap_or_else(|| "(unknown)".into()),
                        subresource: text(e.get("subresource")).filter(|s| !s.is_empty()),
                        time: text(e.get("time")),
                        fields: hex::encode(Sha256::digest(
                            e.get("fieldsV1").map(Value::to_string).unwrap_or_default(),
                        )),
                    })
                    .filter(Writer::counts)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            uid: text(live.pointer("/metadata/uid")).unwrap_or_default(),
            resource_version: text(live.pointer("/metadata/resourceVersion")).unwrap_or_default(),
            writers,
        }
    }
}

/// How a live object differs from what the plan saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum LiveChange {
    /// It did not exist at plan time and does now.
    Created { by: Vec<Writer> },
    /// It existed at plan time and is gone.
    Deleted,
    /// Deleted and made again (another uid).
    Recreated { by: Vec<Writer> },
    /// Someone wrote to it: the entries that are new or moved.
    Modified {
        by: Vec<Writer>,
        resource_version: (String, String),
    },
}

impl LiveChange {
    /// "modified by kubectl-edit (Update) at …"
    pub fn describe(&self) -> String {
        let by = |writers: &[Writer]| {
            if writers.is_empty() {
                String::new()
            } else {
                format!(
                    " by {}",
                    writers
                        .iter()
                        .map(Writer::describe)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        match self {
            Self::Created { by: w } => format!("created{}", by(w)),
            Self::Deleted => "deleted".to_owned(),
            Self::Recreated { by: w } => format!("deleted and created again{}", by(w)),
            Self::Modified {
                by: w,
                resource_version: (then, now),
            } => format!("modified{} (resourceVersion {then} → {now})", by(w)),
        }
    }
}

/// What changed between the plan's view (`then`) and the object now (`now`); `None`: the
/// object is as the plan saw it.
pub fn compare(then: Option<&LiveState>, now: Option<&LiveState>) -> Option<LiveChange> {
    match (then, now) {
        (None, None) => None,
        (None, Some(now)) => Some(LiveChange::Created {
            by: now.writers.clone(),
        }),
        (Some(_), None) => Some(LiveChange::Deleted),
        (Some(then), Some(now)) if then.uid != now.uid => Some(LiveChange::Recreated {
            by: now.writers.clone(),
        }),
        (Some(then), Some(now)) => {
            let changed = now.writers.iter().any(|w| !then.writers.contains(w))
                || then.writers.iter().any(|w| !now.writers.contains(w));
            // Who wrote: a new entry, or one whose time moved. An entry that only lost
            // fields (kubectl scale takes spec.replicas from wactl) is not an author.
            let by: Vec<Writer> = now
                .writers
                .iter()
                .filter(|w| !then.writers.iter().any(|t| t.same_write(w)))
                .cloned()
                .collect();
            changed.then(|| LiveChange::Modified {
                by,
                resource_version: (then.resource_version.clone(), now.resource_version.clone()),
            })
        }
    }
}

/// Reads each object's live state (`None`: it does not exist), in order.
pub async fn read(
    resolver: &Resolver,
    objects: &[ObjectRef],
) -> Result<Vec<Option<LiveState>>, ClusterError> {
    resolver.prefetch(objects).await?;
    let mut states = Vec::with_capacity(objects.len());
    for object in objects {
        let api = resolver.api(object).await?;
        let live = api
            .get_opt(&object.name)
            .await
            .map_err(|e| ClusterError::Api {
                action: "read",
                object: object.to_string(),
                message: api_message(&e),
            })?;
        states.push(
            live.and_then(|l| serde_json::to_value(l).ok())
                .map(|l| LiveState::of(&l)),
        );
    }
    Ok(states)
}

/// The identity of a cluster: the uid of its `kube-system` namespace (a server URL can
/// name another cluster tomorrow; this uid cannot).
pub async fn cluster_id(client: &kube::Client) -> Result<String, ClusterError> {
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    let namespace = api
        .get("kube-system")
        .await
        .map_err(|e| ClusterError::Api {
            action: "read",
            object: "Namespace kube-system".to_owned(),
            message: api_message(&e),
        })?;
    Ok(namespace.metadata.uid.unwrap_or_default())
}

/// The Secrets `objects` refer to by name (env `secretKeyRef`, `envFrom`, volumes, Ingress
/// TLS), in each object's namespace: a plan records their versions, never their values.
pub fn referenced_secrets(objects: &[Value]) -> Vec<ObjectRef> {
    fn walk(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let name = match key.as_str() {
                        "secretKeyRef" | "secretRef" => child.get("name"),
                        "secret" => child.get("secretName"),
                        _ => None,
                    };
                    if let Some(name) = name.and_then(Value::as_str) {
                        found.push(name.to_owned());
                    }
                    if key == "tls"
                        && let Some(items) = child.as_array()
                    {
                        found.extend(
                            items
                                .iter()
                                .filter_map(|t| t.get("secretName").and_then(Value::as_str))
                                .map(str::to_owned),
                        );
                    }
                    walk(child, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, found)),
            _ => {}
        }
    }
    let mut secrets: Vec<ObjectRef> = Vec::new();
    for object in objects {
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut names = Vec::new();
        walk(object, &mut names);
        for name in names {
            let secret = ObjectRef {
                api_version: "v1".to_owned(),
                kind: "Secret".to_owned(),
                namespace: namespace.clone(),
                name,
            };
            if !secrets.contains(&secret) {
                secrets.push(secret);
            }
        }
    }
    secrets.sort();
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live(uid: &str, rv: &str, entries: Value) -> LiveState {
        LiveState::of(&json!({
            "metadata": { "uid": uid, "resourceVersion": rv, "managedFields": entries }
        }))
    }

    fn wactl() -> Value {
        json!({ "manager": "wactl", "operation": "Apply", "time": "2026-11-30T10:00:00Z",
                "fieldsV1": { "f:spec": { "f:replicas": {} } } })
    }

    #[test]
    fn status_and_control_plane_writes_are_no_change() {
        let then = live("u1", "10", json!([wactl()]));
        let now = live(
            "u1",
            "17",
            json!([wactl(),
                { "manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                  "time": "2026-11-30T10:01:00Z", "fieldsV1": { "f:status": {} } },
                { "manager": "kube-controller-manager", "operation": "Update",
                  "time": "2026-11-30T10:01:00Z", "fieldsV1": { "f:metadata": {} } }]),
        );
        assert_eq!(compare(Some(&then), Some(&now)), None);
    }

    #[test]
    fn a_scale_or_edit_is_named_with_manager_and_time() {
        let then = live("u1", "10", json!([wactl()]));
        let mut shrunk = wactl();
        shrunk["fieldsV1"] = json!({ "f:spec": {} });
        let now = live(
            "u1",
            "12",
            json!([shrunk,
                { "manager": "kubectl", "operation": "Update", "subresource": "scale",
                  "fieldsV1": { "f:spec": { "f:replicas": {} } } },
                { "manager": "kubectl-edit", "operation": "Update", "time": "2026-11-30T11:00:00Z",
                  "fieldsV1": { "f:spec": { "f:paused": {} } } }]),
        );
        let change = compare(Some(&then), Some(&now)).expect("a change");
        assert_eq!(
            change.describe(),
            "modified by kubectl (Update (scale)), kubectl-edit (Update) at 2026-11-30T11:00:00Z (resourceVersion 10 → 12)"
        );
    }

    #[test]
    fn another_wactl_apply_is_a_change() {
        let then = live("u1", "10", json!([wactl()]));
        let mut later = wactl();
        later["time"] = json!("2026-11-30T12:00:00Z");
        let now = live("u1", "11", json!([later]));
        let change = compare(Some(&then), Some(&now)).expect("a change");
        assert!(
            change
                .describe()
                .starts_with("modified by wactl (Apply) at 2026-11-30T12:00:00Z")
        );
    }

    #[test]
    fn created_deleted_and_recreated() {
        let state = live("u1", "10", json!([wactl()]));
        assert!(matches!(
            compare(None, Some(&state)),
            Some(LiveChange::Created { .. })
        ));
        assert_eq!(compare(Some(&state), None), Some(LiveChange::Deleted));
        let other = live("u2", "20", json!([wactl()]));
        assert_eq!(
            compare(Some(&state), Some(&other))
                .expect("a change")
                .describe(),
            "deleted and created again by wactl (Apply) at 2026-11-30T10:00:00Z"
        );
        assert_eq!(compare(None, None), None);
    }

    #[test]
    fn secrets_are_found_wherever_objects_name_them() {
        let objects = [
            json!({ "metadata": { "namespace": "ns" }, "spec": { "template": { "spec": {
                "containers": [ { "env": [ { "valueFrom": { "secretKeyRef": { "name": "db", "key": "p" } } } ],
                                  "envFrom": [ { "secretRef": { "name": "bulk" } } ] } ],
                "volumes": [ { "secret": { "secretName": "ca" } } ] } } } }),
            json!({ "metadata": { "namespace": "ns" }, "spec": { "tls": [ { "secretName": "cert" } ] } }),
        ];
        let names: Vec<String> = referenced_secrets(&objects)
            .into_iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "Secret ns/bulk",
                "Secret ns/ca",
                "Secret ns/cert",
                "Secret ns/db"
            ]
        );
    }
}
