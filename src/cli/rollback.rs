//! `wactl rollback ENV [--to REV]`

use super::GlobalArgs;
use crate::deploy::{self, DeployError};
use crate::ui::Ui;
use crate::ui::deploy::DeployUi;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment to roll back.
    pub environment: String,
    /// Revision to re-apply (default: the successful one before the current).
    #[arg(long)]
    pub to: Option<u32>,
    #[command(flatten)]
    pub apply: super::deploy::ApplyArgs,
}

pub fn run(global: &GlobalArgs, _ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    let options = args.apply.options();
    let ui = DeployUi::new(global);
    let access = super::deploy::access(global);
    let result = super::block_on(async {
        let client = crate::cluster::connect(&env, &access)
            .await
            .map_err(DeployError::from)?;
        deploy::rollback(&client, &env, args.to, &options, &ui).await
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
