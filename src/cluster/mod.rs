//! The Kubernetes side: connect, plan, apply, track, record and roll back.
//!
//! Every function takes its [`kube::Client`] as a parameter; nothing here reads files
//! other than the kubeconfig in [`connect`].

mod apply;
mod connect;
pub mod diff;
pub mod drift;
pub mod evidence;
mod lock;
pub mod logs;
mod object;
mod owned;
pub mod prometheus;
pub mod revision;
pub mod saved_plan;
mod status;
pub mod track;

pub use apply::{ApplyOptions, Resolver, apply_all, delete_owned, plan};
pub use connect::{Access, KubeconfigFiles, connect};
pub use diff::{Change, Plan, PlannedObject};
pub use lock::{
    DeployLock, LeaseWatch, LockLost, LockOptions, acquire_lock, lease_name, release_lock,
};
pub use object::{ObjectRef, apply_group};
pub use owned::foreign_object;
pub use revision::{RecordedObject, Revision, RevisionStatus};
pub use status::{
    AlertReport, LiveStatus, ObjectState, PodSummary, RevisionLine, WorkloadSummary, live_status,
};
pub use track::{FailureReason, RolloutFailure, TrackEvent, track};

use std::path::PathBuf;

/// The field manager of every server-side apply wactl makes.
pub const FIELD_MANAGER: &str = "wactl";
/// Label that marks what wactl owns.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "wactl");
/// Label naming the environment a revision or lease belongs to.
pub const ENVIRONMENT_LABEL: &str = "wactl.dev/environment";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
    #[error("kubeconfig {path}: context {context:?} does not exist (contexts: {available})")]
    UnknownContext {
        path: PathBuf,
        context: String,
        available: String,
    },
    #[error(
        "cannot reach the Kubernetes API server {server} (context {context:?} in {path}): {message}"
    )]
    Unreachable {
        server: String,
        context: String,
        path: PathBuf,
        message: String,
    },
    #[error("the cluster does not serve {api_version} {kind}: {message}")]
    UnknownKind {
        api_version: String,
        kind: String,
        message: String,
    },
    #[error(
        "{object}: {}; rerun with --force-conflicts to take these fields over",
        conflicts.join("; ")
    )]
    Conflict {
        object: ObjectRef,
        /// `field .spec.replicas is owned by field manager "kubectl"` per conflicting field.
        conflicts: Vec<String>,
    },
    #[error("{action} {object}: {message}")]
    Api {
        action: &'static str,
        object: String,
        message: String,
    },
    #[error(
        "environment {environment} is being deployed by {holder} since {since} (lease {lease}, expires {expires}); wait for it, or use --force-unlock if that deploy is gone"
    )]
    Locked {
        environment: String,
        holder: String,
        since: String,
        expires: String,
        /// `namespace/name` of the Lease.
        lease: String,
    },
    #[error("revision {name} in namespace {namespace} is unreadable: {message}")]
    BadRevision {
        namespace: String,
        name: String,
        message: String,
    },
    #[error("{what} did not finish within {seconds} s")]
    Timeout { what: String, seconds: u64 },
    /// A workload name (`wactl logs --env ENV SERVICE`) that the namespace does not have.
    #[error("namespace {namespace} has no Deployment or StatefulSet {name} (workloads: {known})")]
    UnknownWorkload {
        namespace: String,
        name: String,
        known: String,
    },
}

/// Renders an API error as the server's message, not Rust's debug output.
pub fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            if status.message.is_empty() {
                format!("{} ({})", status.reason, status.code)
            } else {
                status.message.clone()
            }
        }
        other => other.to_string(),
    }
}

pub(crate) fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 404)
}

pub(crate) fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 409)
}
