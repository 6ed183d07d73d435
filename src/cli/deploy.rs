//! `wactl deploy ENV`

use super::GlobalArgs;
use crate::cluster::{Access, ApplyOptions};
use crate::deploy::fleet;
use crate::deploy::{self, Action, DeployError, DeployObserver, DeployOptions, Observers};
use crate::ui::Ui;
use crate::ui::deploy::DeployUi;
use crate::ui::fleet::FleetUi;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  wactl deploy dev                         build, push, apply, track, smoke, record
  wactl deploy staging --skip-build --image 127.0.0.1:5000/world-address/address-service:v2
  wactl deploy production --yes            a protected environment without a terminal
  wactl deploy staging --plan plan.json    apply exactly the plan `wactl diff --save-plan` saved")]
pub struct Args {
    /// Environment to deploy.
    pub environment: String,
    /// Do not build: deploy --image (or the definition's tag).
    #[arg(long)]
    pub skip_build: bool,
    /// Build context (default: the top of the git checkout holding the current directory).
    #[arg(long, conflicts_with = "skip_build")]
    pub source: Option<PathBuf>,
    /// Image reference to deploy (with --skip-build).
    #[arg(long, requires = "skip_build")]
    pub image: Option<String>,
    /// Apply exactly the plan `wactl diff ENV --save-plan FILE` saved, refusing when
    /// anything it was made from has changed since.
    #[arg(long, value_name = "FILE", conflicts_with = "image")]
    pub plan: Option<PathBuf>,
    /// With --plan: refuse the plan unless the sources (--source, or the checkout here)
    /// make the image it applies (resolved as `wactl diff` does, without building).
    #[arg(long, requires = "plan")]
    pub check_image: bool,
    /// The oldest plan --plan applies, e.g. `2h`.
    #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration, default_value = "24h", requires = "plan")]
    pub plan_max_age: Duration,
    /// Directory of template overrides (relative paths as in `templates/`).
    #[arg(long)]
    pub templates: Option<PathBuf>,
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// Leave a failed deploy as it is instead of rolling back.
    #[arg(long)]
    pub no_rollback: bool,
    /// Fail when GitHub cannot be told about the deploy (default: warn and carry on).
    #[arg(long)]
    pub require_github: bool,
    #[command(flatten)]
    pub clusters: super::clusters::ClusterArgs,
}

/// Flags every command that applies objects shares.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Take over fields another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Remove the environment's deploy lock first (when the deploy holding it is gone).
    #[arg(long)]
    pub force_unlock: bool,
    /// Rollout deadline (default: the definition's progress deadline plus 30 s), e.g. `90s`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// How long the deploy lock lasts without renewal.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s", hide = true)]
    pub lock_duration: Duration,
}

impl ApplyArgs {
    pub fn options(&self) -> DeployOptions {
        DeployOptions {
            apply: ApplyOptions {
                force_conflicts: self.force_conflicts,
            },
            force_unlock: self.force_unlock,
            timeout: self.timeout,
            lock_duration: self.lock_duration,
            // Ctrl-C or a cancelled CI job: mark the revision interrupted, free the lock.
            stop_on_signals: true,
            ..DeployOptions::default()
        }
    }
}

/// The cluster access overrides of the command line.
pub fn access(global: &GlobalArgs) -> Access {
    Access {
        kubeconfig: global.kubeconfig.clone(),
        context: global.context.clone(),
    }
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    super::require_cluster(global, &env, "deploy")?;
    if let Some(image) = &args.image {
        crate::config::names::check_image_reference(image)
            .map_err(|message| DeployError::InvalidImage { message })?;
    }
    let targets = args.clusters.targets(&env)?;
    if !env.is_fleet() {
        return run_one(global, ui, args, &env, &access(global));
    }
    match (&args.plan, targets.as_slice()) {
        // A saved plan is one cluster's (the file names the cluster it was made for, which
        // the apply checks): with that cluster picked, it is a deploy to that cluster alone.
        (Some(_), [target]) => {
            let accesses = fleet::access_for(&env, std::slice::from_ref(target), &access(global))?;
            let access = accesses.first().cloned().unwrap_or_default();
            run_one(global, ui, args, &target.environment, &access)
        }
        (Some(_), _) => Err(fleet::FleetError::PlanForSeveral {
            environment: env.name.clone(),
            selected: targets.into_iter().filter_map(|t| t.name).collect(),
        }
        .into()),
        (None, _) => run_fleet(global, ui, args, &env, &targets),
    }
}

