//! `wactl validate [ENV]... [--list]`

use super::{EnvironmentKind, GlobalArgs};
use crate::config::{self, ConfigError, Environment};
use crate::ui::table::{Align, Table};
use crate::ui::{OutputFormat, Ui, paint};
use std::io::Write;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  wactl validate                       check every definition in the environment directory
  wactl validate staging production    check two
  wactl validate --list                every environment: kind, what it extends, cluster, namespace
  wactl validate -v --output json      results as JSON, with each environment's details")]
pub struct Args {
    /// Environments to check; every `*.yaml` in the environment directory when omitted.
    pub environments: Vec<String>,
    /// List the environments with their kind (docker: the local stack only; cluster), the
    /// files they extend, their cluster context and namespace.
    #[arg(long)]
    pub list: bool,
}

/// What `validate` found about one environment.
#[derive(Debug, serde::Serialize)]
struct Checked {
    environment: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    files: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<config::Problem>,
}

/// Where an environment runs and what it deploys (`--list`, `-v`).
#[derive(Debug, serde::Serialize)]
struct Details {
    kind: EnvironmentKind,
    /// The files it extends, nearest first.
    extends: Vec<String>,
    context: Option<String>,
    namespace: String,
    image: String,
    replicas: u32,
    protected: bool,
}

impl Details {
    fn of(env: &Environment) -> Self {
        Self {
            kind: EnvironmentKind::of(env),
            extends: env
                .files
                .iter()
                .skip(1)
                .map(|f| f.trim_end_matches(".yaml").to_owned())
                .collect(),
            context: env.cluster.context.clone(),
            namespace: env.cluster.namespace.clone(),
            image: env.image.tagged(),
            replicas: env.replicas,
            protected: env.protected,
        }
    }
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let names = if args.environments.is_empty() {
        config::environment_names(&global.env_dir)?
    } else {
        args.environments.clone()
    };
    let detailed = args.list || ui.verbose > 0;
    let mut problems = Vec::new();
    let mut results = Vec::new();
    for name in &names {
        match config::load(&global.env_dir, name) {
            Ok(env) => results.push(Checked {
                environment: name.clone(),
                valid: true,
                details: detailed.then(|| Details::of(&env)),
                files: env.files.clone(),
                problems: Vec::new(),
            }),
            Err(error) => {
                results.push(Checked {
                    environment: name.clone(),
                    valid: false,
                    details: None,
                    files: Vec::new(),
                    problems: error.problems.clone(),
                });
                problems.extend(error.problems);
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if ui.format == OutputFormat::Json {
        // The problems also come as the error document when some environment is invalid.
        if problems.is_empty() {
            let json = serde_json::json!({ "environments": results });
            writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        }
    } else if args.list {
        for line in list(&results, ui.color_out).lines() {
            writeln!(out, "{line}")?;
        }
    } else {
        for r in results.iter().filter(|r| r.valid) {
            let mark = paint(ui.color_out, "32", "✓");
            let files = match r.files.split_first() {
                Some((first, [])) => first.clone(),
                Some((first, rest)) => format!("{first} (extends {})", rest.join(", ")),
                None => r.environment.clone(),
            };
            writeln!(out, "{mark} {}: valid ({files})", r.environment)?;
            if let Some(d) = &r.details {
                writeln!(
                    out,
                    "    kind {}, {}namespace {}, image {}, {} replicas{}",
                    d.kind.as_str(),
                    d.context
                        .as_deref()
                        .map(|c| format!("context {c}, "))
                        .unwrap_or_default(),
                    d.namespace,
                    d.image,
                    d.replicas,
                    if d.protected { ", protected" } else { "" }
                )?;
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        // Environments that extend a broken file would repeat its problems.
        let mut error = ConfigError::from(problems);
        error.problems.dedup();
        Err(error.into())
    }
}

/// `validate --list`: one row per environment.
fn list(results: &[Checked], colour: bool) -> Table {
    let mut table = Table::new(&[
        ("environment", Align::Left),
        ("kind", Align::Left),
        ("extends", Align::Left),
        ("cluster", Align::Left),
        ("namespace", Align::Left),
    ]);
    for r in results {
        let row = match &r.details {
            Some(d) => vec![
                r.environment.clone(),
                d.kind.as_str().to_owned(),
                if d.extends.is_empty() {
                    "-".to_owned()
                } else {
                    d.extends.join(" → ")
                },
                match d.kind {
                    EnvironmentKind::Docker => "- (local stack)".to_owned(),
                    EnvironmentKind::Cluster => d
                        .context
                        .clone()
                        .unwrap_or_else(|| "(kubeconfig's current)".to_owned()),
                },
                d.namespace.clone(),
            ],
            None => vec![
                r.environment.clone(),
                paint(colour, "31", "invalid"),
                String::new(),
                String::new(),
                "(see the problems below)".to_owned(),
            ],
        };
        table.row(row);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_names_kind_parents_cluster_and_namespace() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
        let names = ["local", "dev", "production"];
        let results: Vec<Checked> = names
            .iter()
            .map(|name| {
                let env = config::load(&dir, name).expect("valid");
                Checked {
                    environment: (*name).to_owned(),
                    valid: true,
                    details: Some(Details::of(&env)),
                    files: env.files.clone(),
                    problems: Vec::new(),
                }
            })
            .collect();
        let lines = list(&results, false).lines();
        assert_eq!(lines.len(), names.len() + 1, "{lines:#?}");
        assert!(
            lines[0].starts_with("ENVIRONMENT  KIND     EXTENDS"),
            "{}",
            lines[0]
        );
        let cells = |i: usize| -> Vec<String> {
            lines[i]
                .split("  ")
                .filter(|c| !c.is_empty())
                .map(|c| c.trim().to_owned())
                .collect()
        };
        assert_eq!(
            cells(1),
            [
                "local",
                "docker",
                "base",
                "- (local stack)",
                "world-address-local"
            ]
        );
        assert_eq!(cells(2)[..4], ["dev", "cluster", "base", "wactl-dev"]);
        assert_eq!(cells(3)[..3], ["production", "cluster", "staging → base"]);
    }
}
