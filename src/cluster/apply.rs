//! Server-side apply (field manager `wactl`) of any kind, found through discovery.

use super::diff::{self, Plan};
use super::{ClusterError, FIELD_MANAGER, MANAGED_BY, ObjectRef, api_message, apply_group};
use futures_util::future::try_join_all;
use futures_util::{StreamExt, TryStreamExt, stream};
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope, pinned_kind};
use kube::{Api, Client};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Requests in flight at once while planning or applying: enough to hide the API server's
/// latency, few enough that a large release reuses a handful of connections instead of
/// opening (and TLS-handshaking) one per object.
const CONCURRENT_REQUESTS: usize = 16;

/// Runs `futures` with at most [`CONCURRENT_REQUESTS`] in flight; results in input order,
/// or the first error.
async fn bounded<T, F>(futures: impl IntoIterator<Item = F>) -> Result<Vec<T>, ClusterError>
where
    F: Future<Output = Result<T, ClusterError>>,
{
    stream::iter(futures)
        .buffered(CONCURRENT_REQUESTS)
        .try_collect()
        .await
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Take over fields another field manager owns.
    pub force_conflicts: bool,
}

/// Discovered kinds by `(apiVersion, kind)`.
type KindCache = HashMap<(String, String), (ApiResource, ApiCapabilities)>;

/// Finds the API of each kind once per command.
#[derive(Clone)]
pub struct Resolver {
    client: Client,
    cache: std::sync::Arc<Mutex<KindCache>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

impl Resolver {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: Default::default(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Looks up every kind of `objects` at once, so later calls need no round trip.
    pub async fn prefetch<'a>(
        &self,
        objects: impl IntoIterator<Item = &'a ObjectRef>,
    ) -> Result<(), ClusterError> {
        let mut kinds: Vec<&ObjectRef> = Vec::new();
        for o in objects {
            if !kinds
                .iter()
                .any(|k| k.api_version == o.api_version && k.kind == o.kind)
            {
                kinds.push(o);
            }
        }
        try_join_all(kinds.into_iter().map(|o| self.api(o))).await?;
        Ok(())
    }

