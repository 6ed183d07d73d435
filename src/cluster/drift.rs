//! Drift: how the live objects differ from what the last successful revision applied,
//! field by field, each change attributed to the field manager that made it.
//!
//! Server-side apply records, per object, which manager set which field
//! (`metadata.managedFields`). A field wactl applied and someone later changed
//! (`kubectl edit`, `kubectl scale`, a controller of someone's) moves to that manager, and a
//! field someone added belongs to them from the start; so every field owned by a manager
//! other than wactl, whose live value is not what the revision applied, is drift. Fields
//! the control plane itself keeps (the HPA's replicas, the deployment controller's
//! revision annotation, every `status`) are not.

use super::diff::redact;
use super::{ClusterError, ObjectRef, RecordedObject, Resolver, api_message};
use serde::Serialize;
use serde_json::{Map, Value};

/// Managers that are the control plane doing its job, not a person or tool changing the
/// environment: an HPA scaling, the deployment controller annotating its revision.
const CONTROL_PLANE_MANAGERS: &[&str] = &[
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-apiserver",
];

/// One difference between a live object and the revision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDrift {
    /// `spec.replicas`, `spec.template.spec.containers[name=address-service].image`.
    pub path: String,
    /// What the revision applied there (none: the field was added).
    pub applied: Option<Value>,
    /// What the object holds now (none: the field was removed).
    pub live: Option<Value>,
    /// Who changed it, as the API server recorded: `kubectl-edit`, `kubectl`, …
    pub manager: String,
    /// `Update` or `Apply`, and the subresource when it went through one (`scale`).
    pub operation: String,
    /// When that manager last wrote the object (RFC 3339).
    pub time: Option<String>,
}

/// How one object drifted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ObjectDrift {
    /// The revision applied it and it is gone.
    Missing { object: ObjectRef },
    /// It exists with fields other managers changed or added.
    Changed {
        object: ObjectRef,
        fields: Vec<FieldDrift>,
    },
}

impl ObjectDrift {
    pub fn object(&self) -> &ObjectRef {
        match self {
            Self::Missing { object } | Self::Changed { object, .. } => object,
        }
    }
}

/// Compares every object of a revision with its live state; only drifted objects are
/// returned, in the revision's order.
pub async fn detect(
    resolver: &Resolver,
    objects: &[RecordedObject],
) -> Result<Vec<ObjectDrift>, ClusterError> {
    let refs: Vec<ObjectRef> = objects
        .iter()
        .filter_map(|o| ObjectRef::of(&o.object))
        .collect();
    resolver.prefetch(&refs).await?;
    let mut drifted = Vec::new();
    for (recorded, object) in objects.iter().zip(refs) {
        let api = resolver.api(&object).await?;
        let live = api
            .get_opt(&object.name)
            .await
            .map_err(|e| ClusterError::Api {
                action: "reading",
                object: object.to_string(),
                message: api_message(&e),
            })?;
        let Some(live) = live else {
            drifted.push(ObjectDrift::Missing { object });
            continue;
        };
        let live = serde_json::to_value(&live).map_err(|e| ClusterError::Api {
            action: "reading",
            object: object.to_string(),
            message: e.to_string(),
        })?;
        let fields = compare(&recorded.object, &live);
        if !fields.is_empty() {
            drifted.push(ObjectDrift::Changed { object, fields });
        }
    }
    Ok(drifted)
}