/// `deploy` to one cluster: a single-cluster environment, or one cluster of several
/// (`env` is then that cluster's view of the environment).
fn run_one(
    global: &GlobalArgs,
    ui: &Ui,
    args: &Args,
    env: &crate::config::Environment,
    access: &crate::cluster::Access,
) -> anyhow::Result<()> {
    let terminal = DeployUi::new(ui, global.yes, global.no_color);
    // A protected environment without --yes and without a terminal is refused before any
    // cluster, registry or GitHub is contacted.
    deploy::check_confirmable(Action::Deploy, env, terminal.can_answer())?;
    // A saved plan is read and checked before anything is contacted: a bad file is exit 2.
    let saved = match &args.plan {
        Some(path) => {
            let saved = deploy::plan_file::SavedPlan::read(path)?;
            saved.check_environment(env, path)?;
            saved.check_age(k8s_openapi::jiff::Timestamp::now(), args.plan_max_age, path)?;
            Some((path.clone(), std::sync::Arc::new(saved)))
        }
        None => None,
    };
    if saved.is_some() && args.source.is_some() && !args.check_image {
        return Err(super::UsageError::SourceWithoutCheck.into());
    }
    if let Some((path, saved)) = saved.as_ref().filter(|_| args.check_image) {
        let sources = crate::build::BuildOptions::new(match &args.source {
            Some(dir) => dir.clone(),
            None => super::build::default_context_dir()?,
        });
        let templates = args.templates.clone().or_else(|| saved.templates.clone());
        let found = super::block_on(super::diff::resolve_image(ui, env, &templates, &sources))??;
        deploy::plan_file::check_image(saved, &found, path)?;
    }
    let build = if args.skip_build || saved.is_some() {
        None
    } else {
        let context = match &args.source {
            Some(dir) => dir.clone(),
            None => super::build::default_context_dir()?,
        };
        Some(crate::build::BuildOptions::new(context))
    };
    let mut options = DeployOptions {
        image: args.image.clone(),
        skip_build: args.skip_build || saved.is_some(),
        build,
        plan: saved,
        templates: args.templates.clone(),
        rollback: !args.no_rollback,
        ..args.apply.options()
    };
    if let Some((_, saved)) = &options.plan {
        // The plan was reviewed as made: taking over others' fields if it did.
        options.apply.force_conflicts |= saved.force_conflicts;
    }
    let step = crate::github::Actions::from_env().map(|a| crate::github::DeployStep::new(a, env));
    let mut observers: Vec<&dyn DeployObserver> = vec![&terminal];
    if let Some(step) = &step {
        observers.push(step);
    }
    let observer = Observers(observers);
    let result = super::block_on(async {
        // Built inside the runtime that uses it: its HTTP client spawns a worker there.
        let reporter = crate::github::Reporter::from_env(env, args.require_github)?;
        // The GitHub Deployment is created first so reviewers see "in progress" live.
        let handle = match reporter.git_ref() {
            Some(git_ref) => Some(
                reporter
                    .start_deployment(git_ref, env.smoke.url.as_deref())
                    .await?,
            ),
            None => None,
        };
        let result = match crate::cluster::connect(env, access).await {
            Ok(client) => deploy::deploy(&client, env, &options, &observer).await,
            Err(error) => Err(DeployError::from(error)),
        };
        if let Some(handle) = &handle {
            let (state, description) = match &result {
                // The environment page names this commit as live even when nothing changed.
                Ok(report) if report.outcome == deploy::Outcome::Unchanged => (
                    crate::github::State::Success,
                    format!(
                        "nothing to change: the environment already matches this commit (revision {})",
                        report.revision.unwrap_or_default()
                    ),
                ),
                Ok(report) => (
                    crate::github::State::Success,
                    format!(
                        "{}, revision {}",
                        report.outcome,
                        report.revision.unwrap_or_default()
                    ),
                ),
                Err(error) => (crate::github::State::Failure, error.to_string()),
            };
            let posted = reporter.status(handle, state, &description).await;
            // A failed deploy's own error matters more than GitHub's.
            if result.is_ok() {
                posted?;
            }
        }
        anyhow::Ok(result)
    })??;
    result.map(|_| ()).map_err(anyhow::Error::from)
}

/// The deploy options of the command line (the build's context located).
fn deploy_options(args: &Args) -> anyhow::Result<DeployOptions> {
    let build = if args.skip_build {
        None
    } else {
        let context = match &args.source {
            Some(dir) => dir.clone(),
            None => super::build::default_context_dir()?,
        };
        Some(crate::build::BuildOptions::new(context))
    };
    Ok(DeployOptions {
        image: args.image.clone(),
        skip_build: args.skip_build,
        build,
        templates: args.templates.clone(),
        rollback: !args.no_rollback,
        ..args.apply.options()
    })
}

/// An environment of several clusters: wave by wave, one live view, one report.
fn run_fleet(
    global: &GlobalArgs,
    ui: &Ui,
    args: &Args,
    env: &crate::config::Environment,
    targets: &[crate::config::model::Target],
) -> anyhow::Result<()> {
    let terminal = FleetUi::new(ui, global.yes, global.no_color);
    deploy::check_confirmable(Action::Deploy, env, terminal.can_answer())?;
    let options = deploy_options(args)?;
    let access = access(global);
    let step = crate::github::Actions::from_env().map(crate::github::fleet::FleetStep::new);
    let mut observers: Vec<&dyn DeployObserver> = vec![&terminal];
    if let Some(step) = &step {
        observers.push(step);
    }
    let observer = Observers(observers);
    let result = super::block_on(async {
        // One GitHub Deployment per cluster (`production/eu-1`), all "in progress" first.
        let mut deployments = Vec::new();
        for target in targets {
            let reporter =
                crate::github::Reporter::from_env(&target.environment, args.require_github)?;
            let handle = match reporter.git_ref() {
                Some(git_ref) => Some(
                    reporter
                        .start_deployment(git_ref, target.environment.smoke.url.as_deref())
                        .await?,
                ),
                None => None,
            };
            deployments.push((target.name.clone().unwrap_or_default(), reporter, handle));
        }
        let result = fleet::deploy(env, targets, &access, &options, &observer).await;
        let report = match &result {
            Ok(report) => Some(report),
            Err(error) => error.report(),
        };
        for (name, reporter, handle) in &deployments {
            let Some(handle) = handle else { continue };
            let row = report.and_then(|r| r.clusters.iter().find(|c| &c.name == name));
            let (state, description) = match (row, &result) {
                (Some(row), _) => crate::github::fleet::cluster_status(row),
                (None, Err(error)) => (crate::github::State::Failure, error.to_string()),
                (None, Ok(_)) => continue,
            };
            let posted = reporter.status(handle, state, &description).await;
            if result.is_ok() {
                posted?;
            }
        }
        anyhow::Ok(result)
    })??;
    result.map(|_| ()).map_err(anyhow::Error::from)
}
