//! `wactl status ENV`

use super::GlobalArgs;
use crate::ui::{OutputFormat, Ui};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment whose live state to show.
    pub environment: String,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    let access = super::deploy::access(global);
    let status = super::block_on(async {
        let client = crate::cluster::connect(&env, &access).await?;
        crate::cluster::live_status(&client, &env.cluster.namespace, &env.name).await
    })??;
    if ui.format == OutputFormat::Json {
        ui.json(&serde_json::to_value(&status)?);
        return Ok(());
    }
    println!(
        "environment {} (namespace {})",
        status.environment, status.namespace
    );
    match (&status.current, &status.latest) {
        (Some(c), Some(l)) if c.number != l.number => println!(
            "revision {} live ({}); latest revision {} {}",
            c.number, c.image, l.number, l.status
        ),
        (Some(c), _) => println!(
            "revision {} live ({}), deployed {} by {}@{}",
            c.number, c.image, c.started_at, c.user, c.host
        ),
        (None, Some(l)) => println!(
            "no successful revision; latest revision {} {}",
            l.number, l.status
        ),
        (None, None) => println!("never deployed"),
    }
    for (o, exists) in &status.objects {
        println!("  {:<8} {o}", if *exists { "present" } else { "MISSING" });
    }
    for w in &status.workloads {
        println!(
            "  {}: {}/{} ready, {}/{} updated, images {}",
            w.object,
            w.ready,
            w.desired,
            w.updated,
            w.desired,
            w.images.join(", ")
        );
    }
    for p in &status.pods {
        println!(
            "  pod {} {} {} restarts={} node={} {}",
            p.name,
            p.phase,
            if p.ready { "ready" } else { "not-ready" },
            p.restarts,
            p.node.as_deref().unwrap_or("-"),
            p.images.join(", ")
        );
    }
    Ok(())
}
