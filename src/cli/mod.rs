//! Command-line interface: clap arguments → options → library calls. The library never
//! sees clap; each verb lives in its own file.

mod build;
mod clusters;
mod completions;
mod deploy;
mod destroy;
mod diff;
mod down;
mod drift;
mod exit;
mod history;
mod logs;
mod preview;
mod ps;
mod render;
mod rollback;
mod schema;
mod smoke;
mod status;
mod up;
mod validate;

pub use exit::{code_of, exit_code};

use crate::ui::{OutputFormat, Ui};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "wactl",
    version,
    about = "Deploys the World Address service from one typed definition per environment",
    after_help = "\
Examples:
  wactl validate --list              the environments, their kind, cluster and namespace
  wactl up                           the whole stack on the local Docker Engine
  wactl deploy dev                   build, push, apply, track, smoke and record
  wactl status dev                   what runs; `wactl history dev` what ran
  wactl <COMMAND> --help             each command's options and examples"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Directory holding the environment definitions.
    #[arg(
        long,
        global = true,
        default_value = "environments",
        env = "WACTL_ENV_DIR"
    )]
    pub env_dir: PathBuf,
    /// Output format of results on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Answer yes to every confirmation (needed for protected environments without a terminal).
    #[arg(long, global = true)]
    pub yes: bool,
    /// Kubeconfig file (overrides the definition and KUBECONFIG).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (overrides the definition).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// More detail on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Never colour output.
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check environment definitions (all of them when none is named).
    Validate(validate::Args),
    /// Print the JSON Schema of environment files.
    #[command(after_help = "\
Examples:
  wactl schema > docs/environment.schema.json
  # then, in an environment file, for completion and checks in the editor:
  # yaml-language-server: $schema=../docs/environment.schema.json")]
    Schema,
    /// Write every artifact of an environment.
    Render(render::Args),
    /// Build the service image through the Docker Engine API (and push it).
    Build(build::Args),
    /// Start the local stack on the Docker Engine (build, converge, wait for health, smoke).
    Up(up::Args),
    /// Stop and remove the local stack.
    Down(down::Args),
    /// List the local stack's containers.
    Ps(ps::Args),
    /// Print the local stack's logs.
    Logs(logs::Args),
    /// Show what a deploy would change (server-side dry-run against the live cluster).
    Diff(diff::Args),
    /// Build, render, apply, track, smoke-test and record a revision.
    Deploy(deploy::Args),
    /// Live objects against the last successful revision, each change attributed to who
    /// made it (exit 1 when anything drifted).
    Drift(drift::Args),
    /// Per-pull-request preview environments: up, down, and gc of expired or closed ones.
    Preview(preview::Args),
    /// Live state: objects, workloads, pods, images, revision.
    Status(status::Args),
    /// Recorded revisions.
    History(history::Args),
    /// Re-apply a recorded revision.
    Rollback(rollback::Args),
    /// Delete what wactl owns in an environment.
    Destroy(destroy::Args),
    /// Run the smoke suite against a running environment.
    Smoke(smoke::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let ui = Ui::new(
        cli.global.output,
        cli.global.quiet,
        cli.global.verbose,
        cli.global.no_color,
    );
    match cli.command {
        Command::Validate(args) => validate::run(&cli.global, &ui, &args),
        Command::Schema => schema::run(),
        Command::Render(args) => render::run(&cli.global, &ui, &args),
        Command::Build(args) => build::run(&cli.global, &ui, &args),
        Command::Up(args) => up::run(&cli.global, &ui, &args),
        Command::Down(args) => down::run(&cli.global, &ui, &args),
        Command::Ps(args) => ps::run(&cli.global, &ui, &args),
        Command::Logs(args) => logs::run(&cli.global, &ui, &args),
        Command::Diff(args) => diff::run(&cli.global, &ui, &args),
        Command::Deploy(args) => deploy::run(&cli.global, &ui, &args),
        Command::Drift(args) => drift::run(&cli.global, &ui, &args),
        Command::Preview(args) => preview::run(&cli.global, &ui, &args),
        Command::Status(args) => status::run(&cli.global, &ui, &args),
        Command::History(args) => history::run(&cli.global, &ui, &args),
        Command::Rollback(args) => rollback::run(&cli.global, &ui, &args),
        Command::Destroy(args) => destroy::run(&cli.global, &ui, &args),
        Command::Smoke(args) => smoke::run(&cli.global, &ui, &args),
        Command::Completions(args) => completions::run(&args),
    }
}

