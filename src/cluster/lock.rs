//! One deploy per environment at a time: a `coordination.k8s.io/v1` Lease in the
//! environment's namespace, renewed while the deploy runs and expiring by itself when
//! the deploying process dies.
//!
//! Renewals are optimistic: each one replaces the Lease read just before it, carrying that
//! read's `resourceVersion`, so a renewal never extends a lease that someone else took in
//! between. A deploy asks [`LeaseWatch::ensure_held`] before every step that writes to the
//! cluster and stops when the lease was lost or has gone unrenewed past its expiry.

use super::{ClusterError, ENVIRONMENT_LABEL, MANAGED_BY, api_message, is_conflict, is_not_found};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct LockOptions {
    /// Who deploys: `user@host (pid N)`.
    pub holder: String,
    /// How long the lease lasts without renewal.
    pub duration: Duration,
    /// Remove whatever lease exists first.
    pub force_unlock: bool,
    /// How often the lease is renewed; `None`: a third of `duration`, so one missed
    /// renewal does not lose it. Tests set it longer than `duration` to let the lease lapse.
    pub renew_every: Option<Duration>,
}

/// Why a deploy no longer holds its lock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockLost {
    #[error("the deploy lock (Lease {lease}) was taken over by {holder}")]
    TakenOver { lease: String, holder: String },
    #[error("the deploy lock (Lease {lease}) was deleted (a --force-unlock elsewhere?)")]
    Deleted { lease: String },
    #[error(
        "the deploy lock (Lease {lease}) expired: not renewed within its {seconds} s{}",
        last_error.as_ref().map(|e| format!(" (last renewal failed: {e})")).unwrap_or_default()
    )]
    Expired {
        lease: String,
        seconds: u64,
        last_error: Option<String>,
    },
}

/// What the renewer knows about the lease.
#[derive(Debug, Clone)]
enum LeaseState {
    /// Ours until `until` (the start of the last successful write plus the lease duration)
    /// unless renewed before; `last_error` is the latest failed renewal since that write.
    Held {
        until: Instant,
        last_error: Option<String>,
    },
    Lost(LockLost),
}

/// A cheap handle on a held lock's state, for the pipeline's safe points.
#[derive(Debug, Clone)]
pub struct LeaseWatch {
    state: watch::Receiver<LeaseState>,
    lease: String,
    duration: Duration,
}

impl LeaseWatch {
    /// `Ok` while the lease is ours and unexpired; the reason otherwise. Expiry is judged
    /// on this process's monotonic clock from the start of the last successful write, so a
    /// renewer that is stuck (an API outage) cannot make a lapsed lease look held.
    pub fn ensure_held(&self) -> Result<(), LockLost> {
        match &*self.state.borrow() {
            LeaseState::Lost(lost) => Err(lost.clone()),
            LeaseState::Held { until, last_error } if *until <= Instant::now() => {
                Err(LockLost::Expired {
                    lease: self.lease.clone(),
                    seconds: self.duration.as_secs(),
                    last_error: last_error.clone(),
                })
            }
            LeaseState::Held { .. } => Ok(()),
        }
    }
}

