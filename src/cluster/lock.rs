//! One deploy per environment at a time: a `coordination.k8s.io/v1` Lease in the
//! environment's namespace, renewed while the deploy runs and expiring by itself when
//! the deploying process dies.

use super::{ClusterError, ENVIRONMENT_LABEL, MANAGED_BY, api_message, is_conflict, is_not_found};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct LockOptions {
    /// Who deploys: `user@host (pid N)`.
    pub holder: String,
    /// How long the lease lasts without renewal.
    pub duration: Duration,
    /// Remove whatever lease exists first.
    pub force_unlock: bool,
}

/// A held deploy lock; renewed in the background until [`DeployLock::release`].
#[derive(Debug)]
pub struct DeployLock {
    api: Api<Lease>,
    name: String,
    holder: String,
    renewer: tokio::task::JoinHandle<()>,
}

pub fn lease_name(environment: &str) -> String {
    format!("wactl-{environment}-deploy")
}

fn held_by_other(lease: &Lease, holder: &str, now: Timestamp) -> Option<(String, String, String)> {
    let spec = lease.spec.as_ref()?;
    let current = spec.holder_identity.as_deref().filter(|h| !h.is_empty())?;
    if current == holder {
        return None;
    }
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?.0;
    let expires =
        renewed + SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    if expires <= now {
        return None;
    }
    let since = spec.acquire_time.as_ref().map_or(renewed, |t| t.0);
    Some((current.to_owned(), since.to_string(), expires.to_string()))
}

fn lease(
    name: &str,
    namespace: &str,
    environment: &str,
    options: &LockOptions,
    previous: Option<&Lease>,
) -> Lease {
    let now = MicroTime(Timestamp::now());
    let transitions = previous
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.lease_transitions)
        .map_or(0, |t| t + 1);
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            resource_version: previous.and_then(|l| l.metadata.resource_version.clone()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
                (ENVIRONMENT_LABEL.to_owned(), environment.to_owned()),
            ])),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(options.holder.clone()),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_duration_seconds: Some(
                i32::try_from(options.duration.as_secs())
                    .unwrap_or(i32::MAX)
                    .max(1),
            ),
            lease_transitions: Some(transitions),
            ..Default::default()
        }),
    }
}

/// Takes the deploy lock of `environment`, or says who holds it and since when.
pub async fn acquire_lock(
    client: &Client,
    namespace: &str,
    environment: &str,
    options: &LockOptions,
) -> Result<DeployLock, ClusterError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let name = lease_name(environment);
    let failed = |action: &'static str, e: &kube::Error| ClusterError::Api {
        action,
        object: format!("Lease {namespace}/{name}"),
        message: api_message(e),
    };
    if options.force_unlock
        && let Err(e) = api.delete(&name, &DeleteParams::default()).await
        && !is_not_found(&e)
    {
        return Err(failed("force-unlock", &e));
    }
    // Optimistic concurrency: a lost race is a 409; look again, at most a few times.
    for _ in 0..5 {
        let current = api.get_opt(&name).await.map_err(|e| failed("read", &e))?;
        let result = match &current {
            None => {
                api.create(
                    &PostParams::default(),
                    &lease(&name, namespace, environment, options, None),
                )
                .await
            }
            Some(existing) => {
                if let Some((holder, since, expires)) =
                    held_by_other(existing, &options.holder, Timestamp::now())
                {
                    return Err(ClusterError::Locked {
                        environment: environment.to_owned(),
                        holder,
                        since,
                        expires,
                        lease: format!("{namespace}/{name}"),
                    });
                }
                api.replace(
                    &name,
                    &PostParams::default(),
                    &lease(&name, namespace, environment, options, Some(existing)),
                )
                .await
            }
        };
        match result {
            Ok(_) => {
                let renewer = tokio::spawn(renew(
                    api.clone(),
                    name.clone(),
                    options.holder.clone(),
                    options.duration,
                ));
                return Ok(DeployLock {
                    api,
                    name,
                    holder: options.holder.clone(),
                    renewer,
                });
            }
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(failed("acquire", &e)),
        }
    }
    Err(ClusterError::Api {
        action: "acquire",
        object: format!("Lease {namespace}/{name}"),
        message: "another deploy kept changing the lease".to_owned(),
    })
}

/// Renews the lease at a third of its duration, so one missed renewal does not lose it.
async fn renew(api: Api<Lease>, name: String, holder: String, duration: Duration) {
    let mut ticks = tokio::time::interval((duration / 3).max(Duration::from_millis(500)));
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let patch = serde_json::json!({ "spec": { "renewTime": MicroTime(Timestamp::now()) } });
        // Only while it is still ours: a --force-unlock elsewhere ends the renewals.
        match api.get_opt(&name).await {
            Ok(Some(l))
                if l.spec.as_ref().and_then(|s| s.holder_identity.as_deref())
                    == Some(holder.as_str()) =>
            {
                let _ = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
            Ok(_) => return,
            Err(_) => {}
        }
    }
}

