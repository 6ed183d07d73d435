//! What a namespace holds besides wactl's objects: the cluster query `wactl destroy` makes
//! before it deletes a namespace.

use super::{ClusterError, MANAGED_BY, api_message};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::ListParams;
use kube::{Api, Client, Resource};

/// Something in `namespace` that wactl does not own, as `Kind name`, if any (checked for
/// the kinds an application would put there).
pub async fn foreign_object(
    client: &Client,
    namespace: &str,
) -> Result<Option<String>, ClusterError> {
    if let Some(found) = first_foreign::<Deployment>(client, namespace, &[]).await? {
        return Ok(Some(found));
    }
    if let Some(found) = first_foreign::<StatefulSet>(client, namespace, &[]).await? {
        return Ok(Some(found));
    }
    if let Some(found) = first_foreign::<Service>(client, namespace, &[]).await? {
        return Ok(Some(found));
    }
    // Every namespace gets this ConfigMap from the control plane.
    if let Some(found) =
        first_foreign::<ConfigMap>(client, namespace, &["kube-root-ca.crt"]).await?
    {
        return Ok(Some(found));
    }
    first_foreign::<Secret>(client, namespace, &[]).await
}

async fn first_foreign<K>(
    client: &Client,
    namespace: &str,
    skip: &[&str],
) -> Result<Option<String>, ClusterError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| ClusterError::Api {
            action: "list",
            object: format!("{} in namespace {namespace}", K::kind(&())),
            message: api_message(&e),
        })?;
    Ok(list
        .items
        .iter()
        .find(|o| {
            let name = o.metadata.name.as_deref().unwrap_or_default();
            let owned = o
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_BY.0))
                .map(String::as_str)
                == Some(MANAGED_BY.1);
            !owned && !skip.contains(&name) && o.metadata.deletion_timestamp.is_none()
        })
        .map(|o| {
            format!(
                "{} {}",
                K::kind(&()),
                o.metadata.name.as_deref().unwrap_or_default()
            )
        }))
}
