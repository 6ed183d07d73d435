//! `wactl logs [SERVICE] [-f] [--env ENV]`: the local stack's container logs, or for an
//! environment that deploys to a cluster, its pods' logs through the Kubernetes API.

use super::{EnvironmentKind, GlobalArgs};
use crate::ui::Ui;
use futures_util::StreamExt;
use std::io::Write;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  wactl logs                          every service of the local stack, prefixed by name
  wactl logs nginx -f --tail 20       follow one local service
  wactl logs --env dev -f             follow the service's pods in dev's cluster
  wactl logs --env dev postgres       the pods of another workload (address-service-postgres)")]
pub struct Args {
    /// One service (default: all of them, each line prefixed by its name); for a cluster
    /// environment, the workload whose pods to read (default: the service's own).
    pub service: Option<String>,
    /// Keep following new lines.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines of each service (each container, in a cluster).
    #[arg(long)]
    pub tail: Option<usize>,
    /// Environment to read: its local stack, or its pods when it deploys to a cluster.
    #[arg(long = "env", default_value = "local")]
    pub environment: String,
}

pub fn run(global: &GlobalArgs, _ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    let named = global.context.is_some() || global.kubeconfig.is_some();
    if named || EnvironmentKind::of(&env) == EnvironmentKind::Cluster {
        return cluster_logs(global, &env, args);
    }
    if let Some(service) = &args.service {
        check_service(&env, service)?;
    }
    super::block_on(async {
        let docker = crate::build::connect().await?;
        let stream = crate::local::logs(
            &docker,
            &env.local.project,
            args.service.as_deref(),
            args.follow,
            args.tail,
        )
        .await?;
        let mut stream = std::pin::pin!(stream);
        let prefix = args.service.is_none();
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = stream.next().await {
            let (service, text) = chunk?;
            for line in text.lines() {
                if prefix {
                    writeln!(out, "{service:<16} | {line}")?;
                } else {
                    writeln!(out, "{line}")?;
                }
            }
        }
        anyhow::Ok(())
    })?
}

/// The pods of a workload in the environment's cluster, every line prefixed by its pod.
fn cluster_logs(
    global: &GlobalArgs,
    env: &crate::config::Environment,
    args: &Args,
) -> anyhow::Result<()> {
    let access = super::deploy::access(global);
    let workload = args.service.as_deref().unwrap_or(&env.app.name);
    let options = crate::cluster::logs::LogOptions {
        follow: args.follow,
        tail: args.tail,
    };
    super::block_on(async {
        let client = crate::cluster::connect(env, &access).await?;
        let (_, stream) = crate::cluster::logs::workload_logs(
            &client,
            &env.cluster.namespace,
            &env.app.name,
            workload,
            options,
        )
        .await?;
        let mut stream = std::pin::pin!(stream);
        let mut out = std::io::stdout().lock();
        while let Some(line) = stream.next().await {
            let line = line?;
            writeln!(out, "{} | {}", line.source, line.line)?;
        }
        anyhow::Ok(())
    })?
}

/// A service the environment's local stack does not have is a usage error, found from the
/// definition alone (no engine needed), with the closest name as a hint.
fn check_service(env: &crate::config::Environment, service: &str) -> anyhow::Result<()> {
    let rendered = crate::render::render(env, &Default::default())?;
    let compose = rendered
        .files
        .get("compose.yaml")
        .map(|text| crate::local::compose::ComposeFile::parse(text))
        .transpose()?;
    let Some(compose) = compose else {
        return Ok(());
    };
    if compose.services.contains_key(service) {
        return Ok(());
    }
    let names = compose.services.keys().map(String::as_str);
    Err(super::UsageError::UnknownService {
        environment: env.name.clone(),
        service: service.to_owned(),
        known: names.clone().collect::<Vec<_>>().join(", "),
        hint: crate::config::closest(service, names).map(str::to_owned),
    }
    .into())
}
