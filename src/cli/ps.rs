//! `wactl ps [ENV]`

use super::GlobalArgs;
use crate::ui::Ui;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  wactl ps                         the local stack's containers, their state and ports
  wactl ps local --output json")]
pub struct Args {
    /// Environment whose local stack to list.
    #[arg(default_value = "local")]
    pub environment: String,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    super::require_docker(&env, "ps")?;
    let containers = super::block_on(async {
        let docker = crate::build::connect().await?;
        anyhow::Ok(crate::local::ps(&docker, &env.local.project).await?)
    })??;
    ui.local_ps(&containers);
    Ok(())
}
