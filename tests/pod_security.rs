//! Pod Security "restricted", as the real kube-apiserver of `cargo xtask infra up` enforces
//! it through the labels of wactl's rendered Namespace: every rendered workload's pod
//! template is admitted (a server-side dry-run create of the pod), and a pod that breaks the
//! profile is refused, so the check can fail.

use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use std::path::PathBuf;
use wactl::render::{self, RenderOptions};

fn kubeconfig() -> String {
    std::env::var("KUBECONFIG").expect(
        "KUBECONFIG is not set: run `eval \"$(cargo xtask infra env)\"` after `cargo xtask infra up`",
    )
}

/// staging (every component on), pointed at the test cluster and a namespace of its own.
fn staging(namespace: &str) -> wactl::config::Environment {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    for name in ["base.yaml", "staging.yaml"] {
        std::fs::copy(root.join("environments").join(name), dir.path().join(name))
            .expect("copy definition");
    }
    std::fs::write(
        dir.path().join("psa.yaml"),
        format!(
            "extends: staging\ncluster:\n  kubeconfig: {}\n  context: wactl-dev\n  namespace: {namespace}\n",
            kubeconfig()
        ),
    )
    .expect("write psa.yaml");
    wactl::config::load(dir.path(), "psa").expect("the definition loads")
}

/// The pod spec a workload's controller would create: its template, plus for a
/// StatefulSet the claim of each volume claim template, as the controller adds them.
fn pod_spec(workload: &Value) -> Value {
    let mut spec = workload["spec"]["template"]["spec"].clone();
    if let Some(claims) = workload["spec"]["volumeClaimTemplates"].as_array() {
        let volumes = spec["volumes"].as_array().cloned().unwrap_or_default();
        let claimed = claims.iter().map(|claim| {
            let name = claim["metadata"]["name"].clone();
            json!({ "name": name, "persistentVolumeClaim": { "claimName": name } })
        });
        spec["volumes"] = Value::Array(volumes.into_iter().chain(claimed).collect());
    }
    spec
}

/// A dry-run create of a pod with `spec` in `namespace`: Ok, or the API server's refusal.
async fn admit(pods: &Api<Pod>, name: &str, spec: &Value) -> Result<(), String> {
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name },
        "spec": spec,
    }))
    .expect("a pod");
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    pods.create(&params, &pod)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn rendered_workloads_pass_the_enforced_restricted_profile() {
    let namespace = format!("wactl-psa-{}", std::process::id());
    let env = staging(&namespace);
    let rendered = render::render(&env, &RenderOptions::default()).expect("staging renders");
    let client = Client::try_default().await.expect("cluster reachable");

    // The Namespace exactly as rendered: its labels are what turns enforcement on.
    let manifest = rendered
        .manifests
        .iter()
        .find(|m| m.kind == "Namespace")
        .expect("a rendered Namespace");
    assert_eq!(
        manifest.object["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let object: Namespace =
        serde_json::from_value(manifest.object.clone()).expect("a Namespace object");
    namespaces
        .create(&PostParams::default(), &object)
        .await
        .expect("create the namespace");
    // The pods run as the rendered service accounts, which admission looks up.
    for account in rendered
        .manifests
        .iter()
        .filter(|m| m.kind == "ServiceAccount")
    {
        let object: ServiceAccount =
            serde_json::from_value(account.object.clone()).expect("a ServiceAccount");
        Api::<ServiceAccount>::namespaced(client.clone(), &namespace)
            .create(&PostParams::default(), &object)
            .await
            .expect("create the service account");
    }
    let pods: Api<Pod> = Api::namespaced(client, &namespace);

    let workloads: Vec<_> = rendered
        .manifests
        .iter()
        .filter(|m| matches!(m.kind.as_str(), "Deployment" | "StatefulSet" | "Job"))
        .collect();
    assert!(
        workloads.len() >= 3,
        "staging renders the service, postgres and redis"
    );
    let mut refused = Vec::new();
    for workload in &workloads {
        let spec = pod_spec(&workload.object);
        let name = format!("psa-{}", workload.name);
        if let Err(error) = admit(&pods, &name, &spec).await {
            refused.push(format!("{} {}: {error}", workload.kind, workload.name));
        }
    }

    // The same pod, made privileged, must be refused: enforcement is really on.
    let mut privileged = pod_spec(&workloads[0].object);
    privileged["containers"][0]["securityContext"] = json!({ "privileged": true });
    let refusal = admit(&pods, "psa-privileged", &privileged).await;

    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
    assert!(refused.is_empty(), "refused: {refused:#?}");
    let refusal = refusal.expect_err("a privileged pod was admitted");
    assert!(
        refusal.contains("violates PodSecurity \"restricted:latest\""),
        "{refusal}"
    );
}
