//! `wactl preview up N --from ENV | down N --from ENV | gc --from ENV`: per-pull-request
//! environments with an expiry.

use super::GlobalArgs;
use super::deploy::ApplyArgs;
use crate::config::Environment;
use crate::deploy::preview::{self, Removal};
use crate::deploy::{self, DeployError, DeployOptions};
use crate::github::preview::{PreviewState, preview_markdown};
use crate::github::{Reporter, State};
use crate::ui::deploy::DeployUi;
use crate::ui::{OutputFormat, Ui};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  wactl preview up 42 --from staging --skip-build --image ghcr.io/o/a@sha256:…
  wactl preview down 42 --from staging
  wactl preview gc --from staging")]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Deploy pull request N's preview of ENV into `<namespace>-pr-N` (again after a push).
    Up(UpArgs),
    /// Remove pull request N's preview: its namespace and everything in it.
    Down(DownArgs),
    /// Remove ENV's previews that expired or whose pull request is closed.
    Gc(GcArgs),
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Pull request number.
    pub pr: u64,
    /// The environment the preview copies.
    #[arg(long, value_name = "ENV")]
    pub from: String,
    /// How long the preview lives after this deploy, e.g. `72h`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "72h")]
    pub ttl: Duration,
    /// Do not build: deploy --image (or the definition's tag).
    #[arg(long)]
    pub skip_build: bool,
    /// Build context (default: the top of the git checkout holding the current directory).
    #[arg(long, conflicts_with = "skip_build")]
    pub source: Option<PathBuf>,
    /// Image reference to deploy (with --skip-build).
    #[arg(long, requires = "skip_build")]
    pub image: Option<String>,
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// Fail when GitHub cannot be told (default: warn and carry on).
    #[arg(long)]
    pub require_github: bool,
}

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Pull request number.
    pub pr: u64,
    /// The environment the preview copies.
    #[arg(long, value_name = "ENV")]
    pub from: String,
    /// Fail when GitHub cannot be told (default: warn and carry on).
    #[arg(long)]
    pub require_github: bool,
}

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// The environment whose previews to collect.
    #[arg(long, value_name = "ENV")]
    pub from: String,
    /// Fail when GitHub cannot be asked whether a pull request is closed.
    #[arg(long)]
    pub require_github: bool,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    match &args.command {
        Command::Up(up_args) => up(global, ui, up_args),
        Command::Down(down_args) => down(global, ui, down_args),
        Command::Gc(gc_args) => gc(global, ui, gc_args),
    }
}

