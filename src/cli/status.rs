//! `wactl status ENV`

use super::GlobalArgs;
use crate::cluster::AlertReport;
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
        let prometheus = crate::cluster::prometheus::PrometheusService::bundled(&env);
        let canary = crate::deploy::canary::in_progress(&client, &env).await;
        crate::cluster::live_status(
            &client,
            &env.cluster.namespace,
            &env.name,
            prometheus.as_ref(),
        )
        .await
        .map(|status| (status, canary))
    })??;
    let (status, canary) = status;
    let canary = canary.map(|d| canary_line(&env, &d));
    if ui.format == OutputFormat::Json {
        let mut json = serde_json::to_value(&status)?;
        json["canary"] = canary.map_or(serde_json::Value::Null, serde_json::Value::from);
        ui.json(&json);
        return Ok(());
    }
    if let Some(canary) = &canary {
        println!("{canary}");
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

/// A canary Deployment that is live: a deploy is running its steps, or a killed one left it.
fn canary_line(
    env: &crate::config::Environment,
    d: &k8s_openapi::api::apps::v1::Deployment,
) -> String {
    let ready = d
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    format!(
        "canary {} in progress: {ready}/{desired} pods ready (a deploy is running its steps, or a stopped one left it: the next deploy removes it)",
        crate::deploy::canary::canary_name(env)
    )
}
