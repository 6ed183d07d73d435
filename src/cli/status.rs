//! `wactl status ENV`

use super::GlobalArgs;
use crate::cluster::{AlertReport, LiveStatus};
use crate::ui::table::{Align, Table};
use crate::ui::{OutputFormat, Ui, paint, short_image, time};
use std::io::Write;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  wactl status staging                 revision, objects, workloads, pods and alerts
  wactl status staging --output json   the same as one JSON object")]
pub struct Args {
    /// Environment whose live state to show.
    pub environment: String,
    #[command(flatten)]
    pub clusters: super::clusters::ClusterArgs,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let (name, clusters) = (&args.environment, &args.clusters);
    super::clusters::run_each(global, ui, name, clusters, "status", |ui, env, access| {
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
        let canary = match crate::deploy::canary::in_progress(&client, env).await {
            Some(d) => Some((d, crate::deploy::canary::ingress_weight(&client, env).await)),
            None => None,
        };
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
    let canary = canary.map(|(d, weight)| canary_line(env, &d, weight));
    if ui.format == OutputFormat::Json {
        let mut json = serde_json::to_value(&status)?;
        json["canary"] = canary.map_or(serde_json::Value::Null, serde_json::Value::from);
        ui.json(&json);
        return Ok(());
    }
    if let Some(canary) = &canary {
        println!("{canary}");
    }
    let mut out = std::io::stdout().lock();
    for line in lines(&status, ui.color_out, ui.verbose > 0) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The status as a person reads it: a revision line, then one aligned table each for
/// objects, workloads, pods and alerts. Images show in the workload table only (pods run
/// the same ones) unless `verbose`.
fn lines(status: &LiveStatus, colour: bool, verbose: bool) -> Vec<String> {
    let mut lines = vec![format!(
        "environment {} (namespace {})",
        status.environment, status.namespace
    )];
    lines.push(match (&status.current, &status.latest) {
        (Some(c), Some(l)) if c.number != l.number => format!(
            "revision {} live ({}), deployed {} by {}; latest revision {} {}",
            c.number,
            short_image(&c.image),
            time::when(&c.started_at),
            c.user,
            l.number,
            crate::cli::history::status_colour(l.status, colour)
        ),
        (Some(c), _) => format!(
            "revision {} live ({}), deployed {} by {}",
            c.number,
            short_image(&c.image),
            time::when(&c.started_at),
            c.user
        ),
        (None, Some(l)) => format!(
            "no successful revision; latest revision {} {}",
            l.number,
            crate::cli::history::status_colour(l.status, colour)
        ),
        (None, None) => "never deployed".to_owned(),
    });
    let mut section = |table: Table| {
        if !table.is_empty() {
            lines.push(String::new());
            lines.extend(table.lines());
        }
    };
    let mut objects = Table::new(&[("object", Align::Left), ("state", Align::Left)]);
    for o in &status.objects {
        let state = if o.present {
            paint(colour, "32", "present")
        } else {
            paint(colour, "31", "missing")
        };
        objects.row(vec![o.object.to_string(), state]);
    }
    section(objects);
    let mut workloads = Table::new(&[
        ("workload", Align::Left),
        ("ready", Align::Right),
        ("updated", Align::Right),
        ("images", Align::Left),
    ]);
    for w in &status.workloads {
        let ready = format!("{}/{}", w.ready, w.desired);
        let ready = if w.ready < w.desired {
            paint(colour, "33", &ready)
        } else {
            ready
        };
        workloads.row(vec![
            w.object.to_string(),
            ready,
            format!("{}/{}", w.updated, w.desired),
            w.images
                .iter()
                .map(|i| short_image(i))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    section(workloads);
    let mut columns = vec![
        ("pod", Align::Left),
        ("phase", Align::Left),
        ("ready", Align::Left),
        ("restarts", Align::Right),
        ("node", Align::Left),
    ];
    if verbose {
        columns.push(("images", Align::Left));
    }
    let mut pods = Table::new(&columns);
    for p in &status.pods {
        let mut row = vec![
            p.name.clone(),
            p.phase.clone(),
            if p.ready {
                "yes".to_owned()
            } else {
                paint(colour, "33", "no")
            },
            p.restarts.to_string(),
            p.node.clone().unwrap_or_else(|| "-".to_owned()),
        ];
        if verbose {
            row.push(p.images.join(", "));
        }
        pods.row(row);
    }
    section(pods);
    match &status.alerts {
        None => {}
        Some(AlertReport::Unavailable { reason }) => {
            lines.push(String::new());
            lines.push(format!("alerts unknown: {reason}"));
        }
        Some(AlertReport::Read { alerts }) if alerts.is_empty() => {
            lines.push(String::new());
            lines.push("alerts: none".to_owned());
        }
        Some(AlertReport::Read { alerts }) => {
            let mut table = Table::new(&[
                ("alert", Align::Left),
                ("state", Align::Left),
                ("severity", Align::Left),
                ("since", Align::Left),
                ("summary", Align::Left),
            ]);
            for a in alerts {
                let label = |key: &str| a.labels.get(key).map_or("-", String::as_str).to_owned();
                let state = match a.state.as_str() {
                    "firing" => paint(colour, "31", "firing"),
                    other => paint(colour, "33", other),
                };
                table.row(vec![
                    a.name().to_owned(),
                    state,
                    label("severity"),
                    a.active_at.as_deref().map_or("-".to_owned(), time::when),
                    a.annotations.get("summary").cloned().unwrap_or_default(),
                ]);
            }
            lines.push(String::new());
            lines.extend(table.lines());
        }
    }
    lines
}

/// A canary Deployment that is live: a deploy is running its steps, or a killed one left it.
fn canary_line(
    env: &crate::config::Environment,
    d: &k8s_openapi::api::apps::v1::Deployment,
    ingress_weight: Option<u32>,
) -> String {
    let ready = d
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let name = crate::deploy::canary::canary_name(env);
    let ingress = ingress_weight
        .map(|w| format!(", Ingress {name} takes {w}% of the Ingress's requests"))
        .unwrap_or_default();
    format!(
        "canary {name} in progress: {ready}/{desired} pods ready{ingress} (a deploy is running its steps, or a stopped one left it: the next deploy removes it)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ObjectRef, ObjectState, PodSummary, WorkloadSummary};

    #[test]
    fn status_tables_line_up_and_show_each_image_once() {
        let image = format!(
            "127.0.0.1:5000/wa/address-service@sha256:{}",
            "cd".repeat(32)
        );
        let object = |kind: &str, name: &str| ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("wa-dev".into()),
            name: name.into(),
        };
        let pod = |name: &str, ready: bool| PodSummary {
            name: name.into(),
            phase: "Running".into(),
            ready,
            restarts: 0,
            node: Some("kwok-node-0".into()),
            images: vec![image.clone()],
        };
        let status = LiveStatus {
            environment: "dev".into(),
            namespace: "wa-dev".into(),
            latest: None,
            current: None,
            objects: vec![
                ObjectState {
                    object: object("Namespace", "wa-dev"),
                    present: true,
                },
                ObjectState {
                    object: object("PodDisruptionBudget", "address-service"),
                    present: false,
                },
            ],
            workloads: vec![WorkloadSummary {
                object: object("Deployment", "address-service"),
                desired: 2,
                ready: 1,
                updated: 2,
                images: vec![image.clone()],
            }],
            pods: vec![
                pod("address-service-abc", true),
                pod("address-service-defghij", false),
            ],
            alerts: Some(AlertReport::Read { alerts: vec![] }),
        };
        let lines = lines(&status, false, false);
        let text = lines.join("\n");
        assert_eq!(lines[1], "never deployed");
        assert!(
            text.contains("\nOBJECT                                      STATE\n"),
            "{text}"
        );
        assert!(
            text.contains("PodDisruptionBudget wa-dev/address-service  missing"),
            "{text}"
        );
        assert!(
            text.contains("Deployment wa-dev/address-service    1/2      2/2  127"),
            "{text}"
        );
        // The digest once, short: in the workload table, not on every pod.
        assert_eq!(text.matches("@sha256:cdcdcdcdcdcd").count(), 1, "{text}");
        assert!(!text.contains(&image), "{text}");
        let pod_header = lines
            .iter()
            .position(|l| l.starts_with("POD "))
            .expect("pods");
        let node = lines[pod_header].find("NODE").expect("NODE");
        for l in &lines[pod_header + 1..pod_header + 3] {
            assert_eq!(l.find("kwok-node-0"), Some(node), "{l}");
        }
        assert_eq!(lines.last().map(String::as_str), Some("alerts: none"));
        // JSON: each object as an object, not an `[object, bool]` pair.
        let json = serde_json::to_value(&status).expect("json");
        assert_eq!(json["objects"][1]["present"], false, "{json:#}");
        assert_eq!(
            json["objects"][1]["object"]["kind"], "PodDisruptionBudget",
            "{json:#}"
        );
        let verbose = super::lines(&status, false, true).join("\n");
        assert_eq!(verbose.matches(&image).count(), 2, "{verbose}");
    }
}
