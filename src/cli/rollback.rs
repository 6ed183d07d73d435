//! `wactl rollback ENV [--to REV]`

use super::GlobalArgs;
use crate::deploy::{self, Action};
use crate::ui::Ui;
use crate::ui::deploy::DeployUi;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  wactl rollback staging                   re-apply the successful revision before the live one
  wactl rollback staging --to 23           re-apply revision 23 (see `wactl history staging`)")]
pub struct Args {
    /// Environment to roll back.
    pub environment: String,
    /// Revision to re-apply (default: the successful one before the current).
    #[arg(long)]
    pub to: Option<u32>,
    #[command(flatten)]
    pub apply: super::deploy::ApplyArgs,
    #[command(flatten)]
    pub clusters: super::clusters::ClusterArgs,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let (name, clusters) = (&args.environment, &args.clusters);
    super::clusters::run_each(global, ui, name, clusters, "rollback", |ui, env, access| {
        run_in(global, ui, args, env, access)
    })
}

/// `rollback` in one cluster.
fn run_in(
    global: &GlobalArgs,
    ui: &Ui,
    args: &Args,
    env: &crate::config::Environment,
    access: &crate::cluster::Access,
) -> anyhow::Result<()> {
    let options = args.apply.options();
    let terminal = DeployUi::new(ui, global.yes, global.no_color);
    deploy::check_confirmable(Action::Rollback, env, terminal.can_answer())?;
    super::block_on(async {
        let client = crate::cluster::connect(env, access).await?;
        anyhow::Ok(deploy::rollback(&client, env, args.to, &options, &terminal).await?)
    })??;
    Ok(())
}
