//! What a deploy would change: live object against the server's dry-run result, without
//! the fields the server maintains, and with Secret values redacted.

use super::ObjectRef;
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Create,
    Update,
    Delete,
    Unchanged,
}

/// One object of a plan with its unified diff (empty when unchanged).
#[derive(Debug, Clone, Serialize)]
pub struct PlannedObject {
    pub object: ObjectRef,
    pub change: Change,
    pub diff: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub objects: Vec<PlannedObject>,
}

impl Plan {
    pub fn count(&self, change: Change) -> usize {
        self.objects.iter().filter(|o| o.change == change).count()
    }

    /// Nothing to create, update or delete.
    pub fn is_noop(&self) -> bool {
        self.objects.iter().all(|o| o.change == Change::Unchanged)
    }

    /// "1 to create, 2 to update, 0 to delete, 9 unchanged".
    pub fn summary(&self) -> String {
        format!(
            "{} to create, {} to update, {} to delete, {} unchanged",
            self.count(Change::Create),
            self.count(Change::Update),
            self.count(Change::Delete),
            self.count(Change::Unchanged)
        )
    }
}

/// Fields the API server writes on every object: never a difference worth showing.
const SERVER_METADATA: [&str; 6] = [
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
];

/// The object as a person compares it: without server-maintained metadata and status,
/// keys sorted, Secret values redacted.
pub fn normalize(object: &Value) -> Value {
    let mut object = sorted(object);
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
        if let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in SERVER_METADATA {
                metadata.remove(field);
            }
            if metadata
                .get("annotations")
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                metadata.remove("annotations");
            }
        }
    }
    object
}

/// `value` with the keys of every object sorted, so that equal content prints (and hashes)
/// equally however it was written.
pub(crate) fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k.as_str()])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn is_secret(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("Secret")
        && object.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

/// `kubectl apply` keeps the whole object it applied, a Secret's values included, here.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Replaces Secret values on both sides, keeping whether each key changed visible.
pub fn redact(before: &mut Option<Value>, after: &mut Option<Value>) {
    let secret = |side: &Option<Value>| side.as_ref().is_some_and(is_secret);
    if !secret(before) && !secret(after) {
        return;
    }
    for side in [&mut *before, &mut *after] {
        if let Some(Value::String(v)) = side
            .as_mut()
            .and_then(|o| o.pointer_mut("/metadata/annotations"))
            .and_then(|a| a.get_mut(LAST_APPLIED))
        {
            *v = "(redacted)".to_owned();
        }
    }
    for field in ["data", "stringData"] {
        let old = before.as_ref().and_then(|o| o.get(field)).cloned();
        if let Some(Value::Object(map)) = before.as_mut().and_then(|o| o.get_mut(field)) {
            for (_, v) in map.iter_mut() {
                *v = Value::String("(redacted)".to_owned());
            }
        }
        if let Some(Value::Object(map)) = after.as_mut().and_then(|o| o.get_mut(field)) {
            for (k, v) in map.iter_mut() {
                let changed = old.as_ref().and_then(|m| m.get(k)) != Some(v);
                let text = if changed {
                    "(redacted, changed)"
                } else {
                    "(redacted)"
                };
                *v = Value::String(text.to_owned());
            }
        }
    }
}

/// Compares a live object (or none) with the desired one (or none, for a delete).
pub fn compare(object: ObjectRef, live: Option<&Value>, desired: Option<&Value>) -> PlannedObject {
    let mut before = live.map(normalize);
    let mut after = desired.map(normalize);
    let change = match (&before, &after) {
        (None, Some(_)) => Change::Create,
        (Some(_), None) => Change::Delete,
        (Some(b), Some(a)) if b == a => Change::Unchanged,
        (Some(_), Some(_)) => Change::Update,
        (None, None) => Change::Unchanged,
    };
    redact(&mut before, &mut after);
    let diff = if change == Change::Unchanged {
        String::new()
    } else {
        let text = |v: &Option<Value>| {
            v.as_ref()
                .map(|v| serde_saphyr::to_string(v).unwrap_or_else(|e| format!("# {e}\n")))
                .unwrap_or_default()
        };
        let (old, new) = (text(&before), text(&after));
        let name = object.to_string();
        similar::TextDiff::from_lines(&old, &new)
            .unified_diff()
            .context_radius(3)
            .header(&format!("live: {name}"), &format!("rendered: {name}"))
            .to_string()
    };
    PlannedObject {
        object,
        change,
        diff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference(kind: &str) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("ns".into()),
            name: "x".into(),
        }
    }

    #[test]
    fn server_noise_is_not_a_change() {
        let live = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "x", "namespace": "ns", "uid": "1", "resourceVersion": "7",
                "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [{"manager": "wactl"}] },
            "data": { "b": "2", "a": "1" }
        });
        let desired = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "x", "namespace": "ns", "uid": "1", "resourceVersion": "8" },
            "data": { "a": "1", "b": "2" }
        });
        let planned = compare(reference("ConfigMap"), Some(&live), Some(&desired));
        assert_eq!(planned.change, Change::Unchanged);
        assert!(planned.diff.is_empty());
    }

    #[test]
    fn update_shows_a_unified_diff() {
        let live = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "x" }, "data": { "a": "1" } });
        let desired = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "x" }, "data": { "a": "2" } });
        let planned = compare(reference("ConfigMap"), Some(&live), Some(&desired));
        assert_eq!(planned.change, Change::Update);
        assert!(
            planned.diff.contains("--- live: ConfigMap ns/x"),
            "{}",
            planned.diff
        );
        assert!(
            planned.diff.contains("-  a: '1'") || planned.diff.contains("-  a: \"1\""),
            "{}",
            planned.diff
        );
    }

    #[test]
    fn secret_values_never_appear() {
        let live = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "x" },
            "data": { "same": "c2VjcmV0MQ==", "changed": "b2xkLXNlY3JldA==" } });
        let desired = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "x" },
            "data": { "same": "c2VjcmV0MQ==", "changed": "bmV3LXNlY3JldA==" },
            "stringData": { "plain": "hunter2" } });
        let planned = compare(reference("Secret"), Some(&live), Some(&desired));
        assert_eq!(planned.change, Change::Update);
        for secret in [
            "c2VjcmV0MQ==",
            "b2xkLXNlY3JldA==",
            "bmV3LXNlY3JldA==",
            "hunter2",
        ] {
            assert!(
                !planned.diff.contains(secret),
                "{secret} leaked:\n{}",
                planned.diff
            );
        }
        assert!(
            planned.diff.contains("(redacted, changed)"),
            "{}",
            planned.diff
        );
        let created = compare(reference("Secret"), None, Some(&desired));
        assert!(!created.diff.contains("hunter2"));
        assert_eq!(created.change, Change::Create);
    }

    #[test]
    fn plan_summary_counts_each_change() {
        let plan = Plan {
            objects: vec![
                compare(reference("A"), None, Some(&json!({"a": 1}))),
                compare(
                    reference("B"),
                    Some(&json!({"a": 1})),
                    Some(&json!({"a": 1})),
                ),
                compare(reference("C"), Some(&json!({"a": 1})), None),
            ],
        };
        assert_eq!(
            plan.summary(),
            "1 to create, 0 to update, 1 to delete, 1 unchanged"
        );
        assert!(!plan.is_noop());
    }
}
