//! The second cluster of `cargo xtask infra up --second-cluster`: a control plane of its
//! own at the previous Kubernetes minor, reached through context `wactl-dev-2` of
//! `KUBECONFIG` or alone through `WACTL_KUBECONFIG_2`, and sharing nothing with the first.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The first cluster's context (see `environments/dev.yaml`).
const FIRST: &str = "wactl-dev";

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run `cargo xtask infra up --second-cluster`, then \
             `eval \"$(cargo xtask infra env)\"`"
        )
    })
}

/// The second cluster's context, as `infra env` names it.
fn second() -> String {
    var("WACTL_CONTEXT_2")
}

async fn client(kubeconfig: &str, context: &str) -> Client {
    let file = Kubeconfig::read_from(kubeconfig).expect("the kubeconfig reads");
    let options = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..KubeConfigOptions::default()
    };
    let config = Config::from_custom_kubeconfig(file, &options)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "context {context} in {kubeconfig}: {e} (`cargo xtask infra up \
                 --second-cluster` writes both clusters' contexts)"
            )
        });
    Client::try_from(config).expect("a client")
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn each_api_server_answers_with_its_own_kubernetes_minor() {
    let kubeconfig = var("KUBECONFIG");
    let first = client(&kubeconfig, FIRST).await.apiserver_version().await;
    let second_by_context = client(&kubeconfig, &second())
        .await
        .apiserver_version()
        .await;
    let second_alone = client(&var("WACTL_KUBECONFIG_2"), &second())
        .await
        .apiserver_version()
        .await;
    let first = first.expect("the first API server answers");
    let second_by_context = second_by_context.expect("the second API server answers");
    let second_alone = second_alone.expect("the second API server answers");

    assert_eq!((first.major.as_str(), first.minor.as_str()), ("1", "36"));
    assert!(first.git_version.starts_with("v1.36."), "{first:?}");
    assert_eq!(
        (
            second_by_context.major.as_str(),
            second_by_context.minor.as_str()
        ),
        ("1", "35")
    );
    assert!(
        second_by_context.git_version.starts_with("v1.35."),
        "{second_by_context:?}"
    );
    assert_eq!(
        second_alone.git_version,
        second_by_context.git_version,
        "WACTL_KUBECONFIG_2 and context {} of KUBECONFIG reach different servers",
        second()
    );
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_namespace_exists_only_in_the_cluster_it_was_created_in() {
    let kubeconfig = var("KUBECONFIG");
    let clusters = [
        client(&kubeconfig, FIRST).await,
        client(&kubeconfig, &second()).await,
    ];
    let names = [1, 2].map(|n| format!("wactl-t-only-in-{n}-{}", std::process::id()));
    for (client, name) in clusters.iter().zip(&names) {
        let namespace: Namespace =
            serde_json::from_value(json!({ "metadata": { "name": name } })).expect("namespace");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    }
    // Every lookup before any assertion, so both namespaces are deleted whatever is seen.
    let mut seen = Vec::new();
    for name in &names {
        for client in &clusters {
            let found = Api::<Namespace>::all(client.clone())
                .get_opt(name)
                .await
                .map(|ns| ns.is_some());
            seen.push(found);
        }
    }
    for (client, name) in clusters.iter().zip(&names) {
        Api::<Namespace>::all(client.clone())
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting namespace {name}: {e}"));
    }
    let seen: Vec<bool> = seen
        .into_iter()
        .map(|found| found.expect("namespace lookup"))
        .collect();
    // (namespace made in cluster 1: in 1, in 2), (namespace made in cluster 2: in 1, in 2)
    assert_eq!(seen, [true, false, false, true]);
}

/// The environment definitions plus `t`: `dev` in a namespace of the test's own.
fn definitions(namespace: &str) -> tempfile::TempDir {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("environments");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut copied = 0;
    for entry in std::fs::read_dir(&root).expect("environments") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, dir.path().join(path.file_name().expect("name")))
                .expect("copy definition");
            copied += 1;
        }
    }
    assert!(copied >= 2, "expected base.yaml and dev.yaml in {root:?}");
    std::fs::write(
        dir.path().join("t.yaml"),
        format!("extends: dev\ncluster:\n  namespace: {namespace}\n"),
    )
    .expect("write t.yaml");
    dir
}

/// `wactl --output json status t` with `args`: the names of the workloads it reports, or
/// why it did not (kept as a value so the caller cleans up before asserting).
fn status_workloads(env_dir: &Path, args: &[&str]) -> Result<Vec<String>, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_wactl"))
        .arg("--env-dir")
        .arg(env_dir)
        .args(["--output", "json", "status", "t"])
        .args(args)
        .output()
        .map_err(|e| format!("running wactl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "wactl status {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let status: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "wactl status {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    let workloads = status["workloads"]
        .as_array()
        .ok_or_else(|| format!("no workloads array in {status}"))?;
    workloads
        .iter()
        .map(|w| {
            w["object"]["name"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("a workload without a name: {w}"))
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn wactl_status_with_the_second_context_reads_the_second_cluster() {
    let kubeconfig = var("KUBECONFIG");
    let namespace = format!("wactl-t-second-status-{}", std::process::id());
    let cluster = client(&kubeconfig, &second()).await;
    let namespaces = Api::<Namespace>::all(cluster.clone());
    let ns: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": namespace } })).expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("creating the namespace in the second cluster");
    // A workload as wactl labels its own, in the second cluster only.
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {
            "name": "only-in-cluster-2",
            "labels": { "app.kubernetes.io/managed-by": "wactl" }
        },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": "only-in-cluster-2" } },
            "template": {
                "metadata": { "labels": { "app": "only-in-cluster-2" } },
                "spec": { "containers": [{ "name": "c", "image": "127.0.0.1:5000/none:1" }] }
            }
        }
    }))
    .expect("deployment");
    let created = Api::<Deployment>::namespaced(cluster.clone(), &namespace)
        .create(&PostParams::default(), &deployment)
        .await;

    let dir = definitions(&namespace);
    let runs = if created.is_ok() {
        let second = second();
        let second_kubeconfig = var("WACTL_KUBECONFIG_2");
        Some([
            status_workloads(dir.path(), &["--context", &second]),
            status_workloads(
                dir.path(),
                &["--kubeconfig", &second_kubeconfig, "--context", &second],
            ),
            status_workloads(dir.path(), &["--context", FIRST]),
            // The definition's own context (dev's: the first cluster).
            status_workloads(dir.path(), &[]),
        ])
    } else {
        None
    };
    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("deleting the namespace");

    created.expect("creating the deployment in the second cluster");
    let [by_context, by_file, first, default] = runs
        .expect("status ran")
        .map(|run| run.unwrap_or_else(|e| panic!("{e}")));
    let ours = vec!["only-in-cluster-2".to_owned()];
    assert_eq!(by_context, ours, "--context {}", second());
    assert_eq!(by_file, ours, "--kubeconfig $WACTL_KUBECONFIG_2");
    assert_eq!(first, Vec::<String>::new(), "--context {FIRST}");
    assert_eq!(default, Vec::<String>::new(), "the definition's context");
}