    /// The dynamic API of `object`'s kind, scoped to its namespace when the kind is namespaced.
    pub async fn api(&self, object: &ObjectRef) -> Result<Api<DynamicObject>, ClusterError> {
        let key = (object.api_version.clone(), object.kind.clone());
        let cached = self.cache.lock().ok().and_then(|c| c.get(&key).cloned());
        let (resource, capabilities) = match cached {
            Some(found) => found,
            None => {
                let (group, version) = object.group_version();
                let gvk = GroupVersionKind::gvk(group, version, &object.kind);
                let found = pinned_kind(&self.client, &gvk).await.map_err(|e| {
                    let mut message = api_message(&e);
                    if group == "monitoring.coreos.com" {
                        message.push_str(
                            "; the Prometheus Operator's CRDs are not installed in this cluster \
                             (install them, as kube-prometheus-stack does, or set \
                             `monitoring.mode: bundled`)",
                        );
                    }
                    ClusterError::UnknownKind {
                        api_version: object.api_version.clone(),
                        kind: object.kind.clone(),
                        message,
                    }
                })?;
                if let Ok(mut cache) = self.cache.lock() {
                    cache.insert(key, found.clone());
                }
                found
            }
        };
        Ok(match (&capabilities.scope, &object.namespace) {
            (Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(self.client.clone(), ns, &resource)
            }
            (Scope::Namespaced, None) => {
                Api::default_namespaced_with(self.client.clone(), &resource)
            }
            (Scope::Cluster, _) => Api::all_with(self.client.clone(), &resource),
        })
    }
}

fn params(options: ApplyOptions, dry_run: bool) -> PatchParams {
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if options.force_conflicts {
        params = params.force();
    }
    if dry_run {
        params = params.dry_run();
    }
    params
}

/// Turns an SSA conflict into the fields and managers it names.
fn conflict(object: &ObjectRef, error: &kube::Error) -> Option<ClusterError> {
    let kube::Error::Api(status) = error else {
        return None;
    };
    if status.code != 409 {
        return None;
    }
    let causes: Vec<String> = status
        .details
        .iter()
        .flat_map(|d| d.causes.iter())
        .map(|c| {
            // "conflict with \"kubectl\" using apps/v1" → manager "kubectl".
            let manager = c.message.split('"').nth(1).unwrap_or(c.message.as_str());
            format!("field {} is owned by field manager {manager:?}", c.field)
        })
        .collect();
    Some(ClusterError::Conflict {
        object: object.clone(),
        conflicts: if causes.is_empty() {
            vec![status.message.clone()]
        } else {
            causes
        },
    })
}

/// Server-side applies one object and returns what the server stored (or would store).
pub async fn apply_one(
    resolver: &Resolver,
    object: &Value,
    options: ApplyOptions,
    dry_run: bool,
) -> Result<Value, ClusterError> {
    let reference = ObjectRef::of(object).ok_or_else(|| ClusterError::Api {
        action: "apply",
        object: "an object".to_owned(),
        message: "without apiVersion, kind or metadata.name".to_owned(),
    })?;
    let api = resolver.api(&reference).await?;
    let applied = api
        .patch(
            &reference.name,
            &params(options, dry_run),
            &Patch::Apply(object),
        )
        .await
        .map_err(|e| {
            conflict(&reference, &e).unwrap_or_else(|| ClusterError::Api {
                action: if dry_run { "dry-run apply" } else { "apply" },
                object: reference.to_string(),
                message: api_message(&e),
            })
        })?;
    serde_json::to_value(applied).map_err(|e| ClusterError::Api {
        action: "apply",
        object: reference.to_string(),
        message: e.to_string(),
    })
}

/// Applies `objects` (rendered files and their objects) group by group in dependency order,
/// each group concurrently. Returns the stored objects in the same order.
pub async fn apply_all(
    resolver: &Resolver,
    objects: &[(String, Value)],
    options: ApplyOptions,
) -> Result<Vec<Value>, ClusterError> {
    let refs: Vec<ObjectRef> = objects
        .iter()
        .filter_map(|(_, o)| ObjectRef::of(o))
        .collect();
    resolver.prefetch(&refs).await?;
    let mut groups: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
    for (i, (file, _)) in objects.iter().enumerate() {
        groups.entry(apply_group(file)).or_default().push(i);
    }
    let mut stored: Vec<Option<Value>> = vec![None; objects.len()];
    for indices in groups.values() {
        let results = bounded(
            indices
                .iter()
                .map(|&i| apply_one(resolver, &objects[i].1, options, false)),
        )
        .await?;
        for (&i, value) in indices.iter().zip(results) {
            stored[i] = Some(value);
        }
    }
    Ok(stored.into_iter().flatten().collect())
}

async fn get_live(
    resolver: &Resolver,
    reference: &ObjectRef,
) -> Result<Option<Value>, ClusterError> {
    let api = resolver.api(reference).await?;
    let live = api
        .get_opt(&reference.name)
        .await
        .map_err(|e| ClusterError::Api {
            action: "read",
            object: reference.to_string(),
            message: api_message(&e),
        })?;
    Ok(live.and_then(|o| serde_json::to_value(o).ok()))
}

/// True when the live object carries wactl's managed-by label.
pub fn is_owned(live: &Value) -> bool {
    live.pointer("/metadata/labels")
        .and_then(|l| l.get(MANAGED_BY.0))
        .and_then(Value::as_str)
        == Some(MANAGED_BY.1)
}

/// Compares `desired` with the live state through a server-side dry-run apply per object;
/// objects in `previously_owned` that are no longer desired (and still wactl's) are deletes.
pub async fn plan(
    resolver: &Resolver,
    desired: &[(String, Value)],
    previously_owned: &[ObjectRef],
    options: ApplyOptions,
) -> Result<Plan, ClusterError> {
    let refs: Vec<ObjectRef> = desired
        .iter()
        .filter_map(|(_, o)| ObjectRef::of(o))
        .collect();
    resolver
        .prefetch(refs.iter().chain(previously_owned.iter()))
        .await?;
    let missing = &missing_namespaces(resolver, &refs).await?;
    let planned = bounded(
        desired
            .iter()
            .zip(&refs)
            .map(|((_, object), reference)| async move {
                // Everything in a namespace that does not exist yet is a create, as rendered.
                if reference
                    .namespace
                    .as_ref()
                    .is_some_and(|n| missing.contains(n))
                {
                    return Ok(diff::compare(reference.clone(), None, Some(object)));
                }
                let live = get_live(resolver, reference).await?;
                let after = match &live {
                    // A new object in a namespace that does not exist yet cannot be dry-run: show it as rendered.
                    None => match apply_one(resolver, object, options, true).await {
                        Ok(v) => v,
                        Err(ClusterError::Api { message, .. }) if message.contains("not found") => {
                            object.clone()
                        }
                        Err(e) => return Err(e),
                    },
                    Some(_) => apply_one(resolver, object, options, true).await?,
                };
                Ok::<_, ClusterError>(diff::compare(
                    reference.clone(),
                    live.as_ref(),
                    Some(&after),
                ))
            }),
    )
    .await?;
    let removed: Vec<&ObjectRef> = previously_owned
        .iter()
        .filter(|o| !refs.contains(o))
        .collect();
    let deletes = bounded(removed.into_iter().map(|reference| async move {
        let live = get_live(resolver, reference).await?;
        Ok::<_, ClusterError>(
            live.filter(is_owned)
                .map(|l| diff::compare(reference.clone(), Some(&l), None)),
        )
    }))
    .await?;
    let mut plan = Plan { objects: planned };
    plan.objects.extend(deletes.into_iter().flatten());
    Ok(plan)
}

/// The namespaces of `refs` that do not exist in the cluster.
async fn missing_namespaces(
    resolver: &Resolver,
    refs: &[ObjectRef],
) -> Result<std::collections::BTreeSet<String>, ClusterError> {
    let namespaces: std::collections::BTreeSet<&String> =
        refs.iter().filter_map(|r| r.namespace.as_ref()).collect();
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(resolver.client().clone());
    let found = bounded(namespaces.into_iter().map(|name| {
        let api = api.clone();
        async move {
            let live = api.get_opt(name).await.map_err(|e| ClusterError::Api {
                action: "read",
                object: format!("Namespace {name}"),
                message: api_message(&e),
            })?;
            Ok((name.clone(), live.is_some()))
        }
    }))
    .await?;
    Ok(found
        .into_iter()
        .filter(|(_, exists)| !exists)
        .map(|(name, _)| name)
        .collect())
}

/// Deletes each object that still exists and carries wactl's label, in reverse apply
/// order; returns what was deleted. Objects wactl does not own are left alone.
pub async fn delete_owned(
    resolver: &Resolver,
    objects: &[ObjectRef],
) -> Result<Vec<ObjectRef>, ClusterError> {
    resolver.prefetch(objects).await?;
    let mut deleted = Vec::new();
    for reference in objects.iter().rev() {
        let Some(live) = get_live(resolver, reference).await? else {
            continue;
        };
        if !is_owned(&live) {
            continue;
        }
        let api = resolver.api(reference).await?;
        match api
            .delete(&reference.name, &DeleteParams::background())
            .await
        {
            Ok(_) => deleted.push(reference.clone()),
            Err(e) if super::is_not_found(&e) => {}
            Err(e) => {
                return Err(ClusterError::Api {
                    action: "delete",
                    object: reference.to_string(),
                    message: api_message(&e),
                });
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conflicts_name_field_and_manager() {
        let status: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure", "code": 409, "reason": "Conflict",
            "message": "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas",
            "details": { "name": "a", "group": "apps", "kind": "deployments", "causes": [
                { "reason": "FieldManagerConflict", "message": "conflict with \"kubectl-edit\" using apps/v1", "field": ".spec.replicas" }
            ] }
        }))
        .expect("status");
        let object = ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("ns".into()),
            name: "a".into(),
        };
        let error = conflict(&object, &kube::Error::Api(Box::new(status))).expect("a conflict");
        assert_eq!(
            error.to_string(),
            "Deployment ns/a: field .spec.replicas is owned by field manager \"kubectl-edit\"; rerun with --force-conflicts to take these fields over"
        );
    }

    #[test]
    fn ownership_is_the_managed_by_label() {
        assert!(is_owned(
            &json!({ "metadata": { "labels": { "app.kubernetes.io/managed-by": "wactl" } } })
        ));
        assert!(!is_owned(
            &json!({ "metadata": { "labels": { "app.kubernetes.io/managed-by": "helm" } } })
        ));
        assert!(!is_owned(&json!({ "metadata": {} })));
    }
}
