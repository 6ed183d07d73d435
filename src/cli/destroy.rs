//! `wactl destroy ENV`

use super::GlobalArgs;
use crate::deploy::{self, Action};
use crate::ui::deploy::DeployUi;
use crate::ui::{OutputFormat, Ui};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  wactl destroy dev                        asks, then deletes what wactl owns in dev
  wactl destroy dev --yes                  without asking (scripts, CI)")]
pub struct Args {
    /// Environment whose objects to delete.
    pub environment: String,
    /// Remove the environment's deploy lock first.
    #[arg(long)]
    pub force_unlock: bool,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    super::require_cluster(global, &env, "destroy")?;
    let options = deploy::DeployOptions {
        force_unlock: args.force_unlock,
        ..Default::default()
    };
    let terminal = DeployUi::new(ui, global.yes, global.no_color);
    // Destroying always asks: without --yes and a terminal it is refused before the cluster.
    deploy::check_confirmable(Action::Destroy, &env, terminal.can_answer())?;
    let access = super::deploy::access(global);
    let report = super::block_on(async {
        let client = crate::cluster::connect(&env, &access).await?;
        anyhow::Ok(deploy::destroy(&client, &env, &options, &terminal).await?)
    })??;
    if ui.format == OutputFormat::Json {
        ui.json(&serde_json::to_value(&report)?);
    } else {
        for o in &report.deleted {
            println!("deleted {o}");
        }
        ui.success(&format!(
            "destroyed {}: {} objects deleted",
            env.name,
            report.deleted.len()
        ));
    }
    Ok(())
}
