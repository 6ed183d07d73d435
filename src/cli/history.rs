//! `wactl history ENV`

use super::GlobalArgs;
use crate::cluster::{RevisionLine, revision};
use crate::ui::{OutputFormat, Ui};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment whose recorded revisions to list.
    pub environment: String,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    let access = super::deploy::access(global);
    let revisions = super::block_on(async {
        let client = crate::cluster::connect(&env, &access).await?;
        revision::list(&client, &env.cluster.namespace, &env.name).await
    })??;
    let lines: Vec<RevisionLine> = revisions.iter().map(RevisionLine::from).collect();
    if ui.format == OutputFormat::Json {
        ui.json(&serde_json::to_value(&lines)?);
        return Ok(());
    }
    if lines.is_empty() {
        println!(
            "{}: no revisions in namespace {}",
            env.name, env.cluster.namespace
        );
    }
    println!(
        "{:>4}  {:<12}  {:<25}  {:<20}  image",
        "REV", "STATUS", "STARTED", "BY"
    );
    for l in &lines {
        let note = match (l.rollback_of, &l.message) {
            (Some(of), _) => format!("  (rollback to {of})"),
            (None, Some(m)) => format!("  ({})", m.lines().next().unwrap_or_default()),
            _ => String::new(),
        };
        println!(
            "{:>4}  {:<12}  {:<25}  {:<20}  {}{note}",
            l.number,
            l.status,
            l.started_at,
            format!("{}@{}", l.user, l.host),
            l.image
        );
    }
    Ok(())
}
