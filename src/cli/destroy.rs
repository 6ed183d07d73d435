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
    #[command(flatten)]
    pub clusters: super::clusters::ClusterArgs,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let (name, clusters) = (&args.environment, &args.clusters);
    super::clusters::run_each(global, ui, name, clusters, "destroy", |ui, env, access| {
        run_in(global, ui, args, env, access)
    })
}

/// `destroy` in one cluster.
fn run_in(
    global: &GlobalArgs,
    ui: &Ui,
    args: &Args,
    env: &crate::config::Environment,
    access: &crate::cluster::Access,
) -> anyhow::Result<()> {
    let options = deploy::DeployOptions {
        force_unlock: args.force_unlock,
        ..Default::default()
    };
    let terminal = DeployUi::new(ui, global.yes, global.no_color);
    // Destroying always asks: without --yes and a terminal it is refused before the cluster.
    deploy::check_confirmable(Action::Destroy, env, terminal.can_answer())?;
    let report = super::block_on(async {
        let client = crate::cluster::connect(env, access).await?;
        anyhow::Ok(deploy::destroy(&client, env, &options, &terminal).await?)
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
