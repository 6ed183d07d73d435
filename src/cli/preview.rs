//! `wactl preview up N | down N | gc [--from ENV]`: per-pull-request environments with an
//! expiry. Without `--from`, the environment whose definition says `previews: true` is the
//! one previews copy (`down` and `gc` look in every environment that says so).

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
  wactl preview up 42                   copy the environment that says `previews: true`
  wactl preview up 42 --from staging --skip-build --image ghcr.io/o/a@sha256:…
  wactl preview down 42
  wactl preview gc")]
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
    /// The environment the preview copies (default: the one whose definition says
    /// `previews: true`).
    #[arg(long, value_name = "ENV")]
    pub from: Option<String>,
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
    /// The environment the preview copies (default: every environment whose definition says
    /// `previews: true`).
    #[arg(long, value_name = "ENV")]
    pub from: Option<String>,
    /// Fail when GitHub cannot be told (default: warn and carry on).
    #[arg(long)]
    pub require_github: bool,
}

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// The environment whose previews to collect (default: every environment whose
    /// definition says `previews: true`).
    #[arg(long, value_name = "ENV")]
    pub from: Option<String>,
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

/// The environments previews copy: `--from ENV`, else every definition saying
/// `previews: true` (an error when there is none).
fn bases(global: &GlobalArgs, from: Option<&str>, verb: &str) -> anyhow::Result<Vec<Environment>> {
    if let Some(name) = from {
        return Ok(vec![crate::config::load(&global.env_dir, name)?]);
    }
    let mut bases = Vec::new();
    for name in crate::config::environment_names(&global.env_dir)? {
        let env = crate::config::load(&global.env_dir, &name)?;
        if env.previews {
            bases.push(env);
        }
    }
    if bases.is_empty() {
        return Err(super::UsageError::NoPreviewBase {
            dir: global.env_dir.display().to_string(),
            verb: verb.to_owned(),
        }
        .into());
    }
    Ok(bases)
}

fn up(global: &GlobalArgs, ui: &Ui, args: &UpArgs) -> anyhow::Result<()> {
    let mut bases = bases(global, args.from.as_deref(), "up")?;
    if bases.len() > 1 {
        let names: Vec<&str> = bases.iter().map(|b| b.name.as_str()).collect();
        return Err(super::UsageError::SeveralPreviewBases {
            environments: names.join(", "),
        }
        .into());
    }
    let base = bases.remove(0);
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
    let bases = bases(global, args.from.as_deref(), "down")?;
    let access = super::deploy::access(global);
    let mut removals = Vec::new();
    for base in &bases {
        let removal = super::block_on(async {
            let client = crate::cluster::connect(base, &access).await?;
            remove(&client, base, args.pr, args.require_github).await
        })??;
        removals.push((base.name.as_str(), removal));
    }
    if ui.format == OutputFormat::Json {
        match removals.as_slice() {
            [(_, removal)] => ui.json(&serde_json::to_value(removal)?),
            _ => {
                let each: Vec<serde_json::Value> = removals
                    .iter()
                    .map(|(from, removal)| {
                        let mut value = serde_json::to_value(removal)?;
                        value["from"] = serde_json::json!(from);
                        Ok(value)
                    })
                    .collect::<serde_json::Result<_>>()?;
                ui.json(&serde_json::json!({ "previews": each }));
            }
        }
        return Ok(());
    }
    for (from, removal) in &removals {
        match removal {
            Removal::Removed { namespace } => println!(
                "removed namespace {namespace} (preview of {from} for pull request {})",
                args.pr
            ),
            Removal::Absent { namespace } => println!(
                "no preview of {from} for pull request {} (namespace {namespace} does not exist)",
                args.pr
            ),
        }
    }
    Ok(())
}

/// A preview `gc` removed, and why.
struct Collected {
    from: String,
    namespace: String,
    pr: u64,
    reason: String,
}

fn gc(global: &GlobalArgs, ui: &Ui, args: &GcArgs) -> anyhow::Result<()> {
    let bases = bases(global, args.from.as_deref(), "gc")?;
    let access = super::deploy::access(global);
    let now = Timestamp::now();
    let mut seen = Vec::new();
    let mut removed = Vec::new();
    for base in &bases {
        let count = super::block_on(async {
            let client = crate::cluster::connect(base, &access).await?;
            let github = Reporter::from_env(base, args.require_github)?;
            let previews = preview::list(&client, base).await?;
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
                        remove(&client, base, found.pr, args.require_github).await?
                {
                    removed.push(Collected {
                        from: base.name.clone(),
                        namespace,
                        pr: found.pr,
                        reason,
                    });
                }
            }
            anyhow::Ok(previews.len())
        })??;
        seen.push((base.name.as_str(), count));
    }
    if ui.format == OutputFormat::Json {
        let removed: Vec<serde_json::Value> = removed
            .iter()
            .map(|c| {
                serde_json::json!({
                    "from": c.from,
                    "namespace": c.namespace,
                    "pull_request": c.pr,
                    "reason": c.reason,
                })
            })
            .collect();
        let total: usize = seen.iter().map(|(_, count)| count).sum();
        ui.json(&serde_json::json!({ "previews": total, "removed": removed }));
        return Ok(());
    }
    for c in &removed {
        println!(
            "removed namespace {} (preview of {} for pull request {}): {}",
            c.namespace, c.from, c.pr, c.reason
        );
    }
    for (from, count) in &seen {
        let gone = removed.iter().filter(|c| c.from == *from).count();
        if gone == 0 {
            println!("{count} preview(s) of {from}, none to remove");
        }
    }
    Ok(())
}
