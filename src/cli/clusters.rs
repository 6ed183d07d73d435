//! `--cluster NAME` (repeatable), shared by every verb that touches a cluster.

use super::GlobalArgs;
use crate::cluster::Access;
use crate::config::Environment;
use crate::config::model::Target;
use crate::deploy::fleet::{self, FleetError};
use crate::ui::{OutputFormat, Ui};

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

/// Runs a cluster verb on environment `name`: once as before for a single `cluster:`;
/// for several clusters once per selected cluster, in wave order, each under a `cluster
/// NAME:` heading (text output). A cluster that fails does not stop the others: its error
/// is reported as it happens and the command fails at the end with the highest exit code.
pub fn run_each(
    global: &GlobalArgs,
    ui: &Ui,
    name: &str,
    clusters: &ClusterArgs,
    verb: &'static str,
    mut run: impl FnMut(&Environment, &Access) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, name)?;
    let targets = clusters.targets(&env)?;
    let accesses = fleet::access_for(&env, &targets, &super::deploy::access(global))?;
    // `smoke` also runs against the local Docker stack; the other verbs need a cluster.
    if verb != "smoke" {
        for target in &targets {
            super::require_cluster(global, &target.environment, verb)?;
        }
    }
    if !env.is_fleet() {
        let (Some(target), Some(access)) = (targets.first(), accesses.first()) else {
            return Ok(());
        };
        return run(&target.environment, access);
    }
    let mut failed = Vec::new();
    for (target, access) in targets.iter().zip(&accesses) {
        let cluster = target.name.clone().unwrap_or_default();
        if ui.format == OutputFormat::Text {
            println!("cluster {cluster}:");
        }
        if let Err(error) = run(&target.environment, access) {
            let code = super::exit_code(&error);
            ui.error(&error.context(format!("cluster {cluster}")), code);
            failed.push((cluster, code));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(FleetError::Clusters {
            verb,
            total: targets.len(),
            failed,
        }
        .into())
    }
}
