//! Kubernetes documents: each rendered object is checked against its `k8s-openapi` type.

use super::{RenderError, operator};
use k8s_openapi::api::{apps, autoscaling, core, networking, policy, rbac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One rendered Kubernetes object.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Output path: `k8s/<NN>-<kind>-<name>.yaml`.
    pub file: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// The object as JSON, ready for server-side apply.
    pub object: Value,
    /// The object as canonical YAML.
    #[serde(skip)]
    pub yaml: String,
}

/// What one Kubernetes template rendered.
pub struct Document {
    pub template: &'static str,
    /// Apply order of its objects.
    pub order: u8,
    pub text: String,
}

/// Parses and type-checks every document `template` rendered (a template may render
/// several objects, separated by `---`, like a chart's `range`).
pub fn parse_all(template: &str, order: u8, text: &str) -> Result<Vec<Manifest>, RenderError> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| RenderError::InvalidOutput {
            template: template.to_owned(),
            what: "Kubernetes object".to_owned(),
            message: e.to_string(),
        })?;
    let objects: Vec<Value> = documents.into_iter().filter(|d| !d.is_null()).collect();
    if objects.is_empty() {
        return Err(RenderError::InvalidOutput {
            template: template.to_owned(),
            what: "Kubernetes object".to_owned(),
            message: "the template rendered no object".to_owned(),
        });
    }
    objects
        .into_iter()
        .map(|object| parse_value(template, order, object))
        .collect()
}

/// Parses and type-checks one rendered document from `template`.
#[cfg(test)]
pub fn parse(template: &str, order: u8, text: &str) -> Result<Manifest, RenderError> {
    let object: Value = serde_saphyr::from_str(text).map_err(|e| RenderError::InvalidOutput {
        template: template.to_owned(),
        what: "Kubernetes object".to_owned(),
        message: e.to_string(),
    })?;
    parse_value(template, order, object)
}

fn parse_value(template: &str, order: u8, object: Value) -> Result<Manifest, RenderError> {
    let invalid = |message: String| RenderError::InvalidOutput {
        template: template.to_owned(),
        what: "Kubernetes object".to_owned(),
        message,
    };
    let field = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_owned);
    let api_version =
        field("apiVersion").ok_or_else(|| invalid("missing `apiVersion`".to_owned()))?;
    let kind = field("kind").ok_or_else(|| invalid("missing `kind`".to_owned()))?;
    let metadata = object.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("missing `metadata.name`".to_owned()))?
        .to_owned();
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_owned);

    let checked = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => round_trip::<core::v1::Namespace>(&object),
        ("v1", "ServiceAccount") => round_trip::<core::v1::ServiceAccount>(&object),
        ("v1", "ConfigMap") => round_trip::<core::v1::ConfigMap>(&object),
        ("v1", "Service") => round_trip::<core::v1::Service>(&object),
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<rbac::v1::Role>(&object),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            round_trip::<rbac::v1::RoleBinding>(&object)
        }
        ("apps/v1", "Deployment") => round_trip::<apps::v1::Deployment>(&object),
        ("apps/v1", "StatefulSet") => round_trip::<apps::v1::StatefulSet>(&object),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => {
            round_trip::<autoscaling::v2::HorizontalPodAutoscaler>(&object)
        }
        ("policy/v1", "PodDisruptionBudget") => {
            round_trip::<policy::v1::PodDisruptionBudget>(&object)
        }
        ("networking.k8s.io/v1", "NetworkPolicy") => {
            round_trip::<networking::v1::NetworkPolicy>(&object)
        }
        ("networking.k8s.io/v1", "Ingress") => round_trip::<networking::v1::Ingress>(&object),
        (operator::API_VERSION, "ServiceMonitor") => {
            round_trip::<operator::ServiceMonitor>(&object)
        }
        (operator::API_VERSION, "PrometheusRule") => {
            round_trip::<operator::PrometheusRule>(&object)
        }
        (api_version, kind) => Err(format!("{api_version} {kind} is not a kind wactl renders")),
    };
    checked.map_err(invalid)?;
    let yaml = serde_saphyr::to_string(&object).map_err(|e| invalid(e.to_string()))?;
    let file = format!("k8s/{order:02}-{}-{name}.yaml", kind.to_ascii_lowercase());
    Ok(Manifest {
        file,
        api_version,
        kind,
        name,
        namespace,
        object,
        yaml,
    })
}

/// Deserializes `object` as `T` and serializes it back; a field that did not survive
/// is one the type does not have (a typo or a wrong level in the template).
fn round_trip<T: DeserializeOwned + Serialize>(object: &Value) -> Result<(), String> {
    let typed = T::deserialize(object).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    match lost_field(object, &back, "") {
        Some(path) => Err(format!("unknown field `{path}`")),
        None => Ok(()),
    }
}

fn lost_field(original: &Value, back: &Value, path: &str) -> Option<String> {
    match (original, back) {
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(key, value)| {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match b.get(key) {
                Some(kept) => lost_field(value, kept, &child),
                None if value.is_null() => None,
                None => Some(child),
            }
        }),
        (Value::Array(a), Value::Array(b)) => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| lost_field(x, y, &format!("{path}[{i}]"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_name_their_path() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: { name: s }\nspec:\n  ports: [{ port: 80, targetPrt: http }]\n";
        let err = parse("k8s/service.yaml.tera", 30, text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("k8s/service.yaml.tera") && err.contains("spec.ports[0].targetPrt"),
            "{err}"
        );
    }

    #[test]
    fn wrong_types_are_reported() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: d }\nspec: { replicas: many, selector: {}, template: {} }\n";
        let err = parse("k8s/deployment.yaml.tera", 50, text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("k8s/deployment.yaml.tera") && err.contains("invalid type"),
            "{err}"
        );
    }
}
