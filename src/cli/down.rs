//! `wactl down [ENV] [--volumes]`

use super::GlobalArgs;
use crate::ui::Ui;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  wactl down                       stop and remove the local stack
  wactl down --volumes             also delete its database's data")]
pub struct Args {
    /// Environment whose local stack to stop.
    #[arg(default_value = "local")]
    pub environment: String,
    /// Also delete the named volumes (the database's data).
    #[arg(long)]
    pub volumes: bool,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    let report = super::block_on(async {
        let docker = crate::build::connect().await?;
        anyhow::Ok(crate::local::down(&docker, &env.local.project, args.volumes).await?)
    })??;
    ui.json(&serde_json::to_value(&report).unwrap_or_default());
    ui.success(&format!(
        "{}: removed {} containers{}",
        env.local.project,
        report.containers.len(),
        if args.volumes {
            format!(" and {} volumes", report.volumes.len())
        } else {
            String::new()
        }
    ));
    Ok(())
}
