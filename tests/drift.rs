//! `wactl drift` against the real API server: none after a clean deploy; `kubectl scale`
//! and `kubectl edit` afterwards are each found and attributed to kubectl.

mod support;

use std::process::Command;
use support::{IMAGE_V1, TestEnv, kubeconfig, kubectl};

fn run_kubectl(t: &TestEnv, args: &[&str], editor: Option<&str>) {
    let mut command = Command::new(kubectl());
    command
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(["--namespace", &t.namespace])
        .args(args);
    if let Some(editor) = editor {
        command.env("KUBE_EDITOR", editor);
    }
    let out = command.output().expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn drift(t: &TestEnv) -> (Option<i32>, serde_json::Value, String) {
    let out = t.wactl(&["--output", "json", "drift", "t"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // The report is the first JSON document on stdout.
    let report = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<serde_json::Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| {
            panic!(
                "drift --output json printed no report: {}{stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
    (out.status.code(), report, stderr)
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn drift_is_none_after_a_deploy_and_kubectl_changes_are_attributed() {
    let t = TestEnv::new("t-drift", "");
    let never = t.wactl(&["drift", "t"]);
    assert_eq!(never.status.code(), Some(1), "nothing deployed yet");
    assert!(String::from_utf8_lossy(&never.stderr).contains("no successful revision"));

    let out = t.wactl(&["deploy", "t", "--yes", "--skip-build", "--image", IMAGE_V1]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, report, stderr) = drift(&t);
    assert_eq!(
        code,
        Some(0),
        "no drift after a clean deploy: {report:#} {stderr}"
    );
    assert_eq!(report["drifted"], false);

    run_kubectl(
        &t,
        &["scale", "deployment/address-service", "--replicas=3"],
        None,
    );
    run_kubectl(
        &t,
        &["edit", "deployment/address-service"],
        Some("sed -i s/terminationGracePeriodSeconds:\\ 30/terminationGracePeriodSeconds:\\ 31/"),
    );
    let (code, report, _) = drift(&t);
    assert_eq!(code, Some(1), "{report:#}");
    let objects = report["objects"].as_array().expect("objects");
    assert_eq!(objects.len(), 1, "only the Deployment drifted: {report:#}");
    let fields = objects[0]["fields"].as_array().expect("fields");
    let found: Vec<(String, String, String)> = fields
        .iter()
        .map(|f| {
            let text = |key: &str| f[key].as_str().unwrap_or_default().to_owned();
            (text("path"), text("manager"), f["live"].to_string())
        })
        .collect();
    assert!(
        found
            .iter()
            // kubectl names itself after its executable (here `kubectl-v1.36.3`) unless
            // the verb has a name of its own (`kubectl-edit`).
            .any(|(path, manager, live)| path == "spec.replicas"
                && manager.starts_with("kubectl")
                && live == "3"),
        "{found:?}"
    );
    assert!(
        found.iter().any(|(path, manager, live)| path
            == "spec.template.spec.terminationGracePeriodSeconds"
            && manager.starts_with("kubectl")
            && live == "31"),
        "{found:?}"
    );
    // The API server records when an update changed the object itself (a write through
    // the scale subresource carries no time).
    assert!(
        fields
            .iter()
            .any(|f| f["manager"] == "kubectl-edit" && f["time"].is_string()),
        "{fields:?}"
    );

    // A redeploy puts the fields back; wactl takes them over again and the drift is gone.
    let out = t.wactl(&[
        "deploy",
        "t",
        "--yes",
        "--skip-build",
        "--image",
        IMAGE_V1,
        "--force-conflicts",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, report, stderr) = drift(&t);
    assert_eq!(code, Some(0), "{report:#} {stderr}");
}
