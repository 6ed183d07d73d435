//! `wactl up [ENV] [--watch]`: build the service image, start the local stack, smoke it;
//! with `--watch`, again on every change of the build context.

use super::GlobalArgs;
use crate::local::watch::WatchOptions;
use crate::local::{self, Phase, UpOptions, UpProgress};
use crate::smoke::{self, SmokeError, SmokeOptions};
use crate::ui::Ui;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  wactl up                         build, start and smoke-test the local stack
  wactl up --no-build --no-smoke   start it from the image the definition names")]
pub struct Args {
    /// Environment to run locally.
    #[arg(default_value = "local")]
    pub environment: String,
    /// Use the image the definition names (it must be in the engine) instead of building.
    #[arg(long)]
    pub no_build: bool,
    /// Root of the build context and of the state directory `.wactl/local/ENV`.
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// Skip the smoke suite once the stack is healthy.
    #[arg(long)]
    pub no_smoke: bool,
    /// Then keep watching the build context (minus `.dockerignore`d paths): rebuild, replace
    /// the services that changed, wait for health, smoke again; Ctrl-C stops.
    #[arg(long, conflicts_with = "no_build")]
    pub watch: bool,
    /// Quiet time that ends a burst of changes (with --watch).
    #[arg(long, default_value = "300ms", value_parser = humantime::parse_duration, requires = "watch")]
    pub debounce: std::time::Duration,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    super::block_on(async {
        let docker = crate::build::connect().await?;
        let image = if args.no_build {
            None
        } else {
            ui.service(&env.app.name, &Phase::Building);
            let rendered = crate::render::render(&env, &Default::default())?;
            let dockerfile = rendered
                .files
                .get("Dockerfile")
                .cloned()
                .unwrap_or_default();
            let mut options = crate::build::BuildOptions::new(&args.root);
            options.check_registry = false;
            let built = crate::build::build(
                &docker,
                &env,
                &dockerfile,
                &options,
                &crate::build::NoProgress,
            )
            .await?;
            ui.service(&env.app.name, &Phase::Built(built.reference.clone()));
            Some(built.reference)
        };
        let options = UpOptions {
            state_dir: local::state_dir(&args.root, &env),
            image,
            templates: None,
        };
        let file = local::prepare(&env, &options)?;
        let report = local::up(&docker, &env, &file, &options, ui).await?;
        if !args.no_smoke
            && let Some(url) = &report.smoke_url
        {
            let smoke = smoke::run(&env, url, &SmokeOptions::for_environment(&env, url)).await;
            ui.smoke_report(&smoke);
            if !smoke.passed {
                return Err(SmokeError::Failed {
                    url: url.clone(),
                    failed: smoke.failed().map(|c| c.name.clone()).collect(),
                }
                .into());
            }
        }
        ui.up_report(&report);
        ui.success(&format!(
            "{} is up ({} services) in {:.1}s",
            report.project,
            report.services.len(),
            report.elapsed_ms as f64 / 1000.0
        ));
        if args.watch {
            let options = WatchOptions {
                context: args.root.clone(),
                state_dir: local::state_dir(&args.root, &env),
                debounce: args.debounce,
                smoke: !args.no_smoke,
                dockerfile: None,
                templates: None,
                max_cycles: None,
            };
            let reload = || {
                crate::config::load(&global.env_dir, &args.environment)
                    .map_err(|e| format!("{e:#}"))
            };
            let stop = async {
                // Without a signal handler Ctrl-C would kill the process mid-cycle.
                let _ = tokio::signal::ctrl_c().await;
            };
            let summary = local::watch::watch(&docker, &options, &reload, ui, stop).await?;
            ui.success(&format!(
                "stopped watching after {} cycles ({} succeeded, {} failed); the stack keeps running (`wactl down` stops it)",
                summary.cycles, summary.succeeded, summary.failed
            ));
        }
        Ok(())
    })?
}
