//! `wactl up [ENV]`: build the service image, start the local stack, smoke it.

use super::GlobalArgs;
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
        Ok(())
    })?
}