impl DeployLock {
    /// Stops renewing and deletes the lease if it is still ours.
    pub async fn release(self) {
        self.renewer.abort();
        let _ = delete_if_held(&self.api, &self.name, &self.holder).await;
    }
}

async fn delete_if_held(api: &Api<Lease>, name: &str, holder: &str) -> Result<bool, kube::Error> {
    match api.get_opt(name).await? {
        Some(l) if l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(holder) => {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => Ok(true),
                Err(e) if is_not_found(&e) => Ok(false),
                Err(e) => Err(e),
            }
        }
        _ => Ok(false),
    }
}

/// Deletes the deploy lease of `environment` when `holder` holds it, also without a
/// [`DeployLock`] (a deploy stopped while its lease was being written); true if deleted.
pub async fn release_lock(
    client: &Client,
    namespace: &str,
    environment: &str,
    holder: &str,
) -> Result<bool, ClusterError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let name = lease_name(environment);
    delete_if_held(&api, &name, holder)
        .await
        .map_err(|e| ClusterError::Api {
            action: "release",
            object: format!("Lease {namespace}/{name}"),
            message: api_message(&e),
        })
}

impl Drop for DeployLock {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease_held(holder: &str, renewed: &str, seconds: i32) -> Lease {
        let t = MicroTime(renewed.parse().expect("time"));
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_owned()),
                acquire_time: Some(t.clone()),
                renew_time: Some(t),
                lease_duration_seconds: Some(seconds),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_live_lease_of_someone_else_blocks() {
        let now: Timestamp = "2026-11-26T20:00:10Z".parse().expect("time");
        let l = lease_held("ana@ci (pid 1)", "2026-11-26T20:00:00Z", 30);
        let (holder, since, expires) = held_by_other(&l, "bo@laptop (pid 2)", now).expect("held");
        assert_eq!(holder, "ana@ci (pid 1)");
        assert_eq!(since, "2026-11-26T20:00:00Z");
        assert_eq!(expires, "2026-11-26T20:00:30Z");
    }

    #[test]
    fn expired_own_or_empty_leases_are_free() {
        let now: Timestamp = "2026-11-26T20:01:00Z".parse().expect("time");
        assert!(held_by_other(&lease_held("ana", "2026-11-26T20:00:00Z", 30), "bo", now).is_none());
        assert!(held_by_other(&lease_held("bo", "2026-11-26T20:00:50Z", 30), "bo", now).is_none());
        assert!(held_by_other(&lease_held("", "2026-11-26T20:00:50Z", 30), "bo", now).is_none());
    }

    /// Asserts each request the lock makes, without a cluster.
    #[tokio::test]
    async fn a_held_lease_is_reported_and_left_alone() {
        type Request = http::Request<kube::client::Body>;
        type Response = http::Response<kube::client::Body>;
        let (service, mut handle) = tower_test::mock::pair::<Request, Response>();
        let client = Client::new(service, "default");
        let now = Timestamp::now();
        let server = tokio::spawn(async move {
            let (request, send) = handle.next_request().await.expect("a request");
            assert_eq!(request.method(), http::Method::GET);
            assert_eq!(
                request.uri().path(),
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases/wactl-t-deploy"
            );
            let lease = serde_json::json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": { "name": "wactl-t-deploy", "namespace": "ns", "resourceVersion": "1" },
                "spec": { "holderIdentity": "ana@ci (pid 1)", "leaseDurationSeconds": 30,
                    "acquireTime": MicroTime(now), "renewTime": MicroTime(now) }
            });
            let body = serde_json::to_vec(&lease).expect("json");
            send.send_response(
                http::Response::builder()
                    .status(200)
                    .body(kube::client::Body::from(body))
                    .expect("response"),
            );
            // No second request: a held lease is never written.
            assert!(handle.next_request().await.is_none());
        });
        let options = LockOptions {
            holder: "bo@laptop (pid 2)".into(),
            duration: Duration::from_secs(30),
            force_unlock: false,
        };
        let error = acquire_lock(&client, "ns", "t", &options)
            .await
            .expect_err("held by someone else");
        drop(client);
        assert!(
            error
                .to_string()
                .starts_with("environment t is being deployed by ana@ci (pid 1) since "),
            "{error}"
        );
        server.await.expect("verifier");
    }
}
