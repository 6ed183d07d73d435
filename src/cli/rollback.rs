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
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    super::require_cluster(global, &env, "rollback")?;
    let options = args.apply.options();
    let terminal = DeployUi::new(ui, global.yes, global.no_color);
    deploy::check_confirmable(Action::Rollback, &env, terminal.can_answer())?;
    let access = super::deploy::access(global);
    super::block_on(async {
        let client = crate::cluster::connect(&env, &access).await?;
        anyhow::Ok(deploy::rollback(&client, &env, args.to, &options, &terminal).await?)
    })??;
    Ok(())
}