/// A held deploy lock; renewed in the background until [`DeployLock::release`].
#[derive(Debug)]
pub struct DeployLock {
    api: Api<Lease>,
    name: String,
    holder: String,
    watch: LeaseWatch,
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
        // The lease counts from before the write: the server's copy can only expire later.
        let written = Instant::now();
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
                let (state, receiver) = watch::channel(LeaseState::Held {
                    until: written + options.duration,
                    last_error: None,
                });
                let watch = LeaseWatch {
                    state: receiver,
                    lease: format!("{namespace}/{name}"),
                    duration: options.duration,
                };
                let every = options.renew_every.unwrap_or(options.duration / 3);
                let renewer = tokio::spawn(renew(
                    api.clone(),
                    name.clone(),
                    options.holder.clone(),
                    watch.clone(),
                    every,
                    state,
                ));
                return Ok(DeployLock {
                    api,
                    name,
                    holder: options.holder.clone(),
                    watch,
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

/// Renews the lease every `every` until it is lost, expires, or the lock is dropped;
/// after a failed renewal it retries sooner, within what is left of the lease.
async fn renew(
    api: Api<Lease>,
    name: String,
    holder: String,
    watch: LeaseWatch,
    every: Duration,
    state: watch::Sender<LeaseState>,
) {
    let retry = (every / 4).max(Duration::from_millis(200));
    let mut next = every;
    loop {
        tokio::time::sleep(next).await;
        if let Err(lost) = watch.ensure_held() {
            state.send_replace(LeaseState::Lost(lost));
            return;
        }
        let LeaseState::Held { until, .. } = *state.borrow() else {
            return;
        };
        let started = Instant::now();
        let attempt =
            tokio::time::timeout_at(until, renew_once(&api, &name, &holder, &watch.lease));
        match attempt.await {
            Ok(Ok(())) => {
                next = every;
                state.send_replace(LeaseState::Held {
                    until: started + watch.duration,
                    last_error: None,
                });
            }
            Ok(Err(Renewal::Lost(lost))) => {
                state.send_replace(LeaseState::Lost(lost));
                return;
            }
            Ok(Err(Renewal::Failed(message))) => {
                next = retry;
                state.send_replace(LeaseState::Held {
                    until,
                    last_error: Some(message),
                });
            }
            // The lease ran out while waiting for an answer; the next turn says so.
            Err(_) => next = Duration::ZERO,
        }
    }
}

/// How one renewal went wrong: for good, or for now.
#[derive(Debug)]
enum Renewal {
    Lost(LockLost),
    Failed(String),
}

/// Reads the lease and, when it is still `holder`'s, replaces it with a new `renewTime`
/// under the `resourceVersion` just read: a lease changed in between is a 409, never
/// overwritten.
async fn renew_once(
    api: &Api<Lease>,
    name: &str,
    holder: &str,
    lease_label: &str,
) -> Result<(), Renewal> {
    let Some(mut lease) = api
        .get_opt(name)
        .await
        .map_err(|e| Renewal::Failed(api_message(&e)))?
    else {
        return Err(Renewal::Lost(LockLost::Deleted {
            lease: lease_label.to_owned(),
        }));
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let current = spec.holder_identity.clone().unwrap_or_default();
    if current != holder {
        return Err(Renewal::Lost(LockLost::TakenOver {
            lease: lease_label.to_owned(),
            holder: if current.is_empty() {
                "nobody (released)".to_owned()
            } else {
                current
            },
        }));
    }
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Err(Renewal::Lost(LockLost::Deleted {
            lease: lease_label.to_owned(),
        })),
        // Written by someone else since the read: the next attempt reads who holds it.
        Err(e) if is_conflict(&e) => Err(Renewal::Failed(
            "the lease changed while being renewed".to_owned(),
        )),
        Err(e) => Err(Renewal::Failed(api_message(&e))),
    }
}

impl DeployLock {
    /// A handle for checking, at each safe point, that the lock is still held.
    pub fn watch(&self) -> LeaseWatch {
        self.watch.clone()
    }

    /// `Ok` while the lock is held; see [`LeaseWatch::ensure_held`].
    pub fn ensure_held(&self) -> Result<(), LockLost> {
        self.watch.ensure_held()
    }

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

    type Request = http::Request<kube::client::Body>;
    type Response = http::Response<kube::client::Body>;

    fn lease_json(holder: &str, resource_version: &str) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": { "name": "wactl-t-deploy", "namespace": "ns", "resourceVersion": resource_version },
            "spec": { "holderIdentity": holder, "leaseDurationSeconds": 30,
                "acquireTime": "2026-11-26T20:00:00Z", "renewTime": "2026-11-26T20:00:00Z" }
        })
    }

    fn respond(
        send: tower_test::mock::SendResponse<Response>,
        status: u16,
        body: &serde_json::Value,
    ) {
        send.send_response(
            http::Response::builder()
                .status(status)
                .body(kube::client::Body::from(
                    serde_json::to_vec(body).expect("json"),
                ))
                .expect("response"),
        );
    }

    fn status(code: u16, reason: &str) -> serde_json::Value {
        serde_json::json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": reason, "reason": reason, "code": code })
    }

    const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/wactl-t-deploy";

