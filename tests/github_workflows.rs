//! The project's own workflows: they call wactl (never kubectl or docker), ask for the
//! least permissions they need, and pass actionlint.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const ACTIONLINT_VERSION: &str = "1.7.12";

fn workflows_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows")
}

fn workflow(name: &str) -> Value {
    let path = workflows_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Every `run:` script of every job.
fn scripts(workflow: &Value) -> Vec<String> {
    let jobs = workflow["jobs"].as_object().expect("jobs");
    jobs.values()
        .flat_map(|job| job["steps"].as_array().cloned().unwrap_or_default())
        .filter_map(|step| step["run"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn deploy_workflow_dispatches_staging_or_production() {
    let deploy = workflow("deploy.yml");
    let on = &deploy["on"];
    assert_eq!(on["push"]["branches"], serde_json::json!(["main"]));
    let input = &on["workflow_dispatch"]["inputs"]["environment"];
    assert_eq!(input["type"], "choice");
    assert_eq!(
        input["options"],
        serde_json::json!(["staging", "production"])
    );
    assert_eq!(
        deploy["permissions"],
        serde_json::json!({}),
        "nothing by default"
    );

    let job = &deploy["jobs"]["deploy"];
    let environment = job["environment"]["name"].as_str().expect("environment");
    assert!(environment.contains("inputs.environment") && environment.contains("'staging'"));
    assert_eq!(job["permissions"]["deployments"], "write");
    assert_eq!(job["permissions"]["contents"], "read");
    assert!(job["permissions"].get("pull-requests").is_none());
    assert!(
        job["concurrency"]["group"]
            .as_str()
            .expect("group")
            .contains("inputs.environment")
    );
    assert_eq!(job["concurrency"]["cancel-in-progress"], false);

    let plan = &deploy["jobs"]["plan"];
    assert_eq!(plan["permissions"]["pull-requests"], "write");
    assert!(plan["permissions"].get("deployments").is_none());
    assert!(
        scripts(&deploy)
            .iter()
            .any(|s| s.contains("diff staging --comment-pr ${{ github.event.number }}"))
    );
    assert!(
        scripts(&deploy)
            .iter()
            .any(|s| s.contains("wactl \"${args[@]}\""))
    );
}

#[test]
fn workflows_call_wactl_not_kubectl_or_docker() {
    for name in ["ci.yml", "deploy.yml"] {
        for script in scripts(&workflow(name)) {
            for word in script.split_whitespace() {
                let program = word.rsplit('/').next().unwrap_or(word);
                assert!(
                    !matches!(program, "kubectl" | "docker" | "helm"),
                    "{name} runs `{word}` directly: {script}"
                );
            }
        }
    }
    let ci = scripts(&workflow("ci.yml")).join("\n");
    for step in ["cargo fmt --all --check", "cargo clippy", "xtask test"] {
        assert!(ci.contains(step), "ci.yml runs {step}");
    }
}

/// actionlint, as `cargo xtask test` hands it over, or already in the cache.
fn actionlint() -> PathBuf {
    if let Some(path) = std::env::var_os("WACTL_ACTIONLINT").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("WACTL_CACHE_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/wactl")));
    let cached = cache.map(|dir| dir.join(format!("bin/actionlint-{ACTIONLINT_VERSION}")));
    match cached {
        Some(path) if path.is_file() => path,
        _ => panic!(
            "actionlint is not available: WACTL_ACTIONLINT is not set and \
             ~/.cache/wactl/bin/actionlint-{ACTIONLINT_VERSION} does not exist. \
             `cargo xtask test` builds it from the Go module proxy \
             (go install github.com/rhysd/actionlint/cmd/actionlint@v{ACTIONLINT_VERSION})."
        ),
    }
}

#[test]
#[ignore = "needs infra: cargo xtask test builds actionlint from the Go module proxy"]
fn workflows_pass_actionlint() {
    let actionlint = actionlint();
    let mut files: Vec<PathBuf> = std::fs::read_dir(workflows_dir())
        .expect("workflows directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "ci.yml and deploy.yml: {files:?}");
    let output = Command::new(&actionlint)
        .arg("-no-color")
        .args(&files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", actionlint.display()));
    assert!(
        output.status.success(),
        "actionlint found problems:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
