//! `--cluster NAME` (repeatable), shared by every verb that touches a cluster.

use crate::config::Environment;
use crate::config::model::Target;
use crate::deploy::fleet::{self, FleetError};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// Act on this cluster only, where the environment names several (`clusters:`);
    /// repeat for more. Default: every cluster.
    #[arg(long = "cluster", value_name = "NAME")]
    pub clusters: Vec<String>,
}

impl ClusterArgs {
    /// The selected clusters of `env`, in wave order (the one target of a single-cluster
    /// environment without `--cluster`).
    pub fn targets(&self, env: &Environment) -> Result<Vec<Target>, FleetError> {
        fleet::select(env, &self.clusters)
    }
}

/// `[name] ` before each line about one cluster of several; nothing for a single cluster.
#[allow(dead_code)] // used by the cluster verbs next
pub fn prefix(target: &Target) -> String {
    target
        .name
        .as_ref()
        .map(|n| format!("[{n}] "))
        .unwrap_or_default()
}
