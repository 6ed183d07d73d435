//! `wactl deploy ENV`

use super::GlobalArgs;
use crate::cluster::{Access, ApplyOptions};
use crate::deploy::{self, DeployError, DeployOptions};
use crate::ui::Ui;
use crate::ui::deploy::DeployUi;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
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
    /// Directory of template overrides (relative paths as in `templates/`).
    #[arg(long)]
    pub templates: Option<PathBuf>,
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// Leave a failed deploy as it is instead of rolling back.
    #[arg(long)]
    pub no_rollback: bool,
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

pub fn run(global: &GlobalArgs, _ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    if let Some(image) = &args.image {
        crate::config::names::check_image_reference(image)
            .map_err(|message| DeployError::InvalidImage { message })?;
    }
    let build = if args.skip_build {
        None
    } else {
        let context = match &args.source {
            Some(dir) => dir.clone(),
            None => checkout_root()?,
        };
        Some(crate::build::BuildOptions::new(context))
    };
    let options = DeployOptions {
        image: args.image.clone(),
        skip_build: args.skip_build,
        build,
        templates: args.templates.clone(),
        rollback: !args.no_rollback,
        ..args.apply.options()
    };
    let ui = DeployUi::new(global);
    let access = access(global);
    let result = super::block_on(async {
        let client = crate::cluster::connect(&env, &access)
            .await
            .map_err(DeployError::from)?;
        deploy::deploy(&client, &env, &options, &ui).await
    })?;
    match result {
        Ok(report) => {
            ui.report(&report);
            Ok(())
        }
        Err(error) => {
            if let Some(report) = error.report() {
                ui.report(report);
            }
            Err(error.into())
        }
    }
}

/// The top of the git checkout holding the current directory, else the directory itself.
fn checkout_root() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir()?;
    let top = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    Ok(top.unwrap_or(cwd))
}
