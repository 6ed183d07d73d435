//! `wactl destroy`: deletes what wactl owns in an environment, always after a confirmation.

use super::{
    Confirmation, DeployError, DeployEvent, DeployObserver, DeployOptions, EventKind, confirm,
    lock_options,
};
use crate::cluster::revision::{self, Revision};
use crate::cluster::{self, ObjectRef, Resolver};
use crate::config::Environment;
use kube::Client;

/// What `destroy` removed and what it left.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DestroyReport {
    pub deleted: Vec<ObjectRef>,
    pub kept_namespace: Option<String>,
}

/// Every object the recorded revisions name, each once, in the order first recorded.
fn owned(revisions: &[Revision]) -> Vec<ObjectRef> {
    let mut owned: Vec<ObjectRef> = Vec::new();
    for o in revisions.iter().flat_map(|r| &r.inventory) {
        if !owned.contains(o) {
            owned.push(o.clone());
        }
    }
    owned
}

/// Deletes every object wactl owns in `env` (per the recorded revisions), the revisions,
/// and the namespace when it holds nothing else.
pub async fn destroy(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    observer: &dyn DeployObserver,
) -> Result<DestroyReport, DeployError> {
    let namespace = &env.cluster.namespace;
    let revisions = revision::list(client, namespace, &env.name).await?;
    let mut owned = owned(&revisions);
    if env.rollout.canary.is_some() {
        // A canary a killed deploy left is in no revision's inventory.
        for canary in super::canary::canary_refs(env) {
            if !owned.contains(&canary) {
                owned.push(canary);
            }
        }
    }
    confirm(
        observer,
        env,
        &Confirmation::Destroy {
            environment: env.name.clone(),
            namespace: namespace.clone(),
            objects: owned.clone(),
        },
    )?;
    if revisions.is_empty() {
        return Ok(DestroyReport {
            deleted: vec![],
            kept_namespace: None,
        });
    }
    let held = cluster::acquire_lock(client, namespace, &env.name, &lock_options(options)).await?;
    let resolver = Resolver::new(client.clone());
    // Everything but the namespaces first (reverse apply order), revisions, then namespaces.
    let (namespaces, mut objects): (Vec<ObjectRef>, Vec<ObjectRef>) = owned
        .into_iter()
        .partition(|o| o.kind == "Namespace" && o.api_version == "v1");
    let order = |o: &ObjectRef| {
        revisions
            .iter()
            .rev()
            .flat_map(|r| r.objects.iter())
            .find(|r| ObjectRef::of(&r.object).as_ref() == Some(o))
            .map_or(u8::MAX, |r| cluster::apply_group(&r.file))
    };
    objects.sort_by_key(order);
    let result = async {
        let mut deleted = cluster::delete_owned(&resolver, &objects).await?;
        revision::delete(client, namespace, &revisions).await?;
        let mut kept = None;
        for ns in &namespaces {
            match cluster::foreign_object(client, &ns.name).await? {
                None => deleted
                    .extend(cluster::delete_owned(&resolver, std::slice::from_ref(ns)).await?),
                Some(what) => {
                    observer.event(&DeployEvent {
                        environment: env.name.clone(),
                        cluster: None,
                        kind: EventKind::Note(format!(
                            "kept namespace {}: it also holds {what}, which wactl does not own",
                            ns.name
                        )),
                    });
                    kept = Some(ns.name.clone());
                }
            }
        }
        Ok::<_, DeployError>(DestroyReport {
            deleted,
            kept_namespace: kept,
        })
    }
    .await;
    held.release().await;
    result
}
