//! `wactl validate [ENV]...`

use super::GlobalArgs;
use crate::config::{self, ConfigError};
use crate::ui::Ui;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environments to check; every `*.yaml` in the environment directory when omitted.
    pub environments: Vec<String>,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let names = if args.environments.is_empty() {
        config::environment_names(&global.env_dir)?
    } else {
        args.environments.clone()
    };
    let mut problems = Vec::new();
    let mut results = Vec::new();
    for name in &names {
        match config::load(&global.env_dir, name) {
            Ok(env) => {
                ui.success(&format!("{name}: valid ({})", env.source_description()));
                results.push(
                    serde_json::json!({ "environment": name, "valid": true, "files": env.files }),
                );
            }
            Err(error) => {
                results.push(serde_json::json!({ "environment": name, "valid": false, "problems": error.problems }));
                problems.extend(error.problems);
            }
        }
    }
    if problems.is_empty() {
        ui.json(&serde_json::json!({ "environments": results }));
        Ok(())
    } else {
        // Environments that extend a broken file would repeat its problems.
        let mut error = ConfigError::from(problems);
        error.problems.dedup();
        Err(error.into())
    }
}