/// Runs an async library call on a runtime made for this one command.
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}

/// Where an environment runs, from what its definition names: a cluster (`cluster.context`
/// or `cluster.kubeconfig`), else only the local stack on the Docker Engine (`wactl up`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentKind {
    Docker,
    Cluster,
}

impl EnvironmentKind {
    pub fn of(env: &crate::config::Environment) -> Self {
        if env.is_fleet() || env.cluster.context.is_some() || env.cluster.kubeconfig.is_some() {
            Self::Cluster
        } else {
            Self::Docker
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Cluster => "cluster",
        }
    }
}

/// Refuses a cluster verb on an environment that names no cluster (it would act on whatever
/// cluster `KUBECONFIG` happens to name), unless the command line names one.
pub fn require_cluster(
    global: &GlobalArgs,
    env: &crate::config::Environment,
    verb: &str,
) -> Result<(), UsageError> {
    let named = global.context.is_some() || global.kubeconfig.is_some();
    if named || EnvironmentKind::of(env) == EnvironmentKind::Cluster {
        return Ok(());
    }
    Err(UsageError::DockerOnly {
        environment: env.name.clone(),
        verb: verb.to_owned(),
    })
}

/// Refuses a local-stack verb on an environment that deploys to a cluster.
pub fn require_docker(env: &crate::config::Environment, verb: &str) -> Result<(), UsageError> {
    if EnvironmentKind::of(env) == EnvironmentKind::Docker {
        return Ok(());
    }
    Err(UsageError::ClusterOnly {
        environment: env.name.clone(),
        verb: verb.to_owned(),
        context: env
            .cluster
            .context
            .clone()
            .unwrap_or_else(|| "of its kubeconfig".to_owned()),
        namespace: env.cluster.namespace.clone(),
    })
}

/// Command lines that name something that does not exist (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A cluster verb on an environment that only runs on the Docker Engine.
    #[error(
        "{environment} runs only on the Docker Engine (its definition names no cluster context or kubeconfig), so `wactl {verb}` has no cluster to use: see its local stack with `wactl ps {environment}` and `wactl logs --env {environment}`, or name a cluster with --context"
    )]
    DockerOnly { environment: String, verb: String },
    /// A local-stack verb on an environment that deploys to a cluster.
    #[error(
        "{environment} deploys to a cluster (context {context}, namespace {namespace}) and has no local stack, so `wactl {verb}` has nothing to show: use `wactl status {environment}` for its pods and `wactl logs --env {environment}` for their logs"
    )]
    ClusterOnly {
        environment: String,
        verb: String,
        context: String,
        namespace: String,
    },
    #[error("{environment}: no service {service} in the local stack (services: {known}){}", hint.as_ref().map(|h| format!("; did you mean {h}?")).unwrap_or_default())]
    UnknownService {
        environment: String,
        service: String,
        known: String,
        hint: Option<String>,
    },
    /// `deploy --plan` builds nothing: its sources only serve `--check-image`.
    #[error(
        "--source with --plan is read only by --check-image; add --check-image or drop --source"
    )]
    SourceWithoutCheck,
    /// `wactl preview` without `--from`, and no definition says `previews: true`.
    #[error(
        "no environment in {dir} says `previews: true`, so `wactl preview {verb}` does not know which environment the previews copy: add `previews: true` to one definition or pass --from ENV"
    )]
    NoPreviewBase { dir: String, verb: String },
    /// `wactl preview up` without `--from`, and several definitions say `previews: true`.
    #[error(
        "several environments say `previews: true` ({environments}), so `wactl preview up` does not know which to copy: pass --from ENV"
    )]
    SeveralPreviewBases { environments: String },
}
