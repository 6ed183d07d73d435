//! `wactl drift ENV`: the live objects against the last successful revision.

use super::GlobalArgs;
use crate::cluster::drift::{self, ObjectDrift};
use crate::cluster::{Resolver, RevisionStatus, revision};
use crate::deploy::DeployError;
use crate::github::actions::{Actions, Level, Place, annotation};
use crate::ui::{OutputFormat, Ui};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 no drift, 1 drift (or the check failed), 2 invalid input.

Examples:
  wactl drift staging
  wactl drift production --output json"
)]
pub struct Args {
    /// Environment whose live objects to compare with its last successful revision.
    pub environment: String,
}

/// The environment differs from what its last successful deploy applied (exit 1).
#[derive(Debug, thiserror::Error)]
#[error(
    "{environment} has drifted from revision {revision}: {objects} object(s) changed outside wactl"
)]
pub struct Drifted {
    environment: String,
    revision: u32,
    objects: usize,
}

/// No successful revision to compare with.
#[derive(Debug, thiserror::Error)]
#[error(
    "{environment} has no successful revision in namespace {namespace} to compare with; deploy it first"
)]
pub struct NeverDeployed {
    environment: String,
    namespace: String,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    super::require_cluster(global, &env, "drift")?;
    let access = super::deploy::access(global);
    let namespace = env.cluster.namespace.clone();
    let (baseline, drifted) = super::block_on(async {
        let client = crate::cluster::connect(&env, &access).await?;
        let revisions = revision::list(&client, &namespace, &env.name).await?;
        let Some(baseline) = revisions
            .into_iter()
            .rev()
            .find(|r| r.status == RevisionStatus::Succeeded)
        else {
            return Ok((None, Vec::new()));
        };
        let found = drift::detect(&Resolver::new(client), &baseline.objects).await?;
        Ok::<_, crate::cluster::ClusterError>((Some(baseline), found))
    })?
    .map_err(DeployError::from)?;
    let Some(baseline) = baseline else {
        return Err(NeverDeployed {
            environment: env.name.clone(),
            namespace,
        }
        .into());
    };
    if ui.format == OutputFormat::Json {
        ui.json(&serde_json::json!({
            "environment": env.name,
            "namespace": namespace,
            "revision": baseline.number,
            "drifted": !drifted.is_empty(),
            "objects": drifted,
        }));
    } else {
        println!("{}", drift_text(&env.name, baseline.number, &drifted));
    }
    if let Some(actions) = Actions::from_env() {
        for object in &drifted {
            eprintln!(
                "{}",
                annotation(Level::Warning, Place::default(), &object_line(object))
            );
        }
        let _ = actions.append_summary(&drift_markdown(&env.name, baseline.number, &drifted));
    }
    if drifted.is_empty() {
        return Ok(());
    }
    let drifted = Drifted {
        environment: env.name.clone(),
        revision: baseline.number,
        objects: drifted.len(),
    };
    Err(crate::ui::ReportedFailure(drifted.to_string()).into())
}

fn value(v: Option<&serde_json::Value>) -> String {
    v.map_or_else(|| "(absent)".to_owned(), serde_json::Value::to_string)
}

fn object_line(object: &ObjectDrift) -> String {
    match object {
        ObjectDrift::Missing { object } => format!("{object}: deleted outside wactl"),
        ObjectDrift::Changed { object, fields } => {
            let changes: Vec<String> = fields
                .iter()
                .map(|f| format!("{} by {}", f.path, f.manager))
                .collect();
            format!("{object}: {}", changes.join(", "))
        }
    }
}

fn drift_text(environment: &str, revision: u32, drifted: &[ObjectDrift]) -> String {
    if drifted.is_empty() {
        return format!("{environment}: no drift from revision {revision}");
    }
    let mut out = format!("{environment}: drift from revision {revision}");
    for object in drifted {
        match object {
            ObjectDrift::Missing { object } => {
                out.push_str(&format!("\n  {object}: deleted outside wactl"));
            }
            ObjectDrift::Changed { object, fields } => {
                out.push_str(&format!("\n  {object}"));
                for f in fields {
                    out.push_str(&format!(
                        "\n    {}: {} → {}  by {} ({}{})",
                        f.path,
                        value(f.applied.as_ref()),
                        value(f.live.as_ref()),
                        f.manager,
                        f.operation,
                        f.time
                            .as_deref()
                            .map(|t| format!(", {t}"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
    }
    out
}

fn drift_markdown(environment: &str, revision: u32, drifted: &[ObjectDrift]) -> String {
    if drifted.is_empty() {
        return format!("### Drift: {environment}\n\nNo drift from revision {revision}.\n");
    }
    let mut md = format!(
        "### Drift: {environment}\n\nAgainst revision {revision}.\n\n| object | field | applied | live | by | when |\n| --- | --- | --- | --- | --- | --- |\n"
    );
    for object in drifted {
        match object {
            ObjectDrift::Missing { object } => {
                md.push_str(&format!(
                    "| {object} | (whole object) | present | deleted | | |\n"
                ));
            }
            ObjectDrift::Changed { object, fields } => {
                for f in fields {
                    md.push_str(&format!(
                        "| {object} | `{}` | `{}` | `{}` | {} ({}) | {} |\n",
                        f.path,
                        value(f.applied.as_ref()),
                        value(f.live.as_ref()),
                        f.manager,
                        f.operation,
                        f.time.as_deref().unwrap_or("")
                    ));
                }
            }
        }
    }
    md
}
