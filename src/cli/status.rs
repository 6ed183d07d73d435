//! `wactl status ENV`

use super::GlobalArgs;
use crate::cluster::AlertReport;
use crate::ui::{OutputFormat, Ui};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment whose live state to show.
    pub environment: String,
    #[command(flatten)]
    pub clusters: super::clusters::ClusterArgs,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let (name, clusters) = (&args.environment, &args.clusters);
    super::clusters::run_each(global, ui, name, clusters, "status", |env, access| {
        run_in(ui, env, access)
    })
}

/// `status` in one cluster.
fn run_in(
    ui: &Ui,
    env: &crate::config::Environment,
    access: &crate::cluster::Access,
) -> anyhow::Result<()> {
    let status = super::block_on(async {
        let client = crate::cluster::connect(env, access).await?;
        let prometheus = crate::cluster::prometheus::PrometheusService::bundled(env);
        crate::cluster::live_status(
            &client,
            &env.cluster.namespace,
            &env.name,
            prometheus.as_ref(),
        )
        .await
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
    match &status.alerts {
        None => {}
        Some(AlertReport::Unavailable { reason }) => println!("  alerts unknown: {reason}"),
        Some(AlertReport::Read { alerts }) if alerts.is_empty() => println!("  alerts: none"),
        Some(AlertReport::Read { alerts }) => {
            for a in alerts {
                let label = |key: &str| a.labels.get(key).map_or("-", String::as_str);
                let summary = a.annotations.get("summary").map_or("", String::as_str);
                println!(
                    "  alert {} {} severity={} since {}: {summary}",
                    a.name(),
                    a.state,
                    label("severity"),
                    a.active_at.as_deref().unwrap_or("-"),
                );
            }
        }
    }
    Ok(())
}
