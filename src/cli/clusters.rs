//! `--cluster NAME` (repeatable), shared by every verb that touches a cluster.

use super::GlobalArgs;
use crate::cluster::Access;
use crate::config::Environment;
use crate::config::model::Target;
use crate::deploy::fleet::{self, ClusterOutcome, FleetError};
use crate::ui::{OutputFormat, Ui};
use serde::Serialize;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// Act on this cluster only, where the environment names several (`clusters:`);
    /// repeat for more. Default: every cluster.
    #[arg(long = "cluster", value_name = "NAME")]
    pub clusters: Vec<String>,
}

impl ClusterArgs {
    /// The selected clusters of `env`, in wave order (the one target of a single-cluster
    /// environment without `--cluster`).
    pub fn targets(&self, env: &Environment) -> Result<Vec<Target>, FleetError> {
        fleet::select(env, &self.clusters)
    }

    /// Refuses a selection of several clusters where the result holds one cluster's
    /// (`diff --save-plan`); a single-cluster environment always passes.
    pub fn require_one(&self, env: &Environment) -> Result<(), FleetError> {
        let targets = self.targets(env)?;
        if !env.is_fleet() || targets.len() == 1 {
            return Ok(());
        }
        Err(FleetError::SavePlanForSeveral {
            environment: env.name.clone(),
            selected: targets.into_iter().filter_map(|t| t.name).collect(),
        })
    }
}

/// Runs a cluster verb on environment `name`: once as before for a single `cluster:`;
/// for several clusters once per selected cluster, in wave order, each under a `cluster
/// NAME:` heading (text output). A cluster that fails does not stop the others: its error
/// is reported as it happens and the command fails at the end with the highest exit code.
/// With `--output json` and several clusters, one document names every cluster and holds
/// its result under the verb's name (see [`FleetResult`]), as `deploy`'s report does.
pub fn run_each(
    global: &GlobalArgs,
    ui: &Ui,
    name: &str,
    clusters: &ClusterArgs,
    verb: &'static str,
    mut run: impl FnMut(&Ui, &Environment, &Access) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, name)?;
    let targets = clusters.targets(&env)?;
    let accesses = fleet::access_for(&env, &targets, &super::deploy::access(global))?;
    // `smoke` also runs against the local Docker stack; the other verbs need a cluster.
    if verb != "smoke" {
        for target in &targets {
            super::require_cluster(global, &target.environment, verb)?;
        }
    }
    if !env.is_fleet() {
        let (Some(target), Some(access)) = (targets.first(), accesses.first()) else {
            return Ok(());
        };
        return run(ui, &target.environment, access);
    }
    let mut failed = Vec::new();
    let mut results = Vec::new();
    for (target, access) in targets.iter().zip(&accesses) {
        let cluster = target.name.clone().unwrap_or_default();
        if ui.format == OutputFormat::Text {
            println!("cluster {cluster}:");
        }
        let (cluster_ui, capture) = ui.capturing();
        let outcome = run(&cluster_ui, &target.environment, access);
        let mut documents = capture.take();
        let error = match outcome {
            Ok(()) => None,
            Err(error) => {
                let code = super::exit_code(&error);
                let message = format!("{error:#}");
                // The error on stderr; with `--output json` it is this cluster's `error`.
                ui.error_text(&error.context(format!("cluster {cluster}")));
                failed.push((cluster.clone(), code));
                Some(message)
            }
        };
        results.push(ClusterResult {
            name: cluster,
            wave: target.wave,
            namespace: target.environment.cluster.namespace.clone(),
            outcome: if error.is_none() {
                ClusterOutcome::Succeeded
            } else {
                ClusterOutcome::Failed
            },
            error,
            result: match documents.len() {
                0 => serde_json::Value::Null,
                1 => documents.remove(0),
                _ => serde_json::Value::Array(documents),
            },
        });
    }
    if ui.format == OutputFormat::Json {
        ui.json(&FleetResult::new(&env.name, verb, results).to_json());
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(FleetError::Clusters {
            verb,
            total: targets.len(),
            failed,
        }
        .into())
    }
}

