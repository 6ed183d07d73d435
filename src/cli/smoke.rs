//! `wactl smoke ENV [--url URL]`

use super::GlobalArgs;
use crate::smoke::{self, SmokeError, SmokeOptions};
use crate::ui::Ui;
use std::time::Duration;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  wactl smoke staging                      the smoke suite against the definition's smoke.url
  wactl smoke local --url http://127.0.0.1:18081")]
pub struct Args {
    /// Environment whose suite to run.
    pub environment: String,
    /// Base URL of the service (default: the definition's `smoke.url`).
    #[arg(long)]
    pub url: Option<String>,
    /// How long readiness is retried (default: the definition's `smoke.deadline`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub deadline: Option<Duration>,
    #[command(flatten)]
    pub clusters: super::clusters::ClusterArgs,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let (name, clusters) = (&args.environment, &args.clusters);
    super::clusters::run_each(global, ui, name, clusters, "smoke", |ui, env, _access| {
        run_in(ui, args, env)
    })
}

/// `smoke` in one cluster.
fn run_in(ui: &Ui, args: &Args, env: &crate::config::Environment) -> anyhow::Result<()> {
    let Some(url) = args.url.clone().or_else(|| env.smoke.url.clone()) else {
        return Err(SmokeError::InvalidUrl {
            url: String::new(),
            message: format!(
                "environment {} has no smoke.url: set one in its definition or pass --url",
                env.name
            ),
        }
        .into());
    };
    smoke::check_url(&url)?;
    let mut options = SmokeOptions::for_environment(env, &url);
    if let Some(deadline) = args.deadline {
        options.deadline = deadline;
    }
    let report = super::block_on(smoke::run(env, &url, &options))?;
    ui.smoke_report(&report);
    if report.passed {
        Ok(())
    } else {
        Err(SmokeError::Failed {
            url: report.base_url.clone(),
            failed: report.failed().map(|c| c.name.clone()).collect(),
        }
        .into())
    }
}