/// The fields of `live` that managers other than wactl (and the control plane) own and
/// that differ from `applied`.
pub fn compare(applied: &Value, live: &Value) -> Vec<FieldDrift> {
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (mut applied, mut live) = (Some(applied.clone()), Some(live.clone()));
    // A Secret's values never leave the cluster, not even in a drift report.
    redact(&mut applied, &mut live);
    let (applied, live) = (applied.unwrap_or_default(), live.unwrap_or_default());
    let mut drift = Vec::new();
    for entry in &entries {
        let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
        let manager = text("manager").unwrap_or_else(|| "(unknown manager)".to_owned());
        let subresource = text("subresource").unwrap_or_default();
        if manager == super::FIELD_MANAGER
            || CONTROL_PLANE_MANAGERS.contains(&manager.as_str())
            || subresource == "status"
        {
            continue;
        }
        let operation = match (text("operation"), subresource.as_str()) {
            (Some(op), "") => op,
            (Some(op), sub) => format!("{op} ({sub})"),
            (None, _) => "(unknown)".to_owned(),
        };
        let Some(fields) = entry.get("fieldsV1") else {
            continue;
        };
        let mut leaves = Vec::new();
        leaf_paths(fields, &mut Vec::new(), &mut leaves);
        for path in leaves {
            let before = lookup(&applied, &path);
            let now = lookup(&live, &path);
            if before == now || ignored(&path) {
                continue;
            }
            drift.push(FieldDrift {
                path: display(&path),
                applied: before.cloned(),
                live: now.cloned(),
                manager: manager.clone(),
                operation: operation.clone(),
                time: text("time"),
            });
        }
    }
    drift.sort_by(|a, b| a.path.cmp(&b.path).then(a.manager.cmp(&b.manager)));
    drift.dedup_by(|a, b| a.path == b.path && a.manager == b.manager);
    drift
}

/// One step into an object, as managedFields names it.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// `f:name`
    Field(String),
    /// `k:{"name":"x"}`: the list item whose key fields match.
    Keyed(Map<String, Value>),
    /// `v:"x"`: the set element equal to the value.
    Value(Value),
    /// `i:3`
    Index(usize),
}

/// Every owned leaf of a `fieldsV1` tree. A node marked `.` with children is owned as a
/// whole but compared through its children; a node with nothing under it is a leaf.
fn leaf_paths(node: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    let Some(map) = node.as_object() else {
        return;
    };
    let children: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| *k != ".").collect();
    if children.is_empty() {
        if !prefix.is_empty() {
            out.push(prefix.clone());
        }
        return;
    }
    for (key, child) in children {
        let Some(step) = parse_step(key) else {
            continue;
        };
        prefix.push(step);
        leaf_paths(child, prefix, out);
        prefix.pop();
    }
}

fn parse_step(key: &str) -> Option<Step> {
    let (kind, rest) = key.split_once(':')?;
    match kind {
        "f" => Some(Step::Field(rest.to_owned())),
        "k" => serde_json::from_str(rest).ok().map(Step::Keyed),
        "v" => serde_json::from_str(rest).ok().map(Step::Value),
        "i" => rest.parse().ok().map(Step::Index),
        _ => None,
    }
}

