//! `wactl history ENV`

use super::GlobalArgs;
use crate::cluster::{RevisionLine, revision};
use crate::ui::{OutputFormat, Ui};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment whose recorded revisions to list.
    pub environment: String,
    #[command(flatten)]
    pub clusters: super::clusters::ClusterArgs,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let (name, clusters) = (&args.environment, &args.clusters);
    super::clusters::run_each(global, ui, name, clusters, "history", |env, access| {
        run_in(ui, env, access)
    })
}

/// `history` in one cluster.
fn run_in(
    ui: &Ui,
    env: &crate::config::Environment,
    access: &crate::cluster::Access,
) -> anyhow::Result<()> {
    let revisions = super::block_on(async {
        let client = crate::cluster::connect(env, access).await?;
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