    /// Runs one renewal against a verifier that answers the GET with `read` and, when the
    /// renewal writes, checks the write and answers with `write_status`; returns the
    /// renewal's result and how many requests were made.
    async fn renewal(read: serde_json::Value, write_status: u16) -> (Result<(), Renewal>, usize) {
        let (service, mut handle) = tower_test::mock::pair::<Request, Response>();
        let client = Client::new(service, "default");
        let server = tokio::spawn(async move {
            let mut requests = 0;
            let (request, send) = handle.next_request().await.expect("a read");
            requests += 1;
            assert_eq!(request.method(), http::Method::GET);
            assert_eq!(request.uri().path(), PATH);
            respond(send, 200, &read);
            if let Some((request, send)) = handle.next_request().await {
                requests += 1;
                assert_eq!(
                    request.method(),
                    http::Method::PUT,
                    "a replace, never a patch"
                );
                assert_eq!(request.uri().path(), PATH);
                let body = request.into_body().collect_bytes().await.expect("body");
                let written: Lease = serde_json::from_slice(&body).expect("a Lease");
                // The precondition: the version that was read, so a lease changed since
                // is refused (409) rather than overwritten.
                assert_eq!(
                    written.metadata.resource_version.as_deref(),
                    read["metadata"]["resourceVersion"].as_str()
                );
                let spec = written.spec.expect("spec");
                assert_eq!(spec.holder_identity.as_deref(), Some("bo (pid 2)"));
                assert_ne!(
                    spec.renew_time.map(|t| t.0.to_string()).as_deref(),
                    Some("2026-11-26T20:00:00Z"),
                    "renewTime moves"
                );
                if write_status == 200 {
                    respond(send, 200, &read);
                } else {
                    respond(send, write_status, &status(write_status, "Conflict"));
                }
            }
            requests
        });
        let api: Api<Lease> = Api::namespaced(client, "ns");
        let result = renew_once(&api, "wactl-t-deploy", "bo (pid 2)", "ns/wactl-t-deploy").await;
        drop(api);
        (result, server.await.expect("verifier"))
    }

    #[tokio::test]
    async fn a_renewal_replaces_the_lease_it_read_under_its_resource_version() {
        let (result, requests) = renewal(lease_json("bo (pid 2)", "41"), 200).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(requests, 2);
    }

    #[tokio::test]
    async fn a_lease_taken_over_is_lost_and_never_written() {
        let (result, requests) = renewal(lease_json("ana@ci (pid 1)", "42"), 200).await;
        assert_eq!(requests, 1, "no write to someone else's lease");
        match result {
            Err(Renewal::Lost(LockLost::TakenOver { holder, .. })) => {
                assert_eq!(holder, "ana@ci (pid 1)");
            }
            other => panic!("expected a takeover, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_lease_changed_between_read_and_write_is_not_renewed() {
        let (result, requests) = renewal(lease_json("bo (pid 2)", "43"), 409).await;
        assert_eq!(requests, 2);
        assert!(
            matches!(&result, Err(Renewal::Failed(m)) if m.contains("changed")),
            "{result:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unrenewed_lease_counts_as_lost_once_its_time_is_up() {
        let (state, receiver) = watch::channel(LeaseState::Held {
            until: Instant::now() + Duration::from_secs(5),
            last_error: None,
        });
        let lease = LeaseWatch {
            state: receiver,
            lease: "ns/wactl-t-deploy".into(),
            duration: Duration::from_secs(5),
        };
        assert_eq!(lease.ensure_held(), Ok(()));
        state.send_replace(LeaseState::Held {
            until: Instant::now() + Duration::from_secs(5),
            last_error: Some("connection refused".into()),
        });
        tokio::time::advance(Duration::from_secs(5)).await;
        let expired = lease.ensure_held().expect_err("expired");
        assert_eq!(
            expired.to_string(),
            "the deploy lock (Lease ns/wactl-t-deploy) expired: not renewed within its 5 s (last renewal failed: connection refused)"
        );
        state.send_replace(LeaseState::Lost(LockLost::Deleted {
            lease: "ns/wactl-t-deploy".into(),
        }));
        assert!(matches!(lease.ensure_held(), Err(LockLost::Deleted { .. })));
    }

    /// Asserts each request the lock makes, without a cluster.
    #[tokio::test]
    async fn a_held_lease_is_reported_and_left_alone() {
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
            renew_every: None,
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