fn lookup<'a>(value: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let mut here = value;
    for step in path {
        here = match (step, here) {
            (Step::Field(name), Value::Object(map)) => map.get(name)?,
            (Step::Keyed(keys), Value::Array(items)) => items.iter().find(|item| {
                keys.iter()
                    .all(|(k, v)| item.get(k).is_some_and(|found| found == v))
            })?,
            (Step::Value(wanted), Value::Array(items)) => items.iter().find(|i| *i == wanted)?,
            (Step::Index(i), Value::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(here)
}

/// Paths that change without anyone changing the environment.
fn ignored(path: &[Step]) -> bool {
    matches!(
        path,
        [Step::Field(m), Step::Field(a), Step::Field(key)]
            if m == "metadata" && a == "annotations"
                && (key == "kubectl.kubernetes.io/last-applied-configuration"
                    || key == "deployment.kubernetes.io/revision")
    )
}

/// `spec.template.spec.containers[name=address-service].image`
fn display(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Field(name) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(name);
            }
            Step::Keyed(keys) => {
                let inner: Vec<String> = keys
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => format!("{k}={s}"),
                        other => format!("{k}={other}"),
                    })
                    .collect();
                text.push_str(&format!("[{}]", inner.join(",")));
            }
            Step::Value(v) => text.push_str(&format!("[{v}]")),
            Step::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: u64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "web", "namespace": "ns", "labels": { "app": "web" } },
            "spec": {
                "replicas": replicas,
                "template": { "spec": { "containers": [ { "name": "web", "image": image } ] } }
            }
        })
    }

    fn with_managers(mut live: Value, entries: Value) -> Value {
        live["metadata"]["managedFields"] = entries;
        live
    }

    #[test]
    fn kubectl_scale_and_edit_are_attributed_and_the_control_plane_is_not() {
        let applied = deployment(3, "web:1");
        let mut live = deployment(5, "web:2");
        live["metadata"]["labels"]["team"] = json!("ops");
        live["metadata"]["annotations"] = json!({ "deployment.kubernetes.io/revision": "4" });
        live["status"] = json!({ "replicas": 5 });
        let live = with_managers(
            live,
            json!([
                { "manager": "wactl", "operation": "Apply",
                  "fieldsV1": { "f:metadata": { "f:labels": { "f:app": {} } } } },
                { "manager": "kubectl", "operation": "Update", "subresource": "scale",
                  "time": "2026-11-30T10:00:00Z",
                  "fieldsV1": { "f:spec": { "f:replicas": {} } } },
                { "manager": "kubectl-edit", "operation": "Update", "time": "2026-11-30T11:00:00Z",
                  "fieldsV1": { "f:metadata": { "f:labels": { "f:team": {} } },
                    "f:spec": { "f:template": { "f:spec": { "f:containers": {
                      "k:{\"name\":\"web\"}": { ".": {}, "f:image": {} } } } } } } },
                { "manager": "kube-controller-manager", "operation": "Update",
                  "fieldsV1": { "f:metadata": { "f:annotations": {
                    "f:deployment.kubernetes.io/revision": {} } } } },
                { "manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                  "fieldsV1": { "f:status": { "f:replicas": {} } } }
            ]),
        );
        let drift = compare(&applied, &live);
        let summary: Vec<(&str, &str, &str)> = drift
            .iter()
            .map(|d| (d.path.as_str(), d.manager.as_str(), d.operation.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("metadata.labels.team", "kubectl-edit", "Update"),
                ("spec.replicas", "kubectl", "Update (scale)"),
                (
                    "spec.template.spec.containers[name=web].image",
                    "kubectl-edit",
                    "Update"
                ),
            ]
        );
        assert_eq!(drift[0].applied, None, "an added field");
        assert_eq!(drift[1].applied, Some(json!(3)));
        assert_eq!(drift[1].live, Some(json!(5)));
        assert_eq!(drift[2].time.as_deref(), Some("2026-11-30T11:00:00Z"));
    }

    #[test]
    fn a_field_set_back_to_the_applied_value_is_no_drift() {
        let applied = deployment(3, "web:1");
        let live = with_managers(
            deployment(3, "web:1"),
            json!([{ "manager": "kubectl", "operation": "Update",
                     "fieldsV1": { "f:spec": { "f:replicas": {} } } }]),
        );
        assert_eq!(compare(&applied, &live), []);
    }

    #[test]
    fn secret_values_never_appear() {
        let applied = json!({ "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "s" }, "data": { "password": "b2xk" } });
        let live = json!({ "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "s", "managedFields": [ { "manager": "kubectl-edit",
                "operation": "Update", "fieldsV1": { "f:data": { "f:password": {} } } } ] },
            "data": { "password": "bmV3" } });
        let drift = compare(&applied, &live);
        assert_eq!(drift.len(), 1, "{drift:?}");
        let text = serde_json::to_string(&drift).expect("json");
        assert!(!text.contains("b2xk") && !text.contains("bmV3"), "{text}");
        assert!(text.contains("redacted, changed"), "{text}");
    }

    #[test]
    fn set_and_index_steps_are_followed() {
        let value = json!({ "a": [ "x", "y" ], "b": [ { "k": 1 }, { "k": 2 } ] });
        assert_eq!(
            lookup(&value, &[Step::Field("a".into()), Step::Value(json!("y"))]),
            Some(&json!("y"))
        );
        assert_eq!(
            lookup(
                &value,
                &[
                    Step::Field("b".into()),
                    Step::Index(1),
                    Step::Field("k".into())
                ]
            ),
            Some(&json!(2))
        );
        assert_eq!(parse_step("x:nope"), None);
    }
}