fn up(global: &GlobalArgs, ui: &Ui, args: &UpArgs) -> anyhow::Result<()> {
    let base = crate::config::load(&global.env_dir, &args.from)?;
    let env = preview::derive(&base, args.pr)?;
    if let Some(image) = &args.image {
        crate::config::names::check_image_reference(image)
            .map_err(|message| DeployError::InvalidImage { message })?;
    }
    let ttl = SignedDuration::try_from(args.ttl)
        .map_err(|e| anyhow::anyhow!("--ttl {}: {e}", humantime::format_duration(args.ttl)))?;
    let expires_at = Timestamp::now()
        .checked_add(ttl)
        .map_err(|e| anyhow::anyhow!("--ttl {}: {e}", humantime::format_duration(args.ttl)))?;
    let build = if args.skip_build {
        None
    } else {
        Some(crate::build::BuildOptions::new(match &args.source {
            Some(dir) => dir.clone(),
            None => super::build::default_context_dir()?,
        }))
    };
    let options = DeployOptions {
        image: args.image.clone(),
        skip_build: args.skip_build,
        build,
        ..args.apply.options()
    };
    let terminal = DeployUi::new(ui, true, global.no_color);
    // Inside Actions the preview's deploy writes the step summary, outputs and annotations.
    let step = crate::github::Actions::from_env().map(|a| crate::github::DeployStep::new(a, &env));
    let mut observers: Vec<&dyn deploy::DeployObserver> = vec![&terminal];
    if let Some(step) = &step {
        observers.push(step);
    }
    let observer = deploy::Observers(observers);
    let access = super::deploy::access(global);
    let url = preview::url(&env);
    let result = super::block_on(async {
        let reporter = Reporter::from_env(&env, args.require_github)?.transient();
        let client = crate::cluster::connect(&env, &access).await?;
        let namespace = preview::claim(&client, &base, args.pr, expires_at).await?;
        let handle = match reporter.git_ref() {
            Some(git_ref) => Some(reporter.start_deployment(git_ref, url.as_deref()).await?),
            None => None,
        };
        let result = deploy::deploy(&client, &env, &options, &observer).await;
        if let Some(handle) = &handle {
            let (state, description) = match &result {
                Ok(report) => (
                    State::Success,
                    format!("preview {}, expires {expires_at}", report.outcome),
                ),
                Err(error) => (State::Failure, error.to_string()),
            };
            let posted = reporter.status(handle, state, &description).await;
            if result.is_ok() {
                posted?;
            }
        }
        let image = result.as_ref().ok().map(|r| r.image.clone());
        let body = preview_markdown(
            &env.name,
            if result.is_ok() {
                PreviewState::Up
            } else {
                PreviewState::Failed
            },
            &namespace,
            url.as_deref(),
            image.as_deref(),
            Some(&expires_at.to_string()),
        );
        let commented = reporter.upsert_preview_comment(args.pr, &body).await;
        if result.is_ok() {
            commented?;
        }
        anyhow::Ok((namespace, result))
    })??;
    let (namespace, result) = result;
    let report = result?;
    if ui.format == OutputFormat::Json {
        ui.json(&serde_json::json!({
            "preview": env.name,
            "namespace": namespace,
            "pull_request": args.pr,
            "url": url,
            "expires_at": expires_at.to_string(),
            "outcome": report.outcome.as_str(),
        }));
    } else {
        println!(
            "preview {} is up in namespace {namespace}{}, until {expires_at}",
            env.name,
            url.as_deref()
                .map(|u| format!(" at {u}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Removes one preview and tells GitHub (Deployments inactive, the comment updated).
async fn remove(
    client: &kube::Client,
    base: &Environment,
    pr: u64,
    require_github: bool,
) -> anyhow::Result<Removal> {
    let env = preview::derive(base, pr)?;
    let reporter = Reporter::from_env(&env, require_github)?.transient();
    let removal = preview::remove(client, base, pr).await?;
    reporter.deactivate_deployments().await?;
    let namespace = match &removal {
        Removal::Removed { namespace } | Removal::Absent { namespace } => namespace.clone(),
    };
    let body = preview_markdown(
        &env.name,
        PreviewState::Removed,
        &namespace,
        None,
        None,
        None,
    );
    reporter.upsert_preview_comment(pr, &body).await?;
    Ok(removal)
}

fn down(global: &GlobalArgs, ui: &Ui, args: &DownArgs) -> anyhow::Result<()> {
    let base = crate::config::load(&global.env_dir, &args.from)?;
    let access = super::deploy::access(global);
    let removal = super::block_on(async {
        let client = crate::cluster::connect(&base, &access).await?;
        remove(&client, &base, args.pr, args.require_github).await
    })??;
    if ui.format == OutputFormat::Json {
        ui.json(&serde_json::to_value(&removal)?);
    } else {
        match &removal {
            Removal::Removed { namespace } => {
                println!(
                    "removed namespace {namespace} (preview of pull request {})",
                    args.pr
                )
            }
            Removal::Absent { namespace } => println!(
                "no preview of pull request {} (namespace {namespace} does not exist)",
                args.pr
            ),
        }
    }
    Ok(())
}

fn gc(global: &GlobalArgs, ui: &Ui, args: &GcArgs) -> anyhow::Result<()> {
    let base = crate::config::load(&global.env_dir, &args.from)?;
    let access = super::deploy::access(global);
    let now = Timestamp::now();
    let (seen, removed) = super::block_on(async {
        let client = crate::cluster::connect(&base, &access).await?;
        let github = Reporter::from_env(&base, args.require_github)?;
        let previews = preview::list(&client, &base).await?;
        let mut removed = Vec::new();
        for found in &previews {
            let reason = match found.expired(now) {
                Some(true) => Some(format!(
                    "expired at {}",
                    found.expires_at.as_deref().unwrap_or_default()
                )),
                Some(false) => None,
                None => {
                    ui.note(&format!(
                        "{}: no readable {} annotation; left for `wactl preview down {} --from {}`",
                        found.namespace,
                        preview::EXPIRES_AT_ANNOTATION,
                        found.pr,
                        base.name
                    ));
                    None
                }
            };
            let reason = match reason {
                Some(reason) => Some(reason),
                None => github
                    .pull_request_closed(found.pr)
                    .await?
                    .filter(|closed| *closed)
                    .map(|_| format!("pull request {} is closed", found.pr)),
            };
            if let Some(reason) = reason
                && let Removal::Removed { namespace } =
                    remove(&client, &base, found.pr, args.require_github).await?
            {
                removed.push((namespace, found.pr, reason));
            }
        }
        anyhow::Ok((previews.len(), removed))
    })??;
    if ui.format == OutputFormat::Json {
        let removed: Vec<serde_json::Value> = removed
            .iter()
            .map(|(namespace, pr, reason)| {
                serde_json::json!({ "namespace": namespace, "pull_request": pr, "reason": reason })
            })
            .collect();
        ui.json(&serde_json::json!({ "previews": seen, "removed": removed }));
    } else if removed.is_empty() {
        println!("{seen} preview(s) of {}, none to remove", base.name);
    } else {
        for (namespace, pr, reason) in &removed {
            println!("removed namespace {namespace} (pull request {pr}): {reason}");
        }
    }
    Ok(())
}
