//! `wactl build ENV [--push]`

use super::GlobalArgs;
use crate::build::{self, BuildOptions};
use crate::render;
use crate::ui::Ui;
use crate::ui::build::BuildReporter;
use anyhow::Context as _;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  wactl build dev                  build the image from the current checkout
  wactl build dev --push           build and push it to the definition's registry
  wactl build dev --source ../wa   build another checkout")]
pub struct Args {
    /// Environment whose image to build.
    pub environment: String,
    /// Push every tag to the environment's registry and report the digest.
    #[arg(long)]
    pub push: bool,
    /// Build even when an image from the same inputs exists.
    #[arg(long)]
    pub force: bool,
    /// Build without the engine's layer cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Build context (default: the top of the git checkout, else the current directory).
    #[arg(long, value_name = "DIR")]
    pub source: Option<PathBuf>,
    /// Directory of template overrides (relative paths as in `templates/`).
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// Give up on the build (and on the push) after this long.
    #[arg(long, default_value = "60m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    let dockerfile = &render::dockerfile(&env, args.templates.as_deref())?;
    let context_dir = match &args.source {
        Some(dir) => dir.clone(),
        None => default_context_dir()?,
    };
    let options = BuildOptions {
        force: args.force,
        no_cache: args.no_cache,
        timeout: args.timeout,
        ..BuildOptions::new(context_dir)
    };
    let reporter = BuildReporter::new(ui);
    let result = super::block_on(async {
        let docker = build::connect().await?;
        let image = build::build(&docker, &env, dockerfile, &options, &reporter).await?;
        if args.push {
            build::push(&docker, &env, &image, &options, &reporter).await
        } else {
            Ok(image)
        }
    })?;
    reporter.finish();
    let image = result?;
    ui.built_image(&image);
    Ok(())
}

/// The top of the git checkout holding the current directory, else the directory itself.
pub(super) fn default_context_dir() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let top = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    Ok(top.unwrap_or(cwd))
}
