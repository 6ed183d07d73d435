//! Saved plans against the real API server: `wactl diff --save-plan` then
//! `wactl deploy --plan` applies exactly that plan; a `kubectl scale` or a changed Secret
//! in between is refused naming the object, its namespace and who changed it; a changed
//! definition is refused; an edited plan file is refused as tampered (exit 2).

mod support;

use std::path::Path;
use std::process::{Command, Output};
use support::{IMAGE_V1, IMAGE_V2, TestEnv, kubeconfig, kubectl, live_image, pinned};

fn run_kubectl(t: &TestEnv, args: &[&str]) {
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(["--namespace", &t.namespace])
        .args(args)
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    all
}

fn save_plan(t: &TestEnv, file: &Path, extra: &[&str]) -> String {
    let file = file.to_str().expect("utf-8 path");
    let mut args = vec![
        "diff",
        "t",
        "--skip-build",
        "--image",
        IMAGE_V2,
        "--save-plan",
        file,
    ];
    args.extend_from_slice(extra);
    ok(t.wactl(&args))
}

fn deploy_plan(t: &TestEnv, file: &Path) -> Output {
    t.wactl(&[
        "deploy",
        "t",
        "--yes",
        "--plan",
        file.to_str().expect("utf-8 path"),
    ])
}

const SECRET_VALUE: &str = "postgres://app:s3cr3t-plan-value@db/app";

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_reviewed_plan_is_applied_exactly_and_refused_when_anything_changed() {
    let t = TestEnv::new(
        "t-plans",
        "secrets:\n  DATABASE_URL: { secret: plan-db, key: url }\n",
    );
    let env = t.load();
    let client = support::client(&env).await;
    t.create_namespace(&client).await;
    t.create_secret(
        &client,
        "plan-db",
        serde_json::json!({ "url": SECRET_VALUE }),
    )
    .await;
    ok(t.wactl(&["deploy", "t", "--yes", "--skip-build", "--image", IMAGE_V1]));
    let plans = t.dir.path();

    // A plan to move to v2: the file names the Secret by version, never its value.
    let first = plans.join("first.json");
    let shown = save_plan(&t, &first, &[]);
    assert!(shown.contains("plan saved to"), "{shown}");
    let saved = std::fs::read_to_string(&first).expect("plan file");
    assert!(!saved.contains("s3cr3t-plan-value"), "{saved}");
    let plan: serde_json::Value = serde_json::from_str(&saved).expect("json");
    assert_eq!(plan["plan"]["secrets"][0]["reference"]["name"], "plan-db");
    assert!(plan["plan"]["secrets"][0]["live"]["resource_version"].is_string());
    assert!(
        plan["hash"]
            .as_str()
            .is_some_and(|h| h.starts_with("sha256:"))
    );

    // An edited file: refused before anything is contacted, exit 2.
    let tampered = plans.join("tampered.json");
    let edited = saved.replace(IMAGE_V2, IMAGE_V1);
    assert_ne!(edited, saved);
    std::fs::write(&tampered, edited).expect("write");
    let out = deploy_plan(&t, &tampered);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("does not match its hash"),
        "{}",
        text(&out)
    );

    // The sources make another image than the plan's (it names a tag, v2): refused.
    let out = t.wactl(&[
        "deploy",
        "t",
        "--yes",
        "--plan",
        first.to_str().expect("utf-8 path"),
        "--check-image",
        "--source",
        support::root().to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("not the plan's {IMAGE_V2}")),
        "{}",
        text(&out)
    );
    assert_eq!(live_image(&client, &t.namespace).await, pinned(IMAGE_V1));

    // kubectl scale and a changed Secret after the review: refused, named, nothing applied.
    run_kubectl(&t, &["scale", "deployment/address-service", "--replicas=3"]);
    run_kubectl(&t, &["label", "secret/plan-db", "rotated=yes"]);
    let out = deploy_plan(&t, &first);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let namespace = &t.namespace;
    assert!(
        said.contains(&format!(
            "Deployment address-service in namespace {namespace}: modified by kubectl"
        )) && said.contains("(Update (scale))"),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "Secret plan-db in namespace {namespace}: modified by kubectl"
        )),
        "{said}"
    );
    assert!(said.contains("nothing was applied"), "{said}");
    assert_eq!(live_image(&client, namespace).await, pinned(IMAGE_V1));

    // A new plan, reviewed taking kubectl's replicas back: applied exactly.
    let second = plans.join("second.json");
    save_plan(&t, &second, &["--force-conflicts"]);
    let said = ok(deploy_plan(&t, &second));
    assert!(said.contains("as reviewed"), "{said}");
    assert_eq!(live_image(&client, namespace).await, pinned(IMAGE_V2));

    // Applying a plan twice: the environment was deployed since (by that plan).
    let out = deploy_plan(&t, &second);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("was deployed since the plan was made"),
        "{}",
        text(&out)
    );

    // A plan with nothing to change, then the definition changes: refused.
    let third = plans.join("third.json");
    let shown = save_plan(&t, &third, &[]);
    assert!(
        shown.contains("0 to create, 0 to update, 0 to delete"),
        "{shown}"
    );
    t.write("secrets:\n  DATABASE_URL: { secret: plan-db, key: url }\nconfig:\n  REQUEST_TIMEOUT: 11s\n");
    let out = deploy_plan(&t, &third);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("render differently"), "{}", text(&out));
    // The definition back as reviewed: an unchanged deploy, exit 0.
    t.write("secrets:\n  DATABASE_URL: { secret: plan-db, key: url }\n");
    let said = ok(deploy_plan(&t, &third));
    assert!(!said.contains("error"), "{said}");

    // A plan for another environment is refused (exit 2).
    let out = t.wactl(&[
        "deploy",
        "dev",
        "--yes",
        "--plan",
        third.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("was made for environment t"),
        "{}",
        text(&out)
    );
}

/// A plan file that is not JSON is refused with its line, before any cluster is read.
#[test]
fn a_malformed_plan_file_is_located_and_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("plan.json");
    std::fs::write(&file, "{\n  \"format\": 1,\n  \"hash\": oops\n}\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_wactl"))
        .arg("--env-dir")
        .arg(support::root().join("environments"))
        .args(["deploy", "dev", "--yes", "--plan"])
        .arg(&file)
        .env_remove("CI")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("run wactl");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("plan {}, line 3", file.display())),
        "{said}"
    );
}
