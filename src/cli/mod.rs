//! Command-line interface: clap arguments → options → library calls. The library never
//! sees clap; each verb lives in its own file.

mod build;
mod completions;
mod deploy;
mod destroy;
mod diff;
mod down;
mod drift;
mod exit;
mod history;
mod logs;
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
    about = "Deploys the World Address service from one typed definition per environment"
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

/// Command lines that name something that does not exist (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{environment}: no service {service} in the local stack (services: {known}){}", hint.as_ref().map(|h| format!("; did you mean {h}?")).unwrap_or_default())]
    UnknownService {
        environment: String,
        service: String,
        known: String,
        hint: Option<String>,
    },
}