/// One cluster's part of a verb run on several clusters.
#[derive(Debug, Serialize)]
struct ClusterResult {
    name: String,
    wave: u32,
    namespace: String,
    /// `succeeded` or `failed`.
    outcome: ClusterOutcome,
    /// Why it failed.
    error: Option<String>,
    /// What the verb prints with `--output json` for a single cluster (`null` when it
    /// failed before that); serialized under the verb's name.
    #[serde(skip)]
    result: serde_json::Value,
}

/// What `--output json` prints for a verb run on several clusters:
/// `{"environment", "verb", "outcome", "clusters": [{"name", "wave", "namespace",
/// "outcome", "error", VERB: result}]}`.
#[derive(Debug, Serialize)]
struct FleetResult {
    environment: String,
    verb: &'static str,
    /// `succeeded` when every cluster did, else `failed`.
    outcome: ClusterOutcome,
    clusters: Vec<ClusterResult>,
}

impl FleetResult {
    fn new(environment: &str, verb: &'static str, clusters: Vec<ClusterResult>) -> Self {
        let outcome = if clusters
            .iter()
            .all(|c| c.outcome == ClusterOutcome::Succeeded)
        {
            ClusterOutcome::Succeeded
        } else {
            ClusterOutcome::Failed
        };
        Self {
            environment: environment.to_owned(),
            verb,
            outcome,
            clusters,
        }
    }

    /// The document, each cluster's result under the verb's name.
    fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::to_value(self).unwrap_or_default();
        if let Some(clusters) = json["clusters"].as_array_mut() {
            for (entry, cluster) in clusters.iter_mut().zip(&self.clusters) {
                entry[self.verb] = cluster.result.clone();
            }
        }
        json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, error: Option<&str>, result: serde_json::Value) -> ClusterResult {
        ClusterResult {
            name: name.into(),
            wave: 1,
            namespace: "wa".into(),
            outcome: if error.is_none() {
                ClusterOutcome::Succeeded
            } else {
                ClusterOutcome::Failed
            },
            error: error.map(str::to_owned),
            result,
        }
    }

    #[test]
    fn one_document_names_each_cluster_with_its_result_under_the_verb() {
        let revisions = serde_json::json!([{ "number": 3 }]);
        let json = FleetResult::new(
            "production",
            "history",
            vec![
                result("eu-1", None, revisions.clone()),
                result("us-1", Some("cannot reach"), serde_json::Value::Null),
            ],
        )
        .to_json();
        assert_eq!(json["environment"], "production", "{json:#}");
        assert_eq!(json["verb"], "history", "{json:#}");
        assert_eq!(json["outcome"], "failed", "{json:#}");
        let clusters = json["clusters"].as_array().expect("clusters");
        assert_eq!(clusters.len(), 2, "{json:#}");
        assert_eq!(clusters[0]["name"], "eu-1");
        assert_eq!(clusters[0]["outcome"], "succeeded");
        assert_eq!(clusters[0]["error"], serde_json::Value::Null);
        assert_eq!(clusters[0]["history"], revisions);
        assert_eq!(clusters[1]["name"], "us-1");
        assert_eq!(clusters[1]["outcome"], "failed");
        assert_eq!(clusters[1]["error"], "cannot reach");
        assert_eq!(clusters[1]["history"], serde_json::Value::Null);
        // The raw field is not serialized beside the verb's key.
        assert!(clusters[0].get("result").is_none(), "{json:#}");
        let all_ok = FleetResult::new("p", "status", vec![result("a", None, revisions)]);
        assert_eq!(all_ok.to_json()["outcome"], "succeeded");
    }

    #[test]
    fn save_plan_needs_one_cluster_of_several() {
        let env = crate::config::load_from_str(
            "p",
            "cluster: { namespace: wa }\nclusters:\n  - { name: eu-1, context: eu }\n  - { name: us-1, context: us, wave: 2 }\n",
        )
        .expect("valid definition");
        let all = ClusterArgs::default();
        let error = all.require_one(&env).expect_err("two clusters");
        assert_eq!(
            error.to_string(),
            "p names several clusters and --save-plan saves one cluster's plan, but 2 are selected (eu-1, us-1): pick one with --cluster NAME"
        );
        let one = ClusterArgs {
            clusters: vec!["us-1".into()],
        };
        assert!(one.require_one(&env).is_ok());
        let single = crate::config::load_from_str("p", "cluster: { namespace: wa }\n").expect("ok");
        assert!(all.require_one(&single).is_ok());
    }
}
